// Vectors: stored compactly as little-endian Float32 BLOBs (4 bytes a dimension: a
// 384-d embedding is 1,536 bytes), compared by exact cosine similarity with SIMD loops.

public enum Vectors {
    /// The BLOB of a vector (Float32, little-endian on every platform Swift runs on Linux).
    public static func blob(_ values: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in values.enumerated() { raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        return bytes
    }

    /// The vector in a BLOB (nil when its length is not a whole number of Float32s).
    public static func values(_ blob: UnsafeRawBufferPointer) -> [Float]? {
        guard blob.count % 4 == 0 else { return nil }
        return (0..<blob.count / 4).map { Float(bitPattern: UInt32(littleEndian: blob.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }

    /// The Euclidean length.
    public static func norm(_ values: [Float]) -> Float {
        values.withUnsafeBytes { raw in dot(raw.baseAddress!, raw.baseAddress!, count: values.count) }.squareRoot()
    }

    /// The dot product of `count` Float32s at `a` and `b` (either may be unaligned):
    /// eight lanes at a time, then the tail one by one.
    @inlinable
    public static func dot(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Float {
        var sum0 = SIMD8<Float>(), sum1 = SIMD8<Float>()
        var i = 0
        // Two accumulators hide the latency of the adds.
        while i + 16 <= count {
            sum0 += a.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * b.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            sum1 += a.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) * b.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= count {
            sum0 += a.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * b.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var total = (sum0 + sum1).sum()
        while i < count {
            total += a.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * b.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
            i += 1
        }
        return total
    }
}

/// The `limit` best (highest-scoring) items seen, kept in a min-heap so that scanning
/// n candidates costs O(n log limit).
public struct TopK {
    public let limit: Int
    public private(set) var heap: [(score: Double, rowid: Int64)] = []

    public init(limit: Int) { self.limit = max(limit, 1) }

    public mutating func offer(_ score: Double, _ rowid: Int64) {
        if heap.count < limit {
            heap.append((score, rowid))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard worse(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else if !worse((score, rowid), heap[0]) {
            heap[0] = (score, rowid)
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && worse(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count && worse(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Lower score is worse; on a tie the later row (higher rowid) is worse, so that
    /// equal scores rank in insertion order, deterministically.
    private func worse(_ a: (score: Double, rowid: Int64), _ b: (score: Double, rowid: Int64)) -> Bool {
        a.score < b.score || (a.score == b.score && a.rowid > b.rowid)
    }

    /// Best first.
    public var sorted: [(score: Double, rowid: Int64)] {
        heap.sorted { $0.score > $1.score || ($0.score == $1.score && $0.rowid < $1.rowid) }
    }
}
