// What every storage driver reads from the contract's inputs the same way
// (sdk/schemas/classes/storage.schema.json): collection names, documents, metadata,
// vectors, search parameters; embeddings through the kernel's tool.call; and reciprocal
// rank fusion. The kernel validates inputs against the manifest's schema first; these
// checks are for what a schema cannot say, and a second line for anything it let through.
import LLMOSDigest
import LLMOSDriverSDK
import LLMOSJSON

/// A document of a put, checked, with its metadata in canonical form.
public struct IncomingDocument {
    public var id: String
    public var text: String
    /// Canonical JSON (keys sorted): the same fields in another order are the same content.
    public var metadataJSON: String
    public var vector: [Float]?
    /// "documents[3]", for messages.
    public var field: String

    /// The content hash: text, metadata and vector bytes. An identical re-put is a duplicate.
    public var contentHash: String {
        var input = Array(text.utf8) + [0] + Array(metadataJSON.utf8) + [0]
        if let vector { input += Vectors.blob(vector) }
        return SHA256.hex(of: input)
    }
}

/// A search request's parameters.
public struct SearchRequest {
    public var mode: String
    public var limit: Int
    public var rrfK: Double
    public var query: String?
    public var vector: [Float]?

    /// Candidates each list gives a hybrid ranking.
    public var hybridCandidates: Int { min(max(limit * 5, 50), 1000) }
}

public enum StorageInput {
    public static let maxDocumentsPerPut = 10_000

    public static func collectionName(_ input: JSONValue) throws(DriverError) -> String {
        guard let name = input["collection"]?.stringValue else {
            throw .invalidArgument("collection: missing; expected the collection's name, e.g. \"docs\"")
        }
        guard isValidCollectionName(name) else {
            throw .invalidArgument("collection: \"\(name.prefix(140))\" is not a collection name: letters, digits, _, . and -, starting with a letter or digit, at most 128 characters")
        }
        return name
    }

