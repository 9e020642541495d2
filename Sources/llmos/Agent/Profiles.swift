import Foundation
import LLMOSJSON
import LLMOSKernel

/// A named driver set in the config file, for `--profile NAME`:
///
///     # ~/.config/llmos/config.yaml
///     profiles:
///       work:
///         cpu: openai
///         tools: ["calc.*", text.count]
///         max_steps: 20
///         max_cost_usd: 0.50
///         config:
///           openai: {base_url: "http://127.0.0.1:8080/v1", model: "qwen2.5-7b"}
///       offline:
///         cpu: local
///         cpu_slots: 1
struct AgentProfile: Equatable {
    var name: String
    var cpu: String?
    var tools: [String]?
    var memory: String?
    var storage: String?
    var collection: String?
    var maxSteps: Int?
    var maxCostUSD: Double?
    var cpuSlots: Int?
    var driverConfig: [String: JSONValue] = [:]

    static let fields = ["cpu", "tools", "memory", "storage", "collection", "max_steps", "max_cost_usd", "cpu_slots", "config"]

    /// $LLMOS_CONFIG_FILE, else ${XDG_CONFIG_HOME:-~/.config}/llmos/config.yaml.
    static func configFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let file = environment["LLMOS_CONFIG_FILE"], !file.isEmpty { return file }
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        return base + "/llmos/config.yaml"
    }

    static func load(named name: String, file: String = configFile()) throws -> AgentProfile {
        guard FileManager.default.fileExists(atPath: file) else {
            throw CommandFailure(message: "--profile \(name): there is no config file \(file) (make one with a `profiles:` mapping; see `llmos run --help`)")
        }
        let document: JSONValue
        do { document = try ManifestParser.document(file: file) } catch {
            throw CommandFailure(message: "\(file): \(error.message)")
        }
        guard let profiles = document["profiles"]?.objectValue else {
            throw CommandFailure(message: "\(file): profiles: expected a mapping of profile names to driver sets")
        }
        guard let entry = profiles[name] else {
            let names = profiles.map(\.key)
            throw CommandFailure(message: "--profile \(name): \(file) has no profile of that name" + NearestNames.suggestion(for: name, in: names)
                                 + (names.isEmpty ? "" : " (profiles: \(names.joined(separator: ", ")))"))
        }
        return try parse(name, entry, file: file)
    }

    static func parse(_ name: String, _ value: JSONValue, file: String) throws -> AgentProfile {
        let at = "\(file): profiles.\(name)"
        guard let object = value.objectValue else { throw CommandFailure(message: "\(at): expected a mapping, got \(value.typeName)") }
        var profile = AgentProfile(name: name)
        for (key, field) in object {
            func fail(_ what: String) -> CommandFailure { CommandFailure(message: "\(at).\(key): expected \(what), got \(field.typeName)") }
            switch key {
            case "cpu": guard let s = field.stringValue, !s.isEmpty else { throw fail("a driver name") }; profile.cpu = s
            case "memory": guard let s = field.stringValue, !s.isEmpty else { throw fail("a driver name") }; profile.memory = s
            case "storage": guard let s = field.stringValue, !s.isEmpty else { throw fail("a driver name") }; profile.storage = s
            case "collection": guard let s = field.stringValue, !s.isEmpty else { throw fail("a collection name") }; profile.collection = s
            case "tools":
                if let s = field.stringValue { profile.tools = [s]; continue }
                guard let items = field.arrayValue?.compactMap(\.stringValue), items.count == field.arrayValue?.count, !items.isEmpty else {
                    throw fail("a list of tool globs")
                }
                profile.tools = items
            case "max_steps": guard let n = field.int64Value, n >= 1 else { throw fail("a whole number of at least 1") }; profile.maxSteps = Int(n)
            case "cpu_slots": guard let n = field.int64Value, n >= 1 else { throw fail("a whole number of at least 1") }; profile.cpuSlots = Int(n)
            case "max_cost_usd": guard let n = field.doubleValue, n > 0 else { throw fail("a positive number of dollars") }; profile.maxCostUSD = n
            case "config":
                guard let drivers = field.objectValue else { throw fail("a mapping of driver names to configuration objects") }
                for (driver, config) in drivers {
                    guard config.objectValue != nil else {
                        throw CommandFailure(message: "\(at).config.\(driver): expected a configuration object, got \(config.typeName)")
                    }
                    profile.driverConfig[driver] = config
                }
            default:
                throw CommandFailure(message: "\(at): unknown field \(key)" + NearestNames.suggestion(for: key, in: fields) + " (fields: \(fields.joined(separator: ", ")))")
            }
        }
        return profile
    }
}
