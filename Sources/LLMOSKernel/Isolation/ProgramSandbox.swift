import Foundation
import LLMOSJSON

/// The sandbox for a program a driver starts (an MCP server), asked for with
/// `exec.authorize {program, sandbox: true}`: the same Landlock, seccomp, rlimit and
/// network-namespace layers as an isolated driver's helper, built from the same
/// effective grants (the driver's manifest request ∩ the operator's policy), applied by
/// the driver in the child between fork and exec.
///
/// What a program gets beyond its grants, since it could not start without it, all
/// read-only unless said:
/// - the system library directories (read, not execute) and the dynamic loader (execute);
/// - the program itself, and the interpreter its `#!` line names (execute): granting
///   `exec` of a script grants running it the way it says it runs;
/// - its installation: for `PREFIX/bin/NAME`, `PREFIX/bin`, `PREFIX/lib`, `PREFIX/lib64`
///   and `PREFIX/pyvenv.cfg` (a Python venv, a pip `--user` or npm prefix);
/// - a fixed list of system files that hold no secrets (time zones, CA certificates,
///   name resolution, `/etc/passwd`): `runtimeFiles`;
/// - `/dev/null`, `/dev/zero`, `/dev/urandom`, its own `/proc/self`.
/// Everything else — the home directory, the workspace, other programs, the network —
/// only through grants, deny by default.
extension SandboxPlan {
    static let runtimeFiles = [
        "/etc/localtime", "/etc/timezone", "/usr/share/zoneinfo",
        "/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/usr/share/ca-certificates", "/etc/ca-certificates",
        "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf",
        "/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group", "/etc/mime.types",
        "/etc/os-release", "/usr/lib/os-release",
    ]

