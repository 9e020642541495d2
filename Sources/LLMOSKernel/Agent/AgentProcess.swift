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
    /// A token, tool-call, cost or wall-time budget ran out (after one last turn, when one fitted).
    case budget
    /// The same call kept giving the same result, or no call made progress: warned, then a
    /// turn without tools, then stopped.
    case loop
    /// The model kept calling what the operator's policy denies (`AgentOptions.maxDenials`).
    case denied
    /// The cpu driver failed (unavailable, timed out, over its context), or its output stayed
    /// unreadable after one re-ask.
    case cpuError = "cpu_error"
    /// The memory driver failed to store a message or to assemble the context.
    case memoryError = "memory_error"
    /// The turn or the process was cancelled (Ctrl-C, `llmos kill`), or a call in it was.
    case cancelled

    public var description: String { rawValue }
}

/// What a process waits for.
public enum AgentWait: Sendable, Equatable, CustomStringConvertible {
    /// A slot of its cpu driver (the scheduler's fair queue); `ahead`: processes served first.
    case cpu(driver: String, ahead: Int)
    /// A person's answer to a permission prompt ("fs.write /home/me/x").
    case permission(String)

    public var description: String {
        switch self {
        case .cpu(let driver, let ahead): return "cpu \(driver)" + (ahead > 0 ? " (\(ahead) ahead)" : "")
        case .permission(let what): return "permission: \(what)"
        }
    }
}

/// Where a process is in its life.
public enum AgentState: Sendable, Equatable, CustomStringConvertible {
    /// Made, no task run yet.
    case ready
    /// A task is running.
    case running
    /// A task is running and waits (for a cpu slot, for a permission answer).
    case waiting(AgentWait)
    /// A conversation's task ended (the last stop reason) and the process waits for the next one.
    case idle(AgentStopReason)
    /// The process is over: its task ended, it was killed, or its owner ended it.
    case finished(AgentStopReason)

    /// The short name `llmos ps` shows: ready, running, waiting, idle, finished.
    public var name: String {
        switch self {
        case .ready: return "ready"
        case .running: return "running"
        case .waiting: return "waiting"
        case .idle: return "idle"
        case .finished: return "finished"
        }
    }

    public var isFinished: Bool { if case .finished = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .ready, .running: return name
        case .waiting(let wait): return "waiting (\(wait))"
        case .idle(let reason): return "idle (last: \(reason.rawValue))"
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
    /// Money, in US dollars, at the cpu driver's prices (its `info.pricing`, or
    /// `AgentOptions.pricing`). A driver without prices costs nothing.
    public var maxCostUSD: Double?

    public init(maxSteps: Int = 12, maxInputTokens: Int? = nil, maxOutputTokens: Int? = nil,
                maxToolCalls: Int? = 32, maxWallTimeMs: Int? = nil, maxCostUSD: Double? = nil) {
        self.maxSteps = max(1, maxSteps)
        self.maxInputTokens = maxInputTokens
        self.maxOutputTokens = maxOutputTokens
        self.maxToolCalls = maxToolCalls
        self.maxWallTimeMs = maxWallTimeMs
        self.maxCostUSD = maxCostUSD
    }
}

/// The drivers a process runs on.
public struct AgentDriverSet: Sendable, Equatable {
    /// The cpu driver's name ("local", "openai", "scripted").
    public var cpu: String
    /// Globs over qualified tool names the model is offered ("calc.*", "text.count");
    /// only tools of class `tool` drivers are ever offered.
    public var tools: [String]
    /// The memory driver that assembles each request's context (`ContextMemory`): a loaded
    /// driver of class memory, or "window" with none of that name loaded: the kernel's own.
    public var memory: String
    /// The storage driver retrieved from at each task; nil: none.
    public var storage: String?
    /// The collection of `storage` that is searched.
    public var collection: String

    public init(cpu: String, tools: [String] = ["*"], memory: String = AgentDriverSet.builtInMemory, storage: String? = nil,
                collection: String = AgentDriverSet.defaultCollection) {
        self.cpu = cpu
        self.tools = tools
        self.memory = memory
        self.storage = storage
        self.collection = collection
    }

    /// The kernel's own context window, used when no memory driver of that name is loaded.
    public static let builtInMemory = "window"
    /// Where `llmos ingest` puts documents, and so where a run retrieves from.
    public static let defaultCollection = "docs"

    public func allows(_ tool: String) -> Bool { tools.contains { Glob.matches($0, tool) } }

    /// "cpu=local memory=window tools=calc.*,text.count"
    public var summary: String {
        var text = "cpu=\(cpu) memory=\(memory)"
        if let storage { text += " storage=\(storage):\(collection)" }
        return text + " tools=" + tools.joined(separator: ",")
    }
}

/// Counters a process keeps while it runs, for `llmos ps`.
public struct AgentProcessStats: Sendable, Equatable {
    public var steps = 0
    public var inputTokens = 0
    public var outputTokens = 0
    public var toolCalls = 0
    /// US dollars, at the cpu driver's prices (0 without prices).
    public var costUSD = 0.0
    /// Tasks run (a conversation's turns).
    public var tasks = 0
}

/// One agent process. Thread-safe: `state`, `stats`, `cancelTurn()`, `terminate()` and
/// `cancel()` may be used from any thread while `AgentLoop.run` runs on another.
///
/// Three ways to stop it, as a Unix process has them:
/// - `cancelTurn()` (Ctrl-C in the REPL): the task running now stops at once with
///   `cancelled`; the process and its conversation go on with the next task.
/// - `terminate()` (SIGTERM, `llmos kill`): the next step is a last turn without tools that
///   asks for the best answer so far; then the process is over.
/// - `cancel()` (SIGKILL, `llmos kill --now`): the calls in flight are cancelled, no new step
///   starts, and the process is over.
public final class AgentProcess: Sendable {
    /// Where pids come from. The default counts from 1 in this host; a host that shares its
    /// process table with others (the control socket) hands out pids unique among them.
    public static let pidSource = Mutex<@Sendable () -> Int>({ AgentProcess.localPids.wrappingAdd(1, ordering: .relaxed).newValue })
    private static let localPids = Atomic<Int>(0)
    /// Live processes by pid, so that a permission prompt deep in a call can mark its process
    /// as waiting and name it. Weak: a process nobody holds is gone.
    private static let live = Mutex<[Int: WeakProcess]>([:])

