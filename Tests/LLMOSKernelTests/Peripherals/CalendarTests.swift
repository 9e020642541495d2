import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

// The calendar driver (Plugins/calendar, manifests/calendar.yaml) through the kernel,
// on a copy of Tests/Fixtures/calendar/work.ics (a Google-style export: VTIMEZONEs, a
// weekly TZID event with EXDATE, an override and a VALARM, folded and escaped text, an
// all-day event, a transparent and a cancelled event, an Outlook-style TZID, a VTODO).

fileprivate let fixture = Paths.repoRoot + "/Tests/Fixtures/calendar/work.ics"

fileprivate final class CalendarBox {
    let root: String
    var ws: String { root + "/ws" }
    var file: String { ws + "/calendar.ics" }

    init(copyFixture: Bool = true) {
        let dir = Paths.temporaryDirectory("calendar")
        root = FilePath.resolved(dir) ?? dir
        try! FileManager.default.createDirectory(atPath: root + "/ws", withIntermediateDirectories: true)
        try! FileManager.default.createDirectory(atPath: root + "/outside", withIntermediateDirectories: true)
        if copyFixture { try! FileManager.default.copyItem(atPath: fixture, toPath: file) }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var text: String { (try? String(contentsOfFile: file, encoding: .utf8)) ?? "" }

    func kernel(allow: [String] = ["fs.read=${workspace}/**", "fs.write=${workspace}/**"], config: JSONValue = ["time_zone": "Europe/Berlin"],
                asker: any Asker = DenyingAsker()) throws -> Kernel {
        let context = PolicyContext(home: root + "/home", workspace: ws)
        let rules = try allow.map { try PolicyParser.rule(fromFlag: $0, action: .allow, context: context) }
        let workspace = ws
        let kernel = makeKernel { c in
            c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), asker: asker, context: context)
            c.workspace = workspace
            c.driverConfig["calendar"] = config
        }
        try kernel.load(manifestAt: Paths.manifests + "/calendar.yaml")
        return kernel
    }
}

fileprivate func call(_ kernel: Kernel, _ tool: String, _ input: String) throws -> [String: Any] {
    let result = try kernel.call(tool, input: input)
    return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)")
}

fileprivate func events(_ output: [String: Any]) -> [[String: Any]] { output["events"] as? [[String: Any]] ?? [] }

@Suite struct CalendarTests {
    @Test func listExpandsTheExportedFixture() throws {
        let box = CalendarBox()
        let kernel = try box.kernel()
        let week = try call(kernel, "calendar.list", #"{"from": "2025-03-03", "to": "2025-03-15"}"#)
        let shown = events(week).map { "\($0["start"]!) \($0["summary"]!)" }
        #expect(shown == [
            "2025-03-03T09:30:00+01:00 Standup",           // 5 March is an EXDATE
            "2025-03-10T10:00:00+01:00 Standup (moved)",   // the override replaces 09:30
            "2025-03-11T14:00:00+01:00 Design review",     // 13:00Z
            "2025-03-12T09:30:00+01:00 Standup",
            "2025-03-12T12:00:00+01:00 Lunch (tentative)", // TZID "W. Europe Standard Time" via X-LIC-LOCATION
            "2025-03-12T16:00:00+01:00 Vendor call",       // DURATION, cancelled: listed, not busy
            "2025-03-13 Team offsite",
        ])
        let standup = try #require(events(week).first)
        #expect(standup["description"] as? String == "Daily sync, 15 minutes.\nBring blockers; nothing else.")
        #expect(standup["location"] as? String == "Room 4, 2nd floor")
        #expect(standup["end"] as? String == "2025-03-03T09:45:00+01:00")
        #expect(standup["time_zone"] as? String == "Europe/Berlin")
        #expect(standup["recurrence"] as? String == "FREQ=WEEKLY;WKST=MO;BYDAY=MO,WE;UNTIL=20250331T225959Z")
        let review = try #require(events(week).first { $0["uid"] as? String == "review-7f3a@example.com" })
        #expect(review["description"] as? String == "Quarterly design review. Agenda: 1) architecture of the kernel 2) capability layer 3) drivers for peripherals \u{2014} files, calendar and notes.")
        let offsite = try #require(events(week).last)
        #expect(offsite["all_day"] as? Bool == true && offsite["end"] as? String == "2025-03-15")

