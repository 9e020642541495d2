import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

// Agent processes as the system sees them: the scheduler's fair queue, the process table,
// the three ways to stop a process, waiting states, budgets on cost, the lack-of-progress
// loop, plans, and the audit naming the process. Against the real scripted cpu and calc.

/// Records the order in which holders of a slot got it.
private final class GrantLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var order: [String] = []
    func add(_ s: String) { lock.lock(); order.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return order }
}

private func monotonicNow() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

private final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [CPUScheduler.Event] = []
    func add(_ e: CPUScheduler.Event) { lock.lock(); events.append(e); lock.unlock() }
    var all: [CPUScheduler.Event] { lock.lock(); defer { lock.unlock() }; return events }
}

/// Waits (polling, no wall-clock assertion) until `condition` holds; fails the test after ~20 s.
private func eventually(_ what: String, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    for _ in 0..<4000 {
        if condition() { return }
        usleep(5_000)
    }
    Issue.record("never happened: \(what)", sourceLocation: sourceLocation)
}

@Suite("agent processes: scheduler") struct CPUSchedulerTests {
    @Test func waitersAreServedRoundRobinByProcessNotFirstComeFirstServed() {
        let scheduler = CPUScheduler(defaultLimit: 1)
        let log = GrantLog()
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        // Someone holds the only slot while the queue forms.
        Thread.detachNewThread {
            try? scheduler.withSlot("m", pid: 99, isCancelled: { false }, deadlineNs: nil) { () throws(LLMOSError) in
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        let group = DispatchGroup()
        // Process 1 queues three calls, then 2 and 3 one each, in that order.
        for (pid, label) in [(1, "a1"), (1, "a2"), (1, "a3"), (2, "b"), (3, "c")] {
            let before = scheduler.snapshot("m").waiting
            group.enter()
            Thread.detachNewThread {
                try? scheduler.withSlot("m", pid: pid, isCancelled: { false }, deadlineNs: nil) { () throws(LLMOSError) in log.add(label) }
                group.leave()
            }
            eventually("\(label) queued") { scheduler.snapshot("m").waiting == before + 1 }
        }
        release.signal()
        group.wait()
        // One call per process in turn: 1, 2, 3, then 1's others.
        #expect(log.all == ["a1", "b", "c", "a2", "a3"])
        let snapshot = scheduler.snapshot("m")
        #expect(snapshot.served == [99: 1, 1: 3, 2: 1, 3: 1])
        #expect(snapshot.running == 0 && snapshot.waiting == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueueAndADeadlineIsATimeout() {
        let scheduler = CPUScheduler(defaultLimit: 1)
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? scheduler.withSlot("m", pid: 1, isCancelled: { false }, deadlineNs: nil) { () throws(LLMOSError) in
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        let token = CancellationToken()
        cancel(token, after: 20)
        let cancelled = expectError { try scheduler.withSlot("m", pid: 2, isCancelled: { token.isCancelled }, deadlineNs: nil) { () throws(LLMOSError) in } }
        #expect(cancelled.code == .cancelled)
        #expect(cancelled.message.contains("waiting for the cpu driver m"))
        let late = expectError { try scheduler.withSlot("m", pid: 3, isCancelled: { false }, deadlineNs: monotonicNow() + 10_000_000) { () throws(LLMOSError) in } }
        #expect(late.code == .timeout)
        #expect(late.message.contains("--cpu-slots m=N"))
        #expect(scheduler.snapshot("m").waiting == 0)
        release.signal()
        // The slot is free again for the next caller.
        eventually("the slot is released") { scheduler.snapshot("m").running == 0 }
        #expect((try? scheduler.withSlot("m", pid: 4, isCancelled: { false }, deadlineNs: nil) { () throws(LLMOSError) in 42 }) == 42)
    }

    @Test func theOperatorsLimitWinsOverTheDriversOwn() {
        let scheduler = CPUScheduler(defaultLimit: 4, limits: ["local": 2])
        scheduler.driverReports(1, for: "local")
        scheduler.driverReports(3, for: "remote")
        #expect(scheduler.limit(for: "local") == 2)
        #expect(scheduler.limit(for: "remote") == 3)
        #expect(scheduler.limit(for: "other") == 4)
    }

    @Test func manyProcessesShareASlowCPUFairly() throws {
        // 8 processes, each 4 model turns on a cpu with one slot and a 10 ms turn.
        let bench = try AgentBench([["delay_ms": 10, "tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]]]], onEnd: "loop")
        bench.kernel.scheduler.setLimit(1, for: "scripted")
        let queueEvents = EventLog()
        bench.kernel.scheduler.observe { queueEvents.add($0) }
        let loops = (0..<8).map { _ in
            bench.loop(budgets: AgentBudgets(maxSteps: 4), configure: { $0.loopThreshold = 10 }, observer: nil)
        }
        // Hold the slot until every process is queued, so the order is the scheduler's alone.
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? bench.kernel.scheduler.withSlot("scripted", pid: 0, isCancelled: { false }, deadlineNs: nil) { () throws(LLMOSError) in
                holding.signal()
                release.wait()
            }
        }
        holding.wait()
        let group = DispatchGroup()
        let results = Mutex<[Int: AgentRunResult]>([:])
        for loop in loops {
            group.enter()
            Thread.detachNewThread {
                let result = loop.run(task: "Add 1 and 2, again and again.")
                results.withLock { $0[loop.process.pid] = result }
                group.leave()
            }
        }
        eventually("all 8 queued") { bench.kernel.scheduler.snapshot("scripted").waiting == 8 }
        // While queued, each process says what it waits for.
        for loop in loops {
            guard case .waiting(.cpu(driver: "scripted", _)) = loop.process.state else {
                Issue.record("process \(loop.process.pid) is \(loop.process.state), not waiting for the cpu")
                continue
            }
        }
        #expect(bench.kernel.processes.all.filter { $0.state.name == "waiting" }.count == 8)
        release.signal()
        group.wait()

        let all = results.withLock { $0 }
        #expect(all.count == 8)
        #expect(all.values.allSatisfy { $0.stopReason == .maxSteps && $0.steps.count == 4 })
        // Round robin by process: while a process waited, no other process got two turns.
        let events = queueEvents.all
        var waitingSince: [Int: Int] = [:]
        for (i, event) in events.enumerated() {
            switch event {
            case .queued(_, let pid): waitingSince[pid] = i
            case .granted(_, let pid):
                guard let since = waitingSince.removeValue(forKey: pid) else { continue }
                var turns: [Int: Int] = [:]
                for case .granted(_, let other) in events[since..<i] { turns[other, default: 0] += 1 }
                #expect(turns.values.allSatisfy { $0 <= 1 }, "while \(pid) waited: \(turns)")
            }
        }
        #expect(events.filter { if case .granted = $0 { return true } else { return false } }.count == 8 * 4 + 1)
        let served = bench.kernel.scheduler.snapshot("scripted").served
        for loop in loops { #expect(served[loop.process.pid] == 4) }
    }
}

@Suite("agent processes: lifecycle") struct AgentProcessLifecycleTests {
    @Test func terminateGivesOneLastTurnThenStops() throws {
        let bench = try AgentBench([
            toolCall("calc.add", ["a": 1, "b": 2]),
            ["expect": "you were asked to stop", "text": "Best so far: 3."],
        ])
        let box = Mutex<AgentProcess?>(nil)
        let loop = bench.loop(observer: { event in
            // SIGTERM while the first step's tool call runs.
            if case .toolCall = event { box.withLock { $0 }?.terminate() }
        })
        box.withLock { $0 = loop.process }
        let result = loop.run(task: "Add 1 and 2.")
        #expect(result.stopReason == .cancelled, "\(result.summary)")
        #expect(result.answer == "Best so far: 3.")
        #expect(result.steps.map(\.kind) == [.normal, .final])
        #expect(result.detail.contains("request to stop"))
        #expect(loop.process.state == .finished(.cancelled))
        #expect(loop.run(task: "More?").detail.contains("runs no more tasks"))
    }

    @Test func cancellingATurnKeepsTheConversation() throws {
        let bench = try AgentBench([["delay_ms": 60_000, "text": "too late"], ["expect": "Second", "text": "here"]])
        let loop = bench.loop(configure: { $0.keepsProcess = true })
        cancel(loop.process.cancellation, after: 50)
        let first = loop.run(task: "First task, slow.")
        #expect(first.stopReason == .cancelled)
        #expect(loop.process.state == .idle(.cancelled))
        let second = loop.run(task: "Second task.")
        #expect(second.stopReason == .completed, "\(second.summary)")
        #expect(second.answer == "here")
        #expect(loop.messages.contains { $0["content"]?.stringValue == "First task, slow." })
        #expect(loop.process.stats.tasks == 2)
        loop.process.exit()
        #expect(loop.process.state == .finished(.completed))
    }

    @Test func killCancelsAtOnceThroughTheProcessTable() throws {
        let bench = try AgentBench([["delay_ms": 60_000, "text": "too late"]])
        let loop = bench.loop(configure: { $0.keepsProcess = true })
        Thread.detachNewThread {
            usleep(50_000)
            _ = try? bench.kernel.processes.signal(loop.process.pid, .kill)
        }
        let result = loop.run(task: "Slow.")
        #expect(result.stopReason == .cancelled)
        #expect(loop.process.state == .finished(.cancelled))
        let gone = expectError { try bench.kernel.processes.signal(loop.process.pid, .kill) }
        #expect(gone.code == .conflict)
        let missing = expectError { try bench.kernel.processes.signal(424242, .terminate) }
        #expect(missing.code == .notFound)
        #expect(missing.message.contains("no agent process 424242"))
    }

    @Test func aPermissionPromptMarksTheProcessWaitingAndNamesIt() throws {
        final class WatchingAsker: Asker, @unchecked Sendable {
            var seen: [(AccessRequest, AgentState?)] = []
            func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer {
                seen.append((request, request.agent.flatMap(AgentProcess.lookup)?.state))
                return .allowOnce
            }
        }
        let asker = WatchingAsker()
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "tool.call=calc.mul", action: .ask)])
        let bench = try AgentBench([toolCall("calc.mul", ["a": 6, "b": 7]), ["expect": "42", "text": "42"]])
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy, asker: asker)
            c.audit = bench.audit
            c.driverConfig = bench.kernel.configuration.driverConfig
        }
        for name in ["scripted", "calc"] { try kernel.load(manifestAt: Paths.manifests + "/\(name).yaml") }
        let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "scripted"))
        let result = AgentLoop(kernel: kernel, process: process).run(task: "6 times 7?")
        #expect(result.stopReason == .completed, "\(result.summary)")
        let (request, state) = try #require(asker.seen.first)
        #expect(request.agent == process.pid)
        #expect(state == .waiting(.permission("tool.call calc.mul")))
        // The audit names the agent process for its calls.
        let label = AuditEntry.processLabel(agent: process.pid)
        #expect(bench.audit.records.contains { $0.process == label && $0.tool == "" && $0.resource == "calc.mul" })
    }
}

