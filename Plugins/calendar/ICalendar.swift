// RFC 5545 (iCalendar) text: parsing into a tree that keeps every line it read, and
// writing it back. Only what the driver changes is regenerated; every other property
// and component (VTIMEZONE, VALARM, VTODO, X- properties, unknown parameters) is written
// back exactly as it was read, so a rewrite loses nothing.
//
// A file that does not parse is an error naming its line, and is never written.
import Foundation

/// A parse failure: the line (1-based, physical) and what is wrong there.
struct ICSError: Error, CustomStringConvertible {
    var line: Int
    var message: String
    var description: String { "line \(line): \(message)" }
}

/// One parameter: `TZID=Europe/Paris`, `MEMBER="a","b"`.
struct ICSParameter {
    var name: String            // upper-cased
    var values: [String]        // unquoted
}

struct ICSProperty {
    /// Upper-cased (names are case-insensitive).
    var name: String
    var parameters: [ICSParameter]
    /// The value as written (escaped TEXT stays escaped; see `text`).
    var value: String
    /// The first physical line it was read from; 0 for a property made here.
    var line: Int
    /// The physical lines it was read from (folded), written back unchanged; nil when
    /// made or changed here (then it is serialized and folded).
    var original: [String]?

    init(name: String, parameters: [ICSParameter] = [], value: String) {
        self.name = name
        self.parameters = parameters
        self.value = value
        self.line = 0
        self.original = nil
    }

    init(name: String, parameters: [ICSParameter], value: String, line: Int, original: [String]) {
        self.name = name
        self.parameters = parameters
        self.value = value
        self.line = line
        self.original = original
    }

    func parameter(_ name: String) -> String? {
        parameters.first { $0.name == name }?.values.first
    }

    /// The value as TEXT (RFC 5545 3.3.11): `\\`, `\;`, `\,`, `\n` unescaped.
    var text: String { ICSText.unescape(value) }

    /// The content line, unfolded.
    var contentLine: String {
        var line = name
        for parameter in parameters {
            line += ";" + parameter.name + "=" + parameter.values.map(ICSText.quoteParameter).joined(separator: ",")
        }
        return line + ":" + value
    }
}

/// A component: `BEGIN:NAME` … `END:NAME`, its properties and sub-components in order.
struct ICSComponent {
    enum Item {
        case property(ICSProperty)
        case component(ICSComponent)
    }

    var name: String            // upper-cased
    var items: [Item]
    var beginLine: Int
    /// The BEGIN and END lines as read (nil for a component made here).
    var originalBegin: String?
    var originalEnd: String?

    init(name: String, items: [Item] = [], beginLine: Int = 0) {
        self.name = name
        self.items = items
        self.beginLine = beginLine
    }

    var properties: [ICSProperty] {
        items.compactMap { if case .property(let p) = $0 { return p } else { return nil } }
    }

    var components: [ICSComponent] {
        items.compactMap { if case .component(let c) = $0 { return c } else { return nil } }
    }

    func property(_ name: String) -> ICSProperty? { properties.first { $0.name == name } }
    func all(_ name: String) -> [ICSProperty] { properties.filter { $0.name == name } }

    /// Replaces the first `name` property (or adds it after the last property), and
    /// removes any further ones; nil removes them all.
    mutating func set(_ name: String, _ property: ICSProperty?) {
        var replaced = false
        var kept: [Item] = []
        for item in items {
            if case .property(let p) = item, p.name == name {
                if !replaced, let property {
                    kept.append(.property(property))
                    replaced = true
                }
                continue
            }
            kept.append(item)
        }
        if !replaced, let property {
            let position = kept.lastIndex { if case .property = $0 { return true } else { return false } }.map { $0 + 1 } ?? 0
            kept.insert(.property(property), at: position)
        }
        items = kept
    }
}

/// A whole file: one VCALENDAR, and how its lines ended.
struct ICSDocument {
    var calendar: ICSComponent
    /// "\r\n" (RFC 5545) or "\n", as the file had it; new files use "\r\n".
    var lineEnding: String

