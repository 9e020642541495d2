import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel

/// The clock driver (Plugins/clock) through the kernel, as a model calls it. Fixed instants
/// only: no assertion depends on what time it is when the tests run.
@Suite struct ClockTests {
    let kernel: Kernel

    init() throws {
        kernel = makeKernel()
        try kernel.load(manifestAt: Paths.manifests + "/clock.yaml")
    }

    func result(_ tool: String, _ input: String) throws -> JSONValue {
        try JSON.parse(try kernel.call("clock.\(tool)", input: input).output)
    }

    @Test func nowIsConsistentWithItself() throws {
        let before = Date().timeIntervalSince1970
        let now = try result("now", #"{"time_zone":"Asia/Tokyo"}"#)
        let after = Date().timeIntervalSince1970
        let unix = try #require(now["unix"]?.doubleValue)
        #expect(unix >= before.rounded(.down) - 0.001 && unix <= after + 0.001)
        #expect(now["time_zone"] == "Asia/Tokyo")
        #expect(now["offset_seconds"] == 32400)
        #expect(now["is_dst"] == false)
        let time = try #require(now["time"]?.stringValue)
        #expect(time.hasSuffix("+09:00"), "\(time)")
        #expect(try #require(now["utc"]?.stringValue).hasSuffix("Z"))
        // The two renderings name the same instant.
        let same = try result("difference", JSONValue.object(["from": now["time"]!, "to": now["utc"]!]).serialized())
        #expect(same["seconds"]?.doubleValue == 0)
        #expect(try result("now", "{}")["time_zone"] == "UTC")
    }

    @Test func convertBetweenZones() throws {
        let paris = try result("convert", #"{"time":"2025-12-01T12:00:00Z","to":"Europe/Paris"}"#)
        #expect(paris["time"] == "2025-12-01T13:00:00+01:00")
        #expect(paris["abbreviation"] == "GMT+1" || paris["abbreviation"] == "CET", "\(paris)")
        #expect(paris["day_of_week"] == "Monday")
        #expect(paris["unix"]?.doubleValue == 1764590400)
        // Summer time: +02:00.
        #expect(try result("convert", #"{"time":"2025-07-01T12:00:00Z","to":"Europe/Paris"}"#)["time"] == "2025-07-01T14:00:00+02:00")
        // A time without an offset is read in `from`.
        let ny = try result("convert", #"{"time":"2025-12-01T09:00","from":"America/New_York","to":"Asia/Kolkata"}"#)
        #expect(ny["time"] == "2025-12-01T19:30:00+05:30")
        #expect(ny["utc"] == "2025-12-01T14:00:00Z")
        // An explicit offset wins over `from`; fixed offsets are zones too.
        #expect(try result("convert", #"{"time":"2025-12-01T09:00:00-05:00","from":"Asia/Tokyo","to":"UTC"}"#)["time"] == "2025-12-01T14:00:00Z")
        #expect(try result("convert", #"{"time":"2025-12-01T00:00:00Z","to":"+05:45"}"#)["time"] == "2025-12-01T05:45:00+05:45")
        #expect(try result("convert", #"{"time":"2025-12-01T00:00:00.250Z","to":"UTC"}"#)["time"] == "2025-12-01T00:00:00.250Z")
    }

    @Test func aMistypedZoneNamesTheNearest() {
        let error = expectError { try kernel.call("clock.convert", input: #"{"time":"2025-12-01T12:00:00Z","to":"Europe/Pariss"}"#) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.hasPrefix("clock.convert: to: unknown time zone \"Europe/Pariss\"; did you mean Europe/Paris?"), "\(error.message)")
        let city = expectError { try kernel.call("clock.now", input: #"{"time_zone":"Tokio"}"#) }
        #expect(city.message.contains("did you mean Asia/Tokyo?"), "\(city.message)")
        let nothing = expectError { try kernel.call("clock.now", input: #"{"time_zone":"Qqqqqqqqqqqqqqqq/Zzzzzzzzz"}"#) }
        #expect(nothing.message.contains("unknown time zone") && nothing.message.contains("clock.zones lists them"), "\(nothing.message)")
    }

    @Test func badTimesAreRefusedWithTheField() {
        for (input, expected) in [
            (#"{"time":"yesterday","to":"UTC"}"#, "time: \"yesterday\" is not an ISO 8601 date or time (expected YYYY-MM-DD first)"),
            (#"{"time":"2025-02-30","to":"UTC"}"#, "there is no such day: 2025-02-30"),
            (#"{"time":"2025-12-01T25:00","to":"UTC"}"#, "a field is out of range"),
            (#"{"time":"2025-12-01T10:00:00+25:00","to":"UTC"}"#, "is not an offset"),
        ] {
            let error = expectError { try kernel.call("clock.convert", input: input) }
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(expected), "\(error.message)")
        }
        let missing = expectError { try kernel.call("clock.convert", input: #"{"time":"2025-12-01"}"#) }
        #expect(missing.message.contains("missing required field \"to\""), "\(missing.message)")
    }

    @Test func dateArithmetic() throws {
        #expect(try result("add", #"{"time":"2025-12-01T12:00:00Z","days":30,"hours":-2}"#)["time"] == "2025-12-31T10:00:00Z")
        #expect(try result("add", #"{"time":"2024-01-31","months":1}"#)["time"] == "2024-02-29T00:00:00Z")
        #expect(try result("add", #"{"time":"2025-12-01","weeks":-1,"years":1}"#)["time"] == "2026-11-24T00:00:00Z")
        // A day across the end of summer time in Paris is 25 hours, and keeps the wall clock.
        let day = try result("add", #"{"time":"2025-10-25T12:00","days":1,"time_zone":"Europe/Paris"}"#)
        #expect(day["time"] == "2025-10-26T12:00:00+01:00")
        let hours = try result("add", #"{"time":"2025-10-25T12:00","hours":24,"time_zone":"Europe/Paris"}"#)
        #expect(hours["time"] == "2025-10-26T11:00:00+01:00")
        let tooMuch = expectError { try kernel.call("clock.add", input: #"{"time":"2025-12-01","days":1000000000}"#) }
        #expect(tooMuch.message.contains("days is 1000000000; at most 100000000 either way"), "\(tooMuch.message)")
    }

    @Test func differences() throws {
        let span = try result("difference", #"{"from":"2025-12-01T09:00:00Z","to":"2025-12-02T10:30:15Z"}"#)
        #expect(span["seconds"]?.doubleValue == 91815)
        #expect(span["hours"]?.doubleValue == 91815.0 / 3600)
        #expect(span["calendar_days"] == 1)
        #expect(span["breakdown"] == ["days": 1, "hours": 1, "minutes": 30, "seconds": 15])
        let back = try result("difference", #"{"from":"2025-12-02","to":"2025-12-01T12:00:00Z"}"#)
        #expect(back["hours"]?.doubleValue == -12)
        #expect(back["breakdown"] == ["days": 0, "hours": -12, "minutes": 0, "seconds": 0])
        // Calendar days count midnights in the given zone: 23:00 to 01:00 in Tokyo crosses one.
        let tokyo = try result("difference", #"{"from":"2025-12-01T23:00","to":"2025-12-02T01:00","time_zone":"Asia/Tokyo"}"#)
        #expect(tokyo["calendar_days"] == 1)
        #expect(tokyo["hours"]?.doubleValue == 2)
    }

    @Test func dayOfWeek() throws {
        let monday = try result("day_of_week", #"{"date":"2025-12-01"}"#)
        #expect(monday == ["date": "2025-12-01", "day_of_week": "Monday", "iso_weekday": 1, "iso_week": 49, "iso_week_year": 2025, "day_of_year": 335])
        #expect(try result("day_of_week", #"{"date":"2000-02-29"}"#)["day_of_week"] == "Tuesday")
        // ISO week 1 of 2026 starts on Monday 29 December 2025.
        let sunday = try result("day_of_week", #"{"date":"2025-12-28"}"#)
        #expect(sunday["iso_weekday"] == 7 && sunday["iso_week"] == 52)
        #expect(try result("day_of_week", #"{"date":"2025-12-29"}"#)["iso_week_year"] == 2026)
        // The day depends on the zone: 23:30 in New York is already the next day in UTC.
        #expect(try result("day_of_week", #"{"date":"2025-12-01T23:30:00-05:00","time_zone":"America/New_York"}"#)["day_of_week"] == "Monday")
        #expect(try result("day_of_week", #"{"date":"2025-12-01T23:30:00-05:00"}"#)["day_of_week"] == "Tuesday")
    }

    @Test func zonesAreListed() throws {
        let paris = try result("zones", #"{"query":"paris"}"#)
        #expect(paris["zones"] == ["Europe/Paris"])
        let america = try result("zones", #"{"query":"America/","limit":3}"#)
        #expect(america["zones"]?.arrayValue?.count == 3)
        #expect(america["truncated"] == true)
        #expect((america["count"]?.int64Value ?? 0) > 3)
        let bad = expectError { try kernel.call("clock.zones", input: #"{"limit":0}"#) }
        #expect(bad.code == .invalidArgument)
    }

    @Test func aDeniedToolIsRefusedByPolicy() throws {
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "tool.call=clock.now", action: .deny)])
        let guarded = makeKernel { $0.broker = CapabilityBroker(policy: policy) }
        try guarded.load(manifestAt: Paths.manifests + "/clock.yaml")
        let denied = expectError { try guarded.call("clock.now", input: "{}") }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message == "clock.now: denied by --deny tool.call=clock.now")
        #expect(try JSON.parse(try guarded.call("clock.day_of_week", input: #"{"date":"2025-12-01"}"#).output)["day_of_week"] == "Monday")
        let info = try #require(guarded.driver(named: "clock"))
        #expect(info.capabilities.isEmpty)
    }
}
