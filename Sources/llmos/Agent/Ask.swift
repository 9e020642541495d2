import ArgumentParser
import Dispatch
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

/// `llmos ask "TASK"`: one agent run, start to end.
struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give the model one task: it plans, calls tools, and answers (one shot; `llmos run` for a conversation).",
        discussion: """
        The task runs as an agent process on the cpu driver you choose, with the tools you \
        offer it. The answer streams to standard output as the model writes it; each tool \
        call and its result (or the error the model was shown) is one line on standard error:

          → calc.mul {"a":1234,"b":5678}
          ← calc.mul {"result":7006652}

        The exit status is 0 when the model answered (stop reason `completed`), 1 otherwise, \
        with the stop reason on standard error: max_steps, budget, loop, denied, cpu_error, \
        cancelled (Ctrl-C cancels the run; a second Ctrl-C exits at once).

        Examples:
          llmos ask "What is 1234 * 5678?"
          llmos ask --tools 'calc.*' --max-steps 4 "What is 2^10 - 24?"
          llmos ask --cpu openai "How many words are in 'an operating system'?"
          llmos ask --json "What is 6 * 7?" | jq .answer
          llmos ask --profile work --max-cost 0.05 "Summarise the README"
          llmos ask --cpu scripted --config 'scripted={"script":"t.jsonl"}' hi

        --json prints one JSON object instead: {"answer", "stop_reason", "detail", \
        "tool_calls": [{"name", "arguments", "outcome", "result" | "error"}], "usage" (with \
        "cost_usd" when the cpu driver has prices), "plan", "steps", "pid", "elapsed_ms"}. \
        While it runs, `llmos ps` lists it and `llmos kill PID` stops it. Permission prompts (--ask rules) are asked on the \
        terminal, never on standard input or output.
        """)

    @OptionGroup var host: HostOptions
    @OptionGroup(title: "Agent") var agent: AgentCommandOptions
    @Flag(help: "Print one JSON object for programs (nothing is streamed).") var json = false
    @Argument(help: "The task, in words (quote it). - reads it from standard input.") var task: String

    func run() throws {
        try reportingErrors { try execute() }
    }

    func execute() throws {
        do {
            let text = task == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines) : task
            guard !text.isEmpty else { throw CommandFailure(message: "the task is empty: llmos ask \"What is 6 * 7?\"", exitCode: 64) }
            let agent = try self.agent.resolve()
            let kernel = try agent.makeKernel(host, reportFailures: !json)
            if !json { agent.warnIfNoTools(kernel) }
            let control = ControlServer.start(kernel: kernel)
            defer { control?.stop() }
            let process = agent.makeProcess(owner: "ask")
            let printer = AgentPrinter()
            var observer: (@Sendable (AgentEvent) -> Void)?
            if !json { observer = { event in printer.handle(event) } }
            var options = AgentOptions()
            options.keepsProcess = false
            let loop = AgentLoop(kernel: kernel, process: process, options: options, observer: observer)

            // Ctrl-C cancels the run (it stops with `cancelled`); a second one exits.
            signal(SIGINT, SIG_IGN)
            let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            let pressed = Counter()
            interrupts.setEventHandler {
                if pressed.increment() > 1 { _exit(130) }
                Out.err("\n^C cancelling (again to exit)\n")
                process.cancel()
            }
            interrupts.resume()
            defer { interrupts.cancel() }

            let result = loop.run(task: text)
            if json {
                Terminal.printJSON(Self.json(result))
            } else {
                let wrote = printer.wroteText
                printer.finishTurn()
                if result.stopReason != .completed, let answer = result.answer, !wrote {
                    Out.write(answer + "\n")
                }
                AgentLines.printSources(result)
            }
            if result.stopReason != .completed {
                throw CommandFailure(message: "stopped: \(result.stopReason.rawValue) — \(result.detail)")
            }
        }
    }

    static func json(_ result: AgentRunResult) -> JSONValue {
        ["answer": result.answer.map(JSONValue.string) ?? .null,
         "stop_reason": .string(result.stopReason.rawValue),
         "detail": .string(result.detail),
         "tool_calls": .array(result.allCalls.map(AgentLines.json)),
         "usage": result.json["usage"] ?? result.usage.json,
         "plan": .array(result.plan.map(JSONValue.string)),
         "sources": .array(result.sources.map(\.json)),
         "retrieval_note": result.retrievalNote.map(JSONValue.string) ?? .null,
         "steps": .int(Int64(result.steps.count)),
         "pid": .int(Int64(result.pid)),
         "elapsed_ms": .int(Int64(result.elapsedNanoseconds / 1_000_000))]
    }
}
