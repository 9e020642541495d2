import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import LLMOSJSON
import LLMOSKernel
import Synchronization

/// POST /v1/chat/completions, in OpenAI's shapes: each request is one agent process on the
/// kernel (the model the client names is a driver set), with the host's policy and audit.
/// The conversation's earlier turns are given to the process before the last user message,
/// which is its task.
struct ChatRequest {
    var model: HTTPAgentModel
    var earlier: [JSONValue]
    var task: String
    var system: String?
    var stream: Bool
    var includeUsage: Bool
    var temperature: Double?
    var maxTokens: Int?
    var user: String?

    /// Fields OpenAI defines that an llmos agent does not do: refused by name, not ignored.
    static let refused: [String: String] = [
        "tools": "the model is an llmos agent that calls the host's own tools (after its policy); it does not hand tool calls back to the client. Leave out tools, or call the host's tools over MCP at /mcp",
        "functions": "the model is an llmos agent that calls the host's own tools; leave out functions",
        "audio": "audio output is not supported",
        "prediction": "predicted outputs are not supported",
    ]

    static func parse(_ body: JSONValue, models: [HTTPAgentModel]) -> Result<ChatRequest, HTTPFailure> {
        func bad(_ message: String, param: String?, code: String = "invalid_value", status: HTTPResponse.Status = .badRequest) -> Result<ChatRequest, HTTPFailure> {
            .failure(HTTPFailure(LLMOSHTTPServer.error(status, message, code: code, param: param)))
        }
        guard let object = body.objectValue else { return bad("the request body must be a JSON object, got \(body.typeName)", param: nil) }
        for (field, why) in refused {
            if let value = object[field], !value.isNull, value != .array([]) { return bad("\(field): \(why)", param: field, code: "unsupported_parameter") }
        }
        if let toolChoice = object["tool_choice"], toolChoice.stringValue != "none", toolChoice.stringValue != "auto", !toolChoice.isNull {
            return bad("tool_choice: the llmos agent chooses the host's tools itself; send none or leave it out", param: "tool_choice", code: "unsupported_parameter")
        }
        guard let modelValue = object["model"] else { return bad("model is required: one of \(models.map(\.id).joined(separator: ", ")) (GET /v1/models)", param: "model", code: "missing_required_parameter") }
        guard let modelID = modelValue.stringValue else { return bad("model must be a string, got \(modelValue.typeName)", param: "model", code: "invalid_type") }
        guard let model = models.first(where: { $0.id == modelID }) else {
            return bad("The model `\(modelID)` does not exist on this server: its models are \(models.map(\.id).joined(separator: ", ")) (GET /v1/models)"
                       + NearestNames.suggestion(for: modelID, in: models.map(\.id)),
                       param: "model", code: "model_not_found", status: .notFound)
        }
        if let n = object["n"], !n.isNull, n.int64Value != 1 {
            return bad("n must be 1: an agent run gives one answer", param: "n", code: "unsupported_parameter")
        }
        var stream = false
        if let value = object["stream"], !value.isNull {
            guard let flag = value.boolValue else { return bad("stream must be true or false, got \(value.typeName)", param: "stream", code: "invalid_type") }
            stream = flag
        }
        var includeUsage = false
        if let options = object["stream_options"], !options.isNull {
            guard options.objectValue != nil else { return bad("stream_options must be an object", param: "stream_options", code: "invalid_type") }
            includeUsage = options["include_usage"]?.boolValue ?? false
        }
        var temperature: Double?
        if let value = object["temperature"], !value.isNull {
            guard let t = value.doubleValue, (0...2).contains(t) else { return bad("temperature must be a number from 0 to 2, got \(value.serialized())", param: "temperature") }
            temperature = t
        }
        var maxTokens: Int?
        for field in ["max_completion_tokens", "max_tokens"] {
            guard let value = object[field], !value.isNull else { continue }
            guard let n = value.int64Value, n >= 1, n <= 1 << 20 else { return bad("\(field) must be a whole number of at least 1, got \(value.serialized())", param: field) }
            maxTokens = Int(n)
            break
        }
        var user: String?
        if let value = object["user"], !value.isNull {
            guard let text = value.stringValue else { return bad("user must be a string", param: "user", code: "invalid_type") }
            user = String(text.prefix(64))
        }

        guard let messagesValue = object["messages"] else { return bad("messages is required: a list of {role, content}", param: "messages", code: "missing_required_parameter") }
        guard let messages = messagesValue.arrayValue else { return bad("messages must be an array, got \(messagesValue.typeName)", param: "messages", code: "invalid_type") }
        guard !messages.isEmpty else { return bad("messages must not be empty: the last one is the user's task", param: "messages") }
        var systemParts: [String] = []
        var turns: [JSONValue] = []
        for (index, message) in messages.enumerated() {
            let at = "messages[\(index)]"
            guard message.objectValue != nil else { return bad("\(at) must be an object {role, content}, got \(message.typeName)", param: at, code: "invalid_type") }
            guard let role = message["role"]?.stringValue else { return bad("\(at).role is required: system, user or assistant", param: "\(at).role", code: "missing_required_parameter") }
            let text: String
            switch content(message["content"]) {
            case .success(let t): text = t
            case .failure(let why): return bad("\(at).content: \(why)", param: "\(at).content")
            }
            switch role {
            case "system", "developer":
                systemParts.append(text)
            case "user":
                turns.append(["role": "user", "content": .string(text)])
            case "assistant":
                if let calls = message["tool_calls"], !calls.isNull, calls != .array([]) {
                    return bad("\(at).tool_calls: the llmos agent makes its own tool calls; a conversation sent here cannot contain the client's", param: "\(at).tool_calls", code: "unsupported_parameter")
                }
                turns.append(["role": "assistant", "content": .string(text)])
            case "tool", "function":
                return bad("\(at).role \(role): the llmos agent runs the host's tools itself; there are no client tool results to send", param: "\(at).role", code: "unsupported_parameter")
            default:
                return bad("\(at).role must be system, developer, user or assistant, got \(role)", param: "\(at).role")
            }
        }
        guard let last = turns.last, last["role"]?.stringValue == "user" else {
            return bad("the last message (after any system messages) must be the user's: it is the agent's task", param: "messages")
        }
        let task = last["content"]?.stringValue ?? ""
        guard !task.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return bad("messages[\(messages.count - 1)].content is empty: the last user message is the agent's task", param: "messages[\(messages.count - 1)].content")
        }
        return .success(ChatRequest(model: model, earlier: Array(turns.dropLast()), task: task,
                                    system: systemParts.isEmpty ? nil : systemParts.joined(separator: "\n\n"),
                                    stream: stream, includeUsage: includeUsage, temperature: temperature, maxTokens: maxTokens, user: user))
    }

    /// A message's content: a string, or text parts ({type: "text", text}).
    static func content(_ value: JSONValue?) -> Result<String, ContentError> {
        guard let value, !value.isNull else { return .failure(ContentError(description: "is required (a string, or a list of text parts)")) }
        if let text = value.stringValue { return .success(text) }
        guard let parts = value.arrayValue else { return .failure(ContentError(description: "must be a string or a list of parts, got \(value.typeName)")) }
        var texts: [String] = []
        for (index, part) in parts.enumerated() {
            guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                let type = part["type"]?.stringValue ?? part.typeName
                return .failure(ContentError(description: "part \(index) is \(type): only text parts ({\"type\": \"text\", \"text\": ...}) are supported"))
            }
            texts.append(text)
        }
        return .success(texts.joined(separator: "\n"))
    }

    struct ContentError: Error, CustomStringConvertible { var description: String }
}

