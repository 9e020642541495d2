import Foundation

/// What a run has used of its budgets, and when the next turn must be the last. Pure: the
/// time is passed in, so tests need no clock.
///
/// "About to run out" means the next turn would leave too little for another one: the
/// step limit is one step away; the tool calls are used up; the input tokens would not
/// cover two more prompts of the next one's size; the output tokens would not cover two
/// more replies as long as the longest so far; the wall time would not cover two more
/// steps as long as the longest so far. That turn gets no tools and a request for the
/// best answer so far (SIGTERM), and the process stops after it (SIGKILL). When not even
/// one more turn fits, it stops at once.
public struct BudgetTracker: Sendable {
    public struct Limit: Sendable, Equatable {
        public var reason: AgentStopReason
        /// "the step limit of 8", "the output token budget of 500": what ran out.
        public var what: String
    }

    public let budgets: AgentBudgets
    public let startNs: UInt64
    public private(set) var steps = 0
    public private(set) var usage = AgentUsage()
    public private(set) var toolCalls = 0
    public private(set) var longestOutput = 0
    public private(set) var longestStepNs: UInt64 = 0
    /// US dollars spent, and the most one step cost.
    public private(set) var costUSD = 0.0
    public private(set) var costliestStep = 0.0

    public init(_ budgets: AgentBudgets, startNs: UInt64) {
        self.budgets = budgets
        self.startNs = startNs
    }

    /// A model turn taken (`elapsedNs`: the step's whole time, when known now; see `recordDuration`).
    public mutating func recordStep(usage: AgentUsage?, elapsedNs: UInt64 = 0, costUSD cost: Double = 0) {
        steps += 1
        costUSD += cost
        costliestStep = max(costliestStep, cost)
        if let usage {
            self.usage += usage
            longestOutput = max(longestOutput, usage.outputTokens)
        }
        longestStepNs = max(longestStepNs, elapsedNs)
    }

    /// A step's whole time, its tool calls included.
    public mutating func recordDuration(_ ns: UInt64) { longestStepNs = max(longestStepNs, ns) }

    public mutating func recordToolCalls(_ count: Int) { toolCalls += count }

    /// Tool calls still allowed (Int.max without a limit).
    public var toolCallsLeft: Int { budgets.maxToolCalls.map { max(0, $0 - toolCalls) } ?? Int.max }

    /// Output tokens still allowed (nil without a limit).
    public var outputTokensLeft: Int? { budgets.maxOutputTokens.map { max(0, $0 - usage.outputTokens) } }

    /// Milliseconds of wall time left (nil without a limit).
    public func wallTimeLeftMs(now: UInt64) -> Int? {
        budgets.maxWallTimeMs.map { max(0, $0 - Int((now &- startNs) / 1_000_000)) }
    }

    /// A limit already reached: not even a last turn may start.
    public func exhausted(now: UInt64, nextPromptTokens: Int) -> Limit? {
        if steps >= budgets.maxSteps { return Limit(reason: .maxSteps, what: "the step limit of \(budgets.maxSteps)") }
        if let max = budgets.maxInputTokens, usage.inputTokens + nextPromptTokens > max {
            return Limit(reason: .budget, what: "the input token budget of \(max)")
        }
        if let max = budgets.maxOutputTokens, usage.outputTokens >= max {
            return Limit(reason: .budget, what: "the output token budget of \(max)")
        }
        if let left = wallTimeLeftMs(now: now), left == 0 {
            return Limit(reason: .budget, what: "the wall time budget of \(budgets.maxWallTimeMs!) ms")
        }
        if let max = budgets.maxCostUSD, costUSD >= max {
            return Limit(reason: .budget, what: "the cost budget of \(Self.dollars(max))")
        }
        return nil
    }

    /// A limit the next turn would bring too close: that turn must be the last, without tools.
    public func lastTurn(now: UInt64, nextPromptTokens: Int) -> Limit? {
        if steps + 1 >= budgets.maxSteps { return Limit(reason: .maxSteps, what: "the step limit of \(budgets.maxSteps)") }
        if let max = budgets.maxToolCalls, toolCalls >= max {
            return Limit(reason: .budget, what: "the tool call budget of \(max)")
        }
        if let max = budgets.maxInputTokens, usage.inputTokens + 2 * nextPromptTokens > max {
            return Limit(reason: .budget, what: "the input token budget of \(max)")
        }
        if let left = outputTokensLeft, left < 2 * Swift.max(1, longestOutput) {
            return Limit(reason: .budget, what: "the output token budget of \(budgets.maxOutputTokens!)")
        }
        if let left = wallTimeLeftMs(now: now), UInt64(left) * 1_000_000 < 2 * longestStepNs {
            return Limit(reason: .budget, what: "the wall time budget of \(budgets.maxWallTimeMs!) ms")
        }
        if let max = budgets.maxCostUSD, max - costUSD < 2 * costliestStep {
            return Limit(reason: .budget, what: "the cost budget of \(Self.dollars(max))")
        }
        return nil
    }

    /// "$0.25", "$0.0042".
    public static func dollars(_ amount: Double) -> String {
        amount >= 0.01 || amount == 0 ? "$" + String(format: "%.2f", amount) : "$" + String(format: "%.4f", amount)
    }
}
