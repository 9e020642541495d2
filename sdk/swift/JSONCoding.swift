#if canImport(FoundationEssentials)
import FoundationEssentials  // JSONEncoder/JSONDecoder without all of Foundation
#else
import Foundation
#endif

/// An empty JSON object, `{}`: the input of an operation that takes no
/// arguments, or the output of one that returns nothing.
public struct Empty: Codable, Sendable, Hashable {
    public init() {}
}

/// The JSON conventions of the SDK, shared by operation inputs/outputs,
/// configuration and typed syscalls.
enum JSONCoding {
    /// Output is compact, with sorted keys (deterministic, easy to test) and
    /// unescaped slashes. A new encoder per use: cheap, and never shared
    /// between threads.
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// A message naming the field, for a DecodingError met while decoding
    /// `what` ("input", "configuration", ...):
    ///
    ///     invalid input: missing required field "text"
    ///     invalid input: field "max_matches" must be an integer
    ///     invalid input: field "text" must not be null
    ///     invalid input: field "to" has an invalid value: <detail>
    ///     invalid input: expected an object              (wrong top-level type)
    ///     invalid input: <detail>                        (e.g. not valid JSON)
    static func describe(_ error: DecodingError, decoding what: String) -> String {
        "invalid \(what): \(detail(error))"
    }

    /// `describe` without the "invalid X: " prefix.
    static func detail(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context):
            return "missing required field \"\(path(context.codingPath + [key]))\""
        case let .typeMismatch(type, context):
            if context.codingPath.isEmpty { return "expected \(describe(type))" }
            return "field \"\(path(context.codingPath))\" must be \(describe(type))"
        case let .valueNotFound(type, context):
            if context.codingPath.isEmpty { return "expected \(describe(type)), found null" }
            return "field \"\(path(context.codingPath))\" must not be null"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty { return context.debugDescription }
            return "field \"\(path(context.codingPath))\" has an invalid value: \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// `items[2].name`
    static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") || key.stringValue == String(index) {
                out += "[\(index)]"
            } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out
    }

    /// "a string", "an integer", "an object", ...
    static func describe(_ type: Any.Type) -> String {
        if type == Bool.self { return "a boolean" }
        if type is any StringProtocol.Type || type == Character.self { return "a string" }
        if type is any BinaryInteger.Type { return "an integer" }
        if type is any BinaryFloatingPoint.Type || type == Decimal.self { return "a number" }
        let name = String(describing: type)
        if name.hasPrefix("Array<") || name.hasPrefix("[") { return "an array" }
        if name.hasPrefix("Dictionary<") { return "an object" }
        return "of type \(name)"
    }
}
