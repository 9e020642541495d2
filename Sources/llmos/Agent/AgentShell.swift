import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

// What `llmos ask` and `llmos run` share: the options that choose a driver set, the
// process they make, and the printer that shows a run as it happens (text on stdout,
// tool calls and results on stderr, one line each).

/// `--cpu`, `--tools`, `--memory`, `--storage`, `--profile`, budgets: the driver set and
/// limits of an agent process. A flag wins over the profile, the profile over the default.
struct AgentCommandOptions: ParsableArguments {
    @Option(name: .customLong("profile"), help: ArgumentHelp("Use the named profile of the config file (${XDG_CONFIG_HOME:-~/.config}/llmos/config.yaml, or $LLMOS_CONFIG_FILE): its cpu, tools, memory, storage, budgets and driver config. Flags given as well win.", valueName: "NAME"))
    var profile: String?

    @Option(name: .customLong("cpu"), help: ArgumentHelp("The cpu driver (the model backend): local, openai, anthropic, scripted, … (default: $LLMOS_CPU, else local). `llmos models` lists them.", valueName: "NAME"))
    var cpu: String?

    @Option(name: .customLong("tools"), help: ArgumentHelp("Offer the model only tools matching GLOB, e.g. 'calc.*' or text.count (repeatable; default: every tool).", valueName: "GLOB"))
    var tools: [String] = []

    @Option(name: .customLong("memory"), help: ArgumentHelp("The memory driver that assembles the context window: window (the latest messages that fit; the default), compact (summarises the oldest part with the model), paged (pages old messages out to storage; the model recalls them). docs/MEMORY.md.", valueName: "NAME"))
    var memory: String?

    @Option(name: .customLong("storage"), help: ArgumentHelp("A storage driver to retrieve from at each task, e.g. sqlite: passages from --collection go into the context with their sources, and the model can search it too (default: none). Fill it with `llmos ingest`.", valueName: "NAME"))
    var storage: String?

    @Option(name: .customLong("collection"), help: ArgumentHelp("The collection of --storage to retrieve from (default: docs, where `llmos ingest` puts files).", valueName: "NAME"))
    var collection: String?

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("At most N model turns per task (default 12).", valueName: "N"))
    var maxSteps: Int?

    @Option(name: .customLong("max-cost"), help: ArgumentHelp("At most this many US dollars per task, at the cpu driver's prices (a local model costs nothing).", valueName: "USD"))
    var maxCost: Double?

    @Option(name: .customLong("cpu-slots"), help: ArgumentHelp("Model calls at once on the cpu driver; the agent processes beyond it wait in a fair queue (default: what the driver says, e.g. 1 for local, else 4).", valueName: "N"))
    var cpuSlots: Int?

    func validate() throws {
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1, got \(maxSteps)") }
        if let maxCost, !(maxCost > 0) { throw ValidationError("--max-cost must be a positive number of dollars, got \(maxCost)") }
        if let cpuSlots, cpuSlots < 1 { throw ValidationError("--cpu-slots must be at least 1, got \(cpuSlots)") }
    }

    /// The profile, when --profile names one (read once).
    func loadProfile() throws -> AgentProfile? {
        guard let profile else { return nil }
        return try AgentProfile.load(named: profile)
    }

    /// Everything resolved: flags, then the profile, then defaults.
    func resolve() throws -> ResolvedAgent {
        try Self.resolve(profile: loadProfile(), cpu: cpu, tools: tools, memory: memory, storage: storage, collection: collection,
                         maxSteps: maxSteps, maxCost: maxCost, cpuSlots: cpuSlots)
    }

    /// The same for a command that takes these options under its own names (`llmos serve --http`).
    static func resolve(profile: AgentProfile?, cpu: String?, tools: [String], memory: String?, storage: String?, collection: String?,
                        maxSteps: Int?, maxCost: Double?, cpuSlots: Int?) throws -> ResolvedAgent {
        let cpuName = cpu.flatMap { $0.isEmpty ? nil : $0 } ?? profile?.cpu ?? Models.defaultCPU
        return ResolvedAgent(
            cpu: cpuName, tools: !tools.isEmpty ? tools : (profile?.tools ?? ["*"]),
            memory: memory ?? profile?.memory ?? AgentDriverSet.builtInMemory, storage: storage ?? profile?.storage,
            collection: collection ?? profile?.collection ?? AgentDriverSet.defaultCollection,
            maxSteps: maxSteps ?? profile?.maxSteps ?? 12, maxCostUSD: maxCost ?? profile?.maxCostUSD,
            cpuSlots: cpuSlots ?? profile?.cpuSlots, driverConfig: profile?.driverConfig ?? [:], profile: profile?.name)
    }
}

