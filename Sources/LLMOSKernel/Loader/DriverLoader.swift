import CLLMOS
import CLLMOSSystem
import Glibc
import Foundation
import LLMOSJSON
import Synchronization
import LLMOSDigest

/// Maps a driver's library and negotiates with it, after its manifest has been
/// validated. Every way this can fail is a refusal with a message, never a crash.
struct DriverLoader {
    let kernel: Kernel

    /// Where a manifest's `library.path` points, or why it points nowhere.
    func resolveLibrary(_ manifest: DriverManifest) throws(LLMOSError) -> String {
        let path = FilePath.expandTilde(manifest.library.path)
        var candidates: [String]
        if path.hasPrefix("/") {
            candidates = [path]
        } else if path.contains("/") {
            candidates = [FilePath.join(manifest.directory, path)]
        } else {
            candidates = [FilePath.join(manifest.directory, path)] + kernel.configuration.libraryDirectories.map { FilePath.join($0, path) }
        }
        for candidate in candidates where FilePath.isRegularFile(candidate) {
            return FilePath.resolved(candidate) ?? candidate
        }
        let hint = path.hasPrefix("libllmos_") && !path.contains("/") ? " (run `swift build` to build the drivers that ship with llmos)" : ""
        throw LLMOSError(.notFound, "\(manifest.file): library.path: library \(manifest.library.path) not found; looked in \(candidates.joined(separator: ", "))\(hint)")
    }

    /// Checks that need no library: done before anything is mapped.
    func preflight(_ manifest: DriverManifest) throws(LLMOSError) {
        let file = manifest.file
        if manifest.abi.major != Int(LLMOS_ABI_MAJOR) {
            throw LLMOSError(.abi, "\(file): abi.major: the driver needs ABI major \(manifest.abi.major); this host speaks major \(LLMOS_ABI_MAJOR)")
        }
        if manifest.abi.minor > kernel.configuration.hostABIMinor {
            throw LLMOSError(.abi, "\(file): abi.minor: the driver needs ABI 1.\(manifest.abi.minor); this host provides 1.\(kernel.configuration.hostABIMinor) — upgrade llmos")
        }
    }

    /// Whether the driver runs in a helper process: its manifest says so, or the
    /// operator forces it (`--isolate NAME`).
    func isIsolated(_ manifest: DriverManifest) -> Bool {
        manifest.isolation == .process || kernel.configuration.isolation.isForced(manifest.name)
            || kernel.configuration.broker.policy.isolates(manifest.name)
    }

    func load(_ manifest: DriverManifest) throws(LLMOSError) -> LoadedDriver {
        try preflight(manifest)
        // A zero-code driver: plain C functions, no entry point (FFIDriverLoader.swift).
        if manifest.isFFI { return try loadFFI(manifest) }
        let libraryPath = try resolveLibrary(manifest)
        let file = manifest.file

        if let expected = manifest.library.sha256 {
            let actual = SHA256.hex(of: try FilePath.readBytes(libraryPath))
            guard actual == expected else {
                throw LLMOSError(.loadFailed, "\(file): library.sha256: \(libraryPath) has SHA-256 \(actual), but the manifest expects \(expected); refusing to load a library that is not the one the manifest describes")
            }
        }

        if isIsolated(manifest) { return try loadIsolated(manifest, libraryPath: libraryPath) }

        let handle = try MappedLibraries.shared.open(libraryPath, manifest: file)
        let driver = LoadedDriver(manifest: manifest, libraryPath: libraryPath, kernel: kernel)
        driver.handle = handle
        driver.keepsMapped = MappedLibraries.usesSwiftRuntime(handle)
        driver.hostBlock = HostFunctions.makeHostBlock(owner: driver)
        do {
            try negotiate(driver, handle: handle)
            try checkOperations(driver)
            try create(driver)
            _ = driver.takeLoadLog()
            return driver
        } catch {
            _ = driver.takeLoadLog()
            driver.table = llmos_driver()   // no destroy: the instance was never made
            if !driver.keepsMapped { dlclose(handle) }
            driver.handle = nil
            throw error
        }
    }

