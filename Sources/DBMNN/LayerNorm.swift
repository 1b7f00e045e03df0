import DBMCore

// ---------------------------------------------------------------------- layer norm over the last dimension

// inp is (N,C), weight is (C), bias is (C) or nil, out is (N,C); saves mean (N) and rstd (N) = 1/√(var + eps)
// out = (inp − mean)·rstd·weight + bias, the variance biased (divided by C) as in PyTorch.
func layerNormForward<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ mean: UnsafeMutablePointer<T>, _ rstd: UnsafeMutablePointer<T>,
                                  _ inp: UnsafePointer<T>, _ weight: UnsafePointer<T>, _ bias: UnsafePointer<T>?,
                                  _ N: Int, _ C: Int, _ eps: T) {
    Parallel.chunks(N, grain: max(1, elementGrain / max(C, 1))) { rows, _ in
        for n in rows {
            let x = inp + n * C, y = out + n * C
            let m = vsum(x, C) / T(C)
            // Two passes over the row (in cache): no cancellation as in E[x²] − E[x]².
            let v = vsumSquaredDeviations(x, C, m) / T(C)
            let s = 1 / (v + eps).squareRoot()
            layerNormRowOutput(y, x, weight, bias, m, s, C)
            mean[n] = m; rstd[n] = s
        }
    }
}

// The forward's output again from the saved mean and rstd (equal bit for bit: the same row function on the
// same numbers), for a consumer that keeps this recipe instead of the output (NN.savedInput).
func layerNormRecompute<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ weight: UnsafePointer<T>,
                                    _ bias: UnsafePointer<T>?, _ mean: UnsafePointer<T>, _ rstd: UnsafePointer<T>,
                                    _ N: Int, _ C: Int) {
    Parallel.chunks(N, grain: max(1, elementGrain / max(C, 1))) { rows, _ in
        for n in rows { layerNormRowOutput(out + n * C, inp + n * C, weight, bias, mean[n], rstd[n], C) }
    }
}

// dout is (N,C); writes dinp (N,C) and dweight, dbias (C) when asked. With x̂ = (x − mean)·rstd and
// ĝ = dout·weight: dinp = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), dweight = Σ_n dout·x̂, dbias = Σ_n dout.
// Each worker sums its rows' dweight/dbias into its own slice of `partials` ((workers, 2C)), added at the end.
func layerNormBackward<T: NNFloat>(_ dinp: UnsafeMutablePointer<T>?, _ dweight: UnsafeMutablePointer<T>?,
                                   _ dbias: UnsafeMutablePointer<T>?, _ dout: UnsafePointer<T>, _ inp: UnsafePointer<T>,
                                   _ weight: UnsafePointer<T>, _ mean: UnsafePointer<T>, _ rstd: UnsafePointer<T>,
                                   _ N: Int, _ C: Int) {
    let grain = max(1, elementGrain / max(C, 1))
    let workers = Parallel.chunkCount(N, grain: grain)
    let partials = UnsafeMutablePointer<T>.allocate(capacity: max(1, workers * 2 * C))
    defer { partials.deallocate() }
    partials.initialize(repeating: 0, count: workers * 2 * C)
    let wantParams = dweight != nil || dbias != nil
    Parallel.chunks(N, grain: grain) { rows, worker in
        let dw = partials + worker * 2 * C, db = dw + C
        for n in rows {
            let x = inp + n * C, g = dout + n * C
            let m = mean[n], s = rstd[n]
            let (sumGW, sumGWD) = layerNormRowSums(g, weight, x, m, C)
            let gMean = sumGW / T(C), gxMean = sumGWD * s / T(C)
            if let dinp { layerNormRowInputGradient(dinp + n * C, g, weight, x, m, s, gMean, gxMean, C) }
            if wantParams { layerNormRowParameterGradients(dw, db, g, x, m, s, C) }
        }
    }
    if let dweight { for i in 0..<C { var t: T = 0; for w in 0..<workers { t += partials[w * 2 * C + i] }; dweight[i] = t } }
    if let dbias { for i in 0..<C { var t: T = 0; for w in 0..<workers { t += partials[w * 2 * C + C + i] }; dbias[i] = t } }
}

// The row loops below are written on SIMD16 values: the plain loops, with four or five pointers that
// might alias, stayed scalar in these closures (callgrind: 5.5 instructions per element of the forward).

@inline(__always) func store16<T: NNFloat>(_ p: UnsafeMutablePointer<T>, _ i: Int, _ v: SIMD16<T>) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD16<T>.self)
}

/// y = (x − m)·s·w (+ b) over a row.
@inline(__always)
func layerNormRowOutput<T: NNFloat>(_ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ w: UnsafePointer<T>,
                                    _ b: UnsafePointer<T>?, _ m: T, _ s: T, _ C: Int) {
    let mv = SIMD16<T>(repeating: m), sv = SIMD16<T>(repeating: s)
    var i = 0
    if let b {
        while i + 16 <= C { store16(y, i, (load16(x, i) - mv) * sv * load16(w, i) + load16(b, i)); i += 16 }
        while i < C { y[i] = (x[i] - m) * s * w[i] + b[i]; i += 1 }
    } else {
        while i + 16 <= C { store16(y, i, (load16(x, i) - mv) * sv * load16(w, i)); i += 16 }
        while i < C { y[i] = (x[i] - m) * s * w[i]; i += 1 }
    }
}

