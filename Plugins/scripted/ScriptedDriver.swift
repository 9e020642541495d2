// The scripted driver (class cpu): replays a file of model turns, one per `complete`
// call, in order — deterministically, for tests and demos. A turn can be text, tool
// calls (well-formed or not), an error, a delay, streamed chunks, or output that breaks
// the cpu contract on purpose. Errors in the script name the file and the turn.
//
// Script: config `script: PATH` (a JSON array of turns, an object {"turns": [...]}, or
// JSON Lines: one turn per line, `#` comments and blank lines allowed), or `turns: [...]`
// inline. See docs/MODELS.md, "The scripted driver".
import Foundation
import LLMOSDriverSDK
import LLMOSJSON
#if canImport(Glibc)
import Glibc
#endif

struct ScriptError: Error { var message: String }

/// One scripted reply.
struct Turn: Sendable {
    /// "turn 3" or "turn 3 (line 5)", for messages.
    var label: String
    var text: String?
    var chunks: [String]?
    var toolCalls: [JSONValue] = []
    var finishReason: String?
    var usage: JSONValue?
    var error: (code: DriverError.Code, message: String)?
    var delayMs = 0
    var chunkDelayMs = 0
    var rawOutput: String?
    var model: String?
    /// When set, the request's last user or tool message must contain it (a check that the
    /// conversation is where the script expects; a mismatch is an error naming the turn).
    var expect: String?

    static let keys = ["text", "chunks", "tool_calls", "finish_reason", "usage", "error", "delay_ms", "chunk_delay_ms",
                       "raw_output", "model", "expect", "comment"]
    static let errorCodes: [String: DriverError.Code] = [
        "internal": .internal, "invalid_argument": .invalidArgument, "not_found": .notFound, "unsupported": .unsupported,
        "permission_denied": .permissionDenied, "timeout": .timeout, "cancelled": .cancelled, "unavailable": .unavailable,
        "resource_exhausted": .resourceExhausted, "invalid_output": .invalidOutput,
    ]

