import CKernels
import DBMCore

// ---------------------------------------------------------------------- causal multi-head self-attention, fused

// For each batch b and head h, with hs = C/NH, Q = q[b,:,h], K, V likewise (T, hs), read in place from
// qkv with leading dimension 3C:
//   S = Q·Kᵀ/√hs, P = softmax over j ≤ i (causal; P[i,j] = 0 for j > i), P' = P ⊙ mask/(1 − p), Y = P'·V.
// The products run per (b,h) on one thread each (headProduct), the (b,h) pairs in 4 chunks per core taken in
// turn by the cores (when one core is slowed down, by another process on this shared machine, the other
// takes more chunks: forward + backward of the small block 8.19 → 8.13 ms in such a period, the same
// otherwise; one pair per chunk was slower, 0.49 → 0.52 ms for attention alone).
// Rows are taken in blocks of `attentionBlockRows(T.self)` queries: block [i0, i1) needs keys 0 ..< i1 only, so
// the products skip most of the masked upper triangle (at T = 256 with blocks of 8: 52% of the full
// T² work).
// Products of the form A·Bᵀ read a transposed copy of B instead (K in forward, V in backward; (hs, T),
// a few KB per pair): B's rows are what the product kernel loads as vectors.

/// C (m,n) = alpha · op(A) · B, C overwritten, for the per-head products (op(A) = Aᵀ when transA; lda as
/// in BLAS). float32 runs CKernels' dbm_small_sgemm where the CPU has AVX2 with FMA: no packing copies,
/// no buffer allocator, no beta pass, which at these sizes cost OpenBLAS as much as its multiply-adds
/// (single thread, hot caches: 32×64×32 1.42 µs against cblas_sgemm's 1.77, 13×29×17 0.20 against
/// 0.47; 32×256×64 11.3 against 12.1). Elsewhere, and for float64, BLAS.
@inline(__always)
func headProduct<T: NNFloat>(_ transA: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: T, _ a: UnsafePointer<T>, _ lda: Int,
                             _ b: UnsafePointer<T>, _ ldb: Int, _ out: UnsafeMutablePointer<T>, _ ldc: Int) {
    if T.self == Float.self,
       dbm_small_sgemm(m, n, k, unsafeBitCast(alpha, to: Float.self), c(a), transA ? 1 : lda, transA ? lda : 1,
                       c(b), ldb, c(out), ldc) != 0 { return }
    T.gemm(transA, false, m, n, k, alpha, a, lda, b, ldb, 0, out, ldc)
}

// Row loops run over 0 ..< i + 1, not 0 ... i: Swift's closed-range loop is not vectorised (callgrind:
// ~100 instructions per element of the softmax instead of ~10).

/// Query rows per block of the causal products. Measured, attention forward + backward at B=64, T=256,
/// C=384, 6 heads, with OpenBLAS's products: one block of 256 rows 138 ms, 128 rows 114 ms, 64 rows
/// 101–126 ms, 32 rows 100–109 ms, 16 rows 99–111 ms. With the copy-free product kernel, whose cost per
/// call is small, narrower blocks pay (3 alternating runs, medians of 15): 32 rows 111–127 ms, 16 rows
/// 95–111 ms, 8 rows 89–107 ms; at B=12, T=64, C=128, 4 heads 0.68–0.75, 0.62–0.68, 0.63–0.66 ms.
func attentionBlockRows<T: NNFloat>(_: T.Type) -> Int { T.self == Float.self && dbm_avx2_fma_available() != 0 ? 8 : 32 }

/// dst (cols, rows) with leading dimension ldd ← srcᵀ, src (rows, cols) with leading dimension lds
/// (CKernels: 8 × 8 blocks in AVX registers; row by row, every element went to another cache line and
/// the two transposes were half of attention backward's own time).
@inline(__always)
func transposeInto<T: NNFloat>(_ dst: UnsafeMutablePointer<T>, _ ldd: Int, _ src: UnsafePointer<T>, _ lds: Int,
                               _ rows: Int, _ cols: Int) {
    if T.self == Float.self { dbm_transpose_f32(c(dst), ldd, c(src), lds, rows, cols) }
    else { dbm_transpose_f64(c(dst), ldd, c(src), lds, rows, cols) }
}

