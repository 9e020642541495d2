// net.stream.*: an HTTP response read piece by piece while it arrives (server-sent events from
// a model server, say), with exactly the checks of net.fetch.
//
// The transfer is driven on the caller's own thread by a libcurl multi handle: nothing runs in
// the background, and data is taken from the socket only while the caller waits in `open` or
// `read` (TCP applies the backpressure). Every hop is a `Transfer` prepared exactly as
// net.fetch prepares it — canonical URL, every redirect re-authorized, the connected address
// checked in the open-socket callback, no proxy from the environment, a body cap — so a stream
// can reach nothing a fetch could not.

import CCurl
import Foundation

/// One streamed HTTP exchange. Not thread-safe: one caller at a time (the kernel keeps each
/// stream inside the call that opened it and closes it when that call returns).
public final class NetStream: @unchecked Sendable {
    public static let defaultMaxBytes = 64 << 20
    public static let defaultReadTimeoutMs = 60_000
    public static let defaultTotalTimeoutMs = 600_000
    /// The most one `read` returns.
    public static let maxChunkBytes = 1 << 20

    public let request: FetchRequest
    /// The longest wait for the next byte (headers or body) before the stream fails with timeout.
    public let readTimeoutMs: Int
    let fetcher: NetFetcher

    private var multi: UnsafeMutableRawPointer?
    private var transfer: Transfer?
    private var result: CURLcode?
    private var lastProgress = ContinuousClock.now
    private var seenBytes = 0
    private var closed = false
    public private(set) var response: FetchResponse?

    public init(fetcher: NetFetcher, request: FetchRequest, readTimeoutMs: Int = NetStream.defaultReadTimeoutMs) {
        self.fetcher = fetcher
        self.request = request
        self.readTimeoutMs = readTimeoutMs
    }

    deinit { close() }

    /// Sends the request and waits for the final response's status and headers (redirects are
    /// followed and re-checked as net.fetch does). The returned response has an empty body: read it.
    public func open(isCancelled: () -> Bool) throws(FetchError) -> FetchResponse {
        CurlGlobal.initialize()
        var method = request.method.uppercased()
        try NetFetcher.validate(request, method: method)
        guard readTimeoutMs > 0, readTimeoutMs <= 600_000 else { throw FetchError(.invalidRequest, "read_timeout_ms must be between 1 ms and 10 minutes") }
        let proxyURL: CanonicalURL?
        if let proxy = fetcher.proxy {
            do { proxyURL = try URLCanonicalizer.canonicalize(proxy) } catch { throw FetchError(.invalidRequest, "the configured proxy \(proxy) is not a valid URL: \(error.message)") }
        } else {
            proxyURL = nil
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(request.totalTimeoutMs))
        var current = try URLCanonicalizer.canonicalize(request.url)
        var headers = request.headers
        var body = request.body
        var redirects: [String] = []
        var previous: CanonicalURL?
        guard let multi = curl_multi_init() else { throw FetchError(.internal, "curl_multi_init() failed") }
        self.multi = multi

        while true {
            do { try fetcher.checkBeforeConnect(current, redirectedFrom: previous) } catch {
                close()
                throw error
            }
            let remainingMs = NetFetcher.milliseconds(clock.now.duration(to: deadline))
            guard remainingMs > 0 else {
                close()
                throw FetchError(.timeout, "no response within \(request.totalTimeoutMs) ms (timeout_ms), redirects included", url: current.url)
            }
            let follow = request.maxRedirects > 0
            let hop = Transfer(
                url: current, redirectedFrom: previous?.url, method: method, headers: headers, body: body,
                cap: request.maxResponseBytes, truncate: false, followRedirects: follow,
                connectTimeoutMs: min(request.connectTimeoutMs, remainingMs), totalTimeoutMs: remainingMs,
                totalBudgetMs: request.totalTimeoutMs, proxy: proxyURL, userAgent: fetcher.userAgent, authorizer: fetcher.authorizer)
            do { try hop.prepare() } catch {
                close()
                throw error
            }
            transfer = hop
            result = nil
            seenBytes = 0
            lastProgress = .now
            curl_multi_add_handle(multi, hop.easy)

            // Until the final response's headers are in (or the transfer is over).
            do throws(FetchError) {
                while !hop.headersComplete && result == nil { try step(isCancelled) }
                let redirecting = follow && Transfer.redirectStatuses.contains(hop.status)
                    && hop.headers.contains { $0.name.lowercased() == "location" }
                if redirecting {
                    while result == nil { try step(isCancelled) }
                }
                // A transfer that failed after the final headers arrived keeps what it got:
                // `read` hands out the bytes, then the error.
                if let result, redirecting || (result != CURLE_OK && !hop.headersComplete) {
                    let outcome = try hop.finish(result)
                    if redirecting, let location = outcome.location {
                        let next = try NetFetcher.redirect(from: current, to: location, status: hop.status, after: redirects.count,
                                                           maxRedirects: request.maxRedirects, method: &method, body: &body, headers: &headers)
                        curl_multi_remove_handle(multi, hop.easy)
                        transfer = nil
                        redirects.append(next.url)
                        previous = current
                        current = next
                        continue
                    }
                }
            } catch {
                close()
                throw error
            }
            let response = FetchResponse(status: hop.status, headers: hop.headers, body: [], finalURL: current.url,
                                         redirects: redirects, truncated: false, address: hop.connectedAddresses.last)
            self.response = response
            return response
        }
    }

