import CBLAS
import DBMCore
import Dispatch
import Foundation
import Synchronization

/// The element types the differentiable kernels run on (Float32, Float64): the core's math plus what the
/// kernels need — erf and tanh, exp and the normal CDF in forms the compiler vectorises, and the BLAS
/// product for that precision.
public protocol NNFloat: TensorScalar, SIMDScalar, Codable {   // Codable: required by SIMDScalar's storage types
    static func erf(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    /// e^x for the hot loops (softmax, attention, GELU): Float32 uses a branch-free polynomial the
    /// compiler vectorises (glibc's expf is a call per element, 3.3 ns here); Float64 is libm's exp.
    static func fastExp(_ x: Self) -> Self
    /// Φ(x) and φ(x), the standard normal CDF and density, for GELU: Float32 through a vectorisable erfc
    /// sharing one exp between the two (glibc's erff takes 8 ns per element here); Float64 through libm.
    static func normalCDFAndPDF(_ x: Self) -> (cdf: Self, pdf: Self)
    /// Row-major C (m,n) = alpha · op(A) (m,k) · op(B) (k,n) + beta · C, through cblas_sgemm / cblas_dgemm.
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                     _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
}

extension Float: NNFloat {
    @inline(__always) public static func erf(_ x: Float) -> Float { Foundation.erff(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { Foundation.tanhf(x) }

    // Cephes expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product), e^r by a
    // degree-6 polynomial (≤ 2 ulp), 2^n assembled in the exponent bits. n comes from adding 1.5·2²³,
    // which rounds x/ln2 to an integer in the low mantissa bits: no float-to-int conversion, no branch.
    // The polynomial is evaluated by Estrin's scheme (short dependency chains: the loops that call
    // this are latency-bound). Inputs are clamped to [−87.34, 88.72] (results 2⁻¹²⁶ … ∞), below that the
    // result is 0 (no subnormals; a −∞ mask gives exact zeros); NaN stays NaN.
    @inline(__always) public static func fastExp(_ x0: Float) -> Float {
        let x = Swift.min(Swift.max(x0, -87.33654), 88.72283)
        let t = x * 1.44269504 + 12582912
        let n = t - 12582912
        let r = (x - n * 0.693359375) - n * -2.12194440e-4
        let r2 = r * r, r4 = r2 * r2
        let q = (5.0000001201e-1 + 1.6666665459e-1 * r) + (4.1665795894e-2 + 8.3334519073e-3 * r) * r2
              + (1.3981999507e-3 + 1.9875691500e-4 * r) * r4
        let e = (q * r2 + r + 1) * Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) << 23)
        return x0 < -87.33654 ? 0 : e
    }

    // With z = |x|/√2 and t = 1/(1 + z/2): erfc(z) = t·e^(−z²)·R(t), R smooth on (0, 1] (the form of
    // Numerical Recipes' erfcc, whose exp(poly(t)) is replaced here by a polynomial fitted to
    // erfc(z)·e^(z²)/t: degree 10, relative error 2.5e-8 in exact arithmetic). Then Φ(x) = 1 − erfc(z)/2
    // for x ≥ 0, erfc(z)/2 for x < 0 (the left tail keeps its relative accuracy: ≤ 1.5e-6 for x ≥ −4 in
    // float32, the exp of −z² limiting beyond), and φ(x) = e^(−z²)/√(2π) shares the exp.
    @inline(__always) public static func normalCDFAndPDF(_ x: Float) -> (cdf: Float, pdf: Float) {
        let z = Swift.abs(x) * 0.70710678118654752
        let t = 1 / (1 + 0.5 * z)
        let e = fastExp(-z * z)
        let t2 = t * t, t4 = t2 * t2, t8 = t4 * t4
        let r = ((0.2820942331722749 + 0.2821260771217527 * t) + (0.24620218443493208 + 0.18243473711366348 * t) * t2)
              + ((0.05134730013248624 + 0.09246631227454398 * t) + (-0.21141356944293424 + 0.03590081981295962 * t) * t2) * t4
              + (0.0652465935857878 + -0.026405288374873697 * t) * t8
        let half = 0.5 * t * e * r   // erfc(z)/2
        return (x >= 0 ? 1 - half : half, 0.39894228040143267794 * e)
    }

