// The OpenAI Chat Completions protocol (OpenAI, llama.cpp's llama-server, Ollama, vLLM,
// LM Studio, OpenRouter), from the cpu class contract (sdk/schemas/classes/cpu.schema.json)
// to the wire and back.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

/// How tools reach the model.
public enum ToolMode: String, Sendable, CaseIterable {
    /// Native, unless the server refuses `tools`: then constrained (and `info` says so).
    case auto
    /// The server's own tool calling (`tools`, `tool_calls`).
    case native
    /// For models without (reliable) native tool calling: the tools become a response_format
    /// JSON schema (`oneOf` of {tool, arguments} per tool and {answer}); the reply is validated
    /// against the tool's input schema and repaired once with the validation error.
    case constrained
}

public final class OpenAIClient {
    public let baseURL: String
    public let model: String
    public let options: ClientOptions
    public let toolMode: ToolMode
    /// The model for /embeddings (default: `model`).
    public let embeddingModel: String?
    let core: HTTPCore
    /// The mode the last completion with tools used.
    public private(set) var usedMode: ToolMode

    /// - Parameters:
    ///   - baseURL: up to and including /v1 (`http://127.0.0.1:8080/v1`, `https://api.openai.com/v1`).
    ///   - apiKey: sent as `Authorization: Bearer`; nil sends none (llama-server needs none).
    ///   - transport: `SyscallTransport(call)` in a driver.
    public init(baseURL: String, model: String, apiKey: String?, transport: any HTTPTransport,
                options: ClientOptions = ClientOptions(), toolMode: ToolMode = .auto, embeddingModel: String? = nil) {
        self.baseURL = baseURL
        self.model = model
        self.options = options
        self.toolMode = toolMode
        self.embeddingModel = embeddingModel
        self.usedMode = toolMode == .constrained ? .constrained : .native
        self.core = HTTPCore(provider: "openai", baseURL: baseURL, apiKey: apiKey.flatMap { $0.isEmpty ? nil : $0 }, transport: transport, options: options)
    }

    var authHeaders: [String: String] {
        guard let key = core.apiKey else { return [:] }
        return ["Authorization": "Bearer \(key)"]
    }

    // MARK: complete

    /// cpu `complete`: `input` is a complete_input, the result a complete_output. With
    /// `"stream": true` the reply is also delivered as stream_event deltas through the transport.
    public func complete(_ input: JSONValue) throws(DriverError) -> JSONValue {
        do throws(DriverError) {
            let tools = input["tools"]?.arrayValue ?? []
            let choice = input["tool_choice"]
            let toolsOff = choice?.stringValue == "none"
            if !tools.isEmpty && !toolsOff && toolMode == .constrained {
                usedMode = .constrained
                return try constrained(input)
            }
            do {
                return try native(input)
            } catch let error where toolMode == .auto && !tools.isEmpty && !toolsOff && refusesTools(error) {
                core.transport.log(.warn, "openai: \(origin) refused native tool calls (\(error.message)); using constrained tool calls")
                usedMode = .constrained
                return try constrained(input)
            }
        } catch {
            throw core.redact(error)
        }
    }

    /// `complete` with streaming on, whatever the input says.
    public func stream(_ input: JSONValue) throws(DriverError) -> JSONValue {
        var object = input.objectValue ?? JSONObject()
        object["stream"] = true
        return try complete(.object(object))
    }

    var origin: String { core.origin }

    private func refusesTools(_ error: DriverError) -> Bool {
        (error.code == .invalidArgument || error.code == .unavailable) && error.message.lowercased().contains("tool")
    }

