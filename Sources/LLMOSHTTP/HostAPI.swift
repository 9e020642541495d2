import Foundation
import HTTPTypes
import Hummingbird
import LLMOSJSON
import LLMOSKernel
import Synchronization

/// How full each process's context window was at its latest model request: what the
/// dashboard's meters show. Fed by the agent runs this server starts (their step events).
final class ContextTracker: Sendable {
    struct Use: Sendable {
        /// The prompt's tokens (counted by the cpu driver when it can, else estimated).
        var promptTokens: Int
        /// What the reply may use.
        var maxTokens: Int
        /// The model's whole window: prompt limit + reply reserve.
        var contextLength: Int
        var messages: Int
        var droppedMessages: Int
        var counted: Bool
        var step: Int

        var json: JSONValue {
            let share = contextLength > 0 ? Double(promptTokens) / Double(contextLength) : 0
            return ["used_tokens": .int(Int64(promptTokens)), "reserved_tokens": .int(Int64(maxTokens)),
                    "context_length": .int(Int64(contextLength)), "fraction": .double((share * 1000).rounded() / 1000),
                    "messages": .int(Int64(messages)), "dropped_messages": .int(Int64(droppedMessages)),
                    "counted": .bool(counted), "step": .int(Int64(step))]
        }
    }

    private let uses = Mutex<[Int: Use]>([:])

    func record(pid: Int, _ step: AgentStep) {
        let request = step.request
        guard request.promptLimit > 0 || request.promptTokens > 0 else { return }
        let use = Use(promptTokens: request.promptTokens, maxTokens: request.maxTokens,
                      contextLength: request.promptLimit + request.maxTokens, messages: request.messages,
                      droppedMessages: request.droppedMessages, counted: request.counted, step: step.index)
        uses.withLock { table in
            table[pid] = use
            // Keep it bounded: the process table forgets old finished processes too.
            if table.count > 1000, let oldest = table.keys.min() { table.removeValue(forKey: oldest) }
        }
    }

    func use(_ pid: Int) -> Use? { uses.withLock { $0[pid] } }
}

extension LLMOSHTTPServer {
    func processJSON(_ process: AgentProcess) -> JSONValue {
        guard case .object(var object) = process.json else { return process.json }
        object["context"] = contexts.use(process.pid)?.json ?? .null
        return .object(object)
    }

    func processList() -> JSONValue {
        let all = kernel.processes.all.sorted { $0.pid > $1.pid }
        return ["host": .int(Int64(getpid())), "processes": .array(all.map(processJSON))]
    }

    func findProcess(_ text: String?) throws(HTTPFailure) -> AgentProcess {
        guard let text, let pid = Int(text), pid > 0 else {
            throw HTTPFailure(Self.error(.badRequest, "pid must be a positive whole number, got \(text ?? "nothing")", code: "invalid_pid", param: "pid"))
        }
        guard let process = kernel.processes.all.first(where: { $0.pid == pid }) else {
            let known = kernel.processes.all.map { String($0.pid) }
            throw HTTPFailure(Self.error(.notFound, "no agent process \(pid) in this host" + (known.isEmpty ? " (there are none yet)" : " (processes: \(known.joined(separator: ", ")))"),
                                         code: "process_not_found", param: "pid"))
        }
        return process
    }

    func processDetail(_ pidText: String?, context: Bool) throws -> Response {
        do {
            let process = try findProcess(pidText)
            if !context { return Self.json(processJSON(process)) }
            let use = contexts.use(process.pid)
            return Self.json(["pid": .int(Int64(process.pid)), "state": .string(process.state.name), "cpu": .string(process.drivers.cpu),
                              "memory": .string(process.drivers.memory), "context": use?.json ?? .null,
                              "note": use == nil ? "no model request of this process was seen by this server yet" : .null])
        } catch { return error.response }
    }

    /// POST /api/processes/{pid}/signal {"signal": "terminate" | "kill"}: llmos kill over HTTP.
    func signalProcess(_ request: Request, _ pidText: String?) async throws -> Response {
        let process: AgentProcess
        do { process = try findProcess(pidText) } catch { return error.response }
        var signal = ProcessTable.Signal.terminate
        if request.headers[.contentLength].map({ $0 != "0" }) ?? true {
            switch try await jsonBody(request) {
            case .failure(let failure): return failure.response
            case .success(let body):
                if let name = body["signal"] {
                    guard let text = name.stringValue, let chosen = ProcessTable.Signal(rawValue: text) else {
                        return Self.error(.badRequest, "signal must be \"terminate\" (one last turn for its best answer) or \"kill\" (at once), got \(name.serialized())",
                                          code: "invalid_signal", param: "signal")
                    }
                    signal = chosen
                }
            }
        }
        do {
            let after = try kernel.processes.signal(process.pid, signal)
            return Self.json(["pid": .int(Int64(after.pid)), "signal": .string(signal.rawValue), "state": .string(after.state.name)])
        } catch {
            return Self.error(.conflict, error.message, code: error.code.name)
        }
    }

    func driverList() -> JSONValue {
        ["drivers": .array(kernel.loadedDrivers.map(\.json))]
    }

    func grantList() -> JSONValue {
        let broker = kernel.configuration.broker
        return ["workspace": .string(kernel.configuration.workspace),
                "rules": .array(broker.policy.rules.map(\.json)),
                "note": "deny beats ask beats allow; anything not allowed is denied. An ask rule is refused here: a server has no one to ask."]
    }

    /// GET /api/audit?limit=N: the newest records, newest first.
    func auditTail(_ request: Request) throws -> Response {
        var limit = 50
        if let text = request.uri.queryParameters["limit"] {
            guard let n = Int(text), (1...1000).contains(n) else {
                return Self.error(.badRequest, "limit must be a whole number from 1 to 1000, got \(text)", code: "invalid_limit", param: "limit")
            }
            limit = n
        }
        guard let log = kernel.configuration.audit else {
            return Self.json(["enabled": false, "records": [],
                              "note": "this server was started with --no-audit-log: nothing is recorded"])
        }
        do {
            var records: [AuditRecord]
            if let sqlite = log as? SQLiteAuditLog {
                try sqlite.flush()
                records = try sqlite.tail(limit: limit)
            } else if let memory = log as? MemoryAuditLog {
                records = memory.tail(limit: limit)
            } else {
                return Self.json(["enabled": true, "records": [], "note": "this audit log cannot be read back here"])
            }
            records.sort { $0.sequence > $1.sequence }
            var object: JSONObject = ["enabled": true, "records": .array(records.map(\.json))]
            if let sqlite = log as? SQLiteAuditLog { object["path"] = .string(sqlite.path) }
            return Self.json(.object(object))
        } catch {
            return Self.error(.internalServerError, "the audit log could not be read: \(error.message)", type: "server_error", code: error.code.name)
        }
    }

    func status() -> JSONValue {
        let all = kernel.processes.all
        return ["server": "llmos", "host_pid": .int(Int64(getpid())),
                "models": .array(options.models.map { .string($0.id) }),
                "drivers": .int(Int64(kernel.loadedDrivers.count)),
                "processes": .int(Int64(all.count)),
                "running": .int(Int64(all.filter { !$0.state.isFinished }.count)),
                "mcp": ["path": "/mcp", "tools": .int(Int64(mcp.catalog.offered.count)), "sessions": .int(Int64(mcpSessions.count))],
                "audit_log": .bool(kernel.configuration.audit != nil)]
    }
}
