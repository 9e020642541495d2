import Foundation
import LLMOSJSON
import LLMOSModelCache
import Testing

/// `llmos serve --http` as a user runs it: the real binary on a free loopback port (port 0,
/// read back from its "listening on" line), driven over real HTTP by curl, by the
/// official `openai` and `mcp` Python packages, and by headless Chromium for the dashboard.
/// The model is the scripted cpu driver, so every answer is known; the real local model
/// is tried too when it is set up.
@Suite(.serialized) struct ServeHTTPTests {
    let llmos = LLMOS()
    static let key = "sk-llmos-test-0123456789"

    /// A scratch script of scripted turns, and the arguments that select it.
    func scripted(_ turns: [String]) throws -> [String] {
        let path = llmos.home + "/script-\(UUID().uuidString.prefix(6)).jsonl"
        try turns.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return ["--cpu", "scripted", "--config", #"scripted={"script":"\#(path)"}"#]
    }

    static let addTurns = [
        #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 2, "b": 40}}], "expect": "What is 2 + 40?"}"#,
        #"{"chunks": ["The answer ", "is 42."], "expect": "42"}"#,
    ]

    static func chat(_ task: String, stream: Bool = false, model: String = "llmos") -> JSONValue {
        ["model": .string(model), "stream": .bool(stream), "messages": [["role": "user", "content": .string(task)]]]
    }

    // MARK: Starting, and the key

    @Test func itRefusesToStartWithoutAKeyOrOnANonLoopbackAddressUnlessTold() throws {
        let noKey = try llmos.run(["serve", "--http", "127.0.0.1:0", "--no-audit-log"], environment: ["LLMOS_API_KEY": ""])
        #expect(noKey.status == 64, "\(noKey)")
        #expect(noKey.stderr.contains("needs an API key for its clients: --api-key KEY or LLMOS_API_KEY"), "\(noKey.stderr)")
        let remote = try llmos.run(["serve", "--http", "0.0.0.0:0", "--api-key", Self.key, "--no-audit-log"])
        #expect(remote.status == 64)
        #expect(remote.stderr.contains("is not a loopback address: add --allow-remote"), "\(remote.stderr)")
        let openRemote = try llmos.run(["serve", "--http", "0.0.0.0:0", "--no-auth", "--allow-remote", "--no-audit-log"], environment: ["LLMOS_API_KEY": ""])
        #expect(openRemote.status == 64)
        #expect(openRemote.stderr.contains("--no-auth is for loopback only"), "\(openRemote.stderr)")
        let badPort = try llmos.run(["serve", "--http", "127.0.0.1:99999", "--api-key", Self.key])
        #expect(badPort.status != 0)
        #expect(badPort.stderr.contains("the port must be a number from 0 to 65535"), "\(badPort.stderr)")
        let stray = try llmos.run(["serve", "--mcp", "--api-key", Self.key])
        #expect(stray.status != 0)
        #expect(stray.stderr.contains("--api-key is an option of --http"), "\(stray.stderr)")
    }

    @Test func aMissingOrWrongKeyIsA401InOpenAIsShapeAndTheRightOneServes() async throws {
        let server = try HTTPServe(llmos, try scripted(Self.addTurns) + ["--no-audit-log"])
        defer { server.stop() }
        for key in [nil, "sk-wrong-key"] as [String?] {
            for (method, path) in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/api/processes"), ("POST", "/mcp")] {
                let r = try await server.request(method, path, body: method == "POST" ? Self.chat("hi") : nil, key: key)
                #expect(r.status == 401, "\(method) \(path) with key \(key ?? "none"): \(r.status) \(r.text)")
                let error = try JSON.parse(r.text)["error"]
                #expect(error?["code"]?.stringValue == "invalid_api_key", "\(r.text)")
                #expect(error?["type"]?.stringValue == "invalid_request_error")
                // The key is never echoed.
                #expect(!r.text.contains("sk-wrong-key") && !r.text.contains(Self.key))
            }
        }
        let models = try await server.request("GET", "/v1/models")
        #expect(models.status == 200, "\(models.text)")
        let ids = (try JSON.parse(models.text)["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        #expect(ids.first == "llmos", "\(ids)")
        #expect(ids.contains("llmos/scripted") && ids.contains("llmos/local"), "\(ids)")
        // The dashboard's page has no data in it: it is served without the key.
        let page = try await server.request("GET", "/", key: nil)
        #expect(page.status == 200)
        #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
        #expect(page.text.contains("<title>llmos dashboard</title>"))
        #expect(!server.errors.contains(Self.key), "the key must never be logged")
    }

    // MARK: Chat completions

    @Test func aChatCompletionRunsAnAgentProcessThroughTheKernel() async throws {
        let audit = llmos.home + "/audit.sqlite3"
        let server = try HTTPServe(llmos, try scripted(Self.addTurns) + ["--audit-log", audit])
        defer { server.stop() }
        let r = try await server.request("POST", "/v1/chat/completions", body: Self.chat("What is 2 + 40?"))
        #expect(r.status == 200, "\(r.text)\n\(server.errors)")
        let completion = try JSON.parse(r.text)
        #expect(completion["object"]?.stringValue == "chat.completion")
        #expect(completion["model"]?.stringValue == "llmos")
        #expect(completion["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
        let choice = completion["choices"]?[0]
        #expect(choice?["message"]?["role"]?.stringValue == "assistant")
        #expect(choice?["message"]?["content"]?.stringValue == "The answer is 42.", "\(r.text)")
        #expect(choice?["finish_reason"]?.stringValue == "stop")
        #expect((completion["usage"]?["total_tokens"]?.int64Value ?? 0) > 0, "\(r.text)")
        let llmosPart = completion["llmos"]
        #expect(llmosPart?["stop_reason"]?.stringValue == "completed")
        #expect(llmosPart?["tool_calls"]?[0]?["name"]?.stringValue == "calc.add")
        #expect(llmosPart?["tool_calls"]?[0]?["result"] == ["result": 42])
        let pid = try #require(llmosPart?["pid"]?.int64Value)

        // The process is in the table, finished, with its context window.
        let processes = try JSON.parse(try await server.request("GET", "/api/processes").text)["processes"]?.arrayValue ?? []
        let process = try #require(processes.first { $0["pid"]?.int64Value == pid })
        #expect(process["owner"]?.stringValue == "http")
        #expect(process["state"]?.stringValue == "finished")
        #expect(process["cpu"]?.stringValue == "scripted")
        #expect(process["steps"]?.int64Value == 2)
        // `llmos ps` reaches the server's processes too (its control socket).
        let ps = try llmos.run(["ps", "--all", "--json"], environment: ["XDG_RUNTIME_DIR": llmos.home])
        let hosts = try JSON.parse(ps.stdout)["hosts"]?.arrayValue ?? []
        #expect(hosts.contains { ($0["processes"]?.arrayValue ?? []).contains { $0["pid"]?.int64Value == pid && $0["owner"]?.stringValue == "http" } },
                "\(ps.stdout)\(ps.stderr)")
        let context = try JSON.parse(try await server.request("GET", "/api/processes/\(pid)/context").text)
        #expect(context["context"]?["context_length"]?.int64Value == 8192, "\(context)")
        #expect((context["context"]?["used_tokens"]?.int64Value ?? 0) > 0, "\(context)")

        // The tool call went through the kernel: on the audit record, as an agent's.
        let tail = try JSON.parse(try await server.request("GET", "/api/audit?limit=20").text)
        #expect(tail["enabled"] == true)
        let records = tail["records"]?.arrayValue ?? []
        #expect(records.contains { $0["resource"]?.stringValue == "calc.add" && $0["decision"]?.stringValue == "allow"
            && ($0["process"]?.stringValue ?? "").contains("agent \(pid)") }, "\(records)")
    }

    @Test func aStreamedCompletionIsServerSentEventsEndingInDone() async throws {
        let server = try HTTPServe(llmos, try scripted(Self.addTurns) + ["--no-audit-log"])
        defer { server.stop() }
        var body = Self.chat("What is 2 + 40?", stream: true)
        if case .object(var object) = body { object["stream_options"] = ["include_usage": true]; body = .object(object) }
        let r = try await server.request("POST", "/v1/chat/completions", body: body)
        #expect(r.status == 200, "\(r.text)")
        #expect(r.headers["content-type"]?.hasPrefix("text/event-stream") == true, "\(r.headers)")
        // (SSE comments, the keep-alives of a slow run, are not events.)
        let events = r.text.components(separatedBy: "\n\n").filter { !$0.isEmpty && !$0.hasPrefix(":") }
        #expect(events.allSatisfy { $0.hasPrefix("data: ") }, "\(r.text)")
        #expect(events.last == "data: [DONE]", "\(r.text)")
        let chunks = try events.dropLast().map { try JSON.parse(String($0.dropFirst(6))) }
        #expect(chunks.allSatisfy { $0["object"]?.stringValue == "chat.completion.chunk" })
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1, "one id for every chunk")
        #expect(chunks.first?["choices"]?[0]?["delta"]?["role"]?.stringValue == "assistant")
        let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "The answer is 42.", "\(r.text)")
        // The deltas are the model's own chunks, as it streamed them.
        #expect(chunks.contains { $0["choices"]?[0]?["delta"]?["content"]?.stringValue == "The answer " })
        #expect(chunks.contains { $0["llmos"]?["event"]?.stringValue == "tool_call" && $0["llmos"]?["name"]?.stringValue == "calc.add" })
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"]?.stringValue == "stop" })
        #expect(chunks.contains { ($0["usage"]?["total_tokens"]?.int64Value ?? 0) > 0 }, "include_usage gives a usage chunk")
    }

    @Test func theEarlierTurnsOfTheConversationAndBadRequestsAreHandled() async throws {
        let turns = [#"{"text": "Still 42.", "expect": "And now?"}"#]
        let server = try HTTPServe(llmos, try scripted(turns) + ["--no-audit-log"])
        defer { server.stop() }
        let conversation: JSONValue = ["model": "llmos/scripted", "messages": [
            ["role": "system", "content": "Answer briefly."],
            ["role": "user", "content": "What is 2 + 40?"],
            ["role": "assistant", "content": "42."],
            ["role": "user", "content": [["type": "text", "text": "And now?"]]],
        ]]
        let r = try await server.request("POST", "/v1/chat/completions", body: conversation)
        #expect(r.status == 200, "\(r.text)\n\(server.errors)")
        let completion = try JSON.parse(r.text)
        #expect(completion["choices"]?[0]?["message"]?["content"]?.stringValue == "Still 42.")
        #expect(completion["model"]?.stringValue == "llmos/scripted")
        let pid = try #require(completion["llmos"]?["pid"]?.int64Value)
        // The model was shown the system prompt, both earlier turns and the task.
        let context = try JSON.parse(try await server.request("GET", "/api/processes/\(pid)/context").text)
        #expect(context["context"]?["messages"]?.int64Value == 4, "\(context)")

        let cases: [(JSONValue, Int, String, String)] = [
            (["messages": [["role": "user", "content": "hi"]]], 400, "model", "model is required"),
            (["model": "gpt-4o", "messages": [["role": "user", "content": "hi"]]], 404, "model", "The model `gpt-4o` does not exist"),
            (["model": "llmos", "messages": [["role": "user", "content": "hi"]], "tools": [["type": "function", "function": ["name": "f"]]]],
             400, "tools", "calls the host's own tools"),
            (["model": "llmos", "messages": []], 400, "messages", "messages must not be empty"),
            (["model": "llmos", "messages": [["role": "user", "content": "hi"], ["role": "assistant", "content": "hello"]]], 400, "messages", "must be the user's"),
            (["model": "llmos", "messages": [["role": "tool", "content": "1"]]], 400, "messages[0].role", "no client tool results"),
            (["model": "llmos", "messages": [["role": "user", "content": [["type": "image_url", "image_url": ["url": "x"]]]]]],
             400, "messages[0].content", "only text parts"),
            (["model": "llmos", "messages": [["role": "user", "content": "hi"]], "temperature": 7], 400, "temperature", "from 0 to 2"),
            (["model": "llmos", "messages": [["role": "user", "content": "hi"]], "stream": "yes"], 400, "stream", "true or false"),
            (["model": "llmos", "messages": [["role": "user", "content": "hi"]], "n": 2], 400, "n", "n must be 1"),
        ]
        for (body, status, param, message) in cases {
            let r = try await server.request("POST", "/v1/chat/completions", body: body)
            #expect(r.status == status, "\(body.serialized()): \(r.status) \(r.text)")
            let error = try JSON.parse(r.text)["error"]
            #expect(error?["param"]?.stringValue == param, "\(r.text)")
            #expect(error?["message"]?.stringValue?.contains(message) == true, "\(r.text)")
        }
        let notJSON = try await server.request("POST", "/v1/chat/completions", raw: "{not json")
        #expect(notJSON.status == 400)
        #expect(try JSON.parse(notJSON.text)["error"]?["code"]?.stringValue == "invalid_json", "\(notJSON.text)")
    }

    @Test func theOfficialOpenAIPythonClientTalksToIt() async throws {
        let server = try HTTPServe(llmos, try scripted(Self.addTurns + Self.addTurns) + ["--no-audit-log"])
        defer { server.stop() }
        let python = try PythonClients.python.get()
        let scenario: JSONValue = ["requests": [
            ["messages": [["role": "user", "content": "What is 2 + 40?"]]],
            ["messages": [["role": "user", "content": "What is 2 + 40?"]], "stream": true],
            ["model": "no-such-model", "messages": [["role": "user", "content": "hi"]]],
        ]]
        let report = try PythonClients.run(python, [PythonClients.openAIScript, "--base-url", server.url + "/v1", "--api-key", Self.key], stdin: scenario)
        #expect(report["models"]?.arrayValue?.first == "llmos", "\(report)")
        let plain = report["results"]?[0]
        #expect(plain?["content"]?.stringValue == "The answer is 42.", "\(report)")
        #expect(plain?["finish_reason"]?.stringValue == "stop")
        #expect(plain?["role"]?.stringValue == "assistant")
        #expect((plain?["usage"]?["total_tokens"]?.int64Value ?? 0) > 0)
        #expect(plain?["llmos"]?["tool_calls"]?[0]?["name"]?.stringValue == "calc.add")
        let streamed = report["results"]?[1]
        #expect(streamed?["content"]?.stringValue == "The answer is 42.", "\(report)")
        #expect(streamed?["finish_reason"]?.stringValue == "stop")
        #expect((streamed?["chunks"]?.int64Value ?? 0) >= 4)
        #expect((streamed?["usage"]?["total_tokens"]?.int64Value ?? 0) > 0)
        #expect(streamed?["tool_events"]?[0]?["name"]?.stringValue == "calc.add", "\(report)")
        let missing = report["results"]?[2]?["error"]
        #expect(missing?["type"]?.stringValue == "NotFoundError", "\(report)")
        #expect(missing?["code"]?.stringValue == "model_not_found")

        let wrong = try PythonClients.run(python, [PythonClients.openAIScript, "--base-url", server.url + "/v1", "--api-key", "sk-wrong"],
                                          stdin: ["requests": [["messages": [["role": "user", "content": "hi"]]]]])
        #expect(wrong["models_error"]?["type"]?.stringValue == "AuthenticationError", "\(wrong)")
        #expect(wrong["models_error"]?["status"]?.int64Value == 401)
        #expect(wrong["results"]?[0]?["error"]?["code"]?.stringValue == "invalid_api_key")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: ModelCache.markerPath(in: ModelCache.directory())),
                   "the local model is not set up (make models)"))
    func theRealLocalModelAnswersAChatCompletion() async throws {
        let server = try HTTPServe(llmos, ["--cpu", "local", "--tools", "calc.*", "--max-steps", "3", "--no-audit-log"],
                                   environment: ["LLMOS_CACHE_DIR": ModelCache.directory()])
        defer { server.stop() }
        let body: JSONValue = ["model": "llmos", "max_tokens": 48, "messages": [["role": "user", "content": "Say hello in one short sentence."]]]
        let r = try await server.request("POST", "/v1/chat/completions", body: body, timeout: 300)
        #expect(r.status == 200, "\(r.text)\n\(server.errors)")
        let completion = try JSON.parse(r.text)
        #expect(completion["choices"]?[0]?["message"]?["content"]?.stringValue?.isEmpty == false, "\(r.text)")
        #expect((completion["usage"]?["completion_tokens"]?.int64Value ?? 0) > 0, "\(r.text)")
        let streamed = try await server.request("POST", "/v1/chat/completions", body: ["model": "llmos", "stream": true, "max_tokens": 32,
                                                                                      "messages": [["role": "user", "content": "Say hi."]]], timeout: 300)
        #expect(streamed.status == 200)
        #expect(streamed.text.hasSuffix("data: [DONE]\n\n"), "\(streamed.text)")
    }

    // MARK: The JSON API

    @Test func theJSONAPIShowsDriversGrantsAndTheAuditLogAndSaysWhatIsWrong() async throws {
        let audit = llmos.home + "/audit.sqlite3"
        let server = try HTTPServe(llmos, try scripted([#"{"text": "unused"}"#]) + ["--audit-log", audit, "--deny", "tool.call=calc.sub"])
        defer { server.stop() }
        let drivers = try JSON.parse(try await server.request("GET", "/api/drivers").text)["drivers"]?.arrayValue ?? []
        let calc = try #require(drivers.first { $0["name"]?.stringValue == "calc" })
        #expect(calc["class"]?.stringValue == "tool")
        #expect(calc["health"]?["status"]?.stringValue == "ok")
        #expect(drivers.contains { $0["name"]?.stringValue == "scripted" && $0["class"]?.stringValue == "cpu" })

        let grants = try JSON.parse(try await server.request("GET", "/api/grants").text)
        let rules = grants["rules"]?.arrayValue ?? []
        #expect(rules.contains { $0["action"]?.stringValue == "deny" && $0["capability"]?.stringValue == "tool.call"
            && $0["pattern"]?.stringValue == "calc.sub" && $0["source"]?.stringValue == "--deny tool.call=calc.sub" }, "\(rules)")
        #expect(grants["workspace"]?.stringValue == LLMOS.repoRoot)

        // A call through MCP lands on the record; the tail is newest first.
        _ = try await server.mcpSession()
        let status = try JSON.parse(try await server.request("GET", "/api/status").text)
        #expect(status["mcp"]?["sessions"]?.int64Value == 1, "\(status)")
        let tail = try JSON.parse(try await server.request("GET", "/api/audit?limit=3").text)
        #expect(tail["enabled"] == true)
        #expect(tail["path"]?.stringValue == audit)
        #expect((tail["records"]?.arrayValue?.count ?? 99) <= 3)

        for (path, status, param) in [("/api/audit?limit=0", 400, "limit"), ("/api/audit?limit=lots", 400, "limit"),
                                      ("/api/processes/abc", 400, "pid"), ("/api/processes/999999", 404, "pid"),
                                      ("/api/processes/999999/context", 404, "pid")] {
            let r = try await server.request("GET", path)
            #expect(r.status == status, "\(path): \(r.status) \(r.text)")
            #expect(try JSON.parse(r.text)["error"]?["param"]?.stringValue == param, "\(path): \(r.text)")
        }
        let processes = try JSON.parse(try await server.request("GET", "/api/processes").text)
        #expect(processes["processes"]?.arrayValue != nil)
        #expect(processes["host"]?.int64Value != nil)
    }

    @Test func aRunningProcessCanBeKilledOverTheAPIAndAClientThatHangsUpCancelsItsRun() async throws {
        let slow = #"{"text": "too late", "delay_ms": 60000}"#
        let server = try HTTPServe(llmos, try scripted([slow, slow]) + ["--no-audit-log"])
        defer { server.stop() }
        // A request in flight, and its process running in the table.
        let pending = Task { try await server.request("POST", "/v1/chat/completions", body: Self.chat("wait"), timeout: 120) }
        let pid = try await server.waitForProcess(state: "running")
        let bad = try await server.request("POST", "/api/processes/\(pid)/signal", body: ["signal": "stop"])
        #expect(bad.status == 400)
        #expect(try JSON.parse(bad.text)["error"]?["param"]?.stringValue == "signal", "\(bad.text)")
        let killed = try await server.request("POST", "/api/processes/\(pid)/signal", body: ["signal": "kill"])
        #expect(killed.status == 200, "\(killed.text)")
        let answer = try await pending.value
        #expect(answer.status == 503, "\(answer.text)")
        #expect(try JSON.parse(answer.text)["error"]?["code"]?.stringValue == "cancelled", "\(answer.text)")
        let again = try await server.request("POST", "/api/processes/\(pid)/signal", body: ["signal": "kill"])
        #expect(again.status == 409, "\(again.text)")

        // A streaming client that goes away: its run is cancelled, not left to finish.
        _ = try? await server.request("POST", "/v1/chat/completions", body: Self.chat("wait", stream: true), timeout: 2)
        let gone = try await server.waitForProcess(state: "finished", other: pid)
        let row = try JSON.parse(try await server.request("GET", "/api/processes/\(gone)").text)
        #expect(row["detail"]?.stringValue == "finished (cancelled)", "\(row)")
    }

    // MARK: MCP over streamable HTTP

    @Test func theOfficialMCPClientSpeaksStreamableHTTP() async throws {
        let server = try HTTPServe(llmos, ["--audit-log", llmos.home + "/audit-mcp-http.sqlite3", "--deny", "tool.call=calc.sub", "--cpu", "scripted"])
        defer { server.stop() }
        let python = try PythonClients.python.get()
        let scenario: JSONValue = ["calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]],
                                             ["name": "calc.sub", "arguments": ["a": 5, "b": 2]],
                                             ["name": "calc.addd", "arguments": [:]]]]
        let report = try PythonClients.run(python, [PythonClients.mcpScript, "--http", server.url + "/mcp", "--api-key", Self.key], stdin: scenario)
        #expect(report["protocol_version"]?.stringValue == "2025-11-25", "\(report)")
        #expect(report["server_info"]?["name"]?.stringValue == "llmos")
        let tools = (report["tools"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        #expect(tools.contains("calc.add") && tools.contains("text.count"), "\(tools)")
        #expect(!tools.contains("calc.sub"))
        let calls = report["calls"]?.arrayValue ?? []
        #expect(calls.first?["result"]?["structuredContent"] == ["result": 3], "\(report)")
        let refused = calls.count > 1 ? calls[1]["result"] : nil
        #expect(refused?["isError"]?.boolValue == true)
        #expect(refused?["content"]?[0]?["text"]?.stringValue?.contains("denied by --deny tool.call=calc.sub") == true, "\(report)")
        let unknown = calls.count > 2 ? calls[2]["error"] : nil
        #expect(unknown?["message"]?.stringValue?.contains("did you mean calc.add?") == true, "\(report)")
        // On the record as an MCP client's calls over HTTP.
        let audit = try JSON.parse(try await server.request("GET", "/api/audit?limit=50").text)
        let served = (audit["records"]?.arrayValue ?? []).filter { ["calc.add", "calc.sub"].contains($0["resource"]?.stringValue ?? "") }
        #expect(served.count >= 2 && served.allSatisfy { ($0["process"]?.stringValue ?? "").hasSuffix(" via mcp http") }, "\(served)")

        // The client ended its session (DELETE): none is left.
        let status = try JSON.parse(try await server.request("GET", "/api/status").text)
        #expect(status["mcp"]?["sessions"]?.int64Value == 0, "\(status)")
    }

    @Test func mcpOverHTTPSaysWhatIsWrongWithARequest() async throws {
        let server = try HTTPServe(llmos, ["--no-audit-log", "--cpu", "scripted"])
        defer { server.stop() }
        let ping: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "ping"]
        let noSession = try await server.request("POST", "/mcp", body: ping)
        #expect(noSession.status == 400)
        #expect(noSession.text.contains("Mcp-Session-Id header is required"), "\(noSession.text)")
        let unknown = try await server.request("POST", "/mcp", body: ping, headers: ["Mcp-Session-Id": "nosuch"])
        #expect(unknown.status == 404, "\(unknown.text)")
        let get = try await server.request("GET", "/mcp")
        #expect(get.status == 400, "\(get.text)")
        #expect(get.text.contains("Mcp-Session-Id header is required"), "\(get.text)")
        let session = try await server.mcpSession()
        let pong = try await server.request("POST", "/mcp", body: ping, headers: ["Mcp-Session-Id": session])
        #expect(pong.status == 200, "\(pong.text)")
        #expect(try JSON.parse(pong.text)["result"] == [:])
        let notification = try await server.request("POST", "/mcp", body: ["jsonrpc": "2.0", "method": "notifications/initialized"],
                                                    headers: ["Mcp-Session-Id": session])
        #expect(notification.status == 202)
        let badVersion = try await server.request("POST", "/mcp", body: ping, headers: ["Mcp-Session-Id": session, "MCP-Protocol-Version": "1999-01-01"])
        #expect(badVersion.status == 400)
        #expect(badVersion.text.contains("MCP-Protocol-Version 1999-01-01"), "\(badVersion.text)")
        let notJSON = try await server.request("POST", "/mcp", raw: "{", headers: ["Mcp-Session-Id": session])
        #expect(try JSON.parse(notJSON.text)["error"]?["code"]?.int64Value == -32700, "\(notJSON.text)")
        let call = try await server.request("POST", "/mcp", body: ["jsonrpc": "2.0", "id": "c1", "method": "tools/call",
                                                                   "params": ["name": "calc.mul", "arguments": ["a": 6, "b": 7]]],
                                            headers: ["Mcp-Session-Id": session])
        #expect(try JSON.parse(call.text)["result"]?["structuredContent"] == ["result": 42], "\(call.text)")
        let foreign = try await server.request("POST", "/mcp", body: ping, headers: ["Mcp-Session-Id": session, "Origin": "http://evil.example"])
        #expect(foreign.status == 403, "\(foreign.text)")
        let ended = try await server.request("DELETE", "/mcp", headers: ["Mcp-Session-Id": session])
        #expect(ended.status == 204)
        let after = try await server.request("POST", "/mcp", body: ping, headers: ["Mcp-Session-Id": session])
        #expect(after.status == 404)
    }

    @Test(arguments: ["2026-07-28", "auto", "legacy"])
    func theOfficialMCPClientCallsOverHTTPInEachModeWithProgressOverServerSentEvents(mode: String) async throws {
        let audit = llmos.home + "/audit-http-\(mode).sqlite3"
        let drivers = try FixtureDriver.install("echo", in: llmos.home)
        let server = try HTTPServe(llmos, ["--audit-log", audit, "--deny", "tool.call=calc.sub", "--cpu", "scripted", "--drivers", drivers])
        defer { server.stop() }
        let python = try PythonClients.python.get()
        var scenario: JSONObject = ["calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]],
                                              ["name": "calc.sub", "arguments": ["a": 5, "b": 2]],
                                              ["name": "echo.progress", "arguments": [:], "progress": true]]]
        if mode != "legacy" { scenario["listen"] = true }
        let report = try PythonClients.run(python, [PythonClients.mcpScript, "--mode", mode, "--http", server.url + "/mcp", "--api-key", Self.key],
                                           stdin: .object(scenario))
        #expect(report["protocol_version"]?.stringValue == (mode == "legacy" ? "2025-11-25" : "2026-07-28"), "\(report)")
        let tools = (report["tools"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        #expect(tools.contains("calc.add") && tools.contains("echo.progress") && !tools.contains("calc.sub"), "\(tools)")
        let calls = report["calls"]?.arrayValue ?? []
        try #require(calls.count == 3, "\(report)")
        #expect(calls[0]["result"]?["structuredContent"] == ["result": 3], "\(report)")
        #expect(calls[1]["result"]?["isError"]?.boolValue == true)
        #expect(calls[1]["result"]?["content"]?[0]?["text"]?.stringValue?.contains("denied by --deny tool.call=calc.sub") == true, "\(report)")
        // The driver's three progress reports reached the client, before the result.
        #expect(calls[2]["result"]?["structuredContent"] == ["ok": true], "\(report)")
        let progress = calls[2]["progress"]?.arrayValue ?? []
        #expect(progress.compactMap { $0["message"]?.stringValue } == ["starting", "halfway", "done"], "\(report)")
        #expect(progress.last?["progress"] == 1.0 && progress.last?["total"] == 1.0, "\(progress)")
        if mode != "legacy" {
            #expect(report["listen"]?["honored"] == [:], "\(report)")
        }
        let tail = try llmos.run(["audit", "tail", "--json", "--audit-log", audit])
        let records = try JSON.parse(tail.stdout).arrayValue ?? []
        #expect(records.contains { $0["resource"]?.stringValue == "calc.sub" && $0["decision"]?.stringValue == "deny"
            && $0["rule"]?.stringValue == "--deny tool.call=calc.sub" }, "\(tail.stdout)")
        // Stateless 2026-07-28 leaves no session behind; the legacy client ended its own.
        let status = try JSON.parse(try await server.request("GET", "/api/status").text)
        #expect(status["mcp"]?["sessions"]?.int64Value == 0, "\(status)")
    }

    @Test func mcpOverHTTPIn2026SaysWhatIsWrongWithARequest() async throws {
        let drivers = try FixtureDriver.install("echo", in: llmos.home)
        let server = try HTTPServe(llmos, ["--no-audit-log", "--cpu", "scripted", "--drivers", drivers])
        defer { server.stop() }
        func modern(_ id: JSONValue, _ method: String, _ params: JSONObject = [:], version: String = "2026-07-28") -> JSONValue {
            var params = params
            params["_meta"] = ["io.modelcontextprotocol/protocolVersion": .string(version), "io.modelcontextprotocol/clientCapabilities": [:]]
            return ["jsonrpc": "2.0", "id": id, "method": .string(method), "params": .object(params)]
        }
        func headers(_ method: String, name: String? = nil, version: String = "2026-07-28") -> [String: String] {
            var fields = ["MCP-Protocol-Version": version, "Mcp-Method": method]
            if let name { fields["Mcp-Name"] = name }
            return fields
        }
        func error(_ reply: HTTPServe.Reply) -> JSONValue? { try? JSON.parse(reply.text)["error"] }

        // server/discover, statelessly: no session is made.
        let discover = try await server.request("POST", "/mcp", body: modern(1, "server/discover"), headers: headers("server/discover"))
        #expect(discover.status == 200, "\(discover.text)")
        #expect(discover.headers["mcp-session-id"] == nil)
        let found = try JSON.parse(discover.text)["result"]
        #expect(found?["supportedVersions"]?[0] == "2026-07-28", "\(discover.text)")
        #expect(found?["ttlMs"] != nil && found?["cacheScope"]?.stringValue == "private", "\(discover.text)")

        let add = modern(2, "tools/call", ["name": "calc.add", "arguments": ["a": 2, "b": 3]])
        let added = try await server.request("POST", "/mcp", body: add, headers: headers("tools/call", name: "calc.add"), accept: "application/json")
        #expect(added.status == 200 && added.headers["content-type"] == "application/json", "\(added.text)")
        #expect(try JSON.parse(added.text)["result"]?["structuredContent"] == ["result": 5], "\(added.text)")
        // The routing headers must agree with the body: HEADER_MISMATCH, a 400.
        let wrongMethod = try await server.request("POST", "/mcp", body: add, headers: headers("tools/list", name: "calc.add"))
        #expect(wrongMethod.status == 400 && error(wrongMethod)?["code"]?.int64Value == -32020, "\(wrongMethod.text)")
        #expect(error(wrongMethod)?["message"]?.stringValue?.contains("Mcp-Method") == true, "\(wrongMethod.text)")
        let wrongName = try await server.request("POST", "/mcp", body: add, headers: headers("tools/call", name: "calc.mul"))
        #expect(wrongName.status == 400 && error(wrongName)?["code"]?.int64Value == -32020, "\(wrongName.text)")
        #expect(error(wrongName)?["message"]?.stringValue?.contains("Mcp-Name") == true, "\(wrongName.text)")
        let base64Name = try await server.request("POST", "/mcp", body: add, headers: headers("tools/call", name: "=?base64?Y2FsYy5hZGQ=?="))
        #expect(base64Name.status == 200, "a base64-wrapped Mcp-Name is decoded: \(base64Name.text)")
        let wrongVersion = try await server.request("POST", "/mcp", body: modern(3, "tools/list", version: "2025-11-25"), headers: headers("tools/list"))
        #expect(wrongVersion.status == 400 && error(wrongVersion)?["code"]?.int64Value == -32020, "\(wrongVersion.text)")
        let noHeaders = try await server.request("POST", "/mcp", body: modern(4, "tools/list"))
        #expect(noHeaders.status == 400 && error(noHeaders)?["code"]?.int64Value == -32020, "\(noHeaders.text)")
        // A revision this server does not speak: -32022 with the ones it does.
        let future = try await server.request("POST", "/mcp", body: modern(5, "tools/list", version: "2099-01-01"), headers: headers("tools/list", version: "2099-01-01"))
        #expect(future.status == 400 && error(future)?["code"]?.int64Value == -32022, "\(future.text)")
        #expect(error(future)?["data"]?["supported"]?.arrayValue?.contains("2026-07-28") == true, "\(future.text)")
        #expect(error(future)?["data"]?["requested"]?.stringValue == "2099-01-01")
        let noMeta = try await server.request("POST", "/mcp", body: ["jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [:]], headers: headers("tools/list"))
        #expect(noMeta.status == 400 && error(noMeta)?["code"]?.int64Value == -32602, "\(noMeta.text)")
        let unknown = try await server.request("POST", "/mcp", body: modern(7, "prompts/list"), headers: headers("prompts/list"))
        #expect(unknown.status == 404 && error(unknown)?["code"]?.int64Value == -32601, "\(unknown.text)")
        let notification = try await server.request("POST", "/mcp", body: ["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 1]],
                                                    headers: headers("notifications/cancelled"))
        #expect(notification.status == 202, "\(notification.text)")
        let listenJSON = try await server.request("POST", "/mcp", body: modern(8, "subscriptions/listen", ["notifications": [:]]),
                                                  headers: headers("subscriptions/listen"), accept: "application/json")
        #expect(listenJSON.status == 406, "\(listenJSON.text)")
        // A listen that accepts events: acknowledged at once, then open until the client leaves.
        let listen = try await server.request("POST", "/mcp", body: modern("l1", "subscriptions/listen", ["notifications": ["toolsListChanged": true]]),
                                              headers: headers("subscriptions/listen"), timeout: 2, tolerateTimeout: true)
        #expect(listen.timedOut, "the listen stream stays open: \(listen.text)")
        let ack = SSE.messages(listen.text).first
        #expect(ack?["method"]?.stringValue == "notifications/subscriptions/acknowledged", "\(listen.text)")
        #expect(ack?["params"]?["_meta"]?["io.modelcontextprotocol/subscriptionId"] == "l1")

        // Progress: a client that accepts server-sent events gets the notices before the result.
        var call = modern(9, "tools/call", ["name": "echo.progress", "arguments": [:]])
        call = try #require(Self.withProgressToken(call, "p9"))
        let streamed = try await server.request("POST", "/mcp", body: call, headers: headers("tools/call", name: "echo.progress"))
        #expect(streamed.status == 200 && streamed.headers["content-type"] == "text/event-stream", "\(streamed.headers) \(streamed.text)")
        let events = SSE.messages(streamed.text)
        #expect(events.map { $0["method"]?.stringValue ?? "result" } == ["notifications/progress", "notifications/progress", "notifications/progress", "result"], "\(streamed.text)")
        #expect(events.first?["params"]?["progressToken"] == "p9")
        #expect(events.last?["result"]?["structuredContent"] == ["ok": true], "\(streamed.text)")
        // One that takes only JSON gets the result alone.
        let plain = try await server.request("POST", "/mcp", body: call, headers: headers("tools/call", name: "echo.progress"), accept: "application/json")
        #expect(plain.headers["content-type"] == "application/json", "\(plain.text)")
        #expect(try JSON.parse(plain.text)["result"]?["structuredContent"] == ["ok": true], "\(plain.text)")

        // The same over a 2025-11-25 session, answered on the session's POST.
        let session = try await server.mcpSession()
        let legacy: JSONValue = ["jsonrpc": "2.0", "id": 10, "method": "tools/call",
                                 "params": ["name": "echo.progress", "arguments": [:], "_meta": ["progressToken": 10]]]
        let sessionStream = try await server.request("POST", "/mcp", body: legacy, headers: ["Mcp-Session-Id": session])
        #expect(sessionStream.headers["content-type"] == "text/event-stream" && sessionStream.headers["mcp-session-id"] == session, "\(sessionStream.headers)")
        let sessionEvents = SSE.messages(sessionStream.text)
        #expect(sessionEvents.filter { $0["method"]?.stringValue == "notifications/progress" }.count == 3, "\(sessionStream.text)")
        #expect(sessionEvents.last?["id"] == 10 && sessionEvents.last?["result"]?["isError"]?.boolValue == false, "\(sessionStream.text)")
    }

    @Test func aStatelessCallIsCancelledWhenItsClientClosesTheResponse() async throws {
        // misbehave's spin, honouring cancellation, with a limit long enough that only a cancel ends it.
        let drivers = try FixtureDriver.install("misbehave", in: llmos.home)
        let manifest = drivers + "/misbehave.yaml"
        try (try String(contentsOfFile: manifest, encoding: .utf8)).replacingOccurrences(of: "timeout_ms: 2000", with: "timeout_ms: 60000")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let audit = llmos.home + "/audit-cancel.sqlite3"
        let server = try HTTPServe(llmos, ["--audit-log", audit, "--cpu", "scripted", "--drivers", drivers])
        defer { server.stop() }
        let spin: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": ["name": "misbehave.spin", "arguments": ["honour_cancel": true],
                                          "_meta": ["io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": [:]]]]
        let left = try await server.request("POST", "/mcp", body: spin, headers: ["MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "misbehave.spin"],
                                            timeout: 2, tolerateTimeout: true)
        #expect(left.timedOut && left.headers["content-type"] == "text/event-stream", "\(left.headers) \(left.text)")
        // 2026-07-28: closing the response is the cancellation; the driver sees is_cancelled.
        var outcome: String?
        for _ in 0..<300 where outcome == nil {
            let records = try JSON.parse(try await server.request("GET", "/api/audit?limit=10").text)["records"]?.arrayValue ?? []
            outcome = records.first { $0["resource"]?.stringValue == "misbehave.spin" && $0["outcome"] != nil && $0["outcome"] != .null }?["outcome"]?.stringValue
            if outcome == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(outcome == "cancelled", "\(server.errors)")
    }

    @Test func getOpensASessionsStandaloneStreamWhichEndsWithTheSession() async throws {
        let server = try HTTPServe(llmos, ["--no-audit-log", "--cpu", "scripted"])
        defer { server.stop() }
        let session = try await server.mcpSession()
        let sse = "text/event-stream"
        let noKey = try await server.request("GET", "/mcp", key: .some(nil), headers: ["Mcp-Session-Id": session], accept: sse)
        #expect(noKey.status == 401, "\(noKey.text)")
        #expect(try JSON.parse(noKey.text)["error"]?["code"]?.stringValue == "invalid_api_key")
        let unknown = try await server.request("GET", "/mcp", headers: ["Mcp-Session-Id": "nosuch"], accept: sse)
        #expect(unknown.status == 404, "\(unknown.text)")
        let jsonOnly = try await server.request("GET", "/mcp", headers: ["Mcp-Session-Id": session], accept: "application/json")
        #expect(jsonOnly.status == 406, "\(jsonOnly.text)")
        let modern = try await server.request("GET", "/mcp", headers: ["MCP-Protocol-Version": "2026-07-28"], accept: sse)
        #expect(modern.status == 405 && modern.text.contains("subscriptions/listen"), "\(modern.text)")

        // Open: it stays open (curl gives up), and its first bytes are an SSE comment.
        let open = try await server.request("GET", "/mcp", headers: ["Mcp-Session-Id": session], accept: sse, timeout: 2, tolerateTimeout: true)
        #expect(open.status == 200 && open.headers["content-type"] == sse, "\(open.status) \(open.headers)")
        #expect(open.timedOut)
        #expect(open.text.hasPrefix(": stream open"), "\(open.text)")
        // Ending the session ends its stream: the GET returns by itself.
        async let held = server.request("GET", "/mcp", headers: ["Mcp-Session-Id": session], accept: sse, timeout: 30, tolerateTimeout: true)
        try await Task.sleep(for: .milliseconds(500))
        let ended = try await server.request("DELETE", "/mcp", headers: ["Mcp-Session-Id": session])
        #expect(ended.status == 204)
        let closed = try await held
        #expect(closed.status == 200 && !closed.timedOut, "the stream should end with its session: \(closed.text)")
    }

    @Test func shuttingDownEndsOpenStreamsAListenWithItsResult() async throws {
        let server = try HTTPServe(llmos, ["--no-audit-log", "--cpu", "scripted"])
        defer { server.stop() }
        let session = try await server.mcpSession()
        let listen: JSONValue = ["jsonrpc": "2.0", "id": "l", "method": "subscriptions/listen",
                                 "params": ["notifications": [:], "_meta": ["io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                                                             "io.modelcontextprotocol/clientCapabilities": [:]]]]
        async let standalone = server.request("GET", "/mcp", headers: ["Mcp-Session-Id": session], accept: "text/event-stream",
                                              timeout: 30, tolerateTimeout: true)
        async let subscription = server.request("POST", "/mcp", body: listen, headers: ["MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"],
                                                timeout: 30, tolerateTimeout: true)
        try await Task.sleep(for: .seconds(1))
        // SIGTERM: the server's graceful shutdown would wait for open responses; the streams end first.
        server.process.terminate()
        let (stream, listened) = try await (standalone, subscription)
        #expect(!stream.timedOut && stream.text.hasPrefix(": stream open"), "\(stream.text)")
        #expect(!listened.timedOut, "\(listened.text)")
        let last = SSE.messages(listened.text).last
        #expect(last?["id"] == "l" && last?["result"]?["_meta"]?["io.modelcontextprotocol/subscriptionId"] == "l", "\(listened.text)")
        server.process.waitUntilExit()
        #expect(server.process.terminationReason == .exit, "ended by a signal, not by its own shutdown: \(server.errors)")
    }

    static func withProgressToken(_ request: JSONValue, _ token: JSONValue) -> JSONValue? {
        guard var object = request.objectValue, var params = object["params"]?.objectValue, var meta = params["_meta"]?.objectValue else { return nil }
        meta["progressToken"] = token
        params["_meta"] = .object(meta)
        object["params"] = .object(params)
        return .object(object)
    }

    // MARK: The dashboard, in a real browser

    @Test func theDashboardShowsProcessesDriversGrantsAndTheAuditLogInHeadlessChromium() async throws {
        let audit = llmos.home + "/audit.sqlite3"
        let server = try HTTPServe(llmos, try scripted(Self.addTurns) + ["--audit-log", audit, "--deny", "tool.call=calc.sub"])
        defer { server.stop() }
        let r = try await server.request("POST", "/v1/chat/completions", body: Self.chat("What is 2 + 40?"))
        #expect(r.status == 200, "\(r.text)")
        let pid = try #require(try JSON.parse(r.text)["llmos"]?["pid"]?.int64Value)
        let chromium = try Browser.chromium()
        let url = server.url + "/#key=" + Self.key
        let dom = try Browser.run(chromium, ["--dump-dom", url])
        #expect(dom.contains("data-loaded=\"true\""), "the page never loaded its data:\n\(dom.prefix(3000))")
        #expect(dom.contains("data-pid=\"\(pid)\""), "process \(pid) not shown:\n\(dom.prefix(3000))")
        #expect(dom.contains("data-driver=\"calc\"") && dom.contains("data-driver=\"scripted\""))
        #expect(dom.contains("role=\"meter\"") && dom.contains("data-window=\"8192\""), "no context meter:\n\(dom.prefix(3000))")
        #expect(dom.contains("--deny tool.call=calc.sub"), "the grants are not shown")
        #expect(dom.contains("calc.add"), "the audit tail is not shown")
        #expect(!dom.contains(Self.key), "the key must not be in the page")
        // Without the key: the sign-in form, and no data.
        let signedOut = try Browser.run(chromium, ["--dump-dom", server.url + "/"])
        #expect(signedOut.contains("sign in"), "\(signedOut.prefix(2000))")
        #expect(!signedOut.contains("data-pid="))
        #expect(signedOut.contains(#"<main id="main" hidden"#), "the empty tables must be hidden when signed out")
        #expect(!dom.contains(#"<main id="main" hidden"#), "the tables must show when signed in")

        let directory = Browser.artifacts
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, target) in [("dashboard.png", url), ("dashboard-signed-out.png", server.url + "/")] {
            let path = directory + "/" + name
            try? FileManager.default.removeItem(atPath: path)
            _ = try Browser.run(chromium, ["--screenshot=\(path)", "--window-size=1280,900", target])
            let png = FileManager.default.contents(atPath: path) ?? Data()
            #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "\(path): no screenshot (\(png.count) bytes)")
        }
    }
}

// MARK: - Helpers

/// `llmos serve --http 127.0.0.1:0 --api-key KEY ARGS` as a child process; the port it got
/// is read from its "listening on" line on standard error.
final class HTTPServe: @unchecked Sendable {
    let process = Process()
    let errorsFile: String
    private(set) var port = 0
    let key: String?
    var url: String { "http://127.0.0.1:\(port)" }
    var errors: String { (try? String(contentsOfFile: errorsFile, encoding: .utf8)) ?? "" }

    init(_ llmos: LLMOS, _ arguments: [String], key: String? = ServeHTTPTests.key, environment extra: [String: String] = [:]) throws {
        self.key = key
        errorsFile = llmos.home + "/serve-\(UUID().uuidString.prefix(8)).stderr"
        _ = FileManager.default.createFile(atPath: errorsFile, contents: nil)
        process.executableURL = URL(fileURLWithPath: LLMOS.executable)
        process.arguments = ["serve", "--http", "127.0.0.1:0"] + (key.map { ["--api-key", $0] } ?? ["--no-auth"]) + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = llmos.home
        environment["XDG_DATA_HOME"] = nil
        environment["XDG_RUNTIME_DIR"] = llmos.home
        environment["LLMOS_DRIVER_PATH"] = nil
        environment["LLMOS_API_KEY"] = nil
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsFile))
        process.standardError = errors
        process.standardOutput = errors
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        try? errors.close()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let text = self.errors
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { self.port = port; return }
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw SetupFailure(message: "llmos serve --http did not start:\n\(self.errors)")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var text: String
        /// curl gave up at its --max-time (a stream that stays open), with `tolerateTimeout`.
        var timedOut = false
    }

    /// One request (through curl: URLSession on Linux turns a 401 into an error of its
    /// own); `key: nil` sends none; the server's own key by default.
    func request(_ method: String, _ path: String, body: JSONValue? = nil, raw: String? = nil, key: String?? = .none,
                 headers: [String: String] = [:], accept: String = "application/json, text/event-stream",
                 timeout: TimeInterval = 60, tolerateTimeout: Bool = false) async throws -> Reply {
        let chosen: String? = key ?? self.key
        var arguments = ["-s", "-N", "-i", "-X", method, "--max-time", String(Int(timeout)), "-H", "Accept: \(accept)"]
        if let chosen { arguments += ["-H", "Authorization: Bearer \(chosen)"] }
        let payload = body.map { $0.serialized() } ?? raw
        if payload != nil { arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        arguments.append(url + path)
        // curl is waited for on a thread of its own: a stream held open must not take one of
        // the few threads the test's other tasks need (the cooperative pool is one per core).
        let command = arguments
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.curl(method, path, command, payload: payload, tolerateTimeout: tolerateTimeout) })
            }
        }
    }

    private static func curl(_ method: String, _ path: String, _ arguments: [String], payload: String?, tolerateTimeout: Bool) throws -> Reply {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        if let payload { input.fileHandleForWriting.write(Data(payload.utf8)) }
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let timedOut = tolerateTimeout && process.terminationStatus == 28
        guard process.terminationStatus == 0 || timedOut, let split = text.range(of: "\r\n\r\n") else {
            throw SetupFailure(message: "curl \(method) \(path) failed (exit \(process.terminationStatus)): \(text)")
        }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: fields, text: String(text[split.upperBound...]), timedOut: timedOut)
    }

    /// The pid of a process (not `other`) in `state`, once there is one (30 s at most).
    func waitForProcess(state: String, other: Int64? = nil) async throws -> Int64 {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let processes = try JSON.parse(try await request("GET", "/api/processes").text)["processes"]?.arrayValue ?? []
            if let found = processes.first(where: { $0["state"]?.stringValue == state && $0["pid"]?.int64Value != other }),
               let pid = found["pid"]?.int64Value { return pid }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SetupFailure(message: "no process became \(state) within 30 s:\n\(errors)")
    }

    /// An initialized MCP session over raw HTTP; its id.
    func mcpSession() async throws -> String {
        let initialize: JSONValue = ["jsonrpc": "2.0", "id": 0, "method": "initialize",
                                     "params": ["protocolVersion": "2025-11-25", "capabilities": [:], "clientInfo": ["name": "raw", "version": "1"]]]
        let r = try await request("POST", "/mcp", body: initialize)
        guard r.status == 200, let id = r.headers["mcp-session-id"] else {
            throw SetupFailure(message: "initialize over HTTP failed: \(r.status) \(r.headers) \(r.text)")
        }
        return id
    }
}