    /// The wire request from a complete_input (tools encoded natively).
    func wireRequest(_ input: JSONValue, names: inout ToolNames, stream: Bool) throws(DriverError) -> JSONObject {
        var body: JSONObject = ["model": .string(model)]
        var messages: [JSONValue] = []
        for message in input["messages"]?.arrayValue ?? [] {
            var out: JSONObject = ["role": message["role"] ?? "user"]
            let role = message["role"]?.stringValue ?? "user"
            if let content = message["content"], !content.isNull { out["content"] = content } else { out["content"] = role == "assistant" ? .null : "" }
            if let calls = message["tool_calls"]?.nonEmptyArray {
                out["tool_calls"] = .array(calls.map { call in
                    let name = names.add(call["name"]?.stringValue ?? "")
                    let arguments = call["raw_arguments"]?.stringValue ?? (call["arguments"] ?? .object([:])).serialized()
                    return ["id": call["id"] ?? "call_0", "type": "function", "function": ["name": .string(name), "arguments": .string(arguments)]]
                })
            }
            if let id = message["tool_call_id"] { out["tool_call_id"] = id }
            messages.append(.object(out))
        }
        body["messages"] = .array(messages)
        if let tools = input["tools"]?.nonEmptyArray {
            body["tools"] = .array(tools.map { tool in
                ["type": "function", "function": ["name": .string(names.add(tool["name"]?.stringValue ?? "")),
                                                  "description": tool["description"] ?? "", "parameters": tool["input_schema"] ?? ["type": "object"]]]
            })
            if let choice = input["tool_choice"] {
                if let text = choice.stringValue { body["tool_choice"] = .string(text) }
                else if let name = choice["name"]?.stringValue { body["tool_choice"] = ["type": "function", "function": ["name": .string(names.wire(name))]] }
            }
        }
        for key in ["temperature", "top_p", "seed"] { if let v = input[key] { body[key] = v } }
        if let max = input["max_tokens"] { body["max_tokens"] = max }
        if let stop = input["stop"]?.nonEmptyArray {
            guard stop.count <= 4 || !baseURL.contains("api.openai.com") else {
                throw .invalidArgument("openai: OpenAI takes at most 4 stop sequences, got \(stop.count)")
            }
            body["stop"] = .array(stop)
        }
        if let format = input["response_format"], format["type"]?.stringValue == "json_schema" {
            body["response_format"] = ["type": "json_schema", "json_schema": ["name": format["name"] ?? "response", "schema": format["schema"] ?? ["type": "object"], "strict": false]]
        }
        if stream {
            body["stream"] = true
            body["stream_options"] = ["include_usage": true]
        }
        return body
    }

    private func native(_ input: JSONValue) throws(DriverError) -> JSONValue {
        var names = ToolNames([])
        let streaming = input["stream"]?.boolValue == true
        let body = try wireRequest(input, names: &names, stream: streaming)
        let request = core.request("chat/completions", body: .object(body), headers: authHeaders)
        if streaming { return try streamed(request, names: names, input: input) }
        let response = try core.send(request)
        guard response.status < 300 else { throw core.statusError(response, request: request, model: model, attempts: options.retries + 1) }
        return try parseCompletion(try core.json(response), names: names, input: input)
    }

    /// A non-streamed Chat Completions response as a complete_output.
    func parseCompletion(_ reply: JSONValue, names: ToolNames, input: JSONValue) throws(DriverError) -> JSONValue {
        if reply["error"] != nil {
            throw DriverError(.unavailable, "openai: \(origin) failed: \(HTTPCore.serverMessage(reply.serialized()).message ?? "unknown error")")
        }
        guard let choice = reply["choices"]?[0], let message = choice["message"] else {
            throw DriverError(.unavailable, "openai: \(origin) answered without choices[0].message — is it an OpenAI-compatible server?")
        }
        var calls: [JSONValue] = []
        for (i, call) in (message["tool_calls"]?.arrayValue ?? []).enumerated() {
            let function = call["function"]
            calls.append(toolCall(id: call["id"]?.stringValue ?? "call_\(i)", name: names.kernel(function?["name"]?.stringValue ?? ""),
                                  arguments: function?["arguments"]?.stringValue ?? (function?["arguments"]?.serialized() ?? "{}")))
        }
        let content = message["content"]?.stringValue
        let finish = Self.finishReason(choice["finish_reason"]?.stringValue, hasCalls: !calls.isEmpty)
        let output = output(content: content, calls: calls, finish: finish, usage: reply["usage"], input: input, model: reply["model"]?.stringValue)
        if input["stream"]?.boolValue == true { try replay(output) }
        return output
    }

    static func finishReason(_ reason: String?, hasCalls: Bool) -> String {
        switch reason {
        case "length": return "length"
        case "tool_calls", "function_call": return "tool_calls"
        case "content_filter": return "content_filter"
        default: return hasCalls ? "tool_calls" : "stop"
        }
    }

    func toolCall(id: String, name: String, arguments: String) -> JSONValue {
        if let parsed = try? JSON.parse(arguments.isEmpty ? "{}" : arguments), parsed.objectValue != nil {
            return ["id": .string(id), "name": .string(name), "arguments": parsed]
        }
        return ["id": .string(id), "name": .string(name), "arguments": .object([:]), "raw_arguments": .string(arguments)]
    }