    init(_ value: JSONValue, label: String) throws(ScriptError) {
        self.label = label
        func fail(_ m: String) -> ScriptError { ScriptError(message: "\(label): \(m)") }
        guard let object = value.objectValue else { throw fail("a turn must be a JSON object, got \(value.typeName)") }
        for key in object.keys where !Self.keys.contains(key) {
            let near = Self.keys.min { distance($0, key) < distance($1, key) }!
            throw fail("unknown key \"\(key)\"\(distance(near, key) <= 2 ? " (did you mean \(near)?)" : ""); a turn takes \(Self.keys.joined(separator: ", "))")
        }
        if let v = object["text"] {
            if let s = v.stringValue { text = s } else if !v.isNull { throw fail("text must be a string, got \(v.typeName)") }
        }
        if let v = object["chunks"] {
            guard let items = v.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else { throw fail("chunks must be an array of strings") }
            chunks = items.compactMap(\.stringValue)
            if let text, text != chunks!.joined() { throw fail("text and chunks disagree: the chunks must concatenate to the text (give one of them)") }
        }
        if let v = object["tool_calls"] {
            guard let calls = v.arrayValue else { throw fail("tool_calls must be an array") }
            for (i, call) in calls.enumerated() {
                guard var c = call.objectValue else { throw fail("tool_calls[\(i)] must be an object") }
                guard let name = c["name"]?.stringValue, !name.isEmpty else { throw fail("tool_calls[\(i)] needs a name (\"calc.add\")") }
                if name.contains(" ") { throw fail("tool_calls[\(i)].name \"\(name)\" has a space; tool names look like calc.add") }
                for key in c.keys where !["id", "name", "arguments", "raw_arguments"].contains(key) {
                    throw fail("tool_calls[\(i)]: unknown key \"\(key)\" (a call takes id, name, arguments, raw_arguments)")
                }
                if let raw = c["raw_arguments"] {
                    guard raw.stringValue != nil else { throw fail("tool_calls[\(i)].raw_arguments must be a string: the malformed text the model produced") }
                    if c["arguments"] == nil { c["arguments"] = .object([:]) }
                } else if c["arguments"] == nil {
                    c["arguments"] = .object([:])
                }
                guard c["arguments"]?.objectValue != nil else {
                    throw fail("tool_calls[\(i)].arguments must be an object; to script arguments that are not an object, give raw_arguments: the text")
                }
                if c["id"] == nil { c["id"] = .string("call_\(i)") }
                toolCalls.append(.object(c))
            }
        }
        if let v = object["finish_reason"] {
            guard let s = v.stringValue, ["stop", "length", "tool_calls", "content_filter", "error"].contains(s) else {
                throw fail("finish_reason must be one of stop, length, tool_calls, content_filter, error")
            }
            finishReason = s
        }
        if let v = object["usage"] {
            guard let u = v.objectValue, u["input_tokens"]?.int64Value != nil, u["output_tokens"]?.int64Value != nil else {
                throw fail("usage must be {\"input_tokens\": N, \"output_tokens\": N}")
            }
            usage = v
        }
        if let v = object["error"] {
            let code: String, message: String
            if let s = v.stringValue { (code, message) = ("unavailable", s) } else if let e = v.objectValue {
                code = e["code"]?.stringValue ?? "unavailable"
                message = e["message"]?.stringValue ?? "scripted error"
            } else { throw fail("error must be a message or {\"code\": \"unavailable\", \"message\": \"...\"}") }
            guard let c = Self.errorCodes[code] else {
                throw fail("error code \"\(code)\" is not one of \(Self.errorCodes.keys.sorted().joined(separator: ", "))")
            }
            error = (c, message)
        }
        for (key, store) in [("delay_ms", \Turn.delayMs), ("chunk_delay_ms", \Turn.chunkDelayMs)] as [(String, WritableKeyPath<Turn, Int>)] {
            if let v = object[key] {
                guard let n = v.int64Value, n >= 0, n <= 600_000 else { throw fail("\(key) must be an integer from 0 to 600000") }
                self[keyPath: store] = Int(n)
            }
        }
        if let v = object["raw_output"] {
            guard let s = v.stringValue else { throw fail("raw_output must be a string: the exact bytes the driver returns") }
            rawOutput = s
        }
        if let v = object["model"] {
            guard let s = v.stringValue else { throw fail("model must be a string") }
            model = s
        }
        if let v = object["expect"] {
            guard let s = v.stringValue else { throw fail("expect must be a string") }
            expect = s
        }
        let kinds = [text != nil || chunks != nil || !toolCalls.isEmpty, error != nil, rawOutput != nil].filter { $0 }.count
        if kinds > 1 { throw fail("a turn is a reply (text, chunks, tool_calls), an error, or raw_output: not several") }
        if kinds == 0 && delayMs == 0 { throw fail("an empty turn: give text, chunks, tool_calls, error, raw_output or delay_ms") }
    }

    var content: String? { text ?? chunks?.joined() }
}

func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in 1...b.count {
            let old = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = old
        }
    }
    return row[b.count]
}

/// The whole script, read and checked once at load.
struct Script: Sendable {
    var source: String
    var turns: [Turn]

    static func load(path: String) throws(ScriptError) -> Script {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw ScriptError(message: "script \(path): cannot read \(absolute) (no such file, or not readable)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        var turns: [Turn] = []
        func fail(_ m: String) -> ScriptError { ScriptError(message: "script \(absolute): \(m)") }
        // A whole-file JSON document (array or {"turns": [...]}), else JSON Lines.
        if trimmed.first == "[" || (trimmed.first == "{" && (try? JSON.parse(text))?["turns"] != nil) {
            let value: JSONValue
            do { value = try JSON.parse(text) } catch { throw fail("not valid JSON: \(error)") }
            let items: [JSONValue]
            if let array = value.arrayValue { items = array } else if let t = value["turns"]?.arrayValue { items = t } else {
                throw fail("expected an array of turns, an object {\"turns\": [...]}, or one JSON object per line")
            }
            for (i, item) in items.enumerated() {
                do { turns.append(try Turn(item, label: "turn \(i + 1)")) } catch { throw fail(error.message) }
            }
        } else {
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let l = line.trimmingCharacters(in: .whitespaces)
                if l.isEmpty || l.hasPrefix("#") || l.hasPrefix("//") { continue }
                let label = "turn \(turns.count + 1) (line \(n + 1))"
                let value: JSONValue
                do { value = try JSON.parse(l) } catch { throw fail("\(label): not valid JSON: \(error)") }
                do { turns.append(try Turn(value, label: label)) } catch { throw fail(error.message) }
            }
        }
        if turns.isEmpty { throw fail("no turns") }
        return Script(source: absolute, turns: turns)
    }

