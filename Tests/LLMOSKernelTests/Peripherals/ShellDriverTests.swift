import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The shell driver (Plugins/shell, manifests/shell.yaml), called through the kernel as a
// model calls it. It runs isolated (a sandboxed helper process); each program is real,
// from /usr/bin, checked first by exec.authorize against the exec grants below and then
// held to the same grants by the sandbox.

/// A kernel with the shell driver, a workspace of its own, and `grants` (flag form) on top
/// of calling shell.run (destructive, so it asks unless allowed by name).
private func shellKernel(_ grants: [String], workspace: String, audit: MemoryAuditLog? = nil) throws -> Kernel {
    let rules = try (["tool.call=shell.run", "fs.read=\(workspace)/**"] + grants).map { try PolicyParser.rule(fromFlag: $0, action: .allow) }
    let kernel = makeKernel { c in
        c.workspace = workspace
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), context: PolicyContext(home: FilePath.homeDirectory, workspace: workspace))
        c.isolation.graceMs = 200
        if let audit { c.audit = audit }
    }
    try kernel.load(manifestAt: Paths.manifests + "/shell.yaml")
    return kernel
}

private func workspaceDirectory() -> String {
    FilePath.resolved(Paths.temporaryDirectory("shell-ws"))!
}

private func run(_ kernel: Kernel, _ input: JSONValue, options: CallOptions = CallOptions()) throws -> JSONValue {
    try JSON.parse(try kernel.call("shell.run", input: input.serialized(), options: options).output)
}

@Suite(.serialized) struct ShellDriverTests {
    @Test func anArgvRunsAsGivenWithNoShellInBetween() throws {
        let workspace = workspaceDirectory()
        let kernel = try shellKernel(["exec=/usr/bin/echo"], workspace: workspace)
        let result = try run(kernel, ["program": "echo", "args": ["hello", "$HOME", "a;b", "*", "`id`", "two words"]])
        #expect(result["stdout"] == "hello $HOME a;b * `id` two words\n", "nothing was expanded: \(result)")
        #expect(result["exit_code"]?.int64Value == 0)
        #expect(result["signal"] == .null)
        #expect(result["program"] == "/usr/bin/echo", "what ran is the canonical path the kernel checked")
        #expect(result["timed_out"] == false)
        #expect(result["stdout_truncated"] == false)
    }

    @Test func exitCodesSignalsStdinAndTheWorkspace() throws {
        let workspace = workspaceDirectory()
        try "a note\n".write(toFile: workspace + "/notes.txt", atomically: true, encoding: .utf8)
        let kernel = try shellKernel(["exec=/usr/bin/ls", "exec=/usr/bin/cat", "exec=/usr/bin/dash"], workspace: workspace)

        let listed = try run(kernel, ["program": "ls"])
        #expect(listed["stdout"] == "notes.txt\n", "it runs in the workspace: \(listed)")
        let read = try run(kernel, ["program": "cat", "args": ["notes.txt"]])
        #expect(read["stdout"] == "a note\n", "\(read)")

        let missing = try run(kernel, ["program": "ls", "args": ["no-such-file"]])
        #expect(missing["exit_code"]?.int64Value == 2)
        #expect(missing["stderr"]?.stringValue?.contains("No such file") == true, "\(missing)")

        let piped = try run(kernel, ["program": "cat", "stdin": "from stdin\nline two\n"])
        #expect(piped["stdout"] == "from stdin\nline two\n")

        // A shell is a program like any other, when the operator grants it (/bin/sh is dash).
        let exited = try run(kernel, ["program": "sh", "args": ["-c", "echo out; echo err >&2; exit 3"]])
        #expect(exited["exit_code"]?.int64Value == 3)
        #expect(exited["stdout"] == "out\n")
        #expect(exited["stderr"] == "err\n")
        let killed = try run(kernel, ["program": "sh", "args": ["-c", "kill -SEGV $$"]])
        #expect(killed["exit_code"] == .null)
        #expect(killed["signal"] == "SIGSEGV", "\(killed)")
    }

    @Test func outputIsCappedAndSaysSo() throws {
        let workspace = workspaceDirectory()
        let kernel = try shellKernel(["exec=/usr/bin/seq"], workspace: workspace)
        let result = try run(kernel, ["program": "seq", "args": ["1", "200000"], "max_output_bytes": 1000])
        #expect(result["stdout"]?.stringValue?.utf8.count == 1000)
        #expect(result["stdout_truncated"] == true)
        #expect(result["stderr_truncated"] == false)
        #expect(result["exit_code"]?.int64Value == 0, "the rest was read and dropped, so the program finished: \(result["exit_code"] ?? .null)")
        #expect(result["stdout"]?.stringValue?.hasPrefix("1\n2\n3\n") == true)
    }

    @Test func theTimeLimitKillsTheWholeProcessGroup() throws {
        let workspace = workspaceDirectory()
        let kernel = try shellKernel(["exec=/usr/bin/dash", "exec=/usr/bin/sleep"], workspace: workspace)
        // A background child holds stdout open: the group is killed, not just the shell.
        let result = try run(kernel, ["program": "sh", "args": ["-c", "sleep 60 & echo started; sleep 60"], "timeout_ms": 300])
        #expect(result["timed_out"] == true, "\(result)")
        #expect(result["signal"] == "SIGKILL")
        #expect(result["exit_code"] == .null)
        #expect(result["stdout"] == "started\n", "what came before the limit is kept")

        // A program that closes its outputs and goes on running is still held to the limit.
        let quiet = try run(kernel, ["program": "sh", "args": ["-c", "exec >&- 2>&-; sleep 60"], "timeout_ms": 300])
        #expect(quiet["timed_out"] == true, "\(quiet)")
        #expect(quiet["signal"] == "SIGKILL")
    }

