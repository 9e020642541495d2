import Foundation
import LLMOSJSON
import LLMOSNet
import Synchronization
import Testing
@testable import LLMOSKernel

// net.stream.* (LLMOSNet's NetStream and the kernel's system calls): the same checks as
// net.fetch, read piece by piece, against the fake model server (chunked server-sent events)
// and Tests/Fixtures/net/server.py (redirects).

private final class Asked: Sendable {
    let targets = Mutex<[FetchTarget]>([])
    let allowed: @Sendable (FetchTarget) -> Bool
    init(_ allowed: @escaping @Sendable (FetchTarget) -> Bool) { self.allowed = allowed }
    var fetcher: NetFetcher {
        NetFetcher { [self] target in
            targets.withLock { $0.append(target) }
            return allowed(target) ? .allow : .deny("not granted in this test")
        }
    }
    var connects: Int { targets.withLock { $0.filter { $0.stage == .connect }.count } }
}

private func chat(_ server: ModelTestServer, _ text: String) -> FetchRequest {
    let body = #"{"model":"test-model","stream":true,"messages":[{"role":"user","content":"\#(text)"}]}"#
    return FetchRequest(url: server.base + "/chat/completions", method: "POST",
                        headers: [HTTPHeader("Authorization", "Bearer \(modelTestKey)"), HTTPHeader("Content-Type", "application/json")],
                        body: Array(body.utf8), totalTimeoutMs: 30_000)
}

/// Tests/Fixtures/net/server.py, for its redirect routes.
private final class RedirectServer {
    private let server: FixtureServer
    var port: Int { server.port }
    init() throws { server = try FixtureServer("Tests/Fixtures/net/server.py") }
}

@Suite("net.stream", .serialized)
struct NetStreamTests {
    let server: ModelTestServer
    init() throws { server = try ModelTestServer() }

    @Test func readsTheBodyPieceByPiece() throws {
        let asked = Asked { $0.host == "127.0.0.1" }
        let stream = NetStream(fetcher: asked.fetcher, request: chat(server, "hello"))
        let response = try stream.open { false }
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/event-stream")
        var pieces = 0
        var text = ""
        while true {
            let piece = try stream.read(maxBytes: 100) { false }
            #expect(piece.bytes.count <= 100)
            text += String(decoding: piece.bytes, as: UTF8.self)
            if !piece.bytes.isEmpty { pieces += 1 }
            if piece.done { break }
        }
        #expect(pieces > 1)
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(asked.connects == 1)
        stream.close()
        #expect(throws: FetchError.self) { try stream.read { false } }
    }

    @Test func refusalsCancellationTimeoutsAndDrops() throws {
        // Not granted: refused before any connection.
        let none = Asked { _ in false }
        let refused = #expect(throws: FetchError.self) { try NetStream(fetcher: none.fetcher, request: chat(server, "hello")).open { false } }
        #expect(refused?.code == .permissionDenied)
        #expect(none.connects == 0)

        let local = Asked { $0.host == "127.0.0.1" }
        // Cancelled while waiting for the next piece.
        let cancelled = NetStream(fetcher: local.fetcher, request: chat(server, "scenario:slow"))
        _ = try cancelled.open { false }
        let flag = Atomic<Bool>(false)
        _ = try cancelled.read { false }
        Thread.detachNewThread {
            usleep(100_000)
            flag.store(true, ordering: .relaxed)
        }
        let e1 = #expect(throws: FetchError.self) {
            while true { if try cancelled.read(isCancelled: { flag.load(ordering: .relaxed) }).done { break } }
        }
        #expect(e1?.code == .cancelled)

        // Silent for longer than the read timeout.
        let slow = NetStream(fetcher: local.fetcher, request: chat(server, "scenario:slow"), readTimeoutMs: 300)
        _ = try slow.open { false }
        let e2 = #expect(throws: FetchError.self) { while true { if try slow.read(isCancelled: { false }).done { break } } }
        #expect(e2?.code == .timeout)
        #expect(e2?.message.contains("read_timeout_ms") == true)

