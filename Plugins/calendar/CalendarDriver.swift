// The calendar driver: events in a local iCalendar (.ics) file — list by range, create,
// update, delete, and find free slots ("book a meeting").
//
// The file is read and written only through the fs.read / fs.write / fs.stat / fs.move
// system calls, so the kernel checks every access on the canonical path. A change is
// written to a temporary file beside the calendar and moved over it (one rename), so a
// crash never leaves half a calendar; the file is read again just before, and a file that
// changed meanwhile is not overwritten. A file that does not parse is an error with its
// line number, and is never written. Everything the driver does not change is written
// back exactly as it was read (see ICalendar.swift).
import Foundation
import LLMOSDriverSDK

struct CalendarDriver: LLMOSToolDriver {
    static let name = "calendar"
    static let version = "1.0.0"

    struct Config: Decodable {
        var path: String?
        var timeZone: String?
        var workStart: String?
        var workEnd: String?
        var workDays: [Int]?
        enum CodingKeys: String, CodingKey {
            case path, timeZone = "time_zone", workStart = "work_start", workEnd = "work_end", workDays = "work_days"
        }
    }

    /// The calendar file, as given (relative paths are the kernel's: from the workspace).
    let path: String
    let zone: TimeZone
    let workStart: String
    let workEnd: String
    /// ISO weekdays, 1 = Monday … 7 = Sunday.
    let workDays: [Int]

    /// The largest calendar read (one fs.read).
    static let maxFileBytes: Int64 = 8 << 20

    init(context: DriverContext) throws {
        let config = try context.decodeConfig(Config.self)
        path = config.path ?? "calendar.ics"
        guard !path.isEmpty else { throw DriverError.invalidArgument("invalid configuration: path must not be empty (default calendar.ics)") }
        if let name = config.timeZone {
            guard let zone = TimeZone(identifier: name) else {
                throw DriverError.invalidArgument("invalid configuration: time_zone \"\(name)\" is not a time zone; use an IANA name such as Europe/Paris or UTC")
            }
            self.zone = zone
        } else {
            zone = TimeZone.current
        }
        workStart = config.workStart ?? "09:00"
        workEnd = config.workEnd ?? "17:00"
        workDays = config.workDays ?? [1, 2, 3, 4, 5]
        _ = try CalendarTime.clockMinutes(workStart, field: "invalid configuration: work_start")
        _ = try CalendarTime.clockMinutes(workEnd, field: "invalid configuration: work_end")
    }

    static func register(_ tools: inout Router) {
        tools.add("list", Self.list)
        tools.add("create", Self.create)
        tools.add("update", Self.update)
        tools.add("delete", Self.delete)
        tools.add("free_slots", Self.freeSlots)
    }

    // MARK: The file, through system calls

    struct PathRequest: Encodable { var path: String }
    struct ReadRequest: Encodable { var path: String; var length: Int64 }
    struct ReadResponse: Decodable { var path: String; var size: Int64; var content: String; var encoding: String; var truncated: Bool }
    struct WriteRequest: Encodable { var path: String; var content: String; var mode: String }
    struct WriteResponse: Decodable { var path: String }
    struct MoveRequest: Encodable { var path: String; var to: String; var overwrite: Bool }
    struct MoveResponse: Decodable { var path: String; var to: String }

    /// The calendar as read: nil text when the file does not exist yet.
    struct Loaded {
        var canonical: String?
        var text: String?
        var document: ICSDocument
    }