/// The text a client sees while a run streams, as `llmos ask` prints it: the model's text
/// as it is generated, or a step's whole reply from a driver that does not stream.
final class StreamText: Sendable {
    private let streamed = Mutex(false)
    private let any = Mutex(false)
    /// Some text went to the client.
    var wroteAny: Bool { any.withLock { $0 } }

    func text(for event: AgentEvent) -> String? {
        let text = pick(event)
        if text != nil { any.withLock { $0 = true } }
        return text
    }

    /// The text this event adds, if any.
    private func pick(_ event: AgentEvent) -> String? {
        switch event {
        case .text(let delta):
            guard !delta.isEmpty else { return nil }
            streamed.withLock { $0 = true }
            return delta
        case .reply(_, let reply):
            let already = streamed.withLock { value -> Bool in
                defer { value = false }
                return value
            }
            if !already, let content = reply.content, !content.isEmpty { return content }
            return nil
        case .step:
            streamed.withLock { $0 = false }
            return nil
        default:
            return nil
        }
    }
}

extension LLMOSHTTPServer {
    func modelList() -> JSONValue {
        let created = Int64(Date().timeIntervalSince1970)
        return ["object": "list", "data": .array(options.models.map { model in
            ["id": .string(model.id), "object": "model", "created": .int(created), "owned_by": "llmos",
             "llmos": ["cpu": .string(model.drivers.cpu), "tools": .array(model.drivers.tools.map(JSONValue.string)),
                       "memory": .string(model.drivers.memory), "storage": model.drivers.storage.map(JSONValue.string) ?? .null,
                       "max_steps": .int(Int64(model.budgets.maxSteps)), "description": .string(model.description)]]
        })]
    }

