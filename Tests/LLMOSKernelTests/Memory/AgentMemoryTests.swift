import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The agent loop with a memory driver, with retrieval from storage, and with tools.search:
// the scripted cpu, the real memory drivers and the real sqlite store, all loaded with dlopen.

/// A kernel with scripted (replaying `turns`), calc, text, the memory drivers and sqlite over a temporary store.
func agentStore(_ turns: [JSONValue], contextLength: Int = 8192, extraGrants: [String] = [], deny: [String] = [],
                onEnd: String = "error") throws -> StorageHarness {
    let dir = Paths.temporaryDirectory("agent-memory")
    let workspace = FilePath.resolved(dir) ?? dir
    return try StorageHarness(
        .sqlite, workspace: workspace,
        grants: StorageDriverUnderTest.sqlite.grants(workspace) + ["storage.read=*", "storage.write=*"] + extraGrants, deny: deny,
        alsoLoad: ["scripted", "calc", "text", "window", "compact", "paged"].map { Paths.manifests + "/\($0).yaml" },
        otherConfig: ["scripted": ["turns": .array(turns), "context_length": .int(Int64(contextLength)), "on_end": .string(onEnd)]])
}

func agentLoop(_ kernel: Kernel, memory: String = "window", storage: String? = nil, tools: [String] = ["*"]) -> AgentLoop {
    var options = AgentOptions()
    options.now = { AgentBench.monday }
    options.timeZone = TimeZone(identifier: "UTC")!
    let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "scripted", tools: tools, memory: memory, storage: storage))
    return AgentLoop(kernel: kernel, process: process, options: options)
}

