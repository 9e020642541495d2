// What every memory driver keeps: conversations of messages with ids and token estimates,
// and the one way to assemble a window of them (LLMOSContext's ContextWindow, which the
// kernel's own window uses too, so that all memories count and cut alike).
import Glibc
import LLMOSContext
import LLMOSDriverSDK
import LLMOSJSON

/// One conversation's live messages (those not evicted, summarised or paged out), oldest first.
public final class Conversation {
    public let name: String
    public private(set) var messages: [JSONValue] = []
    /// The id of each message in `messages` (ascending; "1", "2", ... as strings on the wire).
    public private(set) var ids: [Int] = []
    /// Their estimated tokens, in total.
    public private(set) var tokens = 0
    /// Messages removed so far (evicted, folded into a summary, paged out).
    public var removed = 0
    /// Facts the model or the user asked to keep (`remember`): always in the context.
    public var facts: [String] = []
    /// Paged out to storage (paged): how many, their ids, the words most frequent in them.
    public var pagedOut = 0
    public var pagedIDs: ClosedRange<Int>?
    public var pagedWords: [String: Int] = [:]
    public var pagedTopWords: [String] = []
    /// The last recall for a task (paged): the same task with nothing paged out since is not searched again.
    public var lastRecall: (query: String, pagedOut: Int, messages: [JSONValue])?
    /// What a summarising memory made of the messages it removed (compact).
    public var summary: String?
    private var nextID = 1

    public init(name: String) { self.name = name }

    @discardableResult
    public func append(_ message: JSONValue) -> (id: Int, tokens: Int) {
        let id = nextID
        nextID += 1
        let cost = ContextWindow.estimate(message: message)
        messages.append(message)
        ids.append(id)
        tokens += cost
        return (id, cost)
    }

    /// Index in `messages` of the message with this id, if it is still live.
    public func index(of id: Int) -> Int? {
        var low = 0, high = ids.count
        while low < high {
            let mid = (low + high) / 2
            if ids[mid] < id { low = mid + 1 } else { high = mid }
        }
        return low < ids.count && ids[low] == id ? low : nil
    }

    /// Removes the first `count` live messages and returns them with their ids.
    @discardableResult
    public func removeFirst(_ count: Int) -> [(id: Int, message: JSONValue)] {
        let n = min(count, messages.count)
        let gone = (0..<n).map { (ids[$0], messages[$0]) }
        for (_, message) in gone { tokens -= ContextWindow.estimate(message: message) }
        messages.removeFirst(n)
        ids.removeFirst(n)
        removed += n
        return gone
    }

    /// The messages from index `start` on that make whole units: a tool message stays with the call before it.
    public func unitRange(containing index: Int) -> Range<Int>? {
        guard index >= 0, index < messages.count else { return nil }
        return ContextWindow.unit(containing: index, count: messages.count) { messages[$0]["role"]?.stringValue == "tool" }
    }

    /// The oldest whole units whose removal brings the live tokens to at most `target`,
    /// as indexes into `messages` (ascending): never the unit at `protected` (the pinned
    /// task, which may be old: it is stepped over, not a wall) and never the newest unit.
    public func oldestUnits(toReach target: Int, protecting protected: Int?) -> [Int] {
        guard !messages.isEmpty else { return [] }
        let newest = unitRange(containing: messages.count - 1)!.lowerBound
        let pinned = protected.flatMap { unitRange(containing: $0) }
        var left = tokens, chosen: [Int] = [], start = 0
        while start < newest && left > target {
            let unit = unitRange(containing: start)!
            guard unit.upperBound <= newest else { break }
            if unit != pinned {
                left -= unit.reduce(0) { $0 + ContextWindow.estimate(message: messages[$1]) }
                chosen += Array(unit)
            }
            start = unit.upperBound
        }
        return chosen
    }

    /// Removes the messages at `indexes` (ascending), returning them with their ids.
    @discardableResult
    public func remove(at indexes: [Int]) -> [(id: Int, message: JSONValue)] {
        let gone = indexes.map { (ids[$0], messages[$0]) }
        let drop = Set(indexes)
        var keptMessages: [JSONValue] = [], keptIDs: [Int] = []
        keptMessages.reserveCapacity(messages.count - drop.count)
        for i in messages.indices where !drop.contains(i) {
            keptMessages.append(messages[i])
            keptIDs.append(ids[i])
        }
        for (_, message) in gone { tokens -= ContextWindow.estimate(message: message) }
        messages = keptMessages
        ids = keptIDs
        removed += gone.count
        return gone
    }

    public func clear() {
        removed += messages.count
        messages.removeAll()
        ids.removeAll()
        tokens = 0
        facts.removeAll()
        summary = nil
    }
}

/// The conversations of one driver instance, by name ("agent-7"), safe across threads.
public final class ConversationTable: @unchecked Sendable {
    private var conversations: [String: Conversation] = [:]
    private let lock = PthreadLock()

    public init() {}

    /// Runs `body` on the named conversation (made on first use), holding the table's lock.
    public func with<T>(_ name: String, _ body: (Conversation) throws(DriverError) -> T) throws(DriverError) -> T {
        lock.lock()
        defer { lock.unlock() }
        let conversation: Conversation
        if let existing = conversations[name] { conversation = existing } else {
            conversation = Conversation(name: name)
            conversations[name] = conversation
        }
        return try body(conversation)
    }

    public var names: [String] {
        lock.lock()
        defer { lock.unlock() }
        return conversations.keys.sorted()
    }
}

/// A pthread mutex without Foundation (drivers keep their dependencies small).
public final class PthreadLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    public func lock() { pthread_mutex_lock(&mutex) }
    public func unlock() { pthread_mutex_unlock(&mutex) }
}