    func load(_ call: CallContext) throws -> Loaded {
        let response: ReadResponse
        switch Result(catching: { () throws(DriverError) in
            try call.syscall("fs.read", ReadRequest(path: path, length: Self.maxFileBytes + 1), as: ReadResponse.self)
        }) {
        case .success(let read): response = read
        case .failure(let error):
            if error.code == .notFound && error.message.contains("no such file") {
                return Loaded(canonical: nil, text: nil, document: .empty())
            }
            throw DriverError(error.code, "the calendar file (config path \(path)): \(error.message)")
        }
        guard !response.truncated, response.size <= Self.maxFileBytes else {
            throw DriverError.resourceExhausted("the calendar file \(response.path) is \(response.size) bytes; this driver reads at most \(Self.maxFileBytes)")
        }
        guard response.encoding == "utf-8" else {
            throw DriverError.invalidArgument("the calendar file \(response.path) is not UTF-8 text, so it is not an iCalendar file; it was not changed")
        }
        do throws(ICSError) {
            return Loaded(canonical: response.path, text: response.content, document: try ICSDocument.parse(response.content))
        } catch {
            throw DriverError.invalidArgument("the calendar file \(response.path) does not parse at \(error); it was not changed — fix that line (or point the calendar driver's config path at another file)")
        }
    }

    /// Writes `document` in place of what `loaded` read: beside it first, then one move.
    func save(_ document: ICSDocument, over loaded: Loaded, _ call: CallContext) throws -> String {
        let text = document.serialized()
        guard let canonical = loaded.canonical else {
            // A new calendar: create it (never over a file that appeared meanwhile).
            return try call.syscall("fs.write", WriteRequest(path: path, content: text, mode: "create"), as: WriteResponse.self).path
        }
        let again = try call.syscall("fs.read", ReadRequest(path: canonical, length: Self.maxFileBytes + 1), as: ReadResponse.self)
        guard again.content == loaded.text else {
            throw DriverError.unavailable("the calendar file \(canonical) changed while this call was working on it; nothing was written — try again")
        }
        let slash = canonical.lastIndex(of: "/")!
        let temporary = String(canonical[...slash]) + "." + String(canonical[canonical.index(after: slash)...]) + ".llmos-tmp.ics"
        let created = Result { () throws(DriverError) in
            try call.syscall("fs.write", WriteRequest(path: temporary, content: text, mode: "create"), as: WriteResponse.self)
        }
        if case .failure(let error) = created {
            // Left over from a call that failed between its write and its move: replace it.
            guard error.message.contains("already exists") else { throw error }
            _ = try call.syscall("fs.write", WriteRequest(path: temporary, content: text, mode: "overwrite"), as: WriteResponse.self)
        }
        _ = try call.syscall("fs.move", MoveRequest(path: temporary, to: canonical, overwrite: true), as: MoveResponse.self)
        return canonical
    }

    // MARK: Events

    /// One VEVENT, resolved.
    struct Event {
        var uid: String
        var summary: String
        var location: String?
        var description: String?
        var status: String?
        var start: EventTime
        var end: EventTime
        var transparent: Bool
        var rule: Result<RecurrenceRule, UnsupportedRule>?
        var ruleText: String?
        var exceptions: [Date]
        /// An override of one occurrence (RECURRENCE-ID).
        var recurrenceID: Date?
        var duration: TimeInterval { end.date.timeIntervalSince(start.date) }
    }

    /// One occurrence in a range.
    struct Occurrence {
        var event: Event
        var start: Date
        var end: Date
    }

    /// TZID → IANA name, from the file's VTIMEZONEs that carry X-LIC-LOCATION.
    static func aliases(_ calendar: ICSComponent) -> [String: String] {
        var map: [String: String] = [:]
        for zone in calendar.components where zone.name == "VTIMEZONE" {
            if let id = zone.property("TZID")?.value, let location = zone.property("X-LIC-LOCATION")?.value { map[id] = location }
        }
        return map
    }

