// Serialization straight to UTF-8 bytes.
//
// Strings are escaped per RFC 8259: `"` `\` and the C0 controls (as \b \f \n \r \t or \u00XX);
// "/" and non-ASCII text are written as is. A `.double` is written in the shortest form that
// reads back to the same value (the standard library's `description`), which keeps a decimal
// point or exponent, so `.double(3)` is "3.0" and reads back as `.double`. Non-finite doubles,
// which JSON cannot express, are written as null.

extension JSONValue {
    /// The JSON text: compact by default; `pretty` indents by two spaces with `"key": value`.
    public func serialized(pretty: Bool = false) -> String {
        JSONWriter.withBytes(of: self, pretty: pretty) { String(decoding: $0, as: UTF8.self) }
    }

    /// Appends the compact JSON text as UTF-8.
    public func serialize(into bytes: inout [UInt8]) {
        JSONWriter.withBytes(of: self, pretty: false) { bytes.append(contentsOf: $0) }
    }
}

/// A growable byte buffer that starts on the stack. Appending to `[UInt8]` byte by byte
/// costs a uniqueness check and a capacity check each time; this costs one compare.
struct ByteBuffer {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int
    var onHeap = false

    init(scratch: UnsafeMutableBufferPointer<UInt8>) {
        base = scratch.baseAddress!
        capacity = scratch.count
    }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    mutating func grow(_ needed: Int) {
        let newCapacity = max(capacity * 2, needed)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.initialize(from: base, count: count)
        if onHeap { base.deallocate() }
        base = grown
        capacity = newCapacity
        onHeap = true
    }

    mutating func release() {
        if onHeap { base.deallocate() }
        onHeap = false
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ a: UInt8, _ b: UInt8) {
        reserve(2)
        base[count] = a
        base[count + 1] = b
        count += 2
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }
}

enum JSONWriter {
    static func withBytes<R>(of value: JSONValue, pretty: Bool, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { scratch in
            var out = ByteBuffer(scratch: scratch)
            defer { out.release() }
            if pretty {
                writePretty(value, indent: 0, into: &out)
            } else {
                write(value, into: &out)
            }
            return body(out.bytes)
        }
    }

    static func write(_ value: JSONValue, into out: inout ByteBuffer) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .int(let i): writeInt(i, into: &out)
        case .double(let d): writeDouble(d, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let elements):
            out.append(0x5B)
            for i in elements.indices {
                if i > 0 { out.append(0x2C) }
                write(elements[i], into: &out)
            }
            out.append(0x5D)
        case .object(let object):
            out.append(0x7B)
            for i in object.pairs.indices {
                if i > 0 { out.append(0x2C) }
                writeString(object.pairs[i].key, into: &out)
                out.append(0x3A)
                write(object.pairs[i].value, into: &out)
            }
            out.append(0x7D)
        }
    }

    static func writePretty(_ value: JSONValue, indent: Int, into out: inout ByteBuffer) {
        switch value {
        case .array(let elements) where !elements.isEmpty:
            out.append(0x5B)
            for i in elements.indices {
                if i > 0 { out.append(0x2C) }
                newline(indent + 1, into: &out)
                writePretty(elements[i], indent: indent + 1, into: &out)
            }
            newline(indent, into: &out)
            out.append(0x5D)
        case .object(let object) where !object.isEmpty:
            out.append(0x7B)
            for i in object.pairs.indices {
                if i > 0 { out.append(0x2C) }
                newline(indent + 1, into: &out)
                writeString(object.pairs[i].key, into: &out)
                out.append(0x3A, 0x20)
                writePretty(object.pairs[i].value, indent: indent + 1, into: &out)
            }
            newline(indent, into: &out)
            out.append(0x7D)
        default:
            write(value, into: &out)
        }
    }

    static func newline(_ level: Int, into out: inout ByteBuffer) {
        out.reserve(1 + 2 * level)
        out.base[out.count] = 0x0A
        (out.base + out.count + 1).update(repeating: 0x20, count: 2 * level)
        out.count += 1 + 2 * level
    }

    static func writeInt(_ value: Int64, into out: inout ByteBuffer) {
        if value >= 0 && value < 10 {
            out.append(UInt8(value) &+ 0x30)
            return
        }
        // At most 19 digits and a sign: write them backwards into the reserved space, then shift.
        out.reserve(20)
        var magnitude = value.magnitude
        var digits = 0
        var m = magnitude
        repeat {
            digits += 1
            m /= 10
        } while m != 0
        if value < 0 {
            out.base[out.count] = 0x2D
            out.count += 1
        }
        var i = out.count + digits
        repeat {
            i -= 1
            out.base[i] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30
            magnitude /= 10
        } while magnitude != 0
        out.count += digits
    }

    static func writeDouble(_ value: Double, into out: inout ByteBuffer) {
        guard value.isFinite else {
            out.append("null")
            return
        }
        // Shortest round-trip digits; the forms it produces ("1.5", "1e-07", "1e+16", "-0.0")
        // are all valid JSON numbers.
        var text = value.description
        text.withUTF8 { out.append($0) }
    }

    static func writeString(_ string: String, into out: inout ByteBuffer) {
        var string = string
        string.withUTF8 { bytes in
            // Most strings need no escaping: check, then copy them whole.
            var clean = true
            for c in bytes where c < 0x20 || c == 0x22 || c == 0x5C {
                clean = false
                break
            }
            out.reserve(bytes.count + 2)
            out.base[out.count] = 0x22
            out.count += 1
            if clean {
                out.append(bytes)
            } else {
                writeEscaped(bytes, into: &out)
            }
            out.append(0x22)
        }
    }

    static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout ByteBuffer) {
        var runStart = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
            if runStart < i { out.append(UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            runStart = i + 1
            switch c {
            case 0x22: out.append(0x5C, 0x22)
            case 0x5C: out.append(0x5C, 0x5C)
            case 0x08: out.append(0x5C, UInt8(ascii: "b"))
            case 0x0C: out.append(0x5C, UInt8(ascii: "f"))
            case 0x0A: out.append(0x5C, UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C, UInt8(ascii: "r"))
            case 0x09: out.append(0x5C, UInt8(ascii: "t"))
            default:
                let hex: StaticString = "0123456789abcdef"
                out.append("\\u00")
                out.append(hex.utf8Start[Int(c >> 4)], hex.utf8Start[Int(c & 0xF)])
            }
        }
        if runStart < bytes.count { out.append(UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }
}
