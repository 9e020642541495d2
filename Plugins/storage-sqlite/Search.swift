// search: text (FTS5, BM25), vector (exact cosine over every vector that passes the
// filter) and hybrid (both lists fused by reciprocal rank fusion).
import CSQLite
import LLMOSDriverSDK
import LLMOSJSON
import StorageKit

extension StoreState {
    func search(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let request = try StorageInput.search(input)
        let mode = request.mode, limit = request.limit, rrfK = request.rrfK, query = request.query
        var queryVector = request.vector
        let filter = try CompiledFilter.compile(input["filter"])

        let db = try open(call)
        let collection = try existingCollection(input, db)
        var warnings: [JSONValue] = []

        if queryVector == nil, mode != "text", let query {
            if let tool = configuration.embedTool {
                queryVector = try StorageInput.embed([query], tool: tool, driver: "sqlite", call).0.first
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
        var ranked: [RankedHit] = []
        switch mode {
        case "text":
            ranked = try textSearch(query!, collection, filter, limit: limit, db, warnings: &warnings).enumerated().map { RankedHit(key: $1.pk, score: $1.score, textRank: $0 + 1) }
        case "vector":
            ranked = try vectorSearch(queryVector!, collection, filter, limit: limit, db, call).enumerated().map { RankedHit(key: $1.pk, score: $1.score, vectorRank: $0 + 1) }
        default:
            let candidates = request.hybridCandidates
            let text = try textSearch(query!, collection, filter, limit: candidates, db, warnings: &warnings)
            guard let queryVector else {
                warnings.append("hybrid search without a query vector (none given, and no embed_tool configured): ranked by text alone")
                usedMode = "text"
                ranked = text.prefix(limit).enumerated().map { RankedHit(key: $1.pk, score: $1.score, textRank: $0 + 1) }
                break
            }
            if collection.dimensions == nil {
                warnings.append(.string("the collection \(collection.name) has no vectors: ranked by text alone"))
            }
            let vector = try vectorSearch(queryVector, collection, filter, limit: candidates, db, call)
            ranked = RankFusion.fuse(text: text.map(\.pk), vector: vector.map(\.pk), k: rrfK, limit: limit)
        }

        let rows = try fetch(ranked.map(\.key), db)
        let results: [JSONValue] = ranked.compactMap { hit in
            rows[hit.key].map { RankFusion.result(hit, id: $0.id, text: $0.text, metadata: $0.metadata, hybrid: usedMode == "hybrid") }
        }
        var output: JSONObject = ["results": .array(results), "mode": .string(usedMode)]
        if !warnings.isEmpty { output["warnings"] = .array(warnings) }
        return .object(output)
    }

    /// BM25 through FTS5, best first; score is -bm25 (higher is better).
    func textSearch(_ query: String, _ collection: StoredCollection, _ filter: CompiledFilter, limit: Int, _ db: Database,
                    warnings: inout [JSONValue]) throws(DriverError) -> [(pk: Int64, score: Double)] {
        guard let match = QueryTerms.fts5Match(query) else {
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
            rows[row.int64(0)] = Row(id: row.text(1), text: row.text(2), metadata: StorageInput.metadata(row.text(3)))
        }
        return rows
    }
}
