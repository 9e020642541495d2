import Glibc

/// The operator's policy: rules that grant, refuse, or ask for capabilities, from
/// every source at once (the user's file, the project's file, `--policy FILE`, the
/// command line). All rules count; precedence is by action, never by source or
/// specificity: **deny beats ask beats allow**. An `audit` rule allows and flags
/// the record. What no rule grants is denied.
///
/// `decide` is on every mediated call's path, so rules are compiled once (patterns
/// pre-parsed, fast forms for literals, `DIR/**` trees, prefixes and suffixes) and
/// indexed by kind and action when the policy is built.

/// What a rule does when it matches.
public enum PolicyAction: String, Sendable, Hashable, CaseIterable {
    case allow, ask, deny
    /// Allow, and flag the record for review.
    case audit

    /// The verdict of a matching rule (`audit` allows).
    public var verdict: Verdict {
        switch self {
        case .allow, .audit: return .allow
        case .ask: return .ask
        case .deny: return .deny
        }
    }
}

/// One rule of a policy.
///
/// Resource patterns, by kind (the request side is canonical, see `AccessRequest`):
/// - `fs.read`, `fs.write`, `exec`: a glob over the canonical absolute path, already
///   expanded (`~`, `${workspace}`, relative paths) and made canonical by the parser.
///   `*` stops at `/`, `**` crosses it, `?` is one character other than `/`;
///   `DIR/**` also matches `DIR` itself and `/**/` also matches a single `/` (zero
///   directories); a pattern without glob characters matches exactly that path.
/// - `net.connect`: `[scheme://]host[:port]`. The host is a name glob
///   (`*.example.com`, `*` for any), an IPv4 or IPv6 literal (`10.0.0.1`, `::1`,
///   `[::1]` when a port follows) or a CIDR (`10.0.0.0/8`, `::1/128`,
///   `[fd00::/8]:443`); the port is a number or `*`; a missing scheme or port means
///   any. A name pattern matches the request's host name. An address pattern matches
///   the IPs the request names — the address actually connected to, and the host
///   when it is a literal: a restricting rule (deny, ask, audit) matches when any of
///   them is inside, an allow rule only when all are (and never when the request
///   names no IP). IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as IPv4.
/// - `env`: a glob over variable names (`LLMOS_*`); `kv`, `storage.*`, `memory.*`,
///   `cpu.complete`: a glob over the key or collection; `tool.call`: a glob over
///   `driver.tool`. In these globs `*` matches any run, `/` and `.` included.
/// - `clock`, `random`: `*` (the whole capability).
public struct PolicyRule: Sendable, Hashable, CustomStringConvertible {
    public var action: PolicyAction
    public var kind: CapabilityKind
    /// The resource pattern, after expansion (see the type's documentation).
    public var pattern: String
    /// When set, the rule applies only to requests from drivers matching this glob.
    public var driver: String?
    /// When set, the rule applies only to requests made while a tool matching this
    /// glob (`driver.tool`) runs.
    public var tool: String?
    /// Where the rule came from: "llmos.policy.yaml:12", "--allow fs.read=~/notes/**",
    /// "built-in default".
    public var source: String

    public init(_ action: PolicyAction, _ kind: CapabilityKind, _ pattern: String,
                driver: String? = nil, tool: String? = nil, source: String) {
        self.action = action
        self.kind = kind
        self.pattern = pattern
        self.driver = driver
        self.tool = tool
        self.source = source
    }

    /// "deny fs.read /etc/**", "allow kv * for driver notes", "ask fs.write /** in tool fs.delete".
    public var text: String {
        var text = "\(action.rawValue) \(kind.rawValue) \(pattern)"
        if let driver { text += " for driver \(driver)" }
        if let tool { text += " in tool \(tool)" }
        return text
    }

    /// The rule as decisions name it: `llmos.policy.yaml:12: deny fs.read /etc/**`;
    /// a command-line grant is named by its flag, `--allow fs.read=~/notes/**`.
    public var description: String {
        source.hasPrefix("--") ? source : "\(source): \(text)"
    }

    /// Why the pattern cannot be used, or nil when it is valid for its kind. The
    /// parser refuses such rules; a `Policy` built from one anyway fails closed
    /// (an invalid allow matches nothing, an invalid deny, ask or audit everything).
    public var problem: String? {
        if pattern.isEmpty { return "an empty pattern matches nothing" }
        if let driver, driver.isEmpty { return "an empty driver scope matches nothing" }
        if let tool, tool.isEmpty { return "an empty tool scope matches nothing" }
        switch ResourceMatcher.compile(kind, pattern) {
        case .success: return nil
        case .failure(let error): return error.message
        }
    }
}

/// A set of rules, compiled for `decide`.
public struct Policy: Sendable, CustomStringConvertible {
    /// Every rule, in the order of its sources.
    public let rules: [PolicyRule]
    private let index: PolicyIndex

    /// What a request no rule matches gets.
    public static let notGrantedRule = "default: not granted (grant it with --allow KIND=PATTERN or in llmos.policy.yaml)"

    /// What llmos grants out of the box: every tool may be called (a tool that touches
    /// no resource, like calc's arithmetic, works without configuration); nothing else.
    public static let builtInDefault = Policy(rules: [PolicyRule(.allow, .toolCall, "*", source: "built-in default")])

