// The Anthropic Messages API: tool use and streaming events, from the cpu class contract.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

public final class AnthropicClient {
    public static let apiVersion = "2023-06-01"
    public let baseURL: String
    public let model: String
    public let options: ClientOptions
    /// max_tokens when the input gives none (the API requires one).
    public let defaultMaxTokens: Int
    let core: HTTPCore

    /// - baseURL: up to and including /v1 (`https://api.anthropic.com/v1`).
    public init(baseURL: String, model: String, apiKey: String?, transport: any HTTPTransport,
                options: ClientOptions = ClientOptions(), defaultMaxTokens: Int = 4096) {
        self.baseURL = baseURL
        self.model = model
        self.options = options
        self.defaultMaxTokens = defaultMaxTokens
        self.core = HTTPCore(provider: "anthropic", baseURL: baseURL, apiKey: apiKey.flatMap { $0.isEmpty ? nil : $0 }, transport: transport, options: options)
    }

    var headers: [String: String] {
        var h = ["anthropic-version": Self.apiVersion]
        if let key = core.apiKey { h["x-api-key"] = key }
        return h
    }

    var origin: String { core.origin }

    /// The Messages request body (without stream) from a complete_input.
    func wireRequest(_ input: JSONValue, names: inout ToolNames) throws(DriverError) -> JSONObject {
        var body: JSONObject = ["model": .string(model), "max_tokens": input["max_tokens"] ?? .int(Int64(defaultMaxTokens))]
        var system: [String] = []
        var messages: [JSONObject] = []
        func append(_ role: String, _ blocks: [JSONValue]) {
            guard !blocks.isEmpty else { return }
            if let last = messages.last, last["role"]?.stringValue == role {
                messages[messages.count - 1]["content"] = .array((last["content"]?.arrayValue ?? []) + blocks)
            } else {
                messages.append(["role": .string(role), "content": .array(blocks)])
            }
        }
        for message in input["messages"]?.arrayValue ?? [] {
            let content = message["content"]?.stringValue ?? ""
            switch message["role"]?.stringValue ?? "user" {
            case "system": system.append(content)
            case "assistant":
                var blocks: [JSONValue] = content.isEmpty ? [] : [["type": "text", "text": .string(content)]]
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    blocks.append(["type": "tool_use", "id": call["id"] ?? "toolu_0", "name": .string(names.add(call["name"]?.stringValue ?? "")),
                                   "input": call["arguments"] ?? .object([:])])
                }
                append("assistant", blocks)
            case "tool":
                append("user", [["type": "tool_result", "tool_use_id": message["tool_call_id"] ?? "", "content": .string(content)]])
            default:
                append("user", [["type": "text", "text": .string(content)]])
            }
        }
        body["messages"] = .array(messages.map(JSONValue.object))
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        if let tools = input["tools"]?.nonEmptyArray {
            body["tools"] = .array(tools.map { tool in
                ["name": .string(names.add(tool["name"]?.stringValue ?? "")), "description": tool["description"] ?? "",
                 "input_schema": tool["input_schema"] ?? ["type": "object"]]
            })
            if let choice = input["tool_choice"] {
                switch choice.stringValue {
                case "auto": body["tool_choice"] = ["type": "auto"]
                case "required": body["tool_choice"] = ["type": "any"]
                case "none": body["tool_choice"] = ["type": "none"]
                default:
                    if let name = choice["name"]?.stringValue { body["tool_choice"] = ["type": "tool", "name": .string(names.wire(name))] }
                }
            }
        }
        for key in ["temperature", "top_p"] { if let v = input[key] { body[key] = v } }
        if let stop = input["stop"]?.nonEmptyArray { body["stop_sequences"] = .array(stop) }
        if input["response_format"]?["type"]?.stringValue == "json_schema" {
            throw .unsupported("anthropic: the Messages API cannot enforce response_format json_schema; describe the format in the prompt or use a tool")
        }
        return body
    }

    static func finishReason(_ reason: String?) -> String {
        switch reason {
        case "max_tokens", "model_context_window_exceeded": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        default: return "stop"
        }
    }

    /// cpu `complete`; with `"stream": true` the reply also comes as stream_event deltas.
    public func complete(_ input: JSONValue) throws(DriverError) -> JSONValue {
        do throws(DriverError) {
            var names = ToolNames([])
            var body = try wireRequest(input, names: &names)
            if input["stream"]?.boolValue == true {
                body["stream"] = true
                return try streamed(core.request("messages", body: .object(body), headers: headers), names: names)
            }
            let request = core.request("messages", body: .object(body), headers: headers)
            let response = try core.send(request)
            guard response.status < 300 else { throw core.statusError(response, request: request, model: model, attempts: options.retries + 1) }
            let reply = try core.json(response)
            if reply["type"]?.stringValue == "error" {
                throw DriverError(.unavailable, "anthropic: \(origin) failed: \(HTTPCore.serverMessage(response.body).message ?? "unknown error")")
            }
            var text = ""
            var sawText = false
            var calls: [JSONValue] = []
            for block in reply["content"]?.arrayValue ?? [] {
                switch block["type"]?.stringValue {
                case "text":
                    text += block["text"]?.stringValue ?? ""
                    sawText = true
                case "tool_use":
                    calls.append(["id": block["id"] ?? .string(makeCallID()), "name": .string(names.kernel(block["name"]?.stringValue ?? "")),
                                  "arguments": block["input"]?.objectValue != nil ? block["input"]! : .object([:])])
                default: break
                }
            }
            let usage = reply["usage"]
            return output(text: sawText ? text : nil, calls: calls, finish: Self.finishReason(reply["stop_reason"]?.stringValue),
                          input: usage?["input_tokens"]?.int64Value, output: usage?["output_tokens"]?.int64Value,
                          model: reply["model"]?.stringValue, request: input)
        } catch {
            throw core.redact(error)
        }
    }

    public func stream(_ input: JSONValue) throws(DriverError) -> JSONValue {
        var object = input.objectValue ?? JSONObject()
        object["stream"] = true
        return try complete(.object(object))
    }

    func output(text: String?, calls: [JSONValue], finish: String, input: Int64?, output: Int64?, model: String?, request: JSONValue) -> JSONValue {
        var usage: JSONObject
        if let input {
            usage = ["input_tokens": .int(input), "output_tokens": .int(output ?? 0)]
        } else {
            usage = ["input_tokens": .int(Int64(TokenEstimate.tokens(messages: request["messages"]?.arrayValue ?? [], tools: request["tools"]?.arrayValue ?? []))),
                     "output_tokens": .int(output ?? Int64(TokenEstimate.tokens(text ?? ""))), "estimated": true]
        }
        return ["message": ["role": "assistant", "content": text.map(JSONValue.string) ?? .null, "tool_calls": .array(calls)],
                "finish_reason": .string(calls.isEmpty && finish == "tool_calls" ? "stop" : finish), "usage": .object(usage), "model": .string(model ?? self.model)]
    }

    private func streamed(_ request: HTTPRequest, names: ToolNames) throws(DriverError) -> JSONValue {
        let (_, body) = try core.open(request, model: model)
        defer { body.close() }
        var parser = SSEParser()
        var text = ""
        var sawText = false
        // Content block index -> position among the tool calls.
        var toolIndex: [Int64: Int] = [:]
        var calls: [(id: String, name: String, json: String)] = []
        var stop: String?
        var inputTokens: Int64?, outputTokens: Int64?
        var replyModel: String?
        var ended = false
        let transport = core.transport

        func handle(_ event: SSEEvent) throws(DriverError) {
            guard let data = try? JSON.parse(event.data) else { return }
            switch data["type"]?.stringValue ?? event.event {
            case "message_start":
                replyModel = data["message"]?["model"]?.stringValue
                if let n = data["message"]?["usage"]?["input_tokens"]?.int64Value { inputTokens = n }
            case "content_block_start":
                let block = data["content_block"]
                if block?["type"]?.stringValue == "tool_use", let index = data["index"]?.int64Value {
                    toolIndex[index] = calls.count
                    let id = block?["id"]?.stringValue ?? makeCallID()
                    let name = names.kernel(block?["name"]?.stringValue ?? "")
                    calls.append((id, name, ""))
                    try transport.emit(["type": "tool_call", "index": .int(Int64(calls.count - 1)), "id": .string(id), "name": .string(name)])
                }
            case "content_block_delta":
                let delta = data["delta"]
                if let piece = delta?["text"]?.stringValue, !piece.isEmpty {
                    text += piece
                    sawText = true
                    try transport.emit(["type": "text", "delta": .string(piece)])
                } else if let piece = delta?["partial_json"]?.stringValue, let index = data["index"]?.int64Value, let position = toolIndex[index] {
                    calls[position].json += piece
                    if !piece.isEmpty { try transport.emit(["type": "tool_call", "index": .int(Int64(position)), "arguments_delta": .string(piece)]) }
                }
            case "message_delta":
                if let reason = data["delta"]?["stop_reason"]?.stringValue { stop = reason }
                if let n = data["usage"]?["output_tokens"]?.int64Value { outputTokens = n }
                if let n = data["usage"]?["input_tokens"]?.int64Value { inputTokens = n }
            case "message_stop": ended = true
            case "error":
                let message = data["error"]?["message"]?.stringValue ?? "unknown error"
                let type = data["error"]?["type"]?.stringValue ?? "error"
                throw DriverError(.unavailable, "anthropic: \(origin) failed while streaming (\(type)): \(message)")
            default: break
            }
        }

        var broken = false
        do throws(DriverError) {
            while !ended {
                let piece = try body.read()
                for event in parser.feed(piece.text) { try handle(event) }
                if piece.done {
                    for event in parser.finish() { try handle(event) }
                    break
                }
            }
        } catch let error where error.code == .unavailable && (sawText || !calls.isEmpty) && !error.message.contains("failed while streaming") {
            transport.log(.warn, "anthropic: the stream from \(origin) broke off: \(core.redact(error.message))")
            broken = true
        } catch {
            if error.code == .timeout { throw DriverError(.timeout, "anthropic: \(origin) stopped sending for longer than read_timeout_ms (\(options.readTimeoutMs) ms)") }
            if error.message.hasPrefix("anthropic:") { throw error }
            throw core.transportError(error, request)
        }
        if !ended && !broken {
            guard sawText || !calls.isEmpty else { throw DriverError(.unavailable, "anthropic: the connection to \(origin) closed before the reply began") }
            broken = true
        }
        let toolCalls: [JSONValue] = calls.map { c in
            let parsed = try? JSON.parse(c.json.isEmpty ? "{}" : c.json)
            if let parsed, parsed.objectValue != nil { return ["id": .string(c.id), "name": .string(c.name), "arguments": parsed] }
            return ["id": .string(c.id), "name": .string(c.name), "arguments": .object([:]), "raw_arguments": .string(c.json)]
        }
        let finish = broken ? "error" : Self.finishReason(stop)
        let out = output(text: sawText ? text : nil, calls: toolCalls, finish: finish, input: inputTokens, output: outputTokens, model: replyModel, request: .null)
        try transport.emit(["type": "done", "finish_reason": out["finish_reason"] ?? "stop", "usage": out["usage"] ?? .null])
        return out
    }

    /// cpu `count_tokens`: POST /messages/count_tokens, else an estimate.
    public func countTokens(_ input: JSONValue) throws(DriverError) -> JSONValue {
        do throws(DriverError) {
            var names = ToolNames([])
            var request: JSONValue = input
            if let text = input["text"]?.stringValue { request = ["messages": [["role": "user", "content": .string(text)]]] }
            var body = try wireRequest(request, names: &names)
            body["max_tokens"] = nil
            let http = core.request("messages/count_tokens", body: .object(body), headers: headers)
            if let response = try? core.transport.send(http), response.status == 200, let n = try? core.json(response)["input_tokens"]?.int64Value {
                return ["tokens": .int(n), "estimated": false]
            }
            if let text = input["text"]?.stringValue { return ["tokens": .int(Int64(TokenEstimate.tokens(text))), "estimated": true] }
            return ["tokens": .int(Int64(TokenEstimate.tokens(messages: input["messages"]?.arrayValue ?? [], tools: input["tools"]?.arrayValue ?? []))), "estimated": true]
        } catch {
            throw core.redact(error)
        }
    }

    public func info() -> JSONValue {
        ["model": .string(model), "context_length": .int(Int64(options.contextLength ?? 200_000)), "max_output_tokens": .int(Int64(defaultMaxTokens)),
         "native_tool_calls": true, "constrained_output": false, "streaming": true, "tool_mode": "native", "base_url": .string(baseURL)]
    }
}
