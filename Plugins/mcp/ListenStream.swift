// A `subscriptions/listen` stream (MCP 2026-07-28, SEP-2575): how a stateless server tells
// a client that its tools changed. The client sends a request whose response *is* the
// stream: the server acknowledges it (`notifications/subscriptions/acknowledged`, with the
// filter it honours), then sends `notifications/tools/list_changed` on it, every frame
// tagged with the request's id in `_meta["io.modelcontextprotocol/subscriptionId"]`, until
// the stream ends: a result (the server closed it), an error (it refused it) or, on stdio,
// `notifications/cancelled` naming the request. The client ends it with
// `notifications/cancelled` too. There is no replay: after any end the client lists again.
//
// Over stdio the stream is a long-lived request on the server's pipe with a string id
// (`listen-N`, so it can never collide with the process's integer ids). No thread waits
// on it and it is not a call in flight: no deadline, and it never counts towards the
// "unanswered calls" that make a server look hung. Its frames are routed here as they
// arrive. Over streamable HTTP it would be a POST held open between calls, which a driver
// cannot hold through the kernel (see HTTPConnection.swift).
import Foundation
import LLMOSDriverSDK
import LLMOSJSON

final class ListenStream: @unchecked Sendable {
    static let subscriptionIDKey = "io.modelcontextprotocol/subscriptionId"

    enum State: Equatable {
        /// Sent, not acknowledged yet.
        case opening
        /// Acknowledged: changes are reported.
        case open
        /// Over, and why (for the log).
        case ended(String)
    }

    let id: String
    private let process: ServerProcess
    /// Adds the revision's `_meta` to a request's or notification's params.
    private let stamp: @Sendable (JSONValue) -> JSONValue
    private let onChange: @Sendable () -> Void
    private let onEnd: @Sendable (String) -> Void
    private let lock = NSLock()
    private var state = State.opening
    /// Signalled once the stream is acknowledged or over.
    private let settled = DispatchSemaphore(value: 0)

    /// `onChange`: the tools changed. `onEnd`: the server ended the stream (or broke it), with why.
    init(id: String, process: ServerProcess, stamp: @escaping @Sendable (JSONValue) -> JSONValue,
         onChange: @escaping @Sendable () -> Void, onEnd: @escaping @Sendable (String) -> Void) {
        self.id = id
        self.process = process
        self.stamp = stamp
        self.onChange = onChange
        self.onEnd = onEnd
    }

    var current: State { lock.withLock { state } }

    /// Sends the request (tool list changes only: llmos mounts tools, not resources or prompts).
    func open() throws(DriverError) {
        let params = stamp(["notifications": ["toolsListChanged": true]])
        try process.send(["jsonrpc": "2.0", "id": .string(id), "method": "subscriptions/listen", "params": params])
    }

    /// Waits until the server acknowledged the stream or ended it, at most `limitMs`; false
    /// when neither happened (too slow, the call was cancelled, or the server died).
    func waitUntilSettled(limitMs: Int, isCancelled: () -> Bool) -> Bool {
        let start = DispatchTime.now()
        while settled.wait(timeout: .now() + .milliseconds(10)) == .timedOut {
            let elapsedMs = (DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
            if isCancelled() || elapsedMs > UInt64(limitMs) || !process.isAlive { return false }
        }
        settled.signal()   // stays signalled
        return true
    }

    /// Whether a notification from the server belongs to this stream.
    func owns(_ method: String, _ params: JSONValue) -> Bool {
        if method == "notifications/cancelled" { return params["requestId"]?.stringValue == id }
        return params["_meta"]?[Self.subscriptionIDKey]?.stringValue == id
    }

    /// A frame of this stream (`owns` said so).
    func handle(_ method: String, _ params: JSONValue) {
        switch method {
        case "notifications/subscriptions/acknowledged":
            guard let filter = params["notifications"], filter.objectValue != nil else {
                end("its acknowledgement is malformed (notifications is not an object): \(ServerProcess.quote(params.serialized()))")
                return
            }
            guard filter["toolsListChanged"]?.boolValue == true else {
                end("its acknowledgement does not honour toolsListChanged: \(ServerProcess.quote(filter.serialized()))")
                return
            }
            let first = lock.withLock { () -> Bool in
                guard state == .opening else { return false }
                state = .open
                return true
            }
            if first { settled.signal() }
        case "notifications/tools/list_changed":
            // A level trigger: even one sent before the acknowledgement means "list again".
            if case .ended = current { return }
            onChange()
        case "notifications/cancelled":
            end("the server ended it (notifications/cancelled)", cancelAtServer: false)
        default:
            end("it carried an event that was not asked for: \(ServerProcess.quote(method)) \(ServerProcess.quote(params.serialized()))")
        }
    }

    /// The response to the listen request: the end of the stream.
    func handleResponse(_ message: JSONValue) {
        if let error = message["error"] {
            let code = error["code"]?.int64Value ?? 0
            end("the server refused it with error \(code): \(error["message"]?.stringValue ?? error.serialized())", cancelAtServer: false)
        } else {
            end("the server closed it", cancelAtServer: false)
        }
    }

    /// Ends the stream from this side (`notifications/cancelled` at the server); no `onEnd`.
    func close(reason: String) {
        guard markEnded(reason) else { return }
        cancelAtServer(reason)
    }

    /// The stream is over because of the server: reported through `onEnd`.
    private func end(_ why: String, cancelAtServer cancel: Bool = true) {
        guard markEnded(why) else { return }
        if cancel { cancelAtServer("llmos stopped listening: \(why)") }
        onEnd(why)
    }

    /// Records the end (the first reason wins); false when it was over already.
    private func markEnded(_ why: String) -> Bool {
        let first = lock.withLock { () -> Bool in
            if case .ended = state { return false }
            state = .ended(why)
            return true
        }
        if first { settled.signal() }
        return first
    }

    private func cancelAtServer(_ reason: String) {
        guard process.isAlive else { return }
        process.notify("notifications/cancelled", stamp(["requestId": .string(id), "reason": .string(reason)]))
    }
}
