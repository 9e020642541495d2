import Foundation
import LLMOSJSON
import LLMOSNet
import Synchronization
import Testing
import LLMOSModelCache
@testable import LLMOSKernel

// The scripted driver (Plugins/scripted) and the local driver (Plugins/local), loaded with
// dlopen through the kernel like any driver. The local driver's supervision is tested
// against Tests/Fixtures/local/fake-llama-server.py (always) and against the real
// llama-server with SmolLM2 (when scripts/setup-model has been run: `make test` runs it).

// MARK: - helpers

/// A kernel with one cpu driver from manifests/ and the given configuration.
final class CPUBench: @unchecked Sendable {
    let kernel: Kernel
    let log = MemoryLogSink()
    let driver: String

    init(_ driver: String, config: JSONObject, grants: [String] = []) throws {
        self.driver = driver
        var rules: [PolicyRule] = []
        for g in grants { rules.append(try PolicyParser.rule(fromFlag: g, action: .allow)) }
        let policy = Policy.builtInDefault.adding(rules)
        let log = self.log
        kernel = makeKernel(log: log) { c in
            c.broker = CapabilityBroker(policy: policy)
            c.network = CurlNetworkService()
            c.driverConfig = [driver: .object(config)]
        }
        try kernel.load(manifestAt: Paths.manifests + "/\(driver).yaml")
    }

    func call(_ op: String, _ input: JSONValue, timeoutMs: Int? = nil, events: (@Sendable (String) -> Void)? = nil) throws -> JSONValue {
        try JSON.parse(try kernel.call("\(driver).\(op)", input: input, options: CallOptions(timeoutMs: timeoutMs, events: events)).output)
    }

    func stream(_ input: JSONValue, onEvent: (@Sendable (JSONValue) -> Void)? = nil) throws -> (JSONValue, [JSONValue]) {
        let events = Mutex<[JSONValue]>([])
        var object = input.objectValue ?? JSONObject()
        object["stream"] = true
        let output = try call("complete", .object(object)) { text in
            let event = (try? JSON.parse(text)) ?? .null
            events.withLock { $0.append(event) }
            onEvent?(event)
        }
        return (output, events.withLock { $0 })
    }

    var logText: String { log.entries.map(\.description).joined(separator: "\n") }
}

private func hello(_ text: String = "hi") -> JSONValue { ["messages": [["role": "user", "content": .string(text)]]] }

private func writeScript(_ text: String, name: String = "turns.jsonl") -> String {
    let path = Paths.temporaryDirectory("script") + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}

// MARK: - scripted

@Suite("scripted driver") struct ScriptedDriverTests {
    @Test func repliesTurnByTurnInOrder() throws {
        let script = writeScript("""
        # a demo conversation
        {"text": "Hello! I can add."}
        {"tool_calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}]}

        {"text": "1 + 2 = 3", "usage": {"input_tokens": 40, "output_tokens": 7}}
        """)
        let bench = try CPUBench("scripted", config: ["script": .string(script)])
        let first = try bench.call("complete", hello())
        #expect(first["message"]?["content"]?.stringValue == "Hello! I can add.")
        #expect(first["message"]?["tool_calls"]?.arrayValue?.isEmpty == true)
        #expect(first["finish_reason"]?.stringValue == "stop")
        #expect(first["model"]?.stringValue == "scripted")

        let second = try bench.call("complete", hello("add 1 and 2"))
        #expect(second["finish_reason"]?.stringValue == "tool_calls")
        #expect(second["message"]?["content"]?.isNull == true)
        let call = second["message"]?["tool_calls"]?[0]
        #expect(call?["name"]?.stringValue == "calc.add")
        #expect(call?["id"]?.stringValue == "call_0")
        #expect(call?["arguments"] == ["a": 1, "b": 2])

        let third = try bench.call("complete", hello())
        #expect(third["usage"] == ["input_tokens": 40, "output_tokens": 7])

        let info = try bench.call("info", [:])
        #expect(info["turns"]?.int64Value == 3)
        #expect(info["next_turn"]?.int64Value == 4)

        let over = expectError { try bench.call("complete", hello()) }
        #expect(over.code == .resourceExhausted)
        #expect(over.message.contains(script))
        #expect(over.message.contains("has 3 turns"))
    }

