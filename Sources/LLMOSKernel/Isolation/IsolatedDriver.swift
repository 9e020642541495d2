import CLLMOS
import CLLMOSIsolation
import CLLMOSSystem
import Glibc
import LLMOSJSON
import Synchronization

/// The supervisor of one `isolation: process` driver: starts its helper, forwards
/// calls to it, and turns a crash, a hang or a protocol violation into an error for
/// that call, then restarts the helper with backoff — or, after too many failures
/// in a window, quarantines the driver.
///
/// Calls reach it one at a time (the kernel holds the driver's lock around every
/// call to an isolated driver); `status` may be read from any thread.
final class IsolatedDriver: @unchecked Sendable {
    struct Status: Sendable, Equatable {
        var pid: pid_t?
        var restarts = 0
        var failures = 0
        var lastFailure: String?
        var quarantined: String?
        var sandbox: String = ""
    }

    let helperPath: String
    let plan: SandboxPlan
    let settings: IsolationSettings
    private let setupText: String
    private unowned let driver: LoadedDriver
    private var process: HelperProcess?
    private var failureTimes: [UInt64] = []
    private var consecutiveFailures = 0
    private var notBeforeNs: UInt64 = 0
    private let published = Mutex(Status())

    var status: Status { published.withLock { $0 } }

    init(driver: LoadedDriver, helperPath: String, plan: SandboxPlan, settings: IsolationSettings, config: String) {
        self.driver = driver
        self.helperPath = helperPath
        self.plan = plan
        self.settings = settings
        let manifest = driver.manifest
        self.setupText = plan.setupText(library: driver.libraryPath, entry: manifest.library.entry, name: manifest.name,
                                        config: config, maxOutputBytes: manifest.limits.maxOutputBytes, spinNs: settings.spinNs)
        published.withLock { $0.sandbox = plan.summary }
    }

    /// What the helper reported when it started: the driver's own description.
    struct Description {
        var name: String
        var version: String
        var abiMinor: UInt32
        var operations: [String]
        var sandbox: JSONValue?
    }

    // MARK: Starting

