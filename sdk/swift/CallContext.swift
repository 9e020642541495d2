import CLLMOS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One call of one operation: wraps the host's `llmos_call_ctx *`.
///
/// Valid only while the handler that received it runs, and only on the thread
/// running it (which is why it is not `Sendable`). Do not store it or hand it
/// to another task. If it is used anyway after the call returned, the SDK
/// never passes the dead context to the host: `isCancelled` is then true,
/// `progress` does nothing, `log` logs without a call, and `syscall` throws
/// `internal`.
public final class CallContext {
    /// The operation being run (for a tool driver: the tool name, without the
    /// driver prefix).
    public let operation: String

    private let ctx: OpaquePointer
    private let host: Host
    private var active = true

    init(ctx: OpaquePointer, host: Host, operation: String) {
        self.ctx = ctx
        self.host = host
        self.operation = operation
    }

    /// Called by the SDK when the call returns.
    func end() { active = false }

    /// True once the caller cancelled this call or its deadline
    /// (limits.timeout_ms) passed. Cheap: poll it in long loops.
    public var isCancelled: Bool {
        guard active else { return true }
        return host.table.is_cancelled!(ctx) != 0
    }

    /// Throws `DriverError.cancelled` if the call was cancelled.
    public func checkCancellation() throws(DriverError) {
        if isCancelled { throw .cancelled }
    }

    /// Report progress: `fraction` in 0...1, or negative when unknown. The host
    /// may drop it when nobody listens.
    public func progress(_ fraction: Double, _ message: String? = nil) {
        guard active else { return }
        if let message {
            message.withCString { host.table.progress!(ctx, fraction, $0) }
        } else {
            host.table.progress!(ctx, fraction, nil)
        }
    }

    /// Whether the host can take streamed events (`emit`, ABI 1.1).
    public var canEmit: Bool { host.hasEmit }

    /// Deliver one streamed event (JSON text, e.g. a cpu `stream_event` delta) to
    /// the caller while the call runs. Throws `cancelled` once the call is
    /// cancelled; does nothing on a 1.0 host, which has no way to stream.
    public func emit(_ eventJSON: String) throws(DriverError) {
        guard active else { throw .cancelled }
        guard host.hasEmit else { return }
        var text = eventJSON
        let status = text.withUTF8 { bytes in
            withNonNullChars(UnsafeRawBufferPointer(bytes)) { chars, count in
                host.table.emit!(ctx, chars, count)
            }
        }
        switch status {
        case LLMOS_OK: return
        case LLMOS_ERR_CANCELLED: throw .cancelled
        default: throw DriverError(DriverError.Code(rawValue: status), "emit: the host refused the event (is it JSON?)")
        }
    }

    /// Write a line to the host's log, attributed to this driver and this call.
    /// Never log secrets: the operator can read the log.
    public func log(_ level: LogLevel, _ message: String) {
        host.log(active ? ctx : nil, level, message)
    }

    /// Ask the kernel to do something on the driver's behalf (see
    /// docs/SYSCALLS.md): `service` is e.g. "kv.get", `requestJSON` its input.
    ///
    /// Returns the response JSON, copied (the host's buffer is only valid until
    /// the next syscall). On failure throws a DriverError with the host's status
    /// and the message from the host's `{"error": {"code", "message"}}`.
    public func syscall(_ service: String, _ requestJSON: String) throws(DriverError) -> String {
        guard active else {
            throw .internal("syscall \(service): the call context was used after its call returned")
        }
        var response: UnsafePointer<CChar>? = nil
        var responseLength = 0
        var request = requestJSON
        let status = request.withUTF8 { bytes in
            service.withCString { name in
                withNonNullChars(UnsafeRawBufferPointer(bytes)) { chars, count in
                    host.table.syscall!(ctx, name, chars, count, &response, &responseLength)
                }
            }
        }
        let text: String
        if let response {
            text = String(decoding: UnsafeRawBufferPointer(start: response, count: responseLength), as: UTF8.self)
        } else {
            text = ""
        }
        guard status == LLMOS_OK else {
            let code = DriverError.Code(rawValue: status)
            struct Failure: Decodable {
                struct Body: Decodable { var code: String?; var message: String? }
                var error: Body
            }
            let message = (try? JSONCoding.decode(Failure.self, from: text))?.error.message
            throw DriverError(code, message ?? "syscall \(service) failed: \(code.name)")
        }
        return text
    }

    /// The typed form of `syscall(_:_:)`: `request` is encoded to JSON, the
    /// response decoded into `Response`. An encoding or decoding failure throws
    /// `internal` naming the service.
    public func syscall<Request: Encodable, Response: Decodable>(
        _ service: String, _ request: Request, as type: Response.Type = Response.self
    ) throws(DriverError) -> Response {
        let requestJSON: String
        do {
            requestJSON = String(decoding: try JSONCoding.encode(request), as: UTF8.self)
        } catch {
            throw .internal("syscall \(service): could not encode the request: \(error)")
        }
        let responseJSON = try syscall(service, requestJSON)
        do {
            return try JSONCoding.decode(type, from: responseJSON)
        } catch let error as DecodingError {
            throw .internal("syscall \(service): unexpected response: \(JSONCoding.detail(error))")
        } catch {
            throw .internal("syscall \(service): unexpected response: \(error)")
        }
    }
}

@available(*, unavailable, message: "a CallContext belongs to the thread running its call")
extension CallContext: Sendable {}