    func output(content: String?, calls: [JSONValue], finish: String, usage: JSONValue?, input: JSONValue, model: String?) -> JSONValue {
        var usageValue: JSONValue
        if let usage, let prompt = usage["prompt_tokens"]?.int64Value {
            usageValue = ["input_tokens": .int(prompt), "output_tokens": .int(usage["completion_tokens"]?.int64Value ?? 0)]
        } else {
            usageValue = ["input_tokens": .int(Int64(TokenEstimate.tokens(messages: input["messages"]?.arrayValue ?? [], tools: input["tools"]?.arrayValue ?? []))),
                          "output_tokens": .int(Int64(TokenEstimate.tokens(content ?? "") + calls.reduce(0) { $0 + TokenEstimate.tokens($1.serialized()) })),
                          "estimated": true]
        }
        return ["message": ["role": "assistant", "content": content.map(JSONValue.string) ?? .null, "tool_calls": .array(calls)],
                "finish_reason": .string(finish), "usage": usageValue, "model": .string(model ?? self.model)]
    }

    /// A reply produced whole (constrained mode, or a server that would not stream) as events.
    func replay(_ output: JSONValue) throws(DriverError) {
        if let text = output["message"]?["content"]?.stringValue, !text.isEmpty { try core.transport.emit(["type": "text", "delta": .string(text)]) }
        for (i, call) in (output["message"]?["tool_calls"]?.arrayValue ?? []).enumerated() {
            try core.transport.emit(["type": "tool_call", "index": .int(Int64(i)), "id": call["id"] ?? "", "name": call["name"] ?? "",
                                     "arguments_delta": .string(call["raw_arguments"]?.stringValue ?? (call["arguments"] ?? .object([:])).serialized())])
        }
        try core.transport.emit(["type": "done", "finish_reason": output["finish_reason"] ?? "stop", "usage": output["usage"] ?? .null])
    }

    // MARK: streaming

    private func streamed(_ request: HTTPRequest, names: ToolNames, input: JSONValue) throws(DriverError) -> JSONValue {
        let (response, body) = try core.open(request, model: model)
        defer { body.close() }
        // A server that ignores "stream" answers with one JSON document.
        if let type = response.headers["content-type"], type.contains("application/json") {
            var text = ""
            while true {
                let piece = try body.read()
                text += piece.text
                if piece.done { break }
            }
            return try parseCompletion(try core.json(HTTPResponse(status: response.status, headers: response.headers, body: text)), names: names, input: input)
        }
        var parser = SSEParser()
        var content = ""
        var sawContent = false
        var calls: [(id: String, name: String, arguments: String)] = []
        var finish: String?
        var usage: JSONValue?
        var replyModel: String?
        var ended = false

        func handle(_ event: SSEEvent) throws(DriverError) {
            let data = event.data.trimmingCharacters(in: .whitespaces)
            if data == "[DONE]" {
                ended = true
                return
            }
            guard let chunk = try? JSON.parse(data) else { return }
            if chunk["error"] != nil {
                throw DriverError(.unavailable, "openai: \(origin) failed while streaming: \(HTTPCore.serverMessage(data).message ?? "unknown error")")
            }
            if let m = chunk["model"]?.stringValue { replyModel = m }
            if let u = chunk["usage"], !u.isNull { usage = u }
            guard let choice = chunk["choices"]?[0] else { return }
            let delta = choice["delta"]
            if let text = delta?["content"]?.stringValue, !text.isEmpty {
                content += text
                sawContent = true
                try core.transport.emit(["type": "text", "delta": .string(text)])
            }
            for piece in delta?["tool_calls"]?.arrayValue ?? [] {
                let index = Int(piece["index"]?.int64Value ?? Int64(calls.count))
                while calls.count <= index { calls.append(("", "", "")) }
                var event: JSONObject = ["type": "tool_call", "index": .int(Int64(index))]
                if let id = piece["id"]?.stringValue, !id.isEmpty, calls[index].id.isEmpty {
                    calls[index].id = id
                    event["id"] = .string(id)
                }
                if let name = piece["function"]?["name"]?.stringValue, !name.isEmpty {
                    calls[index].name += name
                    event["name"] = .string(names.kernel(calls[index].name))
                }
                if let args = piece["function"]?["arguments"]?.stringValue, !args.isEmpty {
                    calls[index].arguments += args
                    event["arguments_delta"] = .string(args)
                }
                try core.transport.emit(.object(event))
            }
            if let reason = choice["finish_reason"]?.stringValue { finish = reason }
        }

        do throws(DriverError) {
            while !ended {
                let piece = try body.read()
                for event in parser.feed(piece.text) { try handle(event) }
                if piece.done {
                    for event in parser.finish() { try handle(event) }
                    break
                }
            }
        } catch let error where error.code == .unavailable && (sawContent || !calls.isEmpty) && finish == nil {
            // The server failed after part of the reply: that part, finish_reason "error".
            core.transport.log(.warn, "openai: the stream from \(origin) broke off: \(core.redact(error.message))")
            finish = "error"
        } catch {
            if error.code == .timeout { throw DriverError(.timeout, "openai: \(origin) stopped sending for longer than read_timeout_ms (\(options.readTimeoutMs) ms)") }
            throw core.transportError(error, request)
        }
        if !ended && finish == nil {
            guard sawContent || !calls.isEmpty else {
                throw DriverError(.unavailable, "openai: the connection to \(origin) closed before the reply began")
            }
            finish = "error"
        }
        let toolCalls = calls.enumerated().map { i, c in toolCall(id: c.id.isEmpty ? "call_\(i)" : c.id, name: names.kernel(c.name), arguments: c.arguments) }
        let reason = finish == "error" ? "error" : Self.finishReason(finish, hasCalls: !toolCalls.isEmpty)
        let output = output(content: sawContent ? content : nil, calls: toolCalls, finish: reason, usage: usage, input: input, model: replyModel)
        try core.transport.emit(["type": "done", "finish_reason": .string(reason), "usage": output["usage"] ?? .null])
        return output
    }

