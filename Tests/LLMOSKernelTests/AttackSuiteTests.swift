import Foundation
import LLMOSJSON
import LLMOSNet
import Testing
@testable import LLMOSKernel

// The end-to-end attack suite of the capability issue: every attempt goes through
// `kernel.call`, as a model (the operator's call) or a driver (the `probe` fixture,
// Tests/Fixtures/drivers/probe.c, through `host->syscall`, marked arguments and
// `tool.call`) would make it. Each must be refused with the expected code AND be on
// the audit record:
//
// - `.deny(capability, resource)`: a record with decision deny, that capability and
//   exactly that canonical resource (the broker refused it);
// - every attempt, besides: the record of the call itself (capability tool.call,
//   resource the tool called, driver "" for the operator) with the refusal's code as
//   its outcome. For refusals made before or after the broker decides (a malformed or
//   oversized request, a symlink swapped in between check and open, a hard link, the
//   unspecified address) that record is the only trace, and the row says `.callOutcome`.
//
// The probe's manifest requests (nearly) everything, so that what refuses is the
// operator's policy; the manifest-intersection rows load a narrowed copy in a second
// kernel. Network: loopback only. The "forbidden" addresses (10.0.0.1, 169.254.169.254)
// are refused before any connection; 127.0.0.2 is a live listener of the test server
// that must never see a connection.

// MARK: - The test server (Tests/Fixtures/net/server.py)

private final class AttackNetServer {
    private let server: FixtureServer
    var port: Int { server.port }
    var port2: Int? { server.announcement["port2"] as? Int }

    init() throws { server = try FixtureServer("Tests/Fixtures/net/server.py") }

    func stop() { server.stop() }

    /// Connections each listener accepted (this request counts on 127.0.0.1).
    func connections() throws -> [String: Int] {
        let response = try NetFetcher { _ in .allow }.fetch(FetchRequest(url: "http://127.0.0.1:\(port)/stats"))
        return (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int]) ?? [:]
    }
}

/// A loopback port with nothing listening on it.
private func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    precondition(bound, "cannot bind a loopback port")
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The canonical path by libc's realpath (independent of the kernel's canonicalizer);
/// for a path that does not exist, its existing parent's realpath and the rest.
private func real(_ path: String) -> String {
    if let resolved = FilePath.resolved(path) { return resolved }
    let parent = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    let base = parent.isEmpty || parent == path ? "/" : real(parent)
    return base == "/" ? "/" + name : base + "/" + name
}

// MARK: - The bench: a workspace, a policy, two kernels, one audit log

/// The workspace (`ws`, canonical):
///
///     ws/secret.txt                 "TOP SECRET" (outside every grant)
///     ws/outside/file.txt           "OUTSIDE"
///     ws/granted-evil/x.txt         a sibling that shares the granted prefix
///     ws/granted/a.txt              "granted"    (fs.read/fs.write ws/granted/** is the grant)
///     ws/granted/sub/file.txt       "inside"
///     ws/granted/private/key.txt    under a deny rule inside the grant
///     ws/granted/out -> ../secret.txt, abs -> /etc/passwd, dirlink -> ../outside,
///     dangle -> ../created-by-link.txt (missing), chain1 -> chain2 -> ../secret.txt,
///     loop1 <-> loop2, alias -> victim.txt, inlink -> a.txt
///     ws/granted/hard.txt           a hard link to ws/secret.txt
///     ws/granted/victim*.txt, race*.txt   swapped for symlinks during the run
///     ws/granted/big.bin            2 MiB (the read cap is 1 MiB here)
private final class AttackBench {
    let ws: String
    var granted: String { ws + "/granted" }
    var secret: String { ws + "/secret.txt" }
    let server: AttackNetServer
    let port: Int
    /// 127.0.0.2's listener, or an unused number when it could not bind.
    let port2: Int
    /// Granted by name (localhost), denied by address: the name-to-forbidden-address case.
    let namePort: Int
    let audit = MemoryAuditLog()
    let kernel: Kernel
    let narrow: Kernel
    let secretFD: Int32
    let pipeFDs: (Int32, Int32)
    let home: String

