// The text driver: counting, searching, replacing and reshaping text.
// Pure functions of their input: no state, no capabilities, safe to run
// concurrently (the manifest says `threading: concurrent`).
import LLMOSDriverSDK

struct TextDriver: LLMOSToolDriver {
    static let name = "text"
    static let version = "1.0.0"

    init(context: DriverContext) throws {}

    static func register(_ tools: inout Router) {
        tools.add("count", Self.count)
        tools.add("search", Self.search)
        tools.add("replace", Self.replace)
        tools.add("case", Self.changeCase)
        tools.add("trim", Self.trim)
        tools.add("reverse", Self.reverse)
        tools.add("slugify", Self.slugify)
    }

    // MARK: count

    struct TextInput: Decodable { var text: String }
    struct TextOutput: Encodable { var text: String }

    struct CountOutput: Encodable {
        var characters: Int
        var words: Int
        var lines: Int
        var bytes: Int
    }

    /// characters: grapheme clusters; words: runs of Unicode letters/digits;
    /// lines: line breaks, plus one for a last line without a break (so "" has
    /// 0 lines, "a" 1, "a\n" 1, "a\nb" 2); bytes: UTF-8.
    func count(_ input: TextInput, _ call: CallContext) throws -> CountOutput {
        var characters = 0, words = 0, breaks = 0
        var inWord = false
        var last: Character?
        for character in input.text {
            characters += 1
            let isWordCharacter = character.isLetter || character.isNumber
            if isWordCharacter && !inWord { words += 1 }
            inWord = isWordCharacter
            if character.isNewline { breaks += 1 }
            last = character
            if characters & 0xFFFF == 0 { try call.checkCancellation() }
        }
        let lines = breaks + ((last.map { !$0.isNewline }) ?? false ? 1 : 0)
        return CountOutput(characters: characters, words: words, lines: lines, bytes: input.text.utf8.count)
    }

    // MARK: search

    struct SearchInput: Decodable {
        var text: String
        var pattern: String
        var ignoreCase: Bool?
        var maxMatches: Int?
        enum CodingKeys: String, CodingKey {
            case text, pattern, ignoreCase = "ignore_case", maxMatches = "max_matches"
        }
    }

    struct SearchMatch: Encodable {
        var match: String
        var offset: Int
        var line: Int
    }

    struct SearchOutput: Encodable {
        var matches: [SearchMatch]
        var count: Int
        var truncated: Bool
    }

    static let defaultMaxMatches = 1000

    func search(_ input: SearchInput, _ call: CallContext) throws -> SearchOutput {
        let regex = try compile(input.pattern, ignoreCase: input.ignoreCase ?? false)
        let limit = input.maxMatches ?? Self.defaultMaxMatches
        guard limit >= 1 else { throw DriverError.invalidArgument("max_matches must be at least 1") }
        let text = input.text
        var matches: [SearchMatch] = []
        var truncated = false
        // Where we are: a character index with its character offset and line.
        var position = text.startIndex, offset = 0, line = 1
        try eachMatch(of: regex, in: text, call) { match in
            if matches.count == limit {
                truncated = true
                return false
            }
            let start = match.range.lowerBound
            for character in text[position..<start] {
                offset += 1
                if character.isNewline { line += 1 }
            }
            position = start
            matches.append(SearchMatch(match: String(text[match.range]), offset: offset, line: line))
            return true
        }
        return SearchOutput(matches: matches, count: matches.count, truncated: truncated)
    }

    // MARK: replace

    struct ReplaceInput: Decodable {
        var text: String
        var pattern: String
        var replacement: String
        var ignoreCase: Bool?
        enum CodingKeys: String, CodingKey {
            case text, pattern, replacement, ignoreCase = "ignore_case"
        }
    }

    struct ReplaceOutput: Encodable {
        var text: String
        var replacements: Int
    }

    func replace(_ input: ReplaceInput, _ call: CallContext) throws -> ReplaceOutput {
        let regex = try compile(input.pattern, ignoreCase: input.ignoreCase ?? false)
        let template = try ReplacementTemplate(input.replacement)
        var replacements = 0
        let text = try input.text.replacing(regex) { match -> String in
            replacements += 1
            if replacements & 0x3F == 0 { try call.checkCancellation() }
            return try template.expand(match)
        }
        return ReplaceOutput(text: text, replacements: replacements)
    }

    // MARK: case

    enum Case: String, Decodable {
        case upper, lower, title, snake, kebab, camel
    }

    struct CaseInput: Decodable {
        var text: String
        var to: Case
    }

