// The notes driver: a small persistent note store over the kv system calls.
//
// Layout in the driver's own kv namespace (the kernel keeps one per driver):
//
//     notes/index        {"version": 1, "next_id": N, "notes": [{id, title, tags, created, updated, bytes}]}
//     notes/note/<id>    {"id", "title", "body", "tags", "created", "updated"}
//
// The index makes list and tag search one kv.get; a text search reads the notes the
// index names. Every write goes note first, index second, so a failure half way leaves
// at worst a record no index entry names (harmless, and overwritten by the next add),
// never an index entry without its record. A value the store returns that is not what
// this driver wrote (an index that does not parse) is reported and never overwritten.
//
// `threading: serialized` in the manifest: the kernel never runs two calls at once, so
// the index's read-modify-write needs no lock of its own. Two hosts sharing one kv file
// may still race; the last index written wins (documented in the README).
import Foundation
import LLMOSDriverSDK

struct NotesDriver: LLMOSToolDriver {
    static let name = "notes"
    static let version = "1.0.0"

    /// kv values are at most this many bytes (the kernel's kv.put limit, docs/SYSCALLS.md).
    static let maxValueBytes = 1 << 20
    static let indexKey = "notes/index"
    static func noteKey(_ id: Int) -> String { "notes/note/\(id)" }

    init(context: DriverContext) throws {}

    static func register(_ tools: inout Router) {
        tools.add("add", Self.add)
        tools.add("get", Self.get)
        tools.add("update", Self.update)
        tools.add("list", Self.list)
        tools.add("search", Self.search)
        tools.add("delete", Self.delete)
    }

    // MARK: Records

    struct Note: Codable {
        var id: Int
        var title: String
        var body: String
        var tags: [String]
        var created: String
        var updated: String
    }

    struct Summary: Codable {
        var id: Int
        var title: String
        var tags: [String]
        var created: String
        var updated: String
        /// The note's stored size in bytes.
        var bytes: Int
    }

    struct Index: Codable {
        var version: Int
        var nextID: Int
        var notes: [Summary]
        enum CodingKeys: String, CodingKey { case version, nextID = "next_id", notes }
        static var empty: Index { Index(version: 1, nextID: 1, notes: []) }
    }

    // MARK: kv

    struct KeyRequest: Encodable { var key: String }
    struct PutRequest: Encodable { var key: String; var value: String }
    struct GetResponse: Decodable { var found: Bool; var value: String? }
    struct PutResponse: Decodable { var ok: Bool }
    struct DeleteResponse: Decodable { var deleted: Bool }

    func load(_ call: CallContext) throws -> Index {
        let response = try call.syscall("kv.get", KeyRequest(key: Self.indexKey), as: GetResponse.self)
        guard response.found, let text = response.value else { return .empty }
        do {
            return try JSONDecoder().decode(Index.self, from: Data(text.utf8))
        } catch {
            throw DriverError.internal("the note index (kv key \(Self.indexKey)) is not valid: \(error); it was left unchanged — repair or delete that key")
        }
    }

    func encode<T: Encodable>(_ value: T, what: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        guard text.utf8.count <= Self.maxValueBytes else {
            throw DriverError.resourceExhausted("\(what) would be \(text.utf8.count) bytes stored; the kv store keeps at most \(Self.maxValueBytes) bytes per value (kv.put limit)")
        }
        return text
    }

    func save(_ index: Index, _ call: CallContext) throws {
        let text: String
        do { text = try encode(index, what: "the note index") } catch let error as DriverError {
            throw DriverError.resourceExhausted("\(error.message): \(index.notes.count) notes is too many for one index; delete some notes (or shorten their titles and tags)")
        }
        _ = try call.syscall("kv.put", PutRequest(key: Self.indexKey, value: text), as: PutResponse.self)
    }

    func save(_ note: Note, _ call: CallContext) throws -> Int {
        let text = try encode(note, what: "note \(note.id)")
        _ = try call.syscall("kv.put", PutRequest(key: Self.noteKey(note.id), value: text), as: PutResponse.self)
        return text.utf8.count
    }

