import Foundation
import Glibc
import LLMOSJSON
import LLMOSKernel

// Each host (`llmos run`, `llmos ask`) keeps a small control socket so that `llmos ps` and
// `llmos kill` reach the agent processes of every host of this user:
//
//   $XDG_RUNTIME_DIR/llmos/host-<pid>.sock     (else /tmp/llmos-<uid>/, made 0700)
//
// One request per connection: a line of JSON, answered by a line of JSON.
//   {"op": "ps"}                                  → {"host": 4242, "processes": [...]}
//   {"op": "kill", "pid": 7, "signal": "terminate"|"kill"} → {"killed": 7, "state": "..."}
// Only the same user may connect (the directory is 0700, and SO_PEERCRED is checked).
// Pids are unique among the hosts: they come from one counter file in that directory.

enum ControlDirectory {
    /// The directory, made if missing; nil (with why) when it is not safely ours.
    static func path(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let base: String
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            base = runtime + "/llmos"
        } else {
            base = "/tmp/llmos-\(getuid())"
        }
        if mkdir(base, 0o700) != 0 && errno != EEXIST {
            throw CommandFailure(message: "cannot make the control directory \(base): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(base, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw CommandFailure(message: "the control directory \(base) is not a directory: remove it")
        }
        guard info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw CommandFailure(message: "the control directory \(base) is not private to you (owner \(info.st_uid), mode \(String(info.st_mode & 0o777, radix: 8))): remove it, or set XDG_RUNTIME_DIR")
        }
        return base
    }

    static func socketPath(host: Int32 = getpid(), in directory: String) -> String { "\(directory)/host-\(host).sock" }

    /// The next agent pid among this user's hosts (a counter file, under flock).
    static func nextPid(in directory: String) -> Int? {
        let fd = open("\(directory)/next-pid", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, 31, 0)
        let last = n > 0 ? Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 : 0
        let next = last + 1
        let text = Array("\(next)\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count else { return nil }
        return next
    }

    /// Every host socket in the directory.
    static func hostSockets(in directory: String) -> [(pid: Int32, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix("host-"), name.hasSuffix(".sock"),
                  let pid = Int32(name.dropFirst(5).dropLast(5)) else { return nil }
            return (pid, "\(directory)/\(name)")
        }.sorted { $0.pid < $1.pid }
    }
}

/// The server side, one per host: a thread that answers ps and kill for its kernel.
final class ControlServer: @unchecked Sendable {
    let kernel: Kernel
    let path: String
    private let fd: Int32

    /// Starts listening, and makes this host's agent pids unique among the user's hosts.
    /// nil (with a warning) when it cannot: the host runs on, without `llmos ps`.
    static func start(kernel: Kernel) -> ControlServer? {
        do {
            let directory = try ControlDirectory.path()
            AgentProcess.pidSource.withLock { source in
                let fallback = source
                source = { ControlDirectory.nextPid(in: directory) ?? fallback() }
            }
            return try ControlServer(kernel: kernel, path: ControlDirectory.socketPath(in: directory))
        } catch {
            Terminal.warn("no control socket (llmos ps and kill will not see this host): \(error)")
            return nil
        }
    }

    private init(kernel: Kernel, path: String) throws {
        self.kernel = kernel
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CommandFailure(message: "socket: \(String(cString: strerror(errno)))") }
        var address = try UnixAddress(path)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw CommandFailure(message: "cannot listen on \(path): \(why)")
        }
        let server = self
        Thread.detachNewThread { server.serve() }
    }

    /// Removes the socket (at exit).
    func stop() {
        unlink(path)
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        // Same user only.
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (glibc hides the name without _GNU_SOURCE).
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(client, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.1 == getuid() else { return }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let line = ControlClient.readLine(client), let request = try? JSON.parse(line) else {
            ControlClient.writeLine(client, ["error": "expected one line of JSON"])
            return
        }
        ControlClient.writeLine(client, answer(request))
    }

    func answer(_ request: JSONValue) -> JSONValue {
        switch request["op"]?.stringValue {
        case "ps":
            return ["host": .int(Int64(getpid())), "processes": .array(kernel.processes.all.map(ProcessRow.json))]
        case "kill":
            guard let pid = request["pid"]?.int64Value else { return ["error": "kill: expected a pid"] }
            let signal = ProcessTable.Signal(rawValue: request["signal"]?.stringValue ?? "terminate") ?? .terminate
            do {
                let process = try kernel.processes.signal(Int(pid), signal)
                return ["killed": .int(pid), "signal": .string(signal.rawValue), "state": .string(process.state.description)]
            } catch {
                return ["error": .string(error.message), "code": .string(error.code.name)]
            }
        default:
            return ["error": "unknown op: expected ps or kill"]
        }
    }
}

/// The client side: `llmos ps` and `llmos kill`.
enum ControlClient {
    /// Sends one request to one host; nil when nobody answers there (a host that died:
    /// its socket is removed).
    static func request(_ path: String, _ request: JSONValue) -> JSONValue? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard var address = try? UnixAddress(path) else { return nil }
        let connected = address.withSockaddr { connect(fd, $0, $1) }
        if connected != 0 {
            if errno == ECONNREFUSED || errno == ENOENT { unlink(path) }
            return nil
        }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        writeLine(fd, request)
        return readLine(fd).flatMap { try? JSON.parse($0) }
    }

    static func writeLine(_ fd: Int32, _ value: JSONValue) {
        let bytes = Array((value.serialized() + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    /// One line (at most 16 MiB).
    static func readLine(_ fd: Int32) -> String? {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while data.count < 16 << 20 {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
            if chunk[n - 1] == UInt8(ascii: "\n") { break }
        }
        guard !data.isEmpty else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }
}

/// One process as ps shows it (the kernel's JSON form, shared with the HTTP API).
enum ProcessRow {
    static func json(_ process: AgentProcess) -> JSONValue { process.json }
}

/// sockaddr_un for a path (at most 107 bytes).
struct UnixAddress {
    var storage = sockaddr_un()

    init(_ path: String) throws {
        storage.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else {
            throw CommandFailure(message: "the socket path \(path) is too long (set XDG_RUNTIME_DIR to a shorter directory)")
        }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
    }

    mutating func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
