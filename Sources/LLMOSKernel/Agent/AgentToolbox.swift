import LLMOSJSON

/// The tools one run offers the model, and the checks of each call the model makes before
/// it is dispatched: a tool that is not offered, arguments that are not a JSON object,
/// arguments that do not match the schema — each becomes an error written for the model
/// (naming the nearest real tools, or exactly what was wrong), never a crash.
///
/// Tool names keep their dots (`calc.add`): cpu drivers encode them for backends that allow
/// only [A-Za-z0-9_-] and decode them again (cpu.schema.json, tool_call.name).
struct AgentToolbox: Sendable {
    let tools: [ToolInfo]
    /// Every tool the run may call.
    let names: [String]
    /// cpu.schema.json tool_spec objects, as `complete` takes them: the tools shown to the
    /// model (all of them, unless `offer(for:budgetTokens:)` chose the relevant ones).
    private(set) var specs: [JSONValue]
    /// Every tool's spec, shown or not (what `tools.search` searches).
    private let allSpecs: [JSONValue]
    /// Set when the shown tools are a selection: `tools.search` is offered too.
    private(set) var narrowed = false

    /// The tool the loop answers itself when it narrowed the set: the model's way to ask
    /// for tools it was not shown ("tool definitions are memory too").
    static let searchTool = "tools.search"
    static let searchSpec: JSONValue = [
        "name": .string(searchTool),
        "description": "Find more tools by what they do. Returns the names, descriptions and arguments of matching tools, which you can then call.",
        "input_schema": ["type": "object", "required": ["query"],
                         "properties": ["query": ["type": "string", "description": "what the tool should do, in a few words"]]],
    ]

    /// Tools of class `tool` drivers whose names match the driver set's globs (a cpu,
    /// memory or storage driver's operations are not offered, except `alsoOffer`: the
    /// memory's recall and remember, the storage's search).
    init(kernel: Kernel, drivers: AgentDriverSet, alsoOffer: [String] = []) {
        let toolDrivers = Set(kernel.loadedDrivers.filter { $0.deviceClass == .tool }.map(\.name))
        let extra = Set(alsoOffer)
        tools = kernel.tools.filter { (toolDrivers.contains($0.driver) && drivers.allows($0.name)) || extra.contains($0.name) }
        names = tools.map(\.name)
        specs = tools.map { tool in
            ["name": .string(tool.name), "description": .string(tool.description), "input_schema": tool.inputSchema]
        }
        allSpecs = specs
    }

    func offers(_ name: String) -> Bool { names.contains(name) || (narrowed && name == Self.searchTool) }

    /// Shows the model only the tools most relevant to `task` when all of them would take
    /// more than `budgetTokens` (see ToolSelection), and `tools.search` to find the others.
    /// Returns whether it narrowed the set.
    @discardableResult
    mutating func offer(for task: String, budgetTokens: Int) -> Bool {
        let searchCost = ContextWindow.estimate(Self.searchSpec.serialized())
        guard 8 + specs.reduce(0, { $0 + ContextWindow.estimate($1.serialized()) }) > budgetTokens else { return false }
        let chosen = ToolSelection.select(task: task, specs: specs, budgetTokens: max(0, budgetTokens - searchCost))
        guard chosen.count < specs.count else { return false }
        specs = chosen.map { specs[$0] } + [Self.searchSpec]
        narrowed = true
        return true
    }

    /// `tools.search`: the best matches for `query` among all the run's tools; those not
    /// shown yet are shown from the next request on (at most `limit` a search).
    mutating func search(_ query: String, limit: Int = 5) -> String {
        let found = ToolSelection.search(query: query, specs: allSpecs, limit: limit)
        guard !found.isEmpty else {
            return "no tool matches \"\(query)\"; try other words (what the tool does, e.g. \"read a file\")"
        }
        let shown = Set(specs.compactMap { $0["name"]?.stringValue })
        for index in found where !shown.contains(allSpecs[index]["name"]?.stringValue ?? "") {
            specs.insert(allSpecs[index], at: max(0, specs.count - 1))
        }
        let lines = found.map { index -> String in
            let spec = allSpecs[index]
            return "\(spec["name"]?.stringValue ?? "") \(Self.shape(of: spec["input_schema"] ?? .object([:]))): \(spec["description"]?.stringValue ?? "")"
        }
        return "tools you can call now:\n" + lines.joined(separator: "\n")
    }