    func events(_ document: ICSDocument) throws -> [Event] {
        let aliases = Self.aliases(document.calendar)
        var result: [Event] = []
        func fail(_ line: Int, _ message: String) -> DriverError {
            DriverError.invalidArgument("the calendar file (\(path)) line \(line): \(message); it was not changed")
        }
        for component in document.calendar.components where component.name == "VEVENT" {
            guard let uid = component.property("UID")?.value, !uid.isEmpty else {
                throw fail(component.beginLine, "the VEVENT has no UID (RFC 5545 requires one)")
            }
            guard let startProperty = component.property("DTSTART") else {
                throw fail(component.beginLine, "the VEVENT \(uid) has no DTSTART")
            }
            do {
                let start = try CalendarTime.parse(startProperty, defaultZone: zone, aliases: aliases)
                let startZone = start.tzid.flatMap { CalendarTime.zone($0, aliases: aliases) } ?? (start.utc ? CalendarTime.utcZone : zone)
                var end: EventTime
                if let endProperty = component.property("DTEND") {
                    end = try CalendarTime.parse(endProperty, defaultZone: zone, aliases: aliases)
                } else if let durationProperty = component.property("DURATION") {
                    guard let duration = CalendarTime.duration(durationProperty.value),
                          let date = CalendarTime.gregorian(startZone).date(byAdding: duration, to: start.date) else {
                        throw ICSError(line: durationProperty.line, message: "DURATION \"\(durationProperty.value)\" is not a duration (e.g. PT1H30M, P1D)")
                    }
                    end = EventTime(date: date, allDay: start.allDay, tzid: start.tzid, utc: start.utc)
                } else {
                    // RFC 5545: a date lasts the day, a date-time is an instant.
                    let date = start.allDay ? CalendarTime.gregorian(startZone).date(byAdding: .day, value: 1, to: start.date)! : start.date
                    end = EventTime(date: date, allDay: start.allDay, tzid: start.tzid, utc: start.utc)
                }
                if end.date < start.date {
                    throw ICSError(line: component.property("DTEND")?.line ?? component.beginLine, message: "the event \(uid) ends before it starts")
                }
                var exceptions: [Date] = []
                for exdate in component.all("EXDATE") {
                    for value in exdate.value.split(separator: ",") {
                        var single = exdate
                        single.value = String(value)
                        exceptions.append(try CalendarTime.parse(single, defaultZone: zone, aliases: aliases).date)
                    }
                }
                let recurrenceID = try component.property("RECURRENCE-ID").map { try CalendarTime.parse($0, defaultZone: zone, aliases: aliases).date }
                let ruleText = component.property("RRULE")?.value
                result.append(Event(
                    uid: uid, summary: component.property("SUMMARY")?.text ?? "",
                    location: component.property("LOCATION")?.text, description: component.property("DESCRIPTION")?.text,
                    status: component.property("STATUS")?.value.uppercased(), start: start, end: end,
                    transparent: component.property("TRANSP")?.value.uppercased() == "TRANSPARENT",
                    rule: ruleText.map { RecurrenceRule.parse($0, zone: startZone, aliases: aliases) }, ruleText: ruleText,
                    exceptions: exceptions, recurrenceID: recurrenceID))
            } catch let error as ICSError {
                throw fail(error.line, error.message)
            }
        }
        return result
    }

    /// Every occurrence overlapping [from, to), in start order.
    func occurrences(_ events: [Event], from: Date, to: Date, aliases: [String: String]) -> [Occurrence] {
        var result: [Occurrence] = []
        // Occurrences replaced by an override (same UID, RECURRENCE-ID).
        var overridden: [String: Set<Date>] = [:]
        for event in events { if let id = event.recurrenceID { overridden[event.uid, default: []].insert(id) } }
        for event in events {
            guard case .success(let rule)? = event.rule, event.recurrenceID == nil else {
                if event.end.date > from && event.start.date < to || (event.duration == 0 && event.start.date >= from && event.start.date < to) {
                    result.append(Occurrence(event: event, start: event.start.date, end: event.end.date))
                }
                continue
            }
            let zone = event.start.tzid.flatMap { CalendarTime.zone($0, aliases: aliases) } ?? (event.start.utc ? CalendarTime.utcZone : self.zone)
            let skipped = Set(event.exceptions).union(overridden[event.uid] ?? [])
            for start in rule.occurrences(from: event.start.date, zone: zone, until: to) where !skipped.contains(start) {
                let end = start.addingTimeInterval(event.duration)
                if end > from || (event.duration == 0 && start >= from) {
                    result.append(Occurrence(event: event, start: start, end: end))
                }
            }
        }
        return result.sorted { ($0.start, $0.event.uid) < ($1.start, $1.event.uid) }
    }

