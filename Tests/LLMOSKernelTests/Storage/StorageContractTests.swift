import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The storage contract (sdk/schemas/classes/storage.schema.json), through the kernel
// exactly as the agent loop and models call it, against every storage driver in
// StorageDriverUnderTest.all (today: sqlite).

fileprivate let guide: [JSONValue] = [
    ["id": "wal", "text": "Write-ahead logging lets readers continue while a writer commits.",
     "metadata": ["source": "guide/wal.md", "year": 2010, "tags": .strings(["sqlite", "durability"]), "draft": false]],
    ["id": "fts", "text": "FTS5 ranks full-text matches with the BM25 function.",
     "metadata": ["source": "guide/fts.md", "year": 2015, "tags": .strings(["sqlite", "search"]), "draft": true]],
    ["id": "pg", "text": "PostgreSQL stores tsvector columns in a GIN index for full-text search.",
     "metadata": ["source": "guide/pg.md", "year": 2021, "tags": .strings(["postgres", "search"]), "rating": 4.5, "version": "15"]],
    ["id": "vac", "text": "VACUUM rebuilds the database file and reclaims free pages.",
     "metadata": ["source": "guide/vacuum.md", "year": 2005, "version": 15, "reviewed": .null]],
]

@Suite struct StorageContractTests {
    @Test(arguments: StorageDriverUnderTest.all)
    func putGetSearchDeleteStats(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }

        let put = try store.call("put", ["collection": "guide", "documents": .array(guide)])
        #expect(put["ids"] == .strings(["wal", "fts", "pg", "vac"]))
        #expect(put["inserted"] == 4 && put["duplicates"] == 0)
        #expect(put["collection_created"] == true)

        let got = try store.call("get", ["collection": "guide", "ids": .strings(["pg", "nope", "wal"])])
        #expect(got["documents"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["pg", "wal"], "in the order asked")
        #expect(got["missing"] == .strings(["nope"]))
        #expect(got["documents"]?[0]?["metadata"]?["rating"] == 4.5)
        #expect(got["documents"]?[1]?["text"]?.stringValue?.hasPrefix("Write-ahead") == true)

        let search = try store.call("search", ["collection": "guide", "mode": "text", "query": "full-text search index"])
        let results = try #require(search["results"]?.arrayValue)
        #expect(results.first?["id"] == "pg", "the document with most query words ranks first: \(results)")
        #expect(Set(results.compactMap { $0["id"]?.stringValue }) == ["pg", "fts"])
        #expect(results.first?["source"] == "guide/pg.md", "metadata.source is the result's source")
        let scores = results.compactMap { $0["score"]?.doubleValue }
        #expect(scores == scores.sorted(by: >) && scores.allSatisfy { $0 > 0 }, "higher is better: \(scores)")
        #expect(search["mode"] == "text")

        // A question as people type it: punctuation and FTS5 operators are just words.
        let typed = try store.searchIDs(["collection": "guide", "mode": "text", "query": "what does \"VACUUM\" do? NOT AND OR *"])
        #expect(typed.first == "vac")
        #expect(try store.searchIDs(["collection": "guide", "mode": "text", "query": "zeppelin"]).isEmpty)
        let noWords = try store.call("search", ["collection": "guide", "mode": "text", "query": "?!"])
        #expect(noWords["results"] == .array([]))
        #expect(noWords["warnings"]?[0]?.stringValue?.contains("no words") == true)

        #expect(try store.call("search", ["collection": "guide", "mode": "text", "query": "sqlite database", "limit": 1])["results"]?.arrayValue?.count == 1)

        let stats = try store.call("stats", ["collection": "guide"])
        #expect(stats["documents"] == 4 && stats["collections"] == 1 && stats["vectors"] == 0)
        #expect((stats["bytes"]?.int64Value ?? 0) > 200)

        #expect(try store.call("delete", ["collection": "guide", "ids": .strings(["wal", "ghost"])])["deleted"] == 1)
        #expect(try store.call("get", ["collection": "guide", "ids": .strings(["wal"])])["missing"] == .strings(["wal"]))
        #expect(try store.searchIDs(["collection": "guide", "mode": "text", "query": "readers writer"]).isEmpty, "gone from the text index too")
        #expect(try store.call("stats", [:])["documents"] == 3)

