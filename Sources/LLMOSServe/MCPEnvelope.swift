import Foundation
import LLMOSJSON

/// The per-request envelope of the stateless 2026-07-28 revision: there is no
/// initialize, so every request names its revision and the client's capabilities in
/// `params._meta`, and over HTTP repeats the revision, method and tool name in headers
/// that intermediaries route on.
public enum MCPEnvelope {
    public static let protocolVersionKey = "io.modelcontextprotocol/protocolVersion"
    public static let clientCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    public static let clientInfoKey = "io.modelcontextprotocol/clientInfo"
    /// Stamped on every 2026-07-28 result's `_meta`.
    public static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
    /// Names the `subscriptions/listen` stream a notification or result belongs to.
    public static let subscriptionIDKey = "io.modelcontextprotocol/subscriptionId"

    /// The HTTP headers a 2026-07-28 request repeats from its body.
    public struct RoutingHeaders: Sendable {
        public var protocolVersion: String?
        public var method: String?
        public var name: String?

        public init(protocolVersion: String?, method: String?, name: String?) {
            self.protocolVersion = protocolVersion
            self.method = method
            self.name = name
        }
    }

    /// A request refused before it is served: a JSON-RPC error's fields.
    public struct Rejection: Sendable, Error {
        public var code: Int64
        public var message: String
        public var data: JSONValue?

        public var error: JSONValue {
            var object: JSONObject = ["code": .int(code), "message": .string(message)]
            if let data { object["data"] = data }
            return .object(object)
        }
    }

    /// Whether a request claims the 2026-07-28 era: its `_meta` names a protocol version
    /// (legacy requests carry `_meta` too, for a progress token, but never this key).
    public static func isPresent(_ params: JSONValue?) -> Bool {
        params?["_meta"]?[protocolVersionKey] != nil
    }

    /// Checks the envelope, in the order the revision gives: `_meta` with the required
    /// pair, then (over HTTP) the headers against the body, then the revision itself.
    /// Returns the revision the request is served at.
    public static func check(method: String, params: JSONValue?, headers: RoutingHeaders? = nil) -> Result<MCPProtocolVersion, Rejection> {
        guard let meta = params?["_meta"]?.objectValue else {
            return .failure(Rejection(code: JSONRPCError.invalidParams,
                                      message: "\(method): params._meta must be an object with \(protocolVersionKey) (\"\(MCPProtocolVersion.latestModern.rawValue)\") and \(clientCapabilitiesKey) (2026-07-28 has no initialize: every request carries them), or start the session with initialize"))
        }
        let missing = [protocolVersionKey, clientCapabilitiesKey].filter { meta[$0] == nil }
        if !missing.isEmpty {
            return .failure(Rejection(code: JSONRPCError.invalidParams,
                                      message: "\(method): params._meta is missing \(missing.joined(separator: " and ")): a 2026-07-28 request carries both \(protocolVersionKey) and \(clientCapabilitiesKey)"))
        }
        let requested = meta[protocolVersionKey]
        if let headers {
            guard let header = headers.protocolVersion, requested == .string(header) else {
                return .failure(Rejection(code: JSONRPCError.headerMismatch,
                                          message: "the MCP-Protocol-Version header (\(headers.protocolVersion ?? "missing")) does not match params._meta \(protocolVersionKey) (\(requested?.serialized() ?? "missing")): send the same revision in both"))
            }
            guard headers.method == method else {
                return .failure(Rejection(code: JSONRPCError.headerMismatch,
                                          message: "the Mcp-Method header (\(headers.method ?? "missing")) does not match the body's method \(method): send the same method in both"))
            }
            if method == "tools/call", let name = params?["name"]?.stringValue, decodeHeaderValue(headers.name) != name {
                return .failure(Rejection(code: JSONRPCError.headerMismatch,
                                          message: "the Mcp-Name header (\(headers.name ?? "missing")) does not match params.name \(name): send the tool's name in both"))
            }
        }
        guard let text = requested?.stringValue else {
            return .failure(Rejection(code: JSONRPCError.invalidParams, message: "params._meta \(protocolVersionKey) must be a string, for example \"\(MCPProtocolVersion.latestModern.rawValue)\""))
        }
        guard let version = MCPProtocolVersion(rawValue: text), version.isModern else {
            return .failure(unsupported(text))
        }
        return .success(version)
    }

    /// -32022 for a revision this server does not serve per request; `data.supported`
    /// lists every revision it speaks, so a client can pick one (or fall back to initialize).
    public static func unsupported(_ requested: String, because reason: String? = nil) -> Rejection {
        let modern = MCPProtocolVersion.modernVersions.map(\.rawValue).joined(separator: ", ")
        let handshake = MCPProtocolVersion.handshakeVersions.map(\.rawValue).joined(separator: ", ")
        return Rejection(code: JSONRPCError.unsupportedProtocolVersion,
                         message: reason ?? "protocol version \(requested) is not one this server speaks: send \(modern) in _meta, or initialize with \(handshake)",
                         data: ["supported": .array(MCPProtocolVersion.supportedNewestFirst.map(JSONValue.string)), "requested": .string(requested)])
    }

    /// Header values that would not survive HTTP travel as `=?base64?…?=`.
    static func decodeHeaderValue(_ value: String?) -> String? {
        guard let value, value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.count >= 11 else { return value }
        let payload = String(value.dropFirst(9).dropLast(2))
        guard let data = Data(base64Encoded: payload) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}