    @Test func identicalRunsGiveIdenticalOutput() throws {
        let script = writeScript(#"[{"text": "a"}, {"tool_calls": [{"name": "text.count", "arguments": {"text": "x"}}]}, {"error": "down"}]"#, name: "turns.json")
        func run() throws -> [String] {
            let bench = try CPUBench("scripted", config: ["script": .string(script)])
            var outputs: [String] = []
            for _ in 0..<3 {
                do { outputs.append(try bench.call("complete", hello()).serialized()) } catch let e as LLMOSError { outputs.append(e.message) }
            }
            return outputs
        }
        #expect(try run() == run())
    }

    @Test func malformedToolArgumentsAndUnknownToolsComeBackAsScripted() throws {
        let bench = try CPUBench("scripted", config: ["turns": [
            ["tool_calls": [["name": "calc.add", "raw_arguments": "{\"a\": 1, \"b\": "]]],
            ["tool_calls": [["id": "x1", "name": "calc.addd", "arguments": ["a": 1]], ["name": "text.count", "arguments": [:]]]],
        ]])
        let bad = try bench.call("complete", hello())
        let call = bad["message"]?["tool_calls"]?[0]
        #expect(call?["raw_arguments"]?.stringValue == "{\"a\": 1, \"b\": ")
        #expect(call?["arguments"] == [:])
        let two = try bench.call("complete", hello())
        #expect(two["message"]?["tool_calls"]?.arrayValue?.count == 2)
        #expect(two["message"]?["tool_calls"]?[0]?["id"]?.stringValue == "x1")
        #expect(two["message"]?["tool_calls"]?[1]?["id"]?.stringValue == "call_1")
    }

    @Test func rawOutputThatBreaksTheContractIsCaughtByTheKernel() throws {
        let bench = try CPUBench("scripted", config: ["turns": [["raw_output": "this is not JSON {"], ["raw_output": "[1,2]"]]])
        let notJSON = expectError { try bench.call("complete", hello()) }
        #expect(notJSON.code == .invalidOutput)
        #expect(notJSON.message.contains("not valid JSON"))
        let array = try bench.call("complete", hello())   // JSON, but not a complete_output: the caller's to judge
        #expect(array == [1, 2])
    }

    @Test func scriptedErrorsCarryTheirCodeAndNameTheFileAndTurn() throws {
        let script = writeScript("""
        {"text": "fine"}
        {"error": {"code": "resource_exhausted", "message": "the prompt is over the context window"}}
        {"error": "the backend is down"}
        """)
        let bench = try CPUBench("scripted", config: ["script": .string(script)])
        _ = try bench.call("complete", hello())
        let exhausted = expectError { try bench.call("complete", hello()) }
        #expect(exhausted.code == .resourceExhausted)
        #expect(exhausted.message.contains("the prompt is over the context window"))
        #expect(exhausted.message.contains("\(script): turn 2 (line 2)"))
        let down = expectError { try bench.call("complete", hello()) }
        #expect(down.code == .unavailable)
        #expect(down.message.contains("turn 3 (line 3)"))
    }

    @Test func streamedChunksArriveAsEventsAndConcatenateToTheReply() throws {
        let bench = try CPUBench("scripted", config: ["turns": [
            ["chunks": ["Hel", "lo, ", "world"], "chunk_delay_ms": 1],
            ["text": "calling", "tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]]],
        ]])
        let (output, events) = try bench.stream(hello())
        #expect(output["message"]?["content"]?.stringValue == "Hello, world")
        let texts = events.filter { $0["type"]?.stringValue == "text" }.compactMap { $0["delta"]?.stringValue }
        #expect(texts == ["Hel", "lo, ", "world"])
        #expect(events.last?["type"]?.stringValue == "done")
        #expect(events.last?["finish_reason"]?.stringValue == "stop")

        let (withTool, toolEvents) = try bench.stream(hello())
        #expect(withTool["finish_reason"]?.stringValue == "tool_calls")
        let piece = toolEvents.first { $0["type"]?.stringValue == "tool_call" }
        #expect(piece?["name"]?.stringValue == "calc.add")
        #expect(try JSON.parse(piece?["arguments_delta"]?.stringValue ?? "") == ["a": 1, "b": 2])
    }

    @Test func aDelayLongerThanTheDeadlineTimesOutAndIsCancellable() throws {
        let bench = try CPUBench("scripted", config: ["turns": [["delay_ms": 60_000, "text": "late"], ["text": "next"]]])
        let error = expectError { try bench.call("complete", hello(), timeoutMs: 100) }
        #expect(error.code == .timeout)
        #expect(try bench.call("complete", hello())["message"]?["content"]?.stringValue == "next")
    }

    @Test func expectChecksWhereTheConversationIs() throws {
        let bench = try CPUBench("scripted", config: ["turns": [["expect": "weather", "text": "sunny"]], "on_end": "loop"])
        #expect(try bench.call("complete", hello("what is the weather?"))["message"]?["content"]?.stringValue == "sunny")
        let wrong = expectError { try bench.call("complete", hello("something else")) }
        #expect(wrong.message.contains("expected the last user or tool message to contain \"weather\""))
    }

    @Test func aBrokenScriptIsRefusedAtLoadNamingFileTurnAndLine() throws {
        let cases: [(String, String)] = [
            ("{\"text\": \"ok\"}\n{\"txet\": \"typo\"}\n", "turn 2 (line 2): unknown key \"txet\" (did you mean text?)"),
            ("{\"text\": \"ok\"}\n\n{\"text\": \"unclosed\"\n", "turn 2 (line 3): not valid JSON"),
            ("{\"tool_calls\": [{\"arguments\": {}}]}\n", "turn 1 (line 1): tool_calls[0] needs a name"),
            ("{\"error\": {\"code\": \"oops\", \"message\": \"x\"}}\n", "error code \"oops\" is not one of"),
            ("{\"text\": \"a\", \"error\": \"b\"}\n", "not several"),
            ("{\"tool_calls\": [{\"name\": \"calc.add\", \"arguments\": \"{}\"}]}\n", "give raw_arguments"),
            ("# nothing but a comment\n", "no turns"),
        ]
        for (text, expected) in cases {
            let path = writeScript(text)
            let error = expectError { try CPUBench("scripted", config: ["script": .string(path)]) }
            #expect(error.message.contains(path), "\(error.message)")
            #expect(error.message.contains(expected), "\(error.message)")
        }
        let missing = expectError { try CPUBench("scripted", config: ["script": "/nonexistent/turns.jsonl"]) }
        #expect(missing.message.contains("/nonexistent/turns.jsonl"))
    }

    @Test func withoutAScriptItLoadsAndEachCallSaysHowToGiveOne() throws {
        let bench = try CPUBench("scripted", config: [:])
        let error = expectError { try bench.call("complete", hello()) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("no script"))
        #expect(error.message.contains("--config"))
    }

    @Test func tokensAndEmbeddingsAreDeterministic() throws {
        let bench = try CPUBench("scripted", config: ["turns": [["text": "x"]], "dimensions": 4])
        #expect(try bench.call("count_tokens", ["text": "abcdefgh"]) == ["tokens": 2, "estimated": true])
        let a = try bench.call("embed", ["input": ["one", "two", "one"]])
        #expect(a["dimensions"]?.int64Value == 4)
        #expect(a["vectors"]?[0] == a["vectors"]?[2])
        #expect(a["vectors"]?[0] != a["vectors"]?[1])
    }
}

// MARK: - local: supervision, against a fake llama-server

/// A fake model file and a fake llama-server (Tests/Fixtures/local/fake-llama-server.py).
struct FakeLlama {
    let dir = Paths.temporaryDirectory("fake-llama")
    var model: String { dir + "/fake.gguf" }
    var server: String { Paths.repoRoot + "/Tests/Fixtures/local/fake-llama-server.py" }

    init() {
        _ = FileManager.default.createFile(atPath: model, contents: Data("GGUF fake model".utf8))
    }

    func config(_ more: JSONObject = [:]) -> JSONObject {
        var c: JSONObject = ["model": .string(model), "server": .string(server), "extra_args": ["--fake-dir", .string(dir)]]
        for (k, v) in more { c[k] = v }
        return c
    }

    var starts: [Int32] {
        let text = (try? String(contentsOfFile: dir + "/started", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Waits (bounded) for the fake to say a request is in flight; its pid.
    func inflight() -> Int32? {
        for _ in 0..<1000 {
            if let name = try? FileManager.default.contentsOfDirectory(atPath: dir).first(where: { $0.hasPrefix("inflight-") }) {
                return Int32(name.dropFirst("inflight-".count))
            }
            usleep(10_000)
        }
        return nil
    }
}

func processExists(_ pid: Int32) -> Bool {
    // A zombie counts as gone.
    guard kill(pid, 0) == 0 else { return false }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return !stat.contains(") Z ")
}

func waitUntil(_ condition: () -> Bool) -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

let localGrant = "driver:local/net.connect=http://127.0.0.1"

@Suite("local driver supervision") struct LocalSupervisionTests {
    @Test func startsOnFirstUseNotBefore() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(), grants: [localGrant])
        let before = try bench.call("info", [:])
        #expect(before["local"]?["chat"]?["state"]?.stringValue == "stopped")
        #expect(before["model"]?.stringValue == "fake")
        #expect(before["native_tool_calls"] == false)
        #expect(before["constrained_output"] == true)
        #expect(fake.starts.isEmpty)

        let reply = try bench.call("complete", hello())
        #expect(reply["message"]?["content"]?.stringValue?.hasPrefix("fake reply from pid") == true)
        let after = try bench.call("info", [:])
        #expect(after["local"]?["chat"]?["state"]?.stringValue == "running")
        #expect(after["local"]?["chat"]?["pid"]?.int64Value == Int64(fake.starts.first ?? -1))
        _ = try bench.call("complete", hello())
        #expect(fake.starts.count == 1)   // one server serves every call
    }

    @Test func killedMidRequestIsRestartedAndTheRequestRetried() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(), grants: [localGrant])
        let result = Mutex<Result<JSONValue, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let r = Result { try bench.call("complete", hello("please hang")) }
            result.withLock { $0 = r }
            done.signal()
        }
        thread.start()
        let victim = try #require(fake.inflight())
        kill(victim, SIGKILL)
        done.wait()
        let reply = try #require(try result.withLock { $0 }?.get())
        let content = reply["message"]?["content"]?.stringValue ?? ""
        #expect(content.hasPrefix("fake reply from pid"))
        #expect(!content.hasSuffix("pid \(victim)"))   // answered by the restarted server
        #expect(fake.starts.count == 2)
        #expect(bench.logText.contains("was killed by SIGKILL during the request; restarting it and retrying once"))
        let info = try bench.call("info", [:])
        #expect(info["local"]?["chat"]?["restarts"]?.int64Value == 1)
        #expect(info["local"]?["chat"]?["last_exit"]?.stringValue?.contains("SIGKILL") == true)
        // And it keeps working.
        #expect(try bench.call("complete", hello())["message"]?["content"]?.stringValue == content)
    }

