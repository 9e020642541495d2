import CSQLite
import Foundation
import Synchronization
import Testing
@testable import LLMOSKernel
import LLMOSDigest

/// An entry whose fields say which one it is.
private func entry(_ i: Int, driver: String = "fs", tool: String = "fs.read", capability: String = "fs.read",
                   decision: Verdict = .allow, flagged: Bool = false, rule: String = "--allow fs.read=~/notes/**",
                   time: Date = Date(), outcome: String = "ok") -> AuditEntry {
    AuditEntry(time: time, process: "pid 42", driver: driver, tool: tool, capability: capability,
               resource: "/home/u/notes/\(i).md", argsHash: AuditEntry.hashArguments("{\"path\":\"\(i)\"}"),
               decision: decision, flagged: flagged, rule: rule, outcome: outcome, durationNs: Int64(1000 + i))
}

private func logFile(_ label: String = "audit") -> String {
    Paths.temporaryDirectory(label) + "/state/llmos/audit.sqlite3"
}

/// A closed log with `count` rows.
private func makeLog(rows count: Int = 30) throws -> String {
    let path = logFile()
    let log = try SQLiteAuditLog(path: path)
    for i in 1...count { log.append(entry(i)) }
    try log.close()
    return path
}

/// Edits the file by hand, as an attacker with write access would: the triggers go first.
private func tamper(_ path: String, _ sql: String, _ values: [SQLiteValue] = []) throws {
    let db = try SQLiteDatabase(path: path)
    defer { db.close() }
    try db.withConnection { (c) throws(LLMOSError) in
        try c.execute("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;")
        if values.isEmpty { try c.execute(sql) } else { _ = try c.run(sql, values) }
    }
}

private func verify(_ path: String, anchor: AuditAnchor? = nil) throws -> AuditVerification {
    let reader = try SQLiteAuditReader(path: path)
    defer { reader.close() }
    return try reader.verify(anchor: anchor)
}

private func insertValues(_ r: AuditRecord) -> [SQLiteValue] {
    [.integer(r.sequence), .text(r.time), .text(r.process), .text(r.driver), .text(r.tool), .text(r.capability),
     .text(r.resource), .text(r.argsHash), .text(r.decision.rawValue), .integer(r.flagged ? 1 : 0), .text(r.rule),
     .text(r.outcome), .integer(r.durationNs), .text(r.prevHash), .text(r.hash)]
}

/// Every suite of the audit log under one name, so `--filter AuditTests` runs them all.
@Suite struct AuditTests {}

extension AuditTests { @Suite struct Chain {
    @Test func hashEncodingIsTheDocumentedOne() {
        // Builds the bytes by hand from the spec in AuditChain's doc comment.
        let time = AuditTime.parse("2025-01-31T12:34:56.789Z")!
        let e = AuditEntry(time: time, process: "pid 7", driver: "fs", tool: "fs.read", capability: "fs.read",
                           resource: "/tmp/ü", argsHash: String(repeating: "a", count: 64), decision: .deny,
                           flagged: true, rule: "default: not granted", outcome: "permission_denied", durationNs: 1500)
        var message: [UInt8] = []
        for field in ["llmos-audit-v1", "1", "2025-01-31T12:34:56.789Z", "pid 7", "fs", "fs.read", "fs.read", "/tmp/ü",
                      String(repeating: "a", count: 64), "deny", "1", "default: not granted", "permission_denied", "1500",
                      String(repeating: "0", count: 64)] {
            let bytes = Array(field.utf8)
            let n = UInt32(bytes.count)
            message += [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + bytes
        }
        let log = MemoryAuditLog()
        log.append(e)
        let record = log.records[0]
        #expect(record.time == "2025-01-31T12:34:56.789Z")
        #expect(record.prevHash == String(repeating: "0", count: 64))
        #expect(record.hash == SHA256.hex(of: message))
    }

    @Test func timesAreISO8601UTCWithMilliseconds() {
        #expect(AuditTime.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(AuditTime.format(milliseconds: 1_738_326_896_789) == "2025-01-31T12:34:56.789Z")
        #expect(AuditTime.format(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        for text in ["2025-01-31T12:34:56.789Z", "2000-02-29T00:00:00.001Z", "1999-12-31T23:59:59.999Z"] {
            #expect(AuditTime.format(AuditTime.parse(text)!) == text)
        }
        #expect(AuditTime.parse("2025-01-31 12:34:56") == nil)
    }

