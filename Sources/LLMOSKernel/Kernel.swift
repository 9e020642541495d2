import CLLMOS
import CLLMOSSystem
import Foundation
import LLMOSJSON
// ContextWindow (token estimates, assembly) is part of the kernel's API too.
@_exported import LLMOSContext

/// How a kernel is set up. Everything has a sensible default.
public struct KernelConfiguration: Sendable {
    /// Extra places a bare `library.path` is looked for, after the manifest's own
    /// directory: by default `$LLMOS_LIBRARY_PATH` and the running executable's directory.
    public var libraryDirectories: [String]
    /// Configuration objects passed to drivers' `create`, by driver name.
    public var driverConfig: [String: JSONValue] = [:]
    /// How deep drivers may call tools through `tool.call`.
    public var maxCallDepth = 8
    /// Every capability decision: the manifest's request ∩ the operator's policy, with
    /// `ask` resolved by the broker's asker. The default grants only `tool.call=*`.
    public var broker = CapabilityBroker(policy: .builtInDefault)
    /// Where every call and decision is recorded; nil records nothing.
    public var audit: (any AuditLog)?
    /// What relative paths in tool arguments and file system calls are relative to.
    public var workspace = FileManager.default.currentDirectoryPath
    /// The host's file services (fs.read, fs.write, fs.list, fs.stat).
    public var files = FileService()
    /// How `isolation: process` drivers are run and supervised (and which drivers are
    /// forced into a process whatever their manifest says).
    public var isolation = IsolationSettings()
    /// The service behind net.fetch; nil answers it with "unsupported".
    public var network: (any NetworkService)?
    public var log: any KernelLogSink
    public var keyValueStore: any KeyValueStore
    /// Model calls at once per cpu driver, fixed by the operator (`--cpu-slots NAME=N`);
    /// a driver not named here gets what its `info.concurrency` says, else `defaultCPUSlots`.
    public var cpuSlots: [String: Int] = [:]
    public var defaultCPUSlots = 4
    /// The ABI minor manifests are checked against: the header's, except in tests
    /// that play a newer host to reach the "driver older than its manifest" refusal.
    var hostABIMinor = Int(LLMOS_ABI_MINOR)

    public init(libraryDirectories: [String]? = nil, log: any KernelLogSink = StandardErrorLogSink(),
                keyValueStore: any KeyValueStore = InMemoryKeyValueStore()) {
        self.libraryDirectories = libraryDirectories ?? KernelConfiguration.defaultLibraryDirectories()
        self.log = log
        self.keyValueStore = keyValueStore
    }

    public static func defaultLibraryDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var dirs = (environment["LLMOS_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
        if let exe = FilePath.executableDirectory { dirs.append(exe) }
        return dirs
    }
}

/// The kernel: loads drivers, keeps the registry, and mediates every call.
/// It knows device classes, never a particular driver. Thread-safe: calls may
/// come from any number of threads while drivers are loaded and unloaded.
public final class Kernel: @unchecked Sendable {
    public let configuration: KernelConfiguration
    /// Shares each cpu driver among the agent processes (a fair queue per driver).
    public let scheduler: CPUScheduler
    /// The agent processes of this kernel (`llmos ps`, `llmos kill`).
    public let processes = ProcessTable()
    var log: any KernelLogSink { configuration.log }
    /// Made on demand (it holds only the kernel): a lazy stored property would race
    /// when two threads make their first system call at once.
    var syscalls: SyscallTable { SyscallTable(kernel: self) }

    let registryLock = ReadWriteLock()
    var drivers: [String: LoadedDriver] = [:]
    var toolTable: [String: ToolEntry] = [:]
    /// Serialises loads and unloads (never held during a call).
    private let mutationLock = PThreadMutex()
    /// Serialises changes to the tools of `tools: discovered` drivers (Registry/DiscoveredTools.swift).
    let discoveryLock = PThreadMutex()

    public init(configuration: KernelConfiguration = KernelConfiguration()) {
        self.configuration = configuration
        self.scheduler = CPUScheduler(defaultLimit: configuration.defaultCPUSlots, limits: configuration.cpuSlots)
    }

    deinit {
        for driver in drivers.values { driver.drainAndUnload() }
    }

    // MARK: Loading and unloading

