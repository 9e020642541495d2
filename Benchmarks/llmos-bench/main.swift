// llmos-bench: the kernel's own costs, each next to its baseline in the same run.
// `make bench` builds in release mode and writes the results into BENCHMARKS.md.
import CLLMOS
import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

// MARK: Measuring

/// Runs `body` (which does `batch` operations) many times and reports nanoseconds
/// per operation: p50 and p99 over the batch means. Batching keeps the clock's
/// own cost (~20 ns) out of sub-microsecond numbers.
func measure(batches: Int = 300, batch: Int = 1000, _ body: () -> Void) -> (p50: Double, p99: Double) {
    for _ in 0..<max(3, batches / 20) { body() }   // warm up caches and lazy state
    var samples: [Double] = []
    samples.reserveCapacity(batches)
    for _ in 0..<batches {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        let ns = Double(end.tv_sec - start.tv_sec) * 1e9 + Double(end.tv_nsec - start.tv_nsec)
        samples.append(ns / Double(batch))
    }
    samples.sort()
    return (samples[samples.count / 2], samples[min(samples.count - 1, samples.count * 99 / 100)])
}

func nowNs() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

struct Row { var name: String; var p50: Double; var p99: Double; var note: String }

func format(_ ns: Double) -> String {
    if ns < 10 { return String(format: "%.2f ns", ns) }
    if ns < 1000 { return String(format: "%.0f ns", ns) }
    if ns < 1_000_000 { return String(format: "%.2f µs", ns / 1000) }
    return String(format: "%.2f ms", ns / 1_000_000)
}

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

// MARK: Setup

let arguments = CommandLine.arguments
let markdownTarget: String? = arguments.firstIndex(of: "--markdown").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
let repo = FileManager.default.currentDirectoryPath
guard let exeDir = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { fatalError("no /proc/self/exe") }
let buildDir = (exeDir as NSString).deletingLastPathComponent
let log = MemoryLogSink()
let kernel = Kernel(configuration: KernelConfiguration(libraryDirectories: [buildDir], log: log))
let report = kernel.loadAll(from: DriverSearchPath(entries: [.init(directory: repo + "/manifests", origin: "./manifests")]))
guard kernel.driver(named: "calc") != nil else {
    print("calc did not load (run from the repository root after `swift build -c release`): \(report.failed.map(\.error.message))")
    exit(1)
}

