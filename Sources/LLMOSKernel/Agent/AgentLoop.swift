import CLLMOSSystem
import Dispatch
import Foundation
import LLMOSJSON

/// How a loop behaves. The defaults suit a small local model.
public struct AgentOptions: Sendable {
    /// Replaces the kernel's system prompt (`AgentPrompts.system`).
    public var systemPrompt: String?
    /// The workspace named in the system prompt; nil: the kernel's.
    public var workspace: String?
    /// Today's date, for the system prompt.
    public var now: @Sendable () -> Date = { Date() }
    public var timeZone: TimeZone = .current
    /// CLOCK_MONOTONIC nanoseconds, for the wall-time budget (tests pass their own).
    public var clock: @Sendable () -> UInt64 = { llmos_monotonic_ns() }
    /// The same call with the same result this many times is a loop.
    public var loopThreshold = 3
    /// Denied tool calls in one run before it stops with `denied`; 0 never stops (every
    /// denial is only told to the model). See docs/AGENTS.md for why 2.
    public var maxDenials = 2
    /// Most tokens one reply may have; nil: a quarter of the context (at most the model's
    /// max_output_tokens, at most 4096).
    public var maxTokensPerTurn: Int?
    public var temperature: Double?
    /// Count the prompt with the cpu driver's `count_tokens` when it has one (exact), rather
    /// than only estimate it.
    public var exactTokenCounts = true
    /// Ask the cpu driver to stream when there is an observer and the driver can.
    public var stream = true
    /// A tool result longer than this share of the prompt's limit is cut when it arrives.
    public var maxToolResultShare = 0.5
    /// The context length when the cpu driver has no `info`.
    public var defaultContextLength = 4096
    /// The most of the prompt tool definitions may take; beyond it the model is shown the
    /// tools most relevant to the task (the rest stay callable).
    public var toolShare = 0.4
    /// This many tool calls in a row with nothing new (no call succeeding with a result not
    /// seen before) is a loop too.
    public var progressWindow = 8
    /// true (a conversation, `llmos run`): when a task ends the process is idle, waiting for
    /// the next one. false (one shot, `llmos ask`): the process is finished with its task.
    public var keepsProcess = true
    /// Prices for the cost budget; nil: the cpu driver's `info.pricing`, else free.
    public var pricing: AgentPricing?
    /// With a storage driver: passages retrieved for each task, at most this many...
    public var retrievalLimit = 4
    /// ...and at most this share of the prompt.
    public var retrievalShare = 0.25

    public init() {}
}

/// What a model's tokens cost, in US dollars per million.
public struct AgentPricing: Sendable, Equatable {
    public var inputPerMillion: Double
    public var outputPerMillion: Double

    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }

    public func cost(_ usage: AgentUsage) -> Double {
        (Double(usage.inputTokens) * inputPerMillion + Double(usage.outputTokens) * outputPerMillion) / 1_000_000
    }
}

/// The agent loop: a process's task, run step by step against its cpu driver, with the
/// tools the registry offers, each call mediated and audited by `Kernel.call`. It survives
/// the model's failure modes on purpose — hallucinated tools and arguments, unreadable
/// output, a context that would overflow, loops, budgets running out — each turned into
/// something the model reads or a typed stop. See docs/AGENTS.md.
///
/// The conversation is kept between runs (`run` again continues it; `reset` forgets it).
/// `run` blocks its thread; cancel it from another with `process.cancel()`.
public final class AgentLoop: @unchecked Sendable {
    public let kernel: Kernel
    public let process: AgentProcess
    public let options: AgentOptions
    private let observer: (@Sendable (AgentEvent) -> Void)?

    /// What decides the context of each request (the process's memory driver, or the
    /// kernel's window); nil when the driver set names a memory that is not loaded.
    public let memory: (any ContextMemory)?

    private let lock = PThreadMutex()
    /// The conversation without the system prompt, oldest first (the transcript; what the
    /// model is sent is the memory's choice).
    private var history: [JSONValue] = []
    private var running = false

    public init(kernel: Kernel, process: AgentProcess, options: AgentOptions = AgentOptions(),
                observer: (@Sendable (AgentEvent) -> Void)? = nil) {
        self.kernel = kernel
        self.process = process
        self.options = options
        self.observer = observer
        memory = kernel.contextMemory(named: process.drivers.memory, pid: process.pid)
        kernel.processes.add(process)
    }

    /// The conversation so far (system prompt not included).
    public var messages: [JSONValue] { lock.withLock { history } }