    init() throws {
        let dir = Paths.temporaryDirectory("attack")
        ws = FilePath.resolved(dir) ?? dir
        home = FilePath.homeDirectory
        let fm = FileManager.default
        for sub in ["granted/sub", "granted/private", "outside", "granted-evil"] {
            try fm.createDirectory(atPath: ws + "/" + sub, withIntermediateDirectories: true)
        }
        let base = ws
        func write(_ relative: String, _ text: String) throws {
            try text.write(toFile: base + "/" + relative, atomically: false, encoding: .utf8)
        }
        try write("secret.txt", "TOP SECRET")
        try write("outside/file.txt", "OUTSIDE")
        try write("granted-evil/x.txt", "evil twin")
        try write("granted/a.txt", "granted")
        try write("granted/sub/file.txt", "inside")
        try write("granted/private/key.txt", "private")
        for name in ["victim", "victim2", "race", "race-w"] { try write("granted/\(name).txt", name) }
        try Data(repeating: 0x61, count: 2 << 20).write(to: URL(fileURLWithPath: ws + "/granted/big.bin"))
        let links: [(String, String)] = [
            ("granted/out", "../secret.txt"), ("granted/abs", "/etc/passwd"), ("granted/dirlink", "../outside"),
            ("granted/dangle", "../created-by-link.txt"), ("granted/chain1", "chain2"), ("granted/chain2", "../secret.txt"),
            ("granted/loop1", "loop2"), ("granted/loop2", "loop1"), ("granted/alias", "victim.txt"), ("granted/inlink", "a.txt"),
        ]
        for (link, target) in links {
            guard symlink(target, ws + "/" + link) == 0 else {
                throw Fixtures.FixtureError(message: "symlink \(link): \(String(cString: strerror(errno)))")
            }
        }
        guard link(ws + "/secret.txt", ws + "/granted/hard.txt") == 0 else {
            throw Fixtures.FixtureError(message: "hard link: \(String(cString: strerror(errno)))")
        }
        secretFD = open(ws + "/secret.txt", O_RDONLY)
        var fds: [Int32] = [-1, -1]
        guard secretFD >= 0, pipe(&fds) == 0 else { throw Fixtures.FixtureError(message: "open/pipe failed") }
        pipeFDs = (fds[0], fds[1])

        server = try AttackNetServer()
        port = server.port
        port2 = server.port2 ?? unusedPort()
        namePort = unusedPort()

        let context = PolicyContext(workspace: ws)
        let flags: [(PolicyAction, String)] = [
            (.allow, "fs.read=\(ws)/granted/**"),
            (.allow, "fs.write=\(ws)/granted/**"),
            (.deny, "fs.read=\(ws)/granted/private/**"),
            (.deny, "fs.read=~/.ssh/**"),
            (.allow, "env=LLMOS_*"),
            (.allow, "net.connect=http://127.0.0.1:\(port)"),
            (.allow, "net.connect=http://localhost:\(namePort)"),
            (.deny, "net.connect=127.0.0.0/8:\(namePort)"),
            (.deny, "net.connect=[::1]:\(namePort)"),
            (.allow, "kv=notes/*"),
            (.deny, "tool.call=echo.echo"),
        ]
        var rules: [PolicyRule] = []
        for (action, flag) in flags { rules.append(try PolicyParser.rule(fromFlag: flag, action: action, context: context)) }
        let policy = Policy.builtInDefault.adding(rules)

        let (root, log) = (self.ws, self.audit)
        let raceRead = root + "/granted/race.txt", raceWrite = root + "/granted/race-w.txt", secretPath = root + "/secret.txt"
        func configure(_ c: inout KernelConfiguration) {
            c.broker = CapabilityBroker(policy: policy, asker: DenyingAsker(), context: context)
            c.audit = log
            c.workspace = root
            c.network = CurlNetworkService()
            var files = FileService(maxReadBytes: 1 << 20)
            // The racing attacker: after the check of race*.txt, before the open, the
            // checked file becomes a symlink to the secret.
            files.betweenCheckAndOpen = { checked in
                guard checked.path == raceRead || checked.path == raceWrite else { return }
                unlink(checked.path)
                symlink(secretPath, checked.path)
            }
            c.files = files
        }
        kernel = makeKernel(configure: configure)
        try kernel.load(manifestAt: try Fixtures.install("probe"))
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        try kernel.load(manifestAt: Paths.manifests + "/calc.yaml")

        // The same driver with a narrow request: the policy grants more than it asks for.
        narrow = makeKernel(configure: configure)
        let edits: [(String, String)] = [
            (#""fs.read": ["/**"]"#, #""fs.read": ["\#(root)/granted/sub/**"]"#),
            (#""fs.write": ["/**"]"#, #""fs.write": []"#),
            (#""net.connect": ["*"]"#, #""net.connect": ["http://example.com:80"]"#),
            (#"exec: ["/**"]"#, #"exec: ["/usr/bin/true"]"#),
            (#"env: ["*"]"#, #"env: ["LLMOS_ONLY_*"]"#),
            ("kv: true", "kv: false"),
            (#""tool.call": ["probe.*", "echo.echo"]"#, #""tool.call": ["probe.read_path"]"#),
        ]
        try narrow.load(manifestAt: try Fixtures.install("probe", into: Paths.temporaryDirectory("probe-narrow")) { text in
            var text = text
            for (from, to) in edits {
                precondition(text.contains(from), "probe.yaml no longer has \(from)")
                text = text.replacingOccurrences(of: from, with: to)
            }
            return text
        })
    }

    deinit {
        close(secretFD)
        close(pipeFDs.0)
        close(pipeFDs.1)
        server.stop()
        try? FileManager.default.removeItem(atPath: ws)
    }
}

// MARK: - Attempts

private struct Attempt {
    enum Audit {
        /// A deny record of this capability on exactly this canonical resource.
        case deny(String, String)
        /// A deny record of this capability whose resource starts so (a connected address follows).
        case denyPrefix(String, String)
        /// Refused outside the broker's decision: the call's own record carries the code.
        case callOutcome
    }

    var category: String
    var name: String
    var tool: String
    var input: String
    var narrow = false
    var code: LLMOSError.Code = .permissionDenied
    var audit: Audit
}

private func sys(_ service: String, _ request: JSONValue) -> String {
    JSONValue.object(["service": .string(service), "request": request]).serialized()
}

private func json(_ value: JSONValue) -> String { value.serialized() }

private func attempts(_ b: AttackBench) -> [Attempt] {
    let ws = b.ws, g = b.granted, s = b.secret
    let p = b.port, p2 = b.port2
    let server = "http://127.0.0.1:\(p)"
    let unique = UUID().uuidString.prefix(8)
    let pid = getpid()
    var list: [Attempt] = []
    func add(_ category: String, _ name: String, _ tool: String, _ input: String, narrow: Bool = false,
             code: LLMOSError.Code = .permissionDenied, _ audit: Attempt.Audit) {
        list.append(Attempt(category: category, name: name, tool: tool, input: input, narrow: narrow, code: code, audit: audit))
    }
    func read(_ path: String) -> String { sys("fs.read", ["path": .string(path)]) }
    func write(_ path: String, _ mode: String = "create") -> String {
        sys("fs.write", ["path": .string(path), "content": "pwned", "mode": .string(mode)])
    }
    func fetch(_ url: String) -> String { sys("net.fetch", ["url": .string(url)]) }
    func env(_ name: String) -> String { sys("env.get", ["name": .string(name)]) }
    func call(_ tool: String, _ input: JSONValue) -> JSONValue { ["tool": .string(tool), "input": input] }
    let etcPasswd = real("/etc/passwd")

    // ../ traversal
    var c = "traversal"
    add(c, "fs.read granted/../secret.txt (relative)", "probe.syscall", read("granted/../secret.txt"), .deny("fs.read", s))
    add(c, "fs.read <ws>/granted/../secret.txt (absolute)", "probe.syscall", read(g + "/../secret.txt"), .deny("fs.read", s))
    add(c, "fs.read granted/sub/../../secret.txt", "probe.syscall", read("granted/sub/../../secret.txt"), .deny("fs.read", s))
    add(c, "fs.read granted/ + ../ x20 + etc/passwd", "probe.syscall",
        read("granted/" + String(repeating: "../", count: 20) + "etc/passwd"), .deny("fs.read", etcPasswd))
    add(c, "fs.write create granted/../planted.txt", "probe.syscall", write("granted/../planted.txt"), .deny("fs.write", ws + "/planted.txt"))
    add(c, "fs.list granted/..", "probe.syscall", sys("fs.list", ["path": "granted/.."]), .deny("fs.read", ws))
    add(c, "fs.stat granted/./../secret.txt", "probe.syscall", sys("fs.stat", ["path": "granted/./../secret.txt"]), .deny("fs.read", s))
    add(c, "read_path argument granted/../secret.txt", "probe.read_path", json(["path": "granted/../secret.txt"]), .deny("fs.read", s))
    add(c, "write_path argument granted/../../evil-*.txt", "probe.write_path",
        json(["path": .string("granted/../../evil-\(unique).txt"), "content": "x"]),
        .deny("fs.write", real((ws as NSString).deletingLastPathComponent) + "/evil-\(unique).txt"))
    add(c, "fs.read granted/missing/../../secret.txt (.. below a missing directory)", "probe.syscall",
        read("granted/missing/../../secret.txt"), code: .invalidArgument, .callOutcome)
    add(c, "fs.read granted/a.txt/../../secret.txt (.. through a file)", "probe.syscall",
        read("granted/a.txt/../../secret.txt"), code: .invalidArgument, .callOutcome)

    // Absolute paths outside the grants
    c = "absolute outside"
    add(c, "fs.read /etc/passwd", "probe.syscall", read("/etc/passwd"), .deny("fs.read", etcPasswd))
    add(c, "fs.read /etc/shadow", "probe.syscall", read("/etc/shadow"), .deny("fs.read", real("/etc/shadow")))
    add(c, "fs.read <ws>/secret.txt", "probe.syscall", read(s), .deny("fs.read", s))
    add(c, "fs.read //etc//passwd", "probe.syscall", read("//etc//passwd"), .deny("fs.read", etcPasswd))
    add(c, "fs.read <ws>/granted-evil/x.txt (a sibling sharing the granted prefix)", "probe.syscall",
        read(ws + "/granted-evil/x.txt"), .deny("fs.read", ws + "/granted-evil/x.txt"))
    add(c, "fs.write create /tmp/llmos-attack-*.txt", "probe.syscall", write("/tmp/llmos-attack-\(unique).txt"),
        .deny("fs.write", real("/tmp") + "/llmos-attack-\(unique).txt"))
    add(c, "fs.list /", "probe.syscall", sys("fs.list", ["path": "/"]), .deny("fs.read", "/"))
    add(c, "fs.stat /etc", "probe.syscall", sys("fs.stat", ["path": "/etc"]), .deny("fs.read", real("/etc")))
    add(c, "read_path argument /etc/passwd", "probe.read_path", json(["path": "/etc/passwd"]), .deny("fs.read", etcPasswd))
    add(c, "write_path argument <ws>/outside/new.txt", "probe.write_path",
        json(["path": .string(ws + "/outside/new.txt"), "content": "x"]), .deny("fs.write", ws + "/outside/new.txt"))

    // Deny rules win over the grant
    c = "deny rule over allow"
    add(c, "fs.read granted/private/key.txt (deny inside the grant)", "probe.syscall", read("granted/private/key.txt"),
        .deny("fs.read", g + "/private/key.txt"))
    add(c, "fs.read ~/.ssh/id_rsa", "probe.syscall", read("~/.ssh/id_rsa"), .deny("fs.read", real(b.home + "/.ssh/id_rsa")))

    // Symlinks out of the granted directory
    c = "symlink out"
    add(c, "fs.read granted/out -> ../secret.txt", "probe.syscall", read("granted/out"), .deny("fs.read", s))
    add(c, "fs.read granted/abs -> /etc/passwd", "probe.syscall", read("granted/abs"), .deny("fs.read", etcPasswd))
    add(c, "fs.read granted/dirlink/file.txt (dirlink -> ../outside)", "probe.syscall", read("granted/dirlink/file.txt"),
        .deny("fs.read", ws + "/outside/file.txt"))
    add(c, "fs.list granted/dirlink", "probe.syscall", sys("fs.list", ["path": "granted/dirlink"]), .deny("fs.read", ws + "/outside"))
    add(c, "fs.read granted/chain1 -> chain2 -> ../secret.txt", "probe.syscall", read("granted/chain1"), .deny("fs.read", s))
    add(c, "fs.write overwrite through granted/out", "probe.syscall", write("granted/out", "overwrite"), .deny("fs.write", s))
    add(c, "fs.write create through dangling granted/dangle", "probe.syscall", write("granted/dangle"),
        .deny("fs.write", ws + "/created-by-link.txt"))
    add(c, "read_path argument granted/out", "probe.read_path", json(["path": "granted/out"]), .deny("fs.read", s))
    add(c, "write_path argument granted/dirlink/new.txt", "probe.write_path",
        json(["path": "granted/dirlink/new.txt", "content": "x"]), .deny("fs.write", ws + "/outside/new.txt"))
    add(c, "fs.read granted/loop1 (symlink loop)", "probe.syscall", read("granted/loop1"), code: .invalidArgument, .callOutcome)

    // A symlink swapped in after the check
    c = "symlink swapped after check"
    add(c, "fs.read granted/race.txt, swapped for a symlink to the secret between check and open", "probe.syscall",
        read("granted/race.txt"), .callOutcome)
    add(c, "fs.write overwrite granted/race-w.txt, swapped between check and open", "probe.syscall",
        write("granted/race-w.txt", "overwrite"), .callOutcome)
    add(c, "read_path argument granted/victim2.txt, swapped after the argument check", "probe.read_path",
        json(["path": "granted/victim2.txt", "swap": ["link": .string(g + "/victim2.txt"), "target": .string(s)]]),
        .deny("fs.read", s))

    // Hard links
    c = "hard link"
    add(c, "fs.read granted/hard.txt (hard link to the secret)", "probe.syscall", read("granted/hard.txt"), .callOutcome)
    add(c, "fs.write overwrite granted/hard.txt", "probe.syscall", write("granted/hard.txt", "overwrite"), .callOutcome)
    add(c, "fs.write append granted/hard.txt", "probe.syscall", write("granted/hard.txt", "append"), .callOutcome)
    add(c, "read_path argument granted/hard.txt", "probe.read_path", json(["path": "granted/hard.txt"]), .callOutcome)

    // /proc magic links
    c = "/proc"
    add(c, "fs.read /proc/self/root<ws>/secret.txt", "probe.syscall", read("/proc/self/root" + s), .deny("fs.read", s))
    add(c, "fs.read /proc/self/root/etc/passwd", "probe.syscall", read("/proc/self/root/etc/passwd"), .deny("fs.read", etcPasswd))
    add(c, "fs.read /proc/self/root<ws>/granted/../secret.txt", "probe.syscall", read("/proc/self/root" + g + "/../secret.txt"),
        .deny("fs.read", s))
    add(c, "fs.read /proc/thread-self/root<ws>/secret.txt", "probe.syscall", read("/proc/thread-self/root" + s), .deny("fs.read", s))
    add(c, "fs.read /proc/self/fd/N (N open on the secret)", "probe.syscall", read("/proc/self/fd/\(b.secretFD)"), .deny("fs.read", s))
    add(c, "fs.write overwrite /proc/self/fd/N", "probe.syscall", write("/proc/self/fd/\(b.secretFD)", "overwrite"), .deny("fs.write", s))
    add(c, "fs.read /proc/self/environ", "probe.syscall", read("/proc/self/environ"), .deny("fs.read", "/proc/\(pid)/environ"))
    add(c, "fs.list /proc/self/cwd", "probe.syscall", sys("fs.list", ["path": "/proc/self/cwd"]),
        .deny("fs.read", real(FileManager.default.currentDirectoryPath)))
    add(c, "read_path argument /proc/self/root<ws>/secret.txt", "probe.read_path", json(["path": .string("/proc/self/root" + s)]),
        .deny("fs.read", s))
    add(c, "fs.read /proc/self/fd/N (N a pipe: a magic link to no path)", "probe.syscall", read("/proc/self/fd/\(b.pipeFDs.0)"),
        code: .invalidArgument, .callOutcome)

    // URL tricks (net.fetch; only http://127.0.0.1:<port> is granted)
    c = "URL tricks"
    let tenDenied = Attempt.Audit.deny("net.connect", "http://10.0.0.1:80 (address 10.0.0.1)")
    let loop2Denied = Attempt.Audit.deny("net.connect", "http://127.0.0.2:\(p2) (address 127.0.0.2)")
    add(c, "userinfo http://127.0.0.1@10.0.0.1/", "probe.syscall", fetch("http://127.0.0.1@10.0.0.1/"), code: .invalidArgument, .callOutcome)
    add(c, "userinfo http://127.0.0.1:<port>@127.0.0.2:<port2>/ok", "probe.syscall",
        fetch("\(server)@127.0.0.2:\(p2)/ok"), code: .invalidArgument, .callOutcome)
    add(c, "decimal IPv4 http://167772161/ (10.0.0.1)", "probe.syscall", fetch("http://167772161/"), tenDenied)
    add(c, "octal IPv4 http://012.0.0.1/", "probe.syscall", fetch("http://012.0.0.1/"), tenDenied)
    add(c, "hex IPv4 http://0xa.0.0.1/", "probe.syscall", fetch("http://0xa.0.0.1/"), tenDenied)
    add(c, "hex IPv4 http://0x0a000001/", "probe.syscall", fetch("http://0x0a000001/"), tenDenied)
    add(c, "IPv6-mapped http://[::ffff:10.0.0.1]/", "probe.syscall", fetch("http://[::ffff:10.0.0.1]/"), tenDenied)
    add(c, "IPv6-mapped hex http://[::ffff:a00:1]/", "probe.syscall", fetch("http://[::ffff:a00:1]/"), tenDenied)
    add(c, "decimal IPv4 of a live loopback listener http://2130706434:<port2>/ok", "probe.syscall",
        fetch("http://2130706434:\(p2)/ok"), loop2Denied)
    add(c, "short IPv4 http://127.2:<port2>/ok", "probe.syscall", fetch("http://127.2:\(p2)/ok"), loop2Denied)
    add(c, "metadata address http://169.254.169.254/latest/meta-data/", "probe.syscall",
        fetch("http://169.254.169.254/latest/meta-data/"), .deny("net.connect", "http://169.254.169.254:80 (address 169.254.169.254)"))
    add(c, "IPv6 loopback http://[::1]:<port>/ok (the grant is 127.0.0.1)", "probe.syscall", fetch("http://[::1]:\(p)/ok"),
        .deny("net.connect", "http://[::1]:\(p) (address ::1)"))
    add(c, "another scheme https://127.0.0.1:<port>/ok", "probe.syscall", fetch("https://127.0.0.1:\(p)/ok"),
        .deny("net.connect", "https://127.0.0.1:\(p) (address 127.0.0.1)"))
    add(c, "another port http://127.0.0.1:9/", "probe.syscall", fetch("http://127.0.0.1:9/"),
        .deny("net.connect", "http://127.0.0.1:9 (address 127.0.0.1)"))
    add(c, "redirect from the granted server to http://10.0.0.1/", "probe.syscall",
        fetch("\(server)/redirect?to=http://10.0.0.1/"), tenDenied)
    add(c, "redirect from the granted server to http://127.0.0.2:<port2>/ok", "probe.syscall",
        fetch("\(server)/redirect?to=http://127.0.0.2:\(p2)/ok"), loop2Denied)
    add(c, "307 redirect to the decimal form http://2130706434:<port2>/ok", "probe.syscall",
        fetch("\(server)/redirect?status=307&to=http://2130706434:\(p2)/ok"), loop2Denied)
    add(c, "redirect to file:///etc/passwd", "probe.syscall", fetch("\(server)/redirect?to=file:///etc/passwd"),
        code: .invalidArgument, .callOutcome)
    add(c, "a name (localhost) when the grant is by address", "probe.syscall", fetch("http://localhost:\(p)/ok"),
        .deny("net.connect", "http://localhost:\(p)"))
    add(c, "a name granted by name that resolves to a denied address (localhost:<port3>)", "probe.syscall",
        fetch("http://localhost:\(b.namePort)/ok"), .denyPrefix("net.connect", "http://localhost:\(b.namePort) (address "))
    add(c, "the unspecified address http://0.0.0.0:<port>/ok", "probe.syscall", fetch("http://0.0.0.0:\(p)/ok"), .callOutcome)
    add(c, "file:///etc/passwd", "probe.syscall", fetch("file:///etc/passwd"), code: .invalidArgument, .callOutcome)
    add(c, "gopher://127.0.0.1:<port>/", "probe.syscall", fetch("gopher://127.0.0.1:\(p)/"), code: .invalidArgument, .callOutcome)
    add(c, "fetch_url argument http://10.0.0.1/", "probe.fetch_url", json(["url": "http://10.0.0.1/"]), tenDenied)
    add(c, "fetch_url argument http://localhost:<port>/ok", "probe.fetch_url", json(["url": .string("http://localhost:\(p)/ok")]),
        .deny("net.connect", "http://localhost:\(p)"))
    add(c, "fetch_url argument with userinfo http://127.0.0.1@10.0.0.1/", "probe.fetch_url",
        json(["url": "http://127.0.0.1@10.0.0.1/"]), code: .invalidArgument, .callOutcome)
    add(c, "fetch_url argument of the granted server that redirects to http://10.0.0.1/", "probe.fetch_url",
        json(["url": .string("\(server)/redirect?to=http://10.0.0.1/")]), tenDenied)
    add(c, "scheme-relative redirect to //10.0.0.1/", "probe.syscall", fetch("\(server)/redirect?to=//10.0.0.1/"), tenDenied)
    add(c, "redirect to a Location with userinfo http://127.0.0.1@10.0.0.1/", "probe.syscall",
        fetch("\(server)/redirect?to=http://127.0.0.1@10.0.0.1/"), code: .invalidArgument, .callOutcome)
    add(c, "the unspecified IPv6 address http://[::]:<port>/ok", "probe.syscall", fetch("http://[::]:\(p)/ok"), .callOutcome)
    add(c, "an IPv6 zone http://[fe80::1%25lo]:<port>/", "probe.syscall", fetch("http://[fe80::1%25lo]:\(p)/"),
        code: .invalidArgument, .callOutcome)
    add(c, "a Host header naming another host", "probe.syscall",
        sys("net.fetch", ["url": .string("\(server)/headers"), "headers": ["Host": "10.0.0.1"]]), code: .invalidArgument, .callOutcome)

    // Environment variables by glob (env=LLMOS_*)
    c = "env"
    for name in ["AWS_SECRET_ACCESS_KEY", "PATH", "HOME", "LD_PRELOAD", "llmos_x", "LLMOS", "XLLMOS_A"] {
        add(c, "env.get \(name)", "probe.syscall", env(name), .deny("env", name))
    }
    add(c, "env.get LLMOS_* (a glob as the name)", "probe.syscall", env("LLMOS_*"), code: .invalidArgument, .callOutcome)
    add(c, "env.get LLMOS_X\\0PATH (a NUL in the name)", "probe.syscall", env("LLMOS_X\u{0}PATH"), code: .invalidArgument, .callOutcome)

    // kv keys outside notes/*
    c = "kv"
    add(c, "kv.get secrets/x", "probe.syscall", sys("kv.get", ["key": "secrets/x"]), .deny("kv", "secrets/x"))
    add(c, "kv.put config", "probe.syscall", sys("kv.put", ["key": "config", "value": "v"]), .deny("kv", "config"))
    add(c, "kv.delete notes (no slash)", "probe.syscall", sys("kv.delete", ["key": "notes"]), .deny("kv", "notes"))
    add(c, "kv.get NOTES/a (case)", "probe.syscall", sys("kv.get", ["key": "NOTES/a"]), .deny("kv", "NOTES/a"))
    add(c, "kv.put ../notes/a", "probe.syscall", sys("kv.put", ["key": "../notes/a", "value": "v"]), .deny("kv", "../notes/a"))
    add(c, "kv.get xnotes/a", "probe.syscall", sys("kv.get", ["key": "xnotes/a"]), .deny("kv", "xnotes/a"))
    add(c, "kv.get \"\" (empty key)", "probe.syscall", sys("kv.get", ["key": ""]), .deny("kv", ""))

    // tool.call of denied tools, directly and through chains (--deny tool.call=echo.echo)
    c = "tool.call"
    add(c, "the operator (a model) calls echo.echo", "echo.echo", "{}", .deny("tool.call", "echo.echo"))
    add(c, "probe -> tool.call echo.echo", "probe.syscall", sys("tool.call", call("echo.echo", [:])), .deny("tool.call", "echo.echo"))
    add(c, "probe -> probe.syscall -> tool.call echo.echo", "probe.syscall",
        sys("tool.call", call("probe.syscall", ["service": "tool.call", "request": call("echo.echo", [:])])),
        .deny("tool.call", "echo.echo"))
    add(c, "probe -> probe.syscall -> probe.syscall -> tool.call echo.echo", "probe.syscall",
        sys("tool.call", call("probe.syscall", ["service": "tool.call", "request":
            call("probe.syscall", ["service": "tool.call", "request": call("echo.echo", [:])])])),
        .deny("tool.call", "echo.echo"))
    add(c, "probe -> tool.call calc.add (not in its manifest)", "probe.syscall", sys("tool.call", call("calc.add", ["a": 1, "b": 2])),
        .deny("tool.call", "calc.add"))
    add(c, "probe -> probe.syscall -> tool.call calc.add", "probe.syscall",
        sys("tool.call", call("probe.syscall", ["service": "tool.call", "request": call("calc.add", ["a": 1, "b": 2])])),
        .deny("tool.call", "calc.add"))
    add(c, "probe -> probe.read_path granted/../secret.txt (a marked argument in a chain)", "probe.syscall",
        sys("tool.call", call("probe.read_path", ["path": "granted/../secret.txt"])), .deny("fs.read", s))
    add(c, "the operator calls probe.wipe (destructive, only tool.call=* allows it)", "probe.wipe", "{}", .deny("tool.call", "probe.wipe"))
    add(c, "probe -> tool.call probe.wipe (destructive)", "probe.syscall", sys("tool.call", call("probe.wipe", [:])),
        .deny("tool.call", "probe.wipe"))

    // The manifest's request ∩ the policy: a narrowed probe, a policy that grants more
    c = "manifest intersection"
    add(c, "fs.read granted/a.txt (policy grants, manifest asks granted/sub/** only)", "probe.syscall", read("granted/a.txt"),
        narrow: true, .deny("fs.read", g + "/a.txt"))
    add(c, "read_path argument granted/a.txt", "probe.read_path", json(["path": "granted/a.txt"]), narrow: true, .deny("fs.read", g + "/a.txt"))
    add(c, "fs.write granted/new.txt (manifest fs.write: [])", "probe.syscall", write("granted/new.txt"), narrow: true,
        .deny("fs.write", g + "/new.txt"))
    add(c, "env.get LLMOS_X (manifest env: LLMOS_ONLY_*)", "probe.syscall", env("LLMOS_X"), narrow: true, .deny("env", "LLMOS_X"))
    add(c, "kv.get notes/a (manifest kv: false)", "probe.syscall", sys("kv.get", ["key": "notes/a"]), narrow: true, .deny("kv", "notes/a"))
    add(c, "net.fetch of the granted server (manifest: example.com only)", "probe.syscall", fetch("\(server)/ok"), narrow: true,
        .deny("net.connect", "http://127.0.0.1:\(p) (address 127.0.0.1)"))
    add(c, "tool.call probe.syscall (manifest: probe.read_path only)", "probe.syscall",
        sys("tool.call", call("probe.syscall", ["service": "env.get", "request": ["name": "LLMOS_X"]])), narrow: true,
        .deny("tool.call", "probe.syscall"))

    // Oversized and malformed inputs
    c = "oversized / malformed"
    add(c, "a 20 MiB syscall request (kv.put notes/big)", "probe.syscall",
        sys("kv.put", ["key": "notes/big", "value": .string(String(repeating: "a", count: 20 << 20))]),
        code: .invalidArgument, .callOutcome)
    add(c, "a huge kv value (2 MiB, notes/huge)", "probe.syscall",
        sys("kv.put", ["key": "notes/huge", "value": .string(String(repeating: "v", count: 2 << 20))]),
        code: .invalidArgument, .callOutcome)
    add(c, "a kv key of 2000 bytes", "probe.syscall", sys("kv.get", ["key": .string("notes/" + String(repeating: "k", count: 2000))]),
        code: .invalidArgument, .callOutcome)
    add(c, "an over-long path (5000 bytes) through fs.read", "probe.syscall", read("granted/" + String(repeating: "a", count: 5000)),
        code: .invalidArgument, .callOutcome)
    add(c, "an over-long path component (300 bytes)", "probe.syscall", read("granted/" + String(repeating: "b", count: 300)),
        code: .invalidArgument, .callOutcome)
    add(c, "an over-long path as the read_path argument", "probe.read_path",
        json(["path": .string("granted/" + String(repeating: "a", count: 5000))]), code: .invalidArgument, .callOutcome)
    add(c, "a NUL byte in an fs.read path", "probe.syscall", read("granted/a.txt\u{0}/../../secret.txt"), code: .invalidArgument, .callOutcome)
    add(c, "duplicate keys: {path: granted/a.txt, path: /etc/passwd}", "probe.read_path",
        #"{"path": "granted/a.txt", "path": "/etc/passwd"}"#, code: .invalidArgument, .callOutcome)
    add(c, "a NUL byte in the read_path argument", "probe.read_path", json(["path": "granted/a.txt\u{0}../secret.txt"]),
        code: .invalidArgument, .callOutcome)
    add(c, "a URL of 9000 bytes", "probe.syscall", fetch("\(server)/ok?" + String(repeating: "q", count: 9000)),
        code: .invalidArgument, .callOutcome)
    add(c, "an env name of 300 bytes", "probe.syscall", env("LLMOS_" + String(repeating: "N", count: 300)),
        code: .invalidArgument, .callOutcome)
    add(c, "a response over max_bytes (100000 bytes, max 1000)", "probe.syscall",
        sys("net.fetch", ["url": .string("\(server)/big?n=100000"), "max_bytes": 1000]), code: .outputTooLarge, .callOutcome)
    add(c, "a granted file over the read cap (2 MiB, cap 1 MiB)", "probe.syscall", read("granted/big.bin"),
        code: .outputTooLarge, .callOutcome)

    // exec of programs not granted (no exec grant at all)
    c = "exec"
    add(c, "run /bin/sh", "probe.run", json(["program": "/bin/sh"]), .deny("exec", real("/bin/sh")))
    add(c, "run /usr/bin/env", "probe.run", json(["program": "/usr/bin/env"]), .deny("exec", real("/usr/bin/env")))
    add(c, "run sh (relative: the workspace's sh)", "probe.run", json(["program": "sh"]), .deny("exec", ws + "/sh"))
    add(c, "run /proc/self/exe", "probe.run", json(["program": "/proc/self/exe"]), .deny("exec", real("/proc/self/exe")))
    add(c, "run granted/../../../../../../bin/rm", "probe.run", json(["program": "granted/../../../../../../bin/rm"]),
        .deny("exec", real("/bin/rm")))
    return list
}

// MARK: - The suite

@Suite(.serialized) struct AttackSuiteTests {
    @Test func everyAttemptIsRefusedAndAudited() throws {
        let bench = try AttackBench()
        let list = attempts(bench)
        #expect(Set(list.map(\.name)).count == list.count, "attempt names must be distinct")

        var refusedAndAudited = 0
        // category, attempted, refused and audited, of which with a deny record
        var perCategory: [(String, Int, Int, Int)] = []
        for attempt in list {
            let kernel = attempt.narrow ? bench.narrow : bench.kernel
            let before = bench.audit.count
            var refused = false
            var message = ""
            do {
                let result = try kernel.call(attempt.tool, input: attempt.input)
                Issue.record("NOT REFUSED — \(attempt.category): \(attempt.name): \(result.output.prefix(400))")
            } catch {
                message = error.message
                refused = error.code == attempt.code
                if !refused {
                    Issue.record("\(attempt.category): \(attempt.name): expected \(attempt.code), got \(error.code): \(error.message)")
                }
            }
            let records = Array(bench.audit.records.dropFirst(before))
            // The call's own record, with the refusal as its outcome.
            let callRecorded = records.contains {
                $0.capability == "tool.call" && $0.resource == attempt.tool && $0.driver == "" && $0.outcome == attempt.code.name
            }
            var decisionRecorded = true
            switch attempt.audit {
            case .deny(let capability, let resource):
                decisionRecorded = records.contains {
                    $0.decision == .deny && $0.capability == capability && $0.resource == resource && $0.outcome == "permission_denied"
                }
            case .denyPrefix(let capability, let prefix):
                decisionRecorded = records.contains {
                    $0.decision == .deny && $0.capability == capability && $0.resource.hasPrefix(prefix) && $0.outcome == "permission_denied"
                }
            case .callOutcome:
                break
            }
            if !callRecorded || !decisionRecorded {
                let shown = records.map { "\($0.decision) \($0.capability) \($0.resource) [\($0.outcome)] by \($0.rule)" }
                Issue.record("NOT AUDITED — \(attempt.category): \(attempt.name) (error: \(message)); expected \(attempt.audit); records: \(shown)")
            }
            let ok = refused && callRecorded && decisionRecorded
            if ProcessInfo.processInfo.environment["LLMOS_ATTACK_DEBUG"] != nil {
                let shown = records.map { "    \($0.decision) \($0.driver)|\($0.tool) \($0.capability) \($0.resource) [\($0.outcome)] by \($0.rule.prefix(90))" }
                FileHandle.standardError.write(Data("## \(attempt.name)\n  -> \(message.prefix(300))\n\(shown.joined(separator: "\n"))\n".utf8))
            }
            if ok { refusedAndAudited += 1 }
            var isDenyRow = true
            if case .callOutcome = attempt.audit { isDenyRow = false }
            if !perCategory.contains(where: { $0.0 == attempt.category }) { perCategory.append((attempt.category, 0, 0, 0)) }
            let i = perCategory.firstIndex { $0.0 == attempt.category }!
            perCategory[i].1 += 1
            perCategory[i].2 += ok ? 1 : 0
            perCategory[i].3 += ok && isDenyRow ? 1 : 0
        }

        print("attack suite: \(list.count) attempted, \(refusedAndAudited) refused and audited")
        if ProcessInfo.processInfo.environment["LLMOS_ATTACK_TABLE"] != nil {
            // The table of docs/SECURITY.md.
            for (category, tried, passed, denied) in perCategory {
                FileHandle.standardError.write(Data("| \(category) | \(tried) | \(passed) | \(denied) | \(passed - denied) |\n".utf8))
            }
        }
        #expect(list.count >= 60)
        #expect(refusedAndAudited == list.count)

        // Nothing got through on the side: the secret is intact, nothing was planted,
        // and the forbidden loopback listener never saw a connection.
        #expect(try String(contentsOfFile: bench.secret, encoding: .utf8) == "TOP SECRET")
        for planted in ["planted.txt", "created-by-link.txt", "outside/new.txt", "sh"] {
            #expect(!FileManager.default.fileExists(atPath: bench.ws + "/" + planted), "\(planted) was created")
        }
        if bench.server.port2 != nil {
            #expect(try bench.server.connections()["127.0.0.2"] == nil, "a connection reached 127.0.0.2")
        }
        #expect(try bench.kernel.configuration.keyValueStore.get(namespace: "probe", key: "config") == nil)
        let verification = bench.audit.verify()
        #expect(verification.isValid, "\(verification)")
    }

    /// The suite is not vacuous: what is granted works, and is audited as allowed.
    @Test func grantedRequestsWorkAndAreAuditedAsAllowed() throws {
        let bench = try AttackBench()
        let (g, p) = (bench.granted, bench.port)

        let read = try JSON.parse(try bench.kernel.call("probe.syscall", input: sys("fs.read", ["path": "granted/a.txt"])).output)
        #expect(read["content"]?.stringValue == "granted" && read["path"]?.stringValue == g + "/a.txt")
        #expect(bench.audit.records.contains { $0.decision == .allow && $0.capability == "fs.read" && $0.resource == g + "/a.txt" && $0.driver == "probe" })

        // A marked argument arrives canonical: relative, with . and .., through a symlink.
        let viaLink = try JSON.parse(try bench.kernel.call("probe.read_path", input: json(["path": "granted/./sub/../inlink"])).output)
        #expect(viaLink["received"]?.stringValue == g + "/a.txt")
        #expect(viaLink["result"]?["content"]?.stringValue == "granted")

        let fetched = try JSON.parse(try bench.kernel.call("probe.syscall", input: sys("net.fetch", ["url": .string("http://127.0.0.1:\(p)/ok")])).output)
        #expect(fetched["status"]?.int64Value == 200 && fetched["body"]?.stringValue == "ok\n")
        #expect(bench.audit.records.contains { $0.decision == .allow && $0.capability == "net.connect" && $0.resource == "http://127.0.0.1:\(p) (address 127.0.0.1)" })

        let kv = try JSON.parse(try bench.kernel.call("probe.syscall", input: sys("kv.put", ["key": "notes/a", "value": "v"])).output)
        #expect(kv["ok"]?.boolValue == true)
        #expect(bench.audit.records.contains { $0.decision == .allow && $0.capability == "kv" && $0.resource == "notes/a" })

        let env = try JSON.parse(try bench.kernel.call("probe.syscall", input: sys("env.get", ["name": "LLMOS_ATTACK_CONTROL"])).output)
        #expect(env["name"]?.stringValue == "LLMOS_ATTACK_CONTROL")
        #expect(bench.audit.records.contains { $0.decision == .allow && $0.capability == "env" && $0.resource == "LLMOS_ATTACK_CONTROL" })

        let written = try JSON.parse(try bench.kernel.call("probe.write_path", input: json(["path": "granted/sub/../made.txt", "content": "made"])).output)
        #expect(written["received"]?.stringValue == g + "/made.txt")
        #expect(try String(contentsOfFile: g + "/made.txt", encoding: .utf8) == "made")

        // The narrowed manifest still gets what both it and the policy allow.
        let narrow = try JSON.parse(try bench.narrow.call("probe.syscall", input: sys("fs.read", ["path": "granted/sub/file.txt"])).output)
        #expect(narrow["content"]?.stringValue == "inside")

        // A symlink swapped after the argument check changes nothing: the driver got the
        // canonical path (victim.txt), not the link the caller named.
        let swapped = try JSON.parse(try bench.kernel.call("probe.read_path", input: json([
            "path": "granted/alias", "swap": ["link": .string(g + "/alias"), "target": .string(bench.secret)],
        ])).output)
        #expect(swapped["received"]?.stringValue == g + "/victim.txt")
        #expect(swapped["result"]?["content"]?.stringValue == "victim")
        #expect(bench.audit.records.contains { $0.decision == .allow && $0.capability == "fs.read" && $0.resource == g + "/victim.txt" && $0.tool == "probe.read_path" })
        #expect(bench.audit.verify().isValid)
    }

    /// Names that differ only in Unicode normalization (café in NFC and in NFD) are
    /// different files on Linux. Every resource comparison in the kernel uses their bytes,
    /// never Swift's `String ==` (which applies canonical equivalence).
    @Test func unicodeEquivalentNamesAreDistinctResources() throws {
        let bench = try AttackBench()
        let g = bench.granted
        let nfc = "caf\u{e9}.txt", nfd = "cafe\u{301}.txt"
        try "nfc file".write(toFile: g + "/" + nfc, atomically: false, encoding: .utf8)
        #expect(symlink(nfc, g + "/" + nfd) == 0)

        // 1. A marked argument naming a symlink whose target differs from it only by
        // normalization: the check is made on the target, but the driver gets the link.
        let out = try JSON.parse(try bench.kernel.call("probe.read_path", input: json(["path": .string(g + "/" + nfd)])).output)
        let received = out["received"]?.stringValue ?? ""
        #expect(Array(received.utf8) == Array((g + "/" + nfc).utf8), "the driver received \(Array(received.utf8.suffix(12)))")

        // 2. "Allow for this session" on one file covers another whose name is canonically
        // equivalent: the second read is never asked about.
        let ws = bench.ws
        try FileManager.default.createDirectory(atPath: ws + "/ask", withIntermediateDirectories: true)
        try "one".write(toFile: ws + "/ask/" + nfc, atomically: false, encoding: .utf8)
        try "other".write(toFile: ws + "/ask/" + nfd, atomically: false, encoding: .utf8)
        let asker = ScriptedAsker([.allowForSession], whenExhausted: .deny)
        let context = PolicyContext(workspace: ws)
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "fs.read=\(ws)/ask/**", action: .ask, context: context)])
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy, asker: asker, context: context)
            c.workspace = ws
        }
        try kernel.load(manifestAt: try Fixtures.install("probe"))
        _ = try kernel.call("probe.syscall", input: sys("fs.read", ["path": .string(ws + "/ask/" + nfc)]))
        let second = Result { () throws(LLMOSError) in try kernel.call("probe.syscall", input: sys("fs.read", ["path": .string(ws + "/ask/" + nfd)])) }
        #expect(asker.asked.count == 2, "asked \(asker.asked.count) time(s)")
        if case .success(let result) = second { Issue.record("the second file was read: \(result.output.prefix(120))") }

        // 3. The broker's cache of compiled manifest requests (by driver name) compares the
        // requests with String equality: a driver reloaded with a manifest whose pattern
        // differs only by normalization keeps the old pattern.
        for name in [nfc, nfd] {
            try FileManager.default.createDirectory(atPath: ws + "/dir-" + name, withIntermediateDirectories: true)
            try name.write(toFile: ws + "/dir-" + name + "/x.txt", atomically: false, encoding: .utf8)
        }
        let broad = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "fs.read=\(ws)/**", action: .allow, context: context)])
        let reloading = makeKernel { c in
            c.broker = CapabilityBroker(policy: broad, context: context)
            c.workspace = ws
        }
        let folder = Paths.temporaryDirectory("probe-reload")
        func load(requesting directory: String) throws {
            try reloading.load(manifestAt: try Fixtures.install("probe", into: folder) {
                $0.replacingOccurrences(of: #""fs.read": ["/**"]"#, with: #""fs.read": ["\#(ws)/dir-\#(directory)/**"]"#)
            })
        }
        try load(requesting: nfc)
        _ = try reloading.call("probe.syscall", input: sys("fs.read", ["path": .string("dir-" + nfc + "/x.txt")]))
        try reloading.unload("probe")
        try load(requesting: nfd)
        let stale = Result { () throws(LLMOSError) in try reloading.call("probe.syscall", input: sys("fs.read", ["path": .string("dir-" + nfc + "/x.txt")])) }
        if case .success = stale { Issue.record("the reloaded driver read dir-caf+U+00E9, which its manifest no longer requests") }
    }
}
