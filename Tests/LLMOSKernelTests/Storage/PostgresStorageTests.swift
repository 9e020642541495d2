import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// What is the postgres driver's own: reaching the server only as the kernel allows
/// (net.connect, checked on the address it connects to; the password through env),
/// many hosts on one store, a lost connection, and what PostgreSQL cannot store.
/// The contract itself is StorageContractTests, run against both drivers.
@Suite struct PostgresStorageTests {
    var server: PostgresTestServer { .shared }

    @Test func withoutTheNetConnectGrantNothingIsReached() throws {
        let store = try StorageHarness(.postgres, grants: ["env=\(PostgresTestServer.passwordVariable)", "storage.read=*", "storage.write=*"])
        defer { store.removeWorkspace() }
        let denied = store.failure("stats", [:])
        #expect(denied.code == .permissionDenied, "\(denied.message)")
        #expect(denied.message.contains("postgresql://127.0.0.1:\(server.port)") && denied.message.contains("--allow 'net.connect=postgresql://"), "\(denied.message)")
        // Nothing was created: the schema does not exist on the server.
        let granted = try StorageHarness(.postgres, workspace: Paths.temporaryDirectory("pg-other"))
        defer { granted.removeWorkspace() }
        #expect(try granted.call("stats", [:])["collections"] == 0)
    }

    @Test func theHostIsResolvedAndCheckedByTheKernel() throws {
        let audit = MemoryAuditLog()
        // "localhost": the kernel resolves it; the policy names it; the driver connects to the address checked.
        let store = try StorageHarness(.postgres, grants: ["net.connect=postgresql://localhost:\(server.port)", "env=\(PostgresTestServer.passwordVariable)", "storage.read=*", "storage.write=*"],
                                       extraConfig: ["host": "localhost"], audit: audit)
        defer { store.removeWorkspace() }
        try store.call("put", ["collection": "c", "documents": [["id": "1", "text": "resolved by the kernel"]]])
        let checks = audit.records.filter { $0.capability == "net.connect" }
        let seen = checks.map { "\($0.resource) \($0.decision) \($0.rule)" }
        // Audited with the address it resolved to, which is what the driver connects to.
        #expect(checks.count == 1 && checks.first?.resource.hasPrefix("postgresql://localhost:\(server.port) (address ") == true && checks.first?.decision == .allow, "\(seen)")
        // A grant for another port does not cover this server.
        let elsewhere = try StorageHarness(.postgres, grants: ["net.connect=postgresql://localhost:1", "env=\(PostgresTestServer.passwordVariable)", "storage.read=*"],
                                           extraConfig: ["host": "localhost"])
        defer { elsewhere.removeWorkspace() }
        #expect(elsewhere.failure("stats", [:]).code == .permissionDenied)
    }

    @Test func aWrongPasswordIsReportedWithoutTheSecret() throws {
        let secret = "wrong-secret-\(UUID().uuidString.prefix(8))"
        setenv("PGPASSWORD", secret, 1)
        let audit = MemoryAuditLog()
        let store = try StorageHarness(.postgres, grants: server.grants + ["env=PGPASSWORD", "storage.read=*"],
                                       extraConfig: ["password_env": "PGPASSWORD"], audit: audit)
        defer { store.removeWorkspace() }
        let refused = store.failure("stats", [:])
        #expect(refused.code == .unavailable && refused.message.contains("127.0.0.1:\(server.port)/llmos") && refused.message.contains("password authentication failed"), "\(refused.message)")
        #expect(!refused.message.contains(secret), "the password is never in a message")
        #expect(!store.log.entries.contains { $0.description.contains(secret) }, "nor in the log")
        #expect(!audit.records.contains { $0.resource.contains(secret) }, "nor in the audit log")
        // The variable is read through env.get, so it needs the env grant.
        let noEnv = try StorageHarness(.postgres, grants: ["net.connect=postgresql://127.0.0.1:\(server.port)", "storage.read=*"])
        defer { noEnv.removeWorkspace() }
        let denied = noEnv.failure("stats", [:])
        #expect(denied.code == .permissionDenied && denied.message.contains("password_env"), "\(denied.message)")
    }

