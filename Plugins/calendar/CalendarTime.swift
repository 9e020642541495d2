// Times in iCalendar and in tool arguments: DATE and DATE-TIME values (UTC, TZID and
// floating forms), durations, ISO 8601 for models, and the recurrence rules the driver
// expands (RRULE: FREQ DAILY/WEEKLY/MONTHLY/YEARLY with INTERVAL, COUNT, UNTIL, BYDAY,
// BYMONTHDAY, BYMONTH; EXDATE).
import Foundation
import LLMOSDriverSDK

/// A DTSTART/DTEND value, resolved.
struct EventTime {
    /// The instant (for an all-day date: its midnight in `zone`).
    var date: Date
    /// A DATE value (VALUE=DATE): an all-day event.
    var allDay: Bool
    /// The zone the value was written in (TZID), nil for UTC or floating.
    var tzid: String?
    /// The value was UTC ("Z").
    var utc: Bool
}

enum CalendarTime {
    static func gregorian(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        calendar.firstWeekday = 2  // Monday, as RFC 5545's default WKST
        return calendar
    }

    static let utcZone = TimeZone(identifier: "UTC")!

    /// A zone by TZID: an IANA name (a leading "/" of a "globally unique" TZID is
    /// dropped), else the `X-LIC-LOCATION` of the file's VTIMEZONE with that TZID.
    static func zone(_ tzid: String, aliases: [String: String]) -> TimeZone? {
        let name = tzid.hasPrefix("/") ? String(tzid.dropFirst()) : tzid
        if let zone = TimeZone(identifier: name) { return zone }
        if let alias = aliases[tzid], let zone = TimeZone(identifier: alias) { return zone }
        return nil
    }

