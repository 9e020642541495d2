import Foundation
import LLMOSJSON
import LLMOSNet
import Synchronization
import Testing
@testable import LLMOSKernel

// The cpu drivers openai and anthropic (Plugins/openai, Plugins/anthropic, Plugins/ModelKit),
// loaded with dlopen through the kernel, against Tests/Fixtures/models/server.py: a fake model
// server speaking the OpenAI and the Anthropic protocol on loopback. Their HTTP goes through
// net.fetch / net.stream.* with the policy granting exactly that server and the key's variable.

/// The key the tests' server accepts. Never expected in any output, log or audit record.
let modelTestKey = "sk-llmos-test-7f3a9c-SECRET-d41d8cd98f00"
private let keyVariable = "LLMOS_TEST_MODEL_API_KEY"
private let keyIsSet: Bool = {
    setenv(keyVariable, modelTestKey, 1)
    return true
}()

/// Tests/Fixtures/models/server.py in a child process; it exits when our end of its stdin closes.
final class ModelTestServer {
    private let server: FixtureServer
    var port: Int { server.port }

    init(tokenize: Bool = true) throws {
        server = try FixtureServer("Tests/Fixtures/models/server.py", ["--key", modelTestKey] + (tokenize ? [] : ["--no-tokenize"]))
    }

    var origin: String { "http://127.0.0.1:\(port)" }
    var base: String { origin + "/v1" }

    /// How often the server saw each last user message.
    func requests(_ message: String) throws -> Int {
        let response = try NetFetcher { _ in .allow }.fetch(FetchRequest(url: origin + "/stats"))
        let value = try JSON.parse(response.body)
        return Int(value["requests"]?[message]?.int64Value ?? 0)
    }

    /// How often a client hung up on the "forever" stream of each message.
    func closed(_ message: String) throws -> Int {
        let response = try NetFetcher { _ in .allow }.fetch(FetchRequest(url: origin + "/stats"))
        return Int(try JSON.parse(response.body)["closed"]?[message]?.int64Value ?? 0)
    }

    func stop() { server.stop() }
}

/// A kernel with one model driver loaded, granted net.connect to the server and env for the key.
final class ModelBench {
    let server: ModelTestServer
    let kernel: Kernel
    let log = MemoryLogSink()
    let auditPath: String
    let audit: SQLiteAuditLog
    let driver: String

    init(_ driver: String, server: ModelTestServer, config: [String: JSONValue] = [:], grantEnv: Bool = true, grantNet: Bool = true) throws {
        _ = keyIsSet
        self.driver = driver
        self.server = server
        auditPath = Paths.temporaryDirectory("model-audit") + "/audit.sqlite3"
        audit = try SQLiteAuditLog(path: auditPath)
        var rules: [PolicyRule] = []
        if grantNet { rules.append(try PolicyParser.rule(fromFlag: "net.connect=\(server.origin)", action: .allow)) }
        if grantEnv { rules.append(try PolicyParser.rule(fromFlag: "env=\(keyVariable)", action: .allow)) }
        let policy = Policy.builtInDefault.adding(rules)
        var full: JSONObject = ["base_url": .string(server.base), "model": driver == "openai" ? "test-model" : "claude-test",
                                "api_key_env": .string(keyVariable), "retry_backoff_ms": 0]
        for (k, v) in config { full[k] = v }
        let (log, audit, fullConfig) = (self.log, self.audit, full)
        kernel = makeKernel(log: log) { c in
            c.broker = CapabilityBroker(policy: policy)
            c.network = CurlNetworkService()
            c.audit = audit
            c.driverConfig = [driver: .object(fullConfig)]
        }
        try kernel.load(manifestAt: Paths.manifests + "/\(driver).yaml")
    }

    func call(_ op: String, _ input: JSONValue, events: (@Sendable (String) -> Void)? = nil) throws -> JSONValue {
        try JSON.parse(try kernel.call("\(driver).\(op)", input: input, options: CallOptions(events: events)).output)
    }

    /// A complete call's output and the events it streamed.
    func stream(_ input: JSONValue) throws -> (JSONValue, [JSONValue]) {
        let events = Mutex<[String]>([])
        var object = input.objectValue ?? JSONObject()
        object["stream"] = true
        let output = try call("complete", .object(object)) { event in events.withLock { $0.append(event) } }
        return (output, try events.withLock { $0 }.map { try JSON.parse($0) })
    }

    /// Everything the audit database holds, as bytes of text (the main file and its WAL).
    func auditBytes() throws -> String {
        try audit.flush()
        var text = ""
        for suffix in ["", "-wal"] {
            if let data = FileManager.default.contents(atPath: auditPath + suffix) { text += String(decoding: data, as: UTF8.self) }
        }
        return text
    }