    // MARK: constrained tool calls

    private func constrained(_ input: JSONValue) throws(DriverError) -> JSONValue {
        let tools = input["tools"]?.arrayValue ?? []
        let plan = try ConstrainedTools(tools: tools, choice: input["tool_choice"])
        if input["response_format"]?["type"]?.stringValue == "json_schema" {
            throw .unsupported("openai: response_format json_schema and tools cannot be combined in constrained tool mode (tool_mode: constrained)")
        }
        var object = input.objectValue ?? JSONObject()
        object["tools"] = nil
        object["tool_choice"] = nil
        object["stream"] = false
        object["messages"] = .array(plan.messages(input["messages"]?.arrayValue ?? []))
        object["response_format"] = ["type": "json_schema", "name": "tool_or_answer", "schema": plan.schema]
        var inputTokens: Int64 = 0, outputTokens: Int64 = 0
        var estimated = false
        var lastModel: String?
        for attempt in 0...1 {
            let reply = try native(.object(object))
            if let usage = reply["usage"] {
                inputTokens += usage["input_tokens"]?.int64Value ?? 0
                outputTokens += usage["output_tokens"]?.int64Value ?? 0
                if usage["estimated"]?.boolValue == true { estimated = true }
            }
            lastModel = reply["model"]?.stringValue
            let text = reply["message"]?["content"]?.stringValue ?? ""
            var usage: JSONObject = ["input_tokens": .int(inputTokens), "output_tokens": .int(outputTokens)]
            if estimated { usage["estimated"] = true }
            switch plan.judge(text) {
            case .answer(let answer):
                let out: JSONValue = ["message": ["role": "assistant", "content": .string(answer), "tool_calls": []], "finish_reason": .string(reply["finish_reason"]?.stringValue ?? "stop"),
                                      "usage": .object(usage), "model": .string(lastModel ?? model)]
                if input["stream"]?.boolValue == true { try replay(out) }
                return out
            case .call(let name, let arguments):
                let out: JSONValue = ["message": ["role": "assistant", "content": .null, "tool_calls": [["id": .string(makeCallID()), "name": .string(name), "arguments": arguments]]],
                                      "finish_reason": "tool_calls", "usage": .object(usage), "model": .string(lastModel ?? model)]
                if input["stream"]?.boolValue == true { try replay(out) }
                return out
            case .invalid(let problem, let call):
                if attempt == 0 {
                    core.transport.log(.info, "openai: constrained reply did not validate (\(problem)); asking the model to repair it")
                    var messages = object["messages"]?.arrayValue ?? []
                    messages.append(["role": "assistant", "content": .string(text)])
                    messages.append(["role": "user", "content": .string("That reply is not valid: \(problem). Reply again with only one JSON object that matches the schema.")])
                    object["messages"] = .array(messages)
                    continue
                }
                // Still wrong after the repair: hand the call on (the kernel checks its arguments
                // and the model reads why), or the text as the answer.
                if let (name, arguments) = call {
                    return ["message": ["role": "assistant", "content": .null, "tool_calls": [["id": .string(makeCallID()), "name": .string(name), "arguments": arguments]]],
                            "finish_reason": "tool_calls", "usage": .object(usage), "model": .string(lastModel ?? model)]
                }
                return ["message": ["role": "assistant", "content": .string(text), "tool_calls": []], "finish_reason": "stop", "usage": .object(usage), "model": .string(lastModel ?? model)]
            }
        }
        throw .internal("openai: constrained completion ended without a result")
    }

