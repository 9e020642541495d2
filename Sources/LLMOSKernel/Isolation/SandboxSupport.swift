import CLLMOSIsolation
import Foundation
import LLMOSJSON
import Synchronization

/// How isolated drivers are run. Everything has a default.
public struct IsolationSettings: Sendable {
    /// Drivers run `isolation: process` whatever their manifest says (`--isolate NAME`;
    /// "*" for all of them).
    public var forced: Set<String> = []
    /// The helper executable; nil finds it: `$LLMOS_DRIVER_HOST`, then next to the
    /// running executable, then in the library directories.
    public var helperPath: String?
    /// After a deadline (or a cancel) the driver gets this long to return; then its
    /// process gets SIGTERM, and this long again before SIGKILL.
    public var graceMs = 500
    /// A crashed driver is restarted at once, then after 100 ms, 200 ms, ... up to the cap.
    public var restartBackoffMs = 100
    public var restartBackoffCapMs = 5_000
    /// This many failures (crash, hang, protocol error) within the window quarantine it.
    public var quarantineFailures = 5
    public var quarantineWindowMs = 60_000
    /// Defaults for the sandbox's rlimits (`limits.memory_mb` overrides the first).
    public var defaultMemoryMB = 1024
    public var openFiles = 64
    /// A program a driver starts (an interpreter with its modules, sockets) needs more.
    public var programOpenFiles = 1024
    public var fileSizeMB = 64
    public var processes = 64
    /// How long either side spins for the other's answer before it blocks.
    public var spinNs: UInt64 = 50_000
    /// How long starting a helper (sandbox, dlopen, create) may take.
    public var startTimeoutMs = 10_000

    public init() {}

    func isForced(_ name: String) -> Bool { forced.contains(name) || forced.contains("*") }
}

/// Which sandbox layers the running Linux supports: tried for real, once per host
/// process, by a throwaway helper (`llmos-driver-host --probe`).
public struct SandboxSupport: Sendable, Equatable {
    public var landlockABI: Int
    public var landlockProblem: String
    public var seccomp: Bool
    public var seccompProblem: String
    public var networkNamespace: Bool
    public var networkNamespaceProblem: String
    public var noNewPrivileges: Bool

    /// Loud, one line per missing layer; empty when everything is there.
    public var warnings: [String] {
        var lines: [String] = []
        if landlockABI <= 0 {
            lines.append("isolation: Landlock is NOT available (\(landlockProblem)): isolated drivers get no file or port restrictions from the operating system")
        } else if landlockABI < 4 {
            lines.append("isolation: Landlock ABI \(landlockABI) has no network rules (needs 4, Linux 6.7): TCP ports are not restricted by the sandbox")
        }
        if !seccomp {
            lines.append("isolation: seccomp is NOT available (\(seccompProblem)): isolated drivers may ptrace, mount, fork and exec")
        }
        if !networkNamespace {
            lines.append("isolation: network namespaces are NOT available (\(networkNamespaceProblem)): a driver without a network grant keeps the host's network")
        }
        return lines
    }

    public var summary: String {
        "Landlock " + (landlockABI > 0 ? "ABI \(landlockABI)" : "missing") + ", seccomp " + (seccomp ? "yes" : "missing")
            + ", network namespaces " + (networkNamespace ? "yes" : "missing")
    }

    static let none = SandboxSupport(landlockABI: 0, landlockProblem: "not probed", seccomp: false, seccompProblem: "not probed",
                                     networkNamespace: false, networkNamespaceProblem: "not probed", noNewPrivileges: false)

    private static let cache = Mutex<[String: SandboxSupport]>([:])

    /// Probes with the helper at `helperPath` (cached per helper).
    public static func probe(helperPath: String) throws(LLMOSError) -> SandboxSupport {
        if let known = cache.withLock({ $0[helperPath] }) { return known }
        let text = try HelperProcess.probe(helperPath: helperPath)
        let value: JSONValue
        do { value = try JSON.parse(text) } catch {
            throw LLMOSError(.internalError, "\(helperPath) --probe printed something that is not JSON: \(text.prefix(200))")
        }
        let support = SandboxSupport(
            landlockABI: Int(value["landlock_abi"]?.int64Value ?? 0), landlockProblem: value["landlock_problem"]?.stringValue ?? "",
            seccomp: value["seccomp"]?.boolValue ?? false, seccompProblem: value["seccomp_problem"]?.stringValue ?? "",
            networkNamespace: value["network_namespace"]?.boolValue ?? false,
            networkNamespaceProblem: value["network_namespace_problem"]?.stringValue ?? "",
            noNewPrivileges: value["no_new_privs"]?.boolValue ?? false)
        cache.withLock { $0[helperPath] = support }
        return support
    }

    /// Where the helper is, or why it is nowhere.
    public static func helperPath(_ settings: IsolationSettings, libraryDirectories: [String],
                                  environment: [String: String] = ProcessInfo.processInfo.environment) throws(LLMOSError) -> String {
        var candidates: [String] = []
        if let path = settings.helperPath {
            candidates = [path]   // named exactly: nothing else is tried
        } else {
            if let path = environment["LLMOS_DRIVER_HOST"], !path.isEmpty { candidates.append(path) }
            if let exe = FilePath.executableDirectory { candidates.append(FilePath.join(exe, "llmos-driver-host")) }
            candidates += libraryDirectories.map { FilePath.join($0, "llmos-driver-host") }
        }
        for candidate in candidates where access(candidate, X_OK) == 0 && FilePath.isRegularFile(candidate) {
            return FilePath.resolved(candidate) ?? candidate
        }
        throw LLMOSError(.notFound, "the isolation helper llmos-driver-host was not found (looked at \(candidates.joined(separator: ", "))); run `swift build` (it builds next to llmos) or set LLMOS_DRIVER_HOST")
    }
}
