import LLMOSJSON

/// A loaded driver as shells and programs see it.
public struct DriverInfo: Sendable {
    public var name: String
    public var deviceClass: DeviceClass
    public var version: String
    public var description: String
    public var tools: [String]
    public var isolation: Isolation
    public var threading: Threading
    public var capabilities: CapabilityRequests
    public var manifestFile: String
    public var libraryPath: String
    public var abiMinor: UInt32
    public var health: DriverHealth
    public var warnings: [ManifestDiagnostic]
    /// `tools: discovered`: the driver reports its tools at run time.
    public var discoversTools: Bool
    /// Discovered tools whose definition changed since it was approved (`llmos drivers approve`).
    public var heldBack: [HeldBackTool]

    init(_ driver: LoadedDriver) {
        let m = driver.manifest
        name = m.name
        deviceClass = m.deviceClass
        version = m.version
        description = m.description
        tools = driver.tools.map(\.qualifiedName)
        isolation = driver.isolated != nil ? .process : m.isolation
        threading = m.threading
        capabilities = m.capabilities
        manifestFile = m.file
        libraryPath = driver.libraryPath
        abiMinor = driver.reportedABIMinor
        health = driver.health
        warnings = m.warnings + driver.loadWarnings
        discoversTools = m.discoversTools
        heldBack = driver.heldBack
    }
}

/// A callable tool: its full name, what it is for, and its schemas.
public struct ToolInfo: Sendable {
    public var name: String
    public var driver: String
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    public var hints: OperationHints

    init(_ tool: ToolEntry) {
        name = tool.qualifiedName
        driver = tool.driver.name
        description = tool.spec.description
        inputSchema = tool.spec.inputSchema
        outputSchema = tool.spec.outputSchema
        hints = tool.spec.hints
    }
}

/// What a load of the search path found, for `llmos doctor` and the start-up report.
public struct LoadReport: Sendable {
    public struct Failure: Sendable, CustomStringConvertible {
        public var manifestFile: String
        public var error: LLMOSError
        public var description: String { error.message }
    }
    public struct Shadowed: Sendable {
        public var manifestFile: String
        public var name: String
        public var winner: String
    }

    public var loaded: [DriverInfo] = []
    public var failed: [Failure] = []
    /// Same-named drivers later on the search path: first match wins.
    public var shadowed: [Shadowed] = []
}

/// The result of a call.
public struct CallResult: Sendable {
    /// The driver's output: well-formed JSON, valid against the output schema when one is declared.
    public var output: String
    /// Time inside the kernel and the driver, for the call as a whole.
    public var elapsedNanoseconds: UInt64
}

/// How to make a call.
public struct CallOptions: Sendable {
    /// Cancels the call (and the calls it makes) when cancelled from any thread.
    public var cancellation: CancellationToken?
    /// Receives `host->progress` reports (fraction in [0,1], or negative when unknown).
    public var progress: (@Sendable (Double, String?) -> Void)?
    /// A tighter deadline than the driver's `limits.timeout_ms`, in milliseconds.
    public var timeoutMs: Int?
    /// Receives `host->emit` events (ABI 1.1) as JSON text, in order, on the calling
    /// thread while the call runs: a cpu driver's streamed deltas.
    public var events: (@Sendable (String) -> Void)?
    /// For an in-process driver: run the call on a thread of its own and, if it is
    /// still running at its deadline plus the grace period, return a timeout and
    /// leave it behind (the driver is then marked unhealthy). Costs a thread per
    /// call; an isolated driver is killed instead, so this changes nothing for it.
    public var abandonOnTimeout = false
    /// The agent process the call is made for (its pid): its audit records say so
    /// ("pid 4242 agent 7"), and a permission prompt names it. Inherited by nested calls.
    public var agent: Int?
    /// The client the call came from when it was not this host's own command or agent
    /// loop ("mcp stdio", "mcp http"): its audit records say so ("pid 4242 via mcp
    /// stdio"). Inherited by nested calls.
    public var client: String?

    public init(cancellation: CancellationToken? = nil, progress: (@Sendable (Double, String?) -> Void)? = nil,
                timeoutMs: Int? = nil, events: (@Sendable (String) -> Void)? = nil) {
        self.cancellation = cancellation
        self.progress = progress
        self.timeoutMs = timeoutMs
        self.events = events
    }
}
