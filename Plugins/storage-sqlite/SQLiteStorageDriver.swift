// The sqlite storage driver (class storage): named collections of documents in one
// SQLite file — FTS5 with BM25 for text, Float32 vectors with exact SIMD cosine search,
// hybrid ranking by reciprocal rank fusion, metadata filters, one transaction per batch.
// The contract is sdk/schemas/classes/storage.schema.json; docs/STORAGE.md and
// Plugins/storage-sqlite/README.md describe it.
//
// How it reaches its file. SQLite opens and writes the database itself (with its -wal
// and -shm companions), which no fs.* system call can do for it: this is an in-process
// driver the operator trusts with the one database path they configure. That trust is
// made visible and checkable: before the first open, the driver asks the kernel for
// fs.write and fs.read of the database file and of its -wal and -shm files (the
// manifest requests them; the operator's policy must grant them), and opens exactly the
// canonical path the kernel checked, refusing a symlink in its place.
import CSQLite
import LLMOSDriverSDK
import LLMOSJSON
import StorageKit

struct SQLiteStorageDriver: LLMOSDriver {
    static let name = "sqlite"
    static let version = "1.0.0"

    let state: StoreState

    init(context: DriverContext) throws {
        let config: JSONValue
        do { config = try JSON.parse(context.config) } catch {
            throw DriverError.invalidArgument("sqlite configuration: not valid JSON: \(error)")
        }
        state = StoreState(configuration: try StoreConfiguration(config))
    }

    static func register(_ router: inout Router) {
        for (name, handler) in StoreState.operations {
            router.addRaw(name) { (driver: SQLiteStorageDriver, json: String, call: CallContext) throws -> String in
                try StorageOperations.handle(json) { input throws(DriverError) in try handler(driver.state, input, call) }
            }
        }
    }
}

/// The driver's configuration (manifests/sqlite.yaml `config`; defaults filled in by the kernel).
struct StoreConfiguration {
    /// The database file, as configured: relative paths are the workspace's (the kernel
    /// resolves them when it checks the grant).
    var path = ".llmos/storage.sqlite3"
    /// "full" (default) or "normal": see Database.init.
    var synchronous = "full"
    var busyTimeoutMs: Int32 = 5000
    /// A tool that embeds texts (a cpu driver's `embed`, e.g. local.embed), called through
    /// the kernel's tool.call; nil: vectors come only with the documents and queries.
    var embedTool: String?
    /// "auto" (the IVF index from `indexThreshold` vectors), "exact" or "ivf" (always).
    var vectorIndex = "auto"
    var indexThreshold = 20_000
    /// Lists an indexed search scans (0: a sixteenth of them, at least 16).
    var nprobe = 0

    init(_ config: JSONValue) throws(DriverError) {
        if let v = config["vector_index"] {
            guard let text = v.stringValue, ["auto", "exact", "ivf"].contains(text) else {
                throw .invalidArgument("sqlite configuration: vector_index must be \"auto\", \"exact\" or \"ivf\"")
            }
            vectorIndex = text
        }
        if let v = config["index_threshold"] {
            guard let n = v.int64Value, n >= 1 else { throw .invalidArgument("sqlite configuration: index_threshold must be a positive integer (vectors)") }
            indexThreshold = Int(n)
        }
        if let v = config["nprobe"] {
            guard let n = v.int64Value, (0...4096).contains(n) else { throw .invalidArgument("sqlite configuration: nprobe must be an integer from 0 (automatic) to 4096") }
            nprobe = Int(n)
        }
        if let path = config["path"] {
            guard let text = path.stringValue, !text.isEmpty, !text.contains("\0") else {
                throw .invalidArgument("sqlite configuration: path must be a non-empty file path, e.g. \"store.sqlite3\" (relative to the workspace)")
            }
            self.path = text
        }
        if let sync = config["synchronous"] {
            guard let text = sync.stringValue, text == "full" || text == "normal" else {
                throw .invalidArgument("sqlite configuration: synchronous must be \"full\" or \"normal\"")
            }
            synchronous = text
        }
        if let timeout = config["busy_timeout_ms"] {
            guard let ms = timeout.int64Value, (0...600_000).contains(ms) else {
                throw .invalidArgument("sqlite configuration: busy_timeout_ms must be an integer from 0 to 600000")
            }
            busyTimeoutMs = Int32(ms)
        }
        if let tool = config["embed_tool"], !tool.isNull {
            guard let name = tool.stringValue, name.contains("."), !name.hasPrefix("sqlite.") else {
                throw .invalidArgument("sqlite configuration: embed_tool must name another driver's embed tool, e.g. \"local.embed\"")
            }
            embedTool = name
        }
    }
}

/// One instance's open database and what it knows about it. Not thread-safe: the
/// manifest declares `threading: serialized`, so calls never overlap.
final class StoreState: StorageBackend {
    let configuration: StoreConfiguration
    /// Opened on the first call (system calls need a call context, which `create` lacks).
    private(set) var database: Database?
    /// The canonical path the kernel checked.
    private(set) var canonicalPath: String?

    static let schemaVersion: Int64 = 1

    /// The IVF index of each collection, with the write counts it was built at.
    var vectorIndexes: [Int64: (index: VectorIndex, writes: Int, dataVersion: Int64)] = [:]