    /// Parses `20250310`, `20250310T090000`, `20250310T090000Z` in a property.
    static func parse(_ property: ICSProperty, defaultZone: TimeZone, aliases: [String: String]) throws(ICSError) -> EventTime {
        let value = property.value.trimmingCharacters(in: .whitespaces)
        let tzid = property.parameter("TZID")
        let digits = Array(value)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= digits.count else { return nil }
            return Int(String(digits[range]))
        }
        func bad(_ why: String) -> ICSError {
            ICSError(line: property.line, message: "\(property.name) \"\(value)\": \(why) (expected YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ)")
        }
        guard digits.count >= 8, let year = number(0..<4), let month = number(4..<6), let day = number(6..<8) else {
            throw bad("not a date")
        }
        let isDate = property.parameter("VALUE")?.uppercased() == "DATE" || digits.count == 8
        var components = DateComponents(year: year, month: month, day: day)
        var zone = defaultZone
        var utc = false
        if isDate {
            guard digits.count == 8 else { throw bad("VALUE=DATE takes a date only") }
        } else {
            guard digits.count >= 15, digits[8] == "T", let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15) else {
                throw bad("not a date-time")
            }
            components.hour = hour
            components.minute = minute
            components.second = min(second, 59)  // a leap second, 60, is the minute's last
            if digits.count == 16 {
                guard digits[15] == "Z" else { throw bad("unexpected \"\(digits[15])\" at the end") }
                utc = true
                zone = utcZone
            } else if digits.count != 15 {
                throw bad("unexpected characters at the end")
            } else if let tzid {
                guard let named = Self.zone(tzid, aliases: aliases) else {
                    throw ICSError(line: property.line, message: "\(property.name): unknown time zone TZID=\(tzid) (use an IANA name such as Europe/Paris, or give its VTIMEZONE an X-LIC-LOCATION)")
                }
                zone = named
            }
        }
        guard (1...12).contains(month), (1...31).contains(day),
              let date = gregorian(zone).date(from: components),
              gregorian(zone).component(.day, from: date) == day else {
            throw bad("no such date")
        }
        return EventTime(date: date, allDay: isDate, tzid: isDate || utc ? nil : tzid, utc: utc)
    }

    /// A DURATION value: `P1D`, `PT1H30M`, `-PT15M`, `P2W`.
    static func duration(_ text: String) -> DateComponents? {
        var rest = Substring(text.uppercased())
        var sign = 1
        if rest.hasPrefix("-") { sign = -1; rest = rest.dropFirst() } else if rest.hasPrefix("+") { rest = rest.dropFirst() }
        guard rest.hasPrefix("P") else { return nil }
        rest = rest.dropFirst()
        var components = DateComponents()
        var inTime = false
        var digits = ""
        var any = false
        for character in rest {
            if character == "T" { inTime = true; continue }
            if character.isNumber { digits.append(character); continue }
            guard let value = Int(digits) else { return nil }
            digits = ""
            any = true
            switch (character, inTime) {
            case ("W", false): components.day = (components.day ?? 0) + 7 * value * sign
            case ("D", false): components.day = (components.day ?? 0) + value * sign
            case ("H", true): components.hour = value * sign
            case ("M", true): components.minute = value * sign
            case ("S", true): components.second = value * sign
            default: return nil
            }
        }
        return any && digits.isEmpty ? components : nil
    }

    // MARK: Values written

    /// `20250310T090000Z`.
    static func utcStamp(_ date: Date) -> String {
        let c = gregorian(utcZone).dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// `20250310T090000` in `zone` (for a TZID value).
    static func localStamp(_ date: Date, _ zone: TimeZone) -> String {
        let c = gregorian(zone).dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// `20250310` (a DATE value) of `date` in `zone`.
    static func dateStamp(_ date: Date, _ zone: TimeZone) -> String {
        let c = gregorian(zone).dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
    }

    // MARK: ISO 8601 for models

    /// `2025-03-10T09:00:00+01:00` in `zone` (`Z` for UTC).
    static func iso(_ date: Date, _ zone: TimeZone) -> String {
        let c = gregorian(zone).dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let offset = zone.secondsFromGMT(for: date)
        let sign = offset < 0 ? "-" : "+"
        // Z for a zone that is UTC all year (UTC, GMT, Etc/UTC), an offset otherwise.
        let suffix = offset == 0 && zone.nextDaylightSavingTimeTransition(after: date) == nil
            ? "Z" : String(format: "%@%02d:%02d", sign, abs(offset) / 3600, (abs(offset) % 3600) / 60)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!) + suffix
    }

    /// `2025-03-10`.
    static func isoDate(_ date: Date, _ zone: TimeZone) -> String {
        let c = gregorian(zone).dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    /// A time a model gave: `2025-03-10` (a date: its midnight, `isDate`),
    /// `2025-03-10T09:00`, `2025-03-10T09:00:00`, with `Z` or `±HH:MM` or neither (then in `zone`).
    static func parseInput(_ text: String, field: String, zone: TimeZone) throws(DriverError) -> (date: Date, isDate: Bool) {
        let bad = DriverError.invalidArgument("\(field) \"\(text)\" is not a date or time; use 2025-03-10, 2025-03-10T09:00, 2025-03-10T09:00:00Z or 2025-03-10T09:00:00+01:00")
        let chars = Array(text.trimmingCharacters(in: .whitespaces))
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= chars.count, chars[range].allSatisfy(\.isNumber) else { return nil }
            return Int(String(chars[range]))
        }
        guard chars.count >= 10, chars[4] == "-", chars[7] == "-",
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10) else { throw bad }
        var components = DateComponents(year: year, month: month, day: day, hour: 0, minute: 0, second: 0)
        var useZone = zone
        let isDate = chars.count == 10
        if !isDate {
            guard chars.count >= 16, chars[10] == "T" || chars[10] == " ", chars[13] == ":",
                  let hour = number(11..<13), let minute = number(14..<16) else { throw bad }
            components.hour = hour
            components.minute = minute
            var index = 16
            if index < chars.count && chars[index] == ":" {
                guard let second = number(17..<19) else { throw bad }
                components.second = second
                index = 19
                if index < chars.count && chars[index] == "." {  // fractions: dropped
                    index += 1
                    while index < chars.count && chars[index].isNumber { index += 1 }
                }
            }
            if index < chars.count {
                if chars[index] == "Z" && index == chars.count - 1 {
                    useZone = utcZone
                } else if chars[index] == "+" || chars[index] == "-", chars.count == index + 6, chars[index + 3] == ":",
                          let hours = number((index + 1)..<(index + 3)), let minutes = number((index + 4)..<(index + 6)) {
                    let seconds = (hours * 3600 + minutes * 60) * (chars[index] == "-" ? -1 : 1)
                    guard let fixed = TimeZone(secondsFromGMT: seconds) else { throw bad }
                    useZone = fixed
                } else {
                    throw bad
                }
            }
        }
        guard (1...12).contains(month), let date = gregorian(useZone).date(from: components),
              gregorian(useZone).component(.day, from: date) == day else { throw bad }
        return (date, isDate)
    }

    /// `09:00` → minutes after midnight.
    static func clockMinutes(_ text: String, field: String) throws(DriverError) -> Int {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...24).contains(hour), (0...59).contains(minute), hour * 60 + minute <= 24 * 60 else {
            throw DriverError.invalidArgument("\(field) \"\(text)\" is not a time of day; use HH:MM, e.g. 09:00")
        }
        return hour * 60 + minute
    }
}

