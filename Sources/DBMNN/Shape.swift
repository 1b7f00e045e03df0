import DBMCore

// ---------------------------------------------------------------------- sum and mean

// dout is (outer, inner), dinp is (outer, n, inner); dinp[o,k,i] = factor·dout[o,i] (the backward of a sum
// over the middle dimension; factor 1/n for a mean)
func expandBackward<T: NNFloat>(_ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>, _ outer: Int, _ n: Int,
                                _ inner: Int, _ factor: T) {
    Parallel.chunks(outer * n, grain: max(1, elementGrain / max(inner, 1))) { rows, _ in
        for r in rows {
            let o = r / n, d = dinp + r * inner, g = dout + o * inner
            for i in 0..<inner { d[i] = factor * g[i] }
        }
    }
}

extension NN {
    /// Σ of all elements (shape []) or along one dimension (removed from the shape); sums in Double.
    public static func sum(_ x: Tensor, dim: Int? = nil) throws -> Tensor { try reduction(x, dim, mean: false) }
    /// Mean of all elements (shape []) or along one dimension (removed from the shape).
    public static func mean(_ x: Tensor, dim: Int? = nil) throws -> Tensor { try reduction(x, dim, mean: true) }

    static func reduction(_ x: Tensor, _ dim: Int?, mean: Bool) throws -> Tensor {
        let op = mean ? "mean" : "sum"
        if let d = dim, d < 0 || d >= x.rank {
            throw DBMError("\(op): expected a dimension in 0..<\(x.rank) for shape \(formatShape(x.shape)), got \(d)")
        }
        let n = dim.map { x.shape[$0] } ?? x.count
        if mean && n == 0 { throw DBMError("mean: expected a non-empty tensor, got shape \(formatShape(x.shape))") }
        let out = try x.reduce(mean ? .mean : .sum, dim: dim)
        let outer = dim.map { x.shape[..<$0].reduce(1, *) } ?? 1
        let inner = dim.map { x.shape[($0 + 1)...].reduce(1, *) } ?? 1
        let (xShape, dt) = (x.shape, x.dtype)   // saved: nothing (the shape)
        return record(op, output: out, inputs: [x], reads: []) { g, _ in
            let dinp = try empty(xShape, dt)
            let f = mean ? 1 / Double(n) : 1
            switch dt {
            case .float32: expandBackward(dinp.pointer(Float.self), g.pointer(Float.self), outer, n, inner, Float(f))
            case .float64: expandBackward(dinp.pointer(Double.self), g.pointer(Double.self), outer, n, inner, f)
            }
            return [dinp]
        }
    }
}

// ---------------------------------------------------------------------- views: reshape, transpose, narrow

extension NN {
    /// The same elements in a new shape (one size may be −1); a view when x is contiguous.
    public static func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
        let out: Tensor
        do { out = try x.reshaped(shape) } catch let e as DBMError {
            throw DBMError("reshape: expected a shape of \(x.count) elements (x is \(formatShape(x.shape))), got \(formatShape(shape)): \(e.message)")
        }
        let inShape = x.shape
        return record("reshape", output: out, inputs: [x], reads: []) { g, _ in [try g.reshaped(inShape)] }
    }

    /// Dimensions d0 and d1 swapped (a view; ops copy it to row-major order when they need to).
    public static func transpose(_ x: Tensor, _ d0: Int, _ d1: Int) throws -> Tensor {
        guard d0 >= 0, d0 < x.rank, d1 >= 0, d1 < x.rank else {
            throw DBMError("transpose: expected dimensions in 0..<\(x.rank) for shape \(formatShape(x.shape)), got \(d0) and \(d1)")
        }
        let out = try x.transposed(d0, d1)
        return record("transpose", output: out, inputs: [x], reads: []) { g, _ in [try g.transposed(d0, d1)] }
    }

    /// Elements start ..< start + length along dim (a view); the gradient is zero outside that range.
    public static func narrow(_ x: Tensor, dim: Int, start: Int, length: Int) throws -> Tensor {
        guard dim >= 0, dim < x.rank else {
            throw DBMError("narrow: expected a dimension in 0..<\(x.rank) for shape \(formatShape(x.shape)), got \(dim)")
        }
        guard start >= 0, length >= 0, start + length <= x.shape[dim] else {
            throw DBMError("narrow: expected a range within 0..<\(x.shape[dim]) in dimension \(dim), got \(start)..<\(start + length)")
        }
        let out = try x.narrow(dim, start, length)
        let (xShape, dt) = (x.shape, x.dtype)
        return record("narrow", output: out, inputs: [x], reads: []) { g, _ in
            let dinp = try empty(xShape, dt, zeroed: true)   // zero outside the range
            try dinp.narrow(dim, start, length).assign(from: g)
            return [dinp]
        }
    }

    /// x in row-major order (x itself when already contiguous, else a copy).
    public static func contiguous(_ x: Tensor) throws -> Tensor {
        if x.isContiguous { return x }
        return record("contiguous", output: try x.copy(), inputs: [x], reads: []) { g, _ in [g] }
    }
}
