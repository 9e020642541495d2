import Foundation

/// Replaces section `key` of the markdown file `target` (the text between its begin and end
/// markers), or appends it under `heading` when the file has none yet: each benchmark owns
/// its section, and a run rewrites only the sections it measured.
func writeBenchmarkSection(_ key: String, heading: String, markdown: String, into target: String, namingMachine: Bool = true) {
    let begin = "<!-- llmos-bench:\(key):begin -->", end = "<!-- llmos-bench:\(key):end -->"
    let measured = "Measured \(ISO8601DateFormatter().string(from: Date()))" + (namingMachine ? " on \(machine())" : "") + " by `make bench`."
    let block = "\(begin)\n\(measured)\n\n\(markdown)\n\(end)"
    var text = (try? String(contentsOfFile: target, encoding: .utf8)) ?? "# Benchmarks\n\n"
    if let a = text.range(of: begin), let b = text.range(of: end) {
        text.replaceSubrange(a.lowerBound..<b.upperBound, with: block)
    } else {
        text += "\n## \(heading)\n\n\(block)\n"
    }
    try! text.write(toFile: target, atomically: true, encoding: .utf8)
}
