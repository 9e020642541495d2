// The compact memory driver (class memory): when the conversation reaches a threshold of the
// budget (90% by default), its oldest part is summarised by the process's cpu driver —
// a `complete` request through the kernel's tool.call, mediated and audited like any other —
// and the summary takes its place; pinned facts (remember) and the current task are never
// summarised. When even the summary request would not fit, the part is summarised in
// pieces, then the pieces' summaries together. Contract: sdk/schemas/classes/memory.schema.json.
import LLMOSContext
import LLMOSDriverSDK
import LLMOSJSON
import MemoryKit

struct CompactConfiguration {
    /// Compact when the context would take this share of the budget.
    var threshold = 0.9
    /// After compacting, the live messages take at most this share.
    var target = 0.5
    /// Most tokens of one summary reply.
    var summaryTokens = 384
    /// Most tokens of conversation in one summary request (0: 60% of the budget).
    var pieceTokens = 0
    /// The cpu driver to summarise with when assemble names none.
    var cpu: String?

    init(_ config: JSONValue) throws(DriverError) {
        func share(_ key: String, _ value: inout Double) throws(DriverError) {
            guard let v = config[key] else { return }
            guard let d = v.doubleValue, d > 0, d <= 1 else { throw .invalidArgument("compact configuration: \(key) must be a number in (0, 1]") }
            value = d
        }
        try share("threshold", &threshold)
        try share("target", &target)
        if target >= threshold { throw .invalidArgument("compact configuration: target (\(target)) must be below threshold (\(threshold))") }
        if let v = config["summary_tokens"] {
            guard let n = v.int64Value, n >= 16 else { throw .invalidArgument("compact configuration: summary_tokens must be an integer of 16 or more") }
            summaryTokens = Int(n)
        }
        if let v = config["piece_tokens"] {
            guard let n = v.int64Value, n >= 0 else { throw .invalidArgument("compact configuration: piece_tokens must be an integer of 0 or more") }
            pieceTokens = Int(n)
        }
        cpu = config["cpu"]?.stringValue
    }
}

struct CompactMemoryDriver: MemoryDriver {
    static let name = "compact"
    static let version = "1.0.0"

    let table = ConversationTable()
    let configuration: CompactConfiguration

    init(context: DriverContext) throws {
        let config = (try? JSON.parse(context.config)) ?? .object([:])
        configuration = try CompactConfiguration(config)
    }

    static let instructions = """
        You summarise a conversation between a user and an assistant that uses tools, so that the \
        assistant can go on without the original messages. Keep every fact, number, name, file, \
        decision, tool result that matters and open question; drop greetings and repetition. \
        Write short plain sentences, no preamble.
        """

    /// One summary by the cpu: `text` (a transcript, or earlier summaries) in a few sentences.
    func summarise(_ text: String, cpu: String, _ call: CallContext) throws(DriverError) -> String {
        let input: JSONValue = [
            "messages": [["role": "system", "content": .string(Self.instructions)],
                         ["role": "user", "content": .string("Summarise this:\n\n" + text)]],
            "max_tokens": .int(Int64(configuration.summaryTokens)),
        ]
        let answer: String
        do { answer = try call.syscall("tool.call", (["tool": .string("\(cpu).complete"), "input": input] as JSONValue).serialized()) } catch {
            throw DriverError(error.code, "summarising with \(cpu).complete failed: \(error.message)")
        }
        let summary = ((try? JSON.parse(answer))?["message"]?["content"]?.stringValue ?? "")
            .split(whereSeparator: \.isNewline).map { $0.trimmingPrefix(while: \.isWhitespace) }.joined(separator: "\n")
        guard !summary.allSatisfy(\.isWhitespace) else { throw .invalidOutput("\(cpu).complete gave no summary text") }
        return summary
    }

