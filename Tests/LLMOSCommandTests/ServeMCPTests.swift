import Foundation
import LLMOSJSON
import Testing

/// `llmos serve --mcp` against real peers: the official MCP Python SDK's client (the
/// `mcp` package pinned in Benchmarks/mcp-reference/requirements.txt) spawning the
/// server over stdio, and raw JSON-RPC lines for the protocol's bad paths.
@Suite struct ServeMCPTests {
    let llmos = LLMOS()

    // MARK: The official Python client

    @Test func theOfficialClientListsPolicyAllowedToolsAndCallsCalcAdd() throws {
        let report = try MCPClient.scenario(llmos, serverArguments: ["--deny", "tool.call=calc.sub"],
                                            calls: [("calc.add", ["a": 1, "b": 2])])
        #expect(report["protocol_version"]?.stringValue == "2025-11-25")
        #expect(report["server_info"]?["name"]?.stringValue == "llmos")
        #expect(report["capabilities"]?["tools"]?["listChanged"]?.boolValue == false)
        let tools = report.toolNames
        #expect(tools.contains("calc.add"))
        #expect(tools.contains("text.count"))
        // Denied: not listed. Not a tool driver (a model): not exported at all.
        #expect(!tools.contains("calc.sub"))
        #expect(!tools.contains { $0.hasPrefix("scripted.") || $0.hasPrefix("local.") })
        let add = try #require(report.tool("calc.add"))
        #expect(add["inputSchema"]?["type"]?.stringValue == "object")
        #expect(add["inputSchema"]?["properties"]?["a"] != nil)
        #expect(add["annotations"]?["readOnlyHint"] != nil)

        let result = try #require(report.call(0)["result"])
        #expect(result["isError"]?.boolValue == false)
        #expect(result["structuredContent"] == ["result": 3])
        #expect(result["content"]?[0]?["type"]?.stringValue == "text")
        #expect(try JSON.parse(result["content"]?[0]?["text"]?.stringValue ?? "") == ["result": 3])
    }

