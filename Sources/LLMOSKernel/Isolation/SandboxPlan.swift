import CLLMOSSystem
import Foundation

/// The operating-system sandbox an isolated driver's helper builds before it maps
/// the driver: made from exactly the capabilities the driver has (its manifest's
/// request ∩ the operator's policy), so that the Linux kernel, not the driver's
/// good manners, refuses the rest.
///
/// Landlock works on directory trees and files, not globs, and a process-wide
/// sandbox cannot know which tool is running. So the plan is deliberately
/// conservative (deny by default):
/// - only `DIR/**` trees and exact file paths become Landlock rules; a partial glob
///   (`/data/*.txt`) grants nothing for direct access — the driver reaches such
///   files through `fs.read`, checked per path by the kernel;
/// - a tree that contains a `deny` or `ask` rule (or lies inside one) is left out
///   whole, since Landlock cannot carve holes;
/// - rules scoped to a tool (`tools:`) are left out (they hold only while that tool runs);
/// - TCP is restricted by port (Landlock has no hosts): host patterns still hold for
///   `net.fetch`, which the kernel makes and checks. No network grant at all means the
///   helper gets its own, empty network namespace.
public struct SandboxPlan: Sendable, Equatable {
    public enum Access: String, Sendable { case read, write, exec, lib, device }
    public enum Network: Sendable, Equatable {
        /// Its own empty network namespace: no interface but a loopback that is down.
        case none
        /// TCP connect to these ports only (and never bind).
        case ports([UInt16])
        /// Any TCP port (a grant with `*` or no port); bind is still refused.
        case any
    }

    public var paths: [(path: String, access: Access)] = []
    public var network: Network = .none
    /// An `exec` grant: fork and execve stay allowed (Landlock limits what may run).
    public var allowsExec = false
    /// Only the granted variables.
    public var environment: [String: String] = [:]
    public var memoryMB: Int
    public var openFiles: Int
    public var fileSizeMB: Int
    public var processes: Int
    public var landlock: Bool
    public var seccomp: Bool
    /// What the plan left out and why, for `llmos drivers info` and the load log.
    public var notes: [String] = []

    public static func == (a: SandboxPlan, b: SandboxPlan) -> Bool {
        a.paths.map { "\($0.access):\($0.path)" } == b.paths.map { "\($0.access):\($0.path)" }
            && a.network == b.network && a.allowsExec == b.allowsExec && a.environment == b.environment
            && a.memoryMB == b.memoryMB && a.openFiles == b.openFiles && a.fileSizeMB == b.fileSizeMB
    }

    /// Directories every driver needs to be mapped (the dynamic loader and libc, the
    /// Swift runtime for Swift drivers), read and execute only.
    static func systemLibraryPaths() -> [String] {
        var paths = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache"]
        if let runtime = swiftRuntimeDirectory { paths.append(runtime) }
        return paths
    }

    /// Where this process's libswiftCore lives (Swift drivers load it from there).
    static let swiftRuntimeDirectory: String? = {
        guard let image = llmos_image_defining("swift_retain") else { return nil }
        let path = String(cString: image)
        return FilePath.directory(of: FilePath.resolved(path) ?? path)
    }()

    static func make(manifest: DriverManifest, libraryPath: String, broker: CapabilityBroker,
                     settings: IsolationSettings, support: SandboxSupport,
                     environment: [String: String] = ProcessInfo.processInfo.environment) -> SandboxPlan {
        var plan = SandboxPlan(memoryMB: manifest.limits.memoryMB ?? settings.defaultMemoryMB,
                               openFiles: settings.openFiles, fileSizeMB: settings.fileSizeMB,
                               processes: settings.processes,
                               landlock: support.landlockABI > 0, seccomp: support.seccomp)
        for path in systemLibraryPaths() + [libraryPath] { plan.paths.append((path, .lib)) }
        for device in ["/dev/null", "/dev/zero", "/dev/urandom"] { plan.paths.append((device, .device)) }
        // Its own /proc entry (the helper opens /proc/self, so this is its own pid):
        // runtimes read /proc/self/maps; links there are checked at their targets.
        plan.paths.append(("/proc/self", .read))

        let policy = broker.policy
        let name = manifest.name
        let requested = manifest.capabilities
        for (kind, access) in [(CapabilityKind.fsRead, Access.read), (.fsWrite, .write), (.exec, .exec)] {
            let (granted, notes) = trees(kind, requested: requested, policy: policy, driver: name, context: broker.context)
            for path in granted { plan.paths.append((path, access)) }
            plan.notes += notes
        }
        // exec globs in a last component (an interpreter's /usr/bin/python3*): the files they name now.
        for file in execFiles(requested: requested, broker: broker, driver: name)
        where !plan.paths.contains(where: { $0.path == file && $0.access == .exec }) { plan.paths.append((file, .exec)) }
        plan.allowsExec = plan.paths.contains { $0.access == .exec }
        plan.network = network(requested: requested, policy: policy, driver: name, context: broker.context)
        if plan.network == .none, !support.networkNamespace {
            plan.network = .any
            plan.notes.append("network namespaces are not available here, so the driver keeps the host's network (\(support.networkNamespaceProblem))")
        }
        for (variable, value) in environment {
            let request = AccessRequest(kind: .env, resource: variable, driver: name)
            if broker.evaluate(request, requested: requested).verdict == .allow { plan.environment[variable] = value }
        }
        return plan
    }

