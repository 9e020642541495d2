import LLMOSJSON

/// The service behind the `net.fetch` system call. A protocol, so the kernel stays
/// free of HTTP code: LLMOSNet implements it with libcurl (`CurlNetworkService`), and
/// a host without one answers `net.fetch` with "unsupported".
public protocol NetworkService: Sendable {
    /// Performs one `net.fetch` request (JSON shape in docs/SYSCALLS.md). `authorize`
    /// decides every place the fetch goes — each redirect hop, and the address actually
    /// connected — before any connection is made there.
    func fetch(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue

    /// The canonical `scheme://host:port` of a URL a tool argument names (and the
    /// address when the host is a literal), for checks before a driver runs.
    func canonicalResource(of url: String) throws(LLMOSError) -> (resource: String, address: String?)
}