    static func inline(_ value: JSONValue) throws(ScriptError) -> Script {
        guard let items = value.arrayValue, !items.isEmpty else { throw ScriptError(message: "turns must be a non-empty array") }
        var turns: [Turn] = []
        for (i, item) in items.enumerated() {
            do { turns.append(try Turn(item, label: "turn \(i + 1)")) } catch { throw ScriptError(message: "configuration turns: \(error.message)") }
        }
        return Script(source: "configuration turns", turns: turns)
    }
}

final class ScriptedDriver: LLMOSDriver, @unchecked Sendable {
    static let name = "scripted"
    static let version = "1.0.0"

    /// Nil when no script is configured: the driver loads (so listings stay quiet) and each
    /// call says how to give one.
    let script: Script?
    let onEnd: String
    let modelName: String
    let contextLength: Int
    let dimensions: Int
    private let lock = NSLock()
    private var position = 0

    init(context: DriverContext) throws {
        let config: JSONValue
        do { config = try JSON.parse(context.config) } catch { throw DriverError.invalidArgument("invalid configuration: \(error)") }
        let loaded: Result<Script?, ScriptError> = Self.loadScript(config)
        switch loaded {
        case .success(let s): script = s
        case .failure(let error): throw DriverError.invalidArgument(error.message)
        }
        onEnd = config["on_end"]?.stringValue ?? "error"
        modelName = config["model"]?.stringValue ?? "scripted"
        contextLength = Int(config["context_length"]?.int64Value ?? 8192)
        dimensions = Int(config["dimensions"]?.int64Value ?? 8)
    }

    static func loadScript(_ config: JSONValue) -> Result<Script?, ScriptError> {
        do throws(ScriptError) {
            if let path = config["script"]?.stringValue { return .success(try Script.load(path: path)) }
            if let turns = config["turns"] { return .success(try Script.inline(turns)) }
            if let path = ProcessInfo.processInfo.environment["LLMOS_SCRIPT"], !path.isEmpty { return .success(try Script.load(path: path)) }
            return .success(nil)
        } catch {
            return .failure(error)
        }
    }

    /// The next turn, or an error when the script has run out.
    static let noScript = "no script: give one with --config 'scripted={\"script\": \"turns.jsonl\"}' (a JSON array of turns, or one JSON turn per line), the configuration turns: [...], or $LLMOS_SCRIPT"

    func next() throws(DriverError) -> (Turn, Int) {
        guard let script else { throw DriverError.unavailable(Self.noScript) }
        lock.lock()
        defer { lock.unlock() }
        let count = script.turns.count
        if position >= count {
            switch onEnd {
            case "loop": position = 0
            case "repeat_last": position = count - 1
            default:
                throw DriverError.resourceExhausted("\(script.source): the script has \(count) turn\(count == 1 ? "" : "s") and all were used; call \(position + 1) has none (add turns, or set on_end: loop or repeat_last)")
            }
        }
        let turn = script.turns[position]
        position += 1
        return (turn, position)
    }

    func sleep(_ ms: Int, _ call: CallContext) throws(DriverError) {
        var left = ms
        while left > 0 {
            try call.checkCancellation()
            let slice = min(left, 20)
            usleep(useconds_t(slice * 1000))
            left -= slice
        }
        try call.checkCancellation()
    }

    static func lastUserText(_ input: JSONValue) -> String {
        for m in (input["messages"]?.arrayValue ?? []).reversed() {
            let role = m["role"]?.stringValue
            if role == "user" || role == "tool" { return m["content"]?.stringValue ?? "" }
        }
        return ""
    }

