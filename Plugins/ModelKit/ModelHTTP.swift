// What both clients share: options, retries with backoff and Retry-After, error messages a
// person understands, key redaction, tool-name encoding, token estimates.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

/// Settings common to the clients (drivers fill them from their config).
public struct ClientOptions: Sendable {
    /// The whole request (a stream: its whole life), per attempt.
    public var timeoutMs: Int = 600_000
    public var connectTimeoutMs: Int = 10_000
    /// The longest wait for the next byte of a response.
    public var readTimeoutMs: Int = 60_000
    /// Further attempts after a 429 or 5xx (0: none).
    public var retries: Int = 2
    /// The first backoff; doubled each attempt, at most `maxBackoffMs`, unless Retry-After says otherwise.
    public var backoffMs: Int = 500
    public var maxBackoffMs: Int = 30_000
    /// A Retry-After longer than this is not waited for: the call fails saying when to retry.
    public var maxRetryAfterMs: Int = 60_000
    /// Appended to "no server at URL — ": what the operator should check.
    public var connectHint: String = "is the server running?"
    /// The context window when the server does not say (info).
    public var contextLength: Int?
    /// The environment variable the key came from, for messages ("set OPENAI_API_KEY").
    public var apiKeyEnv: String?
    /// Extra request headers (never logged).
    public var extraHeaders: [String: String] = [:]

    public init() {}
}

/// Sends requests with retries and turns failures into messages a person understands,
/// never containing the API key.
struct HTTPCore {
    let provider: String
    let baseURL: String
    let apiKey: String?
    let transport: any HTTPTransport
    let options: ClientOptions

    /// The key (and the header that carries it) replaced wherever it might appear.
    func redact(_ text: String) -> String {
        guard let apiKey, apiKey.count >= 4 else { return text }
        return text.replacingOccurrences(of: apiKey, with: "[redacted]")
    }

    func redact(_ error: DriverError) -> DriverError { DriverError(error.code, redact(error.message)) }

    var origin: String {
        // scheme://host:port of the base URL, for messages and the net.connect hint.
        guard let schemeEnd = baseURL.range(of: "://") else { return baseURL }
        let rest = baseURL[schemeEnd.upperBound...]
        let host = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? String(rest)
        return String(baseURL[..<schemeEnd.upperBound]) + host
    }

    func request(_ path: String, method: String = "POST", body: JSONValue?, headers: [String: String]) -> HTTPRequest {
        var all = options.extraHeaders
        for (k, v) in headers { all[k] = v }
        if body != nil { all["Content-Type"] = "application/json" }
        return HTTPRequest(method: method, url: join(baseURL, path), headers: all, body: body?.serialized(),
                           timeoutMs: options.timeoutMs, connectTimeoutMs: options.connectTimeoutMs, readTimeoutMs: options.readTimeoutMs)
    }

    func join(_ base: String, _ path: String) -> String {
        if path.hasPrefix("http://") || path.hasPrefix("https://") { return path }
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        return b + (path.hasPrefix("/") ? path : "/" + path)
    }

    static let retryable: Set<Int> = [408, 429, 500, 502, 503, 504, 529]

    /// One request, retried on 429/5xx; any other status is returned for the caller to judge.
    func send(_ request: HTTPRequest) throws(DriverError) -> HTTPResponse {
        var attempt = 0
        while true {
            let response: HTTPResponse
            do { response = try transport.send(request) } catch { throw transportError(error, request) }
            if Self.retryable.contains(response.status), attempt < options.retries {
                attempt += 1
                try wait(response, attempt: attempt, request: request)
                continue
            }
            return response
        }
    }

