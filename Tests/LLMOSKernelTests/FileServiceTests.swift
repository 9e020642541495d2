import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

/// A temporary tree for the file-service tests:
///
///     <root>/granted/hello.txt        "hello"         (the only grant: <root>/granted/**)
///     <root>/granted/sub/file.txt     "inside"
///     <root>/outside/secret.txt       "top secret"
///     <root>/outside/file.txt         "OUTSIDE"
///
/// `authorize` allows fs.read and fs.write of `<root>/granted` and below, and nothing
/// else, so every refusal in the attack suite is a real one; it records what it was asked.
final class FileServiceSandbox: Sendable {
    let root: String
    var granted: String { root + "/granted" }
    var outside: String { root + "/outside" }
    let asked = Mutex<[AccessRequest]>([])

    init() {
        let dir = Paths.temporaryDirectory("fs")
        root = FilePath.resolved(dir) ?? dir
        let fm = FileManager.default
        try! fm.createDirectory(atPath: root + "/granted/sub", withIntermediateDirectories: true)
        try! fm.createDirectory(atPath: root + "/outside", withIntermediateDirectories: true)
        write("granted/hello.txt", "hello")
        write("granted/sub/file.txt", "inside")
        write("outside/secret.txt", "top secret")
        write("outside/file.txt", "OUTSIDE")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ relative: String, _ text: String) {
        try! text.write(toFile: root + "/" + relative, atomically: false, encoding: .utf8)
    }

    func contents(_ relative: String) -> String? {
        try? String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }

    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(root + "/" + relative, &info) == 0
    }

    func symlink(_ relative: String, to target: String) {
        #expect(Glibc.symlink(target, root + "/" + relative) == 0, "symlink \(relative): \(String(cString: strerror(errno)))")
    }

    func authorize(_ request: AccessRequest) -> Decision {
        asked.withLock { $0.append(request) }
        let inside = request.resource == granted || request.resource.hasPrefix(granted + "/")
        if (request.kind == .fsRead || request.kind == .fsWrite) && inside {
            return Decision(verdict: .allow, rule: "test: allow \(request.kind.rawValue)=\(granted)/**")
        }
        return Decision(verdict: .deny, rule: "default: not granted")
    }

    var lastResource: String? { asked.withLock { $0.last?.resource } }
}

/// Replaces the file or directory at `path` with a symlink to `target` (the original is
/// kept beside it as `<path>.orig`): what an attacker racing the service would do.
@Sendable func fsSwapInSymlink(_ path: String, to target: String) {
    let moved = rename(path, path + ".orig") == 0
    let linked = symlink(target, path) == 0
    precondition(moved && linked, "could not swap \(path) for a symlink: \(String(cString: strerror(errno)))")
}

func fsAllowEverything(_ request: AccessRequest) -> Decision { Decision(verdict: .allow, rule: "test: allow everything") }

/// Every attack made, and how many were refused as expected.
struct FileAttackTally {
    var attempted = 0
    var refused = 0
    var failures: [String] = []

    /// Runs one attack: it must throw an LLMOSError (with `code`, and a message containing
    /// `says`, when given), and then `unharmed` must hold.
    mutating func attack(_ name: String, code: LLMOSError.Code? = nil, says: String? = nil,
                         unharmed: () -> Bool = { true }, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Any) {
        attempted += 1
        var problem: String?
        do {
            let value = try body()
            problem = "succeeded: \(value)"
        } catch let error as LLMOSError {
            if let code, error.code != code {
                problem = "refused with \(error.code), not \(code): \(error.message)"
            } else if let says, !error.message.contains(says) {
                problem = "the message does not say \"\(says)\": \(error.message)"
            }
        } catch {
            problem = "threw a non-LLMOSError: \(error)"
        }
        if problem == nil && !unharmed() { problem = "refused, but harm was done" }
        if let problem {
            failures.append("\(name): \(problem)")
            Issue.record("attack \"\(name)\" \(problem)", sourceLocation: sourceLocation)
        } else {
            refused += 1
        }
    }
}