    /// A policy that grants nothing.
    public static let empty = Policy(rules: [])

    /// Drivers (name globs) the operator wants in a sandboxed process whatever their
    /// manifests say (`isolate:` in a policy file). Only ever adds isolation.
    public let isolate: [String]

    public init(rules: [PolicyRule], isolate: [String] = []) {
        self.rules = rules
        self.isolate = isolate
        self.index = PolicyIndex(rules)
    }

    /// All the rules of several policies, in order. Precedence is by action, so the
    /// order only matters for listings and for which of equal rules is named.
    public init(merging policies: [Policy]) {
        self.init(rules: policies.flatMap(\.rules), isolate: policies.flatMap(\.isolate))
    }

    /// This policy with more rules after its own.
    public func adding(_ more: [PolicyRule]) -> Policy {
        Policy(rules: rules + more, isolate: isolate)
    }

    /// Whether `isolate:` names this driver.
    public func isolates(_ driver: String) -> Bool { isolate.contains { Glob.matches($0, driver) } }

    /// The rules for `llmos policy show`, one per line.
    public var description: String {
        (rules.isEmpty ? "(no rules: everything is denied)" : rules.map(\.description).joined(separator: "\n"))
            + (isolate.isEmpty ? "" : "\nisolate (run in a sandboxed process): " + isolate.joined(separator: ", "))
    }

    /// The decision on one request: among the rules whose kind, pattern, driver and
    /// tool match, deny beats ask beats allow (an audit rule allows); when the verdict
    /// is allow (or ask, so that an ask answered "allow" is flagged too) and an audit
    /// rule matches, the decision is flagged. No match: denied, by `notGrantedRule`.
    public func decide(_ request: AccessRequest) -> Decision {
        let bucket = index.buckets[request.kind.ordinal]
        let subject: PolicySubject
        switch PolicySubject.make(request) {
        case .success(let s): subject = s
        case .failure(let error): return Decision(verdict: .deny, rule: error.message)
        }
        for rule in bucket.deny where rule.matches(request, subject) {
            return Decision(verdict: .deny, rule: rule.name)
        }
        var audit: CompiledRule?
        for rule in bucket.audit where rule.matches(request, subject) {
            audit = rule
            break
        }
        for rule in bucket.ask where rule.matches(request, subject) {
            return Decision(verdict: .ask, flagged: audit != nil, rule: rule.name)
        }
        for rule in bucket.allow where rule.matches(request, subject) {
            guard let audit else { return Decision(verdict: .allow, rule: rule.name) }
            return Decision(verdict: .allow, flagged: true, rule: "\(rule.name) (flagged by \(audit.name))")
        }
        if let audit { return Decision(verdict: .allow, flagged: true, rule: audit.name) }
        return Decision(verdict: .deny, rule: Policy.notGrantedRule)
    }

    /// For `llmos policy explain`: every rule of the request's kind, in source order,
    /// whether it matches the request, and why (or why not). `decide` gives the outcome.
    public func explain(_ request: AccessRequest) -> [(rule: PolicyRule, matched: Bool, why: String)] {
        let subject: PolicySubject
        switch PolicySubject.make(request) {
        case .success(let s): subject = s
        case .failure(let error):
            return index.all.filter { $0.rule.kind == request.kind }.map { ($0.rule, false, error.message) }
        }
        return index.all.filter { $0.rule.kind == request.kind }.map { rule in
            let (matched, why) = rule.explain(request, subject)
            return (rule.rule, matched, why)
        }
    }

    /// The first allow or audit rule naming this tool.call resource exactly (no glob
    /// characters), whatever its scope matching: a destructive tool runs without asking
    /// only when the operator named it.
    func exactAllowRule(for request: AccessRequest) -> PolicyRule? {
        guard case .success(let subject) = PolicySubject.make(request) else { return nil }
        let bucket = index.buckets[request.kind.ordinal]
        for rule in bucket.allow + bucket.audit where rule.isLiteral && rule.matches(request, subject) {
            return rule.rule
        }
        return nil
    }
}

// MARK: - Compiled form

extension CapabilityKind {
    /// A dense index for the per-kind rule buckets.
    var ordinal: Int {
        switch self {
        case .fsRead: return 0
        case .fsWrite: return 1
        case .netConnect: return 2
        case .exec: return 3
        case .env: return 4
        case .kv: return 5
        case .storageRead: return 6
        case .storageWrite: return 7
        case .memoryRead: return 8
        case .memoryWrite: return 9
        case .cpuComplete: return 10
        case .toolCall: return 11
        case .clock: return 12
        case .random: return 13
        }
    }
}

/// Rules bucketed by kind, then by action, each bucket in source order.
final class PolicyIndex: Sendable {
    final class Bucket: @unchecked Sendable {
        // Written only while the index is built.
        var deny: [CompiledRule] = []
        var ask: [CompiledRule] = []
        var allow: [CompiledRule] = []
        var audit: [CompiledRule] = []
    }

    let buckets: [Bucket]
    let all: [CompiledRule]

