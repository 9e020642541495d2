import Foundation
import LLMOSJSON
import Yams

/// Reads a manifest (YAML, or JSON, which is YAML) into a `DriverManifest`, checking
/// every field. All problems are collected, each naming the file, the line, the
/// field path and what was expected, so that one run of `llmos drivers check`
/// shows everything that is wrong.
public enum ManifestParser {
    public static let supportedManifestVersion = 1
    /// Manifests are small; anything bigger is a mistake or an attack.
    public static let maxManifestBytes = 1 << 20

    static let topLevelKeys: Set<String> = [
        "manifest_version", "name", "version", "class", "description", "abi", "library", "isolation",
        "threading", "capabilities", "limits", "config", "settings", "tools", "operations", "$schema",
    ]

    public static func parse(file path: String) throws(LLMOSError) -> DriverManifest {
        let absolute = FilePath.absolute(path)
        guard FilePath.isRegularFile(absolute) else {
            throw LLMOSError(.notFound, "\(absolute): no such manifest file")
        }
        let bytes = try FilePath.readBytes(absolute)
        guard bytes.count <= maxManifestBytes else {
            throw invalid(absolute, [diag(absolute, "", nil, "manifest is \(bytes.count) bytes; the limit is \(maxManifestBytes)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw invalid(absolute, [diag(absolute, "", nil, "manifest is not valid UTF-8")])
        }
        return try parse(text: text, file: absolute)
    }

    public static func parse(text: String, file: String) throws(LLMOSError) -> DriverManifest {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw invalid(file, [diag(file, "", nil, "the manifest is empty; expected a mapping with manifest_version, name, version, class, abi, library and tools (see docs/MANIFEST.md)")])
            }
            root = node
        } catch let error as LLMOSError {
            throw error
        } catch {
            throw invalid(file, [diag(file, "", nil, "not valid YAML or JSON: " + yamlProblem(error))])
        }
        var reader = Reader(file: file)
        let manifest = reader.manifest(root)
        if let manifest, reader.errors.isEmpty {
            var result = manifest
            result.warnings = reader.warnings
            return result
        }
        throw invalid(file, reader.errors + reader.warnings.map { warning in
            var w = warning
            w.message = "(warning) " + w.message
            return w
        })
    }

    /// Yams describes a problem with a quote of the whole document; keep its first line.
    static func yamlProblem(_ error: any Error) -> String {
        let text = String(describing: error)
        let first = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? text
        return first.count > 300 ? String(first.prefix(300)) + "…" : first
    }

    /// The whole manifest document as JSON (for tools that rewrite a manifest,
    /// such as `llmos drivers install`). Call after `parse` has accepted it.
    public static func document(file path: String) throws(LLMOSError) -> JSONValue {
        let text = String(decoding: try FilePath.readBytes(path), as: UTF8.self)
        var reader = Reader(file: path)
        guard let root = try? Yams.compose(yaml: text), let value = reader.json(root, ""), reader.errors.isEmpty else {
            throw invalid(path, reader.errors.isEmpty ? [diag(path, "", nil, "not valid YAML or JSON")] : reader.errors)
        }
        return value
    }

    static func diag(_ file: String, _ field: String, _ node: Node?, _ message: String) -> ManifestDiagnostic {
        ManifestDiagnostic(file: file, field: field, line: node?.mark?.line, message: message)
    }

    static func invalid(_ file: String, _ errors: [ManifestDiagnostic]) -> LLMOSError {
        let body = errors.map(\.description).joined(separator: "\n")
        return LLMOSError(.invalidManifest, body, cause: ManifestErrors(diagnostics: errors))
    }
}

/// The full list behind an invalid-manifest error, for programs (`--json`).
public struct ManifestErrors: Error, Sendable {
    public var diagnostics: [ManifestDiagnostic]
}

extension ManifestParser {
    struct Reader: YAMLNodeReading {
        let file: String
        var errors: [ManifestDiagnostic] = []
        var warnings: [ManifestDiagnostic] = []