    func record(_ id: Int, _ index: Index, _ call: CallContext) throws -> Note {
        guard index.notes.contains(where: { $0.id == id }) else {
            throw DriverError.notFound("no note \(id)" + (index.notes.isEmpty ? " (there are no notes)" : "; notes.list shows the ids there are"))
        }
        let response = try call.syscall("kv.get", KeyRequest(key: Self.noteKey(id)), as: GetResponse.self)
        guard response.found, let text = response.value else {
            throw DriverError.notFound("note \(id) is in the index but its record (kv key \(Self.noteKey(id))) is missing; notes.delete \(id) removes the entry")
        }
        do {
            return try JSONDecoder().decode(Note.self, from: Data(text.utf8))
        } catch {
            throw DriverError.internal("note \(id)'s record (kv key \(Self.noteKey(id))) is not valid: \(error)")
        }
    }

    static func now() -> String {
        Date().formatted(.iso8601)
    }

    static func cleanTags(_ tags: [String]?) throws -> [String] {
        var seen: [String] = []
        for tag in tags ?? [] {
            let cleaned = tag.trimmingCharacters(in: .whitespaces).lowercased()
            guard !cleaned.isEmpty else { throw DriverError.invalidArgument("tags must not be empty or blank") }
            if !seen.contains(cleaned) { seen.append(cleaned) }
        }
        return seen
    }

    static func summary(_ note: Note, bytes: Int) -> Summary {
        Summary(id: note.id, title: note.title, tags: note.tags, created: note.created, updated: note.updated, bytes: bytes)
    }

    // MARK: add, get, update

    struct AddInput: Decodable {
        var title: String
        var body: String?
        var tags: [String]?
    }

    func add(_ input: AddInput, _ call: CallContext) throws -> Summary {
        let title = input.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !title.isEmpty else { throw DriverError.invalidArgument("title must not be blank") }
        var index = try load(call)
        let stamp = Self.now()
        let note = Note(id: index.nextID, title: title, body: input.body ?? "", tags: try Self.cleanTags(input.tags), created: stamp, updated: stamp)
        let bytes = try save(note, call)
        index.nextID += 1
        index.notes.append(Self.summary(note, bytes: bytes))
        try save(index, call)
        return Self.summary(note, bytes: bytes)
    }

    struct IDInput: Decodable { var id: Int }

    func get(_ input: IDInput, _ call: CallContext) throws -> Note {
        try record(input.id, try load(call), call)
    }

    struct UpdateInput: Decodable {
        var id: Int
        var title: String?
        var body: String?
        var appendBody: String?
        var tags: [String]?
        enum CodingKeys: String, CodingKey { case id, title, body, tags, appendBody = "append" }
    }

