import Foundation
import Yams

/// Reads the operator's policy: YAML files and command-line grants, into `PolicyRule`s.
///
/// ## The policy file
///
/// ```yaml
/// # llmos.policy.yaml
/// version: 1                      # optional; this host reads version 1
/// workspace: ~/projects/x         # optional; what ${workspace} and relative paths mean in
///                                 # this file (relative to the file's folder; default: the
///                                 # current directory)
/// builtin_default: true           # optional; false drops the built-in `allow tool.call *`,
///                                 # so that only the tools you allow can be called
/// allow:                          # rules for every driver: ACTION: {CAPABILITY: PATTERNS}
///   fs.read: ["${workspace}/**", "~/notes/**"]
///   net.connect: ["https://api.example.com:443"]
///   tool.call: "*"                # one pattern, a list of patterns, or true (everything)
/// ask:
///   fs.write: ["${workspace}/**"]
/// deny:
///   fs.read: ["~/.ssh/**"]
/// audit:                          # allow, and flag the audit record
///   exec: ["/usr/bin/git"]
/// drivers:                        # rules for some drivers only (a glob on the driver name)
///   notes:
///     allow: {kv: ["*"]}
/// tools:                          # rules applying while one tool runs (a glob on driver.tool)
///   fs.delete:
///     ask: {fs.write: ["**"]}
/// ```
///
/// The actions are `allow`, `ask`, `deny` and `audit`; the capabilities are those of
/// `CapabilityKind` (fs.read, fs.write, net.connect, exec, env, kv, storage.read,
/// storage.write, memory.read, memory.write, cpu.complete, tool.call, clock, random).
/// Every rule of every source counts, and deny beats ask beats allow whatever the
/// specificity: a narrow `allow` cannot punch a hole in a broad `deny`. See `PolicyRule`
/// for what patterns match.
///
/// Path patterns (fs.read, fs.write, exec) are expanded: `~` and `~/…` (the home
/// directory), `${home}`, `${workspace}`; a relative pattern is relative to the
/// workspace; `*` or `**` alone means every path. They are then made canonical
/// (`.`, `..` and repeated `/` removed) but symlinks are **not** resolved: the request
/// side is resolved (the kernel checks the real path a driver would open), so a
/// pattern must name real paths; resolving the pattern would let a symlink planted
/// inside a granted tree widen the grant to wherever it points, and would make the
/// meaning of a policy depend on the file system at load time.
///
/// A file with any error is refused whole — a policy is never half-applied — and every
/// error is reported as `file:line: field: message`. Unlike manifests, an unknown key is
/// an error, not a warning: a misspelled `deny` would silently drop a restriction.
///
/// ## Command-line grants
///
/// `--allow KIND=PATTERN`, `--ask …`, `--deny …`, `--audit …`, for example
/// `--allow fs.read=~/notes/**`, `--deny tool.call=calc.add`, `--deny net.connect=*`.
/// Patterns expand as in a file (relative to the current directory). A grant can be
/// scoped with prefixes: `driver:GLOB/` (one driver) and `tool:GLOB/` (while one tool
/// runs), e.g. `--allow driver:notes/kv=*` or `--ask tool:fs.delete/fs.write=**`.
/// `KIND=true` is the same as `KIND=*`.
///
/// ## Where policies come from
///
/// `load` merges, in order: the built-in default (`Policy.builtInDefault`, unless a file
/// says `builtin_default: false`), the user's file (`$XDG_CONFIG_HOME/llmos/policy.yaml`,
/// by default `~/.config/llmos/policy.yaml`), the project's `./llmos.policy.yaml`, the
/// `--policy FILE`, and the command-line grants. Standard files are read when present;
/// `--policy FILE` must exist.
public enum PolicyParser {
    public static let supportedVersion = 1
    /// Policies are small; anything bigger is a mistake.
    public static let maxPolicyBytes = 1 << 20
    /// The project's policy, in the current directory.
    public static let projectFileName = "llmos.policy.yaml"

