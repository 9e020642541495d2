// The agent benchmarks (issue 6): the kernel's own cost per agent step with 100 tools
// loaded (the model's time excluded), and the scheduler with 100 concurrent processes
// against a local fake model server, at three slot limits side by side.
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSNet

struct AgentBenchmark {
    var markdown: String

    /// Replaces (or appends) the agent section of the markdown file.
    func write(into target: String) {
        writeBenchmarkSection("agent", heading: "Agent processes: a step's kernel cost, and the scheduler under 100 processes", markdown: markdown, into: target)
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    static func run(buildDir: String, repo: String) -> AgentBenchmark {
        var text = stepCost(buildDir: buildDir, repo: repo)
        text += "\n" + scheduler(buildDir: buildDir, repo: repo)
        return AgentBenchmark(markdown: text)
    }

    // MARK: The cost of a step

    /// Tool drivers made from sdk/templates/c (one `hello` tool each), built with cc.
    static func templateDrivers(_ count: Int, repo: String) -> String {
        let dir = NSTemporaryDirectory() + "llmos-bench-agent-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let c = try! String(contentsOfFile: repo + "/sdk/templates/c/driver.c", encoding: .utf8)
        let manifest = try! String(contentsOfFile: repo + "/sdk/templates/c/manifest.yaml", encoding: .utf8)
        for i in 0..<count {
            let name = "tool\(i)"
            try! c.replacingOccurrences(of: "{{name}}", with: name).write(toFile: "\(dir)/\(name).c", atomically: true, encoding: .utf8)
            try! manifest.replacingOccurrences(of: "{{name}}", with: name).write(toFile: "\(dir)/\(name).yaml", atomically: true, encoding: .utf8)
        }
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/bin/sh")
        make.arguments = ["-c", "cd \(dir) && for f in tool*.c; do n=${f%.c}; echo \"cc -std=c99 -O2 -shared -fPIC -I \(repo)/sdk/include -o lib$n.so $f\"; done | xargs -P 2 -I{} sh -c '{}'"]
        try! make.run()
        make.waitUntilExit()
        return dir
    }

    static func stepCost(buildDir: String, repo: String) -> String {
        // calc and text give 12 tools; template drivers make up the rest of 100.
        var configuration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        let turns: [JSONValue] = Array(repeating: ["tool_calls": [["name": "calc.add", "arguments": ["a": 1, "b": 2]]]], count: 9)
            + [["text": "The answer is 3."]]
        configuration.driverConfig = ["scripted": ["turns": .array(turns), "on_end": "loop"]]
        let kernel = Kernel(configuration: configuration)
        for name in ["scripted", "calc", "text"] { try! kernel.load(manifestAt: repo + "/manifests/\(name).yaml") }
        let toolCount = { kernel.tools.filter { $0.driver != "scripted" }.count }
        print("building \(100 - toolCount()) tool drivers from sdk/templates/c for the agent step benchmark...")
        let dir = templateDrivers(100 - toolCount(), repo: repo)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = kernel.loadAll(from: DriverSearchPath(entries: [.init(directory: dir, origin: "bench")]))
        let tools = toolCount()

        var options = AgentOptions()
        options.loopThreshold = 1000
        options.progressWindow = 1000
        var kernelNs: [Double] = [], totalNs: [Double] = [], cpuNs: [Double] = []
        let tasks = 400
        for task in 0..<(tasks + 40) {
            let process = AgentProcess(owner: "bench", drivers: AgentDriverSet(cpu: "scripted"), budgets: AgentBudgets(maxSteps: 20, maxToolCalls: 100))
            let result = AgentLoop(kernel: kernel, process: process, options: options).run(task: "Add 1 and 2, nine times.")
            guard result.stopReason == .completed, result.steps.count == 10 else { fatalError("agent bench: \(result.stopReason) \(result.detail)") }
            if task < 40 { continue }   // warm-up
            for step in result.steps {
                totalNs.append(Double(step.elapsedNanoseconds))
                cpuNs.append(Double(step.cpuNanoseconds))
                kernelNs.append(Double(step.elapsedNanoseconds &- step.cpuNanoseconds))
            }
        }
        kernelNs.sort(); totalNs.sort(); cpuNs.sort()
        let p50 = percentile(kernelNs, 0.5), p99 = percentile(kernelNs, 0.99)
        return """
        | one agent step, \(tools) tools offered (\(kernelNs.count) steps, tasks of 10) | p50 | p99 |
        |---|---:|---:|
        | the kernel's own work: step time minus the time inside the cpu driver | \(format(p50)) | \(format(p99)) |
        | the whole step, the scripted cpu driver included | \(format(percentile(totalNs, 0.5))) | \(format(percentile(totalNs, 0.99))) |
        | inside the cpu driver (complete and count_tokens: it parses the request with its \(tools) tool definitions) | \(format(percentile(cpuNs, 0.5))) | \(format(percentile(cpuNs, 0.99))) |

        - The kernel's part is everything the loop does around the model: budgets, assembling and estimating the context, \
        the 100 tool definitions, serialising the request, the kernel's validation of complete's input and output, reading the \
        reply, checking the tool call against the registry and its schema, the mediated, audited-capable call to calc.add, \
        loop detection, recording the step. Goal ≤ 1 ms p50: \(p50 <= 1_000_000 ? "met" : "NOT met").

        """
    }

    // MARK: The scheduler

    static func scheduler(buildDir: String, repo: String) -> String {
        let server = Process()
        let input = Pipe(), output = Pipe()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", repo + "/Tests/Fixtures/models/server.py", "--key", "bench-key"]
        server.standardInput = input
        server.standardOutput = output
        guard (try? server.run()) != nil else { return "(the scheduler benchmark needs python3)\n" }
        defer { try? input.fileHandleForWriting.close(); server.waitUntilExit() }
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return "(the fake model server did not start)\n" }
            line.append(chunk)
        }
        guard let port = (try? JSON.parse(String(decoding: line, as: UTF8.self)))?["port"]?.int64Value else { return "(no port from the fake server)\n" }

