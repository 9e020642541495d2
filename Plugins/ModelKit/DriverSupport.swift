// What the model drivers share on top of the clients: their configuration and the API key.
import LLMOSDriverSDK
import LLMOSJSON

/// The configuration keys every HTTP model driver takes (see docs/MODELS.md).
public struct ModelDriverConfig: Decodable, Sendable {
    public var base_url: String
    public var model: String
    public var api_key: String?
    public var api_key_env: String?
    public var timeout_ms: Int?
    public var connect_timeout_ms: Int?
    public var read_timeout_ms: Int?
    public var retries: Int?
    public var retry_backoff_ms: Int?
    public var max_retry_after_ms: Int?
    public var tool_mode: String?
    public var context_length: Int?
    public var embedding_model: String?
    public var max_tokens: Int?
    public var concurrency: Int?
    public var pricing: Pricing?

    public struct Pricing: Decodable, Sendable {
        public var input_per_million_tokens: Double
        public var output_per_million_tokens: Double
    }

    /// What `info` adds from the configuration: the calls the server takes at once (for the
    /// kernel's scheduler) and the prices (for cost budgets).
    public func infoExtras(defaultConcurrency: Int = 4) -> JSONObject {
        var extras: JSONObject = ["concurrency": .int(Int64(max(1, concurrency ?? defaultConcurrency)))]
        if let pricing {
            extras["pricing"] = ["input_per_million_tokens": .double(pricing.input_per_million_tokens),
                                 "output_per_million_tokens": .double(pricing.output_per_million_tokens)]
        }
        return extras
    }

    public func options(connectHint: String) -> ClientOptions {
        var o = ClientOptions()
        if let v = timeout_ms { o.timeoutMs = v }
        if let v = connect_timeout_ms { o.connectTimeoutMs = v }
        if let v = read_timeout_ms { o.readTimeoutMs = v }
        if let v = retries { o.retries = max(0, v) }
        if let v = retry_backoff_ms { o.backoffMs = max(0, v) }
        if let v = max_retry_after_ms { o.maxRetryAfterMs = v }
        o.contextLength = context_length
        o.apiKeyEnv = api_key ?? "" == "" ? api_key_env : nil
        o.connectHint = connectHint
        return o
    }

    /// The key: `api_key` from the configuration, else the variable `api_key_env` read through
    /// the `env.get` system call (which needs the `env` capability for that name). A variable
    /// that is unset, or not granted, means no key: a local server needs none, and a remote one
    /// answers 401, which the client explains. The key is never logged.
    public func apiKey(_ call: CallContext) -> String? {
        if let key = api_key, !key.isEmpty { return key }
        guard let name = api_key_env, !name.isEmpty else { return nil }
        struct Get: Encodable { var name: String }
        struct Value: Decodable { var value: String? }
        do {
            return try call.syscall("env.get", Get(name: name), as: Value.self).value.flatMap { $0.isEmpty ? nil : $0 }
        } catch {
            call.log(.debug, "no API key from \(name): \(error.message)")
            return nil
        }
    }
}

/// JSON text in, JSON value out, for `addRaw` handlers.
public func parseInput(_ json: String) throws(DriverError) -> JSONValue {
    do { return try JSON.parse(json) } catch { throw .invalidArgument("invalid input: \(error)") }
}