/// d = s·(g·w − gMean − (x − m)·s·gxMean) over a row.
@inline(__always)
func layerNormRowInputGradient<T: NNFloat>(_ d: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ w: UnsafePointer<T>,
                                           _ x: UnsafePointer<T>, _ m: T, _ s: T, _ gMean: T, _ gxMean: T, _ C: Int) {
    let mv = SIMD16<T>(repeating: m), sv = SIMD16<T>(repeating: s)
    let gm = SIMD16<T>(repeating: gMean), gxm = SIMD16<T>(repeating: gxMean)
    var i = 0
    while i + 16 <= C {
        store16(d, i, sv * (load16(g, i) * load16(w, i) - gm - (load16(x, i) - mv) * sv * gxm)); i += 16
    }
    while i < C { d[i] = s * (g[i] * w[i] - gMean - (x[i] - m) * s * gxMean); i += 1 }
}

/// dw += g·(x − m)·s, db += g over a row.
@inline(__always)
func layerNormRowParameterGradients<T: NNFloat>(_ dw: UnsafeMutablePointer<T>, _ db: UnsafeMutablePointer<T>,
                                                _ g: UnsafePointer<T>, _ x: UnsafePointer<T>, _ m: T, _ s: T, _ C: Int) {
    let mv = SIMD16<T>(repeating: m), sv = SIMD16<T>(repeating: s)
    var i = 0
    while i + 16 <= C {
        let gv = load16(g, i)
        store16(dw, i, load16(dw, i) + gv * (load16(x, i) - mv) * sv)
        store16(db, i, load16(db, i) + gv)
        i += 16
    }
    while i < C { dw[i] += g[i] * (x[i] - m) * s; db[i] += g[i]; i += 1 }
}

/// (Σ g·w, Σ g·w·(x − m)) over a row, in SIMD lanes.
@inline(__always)
func layerNormRowSums<T: NNFloat>(_ g: UnsafePointer<T>, _ w: UnsafePointer<T>, _ x: UnsafePointer<T>, _ m: T, _ C: Int) -> (T, T) {
    var a = SIMD16<T>(), b = SIMD16<T>(), i = 0
    let mv = SIMD16<T>(repeating: m)
    while i + 16 <= C {
        let gw = load16(g, i) * load16(w, i)
        a += gw; b += gw * (load16(x, i) - mv); i += 16
    }
    var sa = a.sum(), sb = b.sum()
    while i < C { let gw = g[i] * w[i]; sa += gw; sb += gw * (x[i] - m); i += 1 }
    return (sa, sb)
}

extension NN {
    /// Layer norm over the last dimension: x (..., C), weight (C), optional bias (C), eps 1e-5 by default.
    public static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, eps: Double = 1e-5) throws -> Tensor {
        let op = "layer_norm"
        guard x.rank >= 1 else { throw DBMError("\(op): expected x of shape (..., C), got a scalar") }
        let C = x.shape[x.rank - 1]
        guard weight.shape == [C] else {
            throw DBMError("\(op): expected weight of shape (\(C)) for x of shape \(formatShape(x.shape)), got \(formatShape(weight.shape))")
        }
        if let bias, bias.shape != [C] {
            throw DBMError("\(op): expected bias of shape (\(C)) for x of shape \(formatShape(x.shape)), got \(formatShape(bias.shape))")
        }
        guard eps >= 0, eps.isFinite else { throw DBMError("\(op): expected a finite eps >= 0, got \(eps)") }
        try requireSameDType(op, [("x", x), ("weight", weight)] + (bias.map { [("bias", $0)] } ?? []))
        switch x.dtype {
        case .float32: return try layerNormOp(x, weight, bias, eps, Float.self)
        case .float64: return try layerNormOp(x, weight, bias, eps, Double.self)
        }
    }

    static func layerNormOp<T: NNFloat>(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ eps: Double, _: T.Type) throws -> Tensor {
        let C = x.shape[x.rank - 1], N = C == 0 ? 0 : x.count / C
        let inp = try x.contiguous(), w = try weight.contiguous(), b = try bias?.contiguous()
        let out = try empty(x.shape, x.dtype)
        let mean = try empty([N], x.dtype), rstd = try empty([N], x.dtype)
        layerNormForward(out.pointer(T.self), mean.pointer(T.self), rstd.pointer(T.self), inp.pointer(T.self),
                         w.pointer(T.self), b?.pointer(T.self), N, C, T(eps))
        // Saved: the input, the weight (and bias), mean and rstd; from them a large output is recomputed
        // by its consumer (NN.savedInput) instead of being saved there.
        let (xShape, dt, hasBias) = (x.shape, x.dtype, bias != nil)
        let recompute = { () throws -> Tensor in
            let y = try empty(xShape, dt)
            layerNormRecompute(y.pointer(T.self), inp.pointer(T.self), w.pointer(T.self), b?.pointer(T.self),
                               mean.pointer(T.self), rstd.pointer(T.self), N, C)
            return y
        }
        let large = out.count * MemoryLayout<T>.stride >= recomputeMinimumBytes
        return record("layer_norm", output: out, inputs: [x, weight] + (bias.map { [$0] } ?? []),
                      recompute: large ? recompute : nil) { g, needs in
            let dinp = needs[0] ? try empty(xShape, dt) : nil
            let dw = needs[1] ? try empty([C], dt) : nil
            let db = hasBias && needs[2] ? try empty([C], dt) : nil
            layerNormBackward(dinp?.pointer(T.self), dw?.pointer(T.self), db?.pointer(T.self), g.pointer(T.self),
                              inp.pointer(T.self), w.pointer(T.self), mean.pointer(T.self), rstd.pointer(T.self), N, C)
            return [dinp, dw] + (hasBias ? [db] : [])
        }
    }
}
