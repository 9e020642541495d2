// llmos-model-bench: the local model through the `local` driver against llama-server called
// directly, side by side in one run, and the time from start to first token, cold and warm.
// `make bench` runs it after llmos-bench (release build); it needs the local model set up
// (`make models`). --markdown FILE rewrites its section of BENCHMARKS.md.
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel
import LLMOSNet
import LLMOSModelCache

func nowNs() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

let arguments = CommandLine.arguments
let markdownTarget = arguments.firstIndex(of: "--markdown").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 5
let repo = FileManager.default.currentDirectoryPath
let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
let buildDir = (exe as NSString).deletingLastPathComponent

func cacheDir() -> String { ModelCache.directory() }
guard FileManager.default.fileExists(atPath: ModelCache.markerPath(in: cacheDir())) else {
    print("llmos-model-bench: the local model is not set up (run `make models`); skipped")
    exit(0)
}

/// Replaces (or appends) one marked section of the markdown file.
func writeSection(_ target: String, _ name: String, title: String, _ body: String) throws {
    let begin = "<!-- llmos-bench:\(name):begin -->", end = "<!-- llmos-bench:\(name):end -->"
    let block = "\(begin)\nMeasured \(ISO8601DateFormatter().string(from: Date())) on \(machine()) by `make bench`.\n\n\(body)\n\(end)"
    var text = (try? String(contentsOfFile: target, encoding: .utf8)) ?? ""
    if let a = text.range(of: begin), let b = text.range(of: end), a.lowerBound < b.lowerBound {
        text.replaceSubrange(a.lowerBound..<b.upperBound, with: block)
    } else {
        text += "\n## \(title)\n\n\(block)\n"
    }
    try text.write(toFile: target, atomically: true, encoding: .utf8)
}

// `--tasks`: only the task-success table.
if arguments.contains("--tasks") {
    let table = TaskSuccess.markdown(buildDir: buildDir, repo: repo)
    print(table)
    if let target = markdownTarget { try writeSection(target, "agent-tasks", title: "The local model as an agent: task success, constrained against native tool calls", table) }
    exit(0)
}

func makeHost() -> Kernel {
    var c = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
    c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding([
        try! PolicyParser.rule(fromFlag: "driver:local/net.connect=http://127.0.0.1", action: .allow)]))
    c.network = CurlNetworkService()
    let kernel = Kernel(configuration: c)
    do { try kernel.load(manifestAt: repo + "/manifests/local.yaml") } catch {
        print("llmos-model-bench: the local driver did not load (run from the repository root after `swift build -c release`): \(error.message)")
        exit(1)
    }
    return kernel
}

// The same request both ways: greedy, seeded, so both generate the same tokens.
let prompt = "Write a short story about a robot who learns to paint. Use about one hundred words."
let maxTokens = 128
let request: JSONValue = ["messages": [["role": "user", "content": .string(prompt)]], "max_tokens": .int(Int64(maxTokens)),
                          "temperature": 0, "seed": 42]