    /// Earlier turns of a conversation that happened elsewhere (an HTTP client sends the
    /// whole conversation with each request): appended, oldest first, to the transcript and
    /// to the memory before the next task, as if they had happened in this process. Each is
    /// a `{"role": "user" | "assistant", "content": TEXT}` message.
    public func preload(_ earlier: [JSONValue]) throws(LLMOSError) {
        var options = CallOptions()
        options.agent = process.pid
        for message in earlier {
            if let memory { _ = try memory.append(message, options: options) }
            lock.withLock { history.append(message) }
        }
    }

    /// Forgets the conversation (the memory's copy too).
    public func reset() {
        lock.withLock { history.removeAll() }
        var options = CallOptions()
        options.agent = process.pid
        try? memory?.clear(options: options)
    }

    /// What the cpu driver says about its model, with defaults for a driver without `info`.
    struct ModelInfo {
        var contextLength: Int
        var maxOutputTokens: Int?
        var streaming = false
        var canCount = false
        var pricing: AgentPricing?
    }

    /// Runs one task to its end and returns the transcript. Never throws: every failure is
    /// a step's error, a message the model reads, or a stop reason.
    public func run(task: String) -> AgentRunResult {
        let busy = lock.withLock { () -> Bool in
            if running { return true }
            running = true
            return false
        }
        if busy {
            return AgentRunResult(pid: process.pid, task: task, answer: nil, stopReason: .cpuError,
                                  detail: "process \(process.pid) is already running a task", steps: [], usage: AgentUsage(),
                                  toolCalls: 0, messages: messages, elapsedNanoseconds: 0)
        }
        defer { lock.withLock { running = false } }
        guard let token = process.beginTask() else {
            return AgentRunResult(pid: process.pid, task: task, answer: nil, stopReason: .cancelled,
                                  detail: "process \(process.pid) is \(process.state): it runs no more tasks", steps: [], usage: AgentUsage(),
                                  toolCalls: 0, messages: messages, elapsedNanoseconds: 0)
        }
        var run = AgentRunState(loop: self, task: task, token: token)
        return run.execute()
    }

    fileprivate func emit(_ event: AgentEvent) { observer?(event) }
    fileprivate var hasObserver: Bool { observer != nil }
    fileprivate func setHistory(_ messages: [JSONValue]) { lock.withLock { history = messages } }
}

/// The state of one run.
struct AgentRunState {
    let loop: AgentLoop
    let task: String
    /// This task's cancellation (Ctrl-C cancels it; the process may go on).
    let token: CancellationToken
    var kernel: Kernel { loop.kernel }
    var process: AgentProcess { loop.process }
    var options: AgentOptions { loop.options }

    var history: [JSONValue]
    /// Index in `history` of this run's task.
    let taskIndex: Int
    /// The memory's id of this run's task: never left out of the context.
    var taskID: String?
    /// Set when the memory failed to store a message: the run stops with memory_error.
    var memoryFailure: LLMOSError?
    /// Passages retrieved from storage for this task, placed in the system message.
    var retrieved: [RetrievedPassage] = []
    /// Why nothing was retrieved, or how (a driver's warning: "ranked by text alone").
    var retrievalNote: String?
    var budget: BudgetTracker
    var detector: LoopDetector
    var steps: [AgentStep] = []
    var denials = 0
    /// The previous step's output was unreadable (already re-asked once).
    var malformedBefore = false
    /// Told to the model in the next request only: why its last reply could not be read.
    var repairNote: String?
    /// Set by the loop detector: the next turn has no tools, and the run stops after it.
    var forcedTool: String?
    /// Set when that was for a lack of progress rather than one repeated call.
    var stalledCalls: Int?
    /// The last text the model gave, for stops other than `completed`.
    var lastText: String?
    /// Multiplies token estimates; learned from the driver's counts.
    var scale = 1.0
    var canCount = false
    /// The system message sent with every request.
    var system: JSONValue?
    let start: UInt64
    /// The plan the model gave (a numbered list in its text), once it gave one.
    var plan: [String] = []
    var pricing: AgentPricing?
    /// The process's counters before this task (a conversation's earlier tasks).
    let baseStats: AgentProcessStats
    /// This step's time in the cpu driver (complete, count_tokens) and in its queue.
    var stepCPUNs: UInt64 = 0
    var stepQueueNs: UInt64 = 0

    init(loop: AgentLoop, task: String, token: CancellationToken) {
        baseStats = loop.process.stats
        self.loop = loop
        self.task = task
        self.token = token
        history = loop.messages
        taskIndex = history.count
        start = loop.options.clock()
        budget = BudgetTracker(loop.process.budgets, startNs: start)
        detector = LoopDetector(threshold: loop.options.loopThreshold, progressWindow: loop.options.progressWindow)
    }

    var isCancelled: Bool { token.isCancelled || process.isKilled }

