// Server-sent events (the text/event-stream format both OpenAI and Anthropic stream in).

/// One event: `event:` (default "message") and its `data:` lines joined with "\n".
public struct SSEEvent: Sendable, Hashable {
    public var event: String
    public var data: String
    public init(event: String = "message", data: String) {
        self.event = event
        self.data = data
    }
}

/// Incremental parser: feed text as it arrives (split anywhere), take whole events.
/// Handles LF, CRLF and CR line ends, comments (":"), `id:`/`retry:` (ignored).
public struct SSEParser: Sendable {
    private var buffer = ""
    private var eventName = ""
    private var dataLines: [String] = []
    private var sawData = false

    public init() {}

    public mutating func feed(_ text: String) -> [SSEEvent] {
        buffer += text
        var events: [SSEEvent] = []
        while let end = buffer.firstIndex(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            // A CR at the very end may be the first half of a CRLF still on its way.
            if buffer[end] == "\r" && buffer.index(after: end) == buffer.endIndex { break }
            let line = String(buffer[..<end])
            buffer = String(buffer[buffer.index(after: end)...])
            if let event = take(line) { events.append(event) }
        }
        return events
    }

    /// At the end of the stream: an event not terminated by a blank line is still delivered.
    public mutating func finish() -> [SSEEvent] {
        var events: [SSEEvent] = []
        var rest = buffer
        if rest.hasSuffix("\r") { rest.removeLast() }
        if !rest.isEmpty, let event = take(rest) { events.append(event) }
        buffer = ""
        if let event = take("") { events.append(event) }
        return events
    }

    private mutating func take(_ line: String) -> SSEEvent? {
        if line.isEmpty {
            defer {
                eventName = ""
                dataLines = []
                sawData = false
            }
            guard sawData else { return nil }
            return SSEEvent(event: eventName.isEmpty ? "message" : eventName, data: dataLines.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring, value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            var rest = line[line.index(after: colon)...]
            if rest.first == " " { rest = rest.dropFirst() }
            value = rest
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "data":
            dataLines.append(String(value))
            sawData = true
        case "event": eventName = String(value)
        default: break
        }
        return nil
    }
}
