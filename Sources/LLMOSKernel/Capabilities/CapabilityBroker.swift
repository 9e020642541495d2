import Synchronization

/// The one place capability decisions are made. Every mediated use of a resource —
/// a tool's marked argument, a host system call, a driver calling a tool — asks the
/// broker, which answers from the intersection of what the driver's manifest
/// requests and what the operator's policy grants, and resolves `ask` through an
/// `Asker` (a terminal, or nobody).
///
/// Session grants ("allow for this session") let a later identical request through
/// an `ask` without asking again; they never override a `deny`, and are listed by
/// `sessionGrants` and removed by `revoke`.

/// How a person answered an `ask`.
public enum AskAnswer: String, Sendable, Hashable, CaseIterable {
    case allowOnce
    case allowForSession
    case deny
}

/// Resolves `ask` decisions: shows the driver, the tool and the exact canonical resource,
/// and returns the answer. Called outside the broker's locks; it may block.
public protocol Asker: Sendable {
    func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer
    /// When the answer is `deny` because nobody could be asked, why, and how to grant
    /// instead; nil when a person answered. The broker appends it to the decision's rule.
    func unansweredReason(_ request: AccessRequest, decision: Decision) -> String?
}

extension Asker {
    public func unansweredReason(_ request: AccessRequest, decision: Decision) -> String? { nil }
}

/// The asker of a run without a terminal: every `ask` is denied, and the decision says
/// how to grant it instead.
public struct DenyingAsker: Asker {
    public init() {}

    public func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer { .deny }

    public func unansweredReason(_ request: AccessRequest, decision: Decision) -> String? {
        if decision.rule.hasPrefix(CapabilityBroker.confirmationPrefix) {
            // A destructive tool: an exact-name allow lets it run without asking.
            return "no terminal to ask on: grant it with --allow \(request.kind.rawValue)=\(request.resource) or in llmos.policy.yaml"
        }
        // A policy rule says ask. An --allow cannot override it (ask beats allow), so the
        // way to grant is to answer in a terminal, or to change that rule.
        return "no terminal to ask on for \(request.kind.rawValue) \(request.resource.isEmpty ? "" : request.resource + " ")"
            + "by \(request.driver.isEmpty ? "the operator's call" : "driver \(request.driver)"): run llmos in a terminal to answer, "
            + "or change that ask rule to allow (an --allow cannot override it: ask beats allow)"
    }
}

/// Answers from a list, in order, and records what it was asked (for tests).
/// When the list runs out it answers `whenExhausted`.
public final class ScriptedAsker: Asker, @unchecked Sendable {
    private let lock = PThreadMutex()
    private var answers: [AskAnswer]
    private var questions: [(request: AccessRequest, decision: Decision)] = []
    private let whenExhausted: AskAnswer

    public init(_ answers: [AskAnswer], whenExhausted: AskAnswer = .deny) {
        self.answers = answers
        self.whenExhausted = whenExhausted
    }

    public func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer {
        lock.withLock {
            questions.append((request, decision))
            return answers.isEmpty ? whenExhausted : answers.removeFirst()
        }
    }

    /// Every question asked so far, in order.
    public var asked: [(request: AccessRequest, decision: Decision)] { lock.withLock { questions } }
}

/// "Allow for this session": one kind, one exact canonical resource, one driver.
public struct SessionGrant: Sendable, Hashable, Identifiable, CustomStringConvertible {
    public var id: Int
    public var kind: CapabilityKind
    public var resource: String
    public var driver: String

    /// "#3 fs.write /home/u/notes/today.md for driver notes"
    public var description: String {
        let who = driver.isEmpty ? "for the operator's calls" : "for driver \(driver)"
        return "#\(id) \(kind.rawValue)\(resource.isEmpty ? "" : " " + resource) \(who)"
    }

    func covers(_ request: AccessRequest) -> Bool {
        request.kind == kind && request.resource.sameBytes(as: resource) && request.driver.sameBytes(as: driver)
    }
}

public final class CapabilityBroker: @unchecked Sendable {
    /// Starts the rule of an `ask` that comes from a tool's hints, not from a policy rule.
    public static let confirmationPrefix = "confirmation: "

