import Foundation
import LLMOSJSON

// What an agent run leaves behind: every step (the request as sent, the model's reply, each
// tool call and what the model was told about it, the usage), the answer, the stop reason.

/// Tokens of one turn or of a whole run.
public struct AgentUsage: Sendable, Equatable {
    public var inputTokens = 0
    public var outputTokens = 0
    /// true when any of it was estimated (the backend reported no usage).
    public var estimated = false

    public init(inputTokens: Int = 0, outputTokens: Int = 0, estimated: Bool = false) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.estimated = estimated
    }

    static func += (lhs: inout AgentUsage, rhs: AgentUsage) {
        lhs.inputTokens += rhs.inputTokens
        lhs.outputTokens += rhs.outputTokens
        lhs.estimated = lhs.estimated || rhs.estimated
    }

    public var json: JSONValue {
        ["input_tokens": .int(Int64(inputTokens)), "output_tokens": .int(Int64(outputTokens)), "estimated": .bool(estimated)]
    }
}

/// A tool call as the model asked for it.
public struct AgentToolCall: Sendable, Equatable {
    public var id: String
    /// The qualified name as the model wrote it (it may name no real tool).
    public var name: String
    /// The parsed arguments ({} when the model's text was not a JSON object).
    public var arguments: JSONValue
    /// The model's text when it was not a JSON object (cpu.schema.json tool_call.raw_arguments).
    public var rawArguments: String?

    public var json: JSONValue {
        var object: JSONObject = ["id": .string(id), "name": .string(name), "arguments": arguments]
        if let rawArguments { object["raw_arguments"] = .string(rawArguments) }
        return .object(object)
    }
}

/// The model's reply in one step.
public struct AgentReply: Sendable, Equatable {
    public var content: String?
    public var toolCalls: [AgentToolCall]
    public var finishReason: String
    public var usage: AgentUsage
    public var model: String

    public var json: JSONValue {
        ["content": content.map(JSONValue.string) ?? .null, "tool_calls": .array(toolCalls.map(\.json)),
         "finish_reason": .string(finishReason), "usage": usage.json, "model": .string(model)]
    }
}

/// What became of one tool call.
public enum AgentCallOutcome: String, Sendable, CaseIterable {
    /// Dispatched; the tool's output went back to the model.
    case ok
    /// No such tool in this run: the model was told the nearest real ones.
    case unknownTool = "unknown_tool"
    /// The arguments were not a JSON object (truncated, not JSON): not run, the model told why.
    case malformedArguments = "malformed_arguments"
    /// The arguments did not match the tool's input schema: not run, the model told exactly what was wrong.
    case invalidArguments = "invalid_arguments"
    /// The capability layer refused it.
    case denied
    /// The tool ran and failed (its error went back to the model).
    case toolError = "tool_error"
    /// The run was cancelled while it ran.
    case cancelled
    /// Not run: the tool-call budget was used up, or tools were withheld that turn.
    case skipped
}

/// One tool call and what the model was told about it (the tool message's content).
public struct AgentToolCallRecord: Sendable {
    public var call: AgentToolCall
    public var outcome: AgentCallOutcome
    /// Exactly what the model reads: the tool's output, or the error written for it.
    public var content: String
    /// The error, when there was one (the kernel's code and message).
    public var error: LLMOSError?
    public var elapsedNanoseconds: UInt64 = 0

    public var json: JSONValue {
        var object: JSONObject = ["call": call.json, "outcome": .string(outcome.rawValue), "content": .string(content),
                                  "elapsed_ns": .int(Int64(clamping: elapsedNanoseconds))]
        if let error { object["error"] = error.json }
        return .object(object)
    }
}