    private func quoted(_ lines: [String]) -> String {
        lines.isEmpty ? "" : "; the driver said: " + lines.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    private func negotiate(_ driver: LoadedDriver, handle: UnsafeMutableRawPointer) throws(LLMOSError) {
        let manifest = driver.manifest
        let file = manifest.file
        let entryName = manifest.library.entry
        guard let symbol = dlsym(handle, entryName) else {
            // Say which major it was built for, when it exports another one.
            for major in 0...9 where major != Int(LLMOS_ABI_MAJOR) {
                if dlsym(handle, "llmos_driver_entry_v\(major)") != nil {
                    throw LLMOSError(.abi, "\(file): \(driver.libraryPath) was built for driver ABI major \(major) (it exports llmos_driver_entry_v\(major)); this host speaks major \(LLMOS_ABI_MAJOR) and looks for \(entryName)")
                }
            }
            throw LLMOSError(.loadFailed, "\(file): library.entry: \(driver.libraryPath) does not export the entry point \(entryName); a C driver defines `LLMOS_EXPORT llmos_status \(entryName)(const llmos_host *, const llmos_driver **)`, a Swift one marks it `@c public` (see docs/WRITING_DRIVERS.md)")
        }
        var described: UnsafePointer<llmos_driver>?
        let status = llmos_invoke_entry(symbol, &driver.hostBlock.pointee.host, &described)
        guard status == LLMOS_OK else {
            let code = LLMOSError.Code(status: status)
            throw LLMOSError(code == .abi ? .abi : .loadFailed, "\(file): the driver refused to load (\(entryName) returned \(code.name))\(quoted(driver.takeLoadLog()))")
        }
        guard let described else {
            throw LLMOSError(.abi, "\(file): \(entryName) returned LLMOS_OK but no driver description")
        }
        let size = Int(described.pointee.struct_size)
        let minimum = llmos_driver_min_size()
        guard size >= minimum else {
            throw LLMOSError(.abi, "\(file): the driver's llmos_driver.struct_size is \(size) bytes, smaller than the \(minimum) bytes of ABI 1.0; rebuild it against sdk/include/llmos/llmos.h")
        }
        // Copy what the driver wrote, zero-filling fields it does not know.
        var table = llmos_driver()
        withUnsafeMutableBytes(of: &table) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: described, count: min(size, llmos_driver_size())))
        }
        driver.table = table
        driver.reportedABIMinor = table.abi_minor
        if Int(table.abi_minor) < manifest.abi.minor {
            throw LLMOSError(.abi, "\(file): abi.minor: the manifest requires ABI 1.\(manifest.abi.minor), but the library was built against 1.\(table.abi_minor); rebuild it or lower abi.minor")
        }
        guard let namePointer = table.name else {
            throw LLMOSError(.abi, "\(file): the driver's description has no name")
        }
        let reportedName = String(cString: namePointer)
        try checkName(manifest, reported: reportedName)
        driver.reportedVersion = table.version.map { String(cString: $0) } ?? ""
        if table.call == nil {
            throw LLMOSError(.abi, "\(file): the driver's description has no call function")
        }
        if !driver.reportedVersion.isEmpty && driver.reportedVersion != manifest.version {
            driver.loadWarnings.append(ManifestDiagnostic(file: file, field: "version", line: nil, message: "the manifest says \(manifest.version), the library says \(driver.reportedVersion)"))
        }
    }

    /// The library's own name must be the manifest's, or the `library.name` a manifest
    /// mounting a shared library under another name gives.
    func checkName(_ manifest: DriverManifest, reported: String) throws(LLMOSError) {
        let file = manifest.file
        if let expected = manifest.library.driverName {
            guard reported == expected else {
                throw LLMOSError(.loadFailed, "\(file): library.name: the manifest says the library is \"\(expected)\" but it calls itself \"\(reported)\"; they must match")
            }
            return
        }
        guard reported == manifest.name else {
            let hint = " (a library mounted under another name says so with library.name: \(reported))"
            throw LLMOSError(.loadFailed, "\(file): name: the manifest says \"\(manifest.name)\" but the library calls itself \"\(reported)\"; they must match" + hint)
        }
    }

    private func checkOperations(_ driver: LoadedDriver) throws(LLMOSError) {
        var operations: [String] = []
        if var cursor = driver.table.operations {
            // A NULL-terminated array; a bound keeps a missing terminator from running away.
            while let name = cursor.pointee, operations.count < 100_000 {
                operations.append(String(cString: name))
                cursor += 1
            }
        }
        try checkOperations(driver, offering: operations)
    }

    private func checkOperations(_ driver: LoadedDriver, offering operations: [String]) throws(LLMOSError) {
        driver.operations = operations
        let offered = Set(operations)
        let missing = driver.manifest.operations.map(\.name).filter { !offered.contains($0) }
        if !missing.isEmpty {
            let what = driver.manifest.deviceClass == .tool ? "tool" : "operation"
            throw LLMOSError(.loadFailed, "\(driver.manifest.file): \(driver.manifest.deviceClass.operationsKey): the manifest declares \(what)\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) but the library does not implement \(missing.count > 1 ? "them" : "it") (it offers: \(operations.isEmpty ? "nothing" : operations.joined(separator: ", ")))")
        }
    }

    /// The driver's configuration: what the operator gave, with the schema's
    /// defaults filled in, checked against the manifest's `config` schema.
    private func configuration(for manifest: DriverManifest) throws(LLMOSError) -> JSONValue {
        // The manifest's settings, then the operator's values over them, key by key.
        var config = manifest.settings
        for (key, value) in kernel.configuration.driverConfig[manifest.name]?.objectValue ?? JSONObject() { config[key] = value }
        guard let schemaValue = manifest.configSchema else { return .object(config) }
        for (key, property) in schemaValue["properties"]?.objectValue ?? JSONObject() where config[key] == nil {
            if let fallback = property["default"] { config[key] = fallback }
        }
        let violations: [JSONSchemaViolation]
        do { violations = try JSONSchema(schemaValue).validate(.object(config)) } catch {
            throw LLMOSError(.invalidManifest, "\(manifest.file): config: \(error)")
        }
        guard violations.isEmpty else {
            throw LLMOSError(.invalidArgument, "\(manifest.file): the configuration given for \(manifest.name) does not match its config schema: " + violations.map(\.message).joined(separator: "; "))
        }
        return .object(config)
    }

    private func makeTools(_ driver: LoadedDriver) throws(LLMOSError) {
        var tools: [ToolEntry] = []
        for spec in driver.manifest.operations { tools.append(try ToolEntry(driver: driver, spec: spec)) }
        driver.tools = tools
    }

    private func create(_ driver: LoadedDriver) throws(LLMOSError) {
        try makeTools(driver)
        let config = try configuration(for: driver.manifest)
        guard let create = driver.table.create else { return }
        var instance: UnsafeMutableRawPointer?
        let status = config.serialized().withCString { text in
            create(&driver.hostBlock.pointee.host, text, strlen(text), &instance)
        }
        guard status == LLMOS_OK else {
            throw LLMOSError(.loadFailed, "\(driver.manifest.file): the driver could not start (create returned \(LLMOSError.Code(status: status).name))\(quoted(driver.takeLoadLog()))")
        }
        driver.instance = instance
    }
}