/// An agent's driver set and budgets, after flags and profile.
struct ResolvedAgent {
    var cpu: String
    var tools: [String]
    var memory: String
    var storage: String?
    var collection: String
    var maxSteps: Int
    var maxCostUSD: Double?
    var cpuSlots: Int?
    /// Driver configuration from the profile (--config wins).
    var driverConfig: [String: JSONValue]
    var profile: String?

    var cpuName: String { cpu }
    var toolGlobs: [String] { tools }
    var driverSet: AgentDriverSet { AgentDriverSet(cpu: cpu, tools: tools, memory: memory, storage: storage, collection: collection) }

    func makeProcess(owner: String) -> AgentProcess {
        AgentProcess(owner: owner, drivers: driverSet, budgets: AgentBudgets(maxSteps: maxSteps, maxCostUSD: maxCostUSD))
    }

    /// A kernel for this agent: the host's, with the profile's driver config under --config.
    func makeKernel(_ host: HostOptions, reportFailures: Bool = true, serverCommand: String? = nil) throws -> Kernel {
        var host = host
        var config = driverConfig
        // The stores the agent was told to use are granted for that use only: reading the
        // collection it retrieves from (as `llmos ingest` wrote it, with the same embedder),
        // and the paged memory's own collection.
        var stores: [(StoreAccess, writing: Bool)] = []
        if let storage { stores.append((StoreAccess(storage: storage, collection: collection, embed: StoreAccess.defaultEmbed), false)) }
        if memory == "paged" {
            let paged = driverConfig["paged"]
            let store = StoreAccess(storage: paged?["storage"]?.stringValue ?? "sqlite", collection: paged?["collection"]?.stringValue ?? "memory",
                                    embed: StoreAccess.defaultEmbed)
            stores.append((store, true))
            host.permissions.allow += ["driver:paged/tool.call=\(store.storage).put", "driver:paged/tool.call=\(store.storage).search",
                                       "tool.call=paged.recall", "tool.call=paged.remember"]
        }
        for (store, writing) in stores {
            host.permissions.allow += store.grants(writing: writing, tools: true)
            config.merge(store.config) { mine, _ in mine }
        }
        let (kernel, _) = try host.makeKernel(reportFailures: reportFailures, baseConfig: config,
                                              cpuSlots: cpuSlots.map { [cpu: $0] } ?? [:], serverCommand: serverCommand)
        try check(kernel)
        return kernel
    }

    /// The tools a run offers: those of class `tool` drivers matching --tools.
    func offeredTools(_ kernel: Kernel) -> [ToolInfo] {
        let toolDrivers = Set(kernel.loadedDrivers.filter { $0.deviceClass == .tool }.map(\.name))
        return kernel.tools.filter { toolDrivers.contains($0.driver) && driverSet.allows($0.name) }
    }

    /// --tools globs that match no tool leave the model without any: say so.
    func warnIfNoTools(_ kernel: Kernel) {
        guard tools != ["*"], offeredTools(kernel).isEmpty else { return }
        Terminal.warn("--tools \(tools.joined(separator: " --tools ")) matches no tool: the model is offered none (`llmos tools` lists them)")
    }

    /// Clear failures, before any run: the cpu driver is not loaded; a memory or storage
    /// driver that is not there (or of the wrong class).
    func check(_ kernel: Kernel) throws {
        let cpus = kernel.loadedDrivers.filter { $0.deviceClass == .cpu }.map(\.name)
        guard cpus.contains(cpu) else {
            let list = cpus.isEmpty ? "none is loaded" : "loaded: \(cpus.joined(separator: ", "))"
            throw CommandFailure(message: "no cpu driver named \(cpu) is loaded (\(list); `llmos models` says more)")
        }
        let memories = kernel.loadedDrivers.filter { $0.deviceClass == .memory }.map(\.name)
        if memory != AgentDriverSet.builtInMemory && !memories.contains(memory) {
            throw CommandFailure(message: "--memory \(memory): no memory driver of that name is loaded ("
                                 + (memories.isEmpty ? "none is installed; " : "loaded: \(memories.joined(separator: ", ")); ")
                                 + "the kernel's own is --memory window)" + NearestNames.suggestion(for: memory, in: memories))
        }
        if let storage {
            let stores = kernel.loadedDrivers.filter { $0.deviceClass == .storage }.map(\.name)
            if !stores.contains(storage) {
                throw CommandFailure(message: "--storage \(storage): no storage driver of that name is loaded ("
                                     + (stores.isEmpty ? "none is installed" : "loaded: \(stores.joined(separator: ", "))") + ")"
                                     + NearestNames.suggestion(for: storage, in: stores))
            }
        }
    }
}