    @Test func memoryLogChainsAndVerifies() {
        let log = MemoryAuditLog()
        for i in 1...20 { log.append(entry(i)) }
        let records = log.records
        #expect(records.map(\.sequence) == Array(1...20))
        for (a, b) in zip(records, records.dropFirst()) { #expect(b.prevHash == a.hash) }
        let result = log.verify()
        #expect(result.isValid, "\(result)")
        #expect(result.lastSequence == 20 && result.headHash == records.last!.hash)
        #expect(log.verify(anchor: AuditAnchor(sequence: 5, hash: "bad")).firstProblem?.kind == .headMismatch)
    }

    @Test func memoryAndSQLiteLogsHashAlike() throws {
        let time = Date(timeIntervalSince1970: 1_700_000_000.123)
        let memory = MemoryAuditLog()
        let path = logFile()
        let sqlite = try SQLiteAuditLog(path: path)
        for i in 1...10 { memory.append(entry(i, time: time)); sqlite.append(entry(i, time: time)) }
        try sqlite.flush()
        #expect(try sqlite.tail(limit: 10) == memory.records)
        try sqlite.close()
    }

    @Test func entryFromARequestAndDecision() {
        let request = AccessRequest(kind: .netConnect, resource: "https://example.com:443", address: "93.184.216.34",
                                    driver: "web", tool: "web.fetch")
        let e = AuditEntry(request: request, decision: Decision(verdict: .allow, flagged: true, rule: "audit net.connect=*"),
                           argsHash: AuditEntry.hashArguments("{}"), outcome: AuditEntry.outcome(of: LLMOSError(.timeout, "slow")))
        #expect(e.capability == "net.connect" && e.driver == "web" && e.tool == "web.fetch")
        #expect(e.resource == "https://example.com:443 (address 93.184.216.34)")
        #expect(e.flagged && e.decision == .allow && e.rule == "audit net.connect=*")
        #expect(e.outcome == "timeout" && AuditEntry.outcome(of: nil) == "ok")
        #expect(e.process == "pid \(getpid())")
        #expect(e.argsHash == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    }
}
}

extension AuditTests { @Suite struct SQLiteLog {
    @Test func appendsChainAndVerify() throws {
        let path = logFile()
        let log = try SQLiteAuditLog(path: path)
        for i in 1...100 { log.append(entry(i)) }
        try log.flush()
        let records = try log.tail(limit: 1000)
        #expect(records.map(\.sequence) == Array(1...100))
        #expect(records.first?.prevHash == AuditChain.genesis)
        for (a, b) in zip(records, records.dropFirst()) { #expect(b.prevHash == a.hash) }
        #expect(records[4].resource == "/home/u/notes/5.md" && records[4].durationNs == 1005 && records[4].process == "pid 42")
        let result = try log.verify()
        #expect(result.isValid, "\(result)")
        #expect(result.rowsChecked == 100 && result.lastSequence == 100 && result.headHash == records.last?.hash)
        #expect(log.statistics.committed == 100 && log.statistics.pending == 0)
        try log.close()
        // The directories were created, private to the user.
        var info = stat()
        #expect(stat(FilePath.directory(of: path), &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test func anEditedFieldIsFound() throws {
        let path = try makeLog()
        try tamper(path, "UPDATE audit SET resource = '/etc/shadow' WHERE seq = 17")
        let result = try verify(path)
        #expect(result.firstProblem?.message == "row 17 was edited (its hash does not match its contents)")
        #expect(result.firstProblem?.kind == .edited && result.firstProblem?.sequence == 17)
        #expect(result.problemCount == 1, "\(result)")
    }

    @Test func anEditedDecisionIsFound() throws {
        let path = try makeLog()
        try tamper(path, "UPDATE audit SET decision = 'allow', rule = 'x' WHERE seq = 3; UPDATE audit SET decision = 'maybe' WHERE seq = 9")
        let result = try verify(path)
        #expect(result.problems.map(\.message) == ["row 3 was edited (its hash does not match its contents)",
                                                   "row 9 was edited (its hash does not match its contents)"])
        // Reading the rows says so too, rather than inventing a decision.
        let reader = try SQLiteAuditReader(path: path)
        #expect(throws: LLMOSError.self) { try reader.tail(limit: 30) }
        #expect(try reader.tail(limit: 21).count == 21)
    }

