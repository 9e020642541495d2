import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSModelCache

/// `llmos models`: the cpu drivers (model backends) and their models, which one is the
/// default, and whether the local model is set up. `llmos models setup` sets it up.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The model drivers (class cpu) and their models, the default, and whether the local model is set up.",
        discussion: """
        The default cpu is $LLMOS_CPU when set, else `local`: SmolLM2-135M-Instruct served by a \
        supervised llama-server, downloaded and built once by `llmos models setup` into \
        ${XDG_CACHE_HOME:-~/.cache}/llmos. Run any other GGUF model with --model PATH.gguf.
        """,
        subcommands: [List.self, Setup.self],
        defaultSubcommand: List.self
    )

    /// The default cpu driver's name.
    static var defaultCPU: String {
        let env = ProcessInfo.processInfo.environment["LLMOS_CPU"] ?? ""
        return env.isEmpty ? "local" : env
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the model drivers and models (the default subcommand).")
        @OptionGroup var host: HostOptions
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let (kernel, _) = try host.makeKernel(reportFailures: !json)
                let cpus = kernel.loadedDrivers.filter { $0.deviceClass == .cpu }
                let local = LocalModelSetup.status()
                var rows: [[String]] = []
                var entries: [JSONValue] = []
                for driver in cpus {
                    // `info` never starts a server (local) and is bounded (remote ones).
                    var info: JSONValue = .null
                    var problem: String?
                    if driver.tools.contains("\(driver.name).info") {
                        do { info = try JSON.parse(try kernel.call("\(driver.name).info", input: "{}", options: CallOptions(timeoutMs: 5000)).output) } catch {
                            problem = (error as? LLMOSError)?.message ?? "\(error)"
                        }
                    }
                    let isDefault = driver.name == Models.defaultCPU
                    let model = info["model"]?.stringValue ?? "?"
                    let state = Self.state(driver.name, info: info, problem: problem)
                    rows.append([(isDefault ? "* " : "  ") + driver.name, model,
                                 info["context_length"]?.int64Value.map(String.init) ?? "-",
                                 info["native_tool_calls"]?.boolValue.map { $0 ? "native" : "constrained" } ?? "-",
                                 state])
                    var entry: JSONObject = ["driver": .string(driver.name), "default": .bool(isDefault), "model": .string(model),
                                             "state": .string(state), "operations": .array(driver.tools.map { .string(String($0.dropFirst(driver.name.count + 1))) }),
                                             "manifest": .string(driver.manifestFile)]
                    if !info.isNull { entry["info"] = info }
                    if let problem { entry["problem"] = .string(problem) }
                    entries.append(.object(entry))
                }
                if json {
                    Terminal.printJSON(["default": .string(Models.defaultCPU),
                                        "default_loaded": .bool(cpus.contains { $0.name == Models.defaultCPU }),
                                        "drivers": .array(entries), "local_setup": local.json])
                    return
                }
                if cpus.isEmpty {
                    print("No model drivers (class cpu) are loaded; `llmos drivers list` shows what is on the driver path and what failed.")
                } else {
                    print(Terminal.table(["DRIVER", "MODEL", "CONTEXT", "TOOL CALLS", "STATE"], rows))
                    print("\n* the default (set another with LLMOS_CPU=NAME)")
                    if !cpus.contains(where: { $0.name == Models.defaultCPU }) {
                        print("warning: the default cpu \(Models.defaultCPU) is not loaded (`llmos drivers list` says why)")
                    }
                }
                print("\nLocal model (\(local.cache))")
                if local.setUp {
                    print("  set up:       yes, \(local.setUpAt ?? "?") in \(local.setupSeconds.map { Self.duration($0) } ?? "?")")
                    print("  model:        \(local.model ?? "?") (\(Self.size(local.modelBytes)))")
                    print("  llama-server: \(local.server ?? "?") (\(Self.size(local.serverBytes)) with its libraries)")
                    if let v = local.serverVersion { print("  version:      \(v.hasPrefix("version: ") ? String(v.dropFirst(9)) : v)") }
                } else {
                    print("  set up:       no — run `llmos models setup` (or `make models`): downloads SmolLM2-135M-Instruct (98 MB)")
                    print("                and builds llama-server (4-8 minutes on 2 cores), once")
                }
                print("  other models: llmos --model PATH.gguf ... (any GGUF file; configuration `model` of the local driver)")
            }
        }

        static func state(_ name: String, info: JSONValue, problem: String?) -> String {
            if let problem { return "error: " + String(problem.prefix(80)) }
            if let local = info["local"] {
                if local["set_up"]?.boolValue != true { return "not set up (llmos models setup)" }
                if let pid = local["chat"]?["pid"]?.int64Value { return "running (pid \(pid))" }
                return "ready (starts on first use)"
            }
            if let script = info["script"] {
                return script.isNull ? "no script (--config scripted={\"script\":FILE})" : "script \(script.stringValue ?? "")"
            }
            if let url = info["base_url"]?.stringValue { return url }
            return "loaded"
        }

        static func size(_ bytes: Int64?) -> String {
            guard let bytes else { return "?" }
            return String(format: "%.1f MB", Double(bytes) / 1_000_000)
        }

        static func duration(_ seconds: Double) -> String {
            seconds < 60 ? String(format: "%.1f s", seconds) : "\(Int(seconds) / 60) min \(Int(seconds) % 60) s"
        }
    }

    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download SmolLM2-135M-Instruct and build llama-server into the cache, once (runs scripts/setup-model).",
            discussion: "Idempotent: once set up, it says so in well under a second. --force redoes every step.")
        @Flag(help: "Redo every step.") var force = false
        @Flag(help: "Only say whether it is set up (exit status 0 or 1).") var check = false

        func run() throws {
            guard let script = LocalModelSetup.script() else {
                Terminal.error("cannot find scripts/setup-model next to this llmos (looked above \(LocalModelSetup.executableDirectory) and in the current directory); run it from the llmos checkout, or set LLMOS_SETUP_SCRIPT=PATH")
                throw ExitCode(1)
            }
            var arguments = [script]
            if force { arguments.append("--force") }
            if check { arguments.append("--check") }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3"] + arguments
            do { try process.run() } catch {
                Terminal.error("cannot run \(script) with python3: \(error.localizedDescription) (install python3: apt-get install python3 python3-pip)")
                throw ExitCode(1)
            }
            process.waitUntilExit()
            if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
        }
    }
}

