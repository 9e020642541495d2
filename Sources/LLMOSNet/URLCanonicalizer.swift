import CCurl

/// URLs made canonical with libcurl's URL API (curl_url_*), plus what that API leaves undone.
///
/// libcurl 7.88's parser already: lowercases the scheme; normalizes IPv4 literals in decimal,
/// octal, hex and short forms (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) to a dotted quad;
/// compresses some IPv6 literals (only when the result is shorter); decodes %XX in the host;
/// removes dot segments from the path; fills in the default port on request; rejects bad ports,
/// spaces and control characters.
///
/// It does not: lowercase the host; refuse user info (`http://allowed@evil/` parses with host
/// `evil`); refuse schemes other than http(s) (file, gopher, dict… are all its own); refuse
/// `http:///evil` or `http:/evil` (it reads host `evil`); strip a trailing dot; reject a host that
/// ends in a number but is no valid IPv4 address (`08.0.0.1`, `4294967296`, `1.2.3.4.5` stay names,
/// and the system resolver may read them as numbers its own way); map `[::ffff:a.b.c.d]` to IPv4;
/// write `[::FFFF:7f00:1]` canonically; convert IDN names (CURLU_PUNYCODE depends on the locale here).
/// All of that is done, or refused, below.
enum URLCanonicalizer {
    static let maximumLength = 8192

    static func canonicalize(_ raw: String) throws(FetchError) -> CanonicalURL {
        let prepared = try prepare(raw, reference: false)
        let handle = try Handle()
        try handle.set(prepared, original: raw)
        return try finish(handle, original: raw)
    }

    static func resolve(_ reference: String, against base: CanonicalURL) throws(FetchError) -> CanonicalURL {
        let trimmed = reference.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { throw FetchError(.invalidURL, "an empty Location") }
        let prepared = try prepare(trimmed, reference: true)
        let handle = try Handle()
        try handle.set(base.url, original: base.url)
        try handle.set(prepared, original: trimmed)
        return try finish(handle, original: trimmed)
    }

