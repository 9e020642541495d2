import Foundation
import Synchronization

/// The reference audit log: records in memory, numbered and chained exactly as the
/// SQLite log does (the same entries at the same times give the same hashes).
/// Appends are synchronous, so `flush` has nothing to do. For tests and for runs
/// that keep no log on disk.
public final class MemoryAuditLog: AuditLog {
    private struct State {
        var records: [AuditRecord] = []
        var hasher = AuditChain()
    }

    private let state = Mutex(State())

    public init() {}

    public func append(_ entry: AuditEntry) {
        state.withLock { state in
            let previous = state.records.last
            let record = AuditRecord(entry: entry, sequence: (previous?.sequence ?? 0) + 1,
                                     prevHash: previous?.hash ?? AuditChain.genesis, hasher: &state.hasher)
            state.records.append(record)
        }
    }

    public func flush() throws(LLMOSError) {}

    /// Every record, in sequence order.
    public var records: [AuditRecord] { state.withLock { $0.records } }
    public var count: Int { state.withLock { $0.records.count } }

    /// The last `limit` records, oldest first.
    public func tail(limit: Int = 20) -> [AuditRecord] {
        state.withLock { Array($0.records.suffix(max(0, limit))) }
    }

    /// The last `limit` records that match every filter given, oldest first (see
    /// `SQLiteAuditLog.search`).
    public func search(driver: String? = nil, tool: String? = nil, capability: String? = nil, decision: Verdict? = nil,
                       flaggedOnly: Bool = false, since: Date? = nil, text: String? = nil, limit: Int = 100) -> [AuditRecord] {
        let filter = AuditFilter(driver: driver, tool: tool, capability: capability, decision: decision,
                                 flaggedOnly: flaggedOnly, since: since, text: text)
        return state.withLock { state in
            var found: [AuditRecord] = []
            for record in state.records.reversed() where found.count < limit && filter.matches(record) {
                found.append(record)
            }
            return found.reversed()
        }
    }

    public func verify(anchor: AuditAnchor? = nil) -> AuditVerification {
        let records = self.records
        var verifier = AuditChainVerifier(anchor: anchor)
        for record in records { verifier.check(AuditRow(record)) }
        let head = records.last.map { AuditAnchor(sequence: $0.sequence, hash: $0.hash) }
            ?? AuditAnchor(sequence: 0, hash: AuditChain.genesis)
        return verifier.finish(head: head)
    }
}

/// The filters of `search`, shared by the logs.
struct AuditFilter {
    var driver: String?
    var tool: String?
    var capability: String?
    var decision: Verdict?
    var flaggedOnly: Bool
    var since: Date?
    var text: String?

    /// `since` as stored text: ISO-8601 times compare as strings in time order.
    var sinceText: String? { since.map(AuditTime.format) }

    func matches(_ record: AuditRecord) -> Bool {
        if let driver, record.driver != driver { return false }
        if let tool, record.tool != tool { return false }
        if let capability, record.capability != capability { return false }
        if let decision, record.decision != decision { return false }
        if flaggedOnly && !record.flagged { return false }
        if let since = sinceText, record.time < since { return false }
        if let text, !text.isEmpty, !record.resource.contains(text) && !record.rule.contains(text) { return false }
        return true
    }
}
