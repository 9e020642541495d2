// The postgres storage driver (class storage): the storage contract
// (sdk/schemas/classes/storage.schema.json) on PostgreSQL, so that many hosts share one
// store. Text: a tsvector column (the 'simple' configuration: no stemming, no stop
// words, like the sqlite driver's unicode61) with a GIN index, ranked with BM25's
// shape (IDF × ts_rank's saturating term frequency ÷ relative length). Vectors: Float32
// bytea, scanned in the driver with SIMD cosine, or through StorageKit's IVF index for
// large collections — Debian 12 ships no pgvector, so nothing here needs a server
// extension. Hybrid: reciprocal rank fusion. Metadata: jsonb, filtered in SQL.
// docs/STORAGE.md and Plugins/storage-postgres/README.md describe it.
//
// How it reaches the server. libpq opens the connection itself, which no system call
// can do for it: this is an in-process driver trusted with the one server the operator
// configures. Before connecting, it asks the kernel (`net.connect`) to check
// postgresql://host:port against the policy and to resolve the host; it then connects
// to the address the kernel checked (libpq's hostaddr), never to a name resolved again.
// The password comes from an environment variable read through `env.get` (checked as
// env), and is never logged or put in a message.
import CLibPQ
import LLMOSDriverSDK
import LLMOSJSON
import StorageKit

struct PostgresStorageDriver: LLMOSDriver {
    static let name = "postgres"
    static let version = "1.0.0"

    let state: PGStoreState

    init(context: DriverContext) throws {
        let config: JSONValue
        do { config = try JSON.parse(context.config) } catch {
            throw DriverError.invalidArgument("postgres configuration: not valid JSON: \(error)")
        }
        state = PGStoreState(configuration: try PGConfiguration(config))
    }

    static func register(_ router: inout Router) {
        for (name, handler) in PGStoreState.operations {
            router.addRaw(name) { (driver: PostgresStorageDriver, json: String, call: CallContext) throws -> String in
                try StorageOperations.handle(json) { input throws(DriverError) in try driver.state.withConnection(call, retry: name != "drop_collection") { () throws(DriverError) in try handler(driver.state, input, call) } }
            }
        }
    }
}

/// The driver's configuration (manifests/postgres.yaml `config`).
struct PGConfiguration {
    var host = "127.0.0.1"
    var port = 5432
    var database = "llmos"
    var user = "llmos"
    /// The environment variable holding the password (read through env.get). Configured:
    /// it must be readable and set. Not configured: LLMOS_POSTGRES_PASSWORD, when it is
    /// set and granted; else no password (trust or certificate authentication).
    var passwordEnv = "LLMOS_POSTGRES_PASSWORD"
    var passwordEnvConfigured = false
    /// The schema the driver's tables live in (one store per schema).
    var schema = "llmos"
    var sslmode = "prefer"
    var connectTimeoutSeconds = 10
    var embedTool: String?
    var vectorIndex = "auto"
    var indexThreshold = 20_000
    var nprobe = 0

