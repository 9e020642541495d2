import CCurl

/// IP literals to their one canonical text, so that a check sees the real address however it was written.
enum IPAddress {
    /// Whether a host "ends in a number" (the WHATWG URL rule): its last label is all digits,
    /// or 0x followed by hex digits. Such a host is an IPv4 address or is invalid — never a name
    /// that the system resolver would then read as a number in its own way.
    static func endsInNumber(_ host: String) -> Bool {
        var labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last?.isEmpty == true { labels.removeLast() }
        guard let last = labels.last, !last.isEmpty else { return false }
        if last.utf8.allSatisfy(isDigit) { return true }
        let bytes = Array(last.utf8)
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "0"), bytes[1] | 0x20 == UInt8(ascii: "x") {
            return bytes[2...].allSatisfy(isHexDigit)
        }
        return false
    }

    /// An IPv4 address in any of the forms inet_aton(3) and URL parsers accept — 1 to 4 parts,
    /// each decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes
    /// (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) — as a dotted quad; nil if it is not one.
    static func parseIPv4(_ text: String) -> String? {
        var parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count > 1, parts.last?.isEmpty == true { parts.removeLast() }
        guard (1...4).contains(parts.count) else { return nil }
        var numbers: [UInt64] = []
        for part in parts {
            guard let n = parseNumber(Array(part.utf8)) else { return nil }
            numbers.append(n)
        }
        for n in numbers.dropLast() where n > 255 { return nil }
        let lastLimit = UInt64(1) << (8 * (5 - numbers.count))
        guard numbers.last! < lastLimit else { return nil }
        var value = numbers.last!
        for (i, n) in numbers.dropLast().enumerated() { value += n << (8 * (3 - i)) }
        return "\(value >> 24 & 255).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }

    private static func parseNumber(_ bytes: [UInt8]) -> UInt64? {
        guard !bytes.isEmpty else { return nil }
        var digits = bytes[...]
        var radix: UInt64 = 10
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "0"), bytes[1] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            digits = bytes[2...]
        } else if bytes.count >= 2, bytes[0] == UInt8(ascii: "0") {
            radix = 8
            digits = bytes[1...]
        }
        var value: UInt64 = 0
        for b in digits {
            let d: UInt64
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt64(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt64(b - UInt8(ascii: "A") + 10)
            default: return nil
            }
            guard d < radix else { return nil }
            value = value * radix + d
            guard value <= 0xFFFF_FFFF else { return nil }
        }
        return value
    }

    /// An IPv6 literal (no brackets, no zone) in canonical text: compressed lowercase, and an
    /// IPv4-mapped address (::ffff:a.b.c.d, in any spelling) as its IPv4 form, family 4.
    static func canonicalIPv6(_ text: String) -> (text: String, family: Int)? {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = llmos_ipv6_canonical(text, &buffer, buffer.count)
        guard family != 0 else { return nil }
        return (buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, Int(family))
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        isDigit(b) || ((b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "f"))
    }
}
