import Dispatch
import LLMOSJSON
import LLMOSKernel

/// The MCP revisions this server speaks: four with the `initialize` handshake, and the
/// stateless 2026-07-28, where every request carries its revision in `_meta` and
/// `server/discover` replaces the handshake. A client asking initialize for a handshake
/// revision gets it; any other is answered with the latest handshake one, and the client
/// decides whether to go on.
public enum MCPProtocolVersion: String, Sendable, CaseIterable, Comparable {
    case v2024_11_05 = "2024-11-05"
    case v2025_03_26 = "2025-03-26"
    case v2025_06_18 = "2025-06-18"
    case v2025_11_25 = "2025-11-25"
    case v2026_07_28 = "2026-07-28"

    /// What initialize answers a revision it does not know with.
    public static let latestHandshake = MCPProtocolVersion.v2025_11_25
    public static let latestModern = MCPProtocolVersion.v2026_07_28
    /// Revisions reached through initialize.
    public static let handshakeVersions = allCases.filter { !$0.isModern }
    /// Revisions with the per-request `_meta` envelope and no session.
    public static let modernVersions = allCases.filter(\.isModern)
    /// Every revision, newest first: `server/discover`'s supportedVersions and the
    /// `supported` list of an unsupported-version error.
    public static let supportedNewestFirst = allCases.reversed().map(\.rawValue)

    /// Stateless: no initialize, `_meta` on every request.
    public var isModern: Bool { self >= .v2026_07_28 }

    /// `structuredContent` and `outputSchema` came with 2025-06-18.
    var hasStructuredContent: Bool { self >= .v2025_06_18 }

    /// Dates as written compare as strings.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// How a server presents itself and what it accepts.
public struct MCPServerOptions: Sendable {
    /// `serverInfo` in the initialize answer.
    public var name = "llmos"
    public var version = "0.1.0"
    public var toolNames = MCPToolNameStyle.dotted
    /// `driver.tool` globs; empty exports every tool of every `tool`-class driver.
    public var toolPatterns: [String] = []
    /// A message (one line on stdio) longer than this is refused unread: it is a JSON-RPC
    /// error naming the limit, and the session goes on with the next line.
    public var maxMessageBytes = 16 << 20
    /// Tool calls running at once; more wait their turn (a serialized driver takes one at a time anyway).
    public var maxConcurrentCalls = 8
    /// `instructions` in the initialize answer, for the client's model.
    public var instructions: String? = "Tools of an llmos host. Every call is checked against the operator's policy and audited; a refused call says which rule refused it."

    public init() {}
}

/// An MCP server over a kernel's tools: what every session shares (the kernel, the
/// catalog, the options). Thread-safe; make one session per client connection.
public final class MCPServer: Sendable {
    public let kernel: Kernel
    public let options: MCPServerOptions
    public let catalog: MCPToolCatalog
    /// Bounds the tool calls running at once across sessions.
    let callSlots: DispatchSemaphore
    let callQueue = DispatchQueue(label: "llmos.serve.mcp.calls", attributes: .concurrent)

    public init(kernel: Kernel, options: MCPServerOptions = MCPServerOptions()) {
        self.kernel = kernel
        self.options = options
        self.catalog = MCPToolCatalog(kernel: kernel, style: options.toolNames, patterns: options.toolPatterns)
        self.callSlots = DispatchSemaphore(value: max(1, options.maxConcurrentCalls))
    }

    /// A session that writes each outgoing message (one JSON text, no newline) to `send`.
    /// `send` is called from several threads, never at once for one session. `transport`
    /// names how the client came ("stdio", "http") in the audit records of its calls.
    public func makeSession(transport: String = "stdio", send: @escaping @Sendable (String) -> Void) -> MCPSession {
        MCPSession(server: self, transport: transport, send: send)
    }
}

/// JSON-RPC 2.0 error codes, and MCP's own (2026-07-28).
public enum JSONRPCError {
    public static let parseError: Int64 = -32700
    public static let invalidRequest: Int64 = -32600
    public static let methodNotFound: Int64 = -32601
    public static let invalidParams: Int64 = -32602
    public static let internalError: Int64 = -32603
    /// An HTTP routing header (MCP-Protocol-Version, Mcp-Method, Mcp-Name) disagrees with the body.
    public static let headerMismatch: Int64 = -32020
    /// The request's `_meta` names a revision this server does not speak; `data` lists those it does.
    public static let unsupportedProtocolVersion: Int64 = -32022
}
