import Foundation
import LLMOSNet
import Synchronization
import Testing

// net.fetch (LLMOSNet): a real HTTP server on loopback (Tests/Fixtures/net/server.py), and the
// URL attacks of the capability issue. Only 127.0.0.0/8 is ever connected to: the "forbidden"
// addresses (10.0.0.1, 169.254.169.254) are values the checks refuse before any connection,
// and each such case asserts that the authorizer was never asked about a connection.

// MARK: - Helpers

/// The test's stand-in for the operator's net.connect grants.
/// `hosts`: granted by name or literal (any port); `addresses`: granted by connected address.
private final class NetPolicy: Sendable {
    let hosts: Set<String>
    let addresses: Set<String>
    let everything: Bool
    private let calls = Mutex<[FetchTarget]>([])

    init(hosts: Set<String> = [], addresses: Set<String> = [], everything: Bool = false) {
        self.hosts = hosts
        self.addresses = addresses
        self.everything = everything
    }

    var log: [FetchTarget] { calls.withLock { $0 } }
    /// The addresses libcurl was about to connect to (asked at `.connect`).
    var connectAttempts: [String] { log.filter { $0.stage == .connect }.compactMap(\.address) }

    func authorize(_ target: FetchTarget) -> FetchVerdict {
        calls.withLock { $0.append(target) }
        if everything { return .allow }
        let byHost = hosts.contains(target.host)
        switch target.stage {
        case .beforeConnect:
            if let address = target.address {
                return byHost || addresses.contains(address) ? .allow : .deny("net.connect \(target.resource) is not granted")
            }
            // A name: granted by name, or wait for the address when grants are by address.
            return byHost || !addresses.isEmpty ? .allow : .deny("net.connect \(target.resource) is not granted")
        case .connect:
            return byHost || addresses.contains(target.address ?? "") ? .allow : .deny("net.connect \(target.resource) at \(target.address ?? "?") is not granted")
        }
    }

    var fetcher: NetFetcher { NetFetcher { [self] in authorize($0) } }
}

/// Tests/Fixtures/net/server.py in a child process, on 127.0.0.1 (and 127.0.0.2) ephemeral ports.
private final class NetTestServer {
    private let server: FixtureServer
    var port: Int { server.port }
    var port2: Int? { server.announcement["port2"] as? Int }

    init() throws { server = try FixtureServer("Tests/Fixtures/net/server.py") }

    func stop() { server.stop() }

    var base: String { "http://127.0.0.1:\(port)" }
    var base2: String { "http://127.0.0.2:\(port2 ?? 0)" }

    /// Connections each listener accepted (the /stats request itself counts on 127.0.0.1).
    func connections() throws -> [String: Int] {
        let response = try NetPolicy(everything: true).fetcher.fetch(FetchRequest(url: base + "/stats"))
        return (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int]) ?? [:]
    }
}

private struct NetTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private func withNetServer<T>(_ body: (NetTestServer) throws -> T) throws -> T {
    let server = try NetTestServer()
    defer { server.stop() }
    return try body(server)
}

private func attempt(_ policy: NetPolicy, _ request: FetchRequest) -> Result<FetchResponse, FetchError> {
    Result { () throws(FetchError) in try policy.fetcher.fetch(request) }
}

private func json(_ bytes: [UInt8]) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
}

