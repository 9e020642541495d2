// The storage benchmark (issue 7): ingest throughput on a generated corpus, and search
// latency at scale for text, 384-d vectors (exact scan and the IVF index, with its
// recall@10 against exact) and hybrid — every call through the kernel (policy check and
// audit), the way agents and `llmos ingest` use the store. `llmos-bench --storage`;
// `--storage-scale N` sets the vector collection's size (default 100,000; the issue's
// goal is stated at 1,000,000), `--storage-mb M` the ingest corpus (default 100 MB).
import Foundation
import LLMOSIngest
import LLMOSJSON
import LLMOSKernel

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

    static func kernel(buildDir: String, repo: String, workspace: String, index: String) -> Kernel {
        let context = PolicyContext(workspace: workspace)
        let grants = ["fs.read=\(workspace)/bench.sqlite3*", "fs.write=\(workspace)/bench.sqlite3*", "storage.read=*", "storage.write=*"]
        var configuration = KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink())
        configuration.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(grants.map { try! PolicyParser.rule(fromFlag: $0, action: .allow, context: context) }), context: context)
        configuration.workspace = workspace
        configuration.driverConfig = ["sqlite": ["path": "bench.sqlite3", "synchronous": "normal", "vector_index": .string(index)]]
        let kernel = Kernel(configuration: configuration)
        try! kernel.load(manifestAt: repo + "/manifests/sqlite.yaml")
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

    static func run(buildDir: String, repo: String, scale: Int = 100_000, megabytes: Int = 100) -> StorageBenchmark {
        let workspace = NSTemporaryDirectory() + "llmos-bench-storage-\(getpid())"
        try? FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let store = kernel(buildDir: buildDir, repo: repo, workspace: workspace, index: "ivf")
        let exactStore = kernel(buildDir: buildDir, repo: repo, workspace: workspace, index: "exact")
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
                        _ = call(store, "sqlite.put", ["collection": "corpus", "documents": .array(batch)])
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                documentNumber += 1
            }
            if !batch.isEmpty { _ = call(store, "sqlite.put", ["collection": "corpus", "documents": .array(batch)]) }
        }
        let ingestRate = Double(ingested) / 1_048_576 / (ingestMs / 1000)
        print(String(format: "storage: ingested %.0f MB (%d chunks) at %.2f MB/s", Double(ingested) / 1_048_576, chunks, ingestRate))

        // 2. Vectors: `scale` chunks with clustered 384-d vectors, 1,000 a put.
        let dimensions = 384
        let centres = (0..<64).map { _ in (0..<dimensions).map { _ in random.float() } }
        func point(_ i: Int) -> [Float] { centres[i % 64].map { $0 + 0.6 * random.float() } }
        let vectorMs = timed {
            for start in stride(from: 0, to: scale, by: 1_000) {
                let documents: [JSONValue] = (start..<min(scale, start + 1_000)).map { i in
                    ["text": .string(random.paragraph(40) + " v\(i)"), "vector": .array(point(i).map { .double(Double($0)) })]
                }
                _ = call(store, "sqlite.put", ["collection": "vectors", "documents": .array(documents)])
            }
        }
        print(String(format: "storage: %d vectors stored in %.0f s", scale, vectorMs / 1000))

        // 3. Searches: 100 queries of each kind (the first of each, which builds the index, timed apart).
        var rows: [String] = []
        func measure(_ name: String, _ kernel: Kernel, _ input: (Int) -> JSONValue) -> [[String]] {
            var ids: [[String]] = []
            var first = 0.0
            var samples: [Double] = []
            for q in 0..<101 {
                var out: JSONValue = .null
                let ms = timed { out = call(kernel, "sqlite.search", input(q)) }
                if q == 0 { first = ms } else { samples.append(ms) }
                ids.append(out["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
            }
            samples.sort()
            rows.append(String(format: "| %@ | %.2f ms | %.2f ms | %.0f ms |", name, AgentBenchmark.percentile(samples, 0.5), AgentBenchmark.percentile(samples, 0.99), first))
            print(rows.last!)
            return ids
        }
        let queries = (0..<101).map { point($0 * 7 + 3) }
        let texts = (0..<101).map { _ in random.query() }
        func vectorInput(_ q: Int, _ mode: String) -> JSONValue {
            ["collection": "vectors", "mode": .string(mode), "query": .string(texts[q]), "limit": 10, "vector": .array(queries[q].map { .double(Double($0)) })]
        }
        _ = measure("text (BM25), \(chunks) chunks", store) { ["collection": "corpus", "mode": "text", "query": .string(texts[$0]), "limit": 10] }
        _ = measure("text (BM25), \(scale) chunks", store) { ["collection": "vectors", "mode": "text", "query": .string(texts[$0]), "limit": 10] }
        let exact = measure("vector, exact scan, \(scale) × 384-d", exactStore) { vectorInput($0, "vector") }
        let approximate = measure("vector, IVF index (int8), \(scale) × 384-d", store) { vectorInput($0, "vector") }
        _ = measure("hybrid (BM25 + IVF, RRF), \(scale) chunks", store) { vectorInput($0, "hybrid") }
        var found = 0, total = 0
        for (a, e) in zip(approximate.dropFirst(), exact.dropFirst()) { found += a.filter(Set(e).contains).count; total += e.count }
        let recall = total > 0 ? Double(found) / Double(total) : 0
        let minutes = Date().timeIntervalSince(started) / 60

        var text = "Generated Markdown (a 20,000-word made-up vocabulary drawn with a skew like natural text's, ~8 kB documents of four sections; queries of two words), chunked by `LLMOSIngest.Chunker` "
        text += "(1,200 characters, 200 overlap) and stored through the kernel (`kernel.call`: schema, policy and audit each) into the sqlite "
        text += "driver (synchronous=normal), 256 chunks a transaction; then \(scale) chunks with clustered 384-d vectors (64 centres). "
        text += "100 queries of each kind after a first one (timed apart: it builds the IVF index). Goal: ≤ 20 ms p50 at 1M chunks, recall@10 ≥ 0.95.\n\n"
        text += String(format: "- ingest: %.0f MB, %d chunks, **%.2f MB/s** (lexical: no embedding model in the loop)\n", Double(ingested) / 1_048_576, chunks, ingestRate)
        text += String(format: "- vectors: %d stored in %.0f s; IVF recall@10 against the exact scan: **%.3f**\n", scale, vectorMs / 1000, recall)
        text += String(format: "- the whole storage run: %.1f minutes\n\n", minutes)
        text += "| search | p50 | p99 | first (builds the index) |\n|---|---|---|---|\n" + rows.joined(separator: "\n") + "\n"
        text += "\npostgres: not in this run (the driver is not on main yet).\n"
        return StorageBenchmark(markdown: text)
    }
}