        // The server hangs up in the middle of the response.
        let dropped = NetStream(fetcher: local.fetcher, request: chat(server, "scenario:drop"))
        _ = try dropped.open { false }
        let e3 = #expect(throws: FetchError.self) { while true { if try dropped.read(isCancelled: { false }).done { break } } }
        #expect(e3?.code == .transferFailed)
        #expect(e3?.message.contains("closed before the response ended") == true)
    }

    @Test func redirectsAreCheckedAgain() throws {
        let net = try RedirectServer()
        let local = Asked { $0.host == "127.0.0.1" }
        let ok = NetStream(fetcher: local.fetcher, request: FetchRequest(url: "http://127.0.0.1:\(net.port)/redirect?to=/ok"))
        let response = try ok.open { false }
        #expect(response.status == 200 && response.redirects.count == 1)
        #expect(String(decoding: try ok.read { false }.bytes, as: UTF8.self) == "ok\n")

        let away = NetStream(fetcher: local.fetcher, request: FetchRequest(url: "http://127.0.0.1:\(net.port)/redirect?to=http://10.0.0.1/x"))
        let e = #expect(throws: FetchError.self) { try away.open { false } }
        #expect(e?.code == .permissionDenied)
        #expect(e?.message.contains("redirect from") == true)
    }

    /// Through the kernel: the probe driver's one system call per call.
    @Test func systemCallsThroughTheKernel() throws {
        let audit = MemoryAuditLog()
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "net.connect=\(server.origin)", action: .allow)])
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy)
            c.network = CurlNetworkService()
            c.audit = audit
        }
        try kernel.load(manifestAt: try Fixtures.install("probe"))
        func sys(_ service: String, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
            let output = try kernel.call("probe.syscall", input: ["service": .string(service), "request": request]).output
            return (try? JSON.parse(output)) ?? .null
        }
        let opened = try sys("net.stream.open", ["url": .string(server.base + "/chat/completions"), "method": "POST",
                                                 "headers": ["Authorization": .string("Bearer \(modelTestKey)")],
                                                 "body": #"{"model":"test-model","stream":true,"messages":[{"role":"user","content":"hi"}]}"#])
        #expect(opened["status"]?.int64Value == 200)
        #expect(opened["stream"]?.int64Value == 1)
        #expect(opened["headers"]?["content-type"]?.stringValue == "text/event-stream")
        // The stream ended with the call that opened it.
        let gone = expectError { try sys("net.stream.read", ["stream": 1]) }
        #expect(gone.code == .notFound)
        #expect(gone.message.contains("no open stream 1 in this call"))

        // And its connection is closed then: the server sees the hang-up of a stream the
        // driver never closed itself.
        let message = "scenario:forever \(UUID().uuidString)"
        let endless = try sys("net.stream.open", ["url": .string(server.base + "/chat/completions"), "method": "POST",
                                                  "headers": ["Authorization": .string("Bearer \(modelTestKey)")],
                                                  "body": .string(#"{"model":"test-model","stream":true,"messages":[{"role":"user","content":"\#(message)"}]}"#)])
        #expect(endless["status"]?.int64Value == 200)
        var hangups = 0
        for _ in 0..<100 where hangups == 0 {
            hangups = try server.closed(message)
            if hangups == 0 { usleep(50_000) }
        }
        #expect(hangups == 1)

        let denied = expectError { try sys("net.stream.open", ["url": "http://127.0.0.2:9/"]) }
        #expect(denied.code == .permissionDenied)
        let unknown = expectError { try sys("net.stream.open", ["url": .string(server.origin), "truncate": true]) }
        #expect(unknown.code == .invalidArgument && unknown.message.contains("unknown field \"truncate\""))

        let records = audit.records.filter { $0.capability == "net.connect" }
        #expect(records.contains { $0.decision == .allow && $0.resource.hasPrefix(server.origin) })
        #expect(records.contains { $0.decision == .deny && $0.resource.hasPrefix("http://127.0.0.2:9") })
        #expect(!records.map { "\($0)" }.joined().contains(modelTestKey))
    }
}
