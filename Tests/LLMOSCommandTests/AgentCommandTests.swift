import Foundation
import LLMOSJSON
import Testing

// `llmos ask` and `llmos run` as a user runs them (a child process), against the scripted
// cpu driver (Plugins/scripted) so that no model is needed. A turn's `expect` makes the
// driver check what the model was shown last (the task, or a tool's result).

@Suite struct AgentCommandTests {
    let llmos = LLMOS()

    /// A JSON Lines script in a scratch file; the arguments that select it.
    func scripted(_ turns: [String]) throws -> [String] {
        let path = llmos.home + "/script-\(UUID().uuidString.prefix(6)).jsonl"
        try turns.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return ["--cpu", "scripted", "--config", #"scripted={"script":"\#(path)"}"#, "--no-audit-log"]
    }

    static let addTurns = [
        #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 2, "b": 40}}], "expect": "What is 2 + 40?"}"#,
        #"{"chunks": ["The answer ", "is 42."], "expect": "42"}"#,
    ]

    @Test func askAnswersThroughATool() throws {
        let r = try llmos.run(["ask"] + scripted(Self.addTurns) + ["What is 2 + 40?"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "The answer is 42.\n", "\(r.stdout)")
        #expect(r.stderr.contains(#"→ calc.add {"a":2,"b":40}"#), "\(r.stderr)")
        #expect(r.stderr.contains(#"← calc.add {"result":42}"#), "\(r.stderr)")
    }

    @Test func askJSON() throws {
        let r = try llmos.run(["ask", "--json"] + scripted(Self.addTurns) + ["What is 2 + 40?"])
        #expect(r.status == 0, "\(r.stderr)")
        let value = try JSON.parse(r.stdout)
        #expect(value["answer"]?.stringValue == "The answer is 42.")
        #expect(value["stop_reason"]?.stringValue == "completed")
        #expect(value["steps"]?.int64Value == 2)
        let calls = value["tool_calls"]?.arrayValue ?? []
        #expect(calls.count == 1)
        #expect(calls.first?["name"]?.stringValue == "calc.add")
        #expect(calls.first?["arguments"]?["b"]?.int64Value == 40)
        #expect(calls.first?["result"]?["result"]?.int64Value == 42, "\(r.stdout)")
        #expect(value["usage"]?["output_tokens"]?.int64Value != nil)
    }

    @Test func hallucinatedToolIsShownAndTheRunGoesOn() throws {
        let turns = [
            #"{"tool_calls": [{"name": "calc.addd", "arguments": {"a": 1, "b": 2}}]}"#,
            #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}], "expect": "did you mean calc.add?"}"#,
            #"{"text": "3", "expect": "3"}"#,
        ]
        let r = try llmos.run(["ask"] + scripted(turns) + ["1 + 2?"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "3\n")
        #expect(r.stderr.contains("✗ calc.addd"), "\(r.stderr)")
        #expect(r.stderr.contains("(unknown_tool): no tool calc.addd — did you mean calc.add?"), "\(r.stderr)")
        let json = try JSON.parse(try llmos.run(["ask", "--json"] + scripted(turns) + ["1 + 2?"]).stdout)
        let calls = json["tool_calls"]?.arrayValue ?? []
        #expect(calls.first?["outcome"]?.stringValue == "unknown_tool")
        #expect(calls.first?["error"]?["message"]?.stringValue?.contains("did you mean calc.add?") == true, "\(json)")
        #expect(calls.last?["result"]?["result"]?.int64Value == 3)
    }

    @Test func askFailsWithTheStopReason() throws {
        let turns = [#"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}]}"#]
        let r = try llmos.run(["ask", "--max-steps", "1"] + scripted(turns + turns) + ["loop"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("stopped: max_steps"), "\(r.stderr)")
        let missing = try llmos.run(["ask", "--cpu", "nosuch", "--no-audit-log", "hi"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no cpu driver named nosuch is loaded"), "\(missing.stderr)")
    }

    @Test func askHelpTeaches() throws {
        let r = try llmos.run(["ask", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Examples:") && r.stdout.contains("--json") && r.stdout.contains("--max-steps"), "\(r.stdout)")
    }

    @Test func runTwoTurnsCallAndTools() throws {
        let turns = Self.addTurns + [#"{"text": "Still 42.", "expect": "And again?"}"#]
        let input = """
        What is 2 + 40?
        /call calc.add {"a":1,"b":2}
        /tools
        And again?
        /context
        /call calc.addd {}
        /reset
        /quit
        never read
        """
        let r = try llmos.run(["run", "--tools", "calc.*"] + scripted(turns), stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        #expect(out.contains("The answer is 42.\n"), "\(out)")
        #expect(out.contains("{\"result\":3}\n"), "\(out)")
        #expect(out.contains("calc.add(a: number, b: number)"), "\(out)")
        #expect(!out.contains("text.count"), "\(out)")
        #expect(out.contains("Still 42.\n"), "\(out)")
        #expect(out.contains("] ") && out.contains("tokens") && out.contains("6 messages"), "\(out)")
        #expect(out.contains("conversation forgotten"))
        #expect(r.stderr.contains(#"← calc.add {"result":42}"#), "\(r.stderr)")
        #expect(r.stderr.contains("no tool calc.addd"), "\(r.stderr)")
        // Replies come in order: the first answer before the /call's output.
        let first = try #require(out.range(of: "The answer is 42."))
        let call = try #require(out.range(of: "{\"result\":3}"))
        #expect(first.lowerBound < call.lowerBound)
    }

    @Test func runEndsAtEndOfInput() throws {
        let r = try llmos.run(["run"] + scripted([#"{"text": "hi"}"#]), stdin: "hello\n/drivers\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("hi\n"))
        #expect(r.stdout.contains("* scripted"), "\(r.stdout)")
    }
}

/// Drives `llmos run` through a pseudo-terminal (python3's pty module): each step waits for
/// a text to appear on the terminal, then types something (a line, Ctrl-C, Ctrl-D). Bounded:
/// after 30 s the command is killed, so a test never hangs.
struct PTYSession {
    static let driver = #"""
    import json, os, pty, select, signal, sys, time
    steps, argv = json.loads(sys.argv[1]), sys.argv[2:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    seen, deadline, done = b"", time.time() + 30, False
    def read(t):
        global seen, done
        r, _, _ = select.select([fd], [], [], t)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                done = True
            seen += chunk
    for wait, send in steps:
        start = len(seen) if wait.startswith("+") else 0
        wait = wait.lstrip("+")
        while wait.encode() not in seen[start:] and not done and time.time() < deadline:
            read(0.1)
        time.sleep(0.2)
        os.write(fd, send.encode())
    while not done and time.time() < deadline:
        read(0.2)
    if not done:
        os.kill(pid, signal.SIGKILL)
        seen += b"\n[pty: timed out, killed]\n"
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(seen.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))
    """#

    /// steps: (text to wait for — "+text": new since the last step — , what to type).
    static func run(_ llmos: LLMOS, _ arguments: [String], steps: [(String, String)]) throws -> (status: Int32, output: String) {
        let script = llmos.home + "/pty-driver.py"
        try driver.write(toFile: script, atomically: true, encoding: .utf8)
        let encoded = JSONValue.array(steps.map { JSONValue.array([.string($0.0), .string($0.1)]) }).serialized()
        let quoted = ([LLMOS.executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return try shell("HOME='\(llmos.home)' NO_COLOR=1 python3 '\(script)' '\(encoded)' " + quoted.joined(separator: " "), in: LLMOS.repoRoot)
    }
}

extension AgentCommandTests {
    @Test func ctrlCCancelsTheTurnNotTheSession() throws {
        let turns = [
            #"{"text": "too slow", "delay_ms": 20000}"#,
            #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 20, "b": 22}}], "expect": "second"}"#,
            #"{"text": "forty-two", "expect": "42"}"#,
        ]
        let start = Date()
        let r = try PTYSession.run(llmos, ["run", "--ask", "tool.call=calc.add"] + scripted(turns), steps: [
            ("llmos> ", "first question\n"),
            ("+first question", "\u{03}"),
            ("+llmos> ", "second question\n"),
            ("Allow [o]nce", "o\n"),
            ("forty-two", "/quit\n"),
        ])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("^C cancelling the turn"), "\(r.output)")
        #expect(r.output.contains("[cancelled"), "\(r.output)")
        #expect(!r.output.contains("too slow"), "\(r.output)")
        #expect(r.output.contains("permission needed"), "\(r.output)")
        #expect(r.output.contains(#"← calc.add {"result":42}"#), "\(r.output)")
        #expect(r.output.contains("forty-two"), "\(r.output)")
        #expect(Date().timeIntervalSince(start) < 15, "the slow turn was not cancelled")
    }

    @Test func ctrlCCancelsAnAsk() throws {
        let turns = [#"{"chunks": ["thinking", " for ever"], "chunk_delay_ms": 20000}"#]
        let start = Date()
        let r = try PTYSession.run(llmos, ["ask"] + scripted(turns) + ["slow"], steps: [("thinking", "\u{03}")])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.contains("stopped: cancelled"), "\(r.output)")
        #expect(!r.output.contains("for ever"), "\(r.output)")
        #expect(Date().timeIntervalSince(start) < 15, "the slow run was not cancelled")
    }

    @Test func ctrlDLeaves() throws {
        let r = try PTYSession.run(llmos, ["run"] + scripted([#"{"text": "hi"}"#]), steps: [("llmos> ", "\u{04}")])
        #expect(r.status == 0, "\(r.output)")
        #expect(!r.output.contains("timed out"), "\(r.output)")
    }
}
