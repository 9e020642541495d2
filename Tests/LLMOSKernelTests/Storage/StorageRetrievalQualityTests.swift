import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// Retrieval quality on a small labelled corpus built for this test: 24 passages about
// storage and memory, 12 questions each with one known answer. Half the questions use
// the passage's own words; half use other forms of them ("summarising" for
// "summarises", "quantized" for "quantization"), which exact-word BM25 cannot match.
// Two sets of vectors: TrigramVectors (hashed character trigrams, deterministic, always
// there), and the real sentence-embedding model the first-time setup converts
// (all-MiniLM-L6-v2 through local.embed, when it is set up), which also knows synonyms.

fileprivate let corpus: [(id: String, text: String)] = [
    ("wal", "Write-ahead logging appends each change to a separate log file; readers keep reading the database while a writer commits."),
    ("checkpoint", "A checkpoint copies pages from the log back into the main database file and lets the log be reused."),
    ("vacuum", "VACUUM rebuilds the whole database file, packing it tightly and returning free pages to the operating system."),
    ("fts", "The full-text extension builds an inverted index of tokens and ranks matching rows with the BM25 function."),
    ("tokenizer", "Tokenizers split text into terms; the unicode61 tokenizer folds case and can remove diacritics."),
    ("trigger", "Triggers run statements automatically after an insert, update or delete on a table."),
    ("foreign", "Foreign key constraints keep references between tables consistent, cascading deletes when asked."),
    ("blob", "Binary large objects store raw bytes, such as images or packed floating point vectors."),
    ("cosine", "Cosine similarity compares the angle between two embedding vectors, ignoring their lengths."),
    ("rrf", "Reciprocal rank fusion merges ranked lists by adding one over sixty plus the rank from each list."),
    ("bm25", "Okapi BM25 scores documents by term frequency, inverse document frequency and document length."),
    ("embedding", "An embedding model maps sentences to dense vectors so that similar meanings lie close together."),
    ("chunking", "Chunking splits long documents into overlapping passages that follow headings and paragraphs."),
    ("dedup", "Deduplication skips passages whose content hash was already stored."),
    ("transaction", "A transaction groups statements so that they are committed together or rolled back together."),
    ("durability", "Durability means a committed transaction survives a crash or a power failure."),
    ("locking", "Only one writer holds the write lock at a time; other writers wait until a busy timeout expires."),
    ("pragma", "Pragmas change settings of a connection, such as the journal mode or the page cache size."),
    ("quantization", "Quantization stores each vector component in fewer bits, trading a little accuracy for memory."),
    ("hnsw", "Graph indexes such as HNSW find approximate nearest neighbours without scanning every vector."),
    ("recall", "Recall at five is the share of questions whose known answer appears among the first five results."),
    ("postgres", "PostgreSQL keeps tsvector columns in a GIN index, which many hosts can query over the network."),
    ("compaction", "Compaction summarises the oldest messages of a conversation when the context window fills up."),
    ("paging", "Paging moves evicted messages to storage and recalls them when a question needs them again."),
]

fileprivate let questions: [(question: String, answer: String)] = [
    ("which function ranks full-text matches", "fts"),
    ("readers keep reading while a writer commits", "wal"),
    ("rebuild the database file and return free pages", "vacuum"),
    ("merge ranked lists by one over sixty plus rank", "rrf"),
    ("angle between two embedding vectors", "cosine"),
    ("groups statements committed or rolled back together", "transaction"),
    ("tokenizing and folding cases", "tokenizer"),
    ("summarising old conversations", "compaction"),
    ("quantized vectors", "quantization"),
    ("deduplicating hashes", "dedup"),
    ("chunked documents overlap", "chunking"),
    ("checkpointing copies logs", "checkpoint"),
]

@Suite struct StorageRetrievalQualityTests {
    /// The share of questions whose answer is among the first five results.
    fileprivate func recallAt5(_ store: StorageHarness, mode: String, trigrams: Bool = true) throws -> Double {
        var found = 0
        for (question, answer) in questions {
            var input: JSONObject = ["collection": "corpus", "mode": .string(mode), "query": .string(question), "limit": 5]
            if mode != "text" && trigrams { input["vector"] = .numbers(TrigramVectors.vector(question)) }
            if try store.searchIDs(.object(input)).contains(answer) { found += 1 }
        }
        return Double(found) / Double(questions.count)
    }

    @Test(arguments: StorageDriverUnderTest.all)
    func recallAt5LexicalAndHybrid(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver)
        defer { store.removeWorkspace() }
        let documents: [JSONValue] = corpus.map { entry in
            ["id": .string(entry.id), "text": .string(entry.text), "vector": .numbers(TrigramVectors.vector(entry.text)),
             "metadata": ["source": .string("corpus/\(entry.id).md")]]
        }
        _ = try store.call("put", ["collection": "corpus", "documents": .array(documents)])

        let lexical = try recallAt5(store, mode: "text")
        let vector = try recallAt5(store, mode: "vector")
        let hybrid = try recallAt5(store, mode: "hybrid")
        print("storage retrieval (\(driver.name)): recall@5 lexical \(lexical), vector \(vector), hybrid \(hybrid) over \(questions.count) questions")
        #expect(lexical >= 0.7, "lexical recall@5 \(lexical)")
        #expect(hybrid >= 0.9, "hybrid recall@5 \(hybrid)")
        #expect(hybrid > lexical, "fusion with vectors finds the word forms BM25 misses: lexical \(lexical), hybrid \(hybrid)")
    }

    /// The same questions with real embeddings: the driver embeds documents and queries
    /// with local.embed (all-MiniLM-L6-v2, 384-d) through the kernel's tool.call.
    @Test(.enabled(if: RealLocalModel.isSetUp, RealLocalModel.skipReason), arguments: StorageDriverUnderTest.all)
    func recallAt5WithTheRealEmbeddingModel(_ driver: StorageDriverUnderTest) throws {
        let store = try StorageHarness(driver, extraGrants: [localGrant, "driver:\(driver.name)/tool.call=local.embed"],
                                       extraConfig: ["embed_tool": "local.embed"], alsoLoad: [Paths.manifests + "/local.yaml"])
        defer { store.removeWorkspace() }
        let documents: [JSONValue] = corpus.map { entry -> JSONValue in ["id": .string(entry.id), "text": .string(entry.text)] }
        let put = try store.call("put", ["collection": "corpus", "documents": .array(documents)])
        #expect(put["dimensions"] == 384)
        #expect(try store.call("collections", [:])["collections"]?[0]?["model"] == "all-MiniLM-L6-v2.F32")
        let lexical = try recallAt5(store, mode: "text", trigrams: false)
        let vector = try recallAt5(store, mode: "vector", trigrams: false)
        let hybrid = try recallAt5(store, mode: "hybrid", trigrams: false)
        print("storage retrieval (\(driver.name), all-MiniLM-L6-v2): recall@5 lexical \(lexical), vector \(vector), hybrid \(hybrid) over \(questions.count) questions")
        #expect(vector >= 0.9, "vector recall@5 with MiniLM \(vector)")
        #expect(hybrid >= 0.9, "hybrid recall@5 with MiniLM \(hybrid)")
    }
}
