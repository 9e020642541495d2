import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import LLMOSDigest
import LLMOSJSON
import LLMOSKernel
import LLMOSServe
import Synchronization

/// A model a client can name in a chat completion: an llmos agent with a driver set.
public struct HTTPAgentModel: Sendable {
    /// What clients send as `model`: "llmos", "llmos/scripted", ...
    public var id: String
    public var drivers: AgentDriverSet
    public var budgets: AgentBudgets
    public var description: String

    public init(id: String, drivers: AgentDriverSet, budgets: AgentBudgets, description: String) {
        self.id = id
        self.drivers = drivers
        self.budgets = budgets
        self.description = description
    }
}

/// How `llmos serve --http` serves.
public struct HTTPServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Every request but the dashboard's page needs it (Authorization: Bearer KEY); nil
    /// serves without a key (only ever on loopback: the shell refuses anything else).
    public var apiKey: String?
    /// The models offered, the default first.
    public var models: [HTTPAgentModel] = []
    /// The MCP server's options for /mcp.
    public var mcp = MCPServerOptions()
    /// A request body over this is refused (413).
    public var maxBodyBytes = 4 << 20
    /// Agent runs at once; more wait (the cpu driver's own slots queue them fairly too).
    public var maxConcurrentAgents = 4
    /// Written with every run's system prompt.
    public var workspace: String?

    public init() {}
}

/// The HTTP server: OpenAI-compatible chat completions, the JSON API, the dashboard and
/// MCP over streamable HTTP, on one kernel.
public final class LLMOSHTTPServer: Sendable {
    public let kernel: Kernel
    public let options: HTTPServerOptions
    let mcp: MCPServer
    let mcpSessions = MCPHTTPSessions()
    let contexts = ContextTracker()
    let agentSlots: DispatchSemaphore
    let agentQueue = DispatchQueue(label: "llmos.http.agents", attributes: .concurrent)
    /// SHA-256 of the key: compared in constant time, and the key itself is not kept around in another copy.
    private let keyDigest: [UInt8]?

    public init(kernel: Kernel, options: HTTPServerOptions) {
        self.kernel = kernel
        self.options = options
        self.mcp = MCPServer(kernel: kernel, options: options.mcp)
        self.agentSlots = DispatchSemaphore(value: max(1, options.maxConcurrentAgents))
        self.keyDigest = options.apiKey.map { Self.digest($0) }
    }

    /// The MCP catalog's warnings (names that clash), for the shell to print.
    public var mcpWarnings: [String] { mcp.catalog.warnings }
    public var mcpToolCount: Int { mcp.catalog.offered.count }

    static func digest(_ text: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(Array(text.utf8))
        return hasher.finalize()
    }

    /// Whether a request carries the key: `Authorization: Bearer KEY` (or `X-API-Key: KEY`).
    func authorized(_ request: Request) -> Bool {
        guard let keyDigest else { return true }
        var presented: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented = String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        if presented == nil, let name = HTTPField.Name("X-API-Key"), let value = request.headers[name] { presented = value }
        guard let presented else { return false }
        // Digests of equal length, compared in full: the time says nothing about the key.
        let given = Self.digest(presented)
        var difference: UInt8 = 0
        for index in 0..<keyDigest.count { difference |= keyDigest[index] ^ given[index] }
        return difference == 0
    }