    init(_ rules: [PolicyRule]) {
        let buckets = CapabilityKind.allCases.map { _ in Bucket() }
        var all: [CompiledRule] = []
        for rule in rules {
            let compiled = CompiledRule(rule)
            all.append(compiled)
            switch rule.action {
            case .deny: buckets[rule.kind.ordinal].deny.append(compiled)
            case .ask: buckets[rule.kind.ordinal].ask.append(compiled)
            case .allow: buckets[rule.kind.ordinal].allow.append(compiled)
            case .audit: buckets[rule.kind.ordinal].audit.append(compiled)
            }
        }
        self.buckets = buckets
        self.all = all
    }
}

/// A rule ready to match: its scope globs and resource matcher compiled, its name built.
final class CompiledRule: Sendable {
    let rule: PolicyRule
    /// `rule.description`, built once (it is what decisions carry).
    let name: String
    let driver: CompiledGlob?
    let tool: CompiledGlob?
    let matcher: ResourceMatcher
    /// Whether the pattern names one resource (no glob characters).
    let isLiteral: Bool
    /// Restricting rules match an address pattern when any IP is inside; allow rules when all are.
    let restrictive: Bool
    /// Why the rule could not be compiled, if it could not.
    let problem: String?

    init(_ rule: PolicyRule) {
        self.rule = rule
        self.name = rule.description
        self.restrictive = rule.action != .allow
        var problem: String?
        // Fail closed: an unusable restriction restricts everything, an unusable grant grants nothing.
        let failed: ResourceMatcher = rule.action == .allow ? .nothing : .anything
        if let d = rule.driver, d.isEmpty { problem = "an empty driver scope matches nothing" }
        if let t = rule.tool, t.isEmpty { problem = "an empty tool scope matches nothing" }
        self.driver = rule.driver.map { CompiledGlob($0, pathMode: false) }
        self.tool = rule.tool.map { CompiledGlob($0, pathMode: false) }
        if rule.pattern.isEmpty {
            problem = "an empty pattern matches nothing"
        }
        var matcher = failed
        if problem == nil {
            switch ResourceMatcher.compile(rule.kind, rule.pattern) {
            case .success(let m): matcher = m
            case .failure(let error): problem = error.message
            }
        }
        if problem != nil {
            // A broken scope on a restriction widens it to everyone, too.
            self.matcher = failed
            self.problem = problem
            self.isLiteral = false
            return
        }
        self.matcher = matcher
        self.problem = nil
        self.isLiteral = !rule.pattern.utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }
            && !(rule.kind == .netConnect)
    }

    @inline(__always)
    func matches(_ request: AccessRequest, _ subject: PolicySubject) -> Bool {
        if problem == nil {
            if let driver, !driver.matches(request.driver) { return false }
            if let tool {
                guard let running = request.tool, tool.matches(running) else { return false }
            }
        }
        return matcher.matches(request, subject, restrictive: restrictive)
    }

    func explain(_ request: AccessRequest, _ subject: PolicySubject) -> (Bool, String) {
        if let problem {
            return rule.action == .allow
                ? (false, "the rule is invalid (\(problem)) and grants nothing")
                : (true, "the rule is invalid (\(problem)) and so \(rule.action.rawValue)s everything")
        }
        if let scope = rule.driver, let driver, !driver.matches(request.driver) {
            return (false, request.driver.isEmpty
                ? "applies to drivers matching \(scope); this is the operator's own call"
                : "applies to drivers matching \(scope), not \(request.driver)")
        }
        if let scope = rule.tool, let tool {
            guard let running = request.tool else { return (false, "applies while a tool matching \(scope) runs; no tool is running") }
            if !tool.matches(running) { return (false, "applies while a tool matching \(scope) runs, not \(running)") }
        }
        let (matched, why) = matcher.explain(request, subject, pattern: rule.pattern, restrictive: restrictive)
        guard matched else { return (false, why) }
        var scope = ""
        if let d = rule.driver { scope += ", driver \(request.driver) matches \(d)" }
        if let t = rule.tool, let running = request.tool { scope += ", tool \(running) matches \(t)" }
        return (true, why + scope)
    }
}

/// The request's resource, parsed once per decision where its kind needs it.
struct PolicySubject: Sendable {
    var net: PolicyNetTarget?

    struct Malformed: Error { var message: String }

    static func make(_ request: AccessRequest) -> Result<PolicySubject, Malformed> {
        switch request.kind {
        case .netConnect:
            switch PolicyNetTarget.parse(request.resource, address: request.address) {
            case .success(let t): return .success(PolicySubject(net: t))
            case .failure(let error): return .failure(Malformed(message: "net.connect: refused a malformed request: \(error.message)"))
            }
        case .fsRead, .fsWrite, .exec:
            if let problem = PolicyPathCheck.canonicalProblem(request.resource) {
                return .failure(Malformed(message: "\(request.kind.rawValue): refused \"\(request.resource.prefix(200))\": \(problem) (the kernel resolves paths before checking them)"))
            }
            return .success(PolicySubject(net: nil))
        default:
            return .success(PolicySubject(net: nil))
        }
    }
}

