/// The result of walking an audit log and recomputing its hash chain.
///
/// What the chain proves, honestly: the hash is a plain SHA-256 with no secret key,
/// so it detects any edit, insertion, deletion or reordering made by someone who does
/// not then recompute the hashes of every later row. Someone who can write the file
/// and recomputes the chain from the point of the edit onwards (and the `chain_head`
/// table with it) leaves a log that verifies, and can also cut rows off the end
/// undetected. That is detectable only against a head kept somewhere they cannot write:
/// note `lastSequence` and `headHash` of a verification (print them, send them to
/// another machine) and pass them back later as an `AuditAnchor`.
public struct AuditVerification: Sendable, Hashable, CustomStringConvertible {
    /// The rows read.
    public var rowsChecked: Int
    /// The last row's sequence number (0 for an empty log).
    public var lastSequence: Int64
    /// The last row's hash (the genesis hash, 64 zeros, for an empty log).
    public var headHash: String
    /// What is wrong, in sequence order; the first is the first problem in the chain.
    /// At most `AuditVerification.problemLimit` are kept; `problemCount` counts them all.
    public var problems: [AuditProblem]
    public var problemCount: Int

    public static let problemLimit = 100

    public var isValid: Bool { problemCount == 0 }
    public var firstProblem: AuditProblem? { problems.first }

    public var description: String {
        if isValid { return "ok: \(rowsChecked) rows, chain intact through row \(lastSequence) (head \(headHash))" }
        var lines = ["\(problemCount) problem\(problemCount == 1 ? "" : "s") in \(rowsChecked) rows:"]
        lines += problems.map { "  \($0.message)" }
        if problemCount > problems.count { lines.append("  ... and \(problemCount - problems.count) more") }
        return lines.joined(separator: "\n")
    }
}

/// One problem found by `verify`, with a message that says which row and what.
public struct AuditProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// A row's hash does not match its contents (or a column is not what was written).
        case edited
        /// Sequence numbers skip: rows were deleted.
        case missing
        /// A row's prev_hash is not the hash of the row before it: inserted or reordered.
        case outOfOrder
        /// A row that cannot have been written by the log (a sequence number below 1).
        case inserted
        /// The table ends before the chain head: the last rows were deleted.
        case truncated
        /// The chain head does not agree with the table (or with the anchor given).
        case headMismatch
        /// SQLite's integrity check failed: the file itself is damaged.
        case corrupt
    }

    public var kind: Kind
    /// The row the problem was found at, when there is one.
    public var sequence: Int64?
    public var message: String

    public init(kind: Kind, sequence: Int64?, message: String) {
        self.kind = kind
        self.sequence = sequence
        self.message = message
    }

    public var description: String { message }
}

/// A (sequence, hash) pair kept outside the log, to check the log against later.
public struct AuditAnchor: Sendable, Hashable {
    public var sequence: Int64
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }
}

/// Walks rows in sequence order, one at a time (so a log of any size verifies in
/// constant memory). Each row gets at most one problem, checked in this order:
/// its sequence number follows the previous one; its prev_hash is the previous row's
/// hash; its hash matches its contents. After a problem the walk goes on from the
/// row as it is, so one edit gives one problem, not one for every later row.
struct AuditChainVerifier {
    private var hasher = AuditChain()
    private var previousSequence: Int64 = 0
    private var previousHash = AuditChain.genesis
    private var anchor: AuditAnchor?
    private var anchorSeen = false
    private(set) var result = AuditVerification(rowsChecked: 0, lastSequence: 0, headHash: AuditChain.genesis,
                                                problems: [], problemCount: 0)

    init(anchor: AuditAnchor? = nil) { self.anchor = anchor }

    mutating func report(_ kind: AuditProblem.Kind, _ sequence: Int64?, _ message: String) {
        result.problemCount += 1
        if result.problems.count < AuditVerification.problemLimit {
            result.problems.append(AuditProblem(kind: kind, sequence: sequence, message: message))
        }
    }

    /// `malformed`: why the row's columns are not what the log writes (a wrong type), if so.
    mutating func check(_ row: AuditRow, malformed: String? = nil) {
        result.rowsChecked += 1
        let seq = row.sequence
        let expected = previousSequence + 1
        if seq < 1 {
            report(.inserted, seq, "row \(seq) has a sequence number the log never writes (inserted)")
        } else if seq > expected {
            let missing = seq - expected
            let between = previousSequence == 0 ? "before \(seq)" : "between \(previousSequence) and \(seq)"
            report(.missing, seq, missing == 1
                ? "a row is missing \(between) (deleted)"
                : "\(missing) rows (\(expected) to \(seq - 1)) are missing \(between) (deleted)")
        } else if row.prevHash != previousHash {
            let after = previousSequence == 0 ? "the start of the log" : "row \(previousSequence)"
            report(.outOfOrder, seq, "row \(seq) does not follow \(after) (inserted or reordered: prev_hash mismatch)")
        } else if let malformed {
            report(.edited, seq, "row \(seq) was edited (\(malformed))")
        } else if hasher.hash(row) != row.hash {
            report(.edited, seq, "row \(seq) was edited (its hash does not match its contents)")
        }
        if let anchor, anchor.sequence == seq {
            anchorSeen = true
            if anchor.hash != row.hash {
                report(.headMismatch, seq, "row \(seq) is not the row anchored outside the log (its hash is \(row.hash), the anchor's \(anchor.hash)): the log was rewritten")
            }
        }
        previousSequence = seq
        previousHash = row.hash
        result.lastSequence = seq
        result.headHash = row.hash
    }

    /// Compares the end of the table with the recorded chain head (nil when the
    /// head is missing) and the anchor.
    mutating func finish(head: AuditAnchor?) -> AuditVerification {
        let last = previousSequence
        if let head {
            if head.sequence > last {
                let gone = head.sequence - last
                let rest = last == 0 ? "the table is empty" : "the log ends at row \(last)"
                report(.truncated, nil, gone == 1
                    ? "the last row was deleted: the chain head records row \(head.sequence), \(rest)"
                    : "the last \(gone) rows were deleted: the chain head records row \(head.sequence), \(rest)")
            } else if head.sequence < last {
                report(.headMismatch, last, "rows after the chain head (row \(head.sequence)) were added outside the log: the table ends at row \(last) (inserted)")
            } else if head.hash != previousHash {
                report(.headMismatch, last, "the chain head does not match row \(last) (the last row was replaced)")
            }
        } else if last > 0 {
            report(.headMismatch, nil, "the chain head is missing (it was deleted)")
        }
        if let anchor, !anchorSeen, anchor.sequence > 0 {
            report(.truncated, nil, "row \(anchor.sequence), anchored outside the log, is not in it (\(last == 0 ? "the log is empty" : "the log ends at row \(last)")): rows were deleted")
        }
        return result
    }
}