@Suite("agent: memory drivers, retrieval, tools.search") struct AgentMemoryTests {
    /// A conversation longer than the context, through the paged memory: the loop's requests
    /// stay within the budget, and the early fact comes back when a later task asks for it.
    @Test func aLongConversationPagesOutAndRecalls() throws {
        let filler = String(repeating: "lorem ipsum dolor ", count: 30)
        var turns: [JSONValue] = (0..<30).map { _ in ["text": .string(filler)] }
        // The model's own page fault: it recalls, and the script checks the result it read.
        turns.append(["tool_calls": [["name": "paged.recall", "arguments": ["query": "launch code of project Falcon"]]]])
        turns.append(["expect": "ZEBRA-42", "text": "The launch code was ZEBRA-42."])
        let harness = try agentStore(turns, contextLength: 2048,
                                     extraGrants: ["tool.call=sqlite.put", "tool.call=sqlite.search", "tool.call=paged.recall", "tool.call=paged.remember"])
        defer { harness.removeWorkspace() }
        let loop = agentLoop(harness.kernel, memory: "paged", tools: ["calc.*"])
        #expect(loop.memory?.name == "paged")
        #expect(loop.run(task: "Note this: the launch code of project Falcon is ZEBRA-42.").stopReason == .completed)
        for i in 1..<30 {
            let result = loop.run(task: "Tell me something about topic \(i). " + filler)
            #expect(result.stopReason == .completed, "\(result.summary)")
            for step in result.steps { #expect(step.request.promptTokens <= step.request.promptLimit) }
        }
        // The fact is long gone from the window: the model recalls it (and the script checks what it read).
        let last = loop.run(task: "What was the launch code of project Falcon?")
        #expect(last.stopReason == .completed, "\(last.summary)")
        #expect(last.allCalls.first?.outcome == .ok)
        let stats = try JSON.parse(try harness.kernel.call("paged.stats", input: ["conversation": .string("agent-\(loop.process.pid)")] as JSONValue).output)
        #expect((stats["paged_out"]?.int64Value ?? 0) > 20, "\(stats)")
    }

    /// The compact memory summarises through the process's own cpu: the summary request is a
    /// cpu complete like the loop's, and the loop goes on within its budget.
    @Test func compactSummarisesThroughTheProcessCPU() throws {
        let filler = String(repeating: "alpha beta gamma ", count: 40)
        // Every reply, and every summary, is this text: the order of the loop's and the memory's requests does not matter.
        let harness = try agentStore([["text": "Noted: alpha, beta and gamma."]], contextLength: 2048, extraGrants: ["tool.call=scripted.complete"],
                                     onEnd: "repeat_last")
        defer { harness.removeWorkspace() }
        let loop = agentLoop(harness.kernel, memory: "compact", tools: ["calc.*"])
        var results: [AgentRunResult] = []
        for i in 0..<13 { results.append(loop.run(task: "part \(i): " + filler)) }
        for result in results {
            #expect(result.stopReason == .completed, "\(result.summary)")
            for step in result.steps { #expect(step.request.promptTokens <= step.request.promptLimit) }
        }
        let stats = try JSON.parse(try harness.kernel.call("compact.stats", input: ["conversation": .string("agent-\(loop.process.pid)")] as JSONValue).output)
        #expect((stats["evicted"]?.int64Value ?? 0) > 0, "\(stats)")
        #expect((stats["summary_tokens"]?.int64Value ?? 0) > 0, "a summary took their place: \(stats)")
    }

    /// When compaction cannot reach the cpu (here the policy does not let the memory driver
    /// call it), the oldest messages are left out instead and the step says so.
    @Test func aFailedCompactionIsAStepNote() throws {
        let filler = String(repeating: "alpha beta gamma ", count: 40)
        let harness = try agentStore([["text": "Noted."]], contextLength: 2048, deny: ["driver:compact/tool.call=scripted.complete"],
                                     onEnd: "repeat_last")
        defer { harness.removeWorkspace() }
        let loop = agentLoop(harness.kernel, memory: "compact", tools: ["calc.*"])
        var notes: [String] = []
        for i in 0..<13 {
            let result = loop.run(task: "part \(i): " + filler)
            #expect(result.stopReason == .completed, "\(result.summary)")
            notes += result.steps.flatMap(\.notes)
        }
        #expect(notes.contains { $0.hasPrefix("compact: compaction failed") && $0.contains("left out instead") }, "\(notes)")
    }

    /// --storage: passages for the task go into the system message with their sources, the
    /// result lists them, and the model can search the store itself.
    @Test func retrievesCitedPassagesFromStorage() throws {
        let harness = try agentStore([
            ["tool_calls": [["name": "sqlite.search", "arguments": ["collection": "docs", "mode": "text", "query": "checkpoint"]]]],
            ["expect": "checkpoint", "text": "WAL mode is set with PRAGMA journal_mode=WAL [1]."],
        ], extraGrants: ["tool.call=sqlite.search"])
        defer { harness.removeWorkspace() }
        try harness.call("put", ["collection": "docs", "documents": [
            ["text": "Set WAL mode with PRAGMA journal_mode=WAL; readers then do not block the writer.", "metadata": ["source": "guide/wal.md:1-4"]],
            ["text": "A checkpoint moves pages from the WAL file back into the database.", "metadata": ["source": "guide/wal.md:5-9"]],
            ["text": "Paris is the capital of France.", "metadata": ["source": "atlas/france.md:1-1"]],
        ]])
        let loop = agentLoop(harness.kernel, storage: "sqlite", tools: ["calc.*"])
        let result = loop.run(task: "How do I turn on WAL mode in SQLite?")
        #expect(result.stopReason == .completed, "\(result.summary)")
        #expect(result.sources.first?.source == "guide/wal.md:1-4", "\(result.sources)")
        let system = result.messages.first?["content"]?.stringValue ?? ""
        #expect(system.contains("[1] (guide/wal.md:1-4) Set WAL mode"), "\(system)")
        #expect(system.contains("cite them by number"))
        #expect(result.allCalls.first?.outcome == .ok, "the model's own storage search: \(result.summary)")
        #expect(result.json["sources"]?.arrayValue?.count == result.sources.count)
    }

    /// Retrieval is a mediated call: with storage.read denied, nothing is retrieved, the run
    /// goes on, and the reason is in the result.
    @Test func retrievalDeniedByPolicyIsSaidNotFatal() throws {
        let dir = Paths.temporaryDirectory("agent-memory")
        let workspace = FilePath.resolved(dir) ?? dir
        let harness = try StorageHarness(.sqlite, workspace: workspace, grants: StorageDriverUnderTest.sqlite.grants(workspace) + ["storage.write=*"],
                                         alsoLoad: ["scripted", "calc"].map { Paths.manifests + "/\($0).yaml" },
                                         otherConfig: ["scripted": ["turns": [["text": "an answer"]]]])
        defer { harness.removeWorkspace() }
        try harness.call("put", ["collection": "docs", "documents": [["text": "secret passage"]]])
        let result = agentLoop(harness.kernel, storage: "sqlite", tools: ["calc.*"]).run(task: "secret?")
        #expect(result.stopReason == .completed)
        #expect(result.sources.isEmpty)
        #expect(result.retrievalNote?.contains("storage.read") == true, "\(result.retrievalNote ?? "nil")")
    }

    /// With many tools the model is shown a few and tools.search; what it finds is shown from the next request on.
    @Test func toolsSearchShowsMoreTools() throws {
        let bench = try AgentBench([
            ["tool_calls": [["name": "tools.search", "arguments": ["query": "reverse a text"]]]],
            ["expect": "text.reverse", "tool_calls": [["name": "text.reverse", "arguments": ["text": "stressed"]]]],
            ["expect": "desserts", "text": "desserts"],
        ], contextLength: 1024)
        let result = bench.run("What is 6 * 7?")
        #expect(result.stopReason == .completed, "\(result.summary)")
        let first = try #require(result.steps.first?.request)
        #expect(first.tools < first.availableTools)
        #expect(result.allCalls.first?.content.contains("text.reverse") == true, "\(result.summary)")
        #expect(result.steps[1].request.tools > first.tools, "the found tool is shown from the next request on")
    }

    /// A memory named but not loaded stops the run with memory_error, naming it.
    @Test func anUnknownMemoryIsAClearStop() throws {
        let bench = try AgentBench([["text": "hi"]])
        var options = AgentOptions()
        options.now = { AgentBench.monday }
        let process = AgentProcess(owner: "test", drivers: AgentDriverSet(cpu: "scripted", memory: "nosuch"))
        let result = AgentLoop(kernel: bench.kernel, process: process, options: options).run(task: "hi")
        #expect(result.stopReason == .memoryError)
        #expect(result.detail.contains("nosuch"))
    }
}
