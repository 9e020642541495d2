import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search a collection and print the ranked passages with their sources.",
        discussion: """
        Modes: text (BM25 keyword ranking), vector (cosine similarity of embeddings; needs \
        an embedding model, and a collection ingested with it) and hybrid (both, fused by \
        reciprocal rank). The default is hybrid when an embedding model is in use, else text. Examples:
          llmos search "write-ahead log"
          llmos search "how do drivers crash safely" -k 3 --mode vector
          llmos search wal --json | jq '.results[].source'
        """)
    @OptionGroup var host: HostOptions
    @OptionGroup var store: StorageOptions
    @Argument(help: "What to look for.") var query: String
    @Option(help: "text, vector or hybrid.") var mode: String?
    @Option(name: .short, help: "How many passages.") var k = 5
    @Flag(help: "Print the driver's result as JSON.") var json = false

    func validate() throws {
        if let mode, !["text", "vector", "hybrid"].contains(mode) { throw ValidationError("--mode \(mode): text, vector or hybrid") }
        guard (1...100).contains(k) else { throw ValidationError("-k: between 1 and 100") }
    }

    func run() throws {
        try reportingErrors {
            let kernel = try store.kernel(host, writing: false)
            let chosen = mode ?? (store.embed == nil ? "text" : "hybrid")
            let output: JSONValue
            do {
                output = try kernel.storageCall("\(store.storage).search", ["collection": .string(store.collection), "mode": .string(chosen),
                                                                             "query": .string(query), "limit": .int(Int64(k))])
            } catch let error as LLMOSError where error.code == .notFound {
                throw CommandFailure(message: "\(error.message)\n  store files with `llmos ingest PATH --collection \(store.collection)` first")
            }
            if json { print(output.serialized()); return }
            for warning in output["warnings"]?.arrayValue ?? [] { Terminal.warn(warning.stringValue ?? "\(warning)") }
            let results = output["results"]?.arrayValue ?? []
            if results.isEmpty { print("nothing in \(store.collection) matches \"\(query)\""); return }
            for (index, result) in results.enumerated() {
                let metadata = result["metadata"]
                var source = result["source"]?.stringValue ?? metadata?["source"]?.stringValue ?? result["id"]?.stringValue ?? "?"
                if let first = metadata?["line_start"]?.int64Value, let last = metadata?["line_end"]?.int64Value { source += ":\(first)-\(last)" }
                let score = result["score"]?.doubleValue.map { String(format: "%.3f", $0) } ?? ""
                print("\(index + 1). \(source)  (\(score))")
                if let section = metadata?["section"]?.stringValue { print("   § \(section)") }
                let text = (result["text"]?.stringValue ?? "").split(whereSeparator: \.isNewline).joined(separator: " ")
                print("   " + (text.count > 300 ? String(text.prefix(300)) + "…" : text))
            }
        }
    }
}
