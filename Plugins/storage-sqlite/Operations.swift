// The operations of the storage contract (sdk/schemas/classes/storage.schema.json).
// The kernel has validated each input against the manifest's schema before it gets
// here; the checks below are for what a schema cannot say (dimensions agreeing with
// the collection, zero vectors) and a second line for anything it let through.
import CSQLite
import LLMOSDriverSDK
import LLMOSJSON
import LLMOSDigest
import StorageKit

/// A collection row.
struct StoredCollection {
    var id: Int64
    var name: String
    var dimensions: Int?
    var model: String?
}

extension StoreState {
    // MARK: Collections

    func collection(named name: String, _ db: Database) throws(DriverError) -> StoredCollection? {
        try db.query("SELECT id, name, dimensions, model FROM collections WHERE name = ?", [.text(name)]) { row in
            StoredCollection(id: row.int64(0), name: row.text(1), dimensions: row.isNull(2) ? nil : Int(row.int64(2)), model: row.isNull(3) ? nil : row.text(3))
        }.first
    }

    /// The collection, or not_found naming the ones there are.
    func existingCollection(_ input: JSONValue, _ db: Database) throws(DriverError) -> StoredCollection {
        let name = try collectionName(input)
        if let found = try collection(named: name, db) { return found }
        let names = try db.query("SELECT name FROM collections ORDER BY name LIMIT 21") { $0.text(0) }
        let known = names.isEmpty ? "there are no collections yet (put creates one)"
            : "collections: \(names.prefix(20).joined(separator: ", "))\(names.count > 20 ? ", ..." : "")"
        throw .notFound("collection: no collection \"\(name)\" in \(db.path); \(known)")
    }

    func collectionName(_ input: JSONValue) throws(DriverError) -> String { try StorageInput.collectionName(input) }

    @discardableResult
    private func ensureCollection(_ name: String, dimensions: Int?, metadata: String = "{}", _ db: Database) throws(DriverError) -> (StoredCollection, created: Bool) {
        if let found = try collection(named: name, db) { return (found, false) }
        try db.run("INSERT INTO collections(name, dimensions, metadata) VALUES (?, ?, ?)",
                   [.text(name), dimensions.map { .integer(Int64($0)) } ?? .null, .text(metadata)])
        return (StoredCollection(id: db.lastInsertRowID, name: name, dimensions: dimensions, model: nil), true)
    }

    func collections(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let db = try open(call)
        let rows = try db.query("""
            SELECT c.name, c.dimensions, (SELECT count(*) FROM documents d WHERE d.collection = c.id), c.model, c.metadata, c.created
            FROM collections c ORDER BY c.name
            """) { row -> JSONValue in
            var object: JSONObject = ["name": .string(row.text(0)), "documents": .int(row.int64(2)),
                                      "dimensions": row.isNull(1) ? .null : .int(row.int64(1)), "created": .string(row.text(5))]
            if !row.isNull(3) { object["model"] = .string(row.text(3)) }
            if let metadata = try? JSON.parse(row.text(4)), metadata.objectValue?.isEmpty == false { object["metadata"] = metadata }
            return .object(object)
        }
        return .object(["collections": .array(rows)])
    }