    /// Starts the helper and negotiates with the driver inside it. Errors read like
    /// the in-process loader's, naming the manifest.
    func start(deadlineNs: UInt64) throws(LLMOSError) -> Description {
        let file = driver.manifest.file
        let helper = try HelperProcess.spawn(helperPath: helperPath, environment: plan.environment, spinNs: settings.spinNs)
        _ = helper.send(LLMOS_ISO_SETUP, text: setupText)
        var lines: [String] = []
        var description: Description?

        func died(_ what: String) -> LLMOSError {
            let death = helper.terminate(graceMs: settings.graceMs)
            return LLMOSError(.loadFailed, "\(file): the isolated driver \(what) (its helper \(death?.text ?? "did not answer"))\(quoted(lines))")
        }
        while true {
            switch helper.receive(until: deadlineNs) {
            case .timeout:
                throw died("did not start within \(settings.startTimeoutMs) ms")
            case .closed, .broken:
                throw died("stopped while starting")
            case .frame(let header, let payload):
                let text = String(decoding: payload, as: UTF8.self)
                switch Int(header.type) {
                case LLMOS_ISO_LOG:
                    lines.append(text)
                    driver.record(KernelLogEntry(level: .init(clamping: header.a), source: driver.name, message: text))
                case LLMOS_ISO_FAILED:
                    let error = refusal(text, lines: lines)
                    helper.terminate(graceMs: settings.graceMs)
                    throw error
                case LLMOS_ISO_READY where header.flags == 0:
                    guard let value = try? JSON.parse(text) else { throw died("sent a malformed description") }
                    description = Description(
                        name: value["name"]?.stringValue ?? "", version: value["version"]?.stringValue ?? "",
                        abiMinor: UInt32(value["abi_minor"]?.int64Value ?? 0),
                        operations: value["operations"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                        sandbox: value["sandbox"])
                case LLMOS_ISO_READY:
                    guard let description else { throw died("skipped its description") }
                    guard header.a == LLMOS_OK else {
                        helper.terminate(graceMs: settings.graceMs)
                        throw LLMOSError(.loadFailed, "\(file): the driver could not start (create returned \(LLMOSError.Code(status: header.a).name))\(quoted(lines))")
                    }
                    process = helper
                    published.withLock { $0.pid = helper.pid }
                    return description
                default:
                    throw died("sent an unexpected message while starting")
                }
            }
        }
    }

    private func quoted(_ lines: [String]) -> String {
        lines.isEmpty ? "" : "; the driver said: " + lines.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// A FAILED frame as the same refusal the in-process loader gives.
    private func refusal(_ text: String, lines: [String]) -> LLMOSError {
        let file = driver.manifest.file
        let value = try? JSON.parse(text)
        let kind = value?["kind"]?.stringValue ?? ""
        let message = value?["message"]?.stringValue ?? text
        let status = Int32(value?["status"]?.int64Value ?? Int64(LLMOS_ERR_INTERNAL))
        let entry = driver.manifest.library.entry
        switch kind {
        case "sandbox":
            return LLMOSError(.unavailable, "\(file): isolation: the sandbox could not be built: \(message); refusing to run the driver without it")
        case "dlopen":
            return LLMOSError(.loadFailed, "\(file): cannot load \(driver.libraryPath) in its sandbox: \(message)")
        case "no_entry":
            if let major = value?["detail"]?.stringValue {
                return LLMOSError(.abi, "\(file): \(driver.libraryPath) was built for driver ABI major \(major) (it exports llmos_driver_entry_v\(major)); this host speaks major \(LLMOS_ABI_MAJOR) and looks for \(entry)")
            }
            return LLMOSError(.loadFailed, "\(file): library.entry: \(driver.libraryPath) does not export the entry point \(entry)")
        case "refused":
            let code = LLMOSError.Code(status: status)
            return LLMOSError(code == .abi ? .abi : .loadFailed, "\(file): the driver refused to load (\(entry) returned \(code.name))\(quoted(lines))")
        case "small_struct":
            return LLMOSError(.abi, "\(file): the driver's llmos_driver.struct_size is \(message) bytes, smaller than the \(llmos_driver_min_size()) bytes of ABI 1.0; rebuild it against sdk/include/llmos/llmos.h")
        case "no_description":
            return LLMOSError(.abi, "\(file): \(entry) returned LLMOS_OK but no driver description")
        case "no_name":
            return LLMOSError(.abi, "\(file): the driver's description has no name")
        case "no_call":
            return LLMOSError(.abi, "\(file): the driver's description has no call function")
        default:
            return LLMOSError(.loadFailed, "\(file): the isolated driver failed to start: \(message)\(quoted(lines))")
        }
    }

    // MARK: Calls

    /// Runs one call in the helper, filling `ref` as an in-process call would.
    /// Returns the driver's status; a supervision failure sets `ref.pointee.failure`.
    func call(_ ref: CallRef, operation: String, input: UnsafeRawBufferPointer) -> Int32 {
        let name = ref.pointee.tool.qualifiedName
        for attempt in 0..<2 {
            do throws(LLMOSError) {
                try ensureRunning(ref.pointee.deadlineNs)
            } catch {
                ref.pointee.failure = LLMOSError(error.code, "\(name): \(error.message)")
                return error.code.abiStatus
            }
            guard let helper = process else { break }
            helper.sequence &+= 1
            let seq = helper.sequence
            let now = llmos_monotonic_ns()
            // Rounded up, so the helper's deadline is never before the kernel's.
            let remainingMs = ref.pointee.deadlineNs > now ? (ref.pointee.deadlineNs - now) / 1_000_000 + 1 : 1
            var op = operation
            let sent = op.withUTF8 { opBytes in
                // "op NUL input": the op's own bytes, then the input with its NUL.
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: opBytes.count + 1) { framed in
                    _ = framed.initialize(fromContentsOf: opBytes)
                    framed[opBytes.count] = 0
                    return helper.send(LLMOS_ISO_CALL, a: Int32(clamping: remainingMs), b: Int32(opBytes.count), c: seq,
                                       UnsafeRawBufferPointer(framed), input)
                }
            }
            if sent != 0 {
                // Gone while idle: the call never started, so it may go to a fresh helper.
                let death = helper.terminate(graceMs: 0)
                fail("its process had \(death?.text ?? "ended") while idle")
                if attempt == 0 { continue }
                ref.pointee.failure = LLMOSError(.unavailable, "\(name): the driver's process is not running")
                return LLMOS_ERR_UNAVAILABLE
            }
            return serve(ref, helper: helper, seq: seq)
        }
        ref.pointee.failure = LLMOSError(.unavailable, "\(name): the driver's process is not running")
        return LLMOS_ERR_UNAVAILABLE
    }

    /// Serves the helper's requests until its RESULT, a failure, or the deadline.
    private func serve(_ ref: CallRef, helper: HelperProcess, seq: UInt64) -> Int32 {
        let name = ref.pointee.tool.qualifiedName
        let graceNs = UInt64(settings.graceMs) * 1_000_000
        var hardDeadline = ref.pointee.deadlineNs &+ graceNs
        var cancelSent = false
        let limits = driver.manifest.limits
        /// True when the call is out of time: past the deadline (or the caller's cancel)
        /// plus the grace period.
        func checkDeadline() -> Bool {
            let now = llmos_monotonic_ns()
            if !cancelSent && (ref.pointee.cancelledByCaller || now > ref.pointee.deadlineNs) {
                // The helper sees its own deadline; a caller's cancel has to be told.
                llmos_iso_shared_cancel(helper.shared, seq)
                cancelSent = true
                hardDeadline = min(hardDeadline, now &+ graceNs)
            }
            return now >= hardDeadline
        }
        while true {
            let slice = min(hardDeadline, llmos_monotonic_ns() &+ 20_000_000)
            switch helper.receive(until: slice) {
            case .frame(let header, let payload):
                switch Int(header.type) {
                case LLMOS_ISO_RESULT:
                    let text = String(decoding: payload, as: UTF8.self)
                    if header.flags & UInt16(LLMOS_ISO_REJECTED) != 0 { ref.pointee.outputRejectedBytes = Int(header.c) }
                    if header.flags & UInt16(LLMOS_ISO_HAS_ERROR) != 0 {
                        ref.pointee.errorStatus = header.b == LLMOS_OK ? LLMOS_ERR_INTERNAL : header.b
                        ref.pointee.errorMessage = text
                    } else if header.flags & UInt16(LLMOS_ISO_HAS_OUTPUT) != 0 {
                        // The helper enforces the limit too; the kernel does not trust it to.
                        if payload.count > limits.maxOutputBytes { ref.pointee.outputRejectedBytes = payload.count } else { ref.pointee.output = text }
                    }
                    consecutiveFailures = 0
                    return header.a
                case LLMOS_ISO_LOG:
                    let text = String(decoding: payload, as: UTF8.self)
                    driver.record(KernelLogEntry(level: .init(clamping: header.a), source: driver.name,
                                                 tool: header.b == 1 ? name : nil, message: text))
                case LLMOS_ISO_PROGRESS where payload.count >= 8:
                    let fraction = payload.loadUnaligned(as: Double.self)
                    let message = payload.count > 8 ? String(decoding: UnsafeRawBufferPointer(rebasing: payload[8...]), as: UTF8.self) : nil
                    ref.pointee.progress?(fraction.isNaN ? -1 : min(fraction, 1), message)
                case LLMOS_ISO_EMIT:
                    if let deliver = ref.pointee.events, JSON.syntaxError(in: payload) == nil {
                        deliver(String(decoding: payload, as: UTF8.self))
                    }
                case LLMOS_ISO_SYSCALL:
                    let serviceLength = Int(header.b)
                    guard serviceLength < payload.count else { return violation(ref, helper, "a malformed system call") }
                    let service = String(decoding: UnsafeRawBufferPointer(rebasing: payload[..<serviceLength]), as: UTF8.self)
                    let request = UnsafeRawBufferPointer(rebasing: payload[(serviceLength + 1)...])
                    let (status, bytes) = driver.kernel.syscalls.handle(service: service, request: request, caller: ref)
                    let sent = bytes.withUnsafeBytes { helper.send(LLMOS_ISO_SYSCALL_REPLY, a: status, $0) }
                    if sent != 0 { return died(ref, helper) }
                default:
                    return violation(ref, helper, "an unexpected message (type \(header.type))")
                }
                // A helper that floods logs or system calls still meets its deadline.
                if checkDeadline() { return hung(ref, helper) }
            case .timeout:
                if checkDeadline() { return hung(ref, helper) }
            case .closed:
                return died(ref, helper)
            case .broken:
                return violation(ref, helper, "a malformed or oversized message")
            }
        }
    }

    private func died(_ ref: CallRef, _ helper: HelperProcess) -> Int32 {
        let name = ref.pointee.tool.qualifiedName
        let death = helper.reap(waitMs: 2_000) ?? helper.terminate(graceMs: settings.graceMs)
        let memoryLimitKB = plan.memoryMB * 1024
        var code = LLMOSError.Code.unavailable
        var what = "the driver \(death?.text ?? "stopped") during the call"
        if let death, death.signal != nil, memoryLimitKB > 0, death.peakAddressSpaceKB * 10 >= memoryLimitKB * 8 {
            code = .resourceExhausted
            what = "the driver ran out of memory: it reached \(death.peakAddressSpaceKB / 1024) MB of address space of its \(plan.memoryMB) MB limit (limits.memory_mb) and \(death.text)"
        }
        let next = fail(what)
        ref.pointee.failure = LLMOSError(code, "\(name): \(what); \(next)")
        return code.abiStatus
    }

    private func hung(_ ref: CallRef, _ helper: HelperProcess) -> Int32 {
        let name = ref.pointee.tool.qualifiedName
        let byCaller = ref.pointee.cancelledByCaller
        helper.terminate(graceMs: settings.graceMs)
        let limitMs = driver.manifest.limits.timeoutMs
        let what = byCaller
            ? "cancelled, and the driver did not stop within \(settings.graceMs) ms, so its process was terminated"
            : "timed out: the driver did not finish within its deadline (limits.timeout_ms \(limitMs)) or stop when told, so its process was terminated"
        let next = fail(what)
        let code: LLMOSError.Code = byCaller ? .cancelled : .timeout
        ref.pointee.failure = LLMOSError(code, "\(name): \(what); \(next)")
        return code.abiStatus
    }

    private func violation(_ ref: CallRef, _ helper: HelperProcess, _ what: String) -> Int32 {
        let name = ref.pointee.tool.qualifiedName
        helper.terminate(graceMs: 0)
        let next = fail("its process sent \(what)")
        ref.pointee.failure = LLMOSError(.invalidOutput, "\(name): the driver's process sent \(what) and was stopped; \(next)")
        return LLMOS_ERR_INVALID_OUTPUT
    }

    // MARK: Supervision

    /// Counts a failure, drops the process, and says what happens next.
    @discardableResult
    private func fail(_ reason: String) -> String {
        process = nil
        let now = llmos_monotonic_ns()
        let window = UInt64(settings.quarantineWindowMs) * 1_000_000
        failureTimes.append(now)
        failureTimes.removeAll { now &- $0 > window }
        consecutiveFailures += 1
        let backoffMs = consecutiveFailures <= 1 ? 0
            : min(settings.restartBackoffCapMs, settings.restartBackoffMs << min(consecutiveFailures - 2, 20))
        notBeforeNs = now &+ UInt64(backoffMs) * 1_000_000
        let quarantine = failureTimes.count >= settings.quarantineFailures
        let windowText = "\(failureTimes.count) failures in \(settings.quarantineWindowMs / 1000) s"
        published.withLock {
            $0.pid = nil
            $0.failures += 1
            $0.lastFailure = reason
            if quarantine { $0.quarantined = "\(windowText) (last: \(reason))" }
        }
        if quarantine {
            driver.record(KernelLogEntry(level: .error, source: "kernel", message: "\(driver.name) is quarantined after \(windowText): \(reason). Fix it, then `llmos drivers reload \(driver.name)`"))
            return "the driver is now quarantined (\(windowText))"
        }
        driver.record(KernelLogEntry(level: .warn, source: "kernel", message: "\(driver.name): \(reason); restarting it\(backoffMs > 0 ? " in \(backoffMs) ms" : "")"))
        return backoffMs > 0 ? "it will be restarted in \(backoffMs) ms" : "it will be restarted for the next call"
    }

    /// A running helper, started (after any backoff) if there is none.
    private func ensureRunning(_ deadlineNs: UInt64) throws(LLMOSError) {
        if process != nil { return }
        if let reason = published.withLock({ $0.quarantined }) {
            throw LLMOSError(.unavailable, "the driver \(driver.name) is quarantined after \(reason); fix it, then `llmos drivers reload \(driver.name)`")
        }
        let now = llmos_monotonic_ns()
        if now < notBeforeNs {
            guard notBeforeNs < deadlineNs else {
                throw LLMOSError(.unavailable, "the driver \(driver.name) is restarting after a failure; next attempt in \((notBeforeNs - now) / 1_000_000) ms")
            }
            var pause = timespec(tv_sec: Int((notBeforeNs - now) / 1_000_000_000), tv_nsec: Int((notBeforeNs - now) % 1_000_000_000))
            nanosleep(&pause, nil)
        }
        let startDeadline = min(deadlineNs, llmos_monotonic_ns() &+ UInt64(settings.startTimeoutMs) * 1_000_000)
        do {
            _ = try start(deadlineNs: startDeadline)
            published.withLock { $0.restarts += 1 }
        } catch {
            fail("it could not be restarted: \(error.message)")
            throw error
        }
    }

    /// Asks the helper to destroy the instance and exit; kills it after the grace period.
    func shutdown() {
        guard let helper = process else { return }
        process = nil
        _ = helper.send(LLMOS_ISO_SHUTDOWN)
        if helper.reap(waitMs: settings.graceMs) == nil { helper.terminate(graceMs: settings.graceMs) }
        published.withLock { $0.pid = nil }
    }
}
