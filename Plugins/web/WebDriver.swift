// The web driver: search the web through a configured search endpoint that speaks
// SearXNG's JSON API (`GET /search?q=...&format=json`), and return titles, links and
// snippets — the seed's browser, next to `http.get` for reading a page.
//
// Where the endpoint comes from, first match: the driver's configuration (`endpoint`,
// `llmos --config 'web={"endpoint": "https://searx.example.org"}'`), then the
// environment variable LLMOS_SEARCH_URL (read through env.get, so the operator grants
// it). The request is the kernel's net.fetch: the operator's net.connect grant for the
// endpoint decides, and is audited. No socket is opened here.
import LLMOSDriverSDK
import LLMOSJSON

struct WebDriver: LLMOSToolDriver {
    static let name = "web"
    static let version = "1.0.0"
    static let environmentVariable = "LLMOS_SEARCH_URL"

    /// The configured endpoint (nil: look at the environment on each call).
    let configuredEndpoint: String?
    let timeoutMs: Int64

    init(context: DriverContext) throws {
        let config = (try? JSON.parse(context.config)) ?? .object([:])
        if let endpoint = config["endpoint"]?.stringValue, !endpoint.isEmpty {
            try Self.checkEndpoint(endpoint, source: "the configuration's endpoint")
            configuredEndpoint = endpoint
        } else {
            configuredEndpoint = nil
        }
        timeoutMs = config["timeout_ms"]?.int64Value ?? 15000
    }

    static func register(_ tools: inout Router) {
        tools.addRaw("search") { (driver: Self, json: String, call: CallContext) in try driver.search(json, call) }
    }

