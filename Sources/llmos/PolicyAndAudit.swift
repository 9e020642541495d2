import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Show the operator's policy, or explain what it decides about a call.",
        discussion: """
        The policy grants; a driver's manifest requests; a request is allowed only when both \
        say yes. Rules come from ~/.config/llmos/policy.yaml, ./llmos.policy.yaml (which may \
        only restrict), --policy FILE and --allow/--deny/--ask/--audit flags. Deny beats ask \
        beats allow, whatever the specificity.
        """,
        subcommands: [Show.self, Explain.self, Grants.self, Revoke.self],
        defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every rule in force, with where it came from.")
        @OptionGroup var permissions: PermissionOptions
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let policy = try permissions.policy()
                if json {
                    Terminal.printJSON(.array(policy.rules.map { rule in
                        ["action": .string(rule.action.rawValue), "capability": .string(rule.kind.rawValue), "pattern": .string(rule.pattern),
                         "driver": rule.driver.map(JSONValue.string) ?? .null, "tool": rule.tool.map(JSONValue.string) ?? .null,
                         "source": .string(rule.source)]
                    }))
                    return
                }
                print("Workspace: \(permissions.context.workspace)")
                print("Rules (deny beats ask beats allow; anything not allowed is denied):")
                for rule in policy.rules { print("  \(rule.description)") }
            }
        }
    }

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which rule decides a call, and why, without making it.",
            discussion: "Example: llmos policy explain calc.add '{\"a\":1,\"b\":2}'")
        @OptionGroup var host: HostOptions
        @Argument(help: "The tool, as driver.tool.") var tool: String
        @Argument(help: "The input, as JSON.") var input: String = "{}"
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let (kernel, _) = try host.makeKernel()
                let explanation = try kernel.explain(tool, input: input)
                if json {
                    Terminal.printJSON(.array(explanation.checks.map { check in
                        ["subject": .string(check.subject), "capability": .string(check.request.kind.rawValue),
                         "resource": .string(check.request.resource), "decision": .string(check.decision.verdict.rawValue),
                         "flagged": .bool(check.decision.flagged), "rule": .string(check.decision.rule),
                         "rules": .array(check.rules.map { ["rule": .string($0.rule), "matched": .bool($0.matched), "why": .string($0.why)] })]
                    }))
                    return
                }
                for check in explanation.checks {
                    let what = check.request.resource.isEmpty ? check.request.kind.rawValue : "\(check.request.kind.rawValue) \(check.request.resource)"
                    print("\(check.subject): \(what)\n  → \(check.decision.verdict.rawValue)\(check.decision.flagged ? " (flagged)" : "") by \(check.decision.rule)")
                    for rule in check.rules where rule.matched { print("    matches: \(rule.rule)") }
                }
            }
        }
    }
}

extension PolicyCommand {
    /// The grants answered "allow for this session" in this terminal session.
    static func sessionBroker() -> CapabilityBroker {
        CapabilityBroker(policy: .empty, sessionStore: FileSessionGrantStore.forCurrentSession())
    }