    /// Options for every call of this task: its cancellation, and whose call it is.
    var callOptions: CallOptions {
        var options = CallOptions(cancellation: token)
        options.agent = process.pid
        return options
    }

    // MARK: The loop

    mutating func execute() -> AgentRunResult {
        let cpu = process.drivers.cpu
        guard let driver = kernel.driver(named: cpu) else {
            let near = NearestNames.suggestion(for: cpu, in: kernel.loadedDrivers.filter { $0.deviceClass == .cpu }.map(\.name))
            return finish(.cpuError, "no cpu driver named \(cpu) is loaded\(near)")
        }
        guard driver.deviceClass == .cpu, kernel.hasTool("\(cpu).complete") else {
            return finish(.cpuError, "\(cpu) is a \(driver.deviceClass.rawValue) driver, not a cpu driver (it has no complete)")
        }
        guard let memory = loop.memory else {
            return finish(.memoryError, "no memory driver named \(process.drivers.memory) is loaded (the kernel's own is window)")
        }
        taskID = appendMessage(["role": "user", "content": .string(task)])
        let info = modelInfo(cpu)
        canCount = info.canCount && options.exactTokenCounts
        pricing = options.pricing ?? info.pricing
        let reserve = options.maxTokensPerTurn
            ?? min(info.maxOutputTokens ?? 4096, 4096, max(16, info.contextLength / 4))
        // The disk: passages for this task from the chosen storage, cited by number.
        if let storage = process.drivers.storage {
            retrieved = retrieve(storage, budgetTokens: Int(Double(info.contextLength - reserve) * options.retrievalShare))
        }
        var extraTools = memory.modelTools
        if let storage = process.drivers.storage, kernel.hasTool("\(storage).search") { extraTools.append("\(storage).search") }
        var toolbox = AgentToolbox(kernel: kernel, drivers: process.drivers, alsoOffer: extraTools)
        var systemText = options.systemPrompt ?? AgentPrompts.system(
            date: options.now(), workspace: options.workspace ?? kernel.configuration.workspace,
            hasTools: !toolbox.names.isEmpty, timeZone: options.timeZone)
        if !retrieved.isEmpty { systemText += "\n\n" + AgentPrompts.passages(retrieved) }
        let system: JSONValue = ["role": "system", "content": .string(systemText)]
        self.system = system
        // Too many tools to describe them all: the ones relevant to this task, and tools.search for the rest.
        toolbox.offer(for: task, budgetTokens: Int(Double(info.contextLength - reserve) * options.toolShare))

        while true {
            if isCancelled { return finish(.cancelled, "cancelled before step \(steps.count + 1)") }
            if let memoryFailure { return finish(.memoryError, "\(memory.name): \(memoryFailure.message)") }
            let stepStart = options.clock()
            var kind: AgentStepKind = forcedTool != nil ? .forcedAnswer : (repairNote != nil ? .repair : .normal)
            let maxTokens = max(1, min(reserve, budget.outputTokensLeft ?? Int.max))
            let promptLimit = info.contextLength - maxTokens
            var toolsOff = kind == .forcedAnswer
            let toolTokens = Int((Double(ContextWindow.estimate(tools: toolbox.specs)) * scale).rounded(.up))
            if toolTokens >= promptLimit {
                return finish(.budget, "the definitions of \(toolbox.names.count) tools take about \(toolTokens) tokens, "
                              + "more than the prompt may use (\(promptLimit) of a \(info.contextLength)-token context): offer fewer tools")
            }

            // Budgets: none left at all → stop; about to run out → this is the last turn.
            var assembled = assemble(memory, system, limit: promptLimit - toolTokens)
            let estimate = assembled.tokens + toolTokens
            if let limit = budget.exhausted(now: stepStart, nextPromptTokens: estimate) {
                return finish(limit.reason, "\(limit.what) was reached")
            }
            var lastLimit: BudgetTracker.Limit?
            if kind != .forcedAnswer, process.isTerminating {
                // SIGTERM: one last turn for the best answer, then the process is over.
                kind = .final
                lastLimit = BudgetTracker.Limit(reason: .cancelled, what: "the request to stop (llmos kill)")
                toolsOff = true
                note(AgentPrompts.stopRequested(), persistent: true)
                assembled = assemble(memory, system, limit: promptLimit - toolTokens)
            } else if kind != .forcedAnswer, let limit = budget.lastTurn(now: stepStart, nextPromptTokens: estimate) {
                kind = .final
                lastLimit = limit
                toolsOff = true
                note(AgentPrompts.lastTurn(limit), persistent: true)
                assembled = assemble(memory, system, limit: promptLimit - toolTokens)
            }

            // Count exactly when the driver can, and leave more out until it fits.
            var summary = AgentRequestSummary(promptLimit: promptLimit, maxTokens: maxTokens,
                                              tools: toolbox.specs.count, toolChoice: toolsOff ? "none" : "auto")
            summary.availableTools = toolbox.names.count
            summary.promptTokens = assembled.tokens + toolTokens
            var attempts = 0
            while canCount {
                guard let counted = count(cpu, assembled.messages, toolbox.specs) else {
                    summary.promptTokens = assembled.tokens + toolTokens
                    summary.counted = false
                    break
                }
                summary.promptTokens = counted
                summary.counted = true
                let estimated = assembled.tokens + toolTokens
                if estimated > 0 && attempts == 0 { scale = min(4, max(0.5, scale * Double(counted) / Double(estimated))) }
                if counted <= promptLimit || attempts == 3 { break }
                attempts += 1
                // Over by the driver's count: estimate with the learned scale, and tighter each time.
                let scaledTools = Int((Double(ContextWindow.estimate(tools: toolbox.specs)) * scale).rounded(.up))
                let tighter = Int(Double(promptLimit - scaledTools) * pow(0.9, Double(attempts)))
                assembled = assemble(memory, system, limit: tighter)
            }
            summary.messages = assembled.messages.count
            summary.droppedMessages = assembled.dropped
            summary.truncatedMessages = assembled.truncated
            if let memoryFailure { return finish(.memoryError, "\(memory.name): \(memoryFailure.message)") }
            if !assembled.fits || summary.promptTokens > promptLimit {
                return finish(.budget, "the task and the latest turn do not fit in the context window "
                              + "(\(summary.promptTokens) tokens, the prompt may use \(promptLimit) of \(info.contextLength))")
            }

            // Ask the model.
            var input: JSONObject = ["messages": .array(assembled.messages), "max_tokens": .int(Int64(maxTokens))]
            if !toolbox.specs.isEmpty {
                // Withheld tools are still described (backends refuse tool messages without
                // them) but none may be called.
                input["tools"] = .array(toolbox.specs)
                if toolsOff { input["tool_choice"] = "none" }
            }
            if let t = options.temperature { input["temperature"] = .double(t) }
            let streaming = options.stream && loop.hasObserver && info.streaming
            if streaming { input["stream"] = true }
            var step = AgentStep(index: steps.count + 1, kind: kind, request: summary)
            for warning in assembled.warnings {
                let text = "\(memory.name): \(warning)"
                step.notes.append(text)
                loop.emit(.note(step: step.index, text))
            }
            let outcome = complete(cpu, .object(input), streaming: streaming, now: stepStart)
            repairNote = nil

            let reply: AgentReply
            switch outcome {
            case .failure(let error):
                step.error = error
                budget.recordStep(usage: nil)
                if error.code == .cancelled || isCancelled {
                    record(step, stepStart)
                    return finish(.cancelled, "cancelled during step \(step.index): \(error.message)")
                }
                let unreadable = error.code == .invalidOutput
                if unreadable && !malformedBefore && kind != .final && kind != .forcedAnswer {
                    malformedBefore = true
                    repairNote = AgentPrompts.repair(error)
                    step.notes.append(repairNote!)
                    record(step, stepStart)
                    loop.emit(.note(step: step.index, repairNote!))
                    continue
                }
                record(step, stepStart)
                if let lastLimit { return finish(lastLimit.reason, "\(lastLimit.what) was reached; the last turn failed: \(error.message)") }
                if kind == .forcedAnswer { return finish(.loop, "\(loopDetail()); the turn without tools failed: \(error.message)") }
                return finish(.cpuError, unreadable ? "the model's output was unreadable twice in a row: \(error.message)" : error.message)
            case .success(let r):
                reply = r
            }
            step.reply = reply
            budget.recordStep(usage: reply.usage, costUSD: pricing?.cost(reply.usage) ?? 0)
            publishStats()
            loop.emit(.reply(step: step.index, reply))
            if let text = reply.content, !text.isEmpty {
                lastText = text
                // A numbered list before tool calls is the model's plan: shown once per task.
                if plan.isEmpty, !reply.toolCalls.isEmpty || steps.isEmpty, let found = AgentPlan.parse(text) {
                    plan = found
                    loop.emit(.plan(step: step.index, found))
                }
            }

            // A turn without tools ends the run, whatever the model did with it.
            if toolsOff || reply.toolCalls.isEmpty {
                malformedBefore = false
                appendMessage(assistantMessage(reply, withCalls: false))
                for call in reply.toolCalls {
                    step.calls.append(AgentToolCallRecord(call: call, outcome: .skipped, content: "not run: tools were withheld for this turn"))
                }
                record(step, stepStart)
                if let lastLimit {
                    let detail = lastLimit.reason == .cancelled ? "stopped by \(lastLimit.what) after one last turn" : "\(lastLimit.what) was reached"
                    return finish(lastLimit.reason, detail, answer: reply.content ?? lastText)
                }
                if kind == .forcedAnswer { return finish(.loop, loopDetail(), answer: reply.content ?? lastText) }
                if reply.finishReason == "error" {
                    return finish(.cpuError, "the backend failed part way through the reply (finish_reason error)", answer: reply.content)
                }
                let cut = reply.finishReason == "length" ? " (the reply was cut off at max_tokens)" : ""
                return finish(.completed, "the model answered\(cut)", answer: reply.content ?? "")
            }

            // Tool calls: check each, dispatch what passed (concurrently), tell the model.
            appendMessage(assistantMessage(reply, withCalls: true))
            step.calls = dispatch(reply.toolCalls, toolbox: &toolbox, step: step.index, promptLimit: promptLimit)
            for record in step.calls {
                var message: JSONObject = ["role": "tool", "tool_call_id": .string(record.call.id), "content": .string(record.content)]
                if toolbox.offers(record.call.name) { message["name"] = .string(record.call.name) }
                appendMessage(.object(message))
            }
            // Calls that reached the kernel count; those the loop refused itself do not.
            let dispatched = step.calls.filter { [.ok, .toolError, .denied, .cancelled].contains($0.outcome) }.count
            budget.recordToolCalls(dispatched)
            publishStats()

            if step.calls.contains(where: { $0.outcome == .cancelled }) || isCancelled {
                record(step, stepStart)
                return finish(.cancelled, "cancelled during the tool calls of step \(step.index)")
            }
            let deniedNow = step.calls.filter { $0.outcome == .denied }
            denials += deniedNow.count
            if options.maxDenials > 0, denials >= options.maxDenials, let last = deniedNow.last {
                record(step, stepStart)
                return finish(.denied, "\(denials) denied tool call\(denials == 1 ? "" : "s") (the limit is \(options.maxDenials)); "
                              + "the last: \(last.error?.message ?? last.call.name)")
            }
            let malformed = step.calls.contains { $0.outcome == .malformedArguments }
            if malformed && malformedBefore {
                record(step, stepStart)
                return finish(.cpuError, "the model's tool call arguments were unreadable twice in a row: "
                              + (step.calls.first { $0.outcome == .malformedArguments }?.error?.message ?? ""))
            }
            malformedBefore = malformed

            let judged = step.calls.filter { $0.outcome != .skipped }
            switch detector.record(judged.map { ($0.call.name, $0.call.arguments, $0.content) }, succeeded: judged.map { $0.outcome == .ok }) {
            case .none:
                break
            case .warn(let name, let count):
                let text = AgentPrompts.loopWarning(tool: name, count: count)
                step.notes.append(text)
                note(text, persistent: true)
                loop.emit(.note(step: step.index, text))
            case .withholdTools(let name, _):
                forcedTool = name
                let text = AgentPrompts.forcedAnswer(tool: name)
                step.notes.append(text)
                note(text, persistent: true)
                loop.emit(.note(step: step.index, text))
            case .noProgress(let calls, let withhold):
                if withhold { forcedTool = "" ; stalledCalls = calls }
                let text = withhold ? AgentPrompts.forcedAnswerNoProgress() : AgentPrompts.noProgress(calls: calls)
                step.notes.append(text)
                note(text, persistent: true)
                loop.emit(.note(step: step.index, text))
            }
            record(step, stepStart)
        }
    }

