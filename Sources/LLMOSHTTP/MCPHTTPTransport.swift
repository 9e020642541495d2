import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import LLMOSJSON
import LLMOSKernel
import LLMOSServe
import Synchronization

/// What one POSTed request gets back: its answer, and before it the notifications about
/// it (progress). Fed by an `MCPSession`'s sink; a tick every second lets the responder
/// commit to server-sent events when the answer is slow (keep-alive, and a client that
/// hung up is noticed).
final class MCPExchange: Sendable {
    enum Event: Sendable {
        case message(String)
        case tick
    }
    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    init() {
        (events, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        let continuation = continuation
        Task {
            while true {
                try? await Task.sleep(for: .seconds(1))
                guard case .enqueued = continuation.yield(.tick) else { return }
            }
        }
    }

    func deliver(_ text: String) { continuation.yield(.message(text)) }
    /// No answer will come (cancelled, or the session closed).
    func finish() { continuation.finish() }

    /// Whether a message is a JSON-RPC response (the end of the exchange), not a notification.
    static func isResponse(_ text: String) -> Bool {
        guard let message = try? JSON.parse(text) else { return false }
        return message["method"] == nil && message["id"] != nil
    }
}

/// A session's standalone server-sent event stream (GET /mcp, 2025-11-25): messages for
/// no request in particular. This server's offer never changes, so in practice it
/// carries only keep-alive comments; it ends with the session.
final class MCPStandaloneStream: Sendable {
    let body: AsyncStream<ByteBuffer>
    private let continuation: AsyncStream<ByteBuffer>.Continuation

    init() {
        (body, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .unbounded)
        continuation.yield(ByteBuffer(string: ": stream open\n\n"))
        let continuation = continuation
        Task {
            while true {
                try? await Task.sleep(for: .seconds(5))
                guard case .enqueued = continuation.yield(ByteBuffer(string: ": keep-alive\n\n")) else { return }
            }
        }
    }

    func send(_ text: String) { continuation.yield(LLMOSHTTPServer.sseEvent(text)) }
    func finish() { continuation.finish() }
}

/// MCP's streamable HTTP transport (revision 2025-11-25) on /mcp: one JSON-RPC message per
/// POST; a request is answered in the POST's response — application/json, or
/// text/event-stream when notifications about it (progress) come first or the answer is
/// slow and the client accepts it — a notification or a response with 202 Accepted.
/// `initialize` makes a session, named by the `Mcp-Session-Id` header of its answer,
/// which every later POST carries; GET opens its standalone stream; DELETE ends it. Each
/// session is an `MCPSession`, the same one the stdio transport drives.
final class MCPHTTPSession: Sendable {
    let id: String
    let session: MCPSession
    let mailbox: Mailbox
    /// `MCPSession.receive` is called from one thread at a time.
    private let receiving = Mutex<Void>(())

    /// Requests waiting for their answer, by serialized JSON-RPC id. Answers are routed by
    /// id to the POST waiting for them, progress notices by their token; anything else
    /// goes to the standalone stream if one is open.
    final class Mailbox: Sendable {
        struct State {
            var pending: [String: MCPExchange] = [:]
            /// progressToken (serialized) → request key.
            var progressTokens: [String: String] = [:]
            /// The request being handed to the session now: an error about it may carry id null.
            var current: String?
            var standalone: MCPStandaloneStream?
            var lastUsed = Date()
        }
        let state = Mutex(State())

        func route(_ text: String) {
            guard let message = try? JSON.parse(text) else { return }
            let (exchange, standalone, done) = state.withLock { state -> (MCPExchange?, MCPStandaloneStream?, Bool) in
                if message["method"] == nil, let id = message["id"] {
                    guard let key = id.isNull ? state.current : id.serialized(), let exchange = state.pending.removeValue(forKey: key) else {
                        return (nil, nil, false)
                    }
                    state.progressTokens = state.progressTokens.filter { $0.value != key }
                    return (exchange, nil, true)
                }
                if let token = message["params"]?["progressToken"], let key = state.progressTokens[token.serialized()],
                   let exchange = state.pending[key] {
                    return (exchange, nil, false)
                }
                return (nil, state.standalone, false)
            }
            if let exchange {
                exchange.deliver(text)
                if done { exchange.finish() }
            } else {
                standalone?.send(text)
            }
        }
    }

    init(id: String, server: MCPServer) {
        self.id = id
        let mailbox = Mailbox()
        self.mailbox = mailbox
        session = server.makeSession(transport: "http") { text in mailbox.route(text) }
    }

    var lastUsed: Date { mailbox.state.withLock { $0.lastUsed } }

