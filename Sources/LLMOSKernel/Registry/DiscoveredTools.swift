import CLLMOS
import CLLMOSSystem
import LLMOSDigest
import LLMOSJSON

/// Tools a driver learns at run time (manifest `tools: discovered`: an MCP server's
/// tools/list), registered by the kernel under the same rules as a manifest's.
///
/// - A definition is `{name, description, input_schema, output_schema?, hints?}` (and
///   `x-` keys for the driver's own use), checked exactly as a manifest's `tools[i]` is;
///   a bad one is rejected with the field and the rule, the others go on.
/// - **Pinned by hash.** The kernel keeps each approved definition, with the SHA-256 of its
///   canonical JSON, in its key-value store (namespace `_approved_tools`, key: the driver's
///   name). The first time a driver reports its tools they are approved as they are (trust
///   on first use); later, a tool whose definition differs from the approved one (a "rug
///   pull": a new description, a wider schema) is **held back** — out of the registry, a
///   call to it refused naming the change — until the operator approves it
///   (`Kernel.approveTools`, `llmos drivers approve NAME`). A tool with a name never seen
///   before is accepted and recorded (it is new, not changed); a tool that is no longer
///   reported leaves the registry.
/// - **When.** At load, the approved definitions are registered without asking the driver
///   (so a driver that must start a server to answer starts it only when a call needs it);
///   with none approved yet, the kernel calls the driver's reserved operation `_tools`,
///   which answers `{"tools": [definitions]}`. Later, within any of its calls, the driver
///   reports the current set with the system call `tools.publish` (after starting its
///   server, after a list_changed notification), and the registry follows at once.
public struct HeldBackTool: Sendable, Equatable {
    /// `driver.tool`.
    public var name: String
    /// The fields that differ from the approved definition: description, input_schema, ...
    public var changes: [String]
    public var reason: String
    /// The definition as reported now (not registered).
    public var definition: JSONValue
    var hash: String
}

/// What the kernel did with one report of a driver's discovered tools.
public struct DiscoveryReport: Sendable {
    public struct Rejected: Error, Sendable, Equatable {
        public var name: String
        public var error: String
    }
    /// Registered (approved, unchanged or just approved).
    public var offered: [String] = []
    /// First seen in this report, and approved on first sight.
    public var added: [String] = []
    public var heldBack: [HeldBackTool] = []
    public var rejected: [Rejected] = []
    /// Registered before, not reported any more.
    public var removed: [String] = []
    /// For `approveTools`: tools whose changed definition was approved.
    public var approved: [String] = []

    public var json: JSONValue {
        ["offered": .array(offered.map(JSONValue.string)),
         "added": .array(added.map(JSONValue.string)),
         "held_back": .array(heldBack.map { ["name": .string($0.name), "changes": .array($0.changes.map(JSONValue.string)), "reason": .string($0.reason)] }),
         "rejected": .array(rejected.map { ["name": .string($0.name), "error": .string($0.error)] }),
         "removed": .array(removed.map(JSONValue.string)),
         "approved": .array(approved.map(JSONValue.string))]
    }
}

/// One driver's approved definitions, as stored.
struct ApprovedTools {
    var tools: [String: (hash: String, definition: JSONValue)] = [:]
    /// Definitions seen that differ from the approved ones, waiting for the operator: kept
    /// so that a later run holds the tool back at load, before its server even starts.
    var pending: [String: (hash: String, definition: JSONValue, changes: [String])] = [:]

    init() {}

