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

    /// `net.stream.open` (docs/SYSCALLS.md): net.fetch's fields (`max_bytes` caps the whole
    /// streamed body, default 64 MiB; `timeout_ms` the stream's whole life, default 10 minutes)
    /// plus `connect_timeout_ms` (default 10 s) and `read_timeout_ms` (the longest wait for the
    /// next byte, default 60 s).
    public func openStream(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision,
                           isCancelled: () -> Bool) throws(LLMOSError) -> (stream: any NetworkStream, response: JSONValue) {
        guard let object = request.objectValue else { throw LLMOSError(.invalidArgument, "net.stream.open: the request must be an object") }
        let known: Set<String> = ["url", "method", "headers", "body", "max_bytes", "timeout_ms", "connect_timeout_ms", "read_timeout_ms"]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            throw LLMOSError(.invalidArgument, "net.stream.open: unknown field \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        guard let url = request["url"]?.stringValue else { throw LLMOSError(.invalidArgument, "net.stream.open: expected a string field \"url\"") }
        var headers: [String: String] = [:]
        for (name, value) in request["headers"]?.objectValue ?? JSONObject() {
            guard let text = value.stringValue else { throw LLMOSError(.invalidArgument, "net.stream.open: header \"\(name)\" must be a string") }
            headers[name] = text
        }
        func integer(_ field: String) throws(LLMOSError) -> Int? {
            guard let value = request[field] else { return nil }
            guard let number = value.int64Value else { throw LLMOSError(.invalidArgument, "net.stream.open: \(field) must be an integer") }
            return Int(clamping: number)
        }
        let total = try integer("timeout_ms") ?? NetStream.defaultTotalTimeoutMs
        var fetchRequest = FetchRequest(
            url: url, method: request["method"]?.stringValue, headerFields: headers, body: request["body"]?.stringValue,
            maxBytes: try integer("max_bytes") ?? NetStream.defaultMaxBytes, truncate: false, timeoutMs: total)
        fetchRequest.connectTimeoutMs = min(try integer("connect_timeout_ms") ?? 10_000, total)
        let fetcher = NetFetcher(proxy: proxy) { target in
            let decision = authorize(AccessRequest(kind: .netConnect, resource: target.resource, address: target.address, driver: ""))
            return decision.verdict == .allow ? .allow : .deny("net.connect \(target.resource)\(target.address.map { " (address \($0))" } ?? "") denied by \(decision.rule)")
        }
        let stream = NetStream(fetcher: fetcher, request: fetchRequest, readTimeoutMs: try integer("read_timeout_ms") ?? NetStream.defaultReadTimeoutMs)
        let response: FetchResponse
        do { response = try stream.open(isCancelled: isCancelled) } catch {
            throw LLMOSError(Self.code(error.code), "net.stream.open: \(error.message)", cause: error)
        }
        let result: JSONObject = [
            "status": .int(Int64(response.status)), "url": .string(response.finalURL),
            "headers": .object(JSONObject(response.headerFields.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })),
            "redirects": .array(response.redirects.map(JSONValue.string)),
        ]
        return (CurlStream(stream), .object(result))
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
        case .cancelled: return .cancelled
        default: return .internalError
        }
    }
}

/// A `NetStream` behind the kernel's `NetworkStream`: `net.stream.read` JSON in and out. Text
/// is cut at character boundaries (a UTF-8 sequence split between two reads waits for its
/// end); bytes that are not UTF-8 come as base64 with "encoding": "base64".
final class CurlStream: NetworkStream {
    let stream: NetStream
    private var pending: [UInt8] = []

    init(_ stream: NetStream) { self.stream = stream }

    func read(_ request: JSONValue, isCancelled: () -> Bool) throws(LLMOSError) -> JSONValue {
        if let object = request.objectValue, let unknown = object.keys.first(where: { $0 != "stream" && $0 != "max_bytes" }) {
            throw LLMOSError(.invalidArgument, "net.stream.read: unknown field \"\(unknown)\" (known: max_bytes, stream)")
        }
        let maxBytes = request["max_bytes"]?.int64Value.map { Int(clamping: $0) } ?? (64 << 10)
        var bytes = pending
        pending = []
        var done = false
        repeat {
            let piece: (bytes: [UInt8], done: Bool)
            do { piece = try stream.read(maxBytes: maxBytes, isCancelled: isCancelled) } catch {
                throw LLMOSError(CurlNetworkService.code(error.code), "net.stream.read: \(error.message)", cause: error)
            }
            bytes += piece.bytes
            done = piece.done
            // Hold back an incomplete UTF-8 sequence at the end, unless the stream is over.
            if !done, String(validating: bytes, as: UTF8.self) == nil {
                for cut in 1...3 where bytes.count >= cut {
                    if String(validating: bytes.dropLast(cut), as: UTF8.self) != nil {
                        pending = Array(bytes.suffix(cut))
                        bytes.removeLast(cut)
                        break
                    }
                }
            }
        } while bytes.isEmpty && !done
        var result: JSONObject = ["done": .bool(done)]
        if let text = String(validating: bytes, as: UTF8.self) {
            result["data"] = .string(text)
        } else {
            result["data"] = .string(Data(bytes + pending).base64EncodedString())
            result["encoding"] = "base64"
            pending = []
        }
        return .object(result)
    }

    func close() { stream.close() }
}
