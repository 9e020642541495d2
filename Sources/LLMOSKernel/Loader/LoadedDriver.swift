import CLLMOS
import CLLMOSSystem
import Glibc
import LLMOSJSON
import Synchronization

/// One tool of a loaded driver, as the registry holds it: schemas compiled once,
/// the operation name kept as a C string for the call.
public final class ToolEntry: @unchecked Sendable {
    /// `driver.tool`, the only name a caller uses.
    public let qualifiedName: String
    public let spec: OperationSpec
    let inputSchema: JSONSchema
    let outputSchema: JSONSchema?
    let operation: UnsafeMutablePointer<CChar>
    let driver: LoadedDriver
    /// Input fields that name a resource (`x-llmos-capability`), checked before the call.
    let argumentCapabilities: [ArgumentCapability]
    /// The operator's tool.call decision on this tool, with the broker generation it was
    /// made under: every call asks the same question, and the answer changes only when
    /// the policy or a session grant does.
    let operatorDecision = Mutex<(generation: Int, decision: Decision)?>(nil)

    init(driver: LoadedDriver, spec: OperationSpec) throws(LLMOSError) {
        self.driver = driver
        self.spec = spec
        self.qualifiedName = "\(driver.name).\(spec.name)"
        do {
            inputSchema = try JSONSchema(spec.inputSchema)
            outputSchema = try spec.outputSchema.map { schema throws(JSONSchemaError) in try JSONSchema(schema) }
        } catch {
            throw LLMOSError(.invalidManifest, "\(driver.manifest.file): tool \(spec.name): \(error)")
        }
        do {
            argumentCapabilities = try ArgumentCapability.find(in: spec.inputSchema)
        } catch {
            throw LLMOSError(.invalidManifest, "\(driver.manifest.file): tool \(spec.name): \(error.message)")
        }
        operation = strdup(spec.name)
    }

    deinit { free(operation) }
}

/// A driver whose library is mapped and whose instance exists. Calls enter and
/// leave through `enter`/`leave`, so that unloading waits for calls in flight.
public final class LoadedDriver: @unchecked Sendable {
    public let manifest: DriverManifest
    /// The library file actually mapped (canonical path).
    public let libraryPath: String
    public var name: String { manifest.name }
    /// What the library reported about itself.
    public internal(set) var reportedVersion = ""
    public internal(set) var reportedABIMinor: UInt32 = 0
    public internal(set) var operations: [String] = []
    /// Problems found while loading that do not stop it (a version mismatch).
    var loadWarnings: [ManifestDiagnostic] = []

    /// Unowned, not weak: a weak reference would move the kernel's reference count to a
    /// side table and put every retain of it on the slow path. The kernel is alive
    /// whenever the driver is used (it unloads every driver before it goes); the one use
    /// that may come later, a log line from a driver's own thread, goes to `logSink`.
    unowned let kernel: Kernel
    let logSink: any KernelLogSink
    var handle: UnsafeMutableRawPointer?
    /// Libraries that use the Swift runtime are never unmapped: the runtime keeps
    /// pointers into every image's type metadata and conformance records, and
    /// dlclose would leave them dangling (the next dynamic cast would crash).
    var keepsMapped = false
    var hostBlock: UnsafeMutablePointer<llmos_host_block>!
    /// A copy of the driver's description, zero-filled past its struct_size.
    var table = llmos_driver()
    var instance: UnsafeMutableRawPointer?
    var tools: [ToolEntry] = []
    /// For a `tools: discovered` driver: tools whose definition changed since the operator
    /// approved it, kept out of the registry until approved (guarded by the registry lock).
    var heldBack: [HeldBackTool] = []
    /// Held around every call of a `serialized` driver, and of every isolated one
    /// (its helper runs one call at a time).
    let serialLock: PThreadMutex?
    /// The supervisor of the driver's helper process, for `isolation: process`.
    var isolated: IsolatedDriver?

    private let inFlight = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    let callCount = Atomic<Int>(0)
    /// In-process calls abandoned past their deadline and still running.
    private let abandoned = Mutex<(count: Int, reason: String?)>((0, nil))
    let failureCount = Atomic<Int>(0)
    /// Log lines written while loading, quoted in a refusal.
    private let loadLog = Mutex<[String]?>([])

    init(manifest: DriverManifest, libraryPath: String, kernel: Kernel, isolated: Bool = false) {
        self.manifest = manifest
        self.libraryPath = libraryPath
        self.kernel = kernel
        self.logSink = kernel.configuration.log
        self.serialLock = manifest.threading == .serialized || isolated ? PThreadMutex() : nil
    }