let kernel = makeHost()
_ = try kernel.call("local.count_tokens", input: #"{"text":"warm up"}"#)   // starts llama-server
let info = try JSON.parse(try kernel.call("local.info", input: "{}").output)
guard let port = info["local"]?["chat"]?["port"]?.int64Value else { fatalError("no llama-server port in \(info)") }
let direct = NetFetcher { _ in .allow }
let url = "http://127.0.0.1:\(port)/v1/chat/completions"

func viaDriver() throws -> (tokens: Int, seconds: Double) {
    let start = nowNs()
    let out = try JSON.parse(try kernel.call("local.complete", input: request).output)
    let seconds = Double(nowNs() - start) / 1e9
    return (Int(out["usage"]?["output_tokens"]?.int64Value ?? 0), seconds)
}

func viaHTTP() throws -> (tokens: Int, seconds: Double, serverTokensPerSecond: Double) {
    var body = request.objectValue!
    body["model"] = "SmolLM2-135M-Instruct.Q4_1"
    let start = nowNs()
    let response = try direct.fetch(FetchRequest(url: url, method: "POST", headerFields: ["Content-Type": "application/json"],
                                                 body: JSONValue.object(body).serialized(), timeoutMs: 600_000))
    let seconds = Double(nowNs() - start) / 1e9
    let out = try JSON.parse(String(decoding: response.body, as: UTF8.self))
    return (Int(out["usage"]?["completion_tokens"]?.int64Value ?? 0), seconds, out["timings"]?["predicted_per_second"]?.doubleValue ?? 0)
}

_ = try viaDriver()   // warm both paths (prompt cache, pages)
_ = try viaHTTP()
var driverRates: [Double] = [], directRates: [Double] = [], serverRates: [Double] = []
var tokenCounts = Set<Int>()
for _ in 0..<rounds {   // interleaved, so drift in the machine's load hits both alike
    let d = try viaHTTP()
    directRates.append(Double(d.tokens) / d.seconds)
    serverRates.append(d.serverTokensPerSecond)
    let l = try viaDriver()
    driverRates.append(Double(l.tokens) / l.seconds)
    tokenCounts.formUnion([d.tokens, l.tokens])
}
let driverRate = median(driverRates), directRate = median(directRates)

// Time to first token. Warm: a host whose llama-server is running. Cold, in process: a new
// kernel, the driver loaded, llama-server started and the model loaded, then the first
// streamed token. Cold, a fresh `llmos` process: exec to exit, one token, no streaming.
nonisolated(unsafe) var askCount = 0
func firstToken(_ k: Kernel) throws -> Double {
    askCount += 1   // a different prompt each time: no help from llama-server's prompt cache
    let start = nowNs()
    let first = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    first.pointee = 0
    defer { first.deallocate() }
    nonisolated(unsafe) let slot = first
    let input: JSONValue = ["messages": [["role": "user", "content": .string("Say hello to visitor number \(askCount).")]],
                            "max_tokens": 16, "stream": true, "temperature": 0]
    _ = try k.call("local.complete", input: input, options: CallOptions(events: { event in
        if slot.pointee == 0 && event.contains("\"text\"") { slot.pointee = nowNs() }
    }))
    return Double(first.pointee - start) / 1e6
}

var warm: [Double] = [], coldHost: [Double] = [], coldProcess: [Double] = []
for _ in 0..<rounds { warm.append(try firstToken(kernel)) }
for _ in 0..<rounds {
    let start = nowNs()
    let fresh = makeHost()
    let loaded = Double(nowNs() - start) / 1e6
    coldHost.append(loaded + (try firstToken(fresh)))
    try fresh.unload("local")
}
let llmosExe = buildDir + "/llmos"
for _ in 0..<rounds {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: llmosExe)
    p.arguments = ["call", "--no-audit-log", "local.complete", #"{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":1}"#]
    p.currentDirectoryURL = URL(fileURLWithPath: repo)
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    let start = nowNs()
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus != 0 { print("warning: llmos call exited with \(p.terminationStatus)") }
    coldProcess.append(Double(nowNs() - start) / 1e6)
}

func machine() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
        .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "?"
    return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu))"
}

let ratio = directRate > 0 ? driverRate / directRate * 100 : 0
let markdown = """
| measurement | through the `local` driver | llama-server directly | ratio |
|---|---|---|---|
| generation, end to end (\(maxTokens) tokens max, \(tokenCounts.sorted().map(String.init).joined(separator: "/")) generated; median of \(rounds), interleaved) | \(String(format: "%.1f", driverRate)) tok/s | \(String(format: "%.1f", directRate)) tok/s | **\(String(format: "%.1f", ratio)) %** (goal ≥ 95 %) |
| llama-server's own decode rate (its `timings`) | | \(String(format: "%.1f", median(serverRates))) tok/s | |

| time to first token (median of \(rounds)) | |
|---|---|
| warm: a host whose llama-server is running, streamed (a new prompt each time) | \(String(format: "%.0f", median(warm))) ms |
| cold, in process: new kernel, load the driver, start llama-server, load the model, first streamed token | \(String(format: "%.0f", median(coldHost))) ms |
| cold, a fresh `llmos call local.complete` process, one token, exec to exit | \(String(format: "%.0f", median(coldProcess))) ms |

Both columns of the first table talk to the same llama-server process (SmolLM2-135M-Instruct Q4_1,
`--jinja -c 4096 -t 2 --parallel 1`): the driver's path adds the kernel's mediation and
validation, the `net.fetch` system call (libcurl) and ModelKit's request and response mapping,
about a millisecond against a second of generation: a few percent either way between runs
is the shared 2-core VM's noise, not the driver.
"""
print(markdown)

// The task table takes 10-25 minutes (44 agent runs on the local model): `--no-tasks` skips it.
let tasksTable = arguments.contains("--no-tasks") ? nil : TaskSuccess.markdown(buildDir: buildDir, repo: repo)
if let tasksTable { print(tasksTable) }

if let target = markdownTarget {
    try writeSection(target, "local-model", title: "The local model: the `local` driver against llama-server, and time to first token", markdown)
    if let tasksTable {
        try writeSection(target, "agent-tasks", title: "The local model as an agent: task success, constrained against native tool calls", tasksTable)
    }
    print("wrote the local-model\(tasksTable == nil ? "" : " and agent-tasks") sections of \(target)")
}