/// The request of one step, as it was sent.
public struct AgentRequestSummary: Sendable, Equatable {
    /// Messages sent (system prompt included).
    public var messages = 0
    /// Older messages left out to fit the context window.
    public var droppedMessages = 0
    /// Tool results shortened to fit.
    public var truncatedMessages = 0
    /// The prompt's size in tokens (messages and tool definitions).
    public var promptTokens = 0
    /// true: counted by the cpu driver's count_tokens; false: estimated.
    public var counted = false
    /// The prompt may use at most this much (the context length less `maxTokens`).
    public var promptLimit = 0
    /// max_tokens sent.
    public var maxTokens = 0
    /// Tools shown to the model.
    public var tools = 0
    /// Tools the run may call (more than `tools` when only the relevant ones were shown).
    public var availableTools = 0
    /// "auto", or "none" when tools were withheld.
    public var toolChoice = "auto"

    public var json: JSONValue {
        ["messages": .int(Int64(messages)), "dropped_messages": .int(Int64(droppedMessages)),
         "truncated_messages": .int(Int64(truncatedMessages)), "prompt_tokens": .int(Int64(promptTokens)),
         "counted": .bool(counted), "prompt_limit": .int(Int64(promptLimit)), "max_tokens": .int(Int64(maxTokens)),
         "tools": .int(Int64(tools)), "available_tools": .int(Int64(availableTools)), "tool_choice": .string(toolChoice)]
    }
}

/// Why a step was taken the way it was.
public enum AgentStepKind: String, Sendable {
    /// An ordinary turn, tools offered.
    case normal
    /// The reply before could not be read: asked again with the error.
    case repair
    /// The loop detector withheld tools to force an answer.
    case forcedAnswer = "forced_answer"
    /// A budget is about to run out: one last turn, no tools, for the best answer so far.
    case final
}

/// One step of a run: one cpu call and the tool calls it asked for.
public struct AgentStep: Sendable {
    /// 1-based.
    public var index: Int
    public var kind: AgentStepKind
    public var request: AgentRequestSummary
    /// nil when the cpu call failed (see `error`).
    public var reply: AgentReply?
    /// The cpu call's failure, or why its output was unusable.
    public var error: LLMOSError?
    public var calls: [AgentToolCallRecord] = []
    /// What the kernel told the model after this step (a loop warning, a repair request,
    /// a last-turn request), in order.
    public var notes: [String] = []
    /// The whole step: queue, model, tool calls and the kernel's own work.
    public var elapsedNanoseconds: UInt64 = 0
    /// Of that, inside the cpu driver (complete, count_tokens), as the kernel timed its calls.
    public var cpuNanoseconds: UInt64 = 0
    /// Of that, waiting for a slot of the cpu driver (the scheduler's queue).
    public var queueNanoseconds: UInt64 = 0

    public var json: JSONValue {
        var object: JSONObject = ["index": .int(Int64(index)), "kind": .string(kind.rawValue), "request": request.json,
                                  "reply": reply?.json ?? .null, "calls": .array(calls.map(\.json)),
                                  "notes": .array(notes.map(JSONValue.string)), "elapsed_ns": .int(Int64(clamping: elapsedNanoseconds)),
                                  "cpu_ns": .int(Int64(clamping: cpuNanoseconds)), "queue_ns": .int(Int64(clamping: queueNanoseconds))]
        object["error"] = error?.json ?? .null
        return .object(object)
    }
}

/// The outcome of `AgentLoop.run(task:)`.
public struct AgentRunResult: Sendable {
    public var pid: Int
    public var task: String
    /// The model's final text; for a stop other than `completed`, the best it gave (the last
    /// turn's text), or nil when it gave none.
    public var answer: String?
    public var stopReason: AgentStopReason
    /// A sentence saying why, for people ("the step limit of 4 was reached").
    public var detail: String
    public var steps: [AgentStep]
    public var usage: AgentUsage
    /// Tool calls dispatched.
    public var toolCalls: Int
    /// The conversation as it stands (system prompt first), ready for the next run.
    public var messages: [JSONValue]
    public var elapsedNanoseconds: UInt64
    /// The model's plan, when it gave one (a numbered list in its text).
    public var plan: [String] = []
    /// What the run cost at the cpu driver's prices; nil when it has none.
    public var costUSD: Double?
    /// Passages retrieved from storage for the task, numbered [1]... as the model saw them.
    public var sources: [RetrievedPassage] = []
    /// Why nothing was retrieved, or how ("ranked by text alone").
    public var retrievalNote: String?

