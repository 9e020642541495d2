// search: text (FTS5, BM25), vector (exact cosine over every vector that passes the
// filter) and hybrid (both lists fused by reciprocal rank fusion).
import CSQLite
import LLMOSDriverSDK
import LLMOSJSON

extension StoreState {
    func search(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard let mode = input["mode"]?.stringValue, ["text", "vector", "hybrid"].contains(mode) else {
            throw .invalidArgument("mode: expected \"text\", \"vector\" or \"hybrid\"")
        }
        let limit = Int(input["limit"]?.int64Value ?? 10)
        guard (1...1000).contains(limit) else { throw .invalidArgument("limit: must be from 1 to 1000, got \(limit)") }
        let rrfK = Double(input["rrf_k"]?.int64Value ?? 60)
        guard rrfK >= 1 && rrfK <= 100_000 else { throw .invalidArgument("rrf_k: must be from 1 to 100000") }
        let query = input["query"]?.stringValue
        if mode != "vector" && query == nil { throw .invalidArgument("query: \(mode) search needs the query text") }
        var queryVector: [Float]? = nil
        if let given = input["vector"] { queryVector = try Self.vector(given, field: "vector") }
        let filter = try CompiledFilter.compile(input["filter"])

        let db = try open(call)
        let collection = try existingCollection(input, db)
        var warnings: [JSONValue] = []

        if queryVector == nil, mode != "text", let query {
            if let tool = configuration.embedTool {
                queryVector = try embed([query], tool: tool, call).0.first
            } else if mode == "vector" {
                throw .unsupported("vector: the sqlite driver computes no embeddings itself and has no embed_tool configured; pass the query's vector, use mode text, or configure embed_tool (e.g. --config 'sqlite={\"embed_tool\": \"local.embed\"}')")
            }
        }
        if mode == "vector" && queryVector == nil {
            throw .invalidArgument("vector: vector search needs a query vector or a query to embed")
        }
        if let queryVector, let dimensions = collection.dimensions, dimensions != queryVector.count {
            throw .invalidArgument("vector: has \(queryVector.count) dimensions, but the collection \(collection.name) holds vectors of \(dimensions)")
        }

        var usedMode = mode
        var ranked: [Hit] = []
        switch mode {
        case "text":
            ranked = try textSearch(query!, collection, filter, limit: limit, db, warnings: &warnings).enumerated().map { Hit(pk: $1.pk, score: $1.score, textRank: $0 + 1) }
        case "vector":
            ranked = try vectorSearch(queryVector!, collection, filter, limit: limit, db, call).enumerated().map { Hit(pk: $1.pk, score: $1.score, vectorRank: $0 + 1) }
        default:
            let candidates = min(max(limit * 5, Self.hybridCandidates), 1000)
            let text = try textSearch(query!, collection, filter, limit: candidates, db, warnings: &warnings)
            guard let queryVector else {
                warnings.append("hybrid search without a query vector (none given, and no embed_tool configured): ranked by text alone")
                usedMode = "text"
                ranked = text.prefix(limit).enumerated().map { Hit(pk: $1.pk, score: $1.score, textRank: $0 + 1) }
                break
            }
            if collection.dimensions == nil {
                warnings.append(.string("the collection \(collection.name) has no vectors: ranked by text alone"))
            }
            let vector = try vectorSearch(queryVector, collection, filter, limit: candidates, db, call)
            ranked = Self.fuse(text: text.map(\.pk), vector: vector.map(\.pk), k: rrfK, limit: limit)
        }

        let rows = try fetch(ranked.map(\.pk), db)
        var results: [JSONValue] = []
        for hit in ranked {
            guard let row = rows[hit.pk] else { continue }
            var object: JSONObject = ["id": .string(row.id), "text": .string(row.text), "score": .double(hit.score), "metadata": row.metadata]
            if let source = row.metadata["source"]?.stringValue { object["source"] = .string(source) }
            if usedMode == "hybrid" {
                let textRank: JSONValue = hit.textRank.map { JSONValue.int(Int64($0)) } ?? .null
                let vectorRank: JSONValue = hit.vectorRank.map { JSONValue.int(Int64($0)) } ?? .null
                object["ranks"] = ["text": textRank, "vector": vectorRank]
            }
            results.append(.object(object))
        }
        var output: JSONObject = ["results": .array(results), "mode": .string(usedMode)]
        if !warnings.isEmpty { output["warnings"] = .array(warnings) }
        return .object(output)
    }

