import Foundation
import Synchronization

// An agent run is a process: a pid, an owner, the drivers it runs on, its budgets and a
// state that ends in a typed stop reason. See docs/AGENTS.md.

/// Why an agent run stopped. The raw values are the names programs see (`--json`).
public enum AgentStopReason: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The model answered without asking for a tool.
    case completed
    /// The step limit was reached (after one last turn asking for the best answer).
    case maxSteps = "max_steps"
    /// A token, tool-call or wall-time budget ran out (after one last turn, when one fitted).
    case budget
    /// The same call kept giving the same result: warned, then a turn without tools, then stopped.
    case loop
    /// The model kept calling what the operator's policy denies (`AgentOptions.maxDenials`).
    case denied
    /// The cpu driver failed (unavailable, timed out, over its context), or its output stayed
    /// unreadable after one re-ask.
    case cpuError = "cpu_error"
    /// The process was cancelled (`AgentProcess.cancel()`), or a call in it was.
    case cancelled

    public var description: String { rawValue }
}

/// Where a process is in its life.
public enum AgentState: Sendable, Equatable, CustomStringConvertible {
    case ready
    case running
    case finished(AgentStopReason)

    public var description: String {
        switch self {
        case .ready: return "ready"
        case .running: return "running"
        case .finished(let reason): return "finished (\(reason.rawValue))"
        }
    }
}

/// Limits on one run. nil: no limit of that kind. Every limit but `maxSteps` is optional;
/// when one is about to be reached, one last turn without tools asks for the best answer.
public struct AgentBudgets: Sendable, Equatable {
    /// Model turns, the last (tool-less) one included.
    public var maxSteps: Int
    /// Prompt tokens summed over every turn (as the cpu driver reports them).
    public var maxInputTokens: Int?
    /// Generated tokens summed over every turn.
    public var maxOutputTokens: Int?
    /// Tool calls that reached the kernel (calls the loop refused itself — unknown tool, bad
    /// arguments — do not count).
    public var maxToolCalls: Int?
    /// The run's wall time; also bounds each call's deadline.
    public var maxWallTimeMs: Int?

    public init(maxSteps: Int = 12, maxInputTokens: Int? = nil, maxOutputTokens: Int? = nil,
                maxToolCalls: Int? = 32, maxWallTimeMs: Int? = nil) {
        self.maxSteps = max(1, maxSteps)
        self.maxInputTokens = maxInputTokens
        self.maxOutputTokens = maxOutputTokens
        self.maxToolCalls = maxToolCalls
        self.maxWallTimeMs = maxWallTimeMs
    }
}

/// The drivers a process runs on. Memory and storage drivers come with their issues; until
/// then the context window is the loop's own (`ContextWindow`).
public struct AgentDriverSet: Sendable, Equatable {
    /// The cpu driver's name ("local", "openai", "scripted").
    public var cpu: String
    /// Globs over qualified tool names the model is offered ("calc.*", "text.count");
    /// only tools of class `tool` drivers are ever offered.
    public var tools: [String]

    public init(cpu: String, tools: [String] = ["*"]) {
        self.cpu = cpu
        self.tools = tools
    }

    public func allows(_ tool: String) -> Bool { tools.contains { Glob.matches($0, tool) } }
}

/// Counters a process keeps while it runs, for `llmos ps` later.
public struct AgentProcessStats: Sendable, Equatable {
    public var steps = 0
    public var inputTokens = 0
    public var outputTokens = 0
    public var toolCalls = 0
}

/// One agent process. Thread-safe: `state`, `stats` and `cancel()` may be used from any
/// thread while `AgentLoop.run` runs on another.
public final class AgentProcess: Sendable {
    private static let pids = Atomic<Int>(0)

    public let pid: Int
    /// Who started it (a user name, "repl", a program's name).
    public let owner: String
    public let drivers: AgentDriverSet
    public let budgets: AgentBudgets
    /// Cancels the run: the model call or tool calls in flight are cancelled, no new step starts.
    public let cancellation = CancellationToken()
    /// When the process was made.
    public let created = Date()

    private let current = Mutex<(state: AgentState, stats: AgentProcessStats)>((.ready, AgentProcessStats()))

    public init(owner: String, drivers: AgentDriverSet, budgets: AgentBudgets = AgentBudgets()) {
        self.pid = Self.pids.wrappingAdd(1, ordering: .relaxed).newValue
        self.owner = owner
        self.drivers = drivers
        self.budgets = budgets
    }

    public var state: AgentState { current.withLock { $0.state } }
    public var stats: AgentProcessStats { current.withLock { $0.stats } }
    public var isCancelled: Bool { cancellation.isCancelled }

    /// Stops the run as soon as the call in flight returns (a cancellable call returns at once).
    public func cancel() { cancellation.cancel() }

    func setState(_ state: AgentState) { current.withLock { $0.state = state } }
    func updateStats(_ body: (inout AgentProcessStats) -> Void) { current.withLock { body(&$0.stats) } }
}