    func chatCompletions(_ request: Request) async throws -> Response {
        let body: JSONValue
        switch try await jsonBody(request) {
        case .failure(let failure): return failure.response
        case .success(let value): body = value
        }
        let chat: ChatRequest
        switch ChatRequest.parse(body, models: options.models) {
        case .failure(let failure): return failure.response
        case .success(let parsed): chat = parsed
        }
        let process = AgentProcess(owner: chat.user.map { "http:\($0)" } ?? "http", drivers: chat.model.drivers, budgets: chat.model.budgets)
        var agentOptions = AgentOptions()
        agentOptions.keepsProcess = false
        agentOptions.temperature = chat.temperature
        agentOptions.maxTokensPerTurn = chat.maxTokens
        agentOptions.workspace = options.workspace
        if let system = chat.system {
            // The client's instructions come after the agent's own (which say how to use the tools).
            let own = AgentPrompts.system(date: Date(), workspace: options.workspace ?? kernel.configuration.workspace, hasTools: true)
            agentOptions.systemPrompt = own + "\n\n" + system
        }
        let id = "chatcmpl-llmos-\(process.pid)-\(UInt32.random(in: 0...UInt32.max))"
        let created = Int64(Date().timeIntervalSince1970)
        if chat.stream {
            return streamCompletion(chat, process: process, options: agentOptions, id: id, created: created)
        }
        let contexts = self.contexts
        let pid = process.pid
        let loop = AgentLoop(kernel: kernel, process: process, options: agentOptions) { event in
            if case .step(let step) = event { contexts.record(pid: pid, step) }
        }
        do { try loop.preload(chat.earlier) } catch {
            return Self.error(.internalServerError, "the memory driver could not take the conversation: \(error.message)", type: "server_error", code: error.code.name)
        }
        let result = await runAgent(loop, task: chat.task)
        if result.stopReason != .completed, result.answer == nil {
            return Self.runFailure(result)
        }
        let answer = result.answer ?? ""
        return Self.json(["id": .string(id), "object": "chat.completion", "created": .int(created), "model": .string(chat.model.id),
                          "system_fingerprint": .string("llmos-\(chat.model.drivers.cpu)"),
                          "choices": [["index": 0, "message": ["role": "assistant", "content": .string(answer), "refusal": .null],
                                       "logprobs": .null, "finish_reason": .string(Self.finishReason(result.stopReason))]],
                          "usage": Self.usage(result.usage),
                          "llmos": Self.extensionFields(result)])
    }

    /// A run that stopped without any answer: OpenAI's error shape, with the stop reason.
    static func runFailure(_ result: AgentRunResult) -> Response {
        let status: HTTPResponse.Status
        switch result.stopReason {
        case .cpuError: status = .badGateway
        case .denied: status = .forbidden
        case .cancelled: status = .serviceUnavailable
        default: status = .internalServerError
        }
        return error(status, "the agent stopped without an answer (\(result.stopReason.rawValue)): \(result.detail)", type: "server_error",
                     code: result.stopReason.rawValue)
    }

    static func finishReason(_ reason: AgentStopReason) -> String {
        switch reason {
        case .maxSteps, .budget: return "length"
        default: return "stop"
        }
    }

    static func usage(_ usage: AgentUsage) -> JSONValue {
        ["prompt_tokens": .int(Int64(usage.inputTokens)), "completion_tokens": .int(Int64(usage.outputTokens)),
         "total_tokens": .int(Int64(usage.inputTokens + usage.outputTokens))]
    }

    /// What OpenAI's shape has no room for: the process, why it stopped, its tool calls.
    static func extensionFields(_ result: AgentRunResult) -> JSONValue {
        ["pid": .int(Int64(result.pid)), "stop_reason": .string(result.stopReason.rawValue), "detail": .string(result.detail),
         "steps": .int(Int64(result.steps.count)), "estimated_usage": .bool(result.usage.estimated),
         "tool_calls": .array(result.allCalls.map(toolCallJSON)),
         "sources": .array(result.sources.map { ["number": .int(Int64($0.number)), "source": .string($0.source)] })]
    }

