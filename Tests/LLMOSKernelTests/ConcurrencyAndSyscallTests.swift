import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

@Suite struct ConcurrencyTests {
    @Test func serializedDriverIsNeverEnteredTwice() throws {
        let kernel = makeKernel()
        try kernel.load(manifestAt: try Fixtures.install("reentry"))
        let failures = Mutex(0)
        onThreads(8) { _ in
            for _ in 0..<40 {
                if (try? kernel.call("reentry.enter", input: "{}")) == nil { failures.withLock { $0 += 1 } }
            }
        }
        let stats = try JSON.parse(try kernel.call("reentry.violations", input: "{}").output)
        #expect(failures.withLock { $0 } == 0)
        #expect(stats["violations"]?.int64Value == 0)
        #expect(stats["calls"]?.int64Value == 320)
    }

    @Test func theDetectorWorks() throws {
        // The same driver declared concurrent: the kernel no longer serializes it,
        // and the detector must see overlapping calls (so the test above means something).
        let kernel = makeKernel()
        try kernel.load(manifestAt: try Fixtures.install("reentry") { $0.replacingOccurrences(of: "threading: serialized", with: "threading: concurrent") })
        onThreads(8) { _ in
            for _ in 0..<40 { _ = try? kernel.call("reentry.enter", input: "{}") }
        }
        let stats = try JSON.parse(try kernel.call("reentry.violations", input: "{}").output)
        #expect((stats["violations"]?.int64Value ?? 0) > 0)
    }

    @Test func concurrentCallsFromManyThreads() throws {
        let kernel = makeKernel()
        try kernel.load(manifestAt: Paths.manifests + "/calc.yaml")
        let wrong = Mutex(0)
        onThreads(8) { i in
            for j in 0..<500 {
                let out = try? kernel.call("calc.add", input: #"{"a": \#(i), "b": \#(j)}"#).output
                if out.flatMap({ try? JSON.parse($0)["result"]?.doubleValue }) != Double(i + j) { wrong.withLock { $0 += 1 } }
            }
        }
        #expect(wrong.withLock { $0 } == 0)
    }
}

@Suite struct SyscallTests {
    let kernel: Kernel
    let log = MemoryLogSink()

    init() throws {
        kernel = makeKernel(log: log) { $0.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([try! PolicyParser.rule(fromFlag: "kv=*", action: .allow)])) }
        try kernel.load(manifestAt: try Fixtures.install("syscaller"))
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        try kernel.load(manifestAt: Paths.manifests + "/calc.yaml")
    }

