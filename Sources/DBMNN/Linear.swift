import DBMCore

// ---------------------------------------------------------------------- linear: out = inp · weightᵀ + bias

// inp is (N,C), weight is (OC,C) (PyTorch layout), bias is (OC) or nil, out is (N,OC)
func linearForward<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ weight: UnsafePointer<T>,
                               _ bias: UnsafePointer<T>?, _ N: Int, _ C: Int, _ OC: Int) {
    if let bias {   // rows of out start as the bias; the product adds to them (beta = 1)
        Parallel.chunks(N, grain: max(1, (1 << 15) / max(OC, 1))) { rows, _ in
            for n in rows { (out + n * OC).update(from: bias, count: OC) }
        }
    }
    Gemm.run(false, true, N, OC, C, 1, inp, C, weight, C, bias == nil ? 0 : 1, out, OC)
}

/// Linear backward products of at least this many multiply-adds (each) run in four parts, see linearBackward.
let linearBalancedMinimum = 1 << 26

// dout is (N,OC); writes dinp (N,C) = dout · weight, dweight (OC,C) = doutᵀ · inp (added to dweight when
// accumulate), dbias (OC) = Σ_n dout, each only when asked for. Backward needs inp and weight (the
// forward's inputs), nothing else. partial (OC,C) is scratch for large products (linearBalancedMinimum)
// with both gradients asked for, else nil.
func linearBackward<T: NNFloat>(_ dinp: UnsafeMutablePointer<T>?, _ dweight: UnsafeMutablePointer<T>?, _ accumulate: Bool,
                                _ dbias: UnsafeMutablePointer<T>?, _ dout: UnsafePointer<T>,
                                _ inp: UnsafePointer<T>, _ weight: UnsafePointer<T>, _ N: Int, _ C: Int, _ OC: Int,
                                partial: UnsafeMutablePointer<T>? = nil) {
    let beta: T = accumulate ? 1 : 0
    if let dinp, let dweight, let partial {
        // The same two products in four parts taken in turn by the cores: dinp's two halves of rows and
        // dweight's two halves of the tokens (the second into partial, added after). The two products do
        // not run equally fast (`paper` preset, single-threaded cblas_sgemm: attn.c_proj's dinp 58.6 ms, its
        // dweight 49.1 ms), and with one product per core the faster core waited for the other. Backward of
        // that layer 58.6 → 56.0 ms (medians of 8 alternating runs, faster in 7 of 8); the other three
        // shapes 1–2% faster, inside this shared machine's noise.
        let h = N / 2
        Gemm.concurrently([
            { T.gemm(false, false, h, C, OC, 1, dout, OC, weight, C, 0, dinp, C) },
            { T.gemm(false, false, N - h, C, OC, 1, dout + h * OC, OC, weight, C, 0, dinp + h * C, C) },
            { T.gemm(true, false, OC, C, h, 1, dout, OC, inp, C, beta, dweight, C) },
            { T.gemm(true, false, OC, C, N - h, 1, dout + h * OC, OC, inp + h * C, C, 0, partial, C) },
        ])
        arithForward(.add, dweight, dweight, partial, OC * C)
    } else if let dinp, let dweight {
        // Two independent products of equal cost (N·C·OC each): one per core, each a full-size
        // single-threaded call, which runs nearer BLAS peak than either product split in two.
        Gemm.concurrently([
            { T.gemm(false, false, N, C, OC, 1, dout, OC, weight, C, 0, dinp, C) },
            { T.gemm(true, false, OC, C, N, 1, dout, OC, inp, C, beta, dweight, C) },
        ])
    } else if let dinp {
        Gemm.run(false, false, N, C, OC, 1, dout, OC, weight, C, 0, dinp, C)
    } else if let dweight {
        Gemm.run(true, false, OC, C, N, 1, dout, OC, inp, C, beta, dweight, C)
    }
    if let dbias { columnSums(dbias, dout, N, OC) }
}

