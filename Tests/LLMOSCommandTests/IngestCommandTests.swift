import Foundation
import LLMOSJSON
import Testing

/// `llmos ingest` and `llmos search` as a user runs them: the real executable, the real
/// sqlite driver, a database in a scratch workspace.
@Suite("llmos ingest and search") struct IngestCommandTests {
    static func workspace() throws -> String {
        let dir = NSTemporaryDirectory() + "ingest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/corpus/guide", withIntermediateDirectories: true)
        return URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
    }

    static func write(_ text: String, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func json(_ text: String) throws -> JSONValue { try JSON.parse(text) }

    static func python(_ script: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func ingestsATreeSearchesItAndResumes() throws {
        let llmos = LLMOS()
        let ws = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        try Self.write("# Tides\n\n## Cause\n\nThe moon's gravity pulls the oceans into two bulges.\n\n## Timing\n\nHigh tide comes about every twelve hours and twenty-five minutes.\n", ws + "/corpus/guide/tides.md")
        try Self.write("func fibonacci(_ n: Int) -> Int {\n    n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2)\n}\n", ws + "/corpus/fib.swift")
        try Self.write("<html><body><h1>Volcano</h1><p>Basalt lava flows from shield volcanoes.</p><script>var hidden = 'pumpkin'</script></body></html>", ws + "/corpus/volcano.html")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0x01]).write(to: URL(fileURLWithPath: ws + "/corpus/image.png"))
        try Self.write("secret", ws + "/corpus/.git/config")
        let common = ["--workspace", ws, "--no-audit-log"]

        let first = try llmos.run(["ingest", ws + "/corpus", "--json"] + common)
        #expect(first.status == 0, "\(first.stderr)")
        let summary = try Self.json(first.stdout)
        #expect(summary["files"]?.int64Value == 3, "\(summary)")
        #expect((summary["chunks"]?.int64Value ?? 0) >= 4, "two sections, a function, a page: \(summary)")
        #expect(summary["skipped"]?.arrayValue?.count == 1, "the PNG; .git is never walked: \(summary)")

        let found = try llmos.run(["search", "moon gravity oceans", "--json"] + common)
        #expect(found.status == 0, "\(found.stderr)")
        let best = try Self.json(found.stdout)["results"]?.arrayValue?.first
        #expect(best?["metadata"]?["source"]?.stringValue == ws + "/corpus/guide/tides.md", "\(found.stdout)")
        #expect(best?["metadata"]?["section"]?.stringValue == "Tides > Cause")
        #expect(try llmos.run(["search", "pumpkin", "--json"] + common).stdout.contains("\"results\":[]"), "script content is not text")

        let printed = try llmos.run(["search", "basalt lava"] + common)
        #expect(printed.stdout.contains("1. \(ws)/corpus/volcano.html:"), "\(printed.stdout)")

        // The same command again stores nothing; a changed file replaces its old chunks.
        let again = try Self.json(try llmos.run(["ingest", ws + "/corpus", "--json"] + common).stdout)
        #expect(again["unchanged"]?.int64Value == 3 && again["files"]?.int64Value == 0, "\(again)")
        try Self.write("# Tides\n\nTides are now explained by the sun alone.\n", ws + "/corpus/guide/tides.md")
        let changed = try Self.json(try llmos.run(["ingest", ws + "/corpus", "--json"] + common).stdout)
        #expect(changed["files"]?.int64Value == 1 && changed["unchanged"]?.int64Value == 2, "\(changed)")
        #expect(try llmos.run(["search", "gravity", "--json"] + common).stdout.contains("\"results\":[]"), "the old version's chunks are gone")
    }

    /// What `llmos ingest` stored is what `llmos ask --storage sqlite` retrieves: the same
    /// database, granted for reading by the flag itself, the sources in the result.
    @Test func askRetrievesWhatIngestStored() throws {
        let llmos = LLMOS()
        let ws = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        try Self.write("# Ferns\n\nFerns reproduce with spores, not seeds.\n", ws + "/corpus/ferns.md")
        let common = ["--workspace", ws, "--no-audit-log"]
        #expect(try llmos.run(["ingest", ws + "/corpus"] + common).status == 0)
        let script = llmos.home + "/script.jsonl"
        try #"{"text": "Ferns use spores [1]."}"#.write(toFile: script, atomically: true, encoding: .utf8)
        let asked = try llmos.run(["ask", "--cpu", "scripted", "--config", #"scripted={"script":"\#(script)"}"#, "--storage", "sqlite",
                                   "--json", "How do ferns reproduce?"] + common)
        #expect(asked.status == 0, "\(asked.stderr)")
        let result = try Self.json(asked.stdout)
        let sources = result["sources"]?.arrayValue ?? []
        #expect(sources.contains { "\($0)".contains(ws + "/corpus/ferns.md") }, "\(asked.stdout)")
    }

    @Test func badInputsSayWhatToDo() throws {
        let llmos = LLMOS()
        let ws = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        try Self.write("hello world", ws + "/corpus/a.txt")
        let common = ["--workspace", ws, "--no-audit-log"]
        let missing = try llmos.run(["ingest", ws + "/nowhere"] + common)
        #expect(missing.status != 0 && missing.stderr.contains("no such file or directory: \(ws)/nowhere"), "\(missing.stderr)")
        let name = try llmos.run(["ingest", ws + "/corpus", "--collection", "../etc"] + common)
        #expect(name.status != 0 && name.stderr.contains("--collection ../etc"), "\(name.stderr)")
        let denied = try llmos.run(["ingest", ws + "/corpus", "--deny", "storage.write=docs"] + common)
        #expect(denied.status != 0 && denied.stderr.contains("storage.write"), "\(denied.stderr)")
        let empty = try llmos.run(["search", "hello"] + common)
        #expect(empty.status != 0 && empty.stderr.contains("llmos ingest"), "an empty store says how to fill it: \(empty.stderr)")
        let embed = try llmos.run(["ingest", ws + "/corpus", "--embed", "nosuch.embed"] + common)
        #expect(embed.status != 0 && embed.stderr.contains("--embed nosuch.embed"), "\(embed.stderr)")
    }

    /// kill -9 in the middle of an ingest: every file marked complete has all its chunks, the
    /// database passes its integrity check, and the same command finishes the job.
    @Test func killedMidIngestLosesNothingCommitted() throws {
        let llmos = LLMOS()
        let ws = try Self.workspace()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        for i in 0..<1_500 {
            let words = (0..<60).map { "w\(i)x\($0 * 7919 % 1000)" }.joined(separator: " ")
            try Self.write("# File \(i)\n\n\(words)\n\n## More\n\n\(words) end\(i)\n", ws + "/corpus/f\(i).md")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LLMOS.executable)
        process.arguments = ["ingest", ws + "/corpus", "--batch", "1", "--workspace", ws, "--no-audit-log"]
        process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = llmos.home
        environment["LLMOS_DRIVER_PATH"] = nil
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let db = ws + "/.llmos/storage.sqlite3"
        let countFiles = "import sqlite3,sys\ntry:\n c=sqlite3.connect(sys.argv[1],timeout=5)\n print(c.execute(\"select count(*) from documents d join collections c on d.collection=c.id where c.name='docs.files'\").fetchone()[0])\nexcept Exception: print(0)"
        var seen = 0
        for _ in 0..<600 where process.isRunning {
            usleep(50_000)
            if FileManager.default.fileExists(atPath: db), let n = Int(try Self.python(countFiles, [db])), n >= 20 { seen = n; break }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(seen >= 20, "the ingest was stopped in the middle (\(seen) files complete)")

        let check = """
        import sqlite3, sys, json
        c = sqlite3.connect(sys.argv[1])
        ok = c.execute('pragma integrity_check').fetchone()[0]
        fts = c.execute("insert into documents_fts(documents_fts, rank) values('integrity-check', 1)") and 'ok'
        rows = c.execute("select d.id, json_extract(d.metadata, '$.chunks') from documents d join collections c on d.collection=c.id where c.name='docs.files'").fetchall()
        short = [p for p, n in rows if c.execute("select count(*) from documents d join collections c on d.collection=c.id where c.name='docs' and json_extract(d.metadata,'$.source')=?", (p,)).fetchone()[0] != n]
        print(json.dumps({"integrity": ok, "fts": fts, "complete": len(rows), "short": short}))
        """
        let report = try Self.json(try Self.python(check, [db]))
        #expect(report["integrity"] == "ok" && report["fts"] == "ok", "\(report)")
        #expect((report["complete"]?.int64Value ?? 0) >= Int64(seen), "\(report)")
        #expect(report["short"]?.arrayValue?.isEmpty == true, "every file marked complete has all its chunks: \(report)")

        let resumed = try llmos.run(["ingest", ws + "/corpus", "--json", "--workspace", ws, "--no-audit-log"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let summary = try Self.json(resumed.stdout)
        let files = summary["files"]?.int64Value ?? 0, unchanged = summary["unchanged"]?.int64Value ?? 0
        #expect(files + unchanged == 1_500 && unchanged >= Int64(seen), "\(summary)")
    }
}