// MARK: Isolated drivers

/// Warnings about missing sandbox layers are said once per host process, loudly.
private let sandboxWarningsSaid = Mutex(false)

extension DriverLoader {
    /// Starts the driver in its sandboxed helper process and checks what it reports
    /// as the in-process loader would; the library is never mapped in the host.
    func loadIsolated(_ manifest: DriverManifest, libraryPath: String) throws(LLMOSError) -> LoadedDriver {
        let settings = kernel.configuration.isolation
        let helperPath = try SandboxSupport.helperPath(settings, libraryDirectories: kernel.configuration.libraryDirectories)
        let support = try SandboxSupport.probe(helperPath: helperPath)
        let warnings = support.warnings
        if !warnings.isEmpty, sandboxWarningsSaid.withLock({ said in defer { said = true }; return !said }) {
            for line in warnings { kernel.log.record(KernelLogEntry(level: .warn, source: "kernel", message: line)) }
        }
        let driver = LoadedDriver(manifest: manifest, libraryPath: libraryPath, kernel: kernel, isolated: true)
        try makeTools(driver)
        let config = try configuration(for: manifest)
        let plan = SandboxPlan.make(manifest: manifest, libraryPath: libraryPath, broker: kernel.configuration.broker,
                                    settings: settings, support: support)
        for note in plan.notes {
            kernel.log.record(KernelLogEntry(level: .debug, source: "kernel", message: "\(manifest.name): sandbox: \(note)"))
        }
        let isolated = IsolatedDriver(driver: driver, helperPath: helperPath, plan: plan, settings: settings, config: config.serialized())
        let deadline = llmos_monotonic_ns() &+ UInt64(settings.startTimeoutMs) * 1_000_000
        let description = try isolated.start(deadlineNs: deadline)
        driver.isolated = isolated
        do throws(LLMOSError) {
            let file = manifest.file
            driver.reportedABIMinor = description.abiMinor
            driver.reportedVersion = description.version
            if Int(description.abiMinor) < manifest.abi.minor {
                throw LLMOSError(.abi, "\(file): abi.minor: the manifest requires ABI 1.\(manifest.abi.minor), but the library was built against 1.\(description.abiMinor); rebuild it or lower abi.minor")
            }
            try checkName(manifest, reported: description.name)
            if !description.version.isEmpty && description.version != manifest.version {
                driver.loadWarnings.append(ManifestDiagnostic(file: file, field: "version", line: nil, message: "the manifest says \(manifest.version), the library says \(description.version)"))
            }
            try checkOperations(driver, offering: description.operations)
        } catch {
            isolated.shutdown()
            driver.isolated = nil
            throw error
        }
        _ = driver.takeLoadLog()
        return driver
    }
}