    init(_ config: JSONValue) throws(DriverError) {
        func string(_ key: String) throws(DriverError) -> String? {
            guard let value = config[key], !value.isNull else { return nil }
            guard let text = value.stringValue, !text.isEmpty, !text.utf8.contains(0) else {
                throw .invalidArgument("postgres configuration: \(key) must be a non-empty string")
            }
            return text
        }
        func integer(_ key: String, _ range: ClosedRange<Int64>) throws(DriverError) -> Int? {
            guard let value = config[key], !value.isNull else { return nil }
            guard let n = value.int64Value, range.contains(n) else {
                throw .invalidArgument("postgres configuration: \(key) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(n)
        }
        if let v = try string("host") {
            guard !v.hasPrefix("/") else {
                throw .unsupported("postgres configuration: host \(v) is a Unix socket directory; this driver connects over TCP only (the kernel checks net.connect postgresql://host:port), e.g. \"127.0.0.1\"")
            }
            host = v
        }
        if let v = try integer("port", 1...65535) { port = v }
        if let v = try string("database") { database = v }
        if let v = try string("user") { user = v }
        if let v = try string("password_env") {
            guard v.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }) else {
                throw .invalidArgument("postgres configuration: password_env must name an environment variable (A-Z, 0-9, _), e.g. \"LLMOS_POSTGRES_PASSWORD\"")
            }
            passwordEnv = v
            passwordEnvConfigured = true
        }
        if let v = try string("schema") {
            guard Self.isValidSchema(v) else {
                throw .invalidArgument("postgres configuration: schema must be a lowercase identifier (a-z, 0-9, _, starting with a letter or _), at most 63 characters, e.g. \"llmos\"")
            }
            schema = v
        }
        if let v = try string("sslmode") {
            guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(v) else {
                throw .invalidArgument("postgres configuration: sslmode must be disable, prefer, require, verify-ca or verify-full")
            }
            sslmode = v
        }
        if let v = try integer("connect_timeout_s", 1...600) { connectTimeoutSeconds = v }
        if let v = try string("embed_tool") {
            guard v.contains("."), !v.hasPrefix("postgres.") else {
                throw .invalidArgument("postgres configuration: embed_tool must name another driver's embed tool, e.g. \"local.embed\"")
            }
            embedTool = v
        }
        if let v = try string("vector_index") {
            guard ["auto", "exact", "ivf"].contains(v) else { throw .invalidArgument("postgres configuration: vector_index must be \"auto\", \"exact\" or \"ivf\"") }
            vectorIndex = v
        }
        if let v = try integer("index_threshold", 1...Int64(Int32.max)) { indexThreshold = v }
        if let v = try integer("nprobe", 0...4096) { nprobe = v }
    }

