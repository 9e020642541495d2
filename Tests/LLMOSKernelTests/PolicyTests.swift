import Foundation
import Synchronization
import Testing
@testable import LLMOSKernel

/// The capability layer's decisions: policy rules, the policy file and command-line
/// grants, and the broker (manifest ∩ policy, ask, session grants, destructive tools).
@Suite struct PolicyTests {
    static let context = PolicyContext(home: "/home/u", workspace: "/w")
    static let file = "/w/llmos.policy.yaml"

    func rule(_ action: PolicyAction, _ kind: CapabilityKind, _ pattern: String, driver: String? = nil, tool: String? = nil, source: String = "test") -> PolicyRule {
        PolicyRule(action, kind, pattern, driver: driver, tool: tool, source: source)
    }

    func flag(_ text: String, _ action: PolicyAction = .allow) throws -> PolicyRule {
        try PolicyParser.rule(fromFlag: text, action: action, context: Self.context)
    }

    func policy(_ flags: [(PolicyAction, String)]) throws -> Policy {
        Policy(rules: try flags.map { try flag($0.1, $0.0) })
    }

    func parse(_ text: String) throws -> PolicyFile {
        try PolicyParser.parse(text: text, file: Self.file, context: Self.context)
    }

    /// The diagnostics of a refused policy, as `file:line: field: message` lines.
    func refusal(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        let error = expectError({ try parse(text) }, sourceLocation: sourceLocation)
        #expect(error.code == .invalidArgument, sourceLocation: sourceLocation)
        #expect(error.message.hasSuffix("\(Self.file): policy refused whole (a policy is never half-applied): fix every error above"), sourceLocation: sourceLocation)
        return (error.cause as? PolicyErrors)?.diagnostics.map(\.description) ?? []
    }

    func read(_ path: String, driver: String = "notes", tool: String? = nil) -> AccessRequest {
        AccessRequest(kind: .fsRead, resource: path, driver: driver, tool: tool)
    }

    func net(_ resource: String, _ address: String? = nil, driver: String = "web") -> AccessRequest {
        AccessRequest(kind: .netConnect, resource: resource, address: address, driver: driver)
    }

    func verdict(_ policy: Policy, _ request: AccessRequest) -> Verdict { policy.decide(request).verdict }

    // MARK: Precedence

    @Test func denyBeatsAskBeatsAllowRegardlessOfSpecificityAndOrder() throws {
        let specificAllow = rule(.allow, .fsRead, "/home/u/notes/today.md", source: "a")
        let broadDeny = rule(.deny, .fsRead, "/home/u/**", source: "b")
        let broadAsk = rule(.ask, .fsRead, "/**", source: "c")
        let request = read("/home/u/notes/today.md")
        for rules in [[specificAllow, broadDeny, broadAsk], [broadAsk, broadDeny, specificAllow], [broadDeny, specificAllow, broadAsk]] {
            let d = Policy(rules: rules).decide(request)
            #expect(d.verdict == .deny)
            #expect(d.rule == "b: deny fs.read /home/u/**")
        }
        for rules in [[specificAllow, broadAsk], [broadAsk, specificAllow]] {
            let d = Policy(rules: rules).decide(request)
            #expect(d.verdict == .ask)
            #expect(d.rule == "c: ask fs.read /**")
        }
        // A narrow deny inside a broad allow wins too.
        let p = Policy(rules: [rule(.allow, .fsRead, "/**"), rule(.deny, .fsRead, "/home/u/.ssh/id_ed25519", source: "s")])
        #expect(p.decide(read("/home/u/.ssh/id_ed25519")).rule == "s: deny fs.read /home/u/.ssh/id_ed25519")
        #expect(verdict(p, read("/home/u/.ssh/known_hosts")) == .allow)
        // A scoped allow does not beat an unscoped deny.
        let scoped = Policy(rules: [rule(.deny, .kv, "*"), rule(.allow, .kv, "k", driver: "notes")])
        #expect(verdict(scoped, AccessRequest(kind: .kv, resource: "k", driver: "notes")) == .deny)
    }

    @Test func nothingMatchingIsDeniedByDefault() {
        let d = Policy.empty.decide(read("/etc/passwd"))
        #expect(d.verdict == .deny)
        #expect(!d.flagged)
        #expect(d.rule == "default: not granted (grant it with --allow KIND=PATTERN or in llmos.policy.yaml)")
        // Rules of another kind never match.
        let p = Policy(rules: [rule(.allow, .fsWrite, "/**")])
        #expect(p.decide(read("/etc/passwd")).rule == Policy.notGrantedRule)
    }

    @Test func auditAllowsAndFlags() {
        let audit = rule(.audit, .exec, "/usr/bin/git", source: "llmos.policy.yaml:9")
        let git = AccessRequest(kind: .exec, resource: "/usr/bin/git", driver: "shell")
        // Alone, audit allows and flags.
        var d = Policy(rules: [audit]).decide(git)
        #expect(d == Decision(verdict: .allow, flagged: true, rule: "llmos.policy.yaml:9: audit exec /usr/bin/git"))
        // With an allow, the allow decides and the audit flags.
        d = Policy(rules: [rule(.allow, .exec, "/usr/bin/*", source: "--allow exec=/usr/bin/*"), audit]).decide(git)
        #expect(d.verdict == .allow && d.flagged)
        #expect(d.rule == "--allow exec=/usr/bin/* (flagged by llmos.policy.yaml:9: audit exec /usr/bin/git)")
        // An allow the audit does not cover is not flagged.
        d = Policy(rules: [rule(.allow, .exec, "/usr/bin/*"), audit]).decide(AccessRequest(kind: .exec, resource: "/usr/bin/ls", driver: "shell"))
        #expect(d.verdict == .allow && !d.flagged)
        // Deny still wins over audit, unflagged; an ask is flagged so an "allow" answer is.
        #expect(Policy(rules: [audit, rule(.deny, .exec, "/**")]).decide(git) == Decision(verdict: .deny, rule: "test: deny exec /**"))
        d = Policy(rules: [audit, rule(.ask, .exec, "/**")]).decide(git)
        #expect(d.verdict == .ask && d.flagged)
    }

    // MARK: Scoping

    @Test func rulesScopedPerDriver() throws {
        let p = try parse("""
        drivers:
          notes:
            allow: {kv: "*"}
          "n*":
            deny: {kv: ["secret.*"]}
        """).policy
        let kv = { (driver: String, key: String) in AccessRequest(kind: .kv, resource: key, driver: driver) }
        #expect(verdict(p, kv("notes", "todo")) == .allow)
        #expect(p.decide(kv("notes", "secret.key")).rule == "llmos.policy.yaml:5: deny kv secret.* for driver n*")
        #expect(verdict(p, kv("text", "todo")) == .deny)
        #expect(p.decide(kv("", "todo")).rule == Policy.notGrantedRule)  // the operator is not a driver
        #expect(p.rules[0].description == "llmos.policy.yaml:3: allow kv * for driver notes")
    }

