import LLMOSJSON

/// A driver's manifest, read and validated before its library is ever mapped.
/// The fields follow docs/MANIFEST.md; sdk/schemas/manifest.schema.json says the same for editors.
public struct DriverManifest: Sendable {
    /// The file the manifest was read from (absolute), or a placeholder for in-memory text.
    public var file: String
    public var manifestVersion: Int
    public var name: String
    public var version: String
    public var deviceClass: DeviceClass
    public var description: String
    public var abi: ABIRequirement
    public var library: LibrarySpec
    public var isolation: Isolation
    public var threading: Threading
    public var capabilities: CapabilityRequests
    public var limits: Limits
    /// JSON Schema of the driver's configuration object, if it takes one.
    public var configSchema: JSONValue?
    /// The tools (class `tool`) or operations (other classes) the driver offers.
    public var operations: [OperationSpec]
    /// `tools: discovered`: the driver learns its tools at run time (an MCP server's
    /// tools/list) and reports them to the kernel, which pins each definition by hash
    /// and holds back any that changes until the operator approves it
    /// (Registry/DiscoveredTools.swift). `operations` is then empty.
    public var discoversTools: Bool = false
    /// `settings`: values the manifest's author gives the driver's configuration object
    /// (the operator's `--config` overrides them key by key; `config` defaults fill the rest).
    public var settings: JSONObject = JSONObject()
    /// Problems that do not stop a load (unknown top-level keys, for instance).
    public var warnings: [ManifestDiagnostic]

    /// The directory the manifest lives in: relative library paths start here.
    public var directory: String { FilePath.directory(of: file) }

    /// A zero-code driver: its tools are C functions of a plain shared library, called
    /// through libffi (docs/FFI.md); the library has no llmos entry point.
    public var isFFI: Bool { operations.contains { $0.ffi != nil } }
}

public struct ABIRequirement: Sendable, Equatable {
    public var major: Int
    public var minor: Int
}

public struct LibrarySpec: Sendable, Equatable {
    /// Absolute, relative to the manifest's directory, or a bare file name searched
    /// next to the manifest and then in the kernel's library directories.
    public var path: String
    public var entry: String
    /// The name the library calls itself when it differs from the manifest's `name`: one
    /// library mounted several times under different names (the mcp driver, once per server).
    public var driverName: String? = nil
    /// Lowercase hex SHA-256 of the library file, checked before dlopen when given.
    public var sha256: String?
}

public enum Isolation: String, Sendable, CaseIterable {
    case inProcess = "in-process"
    case process
}

public enum Threading: String, Sendable, CaseIterable {
    /// The kernel never enters one instance from two threads at once.
    case serialized
    /// The driver synchronises itself; the kernel may call it from many threads.
    case concurrent
}

public struct Limits: Sendable, Equatable {
    public static let defaultTimeoutMs = 30_000
    public static let defaultMaxOutputBytes = 1 << 20

    public var timeoutMs: Int = Limits.defaultTimeoutMs
    public var maxOutputBytes: Int = Limits.defaultMaxOutputBytes
    /// Enforced only for `isolation: process` drivers (an in-process driver shares the host's memory).
    public var memoryMB: Int?
}

/// The device classes the kernel knows. It knows classes, never particular drivers.
public struct DeviceClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let tool = DeviceClass(rawValue: "tool")
    public static let cpu = DeviceClass(rawValue: "cpu")
    public static let memory = DeviceClass(rawValue: "memory")
    public static let storage = DeviceClass(rawValue: "storage")
    public static let known: [DeviceClass] = [.tool, .cpu, .memory, .storage]

    /// Operations every driver of the class must implement (see sdk/schemas/classes/).
    public var requiredOperations: [String] {
        switch self {
        case .cpu: return ["complete"]
        case .memory: return ["append", "assemble"]
        case .storage: return ["put", "search"]
        default: return []
        }
    }

    /// Every operation the class's contract defines (sdk/schemas/classes/); tools are free-form.
    public var knownOperations: [String] {
        switch self {
        case .cpu: return ["complete", "count_tokens", "embed", "info"]
        case .memory: return ["append", "assemble", "evict", "recall", "remember", "stats"]
        case .storage: return ["put", "search", "get", "delete", "collections", "create_collection", "drop_collection", "stats"]
        default: return []
        }
    }

    /// The manifest key that lists the class's callable entries.
    public var operationsKey: String { self == .tool ? "tools" : "operations" }
    public var description: String { rawValue }
}

/// Hints a model and the policy may use; hints, not guarantees.
public struct OperationHints: Sendable, Equatable {
    public var readOnly = false
    public var destructive = false
    public var needsConfirmation = false
    public var idempotent = false

    public init(readOnly: Bool = false, destructive: Bool = false, needsConfirmation: Bool = false, idempotent: Bool = false) {
        self.readOnly = readOnly
        self.destructive = destructive
        self.needsConfirmation = needsConfirmation
        self.idempotent = idempotent
    }
}

public struct OperationSpec: Sendable {
    public var name: String
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    public var hints: OperationHints
    /// For a zero-code tool: the C function the kernel calls through libffi (docs/FFI.md).
    public var ffi: FFISignature? = nil
}

/// A problem in a file a person wrote (a manifest, a policy): where, and what.
public struct FileDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// Where in the document: "tools[1].input_schema.type", "deny.fs.read[1]", or "" for the whole file.
    public var field: String
    public var line: Int?
    public var message: String

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }

    public init(file: String, field: String, line: Int?, message: String) {
        self.file = file
        self.field = field
        self.line = line
        self.message = message
    }
}

public typealias ManifestDiagnostic = FileDiagnostic
