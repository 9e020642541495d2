import CSQLite
import Foundation
import Synchronization

/// The audit log on disk: an append-only SQLite table (WAL), each row chained to the
/// one before by SHA-256 (see `AuditChain` for the exact encoding).
///
/// **Batched writes.** `append` puts the entry on an in-memory queue and returns at
/// once; a background thread ("llmos-audit") commits the queue in one transaction
/// when `batchSize` entries are waiting or `maxDelay` after the first one, whichever
/// comes first. Sequence numbers and hashes are assigned on that thread, inside the
/// write transaction, in append order, from the chain head read in the same
/// transaction, so they are gapless even when two processes share the file.
/// `flush()` returns when everything appended before it is committed: that is what
/// "acknowledged" means. `close()` flushes, and so do dropping the last reference
/// and a clean exit of the process (`exit()`, or returning from `main`: an `atexit`
/// handler closes every log still open).
///
/// **What survives what.** A committed batch survives a crash of the process (a
/// driver crashing in-process takes the host down with it), because WAL commits are
/// in the file before the transaction returns; with `synchronous=NORMAL` the last
/// commits can be lost only on a power failure or an OS crash. Entries appended but
/// not yet flushed are in memory and die with the process: flush at the points
/// where losing them matters. When the queue holds `maxPending` entries, `append`
/// waits for the writer (backpressure, so memory stays bounded). When the writer
/// cannot write (disk full, file removed), it retries with a growing pause, `flush`
/// throws, and once the queue is full new entries are dropped and counted; the next
/// `flush` reports how many.
///
/// **Tamper evidence.** Triggers refuse UPDATE and DELETE on the table; the API
/// has neither. Anyone who can write the file can drop the triggers, so detection
/// is by `verify()`, which walks the chain and names the first row that was edited,
/// inserted, reordered or deleted. A separate `chain_head` table holds the latest
/// sequence number and hash, updated in the same transaction as the rows, so that
/// deleting the last rows shows too. An attacker who edits both the rows and the
/// head, recomputing the hashes, can still rewrite or truncate the log undetected,
/// unless the head is also held elsewhere: see `AuditVerification` and `AuditAnchor`.
///
/// Schema (`PRAGMA application_id` 0x4C4C4155 "LLAU", `user_version` 1):
///
///     audit(seq INTEGER PRIMARY KEY, time, process, driver, tool, capability, resource,
///           args_hash, decision TEXT, flagged INTEGER, rule, outcome TEXT,
///           duration_ns INTEGER, prev_hash, hash TEXT)
///     chain_head(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER, hash TEXT)
public final class SQLiteAuditLog: AuditLog {
    public struct Options: Sendable {
        /// A batch is committed as soon as this many entries wait...
        public var batchSize: Int
        /// ...or this long after the first of them was appended.
        public var maxDelay: Duration
        /// At most this many entries wait in memory; `append` blocks beyond that.
        public var maxPending: Int

        public init(batchSize: Int = 1_000, maxDelay: Duration = .milliseconds(10), maxPending: Int = 65_536) {
            self.batchSize = max(1, batchSize)
            self.maxDelay = maxDelay
            self.maxPending = max(1, maxPending)
        }
    }

    public struct Statistics: Sendable, Hashable {
        /// Entries accepted by `append` since the log was opened.
        public var appended: Int64
        /// Of those, the ones committed to the file.
        public var committed: Int64
        /// Entries refused because the log was closed or the writer was failing with a full queue.
        public var dropped: Int64
        /// Transactions committed.
        public var batches: Int64
        public var pending: Int64 { appended - committed }
    }

