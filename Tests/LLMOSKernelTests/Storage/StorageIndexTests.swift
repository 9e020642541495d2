import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// The storage drivers' IVF index over int8 codes (StorageKit's VectorIndex): recall against
/// exact search, and that each driver keeps it in step with writes — its own, and another
/// connection's. Clustered synthetic 384-d vectors, a fixed seed.
@Suite("storage: the approximate vector index") struct StorageIndexTests {
    static let dimensions = 384

    /// `count` points around 40 random centres (a stand-in for topics), deterministic.
    static func clustered(_ count: Int, seed: UInt64 = 7) -> [[Float]] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        let centres = (0..<40).map { _ in (0..<dimensions).map { _ in next() } }
        return (0..<count).map { i in centres[i % 40].map { $0 + 0.6 * next() } }
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in 0..<a.count { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    func store(_ vectors: [[Float]], index: String, driver: StorageDriverUnderTest = .sqlite) throws -> StorageHarness {
        let harness = try StorageHarness(driver, extraConfig: ["vector_index": .string(index), "index_threshold": 1_000])
        for start in stride(from: 0, to: vectors.count, by: 5_000) {
            let documents: [JSONValue] = (start..<min(vectors.count, start + 5_000)).map { i in
                ["id": .string("d\(i)"), "text": .string("document \(i)"), "metadata": ["n": .int(Int64(i))],
                 "vector": .array(vectors[i].map { .double(Double($0)) })]
            }
            try harness.call("put", ["collection": "v", "documents": .array(documents)])
        }
        return harness
    }

    func search(_ harness: StorageHarness, _ query: [Float], limit: Int = 10, filter: JSONValue? = nil) throws -> [String] {
        var input: JSONObject = ["collection": "v", "mode": "vector", "vector": .array(query.map { .double(Double($0)) }), "limit": .int(Int64(limit))]
        if let filter { input["filter"] = filter }
        return try harness.searchIDs(.object(input))
    }

    @Test func recallAtTenAgainstExactSearch() throws {
        let vectors = Self.clustered(20_000)
        let harness = try store(vectors, index: "auto")
        defer { harness.removeWorkspace() }
        // The reference: the same database scanned exactly (checked against a cosine computed here).
        let exactStore = try StorageHarness(.sqlite, workspace: harness.workspace, extraConfig: ["vector_index": "exact"])
        let queries = Self.clustered(50, seed: 99)
        let first = vectors.indices.max { Self.cosine(queries[0], vectors[$0]) < Self.cosine(queries[0], vectors[$1]) }!
        #expect(try search(exactStore, queries[0], limit: 1) == ["d\(first)"])
        var found = 0
        for query in queries {
            let exact = Set(try search(exactStore, query))
            let got = try search(harness, query)
            #expect(got.count == 10)
            found += got.filter(exact.contains).count
        }
        let recall = Double(found) / Double(queries.count * 10)
        #expect(recall >= 0.95, "recall@10 of the IVF index against exact search: \(recall)")
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func theIndexFollowsWritesAndScoresAreExact(_ driver: StorageDriverUnderTest) throws {
        let vectors = Self.clustered(3_000)
        let harness = try store(vectors, index: "ivf", driver: driver)
        defer { harness.removeWorkspace() }
        let query = vectors[17]
        let first = try harness.call("search", ["collection": "v", "mode": "vector", "vector": .array(query.map { .double(Double($0)) }), "limit": 3])
        let best = first["results"]?.arrayValue?.first
        #expect(best?["id"]?.stringValue == "d17")
        #expect(abs((best?["score"]?.doubleValue ?? 0) - 1) < 1e-5, "re-ranked exactly: \(String(describing: best))")
        // A deleted document is never returned; a new one is found at once.
        try harness.call("delete", ["collection": "v", "ids": ["d17"]])
        #expect(try !search(harness, query).contains("d17"))
        let fresh = query.map { $0 * 2 }
        try harness.call("put", ["collection": "v", "documents": [["id": "new", "text": "new", "vector": .array(fresh.map { .double(Double($0)) })]]])
        #expect(try search(harness, query).first == "new")
        // A replaced vector moves in the index (taken in without a rebuild, like the put above).
        let moved = vectors[900].map { -$0 }
        try harness.call("put", ["collection": "v", "documents": [["id": "d5", "text": "moved", "vector": .array(moved.map { .double(Double($0)) })]]])
        #expect(try search(harness, moved, limit: 1) == ["d5"])
        #expect(try !search(harness, vectors[5]).contains("d5"), "not found where it was")
        // A filtered search scans exactly, and the filter holds.
        let filtered = try search(harness, query, filter: ["n": ["$lt": 100]])
        #expect(!filtered.isEmpty && filtered.allSatisfy { Int($0.dropFirst()).map { $0 < 100 } ?? false }, "\(filtered)")
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func exactModeAndAFreshConnectionAgree(_ driver: StorageDriverUnderTest) throws {
        let vectors = Self.clustered(2_000)
        let harness = try store(vectors, index: "ivf", driver: driver)
        defer { harness.removeWorkspace() }
        let exact = try StorageHarness(driver, workspace: harness.workspace, extraConfig: ["vector_index": "exact"])
        for query in Self.clustered(5, seed: 3) {
            let a = try search(harness, query, limit: 1), b = try search(exact, query, limit: 1)
            #expect(a == b, "the nearest neighbour is the same: \(a) \(b)")
        }
        // A write through the other connection reaches the index (sqlite: PRAGMA
        // data_version; postgres: the collection's version, bumped by every write).
        try exact.call("delete", ["collection": "v", "ids": .strings(vectors.indices.map { "d\($0)" })])
        #expect(try search(harness, vectors[0]).isEmpty)
        let bad = try? StorageHarness(driver, extraConfig: ["vector_index": "fast"]).call("stats", [:])
        #expect(bad == nil, "an unknown vector_index is refused")
    }
}
