import CKernels
import DBMCore
import DBMNN
import Foundation
import Testing

/// The causal attention of qkv (B,T,3C) composed from unfused ops (narrow, reshape, transpose, matmul,
/// a −1e9 mask, softmax): an independent reference for the fused kernel.
func unfusedAttention(_ qkv: Tensor, heads NH: Int) throws -> Tensor {
    let (B, T, C3) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
    let C = C3 / 3, hs = C / NH
    func heads(_ i: Int) throws -> Tensor {   // (B,T,C) block i -> (B,NH,T,hs), contiguous
        try NN.contiguous(try NN.transpose(try NN.reshape(try NN.contiguous(try NN.narrow(qkv, dim: 2, start: i * C, length: C)),
                                                          [B, T, NH, hs]), 1, 2))
    }
    let (q, k, v) = (try heads(0), try heads(1), try heads(2))
    let kt = try NN.contiguous(try NN.transpose(k, 2, 3))
    let scores = try NN.scale(try NN.matmul(q, kt), 1 / Double(hs).squareRoot())
    var maskValues = [Double](repeating: 0, count: T * T)
    for i in 0..<T { for j in (i + 1)..<max(T, i + 1) { maskValues[i * T + j] = -1e9 } }
    let mask = try Tensor.from(maskValues, shape: [T, T], dtype: qkv.dtype)
    let att = try NN.softmax(try NN.add(scores, mask))
    let y = try NN.matmul(att, v)   // (B,NH,T,hs)
    return try NN.reshape(try NN.contiguous(try NN.transpose(y, 1, 2)), [B, T, C])
}

@Suite("Op values")
struct OpValueTests {
    @Test("fused attention equals the unfused composition, forward and gradient, for several shapes")
    func attentionMatchesComposition() throws {
        for (n, c) in [(2, 5, 12, 3), (1, 1, 4, 1), (1, 70, 8, 2), (3, 130, 4, 1)].enumerated() {
            let g = Generator(seed: 60 + UInt64(n))
            let x = try NN.parameter(randn([c.0, c.1, 3 * c.2], g))
            let r = try randn([c.0, c.1, c.2], g)
            let fused = try NN.causalSelfAttention(x, heads: c.3)
            try NN.sum(try NN.mul(fused, r)).backward()
            let gradFused = x.grad!.toDoubles()
            x.grad = nil
            let reference = try unfusedAttention(x, heads: c.3)
            try NN.sum(try NN.mul(reference, r)).backward()
            let dOut = relativeDifference(fused.toDoubles(), reference.toDoubles())
            let dGrad = relativeDifference(gradFused, x.grad!.toDoubles())
            print("attention B=\(c.0) T=\(c.1) C=\(c.2) heads=\(c.3): fused vs unfused output \(dOut), gradient \(dGrad)")
            #expect(dOut < 1e-12 && dGrad < 1e-12)
        }
    }

    @Test("known values: layer norm, GELU at 1, softmax, cross-entropy of uniform logits, sigmoid/tanh/relu")
    func knownValues() throws {
        let x = try Tensor.from([1, 2, 3, 4] as [Double], shape: [1, 4], dtype: .float64)
        let ln = try NN.layerNorm(x, weight: try Tensor.full([4], 2, dtype: .float64), bias: try Tensor.full([4], 1, dtype: .float64))
        let s = 1 / (1.25 + 1e-5).squareRoot()   // var of 1..4 is 1.25
        #expect(relativeDifference(ln.toDoubles(), [-1.5, -0.5, 0.5, 1.5].map { 2 * $0 * s + 1 }) < 1e-14)
        let one = try Tensor.from([1, -1] as [Double], shape: [2], dtype: .float64)
        #expect(relativeDifference(try NN.gelu(one).toDoubles(), [0.8413447460685429, -0.15865525393145707]) < 1e-14)
        #expect(relativeDifference(try NN.gelu(one, form: .tanh).toDoubles(), [0.8411919906082768, -0.15880800939172324]) < 1e-14)
        #expect(relativeDifference(try NN.softmax(x).toDoubles(), [0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879722]) < 1e-14)
        let uniform = try Tensor.zeros([3, 7], dtype: .float64)
        #expect(abs(try NN.crossEntropy(uniform, targets: [0, 3, 6]).toDoubles()[0] - log(7.0)) < 1e-14)
        #expect(try NN.sigmoid(one).toDoubles()[0] == 1 / (1 + exp(-1.0)))
        #expect(abs(try NN.tanh(one).toDoubles()[1] - tanh(-1.0)) < 1e-15)
        #expect(try NN.relu(one).toDoubles() == [1, 0])
        // A −∞ (masked) logit gets probability exactly 0 in both precisions.
        for dt in [DType.float32, .float64] {
            let masked = try Tensor.from([0, -Double.infinity, 0], shape: [1, 3], dtype: dt)
            #expect(try NN.softmax(masked).toDoubles() == [0.5, 0, 0.5])
        }
    }