    func changeCase(_ input: CaseInput, _ call: CallContext) throws -> TextOutput {
        let text = input.text
        switch input.to {
        case .upper: return TextOutput(text: text.uppercased())
        case .lower: return TextOutput(text: text.lowercased())
        case .title: return TextOutput(text: titleCased(text))
        case .snake: return TextOutput(text: words(of: text).map { $0.lowercased() }.joined(separator: "_"))
        case .kebab: return TextOutput(text: words(of: text).map { $0.lowercased() }.joined(separator: "-"))
        case .camel:
            let parts = words(of: text)
            guard let first = parts.first else { return TextOutput(text: "") }
            return TextOutput(text: first.lowercased() + parts.dropFirst().map(capitalized).joined())
        }
    }

    // MARK: trim, reverse, slugify

    func trim(_ input: TextInput, _ call: CallContext) throws -> TextOutput {
        let text = input.text
        guard let first = text.firstIndex(where: { !$0.isWhitespace }),
              let last = text.lastIndex(where: { !$0.isWhitespace })
        else { return TextOutput(text: "") }
        return TextOutput(text: String(text[first...last]))
    }

    func reverse(_ input: TextInput, _ call: CallContext) throws -> TextOutput {
        TextOutput(text: String(input.text.reversed()))
    }

    func slugify(_ input: TextInput, _ call: CallContext) throws -> TextOutput {
        TextOutput(text: TextDriver.slug(input.text))
    }
}

// MARK: - Regular expressions

/// Compiles `pattern` (Swift Regex syntax); a bad one is the caller's mistake.
private func compile(_ pattern: String, ignoreCase: Bool) throws(DriverError) -> Regex<AnyRegexOutput> {
    do {
        let regex = try Regex(pattern)
        return ignoreCase ? regex.ignoresCase() : regex
    } catch {
        throw .invalidArgument("invalid regular expression: \(error)")
    }
}

/// Calls `body` with each match, in order, until it returns false. Lazy (so a
/// limit stops the search early) and polls cancellation.
private func eachMatch(
    of regex: Regex<AnyRegexOutput>, in text: String, _ call: CallContext,
    _ body: (Regex<AnyRegexOutput>.Match) throws -> Bool
) throws {
    // `replacing(_:with:)` visits the matches one by one, with the same
    // anchoring and empty-match rules as `matches(of:)`; throwing from the
    // closure stops it. The replaced text is thrown away.
    struct Stop: Error {}
    var seen = 0
    do {
        _ = try text.replacing(regex) { match -> String in
            seen += 1
            if seen & 0x3F == 0 { try call.checkCancellation() }
            guard try body(match) else { throw Stop() }
            return ""
        }
    } catch is Stop {}
}

/// A replacement string: `$0`..`$99` (whole match / numbered group), `${name}`
/// or `${12}`, and `$$` for a literal dollar. Any other `$` is literal. A group
/// that did not take part in the match inserts nothing.
private struct ReplacementTemplate {
    enum Piece { case literal(String), group(Int), named(String) }
    let pieces: [Piece]

    init(_ template: String) throws(DriverError) {
        var pieces: [Piece] = []
        var literal = ""
        var index = template.startIndex
        while index < template.endIndex {
            let character = template[index]
            let next = template.index(after: index)
            guard character == "$", next < template.endIndex else {
                literal.append(character)
                index = next
                continue
            }
            let after = template[next]
            if after == "$" {
                literal.append("$")
                index = template.index(after: next)
            } else if after.isASCII, after.isNumber {
                var end = template.index(after: next)
                if end < template.endIndex, template[end].isASCII, template[end].isNumber {
                    end = template.index(after: end)
                }
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                pieces.append(.group(Int(template[next..<end])!))
                index = end
            } else if after == "{" {
                guard let close = template[next...].firstIndex(of: "}") else {
                    throw .invalidArgument("invalid replacement: \"${\" without a closing \"}\"")
                }
                let reference = String(template[template.index(after: next)..<close])
                guard !reference.isEmpty else { throw .invalidArgument("invalid replacement: empty group reference \"${}\"") }
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                if let number = Int(reference), number >= 0 {
                    pieces.append(.group(number))
                } else {
                    pieces.append(.named(reference))
                }
                index = template.index(after: close)
            } else {
                literal.append("$")
                index = next
            }
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        self.pieces = pieces
    }

    func expand(_ match: Regex<AnyRegexOutput>.Match) throws(DriverError) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .literal(let text):
                out += text
            case .group(let number):
                guard number < match.output.count else {
                    let groups = match.output.count - 1
                    throw .invalidArgument("invalid replacement: $\(number) refers to group \(number), but the pattern has \(groups) group\(groups == 1 ? "" : "s")")
                }
                if let substring = match.output[number].substring { out += substring }
            case .named(let name):
                guard let capture = match.output[name] else {
                    throw .invalidArgument("invalid replacement: the pattern has no group named \"\(name)\"")
                }
                if let substring = capture.substring { out += substring }
            }
        }
        return out
    }
}

