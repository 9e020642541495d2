import LLMOSJSON

/// The capability checks of one call, in one place: may this tool be called at all
/// (tool.call rules, confirmation for destructive tools), are its marked arguments
/// granted on their canonical form, and the audit record of it all.
struct Mediation {
    let kernel: Kernel
    let tool: ToolEntry
    let parent: CallRef?
    let input: String
    /// The input's SHA-256, for every audit record of this call: computed once, and
    /// only when there is an audit log.
    let argsHash: String
    /// The agent process the call is made for, if any.
    let agent: Int?
    /// The client the call came from, if any (`CallOptions.client`).
    let client: String?

    init(kernel: Kernel, tool: ToolEntry, parent: CallRef?, input: String, agent: Int? = nil, client: String? = nil) {
        self.kernel = kernel
        self.tool = tool
        self.parent = parent
        self.input = input
        self.agent = agent
        self.client = client
        self.argsHash = kernel.configuration.audit == nil ? "" : AuditEntry.hashArguments(input)
    }

    var broker: CapabilityBroker { kernel.configuration.broker }

    /// Who asks: the driver whose code makes the call, or "" for the operator (a
    /// command, later the agent loop).
    var caller: ToolEntry? { parent?.pointee.tool }

    var callRequest: AccessRequest {
        var request = AccessRequest(kind: .toolCall, resource: tool.qualifiedName, driver: caller?.driver.name ?? "", tool: caller?.qualifiedName, agent: agent)
        request.client = client
        return request
    }

    /// tool.call rules decide whether the tool may be called at all; a driver calling a
    /// tool needs its manifest to request it too.
    func authorizeCall() -> Decision {
        guard caller == nil else {
            return broker.checkToolCall(tool: tool.qualifiedName, hints: tool.spec.hints, caller: caller!.driver.name,
                                        callerTool: caller!.qualifiedName, requested: caller!.driver.manifest.capabilities, agent: agent)
        }
        // The operator's own calls ask the same question every time: reuse the answer
        // while nothing it depends on has changed. An `ask` is never reused (asking is
        // the point), so only allow and deny are kept.
        let generation = broker.generation
        if let cached = tool.operatorDecision.withLock({ $0 }), cached.generation == generation { return cached.decision }
        let decision = broker.evaluateToolCall(tool: tool.qualifiedName, hints: tool.spec.hints, caller: "")
        guard decision.verdict != .ask else {
            return broker.checkToolCall(tool: tool.qualifiedName, hints: tool.spec.hints, caller: "", agent: agent)
        }
        tool.operatorDecision.withLock { $0 = (generation, decision) }
        return decision
    }

    /// Checks every marked argument on its canonical form (paths resolved against the
    /// workspace, symlinks and `..` gone; URLs as scheme://host:port). Returns the input
    /// the driver should receive when a path changed, nil when the caller's bytes stand.
    func checkArguments(_ value: JSONValue) throws(LLMOSError) -> String? {
        guard !tool.argumentCapabilities.isEmpty else { return nil }
        var rewritten = value
        var changed = false
        for argument in tool.argumentCapabilities {
            guard let raw = argument.value(in: value) else { continue }
            let request: AccessRequest
            do { request = try self.request(for: argument, raw: raw) } catch {
                throw LLMOSError(error.code, "\(tool.qualifiedName): \(argument.dottedPath): \(error.message)", cause: error)
            }
            // Paths reach the driver in the form that was checked; URLs stay as given
            // (net.fetch checks every hop again).
            let canonicalForDriver = argument.kind.isPath ? request.resource : nil
            let decision = broker.check(request, requested: tool.driver.manifest.capabilities)
            record(request, decision, outcome: decision.verdict == .allow ? nil : LLMOSError(.permissionDenied, ""))
            guard decision.verdict == .allow else {
                throw LLMOSError(.permissionDenied, "\(tool.qualifiedName): \(argument.dottedPath): \(argument.kind.rawValue) of \(request.resource) denied by \(decision.rule)")
            }
            if let canonical = canonicalForDriver, !canonical.sameBytes(as: raw) {
                rewritten = argument.replacing(in: rewritten, with: canonical)
                changed = true
            }
        }
        return changed ? rewritten.serialized() : nil
    }

    /// The request a marked argument makes, on the argument's canonical form.
    func request(for argument: ArgumentCapability, raw: String) throws(LLMOSError) -> AccessRequest {
        var request = AccessRequest(kind: argument.kind, resource: raw, driver: tool.driver.name, tool: tool.qualifiedName, agent: agent)
        request.client = client
        switch argument.kind {
        case .fsRead, .fsWrite, .exec:
            request.resource = try PathCanonicalizer(workspace: kernel.configuration.workspace).canonicalize(raw).path
        case .netConnect:
            if let network = kernel.configuration.network {
                (request.resource, request.address) = try network.canonicalResource(of: raw)
            }
        default:
            break
        }
        return request
    }

    /// The call's own audit record: who called what, the decision, the outcome, the time.
    func recordCall(_ decision: Decision, outcome: LLMOSError?, durationNs: UInt64) {
        guard let audit = kernel.configuration.audit else { return }
        audit.append(AuditEntry(request: callRequest, decision: decision, argsHash: argsHash,
                                outcome: AuditEntry.outcome(of: outcome), durationNs: Int64(clamping: durationNs)))
    }

    func record(_ request: AccessRequest, _ decision: Decision, outcome: LLMOSError?) {
        guard let audit = kernel.configuration.audit else { return }
        audit.append(AuditEntry(request: request, decision: decision, argsHash: argsHash,
                                outcome: AuditEntry.outcome(of: outcome)))
    }
}

/// `String.withCString` for typed-throws bodies.
func withCBytes<T>(_ text: String, _ body: (UnsafeRawBufferPointer) throws(LLMOSError) -> T) throws(LLMOSError) -> T {
    var result: Result<T, LLMOSError>!
    text.withCString { pointer in
        let bytes = UnsafeRawBufferPointer(start: pointer, count: text.utf8.count)
        result = Result { () throws(LLMOSError) in try body(bytes) }
    }
    return try result.get()
}
