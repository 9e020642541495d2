// The parts of memory.schema.json every memory driver answers the same way: which
// conversation a call is about, the inputs of assemble, the window itself, and the outputs.
import LLMOSContext
import LLMOSDriverSDK
import LLMOSJSON

public enum MemoryInput {
    /// The object a call received, or invalid_argument.
    public static func object(_ json: String) throws(DriverError) -> JSONValue {
        let value: JSONValue
        do { value = try JSON.parse(json) } catch { throw .invalidArgument("invalid input: not valid JSON: \(error)") }
        guard value.objectValue != nil else { throw .invalidArgument("invalid input: expected an object") }
        return value
    }

    /// The conversation a call is about: `conversation` when given (the kernel always gives
    /// it), else the agent process the call works for ("agent-<pid>", asked of the kernel
    /// with agent.self: a model's own recall names none), else "default".
    public static func conversation(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> String {
        if let name = input["conversation"] {
            guard let text = name.stringValue, !text.isEmpty, text.utf8.count <= 256 else {
                throw .invalidArgument("conversation: must be a non-empty string of at most 256 bytes")
            }
            return text
        }
        if let answer = try? call.syscall("agent.self", "{}"), let pid = (try? JSON.parse(answer))?["agent"]?.int64Value {
            return "agent-\(pid)"
        }
        return "default"
    }

    public static func message(_ input: JSONValue) throws(DriverError) -> JSONValue {
        guard let message = input["message"], message.objectValue != nil else {
            throw .invalidArgument("message: required, a message object (memory.schema.json#/$defs/message)")
        }
        guard let role = message["role"]?.stringValue, ["system", "user", "assistant", "tool"].contains(role) else {
            throw .invalidArgument("message.role: must be system, user, assistant or tool")
        }
        if role == "tool", message["tool_call_id"]?.stringValue == nil {
            throw .invalidArgument("message.tool_call_id: a tool message names the call it answers")
        }
        return message
    }
}

/// assemble's input (memory.schema.json#/$defs/assemble_input).
public struct AssembleRequest {
    public var budget: Int
    public var system: String?
    public var toolsTokens = 0
    public var extra: [JSONValue] = []
    public var pinned: [Int] = []
    public var cpu: String?
    public var query: String?

    public init(_ input: JSONValue) throws(DriverError) {
        guard let budget = input["budget_tokens"]?.int64Value, budget > 0 else {
            throw .invalidArgument("budget_tokens: required, an integer above 0")
        }
        self.budget = Int(budget)
        system = input["system"]?.stringValue
        toolsTokens = Int(input["tools_tokens"]?.int64Value ?? 0)
        extra = input["extra"]?.arrayValue ?? []
        pinned = (input["pinned"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { Int($0) } }
        cpu = input["cpu"]?.stringValue
        query = input["query"]?.stringValue
    }

    /// Tokens the messages may take.
    public var limit: Int { budget - toolsTokens }
}

public enum MemoryWindow {
    /// The newest messages of `conversation` that fit, with `system` first (the window's rule,
    /// shared with the kernel: the pinned task and the newest unit always, tool calls with their results).
    public static func assemble(_ conversation: Conversation, system: String?, request: AssembleRequest) -> ContextWindow.Assembled {
        let systemMessage: JSONValue? = system.map { ["role": "system", "content": .string($0)] }
        let pinned = request.pinned.compactMap { conversation.index(of: $0) }.first
        return ContextWindow.assemble(system: systemMessage, conversation: conversation.messages, extra: request.extra,
                                      pinned: pinned, limit: request.limit)
    }

    /// assemble's output, or resource_exhausted when even the system prompt, the task and the newest message do not fit.
    public static func output(_ assembled: ContextWindow.Assembled, removedBefore: Int, extra: JSONObject = [:]) throws(DriverError) -> JSONValue {
        guard assembled.fits else {
            throw DriverError(.resourceExhausted, "the system prompt, the task and the newest message take \(assembled.tokens) tokens: more than the budget")
        }
        var output: JSONObject = ["messages": .array(assembled.messages), "tokens": .int(Int64(assembled.tokens)),
                                  "dropped": .int(Int64(assembled.dropped + removedBefore))]
        if assembled.truncated > 0 { output["truncated"] = .int(Int64(assembled.truncated)) }
        for (key, value) in extra { output[key] = value }
        return .object(output)
    }

    /// The system text with the memory's own sections after it (facts, a summary, an index).
    public static func system(_ base: String?, sections: [String]) -> String? {
        let parts = ([base].compactMap { $0 } + sections).filter { !$0.isEmpty }
        return parts.isEmpty ? nil : parts.joined(separator: "\n\n")
    }

