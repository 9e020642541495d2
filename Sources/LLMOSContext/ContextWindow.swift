import LLMOSJSON

/// The built-in context window (the kernel's `window`, and the rules every memory driver
/// keeps, which is why it is its own module: drivers link it, never the kernel): the system prompt and
/// the conversation, trimmed oldest-first so that a request never overflows the model's
/// context. Pure: it works on messages and a token estimate; the loop checks the result
/// with the cpu driver's `count_tokens` when it has one and asks again with a tighter limit.
///
/// Messages are dropped in units that keep a request valid: a user message, or an
/// assistant message together with the tool messages answering its calls (a tool message
/// without its call is refused by most backends). The system prompt and the pinned
/// messages (the current task) are never dropped, nor is the newest unit; when even those do
/// not fit, the longest tool results in them are shortened.
public struct ContextWindow: Sendable {
    /// Tokens per message for the chat template's wrapping (role markers, separators).
    public static let messageOverhead = 4

    /// A conservative estimate: about three bytes of UTF-8 a token (English prose is
    /// nearer four; JSON, code and numbers nearer two or three), plus the wrapping.
    public static func estimate(_ text: String) -> Int { (text.utf8.count + 2) / 3 }

    public static func estimate(message: JSONValue) -> Int {
        var tokens = messageOverhead + estimate(message["content"]?.stringValue ?? "")
        for call in message["tool_calls"]?.arrayValue ?? [] {
            tokens += 4 + estimate(call["name"]?.stringValue ?? "")
            tokens += estimate(call["raw_arguments"]?.stringValue ?? (call["arguments"] ?? .object([:])).serialized())
        }
        return tokens
    }

    /// The tool definitions' share of the prompt.
    public static func estimate(tools: [JSONValue]) -> Int {
        tools.isEmpty ? 0 : 8 + tools.reduce(0) { $0 + estimate($1.serialized()) }
    }

    public struct Assembled: Sendable, Equatable {
        /// The messages to send, system prompt first.
        public var messages: [JSONValue]
        /// Messages of the conversation left out (oldest first).
        public var dropped: Int
        /// Tool results shortened to fit.
        public var truncated: Int
        /// The estimate of `messages` alone (scaled), without the tools.
        public var tokens: Int
        /// false when even the system prompt, the pinned messages and the newest unit do not
        /// fit after shortening: the caller must not send it.
        public var fits: Bool
        /// What went differently than asked without failing (a memory driver's summary or
        /// page-out that failed, so the oldest messages were left out instead).
        public var warnings: [String]

        public init(messages: [JSONValue], dropped: Int, truncated: Int, tokens: Int, fits: Bool, warnings: [String] = []) {
            self.messages = messages
            self.dropped = dropped
            self.truncated = truncated
            self.tokens = tokens
            self.fits = fits
            self.warnings = warnings
        }
    }

    /// Chooses what to send. `conversation` is oldest first, without the system prompt;
    /// `extra` follows it for this request only (a note to the model that is not kept). The
    /// message at `pinned` (the current task) is kept whatever happens, and so is the newest
    /// unit; the others are kept newest first while they fit. `limit` is the number of
    /// tokens the messages may take (the prompt's limit less the tools); `scale` multiplies
    /// each estimate (learned from the driver's own counts).
    ///
    /// It walks back from the newest message and stops at the first unit that does not fit,
    /// so its cost is that of what it keeps, not of the whole history (a 100,000-message
    /// conversation assembles as fast as a short one).
    public static func assemble(system: JSONValue?, conversation: [JSONValue], extra: [JSONValue] = [], pinned: Int? = nil,
                                limit: Int, scale: Double = 1) -> Assembled {
        func cost(_ message: JSONValue) -> Int { Int((Double(estimate(message: message)) * scale).rounded(.up)) }
        let count = conversation.count + extra.count
        func message(_ i: Int) -> JSONValue { i < conversation.count ? conversation[i] : extra[i - conversation.count] }
        func isTool(_ i: Int) -> Bool { message(i)["role"]?.stringValue == "tool" }
        func cost(from start: Int, to end: Int) -> Int { (start..<end).reduce(0) { $0 + cost(message($1)) } }
        func unit(containing i: Int) -> Range<Int> { Self.unit(containing: i, count: count, isTool: isTool) }
        var pinnedUnit: Range<Int>?
        if let pinned, pinned >= 0, pinned < count { pinnedUnit = unit(containing: pinned) }
        var used = (system.map(cost) ?? 0) + (pinnedUnit.map { cost(from: $0.lowerBound, to: $0.upperBound) } ?? 0)

        // A suffix of the conversation, newest first, as far as it fits (the newest always).
        var suffixStart = count
        while suffixStart > 0 {
            let u = unit(containing: suffixStart - 1)
            if u == pinnedUnit { suffixStart = u.lowerBound; continue }
            let c = cost(from: u.lowerBound, to: u.upperBound)
            if suffixStart != count && used + c > limit { break }
            used += c
            suffixStart = u.lowerBound
        }
        var body: [JSONValue] = []
        if let pinnedUnit, pinnedUnit.upperBound <= suffixStart { body += pinnedUnit.map(message) }
        body += (suffixStart..<count).map(message)
        let dropped = count - body.count

        // Still over: shorten the longest tool results (never the task, never a reply).
        var shortenedIndices = Set<Int>()
        for _ in 0..<8 where used > limit {
            guard let index = body.indices.filter({ body[$0]["role"]?.stringValue == "tool" })
                .max(by: { cost(body[$0]) < cost(body[$1]) }) else { break }
            let content = body[index]["content"]?.stringValue ?? ""
            let over = used - limit
            let keepTokens = max(0, Int(Double(estimate(content)) - Double(over) / scale) - 24)
            let shortened = shorten(content, toTokens: keepTokens)
            guard shortened.utf8.count < content.utf8.count else { break }
            let before = cost(body[index])
            body[index] = replacingContent(body[index], with: shortened)
            used += cost(body[index]) - before
            shortenedIndices.insert(index)
        }
        var messages = system.map { [$0] } ?? []
        messages += body
        return Assembled(messages: messages, dropped: dropped, truncated: shortenedIndices.count, tokens: used, fits: used <= limit)
    }

    /// The unit holding message `i` of `count`: the messages that are kept or left out
    /// together. A tool message belongs with the messages before it, back to the first that
    /// is not one (the assistant message whose call it answers).
    public static func unit(containing i: Int, count: Int, isTool: (Int) -> Bool) -> Range<Int> {
        var start = i, end = i + 1
        while start > 0 && isTool(start) { start -= 1 }
        while end < count && isTool(end) { end += 1 }
        return start..<end
    }

    /// The start of `text` within about `tokens` tokens, saying how much was cut.
    public static func shorten(_ text: String, toTokens tokens: Int) -> String {
        let budget = max(0, tokens) * 3
        guard text.utf8.count > budget else { return text }
        var end = text.startIndex
        var bytes = 0
        for index in text.indices {
            let size = text[index].utf8.count
            if bytes + size > budget { break }
            bytes += size
            end = text.index(after: index)
        }
        let cut = text.utf8.count - bytes
        return String(text[..<end]) + " …[\(cut) more bytes cut to fit the context window]"
    }

    public static func replacingContent(_ message: JSONValue, with content: String) -> JSONValue {
        guard var object = message.objectValue else { return message }
        object["content"] = .string(content)
        return .object(object)
    }
}
