// The local driver (class cpu): the offline default model. It supervises a llama.cpp
// `llama-server` child on a loopback port (LlamaServerSupervisor: started on first use,
// health-polled, restarted when it dies, stopped with the driver, killed with the host)
// and speaks to it with the openai driver's client (Plugins/ModelKit), through the
// kernel's net.fetch / net.stream system calls like any driver's HTTP.
//
// By default it runs what `scripts/setup-model` (`llmos models setup`) put in
// ${XDG_CACHE_HOME:-~/.cache}/llmos: SmolLM2-135M-Instruct and llama-server b11434.
// `model` (or `llmos --model PATH.gguf`) runs any other GGUF file.
import Foundation
import LLMOSDriverSDK
import LLMOSJSON
import ModelKit
import LLMOSModelCache

struct LocalConfig: Decodable, Sendable {
    var model: String?
    /// A GGUF embedding model for `embed` (default: the one setup-model converted,
    /// all-MiniLM-L6-v2; "chat": the chat model's mean-pooled hidden states).
    var embed_model: String?
    var server: String?
    var context_length: Int?
    var threads: Int?
    var parallel: Int?
    var extra_args: [String]?
    var port: Int?
    var startup_timeout_ms: Int?
    var timeout_ms: Int?
    var read_timeout_ms: Int?
    var max_tokens: Int?
    var tool_mode: String?
    var retry_after_crash: Bool?
}

/// Where `scripts/setup-model` puts things, and what its marker says.
enum LocalSetup {
    static func cacheDirectory() -> String { ModelCache.directory() }

    /// (model, server, embedding model) from setup.json, when the files are still there.
    static func marker(_ cache: String) -> (model: String, server: String, embedModel: String?)? {
        guard let data = FileManager.default.contents(atPath: ModelCache.markerPath(in: cache)),
              let record = try? JSON.parse(String(decoding: data, as: UTF8.self)),
              let model = record["model"]?.stringValue, let server = record["server"]?.stringValue,
              FileManager.default.isReadableFile(atPath: model), FileManager.default.isExecutableFile(atPath: server)
        else { return nil }
        let embed = record["embed_model"]?.stringValue.flatMap { FileManager.default.isReadableFile(atPath: $0) ? $0 : nil }
        return (model, server, embed)
    }

    static func absolute(_ path: String) -> String {
        var p = path
        if p == "~" || p.hasPrefix("~/") { p = ModelCache.home() + p.dropFirst() }
        if !p.hasPrefix("/") { p = FileManager.default.currentDirectoryPath + "/" + p }
        return (p as NSString).standardizingPath
    }

    static func isGGUF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// Removes llama-server logs left by hosts that are gone (a host that exits without
    /// unloading the driver leaves its log), once they are an hour old.
    static func pruneLogs(_ directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix("llama-server-") && name.hasSuffix(".log") {
            let parts = name.dropLast(4).split(separator: "-")
            guard parts.count >= 4, let pid = Int32(parts[3]), pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            let path = directory + "/" + name
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
            if Date().timeIntervalSince(modified) > 3600 { unlink(path) }
        }
    }