    /// `$XDG_STATE_HOME/llmos/audit.sqlite3`, by default `~/.local/state/llmos/audit.sqlite3`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let state = environment["XDG_STATE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? FilePath.join(environment["HOME"] ?? FilePath.homeDirectory, ".local/state")
        return FilePath.join(state, "llmos/audit.sqlite3")
    }

    public let path: String
    private let writer: AuditWriter
    private let reader: SQLiteAuditReader

    /// Opens the log at `path`, creating it (and its directories) when missing.
    /// A file that is not an llmos audit log is refused with an error naming it.
    public init(path: String = SQLiteAuditLog.defaultPath(), options: Options = Options()) throws(LLMOSError) {
        self.path = path
        let database = try SQLiteDatabase(path: path)
        do throws(LLMOSError) {
            try AuditSchema.prepare(database)
            reader = try SQLiteAuditReader(path: path)
        } catch {
            database.close()
            throw error
        }
        writer = AuditWriter(database: database, options: options)
        writer.start()
        AuditLogsAtExit.register(writer)
    }

    deinit { try? writer.close() }

    /// Queues the entry and returns (it blocks only when `maxPending` entries wait).
    public func append(_ entry: AuditEntry) { writer.append(entry) }

    /// Waits until everything appended before this call is committed. Throws when the
    /// writer is failing, or when entries were dropped since the last flush.
    public func flush() throws(LLMOSError) { try writer.flush() }

    /// Flushes, stops the writer and closes the file. Throws when entries were lost.
    public func close() throws(LLMOSError) {
        defer { reader.close() }
        try writer.close()
    }

    public var statistics: Statistics { writer.statistics }

    // Queries read what is committed (call `flush()` first to include everything appended).

    public func count() throws(LLMOSError) -> Int { try reader.count() }

    public func tail(limit: Int = 20) throws(LLMOSError) -> [AuditRecord] { try reader.tail(limit: limit) }

    public func search(driver: String? = nil, tool: String? = nil, capability: String? = nil, decision: Verdict? = nil,
                       flaggedOnly: Bool = false, since: Date? = nil, text: String? = nil,
                       limit: Int = 100) throws(LLMOSError) -> [AuditRecord] {
        try reader.search(driver: driver, tool: tool, capability: capability, decision: decision,
                          flaggedOnly: flaggedOnly, since: since, text: text, limit: limit)
    }

    public func verify(anchor: AuditAnchor? = nil) throws(LLMOSError) -> AuditVerification {
        try reader.verify(anchor: anchor)
    }
}

/// Read-only access to an audit log file, for `llmos audit tail|search|verify`
/// (it never writes, so it also reads a copy kept as evidence). It reads through
/// its own connection: WAL lets it read while a writer commits.
public final class SQLiteAuditReader: Sendable {
    public let path: String
    private let database: SQLiteDatabase

    public init(path: String = SQLiteAuditLog.defaultPath()) throws(LLMOSError) {
        guard FilePath.exists(path) else { throw LLMOSError(.notFound, "no audit log at \(path)") }
        self.path = path
        database = try SQLiteDatabase(path: path, options: .init(readOnly: true))
        do throws(LLMOSError) {
            try AuditSchema.check(database)
        } catch {
            database.close()
            throw error
        }
    }

    public func close() { database.close() }

    public func count() throws(LLMOSError) -> Int {
        try database.withConnection { (db) throws(LLMOSError) -> Int in
            Int(try db.query("SELECT count(*) FROM audit") { $0.int64(at: 0) }.first ?? 0)
        }
    }

    /// The last `limit` records, oldest first.
    public func tail(limit: Int = 20) throws(LLMOSError) -> [AuditRecord] {
        try search(limit: limit)
    }