    /// Serves until SIGINT or SIGTERM; `onListening` gets the address once bound (the
    /// port a `:0` got). Blocks the calling thread.
    public func run(onListening: @escaping @Sendable (String, Int) -> Void) throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AuthMiddleware(server: self))
        addRoutes(to: router)
        let host = options.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: options.port), serverName: "llmos"),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? 0) },
            logger: Self.quietLogger())
        let failure = Mutex<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        // The server's graceful shutdown waits for responses in progress: MCP streams
        // (a session's GET stream, a subscriptions/listen) would hold it for ever, so the
        // signal that starts it ends them too.
        let sessions = mcpSessions
        let signals = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { sessions.closeAll() }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        Task {
            do { try await app.runService() } catch { failure.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        mcpSessions.closeAll()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        // The dashboard (no data in the page itself: it asks the API with the key).
        router.get("/") { _, _ in Self.html(Dashboard.page) }
        router.get("/dashboard") { _, _ in Self.html(Dashboard.page) }
        // OpenAI-compatible.
        router.get("/v1/models") { [self] _, _ in Self.json(modelList()) }
        router.post("/v1/chat/completions") { [self] request, _ in try await chatCompletions(request) }
        // The JSON API.
        router.get("/api/processes") { [self] _, _ in Self.json(processList()) }
        router.get("/api/processes/{pid}") { [self] _, context in try processDetail(context.parameters.get("pid"), context: false) }
        router.get("/api/processes/{pid}/context") { [self] _, context in try processDetail(context.parameters.get("pid"), context: true) }
        router.post("/api/processes/{pid}/signal") { [self] request, context in try await signalProcess(request, context.parameters.get("pid")) }
        router.get("/api/drivers") { [self] _, _ in Self.json(driverList()) }
        router.get("/api/grants") { [self] _, _ in Self.json(grantList()) }
        router.get("/api/audit") { [self] request, _ in try auditTail(request) }
        router.get("/api/status") { [self] _, _ in Self.json(status()) }
        // MCP over streamable HTTP.
        router.post("/mcp") { [self] request, _ in try await mcpPost(request) }
        router.get("/mcp") { [self] request, _ in mcpGet(request) }
        router.delete("/mcp") { [self] request, _ in mcpDelete(request) }
    }

    // MARK: Responses

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized() + "\n")))
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                        .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
    static func error(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                      code: String? = nil, param: String? = nil, headers: HTTPFields = [:]) -> Response {
        json(["error": ["message": .string(message), "type": .string(type), "param": param.map(JSONValue.string) ?? .null,
                        "code": code.map(JSONValue.string) ?? .null]], status: status, headers: headers)
    }

    /// The body as JSON, or a response saying what is wrong with it.
    func jsonBody(_ request: Request) async throws -> Result<JSONValue, HTTPFailure> {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: options.maxBodyBytes)
        } catch {
            return .failure(HTTPFailure(Self.error(.contentTooLarge, "the request body is over this server's limit of \(options.maxBodyBytes) bytes",
                                                   code: "body_too_large")))
        }
        do {
            let value = try buffer.withUnsafeReadableBytes { bytes throws(JSONParseError) in try JSON.parse(bytes) }
            return .success(value)
        } catch {
            return .failure(HTTPFailure(Self.error(.badRequest, "the request body is not JSON: \(error)", code: "invalid_json")))
        }
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "llmos.http")
        logger.logLevel = .warning
        return logger
    }
}

/// A response that ends a handler early.
struct HTTPFailure: Error {
    var response: Response
    init(_ response: Response) { self.response = response }
}

/// Every path but the dashboard's page needs the key; a missing or wrong one is a 401 in
/// OpenAI's error shape (the key itself is never logged or echoed).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: LLMOSHTTPServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if request.method == .get, path == "/" || path == "/dashboard" || path == "/favicon.ico" {
            if path == "/favicon.ico" { return Response(status: .noContent) }
            return try await next(request, context)
        }
        guard server.authorized(request) else {
            let said = request.headers[.authorization] != nil || request.headers[HTTPField.Name("X-API-Key")!] != nil
            return LLMOSHTTPServer.error(
                .unauthorized,
                said ? "Incorrect API key provided. The key is the one llmos serve --http was started with (--api-key or LLMOS_API_KEY)."
                     : "No API key provided: send Authorization: Bearer KEY (the key llmos serve --http was started with: --api-key or LLMOS_API_KEY).",
                type: "invalid_request_error", code: "invalid_api_key")
        }
        // DNS rebinding: a browser page from elsewhere may not drive this server.
        if let origin = request.headers[.origin], !OriginCheck.allowed(origin, serverHost: server.options.host, authority: request.head.authority) {
            return LLMOSHTTPServer.error(.forbidden, "requests from the web origin \(origin) are refused: only pages served by this host (or loopback) may call it",
                                         type: "invalid_request_error", code: "origin_refused")
        }
        return try await next(request, context)
    }
}

enum OriginCheck {
    /// The page's own origin (the same host and port the request was sent to), loopback
    /// origins, and the server's own host.
    static func allowed(_ origin: String, serverHost: String, authority: String?) -> Bool {
        guard let url = URL(string: origin), let host = url.host?.lowercased() else { return false }
        if let authority, let port = url.port ?? (url.scheme == "https" ? 443 : 80) as Int?,
           authority.lowercased() == "\(host):\(port)" || (authority.lowercased() == host && port == 80) { return true }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        return ["localhost", "127.0.0.1", "::1"].contains(bare) || bare.hasPrefix("127.") || bare == serverHost.lowercased()
    }
}
