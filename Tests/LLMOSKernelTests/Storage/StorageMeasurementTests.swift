import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// Opt-in measurements of the sqlite driver through the kernel (not a benchmark harness,
// and nothing here asserts a time): LLMOS_STORAGE_MEASURE=N ingests N documents of ~500
// bytes with 384-dimension vectors, in puts of 5,000, then prints ingest throughput and
// search p50/p99 for text, vector and hybrid over 50 queries.
//
//   LLMOS_STORAGE_MEASURE=20000 swift test --filter StorageMeasurementTests

fileprivate let measureCount = Int(ProcessInfo.processInfo.environment["LLMOS_STORAGE_MEASURE"] ?? "") ?? 0

@Suite struct StorageMeasurementTests {
    @Test(.enabled(if: measureCount > 0)) func ingestAndSearchLatency() throws {
        let store = try StorageHarness(.sqlite, extraConfig: ["synchronous": "normal"])
        defer { store.removeWorkspace() }
        let words = (0..<2000).map { "w\($0)" }
        var state: UInt64 = 42
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 11 }
        func randomVector() -> JSONValue { .array((0..<384).map { _ in .double(Double(next() % 20001) / 10000 - 1) }) }
        func randomText() -> String { (0..<70).map { _ in words[Int(next() % UInt64(words.count))] }.joined(separator: " ") }

        var bytes = 0
        var ingestNs: UInt64 = 0
        var done = 0
        while done < measureCount {
            let n = min(5000, measureCount - done)
            var documents: [JSONValue] = []
            for i in 0..<n {
                let text = randomText()
                bytes += text.utf8.count
                documents.append(["id": .string("d\(done + i)"), "text": .string(text), "vector": randomVector(), "metadata": ["n": .int(Int64(done + i))]])
            }
            let input = JSONValue.object(["collection": "m", "documents": .array(documents)]).serialized()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try store.kernel.call("sqlite.put", input: input)
            ingestNs += DispatchTime.now().uptimeNanoseconds - start
            done += n
        }
        let seconds = Double(ingestNs) / 1e9
        print("storage measure: ingested \(done) documents (\(bytes / 1_000_000) MB of text, 384-d vectors) in \(String(format: "%.2f", seconds)) s: \(String(format: "%.2f", Double(bytes) / 1e6 / seconds)) MB/s of text, \(Int(Double(done) / seconds)) docs/s")

        for mode in ["text", "vector", "hybrid"] {
            var times: [Double] = []
            for _ in 0..<50 {
                var input: JSONObject = ["collection": "m", "mode": .string(mode), "limit": 10]
                if mode != "vector" { input["query"] = .string((0..<4).map { _ in words[Int(next() % UInt64(words.count))] }.joined(separator: " ")) }
                if mode != "text" { input["vector"] = randomVector() }
                let text = JSONValue.object(input).serialized()
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try store.kernel.call("sqlite.search", input: text)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            print("storage measure: \(mode) search over \(done) documents: p50 \(String(format: "%.2f", times[times.count / 2])) ms, p99 \(String(format: "%.2f", times[times.count * 99 / 100])) ms")
        }
    }
}
