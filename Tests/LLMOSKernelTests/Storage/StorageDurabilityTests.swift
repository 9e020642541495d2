import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// Durability: real `llmos call sqlite.put` processes, killed with SIGKILL while they
// hold the database's write lock (in the middle of a batch's transaction). Afterwards
// every batch that was committed is there whole, every interrupted one is wholly absent
// (or wholly present, had it committed just before the signal), and SQLite's own
// integrity checks pass — for the file and for the FTS5 index.

fileprivate let documentsPerBatch = 3000

/// A batch's put input: ids b<batch>-<i>, texts of pseudo-random words (~300 bytes),
/// each batch with a word of its own ("batchword<k>") so a search can find it.
fileprivate func batchInput(_ batch: Int) -> String {
    let words = ["storage", "driver", "kernel", "vector", "index", "query", "commit", "journal", "page", "cache",
                 "token", "model", "window", "memory", "search", "rank", "fusion", "filter", "schema", "batch"]
    var state: UInt64 = 0x9E3779B97F4A7C15 &* UInt64(batch + 1)
    var documents: [JSONValue] = []
    for i in 0..<documentsPerBatch {
        var text = "batchword\(batch) document \(i)"
        for _ in 0..<40 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            text += " " + words[Int(state >> 59) % words.count]
        }
        documents.append(["id": .string("b\(batch)-\(i)"), "text": .string(text), "metadata": ["batch": .int(Int64(batch)), "n": .int(Int64(i))]])
    }
    return JSONValue.object(["collection": "ingest", "documents": .array(documents)]).serialized()
}

fileprivate struct IngestProcess {
    let process = Process()
    let output: String

    init(batch: Int, workspace: String, drivers: String) throws {
        let input = workspace + "/batch-\(batch).json"
        try batchInput(batch).write(toFile: input, atomically: true, encoding: .utf8)
        output = workspace + "/batch-\(batch).out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.executableURL = URL(fileURLWithPath: Paths.buildDirectory + "/llmos")
        process.arguments = ["call", "--drivers", drivers, "--workspace", workspace, "--no-audit-log",
                             "--allow", "fs.read=\(workspace)/store.sqlite3*", "--allow", "fs.write=\(workspace)/store.sqlite3*",
                             "--allow", "storage.write=*", "--config", #"sqlite={"path": "store.sqlite3"}"#, "sqlite.put", "-"]
        process.currentDirectoryURL = URL(fileURLWithPath: workspace)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = workspace + "/home"
        environment["XDG_DATA_HOME"] = nil
        environment["XDG_CONFIG_HOME"] = nil
        environment["XDG_STATE_HOME"] = nil
        environment["LLMOS_DRIVER_PATH"] = nil
        process.environment = environment
        process.standardInput = FileHandle(forReadingAtPath: input)
        let log = FileHandle(forWritingAtPath: output)
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var printed: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
}

@Suite struct StorageDurabilityTests {
    @Test(.timeLimit(.minutes(5))) func killedMidIngestLosesNothingCommittedAndCorruptsNothing() throws {
        let dir = Paths.temporaryDirectory("storage-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workspace = FilePath.resolved(dir) ?? dir
        try FileManager.default.createDirectory(atPath: workspace + "/home", withIntermediateDirectories: true)
        let drivers = workspace + "/drivers"
        try FileManager.default.createDirectory(atPath: drivers, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Paths.manifests + "/sqlite.yaml", toPath: drivers + "/sqlite.yaml")
        let database = workspace + "/store.sqlite3"

        // Batch 0 runs to the end: it creates the database.
        let first = try IngestProcess(batch: 0, workspace: workspace, drivers: drivers)
        first.process.waitUntilExit()
        try #require(first.process.terminationStatus == 0, "the first ingest failed: \(first.printed)")

        var committed: Set<Int> = [0]
        var killed: [Int] = []
        // Another connection, never waiting for a lock: BEGIN IMMEDIATE fails with
        // SQLITE_BUSY exactly while an ingest holds the write lock, inside its batch.
        let probe = try SQLiteDatabase(path: database, options: .init(busyTimeoutMilliseconds: 0, createIfMissing: false))
        for batch in 1...4 {
            let ingest = try IngestProcess(batch: batch, workspace: workspace, drivers: drivers)
            var signalled = false
            while ingest.process.isRunning {
                do {
                    try probe.transaction { _ in }
                } catch {
                    if error.message.contains("SQLITE_BUSY") {
                        kill(ingest.process.processIdentifier, SIGKILL)
                        signalled = true
                        break
                    }
                    Issue.record("the probe failed: \(error.message)")
                    break
                }
                usleep(1000)
            }
            ingest.process.waitUntilExit()
            if signalled && ingest.process.terminationReason == .uncaughtSignal {
                killed.append(batch)
            } else {
                #expect(ingest.process.terminationStatus == 0, "batch \(batch): \(ingest.printed)")
                committed.insert(batch)
            }
        }
        probe.close()
        #expect(!killed.isEmpty, "no ingest was caught holding the write lock")

        // A later host opens the store (SQLite recovers the WAL) and ingests on.
        let last = try IngestProcess(batch: 5, workspace: workspace, drivers: drivers)
        last.process.waitUntilExit()
        #expect(last.process.terminationStatus == 0, "after the kills: \(last.printed)")
        committed.insert(5)

        let db = try SQLiteDatabase(path: database, options: .init(createIfMissing: false))
        defer { db.close() }
        #expect(try db.integrityCheck() == [], "PRAGMA integrity_check")
        try db.withConnection { connection throws(LLMOSError) in
            // FTS5's own check: the index agrees with the documents table.
            try connection.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")
        }
        var interruptedAndAbsent = 0
        for batch in 0...5 {
            let count = try db.withConnection { connection throws(LLMOSError) in
                try connection.query("SELECT count(*) FROM documents WHERE id LIKE ?", [.text("b\(batch)-%")]) { $0.int64(at: 0) }.first ?? -1
            }
            if committed.contains(batch) {
                #expect(count == Int64(documentsPerBatch), "committed batch \(batch) has \(count) of \(documentsPerBatch) documents")
            } else {
                #expect(count == 0 || count == Int64(documentsPerBatch), "interrupted batch \(batch) is half there: \(count) documents")
                if count == 0 { interruptedAndAbsent += 1 }
            }
        }
        #expect(interruptedAndAbsent > 0, "every kill landed after its commit: nothing was interrupted")
        print("storage durability: batches committed \(committed.sorted()), killed holding the write lock \(killed), of which wholly absent \(interruptedAndAbsent)")

        // And through the kernel, as a model would see it.
        let store = try StorageHarness(.sqlite, workspace: workspace)
        let stats = try store.call("stats", ["collection": "ingest"])
        let present = committed.count + (killed.count - interruptedAndAbsent)
        #expect(stats["documents"]?.int64Value == Int64(present * documentsPerBatch))
        let hits = try store.call("search", ["collection": "ingest", "mode": "text", "query": "batchword5", "limit": 5,
                                             "filter": ["n": ["$lt": 3]]])
        #expect(hits["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue }.sorted() == ["b5-0", "b5-1", "b5-2"])
    }
}