        let listed = try store.call("collections", [:])
        #expect(listed["collections"]?[0]?["name"] == "guide" && listed["collections"]?[0]?["documents"] == 3)
        #expect(listed["collections"]?[0]?["dimensions"] == .null)
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func duplicatesReplacementAndDerivedIDs(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        let first = try store.call("put", ["collection": "c", "documents": [["text": "the quick brown fox"], ["text": "lazy dogs sleep"]]])
        let idList = first["ids"]?.arrayValue?.compactMap { $0.stringValue }
        let ids = try #require(idList)
        #expect(ids.count == 2 && ids.allSatisfy { $0.count == 64 }, "ids derived from the text: SHA-256 hex")
        #expect(ids[0] == "9ecb36561341d18eb65484e833efea61edc74b84cf5e6ae1b81c63533e25fc8f", "sha256 of the text")

        // The same text again is stored once; the same id with new content replaces it.
        let again = try store.call("put", ["collection": "c", "documents": [["text": "the quick brown fox"], ["text": "lazy dogs sleep", "metadata": ["k": 1]]]])
        #expect(again["inserted"] == 1 && again["duplicates"] == 1, "\(again)")
        #expect(try store.call("stats", ["collection": "c"])["documents"] == 2)

        _ = try store.call("put", ["collection": "c", "documents": [["id": .string(ids[0]), "text": "a slow green turtle"]]])
        #expect(try store.searchIDs(["collection": "c", "mode": "text", "query": "fox"]).isEmpty, "the old text left the index")
        #expect(try store.searchIDs(["collection": "c", "mode": "text", "query": "turtle"]) == [ids[0]])

        // Metadata keys in another order are the same content.
        _ = try store.call("put", ["collection": "c", "documents": [["id": "m", "text": "t", "metadata": ["a": 1, "b": 2]]]])
        #expect(try store.call("put", ["collection": "c", "documents": [["id": "m", "text": "t", "metadata": ["b": 2, "a": 1]]]])["duplicates"] == 1)
        // Within one batch, a later document with the same id replaces the earlier.
        _ = try store.call("put", ["collection": "c", "documents": [["id": "twice", "text": "one"], ["id": "twice", "text": "two"]]])
        #expect(try store.call("get", ["collection": "c", "ids": ["twice"]])["documents"]?[0]?["text"] == "two")
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func metadataFilters(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        _ = try store.call("put", ["collection": "guide", "documents": .array(guide)])
        func ids(_ filter: JSONValue, query: String = "the database index search write full text file") throws -> Set<String> {
            Set(try store.searchIDs(["collection": "guide", "mode": "text", "query": .string(query), "filter": filter, "limit": 50]))
        }
        #expect(try ids([:]) == ["wal", "fts", "pg", "vac"])
        #expect(try ids(["source": "guide/fts.md"]) == ["fts"])
        #expect(try ids(["tags": "search"]) == ["fts", "pg"], "a list-valued field contains the value")
        #expect(try ids(["tags": "search", "year": 2015]) == ["fts"], "fields AND together")
        #expect(try ids(["draft": false]) == ["wal"])
        #expect(try ids(["draft": true]) == ["fts"])
        #expect(try ids(["version": "15"]) == ["pg"], "typed: the string 15")
        #expect(try ids(["version": 15]) == ["vac"], "typed: the number 15")
        #expect(try ids(["reviewed": .null]) == ["wal", "fts", "pg", "vac"], "null matches null and absent")
        #expect(try ids(["year": ["$gte": 2010, "$lt": 2021]]) == ["wal", "fts"])
        #expect(try ids(["year": ["$gt": 2015]]) == ["pg"])
        #expect(try ids(["rating": ["$lte": 4.5]]) == ["pg"])
        #expect(try ids(["source": ["$gte": "guide/p", "$lt": "guide/w"]]) == ["pg", "vac"], "strings compare as text")
        #expect(try ids(["year": ["$ne": 2010]]) == ["fts", "pg", "vac"])
        #expect(try ids(["tags": ["$ne": "sqlite"]]) == ["pg", "vac"], "$ne on a list: no element equals")
        #expect(try ids(["source": ["$in": .strings(["guide/wal.md", "guide/pg.md", "elsewhere"])]]) == ["wal", "pg"])
        #expect(try ids(["rating": ["$exists": true]]) == ["pg"])
        #expect(try ids(["rating": ["$exists": false]]) == ["wal", "fts", "vac"])
        #expect(try ids(["no such field": "x"]).isEmpty)

        // Filters delete too, and a filter of {} means every document.
        #expect(try store.call("delete", ["collection": "guide", "filter": ["tags": "postgres"]])["deleted"] == 1)
        #expect(try store.call("delete", ["collection": "guide", "ids": ["vac"], "filter": ["year": 2015]])["deleted"] == 2, "ids or filter")
        #expect(try store.call("delete", ["collection": "guide", "filter": [:]])["deleted"] == 1)
        #expect(try store.call("stats", ["collection": "guide"])["documents"] == 0)

        // Bad filters are refused naming the field, before anything runs.
        let unknown = store.failure("search", ["collection": "guide", "mode": "text", "query": "x", "filter": ["year": ["$between": 1]]])
        #expect(unknown.code == .invalidArgument)
        #expect(unknown.message.contains("filter") && unknown.message.contains("year"), "\(unknown.message)")
        let operatorAtTop = store.failure("search", ["collection": "guide", "mode": "text", "query": "x", "filter": ["$or": .array([])]])
        #expect(operatorAtTop.code == .invalidArgument)
        let objectValue = store.failure("search", ["collection": "guide", "mode": "text", "query": "x", "filter": ["year": ["$gt": true]]])
        #expect(objectValue.code == .invalidArgument && objectValue.message.contains("year"), "\(objectValue.message)")
        let nested = store.failure("put", ["collection": "guide", "documents": [["text": "t", "metadata": ["author": ["name": "x"]]]]])
        #expect(nested.code == .invalidArgument && nested.message.contains("author"), "\(nested.message)")
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func vectorSearchAndHybridOrdering(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        // Vectors chosen so that the orders are known: cosine to the query [1, 0, 0]
        // is 1 for a, 0.8 for b, 0.6 for c, 0 for d.
        let documents: [JSONValue] = [
            ["id": "a", "text": "alpha", "vector": .numbers([2, 0, 0]), "metadata": ["kind": "x"]],
            ["id": "b", "text": "beta gamma", "vector": .numbers([0.8, 0.6, 0]), "metadata": ["kind": "y"]],
            ["id": "c", "text": "gamma gamma gamma delta", "vector": .numbers([0.6, 0, 0.8]), "metadata": ["kind": "y"]],
            ["id": "d", "text": "delta", "vector": .numbers([0, 0, 5]), "metadata": ["kind": "x"]],
            ["id": "e", "text": "gamma without a vector"],
        ]
        let put = try store.call("put", ["collection": "v", "documents": .array(documents)])
        #expect(put["dimensions"] == 3)

        let vector = try store.call("search", ["collection": "v", "mode": "vector", "vector": .numbers([1, 0, 0])])
        let hits = try #require(vector["results"]?.arrayValue)
        #expect(hits.compactMap { $0["id"]?.stringValue } == ["a", "b", "c", "d"], "by cosine; e has no vector")
        let scores = hits.compactMap { $0["score"]?.doubleValue }
        #expect(abs(scores[0] - 1) < 1e-6 && abs(scores[1] - 0.8) < 1e-6 && abs(scores[2] - 0.6) < 1e-6 && abs(scores[3]) < 1e-6, "\(scores)")
        #expect(try store.searchIDs(["collection": "v", "mode": "vector", "vector": .numbers([1, 0, 0]), "filter": ["kind": "y"]]) == ["b", "c"])
        #expect(try store.searchIDs(["collection": "v", "mode": "vector", "vector": .numbers([1, 0, 0]), "limit": 2]) == ["a", "b"])

        // Text alone ranks c first (three gammas), then b, then e; vector alone a, b, c, d.
        // Fused (k = 60), each list giving 1/(60 + rank): c (1st and 3rd) 1/61 + 1/63,
        // just ahead of b (2nd and 2nd) 2/62; both beat a, first in one list only (1/61).
        #expect(try store.searchIDs(["collection": "v", "mode": "text", "query": "gamma"]) == ["c", "b", "e"])
        let hybrid = try store.call("search", ["collection": "v", "mode": "hybrid", "query": "gamma", "vector": .numbers([1, 0, 0])])
        let fused = try #require(hybrid["results"]?.arrayValue)
        #expect(fused.compactMap { $0["id"]?.stringValue } == ["c", "b", "a", "e", "d"], "\(fused)")
        #expect(abs((fused[0]["score"]?.doubleValue ?? 0) - (1.0 / 61 + 1.0 / 63)) < 1e-9)
        #expect(abs((fused[1]["score"]?.doubleValue ?? 0) - (2.0 / 62)) < 1e-9)
        #expect(fused[0]["ranks"] == ["text": 1, "vector": 3])
        #expect(fused[1]["ranks"] == ["text": 2, "vector": 2])
        #expect(fused[2]["ranks"] == ["text": .null, "vector": 1])
        #expect(hybrid["mode"] == "hybrid" && hybrid["warnings"] == nil)
        // rrf_k changes the weights: with k = 1, c scores 1/2 + 1/4.
        let sharp = try store.call("search", ["collection": "v", "mode": "hybrid", "query": "gamma", "vector": .numbers([1, 0, 0]), "rrf_k": 1])
        #expect(abs((sharp["results"]?[0]?["score"]?.doubleValue ?? 0) - 0.75) < 1e-9)

        // Hybrid without a query vector (and nothing to embed with) says it fell back.
        let textOnly = try store.call("search", ["collection": "v", "mode": "hybrid", "query": "gamma"])
        #expect(textOnly["mode"] == "text")
        #expect(textOnly["warnings"]?[0]?.stringValue?.contains("ranked by text alone") == true)
        #expect(textOnly["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["c", "b", "e"])

        // Vectors come back from get when asked, as stored (Float32).
        let got = try store.call("get", ["collection": "v", "ids": ["b", "e"], "include_vectors": true])
        #expect(got["documents"]?[0]?["vector"]?.arrayValue?.compactMap(\.doubleValue).map { Float($0) } == [0.8, 0.6, 0])
        #expect(got["documents"]?[1]?["vector"] == nil)
        #expect(try store.call("get", ["collection": "v", "ids": ["b"]])["documents"]?[0]?["vector"] == nil)
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func collectionsAreCreatedListedAndDropped(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        let created = try store.call("create_collection", ["collection": "emb", "dimensions": 4, "metadata": ["model": "test"]])
        #expect(created["created"] == true && created["dimensions"] == 4)
        #expect(try store.call("create_collection", ["collection": "emb"])["created"] == false, "idempotent")
        let conflict = store.failure("create_collection", ["collection": "emb", "dimensions": 8])
        #expect(conflict.code == .invalidArgument && conflict.message.contains("4 dimensions"), "\(conflict.message)")
        let wrong = store.failure("put", ["collection": "emb", "documents": [["text": "x", "vector": .numbers([1, 2, 3])]]])
        #expect(wrong.code == .invalidArgument)
        #expect(wrong.message.contains("documents[0].vector") && wrong.message.contains("3 dimensions") && wrong.message.contains("4"), "\(wrong.message)")

        _ = try store.call("put", ["collection": "other", "documents": [["text": "one"], ["text": "two"]]])
        let listed = try #require(try store.call("collections", [:])["collections"]?.arrayValue)
        #expect(listed.compactMap { $0["name"]?.stringValue } == ["emb", "other"])
        #expect(listed[0]["dimensions"] == 4 && listed[0]["metadata"]?["model"] == "test")
        #expect(listed[1]["documents"] == 2)

        let dropped = try store.call("drop_collection", ["collection": "other"])
        #expect(dropped["dropped"] == true && dropped["documents"] == 2)
        #expect(try store.call("stats", [:])["documents"] == 0)
        let gone = store.failure("search", ["collection": "other", "mode": "text", "query": "one"])
        #expect(gone.code == .notFound)
        #expect(gone.message.contains("no collection \"other\"") && gone.message.contains("collections: emb"), "\(gone.message)")
        #expect(store.failure("drop_collection", ["collection": "other"]).code == .notFound)
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func badInputsAreRefusedNamingTheField(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        _ = try store.call("put", ["collection": "c", "documents": [["id": "a", "text": "x", "vector": .numbers([1, 0])]]])

        // The kernel refuses what the schema rules out before the driver runs.
        let badName = store.failure("put", ["collection": "../etc", "documents": [["text": "x"]]])
        #expect(badName.code == .invalidArgument && badName.message.contains("collection"), "\(badName.message)")
        let noDocuments = store.failure("put", ["collection": "c", "documents": .array([])])
        #expect(noDocuments.code == .invalidArgument && noDocuments.message.contains("documents"), "\(noDocuments.message)")
        let noText = store.failure("put", ["collection": "c", "documents": [["id": "x"]]])
        #expect(noText.code == .invalidArgument && noText.message.contains("text"), "\(noText.message)")
        let misspelt = store.failure("put", ["collection": "c", "documents": [["text": "x", "metadta": [:]]]])
        #expect(misspelt.code == .invalidArgument && misspelt.message.contains("metadta"), "\(misspelt.message)")
        let badMode = store.failure("search", ["collection": "c", "mode": "fuzzy", "query": "x"])
        #expect(badMode.code == .invalidArgument && badMode.message.contains("mode"), "\(badMode.message)")
        let noQuery = store.failure("search", ["collection": "c", "mode": "text"])
        #expect(noQuery.code == .invalidArgument)
        let tooMany = store.failure("search", ["collection": "c", "mode": "text", "query": "x", "limit": 1001])
        #expect(tooMany.code == .invalidArgument && tooMany.message.contains("limit"), "\(tooMany.message)")
        let oversized = store.failure("put", ["collection": "c", "documents": .array(Array(repeating: ["text": "x"], count: 10_001))])
        #expect(oversized.code == .invalidArgument && oversized.message.contains("documents"), "\(oversized.message)")
        let deleteNothing = store.failure("delete", ["collection": "c"])
        #expect(deleteNothing.code == .invalidArgument)

        // The driver refuses what needs the store to judge.
        let zero = store.failure("put", ["collection": "c", "documents": [["text": "y", "vector": .numbers([0, 0])]]])
        #expect(zero.code == .invalidArgument && zero.message.contains("documents[0].vector") && zero.message.contains("zero"), "\(zero.message)")
        let dims = store.failure("search", ["collection": "c", "mode": "vector", "vector": .numbers([1, 0, 0])])
        #expect(dims.code == .invalidArgument && dims.message.contains("3 dimensions") && dims.message.contains("2"), "\(dims.message)")
        let noEmbedder = store.failure("search", ["collection": "c", "mode": "vector", "query": "x"])
        #expect(noEmbedder.code == .unsupported && noEmbedder.message.contains("embed_tool"), "\(noEmbedder.message)")
        let missing = store.failure("get", ["collection": "nope", "ids": ["a"]])
        #expect(missing.code == .notFound && missing.message.contains("nope") && missing.message.contains("collections: c"), "\(missing.message)")
        // A failed batch stores nothing: the good document before the bad one is not kept.
        let half = store.failure("put", ["collection": "c", "documents": [["id": "good", "text": "fine", "vector": .numbers([1, 1])],
                                                                          ["id": "bad", "text": "wrong", "vector": .numbers([1, 1, 1])]]])
        #expect(half.code == .invalidArgument && half.message.contains("documents[1].vector"), "\(half.message)")
        #expect(try store.call("get", ["collection": "c", "ids": ["good"]])["missing"] == ["good"])
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func storePersistsAcrossHosts(_ driver: StorageDriverUnderTest) throws {
        let workspace = Paths.temporaryDirectory("storage-persist")
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        do {
            let first = try StorageHarness(driver, workspace: workspace)
            _ = try first.call("put", ["collection": "notes", "documents": [["id": "n1", "text": "remember the milk", "vector": .numbers([1, 2])]]])
        }
        let second = try StorageHarness(driver, workspace: workspace)
        #expect(try second.searchIDs(["collection": "notes", "mode": "hybrid", "query": "milk", "vector": .numbers([1, 2])]) == ["n1"])
    }
}

/// What the operator's grants decide, and what the driver asks the kernel for.
@Suite struct SQLiteStorageCapabilityTests {
    @Test func withoutTheFileGrantsNothingIsOpened() throws {
        let store = try StorageHarness(.sqlite, grants: ["storage.read=*", "storage.write=*"])
        defer { store.removeWorkspace() }
        let denied = store.failure("put", ["collection": "c", "documents": [["text": "x"]]])
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("store.sqlite3") && denied.message.contains("--allow 'fs.write=PATH*'"), "\(denied.message)")
        #expect(!FileManager.default.fileExists(atPath: store.workspace + "/store.sqlite3"), "nothing was created")

        // Reading without writing is not enough either: SQLite writes its -shm file.
        let dir = Paths.temporaryDirectory("storage-readonly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let readOnly = try StorageHarness(.sqlite, workspace: dir, grants: ["fs.read=\(FilePath.resolved(dir) ?? dir)/store.sqlite3*", "storage.read=*"])
        let refused = readOnly.failure("stats", [:])
        #expect(refused.code == .permissionDenied && refused.message.contains("fs.write"), "\(refused.message)")
    }

    @Test func theDefaultPathIsCreatedWithItsDirectory() throws {
        let dir = Paths.temporaryDirectory("storage-default")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ws = FilePath.resolved(dir) ?? dir
        // No path configured: .llmos/storage.sqlite3 in the workspace, made through fs.write.
        let store = try StorageHarness(.sqlite, workspace: dir, grants: ["fs.read=\(ws)/.llmos/storage.sqlite3*", "fs.write=\(ws)/.llmos/storage.sqlite3*", "storage.read=*"],
                                       extraConfig: ["path": .null])
        let stats = try store.call("stats", [:])
        #expect(stats["file"] == .string(ws + "/.llmos/storage.sqlite3") && stats["documents"] == 0, "\(stats)")
    }

    @Test func aGrantMustCoverTheWALAndSHMFilesToo() throws {
        let dir = Paths.temporaryDirectory("storage-wal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exact = try StorageHarness(.sqlite, workspace: dir, grants: ["fs.read=\(dir)/store.sqlite3", "fs.write=\(dir)/store.sqlite3", "storage.read=*"])
        let error = exact.failure("stats", [:])
        #expect(error.code == .permissionDenied && error.message.contains("store.sqlite3-wal"), "\(error.message)")
    }

    @Test func aDatabaseOutsideTheManifestsRequestIsRefusedEvenWhenGranted() throws {
        let store = try StorageHarness(.sqlite, grants: ["fs.read=/tmp/**", "fs.write=/tmp/**", "storage.read=*"],
                                       extraConfig: ["path": .string("/tmp/llmos-elsewhere-\(UUID().uuidString.prefix(6)).db")])
        defer { store.removeWorkspace() }
        let error = store.failure("stats", [:])
        #expect(error.code == .permissionDenied, "the manifest requests *.sqlite3 under the workspace only: \(error.message)")
    }

    @Test func collectionsAreCheckedAsStorageReadAndWrite() throws {
        let dir = Paths.temporaryDirectory("storage-collections")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = StorageDriverUnderTest.sqlite.grants(FilePath.resolved(dir) ?? dir)
        let store = try StorageHarness(.sqlite, workspace: dir, grants: files + ["storage.write=public*", "storage.read=public*"])
        _ = try store.call("put", ["collection": "public-docs", "documents": [["text": "hello"]]])
        let write = store.failure("put", ["collection": "private", "documents": [["text": "secret"]]])
        #expect(write.code == .permissionDenied)
        #expect(write.message.contains("collection") && write.message.contains("storage.write of private"), "\(write.message)")
        let read = store.failure("search", ["collection": "private", "mode": "text", "query": "secret"])
        #expect(read.code == .permissionDenied && read.message.contains("storage.read of private"), "\(read.message)")

        let denied = try StorageHarness(.sqlite, workspace: dir, grants: files + ["storage.read=*", "storage.write=*"], deny: ["storage.read=public-docs"])
        #expect(denied.failure("get", ["collection": "public-docs", "ids": ["x"]]).code == .permissionDenied, "deny wins")
    }

    @Test func destructiveOperationsNeedTheOperatorsYes() throws {
        let dir = Paths.temporaryDirectory("storage-destructive")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = StorageDriverUnderTest.sqlite.grants(FilePath.resolved(dir) ?? dir)
        let store = try StorageHarness(.sqlite, workspace: dir, grants: files + ["storage.read=*", "storage.write=*"])
        _ = try store.call("put", ["collection": "c", "documents": [["id": "keep", "text": "keep me"]]])
        let asked = store.failure("delete", ["collection": "c", "ids": ["keep"]])
        #expect(asked.code == .permissionDenied && asked.message.contains("destructive"), "\(asked.message)")
        #expect(store.failure("drop_collection", ["collection": "c"]).code == .permissionDenied)
        #expect(try store.call("stats", ["collection": "c"])["documents"] == 1)
    }

    @Test func aFileThatIsNotADatabaseIsReportedNotOverwritten() throws {
        let dir = Paths.temporaryDirectory("storage-notdb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try String(repeating: "not a database\n", count: 100).write(toFile: dir + "/store.sqlite3", atomically: false, encoding: .utf8)
        let store = try StorageHarness(.sqlite, workspace: dir)
        let error = store.failure("stats", [:])
        #expect(error.code == .unavailable && error.message.contains("not a sound SQLite database") && error.message.contains("path"), "\(error.message)")
        #expect(try String(contentsOfFile: dir + "/store.sqlite3", encoding: .utf8).hasPrefix("not a database"))
    }

    @Test func aBadConfigurationRefusesTheLoad() throws {
        let error = expectError { try StorageHarness(.sqlite, extraConfig: ["synchronous": "sometimes"]) }
        #expect(error.message.contains("synchronous"), "\(error.message)")
        let unknown = expectError { try StorageHarness(.sqlite, extraConfig: ["paht": "x.sqlite3"]) }
        #expect(unknown.message.contains("paht"), "\(unknown.message)")
    }

    @Test func embeddingThroughACpuDriversEmbedTool() throws {
        let store = try StorageHarness(.sqlite, extraConfig: ["embed_tool": "scripted.embed"],
                                       alsoLoad: [Paths.manifests + "/scripted.yaml"], otherConfig: ["scripted": ["dimensions": 16]])
        defer { store.removeWorkspace() }
        let put = try store.call("put", ["collection": "e", "documents": [["id": "x", "text": "llamas graze in the andes"], ["id": "y", "text": "compilers emit machine code"]]])
        #expect(put["dimensions"] == 16)
        #expect(try store.call("stats", ["collection": "e"])["vectors"] == 2)
        #expect(try store.call("collections", [:])["collections"]?[0]?["model"] == "scripted")
        // The same text embeds to the same (hash) vector, so a vector query finds it.
        #expect(try store.searchIDs(["collection": "e", "mode": "vector", "query": "compilers emit machine code"]).first == "y")
        let hybrid = try store.call("search", ["collection": "e", "mode": "hybrid", "query": "llamas graze in the andes"])
        #expect(hybrid["mode"] == "hybrid" && hybrid["results"]?[0]?["id"] == "x", "\(hybrid)")
    }
}