    /// Every tool call of the run, in order.
    public var allCalls: [AgentToolCallRecord] { steps.flatMap(\.calls) }

    /// The form `--json` prints: answer, tool calls, stop reason, usage, the steps.
    public var json: JSONValue {
        var usage = self.usage.json
        if let costUSD, case .object(var object) = usage {
            object["cost_usd"] = .double(costUSD)
            usage = .object(object)
        }
        return ["pid": .int(Int64(pid)), "task": .string(task), "answer": answer.map(JSONValue.string) ?? .null,
                "stop_reason": .string(stopReason.rawValue), "detail": .string(detail), "usage": usage,
                "tool_calls": .int(Int64(toolCalls)), "plan": .array(plan.map(JSONValue.string)), "steps": .array(steps.map(\.json)),
                "elapsed_ns": .int(Int64(clamping: elapsedNanoseconds)),
                "sources": .array(sources.map(\.json)), "retrieval_note": retrievalNote.map(JSONValue.string) ?? .null]
    }
}

/// A passage the kernel retrieved from storage and placed in the context, cited as [number].
public struct RetrievedPassage: Sendable, Equatable {
    public var number: Int
    public var id: String
    /// Where it came from: the document's `source` metadata (a path, with lines when known).
    public var source: String
    public var text: String
    public var score: Double

    public init(number: Int, id: String, source: String, text: String, score: Double) {
        self.number = number
        self.id = id
        self.source = source
        self.text = text
        self.score = score
    }

    public var json: JSONValue {
        ["number": .int(Int64(number)), "id": .string(id), "source": .string(source), "text": .string(text), "score": .double(score)]
    }
}

/// What an observer sees while a run goes on, on the run's thread.
public enum AgentEvent: Sendable {
    /// A piece of the model's text as it is generated (when the cpu driver streams).
    case text(String)
    /// A step's reply, complete.
    case reply(step: Int, AgentReply)
    /// A tool call about to be dispatched.
    case toolCall(step: Int, AgentToolCall)
    /// What became of a tool call.
    case toolResult(step: Int, AgentToolCallRecord)
    /// Something the kernel told the model (a warning, a repair request, a last-turn request).
    case note(step: Int, String)
    /// The plan the model gave for the task (a numbered list in its text), once per task.
    case plan(step: Int, [String])
    /// The step, complete.
    case step(AgentStep)
}

/// A plan in a model's text: two or more numbered lines ("1. Look up the rate", "2) Convert"),
/// or markdown checkboxes ("- [ ] ..."). Anything else is not a plan.
public enum AgentPlan {
    public static func parse(_ text: String) -> [String]? {
        var items: [String] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if let item = numbered(line) ?? checkbox(line) {
                items.append(item)
            } else if !items.isEmpty && !line.isEmpty && items.count >= 2 {
                break   // the list ended
            }
        }
        return items.count >= 2 ? items : nil
    }

    private static func numbered(_ line: String) -> String? {
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 2 else { return nil }
        let rest = line.dropFirst(digits.count)
        guard let mark = rest.first, mark == "." || mark == ")" else { return nil }
        let item = rest.dropFirst().trimmingCharacters(in: .whitespaces)
        return item.isEmpty ? nil : item
    }

    private static func checkbox(_ line: String) -> String? {
        for prefix in ["- [ ] ", "- [x] ", "* [ ] "] where line.hasPrefix(prefix) {
            let item = line.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
            return item.isEmpty ? nil : item
        }
        return nil
    }
}
