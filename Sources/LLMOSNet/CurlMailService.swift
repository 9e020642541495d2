import CCurl
import Foundation
import LLMOSJSON
import LLMOSKernel

/// `net.mail.send` (docs/SYSCALLS.md) with libcurl's SMTP: the kernel's side of the mail
/// driver. The message is composed here from checked fields (no header a caller can
/// inject), the server is put to the broker as `net.connect smtp://host:port` before any
/// connection, and the address libcurl is about to connect to is checked again at that
/// moment (as net.fetch does). Nothing here logs: the audit record the authorizer writes
/// names only the server — never recipients, the message or the password.
extension CurlNetworkService: MailService {
    public func sendMail(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue {
        let mail = try MailRequest(request)
        let authorizer: FetchAuthorizer = { target in
            let decision = authorize(AccessRequest(kind: .netConnect, resource: target.resource, address: target.address, driver: ""))
            return decision.verdict == .allow ? .allow : .deny("net.connect \(target.resource)\(target.address.map { " (address \($0))" } ?? "") denied by \(decision.rule)")
        }
        // Before connecting: the server by name (and address, when it is a literal).
        let before = FetchTarget(stage: .beforeConnect, scheme: mail.scheme, host: mail.host, port: mail.port, address: mail.address, url: mail.resource)
        if let reason = NetFetcher.refusal(before) ?? NetFetcher.deny(authorizer(before)) {
            throw LLMOSError(.permissionDenied, "net.mail.send: \(reason)")
        }
        let transfer = MailTransfer(mail: mail, authorizer: authorizer)
        try transfer.send()
        return ["server": .string(mail.resource), "accepted": .array(mail.recipients.map(JSONValue.string)),
                "message_id": .string(mail.messageID)]
    }
}

/// A `net.mail.send` request, checked field by field.
struct MailRequest {
    static let fields = ["server", "from", "to", "cc", "bcc", "reply_to", "subject", "body", "username", "password", "tls", "timeout_ms"]
    static let maxRecipients = 100
    static let maxBodyBytes = 10 << 20

    var scheme: String
    var host: String
    var port: Int
    var address: String?
    var from: String
    var to: [String]
    var cc: [String]
    var bcc: [String]
    var replyTo: String?
    var subject: String
    var body: String
    var username: String?
    var password: String?
    var tls: String
    var timeoutMs: Int
    var messageID: String

    var resource: String { "\(scheme)://\(bracketed(host)):\(port)" }
    var recipients: [String] { to + cc + bcc }