    // MARK: Steps

    /// The process's counters: earlier tasks' plus this one's so far.
    func publishStats() {
        let base = baseStats, budget = self.budget
        process.updateStats { s in
            s.steps = base.steps + budget.steps
            s.inputTokens = base.inputTokens + budget.usage.inputTokens
            s.outputTokens = base.outputTokens + budget.usage.outputTokens
            s.toolCalls = base.toolCalls + budget.toolCalls
            s.costUSD = base.costUSD + budget.costUSD
        }
    }

    /// The memory's choice for the next request; a failure stops the run (memory_error).
    mutating func assemble(_ memory: any ContextMemory, _ system: JSONValue, limit: Int) -> ContextWindow.Assembled {
        var request = ContextRequest(system: system, limitTokens: limit)
        if let repairNote { request.extra = [["role": "user", "content": .string(repairNote)]] }
        request.pinned = taskID.map { [$0] } ?? []
        request.scale = scale
        request.cpu = process.drivers.cpu
        request.query = task
        do {
            return try memory.assemble(request, options: callOptions)
        } catch {
            memoryFailure = memoryFailure ?? error
            return ContextWindow.Assembled(messages: [], dropped: 0, truncated: 0, tokens: 0, fits: false)
        }
    }

    /// The passages of `storage` most relevant to the task (hybrid when the store has
    /// vectors, else by text; the driver says which), as many as fit `budgetTokens`. A
    /// mediated, audited call like any other: the operator's storage.read policy applies.
    mutating func retrieve(_ storage: String, budgetTokens: Int) -> [RetrievedPassage] {
        let collection = process.drivers.collection
        let input: JSONValue = ["collection": .string(collection), "mode": "hybrid", "query": .string(task),
                                "limit": .int(Int64(options.retrievalLimit))]
        let output: JSONValue
        do {
            let result = try kernel.call("\(storage).search", input: input, options: callOptions)
            output = try JSON.parse(result.output)
        } catch let error as LLMOSError {
            retrievalNote = "nothing retrieved from \(storage) collection \(collection): \(error.message)"
            loop.emit(.note(step: 0, retrievalNote!))
            return []
        } catch {
            retrievalNote = "nothing retrieved from \(storage): its search output is not JSON"
            return []
        }
        if let warnings = output["warnings"]?.arrayValue?.compactMap(\.stringValue), !warnings.isEmpty {
            retrievalNote = warnings.joined(separator: "; ")
        }
        var passages: [RetrievedPassage] = []
        var spent = 0
        for item in output["results"]?.arrayValue ?? [] {
            guard let text = item["text"]?.stringValue, !text.isEmpty else { continue }
            let source = item["source"]?.stringValue ?? item["metadata"]?["source"]?.stringValue ?? item["id"]?.stringValue ?? "?"
            let left = budgetTokens - spent - 8
            guard left > 32 else { break }
            let shown = ContextWindow.shorten(text, toTokens: left)
            spent += ContextWindow.estimate(shown) + 8
            passages.append(RetrievedPassage(number: passages.count + 1, id: item["id"]?.stringValue ?? "", source: source,
                                             text: shown, score: item["score"]?.doubleValue ?? 0))
        }
        if passages.isEmpty && retrievalNote == nil { retrievalNote = "no passage of \(storage) collection \(collection) matches the task" }
        return passages
    }