    static let topLevelKeys = ["version", "workspace", "builtin_default", "allow", "ask", "deny", "audit", "drivers", "tools", "isolate"]
    static let actionKeys = PolicyAction.allCases.map(\.rawValue)

    // MARK: Files

    /// `$XDG_CONFIG_HOME/llmos/policy.yaml`, or `~/.config/llmos/policy.yaml` when
    /// XDG_CONFIG_HOME is unset, empty or relative (as the XDG spec says).
    public static func userFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return FilePath.absolute(xdg + "/llmos/policy.yaml")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? FilePath.homeDirectory
        return FilePath.absolute(home + "/.config/llmos/policy.yaml")
    }

    /// The user's file and the project's file, in the order they apply.
    public static func standardFiles(environment: [String: String] = ProcessInfo.processInfo.environment,
                                     currentDirectory: String = FileManager.default.currentDirectoryPath) -> [String] {
        [userFile(environment: environment), FilePath.join(FilePath.absolute(currentDirectory), projectFileName)]
    }

    /// The effective policy: the built-in default, the standard files that exist, the
    /// `--policy` file (which must exist), then the command-line grants. Every file is
    /// read before anything applies; if any has an error, all of them are reported
    /// and nothing is returned.
    public static func load(policyFile: String? = nil,
                            grants: [PolicyRule] = [],
                            includeStandardFiles: Bool = true,
                            context: PolicyContext = .current,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            currentDirectory: String = FileManager.default.currentDirectoryPath) throws(LLMOSError) -> Policy {
        var files: [String] = []
        if includeStandardFiles {
            files = standardFiles(environment: environment, currentDirectory: currentDirectory).filter(FilePath.isRegularFile)
        }
        if let policyFile {
            let absolute = FilePath.absolute(policyFile, relativeTo: currentDirectory)
            guard FilePath.isRegularFile(absolute) else {
                throw LLMOSError(.notFound, "--policy \(policyFile): no such policy file (\(absolute))")
            }
            if !files.contains(absolute) { files.append(absolute) }
        }
        var parsed: [PolicyFile] = []
        var messages: [String] = []
        var diagnostics: [PolicyDiagnostic] = []
        let projectFile = FilePath.join(currentDirectory, projectFileName)
        let trustedExplicitly = policyFile.map { FilePath.absolute($0, relativeTo: currentDirectory) }
        for file in files {
            do throws(LLMOSError) {
                let policy = try parse(file: file, context: context)
                // A project's own file comes with whatever was cloned: it may restrict,
                // never grant, unless the operator names it with --policy.
                if file == projectFile && trustedExplicitly != projectFile,
                   let grant = policy.rules.first(where: { $0.action == .allow }) {
                    throw LLMOSError(.permissionDenied, "\(grant.source): \(projectFileName) in the current directory may only restrict (deny, ask, audit): a cloned project could otherwise grant itself anything. Move allow rules to \(userFile(environment: environment)), or trust this file with --policy \(projectFileName)")
                }
                parsed.append(policy)
            } catch {
                messages.append(error.message)
                if let cause = error.cause as? PolicyErrors { diagnostics += cause.diagnostics }
            }
        }
        if !messages.isEmpty {
            throw LLMOSError(.invalidArgument, messages.joined(separator: "\n"), cause: PolicyErrors(diagnostics: diagnostics))
        }
        let useDefault = parsed.allSatisfy(\.includesBuiltInDefault)
        return Policy(rules: (useDefault ? Policy.builtInDefault.rules : []) + parsed.flatMap(\.rules) + grants,
                      isolate: parsed.flatMap(\.isolate))
    }

    public static func parse(file path: String, context: PolicyContext = .current) throws(LLMOSError) -> PolicyFile {
        let absolute = FilePath.absolute(path)
        guard FilePath.isRegularFile(absolute) else {
            throw LLMOSError(.notFound, "\(absolute): no such policy file")
        }
        let bytes = try FilePath.readBytes(absolute)
        guard bytes.count <= maxPolicyBytes else {
            throw refused(absolute, [PolicyDiagnostic(file: absolute, field: "", line: nil, message: "the policy is \(bytes.count) bytes; the limit is \(maxPolicyBytes)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw refused(absolute, [PolicyDiagnostic(file: absolute, field: "", line: nil, message: "the policy is not valid UTF-8")])
        }
        return try parse(text: text, file: absolute, context: context)
    }

    /// Parses a policy document; `file` names it in errors and rule sources.
    public static func parse(text: String, file: String, context: PolicyContext = .current) throws(LLMOSError) -> PolicyFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            let (line, problem) = yamlProblem(error)
            throw refused(file, [PolicyDiagnostic(file: file, field: "", line: line, message: "not valid YAML: " + problem)])
        }
        var reader = Reader(file: file, source: displayName(file, context), context: context)
        guard let root else {
            // An empty file is a valid policy that adds nothing.
            return PolicyFile(file: file, workspace: context.workspace, includesBuiltInDefault: true, rules: [])
        }
        let result = reader.policy(root)
        guard reader.errors.isEmpty else { throw refused(file, reader.errors) }
        return result
    }

    /// Yams's error as a line and a one-line problem.
    static func yamlProblem(_ error: any Error) -> (Int?, String) {
        var line: Int?
        var problem = ManifestParser.yamlProblem(error)
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(let context, let p, let mark, _), .parser(let context, let p, let mark, _), .composer(let context, let p, let mark, _):
                line = mark.line
                problem = p + (context.map { " (\($0.text) on line \($0.mark.line))" } ?? "")
            case .duplicatedKeysInMapping(let duplicates, let context):
                line = context.mark.line
                problem = "the key \(duplicates.joined(separator: ", ")) appears twice in one mapping"
            default:
                break
            }
        }
        if problem.contains("alias") {
            problem += "; a bare * starts a YAML alias: quote patterns (\"*\", \"*.example.com\")"
        }
        return (line, problem)
    }

    static func refused(_ file: String, _ errors: [PolicyDiagnostic]) -> LLMOSError {
        let body = errors.map(\.description).joined(separator: "\n")
        return LLMOSError(.invalidArgument, body + "\n\(file): policy refused whole (a policy is never half-applied): fix every error above",
                          cause: PolicyErrors(diagnostics: errors))
    }

    /// How rule sources name a file: relative to the workspace when inside it, else with `~`.
    static func displayName(_ file: String, _ context: PolicyContext) -> String {
        if file.hasPrefix(context.workspace + "/") { return String(file.dropFirst(context.workspace.count + 1)) }
        if file.hasPrefix(context.home + "/") { return "~/" + file.dropFirst(context.home.count + 1) }
        return file
    }

    // MARK: Command-line grants

    /// A rule from a command-line flag's value: `[driver:GLOB/][tool:GLOB/]KIND=PATTERN`
    /// (see the type's documentation); its source is the flag, "--allow fs.read=~/notes/**".
    public static func rule(fromFlag flag: String, action: PolicyAction, context: PolicyContext = .current) throws(LLMOSError) -> PolicyRule {
        let source = "--\(action.rawValue) \(flag)"
        func fail(_ message: String) -> LLMOSError { LLMOSError(.invalidArgument, "\(source): \(message)") }
        guard let equals = flag.firstIndex(of: "=") else {
            throw fail("expected KIND=PATTERN, for example --\(action.rawValue) fs.read=~/notes/** or --\(action.rawValue) tool.call=calc.add")
        }
        var head = Substring(flag[..<equals])
        let pattern = String(flag[flag.index(after: equals)...])
        var driver: String?, tool: String?
        while let slash = head.firstIndex(of: "/") {
            let scope = head[..<slash]
            head = head[head.index(after: slash)...]
            if scope.hasPrefix("driver:"), driver == nil {
                driver = String(scope.dropFirst("driver:".count))
                if let problem = scopeProblem(driver!, tool: false) { throw fail(problem) }
            } else if scope.hasPrefix("tool:"), tool == nil {
                tool = String(scope.dropFirst("tool:".count))
                if let problem = scopeProblem(tool!, tool: true) { throw fail(problem) }
            } else {
                throw fail("\"\(scope)/\" is not a scope: write driver:NAME/ or tool:NAME/ before the capability, e.g. driver:notes/kv=*")
            }
        }
        let name = String(head)
        guard let kind = CapabilityKind(rawValue: name) else {
            throw fail(unknownCapability(name))
        }
        switch expand(pattern, kind: kind, context: context) {
        case .success(let expanded):
            return PolicyRule(action, kind, expanded, driver: driver, tool: tool, source: source)
        case .failure(let error):
            throw fail(error.message)
        }
    }

    // MARK: Patterns

    struct PatternError: Error { var message: String }

    static func unknownCapability(_ name: String) -> String {
        let near = NearestNames.nearest(to: name, in: CapabilityRequests.knownNames, limit: 1)
        return "unknown capability \"\(name)\"" + (near.isEmpty ? "" : " (did you mean \(near[0])?)")
            + "; known: \(CapabilityRequests.knownNames.joined(separator: ", "))"
    }

    static func scopeProblem(_ glob: String, tool: Bool) -> String? {
        let what = tool ? "tool" : "driver"
        if glob.isEmpty { return "an empty \(what) name matches nothing" }
        let ok = glob.utf8.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "*") || c == UInt8(ascii: "?") || (tool && c == UInt8(ascii: "."))
        }
        if !ok {
            return tool
                ? "\"\(glob)\" is not a tool name or glob (driver.tool: lowercase letters, digits, _, ., * and ?)"
                : "\"\(glob)\" is not a driver name or glob (lowercase letters, digits, _, * and ?)"
        }
        return nil
    }

    /// A pattern as written, expanded and checked for its kind (see the type's documentation).
    static func expand(_ raw: String, kind: CapabilityKind, context: PolicyContext) -> Result<String, PatternError> {
        if raw.isEmpty { return .failure(PatternError(message: "an empty pattern matches nothing; remove it")) }
        let pattern: String
        if kind.isPath {
            switch expandPath(raw, context: context) {
            case .success(let p): pattern = p
            case .failure(let e): return .failure(e)
            }
        } else {
            pattern = raw == "true" ? "*" : raw
        }
        switch ResourceMatcher.compile(kind, pattern) {
        case .success: return .success(pattern)
        case .failure(let e): return .failure(PatternError(message: e.message))
        }
    }

    /// `~`, `${home}`, `${workspace}`, relative paths; then canonical, without resolving symlinks.
    static func expandPath(_ raw: String, context: PolicyContext, allowWorkspaceVariable: Bool = true) -> Result<String, PatternError> {
        func bad(_ message: String) -> Result<String, PatternError> { .failure(PatternError(message: message)) }
        if raw == "*" || raw == "**" || raw == "true" { return .success("/**") }
        var text = ""
        var rest = Substring(raw)
        while let open = rest.range(of: "${") {
            text += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                return bad("\"\(raw)\": unclosed ${")
            }
            let name = rest[open.upperBound..<close]
            switch name {
            case "home": text += context.home
            case "workspace" where allowWorkspaceVariable: text += context.workspace
            default:
                return bad("\"\(raw)\": unknown variable ${\(name)}; known: \(allowWorkspaceVariable ? "${home}, ${workspace}" : "${home}")")
            }
            rest = rest[rest.index(after: close)...]
        }
        text += rest
        if text == "~" || text.hasPrefix("~/") {
            text = context.home + text.dropFirst()
        } else if text.hasPrefix("~") {
            return bad("\"\(raw)\": ~user is not supported; write the path out")
        }
        if !text.hasPrefix("/") { text = context.workspace + "/" + text }
        var parts: [Substring] = []
        for part in text.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if let last = parts.last, last.contains(where: { $0 == "*" || $0 == "?" }) {
                    return bad("\"\(raw)\": .. after a wildcard has no single meaning; write the path without it")
                }
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return .success("/" + parts.joined(separator: "/"))
    }
}