    static func toolCallJSON(_ record: AgentToolCallRecord) -> JSONValue {
        var object: JSONObject = ["name": .string(record.call.name), "arguments": record.call.arguments, "outcome": .string(record.outcome.rawValue)]
        if record.outcome == .ok {
            object["result"] = (try? JSON.parse(record.content)) ?? .string(record.content)
        } else {
            object["error"] = .string(record.content)
        }
        return .object(object)
    }

    /// Runs a task on a thread of its own (an agent run blocks), at most
    /// `maxConcurrentAgents` at once.
    func runAgent(_ loop: AgentLoop, task: String) async -> AgentRunResult {
        await withCheckedContinuation { continuation in
            agentQueue.async { [agentSlots] in
                agentSlots.wait()
                let result = loop.run(task: task)
                agentSlots.signal()
                continuation.resume(returning: result)
            }
        }
    }

    /// `stream: true`: server-sent events as OpenAI sends them, `data: CHUNK` for each piece
    /// of text, a last chunk with finish_reason (and usage when asked), then `data: [DONE]`.
    /// Tool calls the agent makes are chunks with an empty delta and an `llmos` field;
    /// `: keep-alive` comment lines come every second. A client that hangs up cancels the run.
    func streamCompletion(_ chat: ChatRequest, process: AgentProcess, options agentOptions: AgentOptions, id: String, created: Int64) -> Response {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .unbounded)
        let model = chat.model.id
        let fingerprint = "llmos-\(chat.model.drivers.cpu)"
        @Sendable func chunk(_ delta: JSONValue, finish: String? = nil, extra: JSONValue? = nil, usage: JSONValue? = nil) -> ByteBuffer {
            var object: JSONObject = ["id": .string(id), "object": "chat.completion.chunk", "created": .int(created), "model": .string(model),
                                      "system_fingerprint": .string(fingerprint),
                                      "choices": usage != nil && finish == nil && delta == [:] ? [] :
                                        [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finish.map(JSONValue.string) ?? .null]]]
            if let extra { object["llmos"] = extra }
            if let usage { object["usage"] = usage }
            return ByteBuffer(string: "data: \(JSONValue.object(object).serialized())\n\n")
        }
        let text = StreamText()
        let contexts = self.contexts
        let pid = process.pid
        let loop = AgentLoop(kernel: kernel, process: process, options: agentOptions) { event in
            if let delta = text.text(for: event) { continuation.yield(chunk(["content": .string(delta)])) }
            switch event {
            case .step(let step): contexts.record(pid: pid, step)
            case .toolCall(_, let call):
                continuation.yield(chunk([:], extra: ["event": "tool_call", "name": .string(call.name), "arguments": call.arguments]))
            case .toolResult(_, let record):
                continuation.yield(chunk([:], extra: ["event": "tool_result", "name": .string(record.call.name),
                                                      "outcome": .string(record.outcome.rawValue)]))
            default: break
            }
        }
        continuation.onTermination = { reason in
            if case .cancelled = reason { process.cancel() }
        }
        continuation.yield(chunk(["role": "assistant", "content": ""]))
        let includeUsage = chat.includeUsage
        let earlier = chat.earlier
        let task = chat.task
        do { try loop.preload(earlier) } catch {
            continuation.finish()
            return Self.error(.internalServerError, "the memory driver could not take the conversation: \(error.message)", type: "server_error", code: error.code.name)
        }
        // A comment line every second while the run goes on: proxies keep the connection,
        // and a client that hung up is noticed (the write fails) even while the model is
        // silent, so its run is cancelled.
        Task {
            while true {
                try? await Task.sleep(for: .seconds(1))
                guard case .enqueued = continuation.yield(ByteBuffer(string: ": keep-alive\n\n")) else { return }
            }
        }
        Task { [self] in
            let result = await runAgent(loop, task: task)
            if result.stopReason != .completed, result.answer == nil {
                let error: JSONValue = ["error": ["message": .string("the agent stopped without an answer (\(result.stopReason.rawValue)): \(result.detail)"),
                                                  "type": "server_error", "code": .string(result.stopReason.rawValue)]]
                continuation.yield(ByteBuffer(string: "data: \(error.serialized())\n\n"))
            } else {
                // A stop other than completed may end with an answer that was never streamed.
                if !text.wroteAny, let answer = result.answer, !answer.isEmpty { continuation.yield(chunk(["content": .string(answer)])) }
                continuation.yield(chunk([:], finish: Self.finishReason(result.stopReason), extra: Self.extensionFields(result)))
                if includeUsage { continuation.yield(chunk([:], usage: Self.usage(result.usage))) }
            }
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
                        body: ResponseBody(asyncSequence: stream))
    }
}
