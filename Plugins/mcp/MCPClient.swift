// The MCP client side of the driver: starting and supervising the server, the two
// protocol revisions, the tool list and its mapping to llmos tool definitions, calls.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

/// One tool of the server, as llmos registers it.
struct MCPTool: Sendable {
    /// The llmos tool name (`[a-z][a-z0-9_]*`), without the driver prefix.
    var name: String
    /// The name the server uses.
    var mcpName: String
    var hasOutputSchema: Bool
    /// `{name, description, input_schema, output_schema?, hints, x-mcp-*}` for the kernel.
    var definition: JSONValue
}

/// How the driver learns that the server's tools changed (decided at each start).
enum ToolChangeWatch {
    /// The server does not say its tools can change (a list_changed that comes anyway is still honoured).
    case none
    /// 2025-11-25 over stdio: notifications/tools/list_changed arrives on the pipe.
    case notifications
    /// 2026-07-28 over stdio: a subscriptions/listen stream.
    case listen(ListenStream)
    /// The server can change its tools but no stream reports it here (streamable HTTP, or
    /// a listen stream refused or broken): the tools are listed again at the start of
    /// each call, and published when they differ.
    case relistEachCall

    var relists: Bool {
        if case .relistEachCall = self { return true }
        return false
    }

    var stream: ListenStream? {
        if case .listen(let stream) = self { return stream }
        return nil
    }
}

final class MCPClient: @unchecked Sendable {
    enum Mode: Equatable {
        /// 2025-11-25 and earlier: initialize, then requests on the session.
        case handshake(String)
        /// 2026-07-28: no session; `_meta` with the revision on every request.
        case stateless
        var revision: String {
            switch self {
            case .handshake(let v): return v
            case .stateless: return MCPClient.statelessRevision
            }
        }
    }

    static let statelessRevision = "2026-07-28"
    static let handshakeRevision = "2025-11-25"
    static let handshakeRevisions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
    static let clientInfo: JSONValue = ["name": "llmos", "version": .string(MCPDriver.version)]

    let settings: MCPSettings
    private let log: @Sendable (LogLevel, String) -> Void
    private let lock = NSLock()
    /// Serialises starts: a second caller waits for the first one's start instead of racing it.
    private let startLock = NSLock()
    private var process: (any MCPConnection)?
    private var mode: Mode = .handshake(MCPClient.handshakeRevision)
    private var tools: [String: MCPTool] = [:]
    private var stale = false
    private var starts = 0
    private var failedStarts = 0
    private var lastStartFailure: String?
    private var serverName = "mcp"
    private var closed = false
    /// Calls in a row that ran out of time with no answer (a hung server, at `unansweredLimit`).
    private var unansweredInARow = 0
    static let unansweredLimit = 3
    /// The server's `capabilities.tools.listChanged` (from server/discover or initialize).
    private var serverReportsToolChanges = false
    private var watch = ToolChangeWatch.none
    private var listens = 0
    /// Until when the last tools/list is fresh by the server's own cache hint (2026-07-28
    /// `ttlMs`, at most `maxListingTTLMs`): the listing at each call is skipped until then.
    private var listingFreshUntil: ContinuousClock.Instant?
    static let maxListingTTLMs = 300_000

    /// Whether the next call must list the tools first (under `lock`).
    private var needsListing: Bool {
        if stale { return true }
        guard watch.relists else { return false }
        return listingFreshUntil.map { ContinuousClock.now >= $0 } ?? true
    }

    init(settings: MCPSettings, log: @escaping @Sendable (LogLevel, String) -> Void) {
        self.settings = settings
        self.log = log
    }

    func shutdown() {
        let (current, stream) = lock.withLock { () -> ((any MCPConnection)?, ListenStream?) in
            closed = true
            defer {
                process = nil
                watch = .none
            }
            return (process, watch.stream)
        }
        stream?.close(reason: "the driver was unloaded")
        current?.stop(reason: "stopped (the driver was unloaded)")
    }

    // MARK: Operations