    @Test func rulesScopedPerTool() throws {
        let p = try parse("""
        allow:
          fs.write: ["${workspace}/**"]
        tools:
          fs.delete:
            ask: {fs.write: "**"}
          "shell.*":
            deny: {fs.write: ["${workspace}/.git/**"]}
        """).policy
        let write = { (path: String, tool: String?) in AccessRequest(kind: .fsWrite, resource: path, driver: "fs", tool: tool) }
        #expect(verdict(p, write("/w/a.txt", "fs.write_file")) == .allow)
        #expect(verdict(p, write("/w/a.txt", nil)) == .allow)
        let d = p.decide(write("/w/a.txt", "fs.delete"))
        #expect(d.verdict == .ask)
        #expect(d.rule == "llmos.policy.yaml:5: ask fs.write /** in tool fs.delete")
        #expect(verdict(p, write("/w/.git/config", "shell.run")) == .deny)
        #expect(verdict(p, write("/w/.git/config", "fs.write_file")) == .allow)
        // Both scopes at once, from the command line.
        let r = try flag("driver:notes/tool:notes.sync/kv=*")
        #expect(r.driver == "notes" && r.tool == "notes.sync")
        let scoped = Policy(rules: [r])
        #expect(verdict(scoped, AccessRequest(kind: .kv, resource: "k", driver: "notes", tool: "notes.sync")) == .allow)
        #expect(verdict(scoped, AccessRequest(kind: .kv, resource: "k", driver: "notes", tool: "notes.read")) == .deny)
        #expect(verdict(scoped, AccessRequest(kind: .kv, resource: "k", driver: "other", tool: "notes.sync")) == .deny)
    }

    // MARK: Matching, kind by kind