/// What `~`, `${home}`, `${workspace}` and relative paths mean.
public struct PolicyContext: Sendable, Equatable {
    public var home: String
    public var workspace: String

    /// Defaults: `$HOME` and the current directory. Both are made absolute and canonical.
    public init(home: String? = nil, workspace: String? = nil) {
        self.home = FilePath.absolute(home ?? FilePath.homeDirectory, relativeTo: "/")
        self.workspace = FilePath.absolute(workspace ?? FileManager.default.currentDirectoryPath)
    }

    public static var current: PolicyContext { PolicyContext() }
}

/// One policy file, read.
public struct PolicyFile: Sendable {
    public var file: String
    /// The workspace this file's `${workspace}` and relative paths meant.
    public var workspace: String
    /// False when the file says `builtin_default: false`.
    public var includesBuiltInDefault: Bool
    public var rules: [PolicyRule]
    /// Drivers (name globs) to run `isolation: process` whatever their manifest says.
    public var isolate: [String] = []

    public var policy: Policy { Policy(rules: rules, isolate: isolate) }
}

public typealias PolicyDiagnostic = FileDiagnostic

/// The full list behind a refused policy, for programs (`--json`).
public struct PolicyErrors: Error, Sendable {
    public var diagnostics: [PolicyDiagnostic]
}

