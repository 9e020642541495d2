import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the toolchain, system libraries and driver path; show what loads, what does not, and why.")
    @OptionGroup var host: HostOptions
    @Flag(help: "Print JSON for programs.") var json = false

    struct Check { var name: String; var ok: Bool; var detail: String; var fix: String? }

    func run() throws {
        var checks: [Check] = []
        checks.append(Check(name: "driver ABI", ok: true, detail: "llmos driver ABI \(Kernel.abiVersion) (entry symbol llmos_driver_entry_v1)"))
        checks.append(command("swift", ["--version"], fix: "install Swift 6 from swift.org (needed for Swift drivers and for building llmos)"))
        checks.append(command("cc", ["--version"], fix: "apt-get install gcc (needed to build C drivers)"))
        for (lib, package) in [("libffi", "libffi-dev"), ("libcurl", "libcurl4-openssl-dev"), ("sqlite3", "libsqlite3-dev")] {
            let ok = run("pkg-config", ["--exists", lib]).status == 0
            let version = ok ? run("pkg-config", ["--modversion", lib]).output.trimmingCharacters(in: .whitespacesAndNewlines) : ""
            checks.append(Check(name: lib, ok: ok, detail: ok ? "version \(version)" : "not found by pkg-config", fix: ok ? nil : "apt-get install \(package) pkg-config (or run `make deps`)"))
        }
        checks.append(Check(name: "hot plug", ok: HotPlugProbe.inotifyWorks(), detail: HotPlugProbe.inotifyWorks() ? "inotify available" : "inotify unavailable: drivers are loaded at start only"))
        checks += isolationChecks()

        // The policy first: with an error in it nothing runs, so say so and stop here.
        do {
            let policy = try host.permissions.policy()
            checks.append(Check(name: "policy", ok: true, detail: "\(policy.rules.count) rule\(policy.rules.count == 1 ? "" : "s") (llmos policy show)"))
        } catch {
            let message = (error as? LLMOSError)?.message ?? "\(error)"
            checks.append(Check(name: "policy", ok: false, detail: message, fix: "correct the file named above; a policy with an error is refused whole"))
            if json {
                Terminal.printJSON(["checks": .array(checks.map { ["name": .string($0.name), "ok": .bool($0.ok), "detail": .string($0.detail), "fix": $0.fix.map(JSONValue.string) ?? .null] })])
            } else {
                print("System")
                for check in checks { print("  \(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
            }
            throw ExitCode(1)
        }
        let (kernel, report) = try host.makeKernel(reportFailures: false)
        let path = host.searchPath
        if json {
            Terminal.printJSON([
                "checks": .array(checks.map { ["name": .string($0.name), "ok": .bool($0.ok), "detail": .string($0.detail), "fix": $0.fix.map(JSONValue.string) ?? .null] }),
                "driver_path": .array(path.entries.map { e in
                    ["directory": .string(e.directory), "origin": .string(e.origin), "exists": .bool(FileManager.default.fileExists(atPath: e.directory)),
                     "manifests": .int(Int64(DriverSearchPath.manifests(in: e.directory).count))]
                }),
                "loaded": .array(kernel.loadedDrivers.map(\.json)),
                "failed": .array(report.failed.map { ["manifest": .string($0.manifestFile), "error": $0.error.json] }),
                "shadowed": .array(report.shadowed.map { ["manifest": .string($0.manifestFile), "name": .string($0.name), "shadowed_by": .string($0.winner)] }),
            ])
            if checks.contains(where: { !$0.ok }) || !report.failed.isEmpty { throw ExitCode(1) }
            return
        }
        print("System")
        for check in checks {
            print("  \(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            if let fix = check.fix { print("       fix: \(fix)") }
        }
        print("\nDriver path (first match wins)")
        for entry in path.entries {
            let exists = FileManager.default.fileExists(atPath: entry.directory)
            let count = DriverSearchPath.manifests(in: entry.directory).count
            print("  \(entry.directory)  [\(entry.origin)]  " + (exists ? "\(count) manifest\(count == 1 ? "" : "s")" : "absent"))
        }
        print("\nDrivers")
        for driver in kernel.loadedDrivers {
            if driver.health.isQuarantined {
                print("  FAIL \(driver.name) is \(driver.health.summary)\n       fix: correct the driver, then `llmos drivers reload \(driver.name)`")
                continue
            }
            let isolated = driver.isolation == .process ? ", isolated: \(driver.health.summary)" : ""
            print("  ok   \(driver.name) \(driver.version) (\(driver.tools.count) tools\(isolated)) from \(driver.manifestFile)")
            for warning in driver.warnings { print("       warning: \(warning.message) (\(warning.field))") }
        }
        for failure in report.failed {
            print("  FAIL \(failure.manifestFile)\n       \(failure.error.message.replacingOccurrences(of: "\n", with: "\n       "))")
        }
        for shadow in report.shadowed {
            print("  skip \(shadow.manifestFile): \(shadow.name) is already loaded from \(shadow.winner)")
        }
        if kernel.loadedDrivers.isEmpty && report.failed.isEmpty {
            print("  none found: run `swift build` in the llmos checkout and start llmos from there, or pass --drivers DIR")
        }
        let problems = checks.filter { !$0.ok }.count + report.failed.count
        print(problems == 0 ? "\nAll good." : "\n\(problems) problem\(problems == 1 ? "" : "s") found.")
        if problems > 0 { throw ExitCode(1) }
    }

    /// What the operating system offers isolated drivers: said loudly when a layer is missing.
    private func isolationChecks() -> [Check] {
        let helper: String
        do {
            helper = try SandboxSupport.helperPath(IsolationSettings(), libraryDirectories: KernelConfiguration.defaultLibraryDirectories())
        } catch {
            return [Check(name: "isolation", ok: false, detail: error.message, fix: "run `swift build` (it builds llmos-driver-host next to llmos)")]
        }
        do {
            let support = try SandboxSupport.probe(helperPath: helper)
            var checks = [Check(name: "isolation", ok: true, detail: "\(support.summary) (helper \(helper))")]
            for warning in support.warnings {
                checks.append(Check(name: "sandbox", ok: false, detail: warning,
                                    fix: "use a Linux with Landlock (5.13+, ABI 4 for ports: 6.7+), seccomp and user namespaces enabled"))
            }
            return checks
        } catch {
            return [Check(name: "isolation", ok: false, detail: error.message, fix: "reinstall llmos-driver-host (swift build)")]
        }
    }

    private func command(_ name: String, _ args: [String], fix: String) -> Check {
        let result = run(name, args)
        let first = result.output.split(separator: "\n").first.map(String.init) ?? ""
        return Check(name: name, ok: result.status == 0, detail: result.status == 0 ? first : "not found", fix: result.status == 0 ? nil : fix)
    }

    private func run(_ name: String, _ args: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (127, "") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

enum HotPlugProbe {
    static func inotifyWorks() -> Bool {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        if fd >= 0 { close(fd); return true }
        return false
    }
}
