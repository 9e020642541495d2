// The network service: net.fetch through libcurl.
//
// The kernel must not depend on libcurl, and this module does not know the kernel: it asks
// an authorizer closure (`FetchAuthorizer`) about every place it is about to go, and the kernel
// adapts `FetchTarget` to its own `AccessRequest(kind: .netConnect, resource: target.resource,
// address: target.address, ...)` and its `Decision` back to a `FetchVerdict`.

import CCurl
import Foundation

// MARK: - The system call's JSON shapes

/// `net.fetch`, as the kernel exposes it to drivers through `host->syscall` (the kernel maps
/// the JSON onto `FetchRequest` / `FetchResponse` / `FetchError`; this module has no JSON type).
///
/// Arguments:
///
///     {
///       "url": "https://example.com/a?b=1",     // required; http or https only
///       "method": "GET",                          // optional: GET (default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS
///       "headers": {"Accept": "text/plain"},      // optional: name -> value
///       "body": "...",                            // optional: a string, sent as its UTF-8 bytes (not with GET/HEAD)
///       "max_bytes": 8388608,                     // optional: response body cap (default 8 MiB) -> FetchRequest.maxResponseBytes
///       "truncate": false,                        // optional: true cuts the body at max_bytes instead of failing with too_large
///       "timeout_ms": 30000                       // optional: total time for the whole fetch, redirects included
///     }
///
/// Result:
///
///     {
///       "status": 200,
///       "url": "https://example.com:443/a?b=1",   // FetchResponse.finalURL (canonical: explicit port, no fragment)
///       "headers": {"content-type": "text/plain"},// FetchResponse.headerFields: lowercase names, repeats joined with ", "
///       "body": "hello",                          // UTF-8 text; or base64 when the bytes are not UTF-8, with:
///       "encoding": "base64",                     //   present only for base64 bodies (FetchResponse.bodyForJSON)
///       "truncated": false,
///       "redirects": ["https://example.com:443/a"] // every URL redirected to, in order; the last is "url"
///     }
///
/// Errors: `{"code": "permission_denied", "message": "..."}` with `FetchError.code`'s raw value
/// (invalid_url, invalid_request, permission_denied, resolve_failed, connect_failed, timeout,
/// too_large, too_many_redirects, tls_failed, transfer_failed, internal) and `FetchError.message`.
public enum NetFetchJSON {}

// MARK: - Requests and responses

public struct HTTPHeader: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
    public var description: String { "\(name): \(value)" }
}

public struct FetchRequest: Sendable, Hashable {
    public static let defaultMaxResponseBytes = 8 << 20
    /// The most a caller may ask for; larger `maxResponseBytes` is an invalid request.
    public static let maximumResponseBytes = 1 << 30
    public static let maximumRequestBodyBytes = 16 << 20
    public static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    public var url: String
    /// One of `FetchRequest.methods` (case-insensitive).
    public var method: String
    /// Sent as given, in order. Framing and routing headers (Host, Content-Length,
    /// Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Expect, Proxy-*) are
    /// refused: Host in particular would reach another virtual host than the one checked.
    public var headers: [HTTPHeader]
    public var body: [UInt8]?
    /// The response body cap, enforced while the body streams in (decoded bytes: a compressed
    /// body is counted after decompression).
    public var maxResponseBytes: Int
    /// Past the cap: `false` fails with too_large; `true` keeps the first `maxResponseBytes`
    /// bytes and sets `FetchResponse.truncated`.
    public var truncate: Bool
    public var connectTimeoutMs: Int
    /// The whole fetch, every redirect included.
    public var totalTimeoutMs: Int
    /// 0 returns a redirect response as it is; past the limit is too_many_redirects.
    public var maxRedirects: Int

    public init(
        url: String, method: String = "GET", headers: [HTTPHeader] = [], body: [UInt8]? = nil,
        maxResponseBytes: Int = FetchRequest.defaultMaxResponseBytes, truncate: Bool = false,
        connectTimeoutMs: Int = 10_000, totalTimeoutMs: Int = 30_000, maxRedirects: Int = 5
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.maxResponseBytes = maxResponseBytes
        self.truncate = truncate
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.maxRedirects = maxRedirects
    }