        mutating func error(_ field: String, _ node: Node?, _ message: String) {
            errors.append(ManifestParser.diag(file, field, node, message))
        }

        mutating func warn(_ field: String, _ node: Node?, _ message: String) {
            warnings.append(ManifestParser.diag(file, field, node, message))
        }

        // MARK: Typed field readers

        /// YAML anchors are refused where Yams reports them; aliases nested in aliases
        /// (the "billion laughs") are stopped by `nodeBudget` whatever Yams reports.
        mutating func refusesAnchors(_ node: Node, _ field: String) -> Bool {
            guard node.anchor != nil else { return false }
            if !anchorReported { error(field, node, "YAML anchors and aliases (&name, *name) are not allowed in manifests; write the value out") }
            anchorReported = true
            return true
        }
        var anchorReported = false
        /// Nodes converted so far; a manifest has hundreds, never millions.
        var nodeBudget = 200_000

        mutating func mapping(_ node: Node, _ field: String) -> [(key: String, value: Node)]? {
            if refusesAnchors(node, field) { return nil }
            guard case .mapping(let map) = node else {
                error(field, node, "expected a mapping (key: value pairs), got \(kind(node))")
                return nil
            }
            var seen = Set<String>()
            var pairs: [(String, Node)] = []
            for (keyNode, value) in map {
                guard case .scalar(let key) = keyNode else {
                    error(field, keyNode, "keys must be plain strings")
                    continue
                }
                if !seen.insert(key.string).inserted {
                    error(join(field, key.string), keyNode, "duplicate key")
                }
                pairs.append((key.string, value))
            }
            return pairs
        }

        mutating func string(_ node: Node?, _ field: String, required: Bool = true, parent: Node? = nil) -> String? {
            guard let node else {
                if required { error(field, parent, "missing; expected a string") }
                return nil
            }
            guard case .scalar(let scalar) = node, tagName(scalar) != .null else {
                error(field, node, "expected a string, got \(kind(node))")
                return nil
            }
            return scalar.string
        }

