import Foundation

/// What a file is, for extraction and chunking: decided by its extension, then by a look
/// at its first bytes (binary files are skipped).
public enum DocumentKind: String, Sendable, CaseIterable {
    case text, markdown, code, html, pdf

    static let codeExtensions: Set<String> = ["swift", "c", "h", "cc", "cpp", "hpp", "m", "py", "rb", "js", "ts", "tsx", "jsx",
                                              "go", "rs", "java", "kt", "scala", "sh", "bash", "zsh", "sql", "yaml", "yml",
                                              "json", "toml", "ini", "cfg", "mk", "cmake", "lua", "pl", "php", "cs", "hs", "ml"]
    static let textExtensions: Set<String> = ["txt", "text", "rst", "org", "csv", "tsv", "log", "tex", ""]

    /// The kind of `path`, or nil for a file to skip (unknown extension and not text).
    public static func of(path: String, head: Data) -> DocumentKind? {
        let name = (path as NSString).lastPathComponent
        let ext = (name as NSString).pathExtension.lowercased()
        switch ext {
        case "md", "markdown", "mdx": return .markdown
        case "html", "htm", "xhtml": return .html
        case "pdf": return head.starts(with: Array("%PDF".utf8)) ? .pdf : nil
        default: break
        }
        if codeExtensions.contains(ext) || ["Makefile", "Dockerfile", "Package.swift"].contains(name) { return looksLikeText(head) ? .code : nil }
        if textExtensions.contains(ext) { return looksLikeText(head) ? .text : nil }
        return nil
    }

    /// No NUL byte and valid UTF-8 (allowing a cut multi-byte character at the end).
    static func looksLikeText(_ head: Data) -> Bool {
        if head.contains(0) { return false }
        var bytes = Array(head)
        for _ in 0..<4 where String(validating: bytes, as: UTF8.self) == nil && !bytes.isEmpty { bytes.removeLast() }
        return String(validating: bytes, as: UTF8.self) != nil
    }
}

/// One piece of a document, ready to store: its text, where it came from, and the
/// heading path it sits under.
public struct Chunk: Sendable, Equatable {
    public var text: String
    /// 1-based first and last line in the source file.
    public var lines: ClosedRange<Int>
    /// Markdown headings (or the code's enclosing definition) above the chunk, outermost first.
    public var headings: [String]

    public init(text: String, lines: ClosedRange<Int>, headings: [String] = []) {
        self.text = text
        self.lines = lines
        self.headings = headings
    }
}