    static func isValidSchema(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func lower(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || b == 0x5f }
        return lower(bytes[0]) && bytes.allSatisfy { lower($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    /// host:port/database, for messages.
    var label: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" }
}

/// One instance's connection and what it knows about the store. Not thread-safe: the
/// manifest declares `threading: serialized`.
final class PGStoreState: StorageBackend {
    let configuration: PGConfiguration
    private(set) var connection: PGConnection?
    /// The IVF index of each collection, with the collection version it reflects.
    var vectorIndexes: [Int64: (index: VectorIndex, version: Int64)] = [:]
    /// Document counts, average lengths and term document frequencies, per collection
    /// version (the text ranking's weights).
    var termStatistics: [Int64: (version: Int64, documents: Int64, averageLength: Double, frequencies: [String: Int64])] = [:]

    static let schemaVersion = 1

    init(configuration: PGConfiguration) {
        self.configuration = configuration
    }

    var db: PGConnection {
        // withConnection opened it before any operation runs.
        connection!
    }

    /// Runs `body` with an open connection: connects (after the kernel's checks) on first
    /// use, and again after a lost connection (a server restart, an idle timeout). A call
    /// that finds its connection lost is run once more on a new one: every operation is
    /// safe to repeat (a put of the same documents is a duplicate; a transaction the
    /// server did not commit left nothing), except drop_collection, which `retry` excludes.
    func withConnection<T>(_ call: CallContext, retry: Bool = true, _ body: () throws(DriverError) -> T) throws(DriverError) -> T {
        try open(call)
        do {
            return try body()
        } catch where error.code == .unavailable && connection?.isHealthy == false && retry {
            connection = nil
            try open(call)
            return try body()
        }
    }

    private func open(_ call: CallContext) throws(DriverError) {
        guard connection?.isHealthy != true else { return }
        connection = nil
        vectorIndexes = [:]
        termStatistics = [:]
        let opened = try connect(call)
        try migrate(opened)
        connection = opened
    }

    private func connect(_ call: CallContext) throws(DriverError) -> PGConnection {
        let c = configuration
        let check: JSONValue = ["scheme": "postgresql", "host": .string(c.host), "port": .int(Int64(c.port))]
        let answer: JSONValue
        do { answer = try JSON.parse(try call.syscall("net.connect", check.serialized())) } catch let error as DriverError {
            if error.code == .permissionDenied {
                throw DriverError.permissionDenied("postgres: the server \(c.label) (configuration host, port) may not be used: \(error.message); the operator grants it with --allow 'net.connect=postgresql://\(c.host):\(c.port)', and the postgres manifest must request it")
            }
            throw DriverError(error.code, "postgres: the server \(c.label): \(error.message)")
        } catch {
            throw DriverError.internal("postgres: net.connect answered something that is not JSON")
        }
        guard let address = answer["address"]?.stringValue else { throw .internal("postgres: net.connect gave no address") }
        var password: String?
        let variable = c.passwordEnv
        do {
            let value = try JSON.parse(try call.syscall("env.get", JSONValue.object(["name": .string(variable)]).serialized()))
            password = value["value"]?.stringValue
        } catch let error as DriverError {
            if c.passwordEnvConfigured {
                throw DriverError(error.code, "postgres: the password variable \(variable) (configuration password_env): \(error.message)")
            }
        } catch {
            throw DriverError.internal("postgres: env.get answered something that is not JSON")
        }
        if password == nil && c.passwordEnvConfigured {
            throw .invalidArgument("postgres: the password variable \(variable) (configuration password_env) is not set")
        }
        // Every parameter given, so libpq's PG* environment defaults choose nothing but
        // what the operator configured; no password file, no service file.
        var parameters: [(String, String)] = [
            ("host", answer["host"]?.stringValue ?? c.host), ("hostaddr", address), ("port", String(c.port)),
            ("dbname", c.database), ("user", c.user), ("sslmode", c.sslmode),
            ("connect_timeout", String(c.connectTimeoutSeconds)), ("application_name", "llmos-postgres"),
            ("passfile", "/dev/null/no-password-file"), ("client_encoding", "UTF8"),
            ("options", "-c statement_timeout=0 -c client_min_messages=warning"),
        ]
        if let password { parameters.append(("password", password)) }
        do {
            return try PGConnection(parameters: parameters, label: c.label)
        } catch where password == nil && error.message.contains("no password supplied") {
            throw DriverError(error.code, "\(error.message); the server wants a password: set \(variable) and grant it (--allow 'env=\(variable)'), or configure password_env")
        }
    }

    /// Creates the schema and tables on first use (under an advisory lock, so two hosts
    /// starting together do not race), and refuses a store made by a newer driver.
    private func migrate(_ db: PGConnection) throws(DriverError) {
        let schema = "\"\(configuration.schema)\""
        try db.transaction { () throws(DriverError) in
            try db.query("SELECT pg_advisory_xact_lock(hashtext('llmos-postgres-schema:' || $1))", [.text(configuration.schema)])
            try db.run("CREATE SCHEMA IF NOT EXISTS \(schema)")
            try db.run("CREATE TABLE IF NOT EXISTS \(schema).store_meta(key text PRIMARY KEY, value text NOT NULL)")
            let found = try db.query("SELECT value FROM \(schema).store_meta WHERE key = 'schema_version'")
            if found.count > 0 {
                let version = Int(found.text(0, 0)) ?? 0
                if version > Self.schemaVersion {
                    throw DriverError.unsupported("postgres: the schema \(configuration.schema) on \(configuration.label) has store version \(version), newer than this driver's \(Self.schemaVersion); upgrade llmos or configure another schema")
                }
                return
            }
            try db.run("""
                CREATE TABLE IF NOT EXISTS \(schema).collections(
                    id bigserial PRIMARY KEY,
                    name text NOT NULL UNIQUE,
                    dimensions integer,
                    model text,
                    metadata jsonb NOT NULL DEFAULT '{}',
                    created timestamptz NOT NULL DEFAULT now(),
                    version bigint NOT NULL DEFAULT 0
                )
                """)
            try db.run("""
                CREATE TABLE IF NOT EXISTS \(schema).documents(
                    pk bigserial PRIMARY KEY,
                    collection bigint NOT NULL REFERENCES \(schema).collections(id) ON DELETE CASCADE,
                    id text NOT NULL,
                    text text NOT NULL,
                    metadata jsonb NOT NULL DEFAULT '{}',
                    content_hash text NOT NULL,
                    vector bytea,
                    norm double precision,
                    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED,
                    UNIQUE(collection, id)
                )
                """)
            try db.run("CREATE INDEX IF NOT EXISTS documents_tsv ON \(schema).documents USING gin(tsv)")
            try db.run("INSERT INTO \(schema).store_meta(key, value) VALUES ('schema_version', $1)", [.int(Self.schemaVersion)])
        }
        try db.query("SELECT set_config('search_path', $1, false)", [.text("\(schema), pg_catalog")])
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(PostgresStorageDriver.self, host, driver) }
