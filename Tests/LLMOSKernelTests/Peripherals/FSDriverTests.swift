import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The fs driver (Plugins/fs, manifests/fs.yaml) loaded from the built library and called
// through the kernel exactly as a model calls it: JSON in, the gate, the driver, its
// system calls (fs.read/write/list/stat/move/delete/mkdir) checked on canonical paths.

/// A workspace with an "outside" beside it:
///
///     <root>/ws/hello.txt          "hello"
///     <root>/ws/docs/a.md          "# A\nalpha line\nneedle here\n"
///     <root>/ws/docs/sub/b.md      "beta\nNEEDLE again\n"
///     <root>/ws/docs/c.txt         "gamma"
///     <root>/ws/.hidden/h.md       "needle hidden"
///     <root>/outside/secret.txt    "top secret"
fileprivate final class FSWorkspace {
    let root: String
    var ws: String { root + "/ws" }
    var outside: String { root + "/outside" }

    init() {
        let dir = Paths.temporaryDirectory("fsdriver")
        root = FilePath.resolved(dir) ?? dir
        for folder in ["ws/docs/sub", "ws/.hidden", "outside"] {
            try! FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        put("ws/hello.txt", "hello")
        put("ws/docs/a.md", "# A\nalpha line\nneedle here\n")
        put("ws/docs/sub/b.md", "beta\nNEEDLE again\n")
        put("ws/docs/c.txt", "gamma")
        put("ws/.hidden/h.md", "needle hidden")
        put("outside/secret.txt", "top secret")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func put(_ relative: String, _ text: String) {
        try! text.write(toFile: root + "/" + relative, atomically: false, encoding: .utf8)
    }

    func contents(_ relative: String) -> String? { try? String(contentsOfFile: root + "/" + relative, encoding: .utf8) }

    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(root + "/" + relative, &info) == 0
    }

    /// A kernel with the fs driver, this workspace, and the policy the flags give
    /// (on top of the built-in tool.call=*).
    func kernel(allow: [String] = [], ask: [String] = [], deny: [String] = [], asker: any Asker = DenyingAsker(),
                audit: MemoryAuditLog = MemoryAuditLog(), files: FileService = FileService()) throws -> Kernel {
        let context = PolicyContext(home: root + "/home", workspace: ws)
        var rules: [PolicyRule] = []
        for (action, flags) in [(PolicyAction.allow, allow), (.ask, ask), (.deny, deny)] {
            for flag in flags { rules.append(try PolicyParser.rule(fromFlag: flag, action: action, context: context)) }
        }
        let workspace = ws
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), asker: asker, context: context)
            c.workspace = workspace
            c.audit = audit
            c.files = files
        }
        try kernel.load(manifestAt: Paths.manifests + "/fs.yaml")
        return kernel
    }

    /// The workspace granted for reading and writing, as an operator would.
    static let grants = ["fs.read=${workspace}/**", "fs.write=${workspace}/**"]
}

/// Calls `tool` with `input` (JSON text) and parses the output.
fileprivate func call(_ kernel: Kernel, _ tool: String, _ input: String) throws -> [String: Any] {
    let result = try kernel.call(tool, input: input)
    return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)")
}