    static func onPath(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// Forwards to the call's transport and counts the events emitted, so a request that
/// already streamed part of its reply is never silently retried.
final class CountingTransport: HTTPTransport {
    let inner: any HTTPTransport
    private(set) var emitted = 0
    init(_ inner: any HTTPTransport) { self.inner = inner }
    func send(_ request: HTTPRequest) throws(DriverError) -> HTTPResponse { try inner.send(request) }
    func open(_ request: HTTPRequest) throws(DriverError) -> (response: HTTPResponse, body: any HTTPBodyStream) { try inner.open(request) }
    var isCancelled: Bool { inner.isCancelled }
    func sleep(ms: Int) throws(DriverError) { try inner.sleep(ms: ms) }
    func emit(_ event: JSONValue) throws(DriverError) {
        emitted += 1
        try inner.emit(event)
    }
    func log(_ level: LogLevel, _ message: String) { inner.log(level, message) }
}

final class LocalDriver: LLMOSDriver, @unchecked Sendable {
    static let name = "local"
    static let version = "1.0.0"

    let config: LocalConfig
    let toolMode: ToolMode
    let cache: String
    let modelPath: String?
    let serverPath: String?
    /// Why no server can be started (not set up, no llama-server), or nil.
    let unusable: String?
    let chat: LlamaServerSupervisor?
    let embedder: LlamaServerSupervisor?
    let contextLength: Int
    let modelName: String
    /// The embedding model `embed` serves (nil: the chat model's), and its name.
    let embedModelPath: String?
    let embedModelName: String
    /// The embedding model's window, in tokens (a BERT model's positions).
    static let embedContext = 512

    init(context: DriverContext) throws {
        config = try context.decodeConfig(LocalConfig.self)
        guard let mode = ToolMode(rawValue: config.tool_mode ?? "constrained") else {
            throw DriverError.invalidArgument("tool_mode must be constrained, native or auto, got \(config.tool_mode ?? "")")
        }
        toolMode = mode
        cache = LocalSetup.cacheDirectory()
        let setup = LocalSetup.marker(cache)
        contextLength = config.context_length ?? 4096

        // An explicitly named model or server must exist: that is a mistake to report at once.
        var model = setup?.model
        if let named = config.model {
            let path = LocalSetup.absolute(named)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw DriverError.invalidArgument("model \(named): no such file (\(path)); give the path of a .gguf file")
            }
            guard LocalSetup.isGGUF(path) else {
                throw DriverError.invalidArgument("model \(named): \(path) is not a GGUF file (llama.cpp models end in .gguf and start with the bytes GGUF)")
            }
            model = path
        }
        var server = setup?.server ?? LocalSetup.onPath("llama-server")
        if let named = config.server {
            let path = LocalSetup.absolute(named)
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw DriverError.invalidArgument("server \(named): \(path) is not an executable llama-server")
            }
            server = path
        }
        modelPath = model
        serverPath = server
        var embedModel = setup?.embedModel
        if let named = config.embed_model {
            if named == "chat" {
                embedModel = nil
            } else {
                let path = LocalSetup.absolute(named)
                guard FileManager.default.isReadableFile(atPath: path), LocalSetup.isGGUF(path) else {
                    throw DriverError.invalidArgument("embed_model \(named): \(path) is not a readable GGUF file; give a .gguf embedding model, or \"chat\" to embed with the chat model")
                }
                embedModel = path
            }
        }
        embedModelPath = embedModel
        modelName = model.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? "SmolLM2-135M-Instruct.Q4_1"
        embedModelName = embedModel.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? modelName

        let setupHint = "run `llmos models setup` (or scripts/setup-model): it downloads SmolLM2-135M-Instruct (98 MB) and builds llama-server into \(cache) once, in 4-8 minutes"
        if model == nil && server == nil {
            unusable = "the local model is not set up: \(setupHint)"
        } else if model == nil {
            unusable = "no model: \(setupHint), or name a .gguf file with --model PATH.gguf (configuration `model`)"
        } else if server == nil {
            unusable = "no llama-server: \(setupHint), or name one with the configuration `server`"
        } else {
            unusable = nil
        }
        if let model, let server {
            LocalSetup.pruneLogs(LocalSetup.cacheDirectory() + "/logs")
            let config = self.config
            let instance = UUID().uuidString.prefix(8)   // several instances may share a process (tests)
            let common = ["--alias", modelName, "--jinja", "-c", String(contextLength), "-t", String(config.threads ?? 2),
                          "--parallel", String(config.parallel ?? 1)] + (config.extra_args ?? [])
            let supervisor = { (role: String, model: String, arguments: [String]) -> LlamaServerSupervisor in
                var c = LlamaServerSupervisor.Configuration(server: server, model: model, arguments: arguments, role: role,
                                                            logPath: "\(LocalSetup.cacheDirectory())/logs/llama-server-\(role)-\(getpid())-\(instance).log")
                c.port = role == "chat" ? (config.port ?? 0) : 0
                if let t = config.startup_timeout_ms { c.startupTimeoutMs = t }
                return LlamaServerSupervisor(c)
            }
            chat = supervisor("chat", model, common)
            if let embedModel = embedModelPath {
                // A sentence-embedding model (BERT): its own small window, one batch of it.
                let window = String(Self.embedContext)
                embedder = supervisor("embed", embedModel, ["--alias", embedModelName, "-c", window, "-b", window, "-ub", window,
                                                            "-t", String(config.threads ?? 2), "--parallel", "1", "--embeddings", "--pooling", "mean"]
                                                            + (config.extra_args ?? []))
            } else {
                embedder = supervisor("embed", model, common + ["--embeddings", "--pooling", "mean"])
            }
        } else {
            chat = nil
            embedder = nil
        }
    }