    init(configuration: StoreConfiguration) {
        self.configuration = configuration
    }

    /// The open database, opening it (after the kernel's checks) on first use.
    func open(_ call: CallContext) throws(DriverError) -> Database {
        if let database { return database }
        let path = try checkFiles(call)
        let database = try Database(path: path, busyTimeoutMs: configuration.busyTimeoutMs, synchronous: configuration.synchronous)
        try migrate(database)
        self.database = database
        self.canonicalPath = path
        return database
    }

    /// Asks the kernel for fs.write and fs.read of the database and its companions, and
    /// returns the canonical path it checked. Creating the file through fs.write (empty:
    /// an empty file is a new database to SQLite) means the kernel made it, in the
    /// directory it checked.
    private func checkFiles(_ call: CallContext) throws(DriverError) -> String {
        let configured = configuration.path
        let grantHint = "the operator grants it with --allow 'fs.read=PATH*' --allow 'fs.write=PATH*' (PATH: the database file; SQLite also keeps PATH-wal and PATH-shm beside it), and the sqlite manifest must request it"
        func request(_ service: String, _ object: JSONObject) throws(DriverError) -> JSONValue {
            let answer: String
            do { answer = try call.syscall(service, JSONValue.object(object).serialized()) } catch {
                if error.code == .permissionDenied {
                    throw DriverError.permissionDenied("sqlite: the database \(configured) (configuration path) may not be used: \(error.message); \(grantHint)")
                }
                throw DriverError(error.code, "sqlite: the database \(configured) (configuration path): \(error.message)")
            }
            return (try? JSON.parse(answer)) ?? .object([:])
        }
        func touch(_ path: String) throws(DriverError) -> String {
            // append of nothing checks fs.write and changes nothing; a missing file is
            // created (mode create), with its directories.
            let exists: Bool
            do {
                _ = try call.syscall("fs.stat", JSONValue.object(["path": .string(path)]).serialized())
                exists = true
            } catch {
                if error.code != .notFound {
                    if error.code == .permissionDenied {
                        throw DriverError.permissionDenied("sqlite: the database \(configured) (configuration path) may not be used: \(error.message); \(grantHint)")
                    }
                    throw DriverError(error.code, "sqlite: the database \(configured) (configuration path): \(error.message)")
                }
                exists = false
            }
            let written = try request("fs.write", ["path": .string(path), "content": "", "mode": .string(exists ? "append" : "create"), "make_parents": true])
            return written["path"]?.stringValue ?? path
        }
        let canonical = try touch(configured)
        let stat = try request("fs.stat", ["path": .string(canonical)])
        guard stat["type"]?.stringValue == "file" else {
            throw DriverError.invalidArgument("sqlite: the database \(canonical) (configuration path) is a \(stat["type"]?.stringValue ?? "special file"), not a regular file")
        }
        for suffix in ["-wal", "-shm"] {
            _ = try touch(canonical + suffix)
            _ = try request("fs.stat", ["path": .string(canonical + suffix)])
        }
        return canonical
    }

    /// Creates the tables on a new file; refuses a file made by a newer driver.
    private func migrate(_ db: Database) throws(DriverError) {
        let version = try db.query("PRAGMA user_version") { $0.int64(0) }.first ?? 0
        if version > StoreState.schemaVersion {
            throw .unsupported("\(db.path): the database has schema version \(version), newer than this sqlite driver's \(StoreState.schemaVersion); upgrade llmos or use another path")
        }
        if version == StoreState.schemaVersion { return }
        let application = try db.query("SELECT count(*) FROM sqlite_master") { $0.int64(0) }.first ?? 0
        if application > 0 {
            let ours = try db.query("SELECT count(*) FROM sqlite_master WHERE name IN ('collections','documents')") { $0.int64(0) }.first ?? 0
            guard ours == 2 else {
                throw .invalidArgument("\(db.path): this SQLite file belongs to something else (it has tables but not the sqlite driver's); configure another path")
            }
        }
        try db.transaction { () throws(DriverError) in
            try db.execute("""
                CREATE TABLE IF NOT EXISTS collections(
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    dimensions INTEGER,
                    model TEXT,
                    metadata TEXT NOT NULL DEFAULT '{}',
                    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
                );
                CREATE TABLE IF NOT EXISTS documents(
                    pk INTEGER PRIMARY KEY,
                    collection INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
                    id TEXT NOT NULL,
                    text TEXT NOT NULL,
                    metadata TEXT NOT NULL DEFAULT '{}',
                    content_hash TEXT NOT NULL,
                    vector BLOB,
                    norm REAL,
                    UNIQUE(collection, id)
                );
                CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
                    text, content='documents', content_rowid='pk', tokenize='unicode61 remove_diacritics 2'
                );
                CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
                    INSERT INTO documents_fts(rowid, text) VALUES (new.pk, new.text);
                END;
                CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
                    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.pk, old.text);
                END;
                CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE OF text ON documents BEGIN
                    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.pk, old.text);
                    INSERT INTO documents_fts(rowid, text) VALUES (new.pk, new.text);
                END;
                PRAGMA user_version = \(StoreState.schemaVersion);
                """)
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(SQLiteStorageDriver.self, host, driver) }