    /// Adds a message to the transcript and to the memory; returns the memory's id for it.
    @discardableResult
    mutating func appendMessage(_ message: JSONValue) -> String? {
        history.append(message)
        guard memoryFailure == nil, let memory = loop.memory else { return nil }
        do { return try memory.append(message, options: callOptions) } catch {
            memoryFailure = error
            return nil
        }
    }

    mutating func note(_ text: String, persistent: Bool) {
        if persistent { appendMessage(["role": "user", "content": .string(text)]) }
    }

    mutating func record(_ step: AgentStep, _ start: UInt64) {
        var step = step
        step.elapsedNanoseconds = options.clock() &- start
        step.cpuNanoseconds = stepCPUNs
        step.queueNanoseconds = stepQueueNs
        stepCPUNs = 0
        stepQueueNs = 0
        budget.recordDuration(step.elapsedNanoseconds)
        steps.append(step)
        loop.emit(.step(step))
    }

    func loopDetail() -> String {
        if let stalledCalls {
            return "\(stalledCalls) tool calls in a row brought nothing new: warned, then a turn without tools"
        }
        return "the model kept calling \(forcedTool ?? "a tool") with the same arguments and result: warned, then a turn without tools"
    }

    func assistantMessage(_ reply: AgentReply, withCalls: Bool) -> JSONValue {
        var message: JSONObject = ["role": "assistant", "content": reply.content.map(JSONValue.string) ?? (withCalls ? .null : .string(""))]
        if withCalls { message["tool_calls"] = .array(reply.toolCalls.map(\.json)) }
        return .object(message)
    }

