// The task-success table (issue 6): the local model as an agent on everyday tasks —
// arithmetic, text, time — with the kernel's tools, once with the local driver's
// constrained tool-call path (a JSON schema enforced while decoding) and once with
// llama-server's native tool calls, side by side in one run.
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSNet

struct AgentTask {
    var prompt: String
    /// The tool a correct run calls.
    var tool: String
    /// Text the answer (or, failing that, the right tool's result) must contain.
    var expected: String
}

enum TaskSuccess {
    static func tasks(today: Date) -> [AgentTask] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEEE"
        let weekday = formatter.string(from: today)
        formatter.dateFormat = "yyyy"
        let year = formatter.string(from: today)
        return [
            AgentTask(prompt: "What is 1234 * 5678?", tool: "calc.mul", expected: "7006652"),
            AgentTask(prompt: "What is 17 + 25?", tool: "calc.add", expected: "42"),
            AgentTask(prompt: "What is 1000 minus 1?", tool: "calc.sub", expected: "999"),
            AgentTask(prompt: "What is 144 divided by 12?", tool: "calc.div", expected: "12"),
            AgentTask(prompt: "Evaluate the expression 2 * (3 + 4).", tool: "calc.eval", expected: "14"),
            AgentTask(prompt: "How many words are in the text 'the quick brown fox jumps'?", tool: "text.count", expected: "5"),
            AgentTask(prompt: "Convert the text 'hello world' to upper case.", tool: "text.case", expected: "HELLO WORLD"),
            AgentTask(prompt: "Reverse the text 'stressed'.", tool: "text.reverse", expected: "desserts"),
            AgentTask(prompt: "Make a URL slug from the text 'Hello World Again'.", tool: "text.slugify", expected: "hello-world-again"),
            AgentTask(prompt: "What day of the week is it today?", tool: "", expected: weekday),
            AgentTask(prompt: "What year is it?", tool: "", expected: year),
        ]
    }

    struct Outcome { var rightCall: Bool; var answered: Bool; var steps: Int; var seconds: Double }

    /// `allTools`: every calc and text tool offered; else only the task's own driver's
    /// (calc.* for arithmetic, text.* for text, both for the date tasks).
    static func run(buildDir: String, repo: String, mode: String, allTools: Bool) -> [Outcome] {
        var c = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([
            try! PolicyParser.rule(fromFlag: "driver:local/net.connect=http://127.0.0.1", action: .allow)]))
        c.network = CurlNetworkService()
        c.driverConfig = ["local": ["tool_mode": .string(mode)]]
        let kernel = Kernel(configuration: c)
        for name in ["local", "calc", "text"] { try! kernel.load(manifestAt: repo + "/manifests/\(name).yaml") }
        var options = AgentOptions()
        options.temperature = 0
        options.stream = false
        return tasks(today: options.now()).map { task in
            let domain = task.tool.split(separator: ".").first.map { ["\($0).*"] } ?? ["calc.*", "text.*"]
            let process = AgentProcess(owner: "bench", drivers: AgentDriverSet(cpu: "local", tools: allTools ? ["calc.*", "text.*"] : domain),
                                       budgets: AgentBudgets(maxSteps: 4))
            let start = nowNs()
            let result = AgentLoop(kernel: kernel, process: process, options: options).run(task: task.prompt)
            let seconds = Double(nowNs() - start) / 1e9
            let calls = result.allCalls
            let rightCall = task.tool.isEmpty
                ? calls.isEmpty || calls.allSatisfy { $0.outcome == .ok }
                : calls.contains { $0.call.name == task.tool && $0.outcome == .ok && $0.content.contains(task.expected) }
            let answered = (result.answer ?? "").localizedCaseInsensitiveContains(task.expected)
            return Outcome(rightCall: rightCall, answered: answered, steps: result.steps.count, seconds: seconds)
        }
    }

    static func markdown(buildDir: String, repo: String) -> String {
        let constrained = run(buildDir: buildDir, repo: repo, mode: "constrained", allTools: false)
        let native = run(buildDir: buildDir, repo: repo, mode: "native", allTools: false)
        let constrainedAll = run(buildDir: buildDir, repo: repo, mode: "constrained", allTools: true)
        let nativeAll = run(buildDir: buildDir, repo: repo, mode: "native", allTools: true)
        let tasks = tasks(today: Date())
        func mark(_ b: Bool) -> String { b ? "✓" : "✗" }
        var rows = ""
        for (i, task) in tasks.enumerated() {
            let c = constrained[i], n = native[i]
            rows += "| \(task.prompt) | \(task.tool.isEmpty ? "none (the date is in the system prompt)" : task.tool) | \(mark(c.rightCall)) | \(mark(c.answered)) | \(c.steps) | \(mark(n.rightCall)) | \(mark(n.answered)) | \(n.steps) |\n"
        }
        func count(_ o: [Outcome], _ f: (Outcome) -> Bool) -> String { "\(o.filter(f).count)/\(o.count)" }
        return """
        | task | right tool | constrained: right call | answer | steps | native: right call | answer | steps |
        |---|---|:-:|:-:|--:|:-:|:-:|--:|
        \(rows)| **total** | | **\(count(constrained) { $0.rightCall })** | **\(count(constrained) { $0.answered })** | | **\(count(native) { $0.rightCall })** | **\(count(native) { $0.answered })** | |
        | total with all 12 tools offered to every task | | \(count(constrainedAll) { $0.rightCall }) | \(count(constrainedAll) { $0.answered }) | | \(count(nativeAll) { $0.rightCall }) | \(count(nativeAll) { $0.answered }) | |

        SmolLM2-135M-Instruct (Q4_1) through the `local` driver as an `llmos ask` would run it: the kernel's system prompt, \
        the task's own tools offered (calc's 5 for arithmetic, text's 7 for text, all 12 for the date), temperature 0, \
        at most 4 steps; the last row offers all 12 to every task. "Right call": the right tool was called and \
        returned the expected value (for the date tasks: no failed call). "Answer": the final text contains the expected value. \
        Constrained: `tool_mode: constrained` (the default: the reply must match a JSON schema of {tool, arguments} or {answer}, \
        enforced by llama-server's grammar). Native: `tool_mode: native` (llama-server's own tool-call parsing of the chat template). \
        Runs took \(String(format: "%.0f", (constrained + native + constrainedAll + nativeAll).reduce(0) { $0 + $1.seconds })) s in all.
        """
    }
}
