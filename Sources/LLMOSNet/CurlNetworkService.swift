import Foundation
import LLMOSJSON
import LLMOSKernel

/// The kernel's `NetworkService`, implemented with `NetFetcher` (libcurl): the JSON of
/// the `net.fetch` system call in and out, and every place the fetch goes put to the
/// kernel's capability broker as a `net.connect` request.
public struct CurlNetworkService: NetworkService {
    public var proxy: String?

    public init(proxy: String? = nil) { self.proxy = proxy }

    public func fetch(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue {
        guard let object = request.objectValue else { throw LLMOSError(.invalidArgument, "net.fetch: the request must be an object") }
        let known: Set<String> = ["url", "method", "headers", "body", "max_bytes", "truncate", "timeout_ms"]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            throw LLMOSError(.invalidArgument, "net.fetch: unknown field \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        guard let url = request["url"]?.stringValue else { throw LLMOSError(.invalidArgument, "net.fetch: expected a string field \"url\"") }
        var headers: [String: String] = [:]
        for (name, value) in request["headers"]?.objectValue ?? JSONObject() {
            guard let text = value.stringValue else { throw LLMOSError(.invalidArgument, "net.fetch: header \"\(name)\" must be a string") }
            headers[name] = text
        }
        let fetchRequest = FetchRequest(
            url: url, method: request["method"]?.stringValue, headerFields: headers, body: request["body"]?.stringValue,
            maxBytes: request["max_bytes"]?.int64Value.map { Int($0) }, truncate: request["truncate"]?.boolValue ?? false,
            timeoutMs: request["timeout_ms"]?.int64Value.map { Int($0) })
        let fetcher = NetFetcher(proxy: proxy) { target in
            let decision = authorize(AccessRequest(kind: .netConnect, resource: target.resource, address: target.address, driver: ""))
            return decision.verdict == .allow ? .allow : .deny("net.connect \(target.resource)\(target.address.map { " (address \($0))" } ?? "") denied by \(decision.rule)")
        }
        let response: FetchResponse
        do { response = try fetcher.fetch(fetchRequest) } catch {
            throw LLMOSError(Self.code(error.code), "net.fetch: \(error.message)", cause: error)
        }
        let body = response.bodyForJSON
        var result: JSONObject = [
            "status": .int(Int64(response.status)), "url": .string(response.finalURL),
            "headers": .object(JSONObject(response.headerFields.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })),
            "body": .string(body.text), "truncated": .bool(response.truncated),
            "redirects": .array(response.redirects.map(JSONValue.string)),
        ]
        if let encoding = body.encoding { result["encoding"] = .string(encoding) }
        return .object(result)
    }

    public func canonicalResource(of url: String) throws(LLMOSError) -> (resource: String, address: String?) {
        do {
            let canonical = try NetFetcher.canonicalize(url)
            return (canonical.resource, canonical.address)
        } catch {
            throw LLMOSError(.invalidArgument, "\(url): \(error.message)", cause: error)
        }
    }

    static func code(_ code: FetchError.Code) -> LLMOSError.Code {
        switch code {
        case .permissionDenied: return .permissionDenied
        case .invalidURL, .invalidRequest: return .invalidArgument
        case .timeout: return .timeout
        case .tooLarge: return .outputTooLarge
        case .resolveFailed, .connectFailed, .tlsFailed, .transferFailed: return .unavailable
        case .tooManyRedirects: return .resourceExhausted
        default: return .internalError
        }
    }
}
