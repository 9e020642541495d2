import Foundation
import LLMOSJSON

// The JSON forms of the registry's views, shared by every shell (`--json`, and
// later the HTTP API), so that programs see one shape everywhere.

extension CapabilityRequests {
    public var json: JSONValue {
        var object = JSONObject()
        for entry in entries {
            switch entry.scope {
            case .any: object[entry.name] = true
            case .patterns(let patterns): object[entry.name] = .array(patterns.map(JSONValue.string))
            }
        }
        return .object(object)
    }
}

extension OperationHints {
    public var json: JSONValue {
        ["read_only": .bool(readOnly), "destructive": .bool(destructive),
         "needs_confirmation": .bool(needsConfirmation), "idempotent": .bool(idempotent)]
    }
}

extension DriverHealth {
    public var json: JSONValue {
        var object: JSONObject = ["status": .string(summary), "calls": .int(Int64(calls)), "failures": .int(Int64(failures)), "in_flight": .int(Int64(inFlight))]
        if let process {
            object["process"] = [
                "pid": process.pid.map { .int(Int64($0)) } ?? .null, "restarts": .int(Int64(process.restarts)),
                "crashes": .int(Int64(process.crashes)), "last_failure": process.lastFailure.map(JSONValue.string) ?? .null,
                "quarantined": process.quarantined.map(JSONValue.string) ?? .null, "sandbox": .string(process.sandbox),
            ]
        }
        return .object(object)
    }
}

extension ManifestDiagnostic {
    public var json: JSONValue {
        ["file": .string(file), "field": .string(field), "line": line.map { .int(Int64($0)) } ?? .null, "message": .string(message)]
    }
}

extension DriverInfo {
    public var json: JSONValue {
        [
            "name": .string(name), "class": .string(deviceClass.rawValue), "version": .string(version),
            "description": .string(description), "tools": .array(tools.map(JSONValue.string)),
            "isolation": .string(isolation.rawValue), "threading": .string(threading.rawValue),
            "capabilities": capabilities.json, "manifest": .string(manifestFile), "library": .string(libraryPath),
            "abi": .string("1.\(abiMinor)"), "health": health.json, "warnings": .array(warnings.map(\.json)),
            "discovers_tools": .bool(discoversTools),
            "held_back": .array(heldBack.map { ["name": .string($0.name), "changes": .array($0.changes.map(JSONValue.string)), "reason": .string($0.reason), "definition": $0.definition] }),
        ]
    }
}

extension ToolInfo {
    public var json: JSONValue {
        [
            "name": .string(name), "driver": .string(driver), "description": .string(description),
            "input_schema": inputSchema, "output_schema": outputSchema ?? .null, "hints": hints.json,
        ]
    }
}

extension LLMOSError {
    public var json: JSONValue {
        var object: JSONObject = ["code": .string(code.name), "message": .string(message)]
        if let manifest = cause as? ManifestErrors { object["diagnostics"] = .array(manifest.diagnostics.map(\.json)) }
        return .object(object)
    }
}

extension AgentProcess {
    /// One process as `llmos ps --json` and the HTTP API show it.
    public var json: JSONValue {
        let stats = self.stats
        let state = self.state
        var object: JSONObject = [
            "pid": .int(Int64(pid)), "owner": .string(owner), "state": .string(state.name),
            "detail": .string(state.description), "cpu": .string(drivers.cpu),
            "memory": .string(drivers.memory), "tools": .array(drivers.tools.map(JSONValue.string)),
            "steps": .int(Int64(stats.steps)), "tasks": .int(Int64(stats.tasks)), "tool_calls": .int(Int64(stats.toolCalls)),
            "input_tokens": .int(Int64(stats.inputTokens)), "output_tokens": .int(Int64(stats.outputTokens)),
            "cost_usd": .double(stats.costUSD), "started": .string(ISO8601DateFormatter().string(from: created)),
            "age_seconds": .double((Date().timeIntervalSince(created) * 10).rounded() / 10),
        ]
        if let storage = drivers.storage { object["storage"] = .string(storage) }
        return .object(object)
    }
}

extension AuditRecord {
    /// One audit record as `llmos audit tail --json` and the HTTP API show it.
    public var json: JSONValue {
        ["sequence": .int(sequence), "time": .string(time), "process": .string(process), "driver": .string(driver),
         "tool": .string(tool), "capability": .string(capability), "resource": .string(resource), "args_hash": .string(argsHash),
         "decision": .string(decision.rawValue), "flagged": .bool(flagged), "rule": .string(rule), "outcome": .string(outcome),
         "duration_ns": .int(durationNs), "hash": .string(hash)]
    }
}

extension PolicyRule {
    /// One rule as `llmos policy show --json` and the HTTP API show it.
    public var json: JSONValue {
        ["action": .string(action.rawValue), "capability": .string(kind.rawValue), "pattern": .string(pattern),
         "driver": driver.map(JSONValue.string) ?? .null, "tool": tool.map(JSONValue.string) ?? .null,
         "source": .string(source), "description": .string(description)]
    }
}