    static func empty() -> ICSDocument {
        var calendar = ICSComponent(name: "VCALENDAR")
        calendar.items = [
            .property(ICSProperty(name: "PRODID", value: "-//llmos//calendar driver 1.0//EN")),
            .property(ICSProperty(name: "VERSION", value: "2.0")),
            .property(ICSProperty(name: "CALSCALE", value: "GREGORIAN")),
        ]
        return ICSDocument(calendar: calendar, lineEnding: "\r\n")
    }

    // MARK: Parsing

    static func parse(_ text: String) throws(ICSError) -> ICSDocument {
        let lineEnding = text.contains("\r\n") ? "\r\n" : "\n"
        var body = Substring(text)
        if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
        // "\r\n" is one Character in Swift: split on both forms.
        var physical = body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { line -> Substring in
            line.hasSuffix("\r") ? line.dropLast() : line
        }
        if physical.last?.isEmpty == true { physical.removeLast() }

        // Unfold: a line starting with a space or a tab continues the one before it.
        var logical: [(line: Int, text: String, original: [String])] = []
        for (offset, line) in physical.enumerated() {
            let number = offset + 1
            if let first = line.first, first == " " || first == "\t" {
                guard !logical.isEmpty else {
                    throw ICSError(line: number, message: "a continuation line (starting with a space) with no line before it")
                }
                logical[logical.count - 1].text += line.dropFirst()
                logical[logical.count - 1].original.append(String(line))
                continue
            }
            if line.allSatisfy(\.isWhitespace) { continue }  // blank lines carry nothing
            logical.append((number, String(line), [String(line)]))
        }
        guard let first = logical.first else {
            throw ICSError(line: 1, message: "the file is empty; an iCalendar file starts with BEGIN:VCALENDAR")
        }

        var stack: [ICSComponent] = []
        var finished: ICSComponent?
        for entry in logical {
            let property = try parseContentLine(entry.text, line: entry.line, original: entry.original)
            if let done = finished {
                throw ICSError(line: entry.line, message: "content after END:\(done.name) (line \(done.beginLine) began it); one calendar per file is supported")
            }
            switch property.name {
            case "BEGIN":
                let name = property.value.uppercased()
                guard !name.isEmpty else { throw ICSError(line: entry.line, message: "BEGIN without a component name") }
                if stack.isEmpty && name != "VCALENDAR" {
                    throw ICSError(line: entry.line, message: "expected BEGIN:VCALENDAR, found BEGIN:\(property.value)")
                }
                var component = ICSComponent(name: name, beginLine: entry.line)
                component.originalBegin = entry.original.joined(separator: "\n")
                stack.append(component)
            case "END":
                let name = property.value.uppercased()
                guard var component = stack.popLast() else {
                    throw ICSError(line: entry.line, message: "END:\(property.value) without a BEGIN")
                }
                guard component.name == name else {
                    throw ICSError(line: entry.line, message: "END:\(property.value) closes BEGIN:\(component.name) of line \(component.beginLine); expected END:\(component.name)")
                }
                component.originalEnd = entry.original.joined(separator: "\n")
                if stack.isEmpty {
                    finished = component
                } else {
                    stack[stack.count - 1].items.append(.component(component))
                }
            default:
                guard !stack.isEmpty else {
                    throw ICSError(line: entry.line, message: "\(property.name) outside BEGIN:VCALENDAR … END:VCALENDAR")
                }
                stack[stack.count - 1].items.append(.property(property))
            }
        }
        if let open = stack.last {
            throw ICSError(line: open.beginLine, message: "BEGIN:\(open.name) has no END:\(open.name) (the file ends at line \(physical.count); is it cut short?)")
        }
        guard let calendar = finished else {
            throw ICSError(line: first.line, message: "no VCALENDAR")
        }
        return ICSDocument(calendar: calendar, lineEnding: lineEnding)
    }