    public static func facts(_ conversation: Conversation) -> String {
        conversation.facts.isEmpty ? "" : "Facts to remember:\n" + conversation.facts.map { "- " + $0 }.joined(separator: "\n")
    }
}

/// Plain text of a message, for summaries, storage and keyword recall.
public enum MessageText {
    public static func render(_ message: JSONValue) -> String {
        let role = message["role"]?.stringValue ?? "?"
        var text = message["content"]?.stringValue ?? ""
        for call in message["tool_calls"]?.arrayValue ?? [] {
            let name = call["name"]?.stringValue ?? "?"
            let arguments = call["raw_arguments"]?.stringValue ?? (call["arguments"] ?? .object([:])).serialized()
            text += (text.isEmpty ? "" : " ") + "[calls \(name) \(arguments)]"
        }
        if role == "tool", let name = message["name"]?.stringValue { return "tool \(name): \(text)" }
        return "\(role): \(text)"
    }

    /// Lowercased words of 3+ letters, for keyword matching.
    public static func words(_ text: String) -> Set<String> {
        var words = Set<String>(), word = ""
        for c in text.lowercased() {
            if c.isLetter || c.isNumber { word.append(c) } else {
                if word.count >= 3 { words.insert(word) }
                word = ""
            }
        }
        if word.count >= 3 { words.insert(word) }
        return words
    }

    /// Indexes of `messages` sharing the most words with `query`, best first.
    public static func rank(_ query: String, _ messages: [JSONValue], limit: Int) -> [Int] {
        let wanted = words(query)
        guard !wanted.isEmpty else { return [] }
        let scored = messages.indices.map { ($0, words(render(messages[$0])).intersection(wanted).count) }.filter { $0.1 > 0 }
        return scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 }.prefix(limit).map(\.0)
    }
}

/// The outputs of append, evict and stats, the same for every memory driver.
public enum MemoryReplies {
    public static func appended(_ id: Int, _ tokens: Int) -> JSONValue {
        ["id": .string(String(id)), "tokens": .int(Int64(tokens))]
    }

    /// Evicts the oldest whole units until the live messages fit `until_tokens` (0: all).
    public static func evict(_ input: JSONValue, _ conversation: Conversation) throws(DriverError) -> JSONValue {
        guard let until = input["until_tokens"]?.int64Value, until >= 0 else {
            throw .invalidArgument("until_tokens: required, an integer of 0 or more")
        }
        let before = conversation.messages.count
        if until == 0 { conversation.clear() } else {
            var n = 0
            while n < conversation.messages.count && conversation.tokens > Int(until) {
                let unit = conversation.unitRange(containing: 0)!
                conversation.removeFirst(unit.count)
                n += unit.count
            }
        }
        return ["evicted": .int(Int64(before - conversation.messages.count))]
    }

    public static func stats(_ conversation: Conversation, extra: JSONObject = [:]) -> JSONValue {
        var output: JSONObject = ["messages": .int(Int64(conversation.messages.count)), "tokens": .int(Int64(conversation.tokens)),
                                  "evicted": .int(Int64(conversation.removed))]
        if !conversation.facts.isEmpty { output["facts"] = .int(Int64(conversation.facts.count)) }
        for (key, value) in extra { output[key] = value }
        return .object(output)
    }
}

/// An operation of a memory driver: its input, already parsed as an object, to its output.
public typealias MemoryOperation<Driver> = (Driver, JSONValue, CallContext) throws(DriverError) -> JSONValue

/// A memory driver over a `ConversationTable`: `append` and `evict` are the same for every
/// memory, and so is how an operation gets its input and its conversation.
public protocol MemoryDriver: LLMOSDriver {
    var table: ConversationTable { get }
}

extension MemoryDriver {
    /// Runs `body` on the conversation the call is about (see `MemoryInput.conversation`).
    public func withConversation<T>(_ input: JSONValue, _ call: CallContext,
                                    _ body: (Conversation) throws(DriverError) -> T) throws(DriverError) -> T {
        try table.with(try MemoryInput.conversation(input, call), body)
    }

    /// Registers `append` and `evict`, then the driver's own `operations`.
    public static func register(_ router: inout Router, operations: [(String, MemoryOperation<Self>)]) {
        let shared: [(String, MemoryOperation<Self>)] = [
            ("append", { driver, input, call throws(DriverError) in
                let message = try MemoryInput.message(input)
                return try driver.withConversation(input, call) { conversation throws(DriverError) in
                    let (id, tokens) = conversation.append(message)
                    return MemoryReplies.appended(id, tokens)
                }
            }),
            ("evict", { driver, input, call throws(DriverError) in
                try driver.withConversation(input, call) { conversation throws(DriverError) in try MemoryReplies.evict(input, conversation) }
            }),
        ]
        for (name, handler) in shared + operations {
            router.addRaw(name) { (driver: Self, json: String, call: CallContext) throws -> String in
                try handler(driver, try MemoryInput.object(json), call).serialized()
            }
        }
    }
}