    /// The last `limit` records that match every filter given, oldest first.
    /// `text` is a case-sensitive substring of the resource or the rule; `since`
    /// keeps records at or after that time; `flaggedOnly` keeps records flagged
    /// by an `audit` rule. Newest rows are read first, so a search stops as soon as
    /// it has `limit` matches.
    public func search(driver: String? = nil, tool: String? = nil, capability: String? = nil, decision: Verdict? = nil,
                       flaggedOnly: Bool = false, since: Date? = nil, text: String? = nil,
                       limit: Int = 100) throws(LLMOSError) -> [AuditRecord] {
        let filter = AuditFilter(driver: driver, tool: tool, capability: capability, decision: decision,
                                 flaggedOnly: flaggedOnly, since: since, text: text)
        var conditions: [String] = []
        var values: [SQLiteValue] = []
        if let driver { conditions.append("driver = ?"); values.append(.text(driver)) }
        if let tool { conditions.append("tool = ?"); values.append(.text(tool)) }
        if let capability { conditions.append("capability = ?"); values.append(.text(capability)) }
        if let decision { conditions.append("decision = ?"); values.append(.text(decision.rawValue)) }
        if flaggedOnly { conditions.append("flagged != 0") }
        if let since = filter.sinceText { conditions.append("time >= ?"); values.append(.text(since)) }
        if let text, !text.isEmpty {
            conditions.append("(instr(resource, ?) > 0 OR instr(rule, ?) > 0)")
            values += [.text(text), .text(text)]
        }
        values.append(.integer(Int64(max(0, limit))))
        let sql = "SELECT \(AuditSchema.columns) FROM audit"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY seq DESC LIMIT ?"
        let path = self.path
        return try database.withConnection { (db) throws(LLMOSError) -> [AuditRecord] in
            let rows = try db.query(sql, values) { AuditSchema.row($0) }
            var records: [AuditRecord] = []
            records.reserveCapacity(rows.count)
            for row in rows.reversed() {
                guard let decision = Verdict(rawValue: row.decision) else {
                    throw LLMOSError(.io, "\(path): row \(row.sequence) has an unknown decision \"\(row.decision)\" (the log was edited: run `llmos audit verify`)")
                }
                records.append(AuditRecord(row: row, decision: decision))
            }
            return records
        }
    }

    /// Walks the whole log in sequence order in one read snapshot, recomputing the
    /// chain (see `AuditChainVerifier` for the checks and `AuditVerification` for
    /// what they can and cannot prove), and runs SQLite's integrity check.
    /// Throws only when the file cannot be read at all.
    public func verify(anchor: AuditAnchor? = nil) throws(LLMOSError) -> AuditVerification {
        try database.transaction { (db) throws(LLMOSError) -> AuditVerification in
            var verifier = AuditChainVerifier(anchor: anchor)
            let integrity = try db.query("PRAGMA integrity_check") { $0.text(at: 0) }
            if integrity != ["ok"] {
                for message in integrity.prefix(10) {
                    verifier.report(.corrupt, nil, "the database file is damaged: \(message)")
                }
            }
            let head = try db.query("SELECT seq, hash FROM chain_head WHERE id = 1") {
                AuditAnchor(sequence: $0.int64(at: 0), hash: $0.text(at: 1))
            }.first
            let statement = try db.statement("SELECT \(AuditSchema.columns) FROM audit ORDER BY seq")
            defer { statement.reset() }
            while try statement.step() {
                verifier.check(AuditSchema.row(statement), malformed: AuditSchema.malformation(statement))
            }
            return verifier.finish(head: head)
        }
    }
}

/// The table layout, shared by the writer and the reader.
enum AuditSchema {
    /// "LLAU": marks the file as an llmos audit log.
    static let applicationID: Int64 = 0x4C4C_4155
    static let version: Int64 = 1

