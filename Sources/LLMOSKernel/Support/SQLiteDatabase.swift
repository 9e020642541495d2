import CSQLite
import Glibc
import Synchronization

/// A minimal SQLite wrapper in the spirit of GRDB: one connection, used under a lock,
/// with cached prepared statements and transactions that commit or roll back whole.
///
/// - `SQLiteDatabase` is the thread-safe handle (Sendable). Everything goes through
///   `withConnection { db in ... }` (no transaction) or `transaction { db in ... }`,
///   which hold the lock for the whole closure.
/// - `SQLiteConnection` is what the closures receive. It is not Sendable and is only
///   valid inside the closure; never keep it.
///
/// Every database is opened with WAL journaling (readers never block the writer),
/// `synchronous=NORMAL` (in WAL mode a commit survives a crash of the process; the
/// last commits can be lost only on a power failure or an OS crash), a busy timeout
/// (another process holding the write lock is waited for, not failed on) and foreign
/// keys on. A new file is created with mode 0600 in directories created with 0700:
/// what llmos keeps there (the audit log, driver data) is the user's business only.
///
/// Errors are `LLMOSError(.io, "<file>: <sqlite message> (<SQLITE_NAME>/<code>)")`
/// with a `SQLiteError` (result code and SQL) as the cause.
final class SQLiteDatabase: @unchecked Sendable {
    struct Options: Sendable {
        var readOnly = false
        /// How long a statement waits for another connection's lock before SQLITE_BUSY.
        var busyTimeoutMilliseconds: Int32 = 5_000
        /// Creates the missing parent directories (mode 0700) and the file (mode 0600).
        var createIfMissing = true

        init(readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5_000, createIfMissing: Bool = true) {
            self.readOnly = readOnly
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.createIfMissing = createIfMissing && !readOnly
        }
    }

    let path: String
    let options: Options
    private let lock = PThreadMutex()
    /// The thread holding `lock` (0 when none), to refuse re-entrant use instead of deadlocking.
    private let owner = Atomic<UInt>(0)
    // Guarded by `lock`; nil once closed.
    private var connection: SQLiteConnection?

    init(path: String, options: Options = Options()) throws(LLMOSError) {
        self.path = path
        self.options = options
        if options.createIfMissing { try SQLiteDatabase.prepareFile(path) }
        connection = try SQLiteConnection(path: path, options: options)
    }

    deinit { connection?.close() }