/// Unbuffered writes, so streamed text and stderr lines interleave as they happen.
enum Out {
    static func write(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
    static func err(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// One-line forms of tool calls and their outcomes.
enum AgentLines {
    /// The passages retrieved for the task, on stderr, as the model was shown them: "[1] guide.md:10-24"
    /// (why none were is a note the run showed at its start).
    static func printSources(_ result: AgentRunResult) {
        guard !result.sources.isEmpty else { return }
        Out.err("sources:\n" + result.sources.map { "  [\($0.number)] \($0.source)\n" }.joined())
    }

    static func clip(_ text: String, _ limit: Int = 160) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: "\\n")
        return flat.count <= limit ? flat : String(flat.prefix(limit - 1)) + "…"
    }

    static func arguments(_ call: AgentToolCall) -> String {
        clip(call.rawArguments ?? call.arguments.serialized(), 120)
    }

    /// "→ calc.add {"a":1,"b":2}"
    static func call(_ call: AgentToolCall) -> String { "→ \(call.name) \(arguments(call))" }

    /// "← calc.add {"result":3}" or "✗ calc.addd (unknown_tool): no tool calc.addd — did you mean calc.add?"
    static func result(_ record: AgentToolCallRecord) -> String {
        if record.outcome == .ok { return "← \(record.call.name) \(clip(record.content))" }
        var line = "✗ \(record.call.name)"
        // Calls refused before dispatch were never announced: show what was asked too.
        if ![.toolError, .denied, .cancelled].contains(record.outcome) { line += " \(arguments(record.call))" }
        let said = record.content.hasPrefix("error: ") ? String(record.content.dropFirst(7)) : record.content
        return line + " (\(record.outcome.rawValue)): \(clip(said, 200))"
    }

    /// One tool call for --json: name, arguments, and result or error.
    static func json(_ record: AgentToolCallRecord) -> JSONValue {
        var object: JSONObject = ["name": .string(record.call.name), "arguments": record.call.arguments,
                                  "outcome": .string(record.outcome.rawValue)]
        if let raw = record.call.rawArguments { object["raw_arguments"] = .string(raw) }
        if record.outcome == .ok {
            object["result"] = (try? JSON.parse(record.content)) ?? .string(record.content)
        } else {
            var error: JSONObject = ["message": .string(record.content)]
            if let e = record.error { error["code"] = .string(e.code.name) }
            object["error"] = .object(error)
        }
        return .object(object)
    }
}

/// Shows a run as it goes: the model's text on stdout as it streams (or whole, from a
/// driver that does not stream), each tool call and its result on stderr.
final class AgentPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var streamedThisStep = false
    /// The last character written to stdout ended a line (or nothing was written).
    private var atLineStart = true
    private(set) var wroteText = false

    func handle(_ event: AgentEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .text(let delta):
            guard !delta.isEmpty else { return }
            streamedThisStep = true
            text(delta)
        case .reply(_, let reply):
            if !streamedThisStep, let content = reply.content, !content.isEmpty { text(content) }
            streamedThisStep = false
        case .toolCall(_, let call):
            endLine()
            Out.err(AgentLines.call(call) + "\n")
        case .toolResult(_, let record):
            endLine()
            Out.err(AgentLines.result(record) + "\n")
        case .note(_, let note):
            endLine()
            Out.err("· llmos: \(AgentLines.clip(note, 200))\n")
        case .plan(_, let items):
            endLine()
            Out.err("plan:\n" + items.enumerated().map { "  \($0.offset + 1). \(AgentLines.clip($0.element, 150))\n" }.joined())
        case .step:
            streamedThisStep = false
        }
    }

    private func text(_ s: String) {
        Out.write(s)
        wroteText = true
        atLineStart = s.hasSuffix("\n")
    }

    /// Ends the text line so that what follows starts on its own.
    func endLine() {
        if !atLineStart { Out.write("\n"); atLineStart = true }
    }

    func finishTurn() {
        lock.lock()
        defer { lock.unlock() }
        endLine()
        streamedThisStep = false
        wroteText = false
    }
}

/// A thread-safe counter (Ctrl-C presses).
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    func reset() { lock.lock(); value = 0; lock.unlock() }
}