    init?(json text: String) {
        guard let value = try? JSON.parse(text), let object = value["tools"]?.objectValue else { return nil }
        for (name, entry) in object {
            guard let hash = entry["hash"]?.stringValue, let definition = entry["definition"] else { continue }
            tools[name] = (hash, definition)
        }
        for (name, entry) in value["pending"]?.objectValue ?? JSONObject() {
            guard let hash = entry["hash"]?.stringValue, let definition = entry["definition"] else { continue }
            pending[name] = (hash, definition, entry["changes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
    }

    var json: String {
        var object = JSONObject()
        for name in tools.keys.sorted() {
            let entry = tools[name]!
            object[name] = ["hash": .string(entry.hash), "definition": entry.definition]
        }
        var waiting = JSONObject()
        for name in pending.keys.sorted() {
            let entry = pending[name]!
            waiting[name] = ["hash": .string(entry.hash), "definition": entry.definition, "changes": .array(entry.changes.map(JSONValue.string))]
        }
        return JSONValue.object(["version": 1, "tools": .object(object), "pending": .object(waiting)]).serialized()
    }
}

/// A definition that passed the manifest rules.
struct CheckedDefinition {
    var name: String
    var spec: OperationSpec
    var definition: JSONValue
    var hash: String
}

extension Kernel {
    /// Where approved definitions live in the key-value store (driver namespaces are
    /// driver names, which never start with `_`).
    static let approvedToolsNamespace = "_approved_tools"
    /// The operation the kernel calls to ask a `tools: discovered` driver for its tools.
    public static let discoveryOperation = "_tools"

    // MARK: Definitions

    /// The canonical JSON of a value: object keys sorted, recursively; what is hashed.
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(JSONObject(object.keys.sorted().map { ($0, canonical(object[$0]!)) }))
        case .array(let items):
            return .array(items.map(canonical))
        default:
            return value
        }
    }

    static func definitionHash(_ definition: JSONValue) -> String {
        SHA256.hex(of: Array(canonical(definition).serialized().utf8))
    }

    /// Checks one reported definition with the manifest's own rules (it is parsed as the
    /// only tool of a manifest), so a discovered tool obeys exactly what a declared one does.
    static func checkDefinition(_ definition: JSONValue, driver: String) -> Result<CheckedDefinition, DiscoveryReport.Rejected> {
        let name = definition["name"]?.stringValue ?? "?"
        guard definition.objectValue != nil else {
            return .failure(.init(name: "\(driver).?", error: "a tool definition must be an object, got \(definition.typeName)"))
        }
        let wrapper: JSONValue = ["manifest_version": 1, "name": .string(driver), "version": "0", "class": "tool",
                                  "abi": ["major": 1], "library": ["path": "discovered"], "tools": [definition]]
        do {
            let manifest = try ManifestParser.parse(text: wrapper.serialized(), file: driver)
            guard let spec = manifest.operations.first, spec.ffi == nil else {
                return .failure(.init(name: "\(driver).\(name)", error: "a discovered tool cannot have an ffi section"))
            }
            return .success(CheckedDefinition(name: spec.name, spec: spec, definition: canonical(definition), hash: definitionHash(definition)))
        } catch {
            let diagnostics = (error.cause as? ManifestErrors)?.diagnostics ?? []
            let text = diagnostics.isEmpty ? error.message : diagnostics.filter { !$0.message.hasPrefix("(warning)") }.map { d in
                let field = d.field.hasPrefix("tools[0].") ? String(d.field.dropFirst("tools[0].".count)) : (d.field == "tools[0]" ? "" : d.field)
                return field.isEmpty ? d.message : "\(field): \(d.message)"
            }.joined(separator: "; ")
            return .failure(.init(name: "\(driver).\(name)", error: text))
        }
    }

    static func heldBack(_ qualified: String, driver: String, changes: [String], definition: JSONValue, hash: String) -> HeldBackTool {
        HeldBackTool(name: qualified, changes: changes,
                     reason: "its definition changed since it was approved (\(changes.joined(separator: ", ")) differ); review it with `llmos drivers info \(driver)` and approve it with `llmos drivers approve \(driver)`",
                     definition: definition, hash: hash)
    }

    static func changedFields(_ old: JSONValue, _ new: JSONValue) -> [String] {
        let keys = Set((old.objectValue?.keys ?? []) + (new.objectValue?.keys ?? [])).sorted()
        let changed = keys.filter { key in
            let a = old[key].map(canonical), b = new[key].map(canonical)
            return a != b
        }
        return changed.isEmpty ? ["definition"] : changed
    }

    // MARK: The approval store

    func approvedTools(of driver: String) throws(LLMOSError) -> ApprovedTools? {
        guard let text = try configuration.keyValueStore.get(namespace: Self.approvedToolsNamespace, key: driver) else { return nil }
        guard let record = ApprovedTools(json: text) else {
            throw LLMOSError(.io, "the approved tools of \(driver) in the key-value store (\(Self.approvedToolsNamespace)/\(driver)) are not readable; approve them again with `llmos drivers approve \(driver)`")
        }
        return record
    }

    func storeApprovedTools(_ record: ApprovedTools, of driver: String) throws(LLMOSError) {
        try configuration.keyValueStore.put(namespace: Self.approvedToolsNamespace, key: driver, value: record.json)
    }

    // MARK: Reconciling a report with what was approved

    /// Decides what to register from `definitions` (the driver's current tools); with
    /// `approveAll`, the operator approves every valid one as it is now.
    private func reconcile(_ driver: LoadedDriver, _ definitions: [JSONValue], approveAll: Bool)
        throws(LLMOSError) -> (entries: [ToolEntry], heldBack: [HeldBackTool], report: DiscoveryReport) {
        var report = DiscoveryReport()
        var checked: [CheckedDefinition] = []
        var seen = Set<String>()
        for definition in definitions {
            switch Self.checkDefinition(definition, driver: driver.name) {
            case .success(let tool):
                if seen.insert(tool.name).inserted {
                    checked.append(tool)
                } else {
                    report.rejected.append(.init(name: "\(driver.name).\(tool.name)", error: "reported twice; the first definition is kept"))
                }
            case .failure(let rejected):
                report.rejected.append(rejected)
            }
        }
        let stored = try approvedTools(of: driver.name)
        var record = stored ?? ApprovedTools()
        var changedRecord = stored == nil
        var entries: [ToolEntry] = []
        var held: [HeldBackTool] = []
        for tool in checked {
            let qualified = "\(driver.name).\(tool.name)"
            if let approved = record.tools[tool.name], approved.hash != tool.hash {
                if approveAll {
                    record.tools[tool.name] = (tool.hash, tool.definition)
                    record.pending[tool.name] = nil
                    changedRecord = true
                    report.approved.append(qualified)
                } else {
                    let changes = Self.changedFields(approved.definition, tool.definition)
                    held.append(Self.heldBack(qualified, driver: driver.name, changes: changes, definition: tool.definition, hash: tool.hash))
                    if record.pending[tool.name]?.hash != tool.hash {
                        record.pending[tool.name] = (tool.hash, tool.definition, changes)
                        changedRecord = true
                    }
                    continue
                }
            } else if record.pending[tool.name] != nil {
                // Back to the approved definition: nothing waits any more.
                record.pending[tool.name] = nil
                changedRecord = true
            }
            if record.tools[tool.name] == nil {
                record.tools[tool.name] = (tool.hash, tool.definition)
                changedRecord = true
                if stored != nil { report.added.append(qualified) }
            }
            entries.append(try ToolEntry(driver: driver, spec: tool.spec))
            report.offered.append(qualified)
        }
        if changedRecord { try storeApprovedTools(record, of: driver.name) }
        report.heldBack = held
        let now = Set(entries.map(\.qualifiedName))
        report.removed = registryLock.read { driver.tools.map(\.qualifiedName) }.filter { !now.contains($0) }.sorted()
        for rejected in report.rejected {
            log.record(KernelLogEntry(level: .warn, source: "kernel", message: "\(rejected.name): tool refused: \(rejected.error)"))
        }
        for tool in held {
            log.record(KernelLogEntry(level: .warn, source: "kernel", message: "\(tool.name) is held back: \(tool.reason)"))
        }
        for name in report.added {
            log.record(KernelLogEntry(level: .info, source: "kernel", message: "\(name): a new tool, approved on first sight"))
        }
        return (entries, held, report)
    }

    /// Puts a driver's discovered tools into the registry (when it is registered).
    private func apply(_ driver: LoadedDriver, entries: [ToolEntry], heldBack: [HeldBackTool]) {
        registryLock.write {
            let registered = drivers[driver.name] === driver
            if registered {
                for tool in driver.tools { toolTable.removeValue(forKey: tool.qualifiedName) }
                for tool in entries { toolTable[tool.qualifiedName] = tool }
            }
            driver.tools = entries
            driver.heldBack = heldBack
        }
    }

    // MARK: Entry points

    /// At load: the approved definitions, or the driver's answer to `_tools` the first time.
    func discoverToolsAtLoad(_ driver: LoadedDriver) throws(LLMOSError) {
        try discoveryLock.withLock { () throws(LLMOSError) in
            if let record = try approvedTools(of: driver.name), !record.tools.isEmpty {
                // The approved definitions, except those already seen changed (held back
                // from the start, before the server runs).
                let definitions = record.tools.keys.sorted().filter { record.pending[$0] == nil }.map { record.tools[$0]!.definition }
                let result = try reconcile(driver, definitions, approveAll: false)
                let held = record.pending.keys.sorted().map { name in
                    let entry = record.pending[name]!
                    return Self.heldBack("\(driver.name).\(name)", driver: driver.name, changes: entry.changes, definition: entry.definition, hash: entry.hash)
                }
                apply(driver, entries: result.entries, heldBack: result.heldBack + held)
                return
            }
            let definitions = try askForTools(driver)
            let result = try reconcile(driver, definitions, approveAll: false)
            apply(driver, entries: result.entries, heldBack: result.heldBack)
        }
    }

    /// The `tools.publish` system call: the driver's current tools, reconciled with the approved ones.
    func publishTools(_ driver: LoadedDriver, _ request: JSONValue) throws(LLMOSError) -> DiscoveryReport {
        guard driver.manifest.discoversTools else {
            throw LLMOSError(.permissionDenied, "tools.publish: \(driver.name)'s manifest lists its tools; only a driver whose manifest says `tools: discovered` may report tools at run time")
        }
        guard let definitions = request["tools"]?.arrayValue else {
            throw LLMOSError(.invalidArgument, "tools.publish: expected {\"tools\": [definitions]}, each {name, description, input_schema, output_schema?, hints?}")
        }
        return try discoveryLock.withLock { () throws(LLMOSError) -> DiscoveryReport in
            let result = try reconcile(driver, definitions, approveAll: false)
            apply(driver, entries: result.entries, heldBack: result.heldBack)
            return result.report
        }
    }

    /// `llmos drivers approve NAME`: asks the driver for its tools as they are now (for an
    /// MCP server: starts it and lists them) and approves every valid definition.
    @discardableResult
    public func approveTools(_ name: String) throws(LLMOSError) -> DiscoveryReport {
        guard let driver = registryLock.read({ drivers[name] }) else {
            throw LLMOSError(.notFound, "no driver named \(name) is loaded" + NearestNames.suggestion(for: name, in: driverNames))
        }
        guard driver.manifest.discoversTools else {
            throw LLMOSError(.invalidArgument, "\(name) declares its tools in its manifest (\(driver.manifest.file)); only drivers with `tools: discovered` (MCP servers) have tools to approve")
        }
        let definitions = try askForTools(driver)
        return try discoveryLock.withLock { () throws(LLMOSError) -> DiscoveryReport in
            let result = try reconcile(driver, definitions, approveAll: true)
            apply(driver, entries: result.entries, heldBack: result.heldBack)
            return result.report
        }
    }

    /// The held-back tool of that name, if any.
    func heldBackTool(_ name: String) -> HeldBackTool? {
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return registryLock.read { drivers[String(name[..<dot])]?.heldBack.first { $0.name == name } }
    }

    /// A call to a held-back tool: approved meanwhile (by `llmos drivers approve` in another
    /// process)? Then it is registered now and the call goes on.
    func reconsiderHeldBack(_ name: String) -> ToolEntry? {
        guard let held = heldBackTool(name), let dot = name.firstIndex(of: "."),
              let driver = registryLock.read({ drivers[String(name[..<dot])] }) else { return nil }
        return discoveryLock.withLock { () -> ToolEntry? in
            guard let record = try? approvedTools(of: driver.name),
                  record.tools[String(name[name.index(after: dot)...])]?.hash == held.hash,
                  case .success(let tool) = Self.checkDefinition(held.definition, driver: driver.name),
                  let entry = try? ToolEntry(driver: driver, spec: tool.spec) else { return nil }
            let stillHeld = registryLock.read { driver.heldBack.filter { $0.name != name } }
            apply(driver, entries: registryLock.read { driver.tools } + [entry], heldBack: stillHeld)
            return entry
        }
    }

    /// Calls the driver's `_tools` operation (with a call context, so it may make system
    /// calls: start its server through exec.authorize, ...) and returns its definitions.
    func askForTools(_ driver: LoadedDriver) throws(LLMOSError) -> [JSONValue] {
        let spec = OperationSpec(name: Self.discoveryOperation, description: "Report the driver's tools.",
                                 inputSchema: ["type": "object"], outputSchema: nil, hints: OperationHints(readOnly: true))
        let entry = try ToolEntry(driver: driver, spec: spec)
        let input = "{}"
        let result = try withCBytes(input) { bytes throws(LLMOSError) in
            try dispatch(entry, bytes, CallOptions(), nil, start: llmos_monotonic_ns())
        }
        let output: JSONValue
        do { output = try JSON.parse(result.output) } catch {
            throw LLMOSError(.invalidOutput, "\(driver.name).\(Self.discoveryOperation): the driver's tool list is not JSON: \(error)")
        }
        guard let tools = output["tools"]?.arrayValue else {
            throw LLMOSError(.invalidOutput, "\(driver.name).\(Self.discoveryOperation): expected {\"tools\": [...]}, got \(output.typeName == "object" ? "an object without a tools list" : output.typeName)")
        }
        return tools
    }
}