    var logText: String { log.entries.map(\.description).joined(separator: "\n") }
}

func user(_ text: String) -> JSONValue { ["messages": [["role": "user", "content": .string(text)]]] }

func withTools(_ text: String) -> JSONValue {
    ["messages": [["role": "user", "content": .string(text)]],
     "tools": [["name": "calc.add", "description": "Add two numbers.",
                "input_schema": ["type": "object", "properties": ["a": ["type": "number"], "b": ["type": "number"]], "required": ["a", "b"], "additionalProperties": false]],
               ["name": "text.count", "description": "Count.", "input_schema": ["type": "object"]]]]
}

/// A port nothing listens on.
private func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    close(fd)
    return Int(UInt16(bigEndian: address.sin_port))
}

@Suite("openai driver", .serialized)
struct OpenAIDriverTests {
    let server: ModelTestServer
    init() throws { server = try ModelTestServer() }

    @Test func plainCompletion() throws {
        let bench = try ModelBench("openai", server: server)
        let output = try bench.call("complete", user("hello"))
        #expect(output["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(output["message"]?["tool_calls"]?.arrayValue?.isEmpty == true)
        #expect(output["finish_reason"]?.stringValue == "stop")
        #expect(output["usage"]?["input_tokens"]?.int64Value == 10)
        #expect(output["model"]?.stringValue == "test-model")
    }

    @Test func streamingDeliversDeltasThatAddUpToTheOutput() throws {
        let bench = try ModelBench("openai", server: server)
        let (output, events) = try bench.stream(user("hello stream"))
        let text = events.filter { $0["type"]?.stringValue == "text" }.compactMap { $0["delta"]?.stringValue }.joined()
        #expect(events.filter { $0["type"]?.stringValue == "text" }.count > 1)
        #expect(text == "Hello from the fake model.")
        #expect(output["message"]?["content"]?.stringValue == text)
        #expect(events.last?["type"]?.stringValue == "done")
        #expect(events.last?["finish_reason"]?.stringValue == "stop")
        #expect(output["usage"]?["output_tokens"]?.int64Value == 6)
    }

