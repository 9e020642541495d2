import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The agent loop's pure parts: the loop detector, the budgets, the context window, the
// system prompt, reading a cpu reply. No driver, no clock.

@Suite("agent: loop detector") struct AgentLoopDetectorTests {
    @Test func sameCallSameResultWarnsThenWithholdsTools() {
        var detector = LoopDetector(threshold: 3)
        let call: (name: String, arguments: JSONValue, result: String) = ("calc.add", ["a": 1, "b": 2], #"{"result":3}"#)
        #expect(detector.record([call]) == .none)
        #expect(detector.record([call]) == .none)
        #expect(detector.record([call]) == .warn(name: "calc.add", count: 3))
        #expect(detector.level == 1)
        #expect(detector.record([call]) == .withholdTools(name: "calc.add", count: 4))
        #expect(detector.level == 2)
    }

    @Test func argumentKeyOrderDoesNotHideALoop() {
        var detector = LoopDetector(threshold: 2)
        #expect(detector.record([("calc.add", ["a": 1, "b": 2], "3")]) == .none)
        #expect(detector.record([("calc.add", ["b": 2, "a": 1], "3")]) == .warn(name: "calc.add", count: 2))
    }

    @Test func aDifferentResultIsProgressNotALoop() {
        var detector = LoopDetector(threshold: 3)
        for i in 0..<6 {
            #expect(detector.record([("fs.read", ["path": "log.txt"], "line \(i)")]) == .none)
        }
    }

    @Test func alternatingCallsAreCaughtToo() {
        var detector = LoopDetector(threshold: 3)
        let a: (name: String, arguments: JSONValue, result: String) = ("calc.add", ["a": 1, "b": 2], "3")
        let b: (name: String, arguments: JSONValue, result: String) = ("calc.sub", ["a": 3, "b": 2], "1")
        var actions: [LoopDetector.Action] = []
        for call in [a, b, a, b, a] { actions.append(detector.record([call])) }
        #expect(actions.last == .warn(name: "calc.add", count: 3))
    }
}

@Suite("agent: budgets") struct AgentBudgetTests {
    @Test func theStepBeforeTheLimitIsTheLastTurn() {
        var tracker = BudgetTracker(AgentBudgets(maxSteps: 3), startNs: 0)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 10) == nil)
        tracker.recordStep(usage: nil)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 10) == nil)
        tracker.recordStep(usage: nil)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 10)?.reason == .maxSteps)   // the third turn is the last
        #expect(tracker.exhausted(now: 0, nextPromptTokens: 10) == nil)
        tracker.recordStep(usage: nil)
        #expect(tracker.exhausted(now: 0, nextPromptTokens: 10)?.what == "the step limit of 3")
    }

    @Test func toolCallsUsedUpMakeTheNextTurnTheLast() {
        var tracker = BudgetTracker(AgentBudgets(maxSteps: 50, maxToolCalls: 2), startNs: 0)
        tracker.recordToolCalls(1)
        #expect(tracker.toolCallsLeft == 1)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 1) == nil)
        tracker.recordToolCalls(1)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 1) == .init(reason: .budget, what: "the tool call budget of 2"))
    }

    @Test func tokensRunningOutLeaveRoomForOneLastTurn() {
        var tracker = BudgetTracker(AgentBudgets(maxSteps: 50, maxInputTokens: 1000, maxOutputTokens: 100), startNs: 0)
        tracker.recordStep(usage: AgentUsage(inputTokens: 300, outputTokens: 30), elapsedNs: 1)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 300) == nil)        // 300 + 600 ≤ 1000, 70 ≥ 60
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 400)?.what == "the input token budget of 1000")
        tracker.recordStep(usage: AgentUsage(inputTokens: 100, outputTokens: 20), elapsedNs: 1)
        #expect(tracker.lastTurn(now: 0, nextPromptTokens: 10)?.what == "the output token budget of 100")   // 50 left < 2 × 30
        #expect(tracker.exhausted(now: 0, nextPromptTokens: 601)?.what == "the input token budget of 1000")
        tracker.recordStep(usage: AgentUsage(inputTokens: 10, outputTokens: 50), elapsedNs: 1)
        #expect(tracker.exhausted(now: 0, nextPromptTokens: 1)?.what == "the output token budget of 100")
    }

    @Test func wallTimeIsJudgedByTheLongestStep() {
        var tracker = BudgetTracker(AgentBudgets(maxSteps: 50, maxWallTimeMs: 1000), startNs: 0)
        tracker.recordStep(usage: nil, elapsedNs: 300_000_000)
        #expect(tracker.lastTurn(now: 300_000_000, nextPromptTokens: 1) == nil)     // 700 ms left ≥ 2 × 300
        #expect(tracker.lastTurn(now: 500_000_000, nextPromptTokens: 1)?.what == "the wall time budget of 1000 ms")
        #expect(tracker.exhausted(now: 1_000_000_000, nextPromptTokens: 1)?.reason == .budget)
        #expect(tracker.wallTimeLeftMs(now: 400_000_000) == 600)
    }
}

@Suite("agent: context window") struct AgentContextWindowTests {
    static func user(_ text: String) -> JSONValue { ["role": "user", "content": .string(text)] }
    static func call(_ id: String) -> JSONValue {
        ["role": "assistant", "content": nil, "tool_calls": [["id": .string(id), "name": "text.reverse", "arguments": ["text": "abc"]]]]
    }
    static func result(_ id: String, _ text: String) -> JSONValue { ["role": "tool", "tool_call_id": .string(id), "content": .string(text)] }