    func modelInfo(_ cpu: String) -> AgentLoop.ModelInfo {
        var info = AgentLoop.ModelInfo(contextLength: options.defaultContextLength)
        info.canCount = kernel.hasTool("\(cpu).count_tokens")
        guard kernel.hasTool("\(cpu).info"),
              let result = try? kernel.call("\(cpu).info", input: JSONValue.object([:]), options: callOptions),
              let value = try? JSON.parse(result.output) else { return info }
        if let n = value["context_length"]?.int64Value, n > 0 { info.contextLength = Int(n) }
        if let n = value["concurrency"]?.int64Value, n > 0 { kernel.scheduler.driverReports(Int(n), for: cpu) }
        if let prices = value["pricing"], let input = prices["input_per_million_tokens"]?.doubleValue,
           let output = prices["output_per_million_tokens"]?.doubleValue {
            info.pricing = AgentPricing(inputPerMillion: input, outputPerMillion: output)
        }
        if let n = value["max_output_tokens"]?.int64Value, n > 0 { info.maxOutputTokens = Int(n) }
        info.streaming = value["streaming"]?.boolValue ?? false
        return info
    }

    /// The prompt's size by the driver's own tokenizer; nil when it cannot say (and it is not asked again).
    mutating func count(_ cpu: String, _ messages: [JSONValue], _ tools: [JSONValue]) -> Int? {
        var input: JSONObject = ["messages": .array(messages)]
        if !tools.isEmpty { input["tools"] = .array(tools) }
        let result = try? kernel.call("\(cpu).count_tokens", input: JSONValue.object(input), options: callOptions)
        stepCPUNs &+= result?.elapsedNanoseconds ?? 0
        guard let result, let n = (try? JSON.parse(result.output))?["tokens"]?.int64Value else {
            canCount = false
            return nil
        }
        return Int(n)
    }

