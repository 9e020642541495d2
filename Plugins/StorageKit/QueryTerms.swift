// Free text to search terms. A question as a person types it ("what's the BM25 k1
// value?") is not a query language (quotes, -, :, *, AND/OR/NOT mean things in FTS5's
// and PostgreSQL's), so it is split into words, each a literal term: none of the
// caller's text is ever read as an operator. Each driver joins the terms with OR in its
// own syntax, and ranks documents by how many rare query words they hold.

public enum QueryTerms {
    public static let maxTerms = 64

    /// The distinct lowercased words of `text` (letters, digits and marks, as FTS5's
    /// unicode61 tokenizer reads them), at most `maxTerms`, in order.
    public static func words(_ text: String) -> [String] {
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
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar.properties.generalCategory == .nonspacingMark {
                current.unicodeScalars.append(scalar)
            } else {
                flush()
            }
        }
        flush()
        return terms
    }

    /// The FTS5 MATCH expression: each word quoted, joined with OR; nil without a word.
    public static func fts5Match(_ text: String) -> String? {
        let terms = words(text)
        guard !terms.isEmpty else { return nil }
        return terms.map { "\"\($0)\"" }.joined(separator: " OR ")
    }
}
