import ArgumentParser
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the drivers, list them, and call a few tools through the kernel (what `make run` does for now).")
    @OptionGroup var host: HostOptions

    func run() throws {
        let (kernel, report) = try host.makeKernel()
        print("llmos — driver ABI \(Kernel.abiVersion)\n")
        print("Loaded \(report.loaded.count) driver\(report.loaded.count == 1 ? "" : "s") from the driver path:")
        for d in kernel.loadedDrivers {
            print("  \(d.name) \(d.version) (\(d.deviceClass), \(d.threading.rawValue)): \(d.tools.joined(separator: ", "))")
        }
        let calls: [(String, String)] = [
            ("calc.add", #"{"a": 1234, "b": 5678}"#),
            ("calc.eval", #"{"expression": "2 * (3 + 4) ^ 2 - -1"}"#),
            ("calc.div", #"{"a": 1, "b": 0}"#),
            ("text.count", #"{"text": "An operating system whose processor is a language model."}"#),
            ("text.case", #"{"text": "hello llmos world", "to": "title"}"#),
            ("calc.addd", #"{"a": 1, "b": 2}"#),
            ("calc.add", #"{"a": 1, "b": "two"}"#),
        ]
        print("\nCalls (each validated against its schema, then dispatched to the driver; times are single\ncold calls in this build — `make bench` measures the real cost, under a microsecond):")
        for (tool, input) in calls {
            do {
                let result = try kernel.call(tool, input: input)
                print("  \(tool) \(input)\n    → \(result.output)   (\(String(format: "%.1f", Double(result.elapsedNanoseconds) / 1000)) µs)")
            } catch {
                print("  \(tool) \(input)\n    ✗ \(error.code.name): \(error.message)")
            }
        }
        print("\nTry: llmos tools · llmos call calc.eval '{\"expression\": \"1 + 2 * 3\"}' · llmos doctor · llmos --help")
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a host that loads and unloads drivers as they appear in the driver directories (hot plug).",
        discussion: "Prints each load, reload and unload as it happens; drop a manifest and its library into a directory on the driver path to see it. Stop with Ctrl-C.")
    @OptionGroup var host: HostOptions

    func run() throws {
        let (kernel, report) = try host.makeKernel()
        let directories = host.searchPath.entries.map(\.directory)
        let hotPlug = HotPlug(kernel: kernel, directories: directories) { event in
            print("\(ISO8601DateFormatter().string(from: Date())) \(event)")
            Terminal.flush()
        }
        try reportingErrors { try hotPlug.start() }
        print("watching \(directories.joined(separator: ", ")) with \(report.loaded.count) drivers loaded; Ctrl-C to stop")
        Terminal.flush()
        // Stop on Ctrl-C or a plain kill, even when started with those signals blocked
        // (a child inherits its parent's signal mask).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &stopSignals, nil)
        signal(SIGINT) { _ in Glibc.exit(0) }
        signal(SIGTERM) { _ in Glibc.exit(0) }
        while true { sleep(60) }
    }
}
