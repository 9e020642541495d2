import Foundation

/// The persistent store behind `kv.get` / `kv.put` / `kv.delete`: one SQLite file
/// (WAL) with a row per (namespace, key). The kernel passes the calling driver's
/// name as the namespace, so one driver never sees another's keys.
///
/// Thread-safe: one connection, used under a lock; each call is one statement and
/// so its own transaction, and a put is durable once it returns (against a crash of
/// the process; `synchronous=NORMAL` can lose the last writes on a power failure).
/// Several processes may share the file (SQLite's locking, with a busy timeout).
///
/// Schema (`PRAGMA application_id` 0x4C4C4B56 "LLKV", `user_version` 1):
///
///     kv(namespace TEXT, key TEXT, value TEXT, updated_at TEXT,
///        PRIMARY KEY (namespace, key)) WITHOUT ROWID
///
/// `updated_at` is ISO-8601 in UTC with milliseconds, like the audit log's times.
public final class SQLiteKeyValueStore: KeyValueStore {
    /// "LLKV": marks the file as an llmos key-value store.
    static let applicationID: Int64 = 0x4C4C_4B56
    static let version: Int64 = 1

    /// `$XDG_DATA_HOME/llmos/kv.sqlite3`, by default `~/.local/share/llmos/kv.sqlite3`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let data = environment["XDG_DATA_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? FilePath.join(environment["HOME"] ?? FilePath.homeDirectory, ".local/share")
        return FilePath.join(data, "llmos/kv.sqlite3")
    }

    public let path: String
    private let database: SQLiteDatabase

    /// Opens the store at `path`, creating it (and its directories) when missing.
    /// A file that is not an llmos key-value store is refused with an error naming it.
    public init(path: String = SQLiteKeyValueStore.defaultPath()) throws(LLMOSError) {
        self.path = path
        database = try SQLiteDatabase(path: path)
        do throws(LLMOSError) {
            try database.transaction { (db) throws(LLMOSError) in
                let id = try db.query("PRAGMA application_id") { $0.int64(at: 0) }.first ?? 0
                let version = try db.query("PRAGMA user_version") { $0.int64(at: 0) }.first ?? 0
                let tables = try db.query("SELECT count(*) FROM sqlite_master") { $0.int64(at: 0) }.first ?? 0
                if id == 0 && tables == 0 {
                    try db.execute("""
                        CREATE TABLE kv (
                            namespace TEXT NOT NULL,
                            key TEXT NOT NULL,
                            value TEXT NOT NULL,
                            updated_at TEXT NOT NULL,
                            PRIMARY KEY (namespace, key)
                        ) WITHOUT ROWID;
                        PRAGMA application_id = \(SQLiteKeyValueStore.applicationID);
                        PRAGMA user_version = \(SQLiteKeyValueStore.version);
                        """)
                    return
                }
                guard id == SQLiteKeyValueStore.applicationID else {
                    throw LLMOSError(.io, "\(path): not an llmos key-value store (an SQLite database with application_id \(id), not \(SQLiteKeyValueStore.applicationID))")
                }
                guard version <= SQLiteKeyValueStore.version else {
                    throw LLMOSError(.io, "\(path): key-value store format \(version) is newer than this llmos reads (\(SQLiteKeyValueStore.version)); upgrade llmos")
                }
            }
        } catch {
            database.close()
            throw error
        }
    }

    deinit { database.close() }

    public func get(namespace: String, key: String) throws(LLMOSError) -> String? {
        try database.withConnection { (db) throws(LLMOSError) -> String? in
            try db.query("SELECT value FROM kv WHERE namespace = ? AND key = ?", [.text(namespace), .text(key)]) {
                $0.text(at: 0)
            }.first
        }
    }

    public func put(namespace: String, key: String, value: String) throws(LLMOSError) {
        let now = AuditTime.format(Date())
        try database.withConnection { (db) throws(LLMOSError) in
            _ = try db.run("""
                INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """, [.text(namespace), .text(key), .text(value), .text(now)])
        }
    }

    public func delete(namespace: String, key: String) throws(LLMOSError) -> Bool {
        try database.withConnection { (db) throws(LLMOSError) -> Bool in
            try db.run("DELETE FROM kv WHERE namespace = ? AND key = ?", [.text(namespace), .text(key)]) > 0
        }
    }

    /// Closes the file; later calls throw.
    public func close() { database.close() }
}
