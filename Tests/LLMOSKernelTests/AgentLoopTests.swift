import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

// The agent loop against the scripted cpu driver (Plugins/scripted) and the real calc and
// text tools, all loaded with dlopen through the kernel. A turn's `expect` makes the
// scripted driver check what the model was shown (the last user or tool message), so
// these tests see exactly what a model would read. No wall-clock assertions.

/// A kernel with scripted (replaying `turns`), calc and text loaded.
final class AgentBench: @unchecked Sendable {
    let kernel: Kernel
    let audit = MemoryAuditLog()

    init(_ turns: [JSONValue], contextLength: Int? = nil, onEnd: String? = nil, deny: [String] = []) throws {
        var config: JSONObject = ["turns": .array(turns)]
        if let contextLength { config["context_length"] = .int(Int64(contextLength)) }
        if let onEnd { config["on_end"] = .string(onEnd) }
        var rules: [PolicyRule] = []
        for flag in deny { rules.append(try PolicyParser.rule(fromFlag: flag, action: .deny)) }
        let policy = Policy.builtInDefault.adding(rules)
        let audit = self.audit
        kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy)
            c.audit = audit
            c.driverConfig = ["scripted": .object(config)]
            c.workspace = "/tmp/agent-workspace"
        }
        for name in ["scripted", "calc", "text"] { try kernel.load(manifestAt: Paths.manifests + "/\(name).yaml") }
    }

    static let monday = Date(timeIntervalSince1970: 1_764_590_400)   // Monday 1 December 2025, 12:00 UTC

    func loop(tools: [String] = ["*"], budgets: AgentBudgets = AgentBudgets(), configure: (inout AgentOptions) -> Void = { _ in },
              observer: (@Sendable (AgentEvent) -> Void)? = nil) -> AgentLoop {
        var options = AgentOptions()
        options.now = { AgentBench.monday }
        options.timeZone = TimeZone(identifier: "UTC")!
        configure(&options)
        let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "scripted", tools: tools), budgets: budgets)
        return AgentLoop(kernel: kernel, process: process, options: options, observer: observer)
    }

    func run(_ task: String, tools: [String] = ["*"], budgets: AgentBudgets = AgentBudgets(),
             configure: (inout AgentOptions) -> Void = { _ in }) -> AgentRunResult {
        loop(tools: tools, budgets: budgets, configure: configure).run(task: task)
    }
}

func toolCall(_ name: String, _ arguments: JSONValue, id: String? = nil) -> JSONValue {
    var call: JSONObject = ["name": .string(name), "arguments": arguments]
    if let id { call["id"] = .string(id) }
    return ["tool_calls": [.object(call)]]
}

extension AgentRunResult {
    /// For failure messages: the stop, the detail, and every step's calls.
    var summary: String {
        "\(stopReason): \(detail) | " + steps.map { step in
            "#\(step.index) \(step.kind.rawValue) \(step.error?.message ?? "") " + step.calls.map { "\($0.call.name)→\($0.outcome.rawValue): \($0.content)" }.joined(separator: "; ")
        }.joined(separator: " | ")
    }
}