    static let columns = "seq, time, process, driver, tool, capability, resource, args_hash, decision, flagged, rule, outcome, duration_ns, prev_hash, hash"
    static let integerColumns: Set<Int32> = [0, 9, 12]
    static let columnNames = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }

    static let create = """
        CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            process TEXT NOT NULL,
            driver TEXT NOT NULL,
            tool TEXT NOT NULL,
            capability TEXT NOT NULL,
            resource TEXT NOT NULL,
            args_hash TEXT NOT NULL,
            decision TEXT NOT NULL,
            flagged INTEGER NOT NULL,
            rule TEXT NOT NULL,
            outcome TEXT NOT NULL,
            duration_ns INTEGER NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS chain_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """

    static let insert = "INSERT INTO audit (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    static let updateHead = "INSERT INTO chain_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"

    /// Creates the tables in a new (empty) file, restores the triggers in an existing
    /// log, and refuses any other database.
    static func prepare(_ database: SQLiteDatabase) throws(LLMOSError) {
        try database.transaction { (db) throws(LLMOSError) in
            let (id, version, tables) = try identify(db)
            if id == 0 && tables == 0 {
                try db.execute(create)
                try db.run("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, ?)", [.text(AuditChain.genesis)])
                try db.execute("PRAGMA application_id = \(applicationID); PRAGMA user_version = \(AuditSchema.version)")
                return
            }
            try validate(database.path, id: id, version: version)
            try db.execute(create)
        }
    }

    /// Refuses a file that is not an llmos audit log of a version this code reads.
    static func check(_ database: SQLiteDatabase) throws(LLMOSError) {
        try database.withConnection { (db) throws(LLMOSError) in
            let (id, version, _) = try identify(db)
            try validate(database.path, id: id, version: version)
        }
    }

    private static func identify(_ db: SQLiteConnection) throws(LLMOSError) -> (Int64, Int64, Int64) {
        let id = try db.query("PRAGMA application_id") { $0.int64(at: 0) }.first ?? 0
        let version = try db.query("PRAGMA user_version") { $0.int64(at: 0) }.first ?? 0
        let tables = try db.query("SELECT count(*) FROM sqlite_master") { $0.int64(at: 0) }.first ?? 0
        return (id, version, tables)
    }

    private static func validate(_ path: String, id: Int64, version: Int64) throws(LLMOSError) {
        guard id == applicationID else {
            throw LLMOSError(.io, "\(path): not an llmos audit log (an SQLite database with application_id \(id), not \(applicationID))")
        }
        guard version <= AuditSchema.version else {
            throw LLMOSError(.io, "\(path): audit log format \(version) is newer than this llmos reads (\(AuditSchema.version)); upgrade llmos")
        }
    }

    /// The row at the statement, in `columns` order.
    static func row(_ s: SQLiteStatement) -> AuditRow {
        AuditRow(sequence: s.int64(at: 0), time: s.text(at: 1), process: s.text(at: 2), driver: s.text(at: 3),
                 tool: s.text(at: 4), capability: s.text(at: 5), resource: s.text(at: 6), argsHash: s.text(at: 7),
                 decision: s.text(at: 8), flagged: s.int64(at: 9), rule: s.text(at: 10), outcome: s.text(at: 11),
                 durationNs: s.int64(at: 12), prevHash: s.text(at: 13), hash: s.text(at: 14))
    }

    /// Why the row's columns are not of the types the log writes, if they are not
    /// (an integer column holding text, a NULL): an edit the hash might not show.
    static func malformation(_ s: SQLiteStatement) -> String? {
        for column in Int32(0)..<15 {
            let expected = integerColumns.contains(column) ? SQLITE_INTEGER : SQLITE_TEXT
            let actual = s.type(at: column)
            if actual != expected {
                let names = [SQLITE_INTEGER: "an integer", SQLITE_FLOAT: "a real number", SQLITE_TEXT: "text", SQLITE_BLOB: "a blob", SQLITE_NULL: "NULL"]
                return "its \(columnNames[Int(column)]) column holds \(names[actual] ?? "a value of type \(actual)"), not \(names[expected]!)"
            }
        }
        if s.int64(at: 9) != 0 && s.int64(at: 9) != 1 { return "its flagged column holds \(s.int64(at: 9)), not 0 or 1" }
        return nil
    }
}

/// Closes (and so flushes) every audit log still open when the process exits cleanly.
/// The writer threads still run during `atexit` handlers, so this only waits for them.
enum AuditLogsAtExit {
    private final class Weak: @unchecked Sendable {
        weak var writer: AuditWriter?
        init(_ writer: AuditWriter) { self.writer = writer }
    }

