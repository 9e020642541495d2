import CLLMOSSystem
import Foundation

/// Shares each cpu driver among the agent processes that use it: at most `limit` model
/// calls run on a driver at once (a local llama-server has one slot; a remote API takes a
/// few), and the processes waiting for it are served round-robin — one call per process
/// in turn, in the order they first queued — so a process that asks often cannot starve
/// one that asks rarely, and every waiter is served after at most (waiting processes - 1)
/// others. Only `complete` is scheduled: `info` and `count_tokens` are cheap and never queue.
///
/// Thread-safe. Waiters poll their cancellation and deadline every few milliseconds, so a
/// cancelled process leaves the queue at once without a wake-up from anyone.
public final class CPUScheduler: @unchecked Sendable {
    /// Slots per driver when neither the operator nor the driver (`info.concurrency`) says.
    public let defaultLimit: Int

    private let condition = NSCondition()
    private var queues: [String: Queue] = [:]
    /// Set by the operator: not overridden by what a driver reports.
    private var operatorLimits: [String: Int]
    private var nextTicket = 0
    private var observer: (@Sendable (Event) -> Void)?

    /// What the queue did, in order: for tests and tracing.
    public enum Event: Sendable, Equatable {
        /// A call of `pid` joined the driver's queue.
        case queued(driver: String, pid: Int)
        /// A call of `pid` was given a slot (at once, or from the queue).
        case granted(driver: String, pid: Int)
    }

    /// Receives every event, in order, while the scheduler's lock is held: keep it short.
    public func observe(_ body: @escaping @Sendable (Event) -> Void) { condition.withLock { observer = body } }

    private final class Queue {
        var limit: Int
        init(limit: Int) { self.limit = limit }
        var running = 0
        /// Pids with waiting calls, in round-robin order: the front is served next.
        var order: [Int] = []
        /// Each pid's waiting tickets, oldest first.
        var waiting: [Int: [Int]] = [:]
        /// Tickets given a slot, not yet picked up by their thread.
        var granted: Set<Int> = []
        /// Calls started, by pid.
        var served: [Int: Int] = [:]
        var totalWaitNs: UInt64 = 0
        var maxWaitNs: UInt64 = 0
    }

    /// A driver's queue as it stands.
    public struct Snapshot: Sendable, Equatable {
        public var driver: String
        public var limit: Int
        public var running: Int
        /// Calls waiting, over every process.
        public var waiting: Int
        /// Calls started so far, by pid.
        public var served: [Int: Int]
        public var maxWaitNs: UInt64
    }

    /// `limits`: slots per driver name, fixed by the operator (`--cpu-slots`).
    public init(defaultLimit: Int = 4, limits: [String: Int] = [:]) {
        self.defaultLimit = max(1, defaultLimit)
        self.operatorLimits = limits.mapValues { max(1, $0) }
    }

    /// The operator's limit for a driver (wins over the driver's own).
    public func setLimit(_ limit: Int, for driver: String) {
        condition.withLock {
            operatorLimits[driver] = max(1, limit)
            queues[driver]?.limit = max(1, limit)
            grant(driver)
        }
        condition.broadcast()
    }

    /// What the driver says it can take (`info.concurrency`), unless the operator said.
    public func driverReports(_ limit: Int, for driver: String) {
        condition.withLock {
            guard operatorLimits[driver] == nil else { return }
            queue(driver).limit = max(1, limit)
            grant(driver)
        }
        condition.broadcast()
    }

    public func limit(for driver: String) -> Int { condition.withLock { queue(driver).limit } }

    public func snapshot(_ driver: String) -> Snapshot {
        condition.withLock {
            let q = queue(driver)
            return Snapshot(driver: driver, limit: q.limit, running: q.running, waiting: q.waiting.values.reduce(0) { $0 + $1.count },
                            served: q.served, maxWaitNs: q.maxWaitNs)
        }
    }

    /// Runs `body` holding one of the driver's slots. `ahead` is told how many processes
    /// will be served first each time that changes (0: next). Throws `cancelled` or
    /// `timeout` (naming the queue) while waiting; `body`'s own errors pass through.
    public func withSlot<T>(_ driver: String, pid: Int, isCancelled: () -> Bool, deadlineNs: UInt64?,
                            ahead: (Int) -> Void = { _ in }, _ body: () throws(LLMOSError) -> T) throws(LLMOSError) -> T {
        try acquire(driver, pid: pid, isCancelled: isCancelled, deadlineNs: deadlineNs, ahead: ahead)
        defer { release(driver) }
        return try body()
    }