    /// Validates a manifest and loads its driver. Refuses a name already loaded.
    @discardableResult
    public func load(manifestAt path: String) throws(LLMOSError) -> DriverInfo {
        try load(ManifestParser.parse(file: path))
    }

    @discardableResult
    public func load(_ manifest: DriverManifest) throws(LLMOSError) -> DriverInfo {
        try mutationLock.withLock { () throws(LLMOSError) -> DriverInfo in
            if let existing = registryLock.read({ drivers[manifest.name] }) {
                throw LLMOSError(.conflict, "\(manifest.file): name: a driver named \"\(manifest.name)\" is already loaded from \(existing.manifest.file); driver names must be unique")
            }
            let driver = try DriverLoader(kernel: self).load(manifest)
            if manifest.discoversTools {
                // Its tools: the approved ones, or (the first time) what the driver finds now.
                do throws(LLMOSError) { try discoverToolsAtLoad(driver) } catch {
                    driver.drainAndUnload()
                    throw error
                }
            }
            registryLock.write {
                drivers[driver.name] = driver
                for tool in driver.tools { toolTable[tool.qualifiedName] = tool }
            }
            for warning in manifest.warnings + driver.loadWarnings {
                log.record(KernelLogEntry(level: .warn, source: "kernel", message: warning.description))
            }
            log.record(KernelLogEntry(level: .debug, source: "kernel", message: "loaded \(driver.name) \(manifest.version) from \(driver.libraryPath)"))
            return DriverInfo(driver)
        }
    }

    /// Removes a driver from the registry at once (new calls see "no such tool"),
    /// waits for calls in flight to finish, then destroys it and unmaps its library.
    public func unload(_ name: String) throws(LLMOSError) {
        try mutationLock.withLock { () throws(LLMOSError) in
            let removed: LoadedDriver? = registryLock.write {
                guard let driver = drivers.removeValue(forKey: name) else { return nil }
                for tool in driver.tools { toolTable.removeValue(forKey: tool.qualifiedName) }
                return driver
            }
            guard let removed else {
                throw LLMOSError(.notFound, "no driver named \(name) is loaded" + NearestNames.suggestion(for: name, in: driverNames))
            }
            removed.drainAndUnload()
            log.record(KernelLogEntry(level: .debug, source: "kernel", message: "unloaded \(name)"))
        }
    }

    /// Unloads and loads again from the same manifest file (re-read from disk).
    @discardableResult
    public func reload(_ name: String) throws(LLMOSError) -> DriverInfo {
        guard let file = registryLock.read({ drivers[name]?.manifest.file }) else {
            throw LLMOSError(.notFound, "no driver named \(name) is loaded" + NearestNames.suggestion(for: name, in: driverNames))
        }
        let manifest = try ManifestParser.parse(file: file)
        try unload(name)
        return try load(manifest)
    }

    /// Loads every driver on the search path. First match wins: a later driver with
    /// a name already taken is reported as shadowed, not loaded. Failures are
    /// collected, never fatal.
    public func loadAll(from searchPath: DriverSearchPath) -> LoadReport {
        var report = LoadReport()
        var origin: [String: String] = registryLock.read { drivers.mapValues(\.manifest.file) }
        for entry in searchPath.entries {
            for file in DriverSearchPath.manifests(in: entry.directory) {
                let manifest: DriverManifest
                do {
                    manifest = try ManifestParser.parse(file: file)
                } catch {
                    report.failed.append(.init(manifestFile: file, error: error))
                    continue
                }
                if let winner = origin[manifest.name] {
                    report.shadowed.append(.init(manifestFile: file, name: manifest.name, winner: winner))
                    continue
                }
                do {
                    report.loaded.append(try load(manifest))
                    origin[manifest.name] = file
                } catch {
                    report.failed.append(.init(manifestFile: file, error: error))
                }
            }
        }
        return report
    }

    // MARK: The registry

    public var driverNames: [String] { registryLock.read { drivers.keys.sorted() } }

    public var loadedDrivers: [DriverInfo] {
        registryLock.read { drivers.values.map(DriverInfo.init) }.sorted { $0.name < $1.name }
    }

    public func driver(named name: String) -> DriverInfo? {
        registryLock.read { drivers[name].map(DriverInfo.init) }
    }

    public var tools: [ToolInfo] {
        registryLock.read { toolTable.values.map(ToolInfo.init) }.sorted { $0.name < $1.name }
    }

