import Foundation
import LLMOSJSON
import Testing

// `llmos ps` and `llmos kill` across hosts (each `llmos run` keeps a control socket),
// profiles from the config file, the driver-set flags, and the REPL's line editor —
// all as a user runs them, against the scripted cpu driver.

@Suite struct ProcessCommandTests {
    let llmos = LLMOS()
    /// A control directory of this test's own, so other tests' hosts do not show up.
    var runtime: [String: String] { ["XDG_RUNTIME_DIR": llmos.home + "/run"] }

    init() throws {
        try FileManager.default.createDirectory(atPath: llmos.home + "/run", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    func script(_ turns: [String]) throws -> String {
        let path = llmos.home + "/script-\(UUID().uuidString.prefix(6)).jsonl"
        try turns.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `llmos run` in the background, reading the lines given; its output when it ends.
    final class Host {
        let process = Process()
        let input = Pipe(), out = Pipe(), err = Pipe()

        init(_ arguments: [String], environment: [String: String], home: String) throws {
            process.executableURL = URL(fileURLWithPath: LLMOS.executable)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
            var env = ProcessInfo.processInfo.environment
            env["HOME"] = home
            env["NO_COLOR"] = "1"
            env["LLMOS_DRIVER_PATH"] = nil
            env.merge(environment) { _, new in new }
            process.environment = env
            process.standardInput = input
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }

        func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

        func finish() -> (status: Int32, stdout: String, stderr: String) {
            try? input.fileHandleForWriting.close()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
    }

    /// Polls `llmos ps --json` until a process matches (bounded: ~30 s).
    func waitForProcess(_ matches: (JSONValue) -> Bool) throws -> JSONValue? {
        for _ in 0..<300 {
            let r = try llmos.run(["ps", "--json", "--all"], environment: runtime)
            if let hosts = (try? JSON.parse(r.stdout))?["hosts"]?.arrayValue {
                for host in hosts { for p in host["processes"]?.arrayValue ?? [] where matches(p) { return p } }
            }
            usleep(100_000)
        }
        return nil
    }

    @Test func psListsARunningProcessAndKillNowCancelsIt() throws {
        let path = try script([#"{"text": "too slow", "delay_ms": 30000}"#])
        let host = try Host(["run", "--cpu", "scripted", "--config", #"scripted={"script":"\#(path)"}"#, "--no-audit-log"],
                            environment: runtime, home: llmos.home)
        host.send("think for a long time")
        let running = try #require(try waitForProcess { $0["state"]?.stringValue == "running" })
        let pid = try #require(running["pid"]?.int64Value)
        #expect(running["cpu"]?.stringValue == "scripted")
        #expect(running["owner"]?.stringValue == "repl")
        #expect(running["memory"]?.stringValue == "window")

        let table = try llmos.run(["ps"], environment: runtime)
        #expect(table.status == 0)
        #expect(table.stdout.contains("PID") && table.stdout.contains("running") && table.stdout.contains("scripted"), "\(table.stdout)")

        let missing = try llmos.run(["kill", "987654"], environment: runtime)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no agent process 987654 (running: \(pid))"), "\(missing.stderr)")

        let kill = try llmos.run(["kill", "--now", String(pid)], environment: runtime)
        #expect(kill.status == 0, "\(kill.stderr)")
        #expect(kill.stdout.contains("agent process \(pid): cancelled"))
        let finished = try waitForProcess { $0["pid"]?.int64Value == pid && $0["state"]?.stringValue == "finished" }
        #expect(finished != nil)
        let r = host.finish()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("[process \(pid) stopped"), "\(r.stderr)")
        #expect(!r.stdout.contains("too slow"))
        // The host removed its socket when it ended.
        let after = try llmos.run(["ps"], environment: runtime)
        #expect(after.stdout.contains("no llmos host is running"), "\(after.stdout)")
    }

    @Test func killAsksForOneLastAnswer() throws {
        let path = try script([
            #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}], "delay_ms": 6000}"#,
            #"{"expect": "asked to stop", "text": "Best so far: 3."}"#,
        ])
        let host = try Host(["run", "--cpu", "scripted", "--config", #"scripted={"script":"\#(path)"}"#, "--no-audit-log"],
                            environment: runtime, home: llmos.home)
        host.send("add things")
        let running = try #require(try waitForProcess { $0["state"]?.stringValue == "running" })
        let pid = try #require(running["pid"]?.int64Value)
        let kill = try llmos.run(["kill", String(pid)], environment: runtime)
        #expect(kill.status == 0, "\(kill.stderr)")
        #expect(kill.stdout.contains("one last turn"))
        let r = host.finish()
        #expect(r.stdout.contains("Best so far: 3."), "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("stopped by the request to stop"), "\(r.stderr)")
    }

    @Test func aProfileChoosesTheDriverSet() throws {
        let path = try script([
            #"{"tool_calls": [{"name": "calc.add", "arguments": {"a": 2, "b": 40}}], "expect": "What is 2 + 40?"}"#,
            #"{"text": "42", "expect": "42"}"#,
        ])
        let config = llmos.home + "/.config/llmos"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try """
        profiles:
          test:
            cpu: scripted
            tools: ["calc.*"]
            max_steps: 4
            config:
              scripted: {script: "\(path)"}
          broken:
            cpu: scripted
            max_step: 3
        """.write(toFile: config + "/config.yaml", atomically: true, encoding: .utf8)
        let r = try llmos.run(["ask", "--profile", "test", "--no-audit-log", "--json", "What is 2 + 40?"])
        #expect(r.status == 0, "\(r.stderr)")
        let value = try JSON.parse(r.stdout)
        #expect(value["answer"]?.stringValue == "42")

        let unknown = try llmos.run(["ask", "--profile", "tset", "hi"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no profile of that name") && unknown.stderr.contains("did you mean test?"), "\(unknown.stderr)")
        let broken = try llmos.run(["ask", "--profile", "broken", "hi"])
        #expect(broken.stderr.contains("config.yaml: profiles.broken: unknown field max_step"), "\(broken.stderr)")
        #expect(broken.stderr.contains("max_steps"), "\(broken.stderr)")
        let none = try llmos.run(["ask", "--profile", "x", "hi"], environment: ["LLMOS_CONFIG_FILE": llmos.home + "/nope.yaml"])
        #expect(none.stderr.contains("there is no config file"), "\(none.stderr)")
    }

    @Test func memoryAndStorageFlagsNameWhatIsMissing() throws {
        let memory = try llmos.run(["ask", "--cpu", "scripted", "--memory", "pagd", "hi"])
        #expect(memory.status == 1)
        #expect(memory.stderr.contains("--memory pagd: no memory driver of that name is loaded"), "\(memory.stderr)")
        #expect(memory.stderr.contains("did you mean paged?"), "\(memory.stderr)")
        let storage = try llmos.run(["ask", "--cpu", "scripted", "--storage", "nosuch", "hi"])
        #expect(storage.status == 1)
        #expect(storage.stderr.contains("--storage nosuch: no storage driver of that name is loaded (loaded: "), "\(storage.stderr)")
        // A store the policy does not let the process read: the run goes on without passages, and says why.
        let path = try script([#"{"text": "an answer"}"#])
        let sqlite = try llmos.run(["ask", "--cpu", "scripted", "--config", "scripted={\"script\": \"\(path)\"}", "--storage", "sqlite",
                                    "--deny", "storage.read=docs", "hi"])
        #expect(sqlite.status == 0, "\(sqlite.stderr)")
        #expect(sqlite.stdout.contains("an answer"))
        #expect(sqlite.stderr.contains("nothing retrieved from sqlite collection docs"), "\(sqlite.stderr)")
    }

    @Test func theLineEditorEditsAndRemembers() throws {
        let path = try script([
            #"{"text": "one", "expect": "hello"}"#,
            #"{"text": "two", "expect": "hello"}"#,
        ])
        let r = try PTYSession.run(llmos, ["run", "--cpu", "scripted", "--config", #"scripted={"script":"\#(path)"}"#, "--no-audit-log"], steps: [
            ("llmos> ", "helo"),
            ("helo", "\u{1B}[Dl\r"),          // ← then "l": "hello"
            ("+llmos> ", "\u{1B}[A"),         // ↑ recalls "hello"
            ("+hello", "\r"),
            ("two", "\u{04}"),
        ])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("one") && r.output.contains("two"), "\(r.output)")
        let history = try String(contentsOfFile: llmos.home + "/.local/state/llmos/history", encoding: .utf8)
        #expect(history == "hello\n", "\(history)")
    }
}