    @Test func toolCallsNamedAsTheKernelKnowsThem() throws {
        let bench = try ModelBench("openai", server: server)
        let one = try bench.call("complete", withTools("scenario:tool"))
        let calls = one["message"]?["tool_calls"]?.arrayValue ?? []
        #expect(calls.count == 1)
        #expect(calls.first?["name"]?.stringValue == "calc.add")
        #expect(calls.first?["arguments"] == ["a": 1, "b": 2])
        #expect(one["finish_reason"]?.stringValue == "tool_calls")
        #expect(one["message"]?["content"]?.isNull == true)

        let parallel = try bench.call("complete", withTools("scenario:parallel"))
        let names = (parallel["message"]?["tool_calls"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        #expect(names == ["calc.add", "text.count"])

        let (streamed, events) = try bench.stream(withTools("scenario:parallel streamed"))
        #expect(streamed["message"]?["tool_calls"]?[1]?["arguments"] == ["a": 3, "b": 4])
        let toolEvents = events.filter { $0["type"]?.stringValue == "tool_call" }
        #expect(Set(toolEvents.compactMap { $0["index"]?.int64Value }) == [0, 1])
        #expect(toolEvents.first?["name"]?.stringValue == "calc.add")
        let args0 = toolEvents.filter { $0["index"]?.int64Value == 0 }.compactMap { $0["arguments_delta"]?.stringValue }.joined()
        #expect(try JSON.parse(args0) == ["a": 1, "b": 2])

        let bad = try bench.call("complete", withTools("scenario:badargs"))
        #expect(bad["message"]?["tool_calls"]?[0]?["raw_arguments"]?.stringValue == "{not json")
        #expect(bad["message"]?["tool_calls"]?[0]?["arguments"] == .object([:]))
    }

    @Test func errorsAPersonUnderstands() throws {
        let wrongKey = "sk-wrong-key-0123456789-abcdef"
        let bad = try ModelBench("openai", server: server, config: ["api_key": .string(wrongKey)])
        let e401 = expectError { try bad.call("complete", user("hello")) }
        #expect(e401.code == .permissionDenied)
        #expect(e401.message.contains("HTTP 401") && e401.message.contains("API key was refused"))
        #expect(!e401.message.contains(wrongKey), "the key the server echoed must be redacted: \(e401.message)")

        let noKey = try ModelBench("openai", server: server, grantEnv: false)
        let eNoKey = expectError { try noKey.call("complete", user("hello")) }
        #expect(eNoKey.message.contains("no API key was sent") && eNoKey.message.contains(keyVariable))

        let model = try ModelBench("openai", server: server, config: ["model": "gpt-nonexistent"])
        let e404 = expectError { try model.call("complete", user("hello")) }
        #expect(e404.code == .notFound)
        #expect(e404.message.contains("unknown model \"gpt-nonexistent\""))
        let e404s = expectError { try model.stream(user("hello")) }
        #expect(e404s.code == .notFound && e404s.message.contains("unknown model \"gpt-nonexistent\""))

        let path = try ModelBench("openai", server: server, config: ["base_url": .string(server.origin + "/nope/v1")])
        let ePath = expectError { try path.call("complete", user("hello")) }
        #expect(ePath.code == .notFound)
        #expect(ePath.message.contains("no such endpoint") && ePath.message.contains("base_url"))

        let flaky = try ModelBench("openai", server: server, config: ["retries": 1])
        let e500 = expectError { try flaky.call("complete", user("scenario:500 once")) }
        #expect(e500.code == .unavailable)
        #expect(e500.message.contains("HTTP 500") && e500.message.contains("after 2 attempts") && e500.message.contains("internal failure"))
        #expect(try server.requests("scenario:500 once") == 2)

        let port = unusedPort()
        // Granted for that port, so the refusal is the server's absence, not the policy.
        let open = try ModelBenchWithGrant(port: port, server: server)
        let eRefused = expectError { try open.call("complete", user("hello")) }
        #expect(eRefused.code == .unavailable)
        #expect(eRefused.message == "openai.complete: openai: no server at http://127.0.0.1:\(port) — is llama-server running?")

        let denied = try ModelBench("openai", server: server, grantNet: false)
        let eDenied = expectError { try denied.call("complete", user("hello")) }
        #expect(eDenied.code == .permissionDenied)
        #expect(eDenied.message.contains("--allow net.connect=\(server.origin)"))
    }

    @Test func rateLimitIsRetriedAfterRetryAfter() throws {
        let bench = try ModelBench("openai", server: server)
        let message = "scenario:429 \(UUID().uuidString)"
        let output = try bench.call("complete", user(message))
        #expect(output["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(try server.requests(message) == 2)
        #expect(bench.logText.contains("HTTP 429") && bench.logText.contains("retrying in 1000 ms (Retry-After)"))

        let dated = "scenario:429date \(UUID().uuidString)"
        #expect(try bench.call("complete", user(dated))["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(try server.requests(dated) == 2)

        let stubborn = try ModelBench("openai", server: server, config: ["retries": 0])
        let e = expectError { try stubborn.call("complete", user("scenario:429forever")) }
        #expect(e.code == .unavailable && e.message.contains("rate limiting (HTTP 429)"))

        let patient = try ModelBench("openai", server: server, config: ["max_retry_after_ms": 10])
        let e2 = expectError { try patient.call("complete", user("scenario:429forever no wait")) }
        #expect(e2.message.contains("asks to retry after 1 s"))
    }

    @Test func droppedConnectionAndSlowServer() throws {
        let bench = try ModelBench("openai", server: server)
        let (output, events) = try bench.stream(user("scenario:drop"))
        #expect(output["finish_reason"]?.stringValue == "error")
        #expect(output["message"]?["content"]?.stringValue == "Hello from ")
        #expect(events.last?["finish_reason"]?.stringValue == "error")
        #expect(bench.logText.contains("closed before the response ended"))

        // The caller cancels while the reply streams; the call's deadline passes while it streams.
        let slowStream: JSONValue = ["stream": true, "messages": [["role": "user", "content": "scenario:slow"]]]
        let token = CancellationToken()
        cancel(token, after: 200)
        let cancelled = expectError { try bench.kernel.call("openai.complete", input: slowStream, options: CallOptions(cancellation: token)) }
        #expect(cancelled.code == .cancelled)
        let late = expectError { try bench.kernel.call("openai.complete", input: slowStream, options: CallOptions(timeoutMs: 300)) }
        #expect(late.code == .timeout)

        let impatient = try ModelBench("openai", server: server, config: ["timeout_ms": 500, "read_timeout_ms": 300, "retries": 0])
        let whole = expectError { try impatient.call("complete", user("scenario:slow")) }
        #expect(whole.code == .timeout)
        #expect(whole.message.contains("did not answer in time"))
        let streamed = expectError { try impatient.stream(user("scenario:slow")) }
        #expect(streamed.code == .timeout)
        #expect(streamed.message.contains("read_timeout_ms"))
    }

    @Test func countTokensEmbedInfo() throws {
        let bench = try ModelBench("openai", server: server)
        let counted = try bench.call("count_tokens", ["text": "one two three four"])
        #expect(counted == ["tokens": 4, "estimated": false])
        let conversation = try bench.call("count_tokens", user("a b c"))
        #expect(conversation["estimated"] == false)

        let plain = try ModelTestServer(tokenize: false)
        let estimating = try ModelBench("openai", server: plain)
        let estimate = try estimating.call("count_tokens", ["text": "one two three four"])
        #expect(estimate["estimated"] == true)
        #expect((estimate["tokens"]?.int64Value ?? 0) > 0)

        let embedded = try bench.call("embed", ["input": ["a", "bbb"]])
        #expect(embedded["dimensions"]?.int64Value == 4)
        #expect(embedded["vectors"]?[0]?[0]?.doubleValue == 1)
        #expect(embedded["vectors"]?[1]?[0]?.doubleValue == 3)

        let info = try bench.call("info", [:])
        #expect(info["context_length"]?.int64Value == 4096)
        #expect(info["model"]?.stringValue == "test-model")
        #expect(info["native_tool_calls"] == true)
        #expect(info["streaming"] == true)
    }

    @Test func constrainedToolCalls() throws {
        let bench = try ModelBench("openai", server: server, config: ["tool_mode": "constrained"])
        let info = try bench.call("info", [:])
        #expect(info["native_tool_calls"] == false)
        #expect(info["tool_mode"]?.stringValue == "constrained")

        let call = try bench.call("complete", withTools("what is 1 + 2?"))
        #expect(call["message"]?["tool_calls"]?[0]?["name"]?.stringValue == "calc.add")
        #expect(call["message"]?["tool_calls"]?[0]?["arguments"] == ["a": 1, "b": 2])
        #expect(call["finish_reason"]?.stringValue == "tool_calls")

        let message = "scenario:constrained-bad \(UUID().uuidString)"
        let repaired = try bench.call("complete", withTools(message))
        #expect(repaired["message"]?["tool_calls"]?[0]?["arguments"] == ["a": 1, "b": 2])
        #expect(bench.logText.contains("did not validate"))

        let answer = try bench.call("complete", withTools("scenario:constrained-answer"))
        #expect(answer["message"]?["content"]?.stringValue == "42")
        #expect(answer["message"]?["tool_calls"]?.arrayValue?.isEmpty == true)

        // auto: native first; a server that refuses tools gets constrained calls instead.
        let auto = try ModelBench("openai", server: server)
        let fallback = try auto.call("complete", withTools("scenario:notools"))
        #expect(fallback["message"]?["tool_calls"]?[0]?["name"]?.stringValue == "calc.add")
        #expect(auto.logText.contains("using constrained tool calls"))
    }

    @Test func theKeyAppearsNowhere() throws {
        let bench = try ModelBench("openai", server: server)
        var seen: [String] = []
        seen.append(try bench.call("complete", user("hello")).serialized())
        seen.append(try bench.stream(withTools("scenario:parallel")).0.serialized())
        seen.append(expectError { try bench.call("complete", user("scenario:500")) }.message)
        seen.append(try bench.call("embed", ["input": ["x"]]).serialized())
        seen.append(try bench.call("info", [:]).serialized())
        let wrong = try ModelBench("openai", server: server, config: ["api_key": .string(modelTestKey + "-revoked")])
        seen.append(expectError { try wrong.call("complete", user("hello")) }.message)
        for text in seen + [bench.logText, wrong.logText, try bench.auditBytes(), try wrong.auditBytes()] {
            #expect(!text.contains(modelTestKey), "the key leaked into: \(text.prefix(300))")
        }
        // The audit database does record the calls and the grants they used.
        let audit = try bench.auditBytes()
        #expect(audit.contains("net.connect") && audit.contains(server.origin) && audit.contains(keyVariable))
    }
}

/// A bench whose base_url is a port nothing listens on, with that port granted.
final class ModelBenchWithGrant {
    let kernel: Kernel
    init(port: Int, server: ModelTestServer) throws {
        _ = keyIsSet
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "net.connect=http://127.0.0.1:\(port)", action: .allow)])
        kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy)
            c.network = CurlNetworkService()
            c.driverConfig = ["openai": ["base_url": .string("http://127.0.0.1:\(port)/v1"), "model": "test-model", "retries": 0]]
        }
        try kernel.load(manifestAt: Paths.manifests + "/openai.yaml")
    }
    func call(_ op: String, _ input: JSONValue) throws -> JSONValue {
        try JSON.parse(try kernel.call("openai.\(op)", input: input).output)
    }
}