// x is (N,M); sums (M) = Σ_n x[n,:]. Columns are split over the cores; each walks all rows.
func columnSums<T: NNFloat>(_ sums: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ N: Int, _ M: Int) {
    Parallel.chunks(M, grain: max(16, (1 << 16) / max(N, 1))) { cols, _ in
        let s = sums + cols.lowerBound, w = cols.count
        s.update(repeating: 0, count: w)
        for n in 0..<N {
            let row = x + n * M + cols.lowerBound
            for j in 0..<w { s[j] += row[j] }
        }
    }
}

extension NN {
    /// y = x · weightᵀ (+ bias): x is (..., C), weight (OC, C) as in PyTorch, bias (OC); y is (..., OC).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        let op = "linear"
        guard weight.rank == 2 else {
            throw DBMError("\(op): expected weight of shape (out, in), got \(formatShape(weight.shape))")
        }
        let (OC, C) = (weight.shape[0], weight.shape[1])
        guard x.rank >= 1, x.shape[x.rank - 1] == C else {
            throw DBMError("\(op): expected x of shape (..., \(C)) to match weight \(formatShape(weight.shape)), got \(formatShape(x.shape))")
        }
        if let bias, bias.shape != [OC] {
            throw DBMError("\(op): expected bias of shape (\(OC)), got \(formatShape(bias.shape))")
        }
        try requireSameDType(op, [("x", x), ("weight", weight)] + (bias.map { [("bias", $0)] } ?? []))
        switch x.dtype {
        case .float32: return try linearOp(x, weight, bias, Float.self)
        case .float64: return try linearOp(x, weight, bias, Double.self)
        }
    }

    static func linearOp<T: NNFloat>(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _: T.Type) throws -> Tensor {
        let (OC, C) = (weight.shape[0], weight.shape[1])
        let N = C == 0 ? x.count : x.count / C
        let inp = try x.contiguous(), w = try weight.contiguous(), b = try bias?.contiguous()
        let out = try empty(Array(x.shape.dropLast()) + [OC], x.dtype)
        linearForward(out.pointer(T.self), inp.pointer(T.self), w.pointer(T.self), b?.pointer(T.self), N, C, OC)
        // Saved: the input (or its producer's recipe, see savedInput) and the weight. A weight whose .grad
        // exists receives dweight directly (beta = 1).
        let (xShape, dt, hasBias) = (x.shape, x.dtype, bias != nil)
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        let (input, inputReads) = willRecord(inputs) ? savedInput(x, inp) : ({ inp }, [])
        return record("linear", output: out, inputs: inputs, reads: inputReads + [w]) { g, needs in
            let dinp = needs[0] ? try empty(xShape, dt) : nil
            let sink = needs[1] ? leafGradBuffer(weight) : nil
            let dw = needs[1] ? try sink ?? empty([OC, C], dt) : nil
            let db = hasBias && needs[2] ? try empty([OC], dt) : nil
            let inp = needs[1] ? try input() : w   // dinp alone does not read the input (w: any valid pointer)
            let balanced = needs[0] && needs[1] && N >= 2 && N * C * OC >= linearBalancedMinimum
            let partial = balanced ? try scratch(T.self, count: OC * C) : nil
            withExtendedLifetime(partial?.0) {
                linearBackward(dinp?.pointer(T.self), dw?.pointer(T.self), sink != nil, db?.pointer(T.self), g.pointer(T.self),
                               inp.pointer(T.self), w.pointer(T.self), N, C, OC, partial: partial?.1)
            }
            return [dinp, sink == nil ? dw : nil] + (hasBias ? [db] : [])
        }
    }
}

// ---------------------------------------------------------------------- matmul: out = a · b

/// How BLAS reads a 2-D tensor in place: transposed or not, with its leading dimension; nil when the
/// layout needs a copy.
func blasLayout(_ t: Tensor) -> (trans: Bool, ld: Int)? {
    guard t.rank == 2 else { return nil }
    let (r, c) = (t.shape[0], t.shape[1])
    if t.strides[1] == 1 || c == 1 { let ld = max(t.strides[0], c, 1); if r == 1 || t.strides[0] >= c { return (false, ld) } }
    if t.strides[0] == 1 || r == 1 { let ld = max(t.strides[1], r, 1); if c == 1 || t.strides[1] >= r { return (true, ld) } }
    return nil
}