    /// Hands one request to the session; its answer (and progress) come on the exchange.
    func request(_ key: String, progressToken: JSONValue?, _ bytes: [UInt8]) -> MCPExchange {
        let exchange = MCPExchange()
        mailbox.state.withLock { state in
            state.pending[key] = exchange
            if let progressToken { state.progressTokens[progressToken.serialized()] = key }
            state.lastUsed = Date()
        }
        deliver(bytes, current: key)
        return exchange
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
        let exchange = mailbox.state.withLock { state -> MCPExchange? in
            state.progressTokens = state.progressTokens.filter { $0.value != key }
            return state.pending.removeValue(forKey: key)
        }
        exchange?.finish()
    }

    /// The standalone stream (GET): a newer one replaces an older one, which ends (a
    /// client reconnecting is not refused because its old connection is not yet noticed gone).
    func openStandalone() -> MCPStandaloneStream {
        let stream = MCPStandaloneStream()
        let old = mailbox.state.withLock { state -> MCPStandaloneStream? in
            defer { state.standalone = stream; state.lastUsed = Date() }
            return state.standalone
        }
        old?.finish()
        return stream
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
        let (left, standalone) = mailbox.state.withLock { state -> ([MCPExchange], MCPStandaloneStream?) in
            defer { state.pending.removeAll(); state.standalone = nil }
            return (Array(state.pending.values), state.standalone)
        }
        for exchange in left { exchange.finish() }
        standalone?.finish()
    }
}

/// The sessions of one server, by id, and the stateless (2026-07-28) exchanges in progress.
final class MCPHTTPSessions: Sendable {
    private let sessions = Mutex<[String: MCPHTTPSession]>([:])
    /// Sessions kept at most; past it the least recently used one is closed.
    static let limit = 256
    /// Stateless exchanges still open (a slow call, a subscriptions/listen stream), by a
    /// serial number: what shutting down ends.
    private let stateless = Mutex<(next: Int, open: [Int: MCPSession])>((0, [:]))

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

    /// Keeps a stateless exchange's session until `forget`.
    func track(_ session: MCPSession) -> Int {
        stateless.withLock { table in
            table.next += 1
            table.open[table.next] = session
            return table.next
        }
    }

    func forget(_ number: Int) { stateless.withLock { _ = $0.open.removeValue(forKey: number) } }

    /// Ends every session and stateless exchange: their streams end (a listen stream with
    /// its graceful result), so the HTTP server's shutdown does not wait on them.
    func closeAll() {
        let all = sessions.withLock { table -> [MCPHTTPSession] in
            defer { table.removeAll() }
            return Array(table.values)
        }
        let open = stateless.withLock { table -> [MCPSession] in
            defer { table.open.removeAll() }
            return Array(table.open.values)
        }
        for session in all { session.close() }
        for session in open { session.close(cancelling: true) }
    }
}

extension LLMOSHTTPServer {
    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    static let versionHeader = HTTPField.Name("MCP-Protocol-Version")!
    static let methodHeader = HTTPField.Name("Mcp-Method")!
    static let nameHeader = HTTPField.Name("Mcp-Name")!

    static func rpcError(_ status: HTTPResponse.Status, id: JSONValue = .null, _ code: Int64, _ message: String, data: JSONValue? = nil) -> Response {
        var error: JSONObject = ["code": .int(code), "message": .string(message)]
        if let data { error["data"] = data }
        return json(["jsonrpc": "2.0", "id": id, "error": .object(error)], status: status)
    }

    static func rejection(_ rejection: MCPEnvelope.Rejection, id: JSONValue = .null) -> Response {
        rpcError(status(forErrorCode: rejection.code), id: id, rejection.code, rejection.message, data: rejection.data)
    }

    /// 2026-07-28 gives JSON-RPC errors HTTP statuses: a client mistake is a 400, an
    /// unknown method a 404; anything else travels in a 200.
    static func status(forErrorCode code: Int64) -> HTTPResponse.Status {
        switch code {
        case JSONRPCError.methodNotFound: return .notFound
        case JSONRPCError.parseError, JSONRPCError.invalidRequest, JSONRPCError.invalidParams, JSONRPCError.headerMismatch,
             -32021, JSONRPCError.unsupportedProtocolVersion: return .badRequest
        default: return .ok
        }
    }

    static func sseEvent(_ text: String) -> ByteBuffer { ByteBuffer(string: "event: message\ndata: \(text)\n\n") }