@Suite("agent processes: budgets, loops and plans") struct AgentBudgetAndPlanTests {
    @Test func theCostBudgetGetsOneLastTurn() throws {
        let usage: JSONValue = ["input_tokens": 1000, "output_tokens": 100]
        let bench = try AgentBench([
            ["usage": usage, "tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]]],
            ["usage": usage, "expect": "cost budget", "text": "3, as far as I got."],
        ])
        // $1 per million in, $10 per million out: each turn costs $0.002.
        let result = bench.run("Add.", budgets: AgentBudgets(maxCostUSD: 0.005)) {
            $0.pricing = AgentPricing(inputPerMillion: 1, outputPerMillion: 10)
        }
        #expect(result.stopReason == .budget, "\(result.summary)")
        #expect(result.detail.contains("the cost budget of $0.0050"))
        #expect(result.answer == "3, as far as I got.")
        #expect(abs((result.costUSD ?? 0) - 0.004) < 1e-9)
        #expect(result.json["usage"]?["cost_usd"]?.doubleValue != nil)
    }

    @Test func callsThatBringNothingNewAreALoopToo() throws {
        // A model guessing one wrong tool name after another: each refusal differs, none helps.
        var turns: [JSONValue] = (1...6).map { toolCall("calc.guess\($0)", ["a": 1]) }
        turns.append(["expect": "Tools are off now", "text": "I could not do it."])
        let bench = try AgentBench(turns)
        let result = bench.run("Do something.") { $0.progressWindow = 3 }
        #expect(result.stopReason == .loop, "\(result.summary)")
        #expect(result.detail.contains("brought nothing new"))
        #expect(result.steps[2].notes.first?.contains("Your last 3 tool calls brought nothing new") == true)
        #expect(result.steps.last?.kind == .forcedAnswer)
        #expect(result.answer == "I could not do it.")
    }

    @Test func aNumberedListBeforeToolCallsIsThePlan() throws {
        let bench = try AgentBench([
            ["text": "Plan:\n1. Multiply 12 by 3\n2. Add 4\n", "tool_calls": [["name": "calc.mul", "arguments": ["a": 12, "b": 3]]]],
            toolCall("calc.add", ["a": 36, "b": 4]),
            ["text": "40"],
        ])
        let plans = Mutex<[[String]]>([])
        let loop = bench.loop(observer: { event in if case .plan(_, let items) = event { plans.withLock { $0.append(items) } } })
        let result = loop.run(task: "12 * 3 + 4?")
        #expect(result.stopReason == .completed)
        #expect(result.plan == ["Multiply 12 by 3", "Add 4"])
        #expect(plans.withLock { $0 } == [["Multiply 12 by 3", "Add 4"]])
        #expect(AgentPlan.parse("The answer is 1. Really.") == nil)
        #expect(AgentPlan.parse("- [ ] fetch\n- [ ] sum") == ["fetch", "sum"])
        #expect(AgentPlan.parse("1) one\n2) two\n\nthen prose 3. no") == ["one", "two"])
    }
}

@Suite("agent processes: many tools") struct AgentToolSelectionTests {
    @Test func theRelevantToolsAreShownWhenAllWouldNotFit() throws {
        // A 1024-token context: the 12 calc and text definitions would not fit their share.
        let bench = try AgentBench([
            toolCall("calc.mul", ["a": 6, "b": 7]),
            ["expect": "42", "tool_calls": [["name": "text.count", "arguments": ["text": "forty two"]]]],
            ["expect": "\"words\":2", "text": "42, in two words."],
        ], contextLength: 1024)
        let result = bench.run("Multiply 6 by 7 (a * b), then count the words.")
        #expect(result.stopReason == .completed, "\(result.summary)")
        let request = try #require(result.steps.first?.request)
        #expect(request.availableTools == 12)
        #expect(request.tools < 12 && request.tools >= 1, "\(request)")
        // A tool that was not shown is still callable by its name.
        #expect(result.allCalls.map(\.outcome) == [.ok, .ok])
    }

    @Test func rankingPrefersTheToolsTheTaskNames() {
        let specs: [JSONValue] = [
            ["name": "text.reverse", "description": "Reverse a text character by character.", "input_schema": ["type": "object"]],
            ["name": "calc.mul", "description": "Multiply two numbers (a * b).", "input_schema": ["type": "object"]],
            ["name": "calc.div", "description": "Divide a by b (a / b).", "input_schema": ["type": "object"]],
        ]
        #expect(ToolSelection.select(task: "What is 1234 * 5678?", specs: specs, budgetTokens: 60) == [1])
        #expect(ToolSelection.select(task: "What is 144 divided by 12?", specs: specs, budgetTokens: 60) == [2])
        #expect(ToolSelection.select(task: "Reverse 'stressed'", specs: specs, budgetTokens: 60) == [0])
        // Everything fits: everything is shown.
        #expect(ToolSelection.select(task: "anything", specs: specs, budgetTokens: 10_000) == [0, 1, 2])
    }
}
