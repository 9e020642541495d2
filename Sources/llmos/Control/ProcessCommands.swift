import ArgumentParser
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

/// `llmos ps`: the agent processes of every llmos host of this user.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List the agent processes of every running llmos host (llmos run, llmos ask).",
        discussion: """
        Each host answers on its control socket ($XDG_RUNTIME_DIR/llmos, else /tmp/llmos-UID). \
        Columns: PID, STATE (ready, running, waiting, idle — a conversation between turns —, \
        finished), what it waits for, its drivers, the model turns (STEPS) and tokens it used, \
        its age, and the host's own process id.

          PID  STATE    WAITING FOR           CPU    TOOLS  STEPS  TOKENS     AGE   HOST  OWNER
          7    waiting  cpu local (1 ahead)   local  *      3      1204/88    12s   4242  repl

        Finished processes are listed with --all. `llmos kill PID` stops one.
        """)

    @Flag(help: "Include finished processes.") var all = false
    @Flag(help: "One JSON object: {\"hosts\": [{\"host\", \"processes\": [...]}]}.") var json = false

    func run() throws {
        try reportingErrors {
            let directory = try ControlDirectory.path()
            var hosts: [JSONValue] = []
            var rows: [[String]] = []
            for (pid, path) in ControlDirectory.hostSockets(in: directory) {
                guard let answer = ControlClient.request(path, ["op": "ps"]) else { continue }
                var processes = answer["processes"]?.arrayValue ?? []
                if !all { processes = processes.filter { $0["state"]?.stringValue != "finished" } }
                hosts.append(["host": .int(Int64(pid)), "processes": .array(processes)])
                for p in processes {
                    let detail = p["detail"]?.stringValue ?? ""
                    let waiting = detail.hasPrefix("waiting (") ? String(detail.dropFirst(9).dropLast()) : (detail.hasPrefix("idle") || detail.hasPrefix("finished") ? detail : "")
                    let tools = (p["tools"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
                    let tokens = "\(p["input_tokens"]?.int64Value ?? 0)/\(p["output_tokens"]?.int64Value ?? 0)"
                    rows.append([String(p["pid"]?.int64Value ?? 0), p["state"]?.stringValue ?? "", waiting.isEmpty ? "-" : waiting,
                                 p["cpu"]?.stringValue ?? "", tools, String(p["steps"]?.int64Value ?? 0), tokens,
                                 Self.age(p["age_seconds"]?.doubleValue ?? 0), String(pid), p["owner"]?.stringValue ?? ""])
                }
            }
            if json {
                Terminal.printJSON(["hosts": .array(hosts)])
            } else if rows.isEmpty {
                print(hosts.isEmpty ? "no llmos host is running (llmos run or llmos ask start one)" : "no agent processes" + (all ? "" : " running (--all shows finished ones)"))
            } else {
                print(Terminal.table(["PID", "STATE", "WAITING FOR", "CPU", "TOOLS", "STEPS", "TOKENS IN/OUT", "AGE", "HOST", "OWNER"], rows))
            }
        }
    }

    static func age(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\((s % 3600) / 60)m"
    }
}

/// `llmos kill PID`: stop an agent process, in whichever host runs it.
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Stop an agent process: one last turn for its best answer, or at once with --now.",
        discussion: """
        Like SIGTERM, `llmos kill PID` lets the process take one last turn without tools, \
        asking the model for its best answer so far; then it stops (stop reason `cancelled`). \
        Like SIGKILL, `--now` cancels the model call and tool calls in flight at once. \
        `llmos ps` lists the pids.
        """)

    @Argument(help: "The agent process id (llmos ps).") var pid: Int
    @Flag(help: "Cancel at once instead of asking for a last answer.") var now = false
    @Flag(help: "Print the answer as JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let directory = try ControlDirectory.path()
            let signal = now ? "kill" : "terminate"
            var running: [String] = []
            for (_, path) in ControlDirectory.hostSockets(in: directory) {
                guard let listing = ControlClient.request(path, ["op": "ps"]) else { continue }
                let processes = listing["processes"]?.arrayValue ?? []
                running += processes.filter { $0["state"]?.stringValue != "finished" }.compactMap { $0["pid"]?.int64Value }.map(String.init)
                guard processes.contains(where: { $0["pid"]?.int64Value == Int64(pid) }) else { continue }
                guard let answer = ControlClient.request(path, ["op": "kill", "pid": .int(Int64(pid)), "signal": .string(signal)]) else {
                    throw CommandFailure(message: "the host of agent process \(pid) did not answer")
                }
                if let error = answer["error"]?.stringValue { throw CommandFailure(message: error) }
                if json { Terminal.printJSON(answer) } else {
                    print(now ? "agent process \(pid): cancelled" : "agent process \(pid): asked to stop (one last turn for its best answer)")
                }
                return
            }
            throw CommandFailure(message: "no agent process \(pid)" + (running.isEmpty ? " (none is running: llmos ps)" : " (running: \(running.joined(separator: ", ")))"))
        }
    }
}
