import Glibc
import LLMOSJSON
import LLMOSKernel

/// How llmos's `driver.tool` names appear to MCP clients.
public enum MCPToolNameStyle: String, Sendable, CaseIterable {
    /// `calc.add` as it is: legal in MCP 2025-11-25 (1–128 of `A-Z a-z 0-9 _ - .`).
    case dotted
    /// `calc__add`: for clients whose model APIs refuse dots in function names
    /// (`^[a-zA-Z0-9_-]{1,64}$`). Two underscores, since driver and tool names may hold one.
    case underscore

    public func mcpName(for toolName: String) -> String {
        switch self {
        case .dotted: return toolName
        case .underscore: return toolName.replacingOccurrences(of: ".", with: "__")
        }
    }
}

/// One tool as the server offers it.
public struct MCPTool: Sendable {
    /// The name the client sees and calls.
    public var mcpName: String
    /// The kernel's `driver.tool`: what `Kernel.call` is given.
    public var info: ToolInfo
}

/// Which of the kernel's tools a server exports, under which names, and which of those
/// the operator's policy lets a client call. Built once: `llmos serve` loads its drivers
/// before it serves and neither hot-plugs nor reloads its policy (so `listChanged` is false).
///
/// Exported: tools of drivers of class `tool` (model, memory and storage drivers are the
/// kernel's devices, not tools for a client), narrowed by `patterns` when given.
/// Offered (listed): the exported tools whose `tool.call` decision for the operator's
/// own call is `allow`; `deny` and `ask` ones are not listed. A call to an exported
/// tool that is not offered still goes to `Kernel.call`, so that its refusal is the
/// kernel's own, with the rule that decided, and is audited.
public struct MCPToolCatalog: Sendable {
    /// Exported tools by MCP name.
    public private(set) var exported: [String: MCPTool] = [:]
    /// Listed tools, sorted by name.
    public private(set) var offered: [MCPTool] = []
    /// Why some tools were left out (name collisions, names MCP advises against), for the operator's log.
    public private(set) var warnings: [String] = []

    public init(kernel: Kernel, style: MCPToolNameStyle, patterns: [String]) {
        var classes: [String: DeviceClass] = [:]
        for driver in kernel.loadedDrivers { classes[driver.name] = driver.deviceClass }
        for tool in kernel.tools {
            guard classes[tool.driver] == .tool else { continue }
            if !patterns.isEmpty, !patterns.contains(where: { Self.matches(tool.name, glob: $0) }) { continue }
            let name = style.mcpName(for: tool.name)
            if let other = exported[name] {
                warnings.append("\(tool.name) is not served: its MCP name \(name) is taken by \(other.info.name) (try --tool-names dotted)")
                continue
            }
            if name.utf8.count > 128 {
                warnings.append("\(tool.name): its MCP name is \(name.utf8.count) characters; MCP advises at most 128, some clients may refuse it")
            }
            exported[name] = MCPTool(mcpName: name, info: tool)
        }
        let broker = kernel.configuration.broker
        offered = exported.values
            .filter { broker.evaluateToolCall(tool: $0.info.name, hints: $0.info.hints, caller: "").verdict == .allow }
            .sorted { $0.mcpName < $1.mcpName }
    }

    /// Shell-style glob (`calc.*`, `text.c?unt`) over the whole `driver.tool` name.
    static func matches(_ name: String, glob: String) -> Bool {
        fnmatch(glob, name, 0) == 0
    }

    /// The MCP `Tool` object (2025-11-25 shape; `outputSchema` from 2025-06-18 on).
    func definition(_ tool: MCPTool, protocolVersion: MCPProtocolVersion) -> JSONValue {
        var object: JSONObject = ["name": .string(tool.mcpName), "title": .string(tool.info.name)]
        object["description"] = .string(tool.info.description)
        object["inputSchema"] = Self.objectSchema(tool.info.inputSchema)
        if protocolVersion.hasStructuredContent, let output = tool.info.outputSchema, output["type"]?.stringValue == "object" {
            // MCP requires an object schema here; a tool whose output is not an object
            // is described in its text content only.
            object["outputSchema"] = output
        }
        let hints = tool.info.hints
        // Hints, not promises: a client must not trust them (the kernel does not either).
        object["annotations"] = [
            "readOnlyHint": .bool(hints.readOnly),
            "destructiveHint": .bool(hints.destructive),
            "idempotentHint": .bool(hints.idempotent),
        ]
        return .object(object)
    }

    /// MCP requires `"type": "object"` at the top of an input schema.
    static func objectSchema(_ schema: JSONValue) -> JSONValue {
        guard var object = schema.objectValue else { return ["type": "object"] }
        if object["type"] == nil { object["type"] = "object" }
        return .object(object)
    }
}
