import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The notes driver (Plugins/notes, manifests/notes.yaml) through the kernel, over the
// real kv system calls: in memory, and in SQLite to show notes outlive the host.

fileprivate func notesKernel(allow: [String] = ["kv=notes/*"], deny: [String] = [], asker: any Asker = DenyingAsker(),
                             store: any KeyValueStore = InMemoryKeyValueStore()) throws -> Kernel {
    let context = PolicyContext(workspace: "/")
    var rules: [PolicyRule] = []
    for flag in allow { rules.append(try PolicyParser.rule(fromFlag: flag, action: .allow, context: context)) }
    for flag in deny { rules.append(try PolicyParser.rule(fromFlag: flag, action: .deny, context: context)) }
    let kernel = makeKernel { c in
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), asker: asker, context: context)
        c.keyValueStore = store
    }
    try kernel.load(manifestAt: Paths.manifests + "/notes.yaml")
    return kernel
}

fileprivate func call(_ kernel: Kernel, _ tool: String, _ input: String) throws -> [String: Any] {
    let result = try kernel.call(tool, input: input)
    return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)")
}

fileprivate func json(_ value: Any) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: value), as: UTF8.self)
}

@Suite struct NotesTests {
    @Test func addGetUpdateListSearchDelete() throws {
        let store = InMemoryKeyValueStore()
        let kernel = try notesKernel(allow: ["kv=notes/*", "tool.call=notes.delete"], store: store)

        let first = try call(kernel, "notes.add", #"{"title": "Groceries", "body": "milk, eggs\nbread", "tags": ["Home", "shopping", "home"]}"#)
        #expect(first["id"] as? Int == 1)
        #expect(first["tags"] as? [String] == ["home", "shopping"])
        let second = try call(kernel, "notes.add", #"{"title": "Project Apollo", "body": "launch window opens in March", "tags": ["work"]}"#)
        #expect(second["id"] as? Int == 2)
        _ = try call(kernel, "notes.add", #"{"title": "Empty"}"#)

        let got = try call(kernel, "notes.get", #"{"id": 1}"#)
        #expect(got["body"] as? String == "milk, eggs\nbread")
        #expect(got["title"] as? String == "Groceries")

        let list = try call(kernel, "notes.list", "{}")
        #expect((list["notes"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [3, 2, 1])
        #expect(list["total"] as? Int == 3)
        let work = try call(kernel, "notes.list", #"{"tag": "WORK"}"#)
        #expect((work["notes"] as? [[String: Any]])?.compactMap { $0["title"] as? String } == ["Project Apollo"])
        let page = try call(kernel, "notes.list", #"{"limit": 1, "offset": 1}"#)
        #expect((page["notes"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [2])
        #expect(page["truncated"] as? Bool == true)

        let body = try call(kernel, "notes.search", #"{"query": "MARCH"}"#)
        let hit = try #require((body["results"] as? [[String: Any]])?.first)
        #expect(hit["id"] as? Int == 2 && hit["field"] as? String == "body")
        #expect((hit["excerpt"] as? String)?.contains("March") == true)
        let title = try call(kernel, "notes.search", #"{"query": "grocer"}"#)
        #expect((title["results"] as? [[String: Any]])?.first?["field"] as? String == "title")
        let tagged = try call(kernel, "notes.search", #"{"tag": "shopping"}"#)
        #expect((tagged["results"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [1])
        let both = try call(kernel, "notes.search", #"{"tag": "work", "query": "milk"}"#)
        #expect((both["results"] as? [[String: Any]])?.isEmpty == true)

        let updated = try call(kernel, "notes.update", #"{"id": 1, "append": "butter", "tags": ["home"]}"#)
        #expect(updated["tags"] as? [String] == ["home"])
        #expect(try call(kernel, "notes.get", #"{"id": 1}"#)["body"] as? String == "milk, eggs\nbread\nbutter")
        let nothing = expectError { try kernel.call("notes.update", input: #"{"id": 1}"#) }
        #expect(nothing.code == .invalidArgument)
        #expect(nothing.message.contains("nothing to update"), "\(nothing.message)")

        let deleted = try call(kernel, "notes.delete", #"{"id": 2}"#)
        #expect(deleted["deleted"] as? Bool == true)
        let gone = expectError { try kernel.call("notes.get", input: #"{"id": 2}"#) }
        #expect(gone.code == .notFound)
        #expect(gone.message.contains("no note 2"), "\(gone.message)")
        #expect(try store.get(namespace: "notes", key: "notes/note/2") == nil, "the record is gone, not only its index entry")
        // Ids are never reused.
        #expect(try call(kernel, "notes.add", #"{"title": "Later"}"#)["id"] as? Int == 4)
    }

    @Test func notesPersistInTheSQLiteStore() throws {
        let dir = Paths.temporaryDirectory("notes-sqlite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let kernel = try notesKernel(store: try SQLiteKeyValueStore(path: dir + "/kv.sqlite3"))
            _ = try call(kernel, "notes.add", #"{"title": "Remember", "body": "the milk"}"#)
        }
        let again = try notesKernel(store: try SQLiteKeyValueStore(path: dir + "/kv.sqlite3"))
        #expect(try call(again, "notes.get", #"{"id": 1}"#)["body"] as? String == "the milk")
    }

    @Test func capabilityRefusals() throws {
        // The manifest asks for kv notes/*; without the operator's grant nothing is stored.
        let ungranted = try notesKernel(allow: [])
        let error = expectError { try ungranted.call("notes.add", input: #"{"title": "x"}"#) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("kv.get of notes/index denied by default: not granted"), "\(error.message)")

        // A grant wider than the manifest's request does not widen it; a deny wins.
        let denied = try notesKernel(allow: ["kv=*"], deny: ["kv=notes/index"])
        let refused = expectError { try denied.call("notes.list", input: "{}") }
        #expect(refused.code == .permissionDenied)
        #expect(refused.message.contains("--deny kv=notes/index"), "\(refused.message)")

        // delete is destructive: without a terminal (and no allow by name) it is refused.
        let kernel = try notesKernel()
        _ = try call(kernel, "notes.add", #"{"title": "keep me"}"#)
        let asked = expectError { try kernel.call("notes.delete", input: #"{"id": 1}"#) }
        #expect(asked.code == .permissionDenied)
        #expect(asked.message.contains("notes.delete is marked destructive"), "\(asked.message)")
        #expect(try call(kernel, "notes.get", #"{"id": 1}"#)["title"] as? String == "keep me")
        // A person saying yes.
        let yes = ScriptedAsker([.allowOnce])
        let asking = try notesKernel(asker: yes)
        _ = try call(asking, "notes.add", #"{"title": "go"}"#)
        #expect(try call(asking, "notes.delete", #"{"id": 1}"#)["deleted"] as? Bool == true)
        #expect(yes.asked.count == 1)
    }

    @Test func badArgumentsAndSizeLimits() throws {
        let store = InMemoryKeyValueStore()
        let kernel = try notesKernel(store: store)
        let blank = expectError { try kernel.call("notes.add", input: #"{"title": "   "}"#) }
        #expect(blank.code == .invalidArgument)
        #expect(blank.message.contains("title must not be blank"), "\(blank.message)")
        let missing = expectError { try kernel.call("notes.add", input: #"{"body": "no title"}"#) }
        #expect(missing.message.contains("missing required field \"title\""), "\(missing.message)")
        let huge = expectError { try kernel.call("notes.add", input: json(["title": "big", "body": String(repeating: "x", count: 600_000)])) }
        #expect(huge.code == .invalidArgument, "the schema bounds a body below the kv value limit: \(huge.message)")
        let search = expectError { try kernel.call("notes.search", input: "{}") }
        #expect(search.message.contains("needs query"), "\(search.message)")
        let unknown = expectError { try kernel.call("notes.get", input: #"{"id": 42}"#) }
        #expect(unknown.code == .notFound)

        // A note within the schema's characters but over the kv limit in bytes is refused cleanly.
        let euros = String(repeating: "€", count: 400_000)   // 1.2 MB of UTF-8
        let grown = expectError { try kernel.call("notes.add", input: json(["title": "euros", "body": euros])) }
        #expect(grown.code == .resourceExhausted)
        #expect(grown.message.contains("at most 1048576 bytes per value"), "\(grown.message)")
        #expect(try call(kernel, "notes.list", "{}")["total"] as? Int == 0, "nothing half-written")

        // An index this driver did not write is reported and left alone.
        try store.put(namespace: "notes", key: "notes/index", value: "not json")
        let corrupt = expectError { try kernel.call("notes.add", input: #"{"title": "x"}"#) }
        #expect(corrupt.message.contains("the note index (kv key notes/index) is not valid"), "\(corrupt.message)")
        #expect(try store.get(namespace: "notes", key: "notes/index") == "not json")
    }
}
