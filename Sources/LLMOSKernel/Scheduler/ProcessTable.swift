import Foundation
import Synchronization

/// The agent processes of one kernel, for `llmos ps` and `llmos kill`: every process an
/// `AgentLoop` runs is here from its creation; finished ones stay for a while (the most
/// recent `keepFinished`) so that a listing shows how they ended.
public final class ProcessTable: Sendable {
    public let keepFinished: Int
    private let entries = Mutex<[AgentProcess]>([])

    public init(keepFinished: Int = 32) { self.keepFinished = max(0, keepFinished) }

    /// Adds a process (once; adding it again does nothing).
    public func add(_ process: AgentProcess) {
        entries.withLock { list in
            if !list.contains(where: { $0 === process }) { list.append(process) }
            prune(&list)
        }
    }

    /// Every process kept, oldest first.
    public var all: [AgentProcess] { entries.withLock { list in prune(&list); return list } }

    public func process(_ pid: Int) -> AgentProcess? { entries.withLock { $0.first { $0.pid == pid } } }

    /// How `kill` stops a process.
    public enum Signal: String, Sendable {
        /// One last turn without tools for the best answer, then the end (SIGTERM).
        case terminate
        /// Cancel the calls in flight at once (SIGKILL).
        case kill
    }

    /// Stops a process; `not_found` names the pids there are.
    public func signal(_ pid: Int, _ signal: Signal) throws(LLMOSError) -> AgentProcess {
        guard let process = process(pid) else {
            let live = all.filter { !$0.state.isFinished }.map { String($0.pid) }
            throw LLMOSError(.notFound, "no agent process \(pid) in this host" + (live.isEmpty ? " (none is running)" : " (running: \(live.joined(separator: ", ")))"))
        }
        guard !process.state.isFinished else {
            throw LLMOSError(.conflict, "agent process \(pid) has already finished (\(process.state))")
        }
        switch signal {
        case .terminate: process.terminate()
        case .kill: process.cancel()
        }
        return process
    }

    private func prune(_ list: inout [AgentProcess]) {
        let finished = list.filter { $0.state.isFinished }
        guard finished.count > keepFinished else { return }
        let drop = Set(finished.prefix(finished.count - keepFinished).map(\.pid))
        list.removeAll { drop.contains($0.pid) }
    }
}
