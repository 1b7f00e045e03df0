import Foundation
import Testing
import DBMCore

/// Naive reference product for checking cblas-backed matmul on views.
func naiveMatmul(_ a: Tensor, _ b: Tensor) throws -> [Double] {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
    var out = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { for p in 0..<k { out[i * n + j] += try a.value(at: [i, p]) * b.value(at: [p, j]) } } }
    return out
}

func largestDifference(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).map { abs($0 - $1) }.max() ?? 0 }

@Suite("Tensor core")
struct TensorCoreTests {
    @Test("a fixed seed gives the same numbers; different streams and seeds give different ones")
    func generatorReproducible() throws {
        let a = try Tensor.randn([1000], generator: Generator(seed: 5)).toDoubles()
        let b = try Tensor.randn([1000], generator: Generator(seed: 5)).toDoubles()
        let c = try Tensor.randn([1000], generator: Generator(seed: 5, stream: 1)).toDoubles()
        let d = try Tensor.randn([1000], generator: Generator(seed: 6)).toDoubles()
        #expect(a == b)
        #expect(a != c && a != d)
        // The two streams are uncorrelated: |corr| well below 5/√n.
        let corr = zip(a, c).map(*).reduce(0, +) / 1000
        #expect(abs(corr) < 5 / sqrt(1000.0))
    }

    @Test("normal deviates have mean 0 and variance 1; uniform ones mean 1/2 and variance 1/12")
    func generatorMoments() throws {
        let g = Generator(seed: 11)
        let n = 400_000
        let x = try Tensor.randn([n], dtype: .float64, generator: g).toDoubles()
        let mean = x.reduce(0, +) / Double(n), variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        let kurt = x.map { pow($0 - mean, 4) }.reduce(0, +) / Double(n) / (variance * variance)
        #expect(abs(mean) < 5 / sqrt(Double(n)))
        #expect(abs(variance - 1) < 5 * sqrt(2.0 / Double(n)))
        #expect(abs(kurt - 3) < 0.05)
        let u = try Tensor.rand([n], dtype: .float64, generator: g).toDoubles()
        let um = u.reduce(0, +) / Double(n)
        #expect(abs(um - 0.5) < 5 * sqrt(1.0 / 12 / Double(n)))
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let p = g.permutation(1000)
        #expect(Set(p) == Set(0..<1000) && p != Array(0..<1000))
        // A checkpointed generator continues with the same numbers.
        let snap = g.snapshot
        let next = (0..<10).map { _ in g.normal() }
        try g.restore(snap)
        #expect((0..<10).map { _ in g.normal() } == next)
    }

    @Test("matmul through cblas equals the naive product on transposed, sliced and mixed-dtype views")
    func matmulMatchesNaive() throws {
        let g = Generator(seed: 3)
        let a = try Tensor.randn([7, 5], dtype: .float64, generator: g)
        let b = try Tensor.randn([5, 9], dtype: .float64, generator: g)
        let at = try Tensor.randn([5, 7], dtype: .float64, generator: g).t()
        let bt = try Tensor.randn([9, 5], dtype: .float64, generator: g).t()
        let wide = try Tensor.randn([7, 12], dtype: .float64, generator: g).narrow(1, 3, 5)   // row stride 12
        for (x, y) in [(a, b), (at, b), (a, bt), (at, bt), (wide, b), (wide, bt)] {
            #expect(largestDifference(try x.matmul(y).toDoubles(), try naiveMatmul(x, y)) < 1e-12)
        }
        let mixed = try a.converted(to: .float32).matmul(b)
        #expect(mixed.dtype == .float64)
        #expect(largestDifference(mixed.toDoubles(), try naiveMatmul(a, b)) < 1e-5)
        // Batched: each batch is its own product.
        let x3 = try Tensor.randn([3, 4, 5], dtype: .float64, generator: g), y3 = try Tensor.randn([3, 5, 2], dtype: .float64, generator: g)
        let z3 = try x3.matmul(y3)
        for i in 0..<3 {
            #expect(largestDifference(try z3.select(0, i).toDoubles(), try naiveMatmul(x3.select(0, i), y3.select(0, i))) < 1e-12)
        }
        #expect(throws: DBMError.self) { try a.matmul(a) }
        // Empty inner dimension: the product is all zeros.
        let e = try Tensor(shape: [3, 0], dtype: .float64).matmul(try Tensor(shape: [0, 2], dtype: .float64))
        #expect(e.shape == [3, 2] && e.toDoubles().allSatisfy { $0 == 0 })
    }