/// Why an RRULE is not expanded.
struct UnsupportedRule: Error { var reason: String }

/// RRULE expansion (the subset in the file's header comment).
struct RecurrenceRule {
    enum Frequency: String { case daily = "DAILY", weekly = "WEEKLY", monthly = "MONTHLY", yearly = "YEARLY" }

    var frequency: Frequency
    var interval = 1
    var count: Int?
    var until: Date?
    /// (ordinal or nil, weekday 1 = Sunday … 7 = Saturday, as Foundation counts).
    var byDay: [(Int?, Int)] = []
    var byMonthDay: [Int] = []
    var byMonth: [Int] = []

    static let weekdays = ["SU": 1, "MO": 2, "TU": 3, "WE": 4, "TH": 5, "FR": 6, "SA": 7]

    /// Nil (with the reason) for a rule outside the subset: the event is then listed at
    /// its first occurrence only, and marked so.
    static func parse(_ text: String, zone: TimeZone, aliases: [String: String]) -> Result<RecurrenceRule, UnsupportedRule> {
        var rule: RecurrenceRule?
        var parts: [(String, String)] = []
        for part in text.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { return .failure(UnsupportedRule(reason: "\"\(part)\" is not NAME=VALUE")) }
            parts.append((pair[0].uppercased(), pair[1].uppercased()))
        }
        guard let frequencyText = parts.first(where: { $0.0 == "FREQ" })?.1 else { return .failure(UnsupportedRule(reason: "no FREQ")) }
        guard let frequency = Frequency(rawValue: frequencyText) else { return .failure(UnsupportedRule(reason: "FREQ=\(frequencyText) is not expanded (DAILY, WEEKLY, MONTHLY, YEARLY are)")) }
        rule = RecurrenceRule(frequency: frequency)
        for (name, value) in parts {
            switch name {
            case "FREQ", "WKST": continue
            case "INTERVAL":
                guard let n = Int(value), n >= 1 else { return .failure(UnsupportedRule(reason: "INTERVAL=\(value)")) }
                rule!.interval = n
            case "COUNT":
                guard let n = Int(value), n >= 1 else { return .failure(UnsupportedRule(reason: "COUNT=\(value)")) }
                rule!.count = n
            case "UNTIL":
                let property = ICSProperty(name: "UNTIL", value: value)
                guard let time = try? CalendarTime.parse(property, defaultZone: zone, aliases: aliases) else { return .failure(UnsupportedRule(reason: "UNTIL=\(value)")) }
                // A DATE UNTIL includes that whole day.
                rule!.until = time.allDay ? time.date.addingTimeInterval(86_399) : time.date
            case "BYDAY":
                for item in value.split(separator: ",") {
                    let code = String(item.suffix(2))
                    guard let weekday = weekdays[code] else { return .failure(UnsupportedRule(reason: "BYDAY=\(value)")) }
                    let prefix = item.dropLast(2)
                    if prefix.isEmpty {
                        rule!.byDay.append((nil, weekday))
                    } else {
                        guard let ordinal = Int(prefix), ordinal != 0 else { return .failure(UnsupportedRule(reason: "BYDAY=\(value)")) }
                        rule!.byDay.append((ordinal, weekday))
                    }
                }
            case "BYMONTHDAY":
                for item in value.split(separator: ",") {
                    guard let day = Int(item), day != 0, (-31...31).contains(day) else { return .failure(UnsupportedRule(reason: "BYMONTHDAY=\(value)")) }
                    rule!.byMonthDay.append(day)
                }
            case "BYMONTH":
                for item in value.split(separator: ",") {
                    guard let month = Int(item), (1...12).contains(month) else { return .failure(UnsupportedRule(reason: "BYMONTH=\(value)")) }
                    rule!.byMonth.append(month)
                }
            default:
                return .failure(UnsupportedRule(reason: "\(name) is not expanded"))
            }
        }
        return .success(rule!)
    }

    /// Start times from `start` (the first included), in order, up to `end` (exclusive),
    /// honouring COUNT and UNTIL; at most `limit` generated in all.
    func occurrences(from start: Date, zone: TimeZone, until end: Date, limit: Int = 50_000) -> [Date] {
        let calendar = CalendarTime.gregorian(zone)
        let time = calendar.dateComponents([.hour, .minute, .second], from: start)
        var results: [Date] = []
        var generated = 0
        var period = 0
        func accept(_ candidates: [Date]) -> Bool {  // false: stop
            for date in candidates.sorted() where date >= start {
                if let until, date > until { return false }
                if let count, generated >= count { return false }
                generated += 1
                if date >= end { return false }
                results.append(date)
                if generated >= limit { return false }
            }
            return true
        }
        func at(_ day: Date) -> Date? {
            var c = calendar.dateComponents([.year, .month, .day], from: day)
            c.hour = time.hour; c.minute = time.minute; c.second = time.second
            return calendar.date(from: c)
        }
        while period < limit {
            var candidates: [Date] = []
            switch frequency {
            case .daily:
                guard let day = calendar.date(byAdding: .day, value: period * interval, to: start), day < end else { return results }
                if matchesFilters(day, calendar) { candidates.append(day) }
            case .weekly:
                guard let anchor = calendar.date(byAdding: .weekOfYear, value: period * interval, to: start),
                      let week = calendar.dateInterval(of: .weekOfYear, for: anchor)?.start, week < end else { return results }
                let days = byDay.isEmpty ? [calendar.component(.weekday, from: start)] : byDay.map(\.1)
                for offset in 0..<7 {
                    guard let day = calendar.date(byAdding: .day, value: offset, to: week) else { continue }
                    if days.contains(calendar.component(.weekday, from: day)), byMonth.isEmpty || byMonth.contains(calendar.component(.month, from: day)),
                       let date = at(day) { candidates.append(date) }
                }
            case .monthly:
                guard let anchor = calendar.date(byAdding: .month, value: period * interval, to: calendar.dateInterval(of: .month, for: start)!.start),
                      let month = calendar.dateInterval(of: .month, for: anchor), month.start < end else { return results }
                if byMonth.isEmpty || byMonth.contains(calendar.component(.month, from: month.start)) {
                    candidates = daysInPeriod(month, calendar, defaultDay: calendar.component(.day, from: start)).compactMap(at)
                }
            case .yearly:
                guard let anchor = calendar.date(byAdding: .year, value: period * interval, to: start),
                      let year = calendar.dateInterval(of: .year, for: anchor), year.start < end else { return results }
                let months = byMonth.isEmpty ? [calendar.component(.month, from: start)] : byMonth
                for month in months {
                    var c = calendar.dateComponents([.year], from: year.start)
                    c.month = month; c.day = 1
                    guard let first = calendar.date(from: c), let interval = calendar.dateInterval(of: .month, for: first) else { continue }
                    candidates += daysInPeriod(interval, calendar, defaultDay: calendar.component(.day, from: start)).compactMap(at)
                }
            }
            if !accept(candidates) { return results }
            period += 1  // each period's start is checked against `end` above
        }
        return results
    }

    func matchesFilters(_ day: Date, _ calendar: Calendar) -> Bool {
        if !byMonth.isEmpty && !byMonth.contains(calendar.component(.month, from: day)) { return false }
        if !byDay.isEmpty && !byDay.contains(where: { $0.1 == calendar.component(.weekday, from: day) }) { return false }
        if !byMonthDay.isEmpty {
            let d = calendar.component(.day, from: day)
            let length = calendar.range(of: .day, in: .month, for: day)!.count
            if !byMonthDay.contains(where: { $0 == d || length + 1 + $0 == d }) { return false }
        }
        return true
    }

    /// The days of one month that BYDAY / BYMONTHDAY select (or the start's day of month).
    func daysInPeriod(_ month: DateInterval, _ calendar: Calendar, defaultDay: Int) -> [Date] {
        let length = calendar.range(of: .day, in: .month, for: month.start)!.count
        let days = (0..<length).compactMap { calendar.date(byAdding: .day, value: $0, to: month.start) }
        if byDay.isEmpty && byMonthDay.isEmpty {
            return defaultDay <= length ? [days[defaultDay - 1]] : []  // the 31st skips short months
        }
        return days.enumerated().filter { index, day in
            let dayNumber = index + 1
            if !byMonthDay.isEmpty && !byMonthDay.contains(where: { $0 == dayNumber || length + 1 + $0 == dayNumber }) { return false }
            if byDay.isEmpty { return true }
            let weekday = calendar.component(.weekday, from: day)
            return byDay.contains { ordinal, wanted in
                guard wanted == weekday else { return false }
                guard let ordinal else { return true }
                let nth = index / 7 + 1                       // 1st, 2nd, … of the month
                let nthFromEnd = -((length - 1 - index) / 7 + 1)  // -1 last, -2 …
                return ordinal == nth || ordinal == nthFromEnd
            }
        }.map(\.1)
    }
}
