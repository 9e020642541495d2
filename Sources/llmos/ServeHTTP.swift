import ArgumentParser
import Foundation
import LLMOSHTTP
import LLMOSJSON
import LLMOSKernel
import LLMOSServe

/// The options of `llmos serve --http`: where, the key, and the agent that is the model.
struct HTTPServeOptions: ParsableArguments {
    @Option(name: .customLong("http"), help: ArgumentHelp("Serve HTTP on HOST:PORT (default host 127.0.0.1; port 0 picks a free one, printed at start).", valueName: "ADDR"))
    var address: String?

    @Option(name: .customLong("api-key"), help: ArgumentHelp("The key clients must send (Authorization: Bearer KEY). Default: $LLMOS_API_KEY. Prefer the variable: a command line is visible to other users.", valueName: "KEY"))
    var apiKey: String?

    @Flag(name: .customLong("no-auth"), help: "Serve without a key (loopback only).")
    var noAuth = false

    @Flag(name: .customLong("allow-remote"), help: "Allow binding to an address other than loopback (there is no TLS: put a TLS proxy in front).")
    var allowRemote = false

    @Option(name: .customLong("profile"), help: ArgumentHelp("The agent clients get as model \"llmos\": a profile of the config file (see llmos run --help).", valueName: "NAME"))
    var profile: String?

    @Option(name: .customLong("cpu"), help: ArgumentHelp("The agent's cpu driver (default: $LLMOS_CPU, else local). Every loaded cpu driver is offered as model llmos/NAME too.", valueName: "NAME"))
    var cpu: String?

    @Option(name: .customLong("memory"), help: ArgumentHelp("The agent's memory driver (default window).", valueName: "NAME"))
    var memory: String?

    @Option(name: .customLong("storage"), help: ArgumentHelp("A storage driver the agent retrieves from (default none).", valueName: "NAME"))
    var storage: String?

    @Option(name: .customLong("collection"), help: ArgumentHelp("The collection of --storage (default docs).", valueName: "NAME"))
    var collection: String?

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("At most N model turns per request (default 12).", valueName: "N"))
    var maxSteps: Int?

    @Option(name: .customLong("max-cost"), help: ArgumentHelp("At most this many US dollars per request.", valueName: "USD"))
    var maxCost: Double?

    @Option(name: .customLong("cpu-slots"), help: ArgumentHelp("Model calls at once on the cpu driver.", valueName: "N"))
    var cpuSlots: Int?

    @Option(name: .customLong("max-agents"), help: ArgumentHelp("Agent runs at once; more requests wait (default 4).", valueName: "N"))
    var maxAgents = 4

    func validate() throws {
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1, got \(maxSteps)") }
        if let maxCost, !(maxCost > 0) { throw ValidationError("--max-cost must be a positive number of dollars, got \(maxCost)") }
        if let cpuSlots, cpuSlots < 1 { throw ValidationError("--cpu-slots must be at least 1, got \(cpuSlots)") }
        guard maxAgents >= 1 else { throw ValidationError("--max-agents must be at least 1, got \(maxAgents)") }
        if let address { _ = try Self.parse(address) }
    }

    /// "127.0.0.1:8080", "[::1]:8080", "localhost:0", ":8080" or "8080".
    static func parse(_ address: String) throws -> (host: String, port: Int) {
        var host = "127.0.0.1"
        var portText = address
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { throw ValidationError("--http \(address): an IPv6 address goes in brackets: [::1]:8080") }
            host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ValidationError("--http \(address): expected [HOST]:PORT, e.g. [::1]:8080") }
            portText = String(rest.dropFirst())
        } else if let colon = address.lastIndex(of: ":") {
            let name = String(address[..<colon])
            if name.contains(":") { throw ValidationError("--http \(address): an IPv6 address goes in brackets: [::1]:8080") }
            if !name.isEmpty { host = name }
            portText = String(address[address.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ValidationError("--http \(address): the port must be a number from 0 to 65535 (0 picks a free one), e.g. 127.0.0.1:8080")
        }
        return (host, port)
    }

    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }
}

extension Serve {
    static let httpCommand = "llmos serve --http"