    struct EventOutput: Encodable {
        var uid: String
        var summary: String
        var start: String
        var end: String
        var allDay: Bool
        var location: String?
        var description: String?
        var status: String?
        var timeZone: String?
        var recurrence: String?
        /// False when the RRULE is outside what this driver expands (listed once).
        var recurrenceExpanded: Bool?
        enum CodingKeys: String, CodingKey {
            case uid, summary, start, end, location, description, status, recurrence
            case allDay = "all_day", timeZone = "time_zone", recurrenceExpanded = "recurrence_expanded"
        }
    }

    func output(_ event: Event, start: Date, end: Date, zone: TimeZone) -> EventOutput {
        let allDay = event.start.allDay
        let dateZone = self.zone  // all-day dates are midnights in the calendar's zone
        var expanded: Bool?
        if let rule = event.rule {
            if case .success = rule { expanded = true } else { expanded = false }
        }
        return EventOutput(
            uid: event.uid, summary: event.summary,
            start: allDay ? CalendarTime.isoDate(start, dateZone) : CalendarTime.iso(start, zone),
            end: allDay ? CalendarTime.isoDate(end, dateZone) : CalendarTime.iso(end, zone),
            allDay: allDay, location: event.location, description: event.description, status: event.status,
            timeZone: event.start.tzid, recurrence: event.ruleText, recurrenceExpanded: expanded)
    }

    func zone(_ name: String?) throws -> TimeZone {
        guard let name else { return zone }
        guard let zone = TimeZone(identifier: name) else {
            throw DriverError.invalidArgument("time_zone \"\(name)\" is not a time zone; use an IANA name such as Europe/Paris or UTC")
        }
        return zone
    }

    // MARK: list

    struct ListInput: Decodable {
        var from: String?
        var to: String?
        var query: String?
        var maxEvents: Int?
        var timeZone: String?
        enum CodingKeys: String, CodingKey { case from, to, query, maxEvents = "max_events", timeZone = "time_zone" }
    }

    struct ListOutput: Encodable {
        var events: [EventOutput]
        var count: Int
        var truncated: Bool
        var from: String
        var to: String
        var timeZone: String
        enum CodingKeys: String, CodingKey { case events, count, truncated, from, to, timeZone = "time_zone" }
    }

    /// [from, to): default today's midnight, for 7 days.
    func range(_ fromText: String?, _ toText: String?, zone: TimeZone, days: Int = 7) throws -> (Date, Date) {
        let calendar = CalendarTime.gregorian(zone)
        let from = try fromText.map { try CalendarTime.parseInput($0, field: "from", zone: zone).date } ?? calendar.startOfDay(for: Date())
        let to: Date
        if let toText {
            let parsed = try CalendarTime.parseInput(toText, field: "to", zone: zone)
            // A date as `to` includes that day.
            to = parsed.isDate ? calendar.date(byAdding: .day, value: 1, to: parsed.date)! : parsed.date
        } else {
            to = calendar.date(byAdding: .day, value: days, to: from)!
        }
        guard to > from else { throw DriverError.invalidArgument("to must be after from") }
        guard to.timeIntervalSince(from) <= 366 * 5 * 86_400 else {
            throw DriverError.invalidArgument("the range is longer than 5 years; ask for a shorter one")
        }
        return (from, to)
    }

    func list(_ input: ListInput, _ call: CallContext) throws -> ListOutput {
        let zone = try zone(input.timeZone)
        let (from, to) = try range(input.from, input.to, zone: zone)
        let loaded = try load(call)
        let all = occurrences(try events(loaded.document), from: from, to: to, aliases: Self.aliases(loaded.document.calendar))
        let query = input.query?.lowercased()
        let matching = all.filter { occurrence in
            guard let query else { return true }
            return [occurrence.event.summary, occurrence.event.location ?? "", occurrence.event.description ?? ""]
                .contains { $0.lowercased().contains(query) }
        }
        let limit = input.maxEvents ?? 200
        let shown = matching.prefix(limit).map { output($0.event, start: $0.start, end: $0.end, zone: zone) }
        return ListOutput(events: Array(shown), count: shown.count, truncated: matching.count > limit,
                          from: CalendarTime.iso(from, zone), to: CalendarTime.iso(to, zone), timeZone: zone.identifier)
    }