    @Test func withoutRetryTheRequestFailsCleanlyThenTheNextOneWorks() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(["retry_after_crash": false]), grants: [localGrant])
        let result = Mutex<Result<JSONValue, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let r = Result { try bench.call("complete", hello("please hang")) }
            result.withLock { $0 = r }
            done.signal()
        }.start()
        let victim = try #require(fake.inflight())
        kill(victim, SIGKILL)
        done.wait()
        let outcome = try #require(result.withLock { $0 })
        guard case .failure(let failure) = outcome, let error = failure as? LLMOSError else {
            Issue.record("expected a clean error, got \(outcome)")
            return
        }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("llama-server (chat) pid \(victim) was killed by SIGKILL during the request"), "\(error.message)")
        #expect(error.message.contains("restarted on the next call"))
        let next = try bench.call("complete", hello())
        #expect(next["message"]?["content"]?.stringValue?.hasPrefix("fake reply from pid") == true)
        #expect(fake.starts.count == 2)
    }

    @Test func aServerThatDiedBetweenCallsIsRestarted() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(), grants: [localGrant])
        _ = try bench.call("complete", hello())
        let first = try #require(fake.starts.first)
        kill(first, SIGKILL)
        #expect(waitUntil { !processExists(first) })
        let reply = try bench.call("complete", hello())
        #expect(reply["message"]?["content"]?.stringValue?.hasPrefix("fake reply from pid") == true)
        #expect(fake.starts.count == 2)
    }

    @Test func unloadingTheDriverStopsTheServer() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(), grants: [localGrant])
        _ = try bench.call("complete", hello())
        let pid = try #require(fake.starts.first)
        #expect(processExists(pid))
        try bench.kernel.unload("local")
        #expect(waitUntil { !processExists(pid) })
    }

    @Test func theServerDiesWithTheHostProcess() throws {
        // A host (the llmos command) that is SIGKILLed mid-request: PR_SET_PDEATHSIG kills llama-server.
        let fake = FakeLlama()
        let llmos = Paths.buildDirectory + "/llmos"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: llmos)
        let config = JSONValue.object(fake.config()).serialized()
        process.arguments = ["call", "--no-audit-log", "--drivers", Paths.manifests, "--config", "local=\(config)",
                             "local.complete", hello("please hang").serialized()]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let server = try #require(fake.inflight())
        #expect(processExists(server))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(waitUntil { !processExists(server) })
    }

    @Test func aServerThatCannotStartIsAReadableError() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(["extra_args": ["--fake-fail-start"]]), grants: [localGrant])
        let error = expectError { try bench.call("complete", hello()) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("llama-server (chat) exited with status 1 while starting"), "\(error.message)")
        #expect(error.message.contains("error loading model: fake failure for the tests"), "\(error.message)")
    }

    @Test func withoutTheNetGrantNothingIsReached() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(["startup_timeout_ms": 500]), grants: [])
        let error = expectError { try bench.call("complete", hello()) }
        // The health probe is refused by the broker, so the server never counts as ready.
        #expect(error.code == .timeout || error.code == .permissionDenied, "\(error)")
    }

    @Test func aNamedModelThatIsNotThereOrNotGGUFRefusesTheLoad() throws {
        let missing = expectError { try CPUBench("local", config: ["model": "/nonexistent/model.gguf"]) }
        #expect(missing.message.contains("model /nonexistent/model.gguf: no such file"))
        let notGGUF = Paths.temporaryDirectory("notgguf") + "/model.gguf"
        _ = FileManager.default.createFile(atPath: notGGUF, contents: Data("not a model".utf8))
        let wrong = expectError { try CPUBench("local", config: ["model": .string(notGGUF)]) }
        #expect(wrong.message.contains("is not a GGUF file"))
    }

    @Test func embeddingsUseASecondServerStartedOnFirstUse() throws {
        let fake = FakeLlama()
        let bench = try CPUBench("local", config: fake.config(), grants: [localGrant])
        let out = try bench.call("embed", ["input": ["a", "b"]])
        #expect(out["vectors"]?.arrayValue?.count == 2)
        let info = try bench.call("info", [:])
        #expect(info["local"]?["embed"]?["state"]?.stringValue == "running")
        #expect(info["local"]?["chat"]?["state"]?.stringValue == "stopped")
    }
}