fileprivate func paths(_ output: [String: Any]) -> [String] {
    ((output["matches"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
}

@Suite struct FSDriverTests {
    @Test func readWriteAppendListStatThroughTheKernel() throws {
        let box = FSWorkspace()
        let kernel = try box.kernel(allow: FSWorkspace.grants)

        let read = try call(kernel, "fs.read", #"{"path": "hello.txt"}"#)
        #expect(read["content"] as? String == "hello")
        #expect(read["path"] as? String == box.ws + "/hello.txt")
        #expect(read["truncated"] as? Bool == false)

        let part = try call(kernel, "fs.read", #"{"path": "docs/a.md", "offset": 4, "length": 5}"#)
        #expect(part["content"] as? String == "alpha")
        #expect(part["truncated"] as? Bool == true)

        let created = try call(kernel, "fs.write", #"{"path": "new/deep/n.txt", "content": "one", "make_parents": true}"#)
        #expect(created["created"] as? Bool == true)
        #expect(box.contents("ws/new/deep/n.txt") == "one")
        let replaced = try call(kernel, "fs.write", #"{"path": "new/deep/n.txt", "content": "two"}"#)
        #expect(replaced["created"] as? Bool == false)
        #expect(box.contents("ws/new/deep/n.txt") == "two")
        let refused = expectError { try kernel.call("fs.write", input: #"{"path": "hello.txt", "content": "x", "if_exists": "fail"}"#) }
        #expect(refused.code == .invalidArgument)
        #expect(refused.message.contains("already exists"), "\(refused.message)")
        #expect(box.contents("ws/hello.txt") == "hello")

        _ = try call(kernel, "fs.append", #"{"path": "hello.txt", "content": " world"}"#)
        #expect(box.contents("ws/hello.txt") == "hello world")
        let fresh = try call(kernel, "fs.append", #"{"path": "log.txt", "content": "line\n"}"#)
        #expect(fresh["created"] as? Bool == true)
        let noCreate = expectError { try kernel.call("fs.append", input: #"{"path": "nope.txt", "content": "x", "create": false}"#) }
        #expect(noCreate.code == .notFound)

        let binary = try call(kernel, "fs.write", #"{"path": "bin.dat", "content": "AAEC/w==", "encoding": "base64"}"#)
        #expect(binary["bytes_written"] as? Int == 4)
        #expect(try call(kernel, "fs.read", #"{"path": "bin.dat"}"#)["encoding"] as? String == "base64")

        let list = try call(kernel, "fs.list", #"{"path": "docs"}"#)
        let names = ((list["entries"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["a.md", "c.txt", "sub"])
        let root = try call(kernel, "fs.list", "{}")
        #expect(root["path"] as? String == box.ws)

        let stat = try call(kernel, "fs.stat", #"{"path": "docs"}"#)
        #expect(stat["type"] as? String == "directory")

        let made = try call(kernel, "fs.mkdir", #"{"path": "a/b/c", "parents": true}"#)
        #expect(made["created"] as? Bool == true)
        #expect(try call(kernel, "fs.mkdir", #"{"path": "a/b/c"}"#)["created"] as? Bool == false)
        let noParents = expectError { try kernel.call("fs.mkdir", input: #"{"path": "x/y"}"#) }
        #expect(noParents.code == .notFound)
        #expect(noParents.message.contains("pass parents: true"), "\(noParents.message)")
    }

    @Test func searchByGlobAndContentWithinItsLimits() throws {
        let box = FSWorkspace()
        // A symlink to the outside: listed by name, never followed.
        #expect(symlink(box.outside, box.ws + "/docs/out") == 0)
        box.put("ws/docs/blob.bin", "needle\u{0}\u{FF}")
        try Data([0x6E, 0x65, 0x65, 0x64, 0x6C, 0x65, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: box.ws + "/docs/raw.bin"))
        let kernel = try box.kernel(allow: FSWorkspace.grants)

        let markdown = try call(kernel, "fs.search", #"{"glob": "*.md"}"#)
        #expect(paths(markdown) == ["docs/a.md", "docs/sub/b.md"])   // .hidden skipped
        let hidden = try call(kernel, "fs.search", #"{"glob": "*.md", "hidden": true}"#)
        #expect(Set(paths(hidden)) == ["docs/a.md", "docs/sub/b.md", ".hidden/h.md"])
        let deep = try call(kernel, "fs.search", #"{"path": "docs", "glob": "sub/**/*.md"}"#)
        #expect(paths(deep) == ["docs/sub/b.md"])

        let content = try call(kernel, "fs.search", #"{"content": "needle", "ignore_case": true}"#)
        let hits = (content["matches"] as? [[String: Any]]) ?? []
        #expect(hits.map { "\($0["path"]!):\($0["line"]!)" } == ["docs/a.md:3", "docs/sub/b.md:2"])
        #expect(hits.first?["text"] as? String == "needle here")
        #expect((content["skipped"] as? Int ?? 0) >= 1, "the binary file is skipped: \(content)")
        let regex = try call(kernel, "fs.search", #"{"content": "^(alpha|beta)", "regex": true, "glob": "*.md"}"#)
        #expect(paths(regex) == ["docs/a.md", "docs/sub/b.md"])

        // Limits: entries visited, bytes read, results.
        let few = try call(kernel, "fs.search", #"{"glob": "*", "max_files": 2}"#)
        #expect(few["stopped_by"] as? String == "max_files")
        #expect(few["files_visited"] as? Int == 2)
        let small = try call(kernel, "fs.search", #"{"content": "needle", "max_bytes": 10}"#)
        #expect(small["stopped_by"] as? String == "max_bytes")
        #expect((small["bytes_read"] as? Int ?? 99) <= 10)
        let one = try call(kernel, "fs.search", #"{"glob": "*", "max_results": 1}"#)
        #expect(paths(one).count == 1 && one["stopped_by"] as? String == "max_results")

        let nothing = expectError { try kernel.call("fs.search", input: #"{"path": "docs"}"#) }
        #expect(nothing.code == .invalidArgument)
        #expect(nothing.message.contains("needs glob"), "\(nothing.message)")
        let badRegex = expectError { try kernel.call("fs.search", input: #"{"content": "(", "regex": true}"#) }
        #expect(badRegex.code == .invalidArgument)
        let absolute = expectError { try kernel.call("fs.search", input: #"{"glob": "/etc/*"}"#) }
        #expect(absolute.message.contains("is absolute"), "\(absolute.message)")
    }

    @Test func pathsOutsideTheGrantedTreeAreRefused() throws {
        let box = FSWorkspace()
        let audit = MemoryAuditLog()
        let kernel = try box.kernel(allow: FSWorkspace.grants, audit: audit)
        let secret = box.outside + "/secret.txt"

        let dotdot = expectError { try kernel.call("fs.read", input: #"{"path": "../outside/secret.txt"}"#) }
        #expect(dotdot.code == .permissionDenied)
        #expect(dotdot.message.contains("fs.read of \(secret) denied by manifest: fs does not request fs.read \(secret)"), "\(dotdot.message)")
        #expect(audit.records.contains { $0.resource == secret && $0.decision == .deny }, "the refusal is audited on the canonical path")

        let absolute = expectError { try kernel.call("fs.read", input: #"{"path": "/etc/hostname"}"#) }
        #expect(absolute.code == .permissionDenied)

        let write = expectError { try kernel.call("fs.write", input: #"{"path": "../outside/secret.txt", "content": "pwned"}"#) }
        #expect(write.code == .permissionDenied)
        #expect(box.contents("outside/secret.txt") == "top secret")

        // The operator granting everything does not widen what the manifest asks for.
        let wide = try box.kernel(allow: ["fs.read=/**", "fs.write=/**"])
        let stillDenied = expectError { try wide.call("fs.read", input: "{\"path\": \"\(secret)\"}") }
        #expect(stillDenied.code == .permissionDenied)
        #expect(stillDenied.message.contains("denied by manifest"), "\(stillDenied.message)")

        // And a manifest request alone grants nothing: the operator has not allowed it.
        let ungranted = try box.kernel()
        let notGranted = expectError { try ungranted.call("fs.read", input: #"{"path": "hello.txt"}"#) }
        #expect(notGranted.code == .permissionDenied)
        #expect(notGranted.message.contains("not granted"), "\(notGranted.message)")

        // A policy deny inside the workspace wins.
        let denying = try box.kernel(allow: FSWorkspace.grants, deny: ["fs.read=${workspace}/docs/**"])
        let denied = expectError { try denying.call("fs.read", input: #"{"path": "docs/a.md"}"#) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("fs.read of \(box.ws)/docs/a.md denied by --deny fs.read="), "\(denied.message)")
        // A search skips (and counts) what it may not read, below the search path.
        let partial = try call(denying, "fs.search", #"{"glob": "*.txt"}"#)
        #expect(paths(partial) == ["hello.txt"])
        #expect(partial["denied"] as? Int == 1)
        let rootDenied = expectError { try denying.call("fs.search", input: #"{"path": "docs", "glob": "*"}"#) }
        #expect(rootDenied.code == .permissionDenied)
    }

    @Test func symlinksEscapingTheWorkspaceAreRefusedAndNeverFollowedByDelete() throws {
        let box = FSWorkspace()
        #expect(symlink(box.outside + "/secret.txt", box.ws + "/link") == 0)
        #expect(symlink(box.outside, box.ws + "/dirlink") == 0)
        let kernel = try box.kernel(allow: FSWorkspace.grants + ["tool.call=fs.delete", "tool.call=fs.move"])

        for input in [#"{"path": "link"}"#, #"{"path": "dirlink/secret.txt"}"#] {
            let error = expectError { try kernel.call("fs.read", input: input) }
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("fs.read of \(box.outside)/secret.txt denied"), "\(error.message)")
        }
        let write = expectError { try kernel.call("fs.write", input: #"{"path": "dirlink/secret.txt", "content": "pwned"}"#) }
        #expect(write.code == .permissionDenied)
        let through = expectError { try kernel.call("fs.delete", input: #"{"path": "dirlink/secret.txt"}"#) }
        #expect(through.code == .permissionDenied)
        let moveOut = expectError { try kernel.call("fs.move", input: #"{"path": "hello.txt", "to": "dirlink/hello.txt"}"#) }
        #expect(moveOut.code == .permissionDenied)
        #expect(box.exists("ws/hello.txt") && !box.exists("outside/hello.txt"))

        // Deleting the link removes the link, checked where it is, never its target.
        let deleted = try call(kernel, "fs.delete", #"{"path": "link"}"#)
        #expect(deleted["type"] as? String == "symlink")
        #expect(!box.exists("ws/link"))
        #expect(box.contents("outside/secret.txt") == "top secret")
        _ = try call(kernel, "fs.delete", #"{"path": "dirlink", "recursive": true}"#)
        #expect(!box.exists("ws/dirlink") && box.contents("outside/secret.txt") == "top secret")
    }

    @Test func deleteAsksAndIsRefusedWithoutAnAnswer() throws {
        let box = FSWorkspace()
        // No terminal: the destructive tool's ask is denied, with how to grant it.
        let kernel = try box.kernel(allow: FSWorkspace.grants)
        let refused = expectError { try kernel.call("fs.delete", input: #"{"path": "hello.txt"}"#) }
        #expect(refused.code == .permissionDenied)
        #expect(refused.message.contains("fs.delete is marked destructive"), "\(refused.message)")
        #expect(refused.message.contains("--allow tool.call=fs.delete"), "\(refused.message)")
        #expect(box.exists("ws/hello.txt"))
        let move = expectError { try kernel.call("fs.move", input: #"{"path": "hello.txt", "to": "bye.txt"}"#) }
        #expect(move.code == .permissionDenied)

        // A person answers: once yes, then no.
        let asker = ScriptedAsker([.allowOnce, .deny])
        let asking = try box.kernel(allow: FSWorkspace.grants, asker: asker)
        let result = try call(asking, "fs.delete", #"{"path": "hello.txt"}"#)
        #expect(result["deleted"] as? Int == 1)
        #expect(!box.exists("ws/hello.txt"))
        #expect(asker.asked.count == 1)
        #expect(asker.asked.first?.request.resource == "fs.delete")
        let second = expectError { try asking.call("fs.delete", input: #"{"path": "docs/c.txt"}"#) }
        #expect(second.code == .permissionDenied)
        #expect(box.exists("ws/docs/c.txt"))

        // Allowed by name: no question; the path is still checked (fs.write).
        let named = ScriptedAsker([])
        let allowed = try box.kernel(allow: FSWorkspace.grants + ["tool.call=fs.delete"], deny: ["fs.write=${workspace}/docs/**"], asker: named)
        let protected = expectError { try allowed.call("fs.delete", input: #"{"path": "docs/c.txt"}"#) }
        #expect(protected.code == .permissionDenied)
        #expect(protected.message.contains("fs.write of \(box.ws)/docs/c.txt denied by --deny"), "\(protected.message)")
        #expect(named.asked.isEmpty)
    }

    @Test func recursiveDeleteChecksEveryEntryWithinLimits() throws {
        let box = FSWorkspace()
        let kernel = try box.kernel(allow: FSWorkspace.grants + ["tool.call=fs.delete"], deny: ["fs.write=${workspace}/docs/sub/**"])

        let notEmpty = expectError { try kernel.call("fs.delete", input: #"{"path": "docs"}"#) }
        #expect(notEmpty.code == .invalidArgument)
        #expect(notEmpty.message.contains("pass recursive: true"), "\(notEmpty.message)")

        // One denied entry deep inside: nothing at all is deleted.
        let denied = expectError { try kernel.call("fs.delete", input: #"{"path": "docs", "recursive": true}"#) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("\(box.ws)/docs/sub"), "\(denied.message)")
        #expect(box.exists("ws/docs/a.md") && box.exists("ws/docs/sub/b.md"))

        let free = try box.kernel(allow: FSWorkspace.grants + ["tool.call=fs.delete"])
        let result = try call(free, "fs.delete", #"{"path": "docs", "recursive": true}"#)
        #expect(result["deleted"] as? Int == 5)   // docs, a.md, c.txt, sub, sub/b.md
        #expect(!box.exists("ws/docs"))

        let root = expectError { try free.call("fs.delete", input: #"{"path": "."}"#) }
        #expect(root.code == .invalidArgument)
        let missing = expectError { try free.call("fs.delete", input: #"{"path": "nothing-here"}"#) }
        #expect(missing.code == .notFound)
    }

    @Test func treesOverTheLimitAreRefusedBeforeAnythingChanges() throws {
        let box = FSWorkspace()
        let service = FileService()
        let allow: (AccessRequest) -> Decision = { _ in Decision(verdict: .allow, rule: "test") }
        let error = expectError {
            try service.delete("docs", workspace: box.ws, recursive: true, maxTreeEntries: 3, authorize: allow, driver: "fs")
        }
        #expect(error.code == .resourceExhausted)
        #expect(error.message.contains("more than 3 entries"), "\(error.message)")
        #expect(box.exists("ws/docs/a.md") && box.exists("ws/docs/sub/b.md"))
        let moved = expectError {
            try service.move("docs", to: "docs2", workspace: box.ws, maxTreeEntries: 3, authorize: allow, driver: "fs")
        }
        #expect(moved.code == .resourceExhausted)
        #expect(box.exists("ws/docs/a.md"))
    }

    @Test func aDirectorySwappedForASymlinkAfterTheCheckIsNotFollowed() throws {
        let box = FSWorkspace()
        box.put("outside/victim.txt", "keep")
        for walk in [false, true] {
            var service = FileService()
            service.forceComponentWalk = walk
            let docs = box.ws + "/docs", outside = box.outside
            // After the check of docs/c.txt, docs becomes a symlink to the outside.
            service.betweenCheckAndOpen = { checked in
                guard checked.path.hasPrefix(docs + "/") else { return }
                _ = rename(docs, docs + ".orig")
                _ = symlink(outside, docs)
            }
            let insideOnly: (AccessRequest) -> Decision = { request in
                request.resource.hasPrefix(box.ws + "/")
                    ? Decision(verdict: .allow, rule: "test: allow the workspace") : Decision(verdict: .deny, rule: "test: outside")
            }
            box.put("outside/c.txt", "outside c")
            let error = expectError { try service.delete("docs/c.txt", workspace: box.ws, authorize: insideOnly, driver: "fs") }
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("changed between the check and the operation"), "\(error.message)")
            #expect(box.contents("outside/c.txt") == "outside c", "nothing outside was deleted")
            let moved = expectError { try service.move("docs/a.md", to: "stolen.md", workspace: box.ws, authorize: insideOnly, driver: "fs") }
            #expect(moved.code == .permissionDenied)
            #expect(!box.exists("ws/stolen.md"))
            // Put the tree back for the next round.
            _ = unlink(docs)
            _ = rename(docs + ".orig", docs)
        }
    }

    @Test func moveNeedsTheSourceReadableAndWritableAndTheDestinationWritable() throws {
        let box = FSWorkspace()
        let grants = FSWorkspace.grants + ["tool.call=fs.move"]
        let kernel = try box.kernel(allow: grants)

        let moved = try call(kernel, "fs.move", #"{"path": "hello.txt", "to": "docs/hello.txt"}"#)
        #expect(moved["to"] as? String == box.ws + "/docs/hello.txt")
        #expect(!box.exists("ws/hello.txt") && box.contents("ws/docs/hello.txt") == "hello")

        let exists = expectError { try kernel.call("fs.move", input: #"{"path": "docs/hello.txt", "to": "docs/c.txt"}"#) }
        #expect(exists.code == .invalidArgument)
        #expect(exists.message.contains("pass overwrite: true"), "\(exists.message)")
        #expect(box.contents("ws/docs/c.txt") == "gamma")
        _ = try call(kernel, "fs.move", #"{"path": "docs/hello.txt", "to": "docs/c.txt", "overwrite": true}"#)
        #expect(box.contents("ws/docs/c.txt") == "hello")

        let out = expectError { try kernel.call("fs.move", input: #"{"path": "docs/c.txt", "to": "../outside/c.txt"}"#) }
        #expect(out.code == .permissionDenied)
        #expect(out.message.contains("fs.write of \(box.outside)/c.txt denied by manifest"), "\(out.message)")
        let noDirectory = expectError { try kernel.call("fs.move", input: #"{"path": "docs/c.txt", "to": "nowhere/c.txt"}"#) }
        #expect(noDirectory.code == .notFound)

        let directory = try call(kernel, "fs.move", #"{"path": "docs", "to": "papers"}"#)
        #expect(directory["type"] as? String == "directory")
        #expect(box.contents("ws/papers/sub/b.md") == "beta\nNEEDLE again\n")

        // A file the policy keeps unreadable cannot be moved somewhere readable, and a
        // directory holding one cannot be moved whole.
        let guarded = try box.kernel(allow: grants, deny: ["fs.read=${workspace}/papers/sub/**"])
        let file = expectError { try guarded.call("fs.move", input: #"{"path": "papers/sub/b.md", "to": "b.md"}"#) }
        #expect(file.code == .permissionDenied)
        #expect(file.message.contains("fs.read of \(box.ws)/papers/sub/b.md denied"), "\(file.message)")
        let tree = expectError { try guarded.call("fs.move", input: #"{"path": "papers", "to": "open"}"#) }
        #expect(tree.code == .permissionDenied)
        #expect(box.exists("ws/papers/sub/b.md") && !box.exists("ws/open"))
    }

    @Test func badArgumentsAreRefusedBeforeTheDriverRuns() throws {
        let box = FSWorkspace()
        let kernel = try box.kernel(allow: FSWorkspace.grants)
        let missing = expectError { try kernel.call("fs.read", input: "{}") }
        #expect(missing.code == .invalidArgument)
        #expect(missing.message.contains("missing required field \"path\""), "\(missing.message)")
        let unknown = expectError { try kernel.call("fs.read", input: #"{"path": "a", "lenght": 3}"#) }
        #expect(unknown.message.contains("unexpected field \"lenght\""), "\(unknown.message)")
        let tooLong = expectError { try kernel.call("fs.read", input: #"{"path": "hello.txt", "length": 99999999}"#) }
        #expect(tooLong.code == .invalidArgument)
        let nul = expectError { try kernel.call("fs.read", input: #"{"path": "a\u0000b"}"#) }
        #expect(nul.code == .invalidArgument)
        #expect(nul.message.contains("NUL"), "\(nul.message)")
        let directory = expectError { try kernel.call("fs.read", input: #"{"path": "docs"}"#) }
        #expect(directory.message.contains("it is a directory"), "\(directory.message)")
    }
}
