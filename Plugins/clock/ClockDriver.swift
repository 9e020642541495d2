// The clock driver: the current time, time zones, date arithmetic and days of the week.
// Pure functions of their input and the system clock: no state, safe to run concurrently
// (the manifest says `threading: concurrent`).
//
// Time zones come from Foundation's TimeZone, which reads the IANA database
// (/usr/share/zoneinfo) itself, inside the host process. No file is read through the
// kernel's fs.read system call, so the manifest requests no capability: nothing it does
// goes through the kernel to be granted. Plugins/clock/README.md says so for operators.
import Foundation
import LLMOSDriverSDK

struct ClockDriver: LLMOSToolDriver {
    static let name = "clock"
    static let version = "1.0.0"

    init(context: DriverContext) throws {}

    static func register(_ tools: inout Router) {
        tools.add("now", Self.now)
        tools.add("convert", Self.convert)
        tools.add("add", Self.add)
        tools.add("difference", Self.difference)
        tools.add("day_of_week", Self.dayOfWeek)
        tools.add("zones", Self.zones)
    }

    // MARK: Shared shapes

    /// One instant, described in one time zone.
    struct Moment: Encodable {
        /// ISO 8601 in `time_zone`, with its UTC offset ("2025-12-01T13:00:00+01:00", or "...Z" in UTC).
        var time: String
        /// The same instant in UTC.
        var utc: String
        var unix: Double
        var time_zone: String
        var offset_seconds: Int
        var abbreviation: String
        var is_dst: Bool
        var day_of_week: String
    }

    static func moment(_ date: Date, in zone: TimeZone) -> Moment {
        Moment(time: ISOTime.format(date, in: zone), utc: ISOTime.format(date, in: ISOTime.utc),
               unix: (date.timeIntervalSince1970 * 1000).rounded() / 1000, time_zone: zone == ISOTime.utc || zone.identifier == "GMT" ? "UTC" : zone.identifier,
               offset_seconds: zone.secondsFromGMT(for: date), abbreviation: zone.abbreviation(for: date) ?? "",
               is_dst: zone.isDaylightSavingTime(for: date), day_of_week: ISOTime.weekdayName(date, in: zone))
    }

    // MARK: now

    struct NowInput: Decodable { var time_zone: String? }

    func now(_ input: NowInput, _ call: CallContext) throws -> Moment {
        let zone = try Zones.named(input.time_zone, field: "time_zone")
        return Self.moment(Date(), in: zone)
    }

    // MARK: convert

    struct ConvertInput: Decodable {
        var time: String
        /// The zone of a `time` written without an offset (default UTC).
        var from: String?
        var to: String
    }

    func convert(_ input: ConvertInput, _ call: CallContext) throws -> Moment {
        let from = try Zones.named(input.from, field: "from")
        let to = try Zones.named(input.to, field: "to")
        let date = try ISOTime.parse(input.time, field: "time", zone: from)
        return Self.moment(date, in: to)
    }

    // MARK: add

    struct AddInput: Decodable {
        var time: String
        var years: Int?
        var months: Int?
        var weeks: Int?
        var days: Int?
        var hours: Int?
        var minutes: Int?
        var seconds: Int?
        /// The zone whose calendar the arithmetic follows (a day across a DST change is 23 or
        /// 25 hours there), and of a `time` without an offset. Default UTC.
        var time_zone: String?
    }

    func add(_ input: AddInput, _ call: CallContext) throws -> Moment {
        let zone = try Zones.named(input.time_zone, field: "time_zone")
        let date = try ISOTime.parse(input.time, field: "time", zone: zone)
        var components = DateComponents()
        components.year = input.years
        components.month = input.months
        components.weekOfYear = input.weeks
        components.day = input.days
        components.hour = input.hours
        components.minute = input.minutes
        components.second = input.seconds
        for (name, value) in [("years", input.years), ("months", input.months), ("weeks", input.weeks), ("days", input.days),
                              ("hours", input.hours), ("minutes", input.minutes), ("seconds", input.seconds)] {
            if let value, abs(value) > 100_000_000 {
                throw DriverError.invalidArgument("\(name) is \(value); at most 100000000 either way")
            }
        }
        guard let result = ISOTime.calendar(zone).date(byAdding: components, to: date) else {
            throw DriverError.invalidArgument("the result is outside the calendar's range; use smaller amounts")
        }
        return Self.moment(result, in: zone)
    }