    deinit {
        // Nothing can call in any more; unmap before the host table goes away.
        if handle != nil || isolated != nil { drainAndUnload() }
        hostBlock?.deallocate()
    }

    func record(_ entry: KernelLogEntry) {
        loadLog.withLock { lines in lines?.append(entry.message) }
        logSink.record(entry)
    }

    /// The lines logged during load, then stop collecting.
    func takeLoadLog() -> [String] { loadLog.withLock { lines in defer { lines = nil }; return lines ?? [] } }

    // MARK: Abandoned calls (in-process)

    var unhealthyReason: String? { abandoned.withLock { $0.count > 0 ? $0.reason : nil } }

    func abandonedCallStarted(_ reason: String) {
        abandoned.withLock { $0.count += 1; $0.reason = reason }
        record(KernelLogEntry(level: .error, source: "kernel", message: "\(name) is unhealthy: \(reason)"))
    }

    func abandonedCallReturned() {
        abandoned.withLock { $0.count -= 1; if $0.count == 0 { $0.reason = nil } }
    }

    // MARK: Calls in flight

    /// Counts a call in; false when the driver is being unloaded.
    @inline(__always)
    func enter() -> Bool {
        inFlight.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if draining.load(ordering: .sequentiallyConsistent) {
            leave()
            return false
        }
        return true
    }

    @inline(__always)
    func leave() { inFlight.wrappingSubtract(1, ordering: .sequentiallyConsistent) }

    var callsInFlight: Int { inFlight.load(ordering: .relaxed) }
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Refuses new calls, waits for those in flight, then destroys the instance and
    /// unmaps the library.
    func drainAndUnload() {
        draining.store(true, ordering: .sequentiallyConsistent)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 {
            if unhealthyReason != nil {
                // An abandoned call is still inside: destroying or unmapping under it
                // would crash the host, so the instance and library are left as they are.
                record(KernelLogEntry(level: .warn, source: "kernel", message: "\(name): unloaded with an abandoned call still running; its instance and library stay in memory"))
                keepsMapped = true
                table = llmos_driver()
                handle = nil
                return
            }
            usleep(500)
        }
        if let isolated {
            serialLock?.withLock { isolated.shutdown() }
            self.isolated = nil
            return
        }
        if let destroy = table.destroy {
            if let lock = serialLock { lock.withLock { destroy(instance) } } else { destroy(instance) }
        }
        instance = nil
        if let handle, !keepsMapped { dlclose(handle) }
        handle = nil
    }

    /// For `llmos drivers list`.
    public var health: DriverHealth {
        var health = DriverHealth(calls: callCount.load(ordering: .relaxed), failures: failureCount.load(ordering: .relaxed),
                                  inFlight: callsInFlight, unloading: isDraining)
        health.unhealthy = unhealthyReason
        if let status = isolated?.status {
            health.process = ProcessHealth(pid: status.pid.map(Int.init), restarts: max(0, status.restarts - 1),
                                           crashes: status.failures, lastFailure: status.lastFailure,
                                           quarantined: status.quarantined, sandbox: status.sandbox)
        }
        return health
    }
}

public struct DriverHealth: Sendable, Equatable {
    public var calls: Int
    public var failures: Int
    public var inFlight: Int
    public var unloading: Bool
    /// For an isolated driver: its helper process.
    public var process: ProcessHealth?
    /// For an in-process driver with an abandoned call still running: why.
    public var unhealthy: String?

    public var summary: String {
        if unloading { return "unloading" }
        if let unhealthy { return "UNHEALTHY: \(unhealthy)" }
        if let process {
            if let reason = process.quarantined { return "QUARANTINED: \(reason)" }
            if process.pid == nil { return "restarting (last: \(process.lastFailure ?? "stopped"))" }
            return process.restarts > 0 ? "ok (pid \(process.pid!), restarted \(process.restarts)x)" : "ok (pid \(process.pid!))"
        }
        return "ok"
    }
    public var isQuarantined: Bool { process?.quarantined != nil }
}

/// The supervision state of an isolated driver's helper process.
public struct ProcessHealth: Sendable, Equatable {
    /// The helper's pid; nil while it is not running (after a failure, before the restart).
    public var pid: Int?
    public var restarts: Int
    /// Crashes, hangs and protocol violations so far.
    public var crashes: Int
    public var lastFailure: String?
    /// Why it is quarantined: calls then fail at once until the driver is reloaded.
    public var quarantined: String?
    /// What its sandbox allows.
    public var sandbox: String
}