    public static func isValidCollectionName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...128).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }
        return alnum(bytes[0]) && bytes.allSatisfy { alnum($0) || $0 == 0x5f || $0 == 0x2e || $0 == 0x2d }
    }

    /// create_collection's optional dimensions.
    public static func dimensions(_ input: JSONValue) throws(DriverError) -> Int? {
        guard let given = input["dimensions"], !given.isNull else { return nil }
        guard let n = given.int64Value, (1...65_536).contains(n) else {
            throw .invalidArgument("dimensions: expected an integer from 1 to 65536 (the length of the collection's vectors, e.g. 384)")
        }
        return Int(n)
    }

    /// put's documents, checked; ids default to the SHA-256 of the text.
    public static func documents(_ input: JSONValue) throws(DriverError) -> [IncomingDocument] {
        guard let items = input["documents"]?.arrayValue, !items.isEmpty else {
            throw .invalidArgument("documents: expected a non-empty list of documents, each {\"text\": ..., \"id\"?, \"metadata\"?, \"vector\"?}")
        }
        guard items.count <= maxDocumentsPerPut else {
            throw .invalidArgument("documents: at most \(maxDocumentsPerPut) documents in one put, got \(items.count); split the batch (each put is one transaction)")
        }
        var documents: [IncomingDocument] = []
        documents.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let field = "documents[\(i)]"
            guard let text = item["text"]?.stringValue else { throw .invalidArgument("\(field).text: missing; every document needs its text") }
            var id: String
            if let given = item["id"], !given.isNull {
                guard let s = given.stringValue, (1...512).contains(s.utf8.count) else {
                    throw .invalidArgument("\(field).id: expected a string of 1 to 512 bytes")
                }
                id = s
            } else {
                id = SHA256.hex(of: Array(text.utf8))
            }
            let metadata = try canonicalMetadata(item["metadata"], field: "\(field).metadata")
            var vector: [Float]? = nil
            if let given = item["vector"], !given.isNull { vector = try self.vector(given, field: "\(field).vector") }
            documents.append(IncomingDocument(id: id, text: text, metadataJSON: metadata, vector: vector, field: field))
        }
        return documents
    }

    /// The ids of get and delete, as strings.
    public static func ids(_ value: JSONValue?) throws(DriverError) -> [String] {
        var ids: [String] = []
        for (i, item) in (value?.arrayValue ?? []).enumerated() {
            guard let id = item.stringValue else { throw .invalidArgument("ids[\(i)]: expected a string") }
            ids.append(id)
        }
        return ids
    }

    /// Metadata as stored: an object of scalars and lists of scalars, keys sorted.
    public static func canonicalMetadata(_ value: JSONValue?, field: String) throws(DriverError) -> String {
        guard let value, !value.isNull else { return "{}" }
        guard let object = value.objectValue else { throw .invalidArgument("\(field): expected an object of fields, e.g. {\"source\": \"notes.md\"}") }
        for (key, member) in object {
            switch member {
            case .object:
                throw .invalidArgument("\(field).\(key): metadata values are strings, numbers, booleans, null or lists of those, not objects (filters match flat fields)")
            case .array(let items):
                if let bad = items.firstIndex(where: { if case .array = $0 { return true }; if case .object = $0 { return true }; return false }) {
                    throw .invalidArgument("\(field).\(key)[\(bad)]: a list in metadata holds strings, numbers, booleans or null only")
                }
            default: break
            }
        }
        let sorted = JSONObject(object.map { ($0.key, $0.value) }.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) })
        return JSONValue.object(sorted).serialized()
    }

    /// Stored metadata text back to JSON ({} if it is not an object).
    public static func metadata(_ text: String) -> JSONValue {
        guard let value = try? JSON.parse(text), value.objectValue != nil else { return .object([:]) }
        return value
    }

    public static func vector(_ value: JSONValue, field: String) throws(DriverError) -> [Float] {
        guard let items = value.arrayValue, !items.isEmpty else {
            throw .invalidArgument("\(field): expected a non-empty list of numbers (an embedding)")
        }
        guard items.count <= 65_536 else { throw .invalidArgument("\(field): at most 65536 dimensions, got \(items.count)") }
        var vector: [Float] = []
        vector.reserveCapacity(items.count)
        var zero = true
        for (i, item) in items.enumerated() {
            guard let x = item.doubleValue, x.isFinite, abs(x) <= Double(Float.greatestFiniteMagnitude) else {
                throw .invalidArgument("\(field)[\(i)]: expected a finite number, got \(item.typeName)")
            }
            if x != 0 { zero = false }
            vector.append(Float(x))
        }
        if zero { throw .invalidArgument("\(field): all zeros; cosine similarity is undefined for a zero vector") }
        return vector
    }

    public static func search(_ input: JSONValue) throws(DriverError) -> SearchRequest {
        guard let mode = input["mode"]?.stringValue, ["text", "vector", "hybrid"].contains(mode) else {
            throw .invalidArgument("mode: expected \"text\", \"vector\" or \"hybrid\"")
        }
        let limit = Int(input["limit"]?.int64Value ?? 10)
        guard (1...1000).contains(limit) else { throw .invalidArgument("limit: must be from 1 to 1000, got \(limit)") }
        let rrfK = Double(input["rrf_k"]?.int64Value ?? 60)
        guard rrfK >= 1 && rrfK <= 100_000 else { throw .invalidArgument("rrf_k: must be from 1 to 100000") }
        let query = input["query"]?.stringValue
        if mode != "vector" && query == nil { throw .invalidArgument("query: \(mode) search needs the query text") }
        var vector: [Float]? = nil
        if let given = input["vector"] { vector = try self.vector(given, field: "vector") }
        return SearchRequest(mode: mode, limit: limit, rrfK: rrfK, query: query, vector: vector)
    }

    /// Vectors for `texts` from an embed tool (cpu.schema.json embed), through the kernel's
    /// tool.call, 64 texts a request. `driver` names the caller in messages.
    public static func embed(_ texts: [String], tool: String, driver: String, _ call: CallContext) throws(DriverError) -> ([[Float]], String?) {
        var vectors: [[Float]] = []
        var model: String?
        let batch = 64
        for start in stride(from: 0, to: texts.count, by: batch) {
            let slice = texts[start..<min(start + batch, texts.count)]
            let request: JSONValue = ["tool": .string(tool), "input": ["input": .array(slice.map { .string($0) })]]
            let answer: String
            do { answer = try call.syscall("tool.call", request.serialized()) } catch {
                throw DriverError(error.code, "embedding with \(tool) (the \(driver) driver's embed_tool) failed: \(error.message)")
            }
            guard let output = try? JSON.parse(answer), let list = output["vectors"]?.arrayValue, list.count == slice.count else {
                throw .invalidOutput("\(tool) (embed_tool) did not return one vector per text (cpu.schema.json#/$defs/embed_output)")
            }
            for (i, item) in list.enumerated() { vectors.append(try vector(item, field: "\(tool) output vectors[\(start + i)]")) }
            model = output["model"]?.stringValue ?? model
        }
        return (vectors, model)
    }
}