    // MARK: difference

    struct DifferenceInput: Decodable {
        var from: String
        var to: String
        /// The zone of times written without an offset, and whose calendar days are counted.
        var time_zone: String?
    }

    struct Breakdown: Encodable {
        var days: Int
        var hours: Int
        var minutes: Int
        var seconds: Int
    }

    struct DifferenceOutput: Encodable {
        /// `to - from`: negative when `to` is earlier.
        var seconds: Double
        var minutes: Double
        var hours: Double
        var days: Double
        var weeks: Double
        /// Calendar days between the two dates in time_zone (midnights crossed).
        var calendar_days: Int
        /// The same span as whole days, hours, minutes and seconds (all with the sign of the span).
        var breakdown: Breakdown
    }

    func difference(_ input: DifferenceInput, _ call: CallContext) throws -> DifferenceOutput {
        let zone = try Zones.named(input.time_zone, field: "time_zone")
        let from = try ISOTime.parse(input.from, field: "from", zone: zone)
        let to = try ISOTime.parse(input.to, field: "to", zone: zone)
        let seconds = to.timeIntervalSince(from)
        let calendar = ISOTime.calendar(zone)
        let days = calendar.dateComponents([.day], from: calendar.startOfDay(for: from), to: calendar.startOfDay(for: to)).day ?? 0
        let total = Int(seconds.rounded(.towardZero))
        let magnitude = abs(total), sign = total < 0 ? -1 : 1
        let breakdown = Breakdown(days: sign * (magnitude / 86_400), hours: sign * (magnitude % 86_400 / 3600),
                                  minutes: sign * (magnitude % 3600 / 60), seconds: sign * (magnitude % 60))
        return DifferenceOutput(seconds: seconds, minutes: seconds / 60, hours: seconds / 3600, days: seconds / 86_400,
                                weeks: seconds / 604_800, calendar_days: days, breakdown: breakdown)
    }

    // MARK: day_of_week

    struct DayOfWeekInput: Decodable {
        /// A date ("2025-12-01") or a time ("2025-12-01T23:30:00-05:00").
        var date: String
        var time_zone: String?
    }

    struct DayOfWeekOutput: Encodable {
        var date: String
        var day_of_week: String
        /// ISO 8601: Monday is 1, Sunday 7.
        var iso_weekday: Int
        var iso_week: Int
        var iso_week_year: Int
        var day_of_year: Int
    }

    func dayOfWeek(_ input: DayOfWeekInput, _ call: CallContext) throws -> DayOfWeekOutput {
        let zone = try Zones.named(input.time_zone, field: "time_zone")
        let date = try ISOTime.parse(input.date, field: "date", zone: zone)
        var iso = Calendar(identifier: .iso8601)
        iso.timeZone = zone
        let parts = iso.dateComponents([.year, .month, .day, .weekday, .weekOfYear, .yearForWeekOfYear], from: date)
        let weekday = ((parts.weekday ?? 1) + 5) % 7 + 1   // Foundation: Sunday is 1
        let dayOfYear = iso.ordinality(of: .day, in: .year, for: date) ?? 0
        return DayOfWeekOutput(date: String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0),
                               day_of_week: ISOTime.weekdayNames[weekday - 1], iso_weekday: weekday,
                               iso_week: parts.weekOfYear ?? 0, iso_week_year: parts.yearForWeekOfYear ?? 0, day_of_year: dayOfYear)
    }

    // MARK: zones

    struct ZonesInput: Decodable {
        /// Case-insensitive text the zone names must contain ("paris", "America/").
        var query: String?
        var limit: Int?
    }

    struct ZonesOutput: Encodable {
        var zones: [String]
        var count: Int
        var truncated: Bool
    }

    func zones(_ input: ZonesInput, _ call: CallContext) throws -> ZonesOutput {
        let limit = input.limit ?? 100
        guard (1...1000).contains(limit) else { throw DriverError.invalidArgument("limit must be between 1 and 1000, got \(limit)") }
        let query = input.query?.lowercased() ?? ""
        let matches = Zones.all.filter { query.isEmpty || $0.lowercased().contains(query) }
        return ZonesOutput(zones: Array(matches.prefix(limit)), count: matches.count, truncated: matches.count > limit)
    }
}

