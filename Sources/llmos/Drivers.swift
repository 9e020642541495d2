import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

struct Drivers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, inspect, check, install and remove drivers.",
        discussion: "A driver is a shared library plus a manifest (YAML or JSON) that says what it offers and what it may touch.",
        subcommands: [List.self, Info.self, Check.self, Install.self, Remove.self, Approve.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every driver on the driver path, loaded or not, and why not.")
        @OptionGroup var host: HostOptions
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            let (kernel, report) = try host.makeKernel(reportFailures: false)
            let drivers = kernel.loadedDrivers
            if json {
                Terminal.printJSON([
                    "drivers": .array(drivers.map(\.json)),
                    "failed": .array(report.failed.map { ["manifest": .string($0.manifestFile), "error": $0.error.json] }),
                    "shadowed": .array(report.shadowed.map { ["manifest": .string($0.manifestFile), "name": .string($0.name), "shadowed_by": .string($0.winner)] }),
                ])
                return
            }
            if drivers.isEmpty && report.failed.isEmpty {
                print("No drivers found on the driver path. Run `swift build` in the llmos checkout, or see `llmos doctor`.")
                return
            }
            let rows = drivers.map { d in
                [d.name, d.deviceClass.rawValue, d.version, d.tools.map { String($0.dropFirst(d.name.count + 1)) }.joined(separator: ","),
                 d.isolation.rawValue, d.capabilities.summary, d.health.summary]
            }
            print(Terminal.table(["NAME", "CLASS", "VERSION", "TOOLS", "ISOLATION", "CAPABILITIES", "HEALTH"], rows))
            for failure in report.failed {
                print("\nnot loaded: \(failure.manifestFile)\n  \(failure.error.message.replacingOccurrences(of: "\n", with: "\n  "))")
            }
            for shadow in report.shadowed {
                print("\nshadowed: \(shadow.manifestFile) (\(shadow.name) is already loaded from \(shadow.winner); first match wins)")
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything about one driver: tools, capabilities, limits, files.")
        @OptionGroup var host: HostOptions
        @Argument(help: "The driver's name, e.g. calc.") var name: String
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let (kernel, _) = try host.makeKernel()
                guard let info = kernel.driver(named: name) else {
                    let near = kernel.driverNames.filter { $0.hasPrefix(name.prefix(2)) }
                    throw CommandFailure(message: "no driver named \(name) is loaded" + (near.isEmpty ? "" : " (loaded: \(kernel.driverNames.joined(separator: ", ")))") + "; `llmos drivers list` shows what is there and what failed")
                }
                let manifest = try ManifestParser.parse(file: info.manifestFile)
                if json {
                    var object = info.json.objectValue ?? JSONObject()
                    object["limits"] = ["timeout_ms": .int(Int64(manifest.limits.timeoutMs)), "max_output_bytes": .int(Int64(manifest.limits.maxOutputBytes))]
                    object["tool_details"] = .array(info.tools.compactMap { kernel.tool(named: $0)?.json })
                    Terminal.printJSON(.object(object))
                    return
                }
                print("""
                \(info.name) \(info.version) — \(info.description)
                  class:        \(info.deviceClass)
                  isolation:    \(info.isolation.rawValue)\(info.isolation == .inProcess ? " (inside the host: no sandbox; --isolate \(info.name) to run it apart)" : "")\(info.health.process.map { "\n  sandbox:      \($0.sandbox)" } ?? "")
                  threading:    \(info.threading.rawValue)
                  abi:          1.\(info.abiMinor)
                  capabilities: \(info.capabilities.summary)
                  limits:       timeout \(manifest.limits.timeoutMs) ms, output \(manifest.limits.maxOutputBytes) bytes
                  manifest:     \(info.manifestFile)
                  library:      \(info.libraryPath)
                  health:       \(info.health.summary)
                tools:
                """)
                for toolName in info.tools {
                    guard let tool = kernel.tool(named: toolName) else { continue }
                    print("  \(tool.name)(\(ToolsCommand.parameterSummary(tool.inputSchema)))\n      \(tool.description)")
                }
                if info.discoversTools {
                    print("  (tools discovered at run time: \(info.heldBack.isEmpty ? "all approved" : "\(info.heldBack.count) held back"))")
                }
                for held in info.heldBack {
                    print("  HELD BACK \(held.name): \(held.changes.joined(separator: ", ")) changed since it was approved; now:")
                    print("      \(held.definition["description"]?.stringValue ?? "")")
                    print("      input_schema: \(held.definition["input_schema"]?.serialized() ?? "{}")")
                }
                if !info.heldBack.isEmpty { print("  approve with: llmos drivers approve \(info.name)") }
                for warning in info.warnings { print("warning: \(warning)") }
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve an MCP server's tools as they are now (after a change held them back).",
            discussion: "A driver whose tools are discovered at run time (an MCP server) has each tool's definition pinned by hash. A tool whose definition changed since it was approved is held back until this command approves it: it starts the server if needed, lists its tools, and records every valid definition as approved. `llmos drivers info NAME` shows what changed first.")
        @OptionGroup var host: HostOptions
        @Argument(help: "The driver's name (the MCP server's manifest name), e.g. time.") var name: String
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let (kernel, report) = try host.makeKernel(reportFailures: false)
                guard kernel.driver(named: name) != nil else {
                    let failure = report.failed.first { $0.manifestFile.hasSuffix("/\(name).yaml") || $0.manifestFile.hasSuffix("/\(name).json") }
                    throw CommandFailure(message: "no driver named \(name) is loaded" + (failure.map { ": \($0.error.message)" } ?? "; `llmos drivers list` shows what is there and what failed"))
                }
                let result = try kernel.approveTools(name)
                if json {
                    Terminal.printJSON(result.json)
                    return
                }
                for tool in result.approved { print("approved \(tool) (its definition had changed)") }
                for tool in result.added { print("approved \(tool) (new)") }
                for tool in result.removed { print("gone: \(tool) (the server no longer lists it)") }
                for rejected in result.rejected { print("refused: \(rejected.name): \(rejected.error)") }
                let unchanged = result.offered.count - result.approved.count - result.added.count
                print("\(name): \(result.offered.count) tools approved (\(max(0, unchanged)) unchanged)")
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a manifest and its library without installing anything.",
            discussion: "Reads the manifest, reports every problem with its file, line and field, then loads the library in a scratch kernel and negotiates the ABI. Exits non-zero when anything is wrong.")
        @Argument(help: "The manifest file (YAML or JSON).") var path: String
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            let log = MemoryLogSink()
            let kernel = Kernel(configuration: KernelConfiguration(log: log))
            do {
                let info = try kernel.load(manifestAt: path)
                if json {
                    Terminal.printJSON(["ok": true, "driver": info.json])
                } else {
                    print("ok: \(info.name) \(info.version) (\(info.deviceClass), \(info.tools.count) \(info.deviceClass == .tool ? "tools" : "operations"): \(info.tools.joined(separator: ", ")))")
                    print("  library:      \(info.libraryPath) (ABI 1.\(info.abiMinor))")
                    print("  capabilities: \(info.capabilities.summary)")
                    for warning in info.warnings { print("warning: \(warning)") }
                }
            } catch {
                if json {
                    Terminal.printJSON(["ok": false, "error": error.json])
                } else {
                    Terminal.error(error.message)
                }
                throw ExitCode(1)
            }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a driver into your driver directory after showing what it asks for.",
            discussion: "Checks the manifest and library first, shows the capabilities the driver requests, and asks before copying (pass --yes when there is no terminal). The driver lands in ~/.local/share/llmos/drivers/NAME/ ($XDG_DATA_HOME is honoured), where a running host picks it up without a restart.")
        @Argument(help: "The manifest file of the driver to install.") var path: String
        @Flag(name: .shortAndLong, help: "Install without asking.") var yes = false
        @Flag(help: "Replace an installed driver of the same name.") var force = false

        func run() throws {
            try reportingErrors {
                let kernel = Kernel(configuration: KernelConfiguration(log: MemoryLogSink()))
                let info = try kernel.load(manifestAt: path)
                let manifest = try ManifestParser.parse(file: path)
                print("\(info.name) \(info.version): \(info.description)")
                print("  tools:        \(info.tools.joined(separator: ", "))")
                print("  isolation:    \(info.isolation.rawValue)\(info.isolation == .inProcess ? " (runs inside the host: trust it as you trust llmos)" : "")")
                print("  capabilities: \(info.capabilities.isEmpty ? "none (touches no resource)" : info.capabilities.summary)")
                let destination = DriverSearchPath.userDriverDirectory() + "/" + info.name
                if FileManager.default.fileExists(atPath: destination) && !force {
                    throw CommandFailure(message: "\(info.name) is already installed in \(destination); pass --force to replace it, or `llmos drivers remove \(info.name)` first")
                }
                if !yes {
                    guard Terminal.isInteractive else {
                        throw CommandFailure(message: "not installing without confirmation: there is no terminal to ask on; pass --yes to install \(info.name) with the capabilities above")
                    }
                    guard Terminal.confirm("Install \(info.name) into \(destination)?") else {
                        throw CommandFailure(message: "not installed")
                    }
                }
                try Installer.install(manifest: manifest, libraryPath: info.libraryPath, into: destination)
                print("installed \(info.name) into \(destination); hosts pick it up now (hot plug) or on their next start")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a driver you installed (from your driver directory).")
        @Argument(help: "The driver's name.") var name: String

        func run() throws {
            try reportingErrors {
                let directory = DriverSearchPath.userDriverDirectory() + "/" + name
                guard !name.contains("/"), !name.hasPrefix("."), FileManager.default.fileExists(atPath: directory) else {
                    let installed = (try? FileManager.default.contentsOfDirectory(atPath: DriverSearchPath.userDriverDirectory()))?.sorted() ?? []
                    throw CommandFailure(message: "no driver named \(name) is installed in \(DriverSearchPath.userDriverDirectory())" + (installed.isEmpty ? "" : " (installed: \(installed.joined(separator: ", ")))") + "; drivers elsewhere on the path are removed by deleting their files")
                }
                try FileManager.default.removeItem(atPath: directory)
                print("removed \(name) (\(directory))")
            }
        }
    }
}