    @Test("broadcasting follows numpy's rules on contiguous and strided operands")
    func broadcasting() throws {
        let g = Generator(seed: 4)
        let x = try Tensor.randn([4, 3], dtype: .float64, generator: g)
        let row = try Tensor.randn([3], dtype: .float64, generator: g)
        let col = try Tensor.randn([4, 1], dtype: .float64, generator: g)
        let s1 = try x.binary(.add, row), s2 = try x.binary(.mul, col), s3 = try x.t().binary(.sub, try x.t())
        for i in 0..<4 { for j in 0..<3 {
            #expect(try s1.value(at: [i, j]) == x.value(at: [i, j]) + row.value(at: [j]))
            #expect(try s2.value(at: [i, j]) == x.value(at: [i, j]) * col.value(at: [i, 0]))
        } }
        #expect(s3.toDoubles().allSatisfy { $0 == 0 })
        #expect(try Tensor.broadcastShape([4, 1, 3], [5, 1]) == [4, 5, 3])
        #expect(throws: DBMError.self) { try x.binary(.add, try Tensor(shape: [4])) }
    }

    @Test("reductions along each axis agree with direct sums")
    func reductions() throws {
        let x = try Tensor.from((0..<24).map(Double.init), shape: [2, 3, 4], dtype: .float64)
        #expect(try x.reduce(.sum).toDoubles() == [276])
        #expect(try x.reduce(.sum, dim: 0).toDoubles() == (0..<12).map { Double($0 + $0 + 12) })
        #expect(try x.reduce(.max, dim: 2).toDoubles() == [3, 7, 11, 15, 19, 23])
        #expect(try x.reduce(.argmin, dim: 1).toDoubles() == [0, 0, 0, 0, 0, 0, 0, 0])
        let v = try Tensor.from([1, 2, 3, 4], shape: [4], dtype: .float64)
        #expect(try v.reduce(.variance).toDoubles() == [1.25])
        #expect(try v.reduce(.variance, ddof: 1).toDoubles()[0] == 5.0 / 3)
        #expect(try abs(v.reduce(.norm).toDoubles()[0] - sqrt(30)) < 1e-15)
        let (sorted, idx) = try Tensor.from([3, .nan, 1, 2], shape: [4], dtype: .float64).sorted()
        #expect(Array(sorted.toDoubles().prefix(3)) == [1, 2, 3] && sorted.toDoubles()[3].isNaN && idx == [2, 3, 0, 1])
        let (counts, _) = try v.histogram(bins: 3, lo: 1, hi: 4)
        #expect(counts.toDoubles() == [1, 1, 2])
    }

    @Test("views share storage; reshape of a transposed view copies")
    func views() throws {
        let x = try Tensor.from((0..<12).map(Double.init), shape: [3, 4], dtype: .float64)
        let col = try x.select(1, 2)
        #expect(col.toDoubles() == [2, 6, 10] && !col.isContiguous)
        try col.setValue(-1, at: [1])
        #expect(try x.value(at: [1, 2]) == -1)
        let r = try x.t().reshaped([12])
        #expect(r.toDoubles()[0...3] == [0, 4, 8, 1])
        #expect(try x.reshaped([2, -1]).shape == [2, 6])
        #expect(throws: DBMError.self) { try x.reshaped([5, -1]) }
        #expect(throws: DBMError.self) { try x.narrow(1, 2, 3) }
    }

    @Test("allocations over the memory limit or with overflowing sizes fail before allocating")
    func memoryLimit() throws {
        let before = MemoryLimit.live
        #expect(throws: DBMError.self) { try Tensor(shape: [1_000_000, 1_000_000]) }          // 4 TB
        #expect(throws: DBMError.self) { try Tensor(shape: [Int.max, 2]) }                      // overflow
        #expect(throws: DBMError.self) { try Tensor(shape: [-3]) }
        let big = MemoryLimit.limit / 4 * 3 / 4                                                 // 3/4 of the limit, floats
        #expect(throws: DBMError.self) { try Tensor(shape: [big, 2]) }
        do {
            let t = try Tensor(shape: [1000, 1000])
            #expect(MemoryLimit.live >= before + 4_000_000 || MemoryLimit.live >= 4_000_000)
            _ = t
        }
        #expect(MemoryLimit.formatBytes(3 << 30) == "3.0 GiB")
    }
}