/// A loopback port with nothing listening on it.
private func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw NetTestError("cannot bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

// MARK: - Tests

@Suite struct NetFetchTests {
    @Test func canonicalForms() throws {
        let cases: [(String, String, String?)] = [
            ("HTTP://LocalHost.:8080/a/../b?q=1#frag", "http://localhost:8080/b?q=1", nil),
            ("http://example.com", "http://example.com:80/", nil),
            ("https://Example.COM/x", "https://example.com:443/x", nil),
            ("http://2130706433/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://0177.0.0.1/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://0x7f.0.0.1/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://0x7F000001/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://127.1/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://127.0.0.1./", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://[::ffff:127.0.0.1]:81/", "http://127.0.0.1:81/", "127.0.0.1"),
            ("http://[::FFFF:7f00:1]/", "http://127.0.0.1:80/", "127.0.0.1"),
            ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]:80/", "::1"),
            ("http://[2001:DB8::A]/", "http://[2001:db8::a]:80/", "2001:db8::a"),
            ("http://%65xample.com/", "http://example.com:80/", nil),
            ("http://127.0.0.1:1234#@169.254.169.254/", "http://127.0.0.1:1234/", "127.0.0.1"),
            ("http://example.com/caf\u{e9} x", "http://example.com:80/caf%C3%A9%20x", nil),
        ]
        for (input, expected, address) in cases {
            let canonical = try NetFetcher.canonicalize(input)
            #expect(canonical.url == expected, "\(input)")
            #expect(canonical.address == address, "\(input)")
        }
        let base = try NetFetcher.canonicalize("http://127.0.0.1:8080/a/b?q")
        #expect(try NetFetcher.resolve("../c", against: base).url == "http://127.0.0.1:8080/c")
        #expect(try NetFetcher.resolve("//Example.com./d", against: base).url == "http://example.com:80/d")
        #expect(try NetFetcher.resolve("?z", against: base).url == "http://127.0.0.1:8080/a/b?z")
    }

    @Test func plainGet() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let response = try policy.fetcher.fetch(FetchRequest(url: server.base + "/ok"))
            #expect(response.status == 200)
            #expect(response.body == Array("ok\n".utf8))
            #expect(response.finalURL == server.base + "/ok")
            #expect(response.redirects.isEmpty)
            #expect(!response.truncated)
            #expect(response.address == "127.0.0.1")
            #expect(response.headerFields["content-type"] == "text/plain")
            #expect(response.bodyForJSON.text == "ok\n" && response.bodyForJSON.encoding == nil)
            // Asked twice: before connecting (the literal's address) and at connect.
            #expect(policy.log.map(\.stage) == [.beforeConnect, .connect])
            #expect(policy.log.allSatisfy { $0.resource == "http://127.0.0.1:\(server.port)" && $0.address == "127.0.0.1" })
        }
    }

    @Test func postWithBodyAndHeaders() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let body = "{\"hello\": \"wörld\"}" + String(repeating: "x", count: 2000)
            let request = FetchRequest(url: server.base + "/echo?x=1", method: "post",
                                       headerFields: ["Content-Type": "application/json", "X-Test": "yes"], body: body)
            let response = try policy.fetcher.fetch(request)
            let echo = json(response.body)
            let headers = echo["headers"] as? [String: String] ?? [:]
            #expect(response.status == 200)
            #expect(echo["method"] as? String == "POST")
            #expect(echo["path"] as? String == "/echo?x=1")
            #expect(echo["body"] as? String == body)
            #expect(headers["content-type"] == "application/json")
            #expect(headers["x-test"] == "yes")
            #expect(headers["expect"] == nil)

            let put = try policy.fetcher.fetch(FetchRequest(url: server.base + "/echo", method: "PUT", body: Array("put body".utf8)))
            #expect(json(put.body)["method"] as? String == "PUT")
            #expect(json(put.body)["body"] as? String == "put body")
            #expect((json(put.body)["headers"] as? [String: String])?["content-type"] == nil)

            let head = try policy.fetcher.fetch(FetchRequest(url: server.base + "/ok", method: "HEAD"))
            #expect(head.status == 200 && head.body.isEmpty)
        }
    }

    @Test func concurrentFetches() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let fetcher = policy.fetcher
            let base = server.base
            let results = Mutex<[Int]>([])
            DispatchQueue.concurrentPerform(iterations: 24) { i in
                let status = (try? fetcher.fetch(FetchRequest(url: base + (i % 2 == 0 ? "/ok" : "/redirect?to=/ok"))))?.status ?? -1
                results.withLock { $0.append(status) }
            }
            #expect(results.withLock { $0 } == Array(repeating: 200, count: 24))
            #expect(policy.log.count == 12 * 2 + 12 * 4)
        }
    }

    @Test func binaryBodyIsBase64() throws {
        try withNetServer { server in
            let response = try NetPolicy(hosts: ["127.0.0.1"]).fetcher.fetch(FetchRequest(url: server.base + "/binary"))
            #expect(response.body == Array(0...255))
            #expect(response.bodyForJSON.encoding == "base64")
            #expect(Data(base64Encoded: response.bodyForJSON.text) == Data(Array(0...255)))
        }
    }

    @Test func redirectsFollowedAndRechecked() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let response = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?to=/redirect%3Fto%3D/ok"))
            #expect(response.status == 200)
            #expect(response.body == Array("ok\n".utf8))
            #expect(response.redirects == [server.base + "/redirect?to=/ok", server.base + "/ok"])
            #expect(response.finalURL == server.base + "/ok")
            // Three hops, each asked twice.
            #expect(policy.log.count == 6)
            #expect(policy.log[2].redirectedFrom == server.base + "/redirect?to=/redirect%3Fto%3D/ok")

            // 303 turns a POST into a GET without its body; 307 repeats it.
            let seeOther = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?status=303&to=/echo", method: "POST", body: Array("data".utf8)))
            #expect(json(seeOther.body)["method"] as? String == "GET")
            #expect(json(seeOther.body)["body"] as? String == "")
            let temporary = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?status=307&to=/echo", method: "POST", body: Array("data".utf8)))
            #expect(json(temporary.body)["method"] as? String == "POST")
            #expect(json(temporary.body)["body"] as? String == "data")

            // maxRedirects 0: the redirect itself is the answer.
            let raw = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?to=/ok", maxRedirects: 0))
            #expect(raw.status == 302 && raw.header("location") == "/ok")

            // A loop ends at the limit.
            let loop = attempt(policy, FetchRequest(url: server.base + "/loop", maxRedirects: 3))
            #expect(loop.error?.code == .tooManyRedirects)
        }
    }

    @Test func credentialsStayWithTheirOrigin() throws {
        try withNetServer { server in
            guard server.port2 != nil else { return }
            let policy = NetPolicy(hosts: ["127.0.0.1", "127.0.0.2"])
            let headers = ["Authorization": "Bearer secret", "X-Other": "kept"]
            let same = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?to=/headers", headerFields: headers))
            #expect(json(same.body)["authorization"] as? String == "Bearer secret")
            let other = try policy.fetcher.fetch(FetchRequest(url: server.base + "/redirect?to=\(server.base2)/headers", headerFields: headers))
            #expect(other.finalURL == server.base2 + "/headers")
            #expect(json(other.body)["authorization"] == nil)
            #expect(json(other.body)["x-other"] as? String == "kept")
        }
    }

    @Test func namesAndMappedAddressesUnderAddressGrants() throws {
        try withNetServer { server in
            // A name, granted by the address it connects to (::1 is refused, 127.0.0.1 is used).
            let byAddress = NetPolicy(addresses: ["127.0.0.1"])
            let named = try byAddress.fetcher.fetch(FetchRequest(url: "http://LOCALHOST:\(server.port)/ok"))
            #expect(named.status == 200 && named.address == "127.0.0.1")
            #expect(named.finalURL == "http://localhost:\(server.port)/ok")
            #expect(byAddress.log.first?.address == nil)  // a name is not resolved before connecting
            #expect(byAddress.connectAttempts.contains("127.0.0.1"))

            // An IPv4-mapped literal is checked, and connected, as its IPv4 address.
            let byLiteral = NetPolicy(hosts: ["127.0.0.1"])
            let mapped = try byLiteral.fetcher.fetch(FetchRequest(url: "http://[::ffff:127.0.0.1]:\(server.port)/ok"))
            #expect(mapped.status == 200 && mapped.finalURL == server.base + "/ok")
            #expect(byLiteral.log.allSatisfy { $0.host == "127.0.0.1" && $0.address == "127.0.0.1" })
        }
    }

    @Test func responseCapAndTruncation() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let cap = 100_000
            let fits = try policy.fetcher.fetch(FetchRequest(url: server.base + "/big?n=\(cap)", maxResponseBytes: cap))
            #expect(fits.body.count == cap && !fits.truncated)

            let declared = attempt(policy, FetchRequest(url: server.base + "/big?n=\(cap + 1)", maxResponseBytes: cap))
            #expect(declared.error?.code == .tooLarge)
            #expect(declared.error?.message.contains("larger than \(cap) bytes") == true)

            let streamed = attempt(policy, FetchRequest(url: server.base + "/big?n=50000000&chunked=1", maxResponseBytes: cap))
            #expect(streamed.error?.code == .tooLarge)

            let cut = try policy.fetcher.fetch(FetchRequest(url: server.base + "/big?n=50000000&chunked=1", maxResponseBytes: cap, truncate: true))
            #expect(cut.truncated && cut.body.count == cap && cut.status == 200)
        }
    }

    @Test func timeouts() throws {
        try withNetServer { server in
            let policy = NetPolicy(hosts: ["127.0.0.1"])
            let start = ContinuousClock.now
            let slow = attempt(policy, FetchRequest(url: server.base + "/slow?ms=5000", totalTimeoutMs: 300))
            #expect(slow.error?.code == .timeout)
            #expect(slow.error?.message == "no complete response from \(server.base)/slow?ms=5000 within 300 ms (timeout_ms)")
            #expect(ContinuousClock.now - start < .seconds(3))
            let fast = try policy.fetcher.fetch(FetchRequest(url: server.base + "/slow?ms=10", totalTimeoutMs: 5000))
            #expect(fast.status == 200)
        }
    }

    @Test func connectionRefused() throws {
        let port = try closedPort()
        let result = attempt(NetPolicy(hosts: ["127.0.0.1"]), FetchRequest(url: "http://127.0.0.1:\(port)/"))
        #expect(result.error?.code == .connectFailed)
        #expect(result.error?.message == "no server at http://127.0.0.1:\(port) — connection refused")
    }

    @Test func tlsToAPlainServerFails() throws {
        try withNetServer { server in
            let result = attempt(NetPolicy(hosts: ["127.0.0.1"]), FetchRequest(url: "https://127.0.0.1:\(server.port)/ok", totalTimeoutMs: 5000))
            #expect(result.error?.code == .tlsFailed)
        }
    }

    @Test func explicitProxyIsAuthorizedAsItself() throws {
        try withNetServer { server in
            // The target is never resolved (the proxy would); the connection is to the proxy.
            let policy = NetPolicy(hosts: ["target.invalid", "127.0.0.1"])
            let fetcher = NetFetcher(proxy: server.base) { policy.authorize($0) }
            let response = try fetcher.fetch(FetchRequest(url: "http://target.invalid/ok"))
            #expect(response.status == 200)
            let connect = policy.log.first { $0.stage == .connect }
            #expect(connect?.viaProxy == true && connect?.address == "127.0.0.1" && connect?.port == server.port)
            #expect(connect?.url == "http://target.invalid:80/ok")
        }
    }

    // MARK: The attack suite

    private struct Attack {
        var name: String
        var policy: NetPolicy
        var request: FetchRequest
        var code: FetchError.Code
        var message: String
        /// Refused before libcurl was asked to connect anywhere.
        var beforeConnect = true
    }

    @Test func urlAttacksAreRefused() throws {
        try withNetServer { server in
            let local = { NetPolicy(hosts: ["127.0.0.1"]) }
            let all = { NetPolicy(everything: true) }
            let base = server.base
            let port = server.port
            func get(_ url: String) -> FetchRequest { FetchRequest(url: url, totalTimeoutMs: 5000) }
            func redirect(_ to: String, status: Int = 302) -> FetchRequest {
                let escaped = to.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? to
                return get("\(base)/redirect?status=\(status)&to=\(escaped)")
            }
            let userInfo = "URLs with user info are refused"
            let scheme = "only http and https URLs are fetched"
            var attacks: [Attack] = [
                // User info: the real host is after the @.
                Attack(name: "userinfo allowed@evil", policy: local(), request: get("http://127.0.0.1:\(port)@169.254.169.254/"), code: .invalidURL, message: userInfo),
                Attack(name: "userinfo user:pass@allowed", policy: local(), request: get("http://user:pass@127.0.0.1:\(port)/ok"), code: .invalidURL, message: userInfo),
                Attack(name: "userinfo empty @", policy: local(), request: get("http://@127.0.0.1:\(port)/ok"), code: .invalidURL, message: userInfo),
                Attack(name: "userinfo :password@", policy: local(), request: get("http://:x@10.0.0.1/"), code: .invalidURL, message: userInfo),
                Attack(name: "userinfo with encoded @", policy: local(), request: get("http://127.0.0.1%40@10.0.0.1/"), code: .invalidURL, message: userInfo),
                Attack(name: "backslash before @", policy: local(), request: get("http://127.0.0.1\\@10.0.0.1/"), code: .invalidURL, message: "backslash"),
                // IPv4 literals in every form, to forbidden addresses.
                Attack(name: "decimal IPv4", policy: local(), request: get("http://167772161/"), code: .permissionDenied, message: "http://10.0.0.1:80 refused"),
                Attack(name: "decimal IPv4 metadata", policy: local(), request: get("http://2852039166/latest/meta-data/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "octal IPv4", policy: local(), request: get("http://012.0.0.01/"), code: .permissionDenied, message: "http://10.0.0.1:80 refused"),
                Attack(name: "octal IPv4 long zeros", policy: local(), request: get("http://0000251.0376.0251.0376/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "hex IPv4 dotted", policy: local(), request: get("http://0xa9.0xfe.0xa9.0xfe/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "hex IPv4 whole", policy: local(), request: get("http://0xA9FEA9FE/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "short IPv4 a.b", policy: local(), request: get("http://10.1/"), code: .permissionDenied, message: "http://10.0.0.1:80 refused"),
                Attack(name: "short IPv4 a.b.c", policy: local(), request: get("http://169.254.43518/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "mixed radix IPv4", policy: local(), request: get("http://0251.0xfe.43518/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "trailing dot IPv4", policy: local(), request: get("http://10.0.0.1./"), code: .permissionDenied, message: "http://10.0.0.1:80 refused"),
                Attack(name: "other loopback 127.0.0.2 decimal", policy: local(), request: get("http://2130706434:\(port)/ok"), code: .permissionDenied, message: "http://127.0.0.2:\(port) refused"),
                Attack(name: "https to forbidden literal", policy: local(), request: get("https://10.0.0.1/"), code: .permissionDenied, message: "https://10.0.0.1:443 refused"),
                // Numbers that are no IPv4 address are not names either.
                Attack(name: "five-part number", policy: all(), request: get("http://1.2.3.4.5/"), code: .invalidURL, message: "not a valid one"),
                Attack(name: "IPv4 overflow", policy: all(), request: get("http://4294967306/"), code: .invalidURL, message: "not a valid one"),
                Attack(name: "bad octal digit", policy: all(), request: get("http://08.0.0.1/"), code: .invalidURL, message: "not a valid one"),
                Attack(name: "octet over 255", policy: all(), request: get("http://256.0.0.1/"), code: .invalidURL, message: "not a valid one"),
                // IPv6, including IPv4-mapped: checked as the IPv4 address.
                Attack(name: "IPv6-mapped dotted", policy: local(), request: get("http://[::ffff:10.0.0.1]/"), code: .permissionDenied, message: "http://10.0.0.1:80 refused"),
                Attack(name: "IPv6-mapped hex", policy: local(), request: get("http://[::ffff:a9fe:a9fe]/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "IPv6-mapped long form", policy: local(), request: get("http://[0:0:0:0:0:FFFF:169.254.169.254]/"), code: .permissionDenied, message: "http://169.254.169.254:80 refused"),
                Attack(name: "IPv6-mapped other loopback", policy: local(), request: get("http://[::ffff:127.0.0.2]:\(port)/ok"), code: .permissionDenied, message: "http://127.0.0.2:\(port) refused"),
                Attack(name: "IPv6 loopback not granted", policy: local(), request: get("http://[::1]:\(port)/ok"), code: .permissionDenied, message: "http://[::1]:\(port) refused"),
                Attack(name: "IPv6 zone id", policy: all(), request: get("http://[fe80::1%25lo]/"), code: .invalidURL, message: "zone IDs are refused"),
                // The unspecified address reaches this machine: refused whatever the grants.
                Attack(name: "0.0.0.0", policy: all(), request: get("http://0.0.0.0:\(port)/ok"), code: .permissionDenied, message: "unspecified address"),
                Attack(name: "0 (short 0.0.0.0)", policy: all(), request: get("http://0:\(port)/ok"), code: .permissionDenied, message: "unspecified address"),
                Attack(name: "[::]", policy: all(), request: get("http://[::]:\(port)/ok"), code: .permissionDenied, message: "unspecified address"),
                // Schemes.
                Attack(name: "file://", policy: all(), request: get("file:///etc/passwd"), code: .invalidURL, message: scheme),
                Attack(name: "gopher://", policy: all(), request: get("gopher://127.0.0.1:\(port)/_GET%20/ok"), code: .invalidURL, message: scheme),
                Attack(name: "dict://", policy: all(), request: get("dict://127.0.0.1:\(port)/"), code: .invalidURL, message: scheme),
                Attack(name: "ftp://", policy: all(), request: get("ftp://127.0.0.1:\(port)/"), code: .invalidURL, message: scheme),
                Attack(name: "javascript:", policy: all(), request: get("javascript:alert(1)"), code: .invalidURL, message: scheme),
                Attack(name: "relative URL", policy: all(), request: get("/etc/passwd"), code: .invalidURL, message: "not an absolute http(s) URL"),
                // Empty and disguised hosts.
                Attack(name: "empty host http://", policy: all(), request: get("http://"), code: .invalidURL, message: "empty host"),
                Attack(name: "empty host with port", policy: all(), request: get("http://:\(port)/ok"), code: .invalidURL, message: "empty host"),
                Attack(name: "three slashes", policy: all(), request: get("http:///127.0.0.1/ok"), code: .invalidURL, message: "expected scheme://host"),
                Attack(name: "one slash", policy: all(), request: get("http:/127.0.0.1/ok"), code: .invalidURL, message: "expected scheme://host"),
                Attack(name: "backslashes", policy: all(), request: get("http:\\\\127.0.0.1\\ok"), code: .invalidURL, message: "expected scheme://host"),
                Attack(name: "IDN host", policy: all(), request: get("http://b\u{fc}cher.example/"), code: .invalidURL, message: "internationalized host names"),
                Attack(name: "percent-encoded IDN host", policy: all(), request: get("http://b%C3%BCcher.example/"), code: .invalidURL, message: "internationalized host names"),
                Attack(name: "fullwidth dot host", policy: all(), request: get("http://127\u{ff0e}0\u{ff0e}0\u{ff0e}1/"), code: .invalidURL, message: "internationalized host names"),
                Attack(name: "empty label", policy: all(), request: get("http://a..example/"), code: .invalidURL, message: "not a valid host name"),
                Attack(name: "encoded slash in host", policy: all(), request: get("http://127.0.0.1%2f@10.0.0.1/"), code: .invalidURL, message: userInfo),
                Attack(name: "control character in URL", policy: all(), request: get("http://127.0.0.1:\(port)/ok\r\nX-Injected: 1"), code: .invalidURL, message: "control character"),
                Attack(name: "port 0", policy: all(), request: get("http://127.0.0.1:0/"), code: .invalidURL, message: "between 1 and 65535"),
                Attack(name: "port out of range", policy: all(), request: get("http://127.0.0.1:65536/"), code: .invalidURL, message: "not a valid URL"),
                // Requests that would reach something else than what was checked.
                Attack(name: "Host header", policy: local(), request: FetchRequest(url: base + "/headers", headerFields: ["Host": "evil.example"]), code: .invalidRequest, message: "Host is set by net.fetch"),
                Attack(name: "header injection", policy: local(), request: FetchRequest(url: base + "/headers", headerFields: ["X-A": "1\r\nHost: evil"]), code: .invalidRequest, message: "header injection"),
                Attack(name: "bad header name", policy: local(), request: FetchRequest(url: base + "/headers", headerFields: ["X A:": "1"]), code: .invalidRequest, message: "not an HTTP token"),
                Attack(name: "CONNECT method", policy: local(), request: FetchRequest(url: base + "/ok", method: "CONNECT"), code: .invalidRequest, message: "is not one of"),
                Attack(name: "Proxy-Authorization header", policy: local(), request: FetchRequest(url: base + "/ok", headerFields: ["Proxy-Authorization": "x"]), code: .invalidRequest, message: "set by net.fetch"),
                // Redirects from an allowed endpoint to forbidden ones: each hop is checked again.
                Attack(name: "redirect to 169.254.169.254", policy: local(), request: redirect("http://169.254.169.254/latest/meta-data/"), code: .permissionDenied,
                       message: "redirect from \(base)/redirect?status=302&to=http%3A%2F%2F169%2E254%2E169%2E254%2Flatest%2Fmeta%2Ddata%2F to http://169.254.169.254:80/latest/meta-data/ refused"),
                Attack(name: "redirect to decimal metadata", policy: local(), request: redirect("http://2852039166/"), code: .permissionDenied, message: "to http://169.254.169.254:80/ refused"),
                Attack(name: "redirect to mapped IPv6", policy: local(), request: redirect("http://[::ffff:10.0.0.1]/"), code: .permissionDenied, message: "to http://10.0.0.1:80/ refused"),
                Attack(name: "redirect scheme-relative", policy: local(), request: redirect("//10.0.0.1/x"), code: .permissionDenied, message: "to http://10.0.0.1:80/x refused"),
                Attack(name: "redirect with user info", policy: local(), request: redirect("http://127.0.0.1:\(port)@10.0.0.1/"), code: .invalidURL, message: userInfo),
                Attack(name: "redirect to file://", policy: local(), request: redirect("file:///etc/passwd"), code: .invalidURL, message: scheme),
                Attack(name: "redirect to gopher://", policy: local(), request: redirect("gopher://127.0.0.1:\(port)/_x"), code: .invalidURL, message: scheme),
                Attack(name: "redirect slash-backslash", policy: local(), request: redirect("/\\10.0.0.1/"), code: .invalidURL, message: "expected scheme://host"),
                Attack(name: "redirect 307 to unspecified", policy: all(), request: redirect("http://0.0.0.0:\(port)/ok", status: 307), code: .permissionDenied, message: "unspecified address"),
                Attack(name: "redirect to a name not granted", policy: local(), request: redirect("http://localhost:\(port)/ok"), code: .permissionDenied, message: "to http://localhost:\(port)/ok refused"),
                // A name that resolves to an address the grant (by address) does not cover: refused at connect.
                Attack(name: "localhost vs address grant", policy: NetPolicy(addresses: ["127.0.0.2"]), request: get("http://localhost:\(port)/ok"),
                       code: .permissionDenied, message: "connection to http://localhost:\(port) refused at connect — ", beforeConnect: false),
                Attack(name: "redirect to localhost vs address grant", policy: NetPolicy(hosts: ["127.0.0.1"], addresses: ["127.0.0.2"]), request: redirect("http://localhost:\(port)/ok"),
                       code: .permissionDenied, message: "(redirected from \(base)/redirect", beforeConnect: false),
                // Oversized and slow responses.
                Attack(name: "response over the cap (declared)", policy: local(), request: FetchRequest(url: base + "/big?n=2000000", maxResponseBytes: 1 << 20), code: .tooLarge, message: "larger than 1048576 bytes", beforeConnect: false),
                Attack(name: "response over the cap (streamed)", policy: local(), request: FetchRequest(url: base + "/big?n=200000000&chunked=1", maxResponseBytes: 1 << 20), code: .tooLarge, message: "larger than 1048576 bytes", beforeConnect: false),
                Attack(name: "slow server", policy: local(), request: FetchRequest(url: base + "/slow?ms=5000", totalTimeoutMs: 200), code: .timeout, message: "within 200 ms", beforeConnect: false),
                Attack(name: "redirect loop", policy: local(), request: FetchRequest(url: base + "/loop"), code: .tooManyRedirects, message: "more than 5 redirects", beforeConnect: false),
                Attack(name: "oversized request body", policy: local(), request: FetchRequest(url: base + "/echo", method: "POST", body: [UInt8](repeating: 1, count: (16 << 20) + 1)), code: .tooLarge, message: "request body"),
            ]
            if let port2 = server.port2 {
                attacks.append(Attack(name: "redirect to 127.0.0.2", policy: local(), request: redirect("http://127.0.0.2:\(port2)/ok"), code: .permissionDenied,
                                      message: "to http://127.0.0.2:\(port2)/ok refused: net.connect http://127.0.0.2:\(port2) is not granted"))
                attacks.append(Attack(name: "redirect to 127.0.0.2 in hex", policy: local(), request: redirect("http://0x7f000002:\(port2)/ok", status: 308), code: .permissionDenied,
                                      message: "to http://127.0.0.2:\(port2)/ok refused"))
            }

            let verbose = ProcessInfo.processInfo.environment["LLMOS_NET_VERBOSE"] != nil
            var refused = 0
            var names = Set<String>()
            for attack in attacks {
                #expect(names.insert(attack.name).inserted, "duplicate attack name \(attack.name)")
                switch attempt(attack.policy, attack.request) {
                case .success(let response):
                    Issue.record("\(attack.name): not refused (status \(response.status), \(response.finalURL))")
                case .failure(let error):
                    let ok = error.code == attack.code && error.message.contains(attack.message)
                    if verbose { print("net attack \(attack.name): \(error)") }
                    #expect(ok, "\(attack.name): got \(error)")
                    // (`connected` is about the hop that failed: for a bad Location, the hop that sent it.)
                    let redirected = attack.request.url.contains("/redirect?")
                    #expect(!error.connected || !attack.beforeConnect || redirected, "\(attack.name): a connection was made")
                    if attack.beforeConnect {
                        // Never asked to connect anywhere this hop: no socket was even created.
                        // (A redirect's first hop, to the granted 127.0.0.1, is the only connection.)
                        let attempts = attack.policy.connectAttempts
                        let expected = redirected ? ["127.0.0.1"] : []
                        #expect(attempts == expected, "\(attack.name): connection attempts \(attempts)")
                    }
                    if ok { refused += 1 }
                }
            }
            // Nothing ever reached the 127.0.0.2 listener, the forbidden loopback address.
            if server.port2 != nil {
                let accepted = try server.connections()
                #expect(accepted["127.0.0.2"] == nil, "127.0.0.2 accepted \(accepted["127.0.0.2"] ?? 0) connections")
            }
            // Connection attempts at connect time to forbidden addresses never got a socket.
            let localhost = attacks.first { $0.name == "localhost vs address grant" }!
            #expect(!localhost.policy.connectAttempts.isEmpty)
            #expect(Set(localhost.policy.connectAttempts).isSubset(of: ["127.0.0.1", "::1"]))

            print("net attacks: \(attacks.count) attempted, \(refused) refused")
            #expect(refused == attacks.count)
        }
    }
}

private extension Result {
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
