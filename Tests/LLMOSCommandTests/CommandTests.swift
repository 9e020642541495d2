import Foundation
import LLMOSJSON
import Testing

/// The `llmos` executable, run as a user would: a child process, from the
/// repository root (so ./manifests is on the driver path), with HOME pointing at
/// a scratch folder so that installs never touch the real user's directory.
struct LLMOS {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    static let executable: String = {
        var dir = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "") as NSString
        while dir.length > 1 {
            let candidate = dir.appendingPathComponent("llmos")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
            dir = dir.deletingLastPathComponent as NSString
        }
        fatalError("the llmos executable was not built next to the tests")
    }()

    let home: String

    init() {
        home = NSTemporaryDirectory() + "llmos-home-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    }

    @discardableResult
    func run(_ arguments: [String], in directory: String = LLMOS.repoRoot, stdin: String? = nil,
             environment extra: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LLMOS.executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home
        environment["XDG_DATA_HOME"] = nil
        environment["LLMOS_DRIVER_PATH"] = nil
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

func shell(_ command: String, in directory: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite struct CommandTests {
    let llmos = LLMOS()

    @Test func callPrintsTheOutput() throws {
        let r = try llmos.run(["call", "calc.add", #"{"a": 2, "b": 40}"#])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "{\"result\":42}\n")
        let piped = try llmos.run(["call", "text.count", "-"], stdin: #"{"text": "two words"}"#)
        #expect(try JSON.parse(piped.stdout)["words"]?.int64Value == 2, "\(piped)")
    }

    @Test func callErrorsAreClearAndNonZero() throws {
        let unknown = try llmos.run(["call", "calc.addd", "{}"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no tool calc.addd — did you mean calc.add?"), "\(unknown.stderr)")
        let bad = try llmos.run(["call", "calc.div", #"{"a": 1, "b": 0}"#, "--json"])
        #expect(bad.status == 1)
        #expect(try JSON.parse(bad.stdout)["error"]?["code"]?.stringValue == "invalid_argument", "\(bad.stdout)")
    }

    @Test func listingsHaveJSON() throws {
        let list = try llmos.run(["drivers", "list", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let drivers = try JSON.parse(list.stdout)["drivers"]?.arrayValue ?? []
        let calc = try #require(drivers.first { $0["name"]?.stringValue == "calc" })
        #expect(calc["class"]?.stringValue == "tool")
        #expect(calc["isolation"]?.stringValue == "in-process")
        #expect(calc["health"]?["status"]?.stringValue == "ok")
        let table = try llmos.run(["drivers", "list"])
        #expect(table.stdout.contains("NAME") && table.stdout.contains("calc") && table.stdout.contains("add,sub,mul,div,eval"), "\(table.stdout)")

        let tools = try JSON.parse(try llmos.run(["tools", "--json"]).stdout).arrayValue ?? []
        let add = try #require(tools.first { $0["name"]?.stringValue == "calc.add" })
        #expect(add["input_schema"]?["required"] == ["a", "b"])
        #expect(try llmos.run(["tools", "calc"]).stdout.contains("calc.add(a: number, b: number)"))

        let info = try llmos.run(["drivers", "info", "text", "--json"])
        #expect(try JSON.parse(info.stdout)["tool_details"]?.arrayValue?.count == 7, "\(info)")
        let missing = try llmos.run(["drivers", "info", "nosuch"])
        #expect(missing.status == 1 && missing.stderr.contains("no driver named nosuch is loaded"))
    }

    @Test func checkValidatesWithoutInstalling() throws {
        let ok = try llmos.run(["drivers", "check", "manifests/calc.yaml"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.hasPrefix("ok: calc 1.0.0 (tool, 5 tools"), "\(ok.stdout)")

        let dir = NSTemporaryDirectory() + "llmos-check-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let broken = try String(contentsOfFile: LLMOS.repoRoot + "/manifests/calc.yaml", encoding: .utf8)
            .replacingOccurrences(of: "capabilities: {}", with: "capabilities: {net.conect: [\"*\"]}")
        try broken.write(toFile: dir + "/calc.yaml", atomically: true, encoding: .utf8)
        let bad = try llmos.run(["drivers", "check", dir + "/calc.yaml", "--json"])
        #expect(bad.status == 1)
        let error = try JSON.parse(bad.stdout)["error"]
        #expect(error?["code"]?.stringValue == "invalid_manifest")
        #expect(error?["diagnostics"]?.arrayValue?.first?["field"]?.stringValue == "capabilities.net.conect", "\(bad.stdout)")
    }

    @Test func installListRemove() throws {
        // Without a terminal and without --yes nothing is installed, and the message says how.
        let refused = try llmos.run(["drivers", "install", "manifests/calc.yaml"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("pass --yes"), "\(refused.stderr)")

        let installed = try llmos.run(["drivers", "install", "manifests/calc.yaml", "--yes"])
        #expect(installed.status == 0, "\(installed.stderr)")
        #expect(installed.stdout.contains("capabilities: none"))
        let folder = llmos.home + "/.local/share/llmos/drivers/calc"
        #expect(FileManager.default.fileExists(atPath: folder + "/calc.yaml"))
        #expect(FileManager.default.fileExists(atPath: folder + "/libllmos_calc.so"))

        // From another directory (no ./manifests), the installed copy is what loads.
        let elsewhere = NSTemporaryDirectory()
        let list = try JSON.parse(try llmos.run(["drivers", "list", "--json"], in: elsewhere).stdout)
        #expect(list["drivers"]?.arrayValue?.first?["manifest"]?.stringValue == folder + "/calc.yaml", "\(list)")
        #expect(try llmos.run(["call", "calc.mul", #"{"a": 6, "b": 7}"#], in: elsewhere).stdout == "{\"result\":42}\n")

        let again = try llmos.run(["drivers", "install", "manifests/calc.yaml", "--yes"])
        #expect(again.status == 1 && again.stderr.contains("already installed"))
        #expect(try llmos.run(["drivers", "remove", "calc"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: folder))
        let gone = try llmos.run(["drivers", "remove", "calc"])
        #expect(gone.status == 1 && gone.stderr.contains("no driver named calc is installed"))
    }

    @Test func newCDriverBuildsAndLoads() throws {
        let dir = NSTemporaryDirectory() + "llmos-new-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let created = try llmos.run(["new", "driver", "weather", "--lang", "c"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let build = try shell("make", in: dir + "/weather")
        #expect(build.status == 0, "\(build.output)")
        #expect(!build.output.contains("warning"), "\(build.output)")
        let check = try llmos.run(["drivers", "check", dir + "/weather/weather.yaml"])
        #expect(check.status == 0, "\(check.stderr)")
        let call = try llmos.run(["call", "--drivers", dir + "/weather", "weather.hello", #"{"name": "Ada"}"#])
        #expect(call.stdout.contains("Hello, Ada!"), "\(call)")
        let invalid = try llmos.run(["new", "driver", "Bad-Name"], in: dir)
        #expect(invalid.status != 0 && invalid.stderr.contains("is not a valid driver name"))
    }

    @Test func newSwiftDriverBuildsAndLoads() throws {
        let dir = NSTemporaryDirectory() + "llmos-newswift-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let created = try llmos.run(["new", "driver", "greeter", "--lang", "swift"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let build = try shell("swift build 2>&1", in: dir + "/greeter")
        #expect(build.status == 0, "\(build.output)")
        let check = try llmos.run(["drivers", "check", dir + "/greeter/greeter.yaml"])
        #expect(check.status == 0, "\(check.stderr)")
        let call = try llmos.run(["call", "--drivers", dir + "/greeter", "greeter.hello", #"{"name": "Ada"}"#])
        #expect(call.stdout.contains("Hello, Ada!"), "\(call)")
    }

    @Test func doctorReportsWhatLoadsAndWhatDoesNot() throws {
        let dir = NSTemporaryDirectory() + "llmos-doctor-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "manifest_version: 1\nname: broken\n".write(toFile: dir + "/broken.yaml", atomically: true, encoding: .utf8)
        let r = try llmos.run(["doctor", "--drivers", dir, "--json"])
        #expect(r.status == 1)   // a driver failed to load
        let report = try JSON.parse(r.stdout)
        #expect(report["loaded"]?.arrayValue?.contains { $0["name"]?.stringValue == "calc" } == true)
        #expect(report["failed"]?.arrayValue?.first?["manifest"]?.stringValue == dir + "/broken.yaml")
        #expect(report["checks"]?.arrayValue?.contains { $0["name"]?.stringValue == "driver ABI" } == true)
        let text = try llmos.run(["doctor", "--drivers", dir])
        #expect(text.stdout.contains("FAIL \(dir)/broken.yaml"), "\(text.stdout)")
        #expect(text.stdout.contains("Driver path (first match wins)"))
    }

    @Test func helpTeaches() throws {
        let help = try llmos.run(["--help"])
        #expect(help.status == 0)
        for word in ["drivers", "tools", "call", "new", "doctor", "demo", "first match wins"] {
            #expect(help.stdout.contains(word), "\(word)")
        }
        #expect(try llmos.run(["call", "--help"]).stdout.contains("llmos call calc.add"))
        let unknown = try llmos.run(["frobnicate"])
        #expect(unknown.status != 0)
    }

    @Test func demoRuns() throws {
        let r = try llmos.run(["demo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("→ {\"result\":6912}"))
        #expect(r.stdout.contains("did you mean calc.add?"))
    }
}

@Suite struct WatchCommandTests {
    /// `llmos watch` as a user runs it: a long-lived host that prints what it loads and unloads.
    @Test func watchLoadsAndUnloadsDriversAsTheyAppear() throws {
        let llmos = LLMOS()
        // The watched directory does not exist yet, as the user's does not before the first install.
        let watched = NSTemporaryDirectory() + "llmos-watch-\(UUID().uuidString.prefix(6))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LLMOS.executable)
        process.arguments = ["watch", "--drivers", watched]
        process.currentDirectoryURL = URL(fileURLWithPath: NSTemporaryDirectory())
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = llmos.home
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }

        var seen = ""
        func waitFor(_ text: String) -> Bool {
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline && !seen.contains(text) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { usleep(20_000) } else { seen += String(decoding: chunk, as: UTF8.self) }
            }
            return seen.contains(text)
        }
        #expect(waitFor("watching"), "\(seen)")
        try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
        // Install the calc driver into the watched folder, as `drivers install` would.
        let staging = watched + "/.staging"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let buildDir = (LLMOS.executable as NSString).deletingLastPathComponent
        try FileManager.default.copyItem(atPath: buildDir + "/libllmos_calc.so", toPath: staging + "/libllmos_calc.so")
        try FileManager.default.copyItem(atPath: LLMOS.repoRoot + "/manifests/calc.yaml", toPath: staging + "/calc.yaml")
        try FileManager.default.moveItem(atPath: staging, toPath: watched + "/calc")
        #expect(waitFor("loaded calc from \(watched)/calc/calc.yaml"), "\(seen)")
        try FileManager.default.removeItem(atPath: watched + "/calc")
        #expect(waitFor("unloaded calc"), "\(seen)")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit || process.terminationStatus == SIGTERM, "llmos watch must stop on SIGTERM")
    }
}

@Suite struct ConfigOptionTests {
    @Test func configReachesTheDriverAndBadConfigIsAUsageError() throws {
        let llmos = LLMOS()
        let bad = try llmos.run(["call", "--config", "calc=[1]", "calc.add", #"{"a":1,"b":2}"#])
        #expect(bad.status != 0 && bad.stderr.contains("--config calc: the value must be a JSON object"), "\(bad.stderr)")
        let malformed = try llmos.run(["call", "--config", "calc", "calc.add", "{}"])
        #expect(malformed.status != 0 && malformed.stderr.contains("expected NAME=JSON"), "\(malformed.stderr)")
        let ok = try llmos.run(["call", "--config", #"calc={"unused":true}"#, "calc.add", #"{"a":1,"b":2}"#])
        #expect(ok.stdout == "{\"result\":3}\n", "\(ok.stderr)")
    }
}