    // MARK: count_tokens, embed, info

    /// The server's origin (llama-server serves /tokenize and /props beside /v1).
    var serverRoot: String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        return base
    }

    /// cpu `count_tokens`: llama-server's /tokenize (after /apply-template for a conversation)
    /// when the server has it, else an estimate with `"estimated": true`.
    public func countTokens(_ input: JSONValue) throws(DriverError) -> JSONValue {
        do throws(DriverError) {
            var text = input["text"]?.stringValue
            let messages = input["messages"]?.arrayValue
            if text == nil, let messages {
                let request = core.request(serverRoot + "/apply-template", body: ["messages": .array(messages.map { m in
                    ["role": m["role"] ?? "user", "content": .string(m["content"]?.stringValue ?? (m["tool_calls"]?.serialized() ?? ""))]
                })], headers: authHeaders)
                if let response = try? core.transport.send(request), response.status == 200, let prompt = try? core.json(response)["prompt"]?.stringValue {
                    text = prompt + (input["tools"]?.nonEmptyArray.map { JSONValue.array($0).serialized() } ?? "")
                }
            }
            if let text {
                let request = core.request(serverRoot + "/tokenize", body: ["content": .string(text), "add_special": false], headers: authHeaders)
                if let response = try? core.transport.send(request), response.status == 200, let tokens = try? core.json(response)["tokens"]?.arrayValue {
                    return ["tokens": .int(Int64(tokens.count)), "estimated": false]
                }
                if messages == nil { return ["tokens": .int(Int64(TokenEstimate.tokens(text))), "estimated": true] }
            }
            if core.transport.isCancelled { throw DriverError.cancelled }
            return ["tokens": .int(Int64(TokenEstimate.tokens(messages: messages ?? [], tools: input["tools"]?.arrayValue ?? []))), "estimated": true]
        } catch {
            throw core.redact(error)
        }
    }

    /// cpu `embed`: POST /embeddings.
    public func embed(_ input: JSONValue) throws(DriverError) -> JSONValue {
        do throws(DriverError) {
            let texts = input["input"]?.arrayValue ?? []
            let name = embeddingModel ?? model
            let request = core.request("embeddings", body: ["model": .string(name), "input": .array(texts)], headers: authHeaders)
            let response = try core.send(request)
            guard response.status < 300 else {
                var error = core.statusError(response, request: request, model: name, attempts: options.retries + 1)
                if response.status == 501 || response.body.lowercased().contains("embedding") && response.status >= 400 {
                    error = DriverError(.unsupported, "openai: \(origin) does not serve embeddings (llama-server needs --embeddings): \(core.redact(HTTPCore.serverMessage(response.body).message ?? "HTTP \(response.status)"))")
                }
                throw error
            }
            let reply = try core.json(response)
            var rows = reply["data"]?.arrayValue ?? []
            rows.sort { ($0["index"]?.int64Value ?? 0) < ($1["index"]?.int64Value ?? 0) }
            let vectors = rows.compactMap { $0["embedding"] }
            guard vectors.count == texts.count, let first = vectors.first?.arrayValue, !first.isEmpty else {
                throw DriverError(.unavailable, "openai: \(origin) answered \(vectors.count) embeddings for \(texts.count) texts")
            }
            return ["vectors": .array(vectors), "dimensions": .int(Int64(first.count)), "model": .string(reply["model"]?.stringValue ?? name)]
        } catch {
            throw core.redact(error)
        }
    }

    /// cpu `info`. The context length: `options.contextLength`, else what llama-server's /props
    /// says, else 8192. Extension fields: `tool_mode` (the mode in use), `base_url`.
    public func info() -> JSONValue {
        var context = options.contextLength
        if context == nil {
            let request = core.request(serverRoot + "/props", method: "GET", body: nil, headers: authHeaders)
            if let response = try? core.transport.send(request), response.status == 200, let props = try? core.json(response) {
                if let n = props["default_generation_settings"]?["n_ctx"]?.int64Value ?? props["n_ctx"]?.int64Value, n > 0 { context = Int(n) }
            }
        }
        let mode: ToolMode = toolMode == .constrained ? .constrained : (toolMode == .auto && usedMode == .constrained ? .constrained : .native)
        return ["model": .string(model), "context_length": .int(Int64(context ?? 8192)), "native_tool_calls": .bool(mode == .native),
                "constrained_output": true, "streaming": true, "tool_mode": .string(mode.rawValue), "tool_mode_setting": .string(toolMode.rawValue),
                "base_url": .string(baseURL)]
    }
}
