import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The memory drivers (Plugins/memory-*), loaded with dlopen like the host does, and the
// kernel's built-in window: the rules every memory keeps (the budget, tool calls with their
// results), compaction through a real cpu driver call, paging through the real sqlite store.

/// A kernel with the memory drivers, the scripted cpu (replaying `summaries`, the last one
/// again and again) and sqlite over a temporary store, with the grants paged and compact need.
func memoryHarness(summaries: [String] = ["summary of the earlier part"], contextLength: Int = 8192,
                   compact: JSONObject = [:], paged: JSONObject = [:]) throws -> StorageHarness {
    let turns = JSONValue.array(summaries.map { ["text": .string($0)] })
    let dir = Paths.temporaryDirectory("memory")
    let workspace = FilePath.resolved(dir) ?? dir
    return try StorageHarness(
        .sqlite, workspace: workspace,
        grants: StorageDriverUnderTest.sqlite.grants(workspace)
            + ["storage.read=*", "storage.write=*", "tool.call=sqlite.put", "tool.call=sqlite.search", "tool.call=scripted.complete"],
        alsoLoad: ["window", "compact", "paged", "scripted"].map { Paths.manifests + "/\($0).yaml" },
        otherConfig: ["scripted": ["turns": turns, "on_end": "repeat_last", "context_length": .int(Int64(contextLength))],
                      "compact": .object(compact), "paged": .object(paged)])
}

/// Random conversations: user turns, replies, and assistant tool calls with their results
/// (sometimes several calls in one turn), of random sizes.
struct ConversationGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }

    mutating func next(_ bound: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(bound))
    }

    mutating func text(_ maxWords: Int) -> String {
        let words = ["wal", "index", "checkpoint", "vector", "budget", "token", "paris", "kernel", "driver", "summary", "lorem", "ipsum"]
        return (0..<(1 + next(maxWords))).map { _ in words[next(words.count)] }.joined(separator: " ")
    }

    /// The next few messages: one unit (a user turn, a reply, or a call with its results).
    mutating func unit(_ n: Int) -> [JSONValue] {
        switch next(4) {
        case 0: return [["role": "user", "content": .string(text(60))]]
        case 1: return [["role": "assistant", "content": .string(text(200))]]
        default:
            let calls = 1 + next(3)
            let ids = (0..<calls).map { "call_\(n)_\($0)" }
            var unit: [JSONValue] = [["role": "assistant", "content": .null,
                                      "tool_calls": .array(ids.map { ["id": .string($0), "name": "calc.add", "arguments": ["a": 1, "b": 2]] })]]
            for id in ids { unit.append(["role": "tool", "tool_call_id": .string(id), "content": .string(text(next(5) == 0 ? 900 : 80))]) }
            return unit
        }
    }
}

