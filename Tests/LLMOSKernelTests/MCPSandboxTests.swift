import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// A mounted MCP server runs in the sandbox its driver's grants make (ProgramSandbox.swift):
/// what the capability layer cannot see — a server opening files or sockets itself — the
/// Linux kernel refuses. Real servers: the fixture (which tries on purpose) and the
/// reference servers mcp-server-git and mcp-server-fetch from PyPI.
@Suite("Mounted MCP servers in their sandbox", .serialized)
struct MCPSandboxTests {
    /// A folder outside every grant, with a file in it.
    static func secret() throws -> (directory: String, file: String) {
        let directory = Paths.temporaryDirectory("mcp-secret")
        let file = directory + "/secret.txt"
        try "the operator's secret".write(toFile: file, atomically: true, encoding: .utf8)
        return (directory, file)
    }

    func toolError(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test("files: the server reads and writes only what is granted; the rest is EACCES from Linux, not a polite refusal")
    func files() throws {
        let secret = try Self.secret()
        let mount = try MCPMount()
        let log = MemoryLogSink()
        let kernel = try mcpKernel(log: log)
        try kernel.load(manifestAt: mount.manifest)

        let inside = mount.directory + "/note.txt"
        #expect(try kernel.call("fixture.write_file", input: JSONValue.object(["path": .string(inside), "text": "kept"]).serialized()).output.contains("written"))
        #expect(try kernel.call("fixture.read_file", input: JSONValue.object(["path": .string(inside)]).serialized()).output.contains("kept"))

        let read = toolError { _ = try kernel.call("fixture.read_file", input: JSONValue.object(["path": .string(secret.file)]).serialized()) }
        #expect(read.contains("Permission denied"), "\(read)")
        #expect(!read.contains("the operator's secret"))
        let write = toolError { _ = try kernel.call("fixture.write_file", input: JSONValue.object(["path": .string(secret.directory + "/planted.txt"), "text": "x"]).serialized()) }
        #expect(write.contains("Permission denied"), "\(write)")
        #expect(!FileManager.default.fileExists(atPath: secret.directory + "/planted.txt"))
        // The home directory is not the server's either.
        let home = toolError { _ = try kernel.call("fixture.read_file", input: #"{"path": "/etc/shadow"}"#) }
        #expect(home.contains("Permission denied"), "\(home)")

        let started = log.entries.map(\.message).first { $0.contains("started the MCP server fixture") } ?? ""
        #expect(started.contains("sandbox: read"), "\(started)")
        #expect(started.contains("no network (own namespace)"), "\(started)")
    }

    @Test("settings.sandbox false: the same server reads the secret, and the log says it runs unsandboxed")
    func sandboxOff() throws {
        let secret = try Self.secret()
        let mount = try MCPMount(settings: ["sandbox: false"])
        let log = MemoryLogSink()
        let kernel = try mcpKernel(log: log)
        try kernel.load(manifestAt: mount.manifest)
        let output = try kernel.call("fixture.read_file", input: JSONValue.object(["path": .string(secret.file)]).serialized()).output
        #expect(output.contains("the operator's secret"))
        #expect(log.entries.contains { $0.level == .warn && $0.message.contains("runs without a sandbox") })
    }

    @Test("network: no net.connect grant is no network at all; a grant opens its port and no other")
    func network() throws {
        let granted = try TCPListener(), other = try TCPListener()
        do {
            let mount = try MCPMount()
            let kernel = try mcpKernel()
            try kernel.load(manifestAt: mount.manifest)
            let refused = toolError { _ = try kernel.call("fixture.connect", input: #"{"port": \#(granted.port)}"#) }
            #expect(refused.contains("unreachable") || refused.contains("refused") || refused.contains("Errno"), "\(refused)")
            #expect(!refused.contains("connected"))
        }
        do {
            let mount = try MCPMount(capabilities: [#"net.connect: ["http://127.0.0.1:*"]"#])
            let kernel = try mcpKernel(extra: [try PolicyParser.rule(fromFlag: "net.connect=http://127.0.0.1:\(granted.port)", action: .allow)])
            try kernel.load(manifestAt: mount.manifest)
            #expect(try kernel.call("fixture.connect", input: #"{"port": \#(granted.port)}"#).output.contains("connected"))
            let blocked = toolError { _ = try kernel.call("fixture.connect", input: #"{"port": \#(other.port)}"#) }
            #expect(blocked.contains("Permission denied"), "\(blocked)")
        }
    }

    @Test("a plan past the sandbox's capacity: the server still starts, denied the paths left out, and the log says so")
    func planPastCapacity() throws {
        let directory = MCPMount.root + "/many-" + UUID().uuidString.prefix(6)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let programs = try (0..<300).map { i -> String in
            let file = directory + "/tool\(i)"
            try "#!/bin/sh\n".write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o755)
            return file
        }
        let mount = try MCPMount(exec: [MCPVenv.interpreter] + programs)
        let log = MemoryLogSink()
        let kernel = try mcpKernel(log: log, extra: [try PolicyParser.rule(fromFlag: "exec=\(directory)/**", action: .allow)])
        try kernel.load(manifestAt: mount.manifest)
        #expect(try kernel.call("fixture.add", input: #"{"a": 1, "b": 2}"#).output == #"{"result":3}"#)
        let warned = log.entries.filter { $0.level == .warn }.map(\.message).joined(separator: "\n")
        #expect(warned.contains("past the sandbox's capacity (256 paths, 64 ports)"), "\(warned)")
    }

    @Test("a bad sandbox request is refused, naming the field")
    func badRequest() throws {
        let error = expectError {
            _ = try ExecService.authorize(["program": "/bin/sh", "sandbox": "yes"], workspace: "/tmp", authorize: { _ in Decision(verdict: .allow, rule: "test") },
                                          driver: "mcp", tool: nil)
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("sandbox: expected true or false"), "\(error.message)")
    }

    // MARK: Reference servers from PyPI

    /// A git repository with one commit, under the mounts' root (so the test grants can name it).
    static func repository(_ name: String) throws -> String {
        let directory = MCPMount.root + "/repo-\(name)-" + UUID().uuidString.prefix(6)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "hello\n".write(toFile: directory + "/README", atomically: true, encoding: .utf8)
        for args in [["init", "-q"], ["add", "README"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first commit"]] {
            let git = Process()
            git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            git.arguments = ["-C", directory] + args
            try git.run()
            git.waitUntilExit()
            guard git.terminationStatus == 0 else { throw Fixtures.FixtureError(message: "git \(args) failed in \(directory)") }
        }
        return directory
    }

    @Test("mcp-server-git: status and log of the granted repository; another repository, a write without fs.write, and a denied tool are refused")
    func gitServer() throws {
        let bin = (try MCPVenv.python.get() as NSString).deletingLastPathComponent
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else { Issue.record("git is not installed (make deps installs it)"); return }
        let granted = try Self.repository("granted")
        let other = try Self.repository("other")
        // The server is not told --repository: confining it is the sandbox's job here.
        // git refuses to run when it cannot read a config file it looks for (~/.gitconfig is
        // outside the grants): the manifest points it at none, as shipped manifests/mcp/git.yaml does.
        let mount = try MCPMount(name: "git", protocolRevision: "auto", command: bin + "/mcp-server-git", args: [],
                                 exec: [bin + "/mcp-server-git", "/usr/bin/git"],
                                 settings: [#"env: {GIT_CONFIG_GLOBAL: /dev/null, GIT_CONFIG_NOSYSTEM: "1"}"#])
        // Only the granted repository: replace the fixture grants on the mounts' root.
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: Policy(rules: [
                try! PolicyParser.rule(fromFlag: "exec=\(bin)/mcp-server-git", action: .allow),
                try! PolicyParser.rule(fromFlag: "exec=/usr/bin/git", action: .allow),
                try! PolicyParser.rule(fromFlag: "fs.read=\(granted)/**", action: .allow),
                try! PolicyParser.rule(fromFlag: "tool.call=git.*", action: .allow),
                try! PolicyParser.rule(fromFlag: "tool.call=git.git_reset", action: .deny)]))
        }
        let info = try kernel.load(manifestAt: mount.manifest)
        #expect(info.tools.contains("git.git_status"), "\(info.tools)")

        let status = try kernel.call("git.git_status", input: JSONValue.object(["repo_path": .string(granted)]).serialized()).output
        #expect(status.contains("nothing to commit") || status.contains("working tree clean"), "\(status)")
        let log = try kernel.call("git.git_log", input: JSONValue.object(["repo_path": .string(granted)]).serialized()).output
        #expect(log.contains("first commit"), "\(log)")

        let elsewhere = toolError { _ = try kernel.call("git.git_status", input: JSONValue.object(["repo_path": .string(other)]).serialized()) }
        #expect(elsewhere != "no error")
        #expect(!elsewhere.contains("nothing to commit"), "\(elsewhere)")

        try "changed\n".write(toFile: granted + "/README", atomically: true, encoding: .utf8)
        let add = toolError { _ = try kernel.call("git.git_add", input: JSONValue.object(["repo_path": .string(granted), "files": .array([.string("README")])]).serialized()) }
        #expect(add.contains("Permission denied") || add.contains("index.lock"), "\(add)")

        let denied = expectError { _ = try kernel.call("git.git_reset", input: JSONValue.object(["repo_path": .string(granted)]).serialized()) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("tool.call=git.git_reset"), "\(denied.message)")
    }

    /// A loopback web server (Python's http.server) serving one page.
    final class WebServer {
        let process = Process()
        let port: Int
        init(page: String) throws {
            let directory = Paths.temporaryDirectory("mcp-web")
            try page.write(toFile: directory + "/index.html", atomically: true, encoding: .utf8)
            port = try TCPListener().port  // a free port, closed again for the server to bind
            process.executableURL = URL(fileURLWithPath: try MCPVenv.python.get())
            process.arguments = ["-c", "import sys, http.server, functools\n"
                + "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
                + "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), h).serve_forever()",
                                 directory, String(port)]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard waitUntilListening(port: port) else { throw Fixtures.FixtureError(message: "the test web server never listened on \(port)") }
        }
        // SIGKILL: Foundation's children inherit the test process's signal mask, in which
        // SIGTERM is blocked, so terminate() would wait forever.
        deinit {
            // Reaped here: Foundation's own reaping of a killed child was seen to never come.
            let pid = process.processIdentifier
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }

    @Test("mcp-server-fetch: no net.connect grant, no fetch; a grant for one port fetches from it and nowhere else")
    func fetchServer() throws {
        let bin = (try MCPVenv.python.get() as NSString).deletingLastPathComponent
        let web = try WebServer(page: "<html><body><h1>Hello from the granted server</h1></body></html>")
        let elsewhere = try WebServer(page: "<html><body><h1>Not yours</h1></body></html>")
        // The server's own private-address guard is off: the sandbox is what is tested.
        // PATH is the server's own bin only: readabilipy runs `node` when it finds one and
        // takes the sandbox's EACCES for a crash (only "not found" makes it fall back to
        // its Python extractor), as shipped manifests/mcp/fetch.yaml says.
        func mount() throws -> MCPMount {
            try MCPMount(name: "fetch", protocolRevision: "auto", command: bin + "/mcp-server-fetch", args: ["--ignore-robots-txt", "--allow-private-ips"],
                         exec: [bin + "/mcp-server-fetch"], capabilities: [#"net.connect: ["http://127.0.0.1:*"]"#],
                         settings: ["env: {PATH: \"\(bin)\"}"])
        }
        let exec = try PolicyParser.rule(fromFlag: "exec=\(bin)/mcp-server-fetch", action: .allow)
        let input = { (port: Int) in JSONValue.object(["url": .string("http://127.0.0.1:\(port)/")]).serialized() }
        do {
            let kernel = try mcpKernel(extra: [exec])
            try kernel.load(manifestAt: try mount().manifest)
            let refused = toolError { _ = try kernel.call("fetch.fetch", input: input(web.port)) }
            #expect(refused != "no error")
            #expect(!refused.contains("Hello from the granted server"), "\(refused)")
        }
        do {
            let kernel = try mcpKernel(extra: [exec, try PolicyParser.rule(fromFlag: "net.connect=http://127.0.0.1:\(web.port)", action: .allow)])
            try kernel.load(manifestAt: try mount().manifest)
            let page = try kernel.call("fetch.fetch", input: input(web.port)).output
            #expect(page.contains("Hello from the granted server"), "\(page)")
            let other = toolError { _ = try kernel.call("fetch.fetch", input: input(elsewhere.port)) }
            #expect(!other.contains("Not yours"), "\(other)")
            #expect(other != "no error")
        }
    }

    @Test("the shipped manifests/mcp/*.yaml parse, and git and fetch carry the settings their sandbox needs")
    func shippedManifests() throws {
        for name in ["time", "git", "fetch"] {
            let manifest = try ManifestParser.parse(file: Paths.manifests + "/mcp/\(name).yaml")
            #expect(manifest.name == name)
            #expect(manifest.discoversTools)
            #expect(manifest.warnings.isEmpty, "\(name): \(manifest.warnings)")
            #expect(manifest.settings["sandbox"] == nil, "\(name) must not turn its sandbox off")
        }
        let git = try ManifestParser.parse(file: Paths.manifests + "/mcp/git.yaml")
        #expect(git.settings["env"]?.objectValue?["GIT_CONFIG_GLOBAL"]?.stringValue == "/dev/null")
        #expect(git.capabilities["exec"] != nil && git.capabilities["fs.write"] != nil)
        #expect(git.capabilities["net.connect"] == nil, "git needs no network")
        let fetch = try ManifestParser.parse(file: Paths.manifests + "/mcp/fetch.yaml")
        #expect(fetch.settings["env"]?.objectValue?["PATH"]?.stringValue == "/nonexistent")
        #expect(fetch.capabilities["net.connect"] != nil)
    }
}
