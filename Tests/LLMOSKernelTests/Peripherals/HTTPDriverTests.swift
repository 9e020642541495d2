import Foundation
import LLMOSJSON
import LLMOSNet
import Testing
@testable import LLMOSKernel

// The http driver (Plugins/http, manifests/http.yaml), called through the kernel as a
// model calls it, against real servers on loopback: Tests/Fixtures/net/server.py for
// status, redirects, sizes and timing, Tests/Fixtures/web/server.py for an HTML page.
// Every network decision is the kernel's (net.fetch): the driver opens no socket.

/// A kernel with the http driver loaded, net.fetch on libcurl, and `grants` as the
/// operator's net.connect policy.
private func httpKernel(grants: [String], audit: MemoryAuditLog? = nil) throws -> Kernel {
    let rules = try grants.map { try PolicyParser.rule(fromFlag: "net.connect=\($0)", action: .allow) }
    let kernel = makeKernel { c in
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules))
        c.network = CurlNetworkService()
        if let audit { c.audit = audit }
    }
    try kernel.load(manifestAt: Paths.manifests + "/http.yaml")
    return kernel
}

private func call(_ kernel: Kernel, _ tool: String, _ input: JSONValue) throws -> JSONValue {
    try JSON.parse(try kernel.call(tool, input: input.serialized()).output)
}