/// The rules of memory.schema.json assemble_output, checked on one result.
func checkAssembly(_ messages: [JSONValue], system: String, budget: Int, tokens: Int, label: String) {
    #expect(tokens <= budget, "\(label): \(tokens) tokens over the budget of \(budget)")
    let estimated = messages.reduce(0) { $0 + ContextWindow.estimate(message: $1) }
    #expect(estimated <= budget, "\(label): the messages come to \(estimated) tokens by the shared estimate, over \(budget)")
    #expect(messages.first?["role"]?.stringValue == "system", "\(label): the system message is first")
    #expect(messages.first?["content"]?.stringValue?.hasPrefix(system) == true, "\(label): the system prompt is kept")
    #expect(messages.dropFirst().first?["role"]?.stringValue != "tool", "\(label): the context starts with a tool result")
    // Every tool result has its call in the context, and every call its results.
    var open = Set<String>()
    for message in messages {
        switch message["role"]?.stringValue {
        case "assistant":
            #expect(open.isEmpty, "\(label): calls \(open) lost their results")
            open = Set((message["tool_calls"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        case "tool":
            let id = message["tool_call_id"]?.stringValue ?? ""
            #expect(open.remove(id) != nil, "\(label): the result of \(id) is without its call")
        default:
            #expect(open.isEmpty, "\(label): calls \(open) lost their results")
            open = []
        }
    }
    #expect(open.isEmpty, "\(label): calls \(open) lost their results")
}

@Suite("memory drivers") struct MemoryDriverTests {
    /// A property test: over 400 random messages, every assembly of every memory stays
    /// within its budget and keeps each tool call with its results, the task, and the newest message.
    @Test(arguments: ["builtin", "window", "compact", "paged"])
    func neverOverTheBudgetNorSplitsACall(_ memory: String) throws {
        let harness = try memoryHarness()
        defer { harness.removeWorkspace() }
        let kernel = harness.kernel
        let memoryObject: any ContextMemory = memory == "builtin" ? BuiltInWindowMemory()
            : DriverMemory(kernel: kernel, driver: memory, conversation: "prop-\(memory)")
        var generator = ConversationGenerator(seed: 0x5eed + UInt64(memory.count))
        let system = "You are a test."
        var options = CallOptions()
        options.agent = 1
        let taskID = try memoryObject.append(["role": "user", "content": "the task: keep this"], options: options)
        var appended = 1, checks = 0
        while appended < 400 {
            let unit = generator.unit(appended)
            for message in unit { _ = try memoryObject.append(message, options: options) }
            appended += unit.count
            guard generator.next(3) == 0 else { continue }
            let budget = 300 + generator.next(2500)
            var request = ContextRequest(system: ["role": "system", "content": .string(system)], limitTokens: budget)
            request.pinned = [taskID]
            request.cpu = "scripted"
            request.query = "vector budget"
            let assembled = try memoryObject.assemble(request, options: options)
            if !assembled.fits { continue }   // the task and the newest unit alone are over a tiny budget: refused, never sent
            checkAssembly(assembled.messages, system: system, budget: budget, tokens: assembled.tokens, label: "\(memory) at \(appended), budget \(budget)")
            #expect(assembled.messages.contains { $0["content"]?.stringValue == "the task: keep this" }, "\(memory): the pinned task is kept")
            // The newest message is last (a long tool result may be shortened to fit, never left out).
            let last = assembled.messages.last, newest = unit.last
            #expect(last?["role"] == newest?["role"] && last?["tool_call_id"] == newest?["tool_call_id"]
                    && (last?["content"]?.stringValue?.prefix(40)).map(String.init) == (newest?["content"]?.stringValue?.prefix(40)).map(String.init),
                    "\(memory): the newest message is last")
            checks += 1
        }
        #expect(checks > 20)
    }

    @Test func compactSummarisesWithTheCPUAndKeepsFacts() throws {
        let harness = try memoryHarness(summaries: ["The user asked about WAL mode; the answer was PRAGMA journal_mode=WAL."])
        defer { harness.removeWorkspace() }
        let memory = DriverMemory(kernel: harness.kernel, driver: "compact", conversation: "c1")
        _ = try harness.kernel.call("compact.remember", input: ["conversation": "c1", "fact": "The user's name is Ada."] as JSONValue)
        for i in 0..<60 {
            _ = try memory.append(["role": i % 2 == 0 ? "user" : "assistant", "content": .string("message \(i) " + String(repeating: "words ", count: 40))], options: CallOptions())
        }
        var request = ContextRequest(system: ["role": "system", "content": "System."], limitTokens: 2000)
        request.cpu = "scripted"
        let assembled = try memory.assemble(request, options: CallOptions())
        let system = assembled.messages.first?["content"]?.stringValue ?? ""
        #expect(system.contains("Summary of the earlier conversation:\nThe user asked about WAL mode"))
        #expect(system.contains("The user's name is Ada."), "a remembered fact stays")
        #expect(assembled.tokens <= 2000)
        #expect(assembled.messages.last?["content"]?.stringValue?.hasPrefix("message 59") == true)
        let stats = try JSON.parse(try harness.kernel.call("compact.stats", input: ["conversation": "c1"] as JSONValue).output)
        #expect((stats["evicted"]?.int64Value ?? 0) > 0, "the summarised messages are gone from the live set")
    }

    /// When one summary request would not fit, the part is summarised in pieces and then the pieces together.
    @Test func compactSummarisesInPiecesWhenTheRequestWouldOverflow() throws {
        let harness = try memoryHarness(summaries: ["piece summary"], compact: ["piece_tokens": 200, "summary_tokens": 32])
        defer { harness.removeWorkspace() }
        for i in 0..<40 {
            _ = try harness.kernel.call("compact.append", input: ["conversation": "c2", "message": ["role": "user", "content": .string("turn \(i) " + String(repeating: "lorem ", count: 60))]] as JSONValue)
        }
        let output = try JSON.parse(try harness.kernel.call("compact.assemble", input: ["conversation": "c2", "budget_tokens": 1500, "cpu": "scripted"] as JSONValue).output)
        #expect((output["summary_requests"]?.int64Value ?? 0) > 2, "several pieces, then their summaries together: \(output["summary_requests"] ?? .null)")
        #expect((output["tokens"]?.int64Value ?? .max) <= 1500)
    }

    /// The cpu failing is not data loss: nothing is summarised away, the window leaves the oldest out and says so.
    @Test func compactWithoutAWorkingCPUFallsBackToTheWindow() throws {
        let harness = try memoryHarness()
        defer { harness.removeWorkspace() }
        for i in 0..<40 {
            _ = try harness.kernel.call("compact.append", input: ["conversation": "c3", "message": ["role": "user", "content": .string("turn \(i) " + String(repeating: "lorem ", count: 60))]] as JSONValue)
        }
        let output = try JSON.parse(try harness.kernel.call("compact.assemble", input: ["conversation": "c3", "budget_tokens": 1500, "cpu": "nosuchcpu"] as JSONValue).output)
        let warning = output["warnings"]?.arrayValue?.first?.stringValue ?? ""
        #expect(warning.contains("compaction failed"), "\(warning)")
        let stats = try JSON.parse(try harness.kernel.call("compact.stats", input: ["conversation": "c3"] as JSONValue).output)
        #expect(stats["messages"]?.int64Value == 40, "every message is still there")
    }

    /// Paging: the oldest messages go to sqlite, the context gets an index of them, and a
    /// question about them is a page fault that recall serves — by the task itself and by the model's call.
    @Test func pagedMessagesRoundTripThroughStorage() throws {
        let harness = try memoryHarness()
        defer { harness.removeWorkspace() }
        let memory = DriverMemory(kernel: harness.kernel, driver: "paged", conversation: "p1")
        #expect(memory.modelTools == ["paged.recall", "paged.remember"])
        _ = try memory.append(["role": "user", "content": "Remember this: the launch code is ZEBRA-42 for the Falcon project."], options: CallOptions())
        for i in 0..<120 {
            _ = try memory.append(["role": i % 2 == 0 ? "user" : "assistant", "content": .string("filler \(i) " + String(repeating: "lorem ipsum ", count: 20))], options: CallOptions())
        }
        var request = ContextRequest(system: ["role": "system", "content": "System."], limitTokens: 1500)
        request.query = "What was the launch code of the Falcon project?"
        let assembled = try memory.assemble(request, options: CallOptions())
        let system = assembled.messages.first?["content"]?.stringValue ?? ""
        #expect(system.contains("Paged out to storage:"), "an index of what is out there")
        #expect(system.contains("ZEBRA-42"), "the task's page fault brought the message back: \(system)")
        #expect(!assembled.messages.dropFirst().contains { $0["content"]?.stringValue?.contains("ZEBRA") == true }, "not as a live message")
        // In sqlite, as documents of the memory collection.
        let stored = try harness.call("search", ["collection": "memory", "mode": "text", "query": "launch code falcon", "filter": ["conversation": "p1"]])
        #expect(stored["results"]?.arrayValue?.first?["text"]?.stringValue?.contains("ZEBRA-42") == true)
        // The model's own recall, and a fact it keeps.
        let recalled = try JSON.parse(try harness.kernel.call("paged.recall", input: ["conversation": "p1", "query": "launch code"] as JSONValue).output)
        #expect(recalled["messages"]?.arrayValue?.first?["content"]?.stringValue?.contains("ZEBRA-42") == true)
        _ = try harness.kernel.call("paged.remember", input: ["conversation": "p1", "fact": "Falcon launches on Friday."] as JSONValue)
        let again = try memory.assemble(request, options: CallOptions())
        #expect(again.messages.first?["content"]?.stringValue?.contains("Falcon launches on Friday.") == true)
        let stats = try JSON.parse(try harness.kernel.call("paged.stats", input: ["conversation": "p1"] as JSONValue).output)
        #expect((stats["paged_out"]?.int64Value ?? 0) > 50)
    }

    /// Paging with its storage denied loses nothing: the messages stay live and the window drops the oldest.
    @Test func pagedWithoutStorageKeepsEverything() throws {
        let dir = Paths.temporaryDirectory("memory")
        let workspace = FilePath.resolved(dir) ?? dir
        let harness = try StorageHarness(.sqlite, workspace: workspace, grants: StorageDriverUnderTest.sqlite.grants(workspace) + ["storage.read=*"],
                                         alsoLoad: [Paths.manifests + "/paged.yaml"])
        defer { harness.removeWorkspace() }
        for i in 0..<60 {
            _ = try harness.kernel.call("paged.append", input: ["conversation": "p2", "message": ["role": "user", "content": .string("turn \(i) " + String(repeating: "lorem ", count: 60))]] as JSONValue)
        }
        let output = try JSON.parse(try harness.kernel.call("paged.assemble", input: ["conversation": "p2", "budget_tokens": 1000] as JSONValue).output)
        #expect(output["warnings"]?.arrayValue?.first?.stringValue?.contains("paging out failed") == true, "\(output["warnings"] ?? .null)")
        let stats = try JSON.parse(try harness.kernel.call("paged.stats", input: ["conversation": "p2"] as JSONValue).output)
        #expect(stats["messages"]?.int64Value == 60)
    }

    /// An old pinned task (a long task of many tool calls) is stepped over, not a wall: what
    /// came after it is still summarised or paged out, and the task stays.
    @Test(arguments: ["compact", "paged"])
    func anOldPinnedTaskDoesNotStopCompaction(_ driver: String) throws {
        let harness = try memoryHarness()
        defer { harness.removeWorkspace() }
        let memory = DriverMemory(kernel: harness.kernel, driver: driver, conversation: "pin")
        let task = try memory.append(["role": "user", "content": "The task: add up many numbers."], options: CallOptions())
        for i in 0..<80 {
            _ = try memory.append(["role": "assistant", "content": .null, "tool_calls": [["id": .string("c\(i)"), "name": "calc.add", "arguments": ["a": .int(Int64(i)), "b": 1]]]], options: CallOptions())
            _ = try memory.append(["role": "tool", "tool_call_id": .string("c\(i)"), "content": .string("{\"result\": \(i + 1)} " + String(repeating: "pad ", count: 30))], options: CallOptions())
        }
        var request = ContextRequest(system: ["role": "system", "content": "System."], limitTokens: 1200)
        request.pinned = [task]
        request.cpu = "scripted"
        let assembled = try memory.assemble(request, options: CallOptions())
        checkAssembly(assembled.messages, system: "System.", budget: 1200, tokens: assembled.tokens, label: driver)
        #expect(assembled.messages.dropFirst().first?["content"]?.stringValue == "The task: add up many numbers.")
        let stats = try JSON.parse(try harness.kernel.call("\(driver).stats", input: ["conversation": "pin"] as JSONValue).output)
        #expect((stats["evicted"]?.int64Value ?? 0) > 50, "\(driver): \(stats)")
    }

    @Test func badInputsNameTheField() throws {
        let harness = try memoryHarness()
        defer { harness.removeWorkspace() }
        for driver in ["window", "compact", "paged"] {
            let noBudget = expectError({ try harness.kernel.call("\(driver).assemble", input: ["conversation": "x"] as JSONValue) })
            #expect(noBudget.message.contains("budget_tokens"), "\(noBudget.message)")
            let orphan = expectError({ try harness.kernel.call("\(driver).append", input: ["message": ["role": "tool", "content": "x"]] as JSONValue) })
            #expect(orphan.message.contains("tool_call_id"), "\(orphan.message)")
        }
        // A system prompt over the budget is resource_exhausted, as the contract says.
        _ = try harness.kernel.call("window.append", input: ["conversation": "big", "message": ["role": "user", "content": "hi"]] as JSONValue)
        let over = expectError({ try harness.kernel.call("window.assemble", input: ["conversation": "big", "budget_tokens": 10, "system": .string(String(repeating: "x", count: 300))] as JSONValue) })
        #expect(over.code == .resourceExhausted)
    }

    /// Assembly costs what it keeps, not the history: 100,000 messages are fine (the
    /// benchmark measures the time; this checks the result).
    @Test func assemblesFromAHundredThousandMessages() throws {
        let memory = BuiltInWindowMemory()
        for i in 0..<100_000 {
            _ = try memory.append(["role": i % 2 == 0 ? "user" : "assistant", "content": .string("message \(i) with some words in it")], options: CallOptions())
        }
        let assembled = try memory.assemble(ContextRequest(system: ["role": "system", "content": "S"], limitTokens: 3000), options: CallOptions())
        #expect(assembled.tokens <= 3000)
        #expect(assembled.dropped > 99_000)
        #expect(assembled.messages.last?["content"]?.stringValue == "message 99999 with some words in it")
    }
}