enum PolicyPathCheck {
    /// Nil when `path` is absolute and canonical (no empty, `.` or `..` component, no
    /// trailing `/` except for the root, no NUL); else what is wrong.
    static func canonicalProblem(_ path: String) -> String? {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        let fast: String?? = path.utf8.withContiguousStorageIfAvailable { p -> String? in
            guard p.first == slash else { return "not an absolute path" }
            if p.count == 1 { return nil }
            if p[p.count - 1] == slash { return "not canonical (a trailing /)" }
            var start = 1
            for i in 1...p.count {
                if i == p.count || p[i] == slash {
                    let length = i - start
                    if length == 0 { return "not canonical (an empty component)" }
                    if length == 1 && p[start] == dot { return "not canonical (a . component)" }
                    if length == 2 && p[start] == dot && p[start + 1] == dot { return "not canonical (a .. component)" }
                    start = i + 1
                } else if p[i] == 0 {
                    return "contains a NUL byte"
                }
            }
            return nil
        }
        if let fast { return fast }
        var copy = path
        copy.makeContiguousUTF8()
        return canonicalProblem(copy)
    }
}

/// How a rule's pattern matches a resource.
enum ResourceMatcher: Sendable {
    case anything
    case nothing
    /// Path globs (fs.read, fs.write, exec).
    case path(CompiledGlob)
    /// Name globs (env, kv, storage, memory, cpu.complete, tool.call).
    case name(CompiledGlob)
    case net(PolicyNetPattern)

    struct Invalid: Error { var message: String }

    static func compile(_ kind: CapabilityKind, _ pattern: String) -> Result<ResourceMatcher, Invalid> {
        if pattern.isEmpty { return .failure(Invalid(message: "an empty pattern matches nothing")) }
        if pattern.utf8.contains(0) { return .failure(Invalid(message: "a pattern cannot contain a NUL byte")) }
        switch kind {
        case .fsRead, .fsWrite, .exec:
            guard pattern.hasPrefix("/") else {
                return .failure(Invalid(message: "\"\(pattern)\" is not an absolute path pattern"))
            }
            return .success(.path(CompiledGlob(pattern, pathMode: true)))
        case .netConnect:
            switch PolicyNetPattern.parse(pattern) {
            case .success(let p): return .success(p.isAnything ? .anything : .net(p))
            case .failure(let e): return .failure(Invalid(message: e.message))
            }
        case .clock, .random:
            guard pattern == "*" || pattern == "true" else {
                return .failure(Invalid(message: "\(kind.rawValue) is granted whole: use \"*\" or true, not \"\(pattern)\""))
            }
            return .success(.anything)
        case .env, .kv, .storageRead, .storageWrite, .memoryRead, .memoryWrite, .cpuComplete, .toolCall:
            let glob = CompiledGlob(pattern, pathMode: false)
            return .success(glob.isAnything ? .anything : .name(glob))
        }
    }

    @inline(__always)
    func matches(_ request: AccessRequest, _ subject: PolicySubject, restrictive: Bool) -> Bool {
        switch self {
        case .anything: return true
        case .nothing: return false
        case .path(let glob), .name(let glob): return glob.matches(request.resource)
        case .net(let pattern):
            guard let target = subject.net else { return false }
            return pattern.matches(target, restrictive: restrictive)
        }
    }

    func explain(_ request: AccessRequest, _ subject: PolicySubject, pattern: String, restrictive: Bool) -> (Bool, String) {
        let shown = request.resource.isEmpty ? request.kind.rawValue : request.resource
        switch self {
        case .anything: return (true, "\(pattern) matches everything")
        case .nothing: return (false, "matches nothing")
        case .path(let glob), .name(let glob):
            return glob.matches(request.resource)
                ? (true, "\(pattern) matches \(shown)")
                : (false, "\(pattern) does not match \(shown)")
        case .net(let p):
            guard let target = subject.net else { return (false, "not a network request") }
            return p.explain(target, restrictive: restrictive)
        }
    }
}

// MARK: - Globs

/// A glob compiled for repeated matching against UTF-8 bytes (no allocation per match).
/// Same language as `Glob`; in path mode `DIR/**` also matches `DIR`, and `/**/`
/// also matches a single `/`.
struct CompiledGlob: Sendable, Hashable {
    enum Form: Sendable, Hashable {
        /// Matches everything (`*` by name, `/**` by path... see init).
        case anything
        /// No glob characters: byte equality.
        case literal
        /// Path mode `LIT/**`: LIT itself or anything under it. `bytes` holds LIT.
        case tree
        /// Name mode `LIT*`: `bytes` holds LIT.
        case prefix
        /// Name mode `*LIT`: `bytes` holds LIT.
        case suffix
        case general
    }

    let bytes: [UInt8]
    let form: Form
    let pathMode: Bool

    static let star = UInt8(ascii: "*"), question = UInt8(ascii: "?"), slash = UInt8(ascii: "/")

    init(_ pattern: String, pathMode: Bool) {
        let p = Array(pattern.utf8)
        self.pathMode = pathMode
        func isGlob(_ c: UInt8) -> Bool { c == Self.star || c == Self.question }
        let globCount = p.lazy.filter(isGlob).count
        if globCount == 0 {
            (bytes, form) = (p, .literal)
        } else if pathMode, p.count >= 3, p.suffix(3).elementsEqual("/**".utf8), globCount == 2 {
            (bytes, form) = (Array(p.dropLast(3)), p.count == 3 ? .anything : .tree)
        } else if !pathMode, p.allSatisfy({ $0 == Self.star }) {
            (bytes, form) = ([], .anything)
        } else if !pathMode, globCount == 1, p.last == Self.star {
            (bytes, form) = (Array(p.dropLast()), .prefix)
        } else if !pathMode, globCount == 1, p.first == Self.star {
            (bytes, form) = (Array(p.dropFirst()), .suffix)
        } else {
            (bytes, form) = (p, .general)
        }
    }