    @Test func aColumnOfTheWrongTypeIsFound() throws {
        let path = try makeLog()
        try tamper(path, "UPDATE audit SET duration_ns = 'about 1017' WHERE seq = 17")
        #expect(try verify(path).firstProblem?.message == "row 17 was edited (its duration_ns column holds text, not an integer)")
    }

    @Test func anInsertedRowIsFound() throws {
        let path = try makeLog()
        // A careful forger: renumbers the rows from 17 on and inserts a row 17 whose
        // own hash is right and which links to row 16.
        let row16 = try SQLiteAuditReader(path: path).tail(limit: 30)[15]
        var chain = AuditChain()
        let forged = AuditRecord(entry: entry(99, rule: "forged"), sequence: 17, prevHash: row16.hash, hasher: &chain)
        try tamper(path, "UPDATE audit SET seq = -seq - 1 WHERE seq >= 17; UPDATE audit SET seq = -seq WHERE seq < 0")
        try tamper(path, AuditSchema.insert, insertValues(forged))
        let result = try verify(path)
        #expect(result.firstProblem?.message == "row 18 does not follow row 17 (inserted or reordered: prev_hash mismatch)")
        #expect(result.firstProblem?.kind == .outOfOrder)
        #expect(result.problems.contains { $0.message.contains("rows after the chain head (row 30)") })
    }

    @Test func aRowAppendedByHandIsFound() throws {
        let path = try makeLog()
        let row30 = try SQLiteAuditReader(path: path).tail(limit: 1)[0]
        var chain = AuditChain()
        let forged = AuditRecord(entry: entry(31), sequence: 31, prevHash: row30.hash, hasher: &chain)
        try tamper(path, AuditSchema.insert, insertValues(forged))
        let result = try verify(path)
        #expect(result.problems.map(\.message) == ["rows after the chain head (row 30) were added outside the log: the table ends at row 31 (inserted)"])
    }

    @Test func aDeletedMiddleRowIsFound() throws {
        let path = try makeLog()
        try tamper(path, "DELETE FROM audit WHERE seq = 17")
        let result = try verify(path)
        #expect(result.firstProblem?.message == "a row is missing between 16 and 18 (deleted)")
        #expect(result.firstProblem?.kind == .missing && result.problemCount == 1)
        try tamper(path, "DELETE FROM audit WHERE seq IN (20, 21, 22)")
        #expect(try verify(path).problems.last?.message == "3 rows (20 to 22) are missing between 19 and 23 (deleted)")
        try tamper(path, "DELETE FROM audit WHERE seq = 1")
        #expect(try verify(path).firstProblem?.message == "a row is missing before 2 (deleted)")
    }

    @Test func aDeletedLastRowIsFound() throws {
        let path = try makeLog()
        try tamper(path, "DELETE FROM audit WHERE seq = 30")
        let result = try verify(path)
        #expect(result.problems.map(\.message) == ["the last row was deleted: the chain head records row 30, the log ends at row 29"])
        #expect(result.firstProblem?.kind == .truncated)
        // The log goes on from the head, so the hole stays visible.
        let log = try SQLiteAuditLog(path: path)
        log.append(entry(31))
        try log.close()
        #expect(try verify(path).problems.map(\.message) == ["a row is missing between 29 and 31 (deleted)"])
        try tamper(path, "DELETE FROM audit")
        #expect(try verify(path).problems.map(\.message) == ["the last 31 rows were deleted: the chain head records row 31, the table is empty"])
    }

