// Tool calling for models without (reliable) native tool calls: the tools become one JSON
// schema the server enforces while decoding (response_format json_schema, a grammar in
// llama-server), and the reply is checked against the chosen tool's input schema.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

public struct ConstrainedTools {
    public enum Verdict {
        case answer(String)
        case call(name: String, arguments: JSONValue)
        /// Why the reply is not acceptable, and the call it tried to make, if any.
        case invalid(String, call: (String, JSONValue)?)
    }

    let tools: [JSONValue]
    let allowAnswer: Bool
    let validators: [String: JSONSchema]

    /// `choice`: "auto" (tool or answer), "required" (a tool), {name} (that tool).
    public init(tools: [JSONValue], choice: JSONValue?) throws(DriverError) {
        var offered = tools
        var answer = true
        if choice?.stringValue == "required" { answer = false }
        if let name = choice?["name"]?.stringValue {
            offered = tools.filter { $0["name"]?.stringValue == name }
            guard !offered.isEmpty else { throw .invalidArgument("tool_choice names \(name), which is not one of the tools") }
            answer = false
        }
        self.tools = offered
        self.allowAnswer = answer
        var validators: [String: JSONSchema] = [:]
        for tool in offered {
            guard let name = tool["name"]?.stringValue else { continue }
            validators[name] = try? JSONSchema(tool["input_schema"] ?? .bool(true))
        }
        self.validators = validators
    }

    /// `oneOf` of {tool: const name, arguments: input_schema} per tool, and {answer: string}.
    public var schema: JSONValue {
        var options: [JSONValue] = tools.map { tool in
            ["type": "object",
             "properties": ["tool": ["const": tool["name"] ?? ""], "arguments": tool["input_schema"] ?? ["type": "object"]],
             "required": ["tool", "arguments"], "additionalProperties": false]
        }
        if allowAnswer {
            options.append(["type": "object", "properties": ["answer": ["type": "string"]], "required": ["answer"], "additionalProperties": false])
        }
        return options.count == 1 ? options[0] : ["oneOf": .array(options)]
    }

    /// The instructions, as a system message.
    var instructions: String {
        var lines = ["You can call tools. Reply with exactly one JSON object and nothing else:"]
        lines.append("- to call a tool: {\"tool\": \"<tool name>\", \"arguments\": {<arguments matching the tool's schema>}}")
        if allowAnswer { lines.append("- to answer the user directly: {\"answer\": \"<your answer>\"}") }
        lines.append("Tools:")
        for tool in tools {
            lines.append("- \(tool["name"]?.stringValue ?? ""): \(tool["description"]?.stringValue ?? "") Arguments schema: \((tool["input_schema"] ?? ["type": "object"]).serialized())")
        }
        return lines.joined(separator: "\n")
    }

    /// The conversation for a backend that knows no tool messages: the instructions joined to
    /// the system prompt, earlier tool calls as the JSON the model would have written, tool
    /// results as user messages.
    public func messages(_ messages: [JSONValue]) -> [JSONValue] {
        var out: [JSONValue] = []
        var system = [instructions]
        for message in messages {
            let role = message["role"]?.stringValue ?? "user"
            let content = message["content"]?.stringValue ?? ""
            switch role {
            case "system": system.insert(content, at: system.count - 1)
            case "assistant":
                if let calls = message["tool_calls"]?.nonEmptyArray {
                    for call in calls {
                        let text: JSONValue = ["tool": call["name"] ?? "", "arguments": call["arguments"] ?? .object([:])]
                        out.append(["role": "assistant", "content": .string(text.serialized())])
                    }
                } else {
                    out.append(["role": "assistant", "content": .string(content)])
                }
            case "tool":
                let name = message["name"]?.stringValue.map { " of \($0)" } ?? ""
                out.append(["role": "user", "content": .string("Result\(name) (call \(message["tool_call_id"]?.stringValue ?? "?")): \(content)")])
            default:
                out.append(["role": .string(role), "content": .string(content)])
            }
        }
        return [["role": "system", "content": .string(system.joined(separator: "\n\n"))]] + out
    }

    /// Checks one reply: JSON, one of the offered forms, arguments valid for the tool.
    public func judge(_ text: String) -> Verdict {
        let value: JSONValue
        do { value = try JSON.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
            return .invalid("it is not JSON (\(error))", call: nil)
        }
        if let name = value["tool"]?.stringValue {
            let arguments = value["arguments"] ?? .object([:])
            guard tools.contains(where: { $0["name"]?.stringValue == name }) else {
                let known = tools.compactMap { $0["name"]?.stringValue }.joined(separator: ", ")
                return .invalid("there is no tool \"\(name)\" (the tools are: \(known))", call: nil)
            }
            guard arguments.objectValue != nil else {
                return .invalid("\"arguments\" must be an object with the arguments of \(name)", call: (name, .object([:])))
            }
            if let schema = validators[name] {
                let violations = schema.validate(arguments)
                if !violations.isEmpty {
                    return .invalid("the arguments of \(name) do not match its schema: " + violations.map(\.message).joined(separator: "; "), call: (name, arguments))
                }
            }
            return .call(name: name, arguments: arguments)
        }
        if let answer = value["answer"]?.stringValue {
            guard allowAnswer else { return .invalid("a tool must be called; {\"answer\"} is not allowed here", call: nil) }
            return .answer(answer)
        }
        return .invalid(allowAnswer ? "expected {\"tool\", \"arguments\"} or {\"answer\"}" : "expected {\"tool\", \"arguments\"}", call: nil)
    }
}