extension PolicyParser {
    struct Reader: YAMLNodeReading {
        let file: String
        /// How rules name the file ("llmos.policy.yaml").
        let source: String
        var context: PolicyContext
        var errors: [PolicyDiagnostic] = []
        var rules: [PolicyRule] = []

        init(file: String, source: String, context: PolicyContext) {
            self.file = file
            self.source = source
            self.context = context
        }

        mutating func error(_ field: String, _ node: Node?, _ message: String) {
            errors.append(PolicyDiagnostic(file: file, field: field, line: node?.mark?.line, message: message))
        }





        var aliasReported = false
        /// Values read so far: a policy has hundreds, and aliases must not multiply them.
        var nodeBudget = 100_000

        /// Yams does not always report anchors, and resolves an alias to the anchored
        /// node itself, with its mark; a node that starts before the key (or list) it
        /// belongs to can only be an alias. Aliases are refused: a rule's line must be
        /// the line that says it, and a policy must not expand like the billion laughs.
        mutating func refusesAlias(_ node: Node, after owner: Node?, previous: Node? = nil, _ field: String) -> Bool {
            nodeBudget -= 1
            var isAlias = node.anchor != nil
            if case .alias = node { isAlias = true }
            func before(_ a: Mark, _ b: Mark, orSame: Bool) -> Bool {
                a.line < b.line || (a.line == b.line && (a.column < b.column || (orSame && a.column == b.column)))
            }
            if let mark = node.mark, let ownerMark = owner?.mark, before(mark, ownerMark, orSame: false) { isAlias = true }
            // A list item that starts where (or before) the item preceding it did.
            if let mark = node.mark, let previousMark = previous?.mark, before(mark, previousMark, orSame: true) { isAlias = true }
            if nodeBudget < 0 { isAlias = true }
            guard isAlias else { return false }
            if !aliasReported { error(field, owner ?? node, "YAML anchors and aliases (&name, *name) are not allowed in policies; write the value out") }
            aliasReported = true
            return true
        }

