import CBLAS
import CKernels
import DBMCore
import Dispatch
import Foundation
import Synchronization

/// The element types the differentiable kernels run on (Float32, Float64): the core's math plus what the
/// kernels need — erf and tanh, an exp the compiler vectorises, and the BLAS product for that precision.
public protocol NNFloat: TensorScalar, SIMDScalar, Codable {   // Codable: required by SIMDScalar's storage types
    static func erf(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    /// e^x for the hot loops (softmax, attention): Float32 uses a branch-free polynomial the compiler
    /// vectorises (dbm_exp_f32 in CKernels; glibc's expf is a call per element, 3.3 ns here); Float64 is
    /// libm's exp.
    static func fastExp(_ x: Self) -> Self
    /// Row-major C (m,n) = alpha · op(A) (m,k) · op(B) (k,n) + beta · C, through cblas_sgemm / cblas_dgemm.
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                     _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
}

extension Float: NNFloat {
    @inline(__always) public static func erf(_ x: Float) -> Float { Foundation.erff(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { Foundation.tanhf(x) }
    /// CKernels' polynomial exp (dbm_kernels.h): vectorised in the loops that call it.
    @inline(__always) public static func fastExp(_ x: Float) -> Float { dbm_exp_f32(x) }

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

/// Row and element loops over both cores, run by the worker pool below. Work below `grain` items per
/// chunk stays on the calling thread: a second core also has to pull the data into its own cache,
/// which a short loop does not repay.
enum Parallel {
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls body on contiguous chunks covering 0..<n (at most one chunk per core, each of at least
    /// `grain` items), concurrently; the chunk index is passed as well (for per-chunk scratch and
    /// partial sums: a chunk's range depends on n, grain and the core count only, so sums are the
    /// same from run to run).
    static func chunks(_ n: Int, grain: Int, _ body: (Range<Int>, Int) -> Void) {
        let count = min(cores, n / max(grain, 1))
        if count <= 1 { if n > 0 { body(0..<n, 0) }; return }
        WorkerPool.shared.run(count) { c, _ in body(n * c / count ..< n * (c + 1) / count, c) }
    }

    /// How many chunks `chunks(n, grain:)` uses (to size per-chunk scratch before the loop).
    static func chunkCount(_ n: Int, grain: Int) -> Int { max(1, min(cores, n / max(grain, 1))) }

    /// Calls body on `parts` contiguous chunks covering 0..<n (fewer when n is smaller), taken in turn
    /// by whichever thread is free: a core that is slowed down (by the other process on this shared
    /// machine, by a colder cache) takes fewer chunks instead of holding the other one up at the end.
    /// The second argument is the thread's slot in 0..<`slotCount(n, parts:)`, for per-thread scratch;
    /// which chunks a slot runs varies from run to run, so bodies must not sum into per-slot partials.
    static func dynamicChunks(_ n: Int, parts: Int, _ body: (Range<Int>, Int) -> Void) {
        let count = min(n, parts)
        if count <= 1 || cores == 1 { if n > 0 { body(0..<n, 0) }; return }
        WorkerPool.shared.run(count) { c, slot in body(n * c / count ..< n * (c + 1) / count, slot) }
    }

    /// The number of slots `dynamicChunks(n, parts:)` passes (to size per-thread scratch).
    static func slotCount(_ n: Int, parts: Int) -> Int { min(n, parts) <= 1 ? 1 : cores }
}

/// Persistent worker threads (one per core besides the caller) that spin for a while after each job
/// before they sleep. Measured here (2-core VM): DispatchQueue.concurrentPerform's second iteration
/// starts 21 µs after the call even with its worker recently busy, and after a pause of 0.1 ms the
/// caller usually runs both halves itself before the worker wakes; the small GPT block has about 25
/// parallel regions per forward + backward, many of them 20–200 µs long (forward + backward 7.5 ms
/// with libdispatch, 6.7 ms with this pool, medians of runs alternating the two). A spinning worker
/// picks a job up within a microsecond. Chunks are claimed from a shared counter, so a caller whose
/// worker is still asleep (after a long pause) starts on the chunks itself instead of waiting.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(workers: Parallel.cores - 1)

    /// How long a worker spins for the next job before it sleeps (a wake-up from sleep costs 20–60 µs
    /// here). Long enough to bridge the serial stretches between the ops of a training step, short
    /// enough not to take a core for long from whatever runs after (OpenBLAS's own threads, other
    /// processes).
    static let spinSeconds = 0.5e-3

    /// One parallel loop: chunk indices 0..<count claimed through `next`; `done` counts finished chunks.
    /// The body is reached through a pointer into the caller's frame, dereferenced only by whoever
    /// claimed a chunk (the caller waits for every claimed chunk before it returns).
    final class Job: @unchecked Sendable {
        let count: Int
        let body: UnsafePointer<(Int, Int) -> Void>
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        init(count: Int, body: UnsafePointer<(Int, Int) -> Void>) { self.count = count; self.body = body }

        /// Runs chunks until none is left; slot identifies the thread (0 the caller, 1... the workers).
        func work(slot: Int) {
            while true {
                let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if c >= count { return }
                body.pointee(c, slot)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    private final class Worker: Sendable {
        let slot: Int
        let sleeping = Atomic<Bool>(false)
        let wakeUp = DispatchSemaphore(value: 0)
        init(slot: Int) { self.slot = slot }
    }

    private let workers: [Worker]
    private let busy = Atomic<Bool>(false)       // a caller owns the pool
    private let generation = Atomic<Int>(0)      // bumped for each job
    private let current = Mutex<Job?>(nil)
    private let started = Atomic<Bool>(false)

    private init(workers n: Int) { workers = (0..<max(0, n)).map { Worker(slot: $0 + 1) } }

    /// Runs body(chunk, slot) for every chunk in 0..<count on the caller and the workers, slot in
    /// 0..<Parallel.cores. When the pool is busy (a concurrent caller, or a loop nested in a chunk),
    /// libdispatch's threads take the chunks instead.
    func run(_ count: Int, _ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { body in
                let job = Job(count: count, body: body)
                guard !workers.isEmpty,
                      busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                    DispatchQueue.concurrentPerform(iterations: min(count, Parallel.cores)) { slot in job.work(slot: slot) }
                    return
                }
                startIfNeeded()
                current.withLock { $0 = job }
                generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
                for w in workers where w.sleeping.exchange(false, ordering: .sequentiallyConsistent) { w.wakeUp.signal() }
                job.work(slot: 0)
                // Every chunk is claimed; wait for those a worker is running.
                while job.done.load(ordering: .acquiring) < count {}
                current.withLock { $0 = nil }   // a worker that takes the job now finds no chunk left
                busy.store(false, ordering: .releasing)
            }
        }
    }

    private func startIfNeeded() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        for w in workers {
            let t = Thread { [self] in loop(w) }
            t.name = "dbm-nn-worker-\(w.slot)"
            t.start()
        }
    }

    private func loop(_ w: Worker) {
        var seen = generation.load(ordering: .sequentiallyConsistent)
        while true {
            var spinStart = 0.0, polls = 0
            while generation.load(ordering: .acquiring) == seen {
                polls += 1
                if polls & 255 != 0 { continue }   // the clock every 256 polls
                let t = monotonicSeconds()
                if spinStart == 0 { spinStart = t; continue }
                if t - spinStart < WorkerPool.spinSeconds { continue }
                // Sleep. The flag is set before the generation is read again, and a caller bumps the
                // generation before it clears the flag, so one of the two sees the other's write.
                w.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen {
                    w.wakeUp.wait()
                } else if !w.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    w.wakeUp.wait()   // a caller cleared the flag first and signals: take that signal
                }
                spinStart = 0
            }
            seen = generation.load(ordering: .acquiring)
            if let job = current.withLock({ $0 }) { job.work(slot: w.slot) }
        }
    }
}

@inline(__always) func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
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
    /// Runs body with OpenBLAS limited to one thread (BLASThreads.singleThreaded, shared with the
    /// spectra of DBMCore), so that the calls body makes from concurrent workers do not each try to use
    /// every core.
    static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        try BLASThreads.singleThreaded(body)
    }

