// One libpq connection: parameters always bound (PQexecParams, never a value spliced
// into SQL text), results read in text or binary form, large scans row by row
// (single-row mode), and errors as DriverErrors that carry PostgreSQL's message.
// Not thread-safe: the driver is `threading: serialized`.
import CLibPQ
import Glibc
import LLMOSDriverSDK

/// A bound parameter: text (PostgreSQL parses it as the placeholder's type), binary
/// bytes (bytea), or NULL.
enum PGValue {
    case text(String)
    case bytes([UInt8])
    case null

    static func int(_ n: Int64) -> PGValue { .text(String(n)) }
    static func int(_ n: Int) -> PGValue { .text(String(n)) }
    static func double(_ x: Double) -> PGValue { .text("\(x)") }
}

/// A PGresult, cleared when the last PGRows over it goes (unless libpq owns it).
final class PGResult {
    let pointer: OpaquePointer
    private let owned: Bool

    init(_ pointer: OpaquePointer, owned: Bool = true) {
        self.pointer = pointer
        self.owned = owned
    }

    deinit { if owned { PQclear(pointer) } }
}

/// A result's rows, by row and column; keeps its PGresult alive.
struct PGRows {
    let handle: PGResult
    let count: Int
    let binary: Bool

    init(_ handle: PGResult, binary: Bool) {
        self.handle = handle
        self.count = Int(PQntuples(handle.pointer))
        self.binary = binary
    }

    private var result: OpaquePointer { handle.pointer }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) == 1 }

    func text(_ row: Int, _ column: Int) -> String {
        guard let value = PQgetvalue(result, Int32(row), Int32(column)) else { return "" }
        return String(cString: value)
    }

    func int64(_ row: Int, _ column: Int) -> Int64 {
        if binary { return Int64(bigEndian: loadBigEndian(row, column)) }
        return Int64(text(row, column)) ?? 0
    }

    func double(_ row: Int, _ column: Int) -> Double {
        if binary { return Double(bitPattern: UInt64(bigEndian: loadBigEndian(row, column))) }
        return Double(text(row, column)) ?? 0
    }

    func bool(_ row: Int, _ column: Int) -> Bool {
        if binary { return withBytes(row, column) { $0.first == 1 } }
        return text(row, column) == "t"
    }

    /// A binary column's bytes (bytea in a binary result), valid inside `body` only.
    func withBytes<T>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        let base = PQgetvalue(result, Int32(row), Int32(column))
        return body(UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0) }, count: length))
    }

    private func loadBigEndian<T: FixedWidthInteger>(_ row: Int, _ column: Int) -> T {
        withBytes(row, column) { bytes in
            guard bytes.count == MemoryLayout<T>.size else { return 0 }
            return bytes.loadUnaligned(as: T.self)
        }
    }
}

final class PGConnection {
    private let connection: OpaquePointer
    /// host:port/database, for messages (never the password).
    let label: String