// The row loops in CKernels, compiled for AVX2 as well as baseline x86-64 (Swift's own are SSE2 only).
/// row ← e^(row − shift); returns Σ row.
@inline(__always) func expShiftSum<T: NNFloat>(_ row: UnsafeMutablePointer<T>, _ shift: T, _ n: Int) -> T {
    if T.self == Float.self { return unsafeBitCast(dbm_exp_shift_sum_f32(c(row), unsafeBitCast(shift, to: Float.self), n), to: T.self) }
    return unsafeBitCast(dbm_exp_shift_sum_f64(c(row), unsafeBitCast(shift, to: Double.self), n), to: T.self)
}
/// row ← s · row
@inline(__always) func scaleRow<T: NNFloat>(_ row: UnsafeMutablePointer<T>, _ s: T, _ n: Int) {
    if T.self == Float.self { dbm_scale_f32(c(row), unsafeBitCast(s, to: Float.self), n) }
    else { dbm_scale_f64(c(row), unsafeBitCast(s, to: Double.self), n) }
}
/// dp ← p ⊙ (dp − Σ_j p·dp)
@inline(__always) func softmaxBackwardRow<T: NNFloat>(_ p: UnsafePointer<T>, _ dp: UnsafeMutablePointer<T>, _ n: Int) {
    if T.self == Float.self { dbm_softmax_backward_row_f32(c(p), c(dp), n) } else { dbm_softmax_backward_row_f64(c(p), c(dp), n) }
}

// What is saved for backward: qkv, the log-sum-exp of each row of scores (B,NH,T) and the dropout mask
// as bits, not the probabilities P (B,NH,T,T): at the `paper` preset P took 100 MB per layer, 600 MB of
// the step's 3.7 GB peak. Backward recomputes each pair's P = exp(S − lse) from one more product
// S = Q·Kᵀ/√hs (as flash attention does), about a tenth more attention work.

/// Bytes per row of an attention dropout mask: T bits in whole 64-bit words.
func attentionMaskRowBytes(_ Tn: Int) -> Int { maskBytes(Tn) }

// qkv is (B,T,3C) holding q, k, v along the last dim (PyTorch c_attn layout); out is (B,T,C), heads
// concatenated; lse is (B,NH,T): lse[i] = log Σ_{j≤i} exp(S[i,j]); mask is (B,NH,T, attentionMaskRowBytes(T))
// bits (set = kept) when dropping out, else nil, applied through `patterns` (factors 0 and 1/(1 − p)).
func attentionForward<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ lse: UnsafeMutablePointer<T>,
                                  _ mask: UnsafePointer<UInt8>?, _ patterns: DropoutPatterns<T>, _ qkv: UnsafePointer<T>,
                                  _ B: Int, _ Tn: Int, _ C: Int, _ NH: Int) {
    let hs = C / NH, C3 = 3 * C, scale = 1 / T(hs).squareRoot()
    let pairs = B * NH, R = min(Tn, attentionBlockRows(T.self)), rowBytes = attentionMaskRowBytes(Tn)
    let slots = Parallel.slotCount(pairs, parts: 4 * Parallel.cores)
    // Per-thread scratch: Kᵀ (hs, T) and one row block of P (R, T).
    let perSlot = hs * Tn + R * Tn
    let scratch = UnsafeMutablePointer<T>.allocate(capacity: slots * perSlot)
    defer { scratch.deallocate() }
    Gemm.singleThreaded {
        Parallel.dynamicChunks(pairs, parts: 4 * Parallel.cores) { range, slot in
            let Kt = scratch + slot * perSlot, Pb = Kt + hs * Tn
            for bh in range {
                let b = bh / NH, h = bh % NH
                let q = qkv + b * Tn * C3 + h * hs, k = q + C, v = q + 2 * C
                let y = out + b * Tn * C + h * hs, l = lse + bh * Tn
                let m = mask.map { $0 + bh * Tn * rowBytes }
                transposeInto(Kt, Tn, k, C3, Tn, hs)
                for i0 in stride(from: 0, to: Tn, by: R) {
                    let i1 = min(Tn, i0 + R)
                    // S[i0..<i1, 0..<i1] = scale · Q[i0..<i1] · Kᵀ[:, 0..<i1], row i0 at Pb
                    headProduct(false, i1 - i0, i1, hs, scale, q + i0 * C3, C3, Kt, Tn, Pb, Tn)
                    for i in i0..<i1 {
                        let row = Pb + (i - i0) * Tn
                        let mx = vmax(row, i + 1)
                        let sum = expShiftSum(row, mx, i + 1)
                        l[i] = mx + T.log(sum)
                        scaleRow(row, 1 / sum, i + 1)
                        if let m { patterns.apply(row, row, m + i * rowBytes, i + 1) }   // P' = P ⊙ mask/(1 − p)
                        if i + 1 < i1 { (row + i + 1).update(repeating: 0, count: i1 - i - 1) }
                    }
                    // Y[i0..<i1] = P'[i0..<i1, 0..<i1] · V[0..<i1]
                    headProduct(false, i1 - i0, hs, i1, 1, Pb, Tn, v, C3, y + i0 * C, C)
                }
            }
        }
    }
}

