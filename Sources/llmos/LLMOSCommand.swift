import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

@main
struct LLMOSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmos",
        abstract: "An operating system whose processor is a language model.",
        discussion: """
        llmos loads drivers — tools, model backends, memory and storage — from shared \
        libraries described by manifests, and mediates every call to them.

        Drivers are found on the driver path, first match wins: --drivers DIR flags, \
        $LLMOS_DRIVER_PATH, ./manifests, ~/.local/share/llmos/drivers, then \
        /usr/local/share/llmos/drivers and /usr/share/llmos/drivers.

        Start with:
          llmos demo                       list the drivers and call a few tools
          llmos tools                      every tool with its parameters
          llmos call calc.add '{"a":1,"b":2}'
          llmos new driver weather --lang c
          llmos doctor                     what loads, what does not, and why
        """,
        subcommands: [Demo.self, Drivers.self, Tools.self, Call.self, New.self, Doctor.self, Watch.self]
    )
}

/// Options every command that loads drivers shares.
struct HostOptions: ParsableArguments {
    @Option(name: .customLong("drivers"), help: ArgumentHelp("Also look for drivers in DIR, before the standard path (repeatable).", valueName: "DIR"))
    var driverDirectories: [String] = []

    @Flag(name: .long, help: "Print the kernel's debug log to standard error.")
    var verbose = false

    var searchPath: DriverSearchPath { .standard(flags: driverDirectories) }

    /// A kernel with every driver on the path loaded; failures are reported, not fatal.
    func makeKernel(reportFailures: Bool = true) -> (Kernel, LoadReport) {
        let kernel = Kernel(configuration: KernelConfiguration(log: StandardErrorLogSink(minimumLevel: verbose ? .debug : .warn)))
        let report = kernel.loadAll(from: searchPath)
        if reportFailures {
            for failure in report.failed {
                Terminal.warn("driver not loaded: \(failure.error.message)\n  (run `llmos doctor` for the whole picture)")
            }
        }
        return (kernel, report)
    }
}

/// Every command's failure: the message on standard error, then a non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var exitCode: Int32 = 1
    var description: String { message }
}

extension ParsableCommand {
    /// Runs `body`, turning kernel errors into a clear message and exit status 1.
    func reportingErrors(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as LLMOSError {
            Terminal.error(error.message)
            throw ExitCode(1)
        } catch let failure as CommandFailure {
            Terminal.error(failure.message)
            throw ExitCode(failure.exitCode)
        }
    }
}
