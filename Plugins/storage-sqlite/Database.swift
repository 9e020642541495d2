// A small SQLite wrapper for the storage driver: one connection, prepared statements
// cached by their SQL, values bound by index, errors as DriverErrors naming the file.
//
// Ownership and threads (in the manner of sqlite3.h): a `Database` owns its connection
// and finalizes every statement it prepared when it is closed or deinitialised. It is
// not thread-safe; the driver is `threading: serialized`, so the kernel never enters one
// instance (and so one connection) from two threads. A `Statement` is valid until the
// next call that prepares the same SQL, and only while its database is open.
import CSQLite
import LLMOSDriverSDK
#if canImport(Glibc)
import Glibc
#endif

/// A value bound to a statement parameter.
enum SQLValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

final class Database {
    let path: String
    private(set) var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Opens an existing file read-write. The file must exist (the driver created it
    /// through the kernel's fs.write, so the kernel saw and checked it); symlinks are
    /// refused for the last component, so a file swapped for a link since the check is
    /// not followed.
    init(path: String, busyTimeoutMs: Int32, synchronous: String) throws(DriverError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        guard rc == SQLITE_OK, db != nil else {
            let error = Database.error(path: path, handle: db, code: rc, doing: "open")
            close()
            throw error
        }
        sqlite3_busy_timeout(db, busyTimeoutMs)
        do throws(DriverError) {
            // Reading the schema first makes a file that is not a database fail here.
            let mode = try query("PRAGMA journal_mode=WAL") { $0.text(0) }.first ?? ""
            guard mode.lowercased() == "wal" else {
                throw DriverError.unavailable("\(path): cannot use WAL journal mode (SQLite reports \(mode)); put the database on a local file system")
            }
            // FULL: a committed batch survives a power failure too (one fsync of the WAL
            // per commit); NORMAL survives a crash of the process only.
            try execute("PRAGMA synchronous=\(synchronous == "normal" ? "NORMAL" : "FULL")")
            try execute("PRAGMA foreign_keys=ON")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        for (_, statement) in statements { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Statements without parameters whose rows are ignored.
    func execute(_ sql: String) throws(DriverError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, doing: sql) }
    }

    func statement(_ sql: String) throws(DriverError) -> Statement {
        if let cached = statements[sql] {
            sqlite3_reset(cached)
            sqlite3_clear_bindings(cached)
            return Statement(handle: cached, database: self, sql: sql)
        }
        var prepared: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard rc == SQLITE_OK, let prepared else { throw error(rc == SQLITE_OK ? SQLITE_MISUSE : rc, doing: sql) }
        // Filters make SQL of many shapes: keep the cache bounded.
        if statements.count >= 128 {
            for (_, old) in statements { sqlite3_finalize(old) }
            statements.removeAll()
        }
        statements[sql] = prepared
        return Statement(handle: prepared, database: self, sql: sql)
    }

    /// Runs a statement; returns the rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [SQLValue] = []) throws(DriverError) -> Int {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        while try statement.step() {}
        return Int(sqlite3_changes64(handle))
    }

    func query<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws(DriverError) -> T) throws(DriverError) -> [T] {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// Calls `row` for each row without collecting them (for scans over many rows).
    func forEach(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws(DriverError) -> Void) throws(DriverError) {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        while try statement.step() { try row(statement) }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// `body` in one transaction: committed when it returns, rolled back when it or the
    /// commit throws, so a batch is stored whole or not at all. IMMEDIATE takes the write
    /// lock at the start, so the batch never fails half-way on another writer's lock.
    func transaction<T>(_ body: () throws(DriverError) -> T) throws(DriverError) -> T {
        try execute("BEGIN IMMEDIATE")
        writes += 1   // before the body: a rolled-back write may have been seen half-way
        do throws(DriverError) {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Write transactions begun on this connection (what a cache of the data compares).
    private(set) var writes = 0

    /// SQLite's count of commits by other connections (PRAGMA data_version).
    func dataVersion() throws(DriverError) -> Int64 {
        try query("PRAGMA data_version") { $0.int64(0) }.first ?? 0
    }

    func error(_ code: Int32, doing sql: String) -> DriverError {
        Database.error(path: path, handle: handle, code: code, doing: sql)
    }

    /// SQLite's result code as the ABI status that tells the caller what to do.
    static func error(path: String, handle: OpaquePointer?, code: Int32, doing what: String) -> DriverError {
        var message = String(cString: sqlite3_errstr(code))
        if let handle, sqlite3_extended_errcode(handle) == code, let text = sqlite3_errmsg(handle) {
            message = String(cString: text)
        }
        switch code & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return .unavailable("\(path): the database is locked by another connection (\(message)); try again, or raise busy_timeout_ms in the sqlite driver's configuration")
        case SQLITE_FULL:
            return .resourceExhausted("\(path): the disk is full (\(message)); nothing of this call was stored")
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return .unavailable("\(path): \(message); this file is not a sound SQLite database: point the sqlite driver's path at another file (its configuration's path)")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH:
            return .unavailable("\(path): cannot open or write the database (\(message)); check the file's permissions and that its directory is writable (SQLite keeps -wal and -shm files beside it)")
        case SQLITE_TOOBIG:
            return .invalidArgument("\(path): a value is too large for SQLite (\(message))")
        case SQLITE_INTERRUPT:
            return .cancelled
        default:
            return .internal("\(path): \(message) (SQLite code \(code)) in \(what.prefix(200))")
        }
    }
}

/// A prepared statement. Parameters count from 1, columns from 0, as in SQLite.
struct Statement {
    let handle: OpaquePointer
    unowned let database: Database
    let sql: String

    func bind(_ values: [SQLValue]) throws(DriverError) {
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    func bind(_ value: SQLValue, at index: Int32) throws(DriverError) {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .real(let v): rc = sqlite3_bind_double(handle, index, v)
        case .text(let v):
            var text = v
            rc = text.withUTF8 { utf8 -> Int32 in
                guard let base = utf8.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, llmos_sqlite_transient()) }
                return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                    sqlite3_bind_text64(handle, index, $0, UInt64(utf8.count), llmos_sqlite_transient(), UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let v):
            rc = v.withUnsafeBytes { raw in
                // A zero-length blob needs a non-NULL pointer, or SQLite binds NULL.
                sqlite3_bind_blob64(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(raw.count), llmos_sqlite_transient())
            }
        }
        guard rc == SQLITE_OK else { throw database.error(rc, doing: sql) }
    }

    /// True when a row is ready, false when the statement is done.
    func step() throws(DriverError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = database.error(rc, doing: sql)
        sqlite3_reset(handle)
        throw error
    }

    func reset() { sqlite3_reset(handle) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// The column's bytes, valid until the next step or reset: read them inside `body`.
    func withBlob<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
}