    var isAnything: Bool { form == .anything }

    @inline(__always)
    func matches(_ text: String) -> Bool {
        if form == .anything { return pathMode ? text.utf8.first == Self.slash : true }
        if let result = text.utf8.withContiguousStorageIfAvailable({ matches($0) }) { return result }
        return Array(text.utf8).withUnsafeBufferPointer { matches($0) }
    }

    func matches(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.withUnsafeBufferPointer { p in
            switch form {
            case .anything:
                return pathMode ? t.first == Self.slash : true
            case .literal:
                return t.count == p.count && (p.isEmpty || memcmp(t.baseAddress!, p.baseAddress!, p.count) == 0)
            case .tree:
                // LIT itself, or LIT/ followed by anything.
                guard t.count >= p.count, p.isEmpty || memcmp(t.baseAddress!, p.baseAddress!, p.count) == 0 else { return false }
                return t.count == p.count || t[p.count] == Self.slash
            case .prefix:
                return t.count >= p.count && (p.isEmpty || memcmp(t.baseAddress!, p.baseAddress!, p.count) == 0)
            case .suffix:
                return t.count >= p.count && (p.isEmpty || memcmp(t.baseAddress! + (t.count - p.count), p.baseAddress!, p.count) == 0)
            case .general:
                return Self.match(p, 0, t, 0, pathMode)
            }
        }
    }

    private static func match(_ p: UnsafeBufferPointer<UInt8>, _ pi0: Int, _ t: UnsafeBufferPointer<UInt8>, _ ti0: Int, _ pathMode: Bool) -> Bool {
        var pi = pi0, ti = ti0
        while pi < p.count {
            let c = p[pi]
            if c == star {
                let doubleStar = pi + 1 < p.count && p[pi + 1] == star
                let crossesSlash = !pathMode || doubleStar
                // `/**/` also matches a single `/`: zero directories between.
                if pathMode, doubleStar, pi > 0, p[pi - 1] == slash, pi + 2 < p.count, p[pi + 2] == slash,
                   match(p, pi + 3, t, ti, pathMode) {
                    return true
                }
                pi += doubleStar ? 2 : 1
                if pi == p.count {
                    if crossesSlash { return true }
                    for k in ti..<t.count where t[k] == slash { return false }
                    return true
                }
                var k = ti
                while k <= t.count {
                    if match(p, pi, t, k, pathMode) { return true }
                    if k < t.count, !crossesSlash, t[k] == slash { return false }
                    k += 1
                }
                return false
            }
            // `DIR/**` also matches DIR itself.
            if pathMode, c == slash, ti == t.count, pi + 3 == p.count, p[pi + 1] == star, p[pi + 2] == star {
                return true
            }
            guard ti < t.count else { return false }
            if c == question {
                if pathMode && t[ti] == slash { return false }
            } else if c != t[ti] {
                return false
            }
            pi += 1
            ti += 1
        }
        return ti == t.count
    }
}

// MARK: - Network patterns

/// An IPv4 or IPv6 address as 128 bits; IPv4 (and IPv4-mapped IPv6) in the low 32.
struct PolicyIPAddress: Sendable, Hashable, CustomStringConvertible {
    var isV6: Bool
    var high: UInt64
    var low: UInt64

    var bitCount: Int { isV6 ? 128 : 32 }

    /// A strict literal: dotted-quad IPv4 (no octal, hex or short forms) or IPv6
    /// (brackets allowed, no zone).
    static func parse<S: StringProtocol>(_ text: S) -> PolicyIPAddress? {
        parse(bytes: ArraySlice(text.utf8))
    }

    static func parse(bytes: ArraySlice<UInt8>) -> PolicyIPAddress? {
        var s = bytes
        if s.first == UInt8(ascii: "["), s.last == UInt8(ascii: "]") { s = s.dropFirst().dropLast() }
        if s.isEmpty || s.count > 64 || s.contains(UInt8(ascii: "%")) || s.contains(0) { return nil }
        if let v4 = parseV4(s) { return v4 }
        guard s.contains(UInt8(ascii: ":")) else { return nil }
        var v6 = in6_addr()
        let ok = withUnsafeTemporaryAllocation(of: CChar.self, capacity: s.count + 1) { buffer -> Bool in
            for (i, c) in s.enumerated() { buffer[i] = CChar(bitPattern: c) }
            buffer[s.count] = 0
            return inet_pton(AF_INET6, buffer.baseAddress!, &v6) == 1
        }
        guard ok else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        withUnsafeBytes(of: &v6) { raw in
            for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
            for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
        }
        // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
        if high == 0 && low >> 32 == 0xFFFF { return PolicyIPAddress(isV6: false, high: 0, low: low & 0xFFFF_FFFF) }
        return PolicyIPAddress(isV6: true, high: high, low: low)
    }

