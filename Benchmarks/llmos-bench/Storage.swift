// The storage benchmark (issue 7): ingest throughput on a generated corpus, and search
// latency at scale for text, 384-d vectors (exact scan and the IVF index, with its
// recall@10 against exact) and hybrid — every call through the kernel (policy check and
// audit), the way agents and `llmos ingest` use the store — for the sqlite driver and the
// postgres driver side by side, on the same data in the same run (postgres on a scratch
// server from scripts/postgres-scratch, fsync on). `llmos-bench --storage`;
// `--storage-scale N` sets the vector collection's size (default 100,000; the issue's
// goal is stated at 1,000,000), `--storage-mb M` the ingest corpus (default 100 MB),
// `--storage-drivers sqlite,postgres` which drivers run.
import Foundation
import LLMOSIngest
import LLMOSJSON
import LLMOSKernel
import LLMOSNet

struct StorageBenchmark {
    var markdown: String

    func write(into target: String) {
        writeBenchmarkSection("storage", heading: "Storage: ingest and search at scale", markdown: markdown, into: target)
    }

    /// A 20,000-word vocabulary of pronounceable made-up words; text draws from it with a
    /// skew (a few words common, most rare), as natural text does, so BM25 has selective terms.
    static let words: [String] = {
        let onsets = ["b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl", "gr"]
        let vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
        var rng = Generator(state: 7)
        return (0..<20_000).map { _ in (0..<(2 + Int(rng.next() % 2))).map { _ in onsets[Int(rng.next() % 20)] + vowels[Int(rng.next() % 7)] }.joined() }
    }()

    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 11 }
        mutating func float() -> Float { Float(Int64(next() % 2_000_001) - 1_000_000) / 1_000_000 }
        /// Skewed: the square of a uniform draw favours the first words of the vocabulary.
        mutating func paragraph(_ count: Int) -> String {
            (0..<count).map { _ in
                let u = Double(next() % 1_000_000) / 1_000_000
                return StorageBenchmark.words[Int(u * u * u * Double(StorageBenchmark.words.count))]
            }.joined(separator: " ")
        }
        /// A query: two words of any frequency.
        mutating func query() -> String { (0..<2).map { _ in StorageBenchmark.words[Int(next() % UInt64(StorageBenchmark.words.count))] }.joined(separator: " ") }
    }

    /// A store to measure: the driver's name and how to reach it.
    struct Target {
        var driver: String
        var grants: [String]
        var config: JSONObject
        var note: String
    }

    static func sqliteTarget(workspace: String) -> Target {
        Target(driver: "sqlite", grants: ["fs.read=\(workspace)/bench.sqlite3*", "fs.write=\(workspace)/bench.sqlite3*"],
               config: ["path": "bench.sqlite3", "synchronous": "normal"], note: "one file, WAL, synchronous=normal")
    }

    static func kernel(buildDir: String, repo: String, workspace: String, target: Target, index: String) -> Kernel {
        let context = PolicyContext(workspace: workspace)
        let grants = target.grants + ["storage.read=*", "storage.write=*"]
        var configuration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        configuration.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(grants.map { try! PolicyParser.rule(fromFlag: $0, action: .allow, context: context) }), context: context)
        configuration.workspace = workspace
        configuration.network = CurlNetworkService()
        var config = target.config
        config["vector_index"] = .string(index)
        configuration.driverConfig = [target.driver: .object(config)]
        let kernel = Kernel(configuration: configuration)
        try! kernel.load(manifestAt: repo + "/manifests/\(target.driver).yaml")
        return kernel
    }

    static func call(_ kernel: Kernel, _ tool: String, _ input: JSONValue) -> JSONValue {
        try! JSON.parse(try! kernel.call(tool, input: input).output)
    }

    static func timed(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// One driver's numbers.
    struct Result {
        var target: Target
        var ingestRate = 0.0, ingestedMB = 0.0, chunks = 0
        var minutes = 0.0
        /// Per scale: vectors added to reach it, and the seconds that took; the IVF recall@10 there.
        var stores: [(scale: Int, added: Int, seconds: Double)] = []
        var recalls: [(scale: Int, recall: Double)] = []
        /// Per query kind: (name, p50, p99, first), in order.
        var searches: [(name: String, p50: Double, p99: Double, first: Double)] = []
    }

    static func run(buildDir: String, repo: String, scales: [Int] = [100_000], megabytes: Int = 100, drivers: [String] = ["sqlite", "postgres"]) -> StorageBenchmark {
        let workspace = NSTemporaryDirectory() + "llmos-bench-storage-\(getpid())"
        try? FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        var results: [Result] = []
        var skipped: [String] = []
        for driver in drivers {
            switch driver {
            case "sqlite":
                results.append(measure(sqliteTarget(workspace: workspace), buildDir: buildDir, repo: repo, workspace: workspace, scales: scales, megabytes: megabytes))
            case "postgres":
                guard let server = ScratchPostgres.start() else { skipped.append("postgres: scripts/postgres-scratch could not start a server (see its message above)"); continue }
                results.append(measure(server.target, buildDir: buildDir, repo: repo, workspace: workspace, scales: scales, megabytes: megabytes))
                server.stop()
            default:
                skipped.append("\(driver): not a storage driver this benchmark knows")
            }
        }
        return StorageBenchmark(markdown: report(results, skipped: skipped, scales: scales))
    }

    static func measure(_ target: Target, buildDir: String, repo: String, workspace: String, scales: [Int], megabytes: Int) -> Result {
        let store = kernel(buildDir: buildDir, repo: repo, workspace: workspace, target: target, index: "ivf")
        let exactStore = kernel(buildDir: buildDir, repo: repo, workspace: workspace, target: target, index: "exact")
        let put = "\(target.driver).put", search = "\(target.driver).search"
        var result = Result(target: target)
        var random = Generator(state: 42)
        let started = Date()

        // 1. Ingest: Markdown documents of ~8 kB, chunked by LLMOSIngest's Chunker, 256 chunks a put.
        let chunker = Chunker()
        var ingested = 0, chunks = 0, batch: [JSONValue] = []
        var documentNumber = 0
        let ingestMs = timed {
            while ingested < megabytes << 20 {
                var text = "# Document \(documentNumber)\n\n"
                for section in 0..<4 {
                    text += "## Section \(section)\n\n"
                    for _ in 0..<3 { text += random.paragraph(50) + " d\(documentNumber)s\(section).\n\n" }
                }
                ingested += text.utf8.count
                for chunk in chunker.chunks(of: text, kind: .markdown) {
                    batch.append(["text": .string(chunk.text), "metadata": ["source": .string("doc\(documentNumber).md")]])
                    chunks += 1
                    if batch.count == 256 {
                        _ = call(store, put, ["collection": "corpus", "documents": .array(batch)])
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                documentNumber += 1
            }
            if !batch.isEmpty { _ = call(store, put, ["collection": "corpus", "documents": .array(batch)]) }
        }
        let ingestRate = Double(ingested) / 1_048_576 / (ingestMs / 1000)
        print(String(format: "storage (%@): ingested %.0f MB (%d chunks) at %.2f MB/s", target.driver, Double(ingested) / 1_048_576, chunks, ingestRate))

        // 2. Vectors: clustered 384-d vectors, 1,000 a put, grown to each scale in turn
        // (100,000, then 1,000,000: the same collection), measured at each.
        let dimensions = 384
        let centres = (0..<64).map { _ in (0..<dimensions).map { _ in random.float() } }
        func point(_ i: Int) -> [Float] { centres[i % 64].map { $0 + 0.6 * random.float() } }
        let queries = (0..<101).map { point($0 * 7 + 3) }
        let texts = (0..<101).map { _ in random.query() }
        var stored = 0

        // 3. Searches: 100 queries of each kind (the first of each, which builds the index, timed apart).
        // Up to `count` queries, but no more than a minute's worth once 10 are in (a slow
        // kind at a million chunks would otherwise take most of an hour); the row says how many.
        func measure(_ name: String, _ kernel: Kernel, queries count: Int = 100, _ input: (Int) -> JSONValue) -> [[String]] {
            var ids: [[String]] = []
            var first = 0.0
            var samples: [Double] = []
            var spent = 0.0
            for q in 0...count {
                var out: JSONValue = .null
                let ms = timed { out = call(kernel, search, input(q)) }
                if q == 0 { first = ms } else { samples.append(ms); spent += ms }
                ids.append(out["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
                if samples.count >= 10 && spent > 60_000 { break }
            }
            samples.sort()
            let label = samples.count < count ? "\(name) (\(samples.count) queries)" : name
            result.searches.append((label, AgentBenchmark.percentile(samples, 0.5), AgentBenchmark.percentile(samples, 0.99), first))
            print(String(format: "storage (%@): %@: p50 %.2f ms, p99 %.2f ms, first %.0f ms", target.driver, label, result.searches.last!.p50, result.searches.last!.p99, first))
            return ids
        }
        func vectorInput(_ q: Int, _ mode: String) -> JSONValue {
            ["collection": "vectors", "mode": .string(mode), "query": .string(texts[q]), "limit": 10, "vector": .array(queries[q].map { .double(Double($0)) })]
        }
        _ = measure("text, the ingested corpus (\(chunks) chunks)", store) { ["collection": "corpus", "mode": "text", "query": .string(texts[$0]), "limit": 10] }
        for scale in scales {
            let vectorMs = timed {
                for start in stride(from: stored, to: scale, by: 1_000) {
                    let documents: [JSONValue] = (start..<min(scale, start + 1_000)).map { i in
                        ["text": .string(random.paragraph(40) + " v\(i)"), "vector": .array(point(i).map { .double(Double($0)) })]
                    }
                    _ = call(store, put, ["collection": "vectors", "documents": .array(documents)])
                }
            }
            print(String(format: "storage (%@): %d vectors stored in %.0f s (%d in all)", target.driver, scale - stored, vectorMs / 1000, scale))
            result.stores.append((scale, scale - stored, vectorMs / 1000))
            stored = scale
            let label = scale >= 1_000_000 && scale % 1_000_000 == 0 ? "\(scale / 1_000_000)M" : scale % 1000 == 0 ? "\(scale / 1000)k" : "\(scale)"
            _ = measure("text, \(label) chunks", store) { ["collection": "vectors", "mode": "text", "query": .string(texts[$0]), "limit": 10] }
            // The exact scan reads every vector: fewer queries past 200,000, so the run stays in minutes.
            let exact = measure("vector, exact scan, \(label) × 384-d", exactStore, queries: scale > 200_000 ? 10 : 100) { vectorInput($0, "vector") }
            let approximate = measure("vector, IVF index (int8), \(label) × 384-d", store) { vectorInput($0, "vector") }
            _ = measure("hybrid (text + IVF, RRF), \(label) chunks", store) { vectorInput($0, "hybrid") }
            var found = 0, total = 0
            for (a, e) in zip(approximate.dropFirst(), exact.dropFirst()) { found += a.filter(Set(e).contains).count; total += e.count }
            result.recalls.append((scale, total > 0 ? Double(found) / Double(total) : 0))
        }
        result.ingestRate = ingestRate
        result.ingestedMB = Double(ingested) / 1_048_576
        result.chunks = chunks
        result.minutes = Date().timeIntervalSince(started) / 60
        return result
    }

    static func report(_ results: [Result], skipped: [String], scales: [Int]) -> String {
        var text = "Generated Markdown (a 20,000-word made-up vocabulary drawn with a skew like natural text's, ~8 kB documents of four sections; queries of two words), chunked by `LLMOSIngest.Chunker` "
        text += "(1,200 characters, 200 overlap) and stored through the kernel (`kernel.call`: schema, policy and audit each), 256 chunks a transaction; then a collection of chunks with clustered 384-d vectors (64 centres), 1,000 a put, grown to \(scales.map { String($0) }.joined(separator: " and then ")) and measured at each. "
        text += "The same data, queries and calls for each driver, one after the other in this run: "
        text += results.map { "**\($0.target.driver)** (\($0.target.note))" }.joined(separator: ", ") + ". "
        text += "100 queries of each kind after a first one, timed apart (it builds the IVF index, or rebuilds it once the collection has doubled; past 200,000 chunks the exact scan runs 10, and a kind stops after a minute of queries once 10 are in, as the cell says). Goal: ≤ 20 ms p50 at 1M chunks, recall@10 ≥ 0.95.\n\n"
        text += "| | " + results.map(\.target.driver).joined(separator: " | ") + " |\n|---|" + results.map { _ in "---|" }.joined() + "\n"
        text += "| ingest (MB/s, lexical) | " + results.map { String(format: "**%.2f** (%.0f MB, %d chunks)", $0.ingestRate, $0.ingestedMB, $0.chunks) }.joined(separator: " | ") + " |\n"
        for (i, scale) in scales.enumerated() {
            text += "| vectors stored to reach \(scale) | " + results.map { r in i < r.stores.count ? String(format: "%d in %.0f s", r.stores[i].added, r.stores[i].seconds) : "" }.joined(separator: " | ") + " |\n"
            text += "| IVF recall@10 vs exact at \(scale) | " + results.map { r in i < r.recalls.count ? String(format: "**%.3f**", r.recalls[i].recall) : "" }.joined(separator: " | ") + " |\n"
        }
        text += "| the whole run | " + results.map { String(format: "%.1f min", $0.minutes) }.joined(separator: " | ") + " |\n\n"
        text += "| search (p50 / p99; first) | " + results.map(\.target.driver).joined(separator: " | ") + " |\n|---|" + results.map { _ in "---|" }.joined() + "\n"
        for (i, search) in (results.first?.searches ?? []).enumerated() {
            func split(_ label: String) -> (name: String, sampled: String) {
                guard label.hasSuffix(" queries)"), let cut = label.range(of: " (", options: .backwards) else { return (label, "") }
                return (String(label[..<cut.lowerBound]), String(label[cut.lowerBound...]))
            }
            let name = split(search.name).name
            text += "| \(name) | " + results.map { r in
                guard i < r.searches.count else { return "" }
                let s = r.searches[i]
                return String(format: "%.2f / %.2f ms; %.0f ms", s.p50, s.p99, s.first) + split(s.name).sampled
            }.joined(separator: " | ") + " |\n"
        }
        for line in skipped { text += "\n\(line)\n" }
        return text
    }
}

/// A throwaway PostgreSQL server for the benchmark (scripts/postgres-scratch, durable:
/// fsync and synchronous_commit on), stopped when the benchmark is done with it.
final class ScratchPostgres {
    let process: Process
    let stdin: Pipe
    let target: StorageBenchmark.Target

    private init(process: Process, stdin: Pipe, target: StorageBenchmark.Target) {
        self.process = process
        self.stdin = stdin
        self.target = target
    }

    static func start() -> ScratchPostgres? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: repoRoot() + "/scripts/postgres-scratch")
        var environment = ProcessInfo.processInfo.environment
        environment["POSTGRES_SCRATCH_DURABLE"] = "1"
        process.environment = environment
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        do { try process.run() } catch { return nil }
        var line: [UInt8] = []
        while true {
            let byte = stdout.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { return nil }
            if byte.first == 0x0A { break }
            line.append(contentsOf: byte)
        }
        guard let info = try? JSON.parse(String(decoding: line, as: UTF8.self)), let port = info["port"]?.int64Value else { return nil }
        setenv("LLMOS_POSTGRES_PASSWORD", info["password"]?.stringValue ?? "", 1)
        let target = StorageBenchmark.Target(
            driver: "postgres", grants: ["net.connect=postgresql://127.0.0.1:\(port)", "env=LLMOS_POSTGRES_PASSWORD"],
            config: ["host": "127.0.0.1", "port": .int(port), "user": "llmos", "database": "llmos", "password_env": "LLMOS_POSTGRES_PASSWORD",
                     "sslmode": "disable", "schema": "bench"],
            note: "PostgreSQL 15 on loopback TCP, fsync on, synchronous_commit on")
        return ScratchPostgres(process: process, stdin: stdin, target: target)
    }

    static func repoRoot() -> String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
