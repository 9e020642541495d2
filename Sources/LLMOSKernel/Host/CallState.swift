import CLLMOS
import CLLMOSSystem
import Synchronization

/// Lets a caller cancel a call (and the calls it makes) from another thread.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .releasing) }
    public var isCancelled: Bool { flag.load(ordering: .acquiring) }
}

/// Everything the kernel knows about one call while it runs. It lives on the
/// caller's stack (no allocation per call); its address is the
/// `llmos_call_ctx *` the driver sees, valid exactly as long as the call.
struct CallState {
    let tool: ToolEntry
    /// The call that made this one through `tool.call`, on a frame below ours.
    let parent: CallRef?
    let depth: Int
    /// CLOCK_MONOTONIC nanoseconds after which the call counts as timed out.
    let deadlineNs: UInt64
    let token: CancellationToken?
    let progress: (@Sendable (Double, String?) -> Void)?
    let events: (@Sendable (String) -> Void)?
    /// The agent process the call chain runs for (CallOptions.agent), inherited from the parent.
    let agent: Int?
    /// The client the call chain came from (CallOptions.client), inherited from the parent.
    let client: String?

    var output: String?
    var outputRejectedBytes: Int?
    var errorStatus: Int32 = 0
    var errorMessage: String?
    /// Set by the isolation supervisor when the driver's process failed the call
    /// (crashed, hung, broke the protocol): it wins over anything else.
    var failure: LLMOSError?
    /// The last system call response, NUL-terminated, owned here until the next one.
    private var syscallResponse: UnsafeMutableBufferPointer<UInt8>?
    /// The net.stream streams this call opened; closed when the call ends.
    var streams: CallStreams?

    init(tool: ToolEntry, parent: CallRef?, deadlineNs: UInt64, token: CancellationToken?,
         progress: (@Sendable (Double, String?) -> Void)?, events: (@Sendable (String) -> Void)? = nil, agent: Int? = nil,
         client: String? = nil) {
        self.tool = tool
        self.parent = parent
        self.depth = (parent?.pointee.depth ?? -1) + 1
        self.deadlineNs = deadlineNs
        self.token = token
        self.progress = progress
        self.events = events
        self.agent = agent ?? parent?.pointee.agent
        self.client = client ?? parent?.pointee.client
    }

    /// Whether this call's caller, or any caller up the chain, cancelled it.
    var cancelledByCaller: Bool {
        if token?.isCancelled == true { return true }
        var state = parent
        while let s = state {
            if s.pointee.token?.isCancelled == true { return true }
            state = s.pointee.parent
        }
        return false
    }

    /// Frees what the call held; called once when the call returns.
    mutating func release() {
        syscallResponse?.deallocate()
        syscallResponse = nil
        streams?.closeAll()
        streams = nil
    }

    /// Keeps `bytes` (plus a NUL) alive until the next system call or the end of the call.
    mutating func holdResponse(_ bytes: [UInt8]) -> (UnsafePointer<CChar>, Int) {
        syscallResponse?.deallocate()
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count + 1)
        _ = buffer.initialize(from: bytes)
        buffer[bytes.count] = 0
        syscallResponse = buffer
        return (UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self), bytes.count)
    }
}

/// A running call, as host functions and system calls see it.
typealias CallRef = UnsafeMutablePointer<CallState>

extension UnsafeMutablePointer where Pointee == CallState {
    var context: OpaquePointer { OpaquePointer(self) }

    static func from(_ ctx: OpaquePointer?) -> CallRef? {
        ctx.map { CallRef($0) }
    }

    /// Cancelled by the caller (or any caller up the chain), or past the deadline.
    var isCancelled: Bool {
        pointee.cancelledByCaller || llmos_monotonic_ns() > pointee.deadlineNs
    }

    /// Whether `driver` is already running somewhere up this call chain.
    func chainContains(_ driver: LoadedDriver) -> Bool {
        var state: CallRef? = self
        while let s = state {
            if s.pointee.tool.driver === driver { return true }
            state = s.pointee.parent
        }
        return false
    }
}