    public func tool(named name: String) -> ToolInfo? {
        registryLock.read { toolTable[name].map(ToolInfo.init) }
    }

    /// Whether a tool of that name is loaded: just the registry lookup every call starts with.
    public func hasTool(_ name: String) -> Bool { lookup(name) != nil }

    @inline(__always)
    func lookup(_ name: String) -> ToolEntry? { registryLock.read { toolTable[name] } }

    /// "no tool calc.addd — did you mean calc.add?": the same words the agent loop shows models.
    public func unknownToolError(_ name: String) -> LLMOSError {
        if let held = heldBackTool(name) {
            return LLMOSError(.permissionDenied, "\(name) is held back: \(held.reason)")
        }
        let names = registryLock.read { Array(toolTable.keys) }
        var message = "no tool \(name)"
        let suggestion = NearestNames.suggestion(for: name, in: names)
        if !suggestion.isEmpty {
            message += suggestion
        } else if let dot = name.firstIndex(of: "."), drivers(named: String(name[..<dot])) {
            let prefix = String(name[..<dot]) + "."
            message += "; \(name[..<dot]) offers \(names.filter { $0.hasPrefix(prefix) }.sorted().joined(separator: ", "))"
        } else if !name.contains(".") {
            message += "; tools are named driver.tool (for example \(names.sorted().first ?? "calc.add"))"
        }
        return LLMOSError(.notFound, message)
    }

    private func drivers(named name: String) -> Bool { registryLock.read { drivers[name] != nil } }

    // MARK: Calls

    /// Calls a tool by its full name with JSON input: lookup, input validation,
    /// the call gate, dispatch under the driver's threading rule, output checks.
    public func call(_ name: String, input: String, options: CallOptions = CallOptions()) throws(LLMOSError) -> CallResult {
        guard let tool = lookup(name) ?? reconsiderHeldBack(name) else { throw unknownToolError(name) }
        return try invoke(tool, input: input, options: options, parent: nil)
    }

    public func call(_ name: String, input: JSONValue, options: CallOptions = CallOptions()) throws(LLMOSError) -> CallResult {
        try call(name, input: input.serialized(), options: options)
    }

    func invoke(_ tool: ToolEntry, input: String, options: CallOptions, parent: CallRef?) throws(LLMOSError) -> CallResult {
        let start = llmos_monotonic_ns()
        let mediation = Mediation(kernel: self, tool: tool, parent: parent, input: input, agent: options.agent ?? parent?.pointee.agent,
                                  client: options.client ?? parent?.pointee.client)
        let decision = mediation.authorizeCall()
        do throws(LLMOSError) {
            guard decision.verdict == .allow else {
                throw LLMOSError(.permissionDenied, "\(tool.qualifiedName): denied by \(decision.rule)")
            }
            // Most tools mark no argument: their closure captures no Mediation, whose copy
            // into the closure context (four retains and releases) is measurable here.
            if tool.argumentCapabilities.isEmpty {
                let outcome = try withCBytes(input) { bytes throws(LLMOSError) in
                    _ = try validateInput(tool, bytes)
                    return try run(tool, bytes, options, parent, start: start)
                }
                mediation.recordCall(decision, outcome: nil, durationNs: outcome.elapsedNanoseconds)
                return outcome
            }
            let outcome = try withCBytes(input) { bytes throws(LLMOSError) in
                let value = try validateInput(tool, bytes)
                // Marked arguments are checked on their canonical form, which is what the
                // driver then receives; otherwise it reads the caller's own bytes.
                guard let canonical = try mediation.checkArguments(value) else {
                    return try run(tool, bytes, options, parent, start: start)
                }
                return try withCBytes(canonical) { canonicalBytes throws(LLMOSError) in
                    try run(tool, canonicalBytes, options, parent, start: start)
                }
            }
            mediation.recordCall(decision, outcome: nil, durationNs: outcome.elapsedNanoseconds)
            return outcome
        } catch {
            mediation.recordCall(decision, outcome: error, durationNs: llmos_monotonic_ns() &- start)
            throw error
        }
    }