    /// The next piece of the body: at least one byte, or `done` with what is left (possibly
    /// nothing). Waits at most `readTimeoutMs` for a byte; a connection that drops before the
    /// response ended is an error, not a silent end.
    public func read(maxBytes: Int = 64 << 10, isCancelled: () -> Bool) throws(FetchError) -> (bytes: [UInt8], done: Bool) {
        guard let hop = transfer, !closed else { throw FetchError(.invalidRequest, "the stream is closed") }
        let limit = max(1, min(maxBytes, Self.maxChunkBytes))
        do {
            while hop.body.isEmpty && result == nil { try step(isCancelled) }
        } catch {
            close()
            throw error
        }
        if !hop.body.isEmpty {
            let n = min(limit, hop.body.count)
            let bytes = Array(hop.body.prefix(n))
            hop.body.removeFirst(n)
            hop.drained += n
            return (bytes, result != nil && hop.body.isEmpty && result == CURLE_OK)
        }
        // Over, nothing left.
        guard let result, result != CURLE_OK else { return ([], true) }
        do {
            _ = try hop.finish(result)
        } catch {
            close()
            switch result {
            case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_GOT_NOTHING:
                throw FetchError(.transferFailed, "the connection to \(hop.url.resource) closed before the response ended (\(hop.drained) bytes received)", url: hop.url.url, connected: true)
            default:
                throw error
            }
        }
        return ([], true)
    }

    /// Ends the transfer (the connection is closed); idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        if let multi {
            if let easy = transfer?.easy { curl_multi_remove_handle(multi, easy) }
            curl_multi_cleanup(multi)
        }
        multi = nil
        transfer = nil
    }

    public var isClosed: Bool { closed }

    /// One turn of the transfer: lets libcurl move data, then waits up to 50 ms for the socket.
    private func step(_ isCancelled: () -> Bool) throws(FetchError) {
        guard let multi, let hop = transfer else { throw FetchError(.invalidRequest, "the stream is closed") }
        if isCancelled() { throw FetchError(.cancelled, "cancelled while reading \(hop.url.url)", url: hop.url.url) }
        var running: Int32 = 0
        _ = withExtendedLifetime(hop) { curl_multi_perform(multi, &running) }
        var code = CURLE_OK
        if llmos_curl_multi_done(multi, &code) != 0 {
            result = code
            return
        }
        let progress = hop.headerBytes + hop.drained + hop.body.count
        if progress != seenBytes {
            seenBytes = progress
            lastProgress = .now
            if hop.headersComplete && !hop.body.isEmpty { return }
        } else if lastProgress.duration(to: .now) > .milliseconds(readTimeoutMs) {
            let what = hop.headersComplete ? "data" : "a response"
            throw FetchError(.timeout, "no \(what) from \(hop.url.url) for \(readTimeoutMs) ms (read_timeout_ms)", url: hop.url.url, connected: !hop.connectedAddresses.isEmpty)
        }
        if hop.headersComplete && !hop.body.isEmpty { return }
        _ = withExtendedLifetime(hop) { curl_multi_poll(multi, nil, 0, 50, nil) }
    }
}
