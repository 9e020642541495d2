// The paged memory driver (class memory), after MemGPT's virtual context: the context is
// RAM and a storage driver is disk. When the conversation no longer fits, its oldest
// messages are paged out — put into a storage collection through the kernel's tool.call —
// and the context gets a short index of what is out there. The model pages them back in
// with `paged.recall(query)` (and keeps facts with `paged.remember(fact)`); the current
// task also recalls the paged-out messages that match it, before the model asks: a page
// fault served by recall. Contract: sdk/schemas/classes/memory.schema.json; docs/MEMORY.md.
import LLMOSContext
import LLMOSDriverSDK
import LLMOSJSON
import MemoryKit

struct PagedConfiguration {
    /// The storage driver pages go to, and its collection.
    var storage = "sqlite"
    var collection = "memory"
    /// Page out down to this share of the budget, so that not every turn pages.
    var target = 0.7
    /// Paged-out messages recalled for the current task by itself (0: none).
    var autoRecall = 2

    init(_ config: JSONValue) throws(DriverError) {
        if let v = config["storage"] {
            guard let s = v.stringValue, !s.isEmpty else { throw .invalidArgument("paged configuration: storage must name a storage driver, e.g. \"sqlite\"") }
            storage = s
        }
        if let v = config["collection"] {
            guard let s = v.stringValue, !s.isEmpty else { throw .invalidArgument("paged configuration: collection must be a collection name") }
            collection = s
        }
        if let v = config["target"] {
            guard let d = v.doubleValue, d > 0, d < 1 else { throw .invalidArgument("paged configuration: target must be a number in (0, 1)") }
            target = d
        }
        if let v = config["auto_recall"] {
            guard let n = v.int64Value, n >= 0, n <= 20 else { throw .invalidArgument("paged configuration: auto_recall must be an integer from 0 to 20") }
            autoRecall = Int(n)
        }
    }
}

struct PagedMemoryDriver: MemoryDriver {
    static let name = "paged"
    static let version = "1.0.0"

    let table = ConversationTable()
    let configuration: PagedConfiguration

    init(context: DriverContext) throws {
        configuration = try PagedConfiguration((try? JSON.parse(context.config)) ?? .object([:]))
    }

    // MARK: Storage, through the kernel

    func storage(_ operation: String, _ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let tool = "\(configuration.storage).\(operation)"
        let answer: String
        do { answer = try call.syscall("tool.call", (["tool": .string(tool), "input": input] as JSONValue).serialized()) } catch {
            throw DriverError(error.code, "\(tool) (the paged memory's storage) failed: \(error.message)")
        }
        guard let output = try? JSON.parse(answer) else { throw .invalidOutput("\(tool) returned no JSON") }
        return output
    }

    func pageOut(_ messages: [(id: Int, message: JSONValue)], _ conversation: Conversation, _ call: CallContext) throws(DriverError) {
        guard !messages.isEmpty else { return }
        let documents: [JSONValue] = messages.map { item in
            ["id": .string("\(conversation.name):\(item.id)"), "text": .string(MessageText.render(item.message)),
             "metadata": ["conversation": .string(conversation.name), "message_id": .int(Int64(item.id)), "kind": "message",
                          "role": item.message["role"] ?? .null, "message": .string(item.message.serialized())]]
        }
        for start in stride(from: 0, to: documents.count, by: 1000) {
            _ = try storage("put", ["collection": .string(configuration.collection),
                                    "documents": .array(Array(documents[start..<min(start + 1000, documents.count)]))], call)
        }
        conversation.pagedOut += messages.count
        let low = min(conversation.pagedIDs?.lowerBound ?? Int.max, messages.first!.id)
        let high = max(conversation.pagedIDs?.upperBound ?? Int.min, messages.last!.id)
        conversation.pagedIDs = low...high
        for item in messages {
            for word in MessageText.words(item.message["content"]?.stringValue ?? "")
            where word.count >= 4 && !word.allSatisfy(\.isNumber) && !Self.common.contains(word) {
                conversation.pagedWords[word, default: 0] += 1
            }
        }
        // Bounded: past 4,096 distinct words, those seen once are forgotten.
        if conversation.pagedWords.count > 4096 { conversation.pagedWords = conversation.pagedWords.filter { $0.value > 1 } }
        conversation.pagedTopWords = conversation.pagedWords.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(12).map(\.key)
    }

    static let common: Set<String> = ["that", "this", "with", "from", "have", "what", "your", "will", "they", "them", "then",
                                      "there", "their", "about", "would", "could", "should", "which", "when", "were", "been",
                                      "also", "into", "some", "than", "only", "just", "like", "more", "tool", "user", "assistant"]

    /// Paged-out messages of `conversation` matching `query`, best first.
    func searchPages(_ query: String, _ conversation: String, limit: Int, _ call: CallContext) throws(DriverError) -> [JSONValue] {
        let output = try storage("search", ["collection": .string(configuration.collection), "mode": "hybrid", "query": .string(query),
                                            "filter": ["conversation": .string(conversation)], "limit": .int(Int64(limit))], call)
        return (output["results"]?.arrayValue ?? []).map { result in
            if let raw = result["metadata"]?["message"]?.stringValue, let message = try? JSON.parse(raw) { return message }
            return ["role": "user", "content": result["text"] ?? ""]
        }
    }