    @Test func keyValueRoundTrip() throws {
        let out = try JSON.parse(try kernel.call("syscaller.kv_roundtrip", input: #"{"key": "k1", "value": "v1"}"#).output)
        #expect(out["found"]?.boolValue == true)
        #expect(out["value"]?.stringValue == "v1")
        // Namespaced per driver: the store holds it under syscaller's name only.
        #expect(try kernel.configuration.keyValueStore.get(namespace: "syscaller", key: "k1") == "v1")
        #expect(try kernel.configuration.keyValueStore.get(namespace: "echo", key: "k1") == nil)
    }

    @Test func aRequestIsNotAGrant() throws {
        // The manifest asks for kv; the operator granted nothing: denied, and the message says how to grant.
        let ungranted = makeKernel()
        try ungranted.load(manifestAt: try Fixtures.install("syscaller"))
        let error = expectError { try ungranted.call("syscaller.kv_roundtrip", input: #"{"key": "k", "value": "v"}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("kv.put of k denied by default: not granted (grant it with --allow"), "\(error.message)")
    }

    @Test func keyValueNeedsTheCapability() throws {
        let noKV = makeKernel()
        try noKV.load(manifestAt: try Fixtures.install("syscaller") { $0.replacingOccurrences(of: "kv: true", with: "kv: false") })
        let error = expectError { try noKV.call("syscaller.kv_roundtrip", input: #"{"key": "k", "value": "v"}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("kv.put of k denied by manifest: syscaller does not request kv k"), "\(error.message)")
    }

    @Test func toolCallGoesThroughTheKernel() throws {
        let out = try kernel.call("syscaller.call_tool", input: #"{"tool": "echo.echo", "input": {"hello": "world"}}"#).output
        #expect(try JSON.parse(out) == ["hello": "world"])
    }

    @Test func aClientsCallIsAuditedAsItsWithTheCallsItsToolMakes() throws {
        let audit = MemoryAuditLog()
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([try! PolicyParser.rule(fromFlag: "kv=*", action: .allow)]))
            c.audit = audit
        }
        try kernel.load(manifestAt: try Fixtures.install("syscaller"))
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        var options = CallOptions()
        options.client = "mcp stdio"
        _ = try kernel.call("syscaller.call_tool", input: #"{"tool": "echo.echo", "input": {"hello": "world"}}"#, options: options)
        _ = try kernel.call("echo.echo", input: #"{"own": true}"#)
        try audit.flush()
        let calls = audit.records.filter { $0.capability == "tool.call" }
        let viaClient = "pid \(getpid()) via mcp stdio"
        #expect(calls.first { $0.resource == "syscaller.call_tool" }?.process == viaClient, "\(calls)")
        // The nested call, made by syscaller's code, inherits where the chain came from.
        #expect(calls.first { $0.resource == "echo.echo" && $0.driver == "syscaller" }?.process == viaClient, "\(calls)")
        // The operator's own call says nothing of a client.
        #expect(calls.last { $0.resource == "echo.echo" && $0.driver == "" }?.process == "pid \(getpid())", "\(calls)")
    }

    @Test func toolCallOutsideTheRequestIsDenied() {
        let error = expectError { try kernel.call("syscaller.call_tool", input: #"{"tool": "calc.add", "input": {"a": 1, "b": 2}}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("calc.add: denied by manifest: syscaller does not request tool.call calc.add"), "\(error.message)")
    }

    @Test func nestedCallsAreValidatedToo() {
        let error = expectError { try kernel.call("syscaller.call_tool", input: #"{"tool": "syscaller.kv_roundtrip", "input": {"key": 3}}"#) }
        #expect(error.code == .invalidArgument, "\(error.message)")
        let unknown = expectError { try kernel.call("syscaller.call_tool", input: #"{"tool": "syscaller.nope", "input": {}}"#) }
        #expect(unknown.message.contains("no tool syscaller.nope"), "\(unknown.message)")
    }

    @Test func recursionHitsTheDepthLimit() {
        let error = expectError { try kernel.call("syscaller.recurse", input: #"{"depth": 0}"#) }
        #expect(error.message.contains("call depth limit of 8 reached"), "\(error.message)")
    }

    @Test func cancellingTheOuterCallCancelsTheNestedOne() throws {
        let token = CancellationToken()
        cancel(token, after: 50)
        let error = expectError {
            try kernel.call("syscaller.call_tool", input: #"{"tool": "echo.sleep", "input": {"ms": 5000}}"#, options: CallOptions(cancellation: token))
        }
        #expect(error.code == .cancelled, "\(error.message)")
    }

    @Test func logSyscall() throws {
        _ = try kernel.call("syscaller.log_syscall", input: "{}")
        #expect(log.entries.contains { $0.source == "syscaller" && $0.message == "hi" && $0.level == .info })
    }
}

@Suite struct UnloadUnderLoadTests {
    /// Threads call a driver while it is unloaded and loaded again, over and over:
    /// every call either completes or is refused cleanly; nothing crashes, and no
    /// call runs on an unmapped library.
    @Test func callsDuringUnloadAndReload() throws {
        let kernel = makeKernel()
        let manifest = try Fixtures.install("echo")
        try kernel.load(manifestAt: manifest)
        let stop = Atomic<Bool>(false)
        let outcomes = Mutex<[String: Int]>([:])
        let group = DispatchGroup()
        for _ in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                while !stop.load(ordering: .relaxed) {
                    let key: String
                    do {
                        let out = try kernel.call("echo.echo", input: #"{"k":1}"#).output
                        key = out == #"{"k":1}"# ? "ok" : "wrong output"
                    } catch {
                        key = (error as? LLMOSError)?.code.name ?? "\(error)"
                    }
                    outcomes.withLock { $0[key, default: 0] += 1 }
                }
                group.leave()
            }
        }
        for _ in 0..<25 {
            usleep(2_000)
            try kernel.unload("echo")
            usleep(1_000)
            try kernel.load(manifestAt: manifest)
        }
        stop.store(true, ordering: .relaxed)
        group.wait()
        let seen = outcomes.withLock { $0 }
        #expect(seen["ok", default: 0] > 0)
        #expect(Set(seen.keys).isSubset(of: ["ok", "not_found", "unavailable"]), "\(seen)")
    }
}