    /// Reciprocal rank fusion: each list gives a document 1/(k + rank), ranks from 1; a
    /// document missing from a list gets nothing from it. Ties: the better text rank,
    /// then the better vector rank.
    static func fuse(text: [Int64], vector: [Int64], k: Double, limit: Int) -> [Hit] {
        var entries: [Int64: (score: Double, textRank: Int?, vectorRank: Int?)] = [:]
        for (i, pk) in text.enumerated() {
            entries[pk, default: (0, nil, nil)].score += 1 / (k + Double(i + 1))
            entries[pk]!.textRank = i + 1
        }
        for (i, pk) in vector.enumerated() {
            entries[pk, default: (0, nil, nil)].score += 1 / (k + Double(i + 1))
            entries[pk]!.vectorRank = i + 1
        }
        let sorted = entries.sorted { a, b in
            if a.value.score != b.value.score { return a.value.score > b.value.score }
            let at = a.value.textRank ?? Int.max, bt = b.value.textRank ?? Int.max
            if at != bt { return at < bt }
            let av = a.value.vectorRank ?? Int.max, bv = b.value.vectorRank ?? Int.max
            if av != bv { return av < bv }
            return a.key < b.key
        }
        return sorted.prefix(limit).map { Hit(pk: $0.key, score: $0.value.score, textRank: $0.value.textRank, vectorRank: $0.value.vectorRank) }
    }

    /// BM25 through FTS5, best first; score is -bm25 (higher is better).
    func textSearch(_ query: String, _ collection: StoredCollection, _ filter: CompiledFilter, limit: Int, _ db: Database,
                    warnings: inout [JSONValue]) throws(DriverError) -> [(pk: Int64, score: Double)] {
        guard let match = TextQuery.match(query) else {
            warnings.append("the query has no words to search for by text")
            return []
        }
        return try db.query("""
            SELECT d.pk, -bm25(documents_fts) FROM documents_fts JOIN documents d ON d.pk = documents_fts.rowid
            WHERE documents_fts MATCH ? AND d.collection = ? AND (\(filter.sql))
            ORDER BY bm25(documents_fts), d.pk LIMIT ?
            """, [.text(match), .integer(collection.id)] + filter.values + [.integer(Int64(limit))]) { (pk: $0.int64(0), score: $0.double(1)) }
    }

    /// Exact cosine similarity against every vector of the collection that passes the
    /// filter, read straight from SQLite's row buffer (no copy), best first.
    func vectorSearch(_ query: [Float], _ collection: StoredCollection, _ filter: CompiledFilter, limit: Int, _ db: Database,
                      _ call: CallContext) throws(DriverError) -> [(pk: Int64, score: Double)] {
        if filter.sql == CompiledFilter.everything.sql, let index = try vectorIndex(collection, dimensions: query.count, db) {
            let pks = index.candidates(for: query, nprobe: configuration.nprobe > 0 ? configuration.nprobe : index.defaultProbes,
                                       candidates: max(limit * 8, 100))
            // Exact cosines of the candidates, from their Float32 BLOBs.
            guard !pks.isEmpty else { return [] }
            let placeholders = Array(repeating: "?", count: pks.count).joined(separator: ",")
            return try exactScores(query, sql: "SELECT d.pk, d.vector, d.norm FROM documents d WHERE d.pk IN (\(placeholders))",
                                   values: pks.map { .integer($0) }, limit: limit, call)
        }
        return try exactScores(query, sql: """
            SELECT d.pk, d.vector, d.norm FROM documents d
            WHERE d.collection = ? AND d.vector IS NOT NULL AND (\(filter.sql))
            """, values: [.integer(collection.id)] + filter.values, limit: limit, call)
    }