    public let asker: any Asker
    /// What `~`, `${workspace}` and relative paths mean in manifests' requests.
    public let context: PolicyContext

    private let lock = PThreadMutex()
    /// Changes whenever anything a decision depends on changes (the policy, a session
    /// grant), so callers may cache decisions made under one generation.
    private let changes = Atomic<Int>(0)
    public var generation: Int { changes.load(ordering: .acquiring) }
    private var currentPolicy: Policy
    private var grants: [SessionGrant] = []
    private var nextGrantID = 1
    /// Each driver's manifest request compiled as a policy of allow rules.
    private var manifestPolicies: [String: (requests: CapabilityRequests, policy: Policy)] = [:]

    /// Keeps session grants between the commands of one session (in memory by default).
    public let sessionStore: any SessionGrantStore

    public init(policy: Policy, asker: any Asker = DenyingAsker(), context: PolicyContext = .current,
                sessionStore: any SessionGrantStore = MemorySessionGrantStore()) {
        self.currentPolicy = policy
        self.asker = asker
        self.context = context
        self.sessionStore = sessionStore
        self.grants = sessionStore.load()
        self.nextGrantID = (grants.map(\.id).max() ?? 0) + 1
    }

    /// The policy deciding now; replacing it (a reload) keeps the session grants.
    public var policy: Policy {
        get { lock.withLock { currentPolicy } }
        set {
            lock.withLock { currentPolicy = newValue }
            changes.wrappingAdd(1, ordering: .releasing)
        }
    }

    /// The decision on one use of a capability. When `requested` is the requesting
    /// driver's manifest request, a resource it does not cover is denied whatever the
    /// policy says (the effective set is the intersection); then the policy decides,
    /// and an `ask` goes to a session grant or the asker.
    public func check(_ request: AccessRequest, requested: CapabilityRequests?) -> Decision {
        let decision = evaluate(request, requested: requested)
        return decision.verdict == .ask ? resolveAsk(request, decision) : decision
    }

    /// The decision before anyone is asked: an `ask` stays `ask` (for `llmos policy explain`).
    public func evaluate(_ request: AccessRequest, requested: CapabilityRequests?) -> Decision {
        if let requested, let denial = manifestDenial(request, requested) { return denial }
        return policy.decide(request)
    }

    /// Whether `caller` ("" for the operator, the model's agent loop included, or a
    /// driver's name) may call `tool` (`driver.tool`). tool.call rules decide; a tool
    /// marked destructive or needs_confirmation asks unless an allow (or audit) rule
    /// names it exactly — a glob such as `*` is not enough. `callerTool` is the tool
    /// running in the caller, for `tools:`-scoped rules; `requested` the caller's
    /// manifest request, when the caller is a driver.
    public func checkToolCall(tool: String, hints: OperationHints, caller: String,
                              callerTool: String? = nil, requested: CapabilityRequests? = nil, agent: Int? = nil) -> Decision {
        let request = AccessRequest(kind: .toolCall, resource: tool, driver: caller, tool: callerTool, agent: agent)
        let decision = evaluateToolCall(tool: tool, hints: hints, caller: caller, callerTool: callerTool, requested: requested)
        return decision.verdict == .ask ? resolveAsk(request, decision) : decision
    }

    /// `checkToolCall` before anyone is asked.
    public func evaluateToolCall(tool: String, hints: OperationHints, caller: String,
                                 callerTool: String? = nil, requested: CapabilityRequests? = nil) -> Decision {
        let request = AccessRequest(kind: .toolCall, resource: tool, driver: caller, tool: callerTool)
        if let requested, let denial = manifestDenial(request, requested) { return denial }
        let policy = self.policy
        var decision = policy.decide(request)
        if decision.verdict == .allow, hints.destructive || hints.needsConfirmation, policy.exactAllowRule(for: request) == nil {
            let mark = hints.destructive ? "destructive" : "needs_confirmation"
            decision = Decision(verdict: .ask, flagged: decision.flagged,
                                rule: "\(Self.confirmationPrefix)\(tool) is marked \(mark): it asks unless a rule allows it by name (--allow tool.call=\(tool))")
        }
        return decision
    }

    // MARK: Session grants

    /// The grants given "for this session", oldest first.
    public var sessionGrants: [SessionGrant] { lock.withLock { grants } }