    static func accepts(_ request: Request, _ type: String) -> Bool {
        guard let accept = request.headers[.accept] else { return true }
        return accept.contains(type) || accept.contains("*/*")
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
        if !Self.accepts(request, "application/json") {
            return Self.rpcError(.notAcceptable, -32600, "Accept must include application/json (and text/event-stream for streamed answers)")
        }
        let method = message["method"]?.stringValue
        let sessionID = request.headers[Self.sessionHeader]
        // The era: the MCP-Protocol-Version header says it; without one, a request with
        // the 2026-07-28 envelope and no session is stateless.
        if let version = request.headers[Self.versionHeader] {
            guard let known = MCPProtocolVersion(rawValue: version) else {
                let rejection = MCPEnvelope.unsupported(version, because: "MCP-Protocol-Version \(version) is not one this server speaks: \(MCPProtocolVersion.supportedNewestFirst.joined(separator: ", "))")
                return Self.rejection(rejection, id: message["id"] ?? .null)
            }
            if known.isModern { return await statelessPost(request, message, bytes) }
        } else if sessionID == nil, method != "initialize", method == "server/discover" || MCPEnvelope.isPresent(message["params"]) {
            return await statelessPost(request, message, bytes)
        }
        return await sessionPost(request, message, bytes, sessionID: sessionID)
    }