    init(_ request: JSONValue) throws(LLMOSError) {
        guard let object = request.objectValue else { throw LLMOSError(.invalidArgument, "net.mail.send: the request must be an object") }
        if let unknown = object.keys.first(where: { !Self.fields.contains($0) }) {
            throw LLMOSError(.invalidArgument, "net.mail.send: unknown field \"\(unknown)\" (known: \(Self.fields.joined(separator: ", ")))")
        }
        func string(_ field: String, required: Bool = true) throws(LLMOSError) -> String? {
            guard let value = request[field], !value.isNull else {
                if required { throw LLMOSError(.invalidArgument, "net.mail.send: expected a string field \"\(field)\"") }
                return nil
            }
            guard let text = value.stringValue else { throw LLMOSError(.invalidArgument, "net.mail.send: \(field) must be a string") }
            return text
        }
        func addresses(_ field: String) throws(LLMOSError) -> [String] {
            guard let value = request[field], !value.isNull else { return [] }
            let items: [JSONValue] = value.stringValue != nil ? [value] : (value.arrayValue ?? [.null])
            var result: [String] = []
            for (i, item) in items.enumerated() {
                guard let text = item.stringValue else { throw LLMOSError(.invalidArgument, "net.mail.send: \(field)[\(i)] must be an address string") }
                try Self.checkAddress(text, field: "\(field)[\(i)]")
                result.append(text)
            }
            return result
        }

        let server = try string("server")!
        (scheme, host, port, address) = try Self.parseServer(server)
        from = try string("from")!
        try Self.checkAddress(from, field: "from")
        to = try addresses("to")
        cc = try addresses("cc")
        bcc = try addresses("bcc")
        guard !(to + cc + bcc).isEmpty else { throw LLMOSError(.invalidArgument, "net.mail.send: no recipients: give at least one address in to, cc or bcc") }
        guard (to + cc + bcc).count <= Self.maxRecipients else {
            throw LLMOSError(.invalidArgument, "net.mail.send: \((to + cc + bcc).count) recipients; at most \(Self.maxRecipients)")
        }
        replyTo = try string("reply_to", required: false)
        if let replyTo { try Self.checkAddress(replyTo, field: "reply_to") }
        subject = try string("subject")!
        // Bytes, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        guard !subject.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }), subject.utf8.count <= 900 else {
            throw LLMOSError(.invalidArgument, "net.mail.send: subject must be one line (no CR, LF or NUL) of at most 900 bytes")
        }
        body = try string("body")!
        guard body.utf8.count <= Self.maxBodyBytes else {
            throw LLMOSError(.invalidArgument, "net.mail.send: body is \(body.utf8.count) bytes; at most \(Self.maxBodyBytes)")
        }
        guard !body.utf8.contains(0) else { throw LLMOSError(.invalidArgument, "net.mail.send: body contains a NUL byte") }
        username = try string("username", required: false)
        password = try string("password", required: false)
        if password != nil && (username ?? "").isEmpty {
            throw LLMOSError(.invalidArgument, "net.mail.send: a password needs a username")
        }
        tls = try string("tls", required: false) ?? (password != nil && scheme == "smtp" ? "required" : "try")
        guard ["none", "try", "required"].contains(tls) else {
            throw LLMOSError(.invalidArgument, "net.mail.send: tls must be none, try (STARTTLS when offered) or required, got \"\(tls)\"")
        }
        if password != nil && scheme == "smtp" && tls != "required" {
            throw LLMOSError(.invalidArgument, "net.mail.send: a password is sent only over TLS: use smtps://, or tls \"required\" for STARTTLS")
        }
        timeoutMs = Int(clamping: request["timeout_ms"]?.int64Value ?? 30_000)
        guard (1...300_000).contains(timeoutMs) else { throw LLMOSError(.invalidArgument, "net.mail.send: timeout_ms must be between 1 and 300000") }
        let domain = from.split(separator: "@").last.map(String.init) ?? "llmos"
        messageID = "<\(UUID().uuidString.lowercased())@\(domain)>"
    }