        mutating func integer(_ node: Node?, _ field: String, range: ClosedRange<Int>) -> Int? {
            guard let node else { return nil }
            guard case .scalar = node, let value = node.int, isType(node, .int) else {
                error(field, node, "expected an integer, got \(kind(node))")
                return nil
            }
            guard range.contains(value) else {
                error(field, node, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
                return nil
            }
            return value
        }

        mutating func bool(_ node: Node?, _ field: String) -> Bool? {
            guard let node else { return nil }
            guard isType(node, .bool), let value = node.bool else {
                error(field, node, "expected true or false, got \(kind(node))")
                return nil
            }
            return value
        }

        mutating func oneOf(_ node: Node?, _ field: String, _ allowed: [String], default fallback: String) -> String {
            guard let node else { return fallback }
            guard let value = string(node, field) else { return fallback }
            guard allowed.contains(value) else {
                error(field, node, "must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), got \"\(value)\"")
                return fallback
            }
            return value
        }






        /// A YAML node as JSON (for schemas), reporting what JSON cannot hold.
        mutating func json(_ node: Node, _ field: String) -> JSONValue? {
            if refusesAnchors(node, field) { return nil }
            nodeBudget -= 1
            guard nodeBudget >= 0 else {
                if nodeBudget == -1 { error(field, node, "the manifest has too many values (over 200000): are YAML aliases (*name) expanding? A manifest says each thing once") }
                return nil
            }
            switch node {
            case .scalar(let s):
                switch tagName(s) {
                case .null: return .null
                case .bool: return node.bool.map(JSONValue.bool)
                case .int:
                    if let v = node.int { return .int(Int64(v)) }
                    error(field, node, "integer \(s.string) is out of range")
                    return nil
                case .float:
                    if let v = node.float, v.isFinite { return .double(v) }
                    error(field, node, "\(s.string) is not a finite number")
                    return nil
                default: return .string(s.string)
                }
            case .sequence(let seq):
                var items: [JSONValue] = []
                for (i, item) in seq.enumerated() {
                    if let v = json(item, "\(field)[\(i)]") { items.append(v) }
                }
                return .array(items)
            case .mapping:
                guard let pairs = mapping(node, field) else { return nil }
                var object = JSONObject()
                for (key, value) in pairs {
                    if let v = json(value, join(field, key)) { object[key] = v }
                }
                return .object(object)
            case .alias:
                error(field, node, "YAML aliases are not allowed in manifests")
                return nil
            }
        }

        /// A JSON Schema: must be an object (or a boolean) and must compile.
        mutating func schema(_ node: Node?, _ field: String, parent: Node?, required: Bool) -> JSONValue? {
            guard let node else {
                if required { error(field, parent, "missing; expected a JSON Schema (for example {type: object, properties: {...}})") }
                return nil
            }
            guard let value = json(node, field) else { return nil }
            switch value {
            case .object, .bool: break
            default:
                error(field, node, "expected a JSON Schema object, got \(value.typeName)")
                return nil
            }
            do {
                _ = try JSONSchema(value)
            } catch {
                self.error(error.path.isEmpty ? field : "\(field).\(error.path)", node, error.message)
                return nil
            }
            return value
        }

        // MARK: The manifest

        mutating func manifest(_ root: Node) -> DriverManifest? {
            guard let top = mapping(root, "") else { return nil }
            var fields: [String: Node] = [:]
            for (key, value) in top {
                fields[key] = value
                if !ManifestParser.topLevelKeys.contains(key) && !key.hasPrefix("x-") {
                    let near = NearestNames.nearest(to: key, in: ManifestParser.topLevelKeys, limit: 1)
                    warn(key, value, "unknown top-level key, ignored" + (near.isEmpty ? "" : " (did you mean \(near[0])?)"))
                }
            }

            var manifestVersion = ManifestParser.supportedManifestVersion
            if let node = fields["manifest_version"] {
                if let v = integer(node, "manifest_version", range: 1...1_000_000) {
                    manifestVersion = v
                    if v != ManifestParser.supportedManifestVersion {
                        error("manifest_version", node, "this host reads manifest_version \(ManifestParser.supportedManifestVersion), got \(v)")
                    }
                }
            } else {
                error("manifest_version", root, "missing; expected manifest_version: \(ManifestParser.supportedManifestVersion)")
            }

            let rawName = string(fields["name"], "name", parent: root)
            let name = rawName ?? ""
            if rawName != nil, !Self.isValidName(name) {
                error("name", fields["name"], "\"\(name)\" is not a valid driver name: use lowercase letters, digits and _ (starting with a letter, at most 64 characters)")
            }
            let version = string(fields["version"], "version", parent: root) ?? ""
            if fields["version"] != nil && version.isEmpty { error("version", fields["version"], "must not be empty; expected a version such as 1.0.0") }
            let description = string(fields["description"], "description", required: false) ?? ""

            var deviceClass = fields["operations"] != nil && fields["tools"] == nil ? DeviceClass.cpu : DeviceClass.tool
            if let raw = string(fields["class"], "class", parent: root) {
                deviceClass = DeviceClass(rawValue: raw)
                if !DeviceClass.known.contains(deviceClass) {
                    error("class", fields["class"], "unknown device class \"\(raw)\"; expected one of \(DeviceClass.known.map(\.rawValue).joined(separator: ", "))")
                }
            }

            let abi = abiRequirement(fields["abi"], root)
            let library = librarySpec(fields["library"], root)
            let isolation = Isolation(rawValue: oneOf(fields["isolation"], "isolation", Isolation.allCases.map(\.rawValue), default: "in-process")) ?? .inProcess
            let threading = Threading(rawValue: oneOf(fields["threading"], "threading", Threading.allCases.map(\.rawValue), default: "serialized")) ?? .serialized
            let capabilities = capabilityRequests(fields["capabilities"])
            let limits = limitsSpec(fields["limits"])
            let config = schema(fields["config"], "config", parent: root, required: false)
            var settings = JSONObject()
            if let node = fields["settings"], !isNull(node) {
                switch json(node, "settings") {
                case .object(let object)?: settings = object
                case nil: break
                case let other?: error("settings", node, "expected a mapping of configuration values, got \(other.typeName)")
                }
            }
            // `tools: discovered`: the driver reports its tools at run time (an MCP server's).
            var discovers = false
            if let node = fields["tools"], case .scalar(let s) = node, tagName(s) == .str {
                if s.string == "discovered" && deviceClass == .tool {
                    discovers = true
                } else {
                    error("tools", node, deviceClass == .tool
                        ? "expected a list of tools, or `discovered` for a driver that reports its tools at run time; got \"\(s.string)\""
                        : "a driver of class \(deviceClass) lists its entries under operations, not tools")
                }
            }
            let operations = discovers ? [] : operationSpecs(fields, deviceClass, root)
            checkFFIDriver(fields, operations, deviceClass: deviceClass, isolation: isolation)

            var manifest = DriverManifest(
                file: file, manifestVersion: manifestVersion, name: name, version: version,
                deviceClass: deviceClass, description: description, abi: abi, library: library,
                isolation: isolation, threading: threading, capabilities: capabilities, limits: limits,
                configSchema: config, operations: operations, warnings: [])
            manifest.discoversTools = discovers
            manifest.settings = settings
            return manifest
        }

        static func isValidName(_ name: String) -> Bool {
            let bytes = Array(name.utf8)
            guard let first = bytes.first, bytes.count <= 64, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
            return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
        }

        mutating func abiRequirement(_ node: Node?, _ root: Node) -> ABIRequirement {
            var abi = ABIRequirement(major: 1, minor: 0)
            guard let node else {
                error("abi", root, "missing; expected abi: {major: 1, minor: 0}")
                return abi
            }
            guard let pairs = mapping(node, "abi") else { return abi }
            var sawMajor = false
            for (key, value) in pairs {
                switch key {
                case "major":
                    sawMajor = true
                    if let v = integer(value, "abi.major", range: 0...1000) { abi.major = v }
                case "minor":
                    if let v = integer(value, "abi.minor", range: 0...1_000_000) { abi.minor = v }
                default:
                    error("abi.\(key)", value, "unknown key; abi takes major and minor")
                }
            }
            if !sawMajor { error("abi.major", node, "missing; expected the ABI major version (1)") }
            return abi
        }

        mutating func librarySpec(_ node: Node?, _ root: Node) -> LibrarySpec {
            var spec = LibrarySpec(path: "", entry: "llmos_driver_entry_v1", sha256: nil)
            guard let node else {
                error("library", root, "missing; expected library: {path: libNAME.so}")
                return spec
            }
            guard let pairs = mapping(node, "library") else { return spec }
            var sawPath = false
            for (key, value) in pairs {
                switch key {
                case "path":
                    sawPath = true
                    if let p = string(value, "library.path") {
                        if p.isEmpty { error("library.path", value, "must not be empty") }
                        spec.path = p
                    }
                case "entry":
                    if let e = string(value, "library.entry") {
                        if e.isEmpty || (e.utf8.first.map { $0 >= 48 && $0 <= 57 } ?? false) || !e.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) {
                            error("library.entry", value, "\"\(e)\" is not a C symbol name")
                        }
                        spec.entry = e
                    }
                case "name":
                    if let n = string(value, "library.name") {
                        if !Self.isValidName(n) { error("library.name", value, "\"\(n)\" is not a valid driver name: use lowercase letters, digits and _ (starting with a letter, at most 64 characters)") }
                        spec.driverName = n
                    }
                case "sha256":
                    if let digest = string(value, "library.sha256") {
                        let lower = digest.lowercased()
                        if lower.utf8.count != 64 || !lower.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) {
                            error("library.sha256", value, "expected 64 hexadecimal digits (the output of sha256sum)")
                        }
                        spec.sha256 = lower
                    }
                default:
                    error("library.\(key)", value, "unknown key; library takes path, entry, name and sha256")
                }
            }
            if !sawPath { error("library.path", node, "missing; expected the shared library's path, e.g. libNAME.so") }
            return spec
        }

