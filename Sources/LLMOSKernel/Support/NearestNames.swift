/// "Did you mean …?" for tool and driver names: the candidates closest to a
/// misspelled name by edit distance, so a model (or a person) can correct itself.
public enum NearestNames {
    /// Up to `limit` candidates within a distance that scales with the name's length,
    /// best first; candidates sharing the typed driver prefix are preferred on ties.
    static func nearest(to name: String, in candidates: some Sequence<String>, limit: Int = 3) -> [String] {
        let target = Array(name.lowercased().utf8)
        let maxDistance = max(2, target.count / 3)
        var scored: [(String, Int)] = []
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.lowercased().utf8))
            // A name that contains the typed text (or the reverse) is a good hint too.
            let contains = candidate.lowercased().contains(name.lowercased()) || name.lowercased().contains(candidate.lowercased())
            if distance <= maxDistance || contains { scored.append((candidate, contains ? min(distance, maxDistance) : distance)) }
        }
        scored.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        // Only the closest are worth naming: "calc.addd" suggests calc.add, not calc.div too.
        guard let best = scored.first?.1 else { return [] }
        return scored.filter { $0.1 == best }.prefix(limit).map(\.0)
    }

    /// Damerau–Levenshtein (optimal string alignment) distance: a swap of two
    /// neighbouring letters, the commonest typo, counts as one edit.
    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }

    /// " — did you mean calc.add?" or "" when nothing is close.
    public static func suggestion(for name: String, in candidates: some Sequence<String>) -> String {
        let near = nearest(to: name, in: candidates)
        switch near.count {
        case 0: return ""
        case 1: return " — did you mean \(near[0])?"
        default: return " — did you mean \(near.dropLast().joined(separator: ", ")) or \(near.last!)?"
        }
    }
}