    /// `smtp://host[:port]` or `smtps://host[:port]` (default ports 25 and 465), nothing else.
    static func parseServer(_ server: String) throws(LLMOSError) -> (String, String, Int, String?) {
        let lower = server.lowercased()
        let scheme: String
        if lower.hasPrefix("smtp://") { scheme = "smtp" } else if lower.hasPrefix("smtps://") { scheme = "smtps" } else {
            throw LLMOSError(.invalidArgument, "net.mail.send: server must be smtp://host[:port] or smtps://host[:port], got \"\(server.prefix(200))\"")
        }
        var rest = Substring(server.dropFirst(scheme.count + 3))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains(where: { "/?#@ \\".contains($0) }) else {
            throw LLMOSError(.invalidArgument, "net.mail.send: server must be just \(scheme)://host[:port] (no user, path or query), got \"\(server.prefix(200))\"")
        }
        var hostText = rest
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw LLMOSError(.invalidArgument, "net.mail.send: an unclosed [ in the server \"\(server.prefix(200))\"")
            }
            hostText = rest[...close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw LLMOSError(.invalidArgument, "net.mail.send: expected :port after ] in \"\(server.prefix(200))\"") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            hostText = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        var port = scheme == "smtps" ? 465 : 25
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw LLMOSError(.invalidArgument, "net.mail.send: the server's port must be between 1 and 65535 (\"\(server.prefix(200))\")")
            }
            port = p
        }
        do {
            let (host, address) = try URLCanonicalizer.canonicalHost(String(hostText), original: server)
            return (scheme, host, port, address)
        } catch {
            throw LLMOSError(.invalidArgument, "net.mail.send: server: \(error.message)")
        }
    }

    /// A plain address (`name@example.org`): no display name, no comments, nothing that
    /// could end a header or an SMTP command.
    static func checkAddress(_ text: String, field: String) throws(LLMOSError) {
        let bytes = Array(text.utf8)
        let at = bytes.lastIndex(of: UInt8(ascii: "@"))
        let specials = Set("<>()[],;:\\\" \t\r\n".utf8)
        let ok = bytes.count <= 254 && at.map { at in
            let local = bytes[..<at], domain = bytes[(at + 1)...]
            return !local.isEmpty && local.count <= 64 && local.allSatisfy { $0 > 0x20 && $0 < 0x7F && !specials.contains($0) && $0 != UInt8(ascii: "@") }
                && !domain.isEmpty && domain.allSatisfy { c in
                    (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
                } && domain.first != UInt8(ascii: ".") && domain.last != UInt8(ascii: ".")
        } ?? false
        guard ok else {
            throw LLMOSError(.invalidArgument, "net.mail.send: \(field): \"\(text.prefix(100))\" is not a plain address (local@domain, ASCII, no display name, spaces, <, > or line breaks)")
        }
    }

    /// The RFC 5322 message, CRLF line ends. The body goes as 7bit when it is short-lined
    /// ASCII, else base64; a non-ASCII subject as an RFC 2047 encoded word.
    func message() -> [UInt8] {
        var headers: [String] = []
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S +0000", &parts)
        headers.append("Date: " + buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        headers.append("From: \(from)")
        if !to.isEmpty { headers.append("To: " + to.joined(separator: ", ")) }
        if !cc.isEmpty { headers.append("Cc: " + cc.joined(separator: ", ")) }
        if let replyTo { headers.append("Reply-To: \(replyTo)") }
        let asciiSubject = subject.utf8.allSatisfy { $0 < 0x80 }
        headers.append("Subject: " + (asciiSubject ? subject : "=?UTF-8?B?\(Self.base64(Array(subject.utf8)))?="))
        headers.append("Message-ID: \(messageID)")
        headers.append("MIME-Version: 1.0")
        headers.append("Content-Type: text/plain; charset=utf-8")
        let normalized = body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let lines = normalized.split(separator: "\n", omittingEmptySubsequences: false)
        let plain = normalized.utf8.allSatisfy { $0 < 0x80 } && lines.allSatisfy { $0.utf8.count <= 998 }
        var text = headers.joined(separator: "\r\n")
        if plain {
            text += "\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + lines.joined(separator: "\r\n")
        } else {
            let encoded = Self.base64(Array(lines.joined(separator: "\r\n").utf8))
            var wrapped: [Substring] = []
            var index = encoded.startIndex
            while index < encoded.endIndex {
                let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
                wrapped.append(encoded[index..<end])
                index = end
            }
            text += "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrapped.joined(separator: "\r\n")
        }
        return Array((text + "\r\n").utf8)
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

/// One SMTP session with libcurl, on the calling thread.
final class MailTransfer {
    let mail: MailRequest
    let authorizer: FetchAuthorizer
    var refusals: [(address: String, reason: String)] = []
    var connected: [String] = []

    init(mail: MailRequest, authorizer: @escaping FetchAuthorizer) {
        self.mail = mail
        self.authorizer = authorizer
    }

    func send() throws(LLMOSError) {
        guard let easy = curl_easy_init() else { throw LLMOSError(.internalError, "net.mail.send: curl_easy_init() failed") }
        defer { curl_easy_cleanup(easy) }
        var message = mail.message()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var recipients: UnsafeMutablePointer<curl_slist>?
        for address in mail.recipients { recipients = curl_slist_append(recipients, "<\(address)>") }
        defer { curl_slist_free_all(recipients) }

        var optionFailures: [String] = []
        let code: CURLcode = message.withUnsafeMutableBytes { raw -> CURLcode in
            // libcurl's default read function freads CURLOPT_READDATA: a FILE over the message.
            guard let file = fmemopen(raw.baseAddress, raw.count, "r") else { return CURLE_READ_ERROR }
            defer { fclose(file) }
            let me = Unmanaged.passUnretained(self).toOpaque()
            var failures: [String] = []
            func check(_ code: CURLcode, _ what: String) {
                if code != CURLE_OK { failures.append("\(what): \(String(cString: curl_easy_strerror(code)))") }
            }
            // The name, not the address: TLS checks the certificate against it (the address
            // libcurl resolves is checked in openSocket).
            let url = "\(mail.scheme)://\(bracketed(mail.host)):\(mail.port)"
            check(llmos_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer), "ERRORBUFFER")
            check(llmos_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
            check(llmos_curl_setopt_string(easy, CURLOPT_URL, url), "URL")
            check(llmos_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps"), "PROTOCOLS_STR")
            check(llmos_curl_setopt_string(easy, CURLOPT_PROXY, ""), "PROXY")
            check(llmos_curl_setopt_long(easy, CURLOPT_NETRC, Int(CURL_NETRC_IGNORED.rawValue)), "NETRC")
            check(llmos_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, min(mail.timeoutMs, 10_000)), "CONNECTTIMEOUT_MS")
            check(llmos_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, mail.timeoutMs), "TIMEOUT_MS")
            check(llmos_curl_setopt_string(easy, CURLOPT_MAIL_FROM, "<\(mail.from)>"), "MAIL_FROM")
            check(llmos_curl_setopt_slist(easy, CURLOPT_MAIL_RCPT, recipients), "MAIL_RCPT")
            check(llmos_curl_setopt_long(easy, CURLOPT_UPLOAD, 1), "UPLOAD")
            check(llmos_curl_setopt_pointer(easy, CURLOPT_READDATA, UnsafeMutableRawPointer(file)), "READDATA")
            check(llmos_curl_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(raw.count)), "INFILESIZE_LARGE")
            let ssl: curl_usessl = mail.tls == "required" ? CURLUSESSL_ALL : mail.tls == "try" ? CURLUSESSL_TRY : CURLUSESSL_NONE
            check(llmos_curl_setopt_long(easy, CURLOPT_USE_SSL, Int(ssl.rawValue)), "USE_SSL")
            if let username = mail.username { check(llmos_curl_setopt_string(easy, CURLOPT_USERNAME, username), "USERNAME") }
            if let password = mail.password { check(llmos_curl_setopt_string(easy, CURLOPT_PASSWORD, password), "PASSWORD") }
            check(llmos_curl_setopt_opensocket_function(easy) { context, purpose, address in
                Unmanaged<MailTransfer>.fromOpaque(context!).takeUnretainedValue().openSocket(purpose, address)
            }, "OPENSOCKETFUNCTION")
            check(llmos_curl_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, me), "OPENSOCKETDATA")
            guard failures.isEmpty else {
                optionFailures = failures
                return CURLE_FAILED_INIT
            }
            return withExtendedLifetime(self) { curl_easy_perform(easy) }
        }
        guard code != CURLE_OK else { return }
        if !optionFailures.isEmpty {
            throw LLMOSError(.internalError, "net.mail.send: libcurl refused an option: \(optionFailures.joined(separator: "; "))")
        }
        let detail = String(cString: errorBuffer).isEmpty ? String(cString: curl_easy_strerror(code)) : String(cString: errorBuffer)
        let server = mail.resource
        if !refusals.isEmpty && connected.isEmpty {
            throw LLMOSError(.permissionDenied, "net.mail.send: connection to \(server) refused at connect — " + refusals.map { "\($0.address): \($0.reason)" }.joined(separator: "; "))
        }
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST: throw LLMOSError(.unavailable, "net.mail.send: cannot resolve \(mail.host)")
        case CURLE_COULDNT_CONNECT: throw LLMOSError(.unavailable, "net.mail.send: no SMTP server at \(server) (\(detail))")
        case CURLE_OPERATION_TIMEDOUT: throw LLMOSError(.timeout, "net.mail.send: \(server) did not finish within \(mail.timeoutMs) ms (timeout_ms)")
        case CURLE_LOGIN_DENIED: throw LLMOSError(.permissionDenied, "net.mail.send: \(server) refused the login of \(mail.username ?? "?") (check the username and password)")
        case CURLE_USE_SSL_FAILED: throw LLMOSError(.unavailable, "net.mail.send: \(server) does not offer STARTTLS, and tls is \"required\"")
        default: throw LLMOSError(.unavailable, "net.mail.send: sending through \(server) failed: \(detail)")
        }
    }

    /// The address libcurl is about to connect to, authorized before the socket exists.
    func openSocket(_ purpose: curlsocktype, _ address: UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t {
        guard purpose == CURLSOCKTYPE_IPCXN, let address else {
            refusals.append(("?", "not an outgoing IP connection"))
            return CURL_SOCKET_BAD
        }
        var buffer = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        guard llmos_curl_sockaddr_text(address, &buffer, buffer.count, &port) != 0 else {
            refusals.append(("?", "not an IP address"))
            return CURL_SOCKET_BAD
        }
        let ip = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard Int(port) == mail.port else {
            refusals.append((ip, "port \(port) is not the checked port \(mail.port)"))
            return CURL_SOCKET_BAD
        }
        let target = FetchTarget(stage: .connect, scheme: mail.scheme, host: mail.host, port: mail.port, address: ip, url: mail.resource)
        if let reason = NetFetcher.refusal(target) ?? NetFetcher.deny(authorizer(target)) {
            refusals.append((ip, reason))
            return CURL_SOCKET_BAD
        }
        let fd = socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
        if fd >= 0 { connected.append(ip) }
        return fd
    }
}
