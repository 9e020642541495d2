// The approximate vector index for large collections: an inverted file (IVF) over
// int8-quantized unit vectors, held in memory and built from the database on the first
// vector search of a collection with at least `index_threshold` vectors.
//
// - Coarse quantizer: spherical k-means (cosine) on a sample, √n lists capped at 256.
// - Each vector is stored in its nearest list as 1 byte a dimension with its own scale
//   (a 384-d vector: 384 bytes, a quarter of its Float32 BLOB).
// - A search scores the query against every centroid, scans the `nprobe` best lists with
//   the int8 codes, and re-ranks the best candidates exactly from the Float32 BLOBs, so
//   the scores returned are exact cosines.
// - The driver owns the index's freshness: it drops the index on a write it cannot
//   follow (another process's, a delete) and rebuilds on the next search. A filtered
//   search scans exactly. Shared by the sqlite and postgres drivers.

public final class VectorIndex {
    public let dimensions: Int
    /// Vectors at build time, and now.
    public let builtCount: Int
    public private(set) var count: Int
    /// Where each row's code is: its list and slot.
    private var location: [Int64: (list: Int, slot: Int)] = [:]
    /// Unit-length centroids, `lists` × `dimensions`.
    private var centroids: [Float]
    public private(set) var lists: Int
    /// Per list: the rows, their codes (count × dimensions) and their scales.
    private var rows: [[Int64]]
    private var codes: [[Int8]]
    private var scales: [[Float]]

    /// Builds the index over `vectors` (rowid, Float32 values, any length).
    public init(dimensions: Int, vectors: [(rowid: Int64, values: [Float])], seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.dimensions = dimensions
        count = vectors.count
        builtCount = vectors.count
        let units = vectors.map { Self.unit($0.values) }
        lists = max(1, min(256, Int(Double(vectors.count).squareRoot())))
        // Sample up to 64 points a list for k-means; deterministic.
        var rng = SplitMix(seed)
        var sample = units
        if sample.count > lists * 64 {
            for i in 0..<lists * 64 { sample.swapAt(i, i + Int(rng.next() % UInt64(sample.count - i))) }
            sample.removeLast(sample.count - lists * 64)
        }
        centroids = []
        for i in 0..<lists { centroids += sample[(i * sample.count) / lists] }
        for _ in 0..<8 {
            var sums = [Float](repeating: 0, count: lists * dimensions)
            var counts = [Int](repeating: 0, count: lists)
            for point in sample {
                let c = Self.nearest(point, centroids, lists: lists, dimensions: dimensions)
                counts[c] += 1
                for d in 0..<dimensions { sums[c * dimensions + d] += point[d] }
            }
            for c in 0..<lists where counts[c] > 0 {
                let normalized = Self.unit(Array(sums[c * dimensions..<(c + 1) * dimensions]))
                centroids.replaceSubrange(c * dimensions..<(c + 1) * dimensions, with: normalized)
            }
        }
        rows = Array(repeating: [], count: lists)
        codes = Array(repeating: [], count: lists)
        scales = Array(repeating: [], count: lists)
        count = 0
        for (vector, point) in zip(vectors, units) { insert(vector.rowid, unit: point) }
    }

    /// Adds (or, after `remove`, re-adds) a row: into the list of its nearest centroid.
    public func add(_ rowid: Int64, _ values: [Float]) {
        remove(rowid)
        insert(rowid, unit: Self.unit(values))
    }

    private func insert(_ rowid: Int64, unit point: [Float]) {
        let c = Self.nearest(point, centroids, lists: lists, dimensions: dimensions)
        let maxAbs = point.reduce(Float(0)) { max($0, abs($1)) }
        let scale = maxAbs > 0 ? maxAbs / 127 : 1
        location[rowid] = (c, rows[c].count)
        rows[c].append(rowid)
        codes[c] += point.map { Int8(clamping: Int(($0 / scale).rounded())) }
        scales[c].append(scale)
        count += 1
    }

    /// Removes a row if it is there: the list's last entry takes its slot.
    public func remove(_ rowid: Int64) {
        guard let (c, slot) = location.removeValue(forKey: rowid) else { return }
        let last = rows[c].count - 1
        if slot != last {
            rows[c][slot] = rows[c][last]
            scales[c][slot] = scales[c][last]
            codes[c].replaceSubrange(slot * dimensions..<(slot + 1) * dimensions, with: codes[c][last * dimensions..<(last + 1) * dimensions])
            location[rows[c][slot]] = (c, slot)
        }
        rows[c].removeLast()
        scales[c].removeLast()
        codes[c].removeLast(dimensions)
        count -= 1
    }

    /// The rowids of the `candidates` best approximate matches of `query`, scanning the
    /// `nprobe` lists whose centroids are closest.
    public func candidates(for query: [Float], nprobe: Int, candidates: Int) -> [Int64] {
        let q = Self.unit(query)
        var order = (0..<lists).map { c in (c, centroids.withUnsafeBufferPointer { Self.dot(q, $0.baseAddress! + c * dimensions, dimensions) }) }
        order.sort { $0.1 > $1.1 }
        var top = TopK(limit: candidates)
        for (c, _) in order.prefix(max(1, nprobe)) {
            codes[c].withUnsafeBufferPointer { codeBuffer in
                q.withUnsafeBufferPointer { qBuffer in
                    for slot in 0..<rows[c].count {
                        let score = Self.dot(qBuffer.baseAddress!, codeBuffer.baseAddress! + slot * dimensions, dimensions) * scales[c][slot]
                        top.offer(Double(score), rows[c][slot])
                    }
                }
            }
        }
        return top.sorted.map(\.rowid)
    }

    /// The default nprobe: a sixteenth of the lists, at least 16 (every list for small
    /// ones). Exact re-ranking of max(8 × limit, 100) candidates makes up for the int8
    /// codes. Recall@10 against the exact scan: ≥ 0.95 at 20,000 in the tests (with 8
    /// probes of 141 lists it fell to 0.91), and the benchmark's at 100k and 1M.
    public var defaultProbes: Int { min(lists, max(16, lists / 16)) }

    // MARK: Arithmetic

    static func unit(_ values: [Float]) -> [Float] {
        let norm = values.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? values.map { $0 / norm } : values
    }

    static func nearest(_ point: [Float], _ centroids: [Float], lists: Int, dimensions: Int) -> Int {
        var best = 0
        var bestScore = -Float.infinity
        point.withUnsafeBufferPointer { p in
            centroids.withUnsafeBufferPointer { c in
                for i in 0..<lists {
                    let score = dot(p.baseAddress!, c.baseAddress! + i * dimensions, dimensions)
                    if score > bestScore { bestScore = score; best = i }
                }
            }
        }
        return best
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        Vectors.dot(UnsafeRawPointer(a), UnsafeRawPointer(b), count: count)
    }

    /// Float query · int8 code, sixteen lanes at a time.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Int8>, _ count: Int) -> Float {
        var sum = SIMD16<Float>()
        var i = 0
        let raw = UnsafeRawPointer(b), rawA = UnsafeRawPointer(a)
        while i + 16 <= count {
            let code = raw.loadUnaligned(fromByteOffset: i, as: SIMD16<Int8>.self)
            sum += rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: code))
            i += 16
        }
        var total = sum.sum()
        while i < count { total += a[i] * Float(b[i]); i += 1 }
        return total
    }
}

/// A small deterministic generator (the index must be the same for the same data).
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