    mutating func complete(_ cpu: String, _ input: JSONValue, streaming: Bool, now: UInt64) -> Result<AgentReply, LLMOSError> {
        var callOptions = self.callOptions
        let timeLeft = budget.wallTimeLeftMs(now: now)
        callOptions.timeoutMs = timeLeft.map { max(1, $0) }
        if streaming {
            let loop = self.loop
            callOptions.events = { text in
                guard let event = try? JSON.parse(text), event["type"]?.stringValue == "text",
                      let delta = event["delta"]?.stringValue else { return }
                loop.emit(.text(delta))
            }
        }
        let result: CallResult
        let process = self.process, token = self.token, kernel = self.kernel
        // The scheduler's fair queue: wait for one of the driver's slots (shown as waiting).
        defer { process.setCPUWait(nil) }
        let queued = options.clock()
        var granted = queued
        do {
            result = try kernel.scheduler.withSlot(cpu, pid: process.pid, isCancelled: { token.isCancelled || process.isKilled },
                                                   deadlineNs: timeLeft.map { now &+ UInt64($0) &* 1_000_000 },
                                                   ahead: { process.setCPUWait(.cpu(driver: cpu, ahead: $0)) }) { () throws(LLMOSError) -> CallResult in
                process.setCPUWait(nil)
                granted = options.clock()
                return try kernel.call("\(cpu).complete", input: input, options: callOptions)
            }
        } catch {
            stepQueueNs &+= (granted == queued ? options.clock() : granted) &- queued
            return .failure(error)
        }
        stepQueueNs &+= granted &- queued
        stepCPUNs &+= result.elapsedNanoseconds
        return Self.parseReply(result.output, cpu: cpu)
    }

