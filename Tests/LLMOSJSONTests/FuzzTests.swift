import Testing
@testable import LLMOSJSON

@Suite("Fuzzing")
struct FuzzTests {
    static let seeds: [String] = [
        #"{"a":1,"b":2}"#,
        #"{"name":"llmos","tags":["x","y"],"n":-12.5e-3,"ok":true,"none":null,"nested":{"k":[1,[2,{"z":"\u00e9\ud83d\ude00"}]]}}"#,
        #"[0,-0,1e10,1.5E+2,"\"\\\/\b\f\n\r\t",{},[],"é😀中"]"#,
        #""just a string with \"escapes\" and \u0041""#,
        #"{"a":{"a":{"a":{"a":[[[["deep"]]]]}}}}"#,
        "123456789012345678901234567890",
        " \n\t{ \"spaced\" : [ 1 , 2 ] } \r\n",
    ]

    /// Bytes that are likely to matter to the grammar.
    static let interesting: [UInt8] = Array(#"{}[]",:\/"-+.eE0123456789tfnu"#.utf8) + [0x00, 0x09, 0x0A, 0x20, 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xFF]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            let byte = Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[position] = byte
            case 1: bytes.insert(byte, at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            case 3 where !bytes.isEmpty:  // duplicate a slice
                let end = min(bytes.count, position + Int.random(in: 1...8, using: &rng))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            case 4: bytes = Array(bytes.prefix(position))  // truncate
            default: bytes[position...].reverse()  // scramble the tail
            }
        }
        return bytes
    }

    @Test func mutatedDocumentsNeverCrashAndBothModesAgree() throws {
        var rng = SplitMix64(seed: 0xF00D)
        let schema = try JSONSchema(try JSON.parse(#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"},"name":{"type":"string","maxLength":10,"pattern":"^[a-z]+$"},"tags":{"type":"array","items":{"type":"string"},"uniqueItems":true}},"required":["a"],"additionalProperties":{"anyOf":[{"type":"null"},{"type":"object"}]}}"#))
        var accepted = 0
        for iteration in 0..<20_000 {
            let seed = Array(Self.seeds[iteration % Self.seeds.count].utf8)
            let bytes = Self.mutate(seed, &rng)
            let check = syntaxError(bytes)
            switch parseResult(bytes) {
            case .success(let value):
                accepted += 1
                #expect(check == nil, "syntaxError rejected what parse accepted: \(bytes)")
                let again = try JSON.parse(value.serialized())
                #expect(identical(again, value))
                #expect(schema.isValid(value) == schema.validate(value).isEmpty)
            case .failure(let error):
                #expect(check == error, "modes disagree on \(bytes)")
                #expect(error.offset >= 0 && error.offset <= bytes.count)
                #expect(error.line >= 1 && error.column >= 1 && !error.message.isEmpty)
            }
        }
        // The mutations must leave some documents valid, or this tests nothing but errors.
        #expect(accepted > 500)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
                Bool.random(using: &rng) ? Self.interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let error: JSONParseError? = if case .failure(let e) = parseResult(bytes) { e } else { nil }
            #expect(syntaxError(bytes) == error)
        }
    }
}
