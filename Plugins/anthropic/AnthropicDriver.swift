// The anthropic driver (class cpu): the Anthropic Messages API with tool use and streaming,
// through the kernel's net.fetch and net.stream system calls. The protocol lives in
// Plugins/ModelKit (AnthropicClient).
import LLMOSDriverSDK
import LLMOSJSON
import ModelKit

final class AnthropicDriver: LLMOSDriver {
    static let name = "anthropic"
    static let version = "1.0.0"

    let config: ModelDriverConfig

    init(context: DriverContext) throws {
        config = try context.decodeConfig(ModelDriverConfig.self)
    }

    func client(_ call: CallContext) -> AnthropicClient {
        AnthropicClient(baseURL: config.base_url, model: config.model, apiKey: config.apiKey(call), transport: SyscallTransport(call),
                        options: config.options(connectHint: "check base_url and the network"), defaultMaxTokens: config.max_tokens ?? 4096)
    }

    static func register(_ router: inout Router) {
        router.addRaw("complete") { (driver: AnthropicDriver, json: String, call: CallContext) throws -> String in
            try driver.client(call).complete(try parseInput(json)).serialized()
        }
        router.addRaw("count_tokens") { (driver: AnthropicDriver, json: String, call: CallContext) throws -> String in
            try driver.client(call).countTokens(try parseInput(json)).serialized()
        }
        router.addRaw("info") { (driver: AnthropicDriver, json: String, call: CallContext) throws -> String in
            var info = driver.client(call).info().objectValue ?? [:]
            for (key, value) in driver.config.infoExtras() { info[key] = value }
            return JSONValue.object(info).serialized()
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(AnthropicDriver.self, host, driver) }
