// A strict RFC 8259 parser over raw UTF-8 bytes.
//
// One byte-level reader serves two modes: building `JSONValue`s (`parse`) and checking
// well-formedness only (`syntaxError`), which allocates no strings. Both reject exactly the
// same inputs, including duplicate object keys, so `syntaxError(in:) == nil` means `parse`
// succeeds. Recursion depth is bounded by `maxDepth`.

/// Where and why a document is not valid JSON.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the offending input.
    public var offset: Int
    /// 1-based line (lines end at LF, CR LF or a lone CR).
    public var line: Int
    /// 1-based column, counted in Unicode scalars from the line's start.
    public var column: Int
    public var message: String

    public init(offset: Int, line: Int, column: Int, message: String) {
        self.offset = offset
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}

public enum JSON {
    public static let defaultMaxDepth = 256

    /// Parses exactly one JSON value (RFC 8259); surrounding whitespace is allowed, nothing else.
    ///
    /// Duplicate keys in an object are rejected. A number written without fraction or
    /// exponent that fits in `Int64` becomes `.int`, any other number `.double`; a number
    /// too large for a `Double` is an error. Arrays and objects may nest `maxDepth` deep;
    /// the parser recurses once per level, so keep `maxDepth` to a few thousand at most.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(bytes: bytes, failure: .init(0, "unexpected end of input, expected a JSON value"))
        }
        let result = withUnsafeTemporaryAllocation(of: JSONReader.StringSpan.self, capacity: JSONReader.scratchKeys) { scratch in
            var reader = JSONReader(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth, scratch: scratch)
            defer { reader.releaseKeys() }
            return Result { () throws(ParseFailure) in
                reader.skipWhitespace()
                let value = try reader.parseValue()
                try reader.finish()
                return value
            }
        }
        switch result {
        case .success(let value): return value
        case .failure(let failure): throw JSONParseError(bytes: bytes, failure: failure)
        }
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { utf8 in
            Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(utf8), maxDepth: maxDepth) }
        }.get()
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try parse(raw, maxDepth: maxDepth) }
        }.get()
    }

    /// Checks well-formedness without building values; nil exactly when `parse` would succeed.
    public static func syntaxError(
        in bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth
    ) -> JSONParseError? {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return JSONParseError(bytes: bytes, failure: .init(0, "unexpected end of input, expected a JSON value"))
        }
        return withUnsafeTemporaryAllocation(of: JSONReader.StringSpan.self, capacity: JSONReader.scratchKeys) {
            scratch -> JSONParseError? in
            var reader = JSONReader(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth, scratch: scratch)
            defer { reader.releaseKeys() }
            do throws(ParseFailure) {
                reader.skipWhitespace()
                try reader.skipValue()
                try reader.finish()
                return nil
            } catch {
                return JSONParseError(bytes: bytes, failure: error)
            }
        }
    }

    public static func syntaxError(in text: String, maxDepth: Int = defaultMaxDepth) -> JSONParseError? {
        var text = text
        return text.withUTF8 { syntaxError(in: UnsafeRawBufferPointer($0), maxDepth: maxDepth) }
    }
}

/// The reader's cheap error: line and column are computed only once, at the top.
struct ParseFailure: Error {
    var offset: Int
    var message: String
    init(_ offset: Int, _ message: String) {
        self.offset = offset
        self.message = message
    }
}

extension JSONParseError {
    init(bytes: UnsafeRawBufferPointer, failure: ParseFailure) {
        var line = 1
        var column = 1
        var i = 0
        let end = min(failure.offset, bytes.count)
        while i < end {
            let c = bytes[i]
            if c == 0x0A || (c == 0x0D && (i + 1 >= bytes.count || bytes[i + 1] != 0x0A)) {
                line += 1
                column = 1
            } else if c & 0xC0 != 0x80 && c != 0x0D {
                column += 1
            }
            i += 1
        }
        self.init(offset: failure.offset, line: line, column: column, message: failure.message)
    }
}

// MARK: - Reader

private let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, comma: UInt8 = 0x2C, colon: UInt8 = 0x3A
private let openBracket: UInt8 = 0x5B, closeBracket: UInt8 = 0x5D, openBrace: UInt8 = 0x7B, closeBrace: UInt8 = 0x7D

/// Powers of ten exactly representable as Double, for the exact (Clinger) fast path.
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

