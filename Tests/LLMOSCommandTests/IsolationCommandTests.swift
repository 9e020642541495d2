import Foundation
import LLMOSJSON
import Testing

/// `--isolate`, and what `drivers info`, `drivers list` and `doctor` say about isolation.
@Suite struct IsolationCommandTests {
    let llmos = LLMOS()

    @Test func isolateRunsAShippedDriverInItsSandbox() throws {
        let r = try llmos.run(["call", "calc.add", #"{"a": 2, "b": 40}"#, "--isolate", "calc"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("42"), "\(r.stdout)")

        let info = try llmos.run(["drivers", "info", "calc", "--isolate", "calc"])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("isolation:    process"), "\(info.stdout)")
        #expect(info.stdout.contains("sandbox:") && info.stdout.contains("no network (own namespace)"), "\(info.stdout)")

        let list = try llmos.run(["drivers", "list", "--json", "--isolate", "*"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(!list.stderr.contains("warn"), "a Swift driver runs in the sandbox without complaint: \(list.stderr)")
        let drivers = try JSON.parse(list.stdout)["drivers"]?.arrayValue ?? []
        #expect(!drivers.isEmpty)
        for driver in drivers {
            #expect(driver["isolation"]?.stringValue == "process", "\(driver)")
            #expect(driver["health"]?["process"]?["pid"]?.int64Value != nil, "\(driver)")
        }
    }

    @Test func aMisspelledIsolateIsReported() throws {
        let r = try llmos.run(["drivers", "list", "--isolate", "calcc"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("--isolate calcc: no driver of that name is loaded") && r.stderr.contains("calc"), "\(r.stderr)")
    }

    @Test func doctorSaysWhichSandboxLayersThisLinuxHas() throws {
        let r = try llmos.run(["doctor"])
        #expect(r.stdout.contains("isolation: Landlock ABI"), "\(r.stdout)")
        #expect(r.stdout.contains("seccomp yes"), "\(r.stdout)")
    }

    @Test func helpExplainsIsolate() throws {
        let r = try llmos.run(["call", "--help"])
        #expect(r.stdout.contains("--isolate"), "\(r.stdout)")
        #expect(r.stdout.contains("sandboxed helper process"), "\(r.stdout)")
    }
}
