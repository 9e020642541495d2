import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

@Suite struct DispatchTests {
    let log = MemoryLogSink()
    let kernel: Kernel

    init() throws {
        kernel = makeKernel(log: log)
        _ = kernel.loadAll(from: DriverSearchPath(entries: [.init(directory: Paths.manifests, origin: "./manifests")]))
        for fixture in ["echo", "badjson", "bigoutput", "noresult"] {
            try kernel.load(manifestAt: try Fixtures.install(fixture))
        }
    }

    func result(_ tool: String, _ input: String) throws -> JSONValue {
        try JSON.parse(try kernel.call(tool, input: input).output)
    }

    @Test func calcArithmetic() throws {
        #expect(try result("calc.add", #"{"a": 1, "b": 2}"#)["result"]?.doubleValue == 3)
        #expect(try result("calc.sub", #"{"a": 1, "b": 2.5}"#)["result"]?.doubleValue == -1.5)
        #expect(try result("calc.mul", #"{"a": -4, "b": 2.5}"#)["result"]?.doubleValue == -10)
        #expect(try result("calc.div", #"{"a": 1, "b": 4}"#)["result"]?.doubleValue == 0.25)
        #expect(try result("calc.add", #"{"a": 1234, "b": 5678}"#)["result"]?.doubleValue == 6912)
    }

