import Synchronization

/// The store behind the `kv.*` system calls, namespaced per driver so that one
/// driver never sees another's keys. A protocol with an in-memory reference
/// implementation; the capability issue adds a persistent SQLite one.
public protocol KeyValueStore: Sendable {
    func get(namespace: String, key: String) throws(LLMOSError) -> String?
    func put(namespace: String, key: String, value: String) throws(LLMOSError)
    /// Returns whether the key existed.
    func delete(namespace: String, key: String) throws(LLMOSError) -> Bool
}

public final class InMemoryKeyValueStore: KeyValueStore {
    private let storage: Mutex<[String: [String: String]]> = Mutex([:])

    public init() {}

    public func get(namespace: String, key: String) -> String? {
        storage.withLock { $0[namespace]?[key] }
    }

    public func put(namespace: String, key: String, value: String) {
        storage.withLock { $0[namespace, default: [:]][key] = value }
    }

    public func delete(namespace: String, key: String) -> Bool {
        storage.withLock { $0[namespace]?.removeValue(forKey: key) != nil }
    }
}
