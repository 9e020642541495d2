import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

@Suite struct HotPlugTests {
    /// Waits (bounded) for a condition that the watcher thread makes true.
    func eventually(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        Issue.record("timed out waiting for \(what)")
        return false
    }

    @Test func driversAppearAndDisappearWithoutARestart() throws {
        let watched = Paths.temporaryDirectory("watched")
        let kernel = makeKernel()
        let events = Mutex<[String]>([])
        let hotPlug = HotPlug(kernel: kernel, directories: [watched], settleMilliseconds: 50) { event in
            events.withLock { $0.append(event.description) }
        }
        try hotPlug.start()
        defer { hotPlug.stop() }

        // Dropped in: prepared elsewhere, then moved, as an installer does.
        let staging = Paths.temporaryDirectory("staging")
        _ = try Fixtures.install("echo", into: staging)
        try FileManager.default.moveItem(atPath: staging, toPath: watched + "/echo")
        guard eventually("echo to load", { kernel.driver(named: "echo") != nil }) else { return }
        #expect(try kernel.call("echo.echo", input: #"{"n":42}"#).output == #"{"n":42}"#)

        // Removed: unloaded, and calls now get the unknown-tool answer.
        try FileManager.default.removeItem(atPath: watched + "/echo")
        guard eventually("echo to unload", { kernel.driver(named: "echo") == nil }) else { return }
        #expect(expectError { try kernel.call("echo.echo", input: "{}") }.code == .notFound)
        #expect(events.withLock { $0 }.contains { $0.hasPrefix("loaded echo") })
        #expect(events.withLock { $0 }.contains { $0.hasPrefix("unloaded echo") })
    }

    @Test func aBrokenManifestIsReportedThenFixed() throws {
        let watched = Paths.temporaryDirectory("watched-broken")
        let kernel = makeKernel()
        let failures = Mutex(0)
        let hotPlug = HotPlug(kernel: kernel, directories: [watched], settleMilliseconds: 50) { event in
            if case .failed = event { failures.withLock { $0 += 1 } }
        }
        try hotPlug.start()
        defer { hotPlug.stop() }
        let manifest = try Fixtures.install("echo", into: watched) { $0.replacingOccurrences(of: "class: tool", with: "class: nonsense") }
        guard eventually("the failure to be reported", { failures.withLock { $0 } >= 1 }) else { return }
        #expect(kernel.driver(named: "echo") == nil)
        let fixed = try String(contentsOfFile: manifest, encoding: .utf8).replacingOccurrences(of: "class: nonsense", with: "class: tool")
        try fixed.write(toFile: manifest, atomically: true, encoding: .utf8)
        _ = eventually("the fixed driver to load", { kernel.driver(named: "echo") != nil })
    }

