import Foundation

/// Text out of a file of a known kind. HTML loses its markup (script and style with their
/// content); PDF goes through pdftotext (poppler-utils) when it is installed.
public enum Extractor {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func text(of data: Data, kind: DocumentKind, path: String) throws -> String {
        switch kind {
        case .text, .markdown, .code:
            return String(decoding: data, as: UTF8.self)
        case .html:
            return htmlToText(String(decoding: data, as: UTF8.self))
        case .pdf:
            return try pdfToText(path: path)
        }
    }

    /// The visible text of an HTML page, a line per block element.
    public static func htmlToText(_ html: String) -> String {
        var text = html
        for pattern in ["(?is)<(script|style|noscript|template)\\b.*?</\\1\\s*>", "(?s)<!--.*?-->"] {
            text = text.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        text = text.replacingOccurrences(of: "(?i)<h([1-6])[^>]*>", with: "\n\n# ", options: .regularExpression)
        text = text.replacingOccurrences(of: "(?i)</?(p|div|br|li|tr|h[1-6]|section|article|pre|blockquote|table|ul|ol)\\b[^>]*>",
                                         with: "\n", options: .regularExpression)
        text = text.replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)
        let entities = ["&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'", "&apos;": "'", "&nbsp;": " "]
        for (entity, value) in entities { text = text.replacingOccurrences(of: entity, with: value) }
        text = text.replacingOccurrences(of: "[ \\t]+", with: " ", options: .regularExpression)
        text = text.replacingOccurrences(of: "\\n\\s*\\n\\s*\\n+", with: "\n\n", options: .regularExpression)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// pdftotext's path, if installed.
    public static let pdftotext: String? = ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func pdfToText(path: String) throws -> String {
        guard let tool = pdftotext else {
            throw Failure(description: "\(path): a PDF, and pdftotext is not installed (apt-get install poppler-utils)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-layout", "-enc", "UTF-8", path, "-"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(path): pdftotext failed (status \(process.terminationStatus)): \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\u{0C}", with: "\n\n")
    }
}