@Suite("agent loop against the scripted cpu") struct AgentLoopTests {
    @Test func answersThroughATool() throws {
        let bench = try AgentBench([
            toolCall("calc.mul", ["a": 1234, "b": 5678]),
            ["expect": "7006652", "text": "1234 * 5678 = 7006652"],
        ])
        let result = bench.run("What is 1234 * 5678?")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.answer == "1234 * 5678 = 7006652")
        #expect(result.steps.count == 2)
        #expect(result.toolCalls == 1)
        let call = try #require(result.allCalls.first)
        #expect(call.outcome == .ok)
        #expect(call.content == #"{"result":7006652}"#)
        // The conversation: system prompt, task, the call, its result, the answer.
        #expect(result.messages.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant", "tool", "assistant"])
        let system = result.messages[0]["content"]?.stringValue ?? ""
        #expect(system.contains("Monday 1 December 2025"))
        #expect(system.contains("/tmp/agent-workspace"))
        #expect(result.messages[3]["name"] == "calc.mul")
        #expect(result.messages[3]["tool_call_id"] == "call_0")
        // Tools offered: tool drivers only, never a cpu driver's operations.
        #expect(result.steps[0].request.tools == 12)
        #expect(result.steps[0].request.toolChoice == "auto")
        #expect(result.usage.inputTokens > 0)
        // The call went through the kernel, so it was audited.
        #expect(bench.audit.records.contains { $0.tool == "calc.mul" || $0.resource == "calc.mul" })
    }

    @Test func aHallucinatedToolIsAnErrorNamingTheNearestRealOnes() throws {
        let bench = try AgentBench([
            toolCall("calc.addd", ["a": 1, "b": 2]),
            ["expect": "no tool calc.addd — did you mean calc.add?", "tool_calls": [["name": "weather.today", "arguments": [:]]]],
            ["expect": "the tools are calc.add", "tool_calls": [["name": "text.count", "arguments": ["text": "abc"]]]],
            ["expect": "no tool text.count", "text": "I cannot count here."],
        ])
        let result = bench.run("Add 1 and 2.", tools: ["calc.*"])
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.allCalls.map(\.outcome) == [.unknownTool, .unknownTool, .unknownTool])
        #expect(result.allCalls[1].content.contains("calc.add, calc.div, calc.eval"))
        // text.count is loaded but not in this process's tools: suggestions come from calc only.
        #expect(!result.allCalls[2].content.contains("text.search"))
        #expect(result.toolCalls == 0)
    }

    @Test func malformedArgumentsAreReAskedWithTheError() throws {
        let bench = try AgentBench([
            ["tool_calls": [["name": "calc.add", "raw_arguments": #"{"a": 1, "b": "#]]],
            ["expect": "not valid JSON", "tool_calls": [["name": "calc.add", "arguments": ["a": "one", "b": 2]]]],
            ["expect": "invalid arguments", "tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]]],
            ["expect": #"{"result":3}"#, "text": "3"],
        ])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.answer == "3")
        #expect(result.allCalls.map(\.outcome) == [.malformedArguments, .invalidArguments, .ok])
        let malformed = result.allCalls[0].content
        #expect(malformed.contains("line 1"))                        // where the JSON broke
        #expect(malformed.contains(#"{"a": number, "b": number}"#))  // and what it should be
        let invalid = result.allCalls[1].content
        #expect(invalid.contains("calc.add: invalid arguments:"))
        #expect(invalid.contains("a"))
        #expect(result.toolCalls == 1)
    }

    @Test func malformedArgumentsTwiceInARowStopWithCpuError() throws {
        let bad: JSONValue = ["tool_calls": [["name": "calc.add", "raw_arguments": "{{{"]]]
        let bench = try AgentBench([bad, bad, ["text": "never"]])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .cpuError, "\(result.summary)")
        #expect(result.detail.contains("unreadable twice in a row"))
        #expect(result.steps.count == 2)
    }

    @Test func malformedModelOutputIsReAskedOnce() throws {
        let bench = try AgentBench([
            ["raw_output": "not JSON at all"],
            ["expect": "could not be read", "text": "Sorry: 3."],
        ])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.answer == "Sorry: 3.")
        #expect(result.steps.map(\.kind) == [.normal, .repair])
        #expect(result.steps[0].error?.code == .invalidOutput)
        // The repair request was for that one turn only: it is not kept in the conversation.
        #expect(!result.messages.contains { $0["content"]?.stringValue?.contains("could not be read") == true })
    }

    @Test func outputOfTheWrongShapeTwiceStopsWithCpuError() throws {
        let bench = try AgentBench([
            ["raw_output": #"{"message": "hello"}"#],
            ["raw_output": #"{"choices": []}"#],
            ["text": "never"],
        ])
        let result = bench.run("Hi.")
        #expect(result.stopReason == .cpuError, "\(result.summary)")
        #expect(result.detail.contains("unreadable twice in a row"))
        #expect(result.steps.allSatisfy { $0.error?.code == .invalidOutput })
    }

    @Test func aLoopIsWarnedThenForcedThenStopped() throws {
        let add = toolCall("calc.add", ["a": 1, "b": 2])
        let bench = try AgentBench([
            add, add, add,
            ["expect": "Do not call it again", "tool_calls": [["name": "calc.add", "arguments": ["b": 2, "a": 1]]]],
            ["expect": "Tools are off now", "text": "It is 3."],
        ])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .loop, "\(result.summary)")
        #expect(result.answer == "It is 3.")
        #expect(result.steps.count == 5)
        #expect(result.steps[2].notes.first?.contains("3 times") == true)
        #expect(result.steps[4].kind == .forcedAnswer)
        #expect(result.steps[4].request.toolChoice == "none")
        #expect(result.steps[3].request.toolChoice == "auto")
    }

    @Test func aModelThatIgnoresTheWithheldToolsIsStillStopped() throws {
        let bench = try AgentBench([toolCall("calc.add", ["a": 1, "b": 2])], onEnd: "repeat_last")
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .loop, "\(result.summary)")
        #expect(result.steps.count == 5)
        #expect(result.steps.last?.calls.map(\.outcome) == [.skipped])
        #expect(result.toolCalls == 4)
    }

    @Test func theContextNeverOverflows() throws {
        // A 600-token context and tool results that pile up far past it.
        let long = String(repeating: "abcdefghij", count: 24)   // 240 characters
        var turns: [JSONValue] = []
        for i in 0..<8 { turns.append(toolCall("text.reverse", ["text": .string("\(i) \(long)")])) }
        turns.append(["text": "done"])
        let bench = try AgentBench(turns, contextLength: 600)
        let result = bench.run("Reverse these texts.", tools: ["text.reverse"], budgets: AgentBudgets(maxSteps: 20))
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.steps.count == 9)
        for step in result.steps {
            #expect(step.request.promptTokens <= step.request.promptLimit)
            #expect(step.request.promptLimit + step.request.maxTokens <= 600)
            #expect(step.request.counted)                                    // scripted has count_tokens
            // What the driver itself measured of the request it received.
            #expect((step.reply?.usage.inputTokens ?? 0) <= 600)
        }
        #expect(result.steps.last!.request.droppedMessages > 0)
        // The whole conversation is far bigger than the window, and nothing was lost from it.
        #expect(result.messages.count == 1 + 1 + 8 * 2 + 1)
    }

    @Test func aToolErrorIsShownToTheModelAndTheLoopGoesOn() throws {
        let bench = try AgentBench([
            toolCall("calc.div", ["a": 1, "b": 0]),
            ["expect": "division by zero", "text": "You cannot divide by zero."],
        ])
        let result = bench.run("What is 1 / 0?")
        #expect(result.stopReason == .completed, "\(result.summary)")
        let call = try #require(result.allCalls.first)
        #expect(call.outcome == .toolError)
        #expect(call.error?.code == .invalidArgument)
        #expect(call.content.hasPrefix("error: calc.div: division by zero"))
    }

    @Test func aDeniedCallIsToldToTheModelOnce() throws {
        let bench = try AgentBench([
            toolCall("calc.add", ["a": 1, "b": 2]),
            ["expect": "permission denied", "tool_calls": [["name": "calc.sub", "arguments": ["a": 5, "b": 2]]]],
            ["text": "3, and 5 - 2 = 3."],
        ], deny: ["tool.call=calc.add"])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.allCalls.map(\.outcome) == [.denied, .ok])
        #expect(result.allCalls[0].content.contains("--deny tool.call=calc.add"))
        #expect(result.allCalls[0].content.contains("do not call it again"))
        // The kernel's gate decided and recorded it.
        #expect(bench.audit.records.contains { $0.decision == .deny && ($0.resource == "calc.add" || $0.tool == "calc.add") })
    }

    @Test func aModelThatKeepsCallingDeniedToolsIsStopped() throws {
        let bench = try AgentBench([
            toolCall("calc.add", ["a": 1, "b": 2]),
            ["expect": "permission denied", "tool_calls": [["name": "calc.mul", "arguments": ["a": 1, "b": 2]]]],
            ["text": "never"],
        ], deny: ["tool.call=calc.*"])
        let result = bench.run("Add 1 and 2.")
        #expect(result.stopReason == .denied, "\(result.summary)")
        #expect(result.detail.contains("calc.mul"))
        #expect(result.steps.count == 2)
        // With maxDenials 0 the same run only tells the model, and goes on.
        let lenient = try AgentBench([
            toolCall("calc.add", ["a": 1, "b": 2]), toolCall("calc.mul", ["a": 1, "b": 2]), ["text": "I am not allowed."],
        ], deny: ["tool.call=calc.*"])
        let told = lenient.run("Add 1 and 2.") { $0.maxDenials = 0 }
        #expect(told.stopReason == .completed, "\(told.summary)")
    }

    @Test func aCancelledRunStops() throws {
        let bench = try AgentBench([["delay_ms": 60_000, "text": "too late"]])
        let loop = bench.loop()
        cancel(loop.process.cancellation, after: 50)
        let result = loop.run(task: "Think for a long time.")
        #expect(result.stopReason == .cancelled, "\(result.summary)")
        // Cancelling the task's token cancels the task; the process waits for the next one.
        #expect(loop.process.state == .idle(.cancelled))
        #expect(result.steps.first?.error?.code == .cancelled)

        let early = bench.loop()
        early.process.cancel()
        let none = early.run(task: "Anything.")
        #expect(none.stopReason == .cancelled)
        #expect(none.steps.isEmpty)
    }

    @Test func theStepLimitGetsOneLastTurnWithoutTools() throws {
        let bench = try AgentBench([
            toolCall("calc.add", ["a": 1, "b": 2]),
            toolCall("calc.add", ["a": 3, "b": 3]),
            ["expect": "the step limit of 3 is reached", "text": "So far: 3 and 6."],
        ])
        let result = bench.run("Add things.", budgets: AgentBudgets(maxSteps: 3))
        #expect(result.stopReason == .maxSteps, "\(result.summary)")
        #expect(result.answer == "So far: 3 and 6.")
        #expect(result.steps.map(\.kind) == [.normal, .normal, .final])
        #expect(result.steps[2].request.toolChoice == "none")
    }

    @Test func theToolCallBudgetGetsOneLastTurn() throws {
        let bench = try AgentBench([
            ["tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]], ["name": "calc.add", "arguments": ["a": 2, "b": 2]],
                            ["name": "calc.add", "arguments": ["a": 3, "b": 2]]]],
            ["expect": "the tool call budget of 2 is reached", "tool_calls": [["name": "calc.add", "arguments": ["a": 9, "b": 9]]]],
        ])
        let result = bench.run("Add.", budgets: AgentBudgets(maxToolCalls: 2))
        #expect(result.stopReason == .budget, "\(result.summary)")
        #expect(result.allCalls.map(\.outcome) == [.ok, .ok, .skipped, .skipped])
        #expect(result.allCalls[2].content.contains("tool call budget of 2"))
        #expect(result.toolCalls == 2)
        #expect(result.answer == nil)    // the model gave no text at all
    }

    @Test func theOutputTokenBudgetGetsOneLastTurn() throws {
        let usage: JSONValue = ["input_tokens": 10, "output_tokens": 40]
        let bench = try AgentBench([
            ["tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]], "usage": usage],
            ["expect": "the output token budget of 100 is reached", "text": "3", "usage": usage],
        ])
        let result = bench.run("Add.", budgets: AgentBudgets(maxOutputTokens: 100))
        #expect(result.stopReason == .budget, "\(result.summary)")
        #expect(result.answer == "3")
        #expect(result.usage.outputTokens == 80)
        #expect(result.steps[1].request.maxTokens <= 60)
    }

    @Test func theWallTimeBudgetGetsOneLastTurn() throws {
        // A clock that moves 100 ms each time it is read: no real time involved.
        let ticks = Atomic<UInt64>(0)
        let turns = (1...20).map { toolCall("calc.add", ["a": .int(Int64($0)), "b": 2]) }
        let bench = try AgentBench(turns)
        let result = bench.run("Add.", budgets: AgentBudgets(maxSteps: 50, maxWallTimeMs: 2000)) { o in
            o.clock = { ticks.wrappingAdd(100_000_000, ordering: .relaxed).newValue }
        }
        #expect(result.stopReason == .budget, "\(result.summary)")
        #expect(result.detail.contains("wall time"))
        #expect(result.steps.last?.kind == .final, "\(result.summary)")
        #expect(result.steps.count < 20)
        #expect(result.messages.contains { $0["content"]?.stringValue?.contains("the wall time budget of 2000 ms is reached") == true })
    }

    @Test func aFailingCpuStopsWithCpuError() throws {
        let bench = try AgentBench([["error": ["code": "unavailable", "message": "the backend is down"]]])
        let result = bench.run("Hi.")
        #expect(result.stopReason == .cpuError, "\(result.summary)")
        #expect(result.detail.contains("the backend is down"))

        let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "scriptd"))
        let missing = AgentLoop(kernel: bench.kernel, process: process).run(task: "Hi.")
        #expect(missing.stopReason == .cpuError)
        #expect(missing.detail == "no cpu driver named scriptd is loaded — did you mean scripted?")

        let notCPU = AgentLoop(kernel: bench.kernel, process: AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "calc"))).run(task: "Hi.")
        #expect(notCPU.detail.contains("not a cpu driver"))
    }

    @Test func parallelToolCallsAllRunAndAnswerInOrder() throws {
        let bench = try AgentBench([
            ["tool_calls": [["id": "x", "name": "calc.add", "arguments": ["a": 1, "b": 2]], ["id": "y", "name": "calc.mul", "arguments": ["a": 3, "b": 4]],
                            ["id": "z", "name": "calc.nope", "arguments": [:]], ["id": "w", "name": "text.reverse", "arguments": ["text": "abc"]]]],
            ["expect": "cba", "text": "3, 12, cba"],
        ])
        let result = bench.run("Several things.")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.allCalls.map(\.call.id) == ["x", "y", "z", "w"])
        #expect(result.allCalls.map(\.outcome) == [.ok, .ok, .unknownTool, .ok])
        #expect(result.allCalls.map(\.content)[0] == #"{"result":3}"#)
        #expect(result.allCalls.map(\.content)[1] == #"{"result":12}"#)
        #expect(result.messages.filter { $0["role"] == "tool" }.compactMap { $0["tool_call_id"]?.stringValue } == ["x", "y", "z", "w"])
    }

    @Test func textIsStreamedToTheObserver() throws {
        let bench = try AgentBench([["chunks": ["Hel", "lo ", "there"]]])
        let seen = Mutex<[String]>([])
        let steps = Mutex<Int>(0)
        let loop = bench.loop(observer: { event in
            switch event {
            case .text(let delta): seen.withLock { $0.append(delta) }
            case .step: steps.withLock { $0 += 1 }
            default: break
            }
        })
        let result = loop.run(task: "Greet me.")
        #expect(result.answer == "Hello there")
        #expect(seen.withLock { $0 } == ["Hel", "lo ", "there"])
        #expect(steps.withLock { $0 } == 1)
    }

    @Test func aSecondRunContinuesTheConversation() throws {
        let bench = try AgentBench([["text": "Hello."], ["expect": "And again", "text": "Hello again."]])
        let loop = bench.loop()
        _ = loop.run(task: "Say hello.")
        let second = loop.run(task: "And again.")
        #expect(second.stopReason == .completed, "\(second.summary)")
        #expect(loop.messages.count == 4)
        #expect(second.messages.first?["role"] == "system")
        // The process's counters add up over the conversation's tasks.
        #expect(loop.process.stats.steps == 2)
        #expect(loop.process.stats.tasks == 2)
    }
}

