import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

// What `llmos ask` and `llmos run` share: the options that choose a driver set, the
// process they make, and the printer that shows a run as it happens (text on stdout,
// tool calls and results on stderr, one line each).

/// `--cpu`, `--tools`, `--max-steps`: the driver set and budget of an agent process.
struct AgentCommandOptions: ParsableArguments {
    @Option(name: .customLong("cpu"), help: ArgumentHelp("The cpu driver (the model backend): local, openai, anthropic, scripted, … (default: $LLMOS_CPU, else local). `llmos models` lists them.", valueName: "NAME"))
    var cpu: String?

    @Option(name: .customLong("tools"), help: ArgumentHelp("Offer the model only tools matching GLOB, e.g. 'calc.*' or text.count (repeatable; default: every tool).", valueName: "GLOB"))
    var tools: [String] = []

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("At most N model turns per task (default 12).", valueName: "N"))
    var maxSteps: Int = 12

    func validate() throws {
        if maxSteps < 1 { throw ValidationError("--max-steps must be at least 1, got \(maxSteps)") }
    }

    var cpuName: String { cpu.flatMap { $0.isEmpty ? nil : $0 } ?? Models.defaultCPU }
    var toolGlobs: [String] { tools.isEmpty ? ["*"] : tools }

    func makeProcess(owner: String) -> AgentProcess {
        AgentProcess(owner: owner, drivers: AgentDriverSet(cpu: cpuName, tools: toolGlobs),
                     budgets: AgentBudgets(maxSteps: maxSteps))
    }

    /// The tools a run offers: those of class `tool` drivers matching --tools.
    func offeredTools(_ kernel: Kernel) -> [ToolInfo] {
        let toolDrivers = Set(kernel.loadedDrivers.filter { $0.deviceClass == .tool }.map(\.name))
        let set = AgentDriverSet(cpu: cpuName, tools: toolGlobs)
        return kernel.tools.filter { toolDrivers.contains($0.driver) && set.allows($0.name) }
    }

    /// --tools globs that match no tool leave the model without any: say so.
    func warnIfNoTools(_ kernel: Kernel) {
        guard !tools.isEmpty, offeredTools(kernel).isEmpty else { return }
        Terminal.warn("--tools \(tools.joined(separator: " --tools ")) matches no tool: the model is offered none (`llmos tools` lists them)")
    }

    /// A clear failure when the chosen cpu driver is not loaded, before any run.
    func checkCPU(_ kernel: Kernel) throws {
        let cpus = kernel.loadedDrivers.filter { $0.deviceClass == .cpu }.map(\.name)
        guard cpus.contains(cpuName) else {
            let list = cpus.isEmpty ? "none is loaded" : "loaded: \(cpus.joined(separator: ", "))"
            throw CommandFailure(message: "no cpu driver named \(cpuName) is loaded (\(list); `llmos models` says more)")
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