    @Test func divisionByZeroIsACleanError() {
        let error = expectError { try kernel.call("calc.div", input: #"{"a": 1, "b": 0}"#) }
        #expect(error.code == .invalidArgument)
        #expect(error.message == "calc.div: division by zero: b must not be 0")
    }

    @Test(arguments: [
        ("1+2*3", 7.0), ("(1+2)*3", 9), ("-2^2", -4), ("2^3^2", 512), ("10 % 4", 2),
        ("2 * (3 + 4) ^ 2", 98), ("-(-3)", 3), ("1.5e3 + .5", 1500.5), ("+4 - -4", 8), ("((((7))))", 7),
    ])
    func evalParsesArithmetic(expression: String, expected: Double) throws {
        let value = try result("calc.eval", JSONValue.object(["expression": .string(expression)]).serialized())
        #expect(value["result"]?.doubleValue == expected, "\(expression)")
    }

    @Test(arguments: [
        ("1 + * 2", "syntax error at column 5"),
        ("2*(3", "missing ')'"),
        ("1)", "unexpected ')' at column 2"),
        ("   ", "empty expression"),
        ("1/0", "division by zero"),
        ("2 $ 3", "column 3"),
    ])
    func evalSyntaxErrors(expression: String, expected: String) {
        let error = expectError { try kernel.call("calc.eval", input: JSONValue.object(["expression": .string(expression)]).serialized()) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains(expected), "\(expression): \(error.message)")
    }

    @Test func evalNestingIsBounded() {
        let deep = String(repeating: "(", count: 3000) + "1" + String(repeating: ")", count: 3000)
        let error = expectError { try kernel.call("calc.eval", input: JSONValue.object(["expression": .string(deep)]).serialized()) }
        #expect(error.code == .invalidArgument, "\(error.message)")
    }

    @Test func unknownToolNamesTheNearest() {
        let error = expectError { try kernel.call("calc.addd", input: "{}") }
        #expect(error.code == .notFound)
        #expect(error.message == "no tool calc.addd — did you mean calc.add?")
        #expect(expectError { try kernel.call("clac.add", input: "{}") }.message.contains("did you mean calc.add"))
        #expect(expectError { try kernel.call("calc.frobnicate", input: "{}") }.message.contains("calc offers calc.add, calc.div, calc.eval, calc.mul, calc.sub"))
        #expect(expectError { try kernel.call("add", input: "{}") }.message.contains("did you mean"))
    }

    @Test func inputIsValidatedBeforeTheDriverRuns() {
        let wrongType = expectError { try kernel.call("calc.add", input: #"{"a": 1, "b": "two"}"#) }
        #expect(wrongType.code == .invalidArgument)
        #expect(wrongType.message.contains("calc.add: invalid input:") && wrongType.message.contains("\"b\""), "\(wrongType.message)")
        let missing = expectError { try kernel.call("calc.add", input: #"{"a": 1}"#) }
        #expect(missing.message.contains("missing required field \"b\""), "\(missing.message)")
        let extra = expectError { try kernel.call("calc.add", input: #"{"a": 1, "b": 2, "c": 3}"#) }
        #expect(extra.message.contains("\"c\""), "\(extra.message)")
        let notJSON = expectError { try kernel.call("calc.add", input: #"{"a": 1, "b": }"#) }
        #expect(notJSON.message.contains("calc.add: the input is not valid JSON: line 1, column"), "\(notJSON.message)")
    }

    @Test func outputMustBeJSONAndMatchItsSchema() {
        let truncated = expectError { try kernel.call("badjson.bad", input: "{}") }
        #expect(truncated.code == .invalidOutput)
        #expect(truncated.message.contains("badjson.bad: the driver's output is not valid JSON"), "\(truncated.message)")
        let notObject = expectError { try kernel.call("badjson.notobject", input: "{}") }
        #expect(notObject.code == .invalidOutput)
        #expect(notObject.message.contains("does not match its output_schema"), "\(notObject.message)")
        let wrongType = expectError { try kernel.call("badjson.wrongtype", input: "{}") }
        #expect(wrongType.message.contains("\"result\""), "\(wrongType.message)")
    }

    @Test func oversizedOutputIsRefused() throws {
        #expect(try kernel.call("bigoutput.big", input: #"{"bytes": 100}"#).output.count == 102)
        let error = expectError { try kernel.call("bigoutput.big", input: #"{"bytes": 5000}"#) }
        #expect(error.code == .outputTooLarge)
        #expect(error.message.contains("over the driver's limit of 1024 (limits.max_output_bytes)"), "\(error.message)")
    }

    @Test func aDriverThatSetsNoResult() {
        let nothing = expectError { try kernel.call("noresult.nothing", input: "{}") }
        #expect(nothing.code == .invalidOutput)
        #expect(nothing.message == "noresult.nothing: the driver returned without a result (it never called set_output)")
        let silent = expectError { try kernel.call("noresult.errnomsg", input: "{}") }
        #expect(silent.code == .internalError)
        #expect(silent.message.contains("failed with internal and gave no message"))
    }

    @Test func driverErrorsCarryTheirCode() {
        let error = expectError { try kernel.call("echo.fail", input: "{}") }
        #expect(error.code == .notFound)
        #expect(error.message == "echo.fail: no such thing")
        #expect((kernel.driver(named: "echo")?.health.failures ?? 0) >= 1)
    }

    @Test func timeoutIsEnforcedThroughIsCancelled() {
        let error = expectError { try kernel.call("echo.sleep", input: #"{"ms": 5000}"#, options: CallOptions(timeoutMs: 50)) }
        #expect(error.code == .timeout)
        #expect(error.message.contains("timed out after 50 ms"), "\(error.message)")
    }

    @Test func cancellationFromAnotherThread() throws {
        let token = CancellationToken()
        cancel(token, after: 50)
        let error = expectError { try kernel.call("echo.sleep", input: #"{"ms": 5000}"#, options: CallOptions(cancellation: token)) }
        #expect(error.code == .cancelled, "\(error.message)")
    }

    @Test func progressReachesTheCaller() throws {
        let seen = Mutex<[Double]>([])
        _ = try kernel.call("echo.progress", input: "{}", options: CallOptions(progress: { f, _ in seen.withLock { $0.append(f) } }))
        #expect(seen.withLock { $0 } == [0, 0.5, 1])
    }

    @Test func driverLogLinesAreAttributed() throws {
        _ = try kernel.call("echo.log", input: "{}")
        let lines = log.entries.filter { $0.source == "echo" && $0.tool == "echo.log" }
        #expect(Set(lines.map(\.level)) == Set(KernelLogEntry.Level.allCases))
    }

    @Test func deniedToolsAreRefused() throws {
        let deny = try PolicyParser.rule(fromFlag: "tool.call=calc.add", action: .deny)
        let strict = makeKernel { $0.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([deny])) }
        try strict.load(manifestAt: Paths.manifests + "/calc.yaml")
        let error = expectError { try strict.call("calc.add", input: #"{"a":1,"b":2}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message == "calc.add: denied by --deny tool.call=calc.add", "\(error.message)")
        #expect(try strict.call("calc.sub", input: #"{"a":1,"b":2}"#).output.contains("-1"))
    }

    @Test func aPolicyChangeTakesEffectOnTheNextCall() throws {
        // The operator's tool.call decision is reused between calls; a new policy must end that.
        let broker = CapabilityBroker(policy: .builtInDefault)
        let live = makeKernel { $0.broker = broker }
        try live.load(manifestAt: Paths.manifests + "/calc.yaml")
        #expect(try live.call("calc.add", input: #"{"a":1,"b":2}"#).output == #"{"result":3}"#)
        broker.policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "tool.call=calc.add", action: .deny)])
        #expect(expectError { try live.call("calc.add", input: #"{"a":1,"b":2}"#) }.code == .permissionDenied)
        broker.policy = .builtInDefault
        #expect(try live.call("calc.add", input: #"{"a":1,"b":2}"#).output == #"{"result":3}"#)
    }

    @Test func duplicateKeysInInputAreRefused() {
        // Otherwise the schema check and the driver could read different values for "b".
        let error = expectError { try kernel.call("calc.add", input: #"{"a": 1, "b": 2, "b": "x"}"#) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("duplicate key \"b\""), "\(error.message)")
    }

    @Test func swiftDriverTools() throws {
        let count = try result("text.count", #"{"text": "hello wide world\nline two"}"#)
        #expect(count["words"]?.int64Value == 5)
        #expect(count["lines"]?.int64Value == 2)
        let error = expectError { try kernel.call("text.search", input: #"{"text": "abc", "pattern": "([a-"}"#) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("invalid regular expression"), "\(error.message)")
        #expect(try result("text.case", #"{"text": "hello world", "to": "upper"}"#)["text"]?.stringValue == "HELLO WORLD")
    }
}