// MARK: - Words and cases

private func isWordCharacter(_ character: Character) -> Bool {
    character.isLetter || character.isNumber
}

private func isApostrophe(_ character: Character) -> Bool {
    character == "'" || character == "\u{2019}"
}

/// Words for snake/kebab/camel: runs of letters/digits, also split where a
/// lowercase letter or digit meets an uppercase one ("fooBar", "v2Beta") and
/// before the last capital of an acronym ("HTTPServer" -> HTTP, Server).
/// Apostrophes inside a word are dropped ("don't" -> "dont").
private func words(of text: String) -> [String] {
    var words: [String] = []
    var current: [Character] = []
    func flush() {
        if !current.isEmpty { words.append(String(current)); current = [] }
    }
    let characters = Array(text)
    for (i, character) in characters.enumerated() {
        if isWordCharacter(character) {
            if let previous = current.last {
                let nextIsLower = i + 1 < characters.count && characters[i + 1].isLowercase
                if character.isUppercase &&
                    (previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower)) {
                    flush()
                }
            }
            current.append(character)
        } else if isApostrophe(character), !current.isEmpty,
                  i + 1 < characters.count, isWordCharacter(characters[i + 1]) {
            continue  // inside a word: drop it, keep the word going
        } else {
            flush()
        }
    }
    flush()
    return words
}

/// "hELLO" -> "Hello".
private func capitalized(_ word: String) -> String {
    guard let first = word.first else { return word }
    return first.uppercased() + word.dropFirst().lowercased()
}

/// Every word's first letter uppercase, the rest lowercase; everything else
/// unchanged. An apostrophe inside a word does not start a new one ("don't").
private func titleCased(_ text: String) -> String {
    var out = ""
    var inWord = false
    for character in text {
        if isWordCharacter(character) {
            out += inWord ? character.lowercased() : character.uppercased()
            inWord = true
        } else {
            out.append(character)
            inWord = inWord && isApostrophe(character)
        }
    }
    return out
}

// MARK: - Slugs

extension TextDriver {
    /// Lowercase ASCII letters and digits, runs of anything else turned into
    /// one "-", no "-" at either end. Latin letters with diacritics become
    /// their base letters ("Crème brûlée" -> "creme-brulee", "Straße" ->
    /// "strasse"); other scripts are dropped like punctuation.
    static func slug(_ text: String) -> String {
        var out = ""
        var pendingDash = false
        func emit(_ piece: String) {
            if pendingDash && !out.isEmpty { out += "-" }
            pendingDash = false
            out += piece
        }
        for scalar in text.lowercased().unicodeScalars {
            let value = scalar.value
            if (0x61...0x7A).contains(value) || (0x30...0x39).contains(value) {
                emit(String(scalar))
            } else if scalar.properties.generalCategory == .nonspacingMark && !pendingDash {
                continue  // a combining accent: drop it, stay in the word
            } else if let folded = latinFold(value) {
                emit(folded)
            } else {
                pendingDash = true
            }
        }
        return out
    }
}

/// The base letters of U+00C0...U+017F (Latin-1 Supplement and Latin
/// Extended-A), lowercase; nil for the two signs × and ÷.
private let latin1Folds: [String?] = {
    // U+00C0...U+00FF
    let upper: [String?] = ["a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
                            "d", "n", "o", "o", "o", "o", "o", nil, "o", "u", "u", "u", "u", "y", "th", "ss"]
    let lower: [String?] = ["a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
                            "d", "n", "o", "o", "o", "o", "o", nil, "o", "u", "u", "u", "u", "y", "th", "y"]
    func run(_ s: String, _ n: Int) -> [String?] { Array(repeating: s, count: n) }
    // U+0100...U+017F, in code point order.
    let extendedA: [String?] =
        run("a", 6) + run("c", 8) + run("d", 4) + run("e", 10) + run("g", 8) + run("h", 4) +
        run("i", 10) + run("ij", 2) + run("j", 2) + run("k", 3) + run("l", 10) + run("n", 9) +
        run("o", 6) + run("oe", 2) + run("r", 6) + run("s", 8) + run("t", 6) + run("u", 12) +
        run("w", 2) + run("y", 3) + run("z", 6) + run("s", 1)
    precondition(extendedA.count == 0x80)
    return upper + lower + extendedA
}()

private func latinFold(_ value: UInt32) -> String? {
    guard (0xC0...0x17F).contains(value) else { return nil }
    return latin1Folds[Int(value - 0xC0)]
}

// MARK: - Entry point

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(TextDriver.self, host, driver) }