    func createCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let name = try collectionName(input)
        let dimensions = try StorageInput.dimensions(input)
        let metadata = try StorageInput.canonicalMetadata(input["metadata"], field: "metadata")
        let db = try open(call)
        return try db.transaction { () throws(DriverError) -> JSONValue in
            let (found, created) = try ensureCollection(name, dimensions: dimensions, metadata: metadata, db)
            if !created, let dimensions, let existing = found.dimensions, existing != dimensions {
                throw .invalidArgument("dimensions: the collection \(name) already exists with \(existing) dimensions, not \(dimensions); drop it first, or use another name")
            }
            if !created, let dimensions, found.dimensions == nil {
                let vectors = try db.query("SELECT count(*) FROM documents WHERE collection = ? AND vector IS NOT NULL", [.integer(found.id)]) { $0.int64(0) }.first ?? 0
                if vectors == 0 { try db.run("UPDATE collections SET dimensions = ? WHERE id = ?", [.integer(Int64(dimensions)), .integer(found.id)]) }
            }
            let now = try collection(named: name, db)
            return .object(["collection": .string(name), "created": .bool(created), "dimensions": now?.dimensions.map { JSONValue.int(Int64($0)) } ?? JSONValue.null])
        }
    }

    func dropCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let db = try open(call)
        return try db.transaction { () throws(DriverError) -> JSONValue in
            let found = try existingCollection(input, db)
            let count = try db.query("SELECT count(*) FROM documents WHERE collection = ?", [.integer(found.id)]) { $0.int64(0) }.first ?? 0
            // Documents go through their delete trigger (the text index) by the cascade.
            try db.run("DELETE FROM collections WHERE id = ?", [.integer(found.id)])
            return .object(["collection": .string(found.name), "dropped": true, "documents": .int(count)])
        }
    }

    // MARK: put

    func put(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let name = try collectionName(input)
        var documents = try StorageInput.documents(input)

        let db = try open(call)
        // Embeddings come first: a tool call must not run inside the write transaction.
        var model: String?
        if let tool = configuration.embedTool {
            let missing = documents.indices.filter { documents[$0].vector == nil }
            if !missing.isEmpty {
                let (vectors, usedModel) = try StorageInput.embed(missing.map { documents[$0].text }, tool: tool, driver: "sqlite", call)
                for (n, index) in missing.enumerated() { documents[index].vector = vectors[n] }
                model = usedModel
            }
        }

        // Vectors this put adds (or replaces), for the collection's IVF index once committed.
        var indexed: [(pk: Int64, vector: [Float]?)] = []
        var collectionID: Int64 = 0
        let indexCurrent = vectorIndexes.mapValues { $0.writes == db.writes }
        let versionBefore = try db.dataVersion()
        let result = try db.transaction { () throws(DriverError) -> JSONValue in
            let ensured = try ensureCollection(name, dimensions: nil, db)
            var collection = ensured.0
            collectionID = collection.id
            let created = ensured.created
            if let model {
                if let recorded = collection.model, recorded != model {
                    throw .invalidArgument("documents: the collection \(name) holds vectors of the model \(recorded), but \(configuration.embedTool ?? "the embed tool") now uses \(model); vectors of different models must not be mixed: use another collection")
                }
                if collection.model == nil { try db.run("UPDATE collections SET model = ? WHERE id = ?", [.text(model), .integer(collection.id)]) }
            }
            var inserted = 0, duplicates = 0
            var ids: [JSONValue] = []
            ids.reserveCapacity(documents.count)
            for (n, document) in documents.enumerated() {
                if n % 256 == 255, call.isCancelled { throw DriverError.cancelled("put: cancelled; nothing of this batch was stored") }
                var blob: SQLValue = .null, norm: SQLValue = .null
                if let vector = document.vector {
                    if let dimensions = collection.dimensions, dimensions != vector.count {
                        throw .invalidArgument("\(document.field).vector: has \(vector.count) dimensions, but the collection \(name) holds vectors of \(dimensions)")
                    }
                    if collection.dimensions == nil {
                        try db.run("UPDATE collections SET dimensions = ? WHERE id = ?", [.integer(Int64(vector.count)), .integer(collection.id)])
                        collection.dimensions = vector.count
                    }
                    blob = .blob(Vectors.blob(vector))
                    norm = .real(Double(Vectors.norm(vector)))
                }
                let hash = document.contentHash
                let existing = try db.query("SELECT pk, content_hash FROM documents WHERE collection = ? AND id = ?",
                                            [.integer(collection.id), .text(document.id)]) { ($0.int64(0), $0.text(1)) }.first
                if let existing {
                    if existing.1 == hash {
                        duplicates += 1
                    } else {
                        try db.run("UPDATE documents SET text = ?, metadata = ?, content_hash = ?, vector = ?, norm = ? WHERE pk = ?",
                                   [.text(document.text), .text(document.metadataJSON), .text(hash), blob, norm, .integer(existing.0)])
                        indexed.append((existing.0, document.vector))
                        inserted += 1
                    }
                } else {
                    try db.run("INSERT INTO documents(collection, id, text, metadata, content_hash, vector, norm) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               [.integer(collection.id), .text(document.id), .text(document.text), .text(document.metadataJSON), .text(hash), blob, norm])
                    if let vector = document.vector { indexed.append((db.lastInsertRowID, vector)) }
                    inserted += 1
                }
                ids.append(.string(document.id))
            }
            var output: JSONObject = ["ids": .array(ids), "inserted": .int(Int64(inserted)), "duplicates": .int(Int64(duplicates)),
                                      "collection_created": .bool(created)]
            if let dimensions = collection.dimensions { output["dimensions"] = JSONValue.int(Int64(dimensions)) }
            return .object(output)
        }
        // An index that was current before this put takes its vectors in, instead of a rebuild
        // (rebuilt anyway once the collection has doubled: the lists were trained on less).
        if indexCurrent[collectionID] == true, let cached = vectorIndexes[collectionID], try db.dataVersion() == versionBefore {
            for (pk, vector) in indexed {
                cached.index.remove(pk)
                if let vector, vector.count == cached.index.dimensions { cached.index.add(pk, vector) }
            }
            vectorIndexes[collectionID] = cached.index.count > 2 * cached.index.builtCount ? nil : (cached.index, db.writes, cached.dataVersion)
        }
        return result
    }

    // MARK: get

    func get(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        guard let ids = input["ids"]?.arrayValue, !ids.isEmpty else { throw .invalidArgument("ids: expected a non-empty list of document ids") }
        let includeVectors = input["include_vectors"]?.boolValue ?? false
        let db = try open(call)
        let collection = try existingCollection(input, db)
        var documents: [JSONValue] = []
        var missing: [JSONValue] = []
        for (i, item) in ids.enumerated() {
            guard let id = item.stringValue else { throw .invalidArgument("ids[\(i)]: expected a string") }
            let found = try db.query("SELECT id, text, metadata, vector FROM documents WHERE collection = ? AND id = ?",
                                     [.integer(collection.id), .text(id)]) { row -> JSONValue in
                var object: JSONObject = ["id": .string(row.text(0)), "text": .string(row.text(1)), "metadata": StorageInput.metadata(row.text(2))]
                if includeVectors, !row.isNull(3), let values = row.withBlob(3, Vectors.values) {
                    object["vector"] = .array(values.map { .double(Double($0)) })
                }
                return .object(object)
            }.first
            if let found { documents.append(found) } else { missing.append(.string(id)) }
        }
        return .object(["documents": .array(documents), "missing": .array(missing)])
    }

    // MARK: delete

    func delete(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let ids = input["ids"]?.arrayValue
        let filterValue = input["filter"]
        guard ids != nil || filterValue != nil else {
            throw .invalidArgument("delete needs ids, filter or both (filter {} deletes every document of the collection), so that nothing is deleted by accident")
        }
        let idStrings = try StorageInput.ids(input["ids"]).map { JSONValue.string($0) }
        var filter: CompiledFilter? = nil
        if filterValue != nil { filter = try CompiledFilter.compile(filterValue) }
        let db = try open(call)
        return try db.transaction { () throws(DriverError) -> JSONValue in
            let collection = try existingCollection(input, db)
            var conditions: [String] = []
            var values: [SQLValue] = [.integer(collection.id)]
            if !idStrings.isEmpty {
                conditions.append("d.id IN (SELECT value FROM json_each(?))")
                values.append(.text(JSONValue.array(idStrings).serialized()))
            }
            if let filter {
                conditions.append("(\(filter.sql))")
                values += filter.values
            }
            let deleted = try db.run("DELETE FROM documents WHERE pk IN (SELECT d.pk FROM documents d WHERE d.collection = ? AND (\(conditions.joined(separator: " OR "))))", values)
            return .object(["deleted": .int(Int64(deleted))])
        }
    }

    // MARK: stats

    func stats(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue {
        let db = try open(call)
        var output: JSONObject = ["file": .string(db.path), "text_search": "fts5 bm25", "vector_search": "exact cosine (SIMD scan)",
                                  "embed_tool": configuration.embedTool.map { JSONValue.string($0) } ?? JSONValue.null]
        if input["collection"] != nil {
            let collection = try existingCollection(input, db)
            let row = try db.query("""
                SELECT count(*), count(vector), coalesce(sum(length(CAST(text AS BLOB)) + length(metadata) + coalesce(length(vector), 0)), 0)
                FROM documents WHERE collection = ?
                """, [.integer(collection.id)]) { ($0.int64(0), $0.int64(1), $0.int64(2)) }.first ?? (0, 0, 0)
            output["collections"] = 1
            output["documents"] = .int(row.0)
            output["vectors"] = .int(row.1)
            output["bytes"] = .int(row.2)
            output["dimensions"] = collection.dimensions.map { JSONValue.int(Int64($0)) } ?? JSONValue.null
        } else {
            let collections = try db.query("SELECT count(*) FROM collections") { $0.int64(0) }.first ?? 0
            let counts = try db.query("SELECT count(*), count(vector) FROM documents") { ($0.int64(0), $0.int64(1)) }.first ?? (0, 0)
            let pages = try db.query("PRAGMA page_count") { $0.int64(0) }.first ?? 0
            let pageSize = try db.query("PRAGMA page_size") { $0.int64(0) }.first ?? 0
            output["collections"] = .int(collections)
            output["documents"] = .int(counts.0)
            output["vectors"] = .int(counts.1)
            output["bytes"] = .int(pages * pageSize)
        }
        return .object(output)
    }
}