    @Test("dropout: p = 0 is the identity; the kept fraction is 1 − p, scaled by 1/(1 − p); same seed, same mask")
    func dropoutStatistics() throws {
        let x = try Tensor.full([200_000], 1, dtype: .float32)
        #expect(try NN.dropout(x, p: 0, generator: Generator(seed: 1)) === x)
        let y = try NN.dropout(x, p: 0.2, generator: Generator(seed: 1)).toDoubles()
        let kept = y.filter { $0 != 0 }
        let keptFraction = Double(kept.count) / 200_000, sigma: Double = (0.16 / 200_000).squareRoot()
        #expect(abs(keptFraction - 0.8) < 5 * sigma)
        #expect(kept.allSatisfy { abs($0 - 1.25) < 1e-6 })
        #expect(try NN.dropout(x, p: 0.2, generator: Generator(seed: 1)).toDoubles() == y)
        #expect(try NN.dropout(x, p: 0.2, generator: Generator(seed: 2)).toDoubles() != y)
        #expect(try NN.dropout(x, p: 1, generator: Generator(seed: 1)).toDoubles().allSatisfy { $0 == 0 })
    }

    @Test("Float32 forward agrees with Float64 to ~1e-5 for every op and a whole block")
    func float32MatchesFloat64() throws {
        let g = Generator(seed: 70)
        func compare(_ name: String, _ inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor) throws {
            let y64 = try f(inputs).toDoubles()
            let y32 = try f(try inputs.map { try $0.copy(dtype: .float32) }).toDoubles()
            let d = relativeDifference(y32, y64)
            print("float32 vs float64 \(name): \(String(format: "%.1e", d))")
            #expect(d < 1e-5, "\(name): \(d)")
        }
        try compare("linear", [try randn([8, 16, 32], g), try randn([48, 32], g, std: 0.2), try randn([48], g)]) {
            try NN.linear($0[0], weight: $0[1], bias: $0[2])
        }
        try compare("matmul", [try randn([33, 40], g), try randn([40, 20], g)]) { try NN.matmul($0[0], $0[1]) }
        try compare("add", [try randn([8, 9], g), try randn([9], g)]) { try NN.add($0[0], $0[1]) }
        try compare("mul", [try randn([8, 9], g), try randn([8, 9], g)]) { try NN.mul($0[0], $0[1]) }
        try compare("layer_norm", [try randn([50, 64], g, std: 3), try randn([64], g)]) { try NN.layerNorm($0[0], weight: $0[1]) }
        try compare("gelu", [try randn([1000], g, std: 3)]) { try NN.gelu($0[0]) }
        try compare("gelu tanh", [try randn([1000], g, std: 3)]) { try NN.gelu($0[0], form: .tanh) }
        try compare("softmax", [try randn([20, 50], g, std: 3)]) { try NN.softmax($0[0]) }
        try compare("sigmoid", [try randn([100], g, std: 3)]) { try NN.sigmoid($0[0]) }
        try compare("tanh", [try randn([100], g, std: 3)]) { try NN.tanh($0[0]) }
        try compare("cross_entropy", [try randn([30, 65], g, std: 2)]) { try NN.crossEntropy($0[0], targets: (0..<30).map { Int32($0 * 2) }) }
        try compare("embedding", [try randn([10, 6], g)]) { try NN.embedding(ids: [1, 9, 3], weight: $0[0]) }
        try compare("causal_self_attention", [try randn([2, 80, 3 * 16], g)]) { try NN.causalSelfAttention($0[0], heads: 4) }
        let w = try GPTBlockWeights.random(C: 32, std: 0.1, dtype: .float64, generator: g)
        try compare("gpt block", [try randn([2, 16, 32], g)] + w.all) { t in
            try NN.gptBlock(t[0], GPTBlockWeights(ln1: t[1], cAttn: t[2], cProj: t[3], ln2: t[4], cFc: t[5], mlpProj: t[6]), heads: 4)
        }
    }

