// The streamable HTTP transport: each JSON-RPC message is a POST to the server's URL
// through the kernel's net.fetch (so the connection is a net.connect decision, checked on
// every hop and on the address connected, and audited). The answer is either one JSON
// message or a server-sent event stream that carries notifications and then the response.
//
// No standing stream, on either revision: not the 2025-11-25 GET stream of the session,
// not a 2026-07-28 subscriptions/listen POST. The kernel lends a driver the network only
// inside a call: a syscall needs the call it is made for (its grants, its audit record, its
// deadline), and a net.stream belongs to the call that opened it and is closed when that
// call returns. A stream held between calls would have no call to be checked against,
// audited for or cancelled with. So a server that says its tools can change
// (capabilities.tools.listChanged) has them listed again at the start of each call (one
// tools/list POST; published only when they differ): never stale when a call runs, at the
// price of a round trip. A list_changed inside a call's own event stream is honoured too.
// Sessions (2025-11-25): the Mcp-Session-Id of the initialize answer is
// sent on every later request, and a 404 for it means the session is gone (a new one is
// made at the next call). 2026-07-28: no session; MCP-Protocol-Version, Mcp-Method and
// Mcp-Name headers mirror the body, as the revision requires.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

/// What the client needs of a transport.
protocol MCPConnection: AnyObject, Sendable {
    var isAlive: Bool { get }
    var failureReason: String? { get }
    /// "pid 4242" or the URL, for messages.
    var label: String { get }
    /// Sends a request and waits for its response message (the whole JSON-RPC object).
    func request(_ method: String, _ params: JSONValue, call: CallContext, waitLimitMs: Int?, onTimeout: String) throws(DriverError) -> JSONValue
    func notify(_ method: String, _ params: JSONValue, call: CallContext)
    /// The revision agreed (`modern`: 2026-07-28, headers on every request).
    func negotiated(_ version: String, modern: Bool)
    func stop(reason: String)
}

extension ServerProcess: MCPConnection {
    var label: String { "pid \(pid)" }

    func request(_ method: String, _ params: JSONValue, call: CallContext, waitLimitMs: Int?, onTimeout: String) throws(DriverError) -> JSONValue {
        try request(method, params, isCancelled: { call.isCancelled }, waitLimitMs: waitLimitMs, onTimeout: onTimeout)
    }

    func notify(_ method: String, _ params: JSONValue, call: CallContext) { notify(method, params) }
    func negotiated(_ version: String, modern: Bool) {}
    func stop(reason: String) { stop(graceMs: 500, reason: reason) }
}

final class HTTPConnection: MCPConnection, @unchecked Sendable {
    let url: String
    let serverName: String
    var onNotification: (@Sendable (String, JSONValue) -> Void)?
    private let lock = NSLock()
    private var sessionID: String?
    private var version: String?
    private var modern = false
    private var nextID: Int64 = 1
    private var deadReason: String?

    init(url: String, serverName: String) {
        self.url = url
        self.serverName = serverName
    }

    var isAlive: Bool { lock.withLock { deadReason == nil } }
    var failureReason: String? { lock.withLock { deadReason } }
    var label: String { url }

    func negotiated(_ version: String, modern: Bool) {
        lock.withLock {
            self.version = version
            self.modern = modern
        }
    }

    func stop(reason: String) {
        let session = lock.withLock { () -> String? in
            if deadReason == nil { deadReason = "the connection was \(reason)" }
            return sessionID
        }
        _ = session   // a DELETE of the session needs a call context; the server expires it
    }

