// Free text to an FTS5 query. A question as a person types it ("what's the BM25 k1
// value?") is not FTS5 syntax (quotes, -, :, *, AND/OR/NOT/NEAR mean things there), so
// it is split into words, each quoted as a literal term, and the terms joined with OR:
// BM25 then ranks documents by how many rare query words they hold, and none of the
// caller's text is ever read as an operator.

enum TextQuery {
    static let maxTerms = 64

    /// The FTS5 MATCH expression for `text`, or nil when it has no word at all.
    static func match(_ text: String) -> String? {
        var terms: [String] = []
        var seen = Set<String>()
        var current = ""
        func flush() {
            if !current.isEmpty {
                let term = current.lowercased()
                if seen.insert(term).inserted && terms.count < maxTerms { terms.append(term) }
                current = ""
            }
        }
        for scalar in text.unicodeScalars {
            // Letters, digits and marks, as FTS5's unicode61 tokenizer reads them.
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar.properties.generalCategory == .nonspacingMark {
                current.unicodeScalars.append(scalar)
            } else {
                flush()
            }
        }
        flush()
        guard !terms.isEmpty else { return nil }
        return terms.map { "\"\($0)\"" }.joined(separator: " OR ")
    }
}
