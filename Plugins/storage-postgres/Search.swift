// search on PostgreSQL: text (tsvector @@ tsquery through the GIN index, ranked by
// IDF-weighted ts_rank), vector (exact cosine in the driver over the rows streamed from
// the server, or the IVF index's candidates re-ranked exactly) and hybrid (RRF).
import Glibc
import LLMOSDriverSDK
import LLMOSJSON
import StorageKit

extension PGStoreState {
    func search(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let request = try StorageInput.search(input)
        var queryVector = request.vector
        let collection = try existingCollection(input)
        var warnings: [JSONValue] = []

        if queryVector == nil, request.mode != "text", let query = request.query {
            if let tool = configuration.embedTool {
                queryVector = try StorageInput.embed([query], tool: tool, driver: "postgres", call).0.first
            } else if request.mode == "vector" {
                throw .unsupported("vector: the postgres driver computes no embeddings itself and has no embed_tool configured; pass the query's vector, use mode text, or configure embed_tool (e.g. --config 'postgres={\"embed_tool\": \"local.embed\"}')")
            }
        }
        if request.mode == "vector" && queryVector == nil {
            throw .invalidArgument("vector: vector search needs a query vector or a query to embed")
        }
        if let queryVector, let dimensions = collection.dimensions, dimensions != queryVector.count {
            throw .invalidArgument("vector: has \(queryVector.count) dimensions, but the collection \(collection.name) holds vectors of \(dimensions)")
        }

        var usedMode = request.mode
        var ranked: [RankedHit] = []
        switch request.mode {
        case "text":
            ranked = try textSearch(request.query!, collection, input["filter"], limit: request.limit, warnings: &warnings)
                .enumerated().map { RankedHit(key: $1.pk, score: $1.score, textRank: $0 + 1) }
        case "vector":
            ranked = try vectorSearch(queryVector!, collection, input["filter"], limit: request.limit, call)
                .enumerated().map { RankedHit(key: $1.pk, score: $1.score, vectorRank: $0 + 1) }
        default:
            let candidates = request.hybridCandidates
            let text = try textSearch(request.query!, collection, input["filter"], limit: candidates, warnings: &warnings)
            guard let queryVector else {
                warnings.append("hybrid search without a query vector (none given, and no embed_tool configured): ranked by text alone")
                usedMode = "text"
                ranked = text.prefix(request.limit).enumerated().map { RankedHit(key: $1.pk, score: $1.score, textRank: $0 + 1) }
                break
            }
            if collection.dimensions == nil {
                warnings.append(.string("the collection \(collection.name) has no vectors: ranked by text alone"))
            }
            let vector = try vectorSearch(queryVector, collection, input["filter"], limit: candidates, call)
            ranked = RankFusion.fuse(text: text.map(\.pk), vector: vector.map(\.pk), k: request.rrfK, limit: request.limit)
        }

        let rows = try fetch(ranked.map(\.key))
        let results: [JSONValue] = ranked.compactMap { hit in
            rows[hit.key].map { RankFusion.result(hit, id: $0.id, text: $0.text, metadata: $0.metadata, hybrid: usedMode == "hybrid") }
        }
        var output: JSONObject = ["results": .array(results), "mode": .string(usedMode)]
        if !warnings.isEmpty { output["warnings"] = .array(warnings) }
        return .object(output)
    }