    /// What the model reads for a tool that is not offered: "no tool calc.addd — did you mean
    /// calc.add?", the kernel's words, with suggestions drawn from this run's tools only.
    func unknownToolMessage(_ name: String) -> String {
        guard !names.isEmpty else { return "no tool \(name): no tools are available in this run; answer in plain text" }
        var message = "no tool \(name)"
        let suggestion = NearestNames.suggestion(for: name, in: names)
        if !suggestion.isEmpty { return message + suggestion }
        if let dot = name.firstIndex(of: "."), case let prefix = String(name[...dot]),
           case let same = names.filter({ $0.hasPrefix(prefix) }), !same.isEmpty {
            return message + "; \(name[..<dot]) offers \(same.joined(separator: ", "))"
        }
        let listed = names.prefix(12).joined(separator: ", ")
        message += "; the tools are \(listed)\(names.count > 12 ? " and \(names.count - 12) more" : "")"
        if !name.contains(".") { message += " (tools are named driver.tool)" }
        return message
    }

    /// {"a": number, "b": number} (required: a, b): the shape of a tool's arguments, to show
    /// a model that got them wrong.
    static func shape(of schema: JSONValue) -> String {
        guard let properties = schema["properties"]?.objectValue, !properties.isEmpty else { return "{}" }
        let fields = properties.map { key, value -> String in
            let type: String
            if let t = value["type"]?.stringValue { type = t }
            else if let ts = value["type"]?.arrayValue { type = ts.compactMap(\.stringValue).joined(separator: "|") }
            else if let e = value["enum"]?.arrayValue { type = "one of " + e.map(\.description).joined(separator: ", ") }
            else { type = "any" }
            return "\"\(key)\": \(type)"
        }
        var text = "{" + fields.joined(separator: ", ") + "}"
        let required = schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !required.isEmpty { text += " (required: \(required.joined(separator: ", ")))" }
        return text
    }

    enum Verdict {
        /// Ready to dispatch with this input.
        case dispatch(String)
        case refuse(AgentCallOutcome, String, LLMOSError)
    }

    /// The checks before dispatch, in order: offered, arguments a JSON object, arguments
    /// valid against the input schema.
    func check(_ call: AgentToolCall, kernel: Kernel) -> Verdict {
        if narrowed && call.name == Self.searchTool {
            guard let query = call.arguments["query"]?.stringValue, !query.isEmpty else {
                let message = "tools.search needs {\"query\": \"what the tool should do\"}"
                return .refuse(.invalidArguments, "error: " + message, LLMOSError(.invalidArgument, message))
            }
            return .dispatch(query)
        }
        guard offers(call.name), let tool = tools.first(where: { $0.name == call.name }) else {
            let message = unknownToolMessage(call.name)
            return .refuse(.unknownTool, "error: " + message, LLMOSError(.notFound, message))
        }
        let expected = Self.shape(of: tool.inputSchema)
        if let raw = call.rawArguments {
            let why: String
            if let error = JSON.syntaxError(in: raw) {
                why = "not valid JSON (\(error))"
            } else {
                let type = (try? JSON.parse(raw))?.typeName ?? "not an object"
                why = "a JSON \(type), not an object"
            }
            let shown = raw.count > 200 ? String(raw.prefix(200)) + "…" : raw
            let message = "the arguments for \(call.name) are \(why): \(shown)"
            return .refuse(.malformedArguments, "error: \(message). Call \(call.name) again with a JSON object: \(expected)",
                           LLMOSError(.invalidArgument, message))
        }
        guard call.arguments.objectValue != nil else {
            let message = "the arguments for \(call.name) are a JSON \(call.arguments.typeName), not an object"
            return .refuse(.malformedArguments, "error: \(message). Call \(call.name) again with a JSON object: \(expected)",
                           LLMOSError(.invalidArgument, message))
        }
        if let entry = kernel.lookup(call.name), !entry.inputSchema.isValid(call.arguments) {
            let violations = entry.inputSchema.validate(call.arguments).map(\.message).joined(separator: "; ")
            let message = "\(call.name): invalid arguments: \(violations)"
            return .refuse(.invalidArguments, "error: \(message). It takes \(expected)", LLMOSError(.invalidArgument, message))
        }
        return .dispatch(call.arguments.serialized())
    }

    /// What the model reads when a dispatched call failed.
    static func failureContent(_ error: LLMOSError) -> (AgentCallOutcome, String) {
        switch error.code {
        case .permissionDenied:
            return (.denied, "error: permission denied: \(error.message). The operator's policy does not allow this; "
                        + "do not call it again. Answer without it, or say which permission is needed.")
        case .cancelled:
            return (.cancelled, "error: cancelled: \(error.message)")
        default:
            return (.toolError, "error: \(error.message)")
        }
    }
}