// dout is (B,T,C), dqkv is (B,T,3C) (every element written); backward needs qkv, lse and the mask:
//   P = exp(S − lse) (recomputed, rows j ≤ i), dP' = dY·Vᵀ, dV = P'ᵀ·dY, dP = dP' ⊙ mask/(1 − p),
//   dS = P ⊙ (dP − Σ_j P·dP) (rows, j ≤ i), dQ = dS·K/√hs, dK = dSᵀ·Q/√hs.
// Row blocks give P, dS and dQ (keys 0 ..< i1); column blocks give dK and dV (queries j0 ..< T).
func attentionBackward<T: NNFloat>(_ dqkv: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>, _ qkv: UnsafePointer<T>,
                                   _ lse: UnsafePointer<T>, _ mask: UnsafePointer<UInt8>?, _ patterns: DropoutPatterns<T>,
                                   _ B: Int, _ Tn: Int, _ C: Int, _ NH: Int) {
    let hs = C / NH, C3 = 3 * C, scale = 1 / T(hs).squareRoot()
    let pairs = B * NH, R = min(Tn, attentionBlockRows(T.self)), rowBytes = attentionMaskRowBytes(Tn)
    let slots = Parallel.slotCount(pairs, parts: 4 * Parallel.cores)
    // Per-thread scratch: P (T, T), dS (T, T), Kᵀ and Vᵀ (hs, T), and P' (T, T) with dropout.
    let perSlot = 2 * Tn * Tn + 2 * hs * Tn + (mask == nil ? 0 : Tn * Tn)
    let scratch = UnsafeMutablePointer<T>.allocate(capacity: slots * perSlot)
    defer { scratch.deallocate() }
    Gemm.singleThreaded {
        Parallel.dynamicChunks(pairs, parts: 4 * Parallel.cores) { range, slot in
            let P = scratch + slot * perSlot, dS = P + Tn * Tn, Kt = dS + Tn * Tn, Vt = Kt + hs * Tn
            let PdBuf: UnsafeMutablePointer<T>? = mask == nil ? nil : Vt + hs * Tn
            for bh in range {
                let b = bh / NH, h = bh % NH
                let q = qkv + b * Tn * C3 + h * hs, k = q + C, v = q + 2 * C
                let dq = dqkv + b * Tn * C3 + h * hs, dk = dq + C, dv = dq + 2 * C
                let dy = dout + b * Tn * C + h * hs, l = lse + bh * Tn
                let m = mask.map { $0 + bh * Tn * rowBytes }
                transposeInto(Kt, Tn, k, C3, Tn, hs)
                transposeInto(Vt, Tn, v, C3, Tn, hs)
                for i0 in stride(from: 0, to: Tn, by: R) {
                    let i1 = min(Tn, i0 + R)
                    // P[i0..<i1, 0..<i1] = exp(scale · Q[i0..<i1] · Kᵀ[:, 0..<i1] − lse); P' likewise with the mask
                    headProduct(false, i1 - i0, i1, hs, scale, q + i0 * C3, C3, Kt, Tn, P + i0 * Tn, Tn)
                    // dP'[i0..<i1, 0..<i1] = dY[i0..<i1] · Vᵀ[:, 0..<i1]
                    headProduct(false, i1 - i0, i1, hs, 1, dy + i0 * C, C, Vt, Tn, dS + i0 * Tn, Tn)
                    for i in i0..<i1 {
                        let pr = P + i * Tn, dr = dS + i * Tn, li = l[i]
                        _ = expShiftSum(pr, li, i + 1)
                        if i + 1 < i1 { (pr + i + 1).update(repeating: 0, count: i1 - i - 1) }
                        if let m, let PdBuf {
                            let mr = m + i * rowBytes
                            patterns.apply(PdBuf + i * Tn, pr, mr, i + 1)
                            if i + 1 < i1 { (PdBuf + i * Tn + i + 1).update(repeating: 0, count: i1 - i - 1) }
                            patterns.apply(dr, dr, mr, i + 1)
                        }
                        softmaxBackwardRow(pr, dr, i + 1)
                        if i + 1 < i1 { (dr + i + 1).update(repeating: 0, count: i1 - i - 1) }
                    }
                    // dQ[i0..<i1] = scale · dS[i0..<i1, 0..<i1] · K[0..<i1]
                    headProduct(false, i1 - i0, hs, i1, scale, dS + i0 * Tn, Tn, k, C3, dq + i0 * C3, C3)
                }
                let Pd = UnsafePointer(PdBuf ?? P)
                for j0 in stride(from: 0, to: Tn, by: R) {
                    let j1 = min(Tn, j0 + R)
                    // dK[j0..<j1] = scale · dS[j0..<T, j0..<j1]ᵀ · Q[j0..<T]; dV likewise from P' and dY
                    headProduct(true, j1 - j0, hs, Tn - j0, scale, dS + j0 * Tn + j0, Tn, q + j0 * C3, C3, dk + j0 * C3, C3)
                    headProduct(true, j1 - j0, hs, Tn - j0, 1, Pd + j0 * Tn + j0, Tn, dy + j0 * C, C, dv + j0 * C3, C3)
                }
            }
        }
    }
}