    /// Summaries of `texts` (with the previous summary first), in pieces of at most
    /// `pieceTokens` each, then the pieces' summaries together, until one remains.
    func summarise(_ texts: [String], previous: String?, pieceTokens: Int, cpu: String, _ call: CallContext) throws(DriverError) -> (String, Int) {
        var items = (previous.map { ["Earlier summary: " + $0] } ?? []) + texts
        var requests = 0
        while true {
            var pieces: [String] = [], current = "", currentTokens = 0
            for item in items {
                let shown = ContextWindow.shorten(item, toTokens: pieceTokens)  // one huge message is cut, not sent whole
                let cost = ContextWindow.estimate(shown) + 1
                if currentTokens + cost > pieceTokens && !current.isEmpty {
                    pieces.append(current)
                    current = ""
                    currentTokens = 0
                }
                current += (current.isEmpty ? "" : "\n") + shown
                currentTokens += cost
            }
            if !current.isEmpty { pieces.append(current) }
            var summaries: [String] = []
            for piece in pieces {
                try call.checkCancellation()
                summaries.append(try summarise(piece, cpu: cpu, call))
                requests += 1
            }
            if summaries.count <= 1 { return (summaries.first ?? "", requests) }
            items = summaries
        }
    }

    func assemble(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let request = try AssembleRequest(input)
        let cpu = request.cpu ?? configuration.cpu
        return try withConversation(input, call) { conversation throws(DriverError) in
            func system() -> String? {
                MemoryWindow.system(request.system, sections: [
                    MemoryWindow.facts(conversation),
                    conversation.summary.map { "Summary of the earlier conversation:\n" + $0 } ?? "",
                ])
            }
            var extra: JSONObject = [:]
            let systemTokens = ContextWindow.estimate(system() ?? "") + ContextWindow.messageOverhead
            let extraTokens = request.extra.reduce(0) { $0 + ContextWindow.estimate(message: $1) }
            let used = systemTokens + conversation.tokens + extraTokens
            if Double(used) >= configuration.threshold * Double(request.limit), let cpu {
                let pinned = request.pinned.compactMap { conversation.index(of: $0) }.first
                let target = Int(configuration.target * Double(request.limit)) - systemTokens - configuration.summaryTokens
                let chosen = conversation.oldestUnits(toReach: max(0, target), protecting: pinned)
                if !chosen.isEmpty {
                    let texts = chosen.map { MessageText.render(conversation.messages[$0]) }
                    let pieceTokens = configuration.pieceTokens > 0 ? configuration.pieceTokens : max(64, request.budget * 6 / 10)
                    do throws(DriverError) {
                        let (summary, requests) = try summarise(Array(texts), previous: conversation.summary,
                                                                pieceTokens: pieceTokens, cpu: cpu, call)
                        conversation.summary = summary
                        conversation.remove(at: chosen)
                        extra["summarized"] = .int(Int64(chosen.count))
                        extra["summary_requests"] = .int(Int64(requests))
                    } catch where error.code == .cancelled {
                        throw error
                    } catch {
                        // Nothing lost: the messages stay, and the window leaves the oldest out this time.
                        extra["warnings"] = .array([.string("compaction failed (\(error.message)); the oldest messages were left out instead")])
                    }
                }
            }
            let assembled = MemoryWindow.assemble(conversation, system: system(), request: request)
            return try MemoryWindow.output(assembled, removedBefore: conversation.removed, extra: extra)
        }
    }

    static func register(_ router: inout Router) {
        register(&router, operations: [
            ("assemble", { d, i, c throws(DriverError) in try d.assemble(i, c) }),
            ("remember", { d, i, c throws(DriverError) in
                guard let fact = i["fact"]?.stringValue, !fact.isEmpty else { throw .invalidArgument("fact: required, a non-empty string") }
                return try d.withConversation(i, c) { conversation throws(DriverError) in
                    if !conversation.facts.contains(fact) { conversation.facts.append(fact) }
                    return ["facts": .int(Int64(conversation.facts.count))]
                }
            }),
            ("stats", { d, i, c throws(DriverError) in
                try d.withConversation(i, c) { conversation throws(DriverError) in
                    MemoryReplies.stats(conversation, extra: ["summary_tokens": .int(Int64(ContextWindow.estimate(conversation.summary ?? "")))])
                }
            }),
        ])
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(CompactMemoryDriver.self, host, driver) }