    @Test func dropsOldestUnitsKeepingToolResultsWithTheirCalls() {
        let big = String(repeating: "x", count: 300)    // 100 tokens
        let conversation = [Self.user("task"), Self.call("c1"), Self.result("c1", big), Self.call("c2"), Self.result("c2", big),
                            Self.call("c3"), Self.result("c3", big)]
        let system: JSONValue = ["role": "system", "content": "be brief"]
        let all = ContextWindow.assemble(system: system, conversation: conversation, pinned: 0, limit: 10_000)
        #expect(all.dropped == 0 && all.fits && all.messages.count == 8)

        let tight = ContextWindow.assemble(system: system, conversation: conversation, pinned: 0, limit: 200)
        #expect(tight.fits)
        #expect(tight.tokens <= 200)
        #expect(tight.dropped == 4)                                     // c1 and c2 with their results
        #expect(tight.messages.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant", "tool"])
        #expect(tight.messages[1]["content"] == "task")                 // the task is pinned
        #expect(tight.messages[3]["tool_call_id"] == "c3")              // the newest unit is kept
        // Never a tool message without the assistant message that asked for it.
        for (i, m) in tight.messages.enumerated() where m["role"] == "tool" {
            #expect(tight.messages[i - 1]["role"] == "assistant" || tight.messages[i - 1]["role"] == "tool")
        }
    }

    @Test func shortensTheNewestToolResultWhenNothingElseCanGo() {
        let huge = String(repeating: "y", count: 3000)   // 1000 tokens
        let conversation = [Self.user("task"), Self.call("c1"), Self.result("c1", huge)]
        let window = ContextWindow.assemble(system: nil, conversation: conversation, pinned: 0, limit: 200)
        #expect(window.fits)
        #expect(window.truncated == 1)
        #expect(window.tokens <= 200)
        let content = window.messages[2]["content"]?.stringValue ?? ""
        #expect(content.contains("cut to fit the context window"))
        #expect(content.hasPrefix("yyyy"))
    }

    @Test func saysWhenEvenTheTaskDoesNotFit() {
        let window = ContextWindow.assemble(system: nil, conversation: [Self.user(String(repeating: "z", count: 3000))], pinned: 0, limit: 100)
        #expect(!window.fits)
    }

    @Test func aPinnedTaskAfterEarlierRunsSurvivesAndOlderRunsGoFirst() {
        let big = String(repeating: "x", count: 300)
        let conversation = [Self.user("first task " + big), ["role": "assistant", "content": .string(big)], Self.user("second task"),
                            Self.call("c1"), Self.result("c1", big)]
        let window = ContextWindow.assemble(system: nil, conversation: conversation, pinned: 2, limit: 230)
        #expect(window.fits)
        #expect(window.messages.first?["content"] == "second task")
        #expect(window.dropped == 2)
    }

    @Test func theEstimateIsConservative() {
        // ~3 bytes a token: above what real tokenizers give for English prose (~4).
        #expect(ContextWindow.estimate("The quick brown fox jumps over the lazy dog.") == 15)
        #expect(ContextWindow.estimate(message: ["role": "user", "content": ""]) == ContextWindow.messageOverhead)
    }
}

@Suite("agent: prompts and replies") struct AgentPromptTests {
    @Test func theSystemPromptIsShortAndSaysDateWorkspaceAndTools() {
        let date = Date(timeIntervalSince1970: 1_764_590_400)   // 2025-12-01 12:00 UTC
        let text = AgentPrompts.system(date: date, workspace: "/home/u/project", hasTools: true, timeZone: TimeZone(identifier: "UTC")!)
        #expect(text.contains("Monday 1 December 2025"))
        #expect(text.contains("/home/u/project"))
        #expect(text.contains("JSON arguments"))
        #expect(ContextWindow.estimate(text) < 100)
        let bare = AgentPrompts.system(date: date, workspace: "/w", hasTools: false, timeZone: TimeZone(identifier: "UTC")!)
        #expect(!bare.contains("tool"))
    }

    @Test func argumentShapesForModels() {
        let schema: JSONValue = ["type": "object", "properties": ["a": ["type": "number"], "mode": ["enum": ["x", "y"]]], "required": ["a"]]
        #expect(AgentToolbox.shape(of: schema) == #"{"a": number, "mode": one of "x", "y"} (required: a)"#)
    }

    @Test func repliesOfTheWrongShapeAreInvalidOutput() {
        func error(_ text: String) -> LLMOSError? {
            if case .failure(let e) = AgentRunState.parseReply(text, cpu: "scripted") { return e }
            return nil
        }
        #expect(error("[]")?.code == .invalidOutput)
        #expect(error(#"{"message": 5}"#)?.message.contains("no message object") == true)
        #expect(error(#"{"message": {"content": 3}}"#)?.message.contains("message.content is a") == true)
        #expect(error(#"{"message": {"content": null, "tool_calls": [{"id": "x"}]}}"#)?.message.contains("has no name") == true)
        // OpenAI's wire form, arguments as a string of JSON, is read; a bad one is kept raw.
        let good = AgentRunState.parseReply(#"{"message": {"content": null, "tool_calls": [{"id": "a", "name": "calc.add", "arguments": "{\"a\":1,\"b\":2}"}, {"id": "b", "name": "calc.add", "arguments": "{\"a\":"}]}, "finish_reason": "tool_calls", "usage": {"input_tokens": 5, "output_tokens": 6}, "model": "m"}"#, cpu: "scripted")
        guard case .success(let reply) = good else { Issue.record("not parsed"); return }
        #expect(reply.toolCalls[0].arguments == ["a": 1, "b": 2])
        #expect(reply.toolCalls[1].rawArguments == #"{"a":"#)
        #expect(reply.usage == AgentUsage(inputTokens: 5, outputTokens: 6, estimated: false))
    }
}
