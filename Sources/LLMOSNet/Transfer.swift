import CCurl
#if canImport(Glibc)
import Glibc
#endif

/// One hop of a fetch: one easy handle, one request, one response. Lives on the fetching
/// thread; libcurl's callbacks reach it through an unretained pointer while `perform` runs.
final class Transfer {
    static let redirectStatuses: Set<Int> = [301, 302, 303, 307, 308]
    /// The most header bytes one response may have.
    static let headerCap = 256 << 10

    struct Result {
        var status: Int
        var headers: [HTTPHeader]
        var body: [UInt8]
        var truncated: Bool
        var location: String?
        var address: String?
    }

    let url: CanonicalURL
    let redirectedFrom: String?
    let method: String
    let requestHeaders: [HTTPHeader]
    let requestBody: [UInt8]?
    let cap: Int
    let truncate: Bool
    let followRedirects: Bool
    let connectTimeoutMs: Int
    let totalTimeoutMs: Int
    let totalBudgetMs: Int
    let proxy: CanonicalURL?
    let userAgent: String
    let authorizer: FetchAuthorizer

    // Filled by the callbacks.
    var status = 0
    var headers: [HTTPHeader] = []
    var headerBytes = 0
    var body: [UInt8] = []
    var truncated = false
    var bodyTooLarge = false
    var headersTooLarge = false
    var declaredLength: Int?
    var refusals: [(address: String, reason: String)] = []
    var connectedAddresses: [String] = []

    init(url: CanonicalURL, redirectedFrom: String?, method: String, headers: [HTTPHeader], body: [UInt8]?, cap: Int, truncate: Bool,
         followRedirects: Bool, connectTimeoutMs: Int, totalTimeoutMs: Int, totalBudgetMs: Int, proxy: CanonicalURL?, userAgent: String,
         authorizer: @escaping FetchAuthorizer) {
        self.url = url
        self.redirectedFrom = redirectedFrom
        self.method = method
        self.requestHeaders = headers
        self.requestBody = body
        self.cap = cap
        self.truncate = truncate
        self.followRedirects = followRedirects
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.totalBudgetMs = totalBudgetMs
        self.proxy = proxy
        self.userAgent = userAgent
        self.authorizer = authorizer
    }

    // The handle and what it points to, owned here (freed in deinit): `prepare` makes them,
    // `perform` (net.fetch) or a `StreamTransfer`'s multi handle (net.stream.*) drives them.
    private(set) var easy: UnsafeMutableRawPointer?
    private var errorBuffer: UnsafeMutablePointer<CChar>?
    private var headerList: UnsafeMutablePointer<curl_slist>?

    /// Streaming (net.stream.*): body bytes already handed out, which still count against `cap`.
    var drained = 0
    /// Set once the headers of the final (non-1xx) response have all arrived.
    var headersComplete = false

    deinit {
        if let easy { curl_easy_cleanup(easy) }
        errorBuffer?.deallocate()
        curl_slist_free_all(headerList)
    }

    func perform() throws(FetchError) -> Result {
        try prepare()
        let code = withExtendedLifetime(self) { curl_easy_perform(easy) }
        return try finish(code)
    }

    /// Makes the easy handle with every option set; nothing is sent yet.
    func prepare() throws(FetchError) {
        guard let easy = curl_easy_init() else { throw FetchError(.internal, "curl_easy_init() failed", url: url.url) }
        self.easy = easy
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer = errorBuffer

        let me = Unmanaged.passUnretained(self).toOpaque()
        var failures: [String] = []
        func check(_ code: CURLcode, _ what: String) {
            if code != CURLE_OK { failures.append("\(what): \(String(cString: curl_easy_strerror(code)))") }
        }

        check(llmos_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer), "ERRORBUFFER")
        check(llmos_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        check(llmos_curl_setopt_string(easy, CURLOPT_URL, url.url), "URL")
        check(llmos_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        check(llmos_curl_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS_STR")
        check(llmos_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        // "" = no proxy at all: libcurl then ignores http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY.
        check(llmos_curl_setopt_string(easy, CURLOPT_PROXY, proxy.map { "\($0.scheme)://\(bracketed($0.host)):\($0.port)" } ?? ""), "PROXY")
        check(llmos_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1), "FRESH_CONNECT")
        check(llmos_curl_setopt_long(easy, CURLOPT_FORBID_REUSE, 1), "FORBID_REUSE")
        check(llmos_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs), "CONNECTTIMEOUT_MS")
        check(llmos_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, totalTimeoutMs), "TIMEOUT_MS")
        check(llmos_curl_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, ""), "ACCEPT_ENCODING")
        check(llmos_curl_setopt_long(easy, CURLOPT_NETRC, Int(CURL_NETRC_IGNORED.rawValue)), "NETRC")
        check(llmos_curl_setopt_string(easy, CURLOPT_USERAGENT, userAgent), "USERAGENT")