    @Test func aBadConfigurationRefusesTheLoad() throws {
        for (config, field) in [(["host": "/var/run/postgresql"], "Unix socket"), (["schema": "Bad-Name"], "schema"), (["sslmode": "sometimes"], "sslmode")] as [(JSONObject, String)] {
            do {
                let store = try StorageHarness(.postgres, extraConfig: config)
                _ = try store.call("stats", [:])
                Issue.record("\(config) was accepted")
            } catch let error as LLMOSError {
                #expect(error.message.contains(field), "\(error.message)")
            }
        }
    }

    @Test func manyHostsShareOneStore() throws {
        let workspace = Paths.temporaryDirectory("pg-shared")
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let hosts = try (0..<3).map { _ in try StorageHarness(.postgres, workspace: workspace) }
        // Puts from three hosts into one collection at once: each its own transaction.
        DispatchQueue.concurrentPerform(iterations: 3) { h in
            for batch in 0..<10 {
                let documents: [JSONValue] = (0..<20).map { i in ["id": .string("h\(h)-\(batch)-\(i)"), "text": .string("host \(h) batch \(batch) item \(i)")] }
                do { try hosts[h].call("put", ["collection": "shared", "documents": .array(documents)]) } catch { Issue.record("host \(h): \(error)") }
            }
        }
        for host in hosts {
            #expect(try host.call("stats", ["collection": "shared"])["documents"] == 600)
        }
        // What one host writes, the others find at once (no cache outlives a write).
        #expect(try hosts[1].searchIDs(["collection": "shared", "mode": "text", "query": "host 2 batch 9 item 19", "limit": 1]) == ["h2-9-19"])
        try hosts[0].call("put", ["collection": "shared", "documents": [["id": "late", "text": "zebra crossing"]]])
        #expect(try hosts[2].searchIDs(["collection": "shared", "mode": "text", "query": "zebra"]) == ["late"])
    }

    @Test func aLostConnectionIsReopened() throws {
        let audit = MemoryAuditLog()
        let store = try StorageHarness(.postgres, audit: audit)
        defer { store.removeWorkspace() }
        try store.call("put", ["collection": "c", "documents": [["id": "1", "text": "before the restart"]]])
        // The server ends the driver's session (as a restart or an idle timeout would).
        let psql = Process()
        psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        psql.arguments = ["-h", "127.0.0.1", "-p", String(server.port), "-U", "llmos", "-d", "llmos", "-qtAc",
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'llmos-postgres' AND datname = 'llmos'"]
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = ProcessInfo.processInfo.environment[PostgresTestServer.passwordVariable]
        psql.environment = environment
        try psql.run()
        psql.waitUntilExit()
        #expect(psql.terminationStatus == 0)
        // The next call notices, reconnects (checked again) and succeeds.
        #expect(try store.call("get", ["collection": "c", "ids": ["1"]])["documents"]?[0]?["text"] == "before the restart")
        #expect(audit.records.filter { $0.capability == "net.connect" }.count == 2)
    }

    @Test func whatPostgreSQLCannotHoldIsRefusedNamingTheField() throws {
        let store = try StorageHarness(.postgres)
        defer { store.removeWorkspace() }
        let nul = store.failure("put", ["collection": "c", "documents": [["id": "ok", "text": "fine"], ["id": "bad", "text": "a\u{0}b"]]])
        #expect(nul.code == .invalidArgument && nul.message.contains("documents[1].text") && nul.message.contains("NUL"), "\(nul.message)")
        let metadata = store.failure("put", ["collection": "c", "documents": [["text": "x", "metadata": ["k": "a\u{0}"]]]])
        #expect(metadata.code == .invalidArgument && metadata.message.contains("documents[0].metadata"), "\(metadata.message)")
        #expect(try store.call("stats", [:])["documents"] == 0, "nothing of either batch was stored")
    }
}