    private func headers(method: String, params: JSONValue) -> JSONValue {
        var headers: JSONObject = ["Content-Type": "application/json", "Accept": "application/json, text/event-stream"]
        lock.withLock {
            if let version { headers["MCP-Protocol-Version"] = .string(version) }
            if let sessionID { headers["Mcp-Session-Id"] = .string(sessionID) }
            if modern {
                headers["Mcp-Method"] = .string(method)
                if let name = params["name"]?.stringValue ?? params["uri"]?.stringValue {
                    let safe = name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value <= 0x7e }
                    headers["Mcp-Name"] = .string(safe ? name : "=?base64?\(Data(name.utf8).base64EncodedString())?=")
                }
            }
        }
        return .object(headers)
    }

    private func post(_ body: JSONValue, method: String, params: JSONValue, call: CallContext, timeoutMs: Int) throws(DriverError) -> (status: Int, headers: JSONValue, body: String) {
        let request: JSONValue = ["url": .string(url), "method": "POST", "headers": headers(method: method, params: params),
                                  "body": .string(body.serialized()), "timeout_ms": .int(Int64(timeoutMs)),
                                  "max_bytes": .int(Int64(MCPLimits.maxMessageBytes))]
        let text: String
        do { text = try call.syscall("net.fetch", request.serialized()) } catch {
            if error.code == .permissionDenied || error.code == .cancelled || error.code == .timeout { throw error }
            throw DriverError(error.code, "\(serverName): cannot reach the MCP server at \(url): \(error.message)")
        }
        let response: JSONValue
        do { response = try JSON.parse(text) } catch { throw .internal("net.fetch answered with something that is not JSON: \(error)") }
        var bodyText = response["body"]?.stringValue ?? ""
        if response["encoding"]?.stringValue == "base64" {
            bodyText = Data(base64Encoded: bodyText).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return (Int(response["status"]?.int64Value ?? 0), response["headers"] ?? .object([:]), bodyText)
    }

    func request(_ method: String, _ params: JSONValue, call: CallContext, waitLimitMs: Int?, onTimeout: String) throws(DriverError) -> JSONValue {
        let id: Int64 = try lock.withLock { () throws(DriverError) -> Int64 in
            if let deadReason { throw DriverError(.unavailable, deadReason) }
            defer { nextID += 1 }
            return nextID
        }
        let body: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        let answer = try post(body, method: method, params: params, call: call, timeoutMs: waitLimitMs ?? 600_000)
        if method == "initialize", let session = answer.headers["mcp-session-id"]?.stringValue {
            lock.withLock { sessionID = session }
        }
        switch answer.status {
        case 200..<300: break
        case 404 where lock.withLock({ sessionID }) != nil:
            lock.withLock { deadReason = "the MCP server at \(url) no longer knows the session (HTTP 404)" }
            throw .unavailable("\(serverName): the MCP server at \(url) no longer knows this session (HTTP 404); a new one is made at the next call")
        default:
            let excerpt = ServerProcess.quote(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))
            // A JSON-RPC error in an error status is still an answer.
            if let message = try? JSON.parse(answer.body), message["error"] != nil { return message }
            throw .unavailable("\(serverName): the MCP server at \(url) answered \(method) with HTTP \(answer.status): \(excerpt)")
        }
        let type = answer.headers["content-type"]?.stringValue?.lowercased() ?? ""
        var messages: [JSONValue] = []
        if type.hasPrefix("text/event-stream") {
            for data in Self.events(answer.body) {
                guard let message = try? JSON.parse(data) else {
                    throw .invalidOutput("\(serverName): the MCP server at \(url) sent an event that is not JSON: \(ServerProcess.quote(data))")
                }
                messages.append(message)
            }
        } else {
            do { messages = [try JSON.parse(answer.body)] } catch {
                throw .invalidOutput("\(serverName): the MCP server at \(url) answered \(method) with something that is not JSON (\(type.isEmpty ? "no content type" : type)): \(ServerProcess.quote(answer.body))")
            }
        }
        var response: JSONValue?
        for message in messages {
            if let m = message["method"]?.stringValue, message["id"] == nil {
                onNotification?(m, message["params"] ?? .object([:]))
            } else if message["id"]?.int64Value == id, message["result"] != nil || message["error"] != nil {
                response = message
            }
        }
        guard let response else {
            throw .invalidOutput("\(serverName): the MCP server at \(url) answered \(method) without a response to request \(id)")
        }
        return response
    }

    func notify(_ method: String, _ params: JSONValue, call: CallContext) {
        _ = try? post(["jsonrpc": "2.0", "method": .string(method), "params": params], method: method, params: params, call: call, timeoutMs: 10_000)
    }

    /// The `data` of each event of a server-sent event stream (lines joined with \n).
    static func events(_ text: String) -> [String] {
        var events: [String] = []
        var data: [String] = []
        // "\r\n" is one Character in Swift: normalise line ends before splitting.
        let normalised = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for raw in normalised.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.isEmpty {
                if !data.isEmpty { events.append(data.joined(separator: "\n")) }
                data = []
            } else if line.hasPrefix("data:") {
                var value = String(line.dropFirst(5))
                if value.hasPrefix(" ") { value.removeFirst() }
                data.append(value)
            }
        }
        if !data.isEmpty { events.append(data.joined(separator: "\n")) }
        return events
    }
}