    // MARK: create

    struct CreateInput: Decodable {
        var summary: String
        var start: String
        var end: String?
        var durationMinutes: Int?
        var allDay: Bool?
        var location: String?
        var description: String?
        var timeZone: String?
        enum CodingKeys: String, CodingKey {
            case summary, start, end, location, description
            case durationMinutes = "duration_minutes", allDay = "all_day", timeZone = "time_zone"
        }
    }

    struct ChangeOutput: Encodable {
        var event: EventOutput
        var file: String
        /// Other events overlapping this one (by uid and summary).
        var conflicts: [Conflict]
    }

    struct Conflict: Encodable { var uid: String; var summary: String; var start: String; var end: String }

    /// The start and end a model gave, as an all-day pair of midnights or two instants.
    func times(start startText: String, end endText: String?, minutes: Int?, allDay: Bool?, zone: TimeZone)
        throws -> (start: Date, end: Date, allDay: Bool) {
        let start = try CalendarTime.parseInput(startText, field: "start", zone: zone)
        let isAllDay = allDay ?? start.isDate
        let calendar = CalendarTime.gregorian(self.zone)
        if isAllDay {
            let first = try CalendarTime.parseInput(String(startText.prefix(10)), field: "start", zone: self.zone).date
            var last = calendar.date(byAdding: .day, value: 1, to: first)!
            if let endText {
                // An all-day end is the last day, inclusive (as people say it).
                let day = try CalendarTime.parseInput(String(endText.prefix(10)), field: "end", zone: self.zone).date
                last = calendar.date(byAdding: .day, value: 1, to: day)!
            }
            guard last > first else { throw DriverError.invalidArgument("end must not be before start") }
            return (first, last, true)
        }
        let end: Date
        if let endText {
            end = try CalendarTime.parseInput(endText, field: "end", zone: zone).date
        } else {
            end = start.date.addingTimeInterval(TimeInterval((minutes ?? 60) * 60))
        }
        guard end > start.date else { throw DriverError.invalidArgument("end (\(endText ?? "start + duration_minutes")) must be after start (\(startText))") }
        return (start.date, end, false)
    }

    func stampProperties() -> [ICSProperty] {
        let now = CalendarTime.utcStamp(Date())
        return [ICSProperty(name: "DTSTAMP", value: now), ICSProperty(name: "LAST-MODIFIED", value: now)]
    }

    static func timeProperty(_ name: String, _ date: Date, allDay: Bool, tzid: String?, zone: TimeZone, calendarZone: TimeZone) -> ICSProperty {
        if allDay { return ICSProperty(name: name, parameters: [ICSParameter(name: "VALUE", values: ["DATE"])], value: CalendarTime.dateStamp(date, calendarZone)) }
        if let tzid { return ICSProperty(name: name, parameters: [ICSParameter(name: "TZID", values: [tzid])], value: CalendarTime.localStamp(date, zone)) }
        return ICSProperty(name: name, value: CalendarTime.utcStamp(date))
    }

    func conflicts(with uid: String, start: Date, end: Date, in document: ICSDocument, zone: TimeZone) throws -> [Conflict] {
        occurrences(try events(document), from: start, to: end, aliases: Self.aliases(document.calendar))
            .filter { $0.event.uid != uid && !$0.event.transparent && $0.event.status != "CANCELLED" && $0.end > start && $0.start < end }
            .map { Conflict(uid: $0.event.uid, summary: $0.event.summary, start: CalendarTime.iso($0.start, zone), end: CalendarTime.iso($0.end, zone)) }
    }