    func update(_ input: UpdateInput, _ call: CallContext) throws -> Summary {
        guard input.title != nil || input.body != nil || input.appendBody != nil || input.tags != nil else {
            throw DriverError.invalidArgument("nothing to update: give title, body, append or tags")
        }
        guard input.body == nil || input.appendBody == nil else {
            throw DriverError.invalidArgument("give body (replace the text) or append (add to it), not both")
        }
        var index = try load(call)
        var note = try record(input.id, index, call)
        if let title = input.title {
            let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw DriverError.invalidArgument("title must not be blank") }
            note.title = trimmed
        }
        if let body = input.body { note.body = body }
        if let more = input.appendBody { note.body += (note.body.isEmpty || note.body.hasSuffix("\n") ? "" : "\n") + more }
        if let tags = input.tags { note.tags = try Self.cleanTags(tags) }
        note.updated = Self.now()
        let bytes = try save(note, call)
        if let position = index.notes.firstIndex(where: { $0.id == note.id }) {
            index.notes[position] = Self.summary(note, bytes: bytes)
        }
        try save(index, call)
        return Self.summary(note, bytes: bytes)
    }

    // MARK: list, search

    struct ListInput: Decodable {
        var tag: String?
        var limit: Int?
        var offset: Int?
    }

    struct ListOutput: Encodable {
        var notes: [Summary]
        var total: Int
        var truncated: Bool
    }

    func list(_ input: ListInput, _ call: CallContext) throws -> ListOutput {
        let index = try load(call)
        let tag = input.tag.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let matching = index.notes.filter { tag == nil || $0.tags.contains(tag!) }.sorted { $0.id > $1.id }  // newest first
        let offset = min(input.offset ?? 0, matching.count)
        let limit = input.limit ?? 100
        let page = Array(matching[offset...].prefix(limit))
        return ListOutput(notes: page, total: matching.count, truncated: offset + page.count < matching.count)
    }

    struct SearchInput: Decodable {
        var query: String?
        var tag: String?
        var limit: Int?
    }

    struct SearchHit: Encodable {
        var id: Int
        var title: String
        var tags: [String]
        var updated: String
        /// Where the query was found: "title" or "body".
        var field: String
        /// Text around the first match in the body, or the title.
        var excerpt: String
    }

    struct SearchOutput: Encodable {
        var results: [SearchHit]
        var searched: Int
        var truncated: Bool
    }

    func search(_ input: SearchInput, _ call: CallContext) throws -> SearchOutput {
        let query = input.query?.trimmingCharacters(in: .whitespacesAndNewlines)
        let tag = input.tag.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard (query.map { !$0.isEmpty } ?? false) || tag != nil else {
            throw DriverError.invalidArgument("search needs query (text in titles and bodies), tag, or both")
        }
        let limit = input.limit ?? 20
        let index = try load(call)
        var output = SearchOutput(results: [], searched: 0, truncated: false)
        for summary in index.notes.sorted(by: { $0.id > $1.id }) {
            if let tag, !summary.tags.contains(tag) { continue }
            try call.checkCancellation()
            guard let query, !query.isEmpty else {
                output.searched += 1
                output.results.append(SearchHit(id: summary.id, title: summary.title, tags: summary.tags, updated: summary.updated, field: "tag", excerpt: summary.title))
                if output.results.count >= limit { output.truncated = true; break }
                continue
            }
            output.searched += 1
            if summary.title.range(of: query, options: .caseInsensitive) != nil {
                output.results.append(SearchHit(id: summary.id, title: summary.title, tags: summary.tags, updated: summary.updated, field: "title", excerpt: summary.title))
            } else {
                let note = try record(summary.id, index, call)
                guard let range = note.body.range(of: query, options: .caseInsensitive) else { continue }
                let start = note.body.index(range.lowerBound, offsetBy: -40, limitedBy: note.body.startIndex) ?? note.body.startIndex
                let end = note.body.index(range.upperBound, offsetBy: 80, limitedBy: note.body.endIndex) ?? note.body.endIndex
                let excerpt = (start > note.body.startIndex ? "…" : "") + note.body[start..<end] + (end < note.body.endIndex ? "…" : "")
                output.results.append(SearchHit(id: summary.id, title: summary.title, tags: summary.tags, updated: summary.updated, field: "body", excerpt: excerpt))
            }
            if output.results.count >= limit { output.truncated = true; break }
        }
        return output
    }

    // MARK: delete

    struct DeleteOutput: Encodable {
        var id: Int
        var deleted: Bool
    }

    func delete(_ input: IDInput, _ call: CallContext) throws -> DeleteOutput {
        var index = try load(call)
        guard let position = index.notes.firstIndex(where: { $0.id == input.id }) else {
            throw DriverError.notFound("no note \(input.id)" + (index.notes.isEmpty ? " (there are no notes)" : "; notes.list shows the ids there are"))
        }
        index.notes.remove(at: position)
        try save(index, call)  // the index first: a failure below leaves an unnamed record, not a dangling entry
        _ = try call.syscall("kv.delete", KeyRequest(key: Self.noteKey(input.id)), as: DeleteResponse.self)
        return DeleteOutput(id: input.id, deleted: true)
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(NotesDriver.self, host, driver) }
