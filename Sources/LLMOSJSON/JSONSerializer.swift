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
        var out: [UInt8] = []
        out.reserveCapacity(64)
        if pretty {
            JSONWriter.writePretty(self, indent: 0, into: &out)
        } else {
            JSONWriter.write(self, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact JSON text as UTF-8.
    public func serialize(into bytes: inout [UInt8]) {
        JSONWriter.write(self, into: &bytes)
    }
}

enum JSONWriter {
    static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: append("null", to: &out)
        case .bool(let b): append(b ? "true" : "false", to: &out)
        case .int(let i): writeInt(i, into: &out)
        case .double(let d): writeDouble(d, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let elements):
            out.append(0x5B)
            var first = true
            for element in elements {
                if !first { out.append(0x2C) }
                first = false
                write(element, into: &out)
            }
            out.append(0x5D)
        case .object(let object):
            out.append(0x7B)
            var first = true
            for (key, member) in object {
                if !first { out.append(0x2C) }
                first = false
                writeString(key, into: &out)
                out.append(0x3A)
                write(member, into: &out)
            }
            out.append(0x7D)
        }
    }

    static func writePretty(_ value: JSONValue, indent: Int, into out: inout [UInt8]) {
        switch value {
        case .array(let elements) where !elements.isEmpty:
            out.append(0x5B)
            for (i, element) in elements.enumerated() {
                out.append(contentsOf: i == 0 ? [0x0A] : [0x2C, 0x0A])
                writeIndent(indent + 1, into: &out)
                writePretty(element, indent: indent + 1, into: &out)
            }
            out.append(0x0A)
            writeIndent(indent, into: &out)
            out.append(0x5D)
        case .object(let object) where !object.isEmpty:
            out.append(0x7B)
            var first = true
            for (key, member) in object {
                out.append(contentsOf: first ? [0x0A] : [0x2C, 0x0A])
                first = false
                writeIndent(indent + 1, into: &out)
                writeString(key, into: &out)
                out.append(contentsOf: [0x3A, 0x20])
                writePretty(member, indent: indent + 1, into: &out)
            }
            out.append(0x0A)
            writeIndent(indent, into: &out)
            out.append(0x7D)
        default:
            write(value, into: &out)
        }
    }

    @inline(__always)
    static func writeIndent(_ level: Int, into out: inout [UInt8]) {
        out.append(contentsOf: repeatElement(0x20, count: 2 * level))
    }

    @inline(__always)
    static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    static func writeInt(_ value: Int64, into out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(value) &+ 0x30)
            return
        }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits and a sign
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                i -= 1
                buffer[i] = 0x2D
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }

    static func writeDouble(_ value: Double, into out: inout [UInt8]) {
        guard value.isFinite else {
            append("null", to: &out)
            return
        }
        // Shortest round-trip digits; the forms it produces ("1.5", "1e-07", "1e+16", "-0.0")
        // are all valid JSON numbers.
        out.append(contentsOf: value.description.utf8)
    }

    static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(0x22)
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for i in 0..<bytes.count {
                let c = bytes[i]
                guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
                runStart = i + 1
                switch c {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                default:
                    let hexDigits: StaticString = "0123456789abcdef"
                    let h = hexDigits.utf8Start
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, h[Int(c >> 4)], h[Int(c & 0xF)]])
                }
            }
            if runStart < bytes.count {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
            }
        }
        out.append(0x22)
    }
}