    @Test func callsInFlightFinishBeforeUnload() throws {
        let kernel = makeKernel()
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        let outcome = Mutex<String?>(nil)
        let started = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            started.signal()
            let result = Result { try kernel.call("echo.sleep", input: #"{"ms": 300}"#) }
            outcome.withLock { $0 = (try? result.get().output) ?? "error: \(result)" }
            done.signal()
        }
        started.wait()
        usleep(50_000)   // the call is inside the driver now
        let before = Date()
        try kernel.unload("echo")
        let waited = Date().timeIntervalSince(before)
        done.wait()
        // The call completed normally although its driver was unloaded meanwhile;
        // unload returned only after it (so the library was never unmapped under it).
        #expect(outcome.withLock { $0 }?.contains("error") == false, "\(String(describing: outcome.withLock { $0 }))")
        #expect(waited > 0.1)
        #expect(kernel.driver(named: "echo") == nil)
    }

    @Test func rescanPicksUpLibraryChangesAsReloads() throws {
        let watched = Paths.temporaryDirectory("watched-reload")
        let kernel = makeKernel()
        let manifest = try Fixtures.install("echo", into: watched)
        try kernel.load(manifestAt: manifest)
        let events = Mutex<[String]>([])
        let hotPlug = HotPlug(kernel: kernel, directories: [watched]) { e in events.withLock { $0.append(e.description) } }
        hotPlug.rescan()
        #expect(events.withLock { $0 }.isEmpty)   // adopted, nothing changed
        usleep(20_000)
        try (try String(contentsOfFile: manifest, encoding: .utf8) + "\n# touched\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        hotPlug.rescan()
        #expect(events.withLock { $0 }.first?.hasPrefix("reloaded echo") == true, "\(events.withLock { $0 })")
        #expect(try kernel.call("echo.echo", input: #"{"n":1}"#).output == #"{"n":1}"#)
    }
}

@Suite struct ManifestFuzzTests {
    /// Random mutations of valid manifests: the parser and loader must never crash,
    /// and every outcome is either a load or an error that names the file.
    @Test func mutatedManifestsNeverCrash() throws {
        let dir = Paths.temporaryDirectory("fuzz")
        _ = try Fixtures.install("echo", into: dir)
        let seeds = [
            try String(contentsOfFile: Paths.manifests + "/calc.yaml", encoding: .utf8),
            try String(contentsOfFile: dir + "/echo.yaml", encoding: .utf8),
        ]
        var rng = SplitMix64(seed: 0x11E05)
        let tokens = ["", "-", ":", "{", "}", "[", "]", "null", "true", "9999999999999999999999", "-1", "\"", "'", "&a", "*a", "!!binary", "\t", "\n", "~", "fs.read", "x-", "\u{0}", "é", "type: object", "    "]
        var loaded = 0, refused = 0
        for i in 0..<400 {
            var lines = seeds[i % seeds.count].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let index = Int(rng.next() % UInt64(lines.count))
                switch rng.next() % 6 {
                case 0: lines.remove(at: index)
                case 1: lines.insert(tokens[Int(rng.next() % UInt64(tokens.count))], at: index)
                case 2:
                    var chars = Array(lines[index])
                    if !chars.isEmpty { chars[Int(rng.next() % UInt64(chars.count))] = Character(tokens[Int(rng.next() % UInt64(tokens.count))].first.map(String.init) ?? "?") }
                    lines[index] = String(chars)
                case 3: lines[index] += " " + tokens[Int(rng.next() % UInt64(tokens.count))]
                case 4: lines.swapAt(index, Int(rng.next() % UInt64(lines.count)))
                default: lines[index] = String(lines[index].dropLast(Int(rng.next() % 5)))
                }
                if lines.isEmpty { lines = [""] }
            }
            let file = dir + "/echo.yaml"
            try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let kernel = makeKernel()
            do {
                try kernel.load(manifestAt: file)
                loaded += 1
            } catch {
                refused += 1
                #expect(!error.message.isEmpty)
                #expect(error.message.contains(dir) || error.message.contains("calc") || error.message.contains("echo"), "\(error.message)")
            }
        }
        #expect(loaded + refused == 400)
        #expect(refused > 100)
    }
}

/// A small deterministic generator, so a failing fuzz case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct SwiftLibraryReloadTests {
    /// A Swift driver's image is never unmapped (the Swift runtime points into it), so a
    /// rebuilt library at the same path must come from a private copy, not the old image.
    @Test func aRebuiltSwiftDriverIsLoadedAnew() throws {
        let dir = Paths.temporaryDirectory("swift-reload")
        let library = dir + "/libllmos_text.so"
        try FileManager.default.copyItem(atPath: Paths.buildDirectory + "/libllmos_text.so", toPath: library)
        try FileManager.default.copyItem(atPath: Paths.manifests + "/text.yaml", toPath: dir + "/text.yaml")
        let kernel = makeKernel()
        try kernel.load(manifestAt: dir + "/text.yaml")
        #expect(try kernel.call("text.reverse", input: #"{"text": "abc"}"#).output.contains("cba"))
        try kernel.unload("text")

        usleep(20_000)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: library))
        try FileManager.default.removeItem(atPath: library)
        try bytes.write(to: URL(fileURLWithPath: library))   // "rebuilt": a new file at the same path
        try kernel.load(manifestAt: dir + "/text.yaml")
        #expect(try kernel.call("text.reverse", input: #"{"text": "xyz"}"#).output.contains("zyx"))
        // procfs files report size 0: read them as a stream, not by their size.
        let maps = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd() ?? Data(), as: UTF8.self)
        #expect(maps.contains("llmos-reload-") && maps.contains("libllmos_text.so"))
        try kernel.unload("text")
    }
}

@Suite struct HotPlugSafetyTests {
    @Test func aHalfEditedManifestDoesNotTakeAWorkingDriverOffline() throws {
        let watched = Paths.temporaryDirectory("watched-edit")
        let kernel = makeKernel()
        let manifest = try Fixtures.install("echo", into: watched)
        try kernel.load(manifestAt: manifest)
        let events = Mutex<[String]>([])
        let hotPlug = HotPlug(kernel: kernel, directories: [watched]) { e in events.withLock { $0.append(e.description) } }
        usleep(20_000)
        try "manifest_version: 1\nname: echo\nclass: to".write(toFile: manifest, atomically: true, encoding: .utf8)
        hotPlug.rescan()
        #expect(events.withLock { $0 }.first?.hasPrefix("could not load") == true, "\(events.withLock { $0 })")
        #expect(try kernel.call("echo.echo", input: #"{"still": "here"}"#).output == #"{"still": "here"}"#)
    }

    @Test func versionMismatchIsAWarningOnTheDriver() throws {
        let kernel = makeKernel()
        let info = try kernel.load(manifestAt: try Fixtures.install("echo") { $0.replacingOccurrences(of: "version: 1.0.0", with: "version: 9.9.9") })
        #expect(info.warnings.contains { $0.field == "version" && $0.message.contains("the manifest says 9.9.9") }, "\(info.warnings)")
    }
}

@Suite struct HotPlugOrderTests {
    @Test func aLibraryCopiedAfterItsManifestIsPickedUp() throws {
        let watched = Paths.temporaryDirectory("watched-order")
        let kernel = makeKernel()
        let hotPlug = HotPlug(kernel: kernel, directories: [watched])
        try (try String(contentsOfFile: Paths.fixtures + "/echo.yaml", encoding: .utf8)).write(toFile: watched + "/echo.yaml", atomically: true, encoding: .utf8)
        hotPlug.rescan()
        #expect(kernel.driver(named: "echo") == nil)   // no library yet: a failure, reported once
        try FileManager.default.copyItem(atPath: try Fixtures.library("echo"), toPath: watched + "/libecho.so")
        hotPlug.rescan()
        #expect(kernel.driver(named: "echo") != nil)
    }
}