    @Test("a large linear layer's backward (four parts taken in turn by the cores) equals the products gᵀ·x and g·W, and accumulates into an existing gradient")
    func largeLinearBackward() throws {
        let g = Generator(seed: 72)
        let (N, C, OC) = (1024, 256, 256)   // N·C·OC = 2^26: the four-part path (linearBalancedMinimum)
        for dtype in [DType.float64, .float32] {
            let x = NN.parameter(try randn([N, C], g, dtype: dtype)), w = NN.parameter(try randn([OC, C], g, std: 0.1, dtype: dtype))
            let dout = try randn([N, OC], g, dtype: dtype)
            try NN.linear(x, weight: w).backward(gradient: dout)
            let dx = try NN.matmul(dout, w), dw = try NN.matmul(try NN.transpose(dout, 0, 1), x)
            // The two summation orders (K = N terms for dw, OC for dx) differ elementwise by at most γ_K·Σ|g||x|
            // ≈ γ_K·0.64·K against a largest entry ≈ 4√K: 0.16·√K·γ_K = 6e-13 in float64, 3e-4 in float32 (the
            // worst case; rounding errors of random sign give ≈ 1e-6 there).
            let tolerance = dtype == .float64 ? 1e-10 : 1e-3
            #expect(relativeDifference(x.grad!.toDoubles(), dx.toDoubles()) < tolerance, "\(dtype) dx")
            #expect(relativeDifference(w.grad!.toDoubles(), dw.toDoubles()) < tolerance, "\(dtype) dw")
            try NN.linear(x, weight: w).backward(gradient: dout)   // into the existing .grad (beta = 1 in one part)
            #expect(relativeDifference(w.grad!.toDoubles(), dw.toDoubles().map { 2 * $0 }) < tolerance, "\(dtype) dw accumulated")
        }
    }

    @Test("Float32 gradients of a block agree with Float64 ones at the benchmark's small size")
    func float32GradientsMatch() throws {
        let g = Generator(seed: 71)
        let w64 = try GPTBlockWeights.random(C: 128, nLayer: 4, dtype: .float64, generator: g)
        let x64 = try NN.parameter(randn([2, 64, 128], g))
        let w32 = GPTBlockWeights(ln1: try w64.ln1.copy(dtype: .float32), cAttn: try w64.cAttn.copy(dtype: .float32),
                                  cProj: try w64.cProj.copy(dtype: .float32), ln2: try w64.ln2.copy(dtype: .float32),
                                  cFc: try w64.cFc.copy(dtype: .float32), mlpProj: try w64.mlpProj.copy(dtype: .float32))
        let x32 = try NN.parameter(x64.copy(dtype: .float32))
        for t in w32.all { NN.parameter(t) }
        try NN.mean(try NN.gptBlock(x64, w64, heads: 4)).backward()
        try NN.mean(try NN.gptBlock(x32, w32, heads: 4)).backward()
        for (a, b) in zip([x32] + w32.all, [x64] + w64.all) {
            let d = relativeDifference(a.grad!.toDoubles(), b.grad!.toDoubles())
            #expect(d < 1e-4, "gradient of shape \(b.shape): \(d)")
        }
    }

