import Foundation
import LLMOSJSON
import Testing
import LLMOSModelCache

// `llmos models`, the shell's default grants for the shipped local driver, --model, and the
// scripted driver from the command line. HOME is a scratch folder, so the cache (and the
// local model) is empty unless a test points LLMOS_CACHE_DIR at the real one.

private func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let llmos = LLMOS()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: LLMOS.executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: LLMOS.repoRoot)
    var environment = ProcessInfo.processInfo.environment
    environment["HOME"] = llmos.home
    environment["XDG_DATA_HOME"] = nil
    environment["XDG_CACHE_HOME"] = nil
    environment["LLMOS_CACHE_DIR"] = nil
    environment["LLMOS_CPU"] = nil
    environment["LLMOS_DRIVER_PATH"] = nil
    environment["NO_COLOR"] = "1"
    for (k, v) in extra { environment[k] = v }
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

private var realCache: String { ModelCache.directory() }

private var realModelIsSetUp: Bool { FileManager.default.fileExists(atPath: ModelCache.markerPath(in: realCache)) }

@Suite("llmos models") struct ModelsCommandTests {
    @Test func listsTheCPUDriversAndSaysTheLocalModelIsNotSetUp() throws {
        let r = try run(["models", "--json", "--no-audit-log"])
        #expect(r.status == 0, "\(r.stderr)")
        let value = try JSON.parse(r.stdout)
        #expect(value["default"]?.stringValue == "local")
        #expect(value["default_loaded"] == true)
        #expect(value["local_setup"]?["set_up"] == false)
        let names = (value["drivers"]?.arrayValue ?? []).compactMap { $0["driver"]?.stringValue }
        #expect(names.contains("local"))
        #expect(names.contains("scripted"))
        let local = value["drivers"]?.arrayValue?.first { $0["driver"]?.stringValue == "local" }
        #expect(local?["default"] == true)
        #expect(local?["state"]?.stringValue?.contains("not set up") == true)

        let text = try run(["models", "--no-audit-log"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("* local"))
        #expect(text.stdout.contains("set up:       no — run `llmos models setup`"))
    }

    @Test func aCallToTheLocalModelBeforeSetupSaysWhatToRun() throws {
        let r = try run(["call", "--no-audit-log", "local.complete", #"{"messages":[{"role":"user","content":"hi"}]}"#])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the local model is not set up: run `llmos models setup`"), "\(r.stderr)")
    }

    @Test func setupCheckRunsTheScript() throws {
        let r = try run(["models", "setup", "--check"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("not set up"), "\(r.stdout)\(r.stderr)")
    }

    @Test func aSecondSetupSaysAlreadySetUp() throws {
        // A cache that setup-model already filled (its marker, and the files it names).
        let cache = NSTemporaryDirectory() + "llmos-cache-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: cache + "/bin", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: cache + "/m.gguf", contents: Data("GGUF".utf8))
        FileManager.default.createFile(atPath: cache + "/e.gguf", contents: Data("GGUF".utf8))
        FileManager.default.createFile(atPath: cache + "/bin/llama-server", contents: Data("#!/bin/sh\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        let marker: JSONValue = ["setup_version": 1, "model": .string(cache + "/m.gguf"), "server": .string(cache + "/bin/llama-server"),
                                 "embed_model": .string(cache + "/e.gguf"),
                                 "model_bytes": 4, "server_bytes": 10, "setup_seconds": 468.1, "set_up_at": "2026-12-01T21:31:13+0000"]
        try marker.serialized().write(toFile: cache + "/setup.json", atomically: true, encoding: .utf8)
        let r = try run(["models", "setup"], environment: ["LLMOS_CACHE_DIR": cache])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("already set up: \(cache)/m.gguf"), "\(r.stdout)")
        let list = try run(["models", "--no-audit-log"], environment: ["LLMOS_CACHE_DIR": cache])
        #expect(list.stdout.contains("set up:       yes, 2026-12-01T21:31:13+0000 in 7 min 48 s"), "\(list.stdout)")
        let check = try run(["models", "setup", "--check"], environment: ["LLMOS_CACHE_DIR": cache])
        #expect(check.status == 0)
    }

    @Test func theDefaultCPUCanBeChosen() throws {
        let r = try run(["models", "--json", "--no-audit-log"], environment: ["LLMOS_CPU": "scripted"])
        let value = try JSON.parse(r.stdout)
        #expect(value["default"]?.stringValue == "scripted")
        let scripted = value["drivers"]?.arrayValue?.first { $0["driver"]?.stringValue == "scripted" }
        #expect(scripted?["default"] == true)
    }

    @Test func theShellGrantsTheLocalDriverItsLoopbackServerAndNothingElse() throws {
        let r = try run(["policy", "show"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("net.connect http://127.0.0.1 for driver local"), "\(r.stdout)")
        #expect(r.stdout.contains("llmos default for the shipped local driver"))
        // A policy file that drops the built-in default drops these too.
        let dir = NSTemporaryDirectory() + "llmos-policy-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "builtin_default: false\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let without = try run(["policy", "show", "--policy", dir + "/p.yaml"])
        #expect(!without.stdout.contains("for driver local"), "\(without.stdout)")
    }

    @Test func modelFlagNamesAnotherGGUF() throws {
        let r = try run(["models", "--json", "--no-audit-log", "--model", "/nonexistent/other.gguf"])
        #expect(r.stderr.contains("model /nonexistent/other.gguf: no such file"), "\(r.stderr)")
        let dir = NSTemporaryDirectory() + "llmos-gguf-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/tiny.gguf", contents: Data("GGUF....".utf8))
        let ok = try run(["models", "--json", "--no-audit-log", "--model", dir + "/tiny.gguf"])
        let local = try JSON.parse(ok.stdout)["drivers"]?.arrayValue?.first { $0["driver"]?.stringValue == "local" }
        #expect(local?["model"]?.stringValue == "tiny")
        #expect(local?["info"]?["local"]?["model_path"]?.stringValue == dir + "/tiny.gguf")
    }

    @Test func theScriptedDriverFromTheCommandLine() throws {
        let dir = NSTemporaryDirectory() + "llmos-script-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try #"{"text": "scripted hello"}"#.write(toFile: dir + "/turns.jsonl", atomically: true, encoding: .utf8)
        let r = try run(["call", "--no-audit-log", "--config", #"scripted={"script": "\#(dir)/turns.jsonl"}"#,
                         "scripted.complete", #"{"messages":[{"role":"user","content":"hi"}]}"#])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try JSON.parse(r.stdout)["message"]?["content"]?.stringValue == "scripted hello")
    }

    @Test(.enabled(if: realModelIsSetUp, "the local model is not set up (scripts/setup-model)"))
    func outOfTheBoxTheLocalModelAnswers() throws {
        let models = try run(["models", "--json", "--no-audit-log"], environment: ["LLMOS_CACHE_DIR": realCache])
        #expect(try JSON.parse(models.stdout)["local_setup"]?["set_up"] == true)
        // No --allow: the shell's defaults are all the local driver needs.
        let r = try run(["call", "--no-audit-log", "local.complete", #"{"messages":[{"role":"user","content":"Say hi."}],"max_tokens":8}"#],
                        environment: ["LLMOS_CACHE_DIR": realCache])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try JSON.parse(r.stdout)["model"]?.stringValue == "SmolLM2-135M-Instruct.Q4_1")
    }
}