    /// The system call's form: headers as a JSON object (sent sorted by name), body as text.
    public init(
        url: String, method: String? = nil, headerFields: [String: String], body: String? = nil,
        maxBytes: Int? = nil, truncate: Bool = false, timeoutMs: Int? = nil
    ) {
        self.init(
            url: url, method: method ?? "GET",
            headers: headerFields.sorted { $0.key < $1.key }.map { HTTPHeader($0.key, $0.value) },
            body: body.map { Array($0.utf8) },
            maxResponseBytes: maxBytes ?? FetchRequest.defaultMaxResponseBytes, truncate: truncate,
            connectTimeoutMs: min(10_000, timeoutMs ?? 10_000), totalTimeoutMs: timeoutMs ?? 30_000)
    }
}

public struct FetchResponse: Sendable, Hashable {
    public var status: Int
    /// The final response's headers, as received (names as the server spelled them).
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// The canonical URL of the last hop.
    public var finalURL: String
    /// The canonical URLs redirected to, in order (the last is `finalURL`); empty without redirects.
    public var redirects: [String]
    public var truncated: Bool
    /// The IP address the last hop was fetched from (the proxy's, with a proxy).
    public var address: String?

    public init(status: Int, headers: [HTTPHeader], body: [UInt8], finalURL: String, redirects: [String], truncated: Bool, address: String?) {
        self.status = status
        self.headers = headers
        self.body = body
        self.finalURL = finalURL
        self.redirects = redirects
        self.truncated = truncated
        self.address = address
    }

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// Lowercase names; a repeated header's values joined with ", ".
    public var headerFields: [String: String] {
        var fields: [String: String] = [:]
        for header in headers {
            let name = header.name.lowercased()
            if let existing = fields[name] { fields[name] = existing + ", " + header.value } else { fields[name] = header.value }
        }
        return fields
    }

    /// The body for the JSON result: UTF-8 text, or base64 with encoding "base64". A body cut by
    /// the cap in the middle of a UTF-8 sequence is still text (the partial character is dropped).
    public var bodyForJSON: (text: String, encoding: String?) {
        if let text = String(validating: body, as: UTF8.self) { return (text, nil) }
        if truncated {
            for drop in 1...3 where body.count >= drop {
                if let text = String(validating: body.dropLast(drop), as: UTF8.self) { return (text, nil) }
            }
        }
        return (Data(body).base64EncodedString(), "base64")
    }
}