    public let pid: Int
    /// Who started it (a user name, "repl", a program's name).
    public let owner: String
    public let drivers: AgentDriverSet
    public let budgets: AgentBudgets
    /// When the process was made.
    public let created = Date()

    private struct Current {
        var state: AgentState = .ready
        var stats = AgentProcessStats()
        /// The running (or next) task's token; a fresh one for each task after the first.
        var turn = CancellationToken()
        var turnUsed = false
        var killed = false
        /// Waits in progress, innermost last (a permission prompt while waiting for nothing else).
        var waits: [AgentWait] = []
    }
    private let current = Mutex<Current>(Current())
    private let terminating = Atomic<Bool>(false)

    public init(owner: String, drivers: AgentDriverSet, budgets: AgentBudgets = AgentBudgets()) {
        self.pid = Self.pidSource.withLock { $0() }
        self.owner = owner
        self.drivers = drivers
        self.budgets = budgets
        let pid = self.pid
        Self.live.withLock { table in
            table = table.filter { $0.value.process != nil }
            table[pid] = WeakProcess(process: self)
        }
    }

    deinit {
        let pid = self.pid
        Self.live.withLock { _ = $0.removeValue(forKey: pid) }
    }

    /// The live process with this pid in this host, if any.
    public static func lookup(_ pid: Int) -> AgentProcess? { live.withLock { $0[pid]?.process } }

    public var state: AgentState { current.withLock { $0.state } }
    public var stats: AgentProcessStats { current.withLock { $0.stats } }

    /// The running task's cancellation — before the first task, the one it will use.
    public var cancellation: CancellationToken { current.withLock { $0.turn } }
    /// The running task is cancelled, or the process was killed.
    public var isCancelled: Bool { current.withLock { $0.killed || $0.turn.isCancelled } }
    /// `cancel()` was called: no task will run again.
    public var isKilled: Bool { current.withLock { $0.killed } }
    /// `terminate()` was called: the running task gets one last turn, then the process is over.
    public var isTerminating: Bool { terminating.load(ordering: .acquiring) }

    /// SIGKILL: cancels the calls in flight, and no task runs again.
    public func cancel() {
        current.withLock { c in
            c.killed = true
            c.turn.cancel()
        }
    }

    /// Ctrl-C: cancels the running task only; the conversation goes on.
    public func cancelTurn() { current.withLock { $0.turn.cancel() } }

    /// SIGTERM: the running task's next step is its last, without tools, asking for the best
    /// answer so far; after it the process is over. A process with no task running ends now.
    public func terminate() {
        terminating.store(true, ordering: .releasing)
        current.withLock { c in
            switch c.state {
            case .ready, .idle: c.state = .finished(.cancelled)
            default: break
            }
        }
    }

    /// Ends the process (its owner is done with it): `llmos ps` shows it finished.
    public func exit() {
        current.withLock { c in
            if case .idle(let reason) = c.state { c.state = .finished(reason) }
            if case .ready = c.state { c.state = .finished(.completed) }
        }
    }

    /// A task starts: a fresh token unless the process was killed or terminated (then
    /// nil: it may not run).
    func beginTask() -> CancellationToken? {
        current.withLock { c -> CancellationToken? in
            if c.killed || c.state.isFinished { return nil }
            if c.turnUsed { c.turn = CancellationToken() }
            c.turnUsed = true
            c.state = .running
            c.stats.tasks += 1
            return c.turn
        }
    }

    /// A task ended: idle for the next one, or finished when killed or terminated.
    func endTask(_ reason: AgentStopReason, oneShot: Bool) {
        let over = isTerminating
        current.withLock { c in
            c.waits.removeAll()
            c.state = (oneShot || c.killed || over) ? .finished(reason) : .idle(reason)
        }
    }

    /// Marks the process waiting while `body` runs (nested waits restore the outer one).
    public func waiting<T, E: Error>(_ wait: AgentWait, _ body: () throws(E) -> T) throws(E) -> T {
        current.withLock { c in
            c.waits.append(wait)
            if !c.state.isFinished { c.state = .waiting(wait) }
        }
        defer {
            current.withLock { c in
                if let i = c.waits.lastIndex(of: wait) { c.waits.remove(at: i) }
                guard !c.state.isFinished else { return }
                c.state = c.waits.last.map(AgentState.waiting) ?? .running
            }
        }
        return try body()
    }

    /// Waiting for a slot of the cpu driver (`ahead` processes first), or no longer (nil).
    func setCPUWait(_ wait: AgentWait?) {
        current.withLock { c in
            c.waits.removeAll { if case .cpu = $0 { return true } else { return false } }
            if let wait { c.waits.append(wait) }
            guard !c.state.isFinished else { return }
            c.state = c.waits.last.map(AgentState.waiting) ?? .running
        }
    }

    func updateStats(_ body: (inout AgentProcessStats) -> Void) { current.withLock { body(&$0.stats) } }
}

private struct WeakProcess: Sendable {
    weak var process: AgentProcess?
}