    /// A stream, retried the same way while the server answers 429/5xx before streaming.
    func open(_ request: HTTPRequest, model: String? = nil) throws(DriverError) -> (response: HTTPResponse, body: any HTTPBodyStream) {
        var attempt = 0
        while true {
            let opened: (response: HTTPResponse, body: any HTTPBodyStream)
            do { opened = try transport.open(request) } catch { throw transportError(error, request) }
            if opened.response.status >= 300 {
                // Read the (small) error body, then judge it like a plain response.
                var text = ""
                while text.utf8.count < 1 << 20 {
                    guard let piece = try? opened.body.read() else { break }
                    text += piece.text
                    if piece.done { break }
                }
                opened.body.close()
                let response = HTTPResponse(status: opened.response.status, headers: opened.response.headers, body: text)
                if Self.retryable.contains(response.status), attempt < options.retries {
                    attempt += 1
                    try wait(response, attempt: attempt, request: request)
                    continue
                }
                throw statusError(response, request: request, model: model, attempts: attempt + 1)
            }
            return opened
        }
    }

    private func wait(_ response: HTTPResponse, attempt: Int, request: HTTPRequest) throws(DriverError) {
        var delay = min(options.maxBackoffMs, options.backoffMs << (attempt - 1))
        var why = "backoff"
        if let header = response.headers["retry-after"], let ms = Self.retryAfterMs(header) {
            guard ms <= options.maxRetryAfterMs else {
                throw DriverError(.unavailable, "\(provider): \(origin) is rate limiting (HTTP \(response.status)) and asks to retry after \(ms / 1000) s; try again later")
            }
            delay = ms
            why = "Retry-After"
        }
        transport.log(.info, "\(provider): HTTP \(response.status) from \(request.url); retrying in \(delay) ms (\(why)), attempt \(attempt + 1) of \(options.retries + 1)")
        try transport.sleep(ms: delay)
    }

    /// Retry-After: delta-seconds (possibly fractional, which some servers send), or an HTTP date.
    static func retryAfterMs(_ value: String) -> Int? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0, seconds < 86_400 { return Int(seconds * 1000) }
        if let date = parseHTTPDate(trimmed) {
            return max(0, Int((date - Double(time(nil))) * 1000))
        }
        return nil
    }

    /// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds since 1970.
    static func parseHTTPDate(_ text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let month = months.firstIndex(of: String(parts[2])) else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3 else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month < 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = month + 1
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
    }

    /// A failure of the kernel's network service, said for this provider.
    func transportError(_ error: DriverError, _ request: HTTPRequest) -> DriverError {
        let message = redact(error.message)
        if message.hasPrefix("\(provider):") { return DriverError(error.code, message) }
        switch error.code {
        case .unavailable where message.contains("no server at"):
            return DriverError(.unavailable, "\(provider): no server at \(origin) — \(options.connectHint)")
        case .unavailable where message.contains("cannot resolve host"):
            return DriverError(.unavailable, "\(provider): cannot resolve the host of \(origin) — check base_url")
        case .timeout:
            return DriverError(.timeout, "\(provider): \(origin) did not answer in time: \(message)")
        case .permissionDenied:
            return DriverError(.permissionDenied, "\(provider): \(message) (grant it with --allow net.connect=\(origin))")
        default:
            return DriverError(error.code, "\(provider): \(message)")
        }
    }

    /// The server's own error message from a JSON error body ({"error": {"message"}} or {"error": "..."}).
    static func serverMessage(_ body: String) -> (message: String?, code: String?, type: String?) {
        guard let value = try? JSON.parse(body) else {
            let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
            return (text.isEmpty ? nil : String(text.prefix(300)), nil, nil)
        }
        if let error = value["error"] {
            if let text = error.stringValue { return (text, nil, nil) }
            return (error["message"]?.stringValue, error["code"]?.stringValue, error["type"]?.stringValue)
        }
        return (value["message"]?.stringValue, nil, nil)
    }

    /// A non-2xx answer as an error: the status, what it means here, the server's words (redacted).
    func statusError(_ response: HTTPResponse, request: HTTPRequest, model: String? = nil, attempts: Int = 1) -> DriverError {
        let server = Self.serverMessage(response.body)
        let said = server.message.map { ": \(redact($0))" } ?? ""
        let status = response.status
        let modelText = server.message?.lowercased().contains("model") == true || server.code == "model_not_found"
        switch status {
        case 401, 403:
            let env = options.apiKeyEnv.map { " — set \($0) (and grant it with --allow env=\($0)) or api_key in the configuration" } ?? ""
            let what = apiKey == nil ? "no API key was sent" : "the API key was refused"
            return DriverError(.permissionDenied, "\(provider): \(origin) answered HTTP \(status): \(what)\(env)\(said)")
        case 404 where modelText:
            return DriverError(.notFound, "\(provider): unknown model \(quote(model ?? "?")) at \(origin)\(said)")
        case 404:
            return DriverError(.notFound, "\(provider): \(request.url) answered HTTP 404 (no such endpoint) — is base_url \(baseURL) right?\(said)")
        case 400 where modelText && (server.message?.lowercased().contains("not exist") == true || server.message?.lowercased().contains("unknown") == true):
            return DriverError(.notFound, "\(provider): unknown model \(quote(model ?? "?")) at \(origin)\(said)")
        case 400, 422:
            let lower = server.message?.lowercased() ?? ""
            if lower.contains("context") && (lower.contains("length") || lower.contains("exceed") || lower.contains("window")) {
                return DriverError(.resourceExhausted, "\(provider): the prompt does not fit the model's context window\(said)")
            }
            return DriverError(.invalidArgument, "\(provider): \(origin) refused the request (HTTP \(status))\(said)")
        case 408, 429, 500...599:
            let tries = attempts > 1 ? " after \(attempts) attempts" : ""
            let what = status == 429 ? "is rate limiting" : "failed"
            return DriverError(.unavailable, "\(provider): \(origin) \(what) (HTTP \(status))\(tries)\(said)")
        default:
            return DriverError(.unavailable, "\(provider): \(origin) answered HTTP \(status)\(said)")
        }
    }

    func quote(_ text: String) -> String { "\"\(text)\"" }

    /// The response body as JSON, or an error saying the server is not speaking the protocol.
    func json(_ response: HTTPResponse) throws(DriverError) -> JSONValue {
        do { return try JSON.parse(response.body) } catch {
            throw DriverError(.unavailable, "\(provider): \(origin) answered with something that is not JSON (\(error)) — is it an API server?")
        }
    }
}

