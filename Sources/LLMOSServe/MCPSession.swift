import Dispatch
import LLMOSJSON
import LLMOSKernel
import Synchronization

/// One client's MCP session (one stdio pipe pair, one HTTP session, or one stateless
/// 2026-07-28 HTTP exchange): the era the client chose, the tool calls in flight and the
/// open `subscriptions/listen` streams.
///
/// The era is the client's first word, as in the official SDK: `initialize` makes a
/// 2025-11-25-family session (handshake, then `tools/*`), a request carrying the 2026-07-28
/// `_meta` envelope makes a stateless one (no handshake, every request self-describing).
/// The other era's requests are then refused; `server/discover` is answered in either,
/// and does not choose, so a client may probe it and still fall back to initialize.
///
/// Messages come in through `receive`, one JSON-RPC message each; answers and
/// notifications go out through the session's `send`, one JSON text each, in an order
/// only JSON-RPC ids tie together (a quick call may answer before a slow one).
/// Thread rules: `receive` is called from one thread at a time (the transport's reader);
/// `send` is called from the reader and from call threads, never two at once.
public final class MCPSession: Sendable {
    let server: MCPServer
    private let sink: @Sendable (String) -> Void
    /// Orders writes: one message at a time reaches `sink`.
    private let sendLock = Mutex<Void>(())

    enum Era: Equatable {
        case undecided
        case handshake(MCPProtocolVersion)
        case modern
    }

    private struct State {
        var era = Era.undecided
        var initializedNotified = false
        /// Open subscriptions/listen streams: their request ids (serialized) and ids.
        var listens: [String: JSONValue] = [:]
        /// Tool calls running, by request id (its serialized form): what notifications/cancelled reaches.
        var inFlight: [String: CancellationToken] = [:]
        var closed = false
    }
    private let state = Mutex(State())
    private let calls = DispatchGroup()

    /// How the client reached this session ("stdio", "http"): its calls' audit records
    /// say "via mcp stdio".
    let transport: String

    init(server: MCPServer, transport: String, send: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.transport = transport
        self.sink = send
    }

    /// The revision agreed in initialize, 2026-07-28 once the client spoke it, nil before.
    public var protocolVersion: MCPProtocolVersion? {
        switch state.withLock({ $0.era }) {
        case .undecided: return nil
        case .handshake(let version): return version
        case .modern: return .latestModern
        }
    }

    // MARK: Receiving

