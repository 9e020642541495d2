import ArgumentParser
import Dispatch
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

/// `llmos run`: an interactive session — each line a turn of one conversation with an
/// agent process, and slash commands for the system around it.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Talk to the model interactively: each line is a turn of one conversation, with tools.",
        discussion: """
        Type a task or a question and press Enter: the answer streams as the model writes \
        it, and each tool call and its result is shown on its own line (on standard error). \
        A plan the model writes for a task of several steps is shown as one. The next line \
        continues the same conversation. Ctrl-C cancels the turn that is running and \
        returns to the prompt (the conversation stays); Ctrl-D (end of input) or /quit leaves.

        Editing: ← → Home End, ↑ ↓ for earlier lines (kept in \
        ${XDG_STATE_HOME:-~/.local/state}/llmos/history; a line that starts with a space is \
        not kept), Ctrl-A/E/K/U/W as in a shell, Ctrl-C at the prompt abandons the line.

        Commands:
          /help              these commands
          /tools             the tools the model is offered
          /drivers           the loaded drivers (* the cpu in use)
          /context           how full the context window is, as a meter:
                               [#####---------------] 812/4096 tokens (20%)
          /ps                this conversation's agent process (llmos ps: all of them)
          /call TOOL JSON    call a tool yourself, without the model:
                               /call calc.add {"a":1,"b":2}
          /reset             forget the conversation
          /quit              leave (also /exit, Ctrl-D)

        Examples:
          llmos run
          llmos run --profile work              # a driver set from ~/.config/llmos/config.yaml
          llmos run --cpu openai --tools 'calc.*' --tools text.count
          printf 'What is 6 * 7?\\n/context\\n' | llmos run --cpu scripted \\
            --config 'scripted={"script":"t.jsonl"}'

        Standard input need not be a terminal: piped lines are turns and commands, in order \
        (no prompt is shown). Permission prompts (--ask rules) are asked on the terminal, \
        naming the agent process; `llmos ps` shows it waiting for the answer.
        """)

    @OptionGroup var host: HostOptions
    @OptionGroup(title: "Agent") var agent: AgentCommandOptions

    func run() throws {
        try reportingErrors {
            let agent = try self.agent.resolve()
            let kernel = try agent.makeKernel(host)
            agent.warnIfNoTools(kernel)
            let control = ControlServer.start(kernel: kernel)
            defer { control?.stop() }
            let session = ReplSession(kernel: kernel, agent: agent)
            session.start()
        }
    }
}

/// The REPL's state: one conversation (an `AgentLoop`), the process running it, and what
/// Ctrl-C cancels.
final class ReplSession: @unchecked Sendable {
    let kernel: Kernel
    let agent: ResolvedAgent
    let printer = AgentPrinter()
    let interactive = isatty(STDIN_FILENO) == 1

    private let lock = NSLock()
    private var loop: AgentLoop
    private var turnRunning = false

    init(kernel: Kernel, agent: ResolvedAgent) {
        self.kernel = kernel
        self.agent = agent
        loop = Self.makeLoop(kernel: kernel, agent: agent, printer: printer)
    }

    static func makeLoop(kernel: Kernel, agent: ResolvedAgent, printer: AgentPrinter) -> AgentLoop {
        var options = AgentOptions()
        options.keepsProcess = true
        return AgentLoop(kernel: kernel, process: agent.makeProcess(owner: "repl"), options: options, observer: { event in printer.handle(event) })
    }

    private var current: AgentLoop { lock.withLock { loop } }

    func start() {
        signal(SIGINT, SIG_IGN)
        let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupts.setEventHandler { [self] in interrupt() }
        interrupts.resume()
        defer { interrupts.cancel() }

        defer { current.process.exit() }
        let editor = interactive ? LineEditor() : nil
        if interactive {
            let profile = agent.profile.map { ", profile \($0)" } ?? ""
            Out.err("llmos — cpu \(agent.cpuName)\(profile), \(offeredTools().count) tools, process \(current.process.pid). Type a task, /help for commands, Ctrl-D to leave.\n")
        }
        while true {
            let line: String
            if let editor {
                switch editor.readLine(prompt: "llmos> ") {
                case .line(let text): line = text
                case .interrupted: continue
                case .endOfInput: return
                }
                editor.remember(line)
            } else {
                guard let text = readLine() else { return }
                line = text
            }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("/") {
                if !command(text) { return }
            } else {
                turn(text)
            }
        }
    }

    /// SIGINT: cancel the running turn; at the prompt, say how to leave.
    func interrupt() {
        let (running, process) = lock.withLock { (turnRunning, loop.process) }
        if running {
            Out.err("\n^C cancelling the turn\n")
            process.cancelTurn()
        } else {
            Out.err("\n(Ctrl-D or /quit to leave)\n")
            if interactive { Out.write("llmos> ") }
        }
    }

    func turn(_ task: String) {
        let loop = current
        lock.withLock { turnRunning = true }
        let result = loop.run(task: task)
        lock.withLock { turnRunning = false }
        let wrote = printer.wroteText
        printer.finishTurn()
        AgentLines.printSources(result)
        switch result.stopReason {
        case .completed:
            break
        case .cancelled where loop.process.state.isFinished:
            // Killed from outside (llmos kill): the conversation is over.
            if let answer = result.answer, !answer.isEmpty, !wrote { Out.write(answer + "\n") }
            Out.err("[process \(loop.process.pid) stopped: \(result.detail); /reset starts a new one]\n")
        case .cancelled:
            Out.err("[cancelled — the conversation goes on]\n")
        default:
            if let answer = result.answer, !answer.isEmpty, !wrote {
                Out.write(answer + "\n")
            }
            Out.err("[stopped: \(result.stopReason.rawValue) — \(result.detail)]\n")
        }
    }