    @Test func reorderedRowsAreFound() throws {
        let path = try makeLog()
        try tamper(path, "UPDATE audit SET seq = -1 WHERE seq = 17; UPDATE audit SET seq = 17 WHERE seq = 18; UPDATE audit SET seq = 18 WHERE seq = -1")
        let result = try verify(path)
        #expect(result.firstProblem?.message == "row 17 does not follow row 16 (inserted or reordered: prev_hash mismatch)")
        #expect(result.problems.map(\.sequence) == [17, 18, 19])
    }

    @Test func aReplacedHeadIsFound() throws {
        let path = try makeLog()
        try tamper(path, "UPDATE chain_head SET hash = 'x'")
        #expect(try verify(path).problems.map(\.message) == ["the chain head does not match row 30 (the last row was replaced)"])
        try tamper(path, "DELETE FROM chain_head")
        #expect(try verify(path).problems.map(\.message) == ["the chain head is missing (it was deleted)"])
    }

    @Test func aTruncationThatFixesTheHeadIsFoundOnlyAgainstAnAnchor() throws {
        let path = try makeLog()
        let before = try verify(path)
        let anchor = AuditAnchor(sequence: before.lastSequence, hash: before.headHash)
        let row29 = try SQLiteAuditReader(path: path).tail(limit: 2)[0]
        try tamper(path, "DELETE FROM audit WHERE seq = 30; UPDATE chain_head SET seq = 29, hash = '\(row29.hash)'")
        // The limit the doc comments admit: without a head kept elsewhere, this verifies.
        #expect(try verify(path).isValid)
        #expect(try verify(path, anchor: anchor).problems.map(\.message)
            == ["row 30, anchored outside the log, is not in it (the log ends at row 29): rows were deleted"])
    }

    @Test func triggersRefuseUpdatesAndDeletes() throws {
        let path = try makeLog(rows: 3)
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        for sql in ["UPDATE audit SET rule = 'x' WHERE seq = 2", "DELETE FROM audit WHERE seq = 3"] {
            do {
                try db.withConnection { (c) throws(LLMOSError) in try c.execute(sql) }
                Issue.record("\(sql) was allowed")
            } catch {
                #expect(error.message.contains("the audit log is append-only"))
                #expect((error.cause as? SQLiteError)?.codeName == "SQLITE_CONSTRAINT_TRIGGER")
            }
        }
        #expect(try verify(path).isValid)
        // Reopening the log puts dropped triggers back.
        try tamper(path, "SELECT 1")
        try SQLiteAuditLog(path: path).close()
        #expect(throws: LLMOSError.self) { try db.withConnection { (c) throws(LLMOSError) in try c.execute("DELETE FROM audit") } }
    }

    @Test func theChainContinuesAcrossReopening() throws {
        let path = logFile()
        var log = try SQLiteAuditLog(path: path)
        for i in 1...10 { log.append(entry(i)) }
        try log.close()
        log = try SQLiteAuditLog(path: path)
        for i in 11...20 { log.append(entry(i)) }
        try log.flush()
        let records = try log.tail(limit: 20)
        #expect(records.map(\.sequence) == Array(1...20))
        #expect(records[10].prevHash == records[9].hash)
        #expect(try log.verify().isValid)
        try log.close()
    }

    @Test func appendReturnsAtOnceAndFlushCommits() throws {
        let path = logFile()
        // A writer that would wait ten seconds for a batch: only flush makes it write now.
        let log = try SQLiteAuditLog(path: path, options: .init(batchSize: 1_000_000, maxDelay: .seconds(10)))
        let reader = try SQLiteAuditReader(path: path)
        let start = ContinuousClock.now
        for i in 1...500 { log.append(entry(i)) }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(try reader.count() == 0)
        #expect(log.statistics.pending == 500)
        try log.flush()
        #expect(try reader.count() == 500)
        #expect(log.statistics == .init(appended: 500, committed: 500, dropped: 0, batches: 1))
        try log.flush()  // nothing to do
        try log.close()
        #expect(try reader.verify().isValid)
    }

