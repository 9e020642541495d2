import ArgumentParser
import Foundation
import LLMOSJSON
import LLMOSKernel

struct Tools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "Every tool of every loaded driver, with its parameters (--json: full schemas).")
    @OptionGroup var host: HostOptions
    @Flag(help: "Print JSON for programs: each tool with its input and output schema.") var json = false
    @Argument(help: "Only tools whose name starts with this (e.g. calc or calc.add).") var prefix: String?

    func run() throws {
        let (kernel, _) = try host.makeKernel()
        let tools = kernel.tools.filter { prefix == nil || $0.name.hasPrefix(prefix!) }
        if json {
            Terminal.printJSON(.array(tools.map(\.json)))
            return
        }
        if tools.isEmpty {
            print(prefix == nil ? "No tools: no drivers are loaded (see `llmos doctor`)." : "No tools start with \(prefix!).")
            return
        }
        for tool in tools {
            var flags: [String] = []
            if tool.hints.readOnly { flags.append("read-only") }
            if tool.hints.destructive { flags.append("destructive") }
            if tool.hints.needsConfirmation { flags.append("asks") }
            print("\(tool.name)(\(ToolsCommand.parameterSummary(tool.inputSchema)))\(flags.isEmpty ? "" : "  [\(flags.joined(separator: ", "))]")")
            print("    \(tool.description)")
        }
    }
}

enum ToolsCommand {
    /// "a: number, b: number, ignore_case?: boolean" from an object schema.
    static func parameterSummary(_ schema: JSONValue) -> String {
        guard let properties = schema["properties"]?.objectValue else { return "" }
        let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        return properties.map { key, value in
            let type: String
            if let t = value["type"]?.stringValue { type = t }
            else if let e = value["enum"]?.arrayValue { type = e.map { $0.serialized() }.joined(separator: "|") }
            else { type = "any" }
            return "\(key)\(required.contains(key) ? "" : "?"): \(type)"
        }.joined(separator: ", ")
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call a tool with JSON input and print its JSON output.",
        discussion: """
        The input is checked against the tool's schema before the driver runs; an unknown tool \
        name is answered with the nearest real ones. Examples:
          llmos call calc.add '{"a": 1, "b": 2}'
          llmos call calc.eval '{"expression": "2 * (3 + 4)"}'
          echo '{"text": "hello world"}' | llmos call text.count -
        """)
    @OptionGroup var host: HostOptions
    @Argument(help: "The tool, as driver.tool.") var tool: String
    @Argument(help: "The input: a JSON object, or - to read it from standard input.") var input: String = "{}"
    @Flag(help: "Print errors as JSON on standard output too: {\"error\": {...}}.") var json = false
    @Flag(help: "Pretty-print the output.") var pretty = false

    func run() throws {
        let (kernel, _) = try host.makeKernel()
        let text = input == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : input
        do {
            let result = try kernel.call(tool, input: text)
            if pretty, let value = try? JSON.parse(result.output) {
                print(value.serialized(pretty: true))
            } else {
                print(result.output)
            }
        } catch {
            if json { Terminal.printJSON(["error": error.json]) }
            Terminal.error(error.message)
            throw ExitCode(1)
        }
    }
}