    /// Row-major C (m,n) = alpha · op(A) · op(B) + beta · C, the larger of m and n split into one block
    /// per core, each block a single-threaded BLAS call on our workers; small products (below ~2 MFLOP)
    /// run as one call. Never on OpenBLAS's own threads, large products included: once woken, OpenBLAS's
    /// worker spins (sched_yield) for about 0.1 s after each call and takes CPU from the attention and
    /// elementwise ops that follow on our threads (`paper` preset, attention forward + backward right after
    /// a threaded product 124.7 / 137.4 ms, after OpenBLAS's worker went to sleep 116.5 / 128.3 ms). The
    /// `paper` preset's forward with its large products (16384 × 384 · 384 × 1152, …) split here: 2285 ms
    /// against 2455 ms as threaded calls (medians of 4 alternating runs; faster in 13 of 15 pairs of runs);
    /// backward unchanged (its products were already single-threaded, `linearBackward`).
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

    /// Runs independent tasks (each making single-threaded BLAS calls) concurrently, each task taken in
    /// turn by the next free core.
    static func concurrently(_ tasks: [() -> Void]) {
        if tasks.count <= 1 || Parallel.cores == 1 { for t in tasks { t() }; return }
        singleThreaded {
            Parallel.dynamicChunks(tasks.count, parts: tasks.count) { r, _ in for i in r { tasks[i]() } }
        }
    }
}
