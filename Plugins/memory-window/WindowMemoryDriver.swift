// The window memory driver (class memory): the system prompt and the most recent messages
// that fit the budget, a tool call never apart from its result. The same rule as the
// kernel's built-in window (LLMOSContext's ContextWindow), as a driver a user can swap for
// compact or paged. Contract: sdk/schemas/classes/memory.schema.json; docs/MEMORY.md.
import LLMOSDriverSDK
import LLMOSJSON
import MemoryKit

struct WindowMemoryDriver: MemoryDriver {
    static let name = "window"
    static let version = "1.0.0"

    let table = ConversationTable()

    init(context: DriverContext) throws {}

    static func register(_ router: inout Router) {
        register(&router, operations: [
            ("assemble", { d, i, c throws(DriverError) in
                let request = try AssembleRequest(i)
                return try d.withConversation(i, c) { conversation throws(DriverError) in
                    let system = MemoryWindow.system(request.system, sections: [MemoryWindow.facts(conversation)])
                    return try MemoryWindow.output(MemoryWindow.assemble(conversation, system: system, request: request),
                                                   removedBefore: conversation.removed)
                }
            }),
            ("recall", { d, i, c throws(DriverError) in
                guard let query = i["query"]?.stringValue, !query.isEmpty else { throw .invalidArgument("query: required, a non-empty string") }
                let limit = Int(i["limit"]?.int64Value ?? 10)
                return try d.withConversation(i, c) { conversation throws(DriverError) in
                    let found = MessageText.rank(query, conversation.messages, limit: limit)
                    return ["messages": .array(found.map { conversation.messages[$0] })]
                }
            }),
            ("stats", { d, i, c throws(DriverError) in
                try d.withConversation(i, c) { conversation throws(DriverError) in MemoryReplies.stats(conversation) }
            }),
        ])
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(WindowMemoryDriver.self, host, driver) }
