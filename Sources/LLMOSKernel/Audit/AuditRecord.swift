import Foundation
import Glibc
import LLMOSDigest

/// Where every mediated call and decision goes. `append` does not wait for storage
/// (an implementation queues, and blocks only to apply backpressure when its queue
/// is full); `flush` returns once everything appended before it is stored, and only
/// then is an entry "acknowledged". Implementations assign the
/// sequence numbers (gapless, in append order) and chain the hashes.
public protocol AuditLog: Sendable {
    func append(_ entry: AuditEntry)
    func flush() throws(LLMOSError)
}

/// One thing to record, before the log numbers and chains it. It holds a hash of
/// the call's input, never the input itself: no secrets in logs.
public struct AuditEntry: Sendable, Hashable {
    /// When the call or check happened (stored with millisecond precision, in UTC).
    public var time: Date
    /// Who acted: "pid 1234" (the host process), "pid 1234 agent 7" for a call an agent
    /// process made, "pid 1234 via mcp stdio" for one a client of `llmos serve` made
    /// (see `processLabel`).
    public var process: String
    /// The driver whose code asked ("" for the operator's own top-level call).
    public var driver: String
    /// The tool, as `driver.tool` ("" when none).
    public var tool: String
    /// A `CapabilityKind` raw value ("fs.read", "net.connect", ...); a call itself is "tool.call".
    public var capability: String
    /// The canonical resource the decision was about (see `AccessRequest.resource`).
    public var resource: String
    /// SHA-256 (lowercase hex) of the call's input; see `hashArguments`.
    public var argsHash: String
    public var decision: Verdict
    /// Set by an `audit` rule: allowed, and flagged for review.
    public var flagged: Bool
    /// The rule that decided.
    public var rule: String
    /// "ok", or the error code's name ("permission_denied", "timeout", ...).
    public var outcome: String
    public var durationNs: Int64

    public init(time: Date = Date(), process: String = AuditEntry.currentProcess, driver: String, tool: String,
                capability: String, resource: String, argsHash: String, decision: Verdict, flagged: Bool = false,
                rule: String, outcome: String = "ok", durationNs: Int64 = 0) {
        self.time = time
        self.process = process
        self.driver = driver
        self.tool = tool
        self.capability = capability
        self.resource = resource
        self.argsHash = argsHash
        self.decision = decision
        self.flagged = flagged
        self.rule = rule
        self.outcome = outcome
        self.durationNs = durationNs
    }

    /// The record of one capability check. For net.connect the address actually
    /// connected to is kept with the name: `https://example.com:443 (address 93.184.216.34)`.
    public init(request: AccessRequest, decision: Decision, argsHash: String, outcome: String = "ok",
                durationNs: Int64 = 0, time: Date = Date(), process: String = AuditEntry.currentProcess) {
        let resource = request.address.map { "\(request.resource) (address \($0))" } ?? request.resource
        self.init(time: time, process: request.agent == nil && request.client == nil ? process : AuditEntry.processLabel(agent: request.agent, client: request.client), driver: request.driver, tool: request.tool ?? "",
                  capability: request.kind.rawValue, resource: resource, argsHash: argsHash,
                  decision: decision.verdict, flagged: decision.flagged, rule: decision.rule,
                  outcome: outcome, durationNs: durationNs)
    }

    /// "pid N" for this process.
    public static let currentProcess = "pid \(getpid())"

    /// "pid N agent P": agent process P of this host; "pid N via CLIENT" (or "pid N agent P
    /// via CLIENT"): a call that came from a client of this host (`CallOptions.client`).
    public static func processLabel(agent: Int?, client: String? = nil) -> String {
        currentProcess + (agent.map { " agent \($0)" } ?? "") + (client.map { " via \($0)" } ?? "")
    }

    /// SHA-256 (lowercase hex) of the input's UTF-8 bytes. A plain hash lets someone
    /// who can read the log confirm a guess of a low-entropy input (a short password
    /// passed as an argument); it never reveals an input that cannot be guessed.
    public static func hashArguments(_ input: String) -> String {
        var sha = SHA256()
        var input = input
        input.withUTF8 { sha.update(UnsafeRawBufferPointer($0)) }
        return SHA256.hexString(sha.finalize())
    }

    /// "ok" for success, else the error code's name.
    public static func outcome(of error: LLMOSError?) -> String { error?.code.name ?? "ok" }
}

/// An entry as stored: numbered and chained. `hash` covers every other field and
/// the previous record's hash (the encoding is `AuditChain.hash`).
public struct AuditRecord: Sendable, Hashable {
    /// 1, 2, 3, ... without gaps, in append order.
    public var sequence: Int64
    /// ISO-8601 in UTC with milliseconds: `2025-01-31T12:34:56.789Z`.
    public var time: String
    public var process: String
    public var driver: String
    public var tool: String
    public var capability: String
    public var resource: String
    public var argsHash: String
    public var decision: Verdict
    public var flagged: Bool
    public var rule: String
    public var outcome: String
    public var durationNs: Int64
    /// The previous record's hash (64 zeros for the first record).
    public var prevHash: String
    public var hash: String

    /// `time` as a Date.
    public var date: Date? { AuditTime.parse(time) }

    /// Numbers and chains an entry.
    init(entry: AuditEntry, sequence: Int64, prevHash: String, hasher: inout AuditChain) {
        self.sequence = sequence
        time = AuditTime.format(entry.time)
        process = entry.process
        driver = entry.driver
        tool = entry.tool
        capability = entry.capability
        resource = entry.resource
        argsHash = entry.argsHash
        decision = entry.decision
        flagged = entry.flagged
        rule = entry.rule
        outcome = entry.outcome
        durationNs = entry.durationNs
        self.prevHash = prevHash
        hash = ""
        hash = hasher.hash(AuditRow(self))
    }

