import ArgumentParser
import Foundation
import LLMOSDigest
import LLMOSIngest
import LLMOSJSON
import LLMOSKernel

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store files and directories in a collection, chunked, for `llmos search` and agents' --storage.",
        discussion: """
        Text, Markdown, source code, HTML (as text) and PDF (through pdftotext, from poppler-utils) \
        are split along their structure (sections, paragraphs, code blocks) into chunks with \
        overlap. Chunks are deduplicated by content hash; each batch is one transaction, and a \
        file counts as stored only once all its chunks are, so an interrupted ingest is resumed \
        by running the same command again (unchanged files are skipped). Examples:
          llmos ingest docs/ README.md
          llmos ingest ~/notes --collection notes --embed none   # lexical only, fastest
          llmos search "how are drivers isolated"
        """)
    @OptionGroup var host: HostOptions
    @OptionGroup var store: StorageOptions
    @Argument(help: "Files and directories to store (directories recursively; hidden ones and build folders skipped).")
    var paths: [String]
    @Option(help: "The largest chunk, in characters.") var chunkCharacters = 1_200
    @Option(help: "How much of the previous chunk (whole blocks) starts the next, in characters.") var overlapCharacters = 200
    @Option(help: "Chunks per transaction.") var batch = 64
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give at least one file or directory to ingest") }
        guard batch > 0 else { throw ValidationError("--batch: at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let kernel = try store.kernel(host, writing: true)
            let found = Walker.files(under: paths)
            if !found.missing.isEmpty {
                throw CommandFailure(message: "no such file or directory: \(found.missing.joined(separator: ", "))")
            }
            var ingestor = Ingestor(kernel: kernel, store: store, chunker: Chunker(maxCharacters: chunkCharacters, overlapCharacters: overlapCharacters),
                                    batch: batch, progress: ProgressBar(enabled: !json && isatty(2) != 0))
            if store.embed == nil && !json {
                Terminal.warn("no embedding model (`make models` sets up the local one; or --embed TOOL): storing for text search (BM25) only")
            }
            let summary = try ingestor.ingest(found.files)
            if json {
                Terminal.printJSON(summary.json(collection: store.collection))
            } else {
                print(summary.text(collection: store.collection))
                for (path, reason) in summary.skipped.prefix(20) { print("  skipped \(path): \(reason)") }
                if summary.skipped.count > 20 { print("  … and \(summary.skipped.count - 20) more skipped") }
            }
        }
    }
}

/// Ingest's work: file by file, chunks in batches of one transaction each, then the file's
/// record in the side collection (the mark that it is complete).
struct Ingestor {
    let kernel: Kernel
    let store: StorageOptions
    let chunker: Chunker
    let batch: Int
    var progress: ProgressBar

    struct Summary {
        var files = 0, unchanged = 0, chunks = 0, inserted = 0, duplicates = 0, bytes = 0
        var skipped: [(String, String)] = []
        var seconds = 0.0

        func json(collection: String) -> JSONValue {
            ["collection": .string(collection), "files": .int(Int64(files)), "unchanged": .int(Int64(unchanged)),
             "chunks": .int(Int64(chunks)), "inserted": .int(Int64(inserted)), "duplicates": .int(Int64(duplicates)),
             "bytes": .int(Int64(bytes)), "seconds": .double(seconds),
             "skipped": .array(skipped.map { ["path": .string($0.0), "reason": .string($0.1)] })]
        }

        func text(collection: String) -> String {
            let rate = seconds > 0 ? Int(Double(bytes) / seconds) : 0
            return "\(collection): \(files) files stored (\(chunks) chunks: \(inserted) new, \(duplicates) already there), "
                + "\(unchanged) unchanged, \(skipped.count) skipped; \(ByteCount.text(bytes)) in \(String(format: "%.1f", seconds)) s (\(ByteCount.text(rate))/s)"
        }
    }