    /// Removes a session grant; false when there is none with that id.
    @discardableResult
    public func revoke(_ id: Int) -> Bool {
        lock.withLock {
            guard let index = grants.firstIndex(where: { $0.id == id }) else { return false }
            grants.remove(at: index)
            sessionStore.save(grants)
            changes.wrappingAdd(1, ordering: .releasing)
            return true
        }
    }

    public func revokeAll() {
        lock.withLock {
            grants.removeAll()
            sessionStore.save(grants)
            changes.wrappingAdd(1, ordering: .releasing)
        }
    }

    // MARK: Internals

    private func resolveAsk(_ request: AccessRequest, _ decision: Decision) -> Decision {
        if let grant = lock.withLock({ grants.first { $0.covers(request) } }) {
            return Decision(verdict: .allow, flagged: decision.flagged,
                            rule: "asked: allowed for this session (session grant #\(grant.id); \(decision.rule))")
        }
        // The agent process (if any) shows as waiting for a permission while a person answers.
        let answer = AgentProcess.lookup(request.agent ?? 0).map { process in
            process.waiting(.permission("\(request.kind.rawValue) \(request.resource)")) { asker.ask(request, decision: decision) }
        } ?? asker.ask(request, decision: decision)
        switch answer {
        case .allowOnce:
            return Decision(verdict: .allow, flagged: decision.flagged, rule: "asked: allowed once (\(decision.rule))")
        case .allowForSession:
            let grant: SessionGrant = lock.withLock {
                if let existing = grants.first(where: { $0.covers(request) }) { return existing }
                let grant = SessionGrant(id: nextGrantID, kind: request.kind, resource: request.resource, driver: request.driver)
                nextGrantID += 1
                grants.append(grant)
                sessionStore.save(grants)
                changes.wrappingAdd(1, ordering: .releasing)
                return grant
            }
            return Decision(verdict: .allow, flagged: decision.flagged,
                            rule: "asked: allowed for this session (session grant #\(grant.id); \(decision.rule))")
        case .deny:
            if let reason = asker.unansweredReason(request, decision: decision) {
                return Decision(verdict: .deny, rule: "\(decision.rule) (\(reason))")
            }
            return Decision(verdict: .deny, rule: "asked: denied (\(decision.rule))")
        }
    }

    /// Nil when the manifest's request covers the resource; else the denial.
    private func manifestDenial(_ request: AccessRequest, _ requested: CapabilityRequests) -> Decision? {
        let decision = manifestPolicy(request.driver, requested).decide(request)
        if decision.verdict == .allow { return nil }
        // A malformed resource is refused with its own reason.
        if decision.rule != Policy.notGrantedRule { return decision }
        let who = request.driver.isEmpty ? "the caller" : request.driver
        let what = request.resource.isEmpty ? request.kind.rawValue : "\(request.kind.rawValue) \(request.resource)"
        return Decision(verdict: .deny, rule: "manifest: \(who) does not request \(what)")
    }

    private func manifestPolicy(_ driver: String, _ requested: CapabilityRequests) -> Policy {
        if let cached = lock.withLock({ manifestPolicies[driver] }), cached.requests == requested { return cached.policy }
        let policy = Self.compile(requested, driver: driver, context: context)
        lock.withLock { manifestPolicies[driver] = (requested, policy) }
        return policy
    }

    /// A manifest's request as allow rules, with the policy's pattern semantics (paths
    /// by path globs with `~` and `${workspace}` expanded, hosts by net patterns). A
    /// pattern that does not compile covers nothing.
    static func compile(_ requested: CapabilityRequests, driver: String, context: PolicyContext) -> Policy {
        var rules: [PolicyRule] = []
        for entry in requested.entries {
            guard let kind = CapabilityKind(rawValue: entry.name) else { continue }
            let patterns: [String]
            switch entry.scope {
            case .any: patterns = ["*"]
            case .patterns(let list): patterns = list
            }
            for raw in patterns {
                guard case .success(let pattern) = PolicyParser.expand(raw, kind: kind, context: context) else { continue }
                rules.append(PolicyRule(.allow, kind, pattern, source: "manifest of \(driver)"))
            }
        }
        return Policy(rules: rules)
    }
}
