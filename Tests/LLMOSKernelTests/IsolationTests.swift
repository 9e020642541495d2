import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// Process isolation: drivers in a sandboxed helper process, supervised.
@Suite struct IsolationTests {
    static func isolatedKernel(_ names: Set<String> = ["*"], log: MemoryLogSink = MemoryLogSink(),
                               configure: (inout KernelConfiguration) -> Void = { _ in }) -> Kernel {
        makeKernel(log: log) {
            $0.isolation.forced = names
            $0.isolation.graceMs = 200
            configure(&$0)
        }
    }

    @Test func aForcedDriverRunsInItsOwnProcessWithTheSameABI() throws {
        let kernel = Self.isolatedKernel()
        let info = try kernel.load(manifestAt: try Fixtures.install("echo"))
        #expect(info.isolation == .process)
        let pid = try #require(info.health.process?.pid)
        #expect(pid != Int(getpid()))
        let result = try kernel.call("echo.echo", input: #"{"a":[1,2,{"b":"ü"}]}"#)
        #expect(result.output == #"{"a":[1,2,{"b":"ü"}]}"#)
        let failure = expectError { try kernel.call("echo.fail", input: "{}") }
        #expect(failure.code == .notFound)
        #expect(failure.message == "echo.fail: no such thing", "\(failure.message)")
        for i in 0..<200 {
            #expect(try kernel.call("echo.echo", input: #"{"i":\#(i)}"#).output == #"{"i":\#(i)}"#)
        }
    }
}
