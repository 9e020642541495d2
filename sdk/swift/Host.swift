import CLLMOS

/// The host's function table, copied once and checked.
///
/// Following the ABI rule "use min(struct_size, sizeof) bytes and treat the rest
/// as zero", the SDK copies the host's `llmos_host` into one of its own size,
/// zero-filled, and refuses a host smaller than the 1.0 functions or with a NULL
/// 1.0 function. After that every 1.0 function pointer is known non-NULL.
///
/// `@unchecked Sendable`: the copy is immutable after `init`, and the 1.0 host
/// functions are callable from any thread within the rules of llmos.h (the
/// call-context functions on the call's thread, `log(NULL, ...)` anywhere).
struct Host: @unchecked Sendable {
    /// The smallest `struct_size` accepted: the 1.0 part of `llmos_host`, up to
    /// and including `syscall` (the reserved slots are NULL in 1.0 anyway).
    static let minimumSize: Int =
        MemoryLayout<llmos_host>.offset(of: \llmos_host.syscall)! + MemoryLayout<UnsafeRawPointer>.size

    /// The pointer the host gave (entry point or `create`): host functions that
    /// take a `const llmos_host *` must get this one, never the copy, because
    /// the host tells drivers apart by it.
    let pointer: UnsafePointer<llmos_host>
    /// The zero-extended copy, for reading the function pointers.
    let table: llmos_host
    /// The host's `struct_size` and `abi_minor`, as it reported them.
    let structSize: UInt32
    let abiMinor: UInt32

    /// Nil when `pointer` is NULL, too small, or lacks a 1.0 function.
    init?(_ pointer: UnsafePointer<llmos_host>?) {
        guard let pointer else { return nil }
        // Read only the header before trusting the size.
        let size = UnsafeRawPointer(pointer).load(as: UInt32.self)
        guard Int(size) >= Host.minimumSize else { return nil }
        var copy = llmos_host()
        withUnsafeMutableBytes(of: &copy) { destination in
            let count = min(Int(size), destination.count)
            destination.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: count))
        }
        guard copy.log != nil, copy.set_output != nil, copy.set_error != nil,
              copy.is_cancelled != nil, copy.progress != nil, copy.syscall != nil
        else { return nil }
        self.pointer = pointer
        self.table = copy
        self.structSize = size
        self.abiMinor = copy.abi_minor
    }

    /// Whether the host has `emit` (ABI 1.1); the zero-extended copy makes a
    /// smaller, older host read as NULL here.
    var hasEmit: Bool { table.emit != nil }

    /// `host->log(ctx, level, message)`; `ctx` may be nil (then: any thread).
    func log(_ ctx: OpaquePointer?, _ level: LogLevel, _ message: String) {
        message.withCString { table.log!(pointer, ctx, level.rawValue, $0) }
    }
}

/// Levels of the host's log (`LLMOS_LOG_*`).
public enum LogLevel: Int32, Sendable, CaseIterable {
    case debug = 0  // LLMOS_LOG_DEBUG
    case info = 1   // LLMOS_LOG_INFO
    case warn = 2   // LLMOS_LOG_WARN
    case error = 3  // LLMOS_LOG_ERROR
}

/// Calls `body` with a non-NULL pointer to `bytes` (the host rejects NULL even
/// for zero bytes) and their count.
func withNonNullChars<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
    if let base = bytes.baseAddress, bytes.count > 0 {
        return body(base.assumingMemoryBound(to: CChar.self), bytes.count)
    }
    return "".withCString { body($0, 0) }
}