        /// Key nodes kept for their lines; duplicate keys and non-string keys refused.
        mutating func mapping(_ node: Node, _ field: String) -> [(key: String, keyNode: Node, value: Node)]? {
            guard case .mapping(let map) = node else {
                error(field, node, "expected a mapping (key: value pairs), got \(kind(node))")
                return nil
            }
            var seen = Set<String>()
            var pairs: [(String, Node, Node)] = []
            for (keyNode, value) in map {
                guard case .scalar(let key) = keyNode else {
                    error(field, keyNode, "keys must be plain strings")
                    continue
                }
                if !seen.insert(key.string).inserted {
                    error(join(field, key.string), keyNode, "duplicate key")
                    continue
                }
                if refusesAlias(value, after: keyNode, join(field, key.string)) { continue }
                pairs.append((key.string, keyNode, value))
            }
            return pairs
        }


        // MARK: The document

        mutating func policy(_ root: Node) -> PolicyFile {
            var includesDefault = true
            var isolate: [String] = []
            guard let top = mapping(root, "") else {
                return PolicyFile(file: file, workspace: context.workspace, includesBuiltInDefault: true, rules: [])
            }
            // The workspace first: the sections' patterns use it.
            if let entry = top.first(where: { $0.key == "workspace" }) {
                workspace(entry.value)
            }
            for (key, keyNode, value) in top {
                switch key {
                case "version":
                    guard isType(value, .int), let v = value.int else {
                        error("version", value, "expected an integer (version: \(PolicyParser.supportedVersion)), got \(kind(value))")
                        continue
                    }
                    if v != PolicyParser.supportedVersion {
                        error("version", value, "this host reads policy version \(PolicyParser.supportedVersion), got \(v)")
                    }
                case "workspace":
                    break
                case "builtin_default":
                    guard isType(value, .bool), let b = value.bool else {
                        error("builtin_default", value, "expected true or false, got \(kind(value))")
                        continue
                    }
                    includesDefault = b
                case "allow", "ask", "deny", "audit":
                    section(value, action: PolicyAction(rawValue: key)!, field: key, driver: nil, tool: nil)
                case "drivers", "tools":
                    scoped(value, field: key, tools: key == "tools")
                case "isolate":
                    // A restriction, so a project's own file may say it too.
                    guard case .sequence(let items) = value else {
                        error("isolate", value, "expected a list of driver names (globs), e.g. isolate: [weather, \"untrusted-*\"], got \(kind(value))")
                        continue
                    }
                    for (i, item) in items.enumerated() {
                        if refusesAlias(item, after: value, previous: i > 0 ? items[i - 1] : nil, "isolate[\(i)]") { continue }
                        guard case .scalar(let s) = item, tagName(s) == .str, !s.string.isEmpty else {
                            error("isolate[\(i)]", item, "expected a driver name or glob, got \(kind(item))")
                            continue
                        }
                        isolate.append(s.string)
                    }
                default:
                    let near = NearestNames.nearest(to: key, in: PolicyParser.topLevelKeys, limit: 1)
                    error(key, keyNode, "unknown top-level key" + (near.isEmpty ? "" : " (did you mean \(near[0])?)")
                        + "; a policy takes \(PolicyParser.topLevelKeys.joined(separator: ", ")). Unknown keys are refused, not ignored: a misspelled section would silently drop a restriction")
                }
            }
            return PolicyFile(file: file, workspace: context.workspace, includesBuiltInDefault: includesDefault, rules: rules, isolate: isolate)
        }

