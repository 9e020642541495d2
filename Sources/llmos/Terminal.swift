import Foundation
import LLMOSJSON

/// Output helpers: tables for people, JSON for programs, messages on stderr.
enum Terminal {
    /// Flushes standard output (fflush(stdout) is not expressible in Swift 6 mode: stdout is a C global).
    static func flush() { fflush(nil) }

    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }
    static var colors: Bool { isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data(((colors ? "\u{1B}[31merror:\u{1B}[0m " : "error: ") + message + "\n").utf8))
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data(((colors ? "\u{1B}[33mwarning:\u{1B}[0m " : "warning: ") + message + "\n").utf8))
    }

    static func printJSON(_ value: JSONValue) {
        print(value.serialized(pretty: true))
    }

    /// A plain left-aligned table; the last column may be long.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// Asks a yes/no question on the terminal; false without one.
    static func confirm(_ question: String) -> Bool {
        guard isInteractive else { return false }
        print(question + " [y/N] ", terminator: "")
        flush()
        guard let answer = readLine() else { return false }
        return ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }
}