struct JSONReader {
    let base: UnsafePointer<UInt8>
    let end: Int
    let maxDepth: Int
    var pos = 0
    var depth = 0
    /// The keys of the small objects being read, innermost last, for finding duplicates by
    /// comparing bytes. Starts in a stack buffer; moves to the heap if that fills.
    var keys: UnsafeMutablePointer<KeySpan>
    var keyCapacity: Int
    var keyCount = 0
    var keysOnHeap = false

    static let scratchKeys = 32

    init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int, scratch: UnsafeMutableBufferPointer<KeySpan>) {
        self.base = base
        self.end = count
        self.maxDepth = maxDepth
        self.keys = scratch.baseAddress!
        self.keyCapacity = scratch.count
    }

    @inline(__always)
    mutating func pushKey(_ span: KeySpan) {
        if keyCount == keyCapacity {
            let grown = UnsafeMutablePointer<KeySpan>.allocate(capacity: keyCapacity * 2)
            grown.initialize(from: keys, count: keyCount)
            if keysOnHeap { keys.deallocate() }
            keys = grown
            keyCapacity *= 2
            keysOnHeap = true
        }
        keys[keyCount] = span
        keyCount += 1
    }

    mutating func releaseKeys() {
        if keysOnHeap { keys.deallocate() }
        keysOnHeap = false
    }

    /// Whether `span` repeats one of the keys pushed since `first`.
    @inline(__always)
    func repeatsKey(_ span: KeySpan, since first: Int) -> Bool {
        var i = first
        while i < keyCount {
            if sameKey(keys[i], span) { return true }
            i += 1
        }
        return false
    }

    /// A scanned string's content (between the quotes).
    struct StringSpan {
        var start: Int
        var end: Int
        /// Plain ASCII with no escapes: the raw bytes are the decoded string.
        var isPlainASCII: Bool
        var hasEscapes: Bool
    }

    typealias KeySpan = StringSpan

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    mutating func finish() throws(ParseFailure) {
        skipWhitespace()
        if pos != end { throw ParseFailure(pos, "trailing characters after the JSON value") }
    }

    // MARK: Values

    mutating func parseValue() throws(ParseFailure) -> JSONValue {
        guard pos < end else { throw ParseFailure(pos, "unexpected end of input, expected a JSON value") }
        switch base[pos] {
        case quote: return .string(try parseString())
        case openBrace: return try parseObject()
        case openBracket: return try parseArray()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw unexpectedValueStart()
        }
    }

    mutating func skipValue() throws(ParseFailure) {
        guard pos < end else { throw ParseFailure(pos, "unexpected end of input, expected a JSON value") }
        switch base[pos] {
        case quote: _ = try scanString()
        case openBrace: try skipObject()
        case openBracket: try skipArray()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try parseNumber(build: false)
        default: throw unexpectedValueStart()
        }
    }

    func unexpectedValueStart() -> ParseFailure {
        let c = base[pos]
        switch c {
        case closeBracket, closeBrace, comma, colon:
            return ParseFailure(pos, "unexpected '\(Character(Unicode.Scalar(c)))', expected a JSON value")
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            return ParseFailure(pos, "NaN and Infinity are not valid JSON, expected a JSON value")
        case UInt8(ascii: "+"):
            return ParseFailure(pos, "numbers may not start with '+'")
        case UInt8(ascii: "."):
            return ParseFailure(pos, "numbers must have a digit before the decimal point")
        case UInt8(ascii: "'"):
            return ParseFailure(pos, "strings must use double quotes")
        case UInt8(ascii: "/"):
            return ParseFailure(pos, "comments are not allowed in JSON")
        default:
            return ParseFailure(pos, "unexpected \(describeByte(at: pos)), expected a JSON value")
        }
    }

    /// A byte for a message: the character when printable ASCII, else its code point or hex.
    func describeByte(at i: Int) -> String {
        let c = base[i]
        if c >= 0x21 && c < 0x7F { return "character '\(Character(Unicode.Scalar(c)))'" }
        if c < 0x80 { return "character U+\(hex4(UInt16(c)))" }
        return "byte 0x\(String(c, radix: 16, uppercase: true))"
    }

    mutating func expectLiteral(_ word: StaticString) throws(ParseFailure) {
        let n = word.utf8CodeUnitCount
        let w = word.utf8Start
        var i = 0
        while i < n {
            guard pos + i < end, base[pos + i] == w[i] else {
                throw ParseFailure(pos, "invalid literal, expected '\(word)'")
            }
            i += 1
        }
        pos += n
    }

    // MARK: Containers

    @inline(__always)
    mutating func enter() throws(ParseFailure) {
        depth += 1
        if depth > maxDepth { throw ParseFailure(pos, "nesting deeper than \(maxDepth)") }
        pos += 1
    }

    mutating func parseArray() throws(ParseFailure) -> JSONValue {
        try enter()
        skipWhitespace()
        if pos < end && base[pos] == closeBracket {
            pos += 1
            depth -= 1
            return .array([])
        }
        var elements: [JSONValue] = []
        elements.reserveCapacity(4)
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard pos < end else { throw ParseFailure(pos, "unexpected end of input, expected ',' or ']' after array element") }
            let c = base[pos]
            if c == comma {
                pos += 1
                skipWhitespace()
                if pos < end && base[pos] == closeBracket { throw ParseFailure(pos, "trailing comma in array") }
            } else if c == closeBracket {
                pos += 1
                depth -= 1
                return .array(elements)
            } else {
                throw ParseFailure(pos, "expected ',' or ']' after array element")
            }
        }
    }

    mutating func skipArray() throws(ParseFailure) {
        try enter()
        skipWhitespace()
        if pos < end && base[pos] == closeBracket {
            pos += 1
            depth -= 1
            return
        }
        while true {
            try skipValue()
            skipWhitespace()
            guard pos < end else { throw ParseFailure(pos, "unexpected end of input, expected ',' or ']' after array element") }
            let c = base[pos]
            if c == comma {
                pos += 1
                skipWhitespace()
                if pos < end && base[pos] == closeBracket { throw ParseFailure(pos, "trailing comma in array") }
            } else if c == closeBracket {
                pos += 1
                depth -= 1
                return
            } else {
                throw ParseFailure(pos, "expected ',' or ']' after array element")
            }
        }
    }

    /// After '{' or ',': positioned at the member's key.
    @inline(__always)
    func checkKeyStart(first: Bool) throws(ParseFailure) {
        guard pos < end else {
            throw ParseFailure(pos, first ? "unexpected end of input, expected a string key or '}'" : "unexpected end of input, expected a string key")
        }
        let c = base[pos]
        if c == quote { return }
        if c == closeBrace && !first { throw ParseFailure(pos, "trailing comma in object") }
        if c == UInt8(ascii: "'") { throw ParseFailure(pos, "object keys must be strings in double quotes") }
        throw ParseFailure(pos, first ? "expected a string key or '}'" : "expected a string key after ','")
    }

    @inline(__always)
    mutating func expectColon() throws(ParseFailure) {
        skipWhitespace()
        guard pos < end, base[pos] == colon else {
            throw ParseFailure(pos, pos < end ? "expected ':' after object key" : "unexpected end of input, expected ':' after object key")
        }
        pos += 1
        skipWhitespace()
    }

    /// After a member's value: true when another member follows.
    @inline(__always)
    mutating func memberSeparator() throws(ParseFailure) -> Bool {
        skipWhitespace()
        guard pos < end else { throw ParseFailure(pos, "unexpected end of input, expected ',' or '}' after object member") }
        let c = base[pos]
        if c == comma {
            pos += 1
            skipWhitespace()
            try checkKeyStart(first: false)
            return true
        }
        if c == closeBrace {
            pos += 1
            depth -= 1
            return false
        }
        throw ParseFailure(pos, "expected ',' or '}' after object member")
    }

    mutating func parseObject() throws(ParseFailure) -> JSONValue {
        try enter()
        skipWhitespace()
        if pos < end && base[pos] == closeBrace {
            pos += 1
            depth -= 1
            return .object(JSONObject())
        }
        try checkKeyStart(first: true)
        var pairs = ContiguousArray<JSONObject.Member>()
        pairs.reserveCapacity(4)
        // Small objects find duplicates among their key spans; large ones through the index.
        var index: [JSONKey: Int]? = nil
        let firstKey = keyCount
        defer { keyCount = firstKey }
        repeat {
            let keyOffset = pos
            let span = try scanString()
            let key = decode(span)
            if index == nil {
                if repeatsKey(span, since: firstKey) { throw duplicateKey(key, at: keyOffset) }
                pushKey(span)
            } else if index![JSONKey(key)] != nil {
                throw duplicateKey(key, at: keyOffset)
            }
            try expectColon()
            let value = try parseValue()
            pairs.append(JSONObject.Member(key: key, value: value))
            if index != nil {
                index![JSONKey(key)] = pairs.count - 1
            } else if pairs.count > JSONObject.indexThreshold {
                var built = [JSONKey: Int](minimumCapacity: pairs.count * 2)
                for (i, pair) in pairs.enumerated() { built[JSONKey(pair.key)] = i }
                index = built
            }
        } while try memberSeparator()
        return .object(JSONObject(uniquePairs: pairs, index: index))
    }

    func duplicateKey(_ key: String, at offset: Int) -> ParseFailure {
        ParseFailure(offset, "duplicate key \"\(key)\" in object")
    }

    mutating func skipObject() throws(ParseFailure) {
        try enter()
        skipWhitespace()
        if pos < end && base[pos] == closeBrace {
            pos += 1
            depth -= 1
            return
        }
        try checkKeyStart(first: true)
        let firstKey = keyCount
        defer { keyCount = firstKey }
        // Past a few keys, pairwise comparison gives way to a set.
        var seen: Set<JSONKey>? = nil
        repeat {
            let keyOffset = pos
            let span = try scanString()
            if seen != nil {
                if !seen!.insert(JSONKey(decode(span))).inserted { throw duplicateKey(decode(span), at: keyOffset) }
            } else {
                if repeatsKey(span, since: firstKey) { throw duplicateKey(decode(span), at: keyOffset) }
                pushKey(span)
                if keyCount - firstKey > JSONObject.indexThreshold {
                    seen = Set((firstKey..<keyCount).map { JSONKey(decode(keys[$0])) })
                }
            }
            try expectColon()
            try skipValue()
        } while try memberSeparator()
    }

    /// Whether two keys are the same string once decoded (by code points).
    func sameKey(_ a: KeySpan, _ b: KeySpan) -> Bool {
        if a.isPlainASCII && b.isPlainASCII {
            let n = a.end - a.start
            guard n == b.end - b.start else { return false }
            var i = 0
            while i < n {
                if base[a.start + i] != base[b.start + i] { return false }
                i += 1
            }
            return true
        }
        return decode(a).utf8Equals(decode(b))
    }

    // MARK: Strings

    mutating func parseString() throws(ParseFailure) -> String {
        let span = try scanString()
        return decode(span)
    }

    /// Validates a string (pos at its opening quote) and moves past its closing quote.
    mutating func scanString() throws(ParseFailure) -> StringSpan {
        let open = pos
        pos += 1
        let start = pos
        var ascii = true
        var escapes = false
        while pos < end {
            let c = base[pos]
            if c == quote {
                let span = StringSpan(start: start, end: pos, isPlainASCII: ascii && !escapes, hasEscapes: escapes)
                pos += 1
                return span
            }
            if c == backslash {
                escapes = true
                try scanEscape()
            } else if c < 0x20 {
                throw ParseFailure(pos, "unescaped control character U+\(hex4(UInt16(c))) in string")
            } else if c < 0x80 {
                pos += 1
            } else {
                ascii = false
                try scanUTF8Sequence()
            }
        }
        throw ParseFailure(open, "unterminated string")
    }

    /// Validates one multi-byte UTF-8 sequence (no overlongs, surrogates or values past U+10FFFF).
    @inline(__always)
    mutating func scanUTF8Sequence() throws(ParseFailure) {
        let c = base[pos]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw ParseFailure(pos, "invalid UTF-8")
        }
        guard pos + length <= end else { throw ParseFailure(pos, "invalid UTF-8") }
        let second = base[pos + 1]
        guard second >= low && second <= high else { throw ParseFailure(pos, "invalid UTF-8") }
        var i = 2
        while i < length {
            guard base[pos + i] & 0xC0 == 0x80 else { throw ParseFailure(pos, "invalid UTF-8") }
            i += 1
        }
        pos += length
    }

    /// Validates the escape at pos (a backslash) and moves past it.
    mutating func scanEscape() throws(ParseFailure) {
        let at = pos
        guard pos + 1 < end else { throw ParseFailure(at, "unterminated string") }
        switch base[pos + 1] {
        case quote, backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos += 2
        case UInt8(ascii: "u"):
            let unit = try hexEscape(at: at)
            pos += 6
            if unit >= 0xDC00 && unit <= 0xDFFF {
                throw ParseFailure(at, "unpaired low surrogate \\u\(hex4(unit)) in string")
            }
            if unit >= 0xD800 && unit <= 0xDBFF {
                let unpaired = ParseFailure(at, "unpaired high surrogate \\u\(hex4(unit)) in string")
                guard pos + 1 < end, base[pos] == backslash, base[pos + 1] == UInt8(ascii: "u") else { throw unpaired }
                let low = try hexEscape(at: pos)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw unpaired }
                pos += 6
            }
        default:
            let c = base[pos + 1]
            if c >= 0x21 && c < 0x7F {
                throw ParseFailure(at, "invalid escape \\\(Character(Unicode.Scalar(c)))")
            }
            throw ParseFailure(at, "invalid escape: backslash followed by \(describeByte(at: pos + 1))")
        }
    }

    /// The code unit of the `\uXXXX` escape starting at `at`.
    func hexEscape(at: Int) throws(ParseFailure) -> UInt16 {
        var value: UInt16 = 0
        var i = at + 2
        while i < at + 6 {
            guard i < end else { throw ParseFailure(at, "invalid \\u escape, expected 4 hex digits") }
            let c = base[i]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c &- UInt8(ascii: "A") &+ 10
            default: throw ParseFailure(at, "invalid \\u escape, expected 4 hex digits")
            }
            value = value << 4 | UInt16(digit)
            i += 1
        }
        return value
    }

    /// The string for a validated span.
    func decode(_ span: StringSpan) -> String {
        let count = span.end - span.start
        if !span.hasEscapes {
            return String(decoding: UnsafeBufferPointer(start: base + span.start, count: count), as: UTF8.self)
        }
        // Every escape is longer than its UTF-8, so the raw length bounds the output.
        return String(unsafeUninitializedCapacity: count) { out in
            var i = span.start
            var o = 0
            while i < span.end {
                let c = base[i]
                guard c == backslash else {
                    out[o] = c
                    o += 1
                    i += 1
                    continue
                }
                let e = base[i + 1]
                i += 2
                let simple: UInt8
                switch e {
                case UInt8(ascii: "b"): simple = 0x08
                case UInt8(ascii: "f"): simple = 0x0C
                case UInt8(ascii: "n"): simple = 0x0A
                case UInt8(ascii: "r"): simple = 0x0D
                case UInt8(ascii: "t"): simple = 0x09
                case UInt8(ascii: "u"):
                    var scalar = UInt32(hexValue(at: i))
                    i += 4
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        let low = UInt32(hexValue(at: i + 2))
                        i += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    o += encodeUTF8(scalar, into: out, at: o)
                    continue
                default: simple = e  // " \ /
                }
                out[o] = simple
                o += 1
            }
            return o
        }
    }

    /// Four hex digits already validated by `hexEscape`.
    func hexValue(at i: Int) -> UInt16 {
        var value: UInt16 = 0
        for k in i..<i + 4 {
            let c = base[k] | 0x20  // lower-case letters; digits unaffected
            value = value << 4 | UInt16(c >= UInt8(ascii: "a") ? c &- UInt8(ascii: "a") &+ 10 : c &- UInt8(ascii: "0"))
        }
        return value
    }

    // MARK: Numbers

    mutating func parseNumber() throws(ParseFailure) -> JSONValue {
        try parseNumber(build: true)
    }

    /// Lexes a number; when `build` is false only checks it (including its range).
    @inline(__always)
    mutating func parseNumber(build: Bool) throws(ParseFailure) -> JSONValue {
        // The usual case first: an integer of at most 18 digits, which cannot overflow.
        var p = pos
        let negative = base[p] == UInt8(ascii: "-")
        if negative { p += 1 }
        let digits = p
        var magnitude: Int64 = 0
        while p < end && p - digits < 18 {
            let d = base[p] &- UInt8(ascii: "0")
            if d >= 10 { break }
            magnitude = magnitude &* 10 &+ Int64(d)
            p += 1
        }
        let count = p - digits
        if count > 0 && (count == 1 || base[digits] != UInt8(ascii: "0")) && (p == end || !continuesNumber(base[p])) {
            pos = p
            return .int(negative ? -magnitude : magnitude)
        }
        return try parseNumberInFull(build: build)
    }

    @inline(__always)
    func continuesNumber(_ c: UInt8) -> Bool {
        isDigit(c) || c == UInt8(ascii: ".") || (c | 0x20) == UInt8(ascii: "e")
    }

    mutating func parseNumberInFull(build: Bool) throws(ParseFailure) -> JSONValue {
        let start = pos
        let negative = base[pos] == UInt8(ascii: "-")
        if negative { pos += 1 }
        guard pos < end, isDigit(base[pos]) else {
            throw ParseFailure(pos, pos < end ? "expected a digit after '-'" : "unexpected end of input, expected a digit after '-'")
        }
        // Mantissa digits as an integer while they fit; `significant` counts digits from the first non-zero.
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent10 = 0
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(base[pos]) { throw ParseFailure(start, "leading zeros are not allowed in numbers") }
        } else {
            while pos < end, isDigit(base[pos]) {
                accumulate(base[pos], &mantissa, &significant, &exponent10)
                pos += 1
            }
        }
        var integral = true
        if pos < end && base[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard pos < end, isDigit(base[pos]) else { throw ParseFailure(pos, "expected a digit after the decimal point") }
            while pos < end, isDigit(base[pos]) {
                accumulate(base[pos], &mantissa, &significant, &exponent10)
                exponent10 -= 1
                pos += 1
            }
        }
        if pos < end && (base[pos] | 0x20) == UInt8(ascii: "e") {
            integral = false
            pos += 1
            var negativeExponent = false
            if pos < end && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) {
                negativeExponent = base[pos] == UInt8(ascii: "-")
                pos += 1
            }
            guard pos < end, isDigit(base[pos]) else { throw ParseFailure(pos, "expected a digit in the exponent") }
            var e = 0
            while pos < end, isDigit(base[pos]) {
                if e < 1_000_000 { e = e * 10 + Int(base[pos] &- UInt8(ascii: "0")) }
                pos += 1
            }
            exponent10 += negativeExponent ? -e : e
        }
        if integral && significant <= 19 {
            // exponent10 is 0 here, as digits were neither dropped nor fractional.
            if negative {
                if mantissa <= UInt64(Int64.max) + 1 {
                    return build ? .int(mantissa == UInt64(Int64.max) + 1 ? Int64.min : -Int64(mantissa)) : .null
                }
            } else if mantissa <= UInt64(Int64.max) {
                return build ? .int(Int64(mantissa)) : .null
            }
        }
        // Exact when the mantissa and the power of ten are both exact doubles (Clinger).
        if significant <= 15 && exponent10 >= -22 && exponent10 <= 22 {
            guard build else { return .null }
            var d = Double(mantissa)
            d = exponent10 < 0 ? d / exactPowersOfTen[-exponent10] : d * exactPowersOfTen[exponent10]
            return .double(negative ? -d : d)
        }
        if mantissa == 0 && significant == 0 { return build ? .double(negative ? -0.0 : 0.0) : .null }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw ParseFailure(start, "number out of range: \(text)")
        }
        return .double(d)
    }

    @inline(__always)
    func accumulate(_ c: UInt8, _ mantissa: inout UInt64, _ significant: inout Int, _ exponent10: inout Int) {
        if significant == 0 && c == UInt8(ascii: "0") { return }
        // 19 digits always fit in UInt64; later ones only scale (and send us to the slow path).
        if significant < 19 {
            mantissa = mantissa &* 10 &+ UInt64(c &- UInt8(ascii: "0"))
        } else {
            exponent10 += 1
        }
        significant += 1
    }
}

@inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

func hex4(_ v: UInt16) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - s.count) + s
}

/// Writes `scalar` as UTF-8 at `out[at...]`, returning the byte count.
@inline(__always)
private func encodeUTF8(_ scalar: UInt32, into out: UnsafeMutableBufferPointer<UInt8>, at o: Int) -> Int {
    if scalar < 0x80 {
        out[o] = UInt8(scalar)
        return 1
    }
    if scalar < 0x800 {
        out[o] = UInt8(0xC0 | (scalar >> 6))
        out[o + 1] = UInt8(0x80 | (scalar & 0x3F))
        return 2
    }
    if scalar < 0x10000 {
        out[o] = UInt8(0xE0 | (scalar >> 12))
        out[o + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
        out[o + 2] = UInt8(0x80 | (scalar & 0x3F))
        return 3
    }
    out[o] = UInt8(0xF0 | (scalar >> 18))
    out[o + 1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
    out[o + 2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
    out[o + 3] = UInt8(0x80 | (scalar & 0x3F))
    return 4
}
