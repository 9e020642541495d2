// The mcp driver: an MCP server mounted as an llmos driver (issue 9).
//
// One manifest per server (class tool, `tools: discovered`, `library: {path:
// libllmos_mcp.so, name: mcp}`, and the server under `settings`: a command and its
// arguments for stdio). The driver
// - starts the server lazily, on the first call that needs it, through the kernel's
//   exec.authorize (so starting it is an `exec` decision, audited), and shares that one
//   process among every call and agent process of the host (threading: concurrent);
// - speaks the 2026-07-28 revision (server/discover, `_meta` on every request) when the
//   server does, else 2025-11-25 with initialize (`settings.protocol` can insist on one);
// - reports the server's tools to the kernel (`_tools` at load the first time,
//   `tools.publish` after each start and each change the server reports: list_changed on
//   2025-11-25, a subscriptions/listen stream on 2026-07-28 over stdio, a listing at each
//   call over streamable HTTP, where no stream can be held between calls), which
//   registers them as `server.tool` with their schemas, pins each definition by hash and
//   holds back one that changed until the operator approves it (`llmos drivers approve`);
// - supervises the process: a crash or a protocol violation fails the calls in flight
//   with what happened (and the server's last stderr lines), the next call restarts it;
//   a call past its deadline is cancelled at the server (notifications/cancelled).
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

final class MCPDriver: LLMOSDriver, @unchecked Sendable {
    static let name = "mcp"
    static let version = "1.0.0"

    let client: MCPClient

    init(context: DriverContext) throws {
        let settings = try MCPSettings.parse(context.config)
        client = MCPClient(settings: settings, log: { level, message in context.log(level, message) })
    }

    deinit { client.shutdown() }

    static func register(_ router: inout Router) {
        // The kernel asks for the tools (at load, the first time; `llmos drivers approve`).
        router.addRaw(Kernel_discoveryOperation) { driver, _, call in
            try driver.client.currentToolDefinitions(call)
        }
        router.addFallback { driver, operation, input, call in
            try driver.client.callTool(operation, input, call)
        }
    }
}

/// The kernel's reserved discovery operation (LLMOSKernel's `Kernel.discoveryOperation`).
let Kernel_discoveryOperation = "_tools"

/// What the manifest's `settings` (and `--config NAME=...`) say about the server.
struct MCPSettings: Sendable {
    /// The program (a name looked up by exec.authorize, or a path), for stdio.
    var command: String
    /// The server's URL, for streamable HTTP (instead of a command).
    var url: String?
    var args: [String] = []
    /// Extra environment variables for the server (literal values).
    var env: [String: String] = [:]
    /// "auto" (2026-07-28 when the server speaks it, else 2025-11-25), "2026-07-28" or "2025-11-25".
    var protocolRevision = "auto"
    /// How long a start (spawn, handshake, the first tools/list) may take.
    var startupTimeoutMs = 20_000
    /// Consecutive failed starts before the driver stops trying (until it is reloaded).
    var maxFailedStarts = 5
    /// Start the server in the sandbox the kernel plans from this driver's grants. Off only
    /// when the operator says so (`--config NAME.sandbox=false`).
    var sandbox = true

    static let keys = ["command", "args", "env", "url", "protocol", "startup_timeout_ms", "max_failed_starts", "sandbox"]
    static let revisions = ["auto", "2026-07-28", "2025-11-25"]

    static func parse(_ json: String) throws(DriverError) -> MCPSettings {
        let value: JSONValue
        do { value = try JSON.parse(json) } catch { throw .invalidArgument("settings: not JSON: \(error)") }
        guard let object = value.objectValue else { throw .invalidArgument("settings: expected an object") }
        for key in object.keys where !keys.contains(key) {
            throw .invalidArgument("settings.\(key): unknown key (the mcp driver takes \(keys.joined(separator: ", ")))")
        }
        if let url = object["url"] {
            guard object["command"] == nil else { throw .invalidArgument("settings: give either command (stdio) or url (streamable HTTP), not both") }
            guard let text = url.stringValue, text.hasPrefix("http://") || text.hasPrefix("https://") else {
                throw .invalidArgument("settings.url: expected an http:// or https:// URL, got \(url.serialized())")
            }
            for key in ["args", "env", "sandbox"] where object[key] != nil {
                throw .invalidArgument("settings.\(key): only for a server started with settings.command; a server at a URL runs elsewhere")
            }
            var settings = MCPSettings(command: "")
            settings.url = text
            try settings.parseCommon(object)
            return settings
        }
        guard let command = object["command"]?.stringValue, !command.isEmpty else {
            throw .invalidArgument("settings.command: missing; expected the server's program (a name such as uvx, or a path) and settings.args for its arguments, or settings.url for a server reached over streamable HTTP")
        }
        var settings = MCPSettings(command: command)
        if let args = object["args"] {
            guard let items = args.arrayValue else { throw .invalidArgument("settings.args: expected a list of strings, got \(args.typeName)") }
            for (i, item) in items.enumerated() {
                guard let s = item.stringValue else { throw .invalidArgument("settings.args[\(i)]: expected a string, got \(item.typeName)") }
                settings.args.append(s)
            }
        }
        if let env = object["env"] {
            guard let pairs = env.objectValue else { throw .invalidArgument("settings.env: expected a mapping of NAME: value, got \(env.typeName)") }
            for (name, item) in pairs {
                guard let s = item.stringValue else { throw .invalidArgument("settings.env.\(name): expected a string, got \(item.typeName)") }
                settings.env[name] = s
            }
        }
        try settings.parseCommon(object)
        return settings
    }

    mutating func parseCommon(_ object: JSONObject) throws(DriverError) {
        var settings = self
        defer { self = settings }
        if let revision = object["protocol"] {
            guard let s = revision.stringValue, Self.revisions.contains(s) else {
                throw .invalidArgument("settings.protocol: must be one of \(Self.revisions.joined(separator: ", ")), got \(revision.serialized())")
            }
            settings.protocolRevision = s
        }
        if let ms = object["startup_timeout_ms"] {
            guard let n = ms.int64Value, n >= 1, n <= 600_000 else { throw .invalidArgument("settings.startup_timeout_ms: expected an integer from 1 to 600000, got \(ms.serialized())") }
            settings.startupTimeoutMs = Int(n)
        }
        if let flag = object["sandbox"] {
            guard case .bool(let on) = flag else { throw .invalidArgument("settings.sandbox: expected true or false, got \(flag.serialized())") }
            settings.sandbox = on
        }
        if let n = object["max_failed_starts"] {
            guard let v = n.int64Value, v >= 1, v <= 1000 else { throw .invalidArgument("settings.max_failed_starts: expected an integer from 1 to 1000, got \(n.serialized())") }
            settings.maxFailedStarts = Int(v)
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(MCPDriver.self, host, driver) }