public struct FetchError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case invalidURL = "invalid_url"
        case invalidRequest = "invalid_request"
        case permissionDenied = "permission_denied"
        case resolveFailed = "resolve_failed"
        case connectFailed = "connect_failed"
        case timeout
        case tooLarge = "too_large"
        case tooManyRedirects = "too_many_redirects"
        case tlsFailed = "tls_failed"
        case transferFailed = "transfer_failed"
        case cancelled
        case `internal`
    }

    public var code: Code
    /// For people: says what was refused or failed, and where.
    public var message: String
    /// The canonical URL of the hop that failed, when there was one.
    public var url: String?
    /// Whether any connection was opened before the failure (false for every refusal made
    /// before connecting, and for refusals at connect time: a refused socket is never opened).
    public var connected: Bool

    public init(_ code: Code, _ message: String, url: String? = nil, connected: Bool = false) {
        self.code = code
        self.message = message
        self.url = url
        self.connected = connected
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

// MARK: - Authorization

/// One place net.fetch is about to go. The authorizer is asked twice per hop:
/// `.beforeConnect` with the canonical URL's scheme, host and port (and `address` when the
/// host is an IP literal; nil for a name, which is not resolved yet), then `.connect` from
/// inside libcurl's open-socket callback with the IP address it is about to connect to — once
/// per address tried. A refusal there means the socket is never created.
///
/// An authorizer whose grants are by address should let a name pass `.beforeConnect` (or decide
/// on the name) and decide at `.connect`. `.connect` runs on the transfer's thread while
/// libcurl's timers run: it must answer promptly (resolve `ask` at `.beforeConnect`).
public struct FetchTarget: Sendable, Hashable, CustomStringConvertible {
    public enum Stage: String, Sendable, Hashable {
        case beforeConnect = "before_connect"
        case connect
    }

    public var stage: Stage
    /// "http" or "https".
    public var scheme: String
    /// Canonical: lowercase, no trailing dot, an IPv4 literal as a dotted quad, an IPv6 literal
    /// compressed and without brackets (an IPv4-mapped one in its IPv4 form).
    public var host: String
    public var port: Int
    /// The IP address (canonical text, IPv4-mapped given as IPv4): the literal host at
    /// `.beforeConnect` (nil for a name), the address being connected at `.connect`.
    public var address: String?
    /// The canonical URL of this hop.
    public var url: String
    /// The hop that redirected here, if any.
    public var redirectedFrom: String?
    /// Set at `.connect` when the connection goes to a configured proxy: then scheme, host
    /// and port are the proxy's, and `address` is the proxy's address.
    public var viaProxy: Bool

    public init(stage: Stage, scheme: String, host: String, port: Int, address: String?, url: String, redirectedFrom: String? = nil, viaProxy: Bool = false) {
        self.stage = stage
        self.scheme = scheme
        self.host = host
        self.port = port
        self.address = address
        self.url = url
        self.redirectedFrom = redirectedFrom
        self.viaProxy = viaProxy
    }

    /// `scheme://host:port`, the net.connect resource (IPv6 hosts in brackets).
    public var resource: String { "\(scheme)://\(bracketed(host)):\(port)" }

    public var description: String {
        "\(stage.rawValue) \(resource)" + (address.map { " at \($0)" } ?? "") + (viaProxy ? " (proxy)" : "")
    }
}

public enum FetchVerdict: Sendable, Hashable {
    case allow
    /// The reason is for people (the rule that refused, say) and ends up in the error message.
    case deny(String)
}

public typealias FetchAuthorizer = @Sendable (FetchTarget) -> FetchVerdict

// MARK: - The fetcher

/// Fetches over http and https with libcurl, every hop authorized (see `FetchTarget`).
///
/// - URLs are made canonical first (`NetFetcher.canonicalize`): user info refused, IP literals
///   in every numeric form reduced to their real address, names checked byte by byte.
/// - Redirects are followed here, not by libcurl: each Location is resolved against the
///   current URL, made canonical and authorized again, both stages.
/// - The address check runs in CURLOPT_OPENSOCKETFUNCTION, on the very sockaddr libcurl then
///   passes to connect(2), for every address it tries (all A/AAAA records, happy eyeballs).
///   This is the pin: there is no window between check and use, a name that resolves (or
///   re-resolves, DNS rebinding) to a refused address never gets a socket, and there is no
///   resolver of our own to disagree with libcurl's. (CURLOPT_RESOLVE would mean resolving
///   here, losing the fallback between addresses, and still trusting that nothing else opens
///   a connection.) Every hop uses a new easy handle, so no connection is ever reused
///   without passing the check.
/// - No proxy: CURLOPT_PROXY is set to "" so http_proxy / HTTPS_PROXY / ALL_PROXY in the
///   environment are ignored — a proxy would connect on our behalf to an address we never
///   see. A proxy given explicitly (`proxy:`) is authorized at `.connect` as itself.
/// - No cookies, no .netrc, no alt-svc or HSTS caches: each fetch starts from nothing.
/// - Protocols limited to http and https (CURLOPT_PROTOCOLS_STR and REDIR_PROTOCOLS_STR),
///   NOSIGNAL on, the response body capped while it streams in.
///
/// Thread-safe: each fetch has its own easy handles; `curl_global_init` runs once.
/// `fetch` blocks its thread until the transfer ends (at most `totalTimeoutMs`).
public struct NetFetcher: Sendable {
    public var authorizer: FetchAuthorizer
    /// An explicit proxy (http://host:port), or nil for none at all, whatever the environment says.
    public var proxy: String?
    public var userAgent: String

    public init(proxy: String? = nil, userAgent: String = "llmos-net.fetch/1", authorizer: @escaping FetchAuthorizer) {
        self.authorizer = authorizer
        self.proxy = proxy
        self.userAgent = userAgent
    }

    /// The canonical form of an http(s) URL, as the checks see it and libcurl receives it.
    public static func canonicalize(_ url: String) throws(FetchError) -> CanonicalURL {
        try URLCanonicalizer.canonicalize(url)
    }

    /// The canonical form of `reference` (a Location header, say) resolved against `base`.
    public static func resolve(_ reference: String, against base: CanonicalURL) throws(FetchError) -> CanonicalURL {
        try URLCanonicalizer.resolve(reference, against: base)
    }

    public func fetch(_ request: FetchRequest) throws(FetchError) -> FetchResponse {
        CurlGlobal.initialize()
        var method = request.method.uppercased()
        try Self.validate(request, method: method)
        let proxyURL: CanonicalURL?
        if let proxy {
            do { proxyURL = try URLCanonicalizer.canonicalize(proxy) } catch { throw FetchError(.invalidRequest, "the configured proxy \(proxy) is not a valid URL: \(error.message)") }
            guard proxyURL?.scheme == "http" else { throw FetchError(.invalidRequest, "the configured proxy must be an http:// URL") }
        } else {
            proxyURL = nil
        }

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(request.totalTimeoutMs))
        var current = try URLCanonicalizer.canonicalize(request.url)
        var headers = request.headers
        var body = request.body
        var redirects: [String] = []
        var previous: CanonicalURL?

        while true {
            try checkBeforeConnect(current, redirectedFrom: previous)
            let remainingMs = Self.milliseconds(clock.now.duration(to: deadline))
            guard remainingMs > 0 else {
                throw FetchError(.timeout, "no complete response within \(request.totalTimeoutMs) ms (timeout_ms), redirects included", url: current.url)
            }
            let follow = request.maxRedirects > 0
            let hop = try Transfer(
                url: current, redirectedFrom: previous?.url, method: method, headers: headers, body: body,
                cap: request.maxResponseBytes, truncate: request.truncate, followRedirects: follow,
                connectTimeoutMs: min(request.connectTimeoutMs, remainingMs), totalTimeoutMs: remainingMs,
                totalBudgetMs: request.totalTimeoutMs, proxy: proxyURL, userAgent: userAgent, authorizer: authorizer
            ).perform()

            guard follow, Transfer.redirectStatuses.contains(hop.status), let location = hop.location else {
                return FetchResponse(status: hop.status, headers: hop.headers, body: hop.body, finalURL: current.url,
                                     redirects: redirects, truncated: hop.truncated, address: hop.address)
            }
            let next = try Self.redirect(from: current, to: location, status: hop.status, after: redirects.count,
                                         maxRedirects: request.maxRedirects, method: &method, body: &body, headers: &headers)
            redirects.append(next.url)
            previous = current
            current = next
        }
    }

    /// Refusals that need no policy: the unspecified address reaches this machine whatever it is called.
    /// Refuses `current` before a socket exists: what is never fetched, then the
    /// authorizer (the capability check). Every hop, the first and each redirect.
    func checkBeforeConnect(_ current: CanonicalURL, redirectedFrom previous: CanonicalURL?) throws(FetchError) {
        let target = FetchTarget(stage: .beforeConnect, scheme: current.scheme, host: current.host, port: current.port,
                                 address: current.address, url: current.url, redirectedFrom: previous?.url)
        guard let reason = Self.refusal(target) ?? Self.deny(authorizer(target)) else { return }
        if let previous {
            throw FetchError(.permissionDenied, "redirect from \(previous.url) to \(current.url) refused: \(reason)", url: current.url)
        }
        throw FetchError(.permissionDenied, "\(current.resource) refused: \(reason)", url: current.url)
    }

    /// Whole milliseconds of a duration (rounded down).
    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// The next hop of a redirect to `location`, after `count` redirects so far, and the
    /// request it becomes: 303, and 301/302 after a POST, become a GET without a body (as
    /// browsers and curl do), 307 and 308 repeat the request as it was; credentials stay
    /// with the origin they were given for.
    static func redirect(from current: CanonicalURL, to location: String, status: Int, after count: Int, maxRedirects: Int,
                         method: inout String, body: inout [UInt8]?, headers: inout [HTTPHeader]) throws(FetchError) -> CanonicalURL {
        guard count < maxRedirects else {
            throw FetchError(.tooManyRedirects, "more than \(maxRedirects) redirects (the last from \(current.url) to \(location))", url: current.url, connected: true)
        }
        let next: CanonicalURL
        do { next = try URLCanonicalizer.resolve(location, against: current) } catch {
            throw FetchError(error.code, "redirect from \(current.url) to \(location) refused: \(error.message)", url: current.url, connected: true)
        }
        if status == 303 && method != "HEAD" || (status == 301 || status == 302) && method == "POST" {
            method = "GET"
            body = nil
            headers.removeAll { ["content-type", "content-encoding", "content-language"].contains($0.name.lowercased()) }
        }
        if next.origin != current.origin {
            headers.removeAll { ["authorization", "cookie"].contains($0.name.lowercased()) }
        }
        return next
    }

    static func refusal(_ target: FetchTarget) -> String? {
        guard let address = target.address else { return nil }
        if address == "::" || address.hasPrefix("0.") {
            return "\(address) is the unspecified address (it reaches this machine); refused whatever the grants"
        }
        return nil
    }

    static func deny(_ verdict: FetchVerdict) -> String? {
        if case .deny(let reason) = verdict { return reason }
        return nil
    }

    static func validate(_ request: FetchRequest, method: String) throws(FetchError) {
        guard FetchRequest.methods.contains(method) else {
            throw FetchError(.invalidRequest, "method \(request.method) is not one of \(FetchRequest.methods.sorted().joined(separator: ", "))")
        }
        if let body = request.body {
            if method == "GET" || method == "HEAD", !body.isEmpty {
                throw FetchError(.invalidRequest, "a \(method) request has no body; use POST or PUT")
            }
            guard body.count <= FetchRequest.maximumRequestBodyBytes else {
                throw FetchError(.tooLarge, "the request body is \(body.count) bytes; the most is \(FetchRequest.maximumRequestBodyBytes)")
            }
        }
        guard request.maxResponseBytes >= 0, request.maxResponseBytes <= FetchRequest.maximumResponseBytes else {
            throw FetchError(.invalidRequest, "max_bytes must be between 0 and \(FetchRequest.maximumResponseBytes)")
        }
        guard request.totalTimeoutMs > 0, request.totalTimeoutMs <= 600_000, request.connectTimeoutMs > 0 else {
            throw FetchError(.invalidRequest, "timeouts must be between 1 ms and 10 minutes")
        }
        guard request.maxRedirects >= 0, request.maxRedirects <= 20 else {
            throw FetchError(.invalidRequest, "max redirects must be between 0 and 20")
        }
        guard request.headers.count <= 100 else { throw FetchError(.invalidRequest, "more than 100 request headers") }
        var total = 0
        for header in request.headers {
            let name = header.name
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                throw FetchError(.invalidRequest, "header name \(quoted(name)) is not an HTTP token")
            }
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                throw FetchError(.invalidRequest, "header \(name) contains a line break or NUL (header injection)")
            }
            let lower = name.lowercased()
            if refusedRequestHeaders.contains(lower) || lower.hasPrefix("proxy-") {
                throw FetchError(.invalidRequest, "header \(name) is set by net.fetch itself and cannot be given")
            }
            total += name.utf8.count + header.value.utf8.count
        }
        guard total <= 64 << 10 else { throw FetchError(.invalidRequest, "request headers larger than 64 KiB") }
    }

    static let refusedRequestHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "expect",
    ]
}

/// An http(s) URL in canonical form: what the checks see is what libcurl is given.
public struct CanonicalURL: Sendable, Hashable, CustomStringConvertible {
    /// scheme://host:port/path?query — explicit port, no user info, no fragment.
    public var url: String
    public var scheme: String
    /// See `FetchTarget.host`.
    public var host: String
    public var port: Int
    /// The address when the host is an IP literal.
    public var address: String?

    /// `scheme://host:port`, the net.connect resource.
    public var resource: String { "\(scheme)://\(bracketed(host)):\(port)" }
    var origin: String { resource }
    public var description: String { url }
}

func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

func quoted(_ text: String) -> String {
    "\"" + text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined() + "\""
}

func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
    default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

/// `curl_global_init`, once per process, before the first easy handle.
enum CurlGlobal {
    private static let done: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()
    static func initialize() { _ = done }
}