    // MARK: Slash commands

    /// false: leave.
    func command(_ line: String) -> Bool {
        let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let name = String(parts[0])
        let rest = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
        switch name {
        case "/quit", "/exit", "/q":
            return false
        case "/help", "/?":
            Out.write(Self.help)
        case "/tools":
            tools()
        case "/drivers":
            drivers()
        case "/reset":
            if current.process.state.isFinished {
                let next = Self.makeLoop(kernel: kernel, agent: agent, printer: printer)
                lock.withLock { self.loop = next }
                Out.write("a new conversation (process \(next.process.pid))\n")
            } else {
                current.reset()
                Out.write("conversation forgotten\n")
            }
        case "/ps":
            let p = current.process, s = p.stats
            Out.write("process \(p.pid) \(p.state) · \(p.drivers.summary) · \(s.tasks) tasks, \(s.steps) steps, "
                      + "\(s.inputTokens)/\(s.outputTokens) tokens in/out, \(s.toolCalls) tool calls\n")
        case "/context":
            Out.write(context() + "\n")
        case "/call":
            call(rest)
        default:
            Out.err("unknown command \(name): /help lists the commands\n")
        }
        return true
    }

    static let help = """
    Type a task or a question; each line continues the conversation.
      /tools              the tools the model is offered
      /drivers            the loaded drivers (* the cpu in use)
      /context            how full the context window is
      /ps                 this conversation's process (llmos ps: every host's)
      /call TOOL JSON     call a tool without the model, e.g. /call calc.add {"a":1,"b":2}
      /reset              forget the conversation
      /quit               leave (also Ctrl-D)
    Ctrl-C cancels the running turn.

    """

    /// The tools a run offers: those of class `tool` drivers matching --tools.
    func offeredTools() -> [ToolInfo] { agent.offeredTools(kernel) }

    func tools() {
        let tools = offeredTools()
        if tools.isEmpty {
            Out.write("no tools are offered (--tools \(agent.toolGlobs.joined(separator: " --tools ")) matches none)\n")
            return
        }
        var text = ""
        for tool in tools {
            text += "\(tool.name)(\(ToolsCommand.parameterSummary(tool.inputSchema)))  \(tool.description)\n"
        }
        Out.write(text)
    }

    func drivers() {
        let rows = kernel.loadedDrivers.map { d in
            [(d.name == agent.cpuName ? "* " : "  ") + d.name, d.deviceClass.rawValue, d.version, d.tools.count.description + " operations"]
        }
        Out.write(Terminal.table(["DRIVER", "CLASS", "VERSION", "OPERATIONS"], rows) + "\n")
    }

    func call(_ rest: String) {
        guard !rest.isEmpty else {
            Out.err("usage: /call TOOL JSON, e.g. /call calc.add {\"a\":1,\"b\":2}\n")
            return
        }
        let parts = rest.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let tool = String(parts[0])
        let input = parts.count > 1 ? String(parts[1]) : "{}"
        do {
            let result = try kernel.call(tool, input: input)
            Out.write(result.output + "\n")
        } catch {
            Out.err("✗ \(tool) (\(error.code.name)): \(error.message)\n")
        }
    }

    /// "[#####---------------] 812/8192 tokens (10%) · 3 messages · 12 tools · counted by scripted"
    func context() -> String {
        let cpu = agent.cpuName
        let history = current.messages
        var contextLength = 4096
        if kernel.hasTool("\(cpu).info"),
           let out = try? kernel.call("\(cpu).info", input: "{}", options: CallOptions(timeoutMs: 5000)).output,
           let n = (try? JSON.parse(out))?["context_length"]?.int64Value, n > 0 {
            contextLength = Int(n)
        }
        // As the loop does: with too many tools, those relevant to the last task.
        var specs: [JSONValue] = offeredTools().map { ["name": .string($0.name), "description": .string($0.description), "input_schema": $0.inputSchema] }
        let lastTask = history.last { $0["role"]?.stringValue == "user" }?["content"]?.stringValue ?? ""
        specs = ToolSelection.select(task: lastTask, specs: specs, budgetTokens: Int(Double(contextLength - contextLength / 4) * 0.4)).map { specs[$0] }
        let tools = specs
        let system: JSONValue = ["role": "system", "content": .string(AgentPrompts.system(
            date: Date(), workspace: kernel.configuration.workspace, hasTools: !specs.isEmpty))]
        var used = ([system] + history).reduce(0) { $0 + ContextWindow.estimate(message: $1) } + ContextWindow.estimate(tools: specs)
        var how = "estimated"
        if kernel.hasTool("\(cpu).count_tokens") {
            var input: JSONObject = ["messages": .array([system] + history)]
            if !specs.isEmpty { input["tools"] = .array(specs) }
            if let out = try? kernel.call("\(cpu).count_tokens", input: JSONValue.object(input), options: CallOptions(timeoutMs: 5000)).output,
               let n = (try? JSON.parse(out))?["tokens"]?.int64Value {
                used = Int(n)
                how = "counted by \(cpu)"
            }
        }
        return Self.meter(used: used, of: contextLength)
            + " · \(history.count) message\(history.count == 1 ? "" : "s") · \(tools.count) tool\(tools.count == 1 ? "" : "s") · \(how)"
    }

    static func meter(used: Int, of total: Int, width: Int = 20) -> String {
        let share = total > 0 ? Double(used) / Double(total) : 1
        let filled = max(0, min(width, Int((share * Double(width)).rounded())))
        let percent = Int((share * 100).rounded())
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] \(used)/\(total) tokens (\(percent)%)"
    }
}