    /// `_tools`: the server's tools as they are now (started if needed, listed afresh).
    func currentToolDefinitions(_ call: CallContext) throws -> String {
        let (server, _) = try ensureServer(call, publish: false)
        let listed = try listTools(server, call)
        lock.withLock { tools = Dictionary(listed.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }) }
        return JSONValue.object(["tools": .array(listed.map(\.definition))]).serialized()
    }

    /// A tool call: the server started if needed, the call made, the result turned into llmos output.
    func callTool(_ operation: String, _ input: String, _ call: CallContext) throws -> String {
        let (server, heldNow) = try ensureServer(call, publish: true)
        // Held back by the kernel in the publish this very call made (the kernel does not
        // call a held-back tool; this call was already on its way).
        if let refused = heldNow?[operation] {
            throw DriverError.permissionDenied("\(serverName).\(operation) is held back: \(refused)")
        }
        guard let tool = lock.withLock({ tools[operation] }) else {
            throw DriverError.notFound("\(serverName).\(operation): the MCP server \(serverName) no longer offers this tool (it is not in its tools/list)")
        }
        let arguments: JSONValue
        do { arguments = try JSON.parse(input) } catch { throw DriverError.invalidArgument("the input is not JSON: \(error)") }
        let message: JSONValue
        do {
            message = try request(server, "tools/call", ["name": .string(tool.mcpName), "arguments": arguments], call,
                                  onTimeout: "tools/call \(tool.mcpName)")
            lock.withLock { unansweredInARow = 0 }
        } catch let error as DriverError where error.code == .cancelled || error.code == .timeout {
            // A server that lets several calls in a row run out of time is taken as hung:
            // it is stopped, and the next call starts a new one.
            let hung = lock.withLock { () -> Bool in
                unansweredInARow += 1
                return unansweredInARow >= Self.unansweredLimit
            }
            if hung && server.isAlive {
                log(.warn, "the MCP server \(serverName) (\(server.label)) left \(Self.unansweredLimit) calls in a row unanswered by their deadlines; stopping it (the next call starts it again)")
                lock.withLock { unansweredInARow = 0 }
                server.stop(reason: "stopped as hung (\(Self.unansweredLimit) calls in a row unanswered by their deadlines)")
            }
            throw error
        }
        // A list_changed that arrived meanwhile: the registry follows before this call returns.
        if lock.withLock({ stale }) { try? refreshTools(server, call) }
        return try output(of: message, tool: tool)
    }


    // MARK: The server process

    /// The running server (started first when needed) and, when this call published the
    /// tools, what the kernel held back (tool → reason).
    private func ensureServer(_ call: CallContext, publish: Bool) throws -> (any MCPConnection, [String: String]?) {
        if let running = lock.withLock({ process?.isAlive == true && !needsListing ? process : nil }) { return (running, nil) }
        startLock.lock()
        defer { startLock.unlock() }
        if let running = lock.withLock({ process?.isAlive == true ? process : nil }) {
            let (isStale, relist) = lock.withLock { (stale, needsListing) }
            if publish && relist { return (running, try refreshTools(running, call, onlyIfChanged: !isStale)) }
            return (running, nil)
        }
        if serverName == "mcp", let me = try? call.syscall("agent.self", "{}"),
           let tool = (try? JSON.parse(me))?["tool"]?.stringValue, let dot = tool.firstIndex(of: ".") {
            serverName = String(tool[..<dot])
        }
        let (failed, last, isClosed) = lock.withLock { (failedStarts, lastStartFailure, closed) }
        if isClosed { throw DriverError.unavailable("\(serverName): the driver is being unloaded") }
        if failed >= settings.maxFailedStarts {
            throw DriverError.unavailable("\(serverName): the MCP server failed to start \(failed) times in a row (settings.max_failed_starts), so it is not started again until the driver is reloaded; the last failure: \(last ?? "?")")
        }
        let previous = lock.withLock { process }
        if let previous, let why = previous.failureReason {
            log(.warn, "restarting the MCP server \(serverName): \(why)")
        }
        do {
            let server = try start(call)
            // Watching for changes before listing: a change in between is not missed.
            lock.withLock { stale = false }
            watchToolChanges(server, call)
            let listed = try listTools(server, call)
            lock.withLock {
                tools = Dictionary(listed.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                process = server
                failedStarts = 0
            }
            return (server, publish ? try self.publish(listed, call) : nil)
        } catch {
            lock.withLock {
                failedStarts += 1
                lastStartFailure = "\(error)"
            }
            throw error
        }
    }

    private func start(_ call: CallContext) throws -> any MCPConnection {
        if let url = settings.url {
            let connection = HTTPConnection(url: url, serverName: serverName)
            connection.onNotification = { [weak self] method, params in self?.notification(method, params) }
            try handshake(connection, call)
            log(.info, "connected to the MCP server \(serverName) at \(url)")
            return connection
        }
        struct Request: Encodable { var program: String; var sandbox: Bool }
        struct Sandbox: Decodable { var plan: String; var summary: String; var notes: [String] }
        struct Authorized: Decodable { var path: String; var workspace: String; var sandbox: Sandbox? }
        let authorized: Authorized = try call.syscall("exec.authorize", Request(program: settings.command, sandbox: settings.sandbox))
        if let sandbox = authorized.sandbox {
            for note in sandbox.notes { log(note.contains("NOT available") ? .warn : .debug, "sandbox: \(note)") }
        } else {
            log(.warn, "the MCP server \(serverName) runs without a sandbox (settings.sandbox is false): it can do whatever this user can")
        }
        var environment: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
        let host = ProcessInfo.processInfo.environment
        for name in ["HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"] { if let v = host[name] { environment[name] = v } }
        for (k, v) in settings.env { environment[k] = try resolveEnv(k, v, call) }
        let generation = lock.withLock { () -> Int in starts += 1; return starts }
        let name = serverName
        let log = self.log
        let server = try ServerProcess.start(path: authorized.path, argv: [settings.command] + settings.args, environment: environment,
                                             directory: authorized.workspace, sandboxPlan: authorized.sandbox?.plan,
                                             serverName: name, generation: generation) { process in
            process.log = { level, message in log(level, message) }
            process.onNotification = { [weak self] method, params in self?.notification(method, params) }
            process.onUnmatchedResponse = { [weak self] message in self?.listenResponse(message) ?? false }
        }
        log(.info, "started the MCP server \(name) (pid \(server.pid)): \(authorized.path) \(settings.args.joined(separator: " "))"
            + (authorized.sandbox.map { "; sandbox: \($0.summary)" } ?? "; no sandbox"))
        do {
            try handshake(server, call)
        } catch {
            server.stop(reason: "stopped (its start failed)")
            throw error
        }
        return server
    }

    /// `${env:NAME}` in a settings.env value is the host's NAME, read through the kernel's
    /// env.get (an `env` decision, audited); anything else is taken literally.
    private func resolveEnv(_ key: String, _ value: String, _ call: CallContext) throws -> String {
        guard value.hasPrefix("${env:"), value.hasSuffix("}") else { return value }
        let name = String(value.dropFirst(6).dropLast())
        struct Answer: Decodable { var value: String? }
        let answer: Answer
        do { answer = try call.syscall("env.get", ["name": name]) } catch {
            throw DriverError(error.code, "settings.env.\(key): \(error.message)")
        }
        guard let found = answer.value else {
            throw DriverError.notFound("settings.env.\(key): the host has no environment variable \(name) to pass to the MCP server \(serverName)")
        }
        return found
    }

    private func notification(_ method: String, _ params: JSONValue) {
        if let stream = lock.withLock({ watch.stream }), stream.owns(method, params) {
            stream.handle(method, params)
            return
        }
        switch method {
        case "notifications/tools/list_changed":
            toolsChanged(on: method)
        case "notifications/message":
            log(.info, "server log: \(params["data"]?.serialized() ?? "")")
        default:
            break
        }
    }

    // MARK: Tool changes

    /// Decides how this server's tool changes are learnt, and opens a listen stream when
    /// that is the way (2026-07-28 over stdio), waiting for its acknowledgement (so that
    /// a change made by the very next call is reported). A listen that fails is logged and
    /// falls back to listing the tools again at each call.
    private func watchToolChanges(_ server: any MCPConnection, _ call: CallContext) {
        let (currentMode, reports) = lock.withLock { (mode, serverReportsToolChanges) }
        guard let process = server as? ServerProcess else {
            // Streamable HTTP: no stream can be held between calls (HTTPConnection.swift).
            setWatch(reports ? .relistEachCall : .none)
            if reports {
                log(.debug, "\(serverName) reports tool list changes, but only on a stream a driver cannot hold over HTTP; listing its tools again at the start of each call")
            }
            return
        }
        guard case .stateless = currentMode else {
            setWatch(.notifications)
            return
        }
        guard reports else {
            setWatch(.none)
            return
        }
        let id = lock.withLock { () -> String in
            listens += 1
            return "listen-\(listens)"
        }
        let name = serverName
        let stream = ListenStream(
            id: id, process: process, stamp: { [weak self] params in self?.meta(params) ?? params },
            onChange: { [weak self] in self?.toolsChanged(on: "subscriptions/listen") },
            onEnd: { [weak self] why in
                guard let self else { return }
                self.log(.warn, "the MCP server \(name)'s subscriptions/listen stream ended: \(why); listing its tools again at the start of each call instead")
                self.lock.withLock {
                    guard self.watch.stream?.id == id else { return }   // a stream of an earlier process
                    self.watch = .relistEachCall
                    self.stale = true   // no replay: what changed meanwhile is unknown
                }
            })
        setWatch(.listen(stream))
        do { try stream.open() } catch {
            stream.close(reason: "it could not be sent")
            log(.warn, "\(name): cannot open a subscriptions/listen stream (\(error.message)); listing its tools again at the start of each call instead")
            setWatch(.relistEachCall)
            return
        }
        guard stream.waitUntilSettled(limitMs: settings.startupTimeoutMs, isCancelled: { call.isCancelled }) else {
            stream.close(reason: "not acknowledged in time")
            setWatch(.relistEachCall)
            // A server that died meanwhile fails the start at its tools/list, saying how it ended.
            if process.isAlive && !call.isCancelled {
                log(.warn, "\(name): the MCP server did not acknowledge subscriptions/listen within \(settings.startupTimeoutMs) ms (settings.startup_timeout_ms); listing its tools again at the start of each call instead")
            }
            return
        }
        if stream.current == .open {
            log(.debug, "\(name): listening for tool list changes on subscriptions/listen (\(id))")
        }
    }

    private func setWatch(_ new: ToolChangeWatch) {
        lock.withLock { watch = new }
    }

    private func toolsChanged(on source: String) {
        log(.info, "the MCP server \(serverName) says its tools changed (\(source)); listing them again at the next call boundary")
        lock.withLock { stale = true }
    }

    /// A response with an id the process did not mint: the end of the listen stream.
    private func listenResponse(_ message: JSONValue) -> Bool {
        guard let stream = lock.withLock({ watch.stream }), message["id"]?.stringValue == stream.id else { return false }
        stream.handleResponse(message)
        return true
    }

    // MARK: Protocol

    private func meta(_ params: JSONValue) -> JSONValue {
        guard case .stateless = lock.withLock({ mode }) else { return params }
        var object = params.objectValue ?? JSONObject()
        var meta = object["_meta"]?.objectValue ?? JSONObject()
        meta["io.modelcontextprotocol/protocolVersion"] = .string(Self.statelessRevision)
        meta["io.modelcontextprotocol/clientCapabilities"] = .object([:])
        meta["io.modelcontextprotocol/clientInfo"] = Self.clientInfo
        object["_meta"] = .object(meta)
        return .object(object)
    }

    /// A request on the current revision; a JSON-RPC error becomes a DriverError naming it.
    private func request(_ server: any MCPConnection, _ method: String, _ params: JSONValue, _ call: CallContext,
                         waitLimitMs: Int? = nil, onTimeout: String) throws -> JSONValue {
        let message = try server.request(method, meta(params), call: call, waitLimitMs: waitLimitMs,
                                         onTimeout: "\(serverName): the MCP server did not answer \(onTimeout) within \(waitLimitMs ?? 0) ms")
        if let error = message["error"] {
            let code = error["code"]?.int64Value ?? 0
            let text = error["message"]?.stringValue ?? error.serialized()
            let kind: DriverError.Code = code == -32602 ? .invalidArgument : code == -32601 ? .unsupported : .unavailable
            throw DriverError(kind, "\(serverName): the MCP server answered \(method) with error \(code): \(text)")
        }
        guard let result = message["result"], result.objectValue != nil else {
            throw DriverError.invalidOutput("\(serverName): the MCP server answered \(method) without a result object: \(ServerProcess.quote(message.serialized()))")
        }
        return result
    }

    private func handshake(_ server: any MCPConnection, _ call: CallContext) throws {
        let limit = settings.startupTimeoutMs
        let wanted = settings.protocolRevision
        if wanted != Self.handshakeRevision {
            lock.withLock { mode = .stateless }
            server.negotiated(Self.statelessRevision, modern: true)
            do {
                let discovered = try request(server, "server/discover", .object([:]), call, waitLimitMs: limit, onTimeout: "server/discover")
                let versions = discovered["supportedVersions"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if versions.contains(Self.statelessRevision) {
                    recordCapabilities(discovered)
                    log(.debug, "\(serverName) speaks MCP \(Self.statelessRevision) (stateless)")
                    return
                }
                if wanted == Self.statelessRevision {
                    throw DriverError.unsupported("\(serverName): settings.protocol asks for \(Self.statelessRevision), but the server supports \(versions.joined(separator: ", "))")
                }
            } catch let error as DriverError where wanted == "auto" && error.code != .timeout && error.code != .cancelled && server.isAlive {
                log(.debug, "\(serverName) does not answer server/discover (\(error.message)); using the initialize handshake")
            }
        }
        lock.withLock { mode = .handshake(Self.handshakeRevision) }
        let result = try request(server, "initialize", ["protocolVersion": .string(Self.handshakeRevision), "capabilities": .object([:]),
                                                        "clientInfo": Self.clientInfo], call, waitLimitMs: limit, onTimeout: "initialize")
        let version = result["protocolVersion"]?.stringValue ?? ""
        guard Self.handshakeRevisions.contains(version) else {
            throw DriverError.unsupported("\(serverName): the MCP server answered initialize with protocol version \"\(version)\"; llmos speaks \(Self.statelessRevision) and \(Self.handshakeRevisions.joined(separator: ", "))")
        }
        lock.withLock { mode = .handshake(version) }
        recordCapabilities(result)
        server.negotiated(version, modern: false)
        server.notify("notifications/initialized", .object([:]), call: call)
    }

    private func recordCapabilities(_ result: JSONValue) {
        let reports = result["capabilities"]?["tools"]?["listChanged"]?.boolValue == true
        lock.withLock { serverReportsToolChanges = reports }
    }

    private func listTools(_ server: any MCPConnection, _ call: CallContext) throws -> [MCPTool] {
        var raw: [JSONValue] = []
        var cursor: String?
        var ttlMs = Int64(Self.maxListingTTLMs)
        for _ in 0..<100 {
            let params: JSONValue = cursor.map { ["cursor": .string($0)] } ?? .object([:])
            let result = try request(server, "tools/list", params, call, waitLimitMs: settings.startupTimeoutMs, onTimeout: "tools/list")
            ttlMs = min(ttlMs, max(0, result["ttlMs"]?.int64Value ?? 0))
            guard let page = result["tools"]?.arrayValue else {
                throw DriverError.invalidOutput("\(serverName): the MCP server's tools/list result has no tools list: \(ServerProcess.quote(result.serialized()))")
            }
            raw += page
            guard let next = result["nextCursor"]?.stringValue, !next.isEmpty else { break }
            cursor = next
        }
        // The least fresh page decides; no hint (2025-11-25) or 0 means "list again each time".
        let fresh = ttlMs > 0 ? ContinuousClock.now.advanced(by: .milliseconds(ttlMs)) : nil
        lock.withLock { listingFreshUntil = fresh }
        return Self.mapTools(raw, server: serverName, log: log)
    }

    /// Reports the tools to the kernel, which registers them (or holds back changed ones).
    @discardableResult
    private func publish(_ listed: [MCPTool], _ call: CallContext) throws -> [String: String] {
        let response = try call.syscall("tools.publish", JSONValue.object(["tools": .array(listed.map(\.definition))]).serialized())
        let report = (try? JSON.parse(response)) ?? .null
        var held: [String: String] = [:]
        for entry in report["held_back"]?.arrayValue ?? [] {
            guard let name = entry["name"]?.stringValue, let dot = name.firstIndex(of: ".") else { continue }
            held[String(name[name.index(after: dot)...])] = entry["reason"]?.stringValue ?? "its definition changed since it was approved"
        }
        return held
    }

    /// Lists the tools again and publishes them (`onlyIfChanged`: only when they differ
    /// from the last listing, for the re-list at each call).
    @discardableResult
    private func refreshTools(_ server: any MCPConnection, _ call: CallContext, onlyIfChanged: Bool = false) throws -> [String: String] {
        lock.withLock { stale = false }
        let listed = try listTools(server, call)
        let fresh = Dictionary(listed.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let changed = lock.withLock { () -> Bool in
            defer { tools = fresh }
            return tools.mapValues(\.definition) != fresh.mapValues(\.definition)
        }
        if onlyIfChanged && !changed { return [:] }
        return try publish(listed, call)
    }

    // MARK: Tools and results

    /// An llmos tool name for an MCP one: lowercase, `[a-z0-9_]`, starting with a letter, at most 64.
    static func llmosName(_ mcpName: String) -> String {
        var out = ""
        for scalar in mcpName.lowercased().unicodeScalars {
            if (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || scalar == "_" {
                out.unicodeScalars.append(scalar)
            } else {
                out += "_"
            }
        }
        if out.first.map({ !($0 >= "a" && $0 <= "z") }) ?? true { out = "t_" + out }
        return String(out.prefix(64))
    }

    static func mapTools(_ raw: [JSONValue], server: String, log: (LogLevel, String) -> Void) -> [MCPTool] {
        var result: [MCPTool] = []
        var used = Set<String>()
        for item in raw {
            guard let mcpName = item["name"]?.stringValue, !mcpName.isEmpty else {
                log(.warn, "\(server): a tool without a name in tools/list, skipped: \(ServerProcess.quote(item.serialized()))")
                continue
            }
            var name = llmosName(mcpName)
            if used.contains(name) {
                var n = 2
                while used.contains("\(name.prefix(60))_\(n)") { n += 1 }
                name = "\(name.prefix(60))_\(n)"
            }
            used.insert(name)
            let description = item["description"]?.stringValue.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
                ?? item["title"]?.stringValue
                ?? "The \(mcpName) tool of the MCP server \(server) (the server gave no description)."
            var input = item["inputSchema"]?.objectValue ?? JSONObject()
            if input["type"] == nil { input["type"] = "object" }
            var definition: JSONObject = ["name": .string(name), "description": .string(description), "input_schema": .object(input)]
            var hasOutput = false
            if let output = item["outputSchema"], output.objectValue != nil {
                definition["output_schema"] = output
                hasOutput = true
            }
            // Annotations are hints, never trust: only destructiveHint is used, and only to
            // ask more (a destructive tool asks unless a rule allows it by name).
            let annotations = item["annotations"]
            var hints = JSONObject()
            if annotations?["readOnlyHint"]?.boolValue == true { hints["read_only"] = true }
            if annotations?["destructiveHint"]?.boolValue == true && annotations?["readOnlyHint"]?.boolValue != true { hints["destructive"] = true }
            if annotations?["idempotentHint"]?.boolValue == true { hints["idempotent"] = true }
            if !hints.isEmpty { definition["hints"] = .object(hints) }
            definition["x-mcp-name"] = .string(mcpName)
            if let title = item["title"] { definition["x-mcp-title"] = title }
            if let annotations { definition["x-mcp-annotations"] = annotations }
            result.append(MCPTool(name: name, mcpName: mcpName, hasOutputSchema: hasOutput, definition: .object(definition)))
        }
        return result
    }

    /// A tools/call result as llmos output: structuredContent for a tool with an output
    /// schema, else `{"content": [...]}` (with `structured_content` when given).
    private func output(of result: JSONValue, tool: MCPTool) throws -> String {
        let content = result["content"]?.arrayValue ?? []
        if result["isError"]?.boolValue == true {
            let text = content.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
            let shown = text.isEmpty ? content.map { $0.serialized() }.joined(separator: " ") : text
            // llmos's own MCP server writes "CODE: message": keep the code.
            for code in ["invalid_argument", "permission_denied", "not_found", "timeout", "unavailable", "unsupported"] where shown.hasPrefix(code + ": ") {
                let codes: [String: DriverError.Code] = ["invalid_argument": .invalidArgument, "permission_denied": .permissionDenied, "not_found": .notFound,
                                                         "timeout": .timeout, "unavailable": .unavailable, "unsupported": .unsupported]
                throw DriverError(codes[code]!, "the MCP tool \(tool.mcpName) failed: \(shown.dropFirst(code.count + 2))")
            }
            throw DriverError.internal("the MCP tool \(tool.mcpName) failed: \(shown)")
        }
        if tool.hasOutputSchema {
            guard let structured = result["structuredContent"], structured.objectValue != nil else {
                throw DriverError.invalidOutput("the MCP tool \(tool.mcpName) declares an outputSchema but its result has no structuredContent object")
            }
            return structured.serialized()
        }
        var out: JSONObject = ["content": .array(content)]
        if let structured = result["structuredContent"] { out["structured_content"] = structured }
        return JSONValue.object(out).serialized()
    }
}
