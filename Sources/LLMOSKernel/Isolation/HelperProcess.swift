import CLLMOS
import CLLMOSIsolation
import CLLMOSSystem
import Glibc
import LLMOSJSON

/// One running llmos-driver-host process and the kernel's end of its channel.
/// Not thread-safe: its owner (`IsolatedDriver`) uses it under the driver's lock.
final class HelperProcess {
    let pid: pid_t
    private let socketFD: Int32
    private let sharedFD: Int32
    private let stderrFD: Int32
    let shared: UnsafeMutableRawPointer
    let channel: OpaquePointer
    /// The sequence number of the last call sent.
    var sequence: UInt64 = 0
    private var reaped: Int32?

    private init(pid: pid_t, socketFD: Int32, sharedFD: Int32, stderrFD: Int32,
                 shared: UnsafeMutableRawPointer, channel: OpaquePointer) {
        self.pid = pid
        self.socketFD = socketFD
        self.sharedFD = sharedFD
        self.stderrFD = stderrFD
        self.shared = shared
        self.channel = channel
    }

    deinit {
        if reaped == nil { _ = terminate(graceMs: 0) }
        llmos_iso_channel_free(channel)
        llmos_iso_shared_unmap(shared)
        close(socketFD)
        close(sharedFD)
        close(stderrFD)
    }