    @Test("dropout masks are bits: any length (across streams, a partial last byte); a prefix of a longer mask from the same state")
    func dropoutBitMasks() throws {
        let n = 3 * 65_536 + 13   // four streams, the last one 13 elements long
        let x = try Tensor.full([n], 2, dtype: .float32)
        let y = try NN.dropout(x, p: 0.3, generator: Generator(seed: 9)).toDoubles()
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 2 / 0.7) < 1e-6 })
        let keptFraction = Double(y.filter { $0 != 0 }.count) / Double(n), sigma = (0.21 / Double(n)).squareRoot()
        #expect(abs(keptFraction - 0.7) < 5 * sigma, "kept \(keptFraction)")
        #expect(y.suffix(13).contains { $0 != 0 })
        // The mask of element i depends on the generator's state and i only (not on n, not on the cores).
        let short = try NN.dropout(try Tensor.full([1000], 2, dtype: .float32), p: 0.3, generator: Generator(seed: 9)).toDoubles()
        #expect(short == Array(y.prefix(1000)))
    }

    @Test("float32 attention (its AVX transposes, product kernel and row kernels) equals float64, forward and gradient, for head sizes of 8 to 24 (12: no multiple of 8) and lengths that are no multiple of 8 or 16")
    func attentionFloat32() throws {
        for (n, c) in [(2, 37, 48, 3), (1, 70, 64, 8), (1, 19, 72, 3), (2, 9, 36, 3)].enumerated() {
            let g = Generator(seed: 90 + UInt64(n))
            let x64 = try randn([c.0, c.1, 3 * c.2], g), r64 = try randn([c.0, c.1, c.2], g)
            var results: [(y: [Double], grad: [Double])] = []
            for dtype in [DType.float64, .float32] {
                let x = try NN.parameter(x64.copy(dtype: dtype))
                let y = try NN.causalSelfAttention(x, heads: c.3)
                try NN.sum(try NN.mul(y, try r64.copy(dtype: dtype))).backward()
                results.append((y.toDoubles(), x.grad!.toDoubles()))
            }
            let dOut = relativeDifference(results[1].y, results[0].y), dGrad = relativeDifference(results[1].grad, results[0].grad)
            print("attention float32 vs float64, B=\(c.0) T=\(c.1) C=\(c.2) heads=\(c.3): output \(dOut), gradient \(dGrad)")
            #expect(dOut < 1e-5 && dGrad < 1e-5)
        }
    }

    @Test("attention's float32 product kernel (dbm_small_sgemm) against a float64 loop: every element within (k + 2)·u·|alpha|·Σ|a||b|, A and Aᵀ, tails of rows and columns, nothing written outside C")
    func smallProductKernel() throws {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        #if arch(x86_64)
        // The kernel must be in use wherever the CPU and OS offer AVX2 with FMA (XCR0 is checked by both).
        if flags.contains("avx2") && flags.contains("fma") { #expect(dbm_avx2_fma_available() == 1) }
        #endif
        let g = Generator(seed: 77)
        let u = Double(Float.ulpOfOne) / 2
        // (m, n, k): full 4 × 16 tiles, 8-column tiles, masked tails of 1–7 columns, 1–3 leftover rows, k = 0 and 1.
        for (m, n, k) in [(32, 64, 32), (4, 16, 1), (5, 23, 17), (7, 9, 64), (3, 7, 5), (1, 1, 1), (13, 29, 0), (64, 32, 256), (2, 41, 33)] {
            for transA in [false, true] {
                let lda = (transA ? m : k) + 3, ldb = n + 5, ldc = n + 2
                let aRows = transA ? k : m
                let a = try randn([max(1, aRows * lda)], g).toDoubles().map(Float.init)
                let b = try randn([max(1, k * ldb)], g).toDoubles().map(Float.init)
                let sentinel: Float = 12345
                var c = [Float](repeating: sentinel, count: (m + 1) * ldc)
                let alpha: Float = 1 / Float(k + 1).squareRoot()
                let done = a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    dbm_small_sgemm(m, n, k, alpha, ap.baseAddress, transA ? 1 : lda, transA ? lda : 1, bp.baseAddress, ldb, cp.baseAddress, ldc)
                } } }
                if done == 0 { #expect(c.allSatisfy { $0 == sentinel }); continue }
                var worst = 0.0
                for i in 0..<(m + 1) {
                    for j in 0..<ldc {
                        guard i < m, j < n else { #expect(c[i * ldc + j] == sentinel, "m=\(m) n=\(n) k=\(k): C[\(i),\(j)] written"); continue }
                        var exact = 0.0, magnitude = 0.0
                        for p in 0..<k {
                            let x = Double(transA ? a[p * lda + i] : a[i * lda + p]), y = Double(b[p * ldb + j])
                            exact += x * y; magnitude += abs(x * y)
                        }
                        let bound = Double(k + 2) * u * Double(alpha) * magnitude + (k == 0 ? 0 : Double(Float.leastNormalMagnitude))
                        let error = abs(Double(c[i * ldc + j]) - Double(alpha) * exact)
                        worst = max(worst, bound > 0 ? error / bound : error)
                        #expect(error <= bound, "m=\(m) n=\(n) k=\(k) transA=\(transA): C[\(i),\(j)] off by \(error), bound \(bound)")
                    }
                }
                print("small product m=\(m) n=\(n) k=\(k) transA=\(transA): largest error / bound \(worst)")
            }
        }
    }

    @Test("attention's float32 row kernels (exp_shift_sum, scale, softmax_backward_row) against float64 for every length 1–40 (vector tails), within their error bounds; nothing written past the row; NaN stays NaN, far below the range gives 0")
    func attentionRowKernels() throws {
        let g = Generator(seed: 78)
        let u = Double(Float.ulpOfOne) / 2
        let sentinel: Float = 777
        for n in 1...40 {
            let x = try randn([n], g, std: 3).toDoubles().map(Float.init), d = try randn([n], g).toDoubles().map(Float.init)
            let shift = x.max()! + 0.25
            // e_j = exp(x_j − shift): the polynomial's ≤ 2 ulp, the range reduction's rounding, and the rounding
            // of the argument (relative u·|x − shift| in e): ≤ (6 + |x − shift|)·u·e. The sum adds n·u·Σe.
            var row = x + [sentinel, sentinel]
            let sum = Double(dbm_exp_shift_sum_f32(&row, shift, n))
            #expect(row[n] == sentinel && row[n + 1] == sentinel, "n=\(n): exp_shift_sum wrote past the row")
            var exactSum = 0.0, elementErrors = 0.0
            for j in 0..<n {
                let a = Double(x[j]) - Double(shift), e = Foundation.exp(a)
                let bound = (6 + abs(a)) * u * e
                #expect(abs(Double(row[j]) - e) <= bound, "n=\(n) j=\(j): e^\(a) = \(row[j]), exact \(e)")
                exactSum += e; elementErrors += bound
            }
            #expect(abs(sum - exactSum) <= elementErrors + Double(n) * u * exactSum, "n=\(n): sum \(sum), exact \(exactSum)")
            // scale: one rounding per element.
            var scaled = row
            let factor: Float = 0.3
            dbm_scale_f32(&scaled, factor, n)
            for j in 0..<n {
                let exact = Double(factor) * Double(row[j])
                #expect(abs(Double(scaled[j]) - exact) <= u * exact, "n=\(n) j=\(j): \(scaled[j]), exact \(exact)")
            }
            #expect(scaled[n] == sentinel && scaled[n + 1] == sentinel, "n=\(n): scale wrote past the row")
            // softmax backward: dp_j ← p_j (dp_j − Σ p·dp); the dot's error ≤ (n + 1)·u·Σ|p·dp|, then a subtraction and a product.
            let p = (0..<n).map { Float(Double(row[$0]) / sum) }
            var dp = d + [sentinel, sentinel]
            dbm_softmax_backward_row_f32(p, &dp, n)
            #expect(dp[n] == sentinel && dp[n + 1] == sentinel, "n=\(n): softmax_backward_row wrote past the row")
            let dot = zip(p, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let dotMagnitude = zip(p, d).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            for j in 0..<n {
                let exact = Double(p[j]) * (Double(d[j]) - dot)
                let bound = Double(p[j]) * (Double(n + 1) * u * dotMagnitude + 3 * u * (abs(Double(d[j])) + abs(dot)))
                #expect(abs(Double(dp[j]) - exact) <= bound, "n=\(n) j=\(j): \(dp[j]), exact \(exact)")
            }
        }
        // Special values, in the vector body and in the tail: NaN stays NaN, far below the range gives exactly 0.
        for n in [5, 13, 21] {
            var row = [Float](repeating: -1, count: n)
            row[n - 1] = .nan; row[0] = -200
            _ = dbm_exp_shift_sum_f32(&row, 0, n)
            #expect(row[n - 1].isNaN && row[0] == 0 && abs(Double(row[1]) - Foundation.exp(-1.0)) < 1e-7, "n=\(n): \(row)")
        }
    }

    @Test("attention dropout keeps each probability with rate 1 − p, scaled by 1/(1 − p), only up to the diagonal; same generator state, same result")
    func attentionDropoutRate() throws {
        // q = k = 0 gives uniform probabilities P[i,j] = 1/(i+1) (j ≤ i); with V the identity (hs = T) the
        // output row i is the dropped-out row P'[i, :] itself.
        let (B, T) = (24, 64), C = T
        var qkv = [Double](repeating: 0, count: B * T * 3 * C)
        for b in 0..<B { for t in 0..<T { qkv[(b * T + t) * 3 * C + 2 * C + t] = 1 } }
        let input = try Tensor.from(qkv, shape: [B, T, 3 * C], dtype: .float32)
        let y = try NN.causalSelfAttention(input, heads: 1, dropout: 0.2, generator: Generator(seed: 4)).toDoubles()
        var kept = 0, total = 0
        for b in 0..<B {
            for i in 0..<T {
                for j in 0..<T {
                    let v = y[(b * T + i) * C + j]
                    if j > i { #expect(v == 0); continue }
                    total += 1
                    if v != 0 { kept += 1; #expect(abs(v - 1.25 / Double(i + 1)) < 1e-6 / Double(i + 1)) }
                }
            }
        }
        let sigma = (0.16 / Double(total)).squareRoot()
        #expect(abs(Double(kept) / Double(total) - 0.8) < 5 * sigma, "kept \(kept) of \(total)")
        #expect(try NN.causalSelfAttention(input, heads: 1, dropout: 0.2, generator: Generator(seed: 4)).toDoubles() == y)
        #expect(try NN.causalSelfAttention(input, heads: 1, dropout: 0.2, generator: Generator(seed: 5)).toDoubles() != y)
    }

    @Test("a linear layer after layer norm or GELU recomputes its input in backward: the gradients of the saved input (bit for bit, or to GELU derivative rounding)")
    func recomputedInputs() throws {
        let g = Generator(seed: 31)
        // T = 65536: the layer norm's (2·T·32 elements) and GELU's (2·T·64) activations are 16 MB or more
        // even in float32, the size from which they are recomputed; T = 40: below it (saved as before).
        for (dt, T) in [(DType.float32, 40), (.float64, 40), (.float32, 65536), (.float64, 65536)] {
            let x = try randn([2, T, 32], g, dtype: dt), lnw = try randn([32], g, dtype: dt)
            let w1 = try randn([64, 32], g, std: 0.2, dtype: dt), w2 = try randn([32, 64], g, std: 0.2, dtype: dt)
            let params = [x, lnw, w1, w2]
            for p in params { NN.parameter(p) }
            // viaView: the activations reach the linear layers through a reshape to their own shape (a
            // view with its own node, hence no recipe): the layers save them.
            func gradients(viaView: Bool, retain: Bool = false) throws -> [[Double]] {
                NN.zeroGrad(params, setToNil: true)
                func pass(_ t: Tensor) throws -> Tensor { viaView ? try NN.reshape(t, t.shape) : t }
                let h = try NN.linear(try pass(try NN.layerNorm(x, weight: lnw)), weight: w1)
                let out = try NN.linear(try pass(try NN.gelu(h)), weight: w2)
                let loss = try NN.sum(try NN.mul(out, out))
                try loss.backward(retainGraph: retain)
                if retain { try loss.backward() }
                return try params.map { try $0.grad!.toDoubles() }
            }
            // Layer norm's recomputed output is its output bit for bit. A recomputed GELU output is too, but
            // GELU's backward then takes Φ(x) = out/x (geluBackwardFromOutput) instead of evaluating it:
            // a few ulp per element in float64; in float32 also the erfc approximation's relative error
            // (≤ 2.1e-6), so the gradients agree to that, relative to their largest element.
            let tolerance = T < 1000 ? 0 : (dt == .float32 ? 1e-5 : 1e-12)
            func expectClose(_ a: [[Double]], _ b: [[Double]], _ what: String) {
                for (u, v) in zip(a, b) {
                    let d = relativeDifference(u, v)
                    #expect(tolerance == 0 ? u == v : d <= tolerance, "\(what) \(dt) T=\(T): \(d)")
                }
            }
            expectClose(try gradients(viaView: false), try gradients(viaView: true), "recomputed vs saved")
            // Through a retained graph, a second backward recomputes again (the accumulation into existing
            // .grad buffers rounds differently from the first pass, so compare like with like).
            expectClose(try gradients(viaView: false, retain: true), try gradients(viaView: true, retain: true), "retained graph")
        }
    }
}