extension NN {
    /// Matrix product: (M,K)·(K,N) → (M,N), transposed views read in place; (..., M, K)·(K, N) → (..., M, N);
    /// batched (..., M, K)·(..., K, N) → (..., M, N) with equal leading dimensions.
    public static func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let op = "matmul"
        guard a.rank >= 2, b.rank >= 2 else {
            throw DBMError("\(op): expected operands of rank 2 or more, got \(formatShape(a.shape)) and \(formatShape(b.shape))")
        }
        let (M, K) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), (K2, N) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        guard K == K2 else {
            throw DBMError("\(op): expected inner sizes to agree, got \(formatShape(a.shape)) · \(formatShape(b.shape)) (\(K) vs \(K2))")
        }
        guard b.rank == 2 || Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)) else {
            throw DBMError("\(op): expected a (..., M, K) and b (K, N) or with the same leading dimensions, got \(formatShape(a.shape)) and \(formatShape(b.shape))")
        }
        try requireSameDType(op, [("a", a), ("b", b)])
        switch a.dtype {
        case .float32: return try matmulOp(a, b, M, K, N, Float.self)
        case .float64: return try matmulOp(a, b, M, K, N, Double.self)
        }
    }

    static func matmulOp<T: NNFloat>(_ a: Tensor, _ b: Tensor, _ M: Int, _ K: Int, _ N: Int, _: T.Type) throws -> Tensor {
        // Batch count and how each operand is read: a 2-D b is shared by every batch; a's leading
        // dimensions fold into rows when b is 2-D (one product), else each batch is one product.
        let batched = b.rank > 2
        let outShape = Array(a.shape.dropLast()) + [N]
        let batches = batched ? a.count / max(M * K, 1) : 1
        let rowsA = batched ? M : (K == 0 ? a.count : a.count / K)
        var ac = a, bc = b
        var (ta, lda) = (false, K), (tb, ldb) = (false, N)
        if a.rank == 2, let l = blasLayout(a) { (ta, lda) = l } else { ac = try a.contiguous() }
        if b.rank == 2, let l = blasLayout(b) { (tb, ldb) = l } else { bc = try b.contiguous() }
        if batched { ta = false; lda = K; tb = false; ldb = N }
        let out = try empty(outShape, a.dtype)
        let (pa, pb, po) = (ac.pointer(T.self), bc.pointer(T.self), out.pointer(T.self))
        let (sa, sb, so) = (M * K, K * N, M * N)   // per-batch strides (batched case)
        for i in 0..<batches {
            Gemm.run(ta, tb, rowsA, N, K, 1, pa + i * sa, lda, pb + (batched ? i * sb : 0), ldb, 0, po + i * so, N)
        }
        // Saved: both operands (as read by the forward products).
        let (aShape, bShape, dt) = (a.shape, b.shape, a.dtype)
        return record("matmul", output: out, inputs: [a, b]) { g, needs in
            let da = needs[0] ? try empty(aShape, dt) : nil   // contiguous (M,K) blocks
            let db = needs[1] ? try empty(bShape, dt) : nil
            let (pa, pb, pg) = (ac.pointer(T.self), bc.pointer(T.self), g.pointer(T.self))   // the closure keeps ac, bc
            for i in 0..<batches {
                // da = g · bᵀ: (rows, N)·(N, K)
                if let da { Gemm.run(false, !tb, rowsA, K, N, 1, pg + i * so, N, pb + (batched ? i * sb : 0), ldb, 0, da.pointer(T.self) + i * sa, K) }
                // db = aᵀ · g: (K, rows)·(rows, N), summed over batches when b is shared
                if let db {
                    let dst = db.pointer(T.self) + (batched ? i * sb : 0)
                    Gemm.run(!ta, false, K, N, rowsA, 1, pa + i * sa, lda, pg + i * so, N, batched || i == 0 ? 0 : 1, dst, N)
                }
            }
            return [da, db]
        }
    }
}