    /// Four decimal numbers 0–255 without leading zeros, nothing else.
    static func parseV4(_ s: ArraySlice<UInt8>) -> PolicyIPAddress? {
        var value: UInt64 = 0, part: UInt64 = 0, digits = 0, dots = 0
        for c in s {
            if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | part
                part = 0; digits = 0; dots += 1
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                if digits == 1 && part == 0 { return nil }  // a leading zero: octal to some parsers
                part = part * 10 + UInt64(c - UInt8(ascii: "0"))
                digits += 1
                guard part <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return PolicyIPAddress(isV6: false, high: 0, low: value << 8 | part)
    }

    /// Whether `self` is inside `network/bits`.
    func isInside(_ network: PolicyIPAddress, bits: Int) -> Bool {
        guard isV6 == network.isV6 else { return false }
        if !isV6 {
            let mask: UInt64 = bits == 0 ? 0 : (0xFFFF_FFFF << UInt64(32 - bits)) & 0xFFFF_FFFF
            return low & mask == network.low & mask
        }
        let highMask: UInt64 = bits >= 64 ? ~0 : (bits == 0 ? 0 : ~0 << UInt64(64 - bits))
        let lowMask: UInt64 = bits <= 64 ? 0 : (bits == 128 ? ~0 : ~0 << UInt64(128 - bits))
        return high & highMask == network.high & highMask && low & lowMask == network.low & lowMask
    }

    func masked(_ bits: Int) -> PolicyIPAddress {
        var copy = self
        if !isV6 {
            let mask: UInt64 = bits == 0 ? 0 : (0xFFFF_FFFF << UInt64(32 - bits)) & 0xFFFF_FFFF
            copy.low &= mask
        } else {
            copy.high &= bits >= 64 ? ~0 : (bits == 0 ? 0 : ~0 << UInt64(64 - bits))
            copy.low &= bits <= 64 ? 0 : (bits == 128 ? ~0 : ~0 << UInt64(128 - bits))
        }
        return copy
    }

    var description: String {
        if !isV6 {
            return "\(low >> 24 & 0xFF).\(low >> 16 & 0xFF).\(low >> 8 & 0xFF).\(low & 0xFF)"
        }
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { raw in
            for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i)) }
            for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i)) }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A net.connect request's `scheme://host:port` and connected address, parsed strictly
/// (and fast: it is on the path of every connection) into one lowercased byte buffer.
struct PolicyNetTarget: Sendable {
    /// The lowercased resource.
    var bytes: [UInt8]
    var schemeRange: Range<Int>
    var hostRange: Range<Int>
    /// The host when it is an IP literal.
    var hostIP: PolicyIPAddress?
    var port: Int
    var address: PolicyIPAddress?

    var scheme: String { String(decoding: bytes[schemeRange], as: UTF8.self) }
    var host: String { String(decoding: bytes[hostRange], as: UTF8.self) }

    struct Malformed: Error { var message: String }

    static func defaultPort(_ scheme: ArraySlice<UInt8>) -> Int? {
        if scheme.elementsEqual("https".utf8) || scheme.elementsEqual("wss".utf8) { return 443 }
        if scheme.elementsEqual("http".utf8) || scheme.elementsEqual("ws".utf8) { return 80 }
        return nil
    }

