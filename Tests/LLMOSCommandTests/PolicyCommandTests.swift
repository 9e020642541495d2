import Foundation
import LLMOSJSON
import Testing

@Suite struct PolicyCommandTests {
    let llmos = LLMOS()
    var auditLog: String { llmos.home + "/audit.sqlite3" }

    @Test func deniedCallsAreRefusedAndAudited() throws {
        let denied = try llmos.run(["call", "--audit-log", auditLog, "--deny", "tool.call=calc.add", "calc.add", #"{"a":1,"b":2}"#])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("calc.add: denied by --deny tool.call=calc.add"), "\(denied.stderr)")
        #expect(try llmos.run(["call", "--audit-log", auditLog, "calc.sub", #"{"a":1,"b":2}"#]).stdout == "{\"result\":-1}\n")

        let records = try JSON.parse(try llmos.run(["audit", "tail", "--audit-log", auditLog, "--json"]).stdout).arrayValue ?? []
        #expect(records.count == 2)
        #expect(records.first?["decision"]?.stringValue == "deny")
        #expect(records.first?["resource"]?.stringValue == "calc.add")
        #expect(records.first?["outcome"]?.stringValue == "permission_denied")
        #expect(records.last?["decision"]?.stringValue == "allow")
        // Arguments are never stored: only their hash.
        let raw = try String(contentsOfFile: auditLog, encoding: .isoLatin1)
        #expect(!raw.contains(#"{"a":1,"b":2}"#))

        let found = try JSON.parse(try llmos.run(["audit", "search", "--audit-log", auditLog, "--decision", "deny", "--json"]).stdout).arrayValue ?? []
        #expect(found.count == 1)
        #expect(try llmos.run(["audit", "verify", "--audit-log", auditLog]).stdout.hasPrefix("ok: 2 rows"))
    }

    @Test func verifyFindsAnEditMadeByHand() throws {
        for i in 0..<3 { try llmos.run(["call", "--audit-log", auditLog, "calc.add", #"{"a":\#(i),"b":1}"#]) }
        // Tamper as an attacker with the file would: drop the guards, edit row 2.
        let tamper = """
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1])
        for (name,) in db.execute("select name from sqlite_master where type='trigger'").fetchall():
            db.execute(f'drop trigger "{name}"')
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if 'audit' in t or 'record' in t)
        db.execute(f"update {table} set decision='deny' where seq=2" if 'seq' in [c[1] for c in db.execute(f'pragma table_info({table})')] else f"update {table} set decision='deny' where sequence=2")
        db.commit()
        """
        let script = llmos.home + "/tamper.py"
        try tamper.write(toFile: script, atomically: true, encoding: .utf8)
        let edit = try shell("python3 \(script) \(auditLog)", in: llmos.home)
        #expect(edit.status == 0, "\(edit.output)")
        let verify = try llmos.run(["audit", "verify", "--audit-log", auditLog])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("row 2 was edited"), "\(verify.stdout)")
    }

    @Test func aPolicyFileWithAnErrorIsRefusedWhole() throws {
        let policy = llmos.home + "/bad.policy.yaml"
        try "allow:\n  fs.read: [\"/tmp/**\"]\n  fs.reed: [\"/x\"]\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let r = try llmos.run(["call", "--no-audit-log", "--policy", policy, "calc.add", #"{"a":1,"b":2}"#])
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(policy):3: allow.fs.reed"), "\(r.stderr)")
    }

    @Test func doctorReportsABadPolicy() throws {
        let policy = llmos.home + "/bad.policy.yaml"
        try "deny:\n  net.conect: [\"*\"]\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let r = try llmos.run(["doctor", "--policy", policy])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL policy: \(policy):2: deny.net.conect"), "\(r.stdout)")
    }

    @Test func askWithoutATerminalDeniesAndSaysHow() throws {
        let r = try llmos.run(["call", "--no-audit-log", "--ask", "tool.call=calc.add", "calc.add", #"{"a":1,"b":2}"#])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no terminal to ask on"), "\(r.stderr)")
    }

    @Test(arguments: [("o", Int32(0), "{\"result\":3}"), ("d", Int32(1), "denied")])
    func askIsAnsweredOnTheTerminal(answer: String, status: Int32, expected: String) throws {
        let r = try shell("HOME=\(llmos.home) python3 \(LLMOS.repoRoot)/Tests/Fixtures/pty/answer.py \(answer) \(LLMOS.executable) call --no-audit-log --ask tool.call=calc.add calc.add '{\"a\":1,\"b\":2}'", in: LLMOS.repoRoot)
        #expect(r.status == status, "\(r.output)")
        #expect(r.output.contains("asks for tool.call calc.add"), "\(r.output)")
        #expect(r.output.contains(expected), "\(r.output)")
    }

    @Test func explainNamesTheDecidingRule() throws {
        let r = try llmos.run(["policy", "explain", "--deny", "tool.call=calc.*", "calc.add", #"{"a":1,"b":2}"#, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let check = try JSON.parse(r.stdout).arrayValue?.first
        #expect(check?["decision"]?.stringValue == "deny")
        #expect(check?["rule"]?.stringValue == "--deny tool.call=calc.*")
        let show = try llmos.run(["policy", "show", "--allow", "fs.read=~/notes/**"])
        #expect(show.stdout.contains("--allow fs.read=~/notes/**"), "\(show.stdout)")
    }
}

@Suite struct SessionGrantCommandTests {
    /// "Allow for this session" lasts for the terminal's login session: later commands
    /// in it do not ask again, `llmos policy grants` lists it, `revoke` takes it back.
    @Test func sessionGrantsAreListedAndRevocable() throws {
        let llmos = LLMOS()
        let exe = LLMOS.executable
        let ask = "\(exe) call --no-audit-log --ask tool.call=calc.add calc.add '{\"a\":1,\"b\":2}'"
        let script = [
            ask,                                   // asks; answered [s]
            "echo SECOND; " + ask,                 // must not ask again
            "\(exe) policy grants",
            "\(exe) policy revoke --all",
            "\(exe) policy grants",
            "echo THIRD; " + ask,                  // asks again; answered [d]
        ].joined(separator: "; ")
        let command = "HOME=\(llmos.home) XDG_RUNTIME_DIR=\(llmos.home)/run python3 \(LLMOS.repoRoot)/Tests/Fixtures/pty/answer.py s,d sh -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\""
        let r = try shell(command, in: LLMOS.repoRoot)
        let afterSecond = r.output.components(separatedBy: "SECOND").last ?? ""
        #expect(r.output.components(separatedBy: "Allow [o]nce").count >= 2, "\(r.output)")
        #expect(afterSecond.components(separatedBy: "THIRD").first?.contains("Allow [o]nce") == false, "\(r.output)")
        #expect(r.output.contains("#1 tool.call calc.add for the operator's calls"), "\(r.output)")
        #expect(r.output.contains("revoked 1 session grant"), "\(r.output)")
        #expect(r.output.contains("No session grants in this session."), "\(r.output)")
        #expect((r.output.components(separatedBy: "THIRD").last ?? "").contains("Allow [o]nce"), "\(r.output)")
    }
}