// MARK: - Time zones

enum Zones {
    /// Every IANA name the system's database knows, sorted.
    static let all: [String] = TimeZone.knownTimeZoneIdentifiers.sorted()

    /// An IANA zone ("Europe/Paris"), "UTC", or a fixed offset ("+05:30"); nil means UTC.
    static func named(_ name: String?, field: String) throws -> TimeZone {
        guard let name, !name.isEmpty else { return ISOTime.utc }
        if name == "UTC" || name == "Z" || name == "GMT" { return ISOTime.utc }
        if let seconds = ISOTime.offsetSeconds(Substring(name)), let zone = TimeZone(secondsFromGMT: seconds) { return zone }
        // Foundation's list of known names lags the system's tzdata (Asia/Kolkata is missing
        // from it, Asia/Calcutta is there), so any name TimeZone can load is accepted.
        if !name.contains(".."), let zone = TimeZone(identifier: name) { return zone }
        let near = nearest(name)
        throw DriverError.invalidArgument("\(field): unknown time zone \"\(name)\"" + (near.isEmpty ? "" : "; did you mean \(near.joined(separator: ", "))?")
            + " Time zones are IANA names such as Europe/Paris or America/New_York, UTC, or an offset such as +05:30 (clock.zones lists them)")
    }

    /// The closest names by edit distance (case-insensitive), also matching on the part after the last "/".
    static func nearest(_ name: String, limit: Int = 3) -> [String] {
        let target = Array(name.lowercased().utf8)
        let city = Array((name.split(separator: "/").last.map(String.init) ?? name).lowercased().utf8)
        var scored: [(String, Int)] = []
        for zone in all {
            let lower = zone.lowercased()
            var distance = editDistance(target, Array(lower.utf8))
            if let last = lower.split(separator: "/").last { distance = min(distance, editDistance(city, Array(last.utf8)) + (city == target ? 0 : 1)) }
            scored.append((zone, distance))
        }
        scored.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        guard let best = scored.first?.1, best <= max(2, target.count / 3) else { return [] }
        return scored.filter { $0.1 == best }.prefix(limit).map(\.0)
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

// MARK: - ISO 8601

enum ISOTime {
    static let utc = TimeZone(identifier: "UTC")!
    static let weekdayNames = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    static func calendar(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    static func weekdayName(_ date: Date, in zone: TimeZone) -> String {
        let weekday = calendar(zone).component(.weekday, from: date)   // Sunday is 1
        return weekdayNames[(weekday + 5) % 7]
    }

    /// "2025-12-01T13:00:00+01:00" ("Z" in UTC; milliseconds only when there are some).
    static func format(_ date: Date, in zone: TimeZone) -> String {
        let parts = calendar(zone).dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0,
                          parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
        let millis = Int((Double(parts.nanosecond ?? 0) / 1_000_000).rounded())
        if millis > 0 && millis < 1000 { text += String(format: ".%03d", millis) }
        let offset = zone.secondsFromGMT(for: date)
        if offset == 0 && (zone.identifier == "UTC" || zone.identifier == "GMT") { return text + "Z" }
        let sign = offset < 0 ? "-" : "+"
        return text + String(format: "%@%02d:%02d", sign, abs(offset) / 3600, abs(offset) % 3600 / 60)
    }

    /// "+05:30", "-08:00", "+0530" → seconds east of UTC.
    static func offsetSeconds(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") else { return nil }
        let digits = bytes.dropFirst().filter { $0 != UInt8(ascii: ":") }
        guard digits.count == 4, digits.allSatisfy({ (48...57).contains($0) }),
              bytes.count == 5 || (bytes.count == 6 && bytes[3] == UInt8(ascii: ":")) else { return nil }
        let values = digits.map { Int($0) - 48 }
        let hours = values[0] * 10 + values[1], minutes = values[2] * 10 + values[3]
        guard hours <= 18, minutes < 60 else { return nil }
        return (first == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
    }

    /// A date ("2025-12-01", midnight in `zone`), a local time ("2025-12-01T09:30[:00[.250]]",
    /// in `zone`), or a time with its offset ("...Z", "...+02:00"). A space may stand for the T.
    static func parse(_ raw: String, field: String, zone: TimeZone) throws -> Date {
        let text = raw.trimmingCharacters(in: .whitespaces)
        func refuse(_ why: String) -> DriverError {
            DriverError.invalidArgument("\(field): \"\(raw.prefix(60))\" is not an ISO 8601 date or time (\(why)); write 2025-12-01, 2025-12-01T09:30:00 or 2025-12-01T09:30:00+01:00")
        }
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for i in range {
                guard (48...57).contains(bytes[i]) else { return nil }
                value = value * 10 + Int(bytes[i]) - 48
            }
            return value
        }
        guard bytes.count >= 10, let year = number(0..<4), bytes[4] == UInt8(ascii: "-"), let month = number(5..<7),
              bytes[7] == UInt8(ascii: "-"), let day = number(8..<10) else { throw refuse("expected YYYY-MM-DD first") }
        var parts = DateComponents(year: year, month: month, day: day, hour: 0, minute: 0, second: 0)
        var timeZone = zone
        var i = 10
        if i < bytes.count {
            guard bytes[i] == UInt8(ascii: "T") || bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "t") else { throw refuse("expected T after the date") }
            guard let hour = number(i + 1..<i + 3), i + 3 < bytes.count, bytes[i + 3] == UInt8(ascii: ":"),
                  let minute = number(i + 4..<i + 6) else { throw refuse("expected HH:MM after the T") }
            parts.hour = hour
            parts.minute = minute
            i += 6
            if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                guard let second = number(i + 1..<i + 3) else { throw refuse("expected two digits of seconds") }
                parts.second = second
                i += 3
                if i < bytes.count, bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: ",") {
                    var j = i + 1, fraction = 0.0, scale = 0.1
                    while j < bytes.count, (48...57).contains(bytes[j]) {
                        fraction += Double(Int(bytes[j]) - 48) * scale
                        scale /= 10
                        j += 1
                    }
                    guard j > i + 1 else { throw refuse("expected digits after the decimal point") }
                    parts.nanosecond = Int((fraction * 1e9).rounded())
                    i = j
                }
            }
            if i < bytes.count {
                let rest = text.utf8.dropFirst(i)
                let suffix = Substring(String(decoding: rest, as: UTF8.self))
                if suffix == "Z" || suffix == "z" {
                    timeZone = utc
                } else if let offset = offsetSeconds(suffix), let fixed = TimeZone(secondsFromGMT: offset) {
                    timeZone = fixed
                } else {
                    throw refuse("\"\(suffix)\" is not an offset such as Z, +02:00 or -0530")
                }
            }
        }
        guard (1...12).contains(month), (1...31).contains(day), (parts.hour ?? 0) <= 23, (parts.minute ?? 0) <= 59, (parts.second ?? 0) <= 60 else {
            throw refuse("a field is out of range")
        }
        let calendar = calendar(timeZone)
        guard let date = calendar.date(from: parts),
              calendar.component(.day, from: date) == day, calendar.component(.month, from: date) == month else {
            throw refuse("there is no such day: \(String(format: "%04d-%02d-%02d", year, month, day))")
        }
        return date
    }
}

// MARK: - Entry point

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(ClockDriver.self, host, driver) }