    /// Where the dynamic loader can be (the ELF interpreter of every dynamic program).
    static let dynamicLoaders = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]

    static func forProgram(_ path: String, given: String, workspace: String, manifest: DriverManifest,
                           broker: CapabilityBroker, settings: IsolationSettings, support: SandboxSupport) -> SandboxPlan {
        var plan = SandboxPlan(memoryMB: manifest.limits.memoryMB ?? settings.defaultMemoryMB,
                               openFiles: settings.programOpenFiles, fileSizeMB: settings.fileSizeMB,
                               processes: settings.processes,
                               landlock: support.landlockABI > 0, seccomp: support.seccomp)
        func add(_ path: String, _ access: Access) {
            if !plan.paths.contains(where: { $0.path == path && $0.access == access }) { plan.paths.append((path, access)) }
        }
        for directory in systemLibraryPaths() where directory != swiftRuntimeDirectory { add(directory, .read) }
        for loader in dynamicLoaders { if let real = FilePath.resolved(loader) { add(real, .exec) } }
        for device in ["/dev/null", "/dev/zero", "/dev/urandom"] { add(device, .device) }
        add("/proc/self", .read)
        for file in runtimeFiles where FileManager.default.fileExists(atPath: file) { add(file, .read) }

        add(path, .exec)
        var programs = [given.hasPrefix("/") ? given : workspace + "/" + given, path]
        if let interpreter = interpreter(of: path) {
            add(interpreter, .exec)
            programs.append(interpreter)
            plan.notes.append("exec \(interpreter): the interpreter \(PathCanonicalizer.abbreviated(path)) names in its #! line")
        }
        for prefix in Set(programs.compactMap(installationPrefix(of:))).sorted() {
            for part in ["bin", "lib", "lib64", "pyvenv.cfg"] where FileManager.default.fileExists(atPath: prefix + "/" + part) {
                add(prefix + "/" + part, .read)
            }
            plan.notes.append("read \(prefix)/{bin,lib}: the program's installation")
        }

        let policy = broker.policy
        let name = manifest.name
        let requested = manifest.capabilities
        for (kind, access) in [(CapabilityKind.fsRead, Access.read), (.fsWrite, .write), (.exec, .exec)] {
            let (granted, notes) = trees(kind, requested: requested, policy: policy, driver: name, context: broker.context)
            for path in granted { add(path, access) }
            plan.notes += notes
        }
        for file in execFiles(requested: requested, broker: broker, driver: name) { add(file, .exec) }
        // The child's own execve needs it; Landlock decides which files may run.
        plan.allowsExec = true
        plan.network = network(requested: requested, policy: policy, driver: name, context: broker.context)
        if plan.network == .none, !support.networkNamespace {
            plan.network = .any
            plan.notes.append("network namespaces are not available here, so the program keeps the host's network (\(support.networkNamespaceProblem))")
        }
        if !plan.landlock { plan.notes.append("Landlock is NOT available (\(support.landlockProblem)): the program's files are not restricted") }
        if !plan.seccomp { plan.notes.append("seccomp is NOT available (\(support.seccompProblem))") }
        return plan
    }

    /// The canonical interpreter a script's `#!` line names (`#!/usr/bin/env NAME` is
    /// NAME looked up as exec.authorize looks up a bare name), or nil for a binary.
    static func interpreter(of path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 256)
        guard head.starts(with: [0x23, 0x21]) else { return nil }   // "#!"
        let line = String(decoding: head.dropFirst(2).prefix { $0 != 0x0A }, as: UTF8.self)
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard var program = words.first, program.hasPrefix("/") else { return nil }
        if program.hasSuffix("/env"), let named = words.dropFirst().first(where: { !$0.hasPrefix("-") }) {
            guard let found = ExecService.searchPath.lazy.map({ $0 + "/" + named })
                .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return FilePath.resolved(program) }
            program = found
        }
        return FilePath.resolved(program)
    }

    /// `PREFIX` for a program at `PREFIX/bin/NAME` (not `/` or `/usr`, which the system
    /// directories already cover as far as a program needs them).
    static func installationPrefix(of path: String) -> String? {
        let directory = FilePath.directory(of: path)
        guard directory.hasSuffix("/bin") || directory.hasSuffix("/sbin") else { return nil }
        let prefix = FilePath.directory(of: directory)
        guard let real = FilePath.resolved(prefix), real != "/", real != "/usr" else { return nil }
        return real
    }

    /// The plan as the sandbox reads it (CLLMOSSandbox's `sandbox_spec_parse`): a line
    /// per setting, "key<TAB>value"; paths with a tab or a newline are left out.
    public var specText: String {
        var lines = ["landlock\t\(landlock ? 1 : 0)", "seccomp\t\(seccomp ? 1 : 0)", "allow_exec\t\(allowsExec ? 1 : 0)",
                     "memory_mb\t\(memoryMB)", "open_files\t\(openFiles)", "file_size_mb\t\(fileSizeMB)", "processes\t\(processes)"]
        switch network {
        case .none: lines.append("net\tnone")
        case .any: lines.append("net\tany")
        case .ports(let ports):
            lines.append("net\tports")
            lines += ports.map { "port\t\($0)" }
        }
        for (path, access) in paths where !path.contains("\t") && !path.contains("\n") {
            lines.append("\(access.rawValue)\t\(path)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension SyscallTable {
    /// `exec.authorize`'s `sandbox` answer for the program it just allowed.
    func programSandbox(_ caller: CallRef, path: String, given: String) throws(LLMOSError) -> JSONValue {
        let driver = caller.pointee.tool.driver
        let settings = kernel.configuration.isolation
        let support: SandboxSupport
        do throws(LLMOSError) {
            let helper = try SandboxSupport.helperPath(settings, libraryDirectories: kernel.configuration.libraryDirectories)
            support = try SandboxSupport.probe(helperPath: helper)
        } catch {
            throw LLMOSError(.unavailable, "exec.authorize: \(driver.name): cannot tell which sandbox layers this Linux has: \(error.message)", cause: error)
        }
        let plan = SandboxPlan.forProgram(path, given: given, workspace: workspace, manifest: driver.manifest,
                                          broker: kernel.configuration.broker, settings: settings, support: support)
        return ["plan": .string(plan.specText), "summary": .string(plan.describe(environment: false)), "notes": .array(plan.notes.map { .string($0) })]
    }
}
