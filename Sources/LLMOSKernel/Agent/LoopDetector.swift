import LLMOSJSON

/// Watches for an agent stuck in a loop, in two ways:
/// - repetition: the same tool call (name and arguments, key order ignored) with the same
///   result, `threshold` times in one run — consecutive or not, so A, B, A, B, A is caught
///   as surely as A, A, A;
/// - no progress: `progressWindow` tool calls in a row of which none succeeded with a result
///   not seen before (a model trying one wrong tool name or argument after another).
/// It escalates one level per offending step: first a warning the model reads, then a turn
/// with tools withheld to force an answer; the loop stops the process after that turn.
public struct LoopDetector: Sendable {
    public enum Action: Sendable, Equatable {
        case none
        /// Tell the model it is repeating itself (`name` was called `count` times with one result).
        case warn(name: String, count: Int)
        /// Withhold tools for the next turn; the run stops after it.
        case withholdTools(name: String, count: Int)
        /// `calls` calls in a row brought nothing new: a warning first, then tools withheld.
        case noProgress(calls: Int, withholdTools: Bool)
    }

    public let threshold: Int
    public let progressWindow: Int
    /// 0: nothing seen; 1: warned; 2: tools withheld.
    public private(set) var level = 0
    private var counts: [String: Int] = [:]
    /// Calls since the last one that succeeded with a new result.
    public private(set) var callsWithoutProgress = 0

    public init(threshold: Int = 3, progressWindow: Int = 8) {
        self.threshold = max(2, threshold)
        self.progressWindow = max(2, progressWindow)
    }

    /// The identity of a call and its result.
    public static func signature(name: String, arguments: JSONValue, result: String) -> String {
        "\(name)\u{0}\(canonical(arguments).serialized())\u{0}\(result)"
    }

    /// Objects with their keys sorted, recursively, so {"a":1,"b":2} equals {"b":2,"a":1}.
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(JSONObject(object.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
                .map { ($0.key, canonical($0.value)) }))
        case .array(let items): return .array(items.map(canonical))
        default: return value
        }
    }

    /// How often this call gave this result so far.
    public func count(name: String, arguments: JSONValue, result: String) -> Int {
        counts[Self.signature(name: name, arguments: arguments, result: result)] ?? 0
    }

    /// Records one step's calls (name, arguments, what the model was told) and says what to do.
    /// `succeeded[i]`: call i ran and returned a result (nil: every call did).
    public mutating func record(_ calls: [(name: String, arguments: JSONValue, result: String)], succeeded: [Bool]? = nil) -> Action {
        var worst: (name: String, count: Int)?
        for (i, call) in calls.enumerated() {
            let key = Self.signature(name: call.name, arguments: call.arguments, result: call.result)
            let count = (counts[key] ?? 0) + 1
            counts[key] = count
            if count >= threshold, count > (worst?.count ?? 0) { worst = (call.name, count) }
            let progressed = count == 1 && (succeeded.map { i < $0.count && $0[i] } ?? true)
            callsWithoutProgress = progressed ? 0 : callsWithoutProgress + 1
        }
        if let worst {
            level = min(2, level + 1)
            return level == 1 ? .warn(name: worst.name, count: worst.count) : .withholdTools(name: worst.name, count: worst.count)
        }
        if callsWithoutProgress >= progressWindow {
            let calls = callsWithoutProgress
            level = min(2, level + 1)
            // Another window must pass before the next escalation.
            if level == 1 { callsWithoutProgress = 0 }
            return .noProgress(calls: calls, withholdTools: level == 2)
        }
        return .none
    }
}
