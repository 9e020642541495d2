import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The python driver (Plugins/python, manifests/python.yaml), called through the kernel as
// a model calls it: a real python3 -I -S in the driver's sandbox (isolation: process).
// Every refusal below (files, network, memory) is the Linux kernel's, not Python's.

private func pythonKernel(grants: [String] = ["exec=/usr/bin/python3*"], audit: MemoryAuditLog? = nil) throws -> Kernel {
    let workspace = FilePath.resolved(Paths.temporaryDirectory("python-ws"))!
    let rules = try grants.map { try PolicyParser.rule(fromFlag: $0, action: .allow) }
    let kernel = makeKernel { c in
        c.workspace = workspace
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), context: PolicyContext(home: FilePath.homeDirectory, workspace: workspace))
        c.isolation.graceMs = 200
        if let audit { c.audit = audit }
    }
    try kernel.load(manifestAt: Paths.manifests + "/python.yaml")
    return kernel
}

private func python(_ kernel: Kernel, _ input: JSONValue) throws -> JSONValue {
    try JSON.parse(try kernel.call("python.run", input: input.serialized()).output)
}

@Suite(.serialized) struct PythonDriverTests {
    @Test func twoPlusTwoPrintsFour() throws {
        let kernel = try pythonKernel()
        let result = try python(kernel, ["code": "print(2 + 2)"])
        #expect(result["stdout"] == "4\n", "\(result)")
        #expect(result["stderr"] == "")
        #expect(result["exit_code"]?.int64Value == 0)
        #expect(result["timed_out"] == false)

        let echoed = try python(kernel, ["code": "import sys\nprint(sys.stdin.read().upper(), end='')\nprint(sys.flags.isolated, sys.flags.no_site)", "stdin": "quiet\n"])
        #expect(echoed["stdout"] == "QUIET\n1 1\n", "isolated mode, no site module: \(echoed)")
    }

    @Test func anExceptionGivesATracebackAndExitCodeOne() throws {
        let kernel = try pythonKernel()
        let result = try python(kernel, ["code": "def f():\n    return 1 / 0\nf()\n"])
        #expect(result["exit_code"]?.int64Value == 1)
        let stderr = result["stderr"]?.stringValue ?? ""
        #expect(stderr.contains("Traceback (most recent call last)"), "\(stderr)")
        #expect(stderr.contains("ZeroDivisionError: division by zero"), "\(stderr)")
    }

    @Test func anInfiniteLoopHitsTheTimeLimit() throws {
        let kernel = try pythonKernel()
        let result = try python(kernel, ["code": "print('begin', flush=True)\nwhile True:\n    pass\n", "timeout_ms": 500])
        #expect(result["timed_out"] == true, "\(result)")
        #expect(result["signal"] == "SIGKILL")
        #expect(result["exit_code"] == .null)
        #expect(result["stdout"] == "begin\n")
        // The driver goes on serving.
        #expect(try python(kernel, ["code": "print('after')"])["stdout"] == "after\n")
    }

    @Test func aHugeAllocationHitsTheMemoryLimit() throws {
        let kernel = try pythonKernel()
        let result = try python(kernel, ["code": "x = bytearray(2 * 1024 ** 3)\nprint('allocated')", "memory_mb": 128])
        #expect(result["exit_code"]?.int64Value == 1, "\(result)")
        #expect(result["stderr"]?.stringValue?.contains("MemoryError") == true, "\(result)")
        #expect(result["stdout"] == "")
        #expect(result["memory_limit_mb"]?.int64Value == 128)
        let tooBig = expectError { try python(kernel, ["code": "pass", "memory_mb": 100_000]) }
        #expect(tooBig.code == .invalidArgument && tooBig.message.contains("memory_mb"), "\(tooBig.message)")
    }

    @Test func secretsFilesWritesAndTheNetworkAreOutOfReach() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let kernel = try pythonKernel()

        let shadow = try python(kernel, ["code": "print(open('/etc/shadow').read())"])
        #expect(shadow["exit_code"]?.int64Value == 1)
        #expect(shadow["stderr"]?.stringValue?.contains("PermissionError") == true, "Landlock refuses /etc/shadow, even to root: \(shadow)")

        let home = try python(kernel, ["code": .string("import os\nprint(os.listdir('\(Paths.repoRoot)'))")])
        #expect(home["stderr"]?.stringValue?.contains("PermissionError") == true, "\(home)")

        let write = try python(kernel, ["code": "open('/tmp/llmos-python-escape.txt', 'w').write('x')"])
        #expect(write["stderr"]?.stringValue?.contains("PermissionError") == true, "\(write)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/llmos-python-escape.txt"))

        // A real server listens on the host's loopback; the sandbox has its own, empty network.
        let connect = try python(kernel, ["code": .string("import socket\nsocket.create_connection(('127.0.0.1', \(server.port)), timeout=3)\nprint('connected')")])
        #expect(connect["exit_code"]?.int64Value == 1, "\(connect)")
        #expect(connect["stdout"] == "")
        #expect(connect["stderr"]?.stringValue?.contains("OSError") == true || connect["stderr"]?.stringValue?.contains("Error") == true, "\(connect)")

        let spawn = try python(kernel, ["code": "import subprocess\nsubprocess.run(['/usr/bin/id'])"])
        #expect(spawn["exit_code"]?.int64Value == 1, "only the interpreter is executable: \(spawn)")
        #expect(spawn["stderr"]?.stringValue?.contains("PermissionError") == true, "\(spawn)")
    }

    @Test func anInterpreterGlobBecomesExactFileRulesInTheSandboxPlan() throws {
        // Landlock holds files, not globs: /usr/bin/python3* is expanded to the files it
        // names now, each checked as exec.authorize would check it (canonical path).
        let manifest = try ManifestParser.parse(file: Paths.manifests + "/python.yaml")
        let granted = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "exec=/usr/bin/python3*", action: .allow)])
        let files = SandboxPlan.execFiles(requested: manifest.capabilities, broker: CapabilityBroker(policy: granted), driver: "python")
        let python = try #require(FilePath.resolved("/usr/bin/python3"))
        #expect(files.contains(python), "\(files)")
        #expect(files.allSatisfy { $0.hasPrefix("/usr/bin/python3") }, "\(files)")
        // Not granted by the policy: nothing, so seccomp keeps execve refused.
        #expect(SandboxPlan.execFiles(requested: manifest.capabilities, broker: CapabilityBroker(policy: Policy.builtInDefault), driver: "python").isEmpty)
        // Granted only to another driver: nothing either.
        let other = Policy.builtInDefault.adding([PolicyRule(.allow, .exec, "/usr/bin/python3*", driver: "shell", source: "test")])
        #expect(SandboxPlan.execFiles(requested: manifest.capabilities, broker: CapabilityBroker(policy: other), driver: "python").isEmpty)
    }

    @Test func withoutAnExecGrantNothingRuns() throws {
        let audit = MemoryAuditLog()
        let kernel = try pythonKernel(grants: [], audit: audit)
        let error = expectError { try python(kernel, ["code": "print(1)"]) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("exec of /usr/bin/python3"), "\(error.message)")
        #expect(error.message.contains("denied by"), "\(error.message)")
        #expect(audit.records.contains { $0.capability == "exec" && $0.decision == .deny })
    }
}