    @Test func aDeniedToolIsRefusedWithItsRuleAndAudited() throws {
        let audit = llmos.home + "/audit.sqlite3"
        let report = try MCPClient.scenario(llmos, serverArguments: ["--deny", "tool.call=calc.sub", "--audit-log", audit],
                                            calls: [("calc.sub", ["a": 5, "b": 2]), ("calc.add", ["a": 5, "b": 2])])
        let refused = try #require(report.call(0)["result"])
        #expect(refused["isError"]?.boolValue == true)
        let text = refused["content"]?[0]?["text"]?.stringValue ?? ""
        #expect(text.contains("permission_denied"), "\(text)")
        #expect(text.contains("calc.sub: denied by --deny tool.call=calc.sub"), "\(text)")
        #expect(report.call(1)["result"]?["structuredContent"] == ["result": 7])

        // The refusal is the kernel's: on the record, with the rule that decided.
        let tail = try llmos.run(["audit", "tail", "--json", "--audit-log", audit])
        #expect(tail.status == 0, "\(tail.stderr)")
        let records = try JSON.parse(tail.stdout).arrayValue ?? []
        #expect(records.contains { $0["resource"]?.stringValue == "calc.sub" && $0["decision"]?.stringValue == "deny"
            && $0["rule"]?.stringValue == "--deny tool.call=calc.sub" })
        #expect(records.contains { $0["resource"]?.stringValue == "calc.add" && $0["decision"]?.stringValue == "allow"
            && $0["outcome"]?.stringValue == "ok" })
        // Whose calls they were: an MCP client's over stdio, not the operator's own.
        let served = records.filter { ["calc.sub", "calc.add"].contains($0["resource"]?.stringValue ?? "") }
        #expect(!served.isEmpty && served.allSatisfy { ($0["process"]?.stringValue ?? "").hasSuffix(" via mcp stdio") }, "\(served)")
        let lines = try llmos.run(["audit", "tail", "--audit-log", audit])
        #expect(lines.stdout.contains("operator via mcp stdio tool.call calc.sub → deny"), "\(lines.stdout)")
    }

    @Test func badArgumentsAndDriverErrorsAreToolErrorsThatNameTheProblem() throws {
        let report = try MCPClient.scenario(llmos, calls: [
            ("calc.add", ["a": "one", "b": 2]),
            ("calc.add", ["a": 1]),
            ("calc.div", ["a": 1, "b": 0]),
            ("calc.eval", ["expression": "2 * (3 + "]),
        ])
        for index in 0..<4 {
            #expect(report.call(index)["result"]?["isError"]?.boolValue == true, "\(report.call(index))")
        }
        let wrongType = report.callText(0)
        #expect(wrongType.hasPrefix("invalid_argument:"), "\(wrongType)")
        #expect(wrongType.contains(#"field "a": expected number, got string "one""#), "\(wrongType)")
        let missing = report.callText(1)
        #expect(missing.contains(#"missing required field "b""#), "\(missing)")
        #expect(report.callText(2).contains("division by zero"), "\(report.callText(2))")
        #expect(report.callText(3).contains("column"), "\(report.callText(3))")
    }

    @Test func anUnknownToolIsAProtocolErrorThatSuggestsTheNearestName() throws {
        let report = try MCPClient.scenario(llmos, calls: [("calc.addd", ["a": 1, "b": 2])])
        let error = try #require(report.call(0)["error"])
        #expect(error["code"]?.int64Value == -32602)
        let message = error["message"]?.stringValue ?? ""
        #expect(message.contains("unknown tool calc.addd"), "\(message)")
        #expect(message.contains("did you mean calc.add?"), "\(message)")
    }

    @Test func aToolThatWouldAskIsNotListedAndIsRefusedSayingHowToGrantIt() throws {
        let report = try MCPClient.scenario(llmos, serverArguments: ["--ask", "tool.call=calc.mul"],
                                            calls: [("calc.mul", ["a": 2, "b": 3])])
        #expect(!report.toolNames.contains("calc.mul"))
        #expect(report.toolNames.contains("calc.add"))
        let text = report.callText(0)
        #expect(report.call(0)["result"]?["isError"]?.boolValue == true)
        #expect(text.contains("permission_denied"), "\(text)")
        #expect(text.contains("llmos serve --mcp has no one to ask"), "\(text)")
        #expect(text.contains("--ask tool.call=calc.mul"), "\(text)")
    }

    @Test func toolNamesCanAvoidDotsAndTheOfferCanBeNarrowed() throws {
        let report = try MCPClient.scenario(llmos, serverArguments: ["--tool-names", "underscore", "--tools", "calc.*"],
                                            calls: [("calc__add", ["a": 20, "b": 22]), ("text__count", ["text": "a b"])])
        #expect(report.toolNames.contains("calc__add"))
        #expect(report.toolNames.allSatisfy { $0.hasPrefix("calc__") }, "\(report.toolNames)")
        #expect(report.tool("calc__add")?["title"]?.stringValue == "calc.add")
        #expect(report.call(0)["result"]?["structuredContent"] == ["result": 42])
        #expect(report.call(1)["error"]?["message"]?.stringValue?.contains("unknown tool text__count") == true)
    }

    // MARK: The stateless 2026-07-28 revision

    @Test(arguments: ["2026-07-28", "auto"])
    func theOfficialClientIn2026ModeListsCallsIsRefusedAndListens(mode: String) throws {
        let audit = llmos.home + "/audit-\(mode).sqlite3"
        let report = try MCPClient.scenario(llmos, serverArguments: ["--deny", "tool.call=calc.sub", "--audit-log", audit],
                                            calls: [("calc.add", ["a": 1, "b": 2]), ("calc.sub", ["a": 5, "b": 2]), ("calc.addd", [:])],
                                            mode: mode, extra: ["listen": true])
        #expect(report["protocol_version"]?.stringValue == "2026-07-28", "\(report.value)")
        #expect(report.toolNames.contains("calc.add") && !report.toolNames.contains("calc.sub"), "\(report.toolNames)")
        let added = try #require(report.call(0)["result"])
        #expect(added["structuredContent"] == ["result": 3], "\(added)")
        #expect(added["resultType"]?.stringValue == "complete")
        #expect(added["_meta"]?["io.modelcontextprotocol/serverInfo"]?["name"]?.stringValue == "llmos", "\(added)")
        #expect(report.call(1)["result"]?["isError"]?.boolValue == true)
        #expect(report.callText(1).contains("calc.sub: denied by --deny tool.call=calc.sub"), "\(report.callText(1))")
        #expect(report.call(2)["error"]?["code"]?.int64Value == -32602, "\(report.call(2))")
        #expect(report.call(2)["error"]?["message"]?.stringValue?.contains("did you mean calc.add?") == true)
        // Client.listen(): acknowledged with nothing honoured (the offer never changes), closed without error.
        #expect(report["listen"]?["honored"] == [:], "\(report.value)")
        #expect(report["listen"]?["events"] == [], "\(report.value)")
        if mode == "auto" {
            // The probe found 2026-07-28: server/discover's answer, with its cache hint.
            let discover = try #require(report["discover"], "\(report.value)")
            let versions = discover["supportedVersions"]?.arrayValue ?? []
            #expect(versions.first == "2026-07-28" && versions.contains("2025-11-25"), "\(discover)")
            #expect(discover["capabilities"]?["tools"]?["listChanged"]?.boolValue == false)
            #expect(discover["cacheScope"]?.stringValue == "private")
            #expect((discover["ttlMs"]?.int64Value ?? 0) > 0, "\(discover)")
            #expect(report["server_info"]?["name"]?.stringValue == "llmos", "\(report.value)")
        }
        let tail = try llmos.run(["audit", "tail", "--json", "--audit-log", audit])
        let records = try JSON.parse(tail.stdout).arrayValue ?? []
        #expect(records.contains { $0["resource"]?.stringValue == "calc.sub" && $0["decision"]?.stringValue == "deny"
            && $0["rule"]?.stringValue == "--deny tool.call=calc.sub" }, "\(tail.stdout)")
        #expect(records.contains { $0["resource"]?.stringValue == "calc.add" && $0["outcome"]?.stringValue == "ok" })
    }

    @Test func serverDiscoverAndTheEnvelopeOnRawLines() throws {
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
            RawSession.modern(id: 2, "server/discover", version: "2099-01-01"),
            RawSession.modern(id: 3, "tools/list"),
            #"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            RawSession.modern(id: 5, "ping"),
            RawSession.modern(id: 6, "tools/call", #""name":"calc.add","arguments":{"a":2,"b":3}"#),
            RawSession.initialize(id: 7),
            #"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#,
            RawSession.modern(id: 9, "tools/list", version: "2025-11-25"),
            RawSession.modern(id: "l1", "subscriptions/listen", #""notifications":{"toolsListChanged":true}"#),
            RawSession.modern(id: "l2", "subscriptions/listen", #""notifications":{}"#),
            #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"l2"}}"#,
            RawSession.modern(id: 10, "subscriptions/listen"),
        ]
        let (messages, result) = try RawSession.run(llmos, lines: lines)
        #expect(result.status == 0, "\(result.stderr)")
        func answer(_ id: JSONValue) -> JSONValue? { messages.first { $0["id"] == id && $0["method"] == nil } }
        func error(_ id: JSONValue) -> (code: Int64, message: String, data: JSONValue?)? {
            answer(id)?["error"].map { ($0["code"]?.int64Value ?? 0, $0["message"]?.stringValue ?? "", $0["data"]) }
        }
        // A probe without the envelope is answered too, and chooses no era.
        let discover = try #require(answer(1)?["result"], "\(messages)")
        #expect(discover["supportedVersions"] == ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"], "\(discover)")
        #expect(discover["resultType"]?.stringValue == "complete")
        #expect(discover["ttlMs"]?.int64Value == 60000 && discover["cacheScope"]?.stringValue == "private", "\(discover)")
        #expect(discover["_meta"]?["io.modelcontextprotocol/serverInfo"]?["name"]?.stringValue == "llmos")
        #expect(discover["instructions"]?.stringValue?.isEmpty == false)
        let unsupported = try #require(error(2), "\(messages)")
        #expect(unsupported.code == -32022)
        #expect(unsupported.data?["requested"]?.stringValue == "2099-01-01")
        #expect(unsupported.data?["supported"]?.arrayValue?.contains("2026-07-28") == true, "\(unsupported)")
        let listed = try #require(answer(3)?["result"], "\(messages)")
        #expect(listed["tools"]?.arrayValue?.contains { $0["name"]?.stringValue == "calc.add" } == true)
        #expect(listed["resultType"]?.stringValue == "complete" && listed["ttlMs"] != nil && listed["cacheScope"] != nil, "\(listed)")
        #expect(error(4)?.code == -32602)
        #expect(error(4)?.message.contains("io.modelcontextprotocol/clientCapabilities") == true, "\(String(describing: error(4)))")
        #expect(error(5)?.code == -32601, "ping is not part of 2026-07-28")
        #expect(answer(6)?["result"]?["structuredContent"] == ["result": 5], "\(messages)")
        // The session speaks 2026-07-28 now: initialize is refused with the revisions spoken, a bare request too.
        #expect(error(7)?.code == -32022, "\(messages)")
        #expect(error(7)?.data?["supported"]?.arrayValue?.contains("2025-11-25") == true)
        #expect(error(8)?.code == -32602, "\(messages)")
        #expect(error(9)?.code == -32022, "2025-11-25 is spoken only through initialize")
        // subscriptions/listen: acknowledged first, nothing honoured; a cancelled one ends without
        // a result, an open one ends with its result when the client closes its end.
        let acks = messages.filter { $0["method"]?.stringValue == "notifications/subscriptions/acknowledged" }
        let l1 = acks.first { $0["params"]?["_meta"]?["io.modelcontextprotocol/subscriptionId"] == "l1" }
        #expect(l1?["params"]?["notifications"] == [:], "\(acks)")
        #expect(acks.count == 2, "\(acks)")
        let closed = try #require(answer("l1")?["result"], "\(messages)")
        #expect(closed["_meta"]?["io.modelcontextprotocol/subscriptionId"] == "l1", "\(closed)")
        #expect(closed["resultType"]?.stringValue == "complete")
        #expect(answer("l2") == nil, "a cancelled subscription has no result: \(messages)")
        #expect(error(10)?.code == -32602, "listen without params.notifications")
        #expect(error(10)?.message.contains("params.notifications") == true)
        let ackIndex = try #require(messages.firstIndex { $0 == l1 })
        let resultIndex = try #require(messages.firstIndex { $0["id"] == "l1" })
        #expect(ackIndex < resultIndex)
    }

    @Test func aSessionStartedWithInitializeRefusesTheEnvelopeButAnswersDiscover() throws {
        let lines = [
            RawSession.initialize(id: 1),
            RawSession.modern(id: 2, "tools/list"),
            RawSession.modern(id: 3, "server/discover"),
            #"{"jsonrpc":"2.0","id":4,"method":"subscriptions/listen","params":{"notifications":{}}}"#,
            RawSession.initialize(id: 5, version: "2026-07-28"),
        ]
        let (messages, result) = try RawSession.run(llmos, lines: lines)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(messages.first { $0["id"] == 1 }?["result"]?["protocolVersion"]?.stringValue == "2025-11-25")
        let refused = messages.first { $0["id"] == 2 }?["error"]
        #expect(refused?["code"]?.int64Value == -32600, "\(messages)")
        #expect(refused?["message"]?.stringValue?.contains("started with initialize") == true)
        #expect(messages.first { $0["id"] == 3 }?["result"]?["supportedVersions"]?.arrayValue?.isEmpty == false, "\(messages)")
        #expect(messages.first { $0["id"] == 4 }?["error"]?["code"]?.int64Value == -32601, "\(messages)")
        // initialize asking for 2026-07-28 (which has none) gets the latest handshake revision.
        let (fresh, _) = try RawSession.run(llmos, lines: [RawSession.initialize(id: 1, version: "2026-07-28")])
        #expect(fresh.first { $0["id"] == 1 }?["result"]?["protocolVersion"]?.stringValue == "2025-11-25", "\(fresh)")
    }

    // MARK: Raw protocol, bad paths

    @Test func protocolMistakesAreJSONRPCErrorsAndTheSessionGoesOn() throws {
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"#,
            #"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#,
            #"{"jsonrpc":"2.0","id":6,"method":"resources/list"}"#,
            #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"calc.add","arguments":[1,2]}}"#,
            #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#,
            #"{"jsonrpc":"1.0","id":9,"method":"ping"}"#,
            #"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{"cursor":"page2"}}"#,
            #"{"jsonrpc":"2.0","id":11,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
            #"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"calc.add","arguments":{"a":2,"b":3}}}"#,
        ]
        let (messages, result) = try RawSession.run(llmos, lines: lines)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(messages.allSatisfy { $0["jsonrpc"]?.stringValue == "2.0" })
        func error(_ id: JSONValue) -> (code: Int64, message: String)? {
            messages.first { $0["id"] == id }?["error"].map { ($0["code"]?.int64Value ?? 0, $0["message"]?.stringValue ?? "") }
        }
        #expect(error(1)?.code == -32600)
        #expect(error(1)?.message.contains("before initialize") == true)
        #expect(messages.first { $0["id"] == 2 }?["result"]?["protocolVersion"]?.stringValue == "2025-11-25")
        #expect(messages.first { $0["id"] == 3 }?["result"] == [:])
        let parseErrors = messages.filter { $0["id"] == JSONValue.null && $0["error"]?["code"]?.int64Value == -32700 }
        #expect(parseErrors.count == 1)
        #expect(parseErrors.first?["error"]?["message"]?.stringValue?.contains("one JSON-RPC 2.0 object per line") == true)
        #expect(messages.contains { $0["id"] == JSONValue.null && $0["error"]?["message"]?.stringValue?.contains("batch") == true })
        #expect(error(6)?.code == -32601)
        #expect(error(6)?.message.contains("tools/list and tools/call") == true)
        #expect(error(7)?.code == -32602)
        #expect(error(7)?.message.contains("arguments must be an object") == true)
        #expect(error(8)?.message.contains("params.name") == true)
        #expect(error(9)?.message.contains("jsonrpc must be \"2.0\"") == true)
        #expect(error(10)?.message.contains("cursor") == true)
        #expect(error(11)?.message.contains("already") == true)
        #expect(messages.first { $0["id"] == 12 }?["result"]?["structuredContent"] == ["result": 5])
    }

    @Test func anOversizedMessageIsRefusedUnreadAndNamesTheLimit() throws {
        let big = #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"text.count","arguments":{"text":""#
            + String(repeating: "x", count: 5000) + #""}}}"#
        let lines = [RawSession.initialize(id: 1), big, #"{"jsonrpc":"2.0","id":3,"method":"ping"}"#]
        let (messages, result) = try RawSession.run(llmos, lines: lines, arguments: ["--max-message-bytes", "2048"])
        #expect(result.status == 0, "\(result.stderr)")
        let refusal = try #require(messages.first { $0["id"] == JSONValue.null })
        let message = refusal["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("over this server's limit of 2048 bytes"), "\(message)")
        #expect(message.contains("--max-message-bytes"), "\(message)")
        #expect(!messages.contains { $0["id"] == 2 })
        #expect(messages.first { $0["id"] == 3 }?["result"] == [:])
    }

    @Test func anOlderRevisionIsSpokenWhenAskedAndAnUnknownOneGetsTheLatest() throws {
        let call = #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"calc.add","arguments":{"a":1,"b":1}}}"#
        let (old, _) = try RawSession.run(llmos, lines: [RawSession.initialize(id: 1, version: "2025-03-26"), call])
        #expect(old.first { $0["id"] == 1 }?["result"]?["protocolVersion"]?.stringValue == "2025-03-26")
        let result = try #require(old.first { $0["id"] == 2 }?["result"])
        #expect(result["structuredContent"] == nil, "structuredContent came with 2025-06-18")
        #expect(result["content"]?[0]?["text"]?.stringValue == #"{"result":2}"#)
        let (future, _) = try RawSession.run(llmos, lines: [RawSession.initialize(id: 1, version: "2099-01-01")])
        #expect(future.first { $0["id"] == 1 }?["result"]?["protocolVersion"]?.stringValue == "2025-11-25")
    }

    @Test func aSlowCallDoesNotHoldUpOthersAndACancelledCallIsNotAnswered() throws {
        let drivers = try FixtureDriver.install("misbehave", in: llmos.home)
        let lines = [
            RawSession.initialize(id: 1),
            // Sleeps a second, ignoring cancellation (misbehave is serialized: the next spin waits for it).
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"misbehave.spin","arguments":{"max_ms":1000}}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"calc.add","arguments":{"a":1,"b":1}}}"#,
            #"{"jsonrpc":"2.0","id":"five","method":"tools/call","params":{"name":"misbehave.spin","arguments":{"honour_cancel":true}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"five","reason":"test"}}"#,
        ]
        let (messages, result) = try RawSession.run(llmos, lines: lines, arguments: ["--drivers", drivers])
        #expect(result.status == 0, "\(result.stderr)")
        let order = messages.compactMap { $0["id"] }
        let slow = try #require(order.firstIndex(of: 2), "\(messages)")
        #expect(try #require(order.firstIndex(of: 3)) < slow, "\(order)")
        #expect(try #require(order.firstIndex(of: 4)) < slow, "\(order)")
        #expect(messages.first { $0["id"] == 2 }?["result"]?["isError"]?.boolValue == false, "\(messages)")
        #expect(!order.contains("five"), "a cancelled request gets no answer: \(messages)")
    }

    @Test func serveWithoutATransportAndShowToolsAreForTheOperator() throws {
        let bare = try llmos.run(["serve"])
        #expect(bare.status != 0)
        #expect(bare.stderr.contains("--mcp"), "\(bare.stderr)")
        let shown = try llmos.run(["serve", "--mcp", "--show-tools", "--json", "--tools", "calc.*", "--deny", "tool.call=calc.div"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let rows = try JSON.parse(shown.stdout).arrayValue ?? []
        #expect(rows.contains { $0["name"]?.stringValue == "calc.add" && $0["offered"]?.boolValue == true })
        #expect(rows.contains { $0["name"]?.stringValue == "calc.div" && $0["offered"]?.boolValue == false
            && $0["decision"]?.stringValue?.contains("--deny tool.call=calc.div") == true })
        let badNames = try llmos.run(["serve", "--mcp", "--tool-names", "camel"])
        #expect(badNames.status != 0)
        #expect(badNames.stderr.contains("dotted"), "\(badNames.stderr)")
    }
}