        mutating func workspace(_ node: Node) {
            guard case .scalar(let s) = node, tagName(s) == .str else {
                error("workspace", node, "expected a path, got \(kind(node))")
                return
            }
            if s.string.isEmpty {
                error("workspace", node, "an empty workspace; remove the key to use the current directory")
                return
            }
            let here = PolicyContext(home: context.home, workspace: FilePath.directory(of: file))
            switch PolicyParser.expandPath(s.string, context: here, allowWorkspaceVariable: false) {
            case .success(let path):
                if path.contains(where: { $0 == "*" || $0 == "?" }) {
                    error("workspace", node, "the workspace is a directory, not a glob")
                    return
                }
                context.workspace = path
            case .failure(let e):
                error("workspace", node, e.message)
            }
        }

        /// `drivers:` or `tools:`: NAME_GLOB → {ACTION: {KIND: PATTERNS}}.
        mutating func scoped(_ node: Node, field: String, tools: Bool) {
            if isNull(node) { return }
            guard let entries = mapping(node, field) else { return }
            for (name, keyNode, value) in entries {
                let entryField = join(field, name)
                if let problem = PolicyParser.scopeProblem(name, tool: tools) {
                    error(entryField, keyNode, problem)
                    continue
                }
                if isNull(value) { continue }
                guard let actions = mapping(value, entryField) else { continue }
                for (action, actionNode, rules) in actions {
                    guard let a = PolicyAction(rawValue: action) else {
                        let near = NearestNames.nearest(to: action, in: PolicyParser.actionKeys, limit: 1)
                        error(join(entryField, action), actionNode, "unknown action" + (near.isEmpty ? "" : " (did you mean \(near[0])?)")
                            + "; expected allow, ask, deny or audit")
                        continue
                    }
                    section(rules, action: a, field: join(entryField, action), driver: tools ? nil : name, tool: tools ? name : nil)
                }
            }
        }