    static func parse(_ resource: String, address: String?) -> Result<PolicyNetTarget, Malformed> {
        func bad(_ why: String) -> Result<PolicyNetTarget, Malformed> {
            .failure(Malformed(message: "\"\(resource.prefix(200))\": \(why) (expected scheme://host:port)"))
        }
        let colon = UInt8(ascii: ":"), slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var b = Array(resource.utf8)
        for i in b.indices {
            let c = b[i]
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") {
                b[i] = c | 0x20
            } else if c <= 0x20 || c >= 0x7F {
                return bad("only printable ASCII is checked (a host name is sent in its ASCII, punycode form)")
            }
        }
        var sep = -1
        var i = 0
        while i + 2 < b.count {
            if b[i] == colon { if b[i + 1] == slash && b[i + 2] == slash { sep = i }; break }
            i += 1
        }
        guard sep > 0 else { return bad("no scheme") }
        let schemeRange = 0..<sep
        guard PolicyNetPattern.isValidScheme(b[schemeRange]) else { return bad("invalid scheme") }
        let start = sep + 3
        for k in start..<b.count {
            switch b[k] {
            case UInt8(ascii: "@"), slash, UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "\\"), UInt8(ascii: "%"):
                return bad("only scheme://host:port is checked: no user, path, query or escapes")
            default: continue
            }
        }
        var hostRange: Range<Int>
        var portStart: Int?
        var bracketed = false
        if start < b.count, b[start] == UInt8(ascii: "[") {
            guard let close = b[start...].firstIndex(of: UInt8(ascii: "]")) else { return bad("unclosed [") }
            hostRange = (start + 1)..<close
            bracketed = true
            if close + 1 < b.count {
                guard b[close + 1] == colon else { return bad("junk after ]") }
                portStart = close + 2
            }
        } else {
            var colons = 0, last = -1
            for k in start..<b.count where b[k] == colon { colons += 1; last = k }
            if colons > 1 { return bad("an IPv6 host must be in brackets") }
            if colons == 1 {
                hostRange = start..<last
                portStart = last + 1
            } else {
                hostRange = start..<b.count
            }
        }
        if !bracketed, hostRange.count > 1, b[hostRange.upperBound - 1] == dot { hostRange = hostRange.lowerBound..<(hostRange.upperBound - 1) }
        guard !hostRange.isEmpty else { return bad("no host") }
        var port = 0
        if let portStart {
            guard portStart < b.count, b.count - portStart <= 5 else { return bad("bad port") }
            for k in portStart..<b.count {
                guard b[k] >= UInt8(ascii: "0") && b[k] <= UInt8(ascii: "9") else { return bad("bad port") }
                port = port * 10 + Int(b[k] - UInt8(ascii: "0"))
            }
            guard (1...65535).contains(port) else { return bad("bad port") }
        } else {
            guard let p = defaultPort(b[schemeRange]) else { return bad("no port") }
            port = p
        }
        var hostIP: PolicyIPAddress?
        let hostBytes = b[hostRange]
        if bracketed {
            guard let ip = PolicyIPAddress.parse(bytes: hostBytes), ip.isV6 || hostBytes.contains(colon) else {
                return bad("invalid IPv6 address")
            }
            hostIP = ip
        } else if let v4 = PolicyIPAddress.parseV4(hostBytes) {
            hostIP = v4
        } else {
            guard hostBytes.allSatisfy({ PolicyNetPattern.isHostByte($0) && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: "?") }) else {
                return bad("invalid host name")
            }
            // 0x7f.1, 0177.0.0.1, 2130706433, 127.1: numeric forms a resolver takes for an
            // IP. No DNS name ends with a label that starts with a digit.
            let lastLabel = hostBytes.lastIndex(of: dot).map { $0 + 1 } ?? hostRange.lowerBound
            if lastLabel < hostRange.upperBound, b[lastLabel] >= UInt8(ascii: "0"), b[lastLabel] <= UInt8(ascii: "9") {
                return bad("\(String(decoding: hostBytes, as: UTF8.self)) is an IP address in a non-canonical form")
            }
        }
        var connected: PolicyIPAddress?
        if let address {
            guard let ip = PolicyIPAddress.parse(address) else {
                return .failure(Malformed(message: "\"\(resource.prefix(200))\": the connected address \"\(address.prefix(60))\" is not an IP address"))
            }
            connected = ip
        }
        return .success(PolicyNetTarget(bytes: b, schemeRange: schemeRange, hostRange: hostRange, hostIP: hostIP, port: port, address: connected))
    }
}

/// A net.connect rule's `[scheme://]host[:port]`, parsed.
struct PolicyNetPattern: Sendable, Hashable {
    enum Host: Sendable, Hashable {
        case any
        case name(CompiledGlob)
        case network(PolicyIPAddress, bits: Int)
    }

    var scheme: String?
    var host: Host
    var port: Int?

    var isAnything: Bool { scheme == nil && port == nil && host == .any }

    struct Invalid: Error { var message: String }

    static func isValidScheme(_ s: String) -> Bool { isValidScheme(ArraySlice(s.utf8)) }