    struct Grants: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The grants given \"for this session\" (this terminal's login session).",
            discussion: "When llmos asks on the terminal and you answer [s], the grant lasts for this login session; `llmos policy revoke` takes it back.")
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            let grants = PolicyCommand.sessionBroker().sessionGrants
            if json {
                Terminal.printJSON(.array(grants.map { ["id": .int(Int64($0.id)), "capability": .string($0.kind.rawValue), "resource": .string($0.resource), "driver": .string($0.driver)] }))
            } else if grants.isEmpty {
                print("No session grants in this session.")
            } else {
                grants.forEach { print($0.description) }
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take back a session grant (by the number `llmos policy grants` shows), or all of them.")
        @Argument(help: "The grant's number.") var id: Int?
        @Flag(help: "Revoke every session grant.") var all = false

        func validate() throws {
            guard (id != nil) != all else { throw ValidationError("give a grant number or --all (see `llmos policy grants`)") }
        }

        func run() throws {
            try reportingErrors {
                let broker = PolicyCommand.sessionBroker()
                if all {
                    let count = broker.sessionGrants.count
                    broker.revokeAll()
                    print("revoked \(count) session grant\(count == 1 ? "" : "s")")
                } else if let id, broker.revoke(id) {
                    print("revoked session grant #\(id)")
                } else {
                    let ids = broker.sessionGrants.map { "#\($0.id)" }
                    throw CommandFailure(message: "no session grant #\(id ?? 0)" + (ids.isEmpty ? " (there are none)" : " (there are \(ids.joined(separator: ", ")))"))
                }
            }
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and verify the audit log: every call and decision, chained by SHA-256.",
        discussion: "The log is ~/.local/state/llmos/audit.sqlite3 ($XDG_STATE_HOME is honoured; --audit-log FILE picks another). Arguments are never stored, only their hash.",
        subcommands: [Tail.self, Search.self, Verify.self],
        defaultSubcommand: Tail.self)

    struct LogOption: ParsableArguments {
        @Option(name: .customLong("audit-log"), help: ArgumentHelp("The audit database.", valueName: "FILE")) var path: String?
        var resolved: String { path.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? SQLiteAuditLog.defaultPath() }

        func open() throws -> SQLiteAuditReader {
            guard FileManager.default.fileExists(atPath: resolved) else {
                throw CommandFailure(message: "no audit log at \(resolved) yet: it is written by the first mediated call (llmos call ...)")
            }
            return try SQLiteAuditReader(path: resolved)
        }
    }

    static func json(_ r: AuditRecord) -> JSONValue { r.json }

    static func line(_ r: AuditRecord) -> String {
        // The operator's own calls, or a client's of `llmos serve` ("pid 4242 via mcp stdio").
        let via = r.process.range(of: " via ").map { " " + r.process[$0.lowerBound...].dropFirst() } ?? ""
        let who = r.driver.isEmpty ? "operator" + via : r.driver
        return "#\(r.sequence) \(r.time) \(who)\(r.tool.isEmpty ? "" : " (\(r.tool))") \(r.capability) \(r.resource) → \(r.decision.rawValue)\(r.flagged ? " FLAGGED" : "") [\(r.outcome)] by \(r.rule)"
    }

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The most recent records.")
        @OptionGroup var log: LogOption
        @Option(name: .shortAndLong, help: "How many.") var count = 20
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                let records = try log.open().tail(limit: count)
                if json { Terminal.printJSON(.array(records.map(AuditCommand.json))) } else { records.forEach { print(AuditCommand.line($0)) } }
            }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Records matching every filter given.")
        @OptionGroup var log: LogOption
        @Option(help: "The driver that asked (\"\" is the operator).") var driver: String?
        @Option(help: "The tool that was running.") var tool: String?
        @Option(help: "The capability (fs.read, net.connect, tool.call, ...).") var capability: String?
        @Option(help: "allow, ask or deny.") var decision: String?
        @Flag(help: "Only records flagged by an audit rule.") var flagged = false
        @Option(help: "Text the resource or the rule contains.") var text: String?
        @Option(name: .shortAndLong, help: "At most this many.") var count = 100
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                var verdict: Verdict?
                if let decision {
                    guard let v = Verdict(rawValue: decision) else { throw CommandFailure(message: "--decision must be allow, ask or deny, got \(decision)") }
                    verdict = v
                }
                let records = try log.open().search(driver: driver, tool: tool, capability: capability, decision: verdict,
                                                    flaggedOnly: flagged, text: text, limit: count)
                if json { Terminal.printJSON(.array(records.map(AuditCommand.json))) } else { records.forEach { print(AuditCommand.line($0)) } }
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain and report any edited, inserted or deleted row.",
            discussion: "Exits 0 when the chain is intact, 1 when it is not (the message names the row).")
        @OptionGroup var log: LogOption
        @Option(help: ArgumentHelp("A chain head kept elsewhere (from an earlier `verify --json`: last_sequence:head), so that a log rewritten from some row on, or cut short, is caught too.", valueName: "SEQ:HASH"))
        var anchor: String?
        @Flag(help: "Print JSON for programs.") var json = false

        func run() throws {
            try reportingErrors {
                var kept: AuditAnchor?
                if let anchor {
                    let parts = anchor.split(separator: ":")
                    guard parts.count == 2, let sequence = Int64(parts[0]), parts[1].count == 64 else {
                        throw CommandFailure(message: "--anchor \(anchor): expected SEQ:HASH, e.g. 42:<64 hex digits> (last_sequence and head from `llmos audit verify --json`)")
                    }
                    kept = AuditAnchor(sequence: sequence, hash: String(parts[1]))
                }
                let result = try log.open().verify(anchor: kept)
                if json {
                    Terminal.printJSON(["ok": .bool(result.isValid), "rows": .int(Int64(result.rowsChecked)), "last_sequence": .int(result.lastSequence),
                                        "head": .string(result.headHash), "problems": .array(result.problems.map { ["kind": .string($0.kind.rawValue), "message": .string($0.message)] })])
                } else {
                    print(result.description)
                }
                if !result.isValid { throw ExitCode(1) }
            }
        }
    }
}
