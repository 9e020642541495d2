/// What a manifest asks for. The operator's policy grants; the effective set is the
/// intersection (CapabilityBroker decides it, with the policy's pattern semantics), and
/// anything not granted is denied. Unknown capability names are
/// an error, never ignored: a dropped restriction is a hole.
public struct CapabilityRequests: Sendable, Equatable {
    public enum Scope: Sendable, Equatable {
        /// `true`: the whole capability (still subject to the operator's grants).
        case any
        /// A list of patterns: path globs, host:port patterns, tool names, variable names.
        case patterns([String])
    }

    /// Every capability name the kernel knows, in the order docs list them.
    public static let knownNames: [String] = [
        "fs.read", "fs.write", "net.connect", "exec", "env", "kv",
        "storage.read", "storage.write", "memory.read", "memory.write",
        "cpu.complete", "tool.call", "clock", "random",
    ]

    public private(set) var entries: [(name: String, scope: Scope)] = []

    public init() {}

    public mutating func set(_ name: String, _ scope: Scope) {
        entries.removeAll { $0.name == name }
        entries.append((name, scope))
    }

    public subscript(name: String) -> Scope? { entries.first { $0.name == name }?.scope }
    public var isEmpty: Bool { entries.isEmpty }

    /// "kv, tool.call=[echo.echo, syscaller.*]" for listings.
    public var summary: String {
        if entries.isEmpty { return "none" }
        return entries.map { entry in
            switch entry.scope {
            case .any: return entry.name
            case .patterns(let p): return "\(entry.name)=[\(p.joined(separator: ", "))]"
            }
        }.joined(separator: ", ")
    }

    /// Byte-for-byte: requests naming canonically equivalent but different paths differ.
    public static func == (a: CapabilityRequests, b: CapabilityRequests) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { x, y in
            guard x.name.sameBytes(as: y.name) else { return false }
            switch (x.scope, y.scope) {
            case (.any, .any): return true
            case (.patterns(let p), .patterns(let q)): return p.count == q.count && zip(p, q).allSatisfy { $0.sameBytes(as: $1) }
            default: return false
            }
        }
    }
}

/// Shell-style globs over names: `*` matches any run (not crossing `/` when
/// `pathMode`), `**` any run including `/`, `?` one character.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String, pathMode: Bool = false) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        return match(p, 0, t, 0, pathMode)
    }

    private static func match(_ p: [UInt8], _ pi: Int, _ t: [UInt8], _ ti: Int, _ pathMode: Bool) -> Bool {
        var pi = pi, ti = ti
        while pi < p.count {
            let c = p[pi]
            if c == UInt8(ascii: "*") {
                let doubleStar = pi + 1 < p.count && p[pi + 1] == UInt8(ascii: "*")
                let crossesSlash = !pathMode || doubleStar
                pi += doubleStar ? 2 : 1
                if pi == p.count { return crossesSlash || !t[ti...].contains(UInt8(ascii: "/")) }
                var k = ti
                while k <= t.count {
                    if match(p, pi, t, k, pathMode) { return true }
                    if k < t.count, !crossesSlash, t[k] == UInt8(ascii: "/") { return false }
                    k += 1
                }
                return false
            }
            guard ti < t.count else { return false }
            if c == UInt8(ascii: "?") {
                if pathMode && t[ti] == UInt8(ascii: "/") { return false }
            } else if c != t[ti] {
                return false
            }
            pi += 1; ti += 1
        }
        return ti == t.count
    }
}