    /// Dispatches on the calling thread — or, for a top-level call to an in-process
    /// driver that asked to be abandoned on timeout, on a thread of its own.
    @inline(__always)
    private func run(_ tool: ToolEntry, _ input: UnsafeRawBufferPointer, _ options: CallOptions,
                     _ parent: CallRef?, start: UInt64) throws(LLMOSError) -> CallResult {
        if options.abandonOnTimeout && parent == nil && tool.driver.isolated == nil {
            return try dispatchAbandoning(tool, Array(input), options, start: start)
        }
        return try dispatch(tool, input, options, parent, start: start)
    }

    /// An in-process call cannot be stopped, only left behind: the call runs on its own
    /// thread, and if it has not returned by its deadline plus the grace period the
    /// caller gets a timeout and the driver is marked unhealthy (new calls are refused)
    /// until the abandoned call returns. An isolated driver would be killed instead.
    private func dispatchAbandoning(_ tool: ToolEntry, _ input: [UInt8], _ options: CallOptions,
                                    start: UInt64) throws(LLMOSError) -> CallResult {
        let driver = tool.driver
        if let stuck = driver.unhealthyReason {
            throw LLMOSError(.unavailable, "\(tool.qualifiedName): the driver \(driver.name) is unhealthy: \(stuck); it runs in-process, so it cannot be stopped — reload it, or run it with --isolate \(driver.name)")
        }
        let pending = PendingCall()
        Thread.detachNewThread { [self] in
            let result = input.withUnsafeBytes { bytes in
                Result { () throws(LLMOSError) in try self.dispatch(tool, bytes, options, nil, start: start) }
            }
            if pending.finish(result) { driver.abandonedCallReturned() }
        }
        let limitMs = min(options.timeoutMs ?? Int.max, driver.manifest.limits.timeoutMs)
        let waitMs = min(limitMs, Int(Int32.max) / 2) + configuration.isolation.graceMs
        if let result = pending.wait(milliseconds: waitMs) { return try result.get() }
        driver.abandonedCallStarted("a call to \(tool.qualifiedName) did not return within \(limitMs) ms (limits.timeout_ms) and was abandoned")
        throw LLMOSError(.timeout, "\(tool.qualifiedName): timed out after \(limitMs) ms (limits.timeout_ms) and did not stop when cancelled; the call was abandoned and \(driver.name) is marked unhealthy until it returns (in-process code cannot be stopped: run it with --isolate \(driver.name) to have it killed instead)")
    }

    /// Runs the driver under its threading rule and deadline (the input is validated).
    func dispatch(_ tool: ToolEntry, _ input: UnsafeRawBufferPointer, _ options: CallOptions,
                          _ parent: CallRef?, start: UInt64) throws(LLMOSError) -> CallResult {
        let name = tool.qualifiedName
        let driver = tool.driver

        guard driver.enter() else {
            throw LLMOSError(.unavailable, "\(name): the driver \(driver.name) is being unloaded")
        }
        defer { driver.leave() }
        driver.callCount.wrappingAdd(1, ordering: .relaxed)

        let limitMs = min(options.timeoutMs ?? Int.max, driver.manifest.limits.timeoutMs)
        var deadline = start &+ UInt64(limitMs) &* 1_000_000
        if let parent { deadline = min(deadline, parent.pointee.deadlineNs) }

        if let lock = driver.serialLock {
            if parent?.chainContains(driver) == true {
                throw LLMOSError(.unavailable, "\(name): \(driver.name) is serialized and is already running in this call chain; a serialized driver cannot be re-entered")
            }
            let now = llmos_monotonic_ns()
            guard now < deadline, lock.lock(waitingAtMostNs: deadline - now) else {
                throw LLMOSError(.timeout, "\(name): timed out after \(limitMs) ms waiting for the serialized driver \(driver.name) to finish another call")
            }
        }
        defer { driver.serialLock?.unlock() }

        var state = CallState(tool: tool, parent: parent, deadlineNs: deadline, token: options.cancellation, progress: options.progress,
                              events: options.events, agent: options.agent, client: options.client)
        let status = withUnsafeMutablePointer(to: &state) { ref in
            if let isolated = driver.isolated {
                return isolated.call(ref, operation: tool.spec.name, input: input)
            }
            return llmos_invoke_call(&driver.table, driver.instance, ref.context, tool.operation,
                                     input.baseAddress?.assumingMemoryBound(to: CChar.self), input.count)
        }
        state.release()
        let end = llmos_monotonic_ns()
        do throws(LLMOSError) {
            let output = try finish(tool, state, status: status, end: end, limitMs: limitMs)
            return CallResult(output: output, elapsedNanoseconds: end &- start)
        } catch {
            driver.failureCount.wrappingAdd(1, ordering: .relaxed)
            throw error
        }
    }


