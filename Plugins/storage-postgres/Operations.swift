// The operations of the storage contract on PostgreSQL. Each write is one transaction
// that locks its collection row first (SELECT ... FOR UPDATE), so puts from many hosts
// into one collection serialize there, and bumps the collection's version, which every
// host's cached IVF index and term statistics are checked against.
import LLMOSDriverSDK
import LLMOSJSON
import StorageKit

struct PGCollection {
    var id: Int64
    var name: String
    var dimensions: Int?
    var model: String?
    var version: Int64
}

extension PGStoreState {
    // MARK: Collections

    func collection(named name: String, lock: Bool = false) throws(DriverError) -> PGCollection? {
        let found = try db.query("SELECT id, name, dimensions, model, version FROM collections WHERE name = $1\(lock ? " FOR UPDATE" : "")", [.text(name)])
        guard found.count > 0 else { return nil }
        let r = found
        return PGCollection(id: r.int64(0, 0), name: r.text(0, 1), dimensions: r.isNull(0, 2) ? nil : Int(r.int64(0, 2)),
                            model: r.isNull(0, 3) ? nil : r.text(0, 3), version: r.int64(0, 4))
    }

    /// The collection, or not_found naming the ones there are.
    func existingCollection(_ input: JSONValue, lock: Bool = false) throws(DriverError) -> PGCollection {
        let name = try StorageInput.collectionName(input)
        if let found = try collection(named: name, lock: lock) { return found }
        let names = try db.query("SELECT name FROM collections ORDER BY name COLLATE \"C\" LIMIT 21")
        let list = (0..<names.count).map { names.text($0, 0) }
        let known = list.isEmpty ? "there are no collections yet (put creates one)"
            : "collections: \(list.prefix(20).joined(separator: ", "))\(list.count > 20 ? ", ..." : "")"
        throw .notFound("collection: no collection \"\(name)\" in \(configuration.label) schema \(configuration.schema); \(known)")
    }

    /// The collection, created if missing, locked for this transaction.
    private func ensureCollection(_ name: String, dimensions: Int?, metadata: String = "{}") throws(DriverError) -> (PGCollection, created: Bool) {
        let inserted = try db.query("INSERT INTO collections(name, dimensions, metadata) VALUES ($1, $2, $3::jsonb) ON CONFLICT (name) DO NOTHING RETURNING id",
                                    [.text(name), dimensions.map { PGValue.int($0) } ?? .null, .text(metadata)])
        guard let found = try collection(named: name, lock: true) else { throw .internal("postgres: the collection \(name) vanished while it was being created") }
        return (found, inserted.count > 0)
    }

    private func bumpVersion(_ collection: PGCollection) throws(DriverError) -> Int64 {
        let next = try db.query("UPDATE collections SET version = version + 1 WHERE id = $1 RETURNING version", [.int(collection.id)])
        return next.count > 0 ? next.int64(0, 0) : collection.version + 1
    }

    func collections(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let found = try db.query("""
            SELECT c.name, c.dimensions, (SELECT count(*) FROM documents d WHERE d.collection = c.id), c.model, c.metadata::text,
                   to_char(c.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM collections c ORDER BY c.name COLLATE "C"
            """)
        let r = found
        let list: [JSONValue] = (0..<found.count).map { i in
            var object: JSONObject = ["name": .string(r.text(i, 0)), "documents": .int(r.int64(i, 2)),
                                      "dimensions": r.isNull(i, 1) ? .null : .int(r.int64(i, 1)), "created": .string(r.text(i, 5))]
            if !r.isNull(i, 3) { object["model"] = .string(r.text(i, 3)) }
            let metadata = StorageInput.metadata(r.text(i, 4))
            if metadata.objectValue?.isEmpty == false { object["metadata"] = metadata }
            return .object(object)
        }
        return .object(["collections": .array(list)])
    }