    /// Starts the helper with only `environment` (the granted variables).
    static func spawn(helperPath: String, argument: String? = nil, environment: [String: String], spinNs: UInt64) throws(LLMOSError) -> HelperProcess {
        var sockets: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        var sharedFD: Int32 = -1
        if let rc = Optional(llmos_iso_socketpair(&sockets)), rc != 0 {
            throw LLMOSError(.io, "isolation: socketpair failed: \(String(cString: strerror(rc)))")
        }
        guard llmos_iso_pipe(&errorPipe) == 0 else {
            close(sockets[0]); close(sockets[1])
            throw LLMOSError(.io, "isolation: pipe failed: \(String(cString: strerror(errno)))")
        }
        guard let shared = llmos_iso_shared_create(&sharedFD) else {
            for fd in sockets + errorPipe { close(fd) }
            throw LLMOSError(.io, "isolation: cannot make the shared page (memfd_create): \(String(cString: strerror(errno)))")
        }
        // The Swift runtime's crash backtracer (the helper links it) would only add
        // "Backtracing..." noise to a crash report the kernel writes itself.
        var environment = environment
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        let variables = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in variables { free(variable) } }
        var pid: pid_t = 0
        let rc = variables.withUnsafeBufferPointer { envp in
            helperPath.withCString { path in
                if let argument {
                    return argument.withCString { llmos_iso_spawn(path, $0, envp.baseAddress, sockets[1], sharedFD, errorPipe[1], &pid) }
                }
                return llmos_iso_spawn(path, nil, envp.baseAddress, sockets[1], sharedFD, errorPipe[1], &pid)
            }
        }
        close(sockets[1])
        close(errorPipe[1])
        guard rc == 0 else {
            close(sockets[0]); close(errorPipe[0]); close(sharedFD)
            llmos_iso_shared_unmap(shared)
            throw LLMOSError(.loadFailed, "isolation: cannot start \(helperPath): \(String(cString: strerror(rc)))")
        }
        guard let channel = llmos_iso_channel_open(sockets[0], shared, 0, spinNs) else {
            kill(pid, SIGKILL)
            throw LLMOSError(.io, "isolation: out of memory")
        }
        return HelperProcess(pid: pid, socketFD: sockets[0], sharedFD: sharedFD, stderrFD: errorPipe[0], shared: shared, channel: channel)
    }

    /// Runs `llmos-driver-host --probe` in a throwaway process and returns its JSON.
    static func probe(helperPath: String) throws(LLMOSError) -> String {
        let helper = try spawn(helperPath: helperPath, argument: "--probe", environment: [:], spinNs: 0)
        let deadline = llmos_monotonic_ns() + 10_000_000_000
        var header = llmos_iso_header()
        var payload: UnsafePointer<CChar>?
        let r = llmos_iso_recv(helper.channel, deadline, LLMOS_ISO_MAX_FRAME, &header, &payload)
        guard r == 1, Int(header.type) == LLMOS_ISO_READY, let payload else {
            let death = helper.terminate(graceMs: 100)
            throw LLMOSError(.internalError, "isolation: \(helperPath) --probe failed (\(death.map { $0.text } ?? "no answer"))")
        }
        let text = String(cString: payload)
        _ = helper.terminate(graceMs: 1000)
        return text
    }

    // MARK: Frames

    func send(_ type: Int, flags: UInt16 = 0, a: Int32 = 0, b: Int32 = 0, c: UInt64 = 0,
              _ first: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
              _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Int32 {
        llmos_iso_send(channel, UInt16(type), flags, a, b, c, first.baseAddress, first.count, second.baseAddress, second.count)
    }

    func send(_ type: Int, a: Int32 = 0, text: String) -> Int32 {
        var text = text
        return text.withUTF8 { send(type, a: a, UnsafeRawBufferPointer($0)) }
    }

    enum Received {
        case frame(llmos_iso_header, UnsafeRawBufferPointer)
        case timeout
        case closed
        case broken
    }

    func receive(until deadlineNs: UInt64) -> Received {
        var header = llmos_iso_header()
        var payload: UnsafePointer<CChar>?
        switch llmos_iso_recv(channel, deadlineNs, LLMOS_ISO_MAX_FRAME, &header, &payload) {
        case 1: return .frame(header, UnsafeRawBufferPointer(start: payload, count: Int(header.length)))
        case 0: return .timeout
        case -1: return .closed
        default: return .broken
        }
    }

    // MARK: Ending

    /// How the process ended, in words a model and a person can act on.
    struct Death {
        var status: Int32
        /// Its own peak address space, as it reported while dying of a fatal signal (0: not reported).
        var peakAddressSpaceKB: Int
        var stderrTail: String

        var signal: Int32? { llmos_iso_signaled(status) != 0 ? llmos_iso_term_signal(status) : nil }

        var text: String {
            var words: String
            if let signal {
                words = "crashed with \(Self.name(of: signal))"
            } else {
                words = "exited with status \(llmos_iso_exit_code(status))"
            }
            if !stderrTail.isEmpty { words += "; it printed: \"\(stderrTail)\"" }
            return words
        }

        static func name(of signal: Int32) -> String {
            switch signal {
            case SIGSEGV: return "SIGSEGV (segmentation fault)"
            case SIGABRT: return "SIGABRT (abort)"
            case SIGBUS: return "SIGBUS (bus error)"
            case SIGILL: return "SIGILL (illegal instruction)"
            case SIGFPE: return "SIGFPE (arithmetic fault)"
            case SIGKILL: return "SIGKILL"
            case SIGTERM: return "SIGTERM"
            case SIGXCPU: return "SIGXCPU (CPU time limit)"
            case SIGXFSZ: return "SIGXFSZ (file size limit)"
            case SIGSYS: return "SIGSYS (forbidden system call)"
            default: return "signal \(signal)"
            }
        }
    }

    /// Reaps the process if it has exited (waiting up to `waitMs`); nil while it runs.
    func reap(waitMs: Int) -> Death? {
        if reaped == nil {
            var status: Int32 = 0
            var rss = 0
            if llmos_iso_reap_wait(pid, Int32(waitMs), &status, &rss) == 1 {
                reaped = status
                kill(-pid, SIGKILL)   // anything it forked, in its process group
            }
        }
        guard let reaped else { return nil }
        return Death(status: reaped, peakAddressSpaceKB: Int(llmos_iso_shared_peak_vm(shared)), stderrTail: stderrTail())
    }

    /// SIGTERM, then SIGKILL after `graceMs`: always reaps.
    @discardableResult
    func terminate(graceMs: Int) -> Death? {
        if let death = reap(waitMs: 0) { return death }
        kill(pid, SIGTERM)
        if let death = reap(waitMs: graceMs) { return death }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        return reap(waitMs: 5_000)
    }

    private var stderrText = ""

    /// The last few hundred bytes the helper wrote to stderr, on one line.
    func stderrTail() -> String {
        var buffer = [CChar](repeating: 0, count: 8192)
        while true {
            let count = llmos_iso_drain(stderrFD, &buffer, buffer.count)
            if count == 0 { break }
            stderrText += buffer.withUnsafeBytes { String(decoding: $0.prefix(count), as: UTF8.self) }
            if stderrText.utf8.count > 4096 { stderrText = String(stderrText.suffix(2048)) }
            if count < buffer.count { break }
        }
        let line = stderrText.split(whereSeparator: \.isNewline).suffix(4).joined(separator: " / ")
        return String(line.suffix(400))
    }
}
