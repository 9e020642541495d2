import Dispatch
import LLMOSJSON
import LLMOSKernel
import Synchronization

/// One client's MCP session (one stdio pipe pair, later one HTTP session): the lifecycle
/// (initialize first), the negotiated revision, and the tool calls in flight.
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

    private struct State {
        var version: MCPProtocolVersion?
        var initializedNotified = false
        /// Tool calls running, by request id (its serialized form): what notifications/cancelled reaches.
        var inFlight: [String: CancellationToken] = [:]
        var closed = false
    }
    private let state = Mutex(State())
    private let calls = DispatchGroup()

    init(server: MCPServer, send: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.sink = send
    }

    /// The revision agreed in initialize, nil before.
    public var protocolVersion: MCPProtocolVersion? { state.withLock { $0.version } }

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
        let tokens = state.withLock { state -> [CancellationToken] in
            state.closed = true
            return Array(state.inFlight.values)
        }
        if cancelling { for token in tokens { token.cancel() } }
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
            let token = state.withLock { $0.inFlight[requestID.serialized()] }
            token?.cancel()
        default:
            break // Unknown notifications are ignored, as JSON-RPC says.
        }
    }

    private func request(id: JSONValue, _ method: String, _ params: JSONValue?) {
        switch method {
        case "initialize":
            initialize(id: id, params)
        case "ping":
            sendResult(id: id, [:])
        case "tools/list", "tools/call":
            guard let version = protocolVersion else {
                sendError(id: id, JSONRPCError.invalidRequest, "\(method) before initialize: the session starts with an initialize request")
                return
            }
            if method == "tools/list" { listTools(id: id, params, version) } else { callTool(id: id, params, version) }
        default:
            sendError(id: id, JSONRPCError.methodNotFound,
                      "no method \(method): this server offers initialize, ping, tools/list and tools/call")
        }
    }

    // MARK: Methods

    private func initialize(id: JSONValue, _ params: JSONValue?) {
        guard let requested = params?["protocolVersion"]?.stringValue else {
            sendError(id: id, JSONRPCError.invalidParams, "initialize needs params.protocolVersion, for example \"\(MCPProtocolVersion.latest.rawValue)\"")
            return
        }
        let version = MCPProtocolVersion(rawValue: requested) ?? .latest
        let already = state.withLock { state -> Bool in
            if state.version != nil { return true }
            state.version = version
            return false
        }
        if already {
            sendError(id: id, JSONRPCError.invalidRequest, "initialize was already answered in this session; start a new session to negotiate again")
            return
        }
        var result: JSONObject = [
            "protocolVersion": .string(version.rawValue),
            "capabilities": ["tools": ["listChanged": false]],
            "serverInfo": ["name": .string(server.options.name), "version": .string(server.options.version),
                           "title": "llmos: tools after the operator's policy"],
        ]
        if let instructions = server.options.instructions { result["instructions"] = .string(instructions) }
        sendResult(id: id, .object(result))
    }

    private func listTools(id: JSONValue, _ params: JSONValue?, _ version: MCPProtocolVersion) {
        // Every tool fits in one page; a cursor can only be one we never gave.
        if let cursor = params?["cursor"], !cursor.isNull {
            sendError(id: id, JSONRPCError.invalidParams, "unknown cursor \(cursor.serialized()): this server lists every tool in one page and gives no cursor")
            return
        }
        let catalog = server.catalog
        let tools = catalog.offered.map { catalog.definition($0, protocolVersion: version) }
        sendResult(id: id, ["tools": .array(tools)])
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
            if state.inFlight[key] != nil { return "request id \(key) is already in use by a call in flight; use a new id for each request" }
            state.inFlight[key] = token
            return nil
        }
        if let refusal {
            sendError(id: id, JSONRPCError.invalidRequest, refusal)
            return
        }
        var options = CallOptions(cancellation: token)
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
            server.callSlots.signal()
            state.withLock { _ = $0.inFlight.removeValue(forKey: key) }
            // A cancelled request gets no answer (MCP: the client has stopped waiting).
            if !token.isCancelled { sendResult(id: id, result) }
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
