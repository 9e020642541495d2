import Foundation
import Glibc
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// Process isolation: drivers in a sandboxed helper process, supervised. The
/// misbehaving fixture calls libc directly, so every refusal here is the Linux
/// kernel's (Landlock, seccomp, rlimits, the network namespace), not the driver's.
@Suite struct IsolationTests {
    static func isolatedKernel(_ names: Set<String> = [], log: MemoryLogSink = MemoryLogSink(), grants: [String] = [],
                               configure: (inout KernelConfiguration) -> Void = { _ in }) -> Kernel {
        makeKernel(log: log) {
            $0.isolation.forced = names
            $0.isolation.graceMs = 200
            let rules = grants.map { try! PolicyParser.rule(fromFlag: $0, action: .allow) }
            $0.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules))
            configure(&$0)
        }
    }

    /// The misbehaving driver, with `capabilities` and `limits` replaced.
    static func misbehave(capabilities: String = "{}", limits: String = "timeout_ms: 2000\n  max_output_bytes: 1048576\n  memory_mb: 256",
                          isolation: String = "process") throws -> String {
        try Fixtures.install("misbehave") { original in
            let text = original.replacingOccurrences(of: "isolation: process", with: "isolation: \(isolation)")
            var lines: [String] = []
            var skipping = false
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("capabilities:") { lines.append("capabilities: \(capabilities)"); skipping = true; continue }
                if line.hasPrefix("limits:") { lines.append("limits:\n  \(limits)"); skipping = true; continue }
                if skipping && (line.hasPrefix(" ") || line.isEmpty) { continue }
                skipping = false
                lines.append(String(line))
            }
            return lines.joined(separator: "\n")
        }
    }

    static func json(_ result: CallResult) throws -> JSONValue { try JSON.parse(result.output) }

    static func directory(_ label: String) -> String {
        FilePath.resolved(Paths.temporaryDirectory(label))!
    }

    // MARK: The same ABI, apart

    @Test func aForcedDriverRunsInItsOwnProcessWithTheSameABI() throws {
        let kernel = Self.isolatedKernel(["*"])
        let info = try kernel.load(manifestAt: try Fixtures.install("echo"))
        #expect(info.isolation == .process)
        let pid = try #require(info.health.process?.pid)
        #expect(pid != Int(getpid()))
        #expect(try kernel.call("echo.echo", input: #"{"a":[1,2,{"b":"ü"}]}"#).output == #"{"a":[1,2,{"b":"ü"}]}"#)
        let failure = expectError { try kernel.call("echo.fail", input: "{}") }
        #expect(failure.code == .notFound)
        #expect(failure.message == "echo.fail: no such thing", "\(failure.message)")
        for i in 0..<200 {
            #expect(try kernel.call("echo.echo", input: #"{"i":\#(i)}"#).output == #"{"i":\#(i)}"#)
        }
        // Progress and log lines travel back; a cooperative sleep past its deadline is a timeout.
        let fractions = LockedArray<Double>()
        _ = try kernel.call("echo.progress", input: "{}", options: CallOptions(progress: { fraction, _ in fractions.append(fraction) }))
        #expect(fractions.values == [0, 0.5, 1])
        let timeout = expectError { try kernel.call("echo.sleep", input: #"{"ms":5000}"#, options: CallOptions(timeoutMs: 100)) }
        #expect(timeout.code == .timeout)
        #expect(try kernel.call("echo.echo", input: "{}").output == "{}")
        #expect(kernel.driver(named: "echo")?.health.process?.pid == pid, "a driver that stops when told keeps its process")
    }

    @Test func systemCallsFromAnIsolatedDriverAreCheckedByTheKernel() throws {
        let kernel = Self.isolatedKernel(["syscaller"], grants: ["kv=*"])
        try kernel.load(manifestAt: try Fixtures.install("syscaller"))
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        #expect(kernel.driver(named: "syscaller")?.isolation == .process)
        let out = try JSON.parse(try kernel.call("syscaller.kv_roundtrip", input: #"{"key": "k1", "value": "v1"}"#).output)
        #expect(out["value"]?.stringValue == "v1")
        #expect(try kernel.configuration.keyValueStore.get(namespace: "syscaller", key: "k1") == "v1")
        // tool.call back into the kernel from the helper, and a denial decided there.
        #expect(try JSON.parse(try kernel.call("syscaller.call_tool", input: #"{"tool": "echo.echo", "input": {"a": 1}}"#).output) == ["a": 1])
        let ungranted = Self.isolatedKernel(["syscaller"])
        try ungranted.load(manifestAt: try Fixtures.install("syscaller"))
        let error = expectError { try ungranted.call("syscaller.kv_roundtrip", input: #"{"key": "k", "value": "v"}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("kv.put of k denied by default"), "\(error.message)")
    }

    @Test func aSwiftDriverRunsIsolatedToo() throws {
        let kernel = Self.isolatedKernel(["text"])
        try kernel.load(manifestAt: Paths.manifests + "/text.yaml")
        let result = try kernel.call("text.count", input: #"{"text":"two words"}"#)
        #expect(result.output.contains("\"words\":2"), "\(result.output)")
    }

    @Test func loadRefusalsReadAsTheyDoInProcess() throws {
        let kernel = Self.isolatedKernel(["*"])
        let noEntry = expectError { try kernel.load(manifestAt: try Fixtures.install("noentry")) }
        #expect(noEntry.message.contains("does not export the entry point"), "\(noEntry.message)")
        let abi2 = expectError { try kernel.load(manifestAt: try Fixtures.install("abi2")) }
        #expect(abi2.message.contains("built for driver ABI major 2"), "\(abi2.message)")
        let misnamed = expectError { try kernel.load(manifestAt: try Fixtures.install("misnamed")) }
        #expect(misnamed.message.contains("but the library calls itself"), "\(misnamed.message)")
        let missing = expectError { try kernel.load(manifestAt: try Fixtures.install("missingtool")) }
        #expect(missing.message.contains("does not implement"), "\(missing.message)")
        let fails = expectError { try kernel.load(manifestAt: try Fixtures.install("createfails")) }
        #expect(fails.message.contains("could not start"), "\(fails.message)")
        #expect(kernel.driverNames.isEmpty)
    }

    // MARK: Crashes, hangs and runaways end the call, not the host

    @Test func aCrashIsAnErrorForTheCallAndTheDriverIsRestarted() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave())
        try kernel.load(manifestAt: try Fixtures.install("echo"))   // in-process, alongside
        let first = try #require(kernel.driver(named: "misbehave")?.health.process?.pid)

        let segfault = expectError { try kernel.call("misbehave.segfault", input: "{}") }
        #expect(segfault.code == .unavailable)
        #expect(segfault.message.contains("crashed with SIGSEGV"), "\(segfault.message)")
        #expect(segfault.message.contains("restarted"), "\(segfault.message)")
        #expect(try kernel.call("echo.echo", input: "{}").output == "{}")

        let ok = try Self.json(kernel.call("misbehave.ok", input: "{}"))
        let second = try #require(ok["pid"]?.int64Value)
        #expect(Int(second) != first)

        let abort = expectError { try kernel.call("misbehave.abort", input: "{}") }
        #expect(abort.message.contains("SIGABRT"), "\(abort.message)")
        let health = try #require(kernel.driver(named: "misbehave")?.health.process)
        #expect(health.crashes == 2)
        #expect(health.lastFailure?.contains("SIGABRT") == true)
        // The backoff after a second failure in a row is waited out within the deadline.
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["ok"] == true)
    }

    @Test func aHangIsTerminatedAfterItsDeadlineAndGrace() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave(limits: "timeout_ms: 300"))
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        // Other calls go on while the isolated driver spins.
        let done = DispatchSemaphore(value: 0)
        let echoes = LockedArray<String>()
        Thread.detachNewThread {
            for _ in 0..<20 { if let r = try? kernel.call("echo.echo", input: "{}") { echoes.append(r.output) } }
            done.signal()
        }
        let hang = expectError { try kernel.call("misbehave.spin", input: "{}") }
        #expect(hang.code == .timeout)
        #expect(hang.message.contains("terminated"), "\(hang.message)")
        done.wait()
        #expect(echoes.values.count == 20)
        // One that honours cancellation just times out, and keeps its process.
        let pid = try Self.json(kernel.call("misbehave.ok", input: "{}"))["pid"]
        let polite = expectError { try kernel.call("misbehave.spin", input: #"{"honour_cancel":true}"#) }
        #expect(polite.code == .timeout)
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["pid"] == pid)
    }

    @Test func aDriverFloodingTheChannelStillMeetsItsDeadline() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave(limits: "timeout_ms: 200"))
        let flood = expectError { try kernel.call("misbehave.log_flood", input: "{}") }
        #expect(flood.code == .timeout, "\(flood.message)")
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["ok"] == true)
    }

    @Test func cancellingAnIsolatedCallReachesTheDriver() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave(limits: "timeout_ms: 20000"))
        let token = CancellationToken()
        Thread.detachNewThread { usleep(100_000); token.cancel() }
        let cancelled = expectError { try kernel.call("misbehave.spin", input: #"{"honour_cancel":true}"#, options: CallOptions(cancellation: token)) }
        #expect(cancelled.code == .cancelled, "\(cancelled.message)")
        let stubborn = CancellationToken()
        Thread.detachNewThread { usleep(100_000); stubborn.cancel() }
        let killed = expectError { try kernel.call("misbehave.spin", input: "{}", options: CallOptions(cancellation: stubborn)) }
        #expect(killed.code == .cancelled)
        #expect(killed.message.contains("terminated"), "\(killed.message)")
    }

    @Test func memoryIsCappedByTheSandbox() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave(limits: "timeout_ms: 10000\n  memory_mb: 128"))
        let result = try Self.json(kernel.call("misbehave.allocate", input: #"{"mb_per_step":8}"#))
        #expect(result["malloc_failed"] == true, "\(result)")
        let got = try #require(result["allocated_mb"]?.int64Value)
        #expect(got < 128, "RLIMIT_AS stopped it below its 128 MB limit (got \(got) MB)")
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["ok"] == true)
        // Code that does not check malloc dies of it: the model reads that it ran out of memory.
        let died = expectError { try kernel.call("misbehave.allocate", input: #"{"mb_per_step":8,"careless":true}"#) }
        #expect(died.code == .resourceExhausted, "\(died.message)")
        #expect(died.message.contains("ran out of memory") && died.message.contains("limits.memory_mb"), "\(died.message)")
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["ok"] == true)
    }

    @Test func repeatedFailuresQuarantineTheDriver() throws {
        let kernel = Self.isolatedKernel {
            $0.isolation.quarantineFailures = 3
            $0.isolation.restartBackoffMs = 1
        }
        try kernel.load(manifestAt: try Self.misbehave())
        for _ in 0..<3 { _ = expectError { try kernel.call("misbehave.segfault", input: "{}") } }
        let refused = expectError { try kernel.call("misbehave.ok", input: "{}") }
        #expect(refused.code == .unavailable)
        #expect(refused.message.contains("quarantined"), "\(refused.message)")
        #expect(refused.message.contains("llmos drivers reload misbehave"), "\(refused.message)")
        let health = try #require(kernel.driver(named: "misbehave")?.health)
        #expect(health.isQuarantined)
        #expect(health.summary.hasPrefix("QUARANTINED"))
        // A reload starts afresh.
        try kernel.reload("misbehave")
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}"))["ok"] == true)
    }

    @Test func anInProcessCallPastItsDeadlineIsAbandonedAndTheDriverMarkedUnhealthy() throws {
        let log = MemoryLogSink()
        let kernel = makeKernel(log: log) { $0.isolation.graceMs = 100 }
        try kernel.load(manifestAt: try Self.misbehave(limits: "timeout_ms: 200", isolation: "in-process"))
        var options = CallOptions()
        options.abandonOnTimeout = true
        let error = expectError { try kernel.call("misbehave.spin", input: #"{"max_ms":1500}"#, options: options) }
        #expect(error.code == .timeout)
        #expect(error.message.contains("abandoned") && error.message.contains("--isolate misbehave"), "\(error.message)")
        #expect(kernel.driver(named: "misbehave")?.health.summary.hasPrefix("UNHEALTHY") == true)
        let refused = expectError { try kernel.call("misbehave.ok", input: "{}", options: options) }
        #expect(refused.code == .unavailable)
        #expect(refused.message.contains("unhealthy"), "\(refused.message)")
        // When the abandoned call finally returns, the driver is healthy again.
        var waited = 0
        while kernel.driver(named: "misbehave")?.health.unhealthy != nil && waited < 10_000 { usleep(10_000); waited += 10 }
        #expect(kernel.driver(named: "misbehave")?.health.summary == "ok")
        #expect(try Self.json(kernel.call("misbehave.ok", input: "{}", options: options))["ok"] == true)
    }

    // MARK: The sandbox refuses, not the driver

    @Test func filesOutsideTheGrantsAreRefusedByLandlock() throws {
        let granted = Self.directory("iso-granted")
        let outside = Self.directory("iso-outside")
        try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        try "hello".write(toFile: granted + "/hello.txt", atomically: true, encoding: .utf8)
        let capabilities = #"{"fs.read": ["\#(granted)/**"], "fs.write": ["\#(granted)/**"]}"#
        let grants = ["fs.read=\(granted)/**", "fs.write=\(granted)/**"]
        let kernel = Self.isolatedKernel(grants: grants)
        try kernel.load(manifestAt: try Self.misbehave(capabilities: capabilities))

        let inside = try Self.json(kernel.call("misbehave.read_file", input: #"{"path":"\#(granted)/hello.txt"}"#))
        #expect(inside["head"] == "hello", "\(inside)")
        let wrote = try Self.json(kernel.call("misbehave.write_file", input: #"{"path":"\#(granted)/new.txt","text":"x"}"#))
        #expect(wrote["ok"] == true, "\(wrote)")

        let shadow = try Self.json(kernel.call("misbehave.read_file", input: #"{"path":"/etc/shadow"}"#))
        #expect(shadow["errno_name"] == "EACCES", "\(shadow)")
        let secret = try Self.json(kernel.call("misbehave.read_file", input: #"{"path":"\#(outside)/secret.txt"}"#))
        #expect(secret["errno_name"] == "EACCES", "\(secret)")
        let escape = try Self.json(kernel.call("misbehave.write_file", input: #"{"path":"\#(outside)/planted.txt","text":"x"}"#))
        #expect(escape["errno_name"] == "EACCES", "\(escape)")
        #expect(!FileManager.default.fileExists(atPath: outside + "/planted.txt"))

    }

    @Test func theSameDriverInProcessIsNotStopped() throws {
        let outside = Self.directory("iso-inprocess")
        try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        let manifest = try Self.misbehave(isolation: "in-process")
        let kernel = makeKernel()
        try kernel.load(manifestAt: manifest)
        let read = try Self.json(kernel.call("misbehave.read_file", input: #"{"path":"\#(outside)/secret.txt"}"#))
        #expect(read["head"] == "secret", "in-process native code reads what it likes — which is why untrusted drivers run isolated")
    }

    @Test func forkExecAndTheNetworkAreRefusedWithoutGrants() throws {
        let kernel = Self.isolatedKernel()
        try kernel.load(manifestAt: try Self.misbehave())
        let bomb = try Self.json(kernel.call("misbehave.fork_bomb", input: #"{"max":1000}"#))
        #expect(bomb["forked"]?.int64Value == 0, "\(bomb)")
        #expect(bomb["errno_name"] == "EPERM", "\(bomb)")
        let shell = try Self.json(kernel.call("misbehave.exec", input: #"{"path":"/bin/sh","args":["-c","echo pwned"]}"#))
        #expect(shell["errno_name"] == "EPERM", "\(shell)")
        let printed = shell["output"]?.stringValue ?? ""
        #expect(!printed.contains("pwned"))
        // No network grant: its own empty network namespace.
        let listener = try TCPListener()
        let connect = try Self.json(kernel.call("misbehave.connect", input: #"{"port":\#(listener.port)}"#))
        #expect(connect["connected"] != true, "\(connect)")
        let refusal = connect["errno_name"]?.stringValue ?? ""
        #expect(["ENETUNREACH", "ECONNREFUSED", "EACCES"].contains(refusal), "\(connect)")
    }

    @Test func onlyGrantedPortsCanBeConnected() throws {
        let allowed = try TCPListener()
        let other = try TCPListener()
        let kernel = Self.isolatedKernel(grants: ["net.connect=127.0.0.1:\(allowed.port)"])
        try kernel.load(manifestAt: try Self.misbehave(capabilities: #"{"net.connect": ["127.0.0.1:\#(allowed.port)"]}"#))
        let yes = try Self.json(kernel.call("misbehave.connect", input: #"{"port":\#(allowed.port)}"#))
        #expect(yes["connected"] == true, "\(yes)")
        let no = try Self.json(kernel.call("misbehave.connect", input: #"{"port":\#(other.port)}"#))
        #expect(no["errno_name"] == "EACCES", "Landlock refuses the port that was not granted: \(no)")
    }

    @Test func onlyTheChannelAndNoHostFileDescriptorsAreInherited() throws {
        let kernel = Self.isolatedKernel()
        let held = open("/etc/hostname", O_RDONLY)   // a host fd, not close-on-exec
        defer { close(held) }
        try kernel.load(manifestAt: try Self.misbehave())
        let fds = try Self.json(kernel.call("misbehave.open_fds", input: "{}"))
        // Besides stdio and the channel, only the helper's own read-only /proc status,
        // which it reads as it dies to report its peak address space.
        let numbers = (fds["fds"]?.arrayValue ?? []).filter { entry in
            let target = entry["target"]?.stringValue ?? ""
            return !(target.hasPrefix("/proc/") && target.hasSuffix("/status"))
        }.compactMap { $0["fd"]?.int64Value }
        #expect(Set(numbers).isSubset(of: [0, 1, 2, 3, 4]), "\(fds)")
        for entry in fds["fds"]?.arrayValue ?? [] where (entry["fd"]?.int64Value ?? 0) >= 3 {
            #expect(entry["cloexec"] == true, "a program it might exec must not inherit the channel: \(entry)")
        }
        let leak = try Self.json(kernel.call("misbehave.leak_fds", input: #"{"count":10000}"#))
        let opened = try #require(leak["opened"]?.int64Value)
        #expect(opened < 64, "RLIMIT_NOFILE caps it: \(leak)")
        #expect(leak["errno_name"] == "EMFILE", "\(leak)")
    }

    @Test func theEnvironmentHoldsOnlyGrantedVariables() throws {
        setenv("MISBEHAVE_VISIBLE", "yes", 1)
        setenv("LLMOS_TEST_SECRET_TOKEN", "hunter2", 1)
        let kernel = Self.isolatedKernel(grants: ["env=MISBEHAVE_*"])
        try kernel.load(manifestAt: try Self.misbehave(capabilities: #"{"env": ["MISBEHAVE_*"]}"#))
        let env = try Self.json(kernel.call("misbehave.env", input: "{}"))
        let names = Set((env["environ"]?.objectValue ?? [:]).map(\.key))
        #expect(names.contains("MISBEHAVE_VISIBLE"))
        #expect(!names.contains("LLMOS_TEST_SECRET_TOKEN"))
        #expect(!names.contains("PATH") && !names.contains("HOME"), "\(names)")
    }

    @Test func fileSizeIsCapped() throws {
        let granted = Self.directory("iso-fsize")
        let kernel = Self.isolatedKernel(grants: ["fs.write=\(granted)/**"]) { $0.isolation.fileSizeMB = 2 }
        try kernel.load(manifestAt: try Self.misbehave(capabilities: #"{"fs.write": ["\#(granted)/**"]}"#))
        let big = try Self.json(kernel.call("misbehave.write_big", input: #"{"path":"\#(granted)/big","mb":8}"#))
        #expect(big["errno_name"] == "EFBIG", "\(big)")
    }

    @Test func theProbeReportsThisLinuxsSandboxLayers() throws {
        let helper = try SandboxSupport.helperPath(IsolationSettings(), libraryDirectories: [Paths.buildDirectory])
        let support = try SandboxSupport.probe(helperPath: helper)
        // Measured on this machine (PLATFORM.md): Landlock ABI 7, seccomp, namespaces.
        #expect(support.landlockABI >= 1, "\(support)")
        #expect(support.seccomp)
        #expect(support.warnings.isEmpty || support.landlockABI < 4, "\(support.warnings)")
    }

    @Test func theSandboxPlanIsTheIntersectionAndLeavesOutWhatLandlockCannotHold() throws {
        let context = PolicyContext(home: "/home/u", workspace: "/w")
        let requested: CapabilityRequests = {
            var r = CapabilityRequests()
            r.set("fs.read", .patterns(["/w/**", "/data/*.txt", "/etc/hostname"]))
            r.set("fs.write", .patterns(["/w/out/**"]))
            r.set("net.connect", .patterns(["api.example.com:443", "127.0.0.1:8080"]))
            return r
        }()
        let policy = Policy(rules: [
            PolicyRule(.allow, .fsRead, "/w/docs/**", source: "t"),
            PolicyRule(.allow, .fsRead, "/data/**", source: "t"),
            PolicyRule(.allow, .fsRead, "/etc/hostname", source: "t"),
            PolicyRule(.allow, .fsWrite, "/w/**", source: "t"),
            PolicyRule(.deny, .fsWrite, "/w/out/keep/**", source: "t"),
            PolicyRule(.allow, .netConnect, "*.example.com:443", source: "t"),
        ])
        let reads = SandboxPlan.trees(.fsRead, requested: requested, policy: policy, driver: "d", context: context)
        #expect(reads.paths == ["/w/docs", "/etc/hostname"], "\(reads)")
        #expect(reads.notes.contains { $0.contains("/data/*.txt") && $0.contains("partial glob") })
        let writes = SandboxPlan.trees(.fsWrite, requested: requested, policy: policy, driver: "d", context: context)
        #expect(writes.paths.isEmpty, "a deny inside the tree keeps the whole tree out: \(writes)")
        #expect(SandboxPlan.network(requested: requested, policy: policy, driver: "d", context: context) == .ports([443]))
        var none = CapabilityRequests()
        none.set("fs.read", .any)
        #expect(SandboxPlan.network(requested: none, policy: policy, driver: "d", context: context) == .none)
    }
}

/// A loopback TCP listener on a free port, accepting nothing (the kernel's backlog does).
final class TCPListener {
    let fd: Int32
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Fixtures.FixtureError(message: "cannot listen on loopback") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }
    deinit { close(fd) }
}

/// An array appended to from several threads.
final class LockedArray<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ item: T) { lock.lock(); items.append(item); lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return items }
}

@Suite struct IsolationPolicyTests {
    @Test func aPolicyFileCanIsolateDriversEvenFromAProjectFile() throws {
        let file = try PolicyParser.parse(text: "isolate: [echo, \"un*\"]\ndeny:\n  fs.read: [/etc/**]\n", file: "/w/llmos.policy.yaml")
        #expect(file.isolate == ["echo", "un*"])
        #expect(file.policy.isolates("echo") && file.policy.isolates("untrusted") && !file.policy.isolates("calc"))
        #expect(file.policy.description.contains("isolate (run in a sandboxed process): echo, un*"))
        let kernel = makeKernel { $0.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([]).merged(with: file.policy)) }
        let info = try kernel.load(manifestAt: try Fixtures.install("echo"))
        #expect(info.isolation == .process)
        let bad = expectError { try PolicyParser.parse(text: "isolate: echo\n", file: "/w/p.yaml") }
        #expect(bad.message.contains("isolate: expected a list of driver names"), "\(bad.message)")
    }
}

extension Policy {
    func merged(with other: Policy) -> Policy { Policy(merging: [self, other]) }
}
