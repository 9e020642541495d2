import CLLMOS
import LLMOSJSON

/// The system calls a driver makes through `host->syscall`: the one choke point
/// where a driver reaches anything outside itself. Every resource is checked by the
/// capability broker (the driver's manifest request ∩ the operator's policy) on its
/// canonical form, and audited; the answer is JSON, an error is
/// `{"error": {"code": "...", "message": "..."}}`. See docs/SYSCALLS.md.
struct SyscallTable {
    unowned let kernel: Kernel

    /// A service: the caller, its parsed request, and the JSON answer as bytes.
    typealias Handler = @Sendable (SyscallTable, CallRef, JSONValue) throws(LLMOSError) -> [UInt8]

    static let maxRequestBytes = 16 << 20
    static let maxKeyBytes = 1024
    static let maxValueBytes = 1 << 20

    static let handlers: [String: Handler] = [
        "log": { t, c, r throws(LLMOSError) in encode(try t.log(c, r)) },
        // Whose call this is: a memory driver keeps one conversation per agent process.
        "agent.self": { _, c, _ throws(LLMOSError) in
            encode(["agent": c.pointee.agent.map { JSONValue.int(Int64($0)) } ?? .null,
                    "tool": .string(c.pointee.tool.qualifiedName)])
        },
        "kv.get": { t, c, r throws(LLMOSError) in encode(try t.kvGet(c, r)) },
        "kv.put": { t, c, r throws(LLMOSError) in encode(try t.kvPut(c, r)) },
        "kv.delete": { t, c, r throws(LLMOSError) in encode(try t.kvDelete(c, r)) },
        // The nested call's output goes back as the driver wrote it, without re-encoding.
        "tool.call": { t, c, r throws(LLMOSError) in Array(try t.toolCall(c, r).utf8) },
        "fs.read": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsRead(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.write": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsWrite(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.list": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsList(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.stat": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsStat(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.move": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsMove(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.delete": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsDelete(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "fs.mkdir": { t, c, r throws(LLMOSError) in
            encode(try FileService.fsMkdir(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName, service: t.files))
        },
        "env.get": { t, c, r throws(LLMOSError) in
            encode(try EnvService.envGet(r, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName))
        },
        "net.fetch": { t, c, r throws(LLMOSError) in
            guard let network = t.kernel.configuration.network else {
                throw LLMOSError(.unsupported, "net.fetch: this host has no network service")
            }
            return encode(try network.fetch(r, authorize: t.authorizer(c)))
        },
        // A connection an in-process driver opens itself (a database client): checked, and the address to use.
        "net.connect": { t, c, r throws(LLMOSError) in
            guard let network = t.kernel.configuration.network else {
                throw LLMOSError(.unsupported, "net.connect: this host has no network service")
            }
            return encode(try network.authorizeConnection(r, authorize: t.authorizer(c)))
        },
        "net.stream.open": { t, c, r throws(LLMOSError) in encode(try t.streamOpen(c, r)) },
        "net.stream.read": { t, c, r throws(LLMOSError) in encode(try t.streamRead(c, r)) },
        "net.stream.close": { t, c, r throws(LLMOSError) in encode(try t.streamClose(c, r)) },
        // One message to an SMTP server, checked as net.connect smtp://host:port (Syscalls/MailService.swift).
        "net.mail.send": { t, c, r throws(LLMOSError) in
            guard let mail = t.kernel.configuration.network as? any MailService else {
                throw LLMOSError(.unsupported, "net.mail.send: this host's network service cannot send mail")
            }
            return encode(try mail.sendMail(r, authorize: t.authorizer(c)))
        },
        // A `tools: discovered` driver's current tools (Registry/DiscoveredTools.swift).
        "tools.publish": { t, c, r throws(LLMOSError) in encode(try t.kernel.publishTools(c.pointee.tool.driver, r).json) },
        // Before a driver starts a program: the canonical path, checked as exec (Isolation/ExecService.swift).
        "exec.authorize": { t, c, r throws(LLMOSError) in
            var answer = try ExecService.authorize(r, workspace: t.workspace, authorize: t.authorizer(c), driver: c.pointee.tool.driver.name, tool: c.pointee.tool.qualifiedName)
            if r["sandbox"] == .bool(true), case .object(var fields) = answer, let path = fields["path"]?.stringValue {
                fields["sandbox"] = try t.programSandbox(c, path: path, given: r["program"]?.stringValue ?? path)
                answer = .object(fields)
            }
            return encode(answer)
        },
    ]

    static var services: [String] { handlers.keys.sorted() }

    /// Runs one system call; never throws across the C boundary.
    func handle(service: String, request: UnsafeRawBufferPointer, caller: CallRef) -> (Int32, [UInt8]) {
        let driver = caller.pointee.tool.driver.name
        guard let handler = Self.handlers[service] else {
            let error = LLMOSError(.unsupported, "\(driver): no system call \"\(service)\"" + NearestNames.suggestion(for: service, in: Self.services) + " (the host offers \(Self.services.joined(separator: ", ")))")
            return (error.code.abiStatus, Self.errorBody(error))
        }
        do throws(LLMOSError) {
            guard request.count <= Self.maxRequestBytes else {
                throw LLMOSError(.invalidArgument, "\(service): the request is \(request.count) bytes; the limit is \(Self.maxRequestBytes)")
            }
            let value: JSONValue
            do { value = request.isEmpty ? .object([:]) : try JSON.parse(request) } catch {
                throw LLMOSError(.invalidArgument, "\(service): the request is not valid JSON: \(error)")
            }
            return (LLMOS_OK, try handler(self, caller, value))
        } catch {
            return (error.code.abiStatus, Self.errorBody(error))
        }
    }

    static func encode(_ value: JSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        value.serialize(into: &bytes)
        return bytes
    }

    static func errorBody(_ error: LLMOSError) -> [UInt8] {
        encode(["error": ["code": .string(error.code.name), "message": .string(error.message)]])
    }

    static func errorBody(_ code: LLMOSError.Code, _ message: String) -> [UInt8] {
        errorBody(LLMOSError(code, message))
    }

    // MARK: Checks

    var workspace: String { kernel.configuration.workspace }
    var files: FileService { kernel.configuration.files }

    /// Decides a request made by the driver running `caller`: the broker checks it
    /// against the driver's manifest and the policy, and the decision is audited.
    func authorizer(_ caller: CallRef) -> @Sendable (AccessRequest) -> Decision {
        let kernel = self.kernel
        let tool = caller.pointee.tool
        let agent = caller.pointee.agent
        let client = caller.pointee.client
        return { request in
            var request = request
            request.driver = tool.driver.name
            request.tool = tool.qualifiedName
            request.agent = agent
            request.client = client
            let decision = kernel.configuration.broker.check(request, requested: tool.driver.manifest.capabilities)
            kernel.configuration.audit?.append(AuditEntry(request: request, decision: decision, argsHash: "",
                                                          outcome: decision.verdict == .allow ? "ok" : "permission_denied"))
            return decision
        }
    }

    private func require(_ caller: CallRef, _ kind: CapabilityKind, _ resource: String, _ service: String) throws(LLMOSError) {
        let decision = authorizer(caller)(AccessRequest(kind: kind, resource: resource, driver: ""))
        guard decision.verdict == .allow else {
            throw LLMOSError(.permissionDenied, "\(caller.pointee.tool.driver.name): \(service) of \(resource) denied by \(decision.rule)")
        }
    }

    private func string(_ request: JSONValue, _ field: String, _ service: String, maxBytes: Int) throws(LLMOSError) -> String {
        guard let value = request[field]?.stringValue else {
            throw LLMOSError(.invalidArgument, "\(service): expected a string field \"\(field)\"")
        }
        guard value.utf8.count <= maxBytes else {
            throw LLMOSError(.invalidArgument, "\(service): field \"\(field)\" is \(value.utf8.count) bytes; the limit is \(maxBytes)")
        }
        return value
    }

    // MARK: Services

    private func log(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let message = try string(request, "message", "log", maxBytes: 64 << 10)
        if let level = request["level"], level.stringValue == nil {
            throw LLMOSError(.invalidArgument, "log: level must be a string (debug, info, warn or error), got \(level.typeName)")
        }
        let levelName = request["level"]?.stringValue ?? "info"
        guard let level = KernelLogEntry.Level.allCases.first(where: { $0.name == levelName }) else {
            throw LLMOSError(.invalidArgument, "log: level must be one of debug, info, warn, error; got \"\(levelName)\"")
        }
        caller.pointee.tool.driver.record(KernelLogEntry(level: level, source: caller.pointee.tool.driver.name, tool: caller.pointee.tool.qualifiedName, message: message))
        return .object([:])
    }

    private func kvGet(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let key = try string(request, "key", "kv.get", maxBytes: Self.maxKeyBytes)
        try require(caller, .kv, key, "kv.get")
        let value = try kernel.configuration.keyValueStore.get(namespace: caller.pointee.tool.driver.name, key: key)
        return ["found": .bool(value != nil), "value": value.map(JSONValue.string) ?? .null]
    }

    private func kvPut(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let key = try string(request, "key", "kv.put", maxBytes: Self.maxKeyBytes)
        let value = try string(request, "value", "kv.put", maxBytes: Self.maxValueBytes)
        try require(caller, .kv, key, "kv.put")
        try kernel.configuration.keyValueStore.put(namespace: caller.pointee.tool.driver.name, key: key, value: value)
        return ["ok": true]
    }

    private func kvDelete(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let key = try string(request, "key", "kv.delete", maxBytes: Self.maxKeyBytes)
        try require(caller, .kv, key, "kv.delete")
        return ["deleted": .bool(try kernel.configuration.keyValueStore.delete(namespace: caller.pointee.tool.driver.name, key: key))]
    }

    // MARK: net.stream.*

    /// `net.stream.open`: net.fetch's checks, a response read piece by piece. The stream
    /// belongs to this call and is closed when it returns.
    private func streamOpen(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        guard let network = kernel.configuration.network else {
            throw LLMOSError(.unsupported, "net.stream.open: this host has no network service")
        }
        let streams = caller.pointee.streams ?? CallStreams()
        caller.pointee.streams = streams
        guard streams.open.count < CallStreams.maxOpen else {
            throw LLMOSError(.resourceExhausted, "net.stream.open: this call already has \(CallStreams.maxOpen) streams open; close one with net.stream.close")
        }
        let opened: (stream: any NetworkStream, response: JSONValue)
        do { opened = try network.openStream(request, authorize: authorizer(caller), isCancelled: { caller.isCancelled }) } catch {
            throw Self.cancellation(error, caller, "net.stream.open")
        }
        let id = streams.nextID
        streams.nextID += 1
        streams.open[id] = opened.stream
        var response = opened.response.objectValue ?? JSONObject()
        response["stream"] = .int(id)
        return .object(response)
    }

    private func stream(_ caller: CallRef, _ request: JSONValue, _ service: String) throws(LLMOSError) -> (Int64, any NetworkStream) {
        guard let id = request["stream"]?.int64Value else {
            throw LLMOSError(.invalidArgument, "\(service): expected an integer field \"stream\" (the id net.stream.open returned)")
        }
        guard let stream = caller.pointee.streams?.open[id] else {
            throw LLMOSError(.notFound, "\(service): no open stream \(id) in this call (streams end with the call that opened them)")
        }
        return (id, stream)
    }

    private func streamRead(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let (id, stream) = try stream(caller, request, "net.stream.read")
        do { return try stream.read(request, isCancelled: { caller.isCancelled }) } catch {
            stream.close()
            caller.pointee.streams?.open[id] = nil
            throw Self.cancellation(error, caller, "net.stream.read")
        }
    }

    private func streamClose(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> JSONValue {
        let (id, stream) = try stream(caller, request, "net.stream.close")
        stream.close()
        caller.pointee.streams?.open[id] = nil
        return ["closed": true]
    }

    /// A stream stopped by the call's own cancellation: past the deadline that is a timeout.
    private static func cancellation(_ error: LLMOSError, _ caller: CallRef, _ service: String) -> LLMOSError {
        guard error.code == .cancelled else { return error }
        if caller.pointee.cancelledByCaller { return LLMOSError(.cancelled, "\(service): the call was cancelled") }
        return LLMOSError(.timeout, "\(service): the call's deadline passed (limits.timeout_ms)")
    }

    /// A driver calling another tool: the same checks as any call, plus the
    /// caller's tool.call request and a depth limit against runaway recursion.
    private func toolCall(_ caller: CallRef, _ request: JSONValue) throws(LLMOSError) -> String {
        // Whether the caller may call it is decided in the call itself (Mediation), with
        // the caller's manifest request: the same check as any call.
        let name = try string(request, "tool", "tool.call", maxBytes: 256)
        guard caller.pointee.depth + 1 <= kernel.configuration.maxCallDepth else {
            throw LLMOSError(.resourceExhausted, "tool.call of \(name): call depth limit of \(kernel.configuration.maxCallDepth) reached: tools may call tools at most \(kernel.configuration.maxCallDepth) levels deep, and \(caller.pointee.tool.qualifiedName) is already \(caller.pointee.depth) levels down")
        }
        guard let tool = kernel.lookup(name) else { throw kernel.unknownToolError(name) }
        let input = request["input"] ?? .object([:])
        return try kernel.invoke(tool, input: input.serialized(), options: CallOptions(), parent: caller).output
    }
}