@Suite(.serialized) struct HTTPDriverTests {
    @Test func getReturnsStatusFinalURLContentTypeAndText() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])

        let ok = try call(kernel, "http.get", ["url": .string(base + "/ok")])
        #expect(ok["status"]?.int64Value == 200)
        #expect(ok["text"] == "ok\n")
        #expect(ok["content_type"] == "text/plain")
        #expect(ok["truncated"] == false)
        #expect(ok["url"]?.stringValue == base + "/ok")

        // Redirects are followed (and re-checked by the kernel); the final URL is returned.
        let moved = try call(kernel, "http.get", ["url": .string(base + "/redirect?to=/ok")])
        #expect(moved["url"]?.stringValue == base + "/ok", "\(moved)")
        #expect(moved["text"] == "ok\n")

        let missing = try call(kernel, "http.get", ["url": .string(base + "/nothing-here")])
        #expect(missing["status"]?.int64Value == 404, "an HTTP error status is an answer, not a failure")
    }

    @Test func postSendsTheBodyHeadersAndContentType() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])

        let echoed = try call(kernel, "http.post", [
            "url": .string(base + "/echo"), "body": #"{"city":"Paris"}"#,
            "content_type": "application/json", "headers": ["X-Request-Id": "abc 123"],
        ])
        #expect(echoed["status"]?.int64Value == 200)
        let seen = try JSON.parse(echoed["text"]?.stringValue ?? "")
        #expect(seen["method"] == "POST")
        #expect(seen["body"] == #"{"city":"Paris"}"#)
        #expect(seen["headers"]?["content-type"] == "application/json")
        #expect(seen["headers"]?["x-request-id"] == "abc 123")

        // A Content-Type header wins over the default; no content_type means text/plain.
        let plain = try call(kernel, "http.post", ["url": .string(base + "/echo"), "body": "hi"])
        #expect(try JSON.parse(plain["text"]?.stringValue ?? "")["headers"]?["content-type"] == "text/plain; charset=utf-8")
        let form = try call(kernel, "http.post", ["url": .string(base + "/echo"), "body": "a=1",
                                                  "headers": ["content-type": "application/x-www-form-urlencoded"]])
        #expect(try JSON.parse(form["text"]?.stringValue ?? "")["headers"]?["content-type"] == "application/x-www-form-urlencoded")
    }

    @Test func htmlBecomesReadableTextWithLinksKept() throws {
        let server = try FixtureServer("Tests/Fixtures/web/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])

        let page = try call(kernel, "http.get", ["url": .string(base + "/page.html")])
        #expect(page["title"] == "Café & Books")
        #expect(page["content_type"] == "text/html; charset=utf-8")
        let text = try #require(page["text"]?.stringValue)
        #expect(!text.contains("color: red") && !text.contains("not text") && !text.contains("enable scripts"),
                "script, style and noscript are dropped: \(text)")
        #expect(!text.contains("<b>") && !text.contains("<p") && !text.contains("<a "), "no tags remain: \(text)")
        #expect(text.contains("# Opening hours"), "headings start a line with #, whitespace collapses: \(text)")
        #expect(text.contains("We open at 9 am — see the full schedule (\(base)/hours?day=mon&lang=en)."),
                "entities decode, relative links become absolute: \(text)")
        #expect(text.contains("- Coffee <3\n- Tea ☕"), "list items are lines: \(text)")
        #expect(text.contains("Home (\(base)/)"))
        #expect(text.contains("Top") && !text.contains("#top"), "in-page anchors are not links worth keeping")
        #expect(text.contains("us (mailto:hello@example.org)"))

        // format raw: the body as sent.
        let raw = try call(kernel, "http.get", ["url": .string(base + "/page.html"), "format": "raw"])
        #expect(raw["text"]?.stringValue?.contains("<script>") == true)
        #expect(raw["title"] == nil)
    }

    @Test func aHostThePolicyDoesNotGrantIsRefusedByTheKernel() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let audit = MemoryAuditLog()
        let kernel = try httpKernel(grants: [base], audit: audit)

        // Another port of the same host: refused before the driver runs (the url argument is marked).
        let other = "http://127.0.0.1:\(server.port == 65535 ? 1 : server.port + 1)/ok"
        let denied = expectError { try call(kernel, "http.get", ["url": .string(other)]) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("http.get: url: net.connect of http://127.0.0.1:") && denied.message.contains("denied by"),
                "\(denied.message)")

        // A redirect to a host that is not granted: refused by net.fetch, inside the call.
        if let port2 = server.announcement["port2"] as? Int {
            let hop = expectError {
                try call(kernel, "http.get", ["url": .string(base + "/redirect?to=http://127.0.0.2:\(port2)/ok")])
            }
            #expect(hop.code == .permissionDenied, "\(hop)")
            #expect(hop.message.contains("127.0.0.2"), "\(hop.message)")
        }

        // No grant at all: nothing is fetched.
        let closed = try httpKernel(grants: [])
        let none = expectError { try call(closed, "http.get", ["url": .string(base + "/ok")]) }
        #expect(none.code == .permissionDenied)
        #expect(none.message.contains("not granted"), "\(none.message)")
        #expect(audit.records.contains { $0.capability == "net.connect" && $0.decision == .deny }, "the refusal is audited")
    }

    @Test func anOversizedBodyIsCutAndSaysSo() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])

        let big = try call(kernel, "http.get", ["url": .string(base + "/big?n=3000000"), "max_bytes": 1000])
        #expect(big["truncated"] == true)
        #expect(big["text"]?.stringValue?.utf8.count == 1000)
        let chunked = try call(kernel, "http.get", ["url": .string(base + "/big?n=3000000&chunked=1"), "max_bytes": 5000])
        #expect(chunked["truncated"] == true)
        #expect(chunked["text"]?.stringValue?.utf8.count == 5000)

        let tooMuch = expectError { try call(kernel, "http.get", ["url": .string(base + "/ok"), "max_bytes": .int(1_073_741_824)]) }
        #expect(tooMuch.code == .invalidArgument)
        #expect(tooMuch.message.contains("max_bytes"), "\(tooMuch.message)")
    }

    @Test func slowServersHitTheTimeLimit() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])
        let slow = expectError { try call(kernel, "http.get", ["url": .string(base + "/slow?ms=5000"), "timeout_ms": 200]) }
        #expect(slow.code == .timeout, "\(slow)")
    }

    @Test func badArgumentsAreRefusedWithTheFieldNamed() throws {
        let server = try FixtureServer("Tests/Fixtures/net/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try httpKernel(grants: [base])

        let injected = expectError {
            try call(kernel, "http.get", ["url": .string(base + "/ok"), "headers": ["X-A": "1\r\nX-Injected: yes"]])
        }
        #expect(injected.code == .invalidArgument)
        #expect(injected.message.contains("headers.X-A") && injected.message.contains("CR, LF"), "\(injected.message)")

        let badName = expectError { try call(kernel, "http.get", ["url": .string(base + "/ok"), "headers": ["Bad Name": "1"]]) }
        #expect(badName.message.contains("not a header name"), "\(badName.message)")

        let noBody = expectError { try call(kernel, "http.post", ["url": .string(base + "/echo")]) }
        #expect(noBody.code == .invalidArgument)
        #expect(noBody.message.contains("body"), "\(noBody.message)")

        let format = expectError { try call(kernel, "http.get", ["url": .string(base + "/ok"), "format": "pdf"]) }
        #expect(format.code == .invalidArgument)
        #expect(format.message.contains("format"), "\(format.message)")
    }
}