        mutating func capabilityRequests(_ node: Node?) -> CapabilityRequests {
            var requests = CapabilityRequests()
            guard let node else { return requests }
            if case .scalar(let s) = node, tagName(s) == .null { return requests }
            guard let pairs = mapping(node, "capabilities") else { return requests }
            for (key, value) in pairs {
                let field = "capabilities.\(key)"
                guard CapabilityRequests.knownNames.contains(key) else {
                    let near = NearestNames.nearest(to: key, in: CapabilityRequests.knownNames, limit: 1)
                    error(field, value, "unknown capability" + (near.isEmpty ? "" : " (did you mean \(near[0])?)") + "; known: \(CapabilityRequests.knownNames.joined(separator: ", ")). Unknown capabilities are refused, not ignored, because a dropped restriction would be a hole")
                    continue
                }
                switch value {
                case .scalar(let s) where tagName(s) == .bool:
                    if value.bool == true { requests.set(key, .any) }
                case .scalar(let s) where tagName(s) == .str:
                    if s.string.isEmpty { error(field, value, "an empty pattern matches nothing; use true, false or a pattern") }
                    requests.set(key, .patterns([s.string]))
                case .sequence(let items):
                    var patterns: [String] = []
                    for (i, item) in items.enumerated() {
                        if let p = string(item, "\(field)[\(i)]") {
                            if p.isEmpty { error("\(field)[\(i)]", item, "an empty pattern matches nothing; remove it") }
                            patterns.append(p)
                        }
                    }
                    requests.set(key, .patterns(patterns))
                default:
                    error(field, value, "expected true, false, a pattern or a list of patterns, got \(kind(value))")
                }
            }
            return requests
        }