    @Test func cancellingTheCallKillsTheProgram() throws {
        let workspace = workspaceDirectory()
        let kernel = try shellKernel(["exec=/usr/bin/sleep"], workspace: workspace)
        let token = CancellationToken()
        cancel(token, after: 200)
        let error = expectError { try run(kernel, ["program": "sleep", "args": ["60"]], options: CallOptions(cancellation: token)) }
        #expect(error.code == .cancelled, "\(error)")
        // The driver is fine afterwards (the kill was the program's, not the driver's).
        let again = expectError { try run(kernel, ["program": "sleep", "args": ["0"], "timeout_ms": 0]) }
        #expect(again.code == .invalidArgument, "timeout_ms 0 is refused by the schema: \(again.message)")
    }

    @Test func onlyGrantedProgramsRunCheckedByTheirCanonicalPath() throws {
        let workspace = workspaceDirectory()
        let audit = MemoryAuditLog()
        let kernel = try shellKernel(["exec=/usr/bin/echo", "exec=/bin/sh"], workspace: workspace, audit: audit)

        let rm = expectError { try run(kernel, ["program": "rm", "args": ["-rf", .string(workspace)]]) }
        #expect(rm.code == .permissionDenied)
        #expect(rm.message.contains("exec of /usr/bin/rm denied by"), "\(rm.message)")
        #expect(FileManager.default.fileExists(atPath: workspace))

        // /bin/sh is a symlink to dash: a grant of the link's name does not cover what it names.
        let sh = expectError { try run(kernel, ["program": "/bin/sh", "args": ["-c", "echo pwned"]]) }
        #expect(sh.code == .permissionDenied)
        #expect(sh.message.contains("exec of /usr/bin/dash denied"), "\(sh.message)")

        let unknown = expectError { try run(kernel, ["program": "no-such-program-x"]) }
        #expect(unknown.code == .notFound)
        #expect(unknown.message.contains("no program \"no-such-program-x\" in /usr/local/bin:/usr/bin"), "\(unknown.message)")

        let notExecutable = expectError { try run(kernel, ["program": "/etc/hostname"]) }
        #expect(notExecutable.code == .permissionDenied || notExecutable.code == .invalidArgument, "\(notExecutable)")

        #expect(audit.records.contains { $0.capability == "exec" && $0.resource == "/usr/bin/rm" && $0.decision == .deny })
        _ = try run(kernel, ["program": "echo", "args": ["ok"]])
        #expect(audit.records.contains { $0.capability == "exec" && $0.resource == "/usr/bin/echo" && $0.decision == .allow })
    }

    @Test func theSandboxHoldsTheSameGrantsASecondTime() throws {
        let workspace = workspaceDirectory()
        // dash is granted; what dash itself tries to run or read is the sandbox's to refuse
        // (exec.authorize never sees it): Landlock executes only granted files and reads
        // only granted trees, even for root.
        let kernel = try shellKernel(["exec=/usr/bin/dash"], workspace: workspace)
        let id = try run(kernel, ["program": "sh", "args": ["-c", "/usr/bin/id"]])
        #expect(id["exit_code"]?.int64Value == 126, "\(id)")
        #expect(id["stderr"]?.stringValue?.contains("Permission denied") == true, "\(id)")
        let shadow = try run(kernel, ["program": "sh", "args": ["-c", "read line < /etc/shadow; echo \"$line\""]])
        #expect(shadow["stdout"] == "\n", "nothing was read: \(shadow)")
        #expect(shadow["stderr"]?.stringValue?.contains("Permission denied") == true, "\(shadow)")
        let outside = try run(kernel, ["program": "sh", "args": ["-c", "echo x > /tmp/llmos-shell-escape.txt"]])
        #expect(outside["exit_code"]?.int64Value != 0, "no write grant outside the workspace: \(outside)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/llmos-shell-escape.txt"))
    }

    @Test func withoutAnyExecGrantTheSandboxRefusesToStartPrograms() throws {
        let workspace = workspaceDirectory()
        // The tool may be called, but no program is granted: the kernel refuses, and the
        // sandbox has no exec grant either (seccomp would refuse execve).
        let kernel = try shellKernel([], workspace: workspace)
        let info = try #require(kernel.driver(named: "shell"))
        #expect(info.isolation == .process)
        let error = expectError { try run(kernel, ["program": "echo", "args": ["hi"]]) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("exec of /usr/bin/echo denied"), "\(error.message)")
    }

    @Test func theProgramGetsAMinimalEnvironmentNotTheHosts() throws {
        setenv("LLMOS_SHELL_TEST_SECRET", "hunter2", 1)
        defer { unsetenv("LLMOS_SHELL_TEST_SECRET") }
        let workspace = workspaceDirectory()
        let kernel = try shellKernel(["exec=/usr/bin/env"], workspace: workspace)
        let result = try run(kernel, ["program": "env"])
        let names = (result["stdout"]?.stringValue ?? "").split(separator: "\n").map { String($0.split(separator: "=").first ?? "") }
        #expect(Set(names) == ["PATH", "HOME", "PWD", "LANG", "TERM"], "\(result)")
        #expect(result["stdout"]?.stringValue?.contains("hunter2") == false)
        #expect(result["stdout"]?.stringValue?.contains("HOME=\(workspace)") == true)
    }
}