/// Server-sent events as MCP sends them: the JSON-RPC message of each `data:` line.
enum SSE {
    static func messages(_ text: String) -> [JSONValue] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("data: ") else { return nil }
            return try? JSON.parse(String(line.dropFirst(6)))
        }
    }
}

struct SetupFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The venv with the official Python clients (`mcp`, pinned in Benchmarks/mcp-reference,
/// and `openai`, pinned in Tests/Fixtures/http/requirements.txt): the one ServeMCPTests uses.
enum PythonClients {
    static let mcpScript = LLMOS.repoRoot + "/Tests/Fixtures/mcp/client.py"
    static let openAIScript = LLMOS.repoRoot + "/Tests/Fixtures/http/openai_client.py"
    static var python: Result<String, MCPClient.SetupError> { MCPClient.python }

    /// Runs a client with a JSON scenario on stdin; its one JSON line of output.
    static func run(_ python: String, _ arguments: [String], stdin: JSONValue) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
        let errorsFile = NSTemporaryDirectory() + "llmos-client-\(UUID().uuidString.prefix(8)).stderr"
        _ = FileManager.default.createFile(atPath: errorsFile, contents: nil)
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsFile))
        defer { try? errors.close(); try? FileManager.default.removeItem(atPath: errorsFile) }
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.serialized().utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errorsFile, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw SetupFailure(message: "\(arguments.first ?? "") exited \(process.terminationStatus):\n\(stderr)")
        }
        do { return try JSON.parse(String(decoding: out, as: UTF8.self)) } catch {
            throw SetupFailure(message: "\(arguments.first ?? "") printed no JSON (\(error)):\n\(String(decoding: out, as: UTF8.self))\n\(stderr)")
        }
    }
}

/// Headless Chromium (Debian's `chromium` package; `make deps` installs it).
enum Browser {
    /// Where the screenshots are kept: $LLMOS_TEST_ARTIFACTS, else .build/test-artifacts.
    static let artifacts: String = {
        if let dir = ProcessInfo.processInfo.environment["LLMOS_TEST_ARTIFACTS"], !dir.isEmpty { return dir }
        return LLMOS.repoRoot + "/.build/test-artifacts"
    }()

    static func chromium() throws -> String {
        for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        throw SetupFailure(message: "no Chromium: apt-get install chromium (make deps installs it)")
    }

    /// Runs headless Chromium on one page with a scratch profile; its standard output.
    static func run(_ chromium: String, _ arguments: [String]) throws -> String {
        let profile = NSTemporaryDirectory() + "llmos-chromium-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        // A virtual-time budget lets the page's fetches finish before the DOM is read.
        process.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--user-data-dir=\(profile)", "--virtual-time-budget=8000"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SetupFailure(message: "chromium \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