    func create(_ input: CreateInput, _ call: CallContext) throws -> ChangeOutput {
        let summary = input.summary.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !summary.isEmpty else { throw DriverError.invalidArgument("summary must not be blank") }
        guard input.end == nil || input.durationMinutes == nil else {
            throw DriverError.invalidArgument("give end or duration_minutes, not both")
        }
        let zone = try zone(input.timeZone)
        let (start, end, allDay) = try times(start: input.start, end: input.end, minutes: input.durationMinutes, allDay: input.allDay, zone: zone)
        var loaded = try load(call)
        _ = try events(loaded.document)  // refuse to add to a file that does not make sense
        let uid = UUID().uuidString.lowercased() + "@llmos"
        var event = ICSComponent(name: "VEVENT")
        var properties = [ICSProperty(name: "UID", value: uid)] + stampProperties()
        properties.append(ICSProperty(name: "CREATED", value: CalendarTime.utcStamp(Date())))
        properties.append(Self.timeProperty("DTSTART", start, allDay: allDay, tzid: nil, zone: zone, calendarZone: self.zone))
        properties.append(Self.timeProperty("DTEND", end, allDay: allDay, tzid: nil, zone: zone, calendarZone: self.zone))
        properties.append(ICSProperty(name: "SUMMARY", value: ICSText.escape(summary)))
        if let location = input.location, !location.isEmpty { properties.append(ICSProperty(name: "LOCATION", value: ICSText.escape(location))) }
        if let description = input.description, !description.isEmpty { properties.append(ICSProperty(name: "DESCRIPTION", value: ICSText.escape(description))) }
        event.items = properties.map { .property($0) }
        let clashes = try conflicts(with: uid, start: start, end: end, in: loaded.document, zone: zone)
        loaded.document.calendar.items.append(.component(event))
        let file = try save(loaded.document, over: loaded, call)
        guard let created = try events(loaded.document).first(where: { $0.uid == uid }) else {
            throw DriverError.internal("the new event \(uid) is missing after it was added")
        }
        return ChangeOutput(event: output(created, start: created.start.date, end: created.end.date, zone: zone), file: file, conflicts: clashes)
    }

    // MARK: update

    struct UpdateInput: Decodable {
        var uid: String
        var summary: String?
        var start: String?
        var end: String?
        var durationMinutes: Int?
        var allDay: Bool?
        var location: String?
        var description: String?
        var timeZone: String?
        enum CodingKeys: String, CodingKey {
            case uid, summary, start, end, location, description
            case durationMinutes = "duration_minutes", allDay = "all_day", timeZone = "time_zone"
        }
    }

    /// The master VEVENT of `uid` (the one without RECURRENCE-ID).
    func masterIndex(_ uid: String, _ document: ICSDocument) throws -> Int {
        let index = document.calendar.items.firstIndex { item in
            guard case .component(let c) = item, c.name == "VEVENT" else { return false }
            return c.property("UID")?.value == uid && c.property("RECURRENCE-ID") == nil
        }
        guard let index else { throw DriverError.notFound("no event with uid \(uid) in the calendar (\(path)); calendar.list shows the uids") }
        return index
    }

