import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

/// Where things are: the repository, and the build directory holding the drivers
/// `swift build` made (the test binary sits beside them).
enum Paths {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    static let buildDirectory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var dir = (exe as NSString).deletingLastPathComponent
        // swift-testing may run from a helper binary; walk up to the folder with the drivers.
        while dir != "/" && !FileManager.default.fileExists(atPath: dir + "/libllmos_calc.so") {
            dir = (dir as NSString).deletingLastPathComponent
        }
        return dir
    }()

    static var manifests: String { repoRoot + "/manifests" }
    static var fixtures: String { repoRoot + "/Tests/Fixtures/drivers" }

    static func temporaryDirectory(_ label: String = "test") -> String {
        let dir = NSTemporaryDirectory() + "llmos-\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Builds the purpose-made C drivers of Tests/Fixtures/drivers with plain `cc`,
/// outside SwiftPM, as a stranger would build theirs. Each test gets its own copy
/// of the manifest in its own folder so tests can edit them freely.
enum Fixtures {
    private static let cache = Mutex<[String: String]>([:])
    private static let libraryRoot = Paths.temporaryDirectory("fixture-libs")

    /// The compiled library for a fixture, built once per test run.
    static func library(_ name: String) throws -> String {
        // Held while compiling, so parallel tests never see a half-written library.
        try cache.withLock { built in
            if let path = built[name] { return path }
            let output = "\(libraryRoot)/lib\(name).so"
            let result = try run("/usr/bin/cc", ["-std=c11", "-Wall", "-Wextra", "-shared", "-fPIC", "-O1",
                                                 "-I", Paths.repoRoot + "/sdk/include", "-o", output, "\(Paths.fixtures)/\(name).c", "-lpthread"])
            guard result.status == 0 else { throw FixtureError(message: "cc failed for \(name): \(result.output)") }
            built[name] = output
            return output
        }
    }

    /// A folder holding the fixture's manifest and its library, ready to load.
    static func install(_ name: String, into directory: String? = nil, manifestEdit: ((String) -> String)? = nil) throws -> String {
        let dir = directory ?? Paths.temporaryDirectory(name)
        let library = try library(name)
        try? FileManager.default.removeItem(atPath: "\(dir)/lib\(name).so")
        try FileManager.default.copyItem(atPath: library, toPath: "\(dir)/lib\(name).so")
        var text = try String(contentsOfFile: "\(Paths.fixtures)/\(name).yaml", encoding: .utf8)
        if let manifestEdit { text = manifestEdit(text) }
        let manifest = "\(dir)/\(name).yaml"
        try text.write(toFile: manifest, atomically: true, encoding: .utf8)
        return manifest
    }

    struct FixtureError: Error, CustomStringConvertible { var message: String; var description: String { message } }
}

@discardableResult
func run(_ executable: String, _ arguments: [String], directory: String? = nil, environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A kernel that finds the drivers `swift build` made, logging into memory.
func makeKernel(log: MemoryLogSink = MemoryLogSink(), configure: (inout KernelConfiguration) -> Void = { _ in }) -> Kernel {
    var configuration = KernelConfiguration(libraryDirectories: [Paths.buildDirectory], log: log)
    configure(&configuration)
    return Kernel(configuration: configuration)
}

/// The error a throwing expression threw, as an LLMOSError (failing the test otherwise).
func expectError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> LLMOSError {
    do {
        let value = try body()
        Issue.record("expected an error, got \(value)", sourceLocation: sourceLocation)
    } catch let error as LLMOSError {
        return error
    } catch {
        Issue.record("expected an LLMOSError, got \(error)", sourceLocation: sourceLocation)
    }
    return LLMOSError(.internalError, "<no error>")
}

/// Runs `body` on `count` real threads at once (DispatchQueue.concurrentPerform may
/// run iterations one after another when the pool is busy with other tests).
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body(i)
            group.leave()
        }
    }
    group.wait()
}

/// Cancels `token` from a thread of its own after `ms` milliseconds (a Dispatch timer
/// can wait behind a pool the other tests keep busy).
func cancel(_ token: CancellationToken, after ms: Int) {
    Thread.detachNewThread {
        usleep(useconds_t(ms * 1000))
        token.cancel()
    }
}

/// A Python fixture server (under Tests/Fixtures) in a child process. It prints one
/// JSON line once it listens — `{"port": ..., ...}` — and exits when its stdin closes:
/// on `stop()`, or when this goes away.
final class FixtureServer {
    let process = Process()
    private let input = Pipe()
    /// The line it printed once it listened.
    let announcement: [String: Any]
    var port: Int { announcement["port"] as? Int ?? 0 }

    /// `script` is relative to the repository root.
    init(_ script: String, _ arguments: [String] = []) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.repoRoot + "/" + script] + arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var data = Data()
        while !data.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw Fixtures.FixtureError(message: "\(script) exited before listening") }
            data.append(chunk)
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], object["port"] is Int else {
            throw Fixtures.FixtureError(message: "\(script) said \(String(decoding: data, as: UTF8.self))")
        }
        announcement = object
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { stop() }
}
