import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import LLMOSJSON
import LLMOSKernel
import LLMOSServe
import Synchronization

/// MCP's streamable HTTP transport (revision 2025-11-25) on POST /mcp: one JSON-RPC
/// message per POST; a request is answered in the POST's response as application/json,
/// a notification or a response with 202 Accepted. `initialize` makes a session, named by
/// the `Mcp-Session-Id` header of its answer, which every later POST carries; DELETE /mcp
/// ends it. Each session is an `MCPSession`, the same one the stdio transport drives.
final class MCPHTTPSession: Sendable {
    let id: String
    let session: MCPSession
    let mailbox: Mailbox
    /// `MCPSession.receive` is called from one thread at a time.
    private let receiving = Mutex<Void>(())

    /// Requests waiting for their answer, by serialized JSON-RPC id. Answers are routed by
    /// id to the POST waiting for them; a message for no one waiting (a progress notice)
    /// is dropped: this server opens no stream of its own.
    final class Mailbox: Sendable {
        struct State {
            var pending: [String: CheckedContinuation<String?, Never>] = [:]
            /// The request being handed to the session now: an error about it may carry id null.
            var current: String?
            var lastUsed = Date()
        }
        let state = Mutex(State())

        func route(_ text: String) {
            guard let message = try? JSON.parse(text) else { return }
            let id = message["id"]
            let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
                guard let id, message["method"] == nil else { return nil }
                let key = id.isNull ? state.current : id.serialized()
                guard let key else { return nil }
                return state.pending.removeValue(forKey: key)
            }
            waiter?.resume(returning: text)
        }
    }

    init(id: String, server: MCPServer) {
        self.id = id
        let mailbox = Mailbox()
        self.mailbox = mailbox
        session = server.makeSession { text in mailbox.route(text) }
    }

    var lastUsed: Date { mailbox.state.withLock { $0.lastUsed } }

    /// Hands one request to the session and waits for its answer; nil when it gets none
    /// (it was cancelled, or the session closed).
    func request(_ key: String, _ bytes: [UInt8]) async -> String? {
        await withCheckedContinuation { continuation in
            mailbox.state.withLock { $0.pending[key] = continuation; $0.lastUsed = Date() }
            deliver(bytes, current: key)
        }
    }

    /// A notification or a response: nothing to wait for.
    func notify(_ bytes: [UInt8]) {
        mailbox.state.withLock { $0.lastUsed = Date() }
        deliver(bytes, current: nil)
    }

    func isPending(_ key: String) -> Bool { mailbox.state.withLock { $0.pending[key] != nil } }

    /// notifications/cancelled: the cancelled request gets no answer from the session, so
    /// its POST is answered here.
    func abandon(_ key: String) {
        let waiter = mailbox.state.withLock { $0.pending.removeValue(forKey: key) }
        waiter?.resume(returning: nil)
    }

    private func deliver(_ bytes: [UInt8], current: String?) {
        receiving.withLock { _ in
            mailbox.state.withLock { $0.current = current }
            bytes.withUnsafeBytes { session.receive($0) }
            mailbox.state.withLock { $0.current = nil }
        }
    }

    func close() {
        session.close(cancelling: true)
        let left = mailbox.state.withLock { state -> [CheckedContinuation<String?, Never>] in
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for waiter in left { waiter.resume(returning: nil) }
    }
}

/// The sessions of one server, by id.
final class MCPHTTPSessions: Sendable {
    private let sessions = Mutex<[String: MCPHTTPSession]>([:])
    /// Sessions kept at most; past it the least recently used one is closed.
    static let limit = 256

    var count: Int { sessions.withLock { $0.count } }

    func make(server: MCPServer) -> MCPHTTPSession {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let id = bytes.map { String(format: "%02x", $0) }.joined()
        let session = MCPHTTPSession(id: id, server: server)
        let evicted = sessions.withLock { table -> MCPHTTPSession? in
            table[id] = session
            guard table.count > Self.limit, let oldest = table.values.min(by: { $0.lastUsed < $1.lastUsed }) else { return nil }
            return table.removeValue(forKey: oldest.id)
        }
        // Closing waits for its calls in flight: not on the caller's (an HTTP handler's) thread.
        if let evicted { DispatchQueue.global().async { evicted.close() } }
        return session
    }

    func find(_ id: String) -> MCPHTTPSession? { sessions.withLock { $0[id] } }

