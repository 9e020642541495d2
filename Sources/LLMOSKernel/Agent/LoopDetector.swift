import LLMOSJSON

/// Watches for an agent stuck in a loop: the same tool call (name and arguments, key order
/// ignored) with the same result, `threshold` times in one run — consecutive or not, so
/// A, B, A, B, A is caught as surely as A, A, A. It escalates one level per offending step:
/// first a warning the model reads, then a turn with tools withheld to force an answer;
/// the loop stops the process after that turn.
public struct LoopDetector: Sendable {
    public enum Action: Sendable, Equatable {
        case none
        /// Tell the model it is repeating itself (`name` was called `count` times with one result).
        case warn(name: String, count: Int)
        /// Withhold tools for the next turn; the run stops after it.
        case withholdTools(name: String, count: Int)
    }

    public let threshold: Int
    /// 0: nothing seen; 1: warned; 2: tools withheld.
    public private(set) var level = 0
    private var counts: [String: Int] = [:]

    public init(threshold: Int = 3) { self.threshold = max(2, threshold) }

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
    public mutating func record(_ calls: [(name: String, arguments: JSONValue, result: String)]) -> Action {
        var worst: (name: String, count: Int)?
        for call in calls {
            let key = Self.signature(name: call.name, arguments: call.arguments, result: call.result)
            let count = (counts[key] ?? 0) + 1
            counts[key] = count
            if count >= threshold, count > (worst?.count ?? 0) { worst = (call.name, count) }
        }
        guard let worst else { return .none }
        switch level {
        case 0:
            level = 1
            return .warn(name: worst.name, count: worst.count)
        default:
            level = 2
            return .withholdTools(name: worst.name, count: worst.count)
        }
    }
}