    /// 2025-11-25 and older: a message in a session made by initialize.
    private func sessionPost(_ request: Request, _ message: JSONValue, _ bytes: [UInt8], sessionID: String?) async -> Response {
        let method = message["method"]?.stringValue
        let id = message["id"]
        let isRequest = method != nil && id != nil && !(id?.isNull ?? true)

        // initialize without a session makes one; everything else names its session.
        let session: MCPHTTPSession
        var created = false
        if let sessionID {
            guard let found = mcpSessions.find(sessionID) else {
                return Self.rpcError(.notFound, id: id ?? .null, -32001, "no session \(sessionID) (it ended, or this server restarted): start a new one with initialize")
            }
            session = found
        } else if method == "initialize" {
            session = mcpSessions.make(server: mcp)
            created = true
        } else {
            return Self.rpcError(.badRequest, id: id ?? .null, -32600, "Mcp-Session-Id header is required: send the id the initialize answer gave (or initialize first; or speak 2026-07-28, which needs no session: MCP-Protocol-Version: 2026-07-28 and the _meta envelope)")
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
        let exchange = session.request(key, progressToken: message["params"]?["_meta"]?["progressToken"], bytes)
        let sessions = mcpSessions
        let made = created
        return await respond(exchange, request, headers: [Self.sessionHeader: session.id], statusFromError: false) { answered in
            // A failed initialize leaves no session behind.
            if made, let answered, (try? JSON.parse(answered))?["error"] != nil { _ = sessions.remove(session.id) }
        } onHangUp: {
            // 2025-11-25: a dropped connection is not a cancellation; the answer is lost.
            session.abandon(key)
        }
    }

    /// 2026-07-28: a self-contained request, served by a session of its own.
    private func statelessPost(_ request: Request, _ message: JSONValue, _ bytes: [UInt8]) async -> Response {
        let id = message["id"]
        guard let object = message.objectValue, object["jsonrpc"]?.stringValue == "2.0", let method = object["method"]?.stringValue else {
            return Self.rpcError(.badRequest, -32600, "the body must be one JSON-RPC 2.0 request or notification object")
        }
        guard let id, !id.isNull else {
            // The revision defines no client notifications over HTTP (a client cancels by
            // closing the response): acknowledged and dropped.
            if let version = request.headers[Self.versionHeader], MCPProtocolVersion(rawValue: version)?.isModern != true {
                return Self.rejection(MCPEnvelope.unsupported(version))
            }
            return Response(status: .accepted)
        }
        switch id {
        case .string, .int: break
        default: return Self.rpcError(.badRequest, -32600, "id must be a string or an integer (MCP), got \(id.typeName)")
        }
        if method == "subscriptions/listen", !Self.accepts(request, "text/event-stream") || request.headers[.accept] == nil {
            return Self.rpcError(.notAcceptable, id: id, -32600, "subscriptions/listen answers with a stream: Accept must include text/event-stream")
        }
        for name in [Self.versionHeader, Self.methodHeader, Self.nameHeader] where request.headers[values: name].count > 1 {
            return Self.rpcError(.badRequest, id: id, JSONRPCError.headerMismatch, "the \(name.canonicalName) header appears more than once: send it once")
        }
        let params = object["params"]
        // A discover without the envelope is a plain probe: answered, nothing to check.
        if method != "server/discover" || MCPEnvelope.isPresent(params) {
            let headers = MCPEnvelope.RoutingHeaders(protocolVersion: request.headers[Self.versionHeader],
                                                     method: request.headers[Self.methodHeader], name: request.headers[Self.nameHeader])
            if case .failure(let rejection) = MCPEnvelope.check(method: method, params: params, headers: headers) {
                return Self.rejection(rejection, id: id)
            }
        }
        let exchange = MCPExchange()
        let session = mcp.makeSession(transport: "http") { text in
            exchange.deliver(text)
            if MCPExchange.isResponse(text) { exchange.finish() }
        }
        let number = mcpSessions.track(session)
        bytes.withUnsafeBytes { session.receive($0) }
        let sessions = mcpSessions
        @Sendable func end(cancelling: Bool) {
            sessions.forget(number)
            // Closing waits for the call to return: not on an HTTP handler's thread.
            DispatchQueue.global().async { session.close(cancelling: cancelling) }
        }
        return await respond(exchange, request, headers: [:], statusFromError: true) { _ in
            end(cancelling: false)
        } onHangUp: {
            // 2026-07-28: closing the response is how a client cancels.
            end(cancelling: true)
        }
    }

    /// The POST's response: JSON when the answer comes first; server-sent events when a
    /// notification comes first or a second passes without an answer, if the client
    /// accepts them (a JSON-only client gets the answer alone). `answered` runs once the
    /// answer is out (nil: there was none); `onHangUp` if the client left before it.
    private func respond(_ exchange: MCPExchange, _ request: Request, headers: HTTPFields, statusFromError: Bool,
                         answered: @escaping @Sendable (String?) -> Void, onHangUp: @escaping @Sendable () -> Void) async -> Response {
        let streams = Self.accepts(request, "text/event-stream") && request.headers[.accept] != nil
        var iterator = exchange.events.makeAsyncIterator()
        var early: [String] = []
        while let event = await iterator.next() {
            switch event {
            case .tick:
                if streams { return stream(exchange, first: early, headers: headers, answered: answered, onHangUp: onHangUp) }
            case .message(let text):
                if MCPExchange.isResponse(text) {
                    answered(text)
                    var fields = headers
                    fields[.contentType] = "application/json"
                    let code = statusFromError ? (try? JSON.parse(text))?["error"]?["code"]?.int64Value : nil
                    return Response(status: code.map(Self.status(forErrorCode:)) ?? .ok, headers: fields,
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
                }
                if streams { return stream(exchange, first: early + [text], headers: headers, answered: answered, onHangUp: onHangUp) }
                early.append(text) // not sent: this client takes only JSON
            }
        }
        // Cancelled (notifications/cancelled, or the session closed): nothing to say.
        answered(nil)
        return Response(status: .accepted, headers: headers)
    }

    private func stream(_ exchange: MCPExchange, first: [String], headers: HTTPFields,
                        answered: @escaping @Sendable (String?) -> Void, onHangUp: @escaping @Sendable () -> Void) -> Response {
        let (body, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .unbounded)
        for text in first { continuation.yield(Self.sseEvent(text)) }
        let finished = Mutex(false)
        continuation.onTermination = { reason in
            if case .cancelled = reason, !finished.withLock({ $0 }) { onHangUp() }
        }
        Task {
            // The exchange's iterator was the responder's; a second one sees the rest, as it
            // is a unicast stream that the first has stopped reading.
            for await event in exchange.events {
                switch event {
                case .tick:
                    guard case .enqueued = continuation.yield(ByteBuffer(string: ": keep-alive\n\n")) else { return }
                case .message(let text):
                    continuation.yield(Self.sseEvent(text))
                    if MCPExchange.isResponse(text) {
                        finished.withLock { $0 = true }
                        answered(text)
                        continuation.finish()
                        return
                    }
                }
            }
            finished.withLock { $0 = true }
            answered(nil)
            continuation.finish()
        }
        var fields = headers
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache"
        fields[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: fields, body: ResponseBody(asyncSequence: body))
    }

    /// GET /mcp: a session's standalone stream of server-sent events (2025-11-25).
    func mcpGet(_ request: Request) -> Response {
        if let version = request.headers[Self.versionHeader], MCPProtocolVersion(rawValue: version)?.isModern == true {
            return Self.json(["error": "2026-07-28 has no standing stream: POST subscriptions/listen to /mcp instead"],
                             status: .methodNotAllowed, headers: [.allow: "POST"])
        }
        guard let sessionID = request.headers[Self.sessionHeader] else {
            return Self.rpcError(.badRequest, -32600, "Mcp-Session-Id header is required: GET /mcp opens the standalone stream of the session initialize made")
        }
        guard let session = mcpSessions.find(sessionID) else {
            return Self.rpcError(.notFound, -32001, "no session \(sessionID) (it ended, or this server restarted): start a new one with initialize")
        }
        guard let accept = request.headers[.accept], accept.contains("text/event-stream") else {
            return Self.rpcError(.notAcceptable, -32600, "Accept must include text/event-stream: GET /mcp answers with server-sent events")
        }
        let stream = session.openStandalone()
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", Self.sessionHeader: session.id,
                                               HTTPField.Name("X-Accel-Buffering")!: "no"],
                        body: ResponseBody(asyncSequence: stream.body))
    }

    /// DELETE /mcp: the client ends its session (calls in flight are cancelled, its stream ends).
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
