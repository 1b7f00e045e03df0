import DBMCore

// ---------------------------------------------------------------------- embedding lookup

// ids is (N) in 0..<V, weight is (V,C), out is (N,C); out[n] = weight[ids[n]]
func embeddingForward<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ ids: UnsafePointer<Int32>, _ weight: UnsafePointer<T>,
                                  _ N: Int, _ C: Int) {
    Parallel.chunks(N, grain: max(1, elementGrain / max(C, 1))) { rows, _ in
        for n in rows { (out + n * C).update(from: weight + Int(ids[n]) * C, count: C) }
    }
}

// dout is (N,C), dweight (V,C) accumulated into; backward needs the ids: dweight[ids[n]] += dout[n]. Ids repeat,
// so the workers split the columns (each owns its slice of every row of dweight), not the positions.
func embeddingBackward<T: NNFloat>(_ dweight: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>, _ ids: UnsafePointer<Int32>,
                                   _ N: Int, _ C: Int) {
    Parallel.chunks(C, grain: max(16, elementGrain / max(N, 1))) { cols, _ in
        let c0 = cols.lowerBound, w = cols.count
        for n in 0..<N {
            let d = dweight + Int(ids[n]) * C + c0, g = dout + n * C + c0
            for j in 0..<w { d[j] += g[j] }
        }
    }
}

extension NN {
    /// Rows of weight (V, C) looked up by ids (a tensor of integral values in 0..<V, any shape):
    /// the result has shape ids.shape + (C). The gradient is scattered (summed) into weight's rows.
    public static func embedding(_ ids: Tensor, weight: Tensor) throws -> Tensor {
        guard weight.rank == 2 else {
            throw DBMError("embedding: expected weight of shape (V, C), got \(formatShape(weight.shape))")
        }
        return try embedding(ids: try integerIds("embedding", "token ids", ids, below: weight.shape[0]),
                             shape: ids.shape, weight: weight)
    }

    /// As embedding(_:weight:) with 0-based integer ids; shape is the ids' shape (default: (ids.count)).
    public static func embedding(ids: [Int32], shape: [Int]? = nil, weight: Tensor) throws -> Tensor {
        let op = "embedding"
        guard weight.rank == 2 else { throw DBMError("\(op): expected weight of shape (V, C), got \(formatShape(weight.shape))") }
        let idShape = shape ?? [ids.count]
        guard elementCount(idShape) == ids.count else {
            throw DBMError("\(op): expected ids of shape \(formatShape(idShape)) (\(elementCount(idShape)) ids), got \(ids.count) ids")
        }
        try checkIds(op, "token ids", ids, below: weight.shape[0])
        switch weight.dtype {
        case .float32: return try embeddingOp(ids, idShape, weight, Float.self)
        case .float64: return try embeddingOp(ids, idShape, weight, Double.self)
        }
    }

    static func embeddingOp<T: NNFloat>(_ ids: [Int32], _ idShape: [Int], _ weight: Tensor, _: T.Type) throws -> Tensor {
        let (N, C) = (ids.count, weight.shape[1])
        let w = try weight.contiguous()
        let out = try empty(idShape + [C], weight.dtype)
        if N > 0 {
            ids.withUnsafeBufferPointer { embeddingForward(out.pointer(T.self), $0.baseAddress!, w.pointer(T.self), N, C) }
        }
        // Saved: the ids. A weight whose .grad exists receives the scattered rows directly.
        let (wShape, dt) = (weight.shape, weight.dtype)
        return record("embedding", output: out, inputs: [weight], reads: []) { g, _ in
            let sink = leafGradBuffer(weight)
            let dweight = try sink ?? empty(wShape, dt, zeroed: true)   // scattered into
            if N > 0 {
                ids.withUnsafeBufferPointer { embeddingBackward(dweight.pointer(T.self), g.pointer(T.self), $0.baseAddress!, N, C) }
            }
            return [sink == nil ? dweight : nil]
        }
    }
}