    static func checkEndpoint(_ endpoint: String, source: String) throws(DriverError) {
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://"), !endpoint.contains("?"), !endpoint.contains("#") else {
            throw .invalidArgument("\(source) \"\(endpoint.prefix(200))\" is not a search endpoint: give the base URL of a SearXNG instance (or a compatible API), http:// or https://, without a query, e.g. https://searx.example.org")
        }
    }

    // MARK: search

    func endpoint(_ call: CallContext) throws(DriverError) -> String {
        if let configuredEndpoint { return configuredEndpoint }
        let howToSet = "set endpoint in the web driver's configuration (llmos --config 'web={\"endpoint\": \"https://searx.example.org\"}') or the environment variable \(Self.environmentVariable), granted with --allow env=\(Self.environmentVariable); the endpoint must speak SearXNG's JSON API (GET /search?q=...&format=json)"
        let answer: String
        do { answer = try call.syscall("env.get", #"{"name":"\#(Self.environmentVariable)"}"#) } catch {
            if error.code == .permissionDenied {
                throw .unavailable("no search endpoint is configured, and \(Self.environmentVariable) may not be read (\(error.message)): \(howToSet)")
            }
            throw error
        }
        guard let value = (try? JSON.parse(answer))?["value"]?.stringValue, !value.isEmpty else {
            throw .unavailable("no search endpoint is configured: \(howToSet)")
        }
        try Self.checkEndpoint(value, source: Self.environmentVariable)
        return value
    }

    func search(_ json: String, _ call: CallContext) throws(DriverError) -> String {
        guard let input = try? JSON.parse(json), let query = input["query"]?.stringValue else {
            throw .invalidArgument("query is required: the words to search for")
        }
        guard !query.allSatisfy(\.isWhitespace) else { throw .invalidArgument("query must not be blank") }
        let maxResults = Int(input["max_results"]?.int64Value ?? 10)
        guard (1...50).contains(maxResults) else { throw .invalidArgument("max_results must be between 1 and 50") }
        let page = Int(input["page"]?.int64Value ?? 1)
        guard (1...50).contains(page) else { throw .invalidArgument("page must be between 1 and 50") }

        let base = try endpoint(call)
        var parameters: [(String, String)] = [("q", query), ("format", "json")]
        if page > 1 { parameters.append(("pageno", String(page))) }
        for (field, name) in [("language", "language"), ("categories", "categories"), ("time_range", "time_range")] {
            if let value = input[field]?.stringValue, !value.isEmpty { parameters.append((name, value)) }
        }
        if let safe = input["safesearch"]?.int64Value { parameters.append(("safesearch", String(safe))) }
        let path = base.hasSuffix("/search") ? base : (base.hasSuffix("/") ? base + "search" : base + "/search")
        let url = path + "?" + parameters.map { "\(Self.percentEncoded($0.0))=\(Self.percentEncoded($0.1))" }.joined(separator: "&")

        let request: JSONValue = [
            "url": .string(url), "method": "GET", "headers": ["Accept": "application/json"],
            "max_bytes": .int(4 << 20), "timeout_ms": .int(timeoutMs),
        ]
        let fetched: JSONValue
        do { fetched = try JSON.parse(try call.syscall("net.fetch", request.serialized())) } catch let error as DriverError {
            throw DriverError(error.code, "searching \(base): \(error.message)")
        } catch {
            throw .internal("net.fetch answered with something that is not JSON")
        }
        let status = fetched["status"]?.int64Value ?? 0
        let contentType = fetched["headers"]?["content-type"]?.stringValue ?? "no content type"
        guard status == 200 else {
            let hint = status == 403 || status == 406
                ? ": SearXNG answers this when its JSON format is off; add json to search.formats in its settings.yml"
                : status == 429 ? ": the endpoint is rate-limiting (SearXNG's limiter); try again later, or disable the limiter for this client" : ""
            throw .unavailable("the search endpoint \(base) answered HTTP \(status)\(hint)")
        }
        guard fetched["encoding"] == nil, let body = fetched["body"]?.stringValue,
              let answer = try? JSON.parse(body), let results = answer["results"]?.arrayValue else {
            throw .unavailable("the search endpoint \(base) did not answer SearXNG JSON (got \(contentType)); is it a SearXNG instance or a compatible API (GET /search?q=...&format=json giving {\"results\": [...]})?")
        }

        var items: [JSONValue] = []
        for result in results {
            guard items.count < maxResults else { break }
            guard let link = result["url"]?.stringValue, !link.isEmpty else { continue }
            var item: JSONObject = [
                "title": .string(Self.plainText(result["title"]?.stringValue ?? link)),
                "url": .string(link),
                "snippet": .string(Self.plainText(result["content"]?.stringValue ?? "")),
            ]
            if let engine = result["engine"]?.stringValue { item["engine"] = .string(engine) }
            if let published = result["publishedDate"]?.stringValue { item["published"] = .string(published) }
            items.append(.object(item))
        }
        var output: JSONObject = ["query": .string(query), "results": .array(items)]
        let suggestions = (answer["suggestions"]?.arrayValue ?? []).compactMap(\.stringValue)
        output["suggestions"] = .array(suggestions.prefix(10).map(JSONValue.string))
        let answers = (answer["answers"]?.arrayValue ?? []).compactMap { $0.stringValue ?? $0["answer"]?.stringValue }
        output["answers"] = .array(answers.prefix(5).map { .string(Self.plainText($0)) })
        return JSONValue.object(output).serialized()
    }

    // MARK: Text

    /// RFC 3986 unreserved characters stay; everything else is %XX of its UTF-8 bytes.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])"
            }
        }
        return out
    }

    /// Snippets may carry markup (<b>, <span class="highlight">) and entities: plain text
    /// for a model, whitespace collapsed.
    static func plainText(_ html: String) -> String {
        var out = ""
        var inTag = false
        for character in html {
            if character == "<" { inTag = true; continue }
            if character == ">" && inTag { inTag = false; continue }
            if !inTag { out.append(character) }
        }
        for (entity, text) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&apos;", "'"), ("&nbsp;", " "), ("&amp;", "&")] {
            out = out.replacing(entity, with: text)
        }
        return out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(WebDriver.self, host, driver) }