    /// Documents holding any query word, scored with BM25's shape:
    ///   Σ idf(word) · ts_rank(tsv, word) / (1 − b + b · |tsv| / avg |tsv|),  b = 0.75
    /// — inverse document frequencies from the collection's counts (cached per
    /// collection version), PostgreSQL's saturating term-frequency rank for each word,
    /// and length normalised against the collection's average (|tsv|: distinct words).
    /// Best first; ties by insertion order.
    func textSearch(_ query: String, _ collection: PGCollection, _ filterValue: JSONValue?, limit: Int,
                    warnings: inout [JSONValue]) throws(DriverError) -> [(pk: Int64, score: Double)] {
        let words = QueryTerms.words(query)
        guard !words.isEmpty else {
            warnings.append("the query has no words to search for by text")
            return []
        }
        let (weights, averageLength) = try inverseDocumentFrequencies(words, collection)
        var parameters = PGParameters()
        let collectionParameter = parameters.add(.int(collection.id))
        var ranks: [String] = []
        var queries: [String] = []
        for (word, weight) in zip(words, weights) where weight > 0 {
            let q = "plainto_tsquery('simple'::regconfig, \(parameters.add(.text(word))))"
            queries.append(q)
            ranks.append("\(parameters.add(.double(weight)))::float8 * ts_rank(d.tsv, \(q), 0)")
        }
        guard !queries.isEmpty else { return [] }  // no word occurs in the collection
        let lengthNorm = "(0.25 + 0.75 * length(d.tsv)::float8 / \(parameters.add(.double(max(averageLength, 1))))::float8)"
        let filter = try PGFilter.compile(filterValue, into: &parameters)
        let limitParameter = parameters.add(.int(limit))
        let found = try db.query("""
            SELECT d.pk, (\(ranks.joined(separator: " + "))) / \(lengthNorm) AS score FROM documents d
            WHERE d.collection = \(collectionParameter) AND d.tsv @@ (\(queries.joined(separator: " || "))) AND (\(filter))
            ORDER BY score DESC, d.pk LIMIT \(limitParameter)
            """, parameters.values, binary: true)
        return (0..<found.count).map { (pk: found.int64($0, 0), score: found.double($0, 1)) }
    }

    /// idf(word) = ln(1 + (N − n + 0.5) / (n + 0.5)), N documents, n holding the word
    /// (0: absent), and the collection's average number of distinct words a document.
    private func inverseDocumentFrequencies(_ words: [String], _ collection: PGCollection) throws(DriverError) -> ([Double], Double) {
        var statistics = termStatistics[collection.id]
        if statistics?.version != collection.version {
            let row = try db.query("SELECT count(*), coalesce(avg(length(tsv)), 0)::float8 FROM documents WHERE collection = $1", [.int(collection.id)])
            statistics = (collection.version, row.int64(0, 0), row.double(0, 1), [:])
        }
        for word in words where statistics!.frequencies[word] == nil {
            let n = try db.query("SELECT count(*) FROM documents WHERE collection = $1 AND tsv @@ plainto_tsquery('simple'::regconfig, $2)",
                                 [.int(collection.id), .text(word)]).int64(0, 0)
            if statistics!.frequencies.count > 100_000 { statistics!.frequencies = [:] }
            statistics!.frequencies[word] = n
        }
        termStatistics[collection.id] = statistics
        let total = Double(statistics!.documents)
        let weights = words.map { word -> Double in
            let n = Double(statistics!.frequencies[word] ?? 0)
            return n == 0 ? 0 : log(1 + (total - n + 0.5) / (n + 0.5))
        }
        return (weights, statistics!.averageLength)
    }

    /// Exact cosine against every vector of the collection that passes the filter
    /// (streamed from the server), or through the IVF index when the collection is
    /// large and the search is unfiltered. Best first.
    func vectorSearch(_ query: [Float], _ collection: PGCollection, _ filterValue: JSONValue?, limit: Int,
                      _ call: CallContext) throws(DriverError) -> [(pk: Int64, score: Double)] {
        let unfiltered = filterValue == nil || filterValue?.objectValue?.isEmpty == true
        if unfiltered, let index = try vectorIndex(collection, dimensions: query.count, call) {
            let pks = index.candidates(for: query, nprobe: configuration.nprobe > 0 ? configuration.nprobe : index.defaultProbes,
                                       candidates: max(limit * 8, 100))
            guard !pks.isEmpty else { return [] }
            return try exactScores(query, sql: "SELECT d.pk, d.vector, d.norm FROM documents d WHERE d.pk IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)",
                                   values: [.text(JSONValue.array(pks.map { .int($0) }).serialized())], limit: limit, call)
        }
        var parameters = PGParameters()
        let collectionParameter = parameters.add(.int(collection.id))
        let filter = try PGFilter.compile(filterValue, into: &parameters)
        return try exactScores(query, sql: """
            SELECT d.pk, d.vector, d.norm FROM documents d
            WHERE d.collection = \(collectionParameter) AND d.vector IS NOT NULL AND (\(filter))
            """, values: parameters.values, limit: limit, call)
    }