    /// One message, as the bytes the client sent (no trailing newline needed).
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        let message: JSONValue
        do {
            message = try JSON.parse(bytes)
        } catch {
            sendError(id: .null, JSONRPCError.parseError,
                      "the message is not JSON (\(error)): send one JSON-RPC 2.0 object per line")
            return
        }
        handle(message)
    }

    public func receive(_ text: String) {
        var text = text
        text.withUTF8 { receive(UnsafeRawBufferPointer($0)) }
    }

    /// A message the transport did not read because it was over `maxMessageBytes`.
    public func refuseOversized(byteCount: Int) {
        sendError(id: .null, JSONRPCError.invalidRequest,
                  "a message of \(byteCount) bytes or more is over this server's limit of \(server.options.maxMessageBytes) bytes (llmos serve --max-message-bytes); it was not read")
    }

    /// No more messages will come: refuses new calls and waits for those in flight to
    /// return and be answered. `cancelling` cancels them first (the client is gone, not
    /// just done writing: a closed HTTP session); the stdio transport lets them finish,
    /// since a client may close its end of stdin and still read the answers.
    public func close(cancelling: Bool = false) {
        let (tokens, listens) = state.withLock { state -> ([CancellationToken], [JSONValue]) in
            state.closed = true
            defer { state.listens.removeAll() }
            return (Array(state.inFlight.values), Array(state.listens.values))
        }
        if cancelling { for token in tokens { token.cancel() } }
        // The graceful end of a subscription is its result (an abrupt close has none).
        for id in listens { sendResult(id: id, modernResult(["_meta": .object(subscriptionMeta(id))])) }
        calls.wait()
    }

    func handle(_ message: JSONValue) {
        guard let object = message.objectValue else {
            if message.arrayValue != nil {
                sendError(id: .null, JSONRPCError.invalidRequest,
                          "a JSON-RPC batch (an array) is not part of MCP since 2025-06-18: send one message per line")
            } else {
                sendError(id: .null, JSONRPCError.invalidRequest, "a JSON-RPC message is an object, got \(message.typeName)")
            }
            return
        }
        let id = object["id"]
        guard object["jsonrpc"]?.stringValue == "2.0" else {
            sendError(id: id ?? .null, JSONRPCError.invalidRequest, "jsonrpc must be \"2.0\"")
            return
        }
        guard let method = object["method"]?.stringValue else {
            // A response to a request of ours: this server sends none, so there is nothing to match.
            if id != nil, object["result"] != nil || object["error"] != nil { return }
            sendError(id: id ?? .null, JSONRPCError.invalidRequest, "a request or notification needs a method (a string)")
            return
        }
        if let id {
            switch id {
            case .string, .int: break
            default:
                sendError(id: .null, JSONRPCError.invalidRequest, "id must be a string or an integer (MCP), got \(id.typeName)")
                return
            }
        }
        let params = object["params"]
        if let params, params.objectValue == nil {
            if let id { sendError(id: id, JSONRPCError.invalidParams, "params of \(method) must be an object, got \(params.typeName)") }
            return
        }
        guard let id else {
            notification(method, params)
            return
        }
        request(id: id, method, params)
    }

    private func notification(_ method: String, _ params: JSONValue?) {
        switch method {
        case "notifications/initialized":
            state.withLock { $0.initializedNotified = true }
        case "notifications/cancelled":
            // The initialize request cannot be cancelled, and an unknown id is no error:
            // the call may have finished while the notice travelled.
            guard let requestID = params?["requestId"] else { return }
            let key = requestID.serialized()
            let token = state.withLock { state -> CancellationToken? in
                // A cancelled subscription ends without a result.
                state.listens.removeValue(forKey: key)
                return state.inFlight[key]
            }
            token?.cancel()
        default:
            break // Unknown notifications are ignored, as JSON-RPC says.
        }
    }

    private func request(id: JSONValue, _ method: String, _ params: JSONValue?) {
        switch method {
        case "initialize":
            initialize(id: id, params)
        case "server/discover":
            discover(id: id, params)
        default:
            let era = state.withLock { $0.era }
            if era == .modern || MCPEnvelope.isPresent(params) {
                modernRequest(id: id, method, params, era: era)
            } else {
                handshakeRequest(id: id, method, params, era: era)
            }
        }
    }

    /// 2025-11-25 and older: initialize first, then ping and tools/*.
    private func handshakeRequest(id: JSONValue, _ method: String, _ params: JSONValue?, era: Era) {
        switch method {
        case "ping":
            sendResult(id: id, [:])
        case "tools/list", "tools/call":
            guard case .handshake(let version) = era else {
                sendError(id: id, JSONRPCError.invalidRequest, "\(method) before initialize: the session starts with an initialize request (or, in 2026-07-28, every request carries params._meta \(MCPEnvelope.protocolVersionKey))")
                return
            }
            if method == "tools/list" { listTools(id: id, params, version) } else { callTool(id: id, params, version) }
        default:
            sendError(id: id, JSONRPCError.methodNotFound,
                      "no method \(method): this server offers initialize, ping, tools/list and tools/call (and, in 2026-07-28, server/discover and subscriptions/listen)")
        }
    }

    /// 2026-07-28: no handshake; each request names its revision in `_meta`.
    private func modernRequest(id: JSONValue, _ method: String, _ params: JSONValue?, era: Era) {
        if case .handshake(let version) = era {
            sendError(id: id, JSONRPCError.invalidRequest,
                      "this session was started with initialize and speaks \(version.rawValue): requests with the 2026-07-28 _meta envelope are not accepted on it (start a new connection without initialize to speak 2026-07-28)")
            return
        }
        let version: MCPProtocolVersion
        switch MCPEnvelope.check(method: method, params: params) {
        case .failure(let rejection):
            send(["jsonrpc": "2.0", "id": id, "error": rejection.error])
            return
        case .success(let served):
            version = served
        }
        state.withLock { $0.era = .modern }
        switch method {
        case "tools/list": listTools(id: id, params, version)
        case "tools/call": callTool(id: id, params, version)
        case "subscriptions/listen": listen(id: id, params)
        default:
            sendError(id: id, JSONRPCError.methodNotFound,
                      "no method \(method) in 2026-07-28: this server offers server/discover, tools/list, tools/call and subscriptions/listen (ping and initialize are not part of 2026-07-28)")
        }
    }

    // MARK: Methods

    private func initialize(id: JSONValue, _ params: JSONValue?) {
        guard let requested = params?["protocolVersion"]?.stringValue else {
            sendError(id: id, JSONRPCError.invalidParams, "initialize needs params.protocolVersion, for example \"\(MCPProtocolVersion.latestHandshake.rawValue)\"")
            return
        }
        // A revision without initialize (2026-07-28) or an unknown one: the latest with it.
        let version = MCPProtocolVersion(rawValue: requested).flatMap { $0.isModern ? nil : $0 } ?? .latestHandshake
        let era = state.withLock { state -> Era in
            let before = state.era
            if before == .undecided { state.era = .handshake(version) }
            return before
        }
        switch era {
        case .undecided: break
        case .handshake:
            sendError(id: id, JSONRPCError.invalidRequest, "initialize was already answered in this session; start a new session to negotiate again")
            return
        case .modern:
            let rejection = MCPEnvelope.unsupported(requested, because: "this session speaks 2026-07-28, which has no initialize: keep sending _meta \(MCPEnvelope.protocolVersionKey) with each request, or start a new connection to initialize")
            send(["jsonrpc": "2.0", "id": id, "error": rejection.error])
            return
        }
        var result: JSONObject = [
            "protocolVersion": .string(version.rawValue),
            "capabilities": capabilities,
            "serverInfo": serverInfo,
        ]
        if let instructions = server.options.instructions { result["instructions"] = .string(instructions) }
        sendResult(id: id, .object(result))
    }

    /// What the server offers: tools, fixed at start (so no list_changed notices).
    private var capabilities: JSONValue { ["tools": ["listChanged": false]] }

    private var serverInfo: JSONValue {
        ["name": .string(server.options.name), "version": .string(server.options.version),
         "title": "llmos: tools after the operator's policy"]
    }

    /// server/discover: every revision spoken (so a client that cannot speak 2026-07-28
    /// knows it may initialize), the capabilities and instructions. A probe carrying the
    /// envelope has it checked, but chooses no era.
    private func discover(id: JSONValue, _ params: JSONValue?) {
        if MCPEnvelope.isPresent(params), case .failure(let rejection) = MCPEnvelope.check(method: "server/discover", params: params) {
            send(["jsonrpc": "2.0", "id": id, "error": rejection.error])
            return
        }
        var result: JSONObject = [
            "supportedVersions": .array(MCPProtocolVersion.supportedNewestFirst.map(JSONValue.string)),
            "capabilities": capabilities,
        ]
        if let instructions = server.options.instructions { result["instructions"] = .string(instructions) }
        sendResult(id: id, modernResult(result, cacheable: true))
    }

    /// subscriptions/listen (SEP-2575): the response is a stream that opens with an
    /// acknowledgment of the notification kinds the server will send, and ends when the
    /// client cancels it (no result) or the server closes (the result). This server's
    /// offer never changes, so it honours none of the kinds: the stream stays quiet.
    private func listen(id: JSONValue, _ params: JSONValue?) {
        guard params?["notifications"]?.objectValue != nil else {
            sendError(id: id, JSONRPCError.invalidParams, "subscriptions/listen needs params.notifications, an object such as {\"toolsListChanged\": true}")
            return
        }
        let key = id.serialized()
        let refusal = state.withLock { state -> String? in
            if state.closed { return "the session is closing: no new subscriptions" }
            if state.inFlight[key] != nil || state.listens[key] != nil { return "request id \(key) is already in use; use a new id for each request" }
            state.listens[key] = id
            return nil
        }
        if let refusal {
            sendError(id: id, JSONRPCError.invalidRequest, refusal)
            return
        }
        send(["jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
              "params": ["notifications": [:], "_meta": .object(subscriptionMeta(id))]])
    }

    private func subscriptionMeta(_ id: JSONValue) -> JSONObject {
        [MCPEnvelope.subscriptionIDKey: id, MCPEnvelope.serverInfoKey: serverInfo]
    }

    /// A 2026-07-28 result: `resultType`, the serverInfo stamp and, for cacheable ones
    /// (discover, tools/list), a freshness hint. The offer is fixed while the server
    /// runs, but a restart may change the policy: a minute, private to the client's key.
    func modernResult(_ result: JSONObject, cacheable: Bool = false) -> JSONValue {
        var result = result
        result["resultType"] = "complete"
        if cacheable {
            result["ttlMs"] = .int(Self.cacheTTLMilliseconds)
            result["cacheScope"] = "private"
        }
        var meta = result["_meta"]?.objectValue ?? [:]
        if meta[MCPEnvelope.serverInfoKey] == nil { meta[MCPEnvelope.serverInfoKey] = serverInfo }
        result["_meta"] = .object(meta)
        return .object(result)
    }

    static let cacheTTLMilliseconds: Int64 = 60_000

    private func listTools(id: JSONValue, _ params: JSONValue?, _ version: MCPProtocolVersion) {
        // Every tool fits in one page; a cursor can only be one we never gave.
        if let cursor = params?["cursor"], !cursor.isNull {
            sendError(id: id, JSONRPCError.invalidParams, "unknown cursor \(cursor.serialized()): this server lists every tool in one page and gives no cursor")
            return
        }
        let catalog = server.catalog
        let tools = catalog.offered.map { catalog.definition($0, protocolVersion: version) }
        let result: JSONObject = ["tools": .array(tools)]
        sendResult(id: id, version.isModern ? modernResult(result, cacheable: true) : .object(result))
    }

    private func callTool(id: JSONValue, _ params: JSONValue?, _ version: MCPProtocolVersion) {
        guard let name = params?["name"]?.stringValue else {
            sendError(id: id, JSONRPCError.invalidParams, "tools/call needs params.name, a tool name from tools/list")
            return
        }
        let arguments = params?["arguments"] ?? .object([:])
        guard arguments.objectValue != nil else {
            sendError(id: id, JSONRPCError.invalidParams, "tools/call \(name): arguments must be an object, got \(arguments.typeName)")
            return
        }
        let catalog = server.catalog
        guard let tool = catalog.exported[name] else {
            sendError(id: id, JSONRPCError.invalidParams,
                      "unknown tool \(name)" + NearestNames.suggestion(for: name, in: catalog.offered.map(\.mcpName))
                      + " (tools/list names every tool this server offers)")
            return
        }
        let token = CancellationToken()
        let key = id.serialized()
        let refusal = state.withLock { state -> String? in
            if state.closed { return "the session is closing: no new calls" }
            if state.inFlight[key] != nil || state.listens[key] != nil { return "request id \(key) is already in use by a call in flight; use a new id for each request" }
            state.inFlight[key] = token
            return nil
        }
        if let refusal {
            sendError(id: id, JSONRPCError.invalidRequest, refusal)
            return
        }
        var options = CallOptions(cancellation: token)
        options.client = "mcp \(transport)"
        if let progressToken = params?["_meta"]?["progressToken"] { options.progress = progressReporter(progressToken) }
        let input = arguments.serialized()
        let callOptions = options
        calls.enter()
        server.callQueue.async { [self] in
            server.callSlots.wait()
            let result: JSONValue
            do throws(LLMOSError) {
                let output = try server.kernel.call(tool.info.name, input: input, options: callOptions)
                result = Self.success(output.output, version)
            } catch {
                result = Self.failure(error)
            }
            let answer = version.isModern ? modernResult(result.objectValue ?? [:]) : result
            server.callSlots.signal()
            state.withLock { _ = $0.inFlight.removeValue(forKey: key) }
            // A cancelled request gets no answer (MCP: the client has stopped waiting).
            if !token.isCancelled { sendResult(id: id, answer) }
            calls.leave()
        }
    }

    /// The output as text (it is JSON already) and, where the revision has it, as
    /// structuredContent when it is an object (MCP allows only objects there).
    static func success(_ output: String, _ version: MCPProtocolVersion) -> JSONValue {
        var result: JSONObject = ["content": [["type": "text", "text": .string(output)]], "isError": false]
        if version.hasStructuredContent, let value = try? JSON.parse(output), value.objectValue != nil {
            result["structuredContent"] = value
        }
        return .object(result)
    }

    /// A tool error (refused, bad arguments, the driver's own error) is a result with
    /// isError, so the client's model reads the kernel's message and can correct itself;
    /// JSON-RPC errors are kept for protocol mistakes.
    static func failure(_ error: LLMOSError) -> JSONValue {
        ["content": [["type": "text", "text": .string("\(error.code.name): \(error.message)")]], "isError": true]
    }

    /// notifications/progress for `host->progress` reports: a fraction as progress of
    /// total 1, only when it grows (MCP requires progress to increase).
    private func progressReporter(_ progressToken: JSONValue) -> @Sendable (Double, String?) -> Void {
        let last = ProgressMark()
        return { [self] fraction, message in
            guard fraction >= 0 else { return }
            let grew = last.value.withLock { value -> Bool in
                guard fraction > value else { return false }
                value = fraction
                return true
            }
            guard grew else { return }
            var params: JSONObject = ["progressToken": progressToken, "progress": .double(fraction), "total": .double(1)]
            if let message { params["message"] = .string(message) }
            send(["jsonrpc": "2.0", "method": "notifications/progress", "params": .object(params)])
        }
    }

    // MARK: Sending

    private func sendResult(id: JSONValue, _ result: JSONValue) {
        send(["jsonrpc": "2.0", "id": id, "result": result])
    }

    private func sendError(id: JSONValue, _ code: Int64, _ message: String) {
        send(["jsonrpc": "2.0", "id": id, "error": ["code": .int(code), "message": .string(message)]])
    }

    private func send(_ message: JSONValue) {
        let text = message.serialized()
        sendLock.withLock { _ in sink(text) }
    }
}

/// The last progress sent for one call (a class: a Mutex cannot be captured by an escaping closure).
private final class ProgressMark: Sendable {
    let value = Mutex<Double>(-1)
}