    func remove(_ id: String) -> MCPHTTPSession? { sessions.withLock { $0.removeValue(forKey: id) } }

    func closeAll() {
        let all = sessions.withLock { table -> [MCPHTTPSession] in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for session in all { session.close() }
    }
}

extension LLMOSHTTPServer {
    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    static let versionHeader = HTTPField.Name("MCP-Protocol-Version")!

    static func rpcError(_ status: HTTPResponse.Status, id: JSONValue = .null, _ code: Int64, _ message: String) -> Response {
        json(["jsonrpc": "2.0", "id": id, "error": ["code": .int(code), "message": .string(message)]], status: status)
    }

    func mcpPost(_ request: Request) async throws -> Response {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: mcp.options.maxMessageBytes)
        } catch {
            return Self.rpcError(.contentTooLarge, -32600, "a message over this server's limit of \(mcp.options.maxMessageBytes) bytes was not read")
        }
        let bytes = Array(buffer.readableBytesView)
        let message: JSONValue
        do { message = try JSON.parse(bytes) } catch {
            return Self.rpcError(.badRequest, -32700, "the body is not JSON (\(error)): POST one JSON-RPC 2.0 message")
        }
        if let version = request.headers[Self.versionHeader], MCPProtocolVersion(rawValue: version) == nil {
            return Self.rpcError(.badRequest, -32600, "MCP-Protocol-Version \(version) is not one this server speaks: \(MCPProtocolVersion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let accept = request.headers[.accept], !accept.contains("application/json"), !accept.contains("*/*"), !accept.contains("text/event-stream") {
            return Self.rpcError(.notAcceptable, -32600, "Accept must include application/json (this server answers each request with one JSON object)")
        }
        let method = message["method"]?.stringValue
        let id = message["id"]
        let isRequest = method != nil && id != nil && !(id?.isNull ?? true)

        // initialize without a session makes one; everything else names its session.
        let session: MCPHTTPSession
        var created = false
        if let sessionID = request.headers[Self.sessionHeader] {
            guard let found = mcpSessions.find(sessionID) else {
                return Self.rpcError(.notFound, id: id ?? .null, -32001, "no session \(sessionID) (it ended, or this server restarted): start a new one with initialize")
            }
            session = found
        } else if method == "initialize" {
            session = mcpSessions.make(server: mcp)
            created = true
        } else {
            return Self.rpcError(.badRequest, id: id ?? .null, -32600, "Mcp-Session-Id header is required: send the id the initialize answer gave (or initialize first)")
        }
        if !created, method == "initialize" {
            return Self.rpcError(.badRequest, id: id ?? .null, -32600, "initialize was already answered in session \(session.id); start a new session (no Mcp-Session-Id) to negotiate again")
        }

        guard isRequest, let id else {
            session.notify(bytes)
            if method == "notifications/cancelled", let target = message["params"]?["requestId"] {
                session.abandon(target.serialized())
            }
            return Response(status: .accepted, headers: [Self.sessionHeader: session.id])
        }
        switch id {
        case .string, .int: break
        default:
            return Self.rpcError(.badRequest, -32600, "id must be a string or an integer (MCP), got \(id.typeName)")
        }
        let key = id.serialized()
        if session.isPending(key) {
            return Self.rpcError(.badRequest, id: id, -32600, "request id \(key) is already in use by a call in flight; use a new id for each request")
        }
        guard let answer = await session.request(key, bytes) else {
            // Cancelled (notifications/cancelled, or the session closed): nothing to say.
            return Response(status: .accepted, headers: [Self.sessionHeader: session.id])
        }
        if created, (try? JSON.parse(answer))?["error"] != nil { _ = mcpSessions.remove(session.id) }
        return Response(status: .ok, headers: [.contentType: "application/json", Self.sessionHeader: session.id],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: answer)))
    }

    /// DELETE /mcp: the client ends its session (calls in flight are cancelled).
    func mcpDelete(_ request: Request) -> Response {
        guard let sessionID = request.headers[Self.sessionHeader] else {
            return Self.rpcError(.badRequest, -32600, "Mcp-Session-Id header is required to end a session")
        }
        guard let session = mcpSessions.remove(sessionID) else {
            return Self.rpcError(.notFound, -32001, "no session \(sessionID)")
        }
        DispatchQueue.global().async { session.close() }
        return Response(status: .noContent)
    }
}
