import Foundation
import Testing
@testable import LLMOSKernel

@Suite struct SessionGrantStoreTests {
    @Test func grantsSurviveBetweenBrokersOfOneSession() throws {
        let dir = Paths.temporaryDirectory("session")
        let store = FileSessionGrantStore(path: dir + "/llmos/session-1.json")
        let policy = try PolicyParser.parse(text: "ask:\n  fs.read: \"/data/**\"\n", file: "/p.yaml").policy
        let first = CapabilityBroker(policy: policy, asker: ScriptedAsker([.allowForSession]), sessionStore: store)
        let request = AccessRequest(kind: .fsRead, resource: "/data/a.txt", driver: "notes")
        #expect(first.check(request, requested: nil).verdict == .allow)
        // A later command in the same session: no one is asked (the asker would deny).
        let second = CapabilityBroker(policy: policy, asker: ScriptedAsker([]), sessionStore: store)
        #expect(second.sessionGrants.count == 1)
        #expect(second.check(request, requested: nil).rule.contains("session grant #1"))
        #expect(second.revoke(1))
        let third = CapabilityBroker(policy: policy, asker: ScriptedAsker([]), sessionStore: store)
        #expect(third.sessionGrants.isEmpty)
        #expect(third.check(request, requested: nil).verdict == .deny)
    }

    @Test func aGrantFileAnyoneCouldWriteIsIgnored() throws {
        let dir = Paths.temporaryDirectory("session-open")
        let store = FileSessionGrantStore(path: dir + "/llmos/session-1.json")
        store.save([SessionGrant(id: 1, kind: .fsRead, resource: "/", driver: "")])
        #expect(store.load().count == 1)
        chmod(store.path, 0o644)   // readable (and so forgeable in spirit) by others: not trusted
        #expect(store.load().isEmpty)
        chmod(store.path, 0o600)
        chmod(dir + "/llmos", 0o755)
        store.save([])             // refuses to write into a folder others can list
        #expect(store.load().count == 1)
    }
}
