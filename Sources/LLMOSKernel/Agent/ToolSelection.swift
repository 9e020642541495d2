import Foundation
import LLMOSJSON

/// When the definitions of every tool a run may use do not fit their share of the prompt
/// (88 tools are about 12,000 tokens; a small local model has 4,096 in all), the model is
/// shown the tools most relevant to the task, ranked by the words and symbols the task
/// shares with each tool's name and description, as many as fit. The others stay callable:
/// a model that names one gets it, and a wrong name is answered with the nearest real ones
/// from all of them, and the model can ask for more with `tools.search` (AgentToolbox).
public enum ToolSelection {
    /// Lowercased words of three letters or more, cut to their first five letters (a crude
    /// stem: "divided" and "divide" meet), numbers, and arithmetic operators — a symbol with
    /// no other symbol beside it ("a * b", "6*7"), so that a glob's "**/*.md" is not one.
    static func terms(_ text: String) -> Set<String> {
        var result = Set<String>()
        var word = ""
        func flush() {
            if word.count >= 3 || (!word.isEmpty && word.allSatisfy(\.isNumber)) { result.insert(String(word.prefix(5))) }
            word = ""
        }
        let characters = Array(text.lowercased())
        let symbols: Set<Character> = ["*", "+", "-", "/", "^", "%", ".", "="]
        for (i, character) in characters.enumerated() {
            if character.isLetter || character.isNumber {
                word.append(character)
                continue
            }
            flush()
            guard "*+-/^%".contains(character) else { continue }
            let before = i > 0 ? characters[i - 1] : " ", after = i + 1 < characters.count ? characters[i + 1] : " "
            if !symbols.contains(before) && !symbols.contains(after) { result.insert(String(character)) }
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
        let scores = self.scores(query: task, specs: specs)
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

    /// The tools matching `query`, best first (those scoring above 0), at most `limit`: what `tools.search` answers.
    public static func search(query: String, specs: [JSONValue], limit: Int) -> [Int] {
        let scores = self.scores(query: query, specs: specs)
        return specs.indices.filter { scores[$0] > 0 }
            .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            .prefix(limit).map { $0 }
    }

    /// Each tool's relevance to `query`.
    static func scores(query: String, specs: [JSONValue]) -> [Double] {
        let wanted = terms(query)
        let toolTerms: [(name: Set<String>, description: Set<String>)] = specs.map { spec in
            (terms((spec["name"]?.stringValue ?? "").replacingOccurrences(of: ".", with: " ").replacingOccurrences(of: "_", with: " ")),
             terms(spec["description"]?.stringValue ?? ""))
        }
        // A term many tools share says little about any of them (inverse document frequency).
        var frequency: [String: Int] = [:]
        for tool in toolTerms { for term in tool.name.union(tool.description) where wanted.contains(term) { frequency[term, default: 0] += 1 } }
        func weight(_ term: String) -> Double { log(Double(specs.count + 1) / Double(frequency[term] ?? 1)) }
        // A match in a short description counts for more than one in a long one (as BM25's
        // length normalisation): "Multiply two numbers (a * b)" is about "*", a formula
        // that happens to contain one is not.
        return toolTerms.map { tool in
            let length = sqrt(Double(max(4, tool.description.count)))
            return wanted.reduce(0) { sum, term in
                sum + (tool.name.contains(term) ? 3 * weight(term) : 0) + (tool.description.contains(term) ? 2 * weight(term) / length : 0)
            }
        }
    }
}