    deinit {
        chat?.shutdown()
        embedder?.shutdown()
        for s in [chat, embedder] { if let log = s?.configuration.logPath { unlink(log) } }
    }

    var options: ClientOptions {
        var o = ClientOptions()
        o.connectHint = "the local llama-server is not answering"
        o.contextLength = contextLength
        o.retries = 0
        if let t = config.timeout_ms { o.timeoutMs = t }
        if let t = config.read_timeout_ms { o.readTimeoutMs = t }
        return o
    }

    /// Runs `body` against a running server, starting it first when needed. When the
    /// server dies during the request, it is restarted and the request retried once —
    /// unless part of the reply was already streamed to the caller.
    func withServer(_ supervisor: LlamaServerSupervisor?, _ call: CallContext,
                    _ body: (OpenAIClient) throws(DriverError) -> JSONValue) throws(DriverError) -> JSONValue {
        guard let supervisor, unusable == nil else { throw DriverError.unavailable(unusable ?? "the local model is not set up") }
        let retry = config.retry_after_crash ?? true
        var attempt = 0
        while true {
            let transport = CountingTransport(SyscallTransport(call))
            let endpoint: LlamaServerSupervisor.Endpoint
            do {
                endpoint = try supervisor.ensureRunning(probe: { url in
                    (try? transport.send(HTTPRequest(method: "GET", url: url, timeoutMs: 2000, connectTimeoutMs: 1000)))?.status
                }, isCancelled: { call.isCancelled })
            } catch {
                switch error.kind {
                case .cancelled: throw DriverError.cancelled
                case .timedOut: throw DriverError.timeout(error.message)
                case .notStartable, .exited: throw DriverError.unavailable(error.message)
                }
            }
            let client = OpenAIClient(baseURL: endpoint.baseURL + "/v1", model: modelName, apiKey: nil, transport: transport,
                                      options: options, toolMode: toolMode, embeddingModel: embedModelName)
            do {
                let result = try body(client)
                if result["finish_reason"]?.stringValue == "error", supervisor.serverDied(since: endpoint.generation) {
                    call.log(.warn, "llama-server (\(supervisor.configuration.role)) \(supervisor.status.lastExit ?? "died") while streaming; the part already received is returned, and the server restarts on the next call")
                }
                return result
            } catch {
                if error.code == .cancelled || error.code == .invalidArgument || error.code == .permissionDenied { throw local(error) }
                guard supervisor.serverDied(since: endpoint.generation) else { throw local(error) }
                let died = supervisor.status.lastExit ?? "died"
                if retry && attempt == 0 && transport.emitted == 0 && !call.isCancelled {
                    call.log(.warn, "llama-server (\(supervisor.configuration.role)) \(died) during the request; restarting it and retrying once")
                    attempt += 1
                    continue
                }
                throw DriverError(error.code == .timeout ? .timeout : .unavailable,
                                  "llama-server (\(supervisor.configuration.role)) \(died) during the request (\(local(error).message)); it is restarted on the next call")
            }
        }
    }