    /// Byte checks on the text before libcurl sees it: no control characters; an authority
    /// exactly after `scheme://` (or `//` in a reference); non-ASCII and spaces outside the
    /// authority percent-encoded; in the authority, refused.
    static func prepare(_ raw: String, reference: Bool) throws(FetchError) -> String {
        let bytes = Array(raw.utf8)
        guard !bytes.isEmpty else { throw FetchError(.invalidURL, "an empty URL") }
        guard bytes.count <= maximumLength else { throw FetchError(.invalidURL, "a URL longer than \(maximumLength) bytes") }
        if let control = bytes.first(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw FetchError(.invalidURL, "the URL contains a control character (0x\(String(control, radix: 16))): \(quoted(raw))")
        }
        // The scheme, if any: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
        var index = 0
        var hasScheme = false
        if let first = bytes.first, isAlpha(first) {
            var i = 1
            while i < bytes.count, isAlpha(bytes[i]) || isDigit(bytes[i]) || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: ".") { i += 1 }
            if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                hasScheme = true
                let scheme = String(decoding: bytes[0..<i], as: UTF8.self).lowercased()
                guard scheme == "http" || scheme == "https" else {
                    throw FetchError(.invalidURL, "only http and https URLs are fetched; \(scheme): is refused (\(quoted(raw)))")
                }
                index = i + 1
            }
        }
        if !hasScheme && !reference {
            throw FetchError(.invalidURL, "\(quoted(raw)) is not an absolute http(s) URL")
        }
        let slashes = bytes[index...].prefix { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") }.count
        if hasScheme || slashes >= 2 {
            guard slashes == 2, bytes[index] == UInt8(ascii: "/"), bytes[index + 1] == UInt8(ascii: "/") else {
                throw FetchError(.invalidURL, "expected scheme://host in \(quoted(raw)): exactly two slashes, then a host")
            }
            index += 2
            let authorityEnd = bytes[index...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.count
            let authority = bytes[index..<authorityEnd]
            guard !authority.isEmpty else { throw FetchError(.invalidURL, "the URL has an empty host: \(quoted(raw))") }
            if authority.contains(where: { $0 >= 0x80 }) {
                throw FetchError(.invalidURL, "internationalized host names are not fetched; give the host in its ASCII (xn--) form: \(quoted(raw))")
            }
            if authority.contains(UInt8(ascii: " ")) || authority.contains(UInt8(ascii: "\\")) {
                throw FetchError(.invalidURL, "the host contains a space or a backslash: \(quoted(raw))")
            }
            if authority.contains(UInt8(ascii: "@")) { throw userInfo(raw) }
            index = authorityEnd
        }
        var out = Array(bytes[..<index])
        out.reserveCapacity(bytes.count + 16)
        for byte in bytes[index...] {
            if byte >= 0x80 || byte == UInt8(ascii: " ") {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0xF))
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func userInfo(_ raw: String) -> FetchError {
        FetchError(.invalidURL, "URLs with user info are refused (\(quoted(raw))): what comes before @ is not the host, and credentials belong in headers")
    }

    /// From libcurl's parse to the canonical URL: the checks on each part, then the URL rebuilt
    /// from the canonical parts and parsed once more to make sure libcurl reads it the same way.
    static func finish(_ handle: Handle, original: String) throws(FetchError) -> CanonicalURL {
        let canonical = try parts(handle, original: original)
        try handle.setPart(CURLUPART_HOST, canonical.address.map(bracketed) ?? canonical.host, original: original)
        try handle.setPart(CURLUPART_PORT, String(canonical.port), original: original)
        try handle.setPart(CURLUPART_FRAGMENT, nil, original: original)
        guard let url = handle.get(CURLUPART_URL) else { throw FetchError(.invalidURL, "libcurl cannot write \(quoted(original)) back") }

        let again = try Handle()
        try again.set(url, original: original)
        let check = try parts(again, original: original)
        guard check.scheme == canonical.scheme, check.host == canonical.host, check.port == canonical.port, check.address == canonical.address,
              again.get(CURLUPART_URL) == url else {
            throw FetchError(.invalidURL, "\(quoted(original)) has no stable canonical form")
        }
        return CanonicalURL(url: url, scheme: canonical.scheme, host: canonical.host, port: canonical.port, address: canonical.address)
    }

    private static func parts(_ handle: Handle, original: String) throws(FetchError) -> (scheme: String, host: String, port: Int, address: String?) {
        guard let scheme = handle.get(CURLUPART_SCHEME)?.lowercased(), scheme == "http" || scheme == "https" else {
            let scheme = handle.get(CURLUPART_SCHEME) ?? "?"
            throw FetchError(.invalidURL, "only http and https URLs are fetched; \(scheme): is refused (\(quoted(original)))")
        }
        if handle.has(CURLUPART_USER) || handle.has(CURLUPART_PASSWORD) || handle.has(CURLUPART_OPTIONS) {
            throw userInfo(original)
        }
        if handle.has(CURLUPART_ZONEID) {
            throw FetchError(.invalidURL, "IPv6 zone IDs are refused (\(quoted(original)))")
        }
        guard let rawHost = handle.get(CURLUPART_HOST), !rawHost.isEmpty else {
            throw FetchError(.invalidURL, "the URL has an empty host: \(quoted(original))")
        }
        let (host, address) = try canonicalHost(rawHost, original: original)
        guard let portText = handle.get(CURLUPART_PORT, flags: UInt32(CURLU_DEFAULT_PORT)), let port = Int(portText), port > 0, port <= 65535 else {
            throw FetchError(.invalidURL, "the URL's port must be between 1 and 65535: \(quoted(original))")
        }
        return (scheme, host, port, address)
    }

    /// A host as libcurl parsed it (brackets around IPv6) to its canonical form, and its
    /// address when it is an IP literal.
    static func canonicalHost(_ raw: String, original: String) throws(FetchError) -> (host: String, address: String?) {
        if raw.hasPrefix("[") {
            guard raw.hasSuffix("]"), raw.count > 2 else { throw FetchError(.invalidURL, "a malformed IPv6 literal in \(quoted(original))") }
            guard let (text, _) = IPAddress.canonicalIPv6(String(raw.dropFirst().dropLast())) else {
                throw FetchError(.invalidURL, "\(raw) is not a valid IPv6 address (\(quoted(original)))")
            }
            return (text, text)
        }
        guard raw.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw FetchError(.invalidURL, "internationalized host names are not fetched; give the host in its ASCII (xn--) form: \(quoted(original))")
        }
        var host = raw.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty else { throw FetchError(.invalidURL, "the URL has an empty host: \(quoted(original))") }
        if IPAddress.endsInNumber(host) {
            guard let v4 = IPAddress.parseIPv4(host) else {
                throw FetchError(.invalidURL, "\(raw) looks like an IPv4 address but is not a valid one (\(quoted(original)))")
            }
            return (v4, v4)
        }
        guard host.utf8.count <= 253 else { throw FetchError(.invalidURL, "a host name longer than 253 characters") }
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63,
                  label.utf8.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) else {
                throw FetchError(.invalidURL, "\(quoted(raw)) is not a valid host name (letters, digits, - and _ between dots) in \(quoted(original))")
            }
        }
        return (host, nil)
    }

    /// One CURLU handle, freed with the value.
    final class Handle {
        let pointer: OpaquePointer

        init() throws(FetchError) {
            guard let pointer = curl_url() else { throw FetchError(.internal, "curl_url() failed") }
            self.pointer = pointer
        }

        deinit { curl_url_cleanup(pointer) }

        func set(_ url: String, original: String) throws(FetchError) {
            try setPart(CURLUPART_URL, url, original: original)
        }

        func setPart(_ part: CURLUPart, _ value: String?, original: String) throws(FetchError) {
            let code = value.map { curl_url_set(pointer, part, $0, 0) } ?? curl_url_set(pointer, part, nil, 0)
            if code == CURLUE_NO_HOST { throw FetchError(.invalidURL, "the URL has an empty host: \(quoted(original))") }
            guard code == CURLUE_OK else {
                throw FetchError(.invalidURL, "\(quoted(original)) is not a valid URL: \(String(cString: curl_url_strerror(code)))")
            }
        }

        func get(_ part: CURLUPart, flags: UInt32 = 0) -> String? {
            var out: UnsafeMutablePointer<CChar>?
            guard curl_url_get(pointer, part, &out, flags) == CURLUE_OK, let out else { return nil }
            defer { curl_free(out) }
            return String(cString: out)
        }

        /// Whether the part is present at all (an empty user, as in `http://@host/`, is present).
        func has(_ part: CURLUPart) -> Bool {
            var out: UnsafeMutablePointer<CChar>?
            let code = curl_url_get(pointer, part, &out, 0)
            if let out { curl_free(out) }
            return code == CURLUE_OK
        }
    }
}

func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
func hexDigit(_ n: UInt8) -> UInt8 { n < 10 ? UInt8(ascii: "0") + n : UInt8(ascii: "A") + n - 10 }

extension String {
    func trimmingASCIIWhitespace() -> String {
        let bytes = Array(utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }), let end = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }
}
