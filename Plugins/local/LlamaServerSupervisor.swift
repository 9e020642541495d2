// Supervises one llama.cpp `llama-server` child process on a loopback port: started on
// first use, health-polled until ready, restarted when it has died, stopped when the
// supervisor is (and killed by the kernel if the host dies: PR_SET_PDEATHSIG).
//
// Independent of the HTTP client: readiness is asked of a `probe` closure the caller
// supplies (the local driver's goes through the kernel's net.fetch), so this file has
// no network code beyond finding a free port.
import CLLMOSSpawn
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class LlamaServerSupervisor: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The llama-server executable.
        public var server: String
        /// The GGUF model.
        public var model: String
        /// Arguments after `--model M --host H --port P` (`--jinja -c 4096 -t 2 --parallel 1`, ...).
        public var arguments: [String]
        /// What this server is for, in messages and the log file name ("chat", "embed").
        public var role: String
        public var host: String = "127.0.0.1"
        /// A fixed port; 0 picks a free one at each start.
        public var port: Int = 0
        /// How long a start may take before it counts as failed.
        public var startupTimeoutMs: Int = 120_000
        /// Where the child's stdout and stderr go (truncated at each start); nil: /dev/null.
        public var logPath: String?

        public init(server: String, model: String, arguments: [String], role: String, logPath: String?) {
            self.server = server
            self.model = model
            self.arguments = arguments
            self.role = role
            self.logPath = logPath
        }
    }

    /// A failure to get a server running, with what to do about it.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Kind: Sendable { case notStartable, exited, timedOut, cancelled }
        public var kind: Kind
        public var message: String
        public var description: String { message }
    }

    /// What `ensureRunning` gives back.
    public struct Endpoint: Sendable, Equatable {
        public var pid: Int32
        public var port: Int
        public var baseURL: String
        /// Counts starts, so a caller can tell a restarted server from the one it used.
        public var generation: Int
    }

    public struct Status: Sendable {
        public var state: String          // "stopped", "starting", "running", "exited"
        public var pid: Int32?
        public var port: Int?
        public var starts: Int
        public var restarts: Int
        public var lastExit: String?
        public var logPath: String?
    }

    /// One child process and the thread that started it and waits for it. PR_SET_PDEATHSIG
    /// fires when the *thread* that forked exits, so that thread lives exactly as long as
    /// the child: it forks, then blocks in waitpid.
    final class Child: @unchecked Sendable {
        let pid: pid_t
        let port: Int
        let generation: Int
        let exited = DispatchSemaphore(value: 0)
        // Written once by the reaper before `exited` is signalled; read under the supervisor's lock.
        var exitDescription: String?
        var hasExited = false
        init(pid: pid_t, port: Int, generation: Int) {
            self.pid = pid
            self.port = port
            self.generation = generation
        }
    }

    public let configuration: Configuration
    private let lock = NSLock()
    /// Serializes starts (a second caller waits for the first one's start instead of racing it).
    private let startLock = NSLock()
    private var child: Child?
    private var starts = 0
    private var lastExit: String?
    private var stopped = false

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    deinit { stop() }

    /// The running server, started (or restarted) first when needed. `probe(url)` answers
    /// the HTTP status of GET url, or nil when nothing answers; `isCancelled` is polled
    /// while waiting.
    public func ensureRunning(probe: (String) -> Int?, isCancelled: () -> Bool) throws(Failure) -> Endpoint {
        if let endpoint = runningEndpoint() { return endpoint }
        startLock.lock()
        defer { startLock.unlock() }
        if let endpoint = runningEndpoint() { return endpoint }
        var lastFailure: Failure?
        for _ in 0..<3 {   // a port taken between our probe and its bind: try another
            do throws(Failure) {
                return try start(probe: probe, isCancelled: isCancelled)
            } catch {
                lastFailure = error
                if !(error.kind == .exited && error.message.contains("bind")) || configuration.port != 0 { break }
            }
        }
        throw lastFailure!
    }

    /// The endpoint when a child is alive and was seen ready.
    public func runningEndpoint() -> Endpoint? {
        lock.lock()
        defer { lock.unlock() }
        guard let child, !child.hasExited else { return nil }
        return Endpoint(pid: child.pid, port: child.port, baseURL: "http://\(configuration.host):\(child.port)", generation: child.generation)
    }

    /// After a request failed: true when the server it went to (`generation`) has died
    /// or been replaced since, i.e. a retry on a fresh server makes sense. Waits a moment
    /// for the exit to be noticed, since a connection reset arrives before SIGCHLD.
    public func serverDied(since generation: Int, waitMs: Int = 300) -> Bool {
        lock.lock()
        let current = child
        lock.unlock()
        guard let current, current.generation == generation else { return true }
        if current.hasExitedNow() { return true }
        return current.exited.wait(timeout: .now() + .milliseconds(waitMs)) == .success ? { current.exited.signal(); return true }() : false
    }

    public var status: Status {
        lock.lock()
        defer { lock.unlock() }
        var state = "stopped"
        if let child { state = child.hasExited ? "exited" : "running" }
        let alive = child.flatMap { $0.hasExited ? nil : $0 }
        return Status(state: state, pid: alive?.pid, port: alive?.port, starts: starts, restarts: max(0, starts - 1),
                      lastExit: lastExit, logPath: configuration.logPath)
    }

    /// Stops the server: SIGTERM, then SIGKILL after `graceMs`. Later calls start it again.
    public func stop(graceMs: Int = 3000) {
        lock.lock()
        let current = child
        child = nil
        lock.unlock()
        guard let current, !current.hasExitedNow() else { return }
        kill(current.pid, SIGTERM)
        if current.exited.wait(timeout: .now() + .milliseconds(graceMs)) == .timedOut {
            kill(current.pid, SIGKILL)
            _ = current.exited.wait(timeout: .now() + .seconds(5))
        }
        current.exited.signal()
    }

    // MARK: starting

    private func start(probe: (String) -> Int?, isCancelled: () -> Bool) throws(Failure) -> Endpoint {
        let c = configuration
        guard access(c.server, X_OK) == 0 else {
            throw Failure(kind: .notStartable, message: "llama-server \(c.server) is not an executable file")
        }
        guard FileManager.default.isReadableFile(atPath: c.model) else {
            throw Failure(kind: .notStartable, message: "the model \(c.model) does not exist or cannot be read")
        }
        let port: Int
        if c.port != 0 { port = c.port } else {
            guard let free = Self.freePort(host: c.host) else {
                throw Failure(kind: .notStartable, message: "no free port on \(c.host) for llama-server")
            }
            port = free
        }
        let argv = [c.server, "--model", c.model, "--host", c.host, "--port", String(port)] + c.arguments
        var logFD: Int32 = -1
        if let path = c.logPath {
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            logFD = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        lock.lock()
        starts += 1
        let generation = starts
        lock.unlock()

        // The thread that forks waits for the child: see `Child`.
        let spawned = DispatchSemaphore(value: 0)
        let childLog = logFD
        nonisolated(unsafe) var spawnResult: pid_t = 0
        nonisolated(unsafe) var spawnError = ""
        nonisolated(unsafe) var childBox: Child?
        let thread = Thread { [weak self] in
            var error = [CChar](repeating: 0, count: 512)
            let pid: pid_t = Self.withCStrings(argv) { cArgs in
                var request = llmos_spawn_request()
                request.size = MemoryLayout<llmos_spawn_request>.size
                request.stdin_fd = -1
                request.stdout_fd = childLog
                request.stderr_fd = childLog
                return argv[0].withCString { path in
                    request.path = path
                    request.argv = UnsafePointer(cArgs)
                    return llmos_spawn(&request, &error, error.count)
                }
            }
            spawnResult = pid
            spawnError = error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if pid <= 0 {
                spawned.signal()
                return
            }
            let child = Child(pid: pid, port: port, generation: generation)
            childBox = child
            spawned.signal()
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let description = Self.describe(status: status)
            self?.noteExit(child, description)
            child.exitDescription = description
            child.markExited()
            child.exited.signal()
        }
        thread.name = "llama-server \(c.role) \(port)"
        thread.start()
        spawned.wait()
        if logFD >= 0 { close(logFD) }
        guard spawnResult > 0, let child = childBox else {
            let e = -spawnResult
            throw Failure(kind: .notStartable, message: "cannot start \(c.server): \(spawnError.isEmpty ? String(cString: strerror(e)) : spawnError)")
        }
        lock.lock()
        if stopped { lock.unlock(); kill(child.pid, SIGKILL); throw Failure(kind: .cancelled, message: "the local driver is stopping") }
        self.child = child
        lock.unlock()

        // Wait until /health answers 200 (503 while the model loads).
        let url = "http://\(c.host):\(port)/health"
        let began = DispatchTime.now().uptimeNanoseconds
        while true {
            if child.hasExitedNow() {
                let tail = Self.logTail(c.logPath)
                throw Failure(kind: .exited, message: "llama-server (\(c.role)) \(child.exitDescription ?? "exited") while starting"
                              + (tail.isEmpty ? "" : ": \(tail)") + (c.logPath.map { " (log: \($0))" } ?? ""))
            }
            if probe(url) == 200 { break }
            let waited = Int((DispatchTime.now().uptimeNanoseconds - began) / 1_000_000)
            if isCancelled() {
                stopChild(child)
                throw Failure(kind: .cancelled, message: "cancelled while llama-server was starting")
            }
            if waited > c.startupTimeoutMs {
                stopChild(child)
                throw Failure(kind: .timedOut, message: "llama-server (\(c.role)) did not become ready within \(c.startupTimeoutMs) ms"
                              + (c.logPath.map { " (log: \($0))" } ?? ""))
            }
            usleep(waited < 1000 ? 20_000 : 100_000)
        }
        return Endpoint(pid: child.pid, port: port, baseURL: "http://\(c.host):\(port)", generation: generation)
    }

    private func stopChild(_ child: Child) {
        lock.lock()
        if self.child === child { self.child = nil }
        lock.unlock()
        kill(child.pid, SIGKILL)
        _ = child.exited.wait(timeout: .now() + .seconds(5))
        child.exited.signal()
    }

    private func noteExit(_ child: Child, _ description: String) {
        lock.lock()
        lastExit = "pid \(child.pid) \(description)"
        lock.unlock()
    }

    /// Marks the supervisor as shutting down: no new starts; the child is stopped.
    public func shutdown() {
        lock.lock()
        stopped = true
        lock.unlock()
        stop()
    }

    // MARK: helpers

    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        let name: String
        switch signal {
        case SIGKILL: name = "SIGKILL"
        case SIGTERM: name = "SIGTERM"
        case SIGSEGV: name = "SIGSEGV"
        case SIGABRT: name = "SIGABRT"
        case SIGINT: name = "SIGINT"
        default: name = "signal \(signal)"
        }
        return "was killed by \(name)"
    }

    /// The last meaningful lines of the log, for an error message.
    static func logTail(_ path: String?) -> String {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return "" }
        let text = String(decoding: data.suffix(8192), as: UTF8.self)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let errors = lines.filter { $0.localizedCaseInsensitiveContains("error") || $0.contains("failed") || $0.contains("bind") }
        return (errors.isEmpty ? Array(lines.suffix(3)) : Array(errors.suffix(3))).joined(separator: " | ")
    }

    /// A port nothing listens on right now (bound to port 0, read, released).
    static func freePort(host: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

extension LlamaServerSupervisor.Child {
    private static let flagLock = NSLock()
    func markExited() {
        Self.flagLock.lock()
        hasExited = true
        Self.flagLock.unlock()
    }
    func hasExitedNow() -> Bool {
        Self.flagLock.lock()
        defer { Self.flagLock.unlock() }
        return hasExited
    }
}
