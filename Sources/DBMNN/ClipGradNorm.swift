import DBMCore

extension NN {
    /// Gradient clipping by the global 2-norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2):
    ///
    ///     total = √(Σ over the tensors with a gradient of ‖g‖²)      (accumulated in Double)
    ///     c     = maxNorm / (total + 1e-6)
    ///     if c < 1: g ← c·g for every gradient, in place (c rounded to the gradient's dtype)
    ///
    /// Returns total, the norm before clipping. Tensors whose `.grad` is nil are skipped. When total is
    /// not finite (an overflow, or a NaN in some gradient) the gradients are left unchanged and total is
    /// returned as is, for the caller to skip the step (PyTorch would multiply them by 0 or NaN).
    /// maxNorm must be finite and positive.
    @discardableResult
    public static func clipGradNorm(_ params: [Tensor], maxNorm: Double) throws -> Double {
        guard maxNorm.isFinite && maxNorm > 0 else {
            throw DBMError("clip_grad_norm: expected a finite positive max norm, got \(maxNorm)")
        }
        // A gradient assigned by hand may be strided: it is read and scaled through a contiguous copy.
        let grads = try params.compactMap { try $0.grad.map { g in (g, try g.contiguous()) } }
        var sumOfSquares = 0.0
        for (_, g) in grads {
            switch g.dtype {
            case .float32: sumOfSquares += squaredNorm(g.pointer(Float.self), g.count)
            case .float64: sumOfSquares += squaredNorm(g.pointer(Double.self), g.count)
            }
        }
        let total = sumOfSquares.squareRoot()
        guard total.isFinite else { return total }
        let coefficient = maxNorm / (total + 1e-6)
        guard coefficient < 1 else { return total }
        for (original, g) in grads {
            switch g.dtype {
            case .float32: scaleInPlace(g.pointer(Float.self), g.count, Float(coefficient))
            case .float64: scaleInPlace(g.pointer(Double.self), g.count, coefficient)
            }
            if g !== original { try original.assign(from: g) }
        }
        return total
    }
}

/// Σ x[i]² in Double, in eight-lane partial sums (one dependency chain per lane), each core summing a
/// part of a long array.
private func squaredNorm<T: NNFloat>(_ x: UnsafePointer<T>, _ n: Int) -> Double {
    let grain = 1 << 16
    var partial = [Double](repeating: 0, count: Parallel.chunkCount(n, grain: grain))
    partial.withUnsafeMutableBufferPointer { partial in
        Parallel.chunks(n, grain: grain) { r, c in
            var acc = SIMD8<Double>(), i = r.lowerBound
            while i + 8 <= r.upperBound {
                var lanes = SIMD8<Double>()
                for k in 0..<8 { lanes[k] = Double(x[i + k]) }
                acc += lanes * lanes
                i += 8
            }
            var s = acc.sum()
            while i < r.upperBound { let d = Double(x[i]); s += d * d; i += 1 }
            partial[c] = s
        }
    }
    return partial.reduce(0, +)
}

/// x ← c·x
private func scaleInPlace<T: NNFloat>(_ x: UnsafeMutablePointer<T>, _ n: Int, _ c: T) {
    Parallel.chunks(n, grain: 1 << 16) { r, _ in for i in r { x[i] *= c } }
}