    func createCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let name = try StorageInput.collectionName(input)
        let dimensions = try StorageInput.dimensions(input)
        let metadata = try StorageInput.canonicalMetadata(input["metadata"], field: "metadata")
        try Self.checkStorable(metadata, field: "metadata")
        return try db.transaction { () throws(DriverError) -> JSONValue in
            let (found, created) = try ensureCollection(name, dimensions: dimensions, metadata: metadata)
            var now = found.dimensions
            if !created, let dimensions, let existing = found.dimensions, existing != dimensions {
                throw .invalidArgument("dimensions: the collection \(name) already exists with \(existing) dimensions, not \(dimensions); drop it first, or use another name")
            }
            if !created, let dimensions, found.dimensions == nil {
                let vectors = try db.query("SELECT count(*) FROM documents WHERE collection = $1 AND vector IS NOT NULL", [.int(found.id)])
                if vectors.int64(0, 0) == 0 {
                    try db.run("UPDATE collections SET dimensions = $1 WHERE id = $2", [.int(dimensions), .int(found.id)])
                    now = dimensions
                }
            }
            return .object(["collection": .string(name), "created": .bool(created), "dimensions": now.map { JSONValue.int(Int64($0)) } ?? JSONValue.null])
        }
    }

    func dropCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        try db.transaction { () throws(DriverError) -> JSONValue in
            let found = try existingCollection(input, lock: true)
            let count = try db.query("SELECT count(*) FROM documents WHERE collection = $1", [.int(found.id)]).int64(0, 0)
            try db.run("DELETE FROM collections WHERE id = $1", [.int(found.id)])
            vectorIndexes[found.id] = nil
            termStatistics[found.id] = nil
            return .object(["collection": .string(found.name), "dropped": true, "documents": .int(count)])
        }
    }

    /// PostgreSQL's text and jsonb cannot hold a NUL character; say so before the server does.
    static func checkStorable(_ text: String, field: String) throws(DriverError) {
        if text.utf8.contains(0) || text.contains("\\u0000") {
            throw .invalidArgument("\(field): contains a NUL character (U+0000), which PostgreSQL text cannot hold; remove it (the sqlite driver stores it)")
        }
    }

    // MARK: put

    func put(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let name = try StorageInput.collectionName(input)
        var documents = try StorageInput.documents(input)
        for document in documents {
            if document.text.utf8.contains(0) { try Self.checkStorable(document.text, field: "\(document.field).text") }
            try Self.checkStorable(document.metadataJSON, field: "\(document.field).metadata")
        }
        // Embeddings first: a tool call must not run inside the write transaction.
        var model: String?
        if let tool = configuration.embedTool {
            let missing = documents.indices.filter { documents[$0].vector == nil }
            if !missing.isEmpty {
                let (vectors, usedModel) = try StorageInput.embed(missing.map { documents[$0].text }, tool: tool, driver: "postgres", call)
                for (n, index) in missing.enumerated() { documents[index].vector = vectors[n] }
                model = usedModel
            }
        }
        var changed: [(pk: Int64, vector: [Float]?)] = []
        var versionBefore: Int64 = -1, versionAfter: Int64 = -1, collectionID: Int64 = 0
        let result = try db.transaction { () throws(DriverError) -> JSONValue in
            var (collection, created) = try ensureCollection(name, dimensions: nil)
            collectionID = collection.id
            versionBefore = collection.version
            if let model {
                if let recorded = collection.model, recorded != model {
                    throw .invalidArgument("documents: the collection \(name) holds vectors of the model \(recorded), but \(configuration.embedTool ?? "the embed tool") now uses \(model); vectors of different models must not be mixed: use another collection")
                }
                if collection.model == nil { try db.run("UPDATE collections SET model = $1 WHERE id = $2", [.text(model), .int(collection.id)]) }
            }
            var inserted = 0, duplicates = 0
            var ids: [JSONValue] = []
            ids.reserveCapacity(documents.count)
            for (n, document) in documents.enumerated() {
                if n % 256 == 255, call.isCancelled { throw DriverError.cancelled("put: cancelled; nothing of this batch was stored") }
                var blob: PGValue = .null, norm: PGValue = .null
                if let vector = document.vector {
                    if let dimensions = collection.dimensions, dimensions != vector.count {
                        throw .invalidArgument("\(document.field).vector: has \(vector.count) dimensions, but the collection \(name) holds vectors of \(dimensions)")
                    }
                    if collection.dimensions == nil {
                        try db.run("UPDATE collections SET dimensions = $1 WHERE id = $2", [.int(vector.count), .int(collection.id)])
                        collection.dimensions = vector.count
                    }
                    blob = .bytes(Vectors.blob(vector))
                    norm = .double(Double(Vectors.norm(vector)))
                }
                // One round trip: inserted, replaced (a changed hash), or nothing (a duplicate).
                let written = try db.query("""
                    INSERT INTO documents(collection, id, text, metadata, content_hash, vector, norm) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
                    ON CONFLICT (collection, id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata,
                        content_hash = excluded.content_hash, vector = excluded.vector, norm = excluded.norm
                    WHERE documents.content_hash IS DISTINCT FROM excluded.content_hash
                    RETURNING pk
                    """, [.int(collection.id), .text(document.id), .text(document.text), .text(document.metadataJSON),
                          .text(document.contentHash), blob, norm])
                if written.count == 0 {
                    duplicates += 1
                } else {
                    inserted += 1
                    changed.append((written.int64(0, 0), document.vector))
                }
                ids.append(.string(document.id))
            }
            if inserted > 0 { versionAfter = try bumpVersion(collection) } else { versionAfter = versionBefore }
            var output: JSONObject = ["ids": .array(ids), "inserted": .int(Int64(inserted)), "duplicates": .int(Int64(duplicates)),
                                      "collection_created": .bool(created)]
            if let dimensions = collection.dimensions { output["dimensions"] = JSONValue.int(Int64(dimensions)) }
            return .object(output)
        }
        // An index that was current before this put takes its vectors in, instead of a
        // rebuild (rebuilt anyway once the collection has doubled).
        if let cached = vectorIndexes[collectionID] {
            if cached.version == versionBefore {
                for (pk, vector) in changed {
                    cached.index.remove(pk)
                    if let vector, vector.count == cached.index.dimensions { cached.index.add(pk, vector) }
                }
                vectorIndexes[collectionID] = cached.index.count > 2 * cached.index.builtCount ? nil : (cached.index, versionAfter)
            } else if cached.version != versionAfter {
                vectorIndexes[collectionID] = nil
            }
        }
        return result
    }

    // MARK: get

    func get(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard let list = input["ids"]?.arrayValue, !list.isEmpty else { throw .invalidArgument("ids: expected a non-empty list of document ids") }
        let ids = try StorageInput.ids(input["ids"])
        let includeVectors = input["include_vectors"]?.boolValue ?? false
        let collection = try existingCollection(input)
        let found = try db.query("""
            SELECT id, text, metadata::text, vector FROM documents
            WHERE collection = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))
            """, [.int(collection.id), .text(JSONValue.array(ids.map { .string($0) }).serialized())], binary: true)
        var byID: [String: JSONValue] = [:]
        let r = found
        for i in 0..<found.count {
            let id = r.withBytes(i, 0) { String(decoding: $0, as: UTF8.self) }
            var object: JSONObject = ["id": .string(id), "text": .string(r.withBytes(i, 1) { String(decoding: $0, as: UTF8.self) }),
                                      "metadata": StorageInput.metadata(r.withBytes(i, 2) { String(decoding: $0, as: UTF8.self) })]
            if includeVectors, !r.isNull(i, 3), let values = r.withBytes(i, 3, Vectors.values) {
                object["vector"] = .array(values.map { .double(Double($0)) })
            }
            byID[id] = .object(object)
        }
        var documents: [JSONValue] = []
        var missing: [JSONValue] = []
        for id in ids {
            if let document = byID[id] { documents.append(document) } else { missing.append(.string(id)) }
        }
        return .object(["documents": .array(documents), "missing": .array(missing)])
    }

    // MARK: delete

    func delete(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard input["ids"] != nil || input["filter"] != nil else {
            throw .invalidArgument("delete needs ids, filter or both (filter {} deletes every document of the collection), so that nothing is deleted by accident")
        }
        let ids = try StorageInput.ids(input["ids"])
        return try db.transaction { () throws(DriverError) -> JSONValue in
            let collection = try existingCollection(input, lock: true)
            var parameters = PGParameters()
            let collectionParameter = parameters.add(.int(collection.id))
            var conditions: [String] = []
            if !ids.isEmpty {
                conditions.append("d.id IN (SELECT jsonb_array_elements_text(\(parameters.add(.text(JSONValue.array(ids.map { .string($0) }).serialized())))::jsonb))")
            }
            if input["filter"] != nil {
                conditions.append("(\(try PGFilter.compile(input["filter"], into: &parameters)))")
            }
            let deleted = try db.run("DELETE FROM documents d WHERE d.collection = \(collectionParameter) AND (\(conditions.joined(separator: " OR ")))", parameters.values)
            if deleted > 0 {
                _ = try bumpVersion(collection)
                vectorIndexes[collection.id] = nil
            }
            return .object(["deleted": .int(Int64(deleted))])
        }
    }

    // MARK: stats

    func stats(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        var output: JSONObject = ["server": .string(configuration.label), "schema": .string(configuration.schema),
                                  "text_search": "tsvector (simple) with GIN, IDF-weighted ts_rank",
                                  "vector_search": "exact cosine in the driver (SIMD scan); IVF index over int8 codes for large collections",
                                  "embed_tool": configuration.embedTool.map { JSONValue.string($0) } ?? JSONValue.null]
        if input["collection"] != nil {
            let collection = try existingCollection(input)
            let row = try db.query("""
                SELECT count(*), count(vector), coalesce(sum(octet_length(text) + octet_length(metadata::text) + coalesce(octet_length(vector), 0)), 0)::bigint
                FROM documents WHERE collection = $1
                """, [.int(collection.id)])
            output["collections"] = 1
            output["documents"] = .int(row.int64(0, 0))
            output["vectors"] = .int(row.int64(0, 1))
            output["bytes"] = .int(row.int64(0, 2))
            output["dimensions"] = collection.dimensions.map { JSONValue.int(Int64($0)) } ?? JSONValue.null
        } else {
            let row = try db.query("""
                SELECT (SELECT count(*) FROM collections), (SELECT count(*) FROM documents), (SELECT count(vector) FROM documents),
                       (pg_total_relation_size('documents') + pg_total_relation_size('collections'))::bigint
                """)
            output["collections"] = .int(row.int64(0, 0))
            output["documents"] = .int(row.int64(0, 1))
            output["vectors"] = .int(row.int64(0, 2))
            output["bytes"] = .int(row.int64(0, 3))
        }
        return .object(output)
    }
}