    private static let writers = Mutex<[Weak]>([])
    private static let installed: Void = { atexit { AuditLogsAtExit.closeAll() } }()

    static func register(_ writer: AuditWriter) {
        _ = installed
        writers.withLock { list in
            list.removeAll { $0.writer == nil }
            list.append(Weak(writer))
        }
    }

    static func closeAll() {
        let open = writers.withLock { list in list.compactMap(\.writer) }
        for writer in open { try? writer.close() }
    }
}

/// The queue and the writer thread behind `SQLiteAuditLog`. All state below is
/// guarded by `condition` (whose lock is also what flushers and blocked appenders
/// wait on).
final class AuditWriter: @unchecked Sendable {
    private let database: SQLiteDatabase
    private let batchSize: Int
    private let maxDelay: TimeInterval
    private let maxPending: Int
    private let condition = NSCondition()

    private var pending: [AuditEntry] = []
    private var appended: Int64 = 0
    private var committed: Int64 = 0
    private var batches: Int64 = 0
    private var dropped: Int64 = 0
    private var droppedSinceFlush: Int64 = 0
    /// The last write's error, until a write succeeds.
    private var failure: LLMOSError?
    /// The writer is waiting on the condition and wants a wake-up when work arrives.
    private var writerWaiting = false
    private var flushWaiters = 0
    private var closing = false
    private var finished = false
    private var started = false

    init(database: SQLiteDatabase, options: SQLiteAuditLog.Options) {
        self.database = database
        batchSize = options.batchSize
        let (seconds, attoseconds) = options.maxDelay.components
        maxDelay = max(0, Double(seconds) + Double(attoseconds) / 1e18)
        maxPending = options.maxPending
        pending.reserveCapacity(min(options.maxPending, 4 * options.batchSize))
    }

    func start() {
        condition.lock()
        started = true
        condition.unlock()
        let thread = Thread { [self] in run() }
        thread.name = "llmos-audit"
        thread.start()
    }

    var statistics: SQLiteAuditLog.Statistics {
        condition.lock()
        defer { condition.unlock() }
        return .init(appended: appended, committed: committed, dropped: dropped, batches: batches)
    }

    func append(_ entry: AuditEntry) {
        condition.lock()
        defer { condition.unlock() }
        while pending.count >= maxPending && failure == nil && !closing {
            wakeWriter()
            condition.wait()
        }
        guard !closing, pending.count < maxPending else {
            dropped += 1
            droppedSinceFlush += 1
            return
        }
        pending.append(entry)
        appended += 1
        if writerWaiting && (pending.count == 1 || pending.count >= batchSize) { wakeWriter() }
    }

    func flush() throws(LLMOSError) {
        condition.lock()
        defer { condition.unlock() }
        let target = appended
        if committed < target {
            flushWaiters += 1
            defer { flushWaiters -= 1 }
            wakeWriter()
            while committed < target {
                if let failure {
                    throw LLMOSError(.io, "audit log \(database.path): \(target - committed) records are not written yet: \(failure.message)", cause: failure)
                }
                if finished { throw LLMOSError(.io, "audit log \(database.path): closed with \(target - committed) records not written") }
                condition.wait()
            }
        }
        if droppedSinceFlush > 0 {
            let lost = droppedSinceFlush
            droppedSinceFlush = 0
            throw LLMOSError(.io, "audit log \(database.path): \(lost) records were dropped (\(failure.map { "the writer is failing: \($0.message)" } ?? "appended after close"))")
        }
    }

    /// Stops the writer after it has written everything queued, then closes the file.
    func close() throws(LLMOSError) {
        condition.lock()
        closing = true
        condition.broadcast()
        while started && !finished { condition.wait() }
        let lost = droppedSinceFlush
        droppedSinceFlush = 0
        let failure = self.failure
        condition.unlock()
        database.close()
        if lost > 0 {
            throw LLMOSError(.io, "audit log \(database.path): \(lost) records were lost\(failure.map { ": \($0.message)" } ?? "")", cause: failure)
        }
    }