@Suite("anthropic driver", .serialized)
struct AnthropicDriverTests {
    let server: ModelTestServer
    init() throws { server = try ModelTestServer() }

    @Test func completionsStreamingAndTools() throws {
        let bench = try ModelBench("anthropic", server: server)
        let plain = try bench.call("complete", ["messages": [["role": "system", "content": "Be brief."], ["role": "user", "content": "hello"]]])
        #expect(plain["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(plain["usage"] == ["input_tokens": 12, "output_tokens": 7])
        #expect(plain["finish_reason"]?.stringValue == "stop")

        let (streamed, events) = try bench.stream(user("hello"))
        #expect(events.filter { $0["type"]?.stringValue == "text" }.compactMap { $0["delta"]?.stringValue }.joined() == "Hello from the fake model.")
        #expect(streamed["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(streamed["usage"]?["output_tokens"]?.int64Value == 7)

        let tool = try bench.call("complete", withTools("scenario:tool"))
        #expect(tool["message"]?["content"]?.stringValue == "Let me call it.")
        #expect(tool["message"]?["tool_calls"]?[0]?["name"]?.stringValue == "calc.add")
        #expect(tool["message"]?["tool_calls"]?[0]?["id"]?.stringValue == "toolu_1")
        #expect(tool["finish_reason"]?.stringValue == "tool_calls")

        let (parallel, toolEvents) = try bench.stream(withTools("scenario:parallel"))
        #expect((parallel["message"]?["tool_calls"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue } == ["calc.add", "text.count"])
        #expect(parallel["message"]?["tool_calls"]?[1]?["arguments"] == ["a": 3, "b": 4])
        #expect(Set(toolEvents.filter { $0["type"]?.stringValue == "tool_call" }.compactMap { $0["index"]?.int64Value }) == [0, 1])

        // A conversation with a tool round trip goes out as tool_use and tool_result blocks.
        let followUp: JSONValue = ["messages": [
            ["role": "user", "content": "add"],
            ["role": "assistant", "content": .null, "tool_calls": [["id": "toolu_1", "name": "calc.add", "arguments": ["a": 1, "b": 2]]]],
            ["role": "tool", "tool_call_id": "toolu_1", "content": "{\"result\":3}"]]]
        #expect(try bench.call("complete", followUp)["message"]?["content"]?.stringValue == "Hello from the fake model.")

        let unsupported = expectError { try bench.call("complete", ["messages": [["role": "user", "content": "x"]], "response_format": ["type": "json_schema", "schema": ["type": "object"]]]) }
        #expect(unsupported.code == .unsupported)
    }