@Suite struct FileServiceAttackTests {
    @Test(.timeLimit(.minutes(1))) func everyAttackIsRefused() throws {
        let box = FileServiceSandbox()
        let g = box.granted, o = box.outside
        let service = FileService()
        var tally = FileAttackTally()
        let auth = box.authorize
        func read(_ path: String, in workspace: String? = nil, _ svc: FileService = FileService()) throws(LLMOSError) -> FileService.ReadResult {
            try svc.read(path, workspace: workspace ?? g, authorize: auth, driver: "attacker", tool: "attacker.read")
        }
        func write(_ path: String, _ text: String, _ mode: FileService.WriteMode, parents: Bool = false, _ svc: FileService = FileService()) throws(LLMOSError) -> FileService.WriteResult {
            try svc.write(path, workspace: g, content: Array(text.utf8), mode: mode, makeParents: parents, authorize: auth, driver: "attacker", tool: "attacker.write")
        }
        let secretIntact = { box.contents("outside/secret.txt") == "top secret" }

        // --- Traversal and paths outside the grant ---
        tally.attack("../ out of the workspace", code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied by default: not granted") { try read("../outside/secret.txt") }
        tally.attack("granted/../outside", code: .permissionDenied) { try read("granted/../outside/secret.txt", in: box.root) }
        tally.attack("deep ../ to /etc/passwd", code: .permissionDenied, says: "fs.read of /etc/passwd denied") { try read("../../../../../../../../etc/passwd") }
        tally.attack("absolute /etc/shadow", code: .permissionDenied, says: "fs.read of /etc/shadow denied by default: not granted") { try read("/etc/shadow") }
        tally.attack("absolute path outside", code: .permissionDenied) { try read(o + "/secret.txt") }
        tally.attack("duplicate slashes and dots", code: .permissionDenied) { try read(g + "//.//..///outside/./secret.txt") }
        tally.attack("~ to a home outside", code: .permissionDenied, says: o) {
            try FileService(homeDirectory: o).read("~/secret.txt", workspace: g, authorize: auth, driver: "attacker")
        }
        tally.attack("prefix trick granted-evil", code: .permissionDenied) {
            try FileManager.default.createDirectory(atPath: box.root + "/granted-evil", withIntermediateDirectories: true)
            box.write("granted-evil/x.txt", "x")
            return try read(box.root + "/granted-evil/x.txt")
        }

        // --- Symlinks out of the granted directory ---
        box.symlink("granted/link-out", to: o + "/secret.txt")
        tally.attack("symlink to an outside file", code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied") { try read("link-out") }
        #expect(box.lastResource == o + "/secret.txt", "the check must see the symlink's target")
        box.symlink("granted/dir-out", to: o)
        tally.attack("symlink to an outside directory", code: .permissionDenied) { try read("dir-out/secret.txt") }
        box.symlink("granted/rel-a", to: "rel-b")
        box.symlink("granted/rel-b", to: "../outside")
        tally.attack("chain of relative symlinks", code: .permissionDenied) { try read("rel-a/secret.txt") }
        box.symlink("granted/dotdot-link", to: "sub/../../outside/secret.txt")
        tally.attack("symlink with .. in its target", code: .permissionDenied) { try read("dotdot-link") }
        box.symlink("granted/loop1", to: "loop2")
        box.symlink("granted/loop2", to: "loop1")
        tally.attack("symlink loop", code: .invalidArgument, says: "symbolic links") { try read("loop1") }
        tally.attack("symlink, then .. from its target", code: .permissionDenied) { try read("dir-out/../outside/secret.txt") }
        tally.attack("list through a symlink out", code: .permissionDenied) {
            try service.list("dir-out", workspace: g, authorize: auth, driver: "attacker")
        }
        tally.attack("stat through a symlink out", code: .permissionDenied) {
            try service.stat("link-out", workspace: g, authorize: auth, driver: "attacker")
        }
        tally.attack("write through a dangling symlink out", code: .permissionDenied, unharmed: { !box.exists("outside/new.txt") }) {
            box.symlink("granted/dangling", to: o + "/new.txt")
            return try write("dangling", "pwned", .create)
        }
        tally.attack("write through a symlinked directory out", code: .permissionDenied, unharmed: { box.contents("outside/file.txt") == "OUTSIDE" }) {
            try write("dir-out/file.txt", "pwned", .overwrite)
        }

        // --- A "/" inside one grapheme cluster: components are split on bytes ---
        // "\u{600}/" is one Character (U+0600 is a Prepend), so a Character split would read
        // "stuff\u{600}/.." as one component, and lstat would follow the symlink inside it.
        box.symlink("granted/stuff\u{600}", to: o)
        for walk in [false, true] {
            var svc = FileService()
            svc.forceComponentWalk = walk
            tally.attack("U+0600 before a slash hides a component" + (walk ? " (component walk)" : ""), code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied") {
                try read("stuff\u{600}/../outside/secret.txt", svc)
            }
            tally.attack("U+0600 before a slash (write)" + (walk ? " (component walk)" : ""), code: .permissionDenied, unharmed: { box.contents("outside/file.txt") == "OUTSIDE" }) {
                try write("stuff\u{600}/../outside/file.txt", "pwned", .overwrite, svc)
            }
        }
        tally.attack("combining mark after a slash", code: .permissionDenied, says: "fs.read of /\u{301}etc/passwd denied") { try read("/\u{301}etc/passwd") }

        // --- Symlinks swapped in after the check ---
        for walk in [false, true] {
            let how = walk ? " (component walk)" : " (openat2)"
            var svc = FileService()
            svc.forceComponentWalk = walk
            let says = "changed between the check and the open (a symlink was swapped in)"

            // The two steps called by hand: check, swap, open.
            tally.attack("directory swapped for a symlink between check and open" + how, code: .permissionDenied, says: says) {
                let checked = try svc.check("sub/file.txt", workspace: g, kind: .fsRead, authorize: auth, driver: "attacker", tool: nil)
                #expect(checked.path == g + "/sub/file.txt")
                fsSwapInSymlink(g + "/sub", to: o)
                return try svc.read(checked: checked, offset: 0, length: nil)
            }
            try restore(g + "/sub")

            var leaf = svc
            leaf.betweenCheckAndOpen = { checked in fsSwapInSymlink(checked.path, to: o + "/secret.txt") }
            tally.attack("file swapped for a symlink (read)" + how, code: .permissionDenied, says: says) { try read("hello.txt", leaf) }
            try restore(g + "/hello.txt")
            tally.attack("file swapped for a symlink (overwrite)" + how, code: .permissionDenied, says: says, unharmed: secretIntact) { try write("hello.txt", "pwned", .overwrite, leaf) }
            try restore(g + "/hello.txt")
            tally.attack("file swapped for a symlink (append)" + how, code: .permissionDenied, says: says, unharmed: secretIntact) { try write("hello.txt", "pwned", .append, leaf) }
            try restore(g + "/hello.txt")
            tally.attack("file swapped for a symlink (stat, O_PATH)" + how, code: .permissionDenied, says: says) {
                try leaf.stat("hello.txt", workspace: g, authorize: auth, driver: "attacker")
            }
            try restore(g + "/hello.txt")
            tally.attack("new file's name taken by a symlink (create)" + how, code: .permissionDenied, says: says, unharmed: { !box.exists("outside/planted.txt") }) {
                var planted = svc
                planted.betweenCheckAndOpen = { checked in
                    precondition(symlink(o + "/planted.txt", checked.path) == 0)
                }
                return try write("planted.txt", "pwned", .create, planted)
            }
            unlink(g + "/planted.txt")

            var parent = svc
            parent.betweenCheckAndOpen = { _ in fsSwapInSymlink(g + "/sub", to: o) }
            tally.attack("parent swapped for a symlink (create)" + how, code: .permissionDenied, says: says, unharmed: { !box.exists("outside/new2.txt") }) {
                try write("sub/new2.txt", "pwned", .create, parent)
            }
            try restore(g + "/sub")
            tally.attack("parent swapped for a symlink (list)" + how, code: .permissionDenied, says: says) {
                try parent.list("sub", workspace: g, authorize: auth, driver: "attacker")
            }
            try restore(g + "/sub")
            tally.attack("parent swapped for a magic link /proc/self/root/…" + how, code: .permissionDenied, says: says) {
                var magic = svc
                magic.betweenCheckAndOpen = { _ in fsSwapInSymlink(g + "/sub", to: "/proc/self/root" + o) }
                return try read("sub/file.txt", magic)
            }
            try restore(g + "/sub")
            tally.attack("make_parents: a missing directory planted as a symlink" + how, code: .permissionDenied, says: says, unharmed: { !box.exists("outside/er") }) {
                var plant = svc
                plant.betweenCheckAndOpen = { _ in precondition(symlink(o, g + "/deep") == 0) }
                return try write("deep/er/x.txt", "pwned", .create, parents: true, plant)
            }
            unlink(g + "/deep")
            tally.attack("the open itself refuses magic links" + how, code: .permissionDenied, says: says) {
                // Bypass the canonicalizer: hand the open step a path through a magic link.
                let checked = FileService.CheckedPath(kind: .fsRead, raw: "x", canonical: .init(path: "/proc/\(getpid())/root" + g + "/hello.txt", existingAncestor: "/", missing: [], directoryExpected: false),
                                                      decision: Decision(verdict: .allow, rule: "forged"))
                return try svc.read(checked: checked, offset: 0, length: nil)
            }
        }

        // --- Hard links ---
        #expect(link(o + "/secret.txt", g + "/hardlink.txt") == 0)
        tally.attack("hard link to an outside file (read, refused by default)", code: .permissionDenied, says: "2 hard links") { try read("hardlink.txt") }
        tally.attack("hard link to an outside file (overwrite)", code: .permissionDenied, says: "hard links", unharmed: secretIntact) { try write("hardlink.txt", "pwned", .overwrite) }
        tally.attack("hard link to an outside file (append)", code: .permissionDenied, says: "hard links", unharmed: secretIntact) { try write("hardlink.txt", "pwned", .append) }
        tally.attack("hard link to an outside file (overwrite, even with hard-linked reads allowed)", code: .permissionDenied, unharmed: secretIntact) {
            try write("hardlink.txt", "pwned", .overwrite, FileService(allowHardLinkedReads: true))
        }

        // --- /proc magic links ---
        tally.attack("/proc/self/root/<outside>", code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied") { try read("/proc/self/root" + o + "/secret.txt") }
        tally.attack("/proc/thread-self/root/<outside>", code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied") { try read("/proc/thread-self/root" + o + "/secret.txt") }
        tally.attack("/proc/<pid>/root/<outside>", code: .permissionDenied) { try read("/proc/\(getpid())/root" + o + "/secret.txt") }
        let outsideFD = open(o + "/secret.txt", O_RDONLY)
        defer { close(outsideFD) }
        tally.attack("/proc/self/fd/N of an outside file", code: .permissionDenied, says: "fs.read of \(o)/secret.txt denied") { try read("/proc/self/fd/\(outsideFD)") }
        tally.attack("/proc/self/fd/N written", code: .permissionDenied, unharmed: secretIntact) { try write("/proc/self/fd/\(outsideFD)", "pwned", .overwrite) }
        tally.attack("/proc/self/cwd/..", code: .permissionDenied) { try service.list("/proc/self/cwd/..", workspace: g, authorize: auth, driver: "attacker") }
        tally.attack("/proc/self/cwd", code: .permissionDenied) { try service.stat("/proc/self/cwd", workspace: g, authorize: auth, driver: "attacker") }
        tally.attack("/proc/self/exe", code: .permissionDenied) { try read("/proc/self/exe") }
        var pipeFDs: [Int32] = [0, 0]
        #expect(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        tally.attack("/proc/self/fd/N of a pipe", code: .invalidArgument, says: "magic link") {
            try FileService().read("/proc/self/fd/\(pipeFDs[0])", workspace: g, authorize: fsAllowEverything, driver: "attacker")
        }
        tally.attack("/proc/self/ns/net (a namespace)", code: .invalidArgument, says: "magic link") {
            try FileService().read("/proc/self/ns/net", workspace: g, authorize: fsAllowEverything, driver: "attacker")
        }
        tally.attack("symlink in the grant to /proc/self/root/<outside>", code: .permissionDenied) {
            box.symlink("granted/proc-out", to: "/proc/self/root" + o)
            return try read("proc-out/secret.txt")
        }

        // --- Devices and FIFOs: refused without hanging or filling memory ---
        #expect(mkfifo(g + "/fifo", 0o644) == 0)
        tally.attack("read a FIFO in the grant (no writer: must not hang)", code: .invalidArgument, says: "a FIFO, not a regular file") { try read("fifo") }
        tally.attack("overwrite a FIFO in the grant (no reader)", code: .invalidArgument, says: "FIFO") { try write("fifo", "x", .overwrite) }
        tally.attack("create over a FIFO", code: .invalidArgument, says: "already exists") { try write("fifo", "x", .create) }
        tally.attack("read /dev/zero (not granted)", code: .permissionDenied) { try read("/dev/zero") }
        tally.attack("read /dev/zero (granted: still not a regular file)", code: .invalidArgument, says: "a character device") {
            try FileService().read("/dev/zero", workspace: g, authorize: fsAllowEverything, driver: "attacker")
        }
        tally.attack("append to /dev/null (granted)", code: .invalidArgument, says: "a character device") {
            try FileService().write("/dev/null", workspace: g, content: [1], mode: .append, authorize: fsAllowEverything, driver: "attacker")
        }
        tally.attack("read a directory", code: .invalidArgument, says: "fs.list") { try read("sub") }
        tally.attack("list a file", code: .invalidArgument, says: "not a directory") { try service.list("hello.txt", workspace: g, authorize: auth, driver: "attacker") }

        // --- Malformed paths ---
        tally.attack("NUL byte in the path", code: .invalidArgument, says: "NUL") { try read("hello.txt\u{0}/../../outside/secret.txt") }
        tally.attack("NUL byte in a write path", code: .invalidArgument, says: "NUL") { try write("x\u{0}y", "x", .create) }
        tally.attack("empty path", code: .invalidArgument, says: "empty") { try read("") }
        tally.attack("path of 5000 bytes", code: .invalidArgument, says: "PATH_MAX") { try read(String(repeating: "a/", count: 2500)) }
        tally.attack("path of exactly PATH_MAX bytes", code: .invalidArgument, says: "PATH_MAX") { try read("/" + String(repeating: "b", count: 4095)) }
        tally.attack("relative path over PATH_MAX once joined", code: .invalidArgument, says: "PATH_MAX") { try read(String(repeating: "c/", count: 2040) + "x") }
        tally.attack("component over NAME_MAX", code: .invalidArgument, says: "NAME_MAX") { try read(String(repeating: "n", count: 300)) }
        tally.attack("component over NAME_MAX (write)", code: .invalidArgument, says: "NAME_MAX") { try write("sub/" + String(repeating: "n", count: 300), "x", .create) }
        tally.attack("through a file as if a directory", code: .invalidArgument, says: "not a directory") { try read("hello.txt/x") }
        tally.attack("trailing slash on a file", code: .invalidArgument, says: "not a directory") { try read("hello.txt/") }
        tally.attack(".. below a missing directory (write)", code: .invalidArgument, says: "..", unharmed: { !box.exists("outside/x.txt") && !box.exists("granted/newdir") }) {
            try write("newdir/../../outside/x.txt", "pwned", .create, parents: true)
        }
        tally.attack("write to a directory name", code: .invalidArgument, says: "directory") { try write("sub/", "x", .create) }

        // --- Sizes ---
        let big = g + "/big.bin"
        let bigFD = open(big, O_CREAT | O_WRONLY, 0o644)
        #expect(ftruncate(bigFD, off_t(FileService.defaultMaxReadBytes + 1)) == 0)
        close(bigFD)
        tally.attack("read a file over the 16 MiB cap", code: .outputTooLarge, says: "offset and length") { try read("big.bin") }
        tally.attack("read over a small cap", code: .outputTooLarge) { try read("sub/file.txt", FileService(maxReadBytes: 3)) }
        tally.attack("length over the cap", code: .invalidArgument, says: "limit") {
            try service.read("big.bin", workspace: g, offset: 0, length: Int64(FileService.defaultMaxReadBytes) + 1, authorize: auth, driver: "attacker")
        }
        tally.attack("negative offset", code: .invalidArgument) { try service.read("hello.txt", workspace: g, offset: -1, authorize: auth, driver: "attacker") }
        tally.attack("negative length", code: .invalidArgument) { try service.read("hello.txt", workspace: g, length: -5, authorize: auth, driver: "attacker") }
        tally.attack("write over the content cap", code: .invalidArgument, says: "limit", unharmed: { !box.exists("granted/huge.txt") }) {
            try write("huge.txt", String(repeating: "x", count: 11), .create, FileService(maxWriteBytes: 10))
        }

        // --- Write modes ---
        tally.attack("create over an existing file", code: .invalidArgument, says: "already exists", unharmed: { box.contents("granted/hello.txt") == "hello" }) {
            try write("hello.txt", "pwned", .create)
        }
        tally.attack("overwrite a missing file", code: .notFound, says: "use mode create", unharmed: { !box.exists("granted/missing.txt") }) { try write("missing.txt", "x", .overwrite) }
        tally.attack("append to a missing file", code: .notFound, unharmed: { !box.exists("granted/missing.txt") }) { try write("missing.txt", "x", .append) }
        tally.attack("create in a missing directory without make_parents", code: .notFound, says: "make_parents", unharmed: { !box.exists("granted/nodir") }) {
            try write("nodir/deeper/x.txt", "x", .create)
        }
        tally.attack("write outside with ../", code: .permissionDenied, says: "fs.write of \(o)/new3.txt denied", unharmed: { !box.exists("outside/new3.txt") }) {
            try write("../outside/new3.txt", "pwned", .create)
        }
        tally.attack("write outside, make_parents", code: .permissionDenied, unharmed: { !box.exists("outside/made") }) {
            try write(o + "/made/x.txt", "pwned", .create, parents: true)
        }

        // --- Decisions ---
        tally.attack("a decision still 'ask' is a refusal", code: .permissionDenied, says: "needs confirmation") {
            try service.read("hello.txt", workspace: g, authorize: { _ in Decision(verdict: .ask, rule: "policy:3: ask fs.read") }, driver: "attacker")
        }
        tally.attack("fs.write is checked as fs.write", code: .permissionDenied, says: "fs.write of", unharmed: { box.contents("granted/hello.txt") == "hello" }) {
            try service.write("hello.txt", workspace: g, content: [0x41], mode: .overwrite,
                              authorize: { $0.kind == .fsRead ? Decision(verdict: .allow, rule: "read only") : Decision(verdict: .deny, rule: "read only") }, driver: "attacker")
        }

        // --- Requests (JSON) ---
        tally.attack("unknown request field", code: .invalidArgument, says: "unknown field \"follow_symlinks\"") {
            try FileService.fsRead(["path": "hello.txt", "follow_symlinks": true], workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }
        tally.attack("path that is not a string", code: .invalidArgument, says: "must be a string") {
            try FileService.fsStat(["path": ["/etc/passwd"]], workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }
        tally.attack("request that is not an object", code: .invalidArgument) {
            try FileService.fsList("/etc", workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }
        tally.attack("bad base64", code: .invalidArgument, says: "base64", unharmed: { !box.exists("granted/b64.bin") }) {
            try FileService.fsWrite(["path": "b64.bin", "content": "***", "encoding": "base64", "mode": "create"], workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }
        tally.attack("unknown write mode", code: .invalidArgument, says: "\"create\"") {
            try FileService.fsWrite(["path": "hello.txt", "content": "x", "mode": "truncate"], workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }
        tally.attack("fractional offset", code: .invalidArgument, says: "integer") {
            try FileService.fsRead(["path": "hello.txt", "offset": 1.5], workspace: g, authorize: auth, driver: "attacker", tool: nil)
        }

        // --- Environment names ---
        let env = ["LLMOS_MODEL": "smol", "AWS_SECRET_ACCESS_KEY": "hunter2", "PATH": "/bin"]
        let envAuth: (AccessRequest) -> Decision = { request in
            request.kind == .env && fnmatch("LLMOS_*", request.resource, 0) == 0
                ? Decision(verdict: .allow, rule: "--allow env=LLMOS_*") : Decision(verdict: .deny, rule: "default: not granted")
        }
        func envGet(_ name: String) throws(LLMOSError) -> JSONValue {
            try EnvService.get(name: name, authorize: envAuth, driver: "attacker", environment: { env[$0] })
        }
        tally.attack("env name outside the glob", code: .permissionDenied, says: "env of AWS_SECRET_ACCESS_KEY denied by default: not granted") { try envGet("AWS_SECRET_ACCESS_KEY") }
        tally.attack("env PATH", code: .permissionDenied) { try envGet("PATH") }
        tally.attack("env name that is itself a glob", code: .invalidArgument, says: "not a variable name") { try envGet("LLMOS_*") }
        tally.attack("env name with =", code: .invalidArgument) { try envGet("LLMOS_X=1") }
        tally.attack("env name with NUL", code: .invalidArgument) { try envGet("LLMOS_X\u{0}AWS") }
        tally.attack("env name starting with a digit", code: .invalidArgument) { try envGet("1LLMOS") }
        tally.attack("empty env name", code: .invalidArgument) { try envGet("") }
        tally.attack("env name with a dash or dot", code: .invalidArgument) { try envGet("LLMOS-X.Y") }
        tally.attack("env name of 300 bytes", code: .invalidArgument) { try envGet("LLMOS_" + String(repeating: "A", count: 300)) }
        tally.attack("env name with non-ASCII letters", code: .invalidArgument) { try envGet("LLMOS_É") }
        tally.attack("env.get unknown field", code: .invalidArgument, says: "unknown field") {
            try EnvService.envGet(["name": "LLMOS_MODEL", "default": "x"], authorize: envAuth, driver: "attacker", tool: nil, environment: { env[$0] })
        }

        print("file attacks: \(tally.attempted) attempted, \(tally.refused) refused")
        #expect(tally.attempted == tally.refused, "not refused: \(tally.failures)")
        #expect(tally.attempted >= 60)
    }

    /// Puts back what `fsSwapInSymlink` replaced.
    func restore(_ path: String) throws {
        unlink(path)
        #expect(rename(path + ".orig", path) == 0)
    }
}

@Suite struct FileServiceTests {
    let box = FileServiceSandbox()
    var g: String { box.granted }
    func auth(_ request: AccessRequest) -> Decision { box.authorize(request) }

    @Test func readsTextAndBinary() throws {
        let service = FileService()
        let text = try service.read("hello.txt", workspace: g, authorize: auth, driver: "d")
        #expect(text == .init(path: g + "/hello.txt", size: 5, content: "hello", encoding: .utf8, truncated: false))
        #expect(box.asked.withLock { $0.last } == AccessRequest(kind: .fsRead, resource: g + "/hello.txt", driver: "d"))

        let bytes: [UInt8] = [0xff, 0xfe, 0x00, 0x41]
        _ = FileManager.default.createFile(atPath: g + "/bin.dat", contents: Data(bytes))
        let binary = try service.read("bin.dat", workspace: g, authorize: auth, driver: "d")
        #expect(binary.encoding == .base64)
        #expect(Data(base64Encoded: binary.content) == Data(bytes))
    }

    @Test func readsARange() throws {
        box.write("granted/digits.txt", "0123456789")
        let service = FileService()
        let middle = try service.read("digits.txt", workspace: g, offset: 3, length: 4, authorize: auth, driver: "d")
        #expect(middle.content == "3456")
        #expect(middle.size == 10)
        #expect(middle.truncated)
        let tail = try service.read("digits.txt", workspace: g, offset: 8, length: 100, authorize: auth, driver: "d")
        #expect(tail.content == "89" && !tail.truncated)
        let past = try service.read("digits.txt", workspace: g, offset: 50, authorize: auth, driver: "d")
        #expect(past.content == "" && !past.truncated)
        // A file over the cap is readable by ranges.
        let big = g + "/big.bin"
        let fd = open(big, O_CREAT | O_WRONLY, 0o644)
        #expect(ftruncate(fd, 20 << 20) == 0)
        close(fd)
        let chunk = try service.read("big.bin", workspace: g, offset: 18 << 20, length: 1 << 20, authorize: auth, driver: "d")
        #expect(chunk.content.utf8.count == 1 << 20 && chunk.truncated && chunk.size == 20 << 20)
    }

    @Test func symlinksInsideTheGrantAndProcRootResolveToTheirTarget() throws {
        box.symlink("granted/alias.txt", to: "sub/file.txt")
        let service = FileService()
        let viaLink = try service.read("alias.txt", workspace: g, authorize: auth, driver: "d")
        #expect(viaLink.path == g + "/sub/file.txt" && viaLink.content == "inside")
        let viaProc = try service.read("/proc/self/root" + g + "/hello.txt", workspace: "/", authorize: auth, driver: "d")
        #expect(viaProc.path == g + "/hello.txt" && viaProc.content == "hello")
        let fd = open(g + "/hello.txt", O_RDONLY)
        defer { close(fd) }
        let viaFD = try service.read("/proc/self/fd/\(fd)", workspace: "/", authorize: auth, driver: "d")
        #expect(viaFD.path == g + "/hello.txt")
    }

    @Test func hardLinkedReadsWhenTheOperatorAllowsThem() throws {
        #expect(link(g + "/hello.txt", g + "/twin.txt") == 0)
        let allowed = try FileService(allowHardLinkedReads: true).read("twin.txt", workspace: g, authorize: auth, driver: "d")
        #expect(allowed.content == "hello")
        let refused = expectError { try FileService().read("twin.txt", workspace: g, authorize: auth, driver: "d") }
        #expect(refused.code == .permissionDenied && refused.message.contains("allowHardLinkedReads"))
    }

    @Test func writeModes() throws {
        let service = FileService()
        func write(_ path: String, _ text: String, _ mode: FileService.WriteMode, parents: Bool = false) throws -> FileService.WriteResult {
            try service.write(path, workspace: g, content: Array(text.utf8), mode: mode, makeParents: parents, authorize: auth, driver: "d")
        }
        let created = try write("notes.txt", "one\n", .create)
        #expect(created == .init(path: g + "/notes.txt", bytesWritten: 4))
        #expect(expectError { try write("notes.txt", "again", .create) }.code == .invalidArgument)
        #expect(try write("notes.txt", "two\n", .append).bytesWritten == 4)
        #expect(box.contents("granted/notes.txt") == "one\ntwo\n")
        #expect(try write("notes.txt", "new", .overwrite).bytesWritten == 3)
        #expect(box.contents("granted/notes.txt") == "new")
        #expect(expectError { try write("a/b/c.txt", "x", .create) }.code == .notFound)
        #expect(!box.exists("granted/a"))
        let deep = try write("a/b/c.txt", "deep", .create, parents: true)
        #expect(deep.path == g + "/a/b/c.txt" && box.contents("granted/a/b/c.txt") == "deep")
        var info = stat()
        #expect(stat(g + "/notes.txt", &info) == 0 && info.st_mode & 0o077 & ~0o044 == 0)
    }

    @Test func listAndStat() throws {
        box.symlink("granted/link", to: "hello.txt")
        #expect(mkfifo(g + "/pipe", 0o600) == 0)
        let service = FileService()
        let listing = try service.list(".", workspace: g, authorize: auth, driver: "d")
        #expect(listing.path == g && !listing.truncated)
        #expect(listing.entries.map(\.name) == ["hello.txt", "link", "pipe", "sub"])
        #expect(listing.entries.map(\.type) == [.file, .symlink, .other, .directory])
        #expect(listing.entries[0].size == 5)

        #expect(chmod(g + "/hello.txt", 0o640) == 0)
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, g + "/hello.txt", &times, 0) == 0)
        let info = try FileService.fsStat(["path": "hello.txt"], workspace: g, authorize: auth, driver: "d", tool: nil)
        #expect(info == ["path": .string(g + "/hello.txt"), "type": "file", "size": 5, "mode": "0640", "modified": "2023-11-14T22:13:20Z"])
        let dir = try service.stat("sub", workspace: g, authorize: auth, driver: "d")
        #expect(dir.type == .directory)
        // stat of a FIFO answers (O_PATH never blocks) and says "other".
        #expect(try service.stat("pipe", workspace: g, authorize: auth, driver: "d").type == .other)
        #expect(expectError { try service.stat("nope", workspace: g, authorize: auth, driver: "d") }.code == .notFound)
    }

    @Test func systemCallShapes() throws {
        let read = try FileService.fsRead(["path": "hello.txt", "offset": 1, "length": 2], workspace: g, authorize: auth, driver: "d", tool: "d.t")
        #expect(read == ["path": .string(g + "/hello.txt"), "size": 5, "content": "el", "encoding": "utf-8", "truncated": true])
        let written = try FileService.fsWrite(["path": "new/x.bin", "content": "AAEC", "encoding": "base64", "mode": "create", "make_parents": true],
                                              workspace: g, authorize: auth, driver: "d", tool: nil)
        #expect(written == ["path": .string(g + "/new/x.bin"), "bytes_written": 3])
        #expect(FileManager.default.contents(atPath: g + "/new/x.bin") == Data([0, 1, 2]))
        let listed = try FileService.fsList(["path": "new"], workspace: g, authorize: auth, driver: "d", tool: nil)
        #expect(listed == ["path": .string(g + "/new"), "entries": [["name": "x.bin", "type": "file", "size": 3]], "truncated": false])
        let missingMode = expectError { try FileService.fsWrite(["path": "y", "content": ""], workspace: g, authorize: auth, driver: "d", tool: nil) }
        #expect(missingMode.code == .invalidArgument && missingMode.message.contains("mode"))
    }

    @Test func theComponentWalkWorksToo() throws {
        var service = FileService()
        service.forceComponentWalk = true
        #expect(try service.read("sub/file.txt", workspace: g, authorize: auth, driver: "d").content == "inside")
        #expect(try service.write("sub/walk/w.txt", workspace: g, content: [0x41], mode: .create, makeParents: true, authorize: auth, driver: "d").bytesWritten == 1)
        #expect(try service.write("sub/walk/w.txt", workspace: g, content: [0x42], mode: .append, authorize: auth, driver: "d").bytesWritten == 1)
        #expect(box.contents("granted/sub/walk/w.txt") == "AB")
        #expect(try service.list("sub", workspace: g, authorize: auth, driver: "d").entries.map(\.name) == ["file.txt", "walk"])
        #expect(try service.stat("sub/walk", workspace: g, authorize: auth, driver: "d").type == .directory)
    }

    @Test func openat2IsThere() {
        // On this kernel the first path is the one taken; the walk is the fallback.
        #expect(SecureOpen.openat2Works)
    }

    @Test func canonicalPaths() throws {
        let c = PathCanonicalizer(workspace: g, homeDirectory: box.root)
        #expect(try c.canonicalize("hello.txt").path == g + "/hello.txt")
        #expect(try c.canonicalize(".").path == g)
        #expect(try c.canonicalize("sub/../sub//./file.txt").path == g + "/sub/file.txt")
        #expect(try c.canonicalize("~").path == box.root)
        #expect(try c.canonicalize("~/granted/hello.txt").path == g + "/hello.txt")
        #expect(try c.canonicalize("~user").path == g + "/~user")  // only ~ and ~/ expand
        #expect(try c.canonicalize("/../../..").path == "/")
        #expect(try c.canonicalize("sub/..").path == g)
        let missing = try c.canonicalize("sub/new/dir/f.txt")
        #expect(missing.path == g + "/sub/new/dir/f.txt" && missing.existingAncestor == g + "/sub" && missing.missing == ["new", "dir", "f.txt"] && !missing.exists)
        #expect(try c.canonicalize("sub/./new/./f.txt").missing == ["new", "f.txt"])
        // The same as realpath(3) wherever the path exists.
        box.symlink("granted/r1", to: "sub")
        box.symlink("granted/r2", to: g + "/r1/../sub/file.txt")
        for path in ["r1", "r1/file.txt", "r2", "r1/../hello.txt", "/proc/self/root" + g, "/proc/self/cwd", "/proc/self/exe", "/tmp", "/dev/zero", "/proc/self/root/proc/self/root" + g + "/r2"] {
            #expect(try c.canonicalize(path).path == FilePath.resolved(FilePath.join(g, path)), "\(path)")
        }
        // Split on bytes, and bytes kept: no Character boundaries, no Unicode normalization.
        #expect(PathCanonicalizer.components("a\u{600}/b//c/\u{301}") == ["a\u{600}", "b", "c", "\u{301}"])
        let combining = try c.canonicalize("/\u{301}x")
        #expect(combining.path.utf8.elementsEqual("/\u{301}x".utf8) && combining.missing == ["\u{301}x"])
        box.write("granted/caf\u{E9}.txt", "nfc")
        let nfd = try c.canonicalize("cafe\u{301}.txt")
        #expect(nfd.path.utf8.elementsEqual((g + "/cafe\u{301}.txt").utf8) && !nfd.exists)
        #expect(expectError { try FileService().read("cafe\u{301}.txt", workspace: g, authorize: auth, driver: "d") }.code == .notFound)
        #expect(try FileService().read("caf\u{E9}.txt", workspace: g, authorize: auth, driver: "d").content == "nfc")
        // A relative workspace is taken from the current directory.
        let relative = PathCanonicalizer(workspace: "some/where")
        #expect(relative.workspace == FileManager.default.currentDirectoryPath + "/some/where")
    }

    @Test func environmentByGlob() throws {
        let env = ["LLMOS_MODEL": "smol", "HOME": "/root"]
        let globs = ["LLMOS_*", "HOME"]
        let asked = Mutex<[AccessRequest]>([])
        let authorize: (AccessRequest) -> Decision = { request in
            asked.withLock { $0.append(request) }
            return globs.contains { fnmatch($0, request.resource, 0) == 0 }
                ? Decision(verdict: .allow, rule: "allow env") : Decision(verdict: .deny, rule: "default: not granted")
        }
        #expect(try EnvService.get(name: "LLMOS_MODEL", authorize: authorize, driver: "d", tool: "d.t", environment: { env[$0] }) == ["name": "LLMOS_MODEL", "value": "smol"])
        #expect(try EnvService.get(name: "LLMOS_UNSET", authorize: authorize, environment: { env[$0] }) == ["name": "LLMOS_UNSET", "value": nil])
        #expect(try EnvService.envGet(["name": "HOME"], authorize: authorize, driver: "d", tool: nil, environment: { env[$0] }) == ["name": "HOME", "value": "/root"])
        #expect(asked.withLock { $0.first } == AccessRequest(kind: .env, resource: "LLMOS_MODEL", driver: "d", tool: "d.t"))
        #expect(EnvService.isValidName("_x9") && !EnvService.isValidName("9x") && !EnvService.isValidName("a b"))
        // The real environment is read by default.
        #expect(try EnvService.get(name: "PATH", authorize: fsAllowEverything)["value"]?.stringValue == ProcessInfo.processInfo.environment["PATH"])
    }
}
