import Foundation
import Synchronization

/// Where the kernel's log lines go: drivers' `host->log`, the `log` system call,
/// and the kernel's own notices (hot plug, refusals). A protocol with an
/// in-memory reference implementation, so tests and shells pick their own.
public protocol KernelLogSink: Sendable {
    func record(_ entry: KernelLogEntry)
}

public struct KernelLogEntry: Sendable, CustomStringConvertible {
    public enum Level: Int32, Sendable, Comparable, CaseIterable {
        case debug = 0, info, warn, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var name: String { ["debug", "info", "warn", "error"][Int(rawValue)] }
        public init(clamping raw: Int32) { self = Level(rawValue: min(max(raw, 0), 3)) ?? .info }
    }

    public var level: Level
    /// The driver the line is about, or "kernel".
    public var source: String
    /// The tool being called when the line was written, if any.
    public var tool: String?
    public var message: String
    public var time: Date

    public init(level: Level, source: String, tool: String? = nil, message: String, time: Date = Date()) {
        self.level = level
        self.source = source
        self.tool = tool
        self.message = message
        self.time = time
    }

    public var description: String {
        "[\(level.name)] \(source)\(tool.map { " (\($0))" } ?? ""): \(message)"
    }
}

/// Keeps the most recent entries in memory (the reference implementation).
public final class MemoryLogSink: KernelLogSink {
    private let state: Mutex<[KernelLogEntry]> = Mutex([])
    private let capacity: Int

    public init(capacity: Int = 10_000) { self.capacity = capacity }

    public func record(_ entry: KernelLogEntry) {
        state.withLock { entries in
            entries.append(entry)
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
    }

    public var entries: [KernelLogEntry] { state.withLock { $0 } }
    public func clear() { state.withLock { $0.removeAll() } }
}

/// Writes entries at or above a level to standard error.
public struct StandardErrorLogSink: KernelLogSink {
    public var minimumLevel: KernelLogEntry.Level
    public init(minimumLevel: KernelLogEntry.Level = .warn) { self.minimumLevel = minimumLevel }

    public func record(_ entry: KernelLogEntry) {
        guard entry.level >= minimumLevel else { return }
        FileHandle.standardError.write(Data((entry.description + "\n").utf8))
    }
}

/// Sends every entry to several sinks.
public struct FanOutLogSink: KernelLogSink {
    public var sinks: [any KernelLogSink]
    public init(_ sinks: [any KernelLogSink]) { self.sinks = sinks }
    public func record(_ entry: KernelLogEntry) { for sink in sinks { sink.record(entry) } }
}
