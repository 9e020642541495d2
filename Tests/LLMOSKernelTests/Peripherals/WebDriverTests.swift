import Foundation
import LLMOSJSON
import LLMOSNet
import Testing
@testable import LLMOSKernel

// The web driver (Plugins/web, manifests/web.yaml), called through the kernel as a model
// calls it, against Tests/Fixtures/web/server.py: a local server that answers as a
// SearXNG instance's JSON API does. The request is the kernel's net.fetch.

private func webKernel(config: JSONValue? = nil, grants: [String]) throws -> Kernel {
    let rules = try grants.map { try PolicyParser.rule(fromFlag: $0, action: .allow) }
    let kernel = makeKernel { c in
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules))
        c.network = CurlNetworkService()
        if let config { c.driverConfig["web"] = config }
    }
    try kernel.load(manifestAt: Paths.manifests + "/web.yaml")
    return kernel
}

/// What the fixture server was last asked (read with libcurl directly: this is the test's view).
private func lastRequest(_ base: String) throws -> JSONValue {
    let response = try NetFetcher { _ in .allow }.fetch(FetchRequest(url: base + "/last"))
    return try JSON.parse(String(decoding: response.body, as: UTF8.self))
}

private func search(_ kernel: Kernel, _ input: JSONValue) throws -> JSONValue {
    try JSON.parse(try kernel.call("web.search", input: input.serialized()).output)
}

@Suite(.serialized) struct WebDriverTests {
    @Test func searchReturnsTitlesLinksAndSnippets() throws {
        let server = try FixtureServer("Tests/Fixtures/web/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try webKernel(config: ["endpoint": .string(base)], grants: ["net.connect=\(base)"])

        let found = try search(kernel, ["query": "swift actors"])
        #expect(found["query"] == "swift actors")
        let results = try #require(found["results"]?.arrayValue)
        #expect(results.count == 3)
        #expect(results[0]["title"] == "Result 1 for swift actors")
        #expect(results[0]["url"] == "https://example.org/swift-actors/1")
        #expect(results[0]["snippet"] == "A snippet about swift actors, number 1. bold & plain", "markup and entities are gone: \(results[0])")
        #expect(results[0]["engine"] == "duckduckgo")
        #expect(results[0]["published"] == "2026-11-30T12:00:00")
        #expect(results[1]["published"] == nil)
        #expect(found["suggestions"] == ["swift actors tutorial"])

        // What the endpoint was asked: SearXNG's parameters, the query encoded.
        let last = try lastRequest(base)
        #expect(last["query"]?["q"] == "swift actors")
        #expect(last["query"]?["format"] == "json")
        #expect(last["path"]?.stringValue?.contains("q=swift%20actors") == true, "\(last)")

        let paged = try search(kernel, ["query": "many", "max_results": 5, "page": 2, "language": "de", "time_range": "week", "safesearch": 1])
        #expect(paged["results"]?.arrayValue?.count == 5)
        #expect(paged["results"]?[0]?["title"] == "Result 31 for many")
        let asked = try lastRequest(base)
        #expect(asked["query"]?["pageno"] == "2")
        #expect(asked["query"]?["language"] == "de")
        #expect(asked["query"]?["time_range"] == "week")
        #expect(asked["query"]?["safesearch"] == "1")

        let empty = try search(kernel, ["query": "nothing"])
        #expect(empty["results"] == [])
    }

    @Test func theEndpointCanComeFromTheEnvironmentWhenGranted() throws {
        let server = try FixtureServer("Tests/Fixtures/web/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        setenv("LLMOS_SEARCH_URL", base, 1)
        defer { unsetenv("LLMOS_SEARCH_URL") }
        let kernel = try webKernel(grants: ["net.connect=\(base)", "env=LLMOS_SEARCH_URL"])
        #expect(try search(kernel, ["query": "x"])["results"]?.arrayValue?.count == 3)

        // Set but not granted: the driver cannot read it, and says how to fix that.
        let ungranted = try webKernel(grants: ["net.connect=\(base)"])
        let error = expectError { try search(ungranted, ["query": "x"]) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("--allow env=LLMOS_SEARCH_URL"), "\(error.message)")
    }

    @Test func noEndpointConfiguredSaysWhatToSet() throws {
        unsetenv("LLMOS_SEARCH_URL")
        let kernel = try webKernel(grants: ["env=LLMOS_SEARCH_URL"])
        let error = expectError { try search(kernel, ["query": "x"]) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("no search endpoint is configured"), "\(error.message)")
        #expect(error.message.contains("endpoint") && error.message.contains("LLMOS_SEARCH_URL") && error.message.contains("format=json"), "\(error.message)")

        // A configured endpoint that is not a base URL refuses the load, naming the field.
        let bad = expectError { try webKernel(config: ["endpoint": "ftp://x/search?q=1"], grants: []) }
        #expect(bad.message.contains("endpoint") && bad.message.contains("SearXNG"), "\(bad.message)")
    }

    @Test func anEndpointThePolicyDoesNotGrantIsRefusedByTheKernel() throws {
        let server = try FixtureServer("Tests/Fixtures/web/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let kernel = try webKernel(config: ["endpoint": .string(base)], grants: [])
        let error = expectError { try search(kernel, ["query": "x"]) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("searching \(base)") && error.message.contains("net.connect"), "\(error.message)")
    }

    @Test func endpointsThatDoNotSpeakSearXNGJSONAreNamed() throws {
        let server = try FixtureServer("Tests/Fixtures/web/server.py")
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"

        // An HTML page where JSON was expected.
        let html = try webKernel(config: ["endpoint": .string(base + "/html")], grants: ["net.connect=\(base)"])
        let notJSON = expectError { try search(html, ["query": "x"]) }
        #expect(notJSON.code == .unavailable)
        #expect(notJSON.message.contains("did not answer SearXNG JSON (got text/html"), "\(notJSON.message)")

        // A wrong path: HTTP 404.
        let wrong = try webKernel(config: ["endpoint": .string(base + "/nowhere")], grants: ["net.connect=\(base)"])
        let missing = expectError { try search(wrong, ["query": "x"]) }
        #expect(missing.message.contains("answered HTTP 404"), "\(missing.message)")

        let kernel = try webKernel(config: ["endpoint": .string(base)], grants: ["net.connect=\(base)"])
        let blank = expectError { try search(kernel, ["query": "   "]) }
        #expect(blank.code == .invalidArgument && blank.message.contains("blank"), "\(blank.message)")
        let tooMany = expectError { try search(kernel, ["query": "x", "max_results": 500]) }
        #expect(tooMany.code == .invalidArgument && tooMany.message.contains("max_results"), "\(tooMany.message)")
    }
}