/// Backends allow only [A-Za-z0-9_-] in function names; the kernel's names have a '.'.
public struct ToolNames: Sendable {
    private var toWire: [String: String] = [:]
    private var fromWire: [String: String] = [:]

    public init(_ names: [String]) {
        for name in names { _ = add(name) }
    }

    /// "calc.add" -> "calc__add" (made unique if another name encodes the same way).
    @discardableResult
    public mutating func add(_ name: String) -> String {
        if let wire = toWire[name] { return wire }
        var wire = name.replacingOccurrences(of: ".", with: "__").map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? String($0) : "_" }.joined()
        wire = String(wire.prefix(60))
        var unique = wire
        var n = 2
        while fromWire[unique] != nil { unique = wire + "-\(n)"; n += 1 }
        toWire[name] = unique
        fromWire[unique] = name
        return unique
    }

    public func wire(_ name: String) -> String { toWire[name] ?? name.replacingOccurrences(of: ".", with: "__") }
    public func kernel(_ wire: String) -> String { fromWire[wire] ?? wire.replacingOccurrences(of: "__", with: ".") }
}

/// Token estimates where no tokenizer is reachable: about 4 characters a token.
public enum TokenEstimate {
    public static func tokens(_ text: String) -> Int { max(text.isEmpty ? 0 : 1, (text.unicodeScalars.count + 3) / 4) }

    public static func tokens(messages: [JSONValue], tools: [JSONValue]) -> Int {
        var total = 0
        for message in messages {
            total += 4 + tokens(message["content"]?.stringValue ?? "")
            for call in message["tool_calls"]?.arrayValue ?? [] { total += 4 + tokens(call.serialized()) }
        }
        for tool in tools { total += tokens(tool.serialized()) }
        return total + 2
    }
}

func makeCallID() -> String {
    var bytes = ""
    for _ in 0..<12 { bytes += String(UInt8.random(in: 0...15), radix: 16) }
    return "call_" + bytes
}

extension JSONValue {
    var nonEmptyArray: [JSONValue]? {
        guard let a = arrayValue, !a.isEmpty else { return nil }
        return a
    }
}
