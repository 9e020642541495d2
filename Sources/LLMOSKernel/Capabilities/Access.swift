/// The vocabulary of the capability layer: what is asked for, and what was decided.
/// The broker (CapabilityBroker) takes an `AccessRequest` and returns a `Decision`
/// from the manifest's request and the operator's `Policy`; the audit log records both.

/// The kinds of capability; their raw values are the names manifests and policies use.
public enum CapabilityKind: String, CaseIterable, Sendable, Hashable {
    case fsRead = "fs.read"
    case fsWrite = "fs.write"
    case netConnect = "net.connect"
    case exec
    case env
    case kv
    case storageRead = "storage.read"
    case storageWrite = "storage.write"
    case memoryRead = "memory.read"
    case memoryWrite = "memory.write"
    case cpuComplete = "cpu.complete"
    case toolCall = "tool.call"
    case clock
    case random

    /// Whether resources of this kind are file paths (globs match with `/` boundaries).
    public var isPath: Bool { self == .fsRead || self == .fsWrite || self == .exec }
}

/// One use of a capability on one resource, already made canonical: the broker
/// decides on exactly the thing the kernel will then use.
public struct AccessRequest: Sendable, Hashable {
    public var kind: CapabilityKind
    /// The canonical resource:
    /// - fs.read / fs.write / exec: an absolute path with symlinks and `..` resolved;
    /// - net.connect: `scheme://host:port` (lowercase host, explicit port);
    /// - env: the variable name; kv / storage.* / memory.*: the key or collection;
    /// - tool.call: `driver.tool`; clock / random: "".
    public var resource: String
    /// For net.connect: the IP address actually connected to (checked as well as the name).
    public var address: String?
    /// The driver whose code asks ("" for the operator's own top-level call).
    public var driver: String
    /// The tool running when the request was made (`driver.tool`), if any.
    public var tool: String?
    /// The agent process on whose behalf the call chain runs (its pid), if any: a
    /// permission prompt names it, and marks it waiting while a person answers.
    public var agent: Int?
    /// The client the call chain came from (`CallOptions.client`), if any: for the audit record.
    public var client: String?

    public init(kind: CapabilityKind, resource: String, address: String? = nil, driver: String, tool: String? = nil, agent: Int? = nil) {
        self.kind = kind
        self.resource = resource
        self.address = address
        self.driver = driver
        self.tool = tool
        self.agent = agent
    }
}

public enum Verdict: String, Sendable, Hashable, CaseIterable {
    case allow, ask, deny
}

/// What was decided and why: the rule is recorded in the audit log and shown to people.
public struct Decision: Sendable, Hashable, CustomStringConvertible {
    public var verdict: Verdict
    /// Set by an `audit` rule: allowed, and the record is flagged for review.
    public var flagged: Bool
    /// The rule that decided, e.g. `llmos.policy.yaml:12: deny fs.read /etc/**`,
    /// `--allow fs.read=~/notes/**`, `manifest: not requested`, `default: not granted`.
    public var rule: String

    public init(verdict: Verdict, flagged: Bool = false, rule: String) {
        self.verdict = verdict
        self.flagged = flagged
        self.rule = rule
    }

    public var description: String { "\(verdict.rawValue)\(flagged ? " (flagged)" : "") by \(rule)" }
}