/// dlopen with two Linux facts taken care of: a library that uses the Swift
/// runtime is never unmapped (see `LoadedDriver.keepsMapped`), and dlopen of a
/// path that is still mapped returns the old image even if the file was rebuilt.
/// So a changed file at a path still mapped is loaded from a private copy.
final class MappedLibraries: @unchecked Sendable {
    static let shared = MappedLibraries()
    private let lock = PThreadMutex()
    /// Paths kept mapped, with the file stamp they were mapped at.
    private var kept: [String: Int64] = [:]
    private var copies = 0

    func open(_ path: String, manifest file: String) throws(LLMOSError) -> UnsafeMutableRawPointer {
        try lock.withLock { () throws(LLMOSError) -> UnsafeMutableRawPointer in
            var target = path
            let stamp = FilePath.modificationStamp(path) ?? 0
            if let mapped = kept[path], mapped != stamp {
                copies += 1
                let copy = NSTemporaryDirectory() + "llmos-reload-\(getpid())-\(copies)-" + FilePath.fileName(of: path)
                guard (try? FileManager.default.copyItem(atPath: path, toPath: copy)) != nil else {
                    throw LLMOSError(.io, "\(file): cannot copy the rebuilt \(path) for reloading")
                }
                target = copy
            }
            dlerror()
            guard let handle = dlopen(target, RTLD_NOW | RTLD_LOCAL) else {
                let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
                throw LLMOSError(.loadFailed, "\(file): cannot load \(path): \(reason)")
            }
            if target != path { unlink(target) }   // mapped now; the file is no longer needed
            if Self.usesSwiftRuntime(handle) && target == path { kept[path] = stamp }
            return handle
        }
    }

    /// Whether the library (or anything it links) uses the Swift runtime.
    static func usesSwiftRuntime(_ handle: UnsafeMutableRawPointer) -> Bool {
        dlsym(handle, "swift_retain") != nil
    }
}