    /// Connects with exactly these parameters (keywords of libpq's PQconnectdbParams);
    /// no connection string is parsed, so nothing in a value can add parameters.
    init(parameters: [(String, String)], label: String) throws(DriverError) {
        self.label = label
        var keys = parameters.map { strdup($0.0) }
        var values = parameters.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        keys.append(nil)
        values.append(nil)
        let made = keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        PQconnectdbParams(kp, vp, 0)
                    }
                }
            }
        }
        guard let made else { throw .resourceExhausted("postgres: out of memory connecting to \(label)") }
        guard PQstatus(made) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(made))
            PQfinish(made)
            throw .unavailable("postgres: cannot connect to \(label): \(message)")
        }
        connection = made
    }

    deinit { PQfinish(connection) }

    var isHealthy: Bool { PQstatus(connection) == CONNECTION_OK }

    var serverVersion: Int { Int(PQserverVersion(connection)) }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        var text = String(cString: message)
        while text.last == "\n" || text.last == " " { text.removeLast() }
        return text
    }

    /// Runs `sql` with `values` as $1, $2, ...; returns the rows (empty for a command).
    @discardableResult
    func query(_ sql: String, _ values: [PGValue] = [], binary: Bool = false) throws(DriverError) -> PGRows {
        let result = withParameters(values) { count, pointers, lengths, formats in
            PQexecParams(connection, sql, count, nil, pointers, lengths, formats, binary ? 1 : 0)
        }
        return try check(result, sql: sql, binary: binary)
    }

    /// Runs a statement that changes rows; returns how many.
    @discardableResult
    func run(_ sql: String, _ values: [PGValue] = []) throws(DriverError) -> Int {
        let rows = try query(sql, values)
        return Int(String(cString: PQcmdTuples(rows.handle.pointer))) ?? 0
    }

    /// Streams the rows of `sql` one at a time (single-row mode), binary, so a scan of a
    /// million vectors never holds them all. `body` returning false stops the scan.
    func forEachRow(_ sql: String, _ values: [PGValue], _ body: (PGRows) -> Bool) throws(DriverError) {
        let sent = withParameters(values) { count, pointers, lengths, formats in
            PQsendQueryParams(connection, sql, count, nil, pointers, lengths, formats, 1)
        }
        guard sent == 1 else { throw error(sql: sql, message: Self.trimmed(PQerrorMessage(connection))) }
        PQsetSingleRowMode(connection)
        var failure: DriverError?
        var going = true
        while let result = PQgetResult(connection) {
            let handle = PGResult(result)
            let status = PQresultStatus(result)
            if status == PGRES_SINGLE_TUPLE {
                if going, failure == nil { going = body(PGRows(handle, binary: true)) }
            } else if status != PGRES_TUPLES_OK && failure == nil {
                failure = error(sql: sql, message: Self.trimmed(PQresultErrorMessage(result)), sqlState: PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) })
            }
        }
        if let failure { throw failure }
    }

    /// BEGIN ... COMMIT, rolled back when `body` throws.
    func transaction<T>(_ body: () throws(DriverError) -> T) throws(DriverError) -> T {
        try run("BEGIN")
        do {
            let value = try body()
            try run("COMMIT")
            return value
        } catch {
            _ = try? run("ROLLBACK")
            throw error
        }
    }

    private func withParameters<T>(_ values: [PGValue], _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T) -> T {
        var buffers: [UnsafeMutableRawPointer?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for value in values {
            switch value {
            case .text(let s):
                buffers.append(UnsafeMutableRawPointer(strdup(s)))
                lengths.append(0)
                formats.append(0)
            case .bytes(let b):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(b.count, 1), alignment: 1)
                b.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(buffer), byteCount: b.count) }
                buffers.append(buffer)
                lengths.append(Int32(b.count))
                formats.append(1)
            case .null:
                buffers.append(nil)
                lengths.append(0)
                formats.append(0)
            }
        }
        defer {
            for (buffer, value) in zip(buffers, values) {
                if case .bytes = value { buffer?.deallocate() } else { free(buffer) }
            }
        }
        let pointers = buffers.map { $0.map { UnsafePointer<CChar>($0.assumingMemoryBound(to: CChar.self)) } }
        return pointers.withUnsafeBufferPointer { p in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    body(Int32(values.count), p.baseAddress, l.baseAddress, f.baseAddress)
                }
            }
        }
    }

    private func check(_ result: OpaquePointer?, sql: String, binary: Bool) throws(DriverError) -> PGRows {
        guard let result else { throw error(sql: sql, message: Self.trimmed(PQerrorMessage(connection))) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let message = Self.trimmed(PQresultErrorMessage(result))
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            PQclear(result)
            throw error(sql: sql, message: message, sqlState: state)
        }
        return PGRows(PGResult(result), binary: binary)
    }

    /// PostgreSQL's error as a DriverError: a broken connection is unavailable (the next
    /// call reconnects), a cancelled statement cancelled, a constraint invalid_argument.
    private func error(sql: String, message: String, sqlState: String? = nil) -> DriverError {
        let statement = sql.split(separator: " ").prefix(3).joined(separator: " ")
        if !isHealthy { return .unavailable("postgres: the connection to \(label) was lost (\(message)); the next call reconnects") }
        switch sqlState ?? "" {
        case "57014": return .cancelled("postgres: the statement was cancelled (\(statement))")
        case let s where s.hasPrefix("22") || s.hasPrefix("23"): return .invalidArgument("postgres: \(message)")
        case let s where s.hasPrefix("53"): return .resourceExhausted("postgres: \(label): \(message)")
        default: return .internal("postgres: \(statement)...: \(message)")
        }
    }

    /// Asks the server to stop the statement running on this connection (from any thread).
    func cancelRunning() {
        guard let cancel = PQgetCancel(connection) else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &buffer, Int32(buffer.count))
        PQfreeCancel(cancel)
    }
}