// `llmos-bench --calls N`: only N mediated calls, for profilers (valgrind --tool=callgrind).
if let i = arguments.firstIndex(of: "--calls"), i + 1 < arguments.count, let n = Int(arguments[i + 1]) {
    for _ in 0..<n { blackHole(try! kernel.call("calc.add", input: #"{"a":1,"b":2}"#)) }
    exit(0)
}

// `llmos-bench --agent`: only the agent benchmarks (Agent.swift).
if arguments.contains("--agent") {
    let agent = AgentBenchmark.run(buildDir: buildDir, repo: repo)
    print(agent.markdown)
    if let target = markdownTarget { agent.write(into: target) }
    exit(0)
}

// `llmos-bench --isolation`: only the isolation comparison.
if arguments.contains("--isolation") {
    print(IsolationBenchmark.run(buildDir: buildDir, repo: repo).markdown)
    exit(0)
}
// `llmos-bench --memory`: only the context-assembly benchmark (Memory.swift).
if arguments.contains("--memory") {
    let memory = MemoryBenchmark.run(buildDir: buildDir, repo: repo)
    print(memory.markdown)
    if let target = markdownTarget { memory.write(into: target) }
    exit(0)
}
// `llmos-bench --storage [--storage-scale N] [--storage-mb M]`: only the storage benchmark (Storage.swift).
func storageOption(_ name: String, _ fallback: Int) -> Int {
    arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? Int(arguments[$0 + 1]) : nil } ?? fallback
}
// --storage-scale 100000,1000000: the vector collection grown to each size in turn, measured at each.
let storageScales: [Int] = {
    guard let i = arguments.firstIndex(of: "--storage-scale"), i + 1 < arguments.count else { return [100_000] }
    let sizes = arguments[i + 1].split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }.sorted()
    return sizes.isEmpty ? [100_000] : sizes
}()
let storageMB = storageOption("--storage-mb", 100)
let storageDrivers: [String] = {
    guard let i = arguments.firstIndex(of: "--storage-drivers"), i + 1 < arguments.count else { return ["sqlite", "postgres"] }
    return arguments[i + 1].split(separator: ",").map(String.init)
}()
if arguments.contains("--storage") {
    let storage = StorageBenchmark.run(buildDir: buildDir, repo: repo, scales: storageScales, megabytes: storageMB, drivers: storageDrivers)
    print(storage.markdown)
    if let target = markdownTarget { storage.write(into: target) }
    exit(0)
}
// `llmos-bench --mcp-client`: only a mounted MCP server against the SDK's own client (MCPClient.swift).
if arguments.contains("--mcp-client") {
    let mcp = MCPClientBenchmark.run(buildDir: buildDir, repo: repo)
    print(mcp.markdown)
    if let target = markdownTarget { mcp.write(into: target) }
    exit(0)
}
// The zero-code (libffi) comparison (FFI.swift); `--ffi` runs only it.
FFIBenchmark.hook(arguments: arguments, buildDir: buildDir, repo: repo, markdownTarget: markdownTarget)

var rows: [Row] = []
let smallInput = #"{"a":1,"b":2}"#

// 1. The baseline: calc's add through a plain C function pointer.
guard let calcHandle = dlopen(buildDir + "/libllmos_calc.so", RTLD_NOW | RTLD_LOCAL),
      let addSymbol = dlsym(calcHandle, "llmos_calc_add") else { fatalError("llmos_calc_add not found") }
typealias AddFunction = @convention(c) (Double, Double) -> Double
let directAdd = unsafeBitCast(addSymbol, to: AddFunction.self)
var sink = 0.0
let direct = measure(batch: 100_000) {
    var x = 0.0
    for i in 0..<100_000 { x += directAdd(Double(i), 2) }
    sink += x
}
rows.append(Row(name: "direct C call: llmos_calc_add(a, b) through a function pointer", p50: direct.p50, p99: direct.p99, note: "baseline"))

// 1b. The driver's own work (reading its JSON input, writing its JSON output),
// called straight through the ABI with a stub host that only counts bytes.
nonisolated(unsafe) var stubOutputBytes = 0
var stubHost = llmos_host()
stubHost.struct_size = UInt32(MemoryLayout<llmos_host>.size)
stubHost.log = { _, _, _, _ in }
stubHost.set_output = { _, _, len in stubOutputBytes &+= len; return LLMOS_OK }
stubHost.set_error = { _, _, _ in LLMOS_OK }
stubHost.is_cancelled = { _ in 0 }
stubHost.progress = { _, _, _ in }
guard let entrySymbol = dlsym(calcHandle, "llmos_driver_entry_v1") else { fatalError("no entry") }
typealias EntryFunction = @convention(c) (UnsafePointer<llmos_host>?, UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?) -> llmos_status
var calcTable: UnsafePointer<llmos_driver>?
_ = withUnsafePointer(to: &stubHost) { unsafeBitCast(entrySymbol, to: EntryFunction.self)($0, &calcTable) }
var calcInstance: UnsafeMutableRawPointer?
if let create = calcTable!.pointee.create { _ = withUnsafePointer(to: &stubHost) { create($0, "{}", 2, &calcInstance) } }
let rawCall = calcTable!.pointee.call!
let abiOnly = smallInput.withCString { input in
    "add".withCString { op in
        measure {
            for _ in 0..<1000 { blackHole(rawCall(calcInstance, OpaquePointer(bitPattern: 1), op, input, 13)) }
        }
    }
}
rows.append(Row(name: "calc's own work through the ABI, no kernel (stub host): read JSON, add, write JSON", p50: abiOnly.p50, p99: abiOnly.p99, note: "the driver's share"))

// 2. The mediated call, whole.
let mediated = measure {
    for _ in 0..<1000 { blackHole(try! kernel.call("calc.add", input: smallInput)) }
}
rows.append(Row(name: "mediated call: kernel.call(\"calc.add\", {\"a\":1,\"b\":2})", p50: mediated.p50, p99: mediated.p99, note: "lookup + parse + validate + gate + dispatch + output check + copy"))

// 3. Where the time goes: each step on its own.
let lookup = measure {
    for _ in 0..<1000 { blackHole(kernel.hasTool("calc.add")) }
}
rows.append(Row(name: "  lookup of calc.add in the registry (read lock + hash)", p50: lookup.p50, p99: lookup.p99, note: "step"))
let parse = measure {
    for _ in 0..<1000 { blackHole(try! JSON.parse(smallInput)) }
}
rows.append(Row(name: "  parse the input JSON (LLMOSJSON)", p50: parse.p50, p99: parse.p99, note: "step"))
let foundationParse = measure(batches: 100) {
    let data = Data(smallInput.utf8)
    for _ in 0..<1000 { blackHole(try! JSONSerialization.jsonObject(with: data)) }
}
rows.append(Row(name: "  (for comparison: Foundation JSONSerialization of the same input)", p50: foundationParse.p50, p99: foundationParse.p99, note: "not used"))
let schema = try! JSONSchema(kernel.tool(named: "calc.add")!.inputSchema)
let value = try! JSON.parse(smallInput)
let validate = measure {
    for _ in 0..<1000 { blackHole(schema.isValid(value)) }
}
rows.append(Row(name: "  validate it against calc.add's input schema", p50: validate.p50, p99: validate.p99, note: "step"))
let outputSchema = try! JSONSchema(kernel.tool(named: "calc.add")!.outputSchema!)
let outputText = #"{"result":3}"#
let outputCheck = measure {
    for _ in 0..<1000 { blackHole(outputSchema.isValid(try! JSON.parse(outputText))) }
}
rows.append(Row(name: "  parse + validate the output against its output schema", p50: outputCheck.p50, p99: outputCheck.p99, note: "step"))
rows.append(Row(name: "  the driver's own work (row 2)", p50: abiOnly.p50, p99: abiOnly.p99, note: "step"))
let rest = max(0, mediated.p50 - lookup.p50 - parse.p50 - validate.p50 - outputCheck.p50 - abiOnly.p50)
rows.append(Row(name: "  the rest: the gate (cached decision), call state, in-flight count, deadline clock, host callbacks, audit hook, result copy", p50: rest, p99: .nan, note: "derived"))
let overhead = mediated.p50 - direct.p50
rows.append(Row(name: "overhead of mediation (mediated − direct)", p50: overhead, p99: .nan, note: overhead <= 1000 ? "goal ≤ 1 µs: met" : "goal ≤ 1 µs: NOT met"))

// 3b. The capability layer: the decision on its own, and calls with the audit log on.
let policy = try! PolicyParser.parse(text: """
    allow:
      fs.read: ["/home/*/notes/**", "/srv/data/**"]
      fs.write: ["/tmp/llmos/**"]
      net.connect: ["https://api.example.com:443", "10.0.0.0/8:*"]
      env: ["LLMOS_*"]
      kv: ["*"]
      tool.call: ["*"]
    deny:
      fs.read: ["/home/*/.ssh/**", "/etc/shadow"]
      net.connect: ["169.254.169.254"]
    ask:
      fs.write: ["/home/**"]
    """, file: "bench.policy.yaml").policy
let readRequest = AccessRequest(kind: .fsRead, resource: "/home/ada/notes/todo.md", driver: "notes", tool: "notes.read")
let decide = measure {
    for _ in 0..<1000 { blackHole(policy.decide(readRequest)) }
}
rows.append(Row(name: "policy decision: fs.read /home/ada/notes/todo.md against 12 rules", p50: decide.p50, p99: decide.p99, note: decide.p50 <= 1000 ? "goal ≤ 1 µs: met" : "goal ≤ 1 µs: NOT met"))
let toolDecision = measure {
    for _ in 0..<1000 { blackHole(kernel.configuration.broker.checkToolCall(tool: "calc.add", hints: OperationHints(), caller: "")) }
}
rows.append(Row(name: "tool.call decision for calc.add, uncached (the call path reuses it per tool until the policy changes)", p50: toolDecision.p50, p99: toolDecision.p99, note: "once per policy"))

let auditPath = NSTemporaryDirectory() + "llmos-bench-audit-\(getpid()).sqlite3"
let auditLog = try! SQLiteAuditLog(path: auditPath)
var auditedConfiguration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
auditedConfiguration.audit = auditLog
let auditedKernel = Kernel(configuration: auditedConfiguration)
try! auditedKernel.load(manifestAt: repo + "/manifests/calc.yaml")
let audited = measure(batches: 100) {
    for _ in 0..<1000 { blackHole(try! auditedKernel.call("calc.add", input: smallInput)) }
}
rows.append(Row(name: "mediated call with the SQLite audit log on (append; batches commit on a writer thread)", p50: audited.p50, p99: audited.p99, note: "compare with the mediated call"))
try! auditLog.flush()
// Sustained: audited calls until everything is committed, one calling thread.
let sustainedCalls = 200_000
let sustainedStart = nowNs()
for _ in 0..<sustainedCalls { blackHole(try! auditedKernel.call("calc.add", input: smallInput)) }
try! auditLog.flush()
let sustainedNs = Double(nowNs() - sustainedStart)
let auditedPerSecond = Double(sustainedCalls) / (sustainedNs / 1e9)
let auditRows = (try? auditLog.count()) ?? 0
try? auditLog.close()
try? FileManager.default.removeItem(atPath: auditPath)

// 4. Many threads on a concurrent driver (throughput).
let threads = 2
let perThread = 200_000
let concurrentStart = nowNs()
DispatchQueue.concurrentPerform(iterations: threads) { _ in
    for _ in 0..<perThread { blackHole(try! kernel.call("calc.add", input: smallInput)) }
}
let concurrentNs = Double(nowNs() - concurrentStart)
let callsPerSecond = Double(threads * perThread) / (concurrentNs / 1e9)

// 5. Loading 100 drivers from their manifests (C drivers made from sdk/templates/c, built with cc).
let loadDir = NSTemporaryDirectory() + "llmos-bench-load-\(getpid())"
try? FileManager.default.removeItem(atPath: loadDir)
try! FileManager.default.createDirectory(atPath: loadDir, withIntermediateDirectories: true)
let templateC = try! String(contentsOfFile: repo + "/sdk/templates/c/driver.c", encoding: .utf8)
let templateManifest = try! String(contentsOfFile: repo + "/sdk/templates/c/manifest.yaml", encoding: .utf8)
print("building 100 C drivers from sdk/templates/c for the load benchmark...")
for i in 0..<100 {
    let name = "bench\(i)"
    try! templateC.replacingOccurrences(of: "{{name}}", with: name).write(toFile: "\(loadDir)/\(name).c", atomically: true, encoding: .utf8)
    try! templateManifest.replacingOccurrences(of: "{{name}}", with: name).write(toFile: "\(loadDir)/\(name).yaml", atomically: true, encoding: .utf8)
}
let make = Process()
make.executableURL = URL(fileURLWithPath: "/bin/sh")
make.arguments = ["-c", "cd \(loadDir) && for f in bench*.c; do n=${f%.c}; echo \"cc -std=c99 -O2 -shared -fPIC -I \(repo)/sdk/include -o lib$n.so $f\"; done | xargs -P 2 -I{} sh -c '{}'"]
try! make.run()
make.waitUntilExit()
var loadTimes: [Double] = []
var loadedCount = 0
for _ in 0..<7 {
    let k = Kernel(configuration: KernelConfiguration(libraryDirectories: [], log: MemoryLogSink()))
    let start = nowNs()
    let r = k.loadAll(from: DriverSearchPath(entries: [.init(directory: loadDir, origin: "bench")]))
    loadTimes.append(Double(nowNs() - start))
    loadedCount = r.loaded.count
    if !r.failed.isEmpty { print("load failures: \(r.failed.prefix(2))") }
    for name in k.driverNames { try? k.unload(name) }
}
loadTimes.sort()
let loadMedian = loadTimes[loadTimes.count / 2]
// The manifest half of that: reading and validating the 100 manifests, no dlopen.
var parseTimes: [Double] = []
let manifestFiles = DriverSearchPath.manifests(in: loadDir)
for _ in 0..<7 {
    let start = nowNs()
    for file in manifestFiles { blackHole(try? ManifestParser.parse(file: file)) }
    parseTimes.append(Double(nowNs() - start))
}
parseTimes.sort()
let parseMedian = parseTimes[parseTimes.count / 2]
try? FileManager.default.removeItem(atPath: loadDir)

// 6. Isolation: in-process vs a sandboxed helper process vs MCP stdio (Isolation.swift).
let isolation = IsolationBenchmark.run(buildDir: buildDir, repo: repo)

// 7. Agent processes: a step's kernel cost with 100 tools, and the scheduler (Agent.swift).
let agentBench = AgentBenchmark.run(buildDir: buildDir, repo: repo)
let memoryBench = MemoryBenchmark.run(buildDir: buildDir, repo: repo)
let storageBench = StorageBenchmark.run(buildDir: buildDir, repo: repo, scales: storageScales, megabytes: storageMB, drivers: storageDrivers)
let mcpClientBench = MCPClientBenchmark.run(buildDir: buildDir, repo: repo)

// MARK: Report

func machine() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    var u = utsname()
    uname(&u)
    let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n").first?
        .split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { String(format: "%.0f GiB", $0 / 1024 / 1024) } ?? "?"
    return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(memory), Linux \(release), release build"
}

