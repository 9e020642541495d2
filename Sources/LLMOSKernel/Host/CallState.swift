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

/// Everything the kernel knows about one call while it runs. Its address is the
/// `llmos_call_ctx *` the driver sees; it lives exactly as long as the call.
final class CallState {
    let tool: ToolEntry
    let parent: CallState?
    let depth: Int
    /// CLOCK_MONOTONIC nanoseconds after which the call counts as timed out.
    let deadlineNs: UInt64
    let token: CancellationToken?
    let progress: (@Sendable (Double, String?) -> Void)?

    var output: [UInt8]?
    var outputRejectedBytes: Int?
    var errorStatus: Int32 = 0
    var errorMessage: String?
    /// The last system call response, NUL-terminated, owned here until the next one.
    private var syscallResponse: UnsafeMutableBufferPointer<UInt8>?

    init(tool: ToolEntry, parent: CallState?, deadlineNs: UInt64, token: CancellationToken?,
         progress: (@Sendable (Double, String?) -> Void)?) {
        self.tool = tool
        self.parent = parent
        self.depth = (parent?.depth ?? -1) + 1
        self.deadlineNs = deadlineNs
        self.token = token
        self.progress = progress
    }

    deinit { syscallResponse?.deallocate() }

    var context: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ ctx: OpaquePointer?) -> CallState? {
        guard let ctx else { return nil }
        return Unmanaged<CallState>.fromOpaque(UnsafeRawPointer(ctx)).takeUnretainedValue()
    }

    var isCancelled: Bool {
        var state: CallState? = self
        while let s = state {
            if s.token?.isCancelled == true { return true }
            state = s.parent
        }
        return llmos_monotonic_ns() > deadlineNs
    }

    /// Whether `driver` is already running somewhere up this call chain.
    func chainContains(_ driver: LoadedDriver) -> Bool {
        var state: CallState? = self
        while let s = state {
            if s.tool.driver === driver { return true }
            state = s.parent
        }
        return false
    }

    /// Keeps `bytes` (plus a NUL) alive until the next system call or the end of the call.
    func holdResponse(_ bytes: [UInt8]) -> (UnsafePointer<CChar>, Int) {
        syscallResponse?.deallocate()
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count + 1)
        _ = buffer.initialize(from: bytes)
        buffer[bytes.count] = 0
        syscallResponse = buffer
        return (UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self), bytes.count)
    }
}
