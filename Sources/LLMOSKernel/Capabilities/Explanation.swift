import LLMOSJSON

/// What the capability layer would decide about a call, and why, without making it
/// or asking anyone: the answer to `llmos policy explain TOOL JSON`.
public struct CallExplanation: Sendable {
    public struct Check: Sendable {
        /// "tool.call", or the marked argument's field path.
        public var subject: String
        public var request: AccessRequest
        /// Before asking: an `ask` is reported as such.
        public var decision: Decision
        /// Every policy rule of the request's kind, whether it matched, and why.
        public var rules: [(rule: String, matched: Bool, why: String)]
    }

    public var tool: String
    public var checks: [Check]
}

extension Kernel {
    public func explain(_ name: String, input: String) throws(LLMOSError) -> CallExplanation {
        guard let tool = lookup(name) else { throw unknownToolError(name) }
        let broker = configuration.broker
        var checks: [CallExplanation.Check] = []
        let callRequest = AccessRequest(kind: .toolCall, resource: name, driver: "")
        checks.append(.init(subject: "tool.call", request: callRequest,
                            decision: broker.evaluateToolCall(tool: name, hints: tool.spec.hints, caller: ""),
                            rules: broker.policy.explain(callRequest).map { ($0.rule.description, $0.matched, $0.why) }))
        let value: JSONValue
        do { value = try JSON.parse(input) } catch {
            throw LLMOSError(.invalidArgument, "\(name): the input is not valid JSON: \(error)")
        }
        let mediation = Mediation(kernel: self, tool: tool, parent: nil, input: input)
        for argument in tool.argumentCapabilities {
            guard let raw = argument.value(in: value) else { continue }
            let request = try mediation.request(for: argument, raw: raw)
            checks.append(.init(subject: argument.dottedPath, request: request,
                                decision: broker.evaluate(request, requested: tool.driver.manifest.capabilities),
                                rules: broker.policy.explain(request).map { ($0.rule.description, $0.matched, $0.why) }))
        }
        return CallExplanation(tool: name, checks: checks)
    }
}
