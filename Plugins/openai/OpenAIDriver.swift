// The openai driver (class cpu): any OpenAI-compatible Chat Completions server — OpenAI,
// llama.cpp's llama-server, Ollama, vLLM, LM Studio, OpenRouter — through the kernel's
// net.fetch and net.stream system calls. The protocol lives in Plugins/ModelKit.
import LLMOSDriverSDK
import LLMOSJSON
import ModelKit

final class OpenAIDriver: LLMOSDriver {
    static let name = "openai"
    static let version = "1.0.0"
    static var minimumHostABIMinor: UInt32 { 0 }

    let config: ModelDriverConfig
    let toolMode: ToolMode

    init(context: DriverContext) throws {
        config = try context.decodeConfig(ModelDriverConfig.self)
        guard let mode = ToolMode(rawValue: config.tool_mode ?? "auto") else {
            throw DriverError.invalidArgument("tool_mode must be auto, native or constrained, got \(config.tool_mode ?? "")")
        }
        toolMode = mode
    }

    func client(_ call: CallContext) -> OpenAIClient {
        OpenAIClient(baseURL: config.base_url, model: config.model, apiKey: config.apiKey(call), transport: SyscallTransport(call),
                     options: config.options(connectHint: "is llama-server running?"), toolMode: toolMode, embeddingModel: config.embedding_model)
    }

    static func register(_ router: inout Router) {
        router.addRaw("complete") { (driver: OpenAIDriver, json: String, call: CallContext) throws -> String in
            var input = try parseInput(json)
            if input["max_tokens"] == nil, let max = driver.config.max_tokens, var object = input.objectValue {
                object["max_tokens"] = .int(Int64(max))
                input = .object(object)
            }
            return try driver.client(call).complete(input).serialized()
        }
        router.addRaw("count_tokens") { (driver: OpenAIDriver, json: String, call: CallContext) throws -> String in
            try driver.client(call).countTokens(try parseInput(json)).serialized()
        }
        router.addRaw("embed") { (driver: OpenAIDriver, json: String, call: CallContext) throws -> String in
            try driver.client(call).embed(try parseInput(json)).serialized()
        }
        router.addRaw("info") { (driver: OpenAIDriver, json: String, call: CallContext) throws -> String in
            var info = driver.client(call).info().objectValue ?? [:]
            for (key, value) in driver.config.infoExtras() { info[key] = value }
            return JSONValue.object(info).serialized()
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(OpenAIDriver.self, host, driver) }