// MARK: - Helpers

/// What the Python client reported (Tests/Fixtures/mcp/client.py).
private struct ClientReport {
    let value: JSONValue
    subscript(key: String) -> JSONValue? { value[key] }
    var toolNames: [String] { value["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [] }
    func tool(_ name: String) -> JSONValue? { value["tools"]?.arrayValue?.first { $0["name"]?.stringValue == name } }
    func call(_ index: Int) -> JSONValue { value["calls"]?[index] ?? .null }
    func callText(_ index: Int) -> String { call(index)["result"]?["content"]?[0]?["text"]?.stringValue ?? "" }
}

/// The official MCP client in a virtual environment of its own, set up once per test
/// run: `<scratch>/mcp-venv` (beside the build, as `make bench` keeps `.build/mcp-venv`),
/// or `$LLMOS_MCP_VENV`. Installing prints pip's progress on standard error.
enum MCPClient {
    static let requirements = LLMOS.repoRoot + "/Benchmarks/mcp-reference/requirements.txt"
    static let script = LLMOS.repoRoot + "/Tests/Fixtures/mcp/client.py"
    static let httpRequirements = LLMOS.repoRoot + "/Tests/Fixtures/http/requirements.txt"

    static let venv: String = {
        if let dir = ProcessInfo.processInfo.environment["LLMOS_MCP_VENV"], !dir.isEmpty { return dir }
        // <scratch>/<triple>/debug/llmos → <scratch>/mcp-venv
        let debug = URL(fileURLWithPath: LLMOS.executable).deletingLastPathComponent()
        return debug.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("mcp-venv").path
    }()

    /// The venv's python with the pinned `mcp`, or why there is none.
    static let python: Result<String, SetupError> = {
        let python = venv + "/bin/python"
        let pinned = (try? String(contentsOfFile: requirements, encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("mcp==") }.map { String($0.dropFirst(5)) } ?? ""
        // The openai client too (ServeHTTPTests), in the same venv: one setup for both suites.
        let openai = (try? String(contentsOfFile: httpRequirements, encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("openai==") }.map { String($0.dropFirst(8)) } ?? ""
        let check = "import importlib.metadata as m, sys; sys.exit(0 if m.version('mcp') == '\(pinned)' and m.version('openai') == '\(openai)' else 1)"
        if FileManager.default.isExecutableFile(atPath: python), (try? run(python, ["-c", check], quiet: true)) == 0 { return .success(python) }
        FileHandle.standardError.write(Data("ServeMCPTests: installing the MCP Python SDK (mcp==\(pinned)) and openai==\(openai) into \(venv)\n".utf8))
        do {
            if !FileManager.default.isExecutableFile(atPath: python) {
                guard try run("/usr/bin/env", ["python3", "-m", "venv", venv]) == 0 else {
                    return .failure(SetupError(message: "python3 -m venv \(venv) failed: install python3-venv (apt-get install python3-venv), or point LLMOS_MCP_VENV at a venv with mcp==\(pinned)"))
                }
            }
            guard try run(python, ["-m", "pip", "install", "--progress-bar", "on", "-r", requirements, "-r", httpRequirements]) == 0 else {
                return .failure(SetupError(message: "pip install -r \(requirements) into \(venv) failed (see its output above): PyPI must be reachable, or set LLMOS_MCP_VENV to a venv with mcp==\(pinned)"))
            }
        } catch {
            return .failure(SetupError(message: "could not run python3 to set up \(venv): \(error)"))
        }
        return .success(python)
    }()

    struct SetupError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Runs a program with its output on our standard error (pip's progress), or silenced.
    static func run(_ program: String, _ arguments: [String], quiet: Bool = false) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let sink = quiet ? FileHandle(forWritingAtPath: "/dev/null")! : FileHandle.standardError
        process.standardOutput = sink
        process.standardError = sink
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The client starts `llmos serve --mcp ARGS` itself, lists the tools, makes `calls`.
    /// `mode` is the SDK Client's (`legacy`: ClientSession and initialize); `extra` joins
    /// the scenario (`"listen": true`).
    fileprivate static func scenario(_ llmos: LLMOS, serverArguments: [String] = [], calls: [(String, JSONValue)],
                                     mode: String = "legacy", extra: JSONObject = [:]) throws -> ClientReport {
        let python = try MCPClient.python.get()
        var members: JSONObject = ["calls": .array(calls.map { ["name": .string($0.0), "arguments": $0.1] })]
        for (key, value) in extra { members[key] = value }
        let scenario = JSONValue.object(members)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--mode", mode, "--", LLMOS.executable, "serve", "--mcp", "--no-audit-log"].filter {
            !(serverArguments.contains("--audit-log") && $0 == "--no-audit-log")
        } + serverArguments
        process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = llmos.home
        environment["XDG_DATA_HOME"] = nil
        environment["XDG_CONFIG_HOME"] = nil
        environment["LLMOS_DRIVER_PATH"] = nil
        environment["NO_COLOR"] = "1"
        process.environment = environment
        // The client's and the server's stderr go to a file: a full pipe would stall them.
        let errorsFile = llmos.home + "/client-\(UUID().uuidString.prefix(8)).stderr"
        _ = FileManager.default.createFile(atPath: errorsFile, contents: nil)
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsFile))
        defer { try? errors.close() }
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(scenario.serialized().utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errorsFile, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw SetupError(message: "client.py exited \(process.terminationStatus):\n\(stderr)")
        }
        do {
            return ClientReport(value: try JSON.parse(String(decoding: out, as: UTF8.self)))
        } catch {
            throw SetupError(message: "client.py printed no JSON (\(error)):\n\(String(decoding: out, as: UTF8.self))\n\(stderr)")
        }
    }
}

/// A fixture driver (Tests/Fixtures/drivers), built with plain cc into a driver folder
/// of its own: `misbehave` (its `spin` tool is a call that takes as long as asked) or
/// `echo` (its `progress` tool reports progress 0, 0.5 and 1 before it answers).
enum FixtureDriver {
    static func install(_ name: String, in home: String) throws -> String {
        let dir = home + "/\(name)-drivers"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let fixtures = LLMOS.repoRoot + "/Tests/Fixtures/drivers"
        let built = try shell("cc -std=c11 -shared -fPIC -O1 -I '\(LLMOS.repoRoot)/sdk/include' -o '\(dir)/lib\(name).so' '\(fixtures)/\(name).c' -lpthread", in: dir)
        guard built.status == 0 else { throw MCPClient.SetupError(message: "cc \(name).c failed: \(built.output)") }
        try? FileManager.default.removeItem(atPath: dir + "/\(name).yaml")
        try FileManager.default.copyItem(atPath: fixtures + "/\(name).yaml", toPath: dir + "/\(name).yaml")
        return dir
    }
}

/// JSON-RPC lines written straight to `llmos serve --mcp`: everything is written, stdin
/// closed, and every line the server wrote is read back (it answers what is in flight
/// before it exits).
private enum RawSession {
    /// A 2026-07-28 request: the `_meta` envelope and `params` members given as JSON text.
    static func modern(id: JSONValue, _ method: String, _ params: String = "", version: String = "2026-07-28") -> String {
        let meta = #""_meta":{"io.modelcontextprotocol/protocolVersion":"\#(version)","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}"#
        return #"{"jsonrpc":"2.0","id":\#(id.serialized()),"method":"\#(method)","params":{\#(params.isEmpty ? meta : params + "," + meta)}}"#
    }

    static func initialize(id: Int, version: String = "2025-11-25") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"initialize","params":{"protocolVersion":"\#(version)","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#
    }

    static func run(_ llmos: LLMOS, lines: [String], arguments: [String] = []) throws
        -> (messages: [JSONValue], result: (status: Int32, stdout: String, stderr: String)) {
        let result = try llmos.run(["serve", "--mcp", "--no-audit-log"] + arguments, stdin: lines.joined(separator: "\n") + "\n")
        // Nothing but protocol on stdout: every line is one JSON-RPC message.
        let messages = try result.stdout.split(separator: "\n").map { try JSON.parse(String($0)) }
        return (messages, result)
    }
}