// MARK: - local: the real llama-server and SmolLM2

enum RealLocalModel {
    static var cache: String { ModelCache.directory() }

    static var isSetUp: Bool {
        guard let data = FileManager.default.contents(atPath: ModelCache.markerPath(in: cache)),
              let record = try? JSON.parse(String(decoding: data, as: UTF8.self)),
              let model = record["model"]?.stringValue, let server = record["server"]?.stringValue else { return false }
        return FileManager.default.fileExists(atPath: model) && FileManager.default.isExecutableFile(atPath: server)
    }

    static let skipReason: Comment = "the local model is not set up (run scripts/setup-model, or `make test`, which runs it first)"

    /// One host for the tests that only talk to the model (one llama-server for all of them).
    nonisolated(unsafe) static var shared: CPUBench? = {
        guard isSetUp else { return nil }
        return try? CPUBench("local", config: ["max_tokens": 48], grants: [localGrant])
    }()
}

private let addTool: JSONValue = ["name": "calc.add", "description": "Add two numbers a and b.",
                                  "input_schema": ["type": "object", "properties": ["a": ["type": "number"], "b": ["type": "number"]],
                                                   "required": ["a", "b"], "additionalProperties": false]]

@Suite("local driver with the real SmolLM2", .serialized, .enabled(if: RealLocalModel.isSetUp, RealLocalModel.skipReason))
struct LocalModelIntegrationTests {
    var bench: CPUBench { get throws { try #require(RealLocalModel.shared) } }

    @Test func aRealCompletion() throws {
        let out = try bench.call("complete", ["messages": [["role": "system", "content": "You are a helpful assistant."],
                                                           ["role": "user", "content": "What is the capital of France?"]],
                                              "temperature": 0, "seed": 1])
        let content = out["message"]?["content"]?.stringValue ?? ""
        #expect(!content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(["stop", "length"].contains(out["finish_reason"]?.stringValue ?? ""))
        #expect((out["usage"]?["input_tokens"]?.int64Value ?? 0) > 0)
        #expect((out["usage"]?["output_tokens"]?.int64Value ?? 0) > 0)
        #expect(out["model"]?.stringValue == "SmolLM2-135M-Instruct.Q4_1")
    }

    @Test func embeddingsComeFromTheSentenceEmbeddingModel() throws {
        let out = try bench.call("embed", ["input": ["The cat sits on the mat.", "A feline rests on a rug.", "Stock markets fell sharply today.",
                                                     .string(String(repeating: "a very long passage ", count: 600))]])
        #expect(out["model"]?.stringValue == "all-MiniLM-L6-v2.F32" && out["dimensions"] == 384, "\(out["model"] ?? JSONValue.null)")
        let v = (out["vectors"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.doubleValue) }
        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
        }
        #expect(v.count == 4 && v.allSatisfy { $0.count == 384 })
        // A paraphrase is near, an unrelated sentence far: a model trained for retrieval.
        #expect(cosine(v[0], v[1]) > 0.4 && cosine(v[0], v[2]) < 0.2, "\(cosine(v[0], v[1])) \(cosine(v[0], v[2]))")
        // A text longer than the model's 512-token window is shortened to fit, and says so.
        #expect(out["x-local_truncated"] == 1)
    }

    @Test func aStreamedCompletion() throws {
        let (out, events) = try bench.stream(["messages": [["role": "user", "content": "Count from one to five."]], "temperature": 0])
        let texts = events.filter { $0["type"]?.stringValue == "text" }.compactMap { $0["delta"]?.stringValue }
        #expect(texts.count > 1)
        #expect(texts.joined() == out["message"]?["content"]?.stringValue)
        #expect(events.last?["type"]?.stringValue == "done")
    }

    @Test func aConstrainedToolCallValidatesAgainstTheToolsSchema() throws {
        let out = try bench.call("complete", ["messages": [["role": "user", "content": "Add 2 and 3."]],
                                              "tools": [addTool], "tool_choice": ["name": "calc.add"], "temperature": 0])
        let call = try #require(out["message"]?["tool_calls"]?[0])
        #expect(call["name"]?.stringValue == "calc.add")
        let schema = try JSONSchema(addTool["input_schema"]!)
        let arguments = try #require(call["arguments"])
        #expect(schema.validate(arguments).isEmpty, "\(arguments) does not match: \(schema.validate(arguments))")
        #expect(out["finish_reason"]?.stringValue == "tool_calls")
    }

    @Test func tokensAreCountedWithTheModelsTokenizer() throws {
        let out = try bench.call("count_tokens", ["text": "Hello, world!"])
        #expect(out["estimated"] == false)
        #expect((out["tokens"]?.int64Value ?? 0) > 0)
    }

    @Test func killedMidStreamFailsCleanlyThenWorksAgain() throws {
        let own = try CPUBench("local", config: ["max_tokens": 400], grants: [localGrant])
        _ = try own.call("count_tokens", ["text": "start the server"])
        let pid = try #require(own.call("info", [:])["local"]?["chat"]?["pid"]?.int64Value)
        let killed = Mutex(false)
        var outcome: Result<(JSONValue, [JSONValue]), any Error>
        outcome = Result {
            try own.stream(["messages": [["role": "user", "content": "Write a long story about a lighthouse keeper."]]]) { event in
                if event["type"]?.stringValue == "text", !killed.withLock({ $0 }) {
                    killed.withLock { $0 = true }
                    kill(Int32(pid), SIGKILL)
                }
            }
        }
        #expect(killed.withLock { $0 })
        switch outcome {
        case .success(let (out, _)):
            // Part of the reply had been streamed: it comes back, marked as cut off.
            #expect(out["finish_reason"]?.stringValue == "error")
        case .failure(let error):
            let e = try #require(error as? LLMOSError)
            #expect(e.code == .unavailable || e.code == .timeout, "\(e)")
        }
        let again = try own.call("complete", ["messages": [["role": "user", "content": "Say hi."]], "max_tokens": 8])
        let text = again["message"]?["content"]?.stringValue ?? ""
        #expect(text.isEmpty == false)
        let info = try own.call("info", [:])
        #expect(info["local"]?["chat"]?["restarts"]?.int64Value == 1)
        #expect(info["local"]?["chat"]?["pid"]?.int64Value != pid)
    }
}