    @inline(__always)
    private func validateInput(_ tool: ToolEntry, _ bytes: UnsafeRawBufferPointer) throws(LLMOSError) -> JSONValue {
        let value: JSONValue
        do {
            value = try JSON.parse(bytes)
        } catch {
            throw LLMOSError(.invalidArgument, "\(tool.qualifiedName): the input is not valid JSON: \(error)")
        }
        // isValid stops at the first problem; the full list is worth computing only for the message.
        guard !tool.inputSchema.isValid(value) else { return value }
        let violations = tool.inputSchema.validate(value)
        throw LLMOSError(.invalidArgument, "\(tool.qualifiedName): invalid input: " + violations.map(\.message).joined(separator: "; "))
    }

    /// Turns what the driver did into a result or an error, in a fixed order of blame.
    private func finish(_ tool: ToolEntry, _ state: borrowing CallState, status: Int32, end: UInt64, limitMs: Int) throws(LLMOSError) -> String {
        let name = tool.qualifiedName
        let limits = tool.driver.manifest.limits
        if let failure = state.failure { throw failure }
        if let rejected = state.outputRejectedBytes {
            throw LLMOSError(.outputTooLarge, "\(name): the output is \(rejected) bytes, over the driver's limit of \(limits.maxOutputBytes) (limits.max_output_bytes)")
        }
        let timedOut = end > state.deadlineNs
        if state.errorStatus != LLMOS_OK || status != LLMOS_OK {
            let code = LLMOSError.Code(status: state.errorStatus != LLMOS_OK ? state.errorStatus : status)
            if timedOut && (code == .cancelled || code == .timeout) {
                throw LLMOSError(.timeout, "\(name): timed out after \(limitMs) ms (limits.timeout_ms)")
            }
            if code == .cancelled && state.cancelledByCaller {
                throw LLMOSError(.cancelled, "\(name): cancelled")
            }
            let message = state.errorMessage ?? "the driver failed with \(code.name) and gave no message"
            throw LLMOSError(code, "\(name): \(message)")
        }
        if timedOut {
            throw LLMOSError(.timeout, "\(name): finished after its \(limitMs) ms limit (limits.timeout_ms); the late result was discarded")
        }
        guard let output = state.output else {
            throw LLMOSError(.invalidOutput, "\(name): the driver returned without a result (it never called set_output)")
        }
        var text = output
        let problem: LLMOSError? = text.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let schema = tool.outputSchema else {
                return JSON.syntaxError(in: bytes).map { LLMOSError(.invalidOutput, "\(name): the driver's output is not valid JSON: \($0)") }
            }
            let value: JSONValue
            do { value = try JSON.parse(bytes) } catch {
                return LLMOSError(.invalidOutput, "\(name): the driver's output is not valid JSON: \(error)")
            }
            if schema.isValid(value) { return nil }
            let violations = schema.validate(value)
            return LLMOSError(.invalidOutput, "\(name): the driver's output does not match its output_schema: " + violations.map(\.message).joined(separator: "; "))
        }
        if let problem { throw problem }
        return text
    }
}

/// The hand-over between a caller and the thread running its abandonable call.
private final class PendingCall: @unchecked Sendable {
    private let lock = PThreadMutex()
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<CallResult, LLMOSError>?
    private var abandoned = false

    /// Stores the result; true when the caller had already given up on it.
    func finish(_ value: Result<CallResult, LLMOSError>) -> Bool {
        let late = lock.withLock { () -> Bool in
            result = value
            return abandoned
        }
        done.signal()
        return late
    }

    /// The result, or nil (and the call counts as abandoned) after `milliseconds`.
    func wait(milliseconds: Int) -> Result<CallResult, LLMOSError>? {
        _ = done.wait(timeout: .now() + .milliseconds(milliseconds))
        return lock.withLock {
            if let result { return result }
            abandoned = true
            return nil
        }
    }
}

extension Kernel {
    /// "1.0": the driver ABI this host speaks.
    public static var abiVersion: String { "\(LLMOS_ABI_MAJOR).\(LLMOS_ABI_MINOR)" }
}