    @Test func pathPatterns() {
        let p = Policy(rules: [
            rule(.allow, .fsRead, "/home/u/notes/**"),
            rule(.allow, .fsRead, "/etc/hosts"),
            rule(.allow, .fsRead, "/srv/*/public"),
            rule(.allow, .fsRead, "/docs/**/*.md"),
            rule(.allow, .fsRead, "/tmp/file?.txt"),
        ])
        let allowed = ["/home/u/notes", "/home/u/notes/a", "/home/u/notes/a/b/c.md", "/etc/hosts",
                       "/srv/www/public", "/docs/a.md", "/docs/x/y/a.md", "/tmp/file1.txt"]
        let denied = ["/home/u/notes2", "/home/u/notesx/a", "/home/u", "/etc/hosts.allow", "/etc/host",
                      "/srv/www/x/public", "/srv/public", "/docs/a.txt", "/tmp/file12.txt", "/tmp/file/.txt"]
        for path in allowed { #expect(verdict(p, read(path)) == .allow, "\(path)") }
        for path in denied { #expect(verdict(p, read(path)) == .deny, "\(path)") }
        // Everything, and the root.
        let all = Policy(rules: [rule(.allow, .fsRead, "/**")])
        #expect(verdict(all, read("/")) == .allow && verdict(all, read("/a/b")) == .allow)
        // exec is a path kind too.
        let exec = Policy(rules: [rule(.allow, .exec, "/usr/bin/**")])
        #expect(verdict(exec, AccessRequest(kind: .exec, resource: "/usr/bin/git", driver: "d")) == .allow)
        #expect(verdict(exec, AccessRequest(kind: .exec, resource: "/usr/local/bin/git", driver: "d")) == .deny)
    }

    @Test func nonCanonicalPathRequestsAreRefused() {
        let p = Policy(rules: [rule(.allow, .fsRead, "/**")])
        for path in ["/w/../etc/passwd", "/w/./a", "w/a", "", "/w//a", "/w/a/", "/w/\0x"] {
            let d = p.decide(read(path))
            #expect(d.verdict == .deny, "\(path)")
            #expect(d.rule.hasPrefix("fs.read: refused"), "\(d.rule)")
        }
        #expect(p.decide(read("/w/../etc")).rule == "fs.read: refused \"/w/../etc\": not canonical (a .. component) (the kernel resolves paths before checking them)")
    }

    @Test func compiledGlobsAgreeWithGlob() {
        // Outside the two path-mode extensions (DIR/** matching DIR, /**/ matching /), same language.
        let cases: [(String, String)] = [
            ("calc.*", "calc.add"), ("calc.*", "text.count"), ("*", "x"), ("c?lc.add", "calc.add"),
            ("/home/*/notes", "/home/a/notes"), ("/home/*", "/home/a/b"), ("/home/**", "/home/a/b"),
            ("*.example.com", "api.example.com"), ("*.example.com", "example.com"), ("a*b*c", "aXbYc"),
            ("a*b*c", "aXbY"), ("/a/*.txt", "/a/b.txt"), ("/a/*.txt", "/a/b/c.txt"), ("LLMOS_*", "LLMOS_X"),
            ("LLMOS_*", "PATH"), ("", ""), ("?", ""), ("**x", "a/b/x"),
        ]
        for (pattern, text) in cases {
            for pathMode in [false, true] {
                #expect(CompiledGlob(pattern, pathMode: pathMode).matches(text) == Glob.matches(pattern, text, pathMode: pathMode),
                        "\(pattern) \(text) \(pathMode)")
            }
        }
    }

    @Test func netHostsPortsAndSchemes() throws {
        let p = try policy([
            (.allow, "net.connect=https://api.example.com:443"),
            (.allow, "net.connect=*.cdn.example.org"),
            (.allow, "net.connect=http://localhost:*"),
            (.allow, "net.connect=ws://chat.example.net:8080"),
        ])
        let allowed = ["https://api.example.com:443", "https://a.cdn.example.org:443", "http://x.y.cdn.example.org:8443",
                       "http://localhost:3000", "ws://chat.example.net:8080"]
        let denied = ["http://api.example.com:443", "https://api.example.com:8443", "https://cdn.example.org:443",
                      "https://localhost:3000", "ws://chat.example.net:80", "https://evil.com:443",
                      "https://api.example.com.evil.com:443"]
        for r in allowed { #expect(verdict(p, net(r)) == .allow, "\(r)") }
        for r in denied { #expect(verdict(p, net(r)) == .deny, "\(r)") }
        // Everything, by "*", and by "*:*".
        for everything in ["net.connect=*", "net.connect=*:*", "net.connect=true", "net.connect=*://*:*"] {
            #expect(verdict(Policy(rules: [try flag(everything)]), net("https://a.b:1")) == .allow, "\(everything)")
        }
        // Any host on one port.
        let port = Policy(rules: [try flag("net.connect=*:443")])
        #expect(verdict(port, net("https://a.b:443")) == .allow && verdict(port, net("https://a.b:444")) == .deny)
        // Host names are case-insensitive and may carry the root's trailing dot.
        #expect(verdict(p, net("HTTPS://API.Example.COM.:443")) == .allow)
    }

    @Test func netAddressLiteralsAndCIDRs() throws {
        let p = try policy([
            (.allow, "net.connect=10.0.0.0/8"),
            (.allow, "net.connect=[::1]:8080"),
            (.allow, "net.connect=fd00::/8"),
            (.allow, "net.connect=https://192.168.1.10"),
        ])
        #expect(verdict(p, net("http://10.1.2.3:80")) == .allow)
        #expect(verdict(p, net("http://11.0.0.1:80")) == .deny)
        #expect(verdict(p, net("http://[::1]:8080")) == .allow)
        #expect(verdict(p, net("http://[::1]:8081")) == .deny)
        #expect(verdict(p, net("http://[fd12:3456::1]:80")) == .allow)
        #expect(verdict(p, net("http://[fe80::1]:80")) == .deny)
        #expect(verdict(p, net("https://192.168.1.10:443")) == .allow)
        #expect(verdict(p, net("http://192.168.1.10:80")) == .deny)
        // The CIDR applies to the address actually connected to: a name inside the network is allowed…
        #expect(verdict(p, net("https://intranet.corp:443", "10.9.8.7")) == .allow)
        // …and a granted literal whose connection goes elsewhere is not.
        #expect(verdict(p, net("http://10.1.2.3:80", "8.8.8.8")) == .deny)
        // IPv4-mapped IPv6 is IPv4, on both sides.
        #expect(verdict(p, net("http://[::ffff:10.0.0.1]:80")) == .allow)
        #expect(verdict(p, net("https://name:443", "::ffff:10.0.0.1")) == .allow)
        let mapped = Policy(rules: [try flag("net.connect=::ffff:10.0.0.0/120")])  // 10.0.0.0/24
        #expect(verdict(mapped, net("http://10.0.0.9:80")) == .allow)
        #expect(verdict(mapped, net("http://10.0.1.9:80")) == .deny)
    }

    @Test func aNameResolvingToAForbiddenAddressIsDenied() throws {
        // Grant by address: the name's resolution is what counts.
        let byAddress = try policy([(.allow, "net.connect=93.184.216.34:443")])
        #expect(verdict(byAddress, net("https://example.com:443", "93.184.216.34")) == .allow)
        let d = byAddress.decide(net("https://example.com:443", "10.0.0.1"))
        #expect(d.verdict == .deny && d.rule == Policy.notGrantedRule)
        #expect(verdict(byAddress, net("https://example.com:443")) == .deny)  // no address known: no match
        // Deny by address beats allow by name (the metadata service trick).
        let p = try policy([(.allow, "net.connect=*.example.com"), (.deny, "net.connect=169.254.0.0/16"), (.deny, "net.connect=127.0.0.0/8")])
        #expect(verdict(p, net("https://api.example.com:443", "93.184.216.34")) == .allow)
        #expect(p.decide(net("https://metadata.example.com:80", "169.254.169.254")).rule == "--deny net.connect=169.254.0.0/16")
        #expect(verdict(p, net("https://local.example.com:443", "::ffff:127.0.0.1")) == .deny)
        // A host-name pattern does not match an IP literal; the literal is checked by address.
        let names = try policy([(.allow, "net.connect=*.example.com")])
        #expect(verdict(names, net("http://93.184.216.34:80")) == .deny)
    }

    @Test func malformedNetRequestsAreRefused() throws {
        let p = try policy([(.allow, "net.connect=*")])
        let attempts = [
            "http://allowed.com@evil.com:80", "http://evil.com:80/path", "http://2130706433:80", "http://0x7f.0.0.1:80",
            "http://0177.0.0.1:80", "http://127.1:80", "evil.com:80", "http://evil.com:99999", "http://[::1:80",
            "http://::1:80", "http://evil%2ecom:80", "http://ex ample.com:80", "http://évil.com:80", "ftp://x.com",
        ]
        for resource in attempts {
            let d = p.decide(net(resource))
            #expect(d.verdict == .deny, "\(resource)")
            #expect(d.rule.hasPrefix("net.connect: refused a malformed request"), "\(resource): \(d.rule)")
        }
        #expect(p.decide(net("https://a.com:443", "not-an-ip")).verdict == .deny)
        // A missing port is the scheme's default for http(s) and ws(s).
        let https = try policy([(.allow, "net.connect=https://a.com:443")])
        #expect(verdict(https, net("https://a.com")) == .allow)
    }

    @Test func namesKeysToolsAndWholeCapabilities() throws {
        let p = try policy([
            (.allow, "env=LLMOS_*"), (.deny, "env=LLMOS_SECRET"),
            (.allow, "kv=notes/*"), (.allow, "storage.read=photos"), (.allow, "memory.write=session.*"),
            (.allow, "tool.call=calc.*"), (.deny, "tool.call=calc.div"),
            (.allow, "clock=true"), (.allow, "random=*"), (.allow, "cpu.complete=*"),
        ])
        func req(_ kind: CapabilityKind, _ resource: String) -> AccessRequest { AccessRequest(kind: kind, resource: resource, driver: "d") }
        #expect(verdict(p, req(.env, "LLMOS_HOME")) == .allow)
        #expect(verdict(p, req(.env, "LLMOS_SECRET")) == .deny)
        #expect(verdict(p, req(.env, "PATH")) == .deny)
        #expect(verdict(p, req(.env, "llmos_home")) == .deny)  // names are case-sensitive
        #expect(verdict(p, req(.kv, "notes/a/b")) == .allow)     // * crosses / in keys
        #expect(verdict(p, req(.kv, "other")) == .deny)
        #expect(verdict(p, req(.storageRead, "photos")) == .allow)
        #expect(verdict(p, req(.storageWrite, "photos")) == .deny)
        #expect(verdict(p, req(.memoryWrite, "session.1")) == .allow)
        #expect(verdict(p, req(.memoryRead, "session.1")) == .deny)
        #expect(verdict(p, req(.toolCall, "calc.add")) == .allow)
        #expect(verdict(p, req(.toolCall, "calc.div")) == .deny)
        #expect(verdict(p, req(.toolCall, "text.count")) == .deny)
        #expect(verdict(p, req(.clock, "")) == .allow)
        #expect(verdict(p, req(.random, "")) == .allow)
        #expect(verdict(p, req(.cpuComplete, "llama")) == .allow)
        #expect(expectError { try flag("clock=/x") }.message == "--allow clock=/x: clock is granted whole: use \"*\" or true, not \"/x\"")
    }

    @Test func explainSaysWhichRulesMatchAndWhy() throws {
        let p = try policy([(.allow, "fs.read=~/**"), (.deny, "fs.read=~/.ssh/**"), (.allow, "driver:other/fs.read=/**"), (.allow, "kv=*")])
        let lines = p.explain(read("/home/u/.ssh/id_rsa"))
        #expect(lines.count == 3)
        #expect(lines[0].matched && lines[0].why == "/home/u/** matches /home/u/.ssh/id_rsa")
        #expect(lines[1].matched && lines[1].rule.action == .deny)
        #expect(!lines[2].matched && lines[2].why == "applies to drivers matching other, not notes")
        let n = try policy([(.allow, "net.connect=https://*.example.com:443"), (.deny, "net.connect=10.0.0.0/8")]).explain(net("https://a.example.com:80", "10.1.1.1"))
        #expect(n.map(\.why) == ["port 80 is not 443", "10.1.1.1 is inside 10.0.0.0/8"])
        #expect(n.map(\.matched) == [false, true])
    }

    // MARK: Expansion

    @Test func patternsExpandAndBecomeCanonical() throws {
        let cases: [(String, String)] = [
            ("fs.read=~", "/home/u"), ("fs.read=~/notes/**", "/home/u/notes/**"), ("fs.read=${home}/x", "/home/u/x"),
            ("fs.read=${workspace}/**", "/w/**"), ("fs.read=src/*.swift", "/w/src/*.swift"), ("fs.read=.", "/w"),
            ("fs.read=../other/**", "/other/**"), ("fs.read=/a/./b/../c//d/", "/a/c/d"), ("fs.read=/../..", "/"),
            ("fs.read=**", "/**"), ("fs.read=*", "/**"), ("fs.write=true", "/**"), ("exec=/usr/bin/git", "/usr/bin/git"),
            ("env=${home}", "${home}"),  // only path patterns expand
        ]
        for (text, expected) in cases {
            #expect(try flag(text).pattern == expected, "\(text)")
        }
        #expect(expectError { try flag("fs.read=~bob/x") }.message == "--allow fs.read=~bob/x: \"~bob/x\": ~user is not supported; write the path out")
        #expect(expectError { try flag("fs.read=${wrkspace}/x") }.message == "--allow fs.read=${wrkspace}/x: \"${wrkspace}/x\": unknown variable ${wrkspace}; known: ${home}, ${workspace}")
        #expect(expectError { try flag("fs.read=/a/*/../b") }.message.hasSuffix(".. after a wildcard has no single meaning; write the path without it"))
    }

    @Test func symlinksInPatternsAreNotResolved() throws {
        // The request side is resolved; a pattern names the real path and is kept as written.
        let dir = Paths.temporaryDirectory("policy-link")
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/real")
        let r = try PolicyParser.rule(fromFlag: "fs.read=link/**", action: .allow, context: PolicyContext(home: "/home/u", workspace: dir))
        #expect(r.pattern == dir + "/link/**")
    }

    // MARK: The policy file

    static let example = """
    # llmos.policy.yaml
    version: 1
    workspace: ~/projects/x
    allow:
      fs.read: ["${workspace}/**", "~/notes/**"]
      net.connect: ["https://api.example.com:443"]
      tool.call: ["*"]
    ask:
      fs.write: ["${workspace}/**"]
    deny:
      fs.read: ["~/.ssh/**"]
      tool.call: calc.div
    audit:
      exec: ["/usr/bin/git"]
    drivers:
      notes:
        allow: {kv: ["*"], clock: true}
    tools:
      fs.delete:
        ask: {fs.write: ["**"]}
    """

    @Test func aValidPolicyFile() throws {
        let file = try parse(Self.example)
        #expect(file.workspace == "/home/u/projects/x")
        #expect(file.includesBuiltInDefault)
        #expect(file.rules.map(\.description) == [
            "llmos.policy.yaml:5: allow fs.read /home/u/projects/x/**",
            "llmos.policy.yaml:5: allow fs.read /home/u/notes/**",
            "llmos.policy.yaml:6: allow net.connect https://api.example.com:443",
            "llmos.policy.yaml:7: allow tool.call *",
            "llmos.policy.yaml:9: ask fs.write /home/u/projects/x/**",
            "llmos.policy.yaml:11: deny fs.read /home/u/.ssh/**",
            "llmos.policy.yaml:12: deny tool.call calc.div",
            "llmos.policy.yaml:14: audit exec /usr/bin/git",
            "llmos.policy.yaml:17: allow kv * for driver notes",
            "llmos.policy.yaml:17: allow clock * for driver notes",
            "llmos.policy.yaml:20: ask fs.write /** in tool fs.delete",
        ])
        let p = file.policy
        #expect(p.decide(read("/home/u/.ssh/id_rsa")).rule == "llmos.policy.yaml:11: deny fs.read /home/u/.ssh/**")
        #expect(verdict(p, read("/home/u/projects/x/README.md")) == .allow)
        #expect(verdict(p, AccessRequest(kind: .fsWrite, resource: "/home/u/projects/x/a", driver: "d")) == .ask)
        #expect(verdict(p, AccessRequest(kind: .toolCall, resource: "calc.div", driver: "")) == .deny)
        #expect(p.decide(AccessRequest(kind: .exec, resource: "/usr/bin/git", driver: "d")).flagged)
        // Empty files and empty sections are valid and add nothing.
        #expect(try parse("").rules.isEmpty)
        #expect(try parse("allow:\ndrivers:\n").rules.isEmpty)
        // A relative workspace is relative to the file's folder.
        #expect(try parse("workspace: sub/..//proj").workspace == "/w/proj")
        #expect(try parse("builtin_default: false").includesBuiltInDefault == false)
    }

    @Test func unknownTopLevelKeyIsAnError() {
        #expect(refusal("allow:\n  kv: \"*\"\ndeney:\n  fs.read: [\"/etc/**\"]\n") == [
            "/w/llmos.policy.yaml:3: deney: unknown top-level key (did you mean deny?); a policy takes version, workspace, builtin_default, allow, ask, deny, audit, drivers, tools, isolate. Unknown keys are refused, not ignored: a misspelled section would silently drop a restriction",
        ])
    }

    @Test func unknownCapabilityIsAnErrorWithASuggestion() {
        #expect(refusal("deny:\n  fs.raed: [\"~/.ssh/**\"]\n") == [
            "/w/llmos.policy.yaml:2: deny.fs.raed: unknown capability (did you mean fs.read?); known: fs.read, fs.write, net.connect, exec, env, kv, storage.read, storage.write, memory.read, memory.write, cpu.complete, tool.call, clock, random. Unknown capabilities are refused, not ignored: a dropped restriction would be a hole",
        ])
    }

    @Test func valuesOfTheWrongTypeAreErrors() {
        #expect(refusal("allow:\n  fs.read: 3\n  kv: {a: b}\n  env: [LLMOS_X, [nested]]\n  clock: false\nversion: \"1\"\nbuiltin_default: yes please\ndeny: [fs.read]\n") == [
            "/w/llmos.policy.yaml:2: allow.fs.read: expected a pattern, a list of patterns or true, got an integer (3); quote it if you meant a string",
            "/w/llmos.policy.yaml:3: allow.kv: expected a pattern, a list of patterns or true, got a mapping",
            "/w/llmos.policy.yaml:4: allow.env[1]: expected a pattern (a string), got a list",
            "/w/llmos.policy.yaml:5: allow.clock: false is not a rule; remove the entry, or write true or patterns",
            "/w/llmos.policy.yaml:6: version: expected an integer (version: 1), got a string (\"1\")",
            "/w/llmos.policy.yaml:7: builtin_default: expected true or false, got a string (\"yes please\")",
            "/w/llmos.policy.yaml:8: deny: expected a mapping (key: value pairs), got a list",
        ])
        #expect(refusal("version: 2") == ["/w/llmos.policy.yaml:1: version: this host reads policy version 1, got 2"])
        #expect(refusal("- allow") == ["/w/llmos.policy.yaml:1: expected a mapping (key: value pairs), got a list"])
    }

    @Test func emptyPatternsAreErrors() {
        #expect(refusal("allow:\n  fs.read: \"\"\n  kv: [\"a\", \"\"]\n") == [
            "/w/llmos.policy.yaml:2: allow.fs.read: an empty pattern matches nothing; remove it",
            "/w/llmos.policy.yaml:3: allow.kv[1]: an empty pattern matches nothing; remove it",
        ])
    }

    @Test func invalidCIDRsAreErrors() {
        #expect(refusal("deny:\n  net.connect:\n    - 10.0.0.0/33\n    - 10.1.0.0/8\n    - fd00::/129\n    - 300.1.2.3\n    - 10.0.0.0/x\n    - 1.2.3.4.5/8\n") == [
            "/w/llmos.policy.yaml:3: deny.net.connect[0]: invalid CIDR \"10.0.0.0/33\": the prefix length must be a number from 0 to 32",
            "/w/llmos.policy.yaml:4: deny.net.connect[1]: invalid CIDR \"10.1.0.0/8\": bits are set after the /8 prefix (did you mean 10.0.0.0/8?)",
            "/w/llmos.policy.yaml:5: deny.net.connect[2]: invalid CIDR \"fd00::/129\": the prefix length must be a number from 0 to 128",
            "/w/llmos.policy.yaml:6: deny.net.connect[3]: \"300.1.2.3\" is not a valid IPv4 address (write four decimal numbers, a.b.c.d)",
            "/w/llmos.policy.yaml:7: deny.net.connect[4]: invalid CIDR \"10.0.0.0/x\": the prefix length must be a number from 0 to 32",
            "/w/llmos.policy.yaml:8: deny.net.connect[5]: invalid CIDR \"1.2.3.4.5/8\": 1.2.3.4.5 is not an IP address",
        ])
    }

    @Test func badPortsAreErrors() {
        #expect(refusal("allow:\n  net.connect: [\"api.example.com:0\", \"api.example.com:65536\", \"api.example.com:https\", \"[::1]:-1\", \"a.com:\"]\n") == [
            "/w/llmos.policy.yaml:2: allow.net.connect[0]: bad port \"0\": expected * or a number from 1 to 65535",
            "/w/llmos.policy.yaml:2: allow.net.connect[1]: bad port \"65536\": expected * or a number from 1 to 65535",
            "/w/llmos.policy.yaml:2: allow.net.connect[2]: bad port \"https\": expected * or a number from 1 to 65535",
            "/w/llmos.policy.yaml:2: allow.net.connect[3]: bad port \"-1\": expected * or a number from 1 to 65535",
            "/w/llmos.policy.yaml:2: allow.net.connect[4]: bad port \"\": expected * or a number from 1 to 65535",
        ])
    }

    @Test func otherBadNetPatternsAreErrors() {
        #expect(refusal("allow:\n  net.connect: [\"https://a.com/v1\", \"user@a.com\", \"ht!tp://a.com\", \"a_b c.com\", \":443\"]\n") == [
            "/w/llmos.policy.yaml:2: allow.net.connect[0]: \"https://a.com/v1\": a net.connect pattern is [scheme://]host[:port], without a path",
            "/w/llmos.policy.yaml:2: allow.net.connect[1]: \"user@a.com\" has a user part; a net.connect pattern is [scheme://]host[:port]",
            "/w/llmos.policy.yaml:2: allow.net.connect[2]: invalid scheme \"ht!tp\"; a net.connect pattern is [scheme://]host[:port]",
            "/w/llmos.policy.yaml:2: allow.net.connect[3]: \"a_b c.com\": a net.connect pattern is [scheme://]host[:port], without a path or query",
            "/w/llmos.policy.yaml:2: allow.net.connect[4]: \":443\" has no host; a net.connect pattern is [scheme://]host[:port] (use * for any host)",
        ])
    }

    @Test func scopesAndActionsAreChecked() {
        #expect(refusal("drivers:\n  notes:\n    alow: {kv: \"*\"}\n  \"No Tes\":\n    allow: {kv: \"*\"}\ntools:\n  \"fs/delete\":\n    ask: {fs.write: \"**\"}\n") == [
            "/w/llmos.policy.yaml:3: drivers.notes.alow: unknown action (did you mean allow?); expected allow, ask, deny or audit",
            "/w/llmos.policy.yaml:4: drivers.No Tes: \"No Tes\" is not a driver name or glob (lowercase letters, digits, _, * and ?)",
            "/w/llmos.policy.yaml:7: tools.fs/delete: \"fs/delete\" is not a tool name or glob (driver.tool: lowercase letters, digits, _, ., * and ?)",
        ])
    }

    @Test func yamlProblemsAreErrors() {
        let message = "YAML anchors and aliases (&name, *name) are not allowed in policies; write the value out"
        #expect(refusal("allow: &a\n  kv: \"*\"\ndeny: *a\n") == ["/w/llmos.policy.yaml:3: deny: \(message)"])
        #expect(refusal("allow:\n  env: [&x LLMOS_A, *x]\n") == ["/w/llmos.policy.yaml:2: allow.env[1]: \(message)"])
        // The billion laughs stop at the first alias.
        var laughs = "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1..<9 { laughs += "x\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        #expect(refusal("drivers:\n" + laughs.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n  z:\n    allow: {env: *a8}\n").contains("/w/llmos.policy.yaml:12: drivers.z.allow.env: \(message)"))
        #expect(refusal("deny:\n  fs.read: [\"/etc/**\"]\ndeny:\n  kv: \"*\"\n") == ["/w/llmos.policy.yaml:1: not valid YAML: the key deny appears twice in one mapping"])
        #expect(refusal("allow:\n  kv: [unclosed\n") == ["/w/llmos.policy.yaml:3: not valid YAML: did not find expected ',' or ']' (while parsing a flow sequence on line 2)"])
        #expect(refusal("allow:\n  tool.call: *\n") == ["/w/llmos.policy.yaml:2: not valid YAML: did not find expected alphabetic or numeric character (while scanning an alias on line 2); a bare * starts a YAML alias: quote patterns (\"*\", \"*.example.com\")"])
    }

    @Test func aPolicyWithAnyErrorIsNeverHalfApplied() throws {
        let dir = Paths.temporaryDirectory("policy-half")
        let good = dir + "/good.yaml", bad = dir + "/bad.yaml"
        try "allow:\n  fs.read: [\"/**\"]\n".write(toFile: good, atomically: true, encoding: .utf8)
        // Valid rules before and after the error: none of them may apply.
        try "allow:\n  fs.read: [\"/**\"]\n  net.connect: [\"a.com:99999\"]\n  kv: \"*\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let error = expectError { try PolicyParser.parse(file: bad, context: Self.context) }
        #expect(error.message.hasPrefix("\(bad):3: allow.net.connect[0]: bad port \"99999\""))
        // Through load, with a good project file: the whole load is refused.
        try FileManager.default.copyItem(atPath: good, toPath: dir + "/llmos.policy.yaml")
        let environment = ["XDG_CONFIG_HOME": dir + "/nowhere", "HOME": "/home/u"]
        // A project file that grants is trusted only when named with --policy.
        let untrusted = expectError { try PolicyParser.load(context: Self.context, environment: environment, currentDirectory: dir) }
        #expect(untrusted.message.contains("may only restrict (deny, ask, audit)"), "\(untrusted.message)")
        let loaded = try PolicyParser.load(policyFile: "llmos.policy.yaml", context: Self.context, environment: environment, currentDirectory: dir)
        #expect(verdict(loaded, read("/etc/passwd")) == .allow)
        let refused = expectError { try PolicyParser.load(policyFile: bad, context: Self.context, environment: environment, currentDirectory: dir) }
        #expect(refused.code == .invalidArgument)
        #expect((refused.cause as? PolicyErrors)?.diagnostics.count == 1)
    }

    @Test func loadMergesTheStandardFilesTheFlagFileAndGrants() throws {
        let dir = Paths.temporaryDirectory("policy-load")
        let config = dir + "/config", project = dir + "/project"
        try FileManager.default.createDirectory(atPath: config + "/llmos", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        try "allow:\n  fs.read: [\"~/notes/**\"]\n".write(toFile: config + "/llmos/policy.yaml", atomically: true, encoding: .utf8)
        try "deny:\n  fs.read: [\"~/notes/private/**\"]\n".write(toFile: project + "/llmos.policy.yaml", atomically: true, encoding: .utf8)
        try "ask:\n  kv: \"*\"\n".write(toFile: dir + "/extra.yaml", atomically: true, encoding: .utf8)
        let environment = ["XDG_CONFIG_HOME": config, "HOME": "/home/u"]
        #expect(PolicyParser.standardFiles(environment: environment, currentDirectory: project) == [config + "/llmos/policy.yaml", project + "/llmos.policy.yaml"])
        #expect(PolicyParser.userFile(environment: ["HOME": "/home/u"]) == "/home/u/.config/llmos/policy.yaml")
        #expect(PolicyParser.userFile(environment: ["HOME": "/home/u", "XDG_CONFIG_HOME": "relative"]) == "/home/u/.config/llmos/policy.yaml")
        let context = PolicyContext(home: "/home/u", workspace: project)
        let p = try PolicyParser.load(policyFile: dir + "/extra.yaml", grants: [try PolicyParser.rule(fromFlag: "tool.call=calc.add", action: .deny, context: context)],
                                      context: context, environment: environment, currentDirectory: project)
        #expect(p.rules.map(\.source) == ["built-in default", config + "/llmos/policy.yaml:2", "llmos.policy.yaml:2", dir + "/extra.yaml:2", "--deny tool.call=calc.add"])
        #expect(verdict(p, read("/home/u/notes/a")) == .allow)
        #expect(verdict(p, read("/home/u/notes/private/a")) == .deny)
        #expect(verdict(p, AccessRequest(kind: .kv, resource: "x", driver: "d")) == .ask)
        #expect(verdict(p, AccessRequest(kind: .toolCall, resource: "calc.add", driver: "")) == .deny)
        #expect(verdict(p, AccessRequest(kind: .toolCall, resource: "calc.mul", driver: "")) == .allow)
        // --policy must exist; a file saying builtin_default: false drops the built-in grant.
        #expect(expectError { try PolicyParser.load(policyFile: dir + "/missing.yaml", environment: environment, currentDirectory: project) }.code == .notFound)
        try "builtin_default: false\nallow:\n  tool.call: calc.*\n".write(toFile: dir + "/strict.yaml", atomically: true, encoding: .utf8)
        let strict = try PolicyParser.load(policyFile: dir + "/strict.yaml", includeStandardFiles: false, context: context, environment: environment, currentDirectory: project)
        #expect(verdict(strict, AccessRequest(kind: .toolCall, resource: "text.count", driver: "")) == .deny)
        #expect(verdict(strict, AccessRequest(kind: .toolCall, resource: "calc.add", driver: "")) == .allow)
    }

    // MARK: Command-line grants

    @Test func commandLineGrants() throws {
        let r = try flag("fs.read=~/notes/**")
        #expect(r == PolicyRule(.allow, .fsRead, "/home/u/notes/**", source: "--allow fs.read=~/notes/**"))
        #expect(r.description == "--allow fs.read=~/notes/**")
        let deny = try flag("tool.call=calc.add", .deny)
        #expect(Policy.builtInDefault.adding([deny]).decide(AccessRequest(kind: .toolCall, resource: "calc.add", driver: "")) == Decision(verdict: .deny, rule: "--deny tool.call=calc.add"))
        #expect(try flag("net.connect=*", .deny).source == "--deny net.connect=*")
        #expect(try flag("fs.write=x=y", .ask).pattern == "/w/x=y")  // only the first = splits
        #expect(try flag("exec=/usr/bin/git", .audit).action == .audit)
        #expect(try flag("driver:notes/kv=*").driver == "notes")
        #expect(try flag("tool:fs.delete/fs.write=**", .ask).tool == "fs.delete")
    }

    @Test func commandLineGrantErrors() {
        let cases: [(String, String)] = [
            ("fs.read", "--allow fs.read: expected KIND=PATTERN, for example --allow fs.read=~/notes/** or --allow tool.call=calc.add"),
            ("fs.raed=~/x", "--allow fs.raed=~/x: unknown capability \"fs.raed\" (did you mean fs.read?); known: fs.read, fs.write, net.connect, exec, env, kv, storage.read, storage.write, memory.read, memory.write, cpu.complete, tool.call, clock, random"),
            ("fs.read=", "--allow fs.read=: an empty pattern matches nothing; remove it"),
            ("net.connect=10.0.0.0/40", "--allow net.connect=10.0.0.0/40: invalid CIDR \"10.0.0.0/40\": the prefix length must be a number from 0 to 32"),
            ("net.connect=a.com:http", "--allow net.connect=a.com:http: bad port \"http\": expected * or a number from 1 to 65535"),
            ("net.connect=192.168.*", "--allow net.connect=192.168.*: \"192.168.*\": a glob matches host names, not addresses; match addresses with a CIDR such as 192.168.0.0/16"),
            ("drv:notes/kv=*", "--allow drv:notes/kv=*: \"drv:notes/\" is not a scope: write driver:NAME/ or tool:NAME/ before the capability, e.g. driver:notes/kv=*"),
            ("driver:/kv=*", "--allow driver:/kv=*: an empty driver name matches nothing"),
            ("driver:Notes/kv=*", "--allow driver:Notes/kv=*: \"Notes\" is not a driver name or glob (lowercase letters, digits, _, * and ?)"),
        ]
        for (text, message) in cases {
            let error = expectError { try flag(text) }
            #expect(error.code == .invalidArgument)
            #expect(error.message == message)
        }
    }

    @Test func builtInDefaultAllowsToolCallsAndNothingElse() {
        let p = Policy.builtInDefault
        #expect(p.decide(AccessRequest(kind: .toolCall, resource: "calc.add", driver: "")) == Decision(verdict: .allow, rule: "built-in default: allow tool.call *"))
        for kind in CapabilityKind.allCases where kind != .toolCall {
            let resource = kind.isPath ? "/x" : kind == .netConnect ? "https://a.com:443" : "x"
            #expect(verdict(p, AccessRequest(kind: kind, resource: resource, driver: "d")) == .deny, "\(kind)")
        }
    }

    @Test func invalidRulesBuiltByHandFailClosed() {
        let p = Policy(rules: [rule(.allow, .fsRead, "relative/**"), rule(.deny, .netConnect, "10.0.0.0/99"), rule(.allow, .netConnect, "*")])
        #expect(verdict(p, read("/w/relative/a")) == .deny)
        #expect(verdict(p, net("https://a.com:443")) == .deny)
        #expect(rule(.deny, .netConnect, "10.0.0.0/99").problem == "invalid CIDR \"10.0.0.0/99\": the prefix length must be a number from 0 to 32")
        #expect(rule(.allow, .fsRead, "/a").problem == nil)
    }

    // MARK: The broker

    func broker(_ flags: [(PolicyAction, String)], asker: any Asker = DenyingAsker()) throws -> CapabilityBroker {
        CapabilityBroker(policy: try policy(flags), asker: asker, context: Self.context)
    }

    @Test func effectiveSetIsManifestIntersectPolicy() throws {
        let b = try broker([(.allow, "fs.read=~/**"), (.allow, "net.connect=*"), (.allow, "kv=*")])
        var requested = CapabilityRequests()
        requested.set("fs.read", .patterns(["~/notes/**"]))
        requested.set("net.connect", .patterns(["api.example.com:443"]))
        requested.set("kv", .any)
        // Requested and granted.
        #expect(b.check(read("/home/u/notes"), requested: requested).verdict == .allow)  // DIR/** covers DIR
        #expect(b.check(read("/home/u/notes/a.md"), requested: requested).verdict == .allow)
        #expect(b.check(net("https://api.example.com:443"), requested: requested).verdict == .allow)
        #expect(b.check(AccessRequest(kind: .kv, resource: "any", driver: "notes"), requested: requested).verdict == .allow)
        // Granted but not requested.
        #expect(b.check(read("/home/u/notes2/a"), requested: requested) == Decision(verdict: .deny, rule: "manifest: notes does not request fs.read /home/u/notes2/a"))
        #expect(b.check(net("https://api.example.com:80"), requested: requested).rule == "manifest: web does not request net.connect https://api.example.com:80")
        #expect(b.check(AccessRequest(kind: .clock, resource: "", driver: "notes"), requested: requested).rule == "manifest: notes does not request clock")
        // Requested but not granted.
        #expect(b.check(read("/etc/passwd"), requested: CapabilityRequests.requesting("fs.read", .any)).rule == Policy.notGrantedRule)
        // No manifest (the operator's own call): the policy alone.
        #expect(b.check(read("/home/u/x"), requested: nil).verdict == .allow)
        // The manifest cache follows a changed manifest.
        #expect(b.check(read("/home/u/other"), requested: CapabilityRequests.requesting("fs.read", .patterns(["~/other"]))).verdict == .allow)
        #expect(b.check(read("/home/u/other"), requested: CapabilityRequests.requesting("fs.read", .patterns(["~/else"]))).verdict == .deny)
    }

    @Test func askAllowedOnce() throws {
        let asker = ScriptedAsker([.allowOnce])
        let b = try broker([(.ask, "fs.write=/w/**")], asker: asker)
        let write = AccessRequest(kind: .fsWrite, resource: "/w/a.txt", driver: "notes", tool: "notes.save")
        #expect(b.check(write, requested: nil) == Decision(verdict: .allow, rule: "asked: allowed once (--ask fs.write=/w/**)"))
        // Once means once: the next request asks again (and the script now denies).
        #expect(b.check(write, requested: nil) == Decision(verdict: .deny, rule: "asked: denied (--ask fs.write=/w/**)"))
        #expect(asker.asked.count == 2)
        #expect(asker.asked[0].request == write && asker.asked[0].decision.verdict == .ask)
        #expect(b.sessionGrants.isEmpty)
    }

    @Test func askAllowedForTheSessionThenRevoked() throws {
        let asker = ScriptedAsker([.allowForSession, .deny])
        let b = try broker([(.ask, "fs.write=/w/**"), (.deny, "fs.write=/w/.git/**")], asker: asker)
        let write = AccessRequest(kind: .fsWrite, resource: "/w/a.txt", driver: "notes")
        #expect(b.check(write, requested: nil).rule == "asked: allowed for this session (session grant #1; --ask fs.write=/w/**)")
        #expect(b.sessionGrants == [SessionGrant(id: 1, kind: .fsWrite, resource: "/w/a.txt", driver: "notes")])
        #expect(b.sessionGrants[0].description == "#1 fs.write /w/a.txt for driver notes")
        // The same request passes without asking; another resource or driver asks.
        #expect(b.check(write, requested: nil).verdict == .allow)
        #expect(asker.asked.count == 1)
        var other = write
        other.driver = "text"
        #expect(b.check(other, requested: nil).verdict == .deny)
        #expect(asker.asked.count == 2)
        // A session grant never overrides a deny.
        let git = AccessRequest(kind: .fsWrite, resource: "/w/.git/config", driver: "notes")
        #expect(b.check(git, requested: nil).rule == "--deny fs.write=/w/.git/**")
        // Revoked: it asks again.
        #expect(b.revoke(1))
        #expect(!b.revoke(1))
        #expect(b.sessionGrants.isEmpty)
        #expect(b.check(write, requested: nil).verdict == .deny)
        #expect(asker.asked.count == 3)
    }

    @Test func denyingAskerSaysHowToGrant() throws {
        let b = try broker([(.ask, "fs.write=/w/**")])
        let d = b.check(AccessRequest(kind: .fsWrite, resource: "/w/a.txt", driver: "notes"), requested: nil)
        #expect(d.verdict == .deny)
        #expect(d.rule == "--ask fs.write=/w/** (no terminal to ask on for fs.write /w/a.txt by driver notes: run llmos in a terminal to answer, or change that ask rule to allow (an --allow cannot override it: ask beats allow))")
        let t = try broker([(.allow, "tool.call=*")])
        let destructive = t.checkToolCall(tool: "fs.delete", hints: OperationHints(destructive: true), caller: "")
        #expect(destructive.rule == "confirmation: fs.delete is marked destructive: it asks unless a rule allows it by name (--allow tool.call=fs.delete) (no terminal to ask on: grant it with --allow tool.call=fs.delete or in llmos.policy.yaml)")
    }

    @Test func destructiveToolsAskUnlessAllowedByExactName() throws {
        let destructive = OperationHints(destructive: true)
        let confirm = OperationHints(needsConfirmation: true)
        // Allowed by a glob only: asks.
        let asker = ScriptedAsker([.allowOnce, .deny, .allowForSession])
        let b = CapabilityBroker(policy: Policy.builtInDefault, asker: asker, context: Self.context)
        #expect(b.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").rule.hasPrefix("asked: allowed once (confirmation: fs.delete is marked destructive"))
        #expect(b.checkToolCall(tool: "fs.delete", hints: confirm, caller: "").verdict == .deny)
        #expect(asker.asked.last?.decision.rule == "confirmation: fs.delete is marked needs_confirmation: it asks unless a rule allows it by name (--allow tool.call=fs.delete)")
        // Allowed for the session: not asked again.
        #expect(b.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").verdict == .allow)
        #expect(b.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").verdict == .allow)
        #expect(asker.asked.count == 3)
        // A tool without the hints is not asked about.
        #expect(b.checkToolCall(tool: "calc.add", hints: OperationHints(), caller: "") == Decision(verdict: .allow, rule: "built-in default: allow tool.call *"))
        // Allowed by exact name (allow or audit): runs without asking.
        let named = CapabilityBroker(policy: Policy.builtInDefault.adding([try flag("tool.call=fs.delete")]), asker: ScriptedAsker([]), context: Self.context)
        #expect(named.checkToolCall(tool: "fs.delete", hints: destructive, caller: "") == Decision(verdict: .allow, rule: "built-in default: allow tool.call *"))
        let audited = CapabilityBroker(policy: Policy(rules: [try flag("tool.call=fs.delete", .audit)]), context: Self.context)
        #expect(audited.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").flagged)
        // A name that only looks exact as a glob (fs.*) is not exact.
        let globbed = CapabilityBroker(policy: Policy(rules: [try flag("tool.call=fs.*")]), context: Self.context)
        #expect(globbed.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").verdict == .deny)
        // Deny still wins over an exact allow.
        let denied = CapabilityBroker(policy: Policy(rules: [try flag("tool.call=fs.delete"), try flag("tool.call=fs.*", .deny)]), context: Self.context)
        #expect(denied.checkToolCall(tool: "fs.delete", hints: destructive, caller: "").rule == "--deny tool.call=fs.*")
        // A driver calling a tool: its manifest must request it.
        #expect(named.checkToolCall(tool: "fs.delete", hints: OperationHints(), caller: "agent", requested: CapabilityRequests.requesting("tool.call", .patterns(["calc.*"])))
                == Decision(verdict: .deny, rule: "manifest: agent does not request tool.call fs.delete"))
    }

    @Test func brokerIsThreadSafe() throws {
        let b = try broker([(.ask, "kv=*")], asker: ScriptedAsker([], whenExhausted: .allowForSession))
        let wrong = Mutex(0)
        onThreads(8) { i in
            for j in 0..<500 {
                let d = b.check(AccessRequest(kind: .kv, resource: "k\(j % 10)", driver: "d\(i % 2)"), requested: nil)
                if d.verdict != .allow { wrong.withLock { $0 += 1 } }
                if j % 100 == 0, let first = b.sessionGrants.first { b.revoke(first.id) }
            }
        }
        #expect(wrong.withLock { $0 } == 0)
        #expect(b.sessionGrants.count <= 20)
    }
}

fileprivate extension CapabilityRequests {
    static func requesting(_ name: String, _ scope: Scope) -> CapabilityRequests {
        var r = CapabilityRequests()
        r.set(name, scope)
        return r
    }
}

