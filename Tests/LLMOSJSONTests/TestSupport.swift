@testable import LLMOSJSON

/// Parses bytes, returning the error instead of throwing, for table-driven tests.
func parseResult(_ bytes: [UInt8], maxDepth: Int = JSON.defaultMaxDepth) -> Result<JSONValue, JSONParseError> {
    Result { () throws(JSONParseError) in try JSON.parse(bytes, maxDepth: maxDepth) }
}

func parseError(_ text: String, maxDepth: Int = JSON.defaultMaxDepth) -> JSONParseError? {
    if case .failure(let error) = parseResult(Array(text.utf8), maxDepth: maxDepth) { return error }
    return nil
}

func syntaxError(_ bytes: [UInt8], maxDepth: Int = JSON.defaultMaxDepth) -> JSONParseError? {
    bytes.withUnsafeBytes { JSON.syntaxError(in: $0, maxDepth: maxDepth) }
}

/// A small deterministic generator (SplitMix64), so that "random" tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bit-exact equality, so that -0.0 and 0.0 differ (== treats them as equal).
func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern || (x.isNaN && y.isNaN)
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(identical)
    case (.object(let x), .object(let y)):
        return x.keys == y.keys && zip(x.values, y.values).allSatisfy(identical)
    default: return a == b
    }
}

extension SplitMix64 {
    /// A random JSON value, for round-trip tests.
    mutating func value(depth: Int = 0) -> JSONValue {
        let kinds = depth > 3 ? 5 : 7
        switch Int.random(in: 0..<kinds, using: &self) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &self))
        case 2: return .int(Int64.random(in: .min ... .max, using: &self) >> UInt64.random(in: 0...63, using: &self))
        case 3:
            let d = Double(bitPattern: next())
            return .double(d.isFinite ? d : 1.5)
        case 4: return .string(string())
        case 5: return .array((0..<Int.random(in: 0...4, using: &self)).map { _ in value(depth: depth + 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &self) { object[string()] = value(depth: depth + 1) }
            return .object(object)
        }
    }

    mutating func string() -> String {
        let alphabet: [Unicode.Scalar] = ["a", "b", "z", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}",
                                          "é", "\u{2028}", "中", "😀", "\u{FFFF}", "\u{10FFFF}"]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...6, using: &self) { scalars.append(alphabet.randomElement(using: &self)!) }
        return String(scalars)
    }
}
