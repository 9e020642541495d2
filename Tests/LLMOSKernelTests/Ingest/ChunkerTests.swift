import Foundation
import Testing
@testable import LLMOSIngest

@Suite("ingest: kinds, extraction, chunking, walking") struct ChunkerTests {
    let markdown = """
    # Guide

    Intro paragraph about the guide.

    ## Install

    Run make test to build everything.

    ```sh
    make test

    make bench
    ```

    ## Use

    \(String(repeating: "Use the shell every day. ", count: 30))

    \(String(repeating: "Agents remember things. ", count: 30))

    \(String(repeating: "Storage keeps passages. ", count: 30))
    """

    @Test func markdownChunksFollowSectionsAndKeepFencesWhole() {
        let chunks = Chunker(maxCharacters: 800, overlapCharacters: 200).chunks(of: markdown, kind: .markdown)
        #expect(chunks.first?.headings == ["Guide"])
        let install = chunks.filter { $0.headings == ["Guide", "Install"] }
        #expect(install.count == 1, "one small section is one chunk: \(install)")
        #expect(install.first?.text.contains("make test\n\nmake bench") == true, "the blank line inside the fence stays in it")
        // No chunk mixes two sections.
        for chunk in chunks { #expect(!(chunk.text.contains("Run make test") && chunk.text.contains("Use the shell"))) }
        #expect(chunks.filter { $0.headings == ["Guide", "Use"] }.count >= 2)
    }

    @Test func noChunkIsOverBudgetAndNeighboursOverlap() {
        let chunker = Chunker(maxCharacters: 800, overlapCharacters: 400)
        let chunks = chunker.chunks(of: markdown, kind: .markdown)
        for chunk in chunks { #expect(chunk.text.count <= 800, "\(chunk.text.count)") }
        let use = chunks.filter { $0.headings == ["Guide", "Use"] }
        // The second chunk of the section starts with the end of the first.
        let carried = use[1].text.components(separatedBy: "\n\n").first!
        #expect(use[0].text.hasSuffix(carried) && carried.count <= 400 && carried.count >= 32, "\(carried)")
        #expect(use[1].lines.lowerBound <= use[0].lines.upperBound)
    }

    @Test func aLongLineIsCutAndLinesAreCounted() {
        let text = "first\n\n" + String(repeating: "x", count: 2_500) + "\nlast"
        let chunks = Chunker(maxCharacters: 1_000, overlapCharacters: 0).chunks(of: text, kind: .text)
        for chunk in chunks { #expect(chunk.text.count <= 1_000) }
        #expect(chunks.map(\.text).joined().filter { $0 == "x" }.count == 2_500, "nothing is lost")
        #expect(chunks.first?.lines == 1...1)
        #expect(chunks.last?.lines.upperBound == 4)
    }

    @Test func codeSplitsAtDefinitions() {
        let code = (0..<40).map { "func f\($0)() {\n    return \($0)\n}" }.joined(separator: "\n")
        let chunks = Chunker(maxCharacters: 200, overlapCharacters: 0).chunks(of: code, kind: .code)
        #expect(chunks.count > 1)
        for chunk in chunks { #expect(chunk.text.hasPrefix("func "), "a chunk starts at a definition: \(chunk.text)") }
    }

    @Test func unicodeIsCountedInCharacters() {
        let text = String(repeating: "日本語のテキスト。🙂 ", count: 200)
        let chunks = Chunker(maxCharacters: 300, overlapCharacters: 0).chunks(of: text, kind: .text)
        for chunk in chunks { #expect(chunk.text.count <= 300) }
        #expect(chunks.map(\.text).joined() == text.trimmingCharacters(in: .whitespaces) || chunks.count > 1)
    }

    @Test func htmlBecomesText() {
        let html = "<html><head><style>body{color:red}</style><script>alert('x')</script></head><body><h1>Title</h1><p>Fish &amp; chips</p><!-- hidden --></body></html>"
        let text = Extractor.htmlToText(html)
        #expect(text.contains("# Title"))
        #expect(text.contains("Fish & chips"))
        #expect(!text.contains("alert") && !text.contains("color:red") && !text.contains("hidden") && !text.contains("<"))
    }

    @Test func kindsByExtensionAndContent() {
        #expect(DocumentKind.of(path: "a/README.md", head: Data("# x".utf8)) == .markdown)
        #expect(DocumentKind.of(path: "main.swift", head: Data("let x = 1".utf8)) == .code)
        #expect(DocumentKind.of(path: "page.html", head: Data("<p>".utf8)) == .html)
        #expect(DocumentKind.of(path: "notes.txt", head: Data([0x66, 0x00, 0x01])) == nil, "a NUL byte: binary")
        #expect(DocumentKind.of(path: "photo.png", head: Data("text".utf8)) == nil, "unknown extension")
        #expect(DocumentKind.of(path: "fake.pdf", head: Data("hello".utf8)) == nil, "a .pdf that is not a PDF")
    }

    @Test func walkerSkipsHiddenAndBuildFoldersAndLoops() throws {
        let root = NSTemporaryDirectory() + "walker-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        for dir in ["a/b", ".git", ".build", "node_modules"] { try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        for file in ["a/one.md", "a/b/two.txt", ".git/config", ".build/x.swift", "node_modules/y.js", "z.md"] {
            try "x".write(toFile: "\(root)/\(file)", atomically: true, encoding: .utf8)
        }
        try fm.createSymbolicLink(atPath: "\(root)/a/b/loop", withDestinationPath: "\(root)/a")
        defer { try? fm.removeItem(atPath: root) }
        let found = Walker.files(under: [root, root + "/a/one.md", root + "/missing"])
        let names = found.files.map { String($0.dropFirst(root.count)) }
        #expect(names.sorted() == ["/a/b/two.txt", "/a/one.md", "/z.md"], "each file once, nothing hidden or built: \(names)")
        #expect(found.missing == [root + "/missing"])
    }
}