    // MARK: Internals

    private func acquire(_ driver: String, pid: Int, isCancelled: () -> Bool, deadlineNs: UInt64?,
                         ahead: (Int) -> Void) throws(LLMOSError) {
        let start = llmos_monotonic_ns()
        condition.lock()
        defer { condition.unlock() }
        let q = queue(driver)
        func grantAtOnce() -> Bool {
            guard q.order.isEmpty && q.running < q.limit else { return false }
            q.running += 1
            q.served[pid, default: 0] += 1
            observer?(.granted(driver: driver, pid: pid))
            return true
        }
        if grantAtOnce() { return }
        // The caller says it waits before its ticket is seen: whoever finds it in the queue
        // (`snapshot`, `llmos ps`) finds the process waiting too.
        var told = q.order.firstIndex(of: pid) ?? q.order.count
        condition.unlock()
        ahead(told)
        condition.lock()
        if grantAtOnce() { return }
        let ticket = nextTicket
        nextTicket += 1
        q.waiting[pid, default: []].append(ticket)
        if !q.order.contains(pid) { q.order.append(pid) }
        observer?(.queued(driver: driver, pid: pid))
        while true {
            let queue = self.queue(driver)
            if queue.granted.remove(ticket) != nil {
                let waited = llmos_monotonic_ns() &- start
                queue.totalWaitNs &+= waited
                queue.maxWaitNs = max(queue.maxWaitNs, waited)
                return
            }
            let position = queue.order.firstIndex(of: pid) ?? 0
            if position != told {
                told = position
                condition.unlock()
                ahead(position)
                condition.lock()
                continue
            }
            if isCancelled() {
                withdraw(ticket, pid: pid, driver)
                throw LLMOSError(.cancelled, "cancelled while waiting for the cpu driver \(driver) (\(queue.running) of \(queue.limit) slots busy)")
            }
            if let deadlineNs, llmos_monotonic_ns() >= deadlineNs {
                withdraw(ticket, pid: pid, driver)
                throw LLMOSError(.timeout, "timed out waiting for the cpu driver \(driver): all \(queue.limit) of its slots stayed busy (raise them with --cpu-slots \(driver)=N)")
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.005))
        }
    }

    private func release(_ driver: String) {
        condition.withLock {
            queue(driver).running -= 1
            grant(driver)
        }
        condition.broadcast()
    }

    /// Leaves the queue; a slot granted meanwhile goes to the next waiter.
    private func withdraw(_ ticket: Int, pid: Int, _ driver: String) {
        let q = queue(driver)
        if q.granted.remove(ticket) != nil {
            q.running -= 1
        } else if var tickets = q.waiting[pid], let i = tickets.firstIndex(of: ticket) {
            tickets.remove(at: i)
            q.waiting[pid] = tickets.isEmpty ? nil : tickets
            if tickets.isEmpty { q.order.removeAll { $0 == pid } }
        }
        grant(driver)
        condition.broadcast()
    }

    /// Gives free slots to waiters, round-robin over processes. Called with the lock held.
    private func grant(_ driver: String) {
        let q = queue(driver)
        while q.running < q.limit, !q.order.isEmpty {
            let pid = q.order.removeFirst()
            var tickets = q.waiting[pid] ?? []
            guard !tickets.isEmpty else { continue }
            let ticket = tickets.removeFirst()
            q.waiting[pid] = tickets.isEmpty ? nil : tickets
            // A process with more calls waiting goes to the back: one call per process in turn.
            if !tickets.isEmpty { q.order.append(pid) }
            q.granted.insert(ticket)
            q.running += 1
            q.served[pid, default: 0] += 1
            observer?(.granted(driver: driver, pid: pid))
        }
    }

    /// The driver's queue, made on first use. Called with the lock held.
    private func queue(_ driver: String) -> Queue {
        if let q = queues[driver] { return q }
        let q = Queue(limit: operatorLimits[driver] ?? defaultLimit)
        queues[driver] = q
        return q
    }
}