    /// The collection's IVF index, built (or rebuilt after another host's write) when the
    /// configuration and the collection's size call for one; nil: scan exactly.
    private func vectorIndex(_ collection: PGCollection, dimensions: Int, _ call: CallContext) throws(DriverError) -> VectorIndex? {
        guard configuration.vectorIndex != "exact" else { return nil }
        if let cached = vectorIndexes[collection.id], cached.version == collection.version, cached.index.dimensions == dimensions {
            return cached.index
        }
        vectorIndexes[collection.id] = nil
        let count = try db.query("SELECT count(*) FROM documents WHERE collection = $1 AND vector IS NOT NULL", [.int(collection.id)]).int64(0, 0)
        guard count > 0, configuration.vectorIndex == "ivf" || count >= Int64(configuration.indexThreshold) else { return nil }
        var vectors: [(rowid: Int64, values: [Float])] = []
        vectors.reserveCapacity(Int(count))
        var scanned = 0, cancelled = false
        try db.forEachRow("SELECT pk, vector FROM documents WHERE collection = $1 AND vector IS NOT NULL", [.int(collection.id)]) { row in
            scanned += 1
            if scanned % 65_536 == 0, call.isCancelled { cancelled = true; return false }
            if let values = row.withBytes(0, 1, Vectors.values), values.count == dimensions { vectors.append((row.int64(0, 0), values)) }
            return true
        }
        if cancelled { throw DriverError.cancelled("search: cancelled while building the vector index") }
        let index = VectorIndex(dimensions: dimensions, vectors: vectors)
        vectorIndexes[collection.id] = (index, collection.version)
        return index
    }

    /// Exact cosine similarity of `query` against the rows `sql` selects (pk, vector, norm).
    private func exactScores(_ query: [Float], sql: String, values: [PGValue], limit: Int,
                             _ call: CallContext) throws(DriverError) -> [(pk: Int64, score: Double)] {
        let queryNorm = Double(Vectors.norm(query))
        let dimensions = query.count
        var top = TopK(limit: limit)
        var scanned = 0, cancelled = false
        // The query in a buffer of its own: withUnsafeBytes's rethrows would lose the typed error.
        let q = UnsafeMutableBufferPointer<Float>.allocate(capacity: dimensions)
        defer { q.deallocate() }
        _ = q.initialize(from: query)
        let qBase = UnsafeRawPointer(q.baseAddress!)
        do {
            try db.forEachRow(sql, values) { row in
                scanned += 1
                if scanned % 65_536 == 0, call.isCancelled { cancelled = true; return false }
                guard !row.isNull(0, 1), !row.isNull(0, 2) else { return true }
                let norm = row.double(0, 2)
                guard norm > 0 else { return true }
                let dot = row.withBytes(0, 1) { blob -> Float? in
                    guard blob.count == dimensions * 4, let base = blob.baseAddress else { return nil }
                    return Vectors.dot(qBase, base, count: dimensions)
                }
                if let dot { top.offer(Double(dot) / (queryNorm * norm), row.int64(0, 0)) }
                return true
            }
        }
        if cancelled { throw DriverError.cancelled("search: cancelled") }
        return top.sorted.map { (pk: $0.rowid, score: $0.score) }
    }

    struct Row {
        var id: String
        var text: String
        var metadata: JSONValue
    }

    func fetch(_ pks: [Int64]) throws(DriverError) -> [Int64: Row] {
        guard !pks.isEmpty else { return [:] }
        let found = try db.query("SELECT pk, id, text, metadata::text FROM documents WHERE pk IN (SELECT (jsonb_array_elements_text($1::jsonb))::bigint)",
                                 [.text(JSONValue.array(pks.map { .int($0) }).serialized())], binary: true)
        var rows: [Int64: Row] = [:]
        let r = found
        for i in 0..<found.count {
            func text(_ column: Int) -> String { r.withBytes(i, column) { String(decoding: $0, as: UTF8.self) } }
            rows[r.int64(i, 0)] = Row(id: text(1), text: text(2), metadata: StorageInput.metadata(text(3)))
        }
        return rows
    }
}