    @Test func batchesAreWrittenWithoutAFlush() async throws {
        let path = logFile()
        let log = try SQLiteAuditLog(path: path, options: .init(batchSize: 100, maxDelay: .milliseconds(5)))
        for i in 1...3 { log.append(entry(i)) }  // fewer than a batch: written after maxDelay
        let reader = try SQLiteAuditReader(path: path)
        var waited = 0
        while try reader.count() < 3 && waited < 200 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
        #expect(try reader.count() == 3)
        try log.close()
    }

    @Test func closingFlushesAndLaterAppendsAreReported() throws {
        let path = logFile()
        do {
            let log = try SQLiteAuditLog(path: path, options: .init(maxDelay: .seconds(10)))
            for i in 1...7 { log.append(entry(i)) }
            // Dropping the last reference flushes and closes.
        }
        #expect(try SQLiteAuditReader(path: path).count() == 7)
        let log = try SQLiteAuditLog(path: path)
        try log.close()
        log.append(entry(8))
        #expect(log.statistics.dropped == 1)
        #expect(throws: LLMOSError.self) { try log.flush() }
    }

    @Test func acknowledgedEntriesSurviveAnAbandonedProcess() throws {
        // The host dies without closing (a driver crashed it): what was flushed is in the file.
        let path = logFile()
        let log = try SQLiteAuditLog(path: path, options: .init(maxDelay: .seconds(10)))
        for i in 1...50 { log.append(entry(i)) }
        try log.flush()
        _ = Unmanaged.passRetained(log)  // never closed, never deinitialized
        let reader = try SQLiteAuditReader(path: path)
        #expect(try reader.count() == 50)
        #expect(try reader.verify().isValid)
    }

    @Test func manyThreadsKeepAGaplessValidChain() throws {
        let path = logFile()
        let log = try SQLiteAuditLog(path: path, options: .init(batchSize: 256, maxPending: 1000))
        let threads = 8, perThread = 2_500
        onThreads(threads) { t in
            for i in 0..<perThread {
                log.append(AuditEntry(driver: "t\(t)", tool: "t\(t).x", capability: "call", resource: "\(i)",
                                      argsHash: "", decision: .allow, rule: "r"))
            }
        }
        try log.flush()
        let records = try log.search(limit: threads * perThread)
        #expect(records.count == threads * perThread)
        #expect(records.map(\.sequence) == Array(1...Int64(threads * perThread)))
        // Each thread's entries are in the order it appended them.
        for t in 0..<threads {
            let mine = records.filter { $0.driver == "t\(t)" }.map { Int($0.resource)! }
            #expect(mine == Array(0..<perThread))
        }
        let result = try log.verify()
        #expect(result.isValid && result.rowsChecked == threads * perThread, "\(result)")
        #expect(log.statistics.batches > 1)
        try log.close()
    }

    @Test func twoLogsOnOneFileInterleaveIntoOneChain() throws {
        // Two processes (here two connections) appending to the same file.
        let path = logFile()
        let a = try SQLiteAuditLog(path: path, options: .init(batchSize: 10))
        let b = try SQLiteAuditLog(path: path, options: .init(batchSize: 10))
        onThreads(2) { t in
            let log = t == 0 ? a : b
            for i in 1...300 { log.append(entry(i, driver: "log\(t)")) }
        }
        try a.close()
        try b.close()
        let result = try verify(path)
        #expect(result.isValid && result.rowsChecked == 600, "\(result)")
    }

    @Test func argumentsAreNeverStored() throws {
        let path = logFile()
        let secret = "{\"password\":\"correct-horse-battery-staple-\(UUID().uuidString)\"}"
        let log = try SQLiteAuditLog(path: path)
        log.append(AuditEntry(driver: "vault", tool: "vault.unlock", capability: "call", resource: "vault.unlock",
                              argsHash: AuditEntry.hashArguments(secret), decision: .allow, rule: "r"))
        try log.flush()
        let record = try log.tail(limit: 1)[0]
        #expect(record.argsHash == SHA256.hex(of: Array(secret.utf8)))
        #expect(record.argsHash.count == 64)
        let needle = Array("correct-horse-battery-staple".utf8)
        for file in [path, path + "-wal", path + "-shm"] where FilePath.exists(file) {
            let bytes = try FilePath.readBytes(file)
            let found = bytes.count >= needle.count && (0...(bytes.count - needle.count)).contains { i in
                bytes[i] == needle[0] && Array(bytes[i..<(i + needle.count)]) == needle
            }
            #expect(!found, "the input is in \(file)")
        }
        try log.close()
    }

