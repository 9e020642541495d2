import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSModelCache

/// Options `llmos ingest` and `llmos search` share: which store, which collection, which embedder.
struct StorageOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The collection (letters, digits, _ . -).", valueName: "NAME"))
    var collection = "docs"

    @Option(help: ArgumentHelp("The storage driver.", valueName: "DRIVER"))
    var storage = "sqlite"

    @Option(help: ArgumentHelp("The database file of the sqlite driver (relative: the workspace's).", valueName: "FILE"))
    var db = ".llmos/storage.sqlite3"

    @Option(name: .customLong("embed"), help: ArgumentHelp("The tool that embeds text, or none for lexical (BM25) storage only. Default: local.embed (the local model's, offline) once `make models` has set it up, else none.", valueName: "TOOL|none"))
    var embedFlag: String?

    /// The embedding tool in use: --embed, else the local model's when it is set up.
    var embed: String? {
        if let embedFlag { return embedFlag == "none" ? nil : embedFlag }
        return StoreAccess.defaultEmbed
    }

    static let namePattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$"

    func validate() throws {
        guard collection.range(of: Self.namePattern, options: .regularExpression) != nil else {
            throw ValidationError("--collection \(collection): a collection name is letters, digits, _ . - (starting with a letter or digit), at most 120 characters")
        }
        guard !db.isEmpty, !db.contains("\0") else { throw ValidationError("--db: a file path, e.g. .llmos/storage.sqlite3") }
    }

    var access: StoreAccess { StoreAccess(storage: storage, collection: collection, db: db, embed: embed) }
    var filesCollection: String { access.filesCollection }

    /// A kernel with the store loaded and the grants in place, or a clear error.
    func kernel(_ host: HostOptions, writing: Bool) throws -> Kernel {
        var host = host
        host.permissions.allow += access.grants(writing: writing)
        let (kernel, report) = try host.makeKernel(reportFailures: false, baseConfig: access.config)
        guard let driver = kernel.driver(named: storage) else {
            let failed = report.failed.first { $0.manifestFile.hasSuffix("/\(storage).yaml") }
            throw CommandFailure(message: failed.map { "the storage driver \(storage) did not load: \($0.error.message)" }
                                 ?? "no storage driver named \(storage) (loaded: \(kernel.driverNames.joined(separator: ", "))); see `llmos drivers`")
        }
        guard driver.deviceClass == .storage else {
            throw CommandFailure(message: "\(storage) is a \(driver.deviceClass.rawValue) driver, not storage; try --storage sqlite")
        }
        if let embed, !kernel.hasTool(embed) {
            throw CommandFailure(message: "--embed \(embed): no such tool is loaded; try local.embed (after `make models`) or --embed none for lexical storage")
        }
        return kernel
    }
}

/// One store as a command uses it: what it must be granted, and how the driver is configured.
/// `llmos ingest`/`search` and the agent shell (--storage, --memory paged) share it, so an
/// agent retrieves from the same database, with the same embedder, that ingest wrote.
struct StoreAccess {
    var storage: String
    var collection: String
    var db: String = ".llmos/storage.sqlite3"
    var embed: String?

    /// The local model's embed once `make models` has set it up, else none (lexical).
    static var defaultEmbed: String? {
        FileManager.default.fileExists(atPath: ModelCache.markerPath(in: ModelCache.directory())) ? "local.embed" : nil
    }

    /// The side collection recording which file versions are fully stored (resumption).
    var filesCollection: String { collection + ".files" }

    /// What the command itself needs, and only that: the store's files, the two
    /// collections, and the embedder when one is named. The operator's policy still
    /// applies on top (a deny there wins).
    func grants(writing: Bool, tools: Bool = false) -> [String] {
        let file = db.hasPrefix("/") ? db : "${workspace}/" + db
        var grants = ["driver:\(storage)/fs.read=\(file)*", "driver:\(storage)/fs.write=\(file)*",
                      "storage.read=\(collection)", "storage.read=\(filesCollection)"]
        if writing {
            grants += ["storage.write=\(collection)", "storage.write=\(filesCollection)", "tool.call=\(storage).delete"]
        }
        if tools { grants.append("tool.call=\(storage).search") }
        // The postgres driver's password, from the variable the operator set (the server
        // itself, net.connect, is the operator's to grant).
        if storage == "postgres" { grants.append("driver:postgres/env=LLMOS_POSTGRES_PASSWORD") }
        if let embed {
            grants.append("driver:\(storage)/tool.call=\(embed)")
            if embed.hasPrefix("local.") { grants.append("driver:local/net.connect=http://127.0.0.1") }
        }
        return grants
    }

    /// The driver configuration for the store.
    var config: [String: JSONValue] {
        guard storage == "sqlite" else { return embed.map { [storage: ["embed_tool": .string($0)]] } ?? [:] }
        var object: JSONObject = ["path": .string(db)]
        if let embed { object["embed_tool"] = .string(embed) }
        return [storage: .object(object)]
    }
}

extension Kernel {
    /// A storage call's output, parsed.
    func storageCall(_ tool: String, _ input: JSONValue) throws -> JSONValue {
        try JSON.parse(call(tool, input: input).output)
    }
}
