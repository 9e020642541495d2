// The JSON value model shared by the parser, the serializer and the schema validator.

/// A JSON value.
///
/// Numbers keep the distinction the lexeme made: `.int` for a number written without
/// fraction or exponent that fits in `Int64`, `.double` for everything else. Equality
/// (`==`) is structural, so `.int(1) != .double(1)`; JSON Schema's numeric equality
/// (`1 == 1.0`) is `isEquivalent(to:)`. Objects compare without regard to key order.
///
/// Strings, including object keys, compare by their Unicode code points (UTF-8 bytes), as
/// RFC 8259 and JSON Schema specify, not by Swift's `String ==`, which applies canonical
/// equivalence ("K" U+212A KELVIN SIGN equals "K" there). A driver comparing bytes must
/// see exactly the keys and values the kernel validated.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number lexeme with no fraction or exponent that fits in `Int64` (so `-0` is `.int(0)`).
    case int(Int64)
    /// Any other number.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8Equals(b)
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .bool(let b): hasher.combine(1 as UInt8); hasher.combine(b)
        case .int(let i): hasher.combine(2 as UInt8); hasher.combine(i)
        case .double(let d): hasher.combine(3 as UInt8); hasher.combine(d)
        case .string(let s): hasher.combine(4 as UInt8); s.hashUTF8(into: &hasher)
        case .array(let a): hasher.combine(5 as UInt8); hasher.combine(a)
        case .object(let o): hasher.combine(6 as UInt8); hasher.combine(o)
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key`; nil unless this is an object with that key.
    @inlinable
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// The element at `index`; nil unless this is an array and the index is in range.
    @inlinable
    public subscript(index: Int) -> JSONValue? {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The number as a `Double` (an `.int` converts, possibly rounding above 2^53).
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The number as an `Int64`: an `.int`, or a `.double` with an integral value in range.
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return NumberComparison.exactInt64(d)
        default: return nil
        }
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON Schema name of this value's type, for messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// JSON Schema equality: numbers compare by value (`1` equals `1.0`), arrays element-wise,
    /// objects by their set of members regardless of order.
    public func isEquivalent(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8Equals(b)
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)):
            return NumberComparison.compare(a, b) == 0
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for i in a.indices where !a[i].isEquivalent(to: b[i]) { return false }
            return true
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let bv = b[key], value.isEquivalent(to: bv) else { return false }
            }
            return true
        default: return false
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact serialization.
    public var description: String { serialized() }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    @inlinable public init(nilLiteral: ()) { self = .null }
    @inlinable public init(booleanLiteral value: Bool) { self = .bool(value) }
    @inlinable public init(integerLiteral value: Int64) { self = .int(value) }
    @inlinable public init(floatLiteral value: Double) { self = .double(value) }
    @inlinable public init(stringLiteral value: String) { self = .string(value) }
    @inlinable public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

// MARK: - JSONObject

/// A JSON object that keeps its keys in document (insertion) order.
///
/// Keys are unique: setting an existing key replaces its value in place, and when built
/// from pairs with a repeated key the last value wins at the first key's position (the
/// parser instead rejects duplicate keys, so that every consumer of a validated document
/// agrees on its meaning). Lookup is a linear scan for small objects and a hash index for
/// larger ones. Keys compare by code points (see `JSONValue`). Equality ignores key order.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    /// Storage is a struct rather than the `Element` tuple: arrays of tuples are destroyed
    /// through the runtime's generic tuple witness, which is markedly slower.
    @usableFromInline
    struct Member: Sendable {
        @usableFromInline var key: String
        @usableFromInline var value: JSONValue
        @inlinable init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    @usableFromInline var pairs: ContiguousArray<Member>
    /// Key -> position, present only once the object is larger than `indexThreshold`.
    @usableFromInline var index: [JSONKey: Int]?

    /// Above this many members a hash index beats a linear scan of keys.
    @usableFromInline static let indexThreshold = 12

    @inlinable
    public init() {
        pairs = []
        index = nil
    }

    public init(_ pairs: [(String, JSONValue)]) {
        self.init()
        self.pairs.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// Pairs known to have unique keys (the parser checks as it goes).
    @inlinable
    init(uniquePairs: ContiguousArray<Member>, index: [JSONKey: Int]?) {
        self.pairs = uniquePairs
        self.index = index
    }

    @inlinable public var count: Int { pairs.count }
    @inlinable public var isEmpty: Bool { pairs.isEmpty }
    public var keys: [String] { pairs.map(\.key) }
    public var values: [JSONValue] { pairs.map(\.value) }

    /// The position of `key` in document order.
    @inlinable
    public func position(of key: String) -> Int? {
        if let index { return index[JSONKey(key)] }
        for i in pairs.indices where pairs[i].key.utf8Equals(key) { return i }
        return nil
    }

    /// Reads a member; setting a new key appends it, setting nil removes the key.
    @inlinable
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = position(of: key) else { return nil }
            return pairs[i].value
        }
        set {
            if let i = position(of: key) {
                if let newValue {
                    pairs[i].value = newValue
                } else {
                    pairs.remove(at: i)
                    rebuildIndex()
                }
            } else if let newValue {
                append(key: key, value: newValue)
            }
        }
    }

    /// Appends a key known not to be present.
    @inlinable
    mutating func append(key: String, value: JSONValue) {
        pairs.append(Member(key: key, value: value))
        if index != nil {
            index![JSONKey(key)] = pairs.count - 1
        } else if pairs.count > Self.indexThreshold {
            rebuildIndex()
        }
    }

    @usableFromInline
    mutating func rebuildIndex() {
        guard pairs.count > Self.indexThreshold else {
            index = nil
            return
        }
        var index = [JSONKey: Int](minimumCapacity: pairs.count)
        for (i, pair) in pairs.enumerated() { index[JSONKey(pair.key)] = i }
        self.index = index
    }

    public struct Iterator: IteratorProtocol {
        @usableFromInline var base: IndexingIterator<ContiguousArray<Member>>
        @inlinable init(_ base: IndexingIterator<ContiguousArray<Member>>) { self.base = base }
        @inlinable public mutating func next() -> Element? {
            guard let member = base.next() else { return nil }
            return (member.key, member.value)
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(pairs.makeIterator()) }

    @inlinable public var underestimatedCount: Int { pairs.count }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in lhs {
            guard let other = rhs[key], other == value else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        var combined = 0
        for member in pairs {
            var h = Hasher()
            member.key.hashUTF8(into: &h)
            h.combine(member.value)
            combined ^= h.finalize()
        }
        hasher.combine(pairs.count)
        hasher.combine(combined)
    }
}

extension JSONObject: CustomStringConvertible {
    public var description: String { JSONValue.object(self).serialized() }
}

// MARK: - Code-point string equality

/// A string hashed and compared by its UTF-8 bytes, for hash tables of JSON keys.
@usableFromInline
struct JSONKey: Hashable, Sendable {
    @usableFromInline let string: String
    @inlinable init(_ string: String) { self.string = string }
    @inlinable static func == (lhs: JSONKey, rhs: JSONKey) -> Bool { lhs.string.utf8Equals(rhs.string) }
    @inlinable func hash(into hasher: inout Hasher) { string.hashUTF8(into: &hasher) }
}

extension String {
    /// Equality of UTF-8 bytes (code points), without canonical equivalence.
    @inlinable
    func utf8Equals(_ other: String) -> Bool {
        let count = utf8.count
        guard count == other.utf8.count else { return false }
        let fast = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in
                var i = 0
                while i < count {
                    if a[i] != b[i] { return false }
                    i += 1
                }
                return true
            }
        }
        return (fast ?? nil) ?? utf8.elementsEqual(other.utf8)
    }

    @inlinable
    func hashUTF8(into hasher: inout Hasher) {
        let hashed: Void? = utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for byte in utf8 { hasher.combine(byte) }
        }
    }
}

// MARK: - Number comparison

/// Exact comparison between Int64 and Double, which `Double(i)` alone would round.
///
/// Written with plain conversions rather than `rounded()`, which calls into libm and would
/// make this module depend on whoever links it also linking libm.
enum NumberComparison {
    /// 2^52: every Double of at least this magnitude is an integer.
    static let integralThreshold = 4_503_599_627_370_496.0

    @inline(__always)
    static func isIntegral(_ d: Double) -> Bool {
        guard d.isFinite else { return false }
        if d.magnitude >= integralThreshold { return true }
        return Double(Int64(d)) == d
    }

    /// The Int64 equal to `d`, if there is one.
    static func exactInt64(_ d: Double) -> Int64? {
        guard d >= -9_223_372_036_854_775_808.0, d < 9_223_372_036_854_775_808.0 else { return nil }
        let t = Int64(d)
        return Double(t) == d ? t : nil
    }

    /// Distance from `d` to the nearest integer (0 for huge values, NaN for non-finite ones).
    static func distanceToInteger(_ d: Double) -> Double {
        guard d.isFinite else { return .nan }
        if d.magnitude >= integralThreshold { return 0 }
        let r = (d - Double(Int64(d))).magnitude  // fractional part, in [0, 1)
        return min(r, 1 - r)
    }

    /// -1, 0 or 1 as `a` is less than, equal to or greater than `b`; 2 when `b` is NaN.
    static func compare(_ a: Int64, _ b: Double) -> Int {
        if b.isNaN { return 2 }
        if b >= 9_223_372_036_854_775_808.0 { return -1 }
        if b < -9_223_372_036_854_775_808.0 { return 1 }
        let t = Int64(b)  // toward zero
        if Double(t) == b { return a < t ? -1 : (a > t ? 1 : 0) }
        // b lies strictly between t and its neighbour away from zero.
        if b > 0 { return a <= t ? -1 : 1 }
        return a >= t ? 1 : -1
    }

    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x > y ? 1 : 0)
        case (.int(let x), .double(let y)): return compare(x, y)
        case (.double(let x), .int(let y)):
            let c = compare(y, x)
            return c == 2 ? 2 : -c
        case (.double(let x), .double(let y)):
            if x < y { return -1 }
            if x > y { return 1 }
            return x == y ? 0 : 2
        default: return 2
        }
    }
}