        check(llmos_curl_setopt_write_function(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().receiveBody(data, size * count)
        }, "WRITEFUNCTION")
        check(llmos_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, me), "WRITEDATA")
        check(llmos_curl_setopt_write_function(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().receiveHeader(data, size * count)
        }, "HEADERFUNCTION")
        check(llmos_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, me), "HEADERDATA")
        check(llmos_curl_setopt_opensocket_function(easy) { context, purpose, address in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().openSocket(purpose, address)
        }, "OPENSOCKETFUNCTION")
        check(llmos_curl_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, me), "OPENSOCKETDATA")

        // The method and the body.
        var lines = requestHeaders.map { "\($0.name): \($0.value)" }
        let hasContentType = requestHeaders.contains { $0.name.lowercased() == "content-type" }
        switch method {
        case "GET": check(llmos_curl_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
        case "HEAD": check(llmos_curl_setopt_long(easy, CURLOPT_NOBODY, 1), "NOBODY")
        default:
            if method != "POST" { check(llmos_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method), "CUSTOMREQUEST") }
            if method == "POST" || requestBody != nil {
                let body = requestBody ?? []
                check(llmos_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE_LARGE")
                // COPYPOSTFIELDS copies POSTFIELDSIZE bytes (any bytes, NULs included); never a NULL pointer.
                var bytes = body.isEmpty ? [0] : body
                bytes.withUnsafeMutableBytes { raw in
                    check(llmos_curl_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, raw.baseAddress), "COPYPOSTFIELDS")
                }
                // No 1-second wait for a 100 Continue; no made-up form Content-Type.
                lines.append("Expect:")
                if !hasContentType { lines.append("Content-Type:") }
            }
        }
        var headerList: UnsafeMutablePointer<curl_slist>?
        for line in lines { headerList = curl_slist_append(headerList, line) }
        self.headerList = headerList
        if headerList != nil { check(llmos_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList), "HTTPHEADER") }

        guard failures.isEmpty else {
            throw FetchError(.internal, "libcurl refused an option: \(failures.joined(separator: "; "))", url: url.url)
        }
    }

    /// The outcome of the transfer once libcurl says it is over with `code`.
    func finish(_ code: CURLcode) throws(FetchError) -> Result {
        guard let easy, let errorBuffer else { throw FetchError(.internal, "the transfer was never prepared", url: url.url) }
        let curlMessage = String(cString: errorBuffer)
        let address = connectedAddresses.last

        var responseCode = 0
        if llmos_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &responseCode) == CURLE_OK, responseCode != 0 { status = responseCode }

        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && truncated) {
            let location = followRedirects && Self.redirectStatuses.contains(status) ? headers.last { $0.name.lowercased() == "location" }?.value : nil
            return Result(status: status, headers: headers, body: body, truncated: truncated, location: location, address: address)
        }

        let connected = !connectedAddresses.isEmpty
        let hopText = redirectedFrom.map { " (redirected from \($0))" } ?? ""
        if !refusals.isEmpty && connectedAddresses.isEmpty {
            let host = proxy.map { "proxy \($0.resource)" } ?? url.resource
            let reasons = refusals.map { "\($0.address): \($0.reason)" }.joined(separator: "; ")
            throw FetchError(.permissionDenied, "connection to \(host)\(hopText) refused at connect — \(reasons)", url: url.url)
        }
        if bodyTooLarge {
            let declared = declaredLength.map { " (it declares \($0) bytes)" } ?? ""
            throw FetchError(.tooLarge, "the response from \(url.url) is larger than \(cap) bytes\(declared); raise max_bytes or set truncate", url: url.url, connected: connected)
        }
        if headersTooLarge {
            throw FetchError(.tooLarge, "the response headers from \(url.url) exceed \(Self.headerCap) bytes", url: url.url, connected: connected)
        }

        var osErrno = 0
        _ = llmos_curl_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
        let detail = curlMessage.isEmpty ? String(cString: curl_easy_strerror(code)) : curlMessage
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST:
            throw FetchError(.resolveFailed, "cannot resolve host \(url.host)\(hopText)", url: url.url)
        case CURLE_COULDNT_RESOLVE_PROXY:
            throw FetchError(.resolveFailed, "cannot resolve the proxy \(proxy?.host ?? "?")", url: url.url)
        case CURLE_COULDNT_CONNECT:
            let at = proxy.map { "the proxy \($0.resource)" } ?? url.resource
            throw FetchError(.connectFailed, "no server at \(at)\(hopText) — \(Self.describe(errno: osErrno, fallback: detail))", url: url.url)
        case CURLE_OPERATION_TIMEDOUT:
            if !connected || detail.lowercased().contains("connect") && !detail.lowercased().contains("operation") {
                throw FetchError(.timeout, "could not connect to \(url.resource) within \(connectTimeoutMs) ms", url: url.url, connected: connected)
            }
            throw FetchError(.timeout, "no complete response from \(url.url) within \(totalBudgetMs) ms (timeout_ms)", url: url.url, connected: connected)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_USE_SSL_FAILED, CURLE_SSL_ENGINE_INITFAILED:
            throw FetchError(.tlsFailed, "TLS with \(url.resource) failed: \(detail)", url: url.url, connected: connected)
        case CURLE_GOT_NOTHING:
            throw FetchError(.transferFailed, "\(url.resource) closed the connection without a response", url: url.url, connected: connected)
        case CURLE_UNSUPPORTED_PROTOCOL:
            throw FetchError(.invalidURL, "only http and https URLs are fetched: \(detail)", url: url.url, connected: connected)
        default:
            throw FetchError(.transferFailed, "fetching \(url.url) failed: \(detail)", url: url.url, connected: connected)
        }
    }

    static func describe(errno: Int, fallback: String) -> String {
        switch Int32(errno) {
        case ECONNREFUSED: "connection refused"
        case ENETUNREACH: "network unreachable"
        case EHOSTUNREACH: "host unreachable"
        case ETIMEDOUT: "connection timed out"
        case ECONNRESET: "connection reset"
        case EADDRNOTAVAIL: "address not available"
        default: fallback
        }
    }

    // MARK: Callbacks (on the thread in curl_easy_perform)

    /// CURLOPT_OPENSOCKETFUNCTION: the address libcurl is about to connect to, authorized
    /// before the socket exists. CURL_SOCKET_BAD makes libcurl try its next address, or fail.
    func openSocket(_ purpose: curlsocktype, _ address: UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t {
        guard purpose == CURLSOCKTYPE_IPCXN, let address else {
            refusals.append(("?", "not an outgoing IP connection"))
            return CURL_SOCKET_BAD
        }
        var buffer = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        let family = llmos_curl_sockaddr_text(address, &buffer, buffer.count, &port)
        guard family != 0 else {
            refusals.append(("?", "not an IP address (family \(address.pointee.family))"))
            return CURL_SOCKET_BAD
        }
        let ip = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let expected = proxy ?? url
        guard Int(port) == expected.port else {
            refusals.append((ip, "port \(port) is not the checked port \(expected.port)"))
            return CURL_SOCKET_BAD
        }
        let target = FetchTarget(stage: .connect, scheme: expected.scheme, host: expected.host, port: expected.port, address: ip,
                                 url: url.url, redirectedFrom: redirectedFrom, viaProxy: proxy != nil)
        if let reason = NetFetcher.refusal(target) ?? NetFetcher.deny(authorizer(target)) {
            refusals.append((ip, reason))
            return CURL_SOCKET_BAD
        }
        let fd = socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
        if fd >= 0 { connectedAddresses.append(ip) }
        return fd
    }

    /// CURLOPT_HEADERFUNCTION: one header line at a time, the status line first; a new status
    /// line (after a 1xx) starts a new set.
    func receiveHeader(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        headerBytes += count
        guard headerBytes <= Self.headerCap else {
            headersTooLarge = true
            return 0
        }
        guard let data, count > 0 else { return count }
        var bytes = Array(UnsafeRawBufferPointer(start: data, count: count))
        while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
        if bytes.isEmpty {
            if status >= 200 { headersComplete = true }
            // The end of this response's headers: refuse a body declared too large before it arrives.
            if let declaredLength, declaredLength > cap, !truncate, !(followRedirects && Self.redirectStatuses.contains(status)), method != "HEAD" {
                bodyTooLarge = true
                return 0
            }
            return count
        }
        let line = Self.text(bytes)
        if line.hasPrefix("HTTP/") {
            headers = []
            headersComplete = false
            declaredLength = nil
            let fields = line.split(separator: " ", maxSplits: 2)
            if fields.count >= 2, let code = Int(fields[1]) { status = code }
            return count
        }
        if bytes.first == 0x20 || bytes.first == 0x09, !headers.isEmpty {
            headers[headers.count - 1].value += " " + line.trimmingASCIIWhitespace()
            return count
        }
        guard let colon = line.firstIndex(of: ":") else { return count }
        let name = String(line[..<colon])
        let value = String(line[line.index(after: colon)...]).trimmingASCIIWhitespace()
        headers.append(HTTPHeader(name, value))
        if name.lowercased() == "content-length", let length = Int(value) { declaredLength = length }
        return count
    }

    /// CURLOPT_WRITEFUNCTION: the (decoded) body as it streams in, capped. Returning less than
    /// `count` aborts the transfer (CURLE_WRITE_ERROR).
    func receiveBody(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let data, count > 0 else { return count }
        // A redirect's own body is not kept.
        if followRedirects && Self.redirectStatuses.contains(status) && headers.contains(where: { $0.name.lowercased() == "location" }) {
            return count
        }
        let room = cap - drained - body.count
        if count <= room {
            body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: count))
            return count
        }
        if truncate {
            if room > 0 { body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: room)) }
            truncated = true
        } else {
            bodyTooLarge = true
        }
        return 0
    }

    /// Header bytes as text: UTF-8 when they are, else ISO-8859-1 (each byte one character).
    static func text(_ bytes: [UInt8]) -> String {
        String(validating: bytes, as: UTF8.self) ?? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }
}
