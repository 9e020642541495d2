import CSQLite
import Foundation
import Synchronization
import Testing
@testable import LLMOSKernel

@Suite struct SQLiteKeyValueStoreTests {
    private func storeFile() -> String { Paths.temporaryDirectory("kv") + "/data/llmos/kv.sqlite3" }

    @Test func roundTrip() throws {
        let store = try SQLiteKeyValueStore(path: storeFile())
        #expect(try store.get(namespace: "notes", key: "a") == nil)
        try store.put(namespace: "notes", key: "a", value: "1")
        #expect(try store.get(namespace: "notes", key: "a") == "1")
        try store.put(namespace: "notes", key: "a", value: "2")
        #expect(try store.get(namespace: "notes", key: "a") == "2")
        // Empty, Unicode, an embedded NUL and a large value come back as they went in.
        for value in ["", "héllo wörld 🌍", "a\u{0}b", String(repeating: "x", count: 1 << 20)] {
            try store.put(namespace: "notes", key: "v", value: value)
            #expect(try store.get(namespace: "notes", key: "v") == value)
        }
        try store.put(namespace: "notes", key: "", value: "empty key")
        #expect(try store.get(namespace: "notes", key: "") == "empty key")
    }

    @Test func namespacesAreSeparate() throws {
        let store = try SQLiteKeyValueStore(path: storeFile())
        try store.put(namespace: "calc", key: "k", value: "calc's")
        try store.put(namespace: "text", key: "k", value: "text's")
        #expect(try store.get(namespace: "calc", key: "k") == "calc's")
        #expect(try store.get(namespace: "text", key: "k") == "text's")
        #expect(try store.get(namespace: "web", key: "k") == nil)
        // No prefix trick crosses namespaces.
        try store.put(namespace: "a", key: "b.c", value: "1")
        #expect(try store.get(namespace: "a.b", key: "c") == nil)
        #expect(try store.delete(namespace: "calc", key: "k"))
        #expect(try store.get(namespace: "text", key: "k") == "text's")
    }

    @Test func deleteSaysWhetherTheKeyExisted() throws {
        let store = try SQLiteKeyValueStore(path: storeFile())
        try store.put(namespace: "n", key: "k", value: "v")
        #expect(try store.delete(namespace: "n", key: "k"))
        #expect(try store.get(namespace: "n", key: "k") == nil)
        #expect(try !store.delete(namespace: "n", key: "k"))
        #expect(try !store.delete(namespace: "other", key: "never"))
    }

    @Test func valuesPersistAcrossReopening() throws {
        let path = storeFile()
        var store = try SQLiteKeyValueStore(path: path)
        try store.put(namespace: "n", key: "kept", value: "yes")
        try store.put(namespace: "n", key: "gone", value: "no")
        _ = try store.delete(namespace: "n", key: "gone")
        store.close()
        #expect(throws: LLMOSError.self) { try store.get(namespace: "n", key: "kept") }
        store = try SQLiteKeyValueStore(path: path)
        #expect(try store.get(namespace: "n", key: "kept") == "yes")
        #expect(try store.get(namespace: "n", key: "gone") == nil)
        // updated_at is stored, in the audit log's time format.
        let db = try SQLiteDatabase(path: path)
        defer { db.close() }
        let stamps = try db.withConnection { (c) throws(LLMOSError) in
            try c.query("SELECT updated_at FROM kv") { $0.text(at: 0) }
        }
        #expect(stamps.count == 1 && AuditTime.parse(stamps[0]) != nil)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test func concurrentUse() throws {
        let path = storeFile()
        let store = try SQLiteKeyValueStore(path: path)
        let other = try SQLiteKeyValueStore(path: path)  // a second connection, as another process would have
        let failures = Mutex(0)
        onThreads(8) { t in
            let s = t % 2 == 0 ? store : other
            for i in 0..<200 {
                do {
                    try s.put(namespace: "t\(t)", key: "k\(i)", value: "\(t):\(i)")
                    try s.put(namespace: "shared", key: "counter", value: "\(t):\(i)")
                    if try s.get(namespace: "t\(t)", key: "k\(i)") != "\(t):\(i)" { failures.withLock { $0 += 1 } }
                    if i % 3 == 0, try !s.delete(namespace: "t\(t)", key: "k\(i)") { failures.withLock { $0 += 1 } }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        for t in 0..<8 {
            #expect(try store.get(namespace: "t\(t)", key: "k1") == "\(t):1")
            #expect(try store.get(namespace: "t\(t)", key: "k3") == nil)
        }
        #expect(try store.get(namespace: "shared", key: "counter")?.hasSuffix(":199") == true)
    }

    @Test func aFileThatIsNotAStoreIsRefusedByName() throws {
        let path = Paths.temporaryDirectory("kv") + "/kv.sqlite3"
        try String(repeating: "garbage ", count: 1000).write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try SQLiteKeyValueStore(path: path) } throws: { error in
            let e = error as? LLMOSError
            return e?.code == .io && e?.message == "\(path): file is not a database (SQLITE_NOTADB/26)"
                && (e?.cause as? SQLiteError)?.resultCode == SQLITE_NOTADB
        }
        // An audit log is an SQLite database, but not a key-value store.
        let audit = Paths.temporaryDirectory("kv") + "/audit.sqlite3"
        try SQLiteAuditLog(path: audit).close()
        #expect { try SQLiteKeyValueStore(path: audit) } throws: {
            ($0 as? LLMOSError)?.message.contains("not an llmos key-value store") == true
        }
        // A directory where the file should be.
        let dir = Paths.temporaryDirectory("kv")
        #expect { try SQLiteKeyValueStore(path: dir) } throws: {
            ($0 as? LLMOSError)?.message.hasPrefix(dir) == true
        }
    }

    @Test func theDefaultPathFollowsXDG() {
        #expect(SQLiteKeyValueStore.defaultPath(environment: ["XDG_DATA_HOME": "/x/data", "HOME": "/home/u"]) == "/x/data/llmos/kv.sqlite3")
        #expect(SQLiteKeyValueStore.defaultPath(environment: ["HOME": "/home/u"]) == "/home/u/.local/share/llmos/kv.sqlite3")
    }
}