    /// The effective trees and files of one path kind, as Landlock can hold them.
    static func trees(_ kind: CapabilityKind, requested: CapabilityRequests, policy: Policy,
                      driver: String, context: PolicyContext) -> (paths: [String], notes: [String]) {
        guard let scope = requested[kind.rawValue] else { return ([], []) }
        var notes: [String] = []
        let manifestPatterns: [String]
        switch scope {
        case .any: manifestPatterns = ["/**"]
        case .patterns(let raw):
            manifestPatterns = raw.compactMap { if case .success(let p) = PolicyParser.expand($0, kind: kind, context: context) { return p }; return nil }
        }
        func applies(_ rule: PolicyRule) -> Bool {
            rule.kind == kind && (rule.driver.map { Glob.matches($0, driver) } ?? true)
        }
        let allows = policy.rules.filter { ($0.action == .allow || $0.action == .audit) && applies($0) && $0.tool == nil }
        let restricts = policy.rules.filter { ($0.action == .deny || $0.action == .ask) && applies($0) }

        var result: [String] = []
        for m in manifestPatterns {
            guard let mine = root(of: m) else {
                notes.append(kind == .exec
                    ? "exec \(m): a glob is not a Landlock rule; the granted files it names now (a glob in the last component only) become exact-file rules"
                    : "\(kind.rawValue) \(m): a partial glob cannot be a Landlock rule; the driver reaches those files only through \(kind.rawValue) system calls")
                continue
            }
            for rule in allows {
                guard let theirs = root(of: rule.pattern) else { continue }
                guard let both = intersect(mine, theirs) else { continue }
                if let blocker = restricts.first(where: { overlaps(both, literalPrefix(of: $0.pattern)) }) {
                    notes.append("\(kind.rawValue) \(both.path)\(both.tree ? "/**" : ""): left out of the sandbox because \"\(blocker.text)\" restricts part of it; the driver reaches it only through system calls")
                    continue
                }
                if !both.tree, FilePath.isDirectory(both.path) { continue }   // an exact directory is not its contents
                if !result.contains(both.path) { result.append(both.path) }
            }
        }
        return (result, notes)
    }

    /// `/a/b/**` → (/a/b, tree); `/a/b` → (/a/b, exact); a partial glob → nil.
    static func root(of pattern: String) -> (path: String, tree: Bool)? {
        if pattern == "/**" { return ("/", true) }
        if pattern.hasSuffix("/**") {
            let base = String(pattern.dropLast(3))
            return hasGlob(base) ? nil : (base.isEmpty ? "/" : base, true)
        }
        return hasGlob(pattern) ? nil : (pattern, false)
    }

    static func hasGlob(_ text: String) -> Bool { text.contains { $0 == "*" || $0 == "?" || $0 == "[" || $0 == "{" } }

    /// The directory a pattern cannot reach outside of.
    static func literalPrefix(of pattern: String) -> String {
        guard let first = pattern.firstIndex(where: { $0 == "*" || $0 == "?" || $0 == "[" || $0 == "{" }) else { return pattern }
        let head = String(pattern[..<first])
        guard let slash = head.lastIndex(of: "/") else { return "/" }
        let dir = String(head[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    static func within(_ path: String, _ dir: String) -> Bool {
        dir == "/" || path == dir || path.hasPrefix(dir + "/")
    }

    static func intersect(_ a: (path: String, tree: Bool), _ b: (path: String, tree: Bool)) -> (path: String, tree: Bool)? {
        switch (a.tree, b.tree) {
        case (true, true):
            if within(a.path, b.path) { return a }
            if within(b.path, a.path) { return b }
            return nil
        case (true, false): return within(b.path, a.path) ? b : nil
        case (false, true): return within(a.path, b.path) ? a : nil
        case (false, false): return a.path == b.path ? a : nil
        }
    }

    static func overlaps(_ granted: (path: String, tree: Bool), _ restricted: String) -> Bool {
        within(granted.path, restricted) || (granted.tree && within(restricted, granted.path))
    }

    // MARK: Network

    /// The port part of a net.connect pattern: nil for any port.
    static func port(of pattern: String) -> UInt16?? {
        var rest = Substring(pattern)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        let portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return .some(nil) }
            let after = rest[rest.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if rest.filter({ $0 == ":" }).count == 1, let colon = rest.firstIndex(of: ":") {
            portText = rest[rest.index(after: colon)...]
        } else {
            portText = nil
        }
        guard let portText, portText != "*" else { return .some(nil) }
        guard let port = UInt16(portText) else { return nil }   // not a pattern we understand
        return .some(port)
    }

    static func host(of pattern: String) -> String {
        var rest = Substring(pattern)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") { return String(rest[rest.index(after: rest.startIndex)..<close]) }
        if rest.filter({ $0 == ":" }).count == 1, let colon = rest.firstIndex(of: ":") { return String(rest[..<colon]) }
        return String(rest)
    }

    static func network(requested: CapabilityRequests, policy: Policy, driver: String, context: PolicyContext) -> Network {
        guard let scope = requested[CapabilityKind.netConnect.rawValue] else { return .none }
        let mine: [String]
        switch scope {
        case .any: mine = ["*"]
        case .patterns(let raw):
            mine = raw.compactMap { if case .success(let p) = PolicyParser.expand($0, kind: .netConnect, context: context) { return p }; return nil }
        }
        let allows = policy.rules.filter {
            ($0.action == .allow || $0.action == .audit) && $0.kind == .netConnect && $0.tool == nil
                && ($0.driver.map { Glob.matches($0, driver) } ?? true)
        }
        var ports = Set<UInt16>()
        var anyPort = false
        for m in mine {
            for rule in allows {
                let (h1, h2) = (host(of: m), host(of: rule.pattern))
                // Hosts are the kernel's to check (net.fetch); here only "could these meet".
                let meet = h1 == h2 || Glob.matches(h1, h2) || Glob.matches(h2, h1) || h1.contains("/") || h2.contains("/")
                guard meet, case .some(let p1) = port(of: m), case .some(let p2) = port(of: rule.pattern) else { continue }
                switch (p1, p2) {
                case (nil, nil): anyPort = true
                case (let p?, nil), (nil, let p?): ports.insert(p)
                case (let p?, let q?): if p == q { ports.insert(p) }
                }
            }
        }
        if anyPort { return .any }
        return ports.isEmpty ? .none : .ports(ports.sorted())
    }

    // MARK: The wire form

    /// The SETUP frame: the driver's own settings, then the plan (`specText`).
    func setupText(library: String, entry: String, name: String, config: String,
                   maxOutputBytes: Int, spinNs: UInt64) -> String {
        let lines = ["library\t\(library)", "entry\t\(entry)", "name\t\(name)", "config\t\(config)",
                     "max_output\t\(maxOutputBytes)", "spin_ns\t\(spinNs)"]
        return lines.joined(separator: "\n") + "\n" + specText
    }

    /// One line a person reads: what the sandbox lets the driver do.
    public var summary: String { describe(environment: true) }

    /// The summary; without the environment for a program, whose environment its driver sets.
    func describe(environment showsEnvironment: Bool) -> String {
        func list(_ access: Access) -> String {
            let items = paths.filter { $0.access == access }.map(\.path)
            return items.isEmpty ? "nothing" : items.joined(separator: ", ")
        }
        let net: String
        switch network {
        case .none: net = "no network (own namespace)"
        case .any: net = "TCP connect to any port"
        case .ports(let p): net = "TCP connect to port\(p.count > 1 ? "s" : "") " + p.map(String.init).joined(separator: ", ")
        }
        return "read \(list(.read)); write \(list(.write)); exec \(allowsExec ? list(.exec) : "refused"); \(net); "
            + (showsEnvironment ? "env \(environment.isEmpty ? "empty" : environment.keys.sorted().joined(separator: ", ")); " : "")
            + "memory \(memoryMB) MB, \(openFiles) open files, files up to \(fileSizeMB) MB"
            + (landlock ? "" : "; NO Landlock") + (seccomp ? "" : "; NO seccomp")
    }
}