    func update(_ input: UpdateInput, _ call: CallContext) throws -> ChangeOutput {
        let zone = try zone(input.timeZone)
        var loaded = try load(call)
        let existing = try events(loaded.document)
        let position = try masterIndex(input.uid, loaded.document)
        guard case .component(var component) = loaded.document.calendar.items[position],
              let event = existing.first(where: { $0.uid == input.uid && $0.recurrenceID == nil }) else {
            throw DriverError.internal("the event \(input.uid) vanished while updating")
        }
        guard input.summary != nil || input.start != nil || input.end != nil || input.durationMinutes != nil
              || input.location != nil || input.description != nil || input.allDay != nil else {
            throw DriverError.invalidArgument("nothing to update: give summary, start, end, duration_minutes, all_day, location or description")
        }
        if let summary = input.summary {
            let trimmed = summary.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw DriverError.invalidArgument("summary must not be blank") }
            component.set("SUMMARY", ICSProperty(name: "SUMMARY", value: ICSText.escape(trimmed)))
        }
        // An empty location or description removes it.
        if let location = input.location { component.set("LOCATION", location.isEmpty ? nil : ICSProperty(name: "LOCATION", value: ICSText.escape(location))) }
        if let description = input.description { component.set("DESCRIPTION", description.isEmpty ? nil : ICSProperty(name: "DESCRIPTION", value: ICSText.escape(description))) }
        if input.start != nil || input.end != nil || input.durationMinutes != nil || input.allDay != nil {
            // Unchanged parts keep their values: a new start keeps the duration.
            let allDay = input.allDay ?? event.start.allDay
            let startText = input.start ?? (allDay ? CalendarTime.isoDate(event.start.date, self.zone) : CalendarTime.iso(event.start.date, zone))
            var endText = input.end
            var minutes = input.durationMinutes
            if endText == nil && minutes == nil {
                if allDay && event.start.allDay {
                    let lastDay = CalendarTime.gregorian(self.zone).date(byAdding: .day, value: -1, to: event.end.date)!
                    endText = input.start == nil ? CalendarTime.isoDate(lastDay, self.zone) : nil
                    if input.start != nil {
                        let days = CalendarTime.gregorian(self.zone).dateComponents([.day], from: event.start.date, to: event.end.date).day ?? 1
                        let newStart = try CalendarTime.parseInput(String(startText.prefix(10)), field: "start", zone: self.zone).date
                        endText = CalendarTime.isoDate(CalendarTime.gregorian(self.zone).date(byAdding: .day, value: max(days, 1) - 1, to: newStart)!, self.zone)
                    }
                } else if !allDay {
                    minutes = max(1, Int(event.duration / 60))
                }
            }
            let (start, end, isAllDay) = try times(start: startText, end: endText, minutes: minutes, allDay: allDay, zone: zone)
            // A TZID event stays in its zone; others are written in UTC.
            let tzid = isAllDay ? nil : event.start.tzid
            let eventZone = tzid.flatMap { CalendarTime.zone($0, aliases: Self.aliases(loaded.document.calendar)) } ?? zone
            component.set("DTSTART", Self.timeProperty("DTSTART", start, allDay: isAllDay, tzid: tzid, zone: eventZone, calendarZone: self.zone))
            component.set("DURATION", nil)
            component.set("DTEND", Self.timeProperty("DTEND", end, allDay: isAllDay, tzid: tzid, zone: eventZone, calendarZone: self.zone))
        }
        let sequence = (component.property("SEQUENCE").flatMap { Int($0.value) } ?? 0) + 1
        component.set("SEQUENCE", ICSProperty(name: "SEQUENCE", value: String(sequence)))
        for stamp in stampProperties() { component.set(stamp.name, stamp) }
        loaded.document.calendar.items[position] = .component(component)
        guard let changed = try events(loaded.document).first(where: { $0.uid == input.uid && $0.recurrenceID == nil }) else {
            throw DriverError.internal("the event \(input.uid) is missing after the update")
        }
        let clashes = try conflicts(with: input.uid, start: changed.start.date, end: changed.end.date, in: loaded.document, zone: zone)
        let file = try save(loaded.document, over: loaded, call)
        return ChangeOutput(event: output(changed, start: changed.start.date, end: changed.end.date, zone: zone), file: file, conflicts: clashes)
    }

    // MARK: delete

    struct DeleteInput: Decodable { var uid: String }
    struct DeleteOutput: Encodable { var uid: String; var deleted: Int; var file: String }

    func delete(_ input: DeleteInput, _ call: CallContext) throws -> DeleteOutput {
        var loaded = try load(call)
        _ = try events(loaded.document)
        let before = loaded.document.calendar.items.count
        // The event and its overrides (same UID).
        loaded.document.calendar.items.removeAll { item in
            guard case .component(let c) = item, c.name == "VEVENT" else { return false }
            return c.property("UID")?.value == input.uid
        }
        let removed = before - loaded.document.calendar.items.count
        guard removed > 0 else { throw DriverError.notFound("no event with uid \(input.uid) in the calendar (\(path)); calendar.list shows the uids") }
        let file = try save(loaded.document, over: loaded, call)
        return DeleteOutput(uid: input.uid, deleted: removed, file: file)
    }

    // MARK: free_slots

    struct FreeInput: Decodable {
        var from: String?
        var to: String?
        var durationMinutes: Int
        var workStart: String?
        var workEnd: String?
        var workDays: [Int]?
        var timeZone: String?
        var maxSlots: Int?
        enum CodingKeys: String, CodingKey {
            case from, to
            case durationMinutes = "duration_minutes", workStart = "work_start", workEnd = "work_end"
            case workDays = "work_days", timeZone = "time_zone", maxSlots = "max_slots"
        }
    }

    struct Slot: Encodable {
        var start: String
        var end: String
        var minutes: Int
    }

    struct FreeOutput: Encodable {
        var slots: [Slot]
        var truncated: Bool
        var timeZone: String
        enum CodingKeys: String, CodingKey { case slots, truncated, timeZone = "time_zone" }
    }

    /// Free stretches of at least `duration_minutes` inside working hours on working
    /// days. Busy: every event occurrence except TRANSP:TRANSPARENT and STATUS:CANCELLED ones.
    func freeSlots(_ input: FreeInput, _ call: CallContext) throws -> FreeOutput {
        guard input.durationMinutes >= 1 else { throw DriverError.invalidArgument("duration_minutes must be at least 1") }
        let zone = try zone(input.timeZone)
        let (from, to) = try range(input.from, input.to, zone: zone)
        let startMinutes = try CalendarTime.clockMinutes(input.workStart ?? workStart, field: "work_start")
        let endMinutes = try CalendarTime.clockMinutes(input.workEnd ?? workEnd, field: "work_end")
        guard endMinutes > startMinutes else { throw DriverError.invalidArgument("work_end must be after work_start") }
        let days = input.workDays ?? workDays
        guard !days.isEmpty, days.allSatisfy({ (1...7).contains($0) }) else {
            throw DriverError.invalidArgument("work_days are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        }
        let loaded = try load(call)
        let busy = occurrences(try events(loaded.document), from: from, to: to, aliases: Self.aliases(loaded.document.calendar))
            .filter { !$0.event.transparent && $0.event.status != "CANCELLED" && $0.end > $0.start }
            .map { ($0.start, $0.end) }
            .sorted { $0.0 < $1.0 }
        let need = TimeInterval(input.durationMinutes * 60)
        let limit = input.maxSlots ?? 20
        let calendar = CalendarTime.gregorian(zone)
        var slots: [Slot] = []
        var day = calendar.startOfDay(for: from)
        while day < to && slots.count <= limit {
            try call.checkCancellation()
            let weekday = calendar.component(.weekday, from: day)  // 1 = Sunday
            let iso = weekday == 1 ? 7 : weekday - 1
            if days.contains(iso),
               let open = calendar.date(byAdding: .minute, value: startMinutes, to: day),
               let close = calendar.date(byAdding: .minute, value: endMinutes, to: day) {
                var cursor = max(open, from)
                let stop = min(close, to)
                for (busyStart, busyEnd) in busy where busyEnd > cursor && busyStart < stop {
                    if busyStart.timeIntervalSince(cursor) >= need {
                        slots.append(Slot(start: CalendarTime.iso(cursor, zone), end: CalendarTime.iso(busyStart, zone), minutes: Int(busyStart.timeIntervalSince(cursor) / 60)))
                    }
                    cursor = max(cursor, busyEnd)
                    if cursor >= stop { break }
                }
                if stop.timeIntervalSince(cursor) >= need {
                    slots.append(Slot(start: CalendarTime.iso(cursor, zone), end: CalendarTime.iso(stop, zone), minutes: Int(stop.timeIntervalSince(cursor) / 60)))
                }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { break }
            day = next
        }
        return FreeOutput(slots: Array(slots.prefix(limit)), truncated: slots.count > limit, timeZone: zone.identifier)
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(CalendarDriver.self, host, driver) }