/// One ranked result: a row key, its score, and its ranks in the text and vector lists.
public struct RankedHit {
    public var key: Int64
    public var score: Double
    public var textRank: Int?
    public var vectorRank: Int?

    public init(key: Int64, score: Double, textRank: Int? = nil, vectorRank: Int? = nil) {
        self.key = key
        self.score = score
        self.textRank = textRank
        self.vectorRank = vectorRank
    }
}

public enum RankFusion {
    /// Reciprocal rank fusion: each list gives a document 1/(k + rank), ranks from 1; a
    /// document missing from a list gets nothing from it. Ties: the better text rank,
    /// then the better vector rank, then the smaller key.
    public static func fuse(text: [Int64], vector: [Int64], k: Double, limit: Int) -> [RankedHit] {
        var entries: [Int64: (score: Double, textRank: Int?, vectorRank: Int?)] = [:]
        for (i, key) in text.enumerated() {
            entries[key, default: (0, nil, nil)].score += 1 / (k + Double(i + 1))
            entries[key]!.textRank = i + 1
        }
        for (i, key) in vector.enumerated() {
            entries[key, default: (0, nil, nil)].score += 1 / (k + Double(i + 1))
            entries[key]!.vectorRank = i + 1
        }
        let sorted = entries.sorted { a, b in
            if a.value.score != b.value.score { return a.value.score > b.value.score }
            let at = a.value.textRank ?? Int.max, bt = b.value.textRank ?? Int.max
            if at != bt { return at < bt }
            let av = a.value.vectorRank ?? Int.max, bv = b.value.vectorRank ?? Int.max
            if av != bv { return av < bv }
            return a.key < b.key
        }
        return sorted.prefix(limit).map { RankedHit(key: $0.key, score: $0.value.score, textRank: $0.value.textRank, vectorRank: $0.value.vectorRank) }
    }

    /// A search result object: id, text, score, metadata, source (from metadata), and in
    /// hybrid mode the ranks in both lists.
    public static func result(_ hit: RankedHit, id: String, text: String, metadata: JSONValue, hybrid: Bool) -> JSONValue {
        var object: JSONObject = ["id": .string(id), "text": .string(text), "score": .double(hit.score), "metadata": metadata]
        if let source = metadata["source"]?.stringValue { object["source"] = .string(source) }
        if hybrid {
            let textRank: JSONValue = hit.textRank.map { JSONValue.int(Int64($0)) } ?? .null
            let vectorRank: JSONValue = hit.vectorRank.map { JSONValue.int(Int64($0)) } ?? .null
            object["ranks"] = ["text": textRank, "vector": vectorRank]
        }
        return .object(object)
    }
}

/// A storage driver's store: the contract's operations (storage.schema.json), each JSON
/// in and out. Both drivers' states conform, and register them by `operations`.
public protocol StorageBackend: AnyObject {
    func put(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func search(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func get(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func delete(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func collections(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func createCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func dropCollection(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
    func stats(_ input: JSONValue, _ call: CallContext) throws(DriverError) -> JSONValue
}

extension StorageBackend {
    /// The contract's operations by the names the manifests give them.
    public static var operations: [(name: String, run: (Self, JSONValue, CallContext) throws(DriverError) -> JSONValue)] {
        [
            ("put", { s, i, c throws(DriverError) in try s.put(i, c) }),
            ("search", { s, i, c throws(DriverError) in try s.search(i, c) }),
            ("get", { s, i, c throws(DriverError) in try s.get(i, c) }),
            ("delete", { s, i, c throws(DriverError) in try s.delete(i, c) }),
            ("collections", { s, i, c throws(DriverError) in try s.collections(i, c) }),
            ("create_collection", { s, i, c throws(DriverError) in try s.createCollection(i, c) }),
            ("drop_collection", { s, i, c throws(DriverError) in try s.dropCollection(i, c) }),
            ("stats", { s, i, c throws(DriverError) in try s.stats(i, c) }),
        ]
    }
}

/// The JSON-in, JSON-out router entry every storage operation shares.
public enum StorageOperations {
    public static func handle(_ json: String, _ body: (JSONValue) throws(DriverError) -> JSONValue) throws(DriverError) -> String {
        let input: JSONValue
        do { input = try JSON.parse(json) } catch {
            throw DriverError.invalidArgument("invalid input: not valid JSON: \(error)")
        }
        guard input.objectValue != nil else { throw DriverError.invalidArgument("invalid input: expected an object") }
        return try body(input).serialized()
    }
}
