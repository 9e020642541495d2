import LLMOSKernel

/// The asker of a server: nobody sits at a server's terminal (its stdin and stdout are
/// the client's protocol), so every `ask` is refused, and the decision says how the
/// operator grants the thing when starting the server instead.
public struct ServerAsker: Asker {
    /// How the operator started the server, for the message: "llmos serve --mcp".
    public var command: String

    public init(command: String) { self.command = command }

    public func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer { .deny }

    public func unansweredReason(_ request: AccessRequest, decision: Decision) -> String? {
        if decision.rule.hasPrefix(CapabilityBroker.confirmationPrefix) {
            return "\(command) has no one to ask for confirmation: start it with --allow \(request.kind.rawValue)=\(request.resource) to let clients call it"
        }
        let what = request.resource.isEmpty ? request.kind.rawValue : "\(request.kind.rawValue) \(request.resource)"
        return "\(command) has no one to ask for \(what): change that ask rule to allow in the policy (an --allow cannot override an ask: ask beats allow)"
    }
}