var table = "| measurement | p50 | p99 | |\n|---|---:|---:|---|\n"
for row in rows {
    table += "| \(row.name) | \(format(row.p50)) | \(row.p99.isNaN ? "—" : format(row.p99)) | \(row.note) |\n"
}
let summary = """
\(table)
- Throughput: \(threads) threads calling calc.add: \(String(format: "%.2f", callsPerSecond / 1e6)) million mediated calls per second.
- Loading \(loadedCount) drivers from their manifests (parse + validate manifest, dlopen, negotiate, create; median of 7 runs): \(format(loadMedian)) in all, \(format(loadMedian / Double(max(loadedCount, 1)))) per driver — goal ≤ 50 ms: \(loadMedian <= 50_000_000 ? "met" : "NOT met"). Of that, reading and validating the manifests (YAML through Yams, schemas compiled) takes \(format(parseMedian)); the rest is dlopen, negotiation and create.
- Audited: \(sustainedCalls) calls with the SQLite audit log on, until every record was committed (flushed): \(String(format: "%.0f", auditedPerSecond)) audited calls per second (goal ≥ 100,000: \(auditedPerSecond >= 100_000 ? "met" : "NOT met")); \(auditRows) rows, each chained to the one before by SHA-256.
- For scale: a trivial tool call through the official MCP Python SDK over stdio costs about 700 µs on this machine (../shared/PLATFORM.md), \(String(format: "%.0f", 700_000 / mediated.p50))× the mediated call above.
"""
print("\nMachine: \(machine())\n")
print(summary)
print(isolation.markdown)
print(agentBench.markdown)
blackHole(sink)

if let target = markdownTarget {
    writeBenchmarkSection("kernel", heading: "The kernel: a mediated call and loading drivers", markdown: summary, into: target)
    writeBenchmarkSection("isolation", heading: "Isolation: an isolated driver's round trip, next to in-process and MCP stdio",
                          markdown: isolation.markdown, into: target)
    agentBench.write(into: target)
    memoryBench.write(into: target)
    storageBench.write(into: target)
    mcpClientBench.write(into: target)
    print("wrote \(target)")
}
