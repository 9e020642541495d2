/// Splits a document along its structure — Markdown sections, fenced code, paragraphs,
/// blank-line-separated code blocks — and packs the pieces into chunks of at most
/// `maxCharacters`, each starting with the last `overlapCharacters` of the one before
/// (whole blocks, or the tail of one too big to repeat, from a word boundary) when both
/// are in the same section. A block bigger than a chunk is
/// cut at line ends, and a line bigger than a chunk at character boundaries.
public struct Chunker: Sendable {
    public var maxCharacters: Int
    public var overlapCharacters: Int

    public init(maxCharacters: Int = 1_200, overlapCharacters: Int = 200) {
        self.maxCharacters = max(64, maxCharacters)
        self.overlapCharacters = max(0, min(overlapCharacters, self.maxCharacters / 2))
    }

    /// A run of lines that belongs together, under its section's headings.
    struct Block {
        var lines: [Substring]
        var first: Int
        var headings: [String]
        var sectionStart: Bool
        var text: String { lines.joined(separator: "\n") }
        var last: Int { first + lines.count - 1 }
    }

    public func chunks(of text: String, kind: DocumentKind) -> [Chunk] {
        pack(blocks(of: text, kind: kind))
    }

    func blocks(of text: String, kind: DocumentKind) -> [Block] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        var blocks: [Block] = []
        var headings: [String] = []
        var current: [Substring] = []
        var start = 1
        var newSection = true
        var inFence = false
        func flush(next: Int) {
            while let last = current.last, last.allSatisfy(\.isWhitespace) { current.removeLast() }
            if !current.isEmpty {
                blocks.append(Block(lines: current, first: start, headings: headings, sectionStart: newSection))
                newSection = false
            }
            current = []
            start = next
        }
        for (offset, line) in lines.enumerated() {
            let number = offset + 1
            let blank = line.allSatisfy(\.isWhitespace)
            if kind == .markdown || kind == .html {
                if line.hasPrefix("```") || line.hasPrefix("~~~") {
                    if !inFence { flush(next: number) }
                    inFence.toggle()
                    current.append(line)
                    if !inFence { flush(next: number + 1) }
                    continue
                }
                if !inFence, let level = Self.headingLevel(line) {
                    flush(next: number)
                    let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                    headings = Array(headings.prefix(level - 1)) + [title]
                    newSection = true
                    current = [line]
                    continue
                }
            }
            if inFence { current.append(line); continue }
            if blank {
                flush(next: number + 1)
                continue
            }
            // In code, a definition at the left margin starts a block even without a blank line before it.
            if kind == .code, !current.isEmpty, Self.startsDefinition(line) { flush(next: number) }
            if current.isEmpty { start = number }
            current.append(line)
        }
        flush(next: lines.count + 1)
        return blocks
    }

    static func headingLevel(_ line: Substring) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes) else { return nil }
        let rest = line.dropFirst(hashes)
        return rest.isEmpty || rest.first == " " ? hashes : nil
    }

    static let definitionWords = ["func ", "def ", "class ", "struct ", "enum ", "protocol ", "extension ", "fn ", "impl ",
                                  "pub fn ", "public ", "private ", "static ", "function ", "interface ", "type ", "int ",
                                  "void ", "export "]

    static func startsDefinition(_ line: Substring) -> Bool {
        guard let first = line.first, !first.isWhitespace, first != "}", first != ")" else { return false }
        return definitionWords.contains { line.hasPrefix($0) }
    }

    func pack(_ blocks: [Block]) -> [Chunk] {
        var chunks: [Chunk] = []
        var parts: [Block] = []
        var size = 0
        func emit() {
            guard !parts.isEmpty else { return }
            let text = parts.map(\.text).joined(separator: "\n\n")
            chunks.append(Chunk(text: text, lines: parts[0].first...parts[parts.count - 1].last, headings: parts[0].headings))
        }
        /// After emitting, keep the trailing whole blocks that fit in the overlap, and leave
        /// room for the next block (`room` characters).
        func carryOver(room: Int) {
            let overlapCharacters = min(self.overlapCharacters, room)
            var kept: [Block] = []
            var keptSize = 0
            for block in parts.reversed() {
                let length = block.text.count + 2
                if keptSize + length > overlapCharacters || kept.count + 1 == parts.count { break }
                kept.insert(block, at: 0)
                keptSize += length
            }
            // A last block too big to repeat whole: its tail, from a word boundary.
            if kept.isEmpty, overlapCharacters >= 32, let last = parts.last, parts.count > 0 {
                let text = last.text
                var tail = text.suffix(overlapCharacters)
                if tail.count < text.count, let space = tail.firstIndex(where: \.isWhitespace) { tail = tail[tail.index(after: space)...] }
                if !tail.isEmpty, tail.count < text.count {
                    kept = [Block(lines: [Substring(tail)], first: last.last, headings: last.headings, sectionStart: false)]
                    keptSize = tail.count + 2
                }
            }
            parts = kept
            size = keptSize
        }
        for block in blocks.flatMap(split) {
            let length = block.text.count + (parts.isEmpty ? 0 : 2)
            if block.sectionStart || block.headings != parts.last?.headings {
                emit()
                parts = []
                size = 0
            } else if size + length > maxCharacters {
                emit()
                carryOver(room: maxCharacters - block.text.count - 2)
            }
            size += block.text.count + (parts.isEmpty ? 0 : 2)
            parts.append(block)
        }
        emit()
        return chunks
    }

    /// A block no bigger than a chunk: cut at line ends, a long line at characters.
    func split(_ block: Block) -> [Block] {
        if block.text.count <= maxCharacters { return [block] }
        var pieces: [Block] = []
        var lines: [Substring] = []
        var size = 0
        var first = block.first
        for (offset, line) in block.lines.enumerated() {
            let number = block.first + offset
            var rest = line
            while rest.count > maxCharacters {
                if !lines.isEmpty { pieces.append(Block(lines: lines, first: first, headings: block.headings, sectionStart: false)) }
                let cut = rest.index(rest.startIndex, offsetBy: maxCharacters)
                pieces.append(Block(lines: [rest[..<cut]], first: number, headings: block.headings, sectionStart: false))
                rest = rest[cut...]
                lines = []
                size = 0
                first = number
            }
            if size + rest.count + 1 > maxCharacters, !lines.isEmpty {
                pieces.append(Block(lines: lines, first: first, headings: block.headings, sectionStart: false))
                lines = []
                size = 0
            }
            if lines.isEmpty { first = number }
            lines.append(rest)
            size += rest.count + 1
        }
        if !lines.isEmpty { pieces.append(Block(lines: lines, first: first, headings: block.headings, sectionStart: false)) }
        if block.sectionStart, !pieces.isEmpty { pieces[0].sectionStart = true }
        return pieces
    }
}