    @Test func errorsRetriesAndSecrecy() throws {
        let wrong = try ModelBench("anthropic", server: server, config: ["api_key": .string(modelTestKey + "-old")])
        let e401 = expectError { try wrong.call("complete", user("hello")) }
        #expect(e401.code == .permissionDenied && e401.message.contains("HTTP 401"))

        let model = try ModelBench("anthropic", server: server, config: ["model": "claude-nope"])
        let e404 = expectError { try model.call("complete", user("hello")) }
        #expect(e404.code == .notFound && e404.message.contains("unknown model \"claude-nope\""))

        let bench = try ModelBench("anthropic", server: server, config: ["retries": 1])
        let e500 = expectError { try bench.call("complete", user("scenario:500")) }
        #expect(e500.code == .unavailable && e500.message.contains("HTTP 500"))

        let message = "scenario:429 \(UUID().uuidString)"
        #expect(try bench.stream(user(message)).0["message"]?["content"]?.stringValue == "Hello from the fake model.")
        #expect(try server.requests(message) == 2)

        let (dropped, _) = try bench.stream(user("scenario:drop"))
        #expect(dropped["finish_reason"]?.stringValue == "error")
        #expect(dropped["message"]?["content"]?.stringValue == "Hello from ")

        let counted = try bench.call("count_tokens", user("one two three"))
        #expect(counted["estimated"] == false)
        #expect((counted["tokens"]?.int64Value ?? 0) > 3)
        #expect(try bench.call("info", [:])["native_tool_calls"] == true)

        for text in [e401.message, e404.message, e500.message, wrong.logText, bench.logText, try bench.auditBytes(), try wrong.auditBytes()] {
            #expect(!text.contains(modelTestKey), "the key leaked into: \(text.prefix(300))")
        }
    }
}
