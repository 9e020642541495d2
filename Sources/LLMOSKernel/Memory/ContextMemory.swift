import LLMOSJSON

/// What the loop asks of a memory for one model request.
public struct ContextRequest: Sendable {
    /// The system message, first, always counted, never left out.
    public var system: JSONValue?
    /// Messages for this request only, after the conversation (a repair note): not stored.
    public var extra: [JSONValue] = []
    /// Ids (from `append`) of messages that must stay (the current task).
    public var pinned: [String] = []
    /// Tokens the messages may take, in the loop's (scaled) count: the prompt's limit less the tools.
    public var limitTokens: Int
    /// The loop's correction of the estimate (its count / the estimate); a driver counts by
    /// the estimate, so it is given `limitTokens / scale`.
    public var scale = 1.0
    /// The process's cpu driver, for memories that summarise with it.
    public var cpu: String?
    /// The current task, for memories that retrieve.
    public var query: String?

    public init(system: JSONValue?, limitTokens: Int) {
        self.system = system
        self.limitTokens = limitTokens
    }
}

/// The process's RAM manager: it keeps the conversation and decides what of it goes into
/// each model request, within a budget (memory.schema.json). The kernel's own `window`
/// (`BuiltInWindowMemory`, in memory) is the reference implementation; `DriverMemory` puts a
/// loaded driver of class memory behind the same protocol. Every method may block (a driver
/// call); a memory is used by one agent process's loop at a time.
public protocol ContextMemory: AnyObject, Sendable {
    /// "window", or the driver's name.
    var name: String { get }
    /// Stores a message at the end of the conversation; returns its id.
    func append(_ message: JSONValue, options: CallOptions) throws(LLMOSError) -> String
    /// The messages for the next request, system message first.
    func assemble(_ request: ContextRequest, options: CallOptions) throws(LLMOSError) -> ContextWindow.Assembled
    /// Forgets the conversation.
    func clear(options: CallOptions) throws(LLMOSError)
    /// Qualified names of the memory's own tools the model is offered (paged: recall, remember).
    var modelTools: [String] { get }
}

/// The kernel's own window: the system prompt and the latest messages that fit, in memory.
public final class BuiltInWindowMemory: ContextMemory, @unchecked Sendable {
    public let name = AgentDriverSet.builtInMemory
    public let modelTools: [String] = []
    private let lock = PThreadMutex()
    private var messages: [JSONValue] = []

    public init() {}

    public func append(_ message: JSONValue, options: CallOptions) throws(LLMOSError) -> String {
        lock.withLock {
            messages.append(message)
            return String(messages.count - 1)
        }
    }

    public func assemble(_ request: ContextRequest, options: CallOptions) throws(LLMOSError) -> ContextWindow.Assembled {
        let conversation = lock.withLock { messages }
        let pinned = request.pinned.compactMap(Int.init).first
        return ContextWindow.assemble(system: request.system, conversation: conversation, extra: request.extra, pinned: pinned,
                                      limit: request.limitTokens, scale: request.scale)
    }

    public func clear(options: CallOptions) throws(LLMOSError) { lock.withLock { messages.removeAll() } }
}

/// A loaded memory driver, one conversation of it (`conversation`, "agent-<pid>"): every
/// request is a mediated, audited `kernel.call` of its operations.
public final class DriverMemory: ContextMemory, @unchecked Sendable {
    public let name: String
    public let conversation: String
    public let modelTools: [String]
    private let kernel: Kernel

    public init(kernel: Kernel, driver: String, conversation: String) {
        self.kernel = kernel
        self.name = driver
        self.conversation = conversation
        // A memory that has remember moves messages out of the context (paged): its recall
        // and remember are the model's too, since a page fault is the model asking.
        modelTools = kernel.hasTool("\(driver).remember") ? ["recall", "remember"].map { "\(driver).\($0)" }.filter { kernel.hasTool($0) } : []
    }

    private func call(_ operation: String, _ input: JSONObject, _ options: CallOptions) throws(LLMOSError) -> JSONValue {
        var input = input
        input["conversation"] = .string(conversation)
        let result = try kernel.call("\(name).\(operation)", input: JSONValue.object(input), options: options)
        do { return try JSON.parse(result.output) } catch {
            throw LLMOSError(.invalidOutput, "\(name).\(operation): the output is not JSON (memory.schema.json#/$defs/\(operation)_output)")
        }
    }

    public func append(_ message: JSONValue, options: CallOptions) throws(LLMOSError) -> String {
        let output = try call("append", ["message": message], options)
        guard let id = output["id"]?.stringValue else {
            throw LLMOSError(.invalidOutput, "\(name).append: the output has no id (memory.schema.json#/$defs/append_output)")
        }
        return id
    }

    public func assemble(_ request: ContextRequest, options: CallOptions) throws(LLMOSError) -> ContextWindow.Assembled {
        let scale = max(request.scale, 0.01)
        var input: JSONObject = ["budget_tokens": .int(Int64(max(1, Int(Double(request.limitTokens) / scale))))]
        if let system = request.system?["content"]?.stringValue { input["system"] = .string(system) }
        if !request.extra.isEmpty { input["extra"] = .array(request.extra) }
        if !request.pinned.isEmpty { input["pinned"] = .array(request.pinned.map(JSONValue.string)) }
        if let cpu = request.cpu { input["cpu"] = .string(cpu) }
        if let query = request.query { input["query"] = .string(query) }
        let output: JSONValue
        do {
            output = try call("assemble", input, options)
        } catch where error.code == .resourceExhausted {
            // The contract's way of saying that even the system prompt and the newest message do not fit.
            return ContextWindow.Assembled(messages: [], dropped: 0, truncated: 0, tokens: request.limitTokens + 1, fits: false)
        }
        guard let messages = output["messages"]?.arrayValue, let tokens = output["tokens"]?.int64Value else {
            throw LLMOSError(.invalidOutput, "\(name).assemble: the output needs messages and tokens (memory.schema.json#/$defs/assemble_output)")
        }
        let used = Int((Double(tokens) * scale).rounded(.up))
        return ContextWindow.Assembled(messages: messages, dropped: Int(output["dropped"]?.int64Value ?? 0),
                                       truncated: Int(output["truncated"]?.int64Value ?? 0), tokens: used,
                                       fits: used <= request.limitTokens,
                                       warnings: (output["warnings"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    public func clear(options: CallOptions) throws(LLMOSError) {
        guard kernel.hasTool("\(name).evict") else { return }
        _ = try call("evict", ["until_tokens": 0], options)
    }
}

extension Kernel {
    /// The memory an agent process `pid` uses: the loaded memory driver named `name`, else,
    /// for "window", the kernel's own; nil when no memory of that name exists.
    public func contextMemory(named name: String, pid: Int) -> (any ContextMemory)? {
        if let driver = driver(named: name), driver.deviceClass == .memory {
            return DriverMemory(kernel: self, driver: name, conversation: "agent-\(pid)")
        }
        return name == AgentDriverSet.builtInMemory ? BuiltInWindowMemory() : nil
    }
}
