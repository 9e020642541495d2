import LLMOSJSON

/// The service behind the `net.fetch` and `net.stream.*` system calls. A protocol, so the
/// kernel stays free of HTTP code: LLMOSNet implements it with libcurl (`CurlNetworkService`),
/// and a host without one answers them with "unsupported".
public protocol NetworkService: Sendable {
    /// Performs one `net.fetch` request (JSON shape in docs/SYSCALLS.md). `authorize`
    /// decides every place the fetch goes — each redirect hop, and the address actually
    /// connected — before any connection is made there.
    func fetch(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue

    /// The canonical `scheme://host:port` of a URL a tool argument names (and the
    /// address when the host is a literal), for checks before a driver runs.
    func canonicalResource(of url: String) throws(LLMOSError) -> (resource: String, address: String?)

    /// `net.connect`: the canonical `scheme://host:port` of a connection an in-process
    /// driver opens itself, and the first of the host's addresses `authorize` allows
    /// (`{"resource", "host", "address", "port"}`); the driver connects to that address only.
    func authorizeConnection(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue

    /// Opens one `net.stream.open` request: the same checks as `fetch`, and returns once the
    /// final response's status and headers are in (the JSON without "stream", which the kernel
    /// adds). `isCancelled` is polled while it waits (the calling call's cancellation and deadline).
    func openStream(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision,
                    isCancelled: () -> Bool) throws(LLMOSError) -> (stream: any NetworkStream, response: JSONValue)
}

extension NetworkService {
    public func authorizeConnection(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue {
        throw LLMOSError(.unsupported, "net.connect: this host's network service cannot check connections")
    }

    public func openStream(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision,
                           isCancelled: () -> Bool) throws(LLMOSError) -> (stream: any NetworkStream, response: JSONValue) {
        throw LLMOSError(.unsupported, "net.stream.open: this host's network service cannot stream")
    }
}

/// One open `net.stream`: used only by the call that opened it, on that call's thread, and
/// closed by the kernel when that call returns.
public protocol NetworkStream: AnyObject {
    /// `net.stream.read` (without "stream"): `{"data", "encoding"?, "done"}`.
    func read(_ request: JSONValue, isCancelled: () -> Bool) throws(LLMOSError) -> JSONValue
    /// Ends the transfer; idempotent.
    func close()
}

/// The streams a call has open (allocated on the first `net.stream.open` only).
final class CallStreams {
    static let maxOpen = 8
    var nextID: Int64 = 1
    var open: [Int64: any NetworkStream] = [:]

    func closeAll() {
        for stream in open.values { stream.close() }
        open.removeAll()
    }
}
