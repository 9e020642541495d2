import Foundation
import Glibc

/// The REPL's line editor: raw-mode editing of one line on a terminal, with a history kept
/// across sessions. Keys, as in readline/emacs:
///   ← → (Ctrl-B/F) move · Home/End (Ctrl-A/E) · ↑ ↓ (Ctrl-P/N) history · Backspace, Delete
///   Ctrl-K kill to end · Ctrl-U kill to start · Ctrl-W kill word · Ctrl-L clear screen
///   Ctrl-C abandon the line · Ctrl-D leave (on an empty line) · Enter submit
/// The terminal is in raw mode only while a line is being read: while a turn runs it is
/// cooked again, so Ctrl-C there is a SIGINT that cancels the turn.
final class LineEditor {
    enum Result: Equatable {
        case line(String)
        /// Ctrl-C: the line was abandoned.
        case interrupted
        /// Ctrl-D on an empty line, or the input closed.
        case endOfInput
    }

    let input: Int32
    let output: Int32
    private(set) var history: [String] = []
    let historyFile: String?
    static let maxHistory = 1000

    init(input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO, historyFile: String? = LineEditor.defaultHistoryFile()) {
        self.input = input
        self.output = output
        self.historyFile = historyFile
        if let historyFile, let text = try? String(contentsOfFile: historyFile, encoding: .utf8) {
            history = text.split(separator: "\n").map(String.init).suffix(Self.maxHistory).map { $0 }
        }
    }

    /// $LLMOS_HISTORY_FILE, else ${XDG_STATE_HOME:-~/.local/state}/llmos/history.
    static func defaultHistoryFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let file = environment["LLMOS_HISTORY_FILE"] { return file.isEmpty ? nil : file }
        let state = environment["XDG_STATE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 + "/.local/state" : nil }
        return state.map { $0 + "/llmos/history" }
    }

    /// Keeps a line: not empty, not the same as the one before, and not one that starts with a
    /// space (as bash's ignorespace: a way to keep a secret out of the file).
    func remember(_ line: String) {
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty, !line.hasPrefix(" "), history.last != line else { return }
        history.append(line)
        if history.count > Self.maxHistory { history.removeFirst(history.count - Self.maxHistory) }
        guard let historyFile else { return }
        let directory = (historyFile as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(historyFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    // MARK: Reading a line

    private var buffer: [Character] = []
    private var cursor = 0
    private var prompt = ""

    func readLine(prompt: String) -> Result {
        self.prompt = prompt
        buffer = []
        cursor = 0
        var browsing = history.count   // index into history; history.count = the line being typed
        var draft: [Character] = []

        var saved = termios()
        guard tcgetattr(input, &saved) == 0 else { return fallback() }
        var raw = saved
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        raw.c_cc.6 = 1    // VMIN
        raw.c_cc.5 = 0    // VTIME
        tcsetattr(input, TCSAFLUSH, &raw)
        defer { tcsetattr(input, TCSAFLUSH, &saved) }

        put(prompt)
        var pending: [UInt8] = []
        while true {
            guard let byte = readByte() else { put("\r\n"); return .endOfInput }
            switch byte {
            case 13, 10:   // Enter
                put("\r\n")
                return .line(String(buffer))
            case 3:        // Ctrl-C
                put("^C\r\n")
                return .interrupted
            case 4:        // Ctrl-D
                if buffer.isEmpty { put("\r\n"); return .endOfInput }
                if cursor < buffer.count { buffer.remove(at: cursor); redraw() }
            case 127, 8:   // Backspace
                if cursor > 0 { cursor -= 1; buffer.remove(at: cursor); redraw() }
            case 1: cursor = 0; redraw()                     // Ctrl-A
            case 5: cursor = buffer.count; redraw()          // Ctrl-E
            case 2: if cursor > 0 { cursor -= 1; redraw() }  // Ctrl-B
            case 6: if cursor < buffer.count { cursor += 1; redraw() }   // Ctrl-F
            case 11: buffer.removeSubrange(cursor...); redraw()          // Ctrl-K
            case 21: buffer.removeSubrange(..<cursor); cursor = 0; redraw()   // Ctrl-U
            case 23:       // Ctrl-W
                var start = cursor
                while start > 0 && buffer[start - 1] == " " { start -= 1 }
                while start > 0 && buffer[start - 1] != " " { start -= 1 }
                buffer.removeSubrange(start..<cursor)
                cursor = start
                redraw()
            case 12: put("\u{1B}[H\u{1B}[2J"); redraw()      // Ctrl-L
            case 16: step(-1, &browsing, &draft)             // Ctrl-P
            case 14: step(1, &browsing, &draft)              // Ctrl-N
            case 27:       // an escape sequence
                guard let first = readByte() else { continue }
                guard first == UInt8(ascii: "[") || first == UInt8(ascii: "O") else { continue }
                var sequence: [UInt8] = []
                while let b = readByte() {
                    sequence.append(b)
                    if (64...126).contains(b) { break }
                }
                switch String(decoding: sequence, as: UTF8.self) {
                case "A": step(-1, &browsing, &draft)
                case "B": step(1, &browsing, &draft)
                case "C": if cursor < buffer.count { cursor += 1; redraw() }
                case "D": if cursor > 0 { cursor -= 1; redraw() }
                case "H", "1~", "7~": cursor = 0; redraw()
                case "F", "4~", "8~": cursor = buffer.count; redraw()
                case "3~": if cursor < buffer.count { buffer.remove(at: cursor); redraw() }
                default: break
                }
            default:
                guard byte >= 32 else { continue }
                pending.append(byte)
                // Insert once the bytes make a whole UTF-8 character.
                if let text = String(validating: pending, as: UTF8.self) {
                    pending.removeAll()
                    for character in text { buffer.insert(character, at: cursor); cursor += 1 }
                    redraw()
                } else if pending.count >= 4 {
                    pending.removeAll()
                }
            }
        }
    }

    /// Not a terminal after all: a plain line.
    private func fallback() -> Result {
        put(prompt)
        guard let line = Swift.readLine() else { return .endOfInput }
        return .line(line)
    }

    private func step(_ direction: Int, _ browsing: inout Int, _ draft: inout [Character]) {
        let next = browsing + direction
        guard next >= 0, next <= history.count else { return }
        if browsing == history.count { draft = buffer }
        browsing = next
        buffer = next == history.count ? draft : Array(history[next])
        cursor = buffer.count
        redraw()
    }

    private func redraw() {
        var text = "\r" + prompt + String(buffer) + "\u{1B}[K"
        let back = buffer.count - cursor
        if back > 0 { text += "\u{1B}[\(back)D" }
        put(text)
    }

    private func put(_ text: String) {
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            written += n
        }
    }

    private func readByte() -> UInt8? {
        var byte: UInt8 = 0
        while true {
            let n = read(input, &byte, 1)
            if n == 1 { return byte }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }
}
