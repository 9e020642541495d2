import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel
import LLMOSServe

/// `llmos serve --mcp`: the host's tools, after the operator's policy, for any MCP client.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Offer this host to other programs: MCP over standard input and output (--mcp), or HTTP (--http ADDR).",
        discussion: """
        With --mcp, llmos speaks the Model Context Protocol (revision 2025-11-25; 2025-06-18, \
        2025-03-26 and 2024-11-05 too) on standard input and output, so an MCP client can \
        start it as a server. It offers the tools of the loaded tool drivers that the policy \
        allows (tool.call); denied tools and tools that would ask are not listed, and a call \
        to one is refused with the rule that refused it, since no one can be asked. Every \
        call goes through the kernel like `llmos call`: schemas, capabilities, limits, audit. \
        Diagnostics go to standard error; nothing but protocol reaches standard output.

        With --http ADDR (e.g. 127.0.0.1:8080; port 0 picks a free one), llmos serves HTTP: \
        an OpenAI-compatible POST /v1/chat/completions whose model is an llmos agent \
        (streaming too), GET /v1/models, a JSON API (/api/processes, /api/drivers, \
        /api/grants, /api/audit), a dashboard at /, and MCP over streamable HTTP at /mcp. \
        Clients send the API key (--api-key KEY or $LLMOS_API_KEY) as Authorization: Bearer \
        KEY; a missing or wrong key is a 401. It binds to loopback unless --allow-remote. \
        See docs/HTTP.md.

        A client's configuration, for example:
          {"command": "llmos", "args": ["serve", "--mcp", "--allow", "fs.read=~/notes/**"]}

        Examples:
          llmos serve --mcp --show-tools                 what a client would be offered, and why not the rest
          llmos serve --mcp --tools 'calc.*' --tools 'text.*'
          llmos serve --mcp --tool-names underscore      calc__add instead of calc.add
          LLMOS_API_KEY=secret llmos serve --http 127.0.0.1:8080 --cpu local
        See docs/MCP.md and docs/HTTP.md.
        """)

    @OptionGroup var host: HostOptions

    @Flag(help: "Speak MCP on standard input and output (the stdio transport); with --http, MCP is served at /mcp instead.")
    var mcp = false

    @OptionGroup(title: "HTTP (--http)") var http: HTTPServeOptions

    @Option(name: .customLong("tools"), help: ArgumentHelp("Offer only tools whose driver.tool name matches GLOB (repeatable), e.g. 'calc.*', to MCP clients and (with --http) to the agent. Default: every tool of every tool driver.", valueName: "GLOB"))
    var toolPatterns: [String] = []

    @Option(name: .customLong("tool-names"), help: ArgumentHelp("How tool names look to clients: dotted (calc.add, MCP 2025-11-25) or underscore (calc__add, for clients whose models refuse dots).", valueName: "STYLE"))
    var toolNames: MCPToolNameStyle = .dotted

    @Option(name: .customLong("max-message-bytes"), help: ArgumentHelp("Refuse a message (one line) longer than this many bytes.", valueName: "N"))
    var maxMessageBytes = 16 << 20

    @Flag(name: .customLong("show-tools"), help: "Print the tools a client would be offered (and those that are not, with the rule), then exit.")
    var showTools = false

    @Flag(help: "With --show-tools: print JSON.")
    var json = false

    static let command = "llmos serve --mcp"

    /// A plain note on standard error (not a warning): what the server is doing.
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    func validate() throws {
        guard mcp || http.address != nil else {
            throw ValidationError("say what to serve: --mcp (MCP over standard input and output) or --http ADDR (chat completions, the JSON API, the dashboard and MCP at /mcp); see llmos serve --help")
        }
        if http.address == nil {
            for (flag, given) in [("--api-key", http.apiKey != nil), ("--no-auth", http.noAuth), ("--allow-remote", http.allowRemote),
                                  ("--cpu", http.cpu != nil), ("--profile", http.profile != nil)] where given {
                throw ValidationError("\(flag) is an option of --http: add --http ADDR, e.g. --http 127.0.0.1:8080")
            }
        }
        guard maxMessageBytes >= 1024 else {
            throw ValidationError("--max-message-bytes \(maxMessageBytes): at least 1024 bytes, or no initialize request fits")
        }
    }

    func run() throws {
        if http.address != nil {
            try reportingErrors { try runHTTP() }
            return
        }
        try reportingErrors {
            // Claim the protocol's descriptors before anything loads: a driver that prints
            // to stdout (or reads stdin) would corrupt the stream, so fd 1 becomes stderr
            // and fd 0 /dev/null for everyone else.
            let protocolInput = showTools ? -1 : dup(STDIN_FILENO)
            let protocolOutput = showTools ? -1 : dup(STDOUT_FILENO)
            if !showTools {
                guard protocolInput >= 0, protocolOutput >= 0 else {
                    throw CommandFailure(message: "\(Self.command): cannot take over standard input and output: \(String(cString: strerror(errno)))")
                }
                _ = fcntl(protocolInput, F_SETFD, FD_CLOEXEC)
                _ = fcntl(protocolOutput, F_SETFD, FD_CLOEXEC)
                dup2(STDERR_FILENO, STDOUT_FILENO)
                let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
                if devNull >= 0 { dup2(devNull, STDIN_FILENO); close(devNull) }
                // A client that hangs up is an end of input, not a signal.
                signal(SIGPIPE, SIG_IGN)
            }

            let kernel = try makeServerKernel()
            var options = MCPServerOptions()
            options.toolNames = toolNames
            options.toolPatterns = toolPatterns
            options.maxMessageBytes = maxMessageBytes
            let server = MCPServer(kernel: kernel, options: options)
            for warning in server.catalog.warnings { Terminal.warn(warning) }
            if showTools {
                printCatalog(server)
                return
            }
            let hidden = server.catalog.exported.count - server.catalog.offered.count
            Self.note("\(Self.command): \(server.catalog.offered.count) tools offered on stdio"
                + (hidden > 0 ? " (\(hidden) more not offered by the policy: llmos serve --mcp --show-tools says why)" : ""))
            MCPStdioTransport.run(server: server, input: protocolInput, output: protocolOutput)
        }
    }

    /// The host, as `HostOptions.makeKernel` builds it, except that `ask` has no terminal
    /// to go to (the client owns stdin and stdout) and no session grant is borrowed from
    /// the operator's terminal session: what the policy allows is what clients get.
    func makeServerKernel() throws -> Kernel {
        var configuration = KernelConfiguration(log: StandardErrorLogSink(minimumLevel: host.verbose ? .debug : .warn))
        configuration.driverConfig = try host.parsedConfig()
        ShellDefaults.applyModel(host.model, to: &configuration.driverConfig)
        try host.permissions.configure(&configuration)
        configuration.broker = CapabilityBroker(policy: try host.permissions.policy(), asker: ServerAsker(command: Self.command),
                                                context: host.permissions.context, sessionStore: MemorySessionGrantStore())
        configuration.isolation.forced = Set(host.isolate)
        let kernel = Kernel(configuration: configuration)
        let report = kernel.loadAll(from: host.searchPath)
        for failure in report.failed {
            Terminal.warn("driver not loaded: \(failure.error.message)\n  (run `llmos doctor` for the whole picture)")
        }
        return kernel
    }

    /// --show-tools: offered tools with their MCP names; the rest with the deciding rule.
    func printCatalog(_ server: MCPServer) {
        let broker = server.kernel.configuration.broker
        let offered = Set(server.catalog.offered.map(\.mcpName))
        let rows = server.catalog.exported.values.sorted { $0.mcpName < $1.mcpName }.map { tool -> (MCPTool, Bool, String) in
            let decision = broker.evaluateToolCall(tool: tool.info.name, hints: tool.info.hints, caller: "")
            return (tool, offered.contains(tool.mcpName), "\(decision.verdict.rawValue): \(decision.rule)")
        }
        if json {
            Terminal.printJSON(.array(rows.map { tool, isOffered, why in
                ["name": .string(tool.mcpName), "tool": .string(tool.info.name), "offered": .bool(isOffered), "decision": .string(why)]
            }))
            return
        }
        print(Terminal.table(["MCP NAME", "TOOL", "OFFERED", "DECISION"],
                             rows.map { tool, isOffered, why in [tool.mcpName, tool.info.name, isOffered ? "yes" : "no", why] }))
    }
}

extension MCPToolNameStyle: ExpressibleByArgument {}