        mutating func limitsSpec(_ node: Node?) -> Limits {
            var limits = Limits()
            guard let node, !isNull(node), let pairs = mapping(node, "limits") else { return limits }
            for (key, value) in pairs {
                switch key {
                case "timeout_ms": if let v = integer(value, "limits.timeout_ms", range: 1...86_400_000) { limits.timeoutMs = v }
                case "max_output_bytes": if let v = integer(value, "limits.max_output_bytes", range: 2...(1 << 30)) { limits.maxOutputBytes = v }
                case "memory_mb": if let v = integer(value, "limits.memory_mb", range: 1...(1 << 20)) { limits.memoryMB = v }
                default:
                    // A limit we do not know would silently not be enforced: refuse it.
                    error("limits.\(key)", value, "unknown limit; limits takes timeout_ms, max_output_bytes and memory_mb")
                }
            }
            return limits
        }

        static let operationKeys: Set<String> = ["name", "description", "input_schema", "output_schema", "hints", "ffi"]

        mutating func operationSpecs(_ fields: [String: Node], _ deviceClass: DeviceClass, _ root: Node) -> [OperationSpec] {
            let key = deviceClass.operationsKey
            let other = key == "tools" ? "operations" : "tools"
            if let misplaced = fields[other] {
                error(other, misplaced, "a driver of class \(deviceClass) lists its entries under \(key), not \(other)")
            }
            guard let node = fields[key] else {
                error(key, root, "missing; expected a list of \(key), each with name, description and input_schema")
                return []
            }
            guard case .sequence(let items) = node else {
                error(key, node, "expected a list, got \(kind(node))")
                return []
            }
            if items.isEmpty && deviceClass == .tool { error(key, node, "a tool driver must declare at least one tool") }
            var specs: [OperationSpec] = []
            var names = Set<String>()
            for (i, item) in items.enumerated() {
                let field = "\(key)[\(i)]"
                guard let pairs = mapping(item, field) else { continue }
                var f: [String: Node] = [:]
                for (k, v) in pairs {
                    f[k] = v
                    if !Self.operationKeys.contains(k) && !k.hasPrefix("x-") {
                        warn("\(field).\(k)", v, "unknown key, ignored")
                    }
                }
                let rawName = string(f["name"], "\(field).name", parent: item)
                let name = rawName ?? ""
                if rawName != nil && !Self.isValidName(name) {
                    error("\(field).name", f["name"], "\"\(name)\" is not a valid name: use lowercase letters, digits and _ (starting with a letter, at most 64 characters)")
                }
                if !name.isEmpty && !names.insert(name).inserted {
                    error("\(field).name", f["name"], "\"\(name)\" is declared twice")
                }
                let description = string(f["description"], "\(field).description", parent: item) ?? ""
                if f["description"] != nil && description.trimmingCharacters(in: .whitespaces).isEmpty {
                    error("\(field).description", f["description"], "must not be empty: a model chooses tools by their descriptions")
                }
                let isTool = deviceClass == .tool
                let errorsBefore = errors.count
                // An ffi tool's input schema is derived from its C signature (an explicit one must agree).
                let ffiErrorsBefore = errors.count
                let ffi = f["ffi"].flatMap { ffiSignature($0, "\(field).ffi") }
                let ffiFailed = f["ffi"] != nil && (ffi == nil || errors.count != ffiErrorsBefore)
                var input = schema(f["input_schema"], "\(field).input_schema", parent: item, required: isTool && f["ffi"] == nil) ?? .object([:])
                if let ffi {
                    if f["input_schema"] == nil {
                        input = ffi.derivedInputSchema
                    } else if errors.count == errorsBefore, let misfit = ffi.disagreement(with: input) {
                        error("\(field).input_schema" + (misfit.path.isEmpty ? "" : ".\(misfit.path)"), f["input_schema"], "does not fit the ffi signature of \(ffi.symbol): \(misfit.message)")
                    }
                } else if ffiFailed, f["input_schema"] == nil {
                    input = ["type": "object"]
                }
                if isTool, f["input_schema"] != nil, errors.count == errorsBefore, input.objectValue?["type"] != .string("object") {
                    error("\(field).input_schema.type", f["input_schema"], "a tool's input schema must be an object schema with type: object (tool-calling models pass arguments as an object)")
                }
                if !isTool, !name.isEmpty, !deviceClass.knownOperations.contains(name) {
                    warn("\(field).name", f["name"], "\"\(name)\" is not an operation of the \(deviceClass) class (known: \(deviceClass.knownOperations.joined(separator: ", "))); it can be called directly, but the agent loop will never use it")
                }
                if let inputNode = f["input_schema"], errors.count == errorsBefore {
                    do { _ = try ArgumentCapability.find(in: input) } catch {
                        self.error("\(field).input_schema" + (error.path.isEmpty ? "" : ".properties." + error.path.joined(separator: ".properties.")), inputNode, error.message)
                    }
                }
                let output = schema(f["output_schema"], "\(field).output_schema", parent: item, required: false)
                var hints = OperationHints()
                if let h = f["hints"], !isNull(h), let hp = mapping(h, "\(field).hints") {
                    for (k, v) in hp {
                        let hf = "\(field).hints.\(k)"
                        switch k {
                        case "read_only": hints.readOnly = bool(v, hf) ?? false
                        case "destructive": hints.destructive = bool(v, hf) ?? false
                        case "needs_confirmation": hints.needsConfirmation = bool(v, hf) ?? false
                        case "idempotent": hints.idempotent = bool(v, hf) ?? false
                        default: warn(hf, v, "unknown hint, ignored (known: read_only, destructive, needs_confirmation, idempotent)")
                        }
                    }
                }
                specs.append(OperationSpec(name: name, description: description, inputSchema: input, outputSchema: output, hints: hints, ffi: ffi))
            }
            for required in deviceClass.requiredOperations where !names.contains(required) {
                error(key, node, "a \(deviceClass) driver must offer the operation \"\(required)\" (see sdk/schemas/classes/\(deviceClass).schema.json)")
            }
            return specs
        }
    }
}
