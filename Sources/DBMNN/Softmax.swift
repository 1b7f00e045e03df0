import DBMCore

// ---------------------------------------------------------------------- softmax over the last dimension

// inp, probs are (N,V); probs = exp(inp − max) / Σ exp(inp − max), row by row
func softmaxForward<T: NNFloat>(_ probs: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ N: Int, _ V: Int) {
    Parallel.chunks(N, grain: max(1, elementGrain / 8 / max(V, 1))) { rows, _ in
        for n in rows {
            let x = inp + n * V, p = probs + n * V
            let m = vmax(x, V)
            for j in 0..<V { p[j] = T.fastExp(x[j] - m) }
            let inv = 1 / vsum(p, V)
            for j in 0..<V { p[j] *= inv }
        }
    }
}

// dout, probs, dinp are (N,V); backward needs the probabilities: dinp = p ⊙ (dout − Σ_j dout·p)
func softmaxBackward<T: NNFloat>(_ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>, _ probs: UnsafePointer<T>,
                                 _ N: Int, _ V: Int) {
    Parallel.chunks(N, grain: max(1, elementGrain / max(V, 1))) { rows, _ in
        for n in rows {
            let g = dout + n * V, p = probs + n * V, d = dinp + n * V
            let dot = vdot(g, p, V)
            for j in 0..<V { d[j] = p[j] * (g[j] - dot) }
        }
    }
}

extension NN {
    /// Softmax over the last dimension.
    public static func softmax(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1 else { throw DBMError("softmax: expected x of shape (..., V), got a scalar") }
        switch x.dtype {
        case .float32: return try softmaxOp(x, Float.self)
        case .float64: return try softmaxOp(x, Double.self)
        }
    }

    static func softmaxOp<T: NNFloat>(_ x: Tensor, _: T.Type) throws -> Tensor {
        let V = x.shape[x.rank - 1], N = V == 0 ? 0 : x.count / V
        let inp = try x.contiguous()
        let out = try empty(x.shape, x.dtype)
        softmaxForward(out.pointer(T.self), inp.pointer(T.self), N, V)
        let probs = saved(out)   // saved: the probabilities (the output)
        let (xShape, dt) = (x.shape, x.dtype)
        return record("softmax", output: out, inputs: [x], reads: [out]) { g, _ in
            let dinp = try empty(xShape, dt)
            softmaxBackward(dinp.pointer(T.self), g.pointer(T.self), probs.pointer(T.self), N, V)
            return [dinp]
        }
    }
}

// ---------------------------------------------------------------------- cross-entropy with a fused log-softmax

// logits is (N,V), targets (N) in 0..<V; saves lse (N) = log Σ_j exp(logits[n,j]);
// returns the mean loss (1/N) Σ_n (lse[n] − logits[n, target[n]]), summed in Double.
func crossEntropyForward<T: NNFloat>(_ lse: UnsafeMutablePointer<T>, _ logits: UnsafePointer<T>, _ targets: UnsafePointer<Int32>,
                                     _ N: Int, _ V: Int) -> Double {
    let workers = Parallel.chunkCount(N, grain: max(1, elementGrain / 8 / max(V, 1)))
    var partial = [Double](repeating: 0, count: workers)
    partial.withUnsafeMutableBufferPointer { part in
        Parallel.chunks(N, grain: max(1, elementGrain / 8 / max(V, 1))) { rows, worker in
            var acc = 0.0
            for n in rows {
                let x = logits + n * V
                let m = vmax(x, V)
                var s: T = 0
                for j in 0..<V { s += T.fastExp(x[j] - m) }
                let l = m + T.log(s)
                lse[n] = l
                acc += Double(l - x[Int(targets[n])])
            }
            part[worker] = acc
        }
    }
    return N == 0 ? 0 : partial.reduce(0, +) / Double(N)
}

// dlogits is (N,V); dloss the loss's gradient (a scalar); backward needs logits and lse:
// dlogits[n,j] = dloss/N · (softmax[n,j] − [j == target[n]]), softmax = exp(logits − lse)
func crossEntropyBackward<T: NNFloat>(_ dlogits: UnsafeMutablePointer<T>, _ dloss: T, _ logits: UnsafePointer<T>,
                                      _ lse: UnsafePointer<T>, _ targets: UnsafePointer<Int32>, _ N: Int, _ V: Int) {
    let s = dloss / T(N)
    Parallel.chunks(N, grain: max(1, elementGrain / 8 / max(V, 1))) { rows, _ in
        for n in rows {
            let x = logits + n * V, d = dlogits + n * V, l = lse[n]
            for j in 0..<V { d[j] = s * T.fastExp(x[j] - l) }
            d[Int(targets[n])] -= s
        }
    }
}

extension NN {
    /// Mean cross-entropy of logits (..., V) against integer targets in 0..<V (a tensor of integral values
    /// with one element per row of logits), computed through a fused log-softmax. Returns a scalar (shape []).
    public static func crossEntropy(_ logits: Tensor, targets: Tensor) throws -> Tensor {
        guard logits.rank >= 1 else { throw DBMError("cross_entropy: expected logits of shape (..., V), got a scalar") }
        let V = logits.shape[logits.rank - 1]
        let N = V == 0 ? 0 : logits.count / V
        guard targets.count == N else {
            throw DBMError("cross_entropy: expected \(N) targets (one per row of logits \(formatShape(logits.shape))), got shape \(formatShape(targets.shape))")
        }
        return try crossEntropy(logits, targets: try integerIds("cross_entropy", "targets", targets, below: V))
    }

    /// As crossEntropy(_:targets:) with the targets (0-based) given as integers.
    public static func crossEntropy(_ logits: Tensor, targets: [Int32]) throws -> Tensor {
        let op = "cross_entropy"
        guard logits.rank >= 1 else { throw DBMError("\(op): expected logits of shape (..., V), got a scalar") }
        let V = logits.shape[logits.rank - 1]
        let N = V == 0 ? 0 : logits.count / V
        guard V > 0 else { throw DBMError("\(op): expected at least one class, got logits of shape \(formatShape(logits.shape))") }
        guard N > 0 else { throw DBMError("\(op): expected at least one row of logits, got shape \(formatShape(logits.shape))") }
        guard targets.count == N else {
            throw DBMError("\(op): expected \(N) targets (one per row of logits \(formatShape(logits.shape))), got \(targets.count)")
        }
        try checkIds(op, "targets", targets, below: V)
        switch logits.dtype {
        case .float32: return try crossEntropyOp(logits, targets, N, V, Float.self)
        case .float64: return try crossEntropyOp(logits, targets, N, V, Double.self)
        }
    }

    static func crossEntropyOp<T: NNFloat>(_ logits: Tensor, _ targets: [Int32], _ N: Int, _ V: Int, _: T.Type) throws -> Tensor {
        let x = try logits.contiguous()
        let lse = try empty([N], logits.dtype)
        let loss = targets.withUnsafeBufferPointer { t in
            crossEntropyForward(lse.pointer(T.self), x.pointer(T.self), t.baseAddress!, N, V)
        }
        let out = try Tensor.full([], loss, dtype: logits.dtype)
        // Saved: the logits, lse and the targets.
        let (shape, dt) = (logits.shape, logits.dtype)
        return record("cross_entropy", output: out, inputs: [logits]) { g, _ in
            let dlogits = try empty(shape, dt)
            targets.withUnsafeBufferPointer { t in
                crossEntropyBackward(dlogits.pointer(T.self), g.pointer(T.self)[0], x.pointer(T.self), lse.pointer(T.self),
                                     t.baseAddress!, N, V)
            }
            return [dlogits]
        }
    }
}