    /// Runs `body` with the connection, under the lock, outside any transaction
    /// (each statement is its own transaction).
    /// Calling the database again from inside `body` throws (use the connection given).
    func withConnection<T>(_ body: (SQLiteConnection) throws(LLMOSError) -> T) throws(LLMOSError) -> T {
        let me = UInt(pthread_self())
        guard owner.load(ordering: .relaxed) != me else {
            throw LLMOSError(.internalError, "\(path): the database was used from inside its own closure (use the connection it gives)")
        }
        lock.lock()
        owner.store(me, ordering: .relaxed)
        defer {
            owner.store(0, ordering: .relaxed)
            lock.unlock()
        }
        guard let connection else { throw LLMOSError(.io, "\(path): the database is closed") }
        return try body(connection)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it
    /// (or the commit) throws, so that nothing is ever half-written. Writable databases
    /// take the write lock at once (`BEGIN IMMEDIATE`), so a transaction never fails
    /// half-way with SQLITE_BUSY when it first writes; read-only ones get a snapshot
    /// (`BEGIN DEFERRED`): every read inside sees the same state of the database.
    /// Not re-entrant: calling `transaction` inside `body` throws.
    func transaction<T>(_ body: (SQLiteConnection) throws(LLMOSError) -> T) throws(LLMOSError) -> T {
        try withConnection { (db) throws(LLMOSError) -> T in
            guard !db.isInTransaction else {
                throw LLMOSError(.internalError, "\(path): nested transaction (SQLiteDatabase.transaction is not re-entrant)")
            }
            try db.execute(options.readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE")
            do throws(LLMOSError) {
                let result = try body(db)
                try db.execute("COMMIT")
                return result
            } catch {
                // SQLite may already have rolled back (on some I/O and full errors).
                if db.isInTransaction { try? db.execute("ROLLBACK") }
                throw error
            }
        }
    }

    /// `PRAGMA integrity_check`: the problems SQLite finds in the file (empty when it is sound).
    func integrityCheck() throws(LLMOSError) -> [String] {
        try withConnection { (db) throws(LLMOSError) -> [String] in
            let rows = try db.query("PRAGMA integrity_check") { $0.text(at: 0) }
            return rows == ["ok"] ? [] : rows
        }
    }

    /// Finalizes the cached statements and closes the connection (checkpointing the WAL
    /// when this is the last connection). Later calls throw "the database is closed".
    func close() {
        lock.lock()
        defer { lock.unlock() }
        connection?.close()
        connection = nil
    }

    /// Creates the parent directories (0700) and an empty file (0600) when missing.
    /// An empty file is a valid empty database to SQLite.
    static func prepareFile(_ path: String) throws(LLMOSError) {
        let directory = FilePath.directory(of: path)
        var prefix = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw LLMOSError(.io, "cannot create directory \(prefix) for \(path): \(String(cString: strerror(errno)))")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            Glibc.close(fd)
        } else if errno != EEXIST {
            throw LLMOSError(.io, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// A value to bind to a statement parameter.
enum SQLiteValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// One open connection. Not thread-safe: use it only inside a `SQLiteDatabase` closure.
final class SQLiteConnection {
    let path: String
    private(set) var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private static let statementCacheLimit = 64

    fileprivate init(path: String, options: SQLiteDatabase.Options) throws(LLMOSError) {
        self.path = path
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        flags |= options.readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        guard rc == SQLITE_OK, db != nil else {
            let error = SQLiteConnection.makeError(path: path, handle: db, code: rc, sql: nil)
            close()
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, options.busyTimeoutMilliseconds)
        do throws(LLMOSError) {
            if options.readOnly {
                // Reads the header now, so that a file that is not a database fails here.
                _ = try query("SELECT count(*) FROM sqlite_master") { $0.int64(at: 0) }
            } else {
                let mode = try query("PRAGMA journal_mode=WAL") { $0.text(at: 0) }.first ?? ""
                guard mode.lowercased() == "wal" else {
                    throw LLMOSError(.io, "\(path): cannot use WAL journal mode (the journal mode is \(mode))")
                }
                try execute("PRAGMA synchronous=NORMAL")
            }
            try execute("PRAGMA foreign_keys=ON")
        } catch {
            close()
            throw error
        }
    }

    fileprivate func close() {
        for (_, statement) in statements { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one or more statements that take no parameters and whose rows are ignored.
    func execute(_ sql: String) throws(LLMOSError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
    }

    /// The prepared statement for `sql`, from the cache when it was prepared before,
    /// reset and with its bindings cleared. Do not use two at once for the same SQL.
    func statement(_ sql: String) throws(LLMOSError) -> SQLiteStatement {
        if let cached = statements[sql] {
            sqlite3_reset(cached)
            sqlite3_clear_bindings(cached)
            return SQLiteStatement(handle: cached, connection: self, sql: sql)
        }
        var prepared: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard rc == SQLITE_OK, let prepared else { throw error(rc == SQLITE_OK ? SQLITE_MISUSE : rc, sql: sql) }
        if statements.count >= SQLiteConnection.statementCacheLimit {
            for (_, old) in statements { sqlite3_finalize(old) }
            statements.removeAll()
        }
        statements[sql] = prepared
        return SQLiteStatement(handle: prepared, connection: self, sql: sql)
    }

    /// Runs a statement with parameters; returns the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws(LLMOSError) -> Int {
        let statement = try statement(sql)
        try statement.bind(values)
        while try statement.step() {}
        statement.reset()
        return changes
    }

    /// Runs a query and maps each row.
    func query<T>(_ sql: String, _ values: [SQLiteValue] = [],
                  _ row: (SQLiteStatement) throws(LLMOSError) -> T) throws(LLMOSError) -> [T] {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// The rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes64(handle)) }
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    func error(_ code: Int32, sql: String?) -> LLMOSError {
        SQLiteConnection.makeError(path: path, handle: handle, code: code, sql: sql)
    }

    static func makeError(path: String, handle: OpaquePointer?, code: Int32, sql: String?) -> LLMOSError {
        var message = String(cString: sqlite3_errstr(code))
        if let handle, sqlite3_extended_errcode(handle) == code, let text = sqlite3_errmsg(handle) {
            message = String(cString: text)
        }
        let cause = SQLiteError(resultCode: code, message: message, sql: sql)
        return LLMOSError(.io, "\(path): \(message) (\(cause.codeName)/\(code))", cause: cause)
    }
}

/// A prepared statement, valid inside the closure that obtained it. Parameter and
/// column indexes follow SQLite: parameters from 1, columns from 0.
struct SQLiteStatement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection
    let sql: String

    func bind(_ values: [SQLiteValue]) throws(LLMOSError) {
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    func bind(_ value: SQLiteValue, at index: Int32) throws(LLMOSError) {
        switch value {
        case .null: try check(sqlite3_bind_null(handle, index))
        case .integer(let v): try bind(v, at: index)
        case .real(let v): try check(sqlite3_bind_double(handle, index, v))
        case .text(let v): try bind(v, at: index)
        case .blob(let v):
            let rc = v.withUnsafeBytes { raw in
                // A zero-length blob needs a non-NULL pointer, or SQLite binds NULL.
                sqlite3_bind_blob64(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(raw.count), llmos_sqlite_transient())
            }
            try check(rc)
        }
    }

    /// Binds text by its UTF-8 bytes and length (so an embedded NUL survives).
    func bind(_ text: String, at index: Int32) throws(LLMOSError) {
        var text = text
        let rc = text.withUTF8 { utf8 -> Int32 in
            guard let base = utf8.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, llmos_sqlite_transient()) }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text(handle, index, $0, Int32(utf8.count), llmos_sqlite_transient())
            }
        }
        try check(rc)
    }

    func bind(_ value: Int64, at index: Int32) throws(LLMOSError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    /// Steps once: true when a row is ready, false when the statement is done.
    func step() throws(LLMOSError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            // With sqlite3_prepare_v3 the step's result is the error itself.
            let error = connection.error(rc, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    func reset() { sqlite3_reset(handle) }

    var columnCount: Int32 { sqlite3_column_count(handle) }
    /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
    func type(at column: Int32) -> Int32 { sqlite3_column_type(handle, column) }
    func isNull(at column: Int32) -> Bool { type(at: column) == SQLITE_NULL }
    func int64(at column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func double(at column: Int32) -> Double { sqlite3_column_double(handle, column) }

    /// The column as text ("" for NULL), decoded by its length.
    func text(at column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func optionalText(at column: Int32) -> String? { isNull(at: column) ? nil : text(at: column) }

    func blob(at column: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
    }

    private func check(_ rc: Int32) throws(LLMOSError) {
        guard rc == SQLITE_OK else { throw connection.error(rc, sql: sql) }
    }
}

/// The cause of an SQLite failure: the (extended) result code and the SQL that failed.
public struct SQLiteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The extended result code, e.g. 1555 (SQLITE_CONSTRAINT_PRIMARYKEY).
    public var resultCode: Int32
    /// SQLite's message, e.g. "file is not a database".
    public var message: String
    /// The statement that failed (nil when opening failed).
    public var sql: String?

    public init(resultCode: Int32, message: String, sql: String? = nil) {
        self.resultCode = resultCode
        self.message = message
        self.sql = sql
    }

    /// The primary result code (the low byte), e.g. 19 (SQLITE_CONSTRAINT).
    public var primaryCode: Int32 { resultCode & 0xff }

    /// The C name of the code: the extended name when known, else the primary one.
    public var codeName: String {
        SQLiteError.extendedNames[resultCode] ?? SQLiteError.primaryNames[primaryCode] ?? "SQLITE_UNKNOWN"
    }

    public var description: String {
        if let sql { return "\(codeName) in: \(sql)" }
        return codeName
    }

    private static let primaryNames: [Int32: String] = [
        0: "SQLITE_OK", 1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT",
        5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT",
        10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND", 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN",
        15: "SQLITE_PROTOCOL", 16: "SQLITE_EMPTY", 17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT",
        20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE", 22: "SQLITE_NOLFS", 23: "SQLITE_AUTH", 24: "SQLITE_FORMAT",
        25: "SQLITE_RANGE", 26: "SQLITE_NOTADB", 27: "SQLITE_NOTICE", 28: "SQLITE_WARNING",
        100: "SQLITE_ROW", 101: "SQLITE_DONE",
    ]

    private static let extendedNames: [Int32: String] = [
        261: "SQLITE_BUSY_RECOVERY", 517: "SQLITE_BUSY_SNAPSHOT", 773: "SQLITE_BUSY_TIMEOUT",
        262: "SQLITE_LOCKED_SHAREDCACHE",
        266: "SQLITE_IOERR_READ", 522: "SQLITE_IOERR_SHORT_READ", 778: "SQLITE_IOERR_WRITE",
        1034: "SQLITE_IOERR_FSYNC", 1290: "SQLITE_IOERR_DIR_FSYNC", 1546: "SQLITE_IOERR_TRUNCATE",
        1802: "SQLITE_IOERR_FSTAT", 2058: "SQLITE_IOERR_UNLOCK", 2314: "SQLITE_IOERR_RDLOCK",
        2570: "SQLITE_IOERR_DELETE", 3082: "SQLITE_IOERR_NOMEM", 3338: "SQLITE_IOERR_ACCESS",
        3594: "SQLITE_IOERR_CHECKRESERVEDLOCK", 3850: "SQLITE_IOERR_LOCK", 4106: "SQLITE_IOERR_CLOSE",
        4618: "SQLITE_IOERR_SHMOPEN", 4874: "SQLITE_IOERR_SHMSIZE", 5130: "SQLITE_IOERR_SHMLOCK",
        5386: "SQLITE_IOERR_SHMMAP", 5642: "SQLITE_IOERR_SEEK", 5898: "SQLITE_IOERR_DELETE_NOENT",
        6154: "SQLITE_IOERR_MMAP", 6410: "SQLITE_IOERR_GETTEMPPATH", 6666: "SQLITE_IOERR_CONVPATH",
        267: "SQLITE_CORRUPT_VTAB", 523: "SQLITE_CORRUPT_SEQUENCE", 779: "SQLITE_CORRUPT_INDEX",
        264: "SQLITE_READONLY_RECOVERY", 520: "SQLITE_READONLY_CANTLOCK", 776: "SQLITE_READONLY_ROLLBACK",
        1032: "SQLITE_READONLY_DBMOVED", 1288: "SQLITE_READONLY_CANTINIT", 1544: "SQLITE_READONLY_DIRECTORY",
        270: "SQLITE_CANTOPEN_NOTEMPDIR", 526: "SQLITE_CANTOPEN_ISDIR", 782: "SQLITE_CANTOPEN_FULLPATH",
        1038: "SQLITE_CANTOPEN_CONVPATH", 1550: "SQLITE_CANTOPEN_SYMLINK",
        275: "SQLITE_CONSTRAINT_CHECK", 531: "SQLITE_CONSTRAINT_COMMITHOOK", 787: "SQLITE_CONSTRAINT_FOREIGNKEY",
        1043: "SQLITE_CONSTRAINT_FUNCTION", 1299: "SQLITE_CONSTRAINT_NOTNULL", 1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
        1811: "SQLITE_CONSTRAINT_TRIGGER", 2067: "SQLITE_CONSTRAINT_UNIQUE", 2323: "SQLITE_CONSTRAINT_VTAB",
        2579: "SQLITE_CONSTRAINT_ROWID", 3091: "SQLITE_CONSTRAINT_DATATYPE",
        513: "SQLITE_ERROR_RETRY", 769: "SQLITE_ERROR_SNAPSHOT", 516: "SQLITE_ABORT_ROLLBACK",
    ]
}