@Suite("agent loop with the real local model", .serialized, .enabled(if: RealLocalModel.isSetUp, RealLocalModel.skipReason))
struct AgentLocalModelTests {
    @Test func whatIs1234Times5678ThroughCalc() throws {
        let bench = try CPUBench("local", config: ["max_tokens": 64], grants: [localGrant])
        try bench.kernel.load(manifestAt: Paths.manifests + "/calc.yaml")
        var options = AgentOptions()
        options.temperature = 0
        let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "local", tools: ["calc.mul"]),
                                   budgets: AgentBudgets(maxSteps: 4))
        let result = AgentLoop(kernel: bench.kernel, process: process, options: options).run(task: "What is 1234 * 5678?")
        // A 135M model may answer well or badly; the loop must end with a reason either way,
        // every request counted by the model's own tokenizer and within its window.
        #expect(result.stopReason != .cpuError, "\(result.summary)")
        for step in result.steps {
            #expect(step.request.counted)
            #expect(step.request.promptTokens <= step.request.promptLimit)
        }
        let mul = result.allCalls.first { $0.call.name == "calc.mul" && $0.outcome == .ok }
        #expect(mul != nil, "the model never called calc.mul: \(result.summary)")
        if let mul, mul.call.arguments == ["a": 1234, "b": 5678] { #expect(mul.content.contains("7006652")) }
        print("agent with SmolLM2: \(result.summary) → \(result.answer ?? "(no answer)")")
    }
}
