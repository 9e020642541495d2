import CLLMOS
import CLLMOSSystem
import LLMOSJSON

/// The `llmos_host` function table. Each loaded driver gets its own copy (inside
/// an `llmos_host_block`, so `log` can tell drivers apart); the functions are the
/// same for all. None of them lets a Swift error or a signal escape into C.
enum HostFunctions {
    static func makeHostBlock(owner: LoadedDriver) -> UnsafeMutablePointer<llmos_host_block> {
        let block = UnsafeMutablePointer<llmos_host_block>.allocate(capacity: 1)
        block.initialize(to: llmos_host_block())
        block.pointee.host.struct_size = UInt32(MemoryLayout<llmos_host>.size)
        block.pointee.host.abi_minor = UInt32(LLMOS_ABI_MINOR)
        block.pointee.host.log = log
        block.pointee.host.set_output = setOutput
        block.pointee.host.set_error = setError
        block.pointee.host.is_cancelled = isCancelled
        block.pointee.host.progress = progress
        block.pointee.host.syscall = syscall
        block.pointee.host.emit = emit
        block.pointee.owner = Unmanaged.passUnretained(owner).toOpaque()
        return block
    }

    static func owner(of host: UnsafePointer<llmos_host>?) -> LoadedDriver? {
        guard let raw = llmos_host_block_owner(host) else { return nil }
        return Unmanaged<LoadedDriver>.fromOpaque(raw).takeUnretainedValue()
    }

    static let log: @convention(c) (UnsafePointer<llmos_host>?, OpaquePointer?, Int32, UnsafePointer<CChar>?) -> Void = { host, ctx, level, message in
        guard let message, let driver = owner(of: host) else { return }
        let tool = CallRef.from(ctx)?.pointee.tool.qualifiedName
        driver.record(KernelLogEntry(level: .init(clamping: level), source: driver.name, tool: tool, message: String(cString: message)))
    }

    static let setOutput: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int) -> llmos_status = { ctx, json, len in
        guard let state = CallRef.from(ctx), let json else { return LLMOS_ERR_INVALID_ARGUMENT }
        if len > state.pointee.tool.driver.manifest.limits.maxOutputBytes {
            state.pointee.output = nil
            state.pointee.outputRejectedBytes = len
            return LLMOS_ERR_OUTPUT_TOO_LARGE
        }
        // One copy, straight into the String the caller receives (invalid UTF-8 is
        // repaired here and then refused as invalid JSON by the output check).
        state.pointee.output = String(unsafeUninitializedCapacity: len) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: json, count: len))
            return len
        }
        return LLMOS_OK
    }

    static let setError: @convention(c) (OpaquePointer?, llmos_status, UnsafePointer<CChar>?) -> llmos_status = { ctx, code, message in
        guard let state = CallRef.from(ctx) else { return LLMOS_ERR_INVALID_ARGUMENT }
        state.pointee.errorStatus = code == LLMOS_OK ? LLMOS_ERR_INTERNAL : code
        state.pointee.errorMessage = message.map { String(cString: $0) }
        return LLMOS_OK
    }

    static let isCancelled: @convention(c) (OpaquePointer?) -> Int32 = { ctx in
        guard let state = CallRef.from(ctx) else { return 1 }
        return state.isCancelled ? 1 : 0
    }

    static let progress: @convention(c) (OpaquePointer?, Double, UnsafePointer<CChar>?) -> Void = { ctx, fraction, message in
        guard let state = CallRef.from(ctx), let report = state.pointee.progress else { return }
        report(fraction.isNaN ? -1 : min(fraction, 1), message.map { String(cString: $0) })
    }

    static let emit: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int) -> llmos_status = { ctx, json, len in
        guard let state = CallRef.from(ctx), let json else { return LLMOS_ERR_INVALID_ARGUMENT }
        if state.isCancelled { return LLMOS_ERR_CANCELLED }
        guard let deliver = state.pointee.events else { return LLMOS_OK }
        let bytes = UnsafeRawBufferPointer(start: json, count: len)
        guard JSON.syntaxError(in: bytes) == nil else { return LLMOS_ERR_INVALID_ARGUMENT }
        deliver(String(decoding: bytes, as: UTF8.self))
        return LLMOS_OK
    }

    static let syscall: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int, UnsafeMutablePointer<UnsafePointer<CChar>?>?, UnsafeMutablePointer<Int>?) -> llmos_status = { ctx, service, request, length, response, responseLength in
        guard let response, let responseLength else { return LLMOS_ERR_INVALID_ARGUMENT }
        guard let state = CallRef.from(ctx) else {
            response.pointee = nil
            responseLength.pointee = 0
            return LLMOS_ERR_INVALID_ARGUMENT
        }
        let name = service.map { String(cString: $0) } ?? ""
        let requestBytes = request.map { UnsafeRawBufferPointer(start: $0, count: length) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let (status, bytes) = state.pointee.tool.driver.kernel.syscalls.handle(service: name, request: requestBytes, caller: state)
        let (pointer, count) = state.pointee.holdResponse(bytes)
        response.pointee = pointer
        responseLength.pointee = count
        return status
    }
}