    @Test func searchAndTail() throws {
        let path = logFile()
        let log = try SQLiteAuditLog(path: path)
        let old = Date(timeIntervalSince1970: 1_600_000_000)
        let recent = Date(timeIntervalSince1970: 1_800_000_000)
        log.append(entry(1, time: old))
        log.append(entry(2, driver: "web", tool: "web.fetch", capability: "net.connect", decision: .deny,
                         rule: "--deny net.connect=*", time: recent, outcome: "permission_denied"))
        log.append(entry(3, decision: .ask, rule: "llmos.policy.yaml:4: ask fs.read ~/secret/**", time: recent))
        log.append(entry(4, flagged: true, rule: "llmos.policy.yaml:9: audit fs.read ~/notes/**", time: recent))
        log.append(entry(5, driver: "calc", tool: "calc.add", capability: "call", rule: "default: callable", time: recent))
        try log.flush()
        #expect(try log.tail(limit: 2).map(\.sequence) == [4, 5])
        #expect(try log.tail(limit: 100).map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(try log.tail(limit: 0).isEmpty)
        #expect(try log.search(driver: "web").map(\.sequence) == [2])
        #expect(try log.search(driver: "web").first?.outcome == "permission_denied")
        #expect(try log.search(tool: "calc.add").map(\.sequence) == [5])
        #expect(try log.search(capability: "fs.read").map(\.sequence) == [1, 3, 4])
        #expect(try log.search(decision: .ask).map(\.sequence) == [3])
        #expect(try log.search(flaggedOnly: true).map(\.sequence) == [4])
        #expect(try log.search(since: Date(timeIntervalSince1970: 1_700_000_000)).map(\.sequence) == [2, 3, 4, 5])
        #expect(try log.search(text: "/notes/3.md").map(\.sequence) == [3])       // in the resource
        #expect(try log.search(text: "llmos.policy.yaml").map(\.sequence) == [3, 4])  // in the rule
        #expect(try log.search(text: "%").isEmpty)                                // no LIKE wildcards
        #expect(try log.search(capability: "fs.read", limit: 2).map(\.sequence) == [3, 4])
        #expect(try log.search(driver: "fs", decision: .allow, flaggedOnly: true).map(\.sequence) == [4])
        #expect(try log.search(driver: "nobody").isEmpty)
        // The memory log searches alike.
        let memory = MemoryAuditLog()
        for r in try log.tail(limit: 5) {
            memory.append(AuditEntry(time: r.date!, process: r.process, driver: r.driver, tool: r.tool, capability: r.capability,
                                     resource: r.resource, argsHash: r.argsHash, decision: r.decision, flagged: r.flagged,
                                     rule: r.rule, outcome: r.outcome, durationNs: r.durationNs))
        }
        #expect(memory.records == (try log.tail(limit: 5)))
        #expect(memory.search(capability: "fs.read", limit: 2).map(\.sequence) == [3, 4])
        #expect(memory.search(since: Date(timeIntervalSince1970: 1_700_000_000), text: "policy").map(\.sequence) == [3, 4])
        try log.close()
    }

    @Test func aFileThatIsNotADatabaseIsRefusedByName() throws {
        let path = Paths.temporaryDirectory("audit") + "/audit.sqlite3"
        try String(repeating: "this is not a database\n", count: 200).write(toFile: path, atomically: true, encoding: .utf8)
        for open in [{ _ = try SQLiteAuditLog(path: path) }, { _ = try SQLiteAuditReader(path: path) }] as [() throws -> Void] {
            do {
                try open()
                Issue.record("opened a file that is not a database")
            } catch let error as LLMOSError {
                #expect(error.code == .io)
                #expect(error.message == "\(path): file is not a database (SQLITE_NOTADB/26)", "\(error.message)")
                #expect((error.cause as? SQLiteError)?.resultCode == SQLITE_NOTADB)
            }
        }
    }