    /// Called with the lock held.
    private func wakeWriter() {
        if writerWaiting {
            writerWaiting = false
            condition.broadcast()
        }
    }

    private func run() {
        var batch: [AuditEntry] = []
        batch.reserveCapacity(pending.capacity)
        var chain = AuditChain()
        var backoff: TimeInterval = 0.01
        condition.lock()
        while true {
            while pending.isEmpty && !closing {
                writerWaiting = true
                condition.wait()
                writerWaiting = false
            }
            if pending.isEmpty { break }   // closing, and all written
            if pending.count < batchSize && flushWaiters == 0 && !closing {
                let deadline = Date(timeIntervalSinceNow: maxDelay)
                while pending.count < batchSize && flushWaiters == 0 && !closing {
                    writerWaiting = true
                    let woken = condition.wait(until: deadline)
                    writerWaiting = false
                    if !woken { break }
                }
            }
            swap(&pending, &batch)
            condition.unlock()
            var error: LLMOSError?
            do throws(LLMOSError) { try write(batch, chain: &chain) } catch let e { error = e }
            condition.lock()
            if let error {
                failure = error
                // Back to the front of the queue, to be retried in order.
                batch.append(contentsOf: pending)
                swap(&pending, &batch)
                batch.removeAll(keepingCapacity: true)
                condition.broadcast()
                if closing {
                    dropped += Int64(pending.count)
                    droppedSinceFlush += Int64(pending.count)
                    appended -= Int64(pending.count)
                    pending.removeAll()
                    break
                }
                let deadline = Date(timeIntervalSinceNow: backoff)
                backoff = min(backoff * 2, 1)
                while !closing && condition.wait(until: deadline) {}
                continue
            }
            committed += Int64(batch.count)
            batches += 1
            failure = nil
            backoff = 0.01
            batch.removeAll(keepingCapacity: true)
            condition.broadcast()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Numbers, chains and inserts one batch in one transaction. The chain continues
    /// from the head read inside the transaction (which holds the write lock), so
    /// another process appending to the same file is taken into account. After a
    /// truncation (the head is ahead of the table) it continues from the head, so
    /// the gap stays visible to `verify`.
    private func write(_ batch: [AuditEntry], chain: inout AuditChain) throws(LLMOSError) {
        try database.transaction { (db) throws(LLMOSError) in
            let head = try db.query("SELECT seq, hash FROM chain_head WHERE id = 1") { ($0.int64(at: 0), $0.text(at: 1)) }.first
            let last = try db.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") { ($0.int64(at: 0), $0.text(at: 1)) }.first
            var (sequence, previous) = head ?? (0, AuditChain.genesis)
            if let last, last.0 > sequence { (sequence, previous) = last }
            let insert = try db.statement(AuditSchema.insert)
            for entry in batch {
                sequence += 1
                let record = AuditRecord(entry: entry, sequence: sequence, prevHash: previous, hasher: &chain)
                try insert.bind(record.sequence, at: 1)
                try insert.bind(record.time, at: 2)
                try insert.bind(record.process, at: 3)
                try insert.bind(record.driver, at: 4)
                try insert.bind(record.tool, at: 5)
                try insert.bind(record.capability, at: 6)
                try insert.bind(record.resource, at: 7)
                try insert.bind(record.argsHash, at: 8)
                try insert.bind(record.decision.rawValue, at: 9)
                try insert.bind(record.flagged ? 1 : 0, at: 10)
                try insert.bind(record.rule, at: 11)
                try insert.bind(record.outcome, at: 12)
                try insert.bind(record.durationNs, at: 13)
                try insert.bind(record.prevHash, at: 14)
                try insert.bind(record.hash, at: 15)
                _ = try insert.step()
                insert.reset()
                previous = record.hash
            }
            try db.run(AuditSchema.updateHead, [.integer(sequence), .text(previous)])
        }
    }
}