    mutating func ingest(_ files: [String]) throws -> Summary {
        var summary = Summary()
        let start = Date()
        let sizes = files.map { ((try? FileManager.default.attributesOfItem(atPath: $0)[.size]) as? Int) ?? 0 }
        progress.start(total: sizes.reduce(0, +))
        defer { progress.finish() }
        for (file, size) in zip(files, sizes) {
            defer { progress.advance(by: size, label: (file as NSString).lastPathComponent) }
            guard let data = FileManager.default.contents(atPath: file) else { summary.skipped.append((file, "unreadable")); continue }
            guard let kind = DocumentKind.of(path: file, head: data.prefix(4096)) else { summary.skipped.append((file, "not a text, Markdown, code, HTML or PDF file")); continue }
            var hasher = SHA256()
            hasher.update(Array(data))
            let hash = SHA256.hex(of: hasher.finalize())
            if try recordedHash(of: file) == hash { summary.unchanged += 1; continue }
            let text: String
            do { text = try Extractor.text(of: data, kind: kind, path: file) } catch {
                summary.skipped.append((file, "\(error)")); continue
            }
            // A changed file: its old chunks go first (a crash after this redoes the file).
            // Always, since a killed run may have left part of an older version.
            do {
                _ = try kernel.storageCall("\(store.storage).delete", ["collection": .string(store.collection), "filter": ["source": .string(file)]])
            } catch let error as LLMOSError where error.code == .notFound {}   // the collection's first put creates it
            let chunks = chunker.chunks(of: text, kind: kind)
            for start in stride(from: 0, to: chunks.count, by: batch) {
                let documents: [JSONValue] = chunks[start..<min(chunks.count, start + batch)].map { chunk in
                    var metadata: JSONObject = ["source": .string(file), "kind": .string(kind.rawValue),
                                                "line_start": .int(Int64(chunk.lines.lowerBound)), "line_end": .int(Int64(chunk.lines.upperBound))]
                    if !chunk.headings.isEmpty { metadata["section"] = .string(chunk.headings.joined(separator: " > ")) }
                    return ["text": .string(chunk.text), "metadata": .object(metadata)]
                }
                let out = try kernel.storageCall("\(store.storage).put", ["collection": .string(store.collection), "documents": .array(documents)])
                summary.inserted += Int(out["inserted"]?.int64Value ?? 0)
                summary.duplicates += Int(out["duplicates"]?.int64Value ?? 0)
            }
            _ = try kernel.storageCall("\(store.storage).put", ["collection": .string(store.filesCollection), "documents": [
                ["id": .string(file), "text": .string(hash),
                 "metadata": ["source": .string(file), "chunks": .int(Int64(chunks.count)), "bytes": .int(Int64(data.count))]]]])
            summary.files += 1
            summary.chunks += chunks.count
            summary.bytes += data.count
        }
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// The content hash the side collection holds for `file`, if it was stored completely.
    func recordedHash(of file: String) throws -> String? {
        do {
            let out = try kernel.storageCall("\(store.storage).get", ["collection": .string(store.filesCollection), "ids": [.string(file)]])
            return out["documents"]?.arrayValue?.first?["text"]?.stringValue
        } catch let error as LLMOSError where error.code == .notFound {
            return nil   // no side collection yet: a first ingest
        }
    }
}

enum ByteCount {
    static func text(_ bytes: Int) -> String {
        bytes >= 1_048_576 ? String(format: "%.1f MB", Double(bytes) / 1_048_576)
            : bytes >= 1024 ? String(format: "%.1f kB", Double(bytes) / 1024) : "\(bytes) B"
    }
}

/// A one-line progress bar on standard error, with rate and time left; silent when
/// standard error is not a terminal.
struct ProgressBar {
    let enabled: Bool
    var total = 0, done = 0
    var started = Date()
    var lastDraw = Date.distantPast

    mutating func start(total: Int) {
        self.total = max(total, 1)
        started = Date()
    }

    mutating func advance(by bytes: Int, label: String) {
        done += bytes
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done >= total else { return }
        lastDraw = Date()
        let fraction = min(1, Double(done) / Double(total))
        let elapsed = Date().timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let left = rate > 0 ? Double(total - done) / rate : 0
        let width = 28
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = "\(bar) \(Int(fraction * 100))% \(ByteCount.text(done)) of \(ByteCount.text(total))  \(ByteCount.text(Int(rate)))/s  "
            + "\(Self.duration(left)) left  \(label.prefix(30))"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func duration(_ seconds: Double) -> String {
        seconds >= 3600 ? String(format: "%dh%02dm", Int(seconds) / 3600, Int(seconds) % 3600 / 60)
            : seconds >= 60 ? String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60) : String(format: "%ds", Int(seconds.rounded(.up)))
    }
}