/// What `scripts/setup-model` left in the cache (read from its marker, setup.json).
struct LocalModelSetup {
    var cache: String
    var setUp = false
    var model: String?
    var modelBytes: Int64?
    var server: String?
    var serverBytes: Int64?
    var serverVersion: String?
    var setupSeconds: Double?
    var setUpAt: String?

    static func cacheDirectory() -> String { ModelCache.directory() }

    static func status() -> LocalModelSetup {
        var s = LocalModelSetup(cache: cacheDirectory())
        guard let data = FileManager.default.contents(atPath: ModelCache.markerPath(in: s.cache)),
              let record = try? JSON.parse(String(decoding: data, as: UTF8.self)) else { return s }
        s.model = record["model"]?.stringValue
        s.server = record["server"]?.stringValue
        s.modelBytes = record["model_bytes"]?.int64Value
        s.serverBytes = record["server_bytes"]?.int64Value
        s.serverVersion = record["server_version"]?.stringValue
        s.setupSeconds = record["setup_seconds"]?.doubleValue
        s.setUpAt = record["set_up_at"]?.stringValue
        s.setUp = s.model.map { FileManager.default.isReadableFile(atPath: $0) } == true
            && s.server.map { FileManager.default.isExecutableFile(atPath: $0) } == true
        return s
    }

    var json: JSONValue {
        var o: JSONObject = ["cache": .string(cache), "set_up": .bool(setUp)]
        if let model { o["model"] = .string(model) }
        if let modelBytes { o["model_bytes"] = .int(modelBytes) }
        if let server { o["server"] = .string(server) }
        if let serverBytes { o["server_bytes"] = .int(serverBytes) }
        if let serverVersion { o["server_version"] = .string(serverVersion) }
        if let setupSeconds { o["setup_seconds"] = .double(setupSeconds) }
        if let setUpAt { o["set_up_at"] = .string(setUpAt) }
        return .object(o)
    }

    static var executableDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }

    /// scripts/setup-model: $LLMOS_SETUP_SCRIPT, else in a folder above the executable
    /// (the checkout it was built in), else under the current directory.
    static func script() -> String? {
        if let env = ProcessInfo.processInfo.environment["LLMOS_SETUP_SCRIPT"], !env.isEmpty { return env }
        var dir = executableDirectory
        while dir != "/" && !dir.isEmpty {
            let candidate = dir + "/scripts/setup-model"
            if FileManager.default.isReadableFile(atPath: candidate) { return candidate }
            dir = (dir as NSString).deletingLastPathComponent
        }
        let here = FileManager.default.currentDirectoryPath + "/scripts/setup-model"
        return FileManager.default.isReadableFile(atPath: here) ? here : nil
    }
}

/// The command line's own default grants for the drivers that ship with llmos. The kernel
/// grants nothing by itself and never names a driver; a shell may add defaults, and this
/// one adds exactly what the shipped `local` driver needs to work out of the box: to reach
/// its own llama-server on a loopback port, and (declared; in-process code is not
/// mediated) to run llama-server from the cache. They are scoped to the driver named
/// `local`, shown by `llmos policy show`, overridden by any deny or ask, and dropped with
/// the built-in default by a policy file that says `builtin_default: false`.
enum ShellDefaults {
    static let source = "llmos default for the shipped local driver"

    static func rules() -> [PolicyRule] {
        let cache = LocalModelSetup.cacheDirectory()
        var rules = [PolicyRule(.allow, .netConnect, "http://127.0.0.1", driver: "local", source: source)]
        if cache.hasPrefix("/") { rules.append(PolicyRule(.allow, .exec, cache + "/**", driver: "local", source: source)) }
        return rules
    }

    /// `policy` plus these defaults, unless its files dropped the built-in default.
    static func adding(to policy: Policy) -> Policy {
        guard policy.rules.contains(where: { $0.source == "built-in default" }) else { return policy }
        return Policy(rules: policy.rules + rules())
    }

    /// --model PATH.gguf: the local driver's `model`, merged into its --config.
    static func applyModel(_ model: String?, to config: inout [String: JSONValue]) {
        guard let model, !model.isEmpty else { return }
        let path = model.hasPrefix("/") || model.hasPrefix("~") ? model : FileManager.default.currentDirectoryPath + "/" + model
        var object = config["local"]?.objectValue ?? JSONObject()
        object["model"] = .string(path)
        config["local"] = .object(object)
    }
}