    func runHTTP() throws {
        let (bindHost, port) = try HTTPServeOptions.parse(http.address ?? "")
        let environmentKey = ProcessInfo.processInfo.environment["LLMOS_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let key = http.apiKey ?? environmentKey
        if http.noAuth && key != nil && http.apiKey != nil {
            throw CommandFailure(message: "--api-key and --no-auth contradict each other: give one", exitCode: 64)
        }
        let loopback = HTTPServeOptions.isLoopback(bindHost)
        if !loopback && !http.allowRemote {
            throw CommandFailure(message: "--http \(bindHost):\(port) is not a loopback address: add --allow-remote to serve beyond this machine (no TLS: put a TLS proxy in front), or bind 127.0.0.1", exitCode: 64)
        }
        if http.noAuth && !loopback {
            throw CommandFailure(message: "--no-auth is for loopback only: a server reachable from elsewhere needs --api-key KEY or LLMOS_API_KEY", exitCode: 64)
        }
        if key == nil && !http.noAuth {
            throw CommandFailure(message: "\(Self.httpCommand) needs an API key for its clients: --api-key KEY or LLMOS_API_KEY=KEY (or --no-auth, on loopback only)", exitCode: 64)
        }
        if let key, key.count < 8 { Terminal.warn("the API key is shorter than 8 characters: easy to guess") }
        if !loopback { Terminal.warn("serving on \(bindHost):\(port), beyond this machine, without TLS: anyone who can reach it and has the key runs agents and tools here") }

        let agent = try AgentCommandOptions.resolve(
            profile: try http.profile.map { try AgentProfile.load(named: $0) }, cpu: http.cpu, tools: toolPatterns,
            memory: http.memory, storage: http.storage, collection: http.collection,
            maxSteps: http.maxSteps, maxCost: http.maxCost, cpuSlots: http.cpuSlots)
        let kernel = try agent.makeKernel(host, serverCommand: Self.httpCommand)
        agent.warnIfNoTools(kernel)
        let control = ControlServer.start(kernel: kernel)
        defer { control?.stop() }

        var options = HTTPServerOptions()
        options.host = bindHost
        options.port = port
        options.apiKey = http.noAuth ? nil : key
        options.maxConcurrentAgents = http.maxAgents
        options.workspace = kernel.configuration.workspace
        let budgets = AgentBudgets(maxSteps: agent.maxSteps, maxCostUSD: agent.maxCostUSD)
        var models = [HTTPAgentModel(id: "llmos", drivers: agent.driverSet, budgets: budgets,
                                     description: "the llmos agent" + (agent.profile.map { " of profile \($0)" } ?? "") + ": cpu \(agent.cpu), tools \(agent.tools.joined(separator: ","))")]
        for cpu in kernel.loadedDrivers.filter({ $0.deviceClass == .cpu }).map(\.name).sorted() {
            var drivers = agent.driverSet
            drivers.cpu = cpu
            models.append(HTTPAgentModel(id: "llmos/\(cpu)", drivers: drivers, budgets: budgets, description: "the llmos agent on cpu \(cpu)"))
        }
        options.models = models
        var mcpOptions = MCPServerOptions()
        mcpOptions.toolNames = toolNames
        mcpOptions.toolPatterns = toolPatterns
        mcpOptions.maxMessageBytes = maxMessageBytes
        options.mcp = mcpOptions

        let server = LLMOSHTTPServer(kernel: kernel, options: options)
        for warning in server.mcpWarnings { Terminal.warn(warning) }
        if showTools {
            printCatalog(MCPServer(kernel: kernel, options: mcpOptions))
            return
        }
        signal(SIGPIPE, SIG_IGN)
        let auth = options.apiKey == nil ? "no key (--no-auth)" : "API key required"
        let modelNames = models.map(\.id).joined(separator: ", ")
        let toolCount = server.mcpToolCount
        try server.run { boundHost, boundPort in
            let shown = boundHost.contains(":") ? "[\(boundHost)]" : boundHost
            Self.note("\(Self.httpCommand): listening on http://\(shown):\(boundPort) (\(auth)); models: \(modelNames); MCP at /mcp (\(toolCount) tools); dashboard at /")
        }
    }
}