    /// `NAME *(";" param) ":" value` (RFC 5545 3.1).
    static func parseContentLine(_ text: String, line: Int, original: [String]) throws(ICSError) -> ICSProperty {
        let characters = Array(text)
        var index = 0
        func isNameCharacter(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "-") }
        while index < characters.count && isNameCharacter(characters[index]) { index += 1 }
        let name = String(characters[0..<index]).uppercased()
        guard !name.isEmpty, index < characters.count, characters[index] == ";" || characters[index] == ":" else {
            let shown = text.count > 60 ? String(text.prefix(60)) + "…" : text
            throw ICSError(line: line, message: "expected NAME:VALUE or NAME;PARAM=VALUE:VALUE, found \"\(shown)\"")
        }
        var parameters: [ICSParameter] = []
        while characters[index] == ";" {
            index += 1
            let start = index
            while index < characters.count && isNameCharacter(characters[index]) { index += 1 }
            let parameterName = String(characters[start..<index]).uppercased()
            guard !parameterName.isEmpty, index < characters.count, characters[index] == "=" else {
                throw ICSError(line: line, message: "\(name): a parameter must be NAME=VALUE")
            }
            index += 1
            var values: [String] = []
            while true {
                if index < characters.count && characters[index] == "\"" {
                    index += 1
                    let valueStart = index
                    while index < characters.count && characters[index] != "\"" { index += 1 }
                    guard index < characters.count else {
                        throw ICSError(line: line, message: "\(name);\(parameterName): a quoted value has no closing quote")
                    }
                    values.append(String(characters[valueStart..<index]))
                    index += 1
                } else {
                    let valueStart = index
                    while index < characters.count && !";:,".contains(characters[index]) && characters[index] != "\"" { index += 1 }
                    values.append(String(characters[valueStart..<index]))
                }
                guard index < characters.count else {
                    throw ICSError(line: line, message: "\(name): the line ends inside its parameters (no \":\" before the value)")
                }
                if characters[index] == "," { index += 1; continue }
                break
            }
            parameters.append(ICSParameter(name: parameterName, values: values))
            guard characters[index] == ";" || characters[index] == ":" else {
                throw ICSError(line: line, message: "\(name);\(parameterName): unexpected \"\(characters[index])\" after the parameter value")
            }
        }
        let value = String(characters[(index + 1)...])
        return ICSProperty(name: name, parameters: parameters, value: value, line: line, original: original)
    }

    // MARK: Writing

    func serialized() -> String {
        var lines: [String] = []
        Self.write(calendar, into: &lines)
        return lines.joined(separator: lineEnding) + lineEnding
    }

    static func write(_ component: ICSComponent, into lines: inout [String]) {
        lines.append(contentsOf: (component.originalBegin ?? "BEGIN:\(component.name)").split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        for item in component.items {
            switch item {
            case .property(let property):
                if let original = property.original {
                    lines.append(contentsOf: original)
                } else {
                    lines.append(contentsOf: fold(property.contentLine))
                }
            case .component(let child):
                write(child, into: &lines)
            }
        }
        lines.append(contentsOf: (component.originalEnd ?? "END:\(component.name)").split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }

    /// Lines of at most 75 octets, continuation lines starting with a space; never
    /// inside a UTF-8 sequence (RFC 5545 3.1).
    static func fold(_ line: String) -> [String] {
        var result: [String] = []
        var current = ""
        var octets = 0
        for character in line {
            let size = String(character).utf8.count
            let limit = result.isEmpty ? 75 : 74  // a continuation's leading space counts
            if octets + size > limit {
                result.append(result.isEmpty ? current : " " + current)
                current = ""
                octets = 0
            }
            current.append(character)
            octets += size
        }
        result.append(result.isEmpty ? current : " " + current)
        return result
    }
}

enum ICSText {
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\n", "\r\n": out += "\\n"
            case "\r": continue
            default: out.append(character)
            }
        }
        return out
    }

    static func unescape(_ value: String) -> String {
        var out = ""
        var escaping = false
        for character in value {
            if escaping {
                switch character {
                case "n", "N": out += "\n"
                default: out.append(character)  // \\ \; \, (and anything else, kept as itself)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        if escaping { out += "\\" }
        return out
    }

    /// Parameter values with `:`, `;` or `,` are quoted (RFC 5545 3.2).
    static func quoteParameter(_ value: String) -> String {
        value.contains(where: { ":;,".contains($0) }) ? "\"" + value + "\"" : value
    }
}
