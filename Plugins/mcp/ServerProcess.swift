// One running MCP server over stdio: newline-delimited JSON-RPC on its stdin and stdout,
// its stderr kept (the last lines) for error messages, requests matched to responses by
// id, server requests (ping) answered, notifications handed to the supervisor.
//
// The child is started by a thread that then waits for it (PR_SET_PDEATHSIG fires when
// the *thread* that forked exits, so that thread lives exactly as long as the child).
import CLLMOSSpawn
import Foundation
import LLMOSDriverSDK
import LLMOSJSON
#if canImport(Glibc)
import Glibc
#endif

final class ServerProcess: @unchecked Sendable {
    /// One request waiting for its response.
    final class Waiter: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var message: JSONValue?
        var failure: DriverError?
    }

    let pid: pid_t
    let serverName: String
    let generation: Int
    private let input: Int32
    private let lock = NSLock()
    private let writeLock = NSLock()
    private var pending: [Int64: Waiter] = [:]
    private var nextID: Int64 = 1
    /// Why the process is no use any more (exited, broke the protocol); nil while it is.
    private var deadReason: String?
    private var stderrLines: [String] = []
    private var exitDescription: String?
    private let exited = DispatchSemaphore(value: 0)
    /// Signalled (and kept signalled) once the server's stderr reached its end.
    private let stderrClosed = DispatchSemaphore(value: 0)
    /// Notifications (method, params), on the reader thread.
    var onNotification: (@Sendable (String, JSONValue) -> Void)?
    /// Responses to requests this process did not send itself (a listen stream's end), on
    /// the reader thread; true when taken.
    var onUnmatchedResponse: (@Sendable (JSONValue) -> Bool)?
    /// Log lines for the host, on the reader threads.
    var log: (@Sendable (LogLevel, String) -> Void)?

    private init(pid: pid_t, input: Int32, serverName: String, generation: Int) {
        self.pid = pid
        self.input = input
        self.serverName = serverName
        self.generation = generation
    }

    /// Starts `path` (the canonical path exec.authorize allowed) and its reader threads,
    /// inside the sandbox `sandboxPlan` describes (the kernel's plan text; nil: none).
    static func start(path: String, argv: [String], environment: [String: String], directory: String,
                      sandboxPlan: String?, serverName: String, generation: Int,
                      configure: (ServerProcess) -> Void) throws(DriverError) -> ServerProcess {
        final class Box: @unchecked Sendable {
            var result: (pid: pid_t, input: Int32, output: Int32, errors: Int32)?
            var errno: Int32 = 0
            var error = ""
            /// Paths or ports of the plan past the sandbox's capacity (left out: denied).
            var dropped: Int32 = 0
            var process: ServerProcess?
            let started = DispatchSemaphore(value: 0)
            let ready = DispatchSemaphore(value: 0)
        }
        let box = Box()
        let env = environment.map { "\($0.key)=\($0.value)" }.sorted()
        let thread = Thread {
            var cArgs = argv.map { strdup($0) } + [nil]
            var cEnv = env.map { strdup($0) } + [nil]
            // The plan is parsed here, before the fork: the child only applies it.
            let planText: UnsafeMutablePointer<CChar>? = sandboxPlan.flatMap { strdup($0) }
            let spec = UnsafeMutablePointer<sandbox_spec>.allocate(capacity: 1)
            spec.initialize(to: sandbox_spec())
            if let planText { sandbox_spec_parse(spec, planText) }
            box.dropped = spec.pointee.dropped
            defer {
                for p in cArgs { free(p) }
                for p in cEnv { free(p) }
                free(planText)
                spec.deallocate()
            }
            var toChild: Int32 = -1, fromChild: Int32 = -1, errors: Int32 = -1
            var message = [CChar](repeating: 0, count: 512)
            let pid = cArgs.withUnsafeMutableBufferPointer { a in
                cEnv.withUnsafeMutableBufferPointer { e in
                    path.withCString { cPath in
                        directory.withCString { cDirectory in
                            var request = llmos_spawn_request()
                            request.size = MemoryLayout<llmos_spawn_request>.size
                            request.path = cPath
                            request.argv = UnsafePointer(a.baseAddress)
                            request.envp = UnsafePointer(e.baseAddress)
                            request.cwd = cDirectory
                            request.sandbox = planText == nil ? nil : UnsafePointer(spec)
                            return llmos_spawn_piped(&request, &toChild, &fromChild, &errors, &message, message.count)
                        }
                    }
                }
            }
            if pid < 0 {
                box.errno = -pid
                box.error = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                box.started.signal()
                return
            }
            box.result = (pid, toChild, fromChild, errors)
            box.started.signal()
            box.ready.wait()
            guard let process = box.process else { return }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            process.childExited(status)
        }
        thread.name = "mcp \(serverName) server"
        thread.start()
        box.started.wait()
        guard let started = box.result else {
            throw .unavailable("\(serverName): cannot start the MCP server \(argv.first ?? path) (\(path)): \(box.error.isEmpty ? String(cString: strerror(box.errno)) : box.error)")
        }
        let process = ServerProcess(pid: started.pid, input: started.input, serverName: serverName, generation: generation)
        configure(process)
        if box.dropped > 0 {
            process.log?(.warn, "\(serverName): \(box.dropped) paths or ports of the sandbox plan are past the sandbox's capacity (\(SANDBOX_MAX_PATHS) paths, \(SANDBOX_MAX_PORTS) ports) and left out: the server is denied them; grant folders rather than many files")
        }
        box.process = process
        box.ready.signal()
        process.readLines(started.output, name: "stdout") { line in process.handle(line) }
        process.readLines(started.errors, name: "stderr") { line in process.keepStderr(line) }
        return process
    }

    // MARK: State

    var isAlive: Bool { lock.withLock { deadReason == nil } }
    var failureReason: String? { lock.withLock { deadReason } }

    /// The last lines the server wrote on stderr, for messages.
    var stderrTail: String {
        lock.withLock { stderrLines.suffix(6).joined(separator: "\n") }
    }

    private func describe(_ reason: String) -> String {
        let tail = stderrTail
        return tail.isEmpty ? reason : "\(reason); its stderr ended with:\n\(tail)"
    }

    /// Marks the process dead (once) and fails every waiting request with the reason.
    private func fail(_ reason: String, code: DriverError.Code = .unavailable) {
        let waiters: [Waiter] = lock.withLock {
            if deadReason == nil { deadReason = reason }
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for waiter in waiters {
            waiter.failure = DriverError(code, describe(reason))
            waiter.done.signal()
        }
    }

    private func childExited(_ status: Int32) {
        let how: String
        if status & 0x7f == 0 {
            how = "exited with status \((status >> 8) & 0xff)"
        } else {
            let signal = status & 0x7f
            how = "was killed by signal \(signal)" + (signal == SIGKILL ? " (SIGKILL)" : signal == SIGSEGV ? " (SIGSEGV)" : "")
        }
        lock.withLock { exitDescription = how }
        exited.signal()
        waitForStderr()
        fail("the MCP server \(serverName) (pid \(pid)) \(how)")
        close(input)
    }

    /// Ends the process: SIGTERM to its group, SIGKILL after `graceMs`.
    func stop(graceMs: Int = 500, reason: String = "stopped") {
        fail("the MCP server \(serverName) was \(reason)")
        kill(-pid, SIGTERM)
        if exited.wait(timeout: .now() + .milliseconds(graceMs)) == .timedOut {
            kill(-pid, SIGKILL)
            _ = exited.wait(timeout: .now() + .seconds(2))
        } else {
            exited.signal()
        }
    }

    // MARK: Reading

    private func readLines(_ fd: Int32, name: String, _ body: @escaping @Sendable (String) -> Void) {
        let thread = Thread { [self] in
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer.append(contentsOf: chunk[0..<n])
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    var line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    if line.last == UInt8(ascii: "\r") { line.removeLast() }
                    body(String(decoding: line, as: UTF8.self))
                }
                if buffer.count > MCPLimits.maxMessageBytes {
                    fail("the MCP server \(serverName) wrote a line longer than \(MCPLimits.maxMessageBytes) bytes on \(name) without a newline", code: .invalidOutput)
                    kill(-pid, SIGKILL)
                    break
                }
            }
            close(fd)
            if name == "stderr" { stderrClosed.signal() }
            if name == "stdout" {
                waitForStderr()
                // Wait briefly for the exit status, so the message says how it ended.
                _ = exited.wait(timeout: .now() + .milliseconds(300))
                let how = lock.withLock { exitDescription }
                if let how { exited.signal() }
                fail("the MCP server \(serverName) (pid \(pid)) closed its standard output" + (how.map { " and \($0)" } ?? ""))
            }
        }
        thread.name = "mcp \(serverName) \(name)"
        thread.start()
    }

    /// Lets the stderr reader collect a dying server's last words (at most two seconds:
    /// a grandchild may keep the pipe open).
    private func waitForStderr() {
        if stderrClosed.wait(timeout: .now() + .seconds(2)) == .success { stderrClosed.signal() }
    }

    private func keepStderr(_ line: String) {
        lock.withLock {
            stderrLines.append(line.count > 500 ? String(line.prefix(500)) + "…" : line)
            if stderrLines.count > 50 { stderrLines.removeFirst(stderrLines.count - 50) }
        }
        log?(.debug, "stderr: \(line)")
    }

    private func handle(_ line: String) {
        if line.allSatisfy({ $0 == " " || $0 == "\t" }) { return }
        let message: JSONValue
        do { message = try JSON.parse(line) } catch {
            protocolViolation("wrote a line that is not JSON on its standard output: \(Self.quote(line)) (\(error)); an MCP stdio server must write only JSON-RPC messages there, one per line, and log to stderr")
            return
        }
        guard message.objectValue != nil else {
            protocolViolation("wrote \(message.typeName == "array" ? "a JSON array (batches are not part of MCP since 2025-06-18)" : "a JSON \(message.typeName)") on its standard output instead of a JSON-RPC message: \(Self.quote(line))")
            return
        }
        let method = message["method"]?.stringValue
        let id = message["id"]
        if method == nil, let id, message["result"] != nil || message["error"] != nil {
            guard let key = id.int64Value else {
                // A string id is a listen stream's ("listen-N", minted by MCPClient).
                if onUnmatchedResponse?(message) == true { return }
                log?(.warn, "a response with an id this client never sends (\(id.serialized())), ignored")
                return
            }
            let waiter = lock.withLock { pending.removeValue(forKey: key) }
            guard let waiter else {
                log?(.debug, "a response to request \(key), which is no longer waited for (cancelled or timed out), ignored")
                return
            }
            waiter.message = message
            waiter.done.signal()
            return
        }
        guard let method else {
            protocolViolation("wrote a JSON object that is not a JSON-RPC request, response or notification: \(Self.quote(line))")
            return
        }
        if let id {
            // A request from the server: llmos offers no client features (sampling, roots, elicitation).
            let reply: JSONValue = method == "ping"
                ? ["jsonrpc": "2.0", "id": id, "result": .object([:])]
                : ["jsonrpc": "2.0", "id": id, "error": ["code": -32601, "message": .string("llmos does not offer \(method) to MCP servers")]]
            try? send(reply)
            return
        }
        onNotification?(method, message["params"] ?? .object([:]))
    }

    private func protocolViolation(_ what: String) {
        log?(.error, "\(serverName) \(what)")
        fail("the MCP server \(serverName) \(what)", code: .invalidOutput)
        kill(-pid, SIGKILL)
    }

    static func quote(_ line: String) -> String {
        let shown = line.count > 200 ? String(line.prefix(200)) + "…" : line
        return "«\(shown)»"
    }

    // MARK: Writing

    func send(_ message: JSONValue) throws(DriverError) {
        var bytes: [UInt8] = []
        message.serialize(into: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        let failed: Int32? = writeLock.withLock {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(input, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return nil
        }
        if let failed {
            let reason = failureReason ?? "its standard input is closed (\(String(cString: strerror(failed))))"
            throw .unavailable(describe("\(serverName): cannot send to the MCP server: \(reason)"))
        }
    }

    func notify(_ method: String, _ params: JSONValue) {
        try? send(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }

    /// Sends a request and waits for its response, polling `isCancelled` (the call's
    /// cancellation and deadline). Returns the whole response message.
    func request(_ method: String, _ params: JSONValue, isCancelled: () -> Bool, waitLimitMs: Int? = nil,
                 onTimeout: String) throws(DriverError) -> JSONValue {
        let waiter = Waiter()
        let id: Int64 = try lock.withLock { () throws(DriverError) -> Int64 in
            if let deadReason { throw DriverError(.unavailable, describe(deadReason)) }
            let id = nextID
            nextID += 1
            pending[id] = waiter
            return id
        }
        do {
            try send(["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params])
        } catch {
            _ = lock.withLock { pending.removeValue(forKey: id) }
            throw error
        }
        let start = DispatchTime.now()
        while waiter.done.wait(timeout: .now() + .milliseconds(5)) == .timedOut {
            let overLimit = waitLimitMs.map { DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds > UInt64($0) * 1_000_000 } ?? false
            if isCancelled() || overLimit {
                let removed = lock.withLock { pending.removeValue(forKey: id) != nil }
                if !removed { waiter.done.wait(); break }   // answered meanwhile
                notify("notifications/cancelled", ["requestId": .int(id), "reason": .string(overLimit ? "timeout" : "cancelled by the caller")])
                throw overLimit ? .timeout(onTimeout) : .cancelled("\(method) to the MCP server \(serverName): cancelled (or past the call's deadline, limits.timeout_ms)")
            }
        }
        if let failure = waiter.failure { throw failure }
        return waiter.message ?? .null
    }
}

enum MCPLimits {
    /// The longest line (one message) read from a server.
    static let maxMessageBytes = 64 << 20
}

extension NSLock {
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