    /// The reply, checked against the shape of cpu.schema.json complete_output: anything
    /// else is `invalid_output` (and re-asked once).
    static func parseReply(_ output: String, cpu: String) -> Result<AgentReply, LLMOSError> {
        func bad(_ why: String) -> Result<AgentReply, LLMOSError> {
            .failure(LLMOSError(.invalidOutput, "\(cpu).complete: the output is not a complete_output: \(why)"))
        }
        guard let value = try? JSON.parse(output) else { return bad("not JSON") }
        guard let message = value["message"]?.objectValue else { return bad("no message object") }
        let content: String?
        switch message["content"] {
        case .string(let s)?: content = s
        case .null?, nil: content = nil
        case let other?: return bad("message.content is a \(other.typeName), not a string or null")
        }
        var calls: [AgentToolCall] = []
        if let raw = message["tool_calls"], !raw.isNull {
            guard let items = raw.arrayValue else { return bad("message.tool_calls is a \(raw.typeName), not an array") }
            for (i, item) in items.enumerated() {
                guard let name = item["name"]?.stringValue, !name.isEmpty else { return bad("message.tool_calls[\(i)] has no name") }
                let id = item["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "call_\(i)"
                var call = AgentToolCall(id: id, name: name, arguments: item["arguments"] ?? .object([:]),
                                         rawArguments: item["raw_arguments"]?.stringValue)
                // Arguments sent as a string of JSON (OpenAI's wire form) are read as such.
                if case .string(let text) = call.arguments {
                    if let parsed = try? JSON.parse(text), parsed.objectValue != nil { call.arguments = parsed } else {
                        call.rawArguments = call.rawArguments ?? text
                        call.arguments = .object([:])
                    }
                }
                calls.append(call)
            }
        }
        let usageValue = value["usage"]
        let usage = AgentUsage(inputTokens: Int(usageValue?["input_tokens"]?.int64Value ?? 0),
                               outputTokens: Int(usageValue?["output_tokens"]?.int64Value ?? 0),
                               estimated: usageValue?["estimated"]?.boolValue ?? (usageValue == nil))
        let finish = value["finish_reason"]?.stringValue ?? (calls.isEmpty ? "stop" : "tool_calls")
        return .success(AgentReply(content: content, toolCalls: calls, finishReason: finish, usage: usage,
                                   model: value["model"]?.stringValue ?? ""))
    }

    /// Checks every call, dispatches those that passed (at once when there are several),
    /// and returns what the model is told about each, in the order of the calls.
    func dispatch(_ calls: [AgentToolCall], toolbox: inout AgentToolbox, step: Int, promptLimit: Int) -> [AgentToolCallRecord] {
        var records = [AgentToolCallRecord?](repeating: nil, count: calls.count)
        var ready: [(index: Int, input: String)] = []
        var left = budget.toolCallsLeft
        for (i, call) in calls.enumerated() {
            switch toolbox.check(call, kernel: kernel) {
            case .refuse(let outcome, let content, let error):
                records[i] = AgentToolCallRecord(call: call, outcome: outcome, content: content, error: error)
            case .dispatch(let input) where toolbox.narrowed && call.name == AgentToolbox.searchTool:
                // The loop's own tool: more tool definitions, shown from the next request on.
                loop.emit(.toolCall(step: step, call))
                records[i] = AgentToolCallRecord(call: call, outcome: .ok, content: toolbox.search(input))
            case .dispatch(let input):
                if left == 0 {
                    let max = process.budgets.maxToolCalls ?? 0
                    records[i] = AgentToolCallRecord(call: call, outcome: .skipped,
                                                     content: "error: not run: the tool call budget of \(max) calls is used up")
                } else {
                    left -= 1
                    ready.append((i, input))
                    loop.emit(.toolCall(step: step, call))
                }
            }
        }
        let maxResultTokens = max(64, Int(Double(promptLimit) * options.maxToolResultShare))
        let kernel = self.kernel
        var callOptions = self.callOptions
        callOptions.timeoutMs = budget.wallTimeLeftMs(now: options.clock()).map { max(1, $0) }
        let options = callOptions
        @Sendable func run(_ call: AgentToolCall, _ input: String) -> AgentToolCallRecord {
            do {
                let result = try kernel.call(call.name, input: input, options: options)
                let content = ContextWindow.shorten(result.output, toTokens: maxResultTokens)
                return AgentToolCallRecord(call: call, outcome: .ok, content: content, elapsedNanoseconds: result.elapsedNanoseconds)
            } catch {
                let (outcome, content) = AgentToolbox.failureContent(error)
                return AgentToolCallRecord(call: call, outcome: outcome, content: content, error: error)
            }
        }
        if ready.count == 1 {
            records[ready[0].index] = run(calls[ready[0].index], ready[0].input)
        } else if ready.count > 1 {
            let results = ResultSlots(count: ready.count)
            let group = DispatchGroup()
            for (slot, item) in ready.enumerated() {
                let call = calls[item.index]
                let input = item.input
                DispatchQueue.global().async(group: group) { results.set(slot, run(call, input)) }
            }
            group.wait()
            for (slot, item) in ready.enumerated() { records[item.index] = results.get(slot) }
        }
        let done = records.map { $0! }
        for record in done { loop.emit(.toolResult(step: step, record)) }
        return done
    }

    // MARK: The end

    mutating func finish(_ reason: AgentStopReason, _ detail: String, answer: String? = nil) -> AgentRunResult {
        loop.setHistory(history)
        publishStats()
        process.endTask(reason, oneShot: !options.keepsProcess)
        var result = AgentRunResult(pid: process.pid, task: task, answer: answer ?? (reason == .completed ? nil : lastText),
                                    stopReason: reason, detail: detail, steps: steps, usage: budget.usage, toolCalls: budget.toolCalls,
                                    messages: (system.map { [$0] } ?? []) + history, elapsedNanoseconds: options.clock() &- start)
        result.plan = plan
        result.sources = retrieved
        result.retrievalNote = retrievalNote
        result.costUSD = pricing == nil ? nil : budget.costUSD
        return result
    }
}

/// Where concurrent tool calls leave their results.
private final class ResultSlots: @unchecked Sendable {
    private let lock = PThreadMutex()
    private var items: [AgentToolCallRecord?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ record: AgentToolCallRecord) { lock.withLock { items[i] = record } }
    func get(_ i: Int) -> AgentToolCallRecord? { lock.withLock { items[i] } }
}