    /// The short index of what is paged out, for the context.
    func index(_ conversation: Conversation) -> String {
        guard conversation.pagedOut > 0, let ids = conversation.pagedIDs else { return "" }
        let words = conversation.pagedTopWords
        return "Paged out to storage: \(conversation.pagedOut) earlier messages of this conversation (ids \(ids.lowerBound)-\(ids.upperBound))"
            + (words.isEmpty ? "" : ", mentioning " + words.joined(separator: ", "))
            + ". They are not shown here: call \(Self.name).recall with a query to bring back what you need."
    }

    // MARK: Operations

    func assemble(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let request = try AssembleRequest(input)
        return try withConversation(input, call) { conversation throws(DriverError) in
            var warnings: [JSONValue] = []
            var recalled: [JSONValue] = []
            func system() -> String? {
                var sections = [MemoryWindow.facts(conversation), index(conversation)]
                if !recalled.isEmpty {
                    sections.append("Recalled from earlier in this conversation:\n"
                                    + recalled.map { "- " + ContextWindow.shorten(MessageText.render($0), toTokens: 200) }.joined(separator: "\n"))
                }
                return MemoryWindow.system(request.system, sections: sections)
            }
            let indexReserve = 80
            let systemTokens = ContextWindow.estimate(system() ?? "") + ContextWindow.messageOverhead + indexReserve
            let extraTokens = request.extra.reduce(0) { $0 + ContextWindow.estimate(message: $1) }
            var pagedNow = 0
            if systemTokens + conversation.tokens + extraTokens > request.limit {
                let pinned = request.pinned.compactMap { conversation.index(of: $0) }.first
                let target = Int(configuration.target * Double(request.limit)) - systemTokens - extraTokens
                let chosen = conversation.oldestUnits(toReach: max(0, target), protecting: pinned)
                if !chosen.isEmpty {
                    let out = chosen.map { (conversation.ids[$0], conversation.messages[$0]) }
                    do throws(DriverError) {
                        try pageOut(out, conversation, call)
                        conversation.remove(at: chosen)
                        pagedNow = chosen.count
                    } catch {
                        if error.code == .cancelled { throw error }
                        // Nothing lost: the messages stay live, and the window leaves the oldest out this time.
                        warnings.append(.string("paging out failed (\(error.message)); the oldest messages were left out instead"))
                    }
                }
            }
            // The page fault the task itself causes: paged-out messages about it come back.
            if let query = request.query, conversation.pagedOut > 0, configuration.autoRecall > 0 {
                do throws(DriverError) {
                    // Once per task: the steps of one task ask the same, until more is paged out.
                    if let last = conversation.lastRecall, last.query == query, last.pagedOut == conversation.pagedOut {
                        recalled = last.messages
                    } else {
                        recalled = try searchPages(query, conversation.name, limit: configuration.autoRecall, call)
                        conversation.lastRecall = (query, conversation.pagedOut, recalled)
                    }
                } catch {
                    if error.code == .cancelled { throw error }
                    warnings.append(.string("recall for the task failed: \(error.message)"))
                }
            }
            var assembled = MemoryWindow.assemble(conversation, system: system(), request: request)
            if !assembled.fits && !recalled.isEmpty {
                recalled = []
                assembled = MemoryWindow.assemble(conversation, system: system(), request: request)
            }
            var extra: JSONObject = ["paged_out": .int(Int64(conversation.pagedOut))]
            if pagedNow > 0 { extra["paged_now"] = .int(Int64(pagedNow)) }
            if !recalled.isEmpty { extra["recalled"] = .int(Int64(recalled.count)) }
            if !warnings.isEmpty { extra["warnings"] = .array(warnings) }
            return try MemoryWindow.output(assembled, removedBefore: conversation.removed, extra: extra)
        }
    }

    func recall(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard let query = input["query"]?.stringValue, !query.isEmpty else { throw .invalidArgument("query: required, a non-empty string") }
        let limit = Int(input["limit"]?.int64Value ?? 5)
        return try withConversation(input, call) { conversation throws(DriverError) in
            var found = conversation.pagedOut > 0 ? try searchPages(query, conversation.name, limit: limit, call) : []
            // Live messages match too (the model may not know what is still in view).
            for index in MessageText.rank(query, conversation.messages, limit: limit) where found.count < limit {
                found.append(conversation.messages[index])
            }
            return ["messages": .array(found)]
        }
    }

    func remember(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard let fact = input["fact"]?.stringValue, !fact.isEmpty, fact.utf8.count <= 4000 else {
            throw .invalidArgument("fact: required, a non-empty string of at most 4000 bytes")
        }
        return try withConversation(input, call) { conversation throws(DriverError) in
            guard !conversation.facts.contains(fact) else { return ["facts": .int(Int64(conversation.facts.count)), "stored": false] }
            // On disk too, so that it outlives the context and can be recalled by words.
            _ = try storage("put", ["collection": .string(configuration.collection),
                                    "documents": [["text": .string(fact), "metadata": ["conversation": .string(conversation.name), "kind": "fact"]]]], call)
            conversation.facts.append(fact)
            return ["facts": .int(Int64(conversation.facts.count)), "stored": true]
        }
    }

    static func register(_ router: inout Router) {
        register(&router, operations: [
            ("assemble", { d, i, c throws(DriverError) in try d.assemble(i, c) }),
            ("recall", { d, i, c throws(DriverError) in try d.recall(i, c) }),
            ("remember", { d, i, c throws(DriverError) in try d.remember(i, c) }),
            ("stats", { d, i, c throws(DriverError) in
                try d.withConversation(i, c) { conversation throws(DriverError) in
                    MemoryReplies.stats(conversation, extra: ["paged_out": .int(Int64(conversation.pagedOut))])
                }
            }),
        ])
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(PagedMemoryDriver.self, host, driver) }
