import LLMOSJSON

/// When the definitions of every tool a run may use do not fit their share of the prompt
/// (88 tools are about 12,000 tokens; a small local model has 4,096 in all), the model is
/// shown the tools most relevant to the task, ranked by the words and symbols the task
/// shares with each tool's name and description, as many as fit. The others stay callable:
/// a model that names one gets it, and a wrong name is answered with the nearest real ones
/// from all of them. (Issue 7's memory drivers may replace this with retrieval.)
public enum ToolSelection {
    /// Lowercased words of three letters or more, cut to their first five letters (a crude
    /// stem: "divided" and "divide" meet), numbers, and the arithmetic symbols.
    static func terms(_ text: String) -> Set<String> {
        var result = Set<String>()
        var word = ""
        func flush() {
            if word.count >= 3 || (!word.isEmpty && word.allSatisfy(\.isNumber)) { result.insert(String(word.prefix(5))) }
            word = ""
        }
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                word.append(character)
            } else {
                flush()
                if "*+-/^%".contains(character) { result.insert(String(character)) }
            }
        }
        flush()
        return result.subtracting(stopWords)
    }

    static let stopWords: Set<String> = ["the", "and", "what", "that", "this", "with", "from", "for", "are", "you",
                                         "your", "can", "how", "into", "give", "tell", "please", "there", "which", "when"]

    /// The indexes of the tools to show, in registry order: the most relevant first until
    /// `budgetTokens` is spent (at least one tool when any fits).
    public static func select(task: String, specs: [JSONValue], budgetTokens: Int) -> [Int] {
        let costs = specs.map { ContextWindow.estimate($0.serialized()) }
        if 8 + costs.reduce(0, +) <= budgetTokens { return Array(specs.indices) }
        let wanted = terms(task)
        let scores: [Int] = specs.map { spec in
            let name = terms((spec["name"]?.stringValue ?? "").replacingOccurrences(of: ".", with: " ").replacingOccurrences(of: "_", with: " "))
            let description = terms(spec["description"]?.stringValue ?? "")
            return 3 * wanted.intersection(name).count + wanted.intersection(description).count
        }
        let ranked = specs.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        var chosen: [Int] = []
        var spent = 8
        for index in ranked where scores[index] > 0 || chosen.isEmpty {
            guard spent + costs[index] <= budgetTokens else { continue }
            chosen.append(index)
            spent += costs[index]
        }
        return chosen.sorted()
    }
}
