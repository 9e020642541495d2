// A mounted MCP server's tool called through llmos (the mcp driver, the kernel's mediation)
// next to the same server called directly by the official Python SDK's client
// (Tests/Fixtures/mcp/client.py --bench). The server is Benchmarks/mcp-reference/server.py
// (`mcp` 2.3.0 MCPServer, one `add` tool) over stdio in both columns.
// `llmos-bench --mcp-client` runs only this; the full run includes it.
import Foundation
import LLMOSJSON
import LLMOSKernel

struct MCPClientBenchmark {
    struct Measured { var p50: Double; var p90: Double; var p99: Double; var firstCallMs: Double }
    var llmos: [(revision: String, result: Measured)] = []
    var direct: (p50: Double, p90: Double, p99: Double, sessionMs: Double, version: String)?
    var problem: String?

    static let calls = 2000, warmup = 200

    static func python(repo: String) -> String {
        ProcessInfo.processInfo.environment["LLMOS_BENCH_PYTHON"] ?? repo + "/.build/mcp-venv/bin/python"
    }

    static func run(buildDir: String, repo: String) -> MCPClientBenchmark {
        var result = MCPClientBenchmark()
        let python = python(repo: repo)
        guard FileManager.default.isExecutableFile(atPath: python) else {
            result.problem = "no python with the mcp package at \(python) (`make bench` sets up .build/mcp-venv)"
            return result
        }
        for revision in ["2025-11-25", "2026-07-28"] {
            do { result.llmos.append((revision, try throughLLMOS(buildDir: buildDir, repo: repo, python: python, revision: revision))) } catch {
                result.problem = "through llmos (\(revision)): \(error)"
            }
        }
        result.direct = directly(repo: repo, python: python, problem: &result.problem)
        return result
    }

    static func throughLLMOS(buildDir: String, repo: String, python: String, revision: String) throws -> Measured {
        print("timing the MCP reference server through llmos (mcp driver, \(revision))...")
        let interpreter = URL(fileURLWithPath: python).resolvingSymlinksInPath().path
        let directory = NSTemporaryDirectory() + "llmos-bench-mcp-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifest = directory + "/ref.yaml"
        try """
            manifest_version: 1
            name: ref
            version: 1.0.0
            class: tool
            description: The MCP reference server (one add tool).
            abi: {major: 1}
            library: {path: libllmos_mcp.so, name: mcp}
            threading: concurrent
            tools: discovered
            capabilities: {exec: "\(interpreter)", fs.read: ["\(repo)/Benchmarks/mcp-reference/**"]}
            settings:
              command: "\(python)"
              args: ["\(repo)/Benchmarks/mcp-reference/server.py"]
              protocol: "\(revision)"
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        var configuration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        configuration.broker = CapabilityBroker(policy: Policy(rules: [
            try PolicyParser.rule(fromFlag: "exec=\(interpreter)", action: .allow),
            // The server runs sandboxed (as it would for a user): it reads its own script by grant.
            try PolicyParser.rule(fromFlag: "fs.read=\(repo)/Benchmarks/mcp-reference/**", action: .allow),
            try PolicyParser.rule(fromFlag: "tool.call=ref.*", action: .allow)]))
        let store = InMemoryKeyValueStore()
        configuration.keyValueStore = store
        // The first mount lists the tools (and approves them); a second kernel on the same
        // store then starts the server lazily, on its first call: that call is timed alone.
        do { try Kernel(configuration: configuration).load(manifestAt: manifest) }
        let kernel = Kernel(configuration: configuration)
        try kernel.load(manifestAt: manifest)
        let input = #"{"a":40,"b":2}"#
        let firstStart = nowNs()
        guard try kernel.call("ref.add", input: input).output == #"{"result":42}"# else { throw BenchError(message: "ref.add gave a wrong answer") }
        let firstCallMs = Double(nowNs() - firstStart) / 1e6
        for _ in 0..<warmup { blackHole(try kernel.call("ref.add", input: input)) }
        var samples: [Double] = []
        for _ in 0..<calls {
            let start = nowNs()
            blackHole(try kernel.call("ref.add", input: input))
            samples.append(Double(nowNs() - start))
        }
        samples.sort()
        try? FileManager.default.removeItem(atPath: directory)
        return Measured(p50: samples[samples.count / 2], p90: samples[samples.count * 9 / 10], p99: samples[samples.count * 99 / 100], firstCallMs: firstCallMs)
    }

    static func directly(repo: String, python: String, problem: inout String?) -> (p50: Double, p90: Double, p99: Double, sessionMs: Double, version: String)? {
        print("timing the same server through the Python SDK's client (client.py --bench)...")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repo + "/Tests/Fixtures/mcp/client.py", "--bench", "\(calls)", "--warmup", "\(warmup)", "--tool", "add",
                             "--arguments", #"{"a": 40, "b": 2}"#, "--", python, repo + "/Benchmarks/mcp-reference/server.py"]
        let stdout = Pipe()
        process.standardOutput = stdout
        do { try process.run() } catch {
            problem = "cannot run \(python): \(error)"
            return nil
        }
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let p50 = object["p50_us"] as? Double else {
            problem = "client.py --bench failed"
            return nil
        }
        return (p50 * 1000, (object["p90_us"] as? Double ?? .nan) * 1000, (object["p99_us"] as? Double ?? .nan) * 1000,
                object["session_start_ms"] as? Double ?? .nan, object["mcp_version"] as? String ?? "?")
    }

    struct BenchError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    var markdown: String {
        var text = "| one `add` call to the MCP reference server (mcp 2.3.0 MCPServer, stdio), \(Self.calls) calls | p50 | p90 | p99 | first call / session start |\n|---|---:|---:|---:|---:|\n"
        for (revision, m) in llmos {
            text += "| through llmos: `ref.add`, the mcp driver (\(revision)), mediated (schema, policy), the server in its sandbox, no audit log | \(format(m.p50)) | \(format(m.p90)) | \(format(m.p99)) | \(String(format: "%.0f", m.firstCallMs)) ms (lazy start: spawn, handshake, tools/list, first call) |\n"
        }
        if let direct {
            text += "| directly: the Python SDK \(direct.version) `ClientSession.call_tool` (2025-11-25) | \(format(direct.p50)) | \(format(direct.p90)) | \(format(direct.p99)) | \(String(format: "%.0f", direct.sessionMs)) ms (spawn, initialize) |\n"
        }
        if let problem { text += "\nNot measured: \(problem)\n" }
        text += "\nBoth columns pay the same Python server; the difference is the client: the mcp driver's JSON-RPC over a socket pair plus the kernel's mediation, against the SDK's asyncio client. The sandbox (Landlock, seccomp, a network namespace of its own, set up in the child before exec) is on in these numbers: Linux checks it in the server's own system calls, too little to see next to a Python server's millisecond.\n"
        return text
    }

    func write(into target: String) {
        writeBenchmarkSection("mcp-client", heading: "MCP servers as drivers: a mounted server's tool through llmos, and the same server called directly", markdown: markdown, into: target)
    }
}