    static func isValidScheme(_ s: ArraySlice<UInt8>) -> Bool {
        guard let first = s.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
        return s.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
        }
    }

    static func isHostByte(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
            || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "*") || c == UInt8(ascii: "?")
    }

    static func parse(_ raw: String) -> Result<PolicyNetPattern, Invalid> {
        func bad(_ message: String) -> Result<PolicyNetPattern, Invalid> { .failure(Invalid(message: message)) }
        let shape = "a net.connect pattern is [scheme://]host[:port]"
        let text = raw.lowercased()
        if text == "true" { return .success(PolicyNetPattern(scheme: nil, host: .any, port: nil)) }
        var rest = Substring(text)
        var scheme: String?
        if let sep = text.range(of: "://") {
            let s = String(text[..<sep.lowerBound])
            if s != "*" {
                guard isValidScheme(s) else { return bad("invalid scheme \"\(s)\"; \(shape)") }
                scheme = s
            }
            rest = text[sep.upperBound...]
        }
        if rest.contains("@") { return bad("\"\(raw)\" has a user part; \(shape)") }
        if rest.contains(where: { "?#\\ \t".contains($0) }) { return bad("\"\(raw)\": \(shape), without a path or query") }
        var hostText: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return bad("\"\(raw)\": unclosed [ in an IPv6 address") }
            hostText = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return bad("\"\(raw)\": expected :port after ]") }
                portText = after.dropFirst()
            }
        } else if rest.filter({ $0 == ":" }).count > 1 {
            hostText = rest // a bare IPv6 literal or CIDR: any port
        } else if let colon = rest.lastIndex(of: ":") {
            hostText = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            hostText = rest
        }
        var port: Int?
        if let portText, portText != "*" {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), (1...65535).contains(p) else {
                return bad("bad port \"\(portText)\": expected * or a number from 1 to 65535")
            }
            port = p
        }
        if hostText.hasSuffix(".") && hostText.count > 1 { hostText = hostText.dropLast() }
        guard !hostText.isEmpty else { return bad("\"\(raw)\" has no host; \(shape) (use * for any host)") }
        if hostText == "*" { return .success(PolicyNetPattern(scheme: scheme, host: .any, port: port)) }
        if let slash = hostText.firstIndex(of: "/") {
            let addressText = hostText[..<slash], bitsText = hostText[hostText.index(after: slash)...]
            guard let address = PolicyIPAddress.parse(addressText) else {
                if addressText.contains(where: { $0.isLetter }) && !addressText.contains(":") {
                    return bad("\"\(raw)\": \(shape), without a path")
                }
                return bad("invalid CIDR \"\(hostText)\": \(addressText) is not an IP address")
            }
            // ::ffff:0:0/96 and narrower are IPv4 networks.
            let mappedV4 = !address.isV6 && addressText.contains(":")
            let limit = mappedV4 ? 128 : address.bitCount
            guard !bitsText.isEmpty, bitsText.allSatisfy({ $0.isASCII && $0.isNumber }), let given = Int(bitsText), (0...limit).contains(given) else {
                return bad("invalid CIDR \"\(hostText)\": the prefix length must be a number from 0 to \(limit)")
            }
            var bits = given
            if mappedV4 {
                guard given >= 96 else { return bad("invalid CIDR \"\(hostText)\": an IPv4-mapped network needs a prefix of at least 96") }
                bits = given - 96
            }
            let network = address.masked(bits)
            guard network == address else {
                let suggestion = mappedV4 ? "" : " (did you mean \(network)/\(given)?)"
                return bad("invalid CIDR \"\(hostText)\": bits are set after the /\(given) prefix\(suggestion)")
            }
            return .success(PolicyNetPattern(scheme: scheme, host: .network(address, bits: bits), port: port))
        }
        if let address = PolicyIPAddress.parse(hostText) {
            return .success(PolicyNetPattern(scheme: scheme, host: .network(address, bits: address.bitCount), port: port))
        }
        if hostText.contains(":") { return bad("\"\(hostText)\" is not a valid IPv6 address") }
        if hostText.allSatisfy({ $0.isNumber || $0 == "." }) {
            return bad("\"\(hostText)\" is not a valid IPv4 address (write four decimal numbers, a.b.c.d)")
        }
        if hostText.contains(where: \.isNumber), hostText.allSatisfy({ $0.isNumber || $0 == "." || $0 == "*" || $0 == "?" }) {
            return bad("\"\(hostText)\": a glob matches host names, not addresses; match addresses with a CIDR such as 192.168.0.0/16")
        }
        guard hostText.utf8.allSatisfy(isHostByte) else {
            return bad("\"\(hostText)\" is not a host name or glob (letters, digits, -, ., _, * and ?)")
        }
        return .success(PolicyNetPattern(scheme: scheme, host: .name(CompiledGlob(String(hostText), pathMode: false)), port: port))
    }

    func matches(_ t: PolicyNetTarget, restrictive: Bool) -> Bool {
        if let port, port != t.port { return false }
        if let scheme, !t.bytes[t.schemeRange].elementsEqual(scheme.utf8) { return false }
        switch host {
        case .any: return true
        case .name(let glob):
            guard t.hostIP == nil else { return false }
            return t.bytes.withUnsafeBufferPointer { glob.matches(UnsafeBufferPointer(rebasing: $0[t.hostRange])) }
        case .network(let network, let bits):
            return Self.addressMatch(t, network, bits, restrictive: restrictive)
        }
    }

    static func addressMatch(_ t: PolicyNetTarget, _ network: PolicyIPAddress, _ bits: Int, restrictive: Bool) -> Bool {
        let ips = [t.address, t.hostIP].compactMap { $0 }
        if ips.isEmpty { return false }
        return restrictive
            ? ips.contains { $0.isInside(network, bits: bits) }
            : ips.allSatisfy { $0.isInside(network, bits: bits) }
    }

    func explain(_ t: PolicyNetTarget, restrictive: Bool) -> (Bool, String) {
        if let scheme, !t.bytes[t.schemeRange].elementsEqual(scheme.utf8) { return (false, "scheme \(t.scheme) is not \(scheme)") }
        if let port, port != t.port { return (false, "port \(t.port) is not \(port)") }
        switch host {
        case .any: return (true, "any host\(port.map { " on port \($0)" } ?? "")")
        case .name:
            if t.hostIP != nil { return (false, "a host-name pattern does not match the IP literal \(t.host)") }
            return matches(t, restrictive: restrictive)
                ? (true, "host \(t.host) matches the name pattern")
                : (false, "host \(t.host) does not match the name pattern")
        case .network(let network, let bits):
            let net = bits == network.bitCount ? "\(network)" : "\(network)/\(bits)"
            let ips = [t.address, t.hostIP].compactMap { $0 }
            if ips.isEmpty { return (false, "\(t.host) is a name and no connected address is known; an address pattern needs an IP") }
            let shown = Array(Set(ips.map(\.description))).sorted().joined(separator: " and ")
            if Self.addressMatch(t, network, bits, restrictive: restrictive) {
                return (true, "\(shown) \(ips.count > 1 && !restrictive ? "are all" : "is") inside \(net)")
            }
            return (false, restrictive || ips.allSatisfy({ !$0.isInside(network, bits: bits) })
                ? "\(shown) \(ips.count > 1 ? "are" : "is") not inside \(net)"
                : "not every address (\(shown)) is inside \(net)")
        }
    }
}
