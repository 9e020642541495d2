import Glibc

/// A pthread mutex in stable memory. `Synchronization.Mutex` would do for most
/// uses, but the serialized-driver lock needs `pthread_mutex_timedlock` so that a
/// call waiting for a busy driver gives up at its deadline instead of deadlocking.
final class PThreadMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    /// Waits until `deadlineNs` (CLOCK_REALTIME-based absolute time computed from a
    /// monotonic budget); returns false when the deadline passes first.
    func lock(waitingAtMostNs budgetNs: UInt64) -> Bool {
        if pthread_mutex_trylock(mutex) == 0 { return true }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = UInt64(now.tv_nsec) + budgetNs % 1_000_000_000
        var deadline = timespec(
            tv_sec: now.tv_sec + Int(budgetNs / 1_000_000_000) + Int(total / 1_000_000_000),
            tv_nsec: Int(total % 1_000_000_000))
        return pthread_mutex_timedlock(mutex, &deadline) == 0
    }

    @inline(__always)
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A readers-writer lock: the registry is read on every call and written only
/// when drivers are loaded or unloaded.
final class ReadWriteLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rw = .allocate(capacity: 1)
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    @inline(__always)
    func read<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }

    @inline(__always)
    func write<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_wrlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
}