    func complete(_ json: String, _ call: CallContext) throws(DriverError) -> String {
        let input: JSONValue
        do { input = try JSON.parse(json) } catch { throw DriverError.invalidArgument("invalid input: \(error)") }
        let (turn, _) = try next()
        let at = "\(script?.source ?? ""): \(turn.label)"
        if let expect = turn.expect, !Self.lastUserText(input).contains(expect) {
            throw DriverError.invalidArgument("\(at): expected the last user or tool message to contain \"\(expect)\", got \"\(Self.lastUserText(input).prefix(200))\"")
        }
        if turn.delayMs > 0 { try sleep(turn.delayMs, call) }
        if let error = turn.error { throw DriverError(error.code, "\(error.message) (\(at))") }
        if let raw = turn.rawOutput { return raw }

        let stream = (input["stream"]?.boolValue ?? false) && call.canEmit
        let content = turn.content
        if stream {
            let pieces = turn.chunks ?? (content.map { [$0] } ?? [])
            for (i, piece) in pieces.enumerated() {
                if i > 0 && turn.chunkDelayMs > 0 { try sleep(turn.chunkDelayMs, call) }
                try call.emit(JSONValue.object(["type": "text", "delta": .string(piece)]).serialized())
            }
            for (i, c) in turn.toolCalls.enumerated() {
                let arguments = c["raw_arguments"]?.stringValue ?? (c["arguments"] ?? .object([:])).serialized()
                try call.emit(JSONValue.object(["type": "tool_call", "index": .int(Int64(i)), "id": c["id"] ?? .string("call_\(i)"),
                                                "name": c["name"] ?? "", "arguments_delta": .string(arguments)]).serialized())
            }
        }
        let finish = turn.finishReason ?? (turn.toolCalls.isEmpty ? "stop" : "tool_calls")
        let promptText = (input["messages"]?.arrayValue ?? []).map { $0["content"]?.stringValue ?? "" }.joined(separator: "\n")
        let usage = turn.usage ?? .object(["input_tokens": .int(Int64(estimate(promptText))),
                                           "output_tokens": .int(Int64(estimate(content ?? "") + turn.toolCalls.count * 8)),
                                           "estimated": true])
        if stream {
            try call.emit(JSONValue.object(["type": "done", "finish_reason": .string(finish), "usage": usage]).serialized())
        }
        let output: JSONValue = [
            "message": .object(["role": "assistant", "content": content.map { .string($0) } ?? .null, "tool_calls": .array(turn.toolCalls)]),
            "finish_reason": .string(finish),
            "usage": usage,
            "model": .string(turn.model ?? modelName),
        ]
        return output.serialized()
    }

    func estimate(_ text: String) -> Int { text.isEmpty ? 0 : max(1, (text.unicodeScalars.count + 3) / 4) }

    /// A deterministic vector per text (FNV-1a of the text, spread over `dimensions`).
    func vector(_ text: String) -> [JSONValue] {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var out: [JSONValue] = []
        for i in 0..<dimensions {
            for b in text.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
            hash = (hash ^ UInt64(i)) &* 0x100_0000_01b3
            out.append(.double(Double(hash % 2001) / 1000.0 - 1.0))
        }
        return out
    }

    static func register(_ router: inout Router) {
        router.addRaw("complete") { (driver: ScriptedDriver, json: String, call: CallContext) throws -> String in
            try driver.complete(json, call)
        }
        router.addRaw("count_tokens") { (driver: ScriptedDriver, json: String, call: CallContext) throws -> String in
            let input = (try? JSON.parse(json)) ?? .object([:])
            let text = input["text"]?.stringValue
                ?? (input["messages"]?.arrayValue ?? []).map { $0["content"]?.stringValue ?? "" }.joined(separator: "\n")
            return JSONValue.object(["tokens": .int(Int64(driver.estimate(text))), "estimated": true]).serialized()
        }
        router.addRaw("embed") { (driver: ScriptedDriver, json: String, call: CallContext) throws -> String in
            let input = (try? JSON.parse(json)) ?? .object([:])
            let texts = (input["input"]?.arrayValue ?? []).compactMap(\.stringValue)
            return JSONValue.object(["vectors": .array(texts.map { .array(driver.vector($0)) }), "dimensions": .int(Int64(driver.dimensions)),
                                     "model": .string(driver.modelName)]).serialized()
        }
        router.addRaw("info") { (driver: ScriptedDriver, json: String, call: CallContext) throws -> String in
            driver.lock.lock()
            let position = driver.position
            driver.lock.unlock()
            return JSONValue.object(["model": .string(driver.modelName), "context_length": .int(Int64(driver.contextLength)),
                                     "native_tool_calls": true, "constrained_output": false, "streaming": true,
                                     "script": driver.script.map { .string($0.source) } ?? .null, "turns": .int(Int64(driver.script?.turns.count ?? 0)),
                                     "next_turn": .int(Int64(position + 1))]).serialized()
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(ScriptedDriver.self, host, driver) }