    /// `embed`, with texts longer than the embedding model's window shortened to fit
    /// (llama-server refuses them whole): the batch is tried as it is; when the server
    /// says a text is too large, the texts go one at a time, and a long one is cut to
    /// the share of it that fits (the server names its token count) and tried again.
    /// `x-local_truncated` counts the texts shortened.
    func embedFitting(_ input: JSONValue, _ client: OpenAIClient) throws(DriverError) -> JSONValue {
        func tooLarge(_ error: DriverError) -> Int? {
            guard error.message.contains("too large to process") else { return nil }
            guard let open = error.message.range(of: "input ("), let close = error.message[open.upperBound...].range(of: " tokens)") else { return Int.max }
            return Int(error.message[open.upperBound..<close.lowerBound]) ?? Int.max
        }
        do { return try client.embed(input) } catch {
            guard tooLarge(error) != nil, let texts = input["input"]?.arrayValue else { throw error }
            var vectors: [JSONValue] = []
            var model: JSONValue = .string(embedModelName), dimensions: JSONValue = .null
            var truncated = 0
            for item in texts {
                var text = item.stringValue ?? ""
                var attempt = 0
                while true {
                    do {
                        let out = try client.embed(["input": [.string(text)]])
                        vectors.append(out["vectors"]?[0] ?? .null)
                        model = out["model"] ?? model
                        dimensions = out["dimensions"] ?? dimensions
                        break
                    } catch {
                        guard let tokens = tooLarge(error), attempt < 4 else { throw error }
                        attempt += 1
                        // Keep the share that fits, with room for [CLS] and [SEP] and the guess's error.
                        let share = tokens == Int.max ? 0.5 : Double(Self.embedContext - 16) / Double(tokens)
                        let keep = max(1, Int(Double(text.count) * min(share, 0.9)))
                        text = String(text.prefix(keep))
                        if attempt == 1 { truncated += 1 }
                    }
                }
            }
            return ["vectors": .array(vectors), "dimensions": dimensions, "model": model, "x-local_truncated": .int(Int64(truncated))]
        }
    }

    /// ModelKit speaks as "openai"; here it is the local driver.
    func local(_ error: DriverError) -> DriverError {
        var message = error.message
        if message.hasPrefix("openai: ") { message.removeFirst("openai: ".count) }
        return DriverError(error.code, message)
    }

    func info() -> JSONValue {
        var server: JSONObject = ["set_up": .bool(unusable == nil), "cache": .string(cache)]
        if let modelPath { server["model_path"] = .string(modelPath) }
        if let serverPath { server["server_path"] = .string(serverPath) }
        server["embed_model"] = .string(embedModelName)
        if let embedModelPath { server["embed_model_path"] = .string(embedModelPath) }
        if let unusable { server["problem"] = .string(unusable) }
        for (key, supervisor) in [("chat", chat), ("embed", embedder)] {
            guard let s = supervisor?.status else { continue }
            var o: JSONObject = ["state": .string(s.state), "starts": .int(Int64(s.starts)), "restarts": .int(Int64(s.restarts))]
            if let pid = s.pid { o["pid"] = .int(Int64(pid)) }
            if let port = s.port { o["port"] = .int(Int64(port)) }
            if let exit = s.lastExit { o["last_exit"] = .string(exit) }
            if let log = s.logPath { o["log"] = .string(log) }
            server[key] = .object(o)
        }
        return ["model": .string(modelName), "context_length": .int(Int64(contextLength)),
                "native_tool_calls": .bool(toolMode == .native), "constrained_output": true, "streaming": true,
                "tool_mode": .string(toolMode.rawValue), "local": .object(server),
                // One llama-server with --parallel N slots: the kernel queues the rest fairly.
                "concurrency": .int(Int64(max(1, config.parallel ?? 1)))]
    }

    static func register(_ router: inout Router) {
        router.addRaw("complete") { (driver: LocalDriver, json: String, call: CallContext) throws -> String in
            var input = try parseInput(json)
            if input["max_tokens"] == nil, let max = driver.config.max_tokens, var object = input.objectValue {
                object["max_tokens"] = .int(Int64(max))
                input = .object(object)
            }
            return try driver.withServer(driver.chat, call) { (client: OpenAIClient) throws(DriverError) -> JSONValue in
                try client.complete(input)
            }.serialized()
        }
        router.addRaw("count_tokens") { (driver: LocalDriver, json: String, call: CallContext) throws -> String in
            let input = try parseInput(json)
            return try driver.withServer(driver.chat, call) { (client: OpenAIClient) throws(DriverError) -> JSONValue in
                try client.countTokens(input)
            }.serialized()
        }
        router.addRaw("embed") { (driver: LocalDriver, json: String, call: CallContext) throws -> String in
            let input = try parseInput(json)
            return try driver.withServer(driver.embedder, call) { (client: OpenAIClient) throws(DriverError) -> JSONValue in
                try driver.embedFitting(input, client)
            }.serialized()
        }
        router.addRaw("info") { (driver: LocalDriver, json: String, call: CallContext) throws -> String in
            driver.info().serialized()
        }
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(LocalDriver.self, host, driver) }