/// Copies a checked driver into a directory of its own, atomically: a watching
/// host sees the folder appear complete, never half-written.
enum Installer {
    static func install(manifest: DriverManifest, libraryPath: String, into destination: String) throws {
        let fm = FileManager.default
        let parent = (destination as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let staging = parent + "/.installing-\(manifest.name)-\(getpid())"
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let libraryName = (libraryPath as NSString).lastPathComponent
        try fm.copyItem(atPath: libraryPath, toPath: staging + "/" + libraryName)
        if manifest.library.path == libraryName {
            // Copied as it is, comments and all, keeping its extension (.yaml, .yml or .json).
            let ext = (manifest.file as NSString).pathExtension
            try fm.copyItem(atPath: manifest.file, toPath: staging + "/\(manifest.name).\(ext.isEmpty ? "yaml" : ext)")
        } else {
            // The library now sits beside the manifest: point the manifest at it.
            var document = try ManifestParser.document(file: manifest.file).objectValue ?? JSONObject()
            var library = document["library"]?.objectValue ?? JSONObject()
            library["path"] = .string(libraryName)
            document["library"] = .object(library)
            try Data(JSONValue.object(document).serialized(pretty: true).utf8).write(to: URL(fileURLWithPath: staging + "/\(manifest.name).json"))
        }
        try? fm.removeItem(atPath: destination)
        guard rename(staging, destination) == 0 else {
            throw CommandFailure(message: "could not move the driver into \(destination): \(String(cString: strerror(errno)))")
        }
    }
}
