import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSServe
import LLMOSNet

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
          llmos models                     the model drivers, and whether the local model is set up
        """,
        subcommands: [Demo.self, Drivers.self, Tools.self, Call.self, PolicyCommand.self, AuditCommand.self, New.self, Doctor.self, Watch.self, Models.self, Ask.self, RunCommand.self, PsCommand.self, KillCommand.self, Serve.self, Ingest.self, Search.self]
    )
}

/// Options every command that loads drivers shares.
struct HostOptions: ParsableArguments {
    @Option(name: .customLong("drivers"), help: ArgumentHelp("Also look for drivers in DIR, before the standard path (repeatable).", valueName: "DIR"))
    var driverDirectories: [String] = []

    @Option(name: .customLong("config"), help: ArgumentHelp("Configuration for a driver, as NAME=JSON-object (repeatable), e.g. --config 'weather={\"units\":\"metric\"}'.", valueName: "NAME=JSON"))
    var driverConfig: [String] = []

    @Option(name: .customLong("model"), help: ArgumentHelp("A GGUF model file for the local driver instead of SmolLM2 (sets its configuration `model`).", valueName: "PATH.gguf"))
    var model: String?

    @Flag(name: .long, help: "Print the kernel's debug log to standard error.")
    var verbose = false

    @Option(name: .customLong("isolate"), help: ArgumentHelp("Run driver NAME in a sandboxed helper process whatever its manifest says (repeatable; * for every driver). Its sandbox is built from its grants: see `llmos drivers info NAME`.", valueName: "NAME"))
    var isolate: [String] = []

    @OptionGroup(title: "Permissions") var permissions: PermissionOptions

    /// `--config NAME=JSON` values, parsed; a malformed one is a usage error.
    func parsedConfig() throws -> [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        for item in driverConfig {
            guard let eq = item.firstIndex(of: "=") else {
                throw ValidationError("--config \(item): expected NAME=JSON, for example --config 'weather={\"units\":\"metric\"}'")
            }
            let name = String(item[..<eq])
            let value: JSONValue
            do { value = try JSON.parse(String(item[item.index(after: eq)...])) } catch {
                throw ValidationError("--config \(name): the value is not valid JSON: \(error)")
            }
            guard value.objectValue != nil else { throw ValidationError("--config \(name): the value must be a JSON object, got \(value.typeName)") }
            result[name] = value
        }
        return result
    }

    func validate() throws { _ = try parsedConfig() }

    var searchPath: DriverSearchPath { .standard(flags: driverDirectories) }

    /// A kernel with every driver on the path loaded; driver failures are reported,
    /// not fatal. A policy with an error is: it is never half-applied.
    /// `baseConfig`: driver configuration under --config (a profile's); `cpuSlots`: the
    /// scheduler's fixed limits.
    /// `serverCommand` (e.g. "llmos serve --http"): a server's host, where nobody can be
    /// asked (an ask is refused, saying how to grant it at start) and no session grant of
    /// the operator's terminal is borrowed.
    func makeKernel(reportFailures: Bool = true, baseConfig: [String: JSONValue] = [:],
                    cpuSlots: [String: Int] = [:], serverCommand: String? = nil) throws -> (Kernel, LoadReport) {
        var configuration = KernelConfiguration(log: StandardErrorLogSink(minimumLevel: verbose ? .debug : .warn))
        configuration.driverConfig = baseConfig.merging((try? parsedConfig()) ?? [:]) { _, flag in flag }
        configuration.cpuSlots = cpuSlots
        ShellDefaults.applyModel(model, to: &configuration.driverConfig)
        try permissions.configure(&configuration)
        if let serverCommand {
            configuration.broker = CapabilityBroker(policy: try permissions.policy(), asker: ServerAsker(command: serverCommand),
                                                    context: permissions.context, sessionStore: MemorySessionGrantStore())
        }
        configuration.isolation.forced = Set(isolate)
        let kernel = Kernel(configuration: configuration)
        let report = kernel.loadAll(from: searchPath)
        // A misspelled --isolate would leave the driver in-process: say so.
        for name in isolate where name != "*" && kernel.driver(named: name) == nil
            && !report.failed.contains(where: { $0.manifestFile.hasSuffix("/\(name).yaml") }) {
            Terminal.warn("--isolate \(name): no driver of that name is loaded (loaded: \(kernel.driverNames.joined(separator: ", ")))")
        }
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

/// Who may do what: the policy files, grants on the command line, the workspace, and
/// where decisions are recorded.
struct PermissionOptions: ParsableArguments {
    @Option(name: .customLong("policy"), help: ArgumentHelp("A policy file to use as well as ~/.config/llmos/policy.yaml and ./llmos.policy.yaml (naming ./llmos.policy.yaml here trusts its allow rules).", valueName: "FILE"))
    var policyFile: String?

    @Option(name: .customLong("allow"), help: ArgumentHelp("Grant a capability, e.g. --allow fs.read=~/notes/** or --allow net.connect=https://api.example.com:443 (repeatable). Scope it with driver:NAME/ or tool:NAME/ before the kind.", valueName: "KIND=PATTERN"))
    var allow: [String] = []

    @Option(name: .customLong("deny"), help: ArgumentHelp("Refuse a capability, e.g. --deny tool.call=calc.add or --deny net.connect=* (deny beats ask beats allow).", valueName: "KIND=PATTERN"))
    var deny: [String] = []

    @Option(name: .customLong("ask"), help: ArgumentHelp("Ask on the terminal before allowing (denied when there is no terminal).", valueName: "KIND=PATTERN"))
    var ask: [String] = []

    @Option(name: .customLong("audit"), help: ArgumentHelp("Allow, and flag the audit record for review.", valueName: "KIND=PATTERN"))
    var auditRules: [String] = []

    @Option(name: .customLong("workspace"), help: ArgumentHelp("The directory relative paths and ${workspace} mean (default: the current directory).", valueName: "DIR"))
    var workspace: String?

    @Option(name: .customLong("audit-log"), help: ArgumentHelp("The audit database (default: ~/.local/state/llmos/audit.sqlite3).", valueName: "FILE"))
    var auditLog: String?

    @Flag(name: .customLong("no-audit-log"), help: "Do not record calls and decisions (for experiments; the default records everything).")
    var noAuditLog = false

    var context: PolicyContext {
        PolicyContext(workspace: workspace)
    }

    /// The merged policy: built-in default, standard files, --policy, then the flags.
    func policy() throws -> Policy {
        var grants: [PolicyRule] = []
        for (flags, action) in [(allow, PolicyAction.allow), (deny, .deny), (ask, .ask), (auditRules, .audit)] {
            for flag in flags { grants.append(try PolicyParser.rule(fromFlag: flag, action: action, context: context)) }
        }
        return ShellDefaults.adding(to: try PolicyParser.load(policyFile: policyFile, grants: grants, context: context))
    }

    var auditPath: String { auditLog.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? SQLiteAuditLog.defaultPath() }

    func configure(_ configuration: inout KernelConfiguration) throws {
        configuration.broker = CapabilityBroker(policy: try policy(), asker: TerminalAsker(), context: context,
                                                sessionStore: FileSessionGrantStore.forCurrentSession())
        configuration.workspace = context.workspace
        configuration.network = CurlNetworkService()
        configuration.keyValueStore = try SQLiteKeyValueStore()
        if !noAuditLog { configuration.audit = try SQLiteAuditLog(path: auditPath) }
    }
}
