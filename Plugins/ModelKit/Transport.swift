// How a model client reaches its server. Drivers use `SyscallTransport`, which goes through
// the kernel (net.fetch, net.stream.*: every request checked by the capability broker and
// audited); tests or other hosts may supply their own `HTTPTransport`.
import LLMOSDriverSDK
import LLMOSJSON
#if canImport(Glibc)
import Glibc
#endif

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [String: String]
    public var body: String?
    /// The whole exchange (for a stream: its whole life).
    public var timeoutMs: Int
    public var connectTimeoutMs: Int
    /// Streams: the longest wait for the next byte.
    public var readTimeoutMs: Int

    public init(method: String = "POST", url: String, headers: [String: String] = [:], body: String? = nil,
                timeoutMs: Int = 600_000, connectTimeoutMs: Int = 10_000, readTimeoutMs: Int = 60_000) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.readTimeoutMs = readTimeoutMs
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Lowercase names.
    public var headers: [String: String]
    public var body: String
    public init(status: Int, headers: [String: String], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// An open streamed response body.
public protocol HTTPBodyStream: AnyObject {
    /// The next piece of text (possibly empty when `done`).
    func read() throws(DriverError) -> (text: String, done: Bool)
    func close()
}

public protocol HTTPTransport: AnyObject {
    func send(_ request: HTTPRequest) throws(DriverError) -> HTTPResponse
    /// Status and headers; the body is read from the stream.
    func open(_ request: HTTPRequest) throws(DriverError) -> (response: HTTPResponse, body: any HTTPBodyStream)
    /// The call's cancellation (and deadline).
    var isCancelled: Bool { get }
    /// Waits `ms` milliseconds, or throws `cancelled` as soon as the call is cancelled.
    func sleep(ms: Int) throws(DriverError)
    /// Delivers one `stream_event` to the caller (a no-op where nobody listens).
    func emit(_ event: JSONValue) throws(DriverError)
    func log(_ level: LogLevel, _ message: String)
}

/// The transport of a driver: the kernel's system calls on the running call.
public final class SyscallTransport: HTTPTransport {
    let call: CallContext

    public init(_ call: CallContext) { self.call = call }

    public func send(_ request: HTTPRequest) throws(DriverError) -> HTTPResponse {
        var object: JSONObject = ["url": .string(request.url), "method": .string(request.method),
                                  "headers": .object(JSONObject(request.headers.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })),
                                  "timeout_ms": .int(Int64(request.timeoutMs)), "max_bytes": .int(64 << 20)]
        if let body = request.body { object["body"] = .string(body) }
        let reply = try parse(try call.syscall("net.fetch", JSONValue.object(object).serialized()), "net.fetch")
        return HTTPResponse(status: Int(reply["status"]?.int64Value ?? 0), headers: headers(reply), body: reply["body"]?.stringValue ?? "")
    }

    public func open(_ request: HTTPRequest) throws(DriverError) -> (response: HTTPResponse, body: any HTTPBodyStream) {
        var object: JSONObject = ["url": .string(request.url), "method": .string(request.method),
                                  "headers": .object(JSONObject(request.headers.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })),
                                  "timeout_ms": .int(Int64(request.timeoutMs)), "connect_timeout_ms": .int(Int64(request.connectTimeoutMs)),
                                  "read_timeout_ms": .int(Int64(request.readTimeoutMs))]
        if let body = request.body { object["body"] = .string(body) }
        let reply = try parse(try call.syscall("net.stream.open", JSONValue.object(object).serialized()), "net.stream.open")
        guard let id = reply["stream"]?.int64Value else { throw .internal("net.stream.open answered without a stream id") }
        return (HTTPResponse(status: Int(reply["status"]?.int64Value ?? 0), headers: headers(reply), body: ""), Stream(call: call, id: id))
    }

    public var isCancelled: Bool { call.isCancelled }

    public func sleep(ms: Int) throws(DriverError) {
        var left = ms
        while left > 0 {
            try call.checkCancellation()
            let slice = min(left, 50)
            usleep(useconds_t(slice * 1000))
            left -= slice
        }
        try call.checkCancellation()
    }

    public func emit(_ event: JSONValue) throws(DriverError) {
        guard call.canEmit else { return }
        try call.emit(event.serialized())
    }

    public func log(_ level: LogLevel, _ message: String) { call.log(level, message) }

    final class Stream: HTTPBodyStream {
        let call: CallContext
        let id: Int64
        var finished = false
        init(call: CallContext, id: Int64) {
            self.call = call
            self.id = id
        }

        func read() throws(DriverError) -> (text: String, done: Bool) {
            if finished { return ("", true) }
            let reply = try parse(try call.syscall("net.stream.read", #"{"stream":\#(id)}"#), "net.stream.read")
            let done = reply["done"]?.boolValue ?? true
            if done { finished = true }
            return (reply["data"]?.stringValue ?? "", done)
        }

        func close() {
            guard !finished else { return }
            finished = true
            _ = try? call.syscall("net.stream.close", #"{"stream":\#(id)}"#)
        }
    }
}

private func parse(_ text: String, _ service: String) throws(DriverError) -> JSONValue {
    do { return try JSON.parse(text) } catch { throw .internal("\(service) answered with JSON that does not parse: \(error)") }
}

private func headers(_ reply: JSONValue) -> [String: String] {
    var fields: [String: String] = [:]
    for (name, value) in reply["headers"]?.objectValue ?? JSONObject() { fields[name.lowercased()] = value.stringValue ?? "" }
    return fields
}