        /// `{KIND: PATTERN | [PATTERN] | true}` under one action.
        mutating func section(_ node: Node, action: PolicyAction, field: String, driver: String?, tool: String?) {
            if isNull(node) { return }
            guard let entries = mapping(node, field) else { return }
            for (name, keyNode, value) in entries {
                let kindField = join(field, name)
                guard let kind = CapabilityKind(rawValue: name) else {
                    error(kindField, keyNode, PolicyParser.unknownCapability(name).replacingOccurrences(of: "unknown capability \"\(name)\"", with: "unknown capability")
                        + ". Unknown capabilities are refused, not ignored: a dropped restriction would be a hole")
                    continue
                }
                switch value {
                case .scalar(let s) where tagName(s) == .bool:
                    if value.bool == true {
                        add(action, kind, "true", value, kindField, driver, tool)
                    } else {
                        error(kindField, value, "false is not a rule; remove the entry, or write true or patterns")
                    }
                case .scalar(let s) where tagName(s) == .str:
                    add(action, kind, s.string, value, kindField, driver, tool)
                case .sequence(let items):
                    for (i, item) in items.enumerated() {
                        let itemField = "\(kindField)[\(i)]"
                        if refusesAlias(item, after: value, previous: i > 0 ? items[i - 1] : nil, itemField) { continue }
                        guard case .scalar(let s) = item, tagName(s) == .str else {
                            error(itemField, item, "expected a pattern (a string), got \(self.kind(item))")
                            continue
                        }
                        add(action, kind, s.string, item, itemField, driver, tool)
                    }
                default:
                    if case .scalar(let s) = value, tagName(s) == .int || tagName(s) == .float, kind == .netConnect || kind.isPath {
                        error(kindField, value, "expected a pattern, a list of patterns or true, got \(self.kind(value)); quote it if you meant a string")
                    } else {
                        error(kindField, value, "expected a pattern, a list of patterns or true, got \(self.kind(value))")
                    }
                }
            }
        }

        mutating func add(_ action: PolicyAction, _ kind: CapabilityKind, _ raw: String, _ node: Node, _ field: String, _ driver: String?, _ tool: String?) {
            switch PolicyParser.expand(raw, kind: kind, context: context) {
            case .success(let pattern):
                let line = node.mark.map { ":\($0.line)" } ?? ""
                rules.append(PolicyRule(action, kind, pattern, driver: driver, tool: tool, source: source + line))
            case .failure(let e):
                error(field, node, e.message)
            }
        }
    }
}