    init(row: AuditRow, decision: Verdict) {
        sequence = row.sequence
        time = row.time
        process = row.process
        driver = row.driver
        tool = row.tool
        capability = row.capability
        resource = row.resource
        argsHash = row.argsHash
        self.decision = decision
        flagged = row.flagged != 0
        rule = row.rule
        outcome = row.outcome
        durationNs = row.durationNs
        prevHash = row.prevHash
        hash = row.hash
    }
}

/// A record's fields as stored, before they are read as typed values, so that the
/// verifier hashes exactly what is in the table (even a decision that is not one).
struct AuditRow: Sendable, Hashable {
    var sequence: Int64
    var time: String
    var process: String
    var driver: String
    var tool: String
    var capability: String
    var resource: String
    var argsHash: String
    var decision: String
    var flagged: Int64
    var rule: String
    var outcome: String
    var durationNs: Int64
    var prevHash: String
    var hash: String

    init(sequence: Int64, time: String, process: String, driver: String, tool: String, capability: String,
         resource: String, argsHash: String, decision: String, flagged: Int64, rule: String, outcome: String,
         durationNs: Int64, prevHash: String, hash: String) {
        self.sequence = sequence
        self.time = time
        self.process = process
        self.driver = driver
        self.tool = tool
        self.capability = capability
        self.resource = resource
        self.argsHash = argsHash
        self.decision = decision
        self.flagged = flagged
        self.rule = rule
        self.outcome = outcome
        self.durationNs = durationNs
        self.prevHash = prevHash
        self.hash = hash
    }

    init(_ record: AuditRecord) {
        self.init(sequence: record.sequence, time: record.time, process: record.process, driver: record.driver,
                  tool: record.tool, capability: record.capability, resource: record.resource,
                  argsHash: record.argsHash, decision: record.decision.rawValue, flagged: record.flagged ? 1 : 0,
                  rule: record.rule, outcome: record.outcome, durationNs: record.durationNs,
                  prevHash: record.prevHash, hash: record.hash)
    }
}

/// The hash chain.
///
/// A record's hash is `lowercase_hex(SHA-256(M))`, where M is the concatenation of
/// these 15 fields, in this order, each encoded as a 4-byte big-endian unsigned byte
/// count followed by that many bytes of UTF-8 (no terminator, no separator):
///
///     1 "llmos-audit-v1"            (the version of this encoding)
///     2 sequence                    decimal ASCII, no sign or leading zeros: "17"
///     3 time                        "2025-01-31T12:34:56.789Z"
///     4 process                     "pid 1234"
///     5 driver
///     6 tool
///     7 capability                  "fs.read", ..., or "call"
///     8 resource
///     9 args_hash                   64 lowercase hex digits
///    10 decision                    "allow", "ask" or "deny"
///    11 flagged                     "1" or "0"
///    12 rule
///    13 outcome                     "ok" or an error code name
///    14 duration_ns                 decimal ASCII ("-" only if negative)
///    15 prev_hash                   the previous record's hash; 64 "0"s for record 1
///
/// The length prefixes make the encoding unambiguous: no choice of field contents
/// can make two different records encode to the same bytes. Integers are hashed in
/// their canonical decimal form, so the hash does not depend on how SQLite stores
/// them. The sequence number is hashed, so renumbering a row is an edit.
struct AuditChain {
    static let version = "llmos-audit-v1"
    static let genesis = String(repeating: "0", count: 64)

    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(512) }

    mutating func hash(_ row: AuditRow) -> String {
        buffer.removeAll(keepingCapacity: true)
        field(AuditChain.version)
        field(String(row.sequence))
        field(row.time)
        field(row.process)
        field(row.driver)
        field(row.tool)
        field(row.capability)
        field(row.resource)
        field(row.argsHash)
        field(row.decision)
        field(String(row.flagged))
        field(row.rule)
        field(row.outcome)
        field(String(row.durationNs))
        field(row.prevHash)
        var sha = SHA256()
        buffer.withUnsafeBytes { sha.update($0) }
        return SHA256.hexString(sha.finalize())
    }

    private mutating func field(_ value: String) {
        let count = UInt32(value.utf8.count)
        buffer.append(UInt8(truncatingIfNeeded: count >> 24))
        buffer.append(UInt8(truncatingIfNeeded: count >> 16))
        buffer.append(UInt8(truncatingIfNeeded: count >> 8))
        buffer.append(UInt8(truncatingIfNeeded: count))
        buffer.append(contentsOf: value.utf8)
    }
}

/// ISO-8601 timestamps in UTC with milliseconds, `2025-01-31T12:34:56.789Z`: the
/// form that is stored and hashed. Fixed width (for years 0000-9999), so they sort
/// as text in time order.
enum AuditTime {
    static func format(_ date: Date) -> String {
        // Through whole microseconds first, so that a time parsed back from its text
        // (an inexact Double) formats to the same millisecond.
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        return format(milliseconds: micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000))
    }

    static func format(milliseconds ms: Int64) -> String {
        var seconds = ms / 1000
        var millis = ms % 1000
        if millis < 0 { millis += 1000; seconds -= 1 }
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int) {
            let start = out.count
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
            var v = max(0, value)
            for i in stride(from: start + width - 1, through: start, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(Int(millis), 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the form `format` writes (nil for anything else).
    static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "."), b[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              let millis = number(20..<23) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1000)
    }
}
