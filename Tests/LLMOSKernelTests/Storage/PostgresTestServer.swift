import Foundation
import LLMOSDigest
import LLMOSJSON

/// The scratch PostgreSQL server the postgres storage driver's tests run against:
/// started once per test process by scripts/postgres-scratch (a new cluster in a
/// temporary directory, run by an unprivileged user, on a free loopback port, password
/// authentication), and stopped by that script when this process exits, however it
/// exits (its standard input, a pipe held here, closes).
final class PostgresTestServer: @unchecked Sendable {
    let host: String
    let port: Int
    let user: String
    let database: String
    private let process: Process
    private let stdin: Pipe

    /// The variable the driver's password_env names; set in this process.
    static let passwordVariable = "LLMOS_POSTGRES_PASSWORD"

    static let shared: PostgresTestServer = {
        do { return try PostgresTestServer() } catch {
            fatalError("the postgres tests need a scratch PostgreSQL server, and scripts/postgres-scratch could not start one: \(error) (run `make deps` to install postgresql-15)")
        }
    }()

    private init() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.repoRoot + "/scripts/postgres-scratch")
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // The first line is the server's JSON; the script then waits on stdin.
        var line: [UInt8] = []
        let handle = stdout.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty {
                let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw NSError(domain: "postgres-scratch", code: 1, userInfo: [NSLocalizedDescriptionKey: "exited: \(message)"])
            }
            if byte.first == 0x0A { break }
            line.append(contentsOf: byte)
        }
        let info = try JSON.parse(String(decoding: line, as: UTF8.self))
        host = info["host"]?.stringValue ?? "127.0.0.1"
        port = Int(info["port"]?.int64Value ?? 0)
        user = info["user"]?.stringValue ?? "llmos"
        database = info["database"]?.stringValue ?? "llmos"
        setenv(Self.passwordVariable, info["password"]?.stringValue ?? "", 1)
        self.process = process
        self.stdin = stdin
    }

    /// The driver's configuration for a store of its own: one schema per workspace.
    func config(schemaFor workspace: String) -> JSONValue {
        ["host": .string(host), "port": .int(Int64(port)), "user": .string(user), "database": .string(database),
         "password_env": .string(Self.passwordVariable), "schema": .string(Self.schema(for: workspace)), "sslmode": "disable"]
    }

    static func schema(for workspace: String) -> String {
        "t_" + SHA256.hex(of: Array(workspace.utf8)).prefix(20)
    }

    var grants: [String] { ["net.connect=postgresql://\(host):\(port)", "env=\(Self.passwordVariable)"] }
}