    @Test func anotherDatabaseIsRefused() throws {
        let path = Paths.temporaryDirectory("audit") + "/other.sqlite3"
        let db = try SQLiteDatabase(path: path)
        try db.withConnection { (c) throws(LLMOSError) in try c.execute("CREATE TABLE notes (x)") }
        db.close()
        #expect { try SQLiteAuditLog(path: path) } throws: {
            ($0 as? LLMOSError)?.message == "\(path): not an llmos audit log (an SQLite database with application_id 0, not 1280065877)"
        }
        #expect { try SQLiteAuditReader(path: path + ".missing") } throws: { ($0 as? LLMOSError)?.code == .notFound }
    }

    @Test func theDefaultPathFollowsXDG() {
        #expect(SQLiteAuditLog.defaultPath(environment: ["XDG_STATE_HOME": "/x/state", "HOME": "/home/u"]) == "/x/state/llmos/audit.sqlite3")
        #expect(SQLiteAuditLog.defaultPath(environment: ["XDG_STATE_HOME": "relative", "HOME": "/home/u"]) == "/home/u/.local/state/llmos/audit.sqlite3")
        #expect(SQLiteAuditLog.defaultPath(environment: ["HOME": "/home/u"]) == "/home/u/.local/state/llmos/audit.sqlite3")
    }
}
}

extension AuditTests { @Suite struct SQLiteDatabaseWrapper {
    @Test func aTransactionThatThrowsLeavesNothing() throws {
        let path = Paths.temporaryDirectory("sqlite") + "/a/b/t.sqlite3"
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        try db.withConnection { (c) throws(LLMOSError) in try c.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)") }
        #expect(throws: LLMOSError.self) {
            try db.transaction { (c) throws(LLMOSError) in
                _ = try c.run("INSERT INTO t VALUES (1, 'a')")
                _ = try c.run("INSERT INTO t VALUES (1, 'b')")  // primary key conflict
            }
        }
        let count = try db.withConnection { (c) throws(LLMOSError) in try c.query("SELECT count(*) FROM t") { $0.int64(at: 0) } }
        #expect(count == [0])
        try db.transaction { (c) throws(LLMOSError) in _ = try c.run("INSERT INTO t VALUES (?, ?)", [.integer(2), .text("a\u{0}b")]) }
        let text = try db.withConnection { (c) throws(LLMOSError) in try c.query("SELECT y FROM t") { $0.text(at: 0) } }
        #expect(text == ["a\u{0}b"])
        #expect(try db.integrityCheck().isEmpty)
        let mode = try db.withConnection { (c) throws(LLMOSError) in try c.query("PRAGMA journal_mode") { $0.text(at: 0) } }
        #expect(mode == ["wal"])
        #expect(throws: LLMOSError.self) {
            try db.transaction { (_) throws(LLMOSError) in try db.transaction { (_) throws(LLMOSError) in } }
        }
    }

    @Test func errorsNameTheFileTheCodeAndTheSQL() throws {
        let path = Paths.temporaryDirectory("sqlite") + "/t.sqlite3"
        let db = try SQLiteDatabase(path: path)
        try db.withConnection { (c) throws(LLMOSError) in try c.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)") }
        do {
            try db.withConnection { (c) throws(LLMOSError) in _ = try c.run("INSERT INTO t VALUES (1), (1)") }
            Issue.record("no error")
        } catch {
            #expect(error.code == .io)
            #expect(error.message == "\(path): UNIQUE constraint failed: t.x (SQLITE_CONSTRAINT_PRIMARYKEY/1555)")
            let cause = try #require(error.cause as? SQLiteError)
            #expect(cause.sql == "INSERT INTO t VALUES (1), (1)" && cause.primaryCode == SQLITE_CONSTRAINT)
        }
        do {
            _ = try db.withConnection { (c) throws(LLMOSError) in try c.statement("SELEC nonsense") }
            Issue.record("no error")
        } catch {
            #expect(error.message.hasPrefix("\(path): near \"SELEC\": syntax error (SQLITE_ERROR/1)"))
        }
        db.close()
        #expect(throws: LLMOSError.self) { try db.withConnection { _ in } }
    }
}
}