    @inline(__always)
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 { scaleRows(c, m, n, ldc, beta); return }   // an empty sum: cblas would leave C untouched
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double: NNFloat {
    @inline(__always) public static func erf(_ x: Double) -> Double { Foundation.erf(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inline(__always) public static func fastExp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func normalCDFAndPDF(_ x: Double) -> (cdf: Double, pdf: Double) {
        (0.5 * Foundation.erfc(-x * 0.70710678118654752440), 0.39894228040143267794 * Foundation.exp(-0.5 * x * x))
    }
    @inline(__always)
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                            _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                            _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 { scaleRows(c, m, n, ldc, beta); return }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

// ---------------------------------------------------------------------- row reductions in SIMD registers
// A scalar `s += x[i]` loop is one long dependency chain (floating-point addition is not reassociated
// for us), 4 cycles per element; sixteen lanes of partial sums remove the chain.

@inline(__always) func load16<T: NNFloat>(_ p: UnsafePointer<T>, _ i: Int) -> SIMD16<T> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<T>.self)
}

/// Σ p[0..<n]
@inline(__always) func vsum<T: NNFloat>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    var acc = SIMD16<T>(), i = 0
    while i + 16 <= n { acc += load16(p, i); i += 16 }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Σ a[i]·b[i]
@inline(__always) func vdot<T: NNFloat>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int) -> T {
    var acc = SIMD16<T>(), i = 0
    while i + 16 <= n { acc += load16(a, i) * load16(b, i); i += 16 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Σ (p[i] − m)²
@inline(__always) func vsumSquaredDeviations<T: NNFloat>(_ p: UnsafePointer<T>, _ n: Int, _ m: T) -> T {
    var acc = SIMD16<T>(), i = 0
    let mv = SIMD16<T>(repeating: m)
    while i + 16 <= n { let d = load16(p, i) - mv; acc += d * d; i += 16 }
    var s = acc.sum()
    while i < n { let d = p[i] - m; s += d * d; i += 1 }
    return s
}

/// max p[0..<n] (−∞ for n = 0). Four scalar running maxima with selects, which the compiler turns into
/// packed max instructions; SIMD16's pointwiseMax, replace(with:where:) and max() go lane by lane here
/// once inlined into a row loop (8 ns per softmax element against 1.2).
@inline(__always) func vmax<T: NNFloat>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    var m0 = -T.infinity, m1 = m0, m2 = m0, m3 = m0, i = 0
    while i + 4 <= n {
        m0 = p[i] > m0 ? p[i] : m0; m1 = p[i + 1] > m1 ? p[i + 1] : m1
        m2 = p[i + 2] > m2 ? p[i + 2] : m2; m3 = p[i + 3] > m3 ? p[i + 3] : m3
        i += 4
    }
    var m = m0 > m1 ? m0 : m1
    m = m2 > m ? m2 : m; m = m3 > m ? m3 : m
    while i < n { m = p[i] > m ? p[i] : m; i += 1 }
    return m
}

/// C (m,n) with leading dimension ldc ← beta · C (beta 0 writes zeros, whatever C held).
@inline(__always)
func scaleRows<T: NNFloat>(_ c: UnsafeMutablePointer<T>, _ m: Int, _ n: Int, _ ldc: Int, _ beta: T) {
    for i in 0..<m { let r = c + i * ldc; for j in 0..<n { r[j] = beta == 0 ? 0 : beta * r[j] } }
}

/// A value handed to concurrent workers that the type system cannot prove safe to share. Used only
/// for closures whose workers write disjoint parts of the outputs.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Row and element loops over both cores (DispatchQueue.concurrentPerform: 0.35 µs for an empty
/// two-way call here). Work below `grain` items per chunk stays on the calling thread: a second core
/// also has to pull the data into its own cache, which a short loop does not repay.
enum Parallel {
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls body on contiguous chunks covering 0..<n (at most one chunk per core, each of at least
    /// `grain` items), concurrently; the chunk index is passed as well (for per-worker scratch).
    static func chunks(_ n: Int, grain: Int, _ body: (Range<Int>, Int) -> Void) {
        let count = min(cores, n / max(grain, 1))
        if count <= 1 { if n > 0 { body(0..<n, 0) }; return }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { c in
                shared.value(n * c / count ..< n * (c + 1) / count, c)
            }
        }
    }

    /// How many chunks `chunks(n, grain:)` uses (to size per-worker scratch before the loop).
    static func chunkCount(_ n: Int, grain: Int) -> Int { max(1, min(cores, n / max(grain, 1))) }
}

// ---------------------------------------------------------------------- products on both cores

/// Products on all cores as concurrent single-threaded BLAS calls. Measured on this machine (2 cores,
/// float32, the small GPT block's products such as 768×384×128, repeated on the same data): OpenBLAS's
/// own two threads 150–190 GFLOP/s, two concurrent single-threaded calls on halves 155–190, two
/// independent full-size single-threaded products (a linear layer's dinp and dweight) 165–195. Within
/// the block the difference is larger: OpenBLAS's threads keep spinning after a call and slow down the
/// elementwise op that follows (small block 7.4–10.7 ms with OpenBLAS threading in the forward products,
/// 6.8 ms with the split). The large block's products run at ≈200 either way.
enum Gemm {
    /// Runs body with OpenBLAS limited to one thread (its setting is restored afterwards), so that the
    /// calls body makes from concurrent workers do not each try to use every core.
    /// OpenBLAS's thread count is process-wide: the first of overlapping callers (tests run concurrently)
    /// saves and lowers it, the last one restores it.
    static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        blasThreads.withLock { s in
            if s.users == 0 {
                s.saved = openblas_get_num_threads()
                if s.saved != 1 { openblas_set_num_threads(1) }
            }
            s.users += 1
        }
        defer {
            blasThreads.withLock { s in
                s.users -= 1
                if s.users == 0 && s.saved != 1 { openblas_set_num_threads(s.saved) }
            }
        }
        return try body()
    }

    private static let blasThreads = Mutex<(users: Int, saved: Int32)>((0, 1))

    /// Row-major C (m,n) = alpha · op(A) · op(B) + beta · C, the larger of m and n split into one block
    /// per core. Small products (below ~2 MFLOP) run as one call.
    static func run<T: NNFloat>(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: T,
                                _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>, _ ldb: Int,
                                _ beta: T, _ c: UnsafeMutablePointer<T>, _ ldc: Int) {
        let cores = Parallel.cores
        if cores == 1 || m * n * k < 1 << 20 || max(m, n) < 32 * cores {
            T.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        singleThreaded {
            if m >= n {   // blocks of rows of C: rows of op(A)
                Parallel.chunks(m, grain: 1) { rows, _ in
                    let i0 = rows.lowerBound
                    T.gemm(transA, transB, rows.count, n, k, alpha, transA ? a + i0 : a + i0 * lda, lda,
                           b, ldb, beta, c + i0 * ldc, ldc)
                }
            } else {      // blocks of columns of C: columns of op(B)
                Parallel.chunks(n, grain: 1) { cols, _ in
                    let j0 = cols.lowerBound
                    T.gemm(transA, transB, m, cols.count, k, alpha, a, lda, transB ? b + j0 * ldb : b + j0, ldb,
                           beta, c + j0, ldc)
                }
            }
        }
    }

    /// Runs independent tasks (each making single-threaded BLAS calls) concurrently, one per core.
    static func concurrently(_ tasks: [() -> Void]) {
        if tasks.count <= 1 || Parallel.cores == 1 { for t in tasks { t() }; return }
        singleThreaded {
            Parallel.chunks(tasks.count, grain: 1) { r, _ in for i in r { tasks[i]() } }
        }
    }
}
