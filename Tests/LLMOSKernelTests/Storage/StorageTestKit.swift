import Foundation
import LLMOSJSON
import LLMOSNet
import Testing
@testable import LLMOSKernel

/// A storage driver the contract suite runs against: how to load it with a fresh
/// store in a workspace of its own, and what the operator grants it. Every contract
/// test runs against each of `all`: sqlite on a file in the workspace, postgres on a
/// schema of its own (named after the workspace) in the scratch server.
struct StorageDriverUnderTest: Sendable, CustomTestStringConvertible {
    var name: String
    var manifest: String
    /// The driver's configuration for a store in `workspace`.
    var config: @Sendable (_ workspace: String) -> JSONValue
    /// The policy flags (--allow ...) that let it reach its store in `workspace`.
    var grants: @Sendable (_ workspace: String) -> [String]

    var testDescription: String { name }

    static let sqlite = StorageDriverUnderTest(
        name: "sqlite",
        manifest: Paths.manifests + "/sqlite.yaml",
        config: { _ in ["path": "store.sqlite3"] },
        grants: { workspace in ["fs.read=\(workspace)/store.sqlite3*", "fs.write=\(workspace)/store.sqlite3*"] })

    static let postgres = StorageDriverUnderTest(
        name: "postgres",
        manifest: Paths.manifests + "/postgres.yaml",
        config: { workspace in PostgresTestServer.shared.config(schemaFor: workspace) },
        grants: { _ in PostgresTestServer.shared.grants })

    static let all: [StorageDriverUnderTest] = [.sqlite, .postgres]
}

/// A kernel with one storage driver loaded over a store in a temporary workspace.
final class StorageHarness: @unchecked Sendable {  // its kernel is thread-safe; tests share one across threads
    let driver: StorageDriverUnderTest
    let workspace: String
    let kernel: Kernel
    let log: MemoryLogSink

    /// `grants` defaults to the driver's file grants plus storage.read/write of every
    /// collection and the destructive operations by name; `extraConfig` is merged into
    /// the driver's configuration (null removes a key); `alsoLoad` are more manifests (e.g. a cpu to embed).
    init(_ driver: StorageDriverUnderTest, workspace: String? = nil, grants: [String]? = nil, extraGrants: [String] = [], deny: [String] = [],
         extraConfig: JSONObject = [:], alsoLoad: [String] = [], otherConfig: [String: JSONValue] = [:],
         audit: MemoryAuditLog? = nil) throws {
        let dir = workspace ?? Paths.temporaryDirectory("storage")
        let ws = FilePath.resolved(dir) ?? dir
        let context = PolicyContext(workspace: ws)
        let allow = grants ?? (driver.grants(ws) + ["storage.read=*", "storage.write=*",
                                                    "tool.call=\(driver.name).delete", "tool.call=\(driver.name).drop_collection"]) + extraGrants
        var rules: [PolicyRule] = []
        for flag in allow { rules.append(try PolicyParser.rule(fromFlag: flag, action: .allow, context: context)) }
        for flag in deny { rules.append(try PolicyParser.rule(fromFlag: flag, action: .deny, context: context)) }
        var config = driver.config(ws).objectValue ?? [:]
        for (key, value) in extraConfig { config[key] = value.isNull ? Optional<JSONValue>.none : value }  // null removes a default
        let configured = config
        let sink = MemoryLogSink()
        let kernel = makeKernel(log: sink) { c in
            c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), asker: DenyingAsker(), context: context)
            c.workspace = ws
            c.network = CurlNetworkService()
            if let audit { c.audit = audit }
            c.driverConfig[driver.name] = .object(configured)
            for (name, value) in otherConfig { c.driverConfig[name] = value }
        }
        for manifest in alsoLoad { try kernel.load(manifestAt: manifest) }
        try kernel.load(manifestAt: driver.manifest)
        self.driver = driver
        self.workspace = ws
        self.kernel = kernel
        self.log = sink
    }

    /// Calls `driver.operation` as a model would, returning the parsed output.
    @discardableResult
    func call(_ operation: String, _ input: JSONValue) throws -> JSONValue {
        let result = try kernel.call("\(driver.name).\(operation)", input: input)
        return try JSON.parse(result.output)
    }

    /// The error of a call that must fail.
    func failure(_ operation: String, _ input: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> LLMOSError {
        expectError({ try self.call(operation, input) }, sourceLocation: sourceLocation)
    }

    /// The ids of a search's results, best first.
    func searchIDs(_ input: JSONValue) throws -> [String] {
        try call("search", input)["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    func removeWorkspace() { try? FileManager.default.removeItem(atPath: workspace) }
}

extension JSONValue {
    /// `.array` of strings, for test inputs.
    static func strings(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
    static func numbers(_ items: [Double]) -> JSONValue { .array(items.map { .double($0) }) }
}

/// Deterministic stand-in embeddings for tests: character trigrams of each word,
/// hashed (FNV-1a) into `dimensions` signed buckets. Like a real embedding they make
/// "compaction" and "compacting" close, which exact-word BM25 cannot; they know no
/// synonyms. Not a model: a real one comes with issue 7's embedding work.
enum TrigramVectors {
    static func vector(_ text: String, dimensions: Int = 256) -> [Double] {
        var v = [Double](repeating: 0, count: dimensions)
        let words = text.lowercased().split { !$0.isLetter && !$0.isNumber }
        for word in words where word.count > 2 {
            let padded = Array(" \(word) ".unicodeScalars)
            for i in 0..<(padded.count - 2) {
                var hash: UInt64 = 0xcbf29ce484222325
                for scalar in padded[i..<(i + 3)] {
                    hash ^= UInt64(scalar.value)
                    hash = hash &* 0x100000001b3
                }
                v[Int(hash % UInt64(dimensions))] += (hash >> 32) & 1 == 0 ? 1 : -1
            }
        }
        if v.allSatisfy({ $0 == 0 }) { v[0] = 1 }
        return v
    }
}