        // In UTC, and filtered.
        let utc = try call(kernel, "calendar.list", #"{"from": "2025-03-11", "to": "2025-03-11", "time_zone": "UTC", "query": "review"}"#)
        #expect(events(utc).map { $0["start"] as? String } == ["2025-03-11T13:00:00Z"])
        // The rule ends with March: nothing in April.
        let april = try call(kernel, "calendar.list", #"{"from": "2025-04-01", "to": "2025-04-30", "query": "standup"}"#)
        #expect(events(april).isEmpty)
    }

    @Test func freeSlotsWorkAroundBusyTime() throws {
        let box = CalendarBox()
        let kernel = try box.kernel()
        let free = try call(kernel, "calendar.free_slots", #"{"from": "2025-03-10", "to": "2025-03-13", "duration_minutes": 60}"#)
        let slots = (free["slots"] as? [[String: Any]] ?? []).map { "\($0["start"]!) \($0["end"]!)" }
        #expect(slots == [
            "2025-03-10T09:00:00+01:00 2025-03-10T10:00:00+01:00",  // until the moved standup
            "2025-03-10T10:15:00+01:00 2025-03-10T17:00:00+01:00",
            "2025-03-11T09:00:00+01:00 2025-03-11T14:00:00+01:00",  // the review 14:00-15:00
            "2025-03-11T15:00:00+01:00 2025-03-11T17:00:00+01:00",
            "2025-03-12T09:45:00+01:00 2025-03-12T17:00:00+01:00",  // 09:00-09:30 is too short; lunch is transparent, the call cancelled
        ])
        // Thursday is the all-day offsite; a weekend day counts only when asked for.
        let weekend = try call(kernel, "calendar.free_slots", #"{"from": "2025-03-15", "to": "2025-03-16", "duration_minutes": 30, "work_days": [6, 7], "work_start": "10:00", "work_end": "12:00"}"#)
        #expect((weekend["slots"] as? [[String: Any]])?.count == 2)
        let bad = expectError { try kernel.call("calendar.free_slots", input: #"{"duration_minutes": 30, "work_start": "18:00", "work_end": "09:00"}"#) }
        #expect(bad.code == .invalidArgument)
        #expect(bad.message.contains("work_end must be after work_start"), "\(bad.message)")
    }

    @Test func createUpdateDeleteKeepEverythingElse() throws {
        let box = CalendarBox()
        let original = box.text
        let kernel = try box.kernel(allow: ["fs.read=${workspace}/**", "fs.write=${workspace}/**", "tool.call=calendar.delete"])

        let created = try call(kernel, "calendar.create", #"{"summary": "1:1, Grace; notes\nfollow", "start": "2025-03-11T14:30", "duration_minutes": 30, "location": "Café"}"#)
        let event = try #require(created["event"] as? [String: Any])
        let uid = try #require(event["uid"] as? String)
        #expect(event["start"] as? String == "2025-03-11T14:30:00+01:00" && event["end"] as? String == "2025-03-11T15:00:00+01:00")
        #expect((created["conflicts"] as? [[String: Any]])?.compactMap { $0["uid"] as? String } == ["review-7f3a@example.com"])
        let afterCreate = box.text
        let closing = "END:VCALENDAR\r\n"
        #expect(afterCreate.hasPrefix(String(original.dropLast(closing.count))), "every byte before the new event is as it was")
        #expect(afterCreate.contains("SUMMARY:1:1\\, Grace\\; notes\\nfollow\r\n"))
        #expect(afterCreate.contains("DTSTART:20250311T133000Z\r\n"))
        #expect(afterCreate.hasSuffix("END:VEVENT\r\nEND:VCALENDAR\r\n"))
        #expect(!FileManager.default.fileExists(atPath: box.ws + "/.calendar.ics.llmos-tmp.ics"), "the temporary file was moved over the calendar")

        // Update the standup series: its TZID, RRULE, EXDATE, VALARM and X- property stay.
        let moved = try call(kernel, "calendar.update", #"{"uid": "standup-2025@example.com", "start": "2025-03-03T09:00"}"#)
        let series = try #require(moved["event"] as? [String: Any])
        #expect(series["start"] as? String == "2025-03-03T09:00:00+01:00" && series["end"] as? String == "2025-03-03T09:15:00+01:00")
        let afterUpdate = box.text
        #expect(afterUpdate.contains("DTSTART;TZID=Europe/Berlin:20250303T090000\r\n"))
        #expect(afterUpdate.contains("DTEND;TZID=Europe/Berlin:20250303T091500\r\n"))
        #expect(afterUpdate.contains("SEQUENCE:1\r\n"))
        for kept in ["RRULE:FREQ=WEEKLY;WKST=MO;BYDAY=MO,WE;UNTIL=20250331T225959Z\r\n", "X-GOOGLE-CONFERENCE:https://meet.example.com/abc-defg-hij\r\n",
                     "TRIGGER:-P0DT0H10M0S\r\n", "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=\"Ada L\r\n ovelace, PhD\";X-NUM-GUESTS=0:mailto:ada@example.com\r\n",
                     "BEGIN:VTODO\r\n", "X-APPLE-SORT-ORDER:1\r\n", "TZID:W. Europe Standard Time\r\n"] {
            #expect(afterUpdate.contains(kept), "kept: \(kept)")
        }
        let renamed = try call(kernel, "calendar.update", #"{"uid": "review-7f3a@example.com", "summary": "Design review (Q1)", "location": ""}"#)
        #expect((renamed["event"] as? [String: Any])?["location"] == nil)
        #expect(box.text.contains("SUMMARY:Design review (Q1)\r\n") && !box.text.contains("LOCATION:Zoom"))

        // Delete: the event and its override.
        let deleted = try call(kernel, "calendar.delete", #"{"uid": "standup-2025@example.com"}"#)
        #expect(deleted["deleted"] as? Int == 2)
        #expect(!box.text.contains("standup-2025"))
        let againDeleted = try call(kernel, "calendar.delete", "{\"uid\": \"\(uid)\"}")
        #expect(againDeleted["deleted"] as? Int == 1)
        let missing = expectError { try kernel.call("calendar.update", input: #"{"uid": "nope", "summary": "x"}"#) }
        #expect(missing.code == .notFound)
        #expect(missing.message.contains("no event with uid nope"), "\(missing.message)")

        // A new calendar where there was none.
        let empty = CalendarBox(copyFixture: false)
        let fresh = try empty.kernel()
        #expect(events(try call(fresh, "calendar.list", "{}")).isEmpty)
        _ = try call(fresh, "calendar.create", #"{"summary": "Holiday", "start": "2025-08-01", "end": "2025-08-03"}"#)
        #expect(empty.text.hasPrefix("BEGIN:VCALENDAR\r\nPRODID:-//llmos//calendar driver 1.0//EN\r\nVERSION:2.0\r\n"))
        #expect(empty.text.contains("DTSTART;VALUE=DATE:20250801\r\nDTEND;VALUE=DATE:20250804\r\n"))
        let holiday = events(try call(fresh, "calendar.list", #"{"from": "2025-08-01", "to": "2025-08-31"}"#))
        #expect(holiday.first?["end"] as? String == "2025-08-04" && holiday.first?["all_day"] as? Bool == true)
    }

    @Test func recurrenceRulesExpand() throws {
        let box = CalendarBox(copyFixture: false)
        func event(_ uid: String, _ start: String, _ rule: String) -> String {
            "BEGIN:VEVENT\r\nUID:\(uid)\r\nDTSTART;TZID=Europe/Berlin:\(start)\r\nDURATION:PT30M\r\nRRULE:\(rule)\r\nSUMMARY:\(uid)\r\nEND:VEVENT\r\n"
        }
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
            + event("lastfriday", "20250131T160000", "FREQ=MONTHLY;BYDAY=-1FR;COUNT=4")
            + event("everyother", "20250301T080000", "FREQ=DAILY;INTERVAL=2;UNTIL=20250309")
            + event("fifteenth", "20250115T120000", "FREQ=MONTHLY;BYMONTHDAY=15,-1")
            + event("yearly", "20200229T090000", "FREQ=YEARLY")
            + event("odd", "20250301T070000", "FREQ=HOURLY")
            + "END:VCALENDAR\r\n"
        try text.write(toFile: box.file, atomically: false, encoding: .utf8)
        let kernel = try box.kernel()
        func starts(_ query: String, _ from: String, _ to: String) throws -> [String] {
            events(try call(kernel, "calendar.list", "{\"from\": \"\(from)\", \"to\": \"\(to)\", \"query\": \"\(query)\", \"max_events\": 50}")).map { String(($0["start"] as! String).prefix(16)) }
        }
        #expect(try starts("lastfriday", "2025-01-01", "2025-12-31") == ["2025-01-31T16:00", "2025-02-28T16:00", "2025-03-28T16:00", "2025-04-25T16:00"])
        #expect(try starts("everyother", "2025-03-01", "2025-03-31") == ["2025-03-01T08:00", "2025-03-03T08:00", "2025-03-05T08:00", "2025-03-07T08:00", "2025-03-09T08:00"])
        #expect(try starts("fifteenth", "2025-02-01", "2025-03-31") == ["2025-02-15T12:00", "2025-02-28T12:00", "2025-03-15T12:00", "2025-03-31T12:00"])
        // Across the change to summer time the wall-clock time stays.
        #expect(try starts("lastfriday", "2025-03-28", "2025-03-28") == ["2025-03-28T16:00"])
        #expect(try starts("yearly", "2021-01-01", "2024-12-31") == ["2024-02-29T09:00"], "only leap years have 29 February")
        let odd = events(try call(kernel, "calendar.list", #"{"from": "2025-03-01", "to": "2025-03-02", "query": "odd"}"#))
        #expect(odd.count == 1 && odd.first?["recurrence_expanded"] as? Bool == false, "a rule beyond the subset is shown once, and says so")
    }

    @Test func aMalformedFileIsReportedByLineAndNeverWritten() throws {
        let box = CalendarBox(copyFixture: false)
        let broken = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a@x\r\nDTSTART:20250310T090000Z\r\nSUMMARY oops no colon\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        try broken.write(toFile: box.file, atomically: false, encoding: .utf8)
        let kernel = try box.kernel()
        let listed = expectError { try kernel.call("calendar.list", input: "{}") }
        #expect(listed.code == .invalidArgument)
        #expect(listed.message.contains("\(box.file) does not parse at line 6: expected NAME:VALUE"), "\(listed.message)")
        let created = expectError { try kernel.call("calendar.create", input: #"{"summary": "x", "start": "2025-03-10T10:00"}"#) }
        #expect(created.message.contains("it was not changed"), "\(created.message)")
        #expect(box.text == broken)

        let cases: [(String, String)] = [
            ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250310T090000Z\r\nEND:VCALENDAR\r\n", "line 5: END:VCALENDAR closes BEGIN:VEVENT of line 2"),
            ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250310T090000Z\r\n", "line 2: BEGIN:VEVENT has no END:VEVENT"),
            ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:2025-03-10\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 4: DTSTART \"2025-03-10\""),
            ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20250310T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 2: the VEVENT has no UID"),
            ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Mars/Olympus:20250310T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "line 4: DTSTART: unknown time zone TZID=Mars/Olympus"),
            ("hello\r\n", "line 1: expected NAME:VALUE"),
            ("BEGIN:VEVENT\r\nEND:VEVENT\r\n", "line 1: expected BEGIN:VCALENDAR"),
        ]
        for (text, says) in cases {
            try text.write(toFile: box.file, atomically: false, encoding: .utf8)
            let error = expectError { try kernel.call("calendar.create", input: #"{"summary": "x", "start": "2025-03-10T10:00"}"#) }
            #expect(error.message.contains(says), "\(says) — got: \(error.message)")
            #expect(box.text == text, "never rewritten")
        }
    }

    @Test func capabilityRefusals() throws {
        let box = CalendarBox()
        // The manifest asks for .ics files in the workspace; without the operator's grant: refused.
        let ungranted = try box.kernel(allow: [])
        let notGranted = expectError { try ungranted.call("calendar.list", input: "{}") }
        #expect(notGranted.code == .permissionDenied)
        #expect(notGranted.message.contains("fs.read of \(box.file) denied by default: not granted"), "\(notGranted.message)")

        // Read granted, write not: listing works, changing is refused, the file untouched.
        let original = box.text
        let readOnly = try box.kernel(allow: ["fs.read=${workspace}/**"])
        #expect(!events(try call(readOnly, "calendar.list", #"{"from": "2025-03-10", "to": "2025-03-11"}"#)).isEmpty)
        let write = expectError { try readOnly.call("calendar.create", input: #"{"summary": "x", "start": "2025-03-10T10:00"}"#) }
        #expect(write.code == .permissionDenied)
        #expect(write.message.contains("fs.write of"), "\(write.message)")
        #expect(box.text == original)

        // A calendar outside the workspace, or not an .ics file: outside the manifest's request.
        try "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".write(toFile: box.root + "/outside/other.ics", atomically: false, encoding: .utf8)
        let outside = try box.kernel(allow: ["fs.read=/**", "fs.write=/**"], config: ["path": "../outside/other.ics", "time_zone": "UTC"])
        let out = expectError { try outside.call("calendar.list", input: "{}") }
        #expect(out.code == .permissionDenied)
        #expect(out.message.contains("denied by manifest: calendar does not request fs.read \(box.root)/outside/other.ics"), "\(out.message)")
        let text = try box.kernel(config: ["path": "notes.txt", "time_zone": "UTC"])
        let notICS = expectError { try text.call("calendar.list", input: "{}") }
        #expect(notICS.message.contains("denied by manifest"), "\(notICS.message)")

        // A calendar.ics that is a symlink out of the workspace is checked where it leads.
        try FileManager.default.removeItem(atPath: box.file)
        #expect(symlink(box.root + "/outside/other.ics", box.file) == 0)
        let linked = try box.kernel(allow: ["fs.read=/**", "fs.write=/**"])
        let escape = expectError { try linked.call("calendar.list", input: "{}") }
        #expect(escape.code == .permissionDenied)
        #expect(escape.message.contains("\(box.root)/outside/other.ics"), "\(escape.message)")

        // delete is destructive: it asks, and without a terminal that is a refusal.
        let plain = CalendarBox()
        let asking = try plain.kernel()
        let asked = expectError { try asking.call("calendar.delete", input: #"{"uid": "review-7f3a@example.com"}"#) }
        #expect(asked.code == .permissionDenied)
        #expect(asked.message.contains("calendar.delete is marked destructive"), "\(asked.message)")
        #expect(plain.text.contains("review-7f3a@example.com"))
    }

    @Test func badArgumentsAndConfiguration() throws {
        let box = CalendarBox()
        let kernel = try box.kernel()
        let vague = expectError { try kernel.call("calendar.create", input: #"{"summary": "x", "start": "tomorrow at 3"}"#) }
        #expect(vague.code == .invalidArgument)
        #expect(vague.message.contains("start \"tomorrow at 3\" is not a date or time; use 2025-03-10"), "\(vague.message)")
        let backwards = expectError { try kernel.call("calendar.create", input: #"{"summary": "x", "start": "2025-03-10T10:00", "end": "2025-03-10T09:00"}"#) }
        #expect(backwards.message.contains("must be after start"), "\(backwards.message)")
        let zone = expectError { try kernel.call("calendar.list", input: #"{"time_zone": "Mars/Olympus"}"#) }
        #expect(zone.message.contains("time_zone \"Mars/Olympus\" is not a time zone"), "\(zone.message)")
        let both = expectError { try kernel.call("calendar.create", input: #"{"summary": "x", "start": "2025-03-10T10:00", "end": "2025-03-10T11:00", "duration_minutes": 5}"#) }
        #expect(both.message.contains("not both"), "\(both.message)")
        let range = expectError { try kernel.call("calendar.list", input: #"{"from": "2025-03-10", "to": "2025-03-01"}"#) }
        #expect(range.message.contains("to must be after from"), "\(range.message)")

        let badConfig = expectError { try box.kernel(config: ["time_zone": "Nowhere/Else"]) }
        #expect(badConfig.message.contains("time_zone \"Nowhere/Else\" is not a time zone"), "\(badConfig.message)")
        let unknownKey = expectError { try box.kernel(config: ["pth": "x.ics"]) }
        #expect(unknownKey.message.contains("pth"), "\(unknownKey.message)")
    }
}
