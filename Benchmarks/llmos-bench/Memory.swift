// The memory benchmark (issue 7): assembling the context from a 100,000-message history,
// with the kernel's built-in window and with each memory driver through the kernel (a
// mediated, audited call each), the same conversation for all. Goal: ≤ 5 ms p50.
import Foundation
import LLMOSJSON
import LLMOSKernel

struct MemoryBenchmark {
    var markdown: String

    func write(into target: String) {
        writeBenchmarkSection("memory", heading: "Memory: assembling the context from a 100,000-message history", markdown: markdown, into: target)
    }

    /// A conversation of `count` messages: user turns, replies, and tool calls with their results.
    static func history(_ count: Int) -> [JSONValue] {
        var messages: [JSONValue] = []
        var i = 0
        while messages.count < count {
            switch i % 3 {
            case 0: messages.append(["role": "user", "content": .string("Question \(i): what does the checkpoint of a WAL database do, and when does it run?")])
            case 1:
                messages.append(["role": "assistant", "content": .null,
                                 "tool_calls": [["id": .string("call_\(i)"), "name": "calc.add", "arguments": ["a": .int(Int64(i)), "b": 2]]]])
                messages.append(["role": "tool", "tool_call_id": .string("call_\(i)"), "name": "calc.add", "content": .string("{\"result\":\(i + 2)}")])
            default: messages.append(["role": "assistant", "content": .string("Answer \(i): a checkpoint copies pages from the WAL back into the database file; it runs when the WAL reaches 1000 pages.")])
            }
            i += 1
        }
        return Array(messages.prefix(count))
    }

    static func run(buildDir: String, repo: String, messages count: Int = 100_000) -> MemoryBenchmark {
        let history = Self.history(count)
        let workspace = NSTemporaryDirectory() + "llmos-bench-memory-\(getpid())"
        try? FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let context = PolicyContext(workspace: workspace)
        let grants = ["fs.read=\(workspace)/memory.sqlite3*", "fs.write=\(workspace)/memory.sqlite3*", "storage.read=*", "storage.write=*"]
        let rules = grants.map { try! PolicyParser.rule(fromFlag: $0, action: .allow, context: context) }
        var configuration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        configuration.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), context: context)
        configuration.workspace = workspace
        configuration.driverConfig = ["sqlite": ["path": "memory.sqlite3", "synchronous": "normal"],
                                      "scripted": ["turns": [["text": "A summary of the earlier conversation."]], "on_end": "repeat_last"]]
        let kernel = Kernel(configuration: configuration)
        for name in ["scripted", "sqlite", "window", "compact", "paged"] { try! kernel.load(manifestAt: repo + "/manifests/\(name).yaml") }

        var rows: [String] = []
        let system: JSONValue = ["role": "system", "content": "You are a helpful assistant with tools."]
        let limit = 3072   // a 4,096-token model less a 1,024-token reply
        for name in ["built-in window", "window", "compact", "paged"] {
            let memory: any ContextMemory = name == "built-in window" ? BuiltInWindowMemory()
                : DriverMemory(kernel: kernel, driver: name, conversation: "bench-\(name)")
            let appendStart = DispatchTime.now().uptimeNanoseconds
            var options = CallOptions()
            options.agent = 1
            var taskID = ""
            for (i, message) in history.enumerated() {
                let id = try! memory.append(message, options: options)
                if i == 0 { taskID = id }
            }
            let appendNs = Double(DispatchTime.now().uptimeNanoseconds - appendStart) / Double(count)
            var request = ContextRequest(system: system, limitTokens: limit)
            request.pinned = [taskID]
            request.cpu = "scripted"
            request.query = "When does the checkpoint run?"
            // The first assembly compacts or pages the whole history out: timed apart.
            let firstStart = DispatchTime.now().uptimeNanoseconds
            let first = try! memory.assemble(request, options: options)
            let firstMs = Double(DispatchTime.now().uptimeNanoseconds - firstStart) / 1e6
            var samples: [Double] = []
            for i in 0..<200 {
                if i % 10 == 0 { _ = try! memory.append(["role": "user", "content": .string("One more question \(i).")], options: options) }
                let start = DispatchTime.now().uptimeNanoseconds
                let assembled = try! memory.assemble(request, options: options)
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                precondition(assembled.fits && assembled.tokens <= limit, "\(name): over the budget")
            }
            samples.sort()
            let p50 = AgentBenchmark.percentile(samples, 0.5), p99 = AgentBenchmark.percentile(samples, 0.99)
            rows.append(String(format: "| %@ | %.1f µs | %.1f ms | %.3f ms | %.3f ms | %d |", name, appendNs / 1000, firstMs, p50, p99, first.messages.count))
            print(rows.last!)
        }
        var text = "A \(count)-message history (user turns, replies, tool calls with their results), a \(limit)-token budget; "
        text += "200 assemblies after the first, with a new message every tenth. The drivers are called through the kernel "
        text += "(`kernel.call`: policy check and audit each); compact summarises with the scripted cpu (the model's time is not the memory's), "
        text += "paged pages out to sqlite (synchronous=normal). Goal: ≤ 5 ms p50.\n\n"
        text += "| memory | append (per message) | first assembly (compacts / pages out the history) | assemble p50 | assemble p99 | messages sent |\n|---|---|---|---|---|---|\n"
        text += rows.joined(separator: "\n") + "\n"
        return MemoryBenchmark(markdown: text)
    }
}