    /// The collection's IVF index, built (or rebuilt after a write) when the configuration
    /// and the collection's size call for one; nil: scan exactly.
    func vectorIndex(_ collection: StoredCollection, dimensions: Int, _ db: Database) throws(DriverError) -> VectorIndex? {
        guard configuration.vectorIndex != "exact" else { return nil }
        let version = try db.dataVersion()
        if let cached = vectorIndexes[collection.id], cached.writes == db.writes, cached.dataVersion == version,
           cached.index.dimensions == dimensions {
            return cached.index
        }
        vectorIndexes[collection.id] = nil
        let count = try db.query("SELECT count(*) FROM documents WHERE collection = ? AND vector IS NOT NULL", [.integer(collection.id)]) { $0.int64(0) }.first ?? 0
        guard count > 0, configuration.vectorIndex == "ivf" || count >= Int64(configuration.indexThreshold) else { return nil }
        var vectors: [(rowid: Int64, values: [Float])] = []
        vectors.reserveCapacity(Int(count))
        try db.forEach("SELECT pk, vector FROM documents WHERE collection = ? AND vector IS NOT NULL", [.integer(collection.id)]) { row throws(DriverError) in
            if let values = row.withBlob(1, { Vectors.values($0) }), values.count == dimensions { vectors.append((row.int64(0), values)) }
        }
        let index = VectorIndex(dimensions: dimensions, vectors: vectors)
        vectorIndexes[collection.id] = (index, db.writes, version)
        return index
    }

    /// Exact cosine similarity of `query` against the vectors the query selects (pk, vector, norm).
    func exactScores(_ query: [Float], sql: String, values: [SQLValue], limit: Int,
                     _ call: CallContext) throws(DriverError) -> [(pk: Int64, score: Double)] {
        guard let db = database else { return [] }
        let queryNorm = Vectors.norm(query)
        let dimensions = query.count
        // The query in a buffer of its own, so the scan's closure needs no nested
        // withUnsafeBytes (whose rethrows would lose the typed error).
        let q = UnsafeMutableBufferPointer<Float>.allocate(capacity: dimensions)
        defer { q.deallocate() }
        _ = q.initialize(from: query)
        let qBase = UnsafeRawPointer(q.baseAddress!)
        var top = TopK(limit: limit)
        var scanned = 0
        var cancelled = false
        try db.forEach(sql, values) { row throws(DriverError) in
            scanned += 1
            if scanned % 65_536 == 0, call.isCancelled { cancelled = true }
            if cancelled { return }
            let norm = row.double(2)
            guard norm > 0 else { return }
            let dot = row.withBlob(1) { blob -> Float? in
                guard blob.count == dimensions * 4, let base = blob.baseAddress else { return nil }
                return Vectors.dot(qBase, base, count: dimensions)
            }
            guard let dot else { return }
            top.offer(Double(dot) / (Double(queryNorm) * norm), row.int64(0))
        }
        if cancelled { throw DriverError.cancelled("search: cancelled") }
        return top.sorted.map { (pk: $0.rowid, score: $0.score) }
    }

    struct Hit {
        var pk: Int64
        var score: Double
        var textRank: Int? = nil
        var vectorRank: Int? = nil
    }

    struct Row {
        var id: String
        var text: String
        var metadata: JSONValue
    }

    func fetch(_ pks: [Int64], _ db: Database) throws(DriverError) -> [Int64: Row] {
        guard !pks.isEmpty else { return [:] }
        let list = JSONValue.array(pks.map { .int($0) }).serialized()
        var rows: [Int64: Row] = [:]
        try db.forEach("SELECT pk, id, text, metadata FROM documents WHERE pk IN (SELECT value FROM json_each(?))", [.text(list)]) { row throws(DriverError) in
            rows[row.int64(0)] = Row(id: row.text(1), text: row.text(2), metadata: Self.metadata(row.text(3)))
        }
        return rows
    }
}