        let processes = 100, steps = 3
        var rows = ""
        for slots in [1, 4, 100] {
            var c = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
            c.network = CurlNetworkService()
            c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([
                try! PolicyParser.rule(fromFlag: "driver:openai/net.connect=http://127.0.0.1:\(port)", action: .allow)]))
            c.driverConfig = ["openai": ["base_url": .string("http://127.0.0.1:\(port)/v1"), "model": "test-model", "api_key": "bench-key",
                                         "tool_mode": "native", "concurrency": .int(Int64(slots))]]
            let kernel = Kernel(configuration: c)
            try! kernel.load(manifestAt: repo + "/manifests/openai.yaml")
            try! kernel.load(manifestAt: repo + "/manifests/calc.yaml")
            var options = AgentOptions()
            options.stream = false
            options.exactTokenCounts = false
            // The driver's info reports `concurrency`; one warm-up run lets the scheduler learn it.
            _ = AgentLoop(kernel: kernel, process: AgentProcess(owner: "bench", drivers: AgentDriverSet(cpu: "openai", tools: ["calc.*"]),
                                                                budgets: AgentBudgets(maxSteps: steps)), options: options).run(task: "scenario:tool warm up")
            let results = LockedResults()
            let runOptions = options
            // One thread per process (concurrentPerform would run only as many as there are
            // cores), all released at once.
            let gate = DispatchSemaphore(value: 0), group = DispatchGroup()
            let startBox = LockedStart()
            for i in 0..<processes {
                group.enter()
                Thread.detachNewThread {
                    gate.wait()
                    let process = AgentProcess(owner: "bench", drivers: AgentDriverSet(cpu: "openai", tools: ["calc.*"]), budgets: AgentBudgets(maxSteps: steps))
                    let result = AgentLoop(kernel: kernel, process: process, options: runOptions).run(task: "scenario:tool process \(i)")
                    results.add(result, at: nowNs() - startBox.start)
                    group.leave()
                }
            }
            usleep(200_000)   // let every thread reach the gate
            startBox.start = nowNs()
            for _ in 0..<processes { gate.signal() }
            group.wait()
            let wall = Double(nowNs() - startBox.start)
            let all = results.all
            let completedSteps = all.reduce(0) { $0 + $1.result.steps.count }
            let waits = all.flatMap { $0.result.steps.map { Double($0.queueNanoseconds) } }.sorted()
            let finish = all.map(\.finishedNs).sorted()
            let ok = all.filter { $0.result.steps.count == steps }.count
            rows += "| \(slots) | \(ok)/\(processes) | \(completedSteps) | \(format(wall)) | \(String(format: "%.0f", Double(completedSteps) / (wall / 1e9))) | \(format(percentile(waits, 0.5))) | \(format(percentile(waits, 0.99))) | \(format(finish.first ?? 0)) – \(format(finish.last ?? 0)) |\n"
        }
        return """
        | cpu slots | processes that ran all \(steps) steps | model calls | wall time | calls/s | queue wait p50 | queue wait p99 | processes finished between |
        |---:|---:|---:|---:|---:|---:|---:|---|
        \(rows)
        - \(processes) agent processes at once (a thread each, released together), each \(steps) model turns (two tool calls and a last turn) through the openai driver to \
        a local fake model server (Tests/Fixtures/models/server.py: Python's ThreadingHTTPServer, ~1 ms a reply) and calc, on \(ProcessInfo.processInfo.activeProcessorCount) cores. \
        With 1 slot every model call waits its turn round-robin; more slots let the server's own concurrency show. \
        No process starves: every one ran all its steps, and the last finished within the spread shown.

        """
    }
}

private final class LockedStart: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    var start: UInt64 {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

private final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(result: AgentRunResult, finishedNs: Double)] = []
    func add(_ r: AgentRunResult, at ns: UInt64) { lock.lock(); items.append((r, Double(ns))); lock.unlock() }
    var all: [(result: AgentRunResult, finishedNs: Double)] { lock.lock(); defer { lock.unlock() }; return items }
}