// mask is (B·NH, T, attentionMaskRowBytes(T)) bits; for each (b,h) its own stream of `seed`, drawn row by
// row, whole 64-bit words up to the diagonal (the bits above it are never read).
func attentionDropoutMask(_ mask: UnsafeMutablePointer<UInt8>, _ pairs: Int, _ Tn: Int, _ p: Double, seed: UInt64) {
    let rowBytes = attentionMaskRowBytes(Tn), threshold = dropoutThreshold(p)
    let words = UnsafeMutableRawPointer(mask)
    Parallel.chunks(pairs, grain: 1) { range, _ in
        for bh in range {
            var g = MaskStream(seed: seed, stream: UInt64(bh))
            for i in 0..<Tn {
                let row = (bh * Tn + i) * rowBytes
                for w in 0...(i / 64) {
                    words.storeBytes(of: g.keepBits(threshold: threshold).littleEndian, toByteOffset: row + 8 * w, as: UInt64.self)
                }
            }
        }
    }
}

extension NN {
    /// Causal multi-head self-attention as one op. qkv is (B, T, 3C), the output of the fused projection
    /// (PyTorch c_attn layout: q, k, v blocks along the last dimension); heads of size C/heads; scores
    /// scaled by 1/√(C/heads); optional dropout p on the attention probabilities (needs a generator).
    /// Returns (B, T, C) with the heads concatenated. Saves qkv, each row's log-sum-exp and the dropout mask
    /// (bits) for backward, which recomputes the probabilities.
    public static func causalSelfAttention(_ qkv: Tensor, heads: Int, dropout p: Double = 0,
                                           generator: Generator? = nil) throws -> Tensor {
        let op = "causal_self_attention"
        guard qkv.rank == 3, qkv.shape[2] % 3 == 0 else {
            throw DBMError("\(op): expected qkv of shape (B, T, 3C), got \(formatShape(qkv.shape))")
        }
        let C = qkv.shape[2] / 3
        guard heads >= 1, C % heads == 0 else {
            throw DBMError("\(op): expected a number of heads dividing C = \(C), got \(heads)")
        }
        guard p >= 0, p < 1 else { throw DBMError("\(op): expected a dropout probability in [0, 1), got \(p)") }
        if p > 0 && generator == nil { throw DBMError("\(op): expected a generator for dropout p = \(p), got none") }
        switch qkv.dtype {
        case .float32: return try attentionOp(qkv, heads, p, generator, Float.self)
        case .float64: return try attentionOp(qkv, heads, p, generator, Double.self)
        }
    }

    static func attentionOp<T: NNFloat>(_ qkvIn: Tensor, _ NH: Int, _ p: Double, _ generator: Generator?, _: T.Type) throws -> Tensor {
        let (B, Tn, C) = (qkvIn.shape[0], qkvIn.shape[1], qkvIn.shape[2] / 3)
        let qkv = try qkvIn.contiguous()
        let out = try empty([B, Tn, C], qkv.dtype)
        let lse = try empty([B, NH, Tn], qkv.dtype)
        var maskStorage: Storage? = nil
        if p > 0, let generator {
            maskStorage = try scratch(UInt8.self, count: B * NH * Tn * attentionMaskRowBytes(Tn)).0
            attentionDropoutMask(maskStorage!.bytes.assumingMemoryBound(to: UInt8.self), B * NH, Tn, p, seed: generator.nextUInt64())
        }
        let patterns = DropoutPatterns(scale: T(1 / (1 - p)))
        defer { patterns.deallocate() }
        let mask = maskStorage.map { UnsafePointer($0.bytes.assumingMemoryBound(to: UInt8.self)) }
        if out.count > 0 {
            attentionForward(out.pointer(T.self), lse.pointer(T.self), mask, patterns, qkv.pointer(T.self), B, Tn, C, NH)
        }
        // Saved: qkv (contiguous), the rows' log-sum-exp and the dropout mask.
        let shape = qkvIn.shape
        return record("causal_self_attention", output: out, inputs: [qkvIn]) { g, _ in
            let dqkv = try empty(shape, qkv.dtype)
            let mask = maskStorage.map { UnsafePointer($0.bytes.assumingMemoryBound(to: UInt8.self)) }
            let patterns = DropoutPatterns(scale: T(1 / (1 - p)))
            defer { patterns.deallocate() }
            if dqkv.count > 0 {
                attentionBackward(dqkv.pointer(T.self), g.pointer(T.self), qkv.pointer(T.self), lse.pointer(T.self),
                                  mask, patterns, B, Tn, C, NH)
            }
            return [dqkv]
        }
    }
}
