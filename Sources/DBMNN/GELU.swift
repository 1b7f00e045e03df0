import DBMCore

// ---------------------------------------------------------------------- GELU

/// The two forms of GELU: exact x·Φ(x) with Φ the normal CDF (erf), or the tanh approximation
/// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
public enum GELUForm: String, Sendable { case exact = "none", tanh }

// inp, out are (n); deriv (n) or nil. exact: out = x·Φ(x) = 0.5·x·(1 + erf(x/√2)); tanh: out =
// 0.5·x·(1 + tanh u), u = √(2/π)(x + 0.044715x³), tanh u = 1 − 2/(1 + e^(2u)). With deriv, also GELU'(x)
// (see geluBackward): it shares the expensive part (erfc and its exp) with the value (float32 here:
// value and derivative 1.3 ns per element, the derivative alone again 1.7 ns).
func geluForward<T: NNFloat>(_ form: GELUForm, _ out: UnsafeMutablePointer<T>, _ deriv: UnsafeMutablePointer<T>?,
                             _ inp: UnsafePointer<T>, _ n: Int) {
    let k = T(0.79788456080286535588), c = T(0.044715)   // √(2/π)
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        switch (form, deriv) {
        case (.exact, nil):
            for i in r { let x = inp[i]; out[i] = x * T.normalCDFAndPDF(x).cdf }
        case (.exact, let d?):
            for i in r { let x = inp[i], (cdf, pdf) = T.normalCDFAndPDF(x); out[i] = x * cdf; d[i] = cdf + x * pdf }
        case (.tanh, nil):
            for i in r {
                let x = inp[i], t = 1 - 2 / (1 + T.fastExp(2 * k * (x + c * x * x * x)))
                out[i] = T(0.5) * x * (1 + t)
            }
        case (.tanh, let d?):
            for i in r {
                let x = inp[i], x2 = x * x, t = 1 - 2 / (1 + T.fastExp(2 * k * (x + c * x2 * x)))
                out[i] = T(0.5) * x * (1 + t)
                d[i] = T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * k * (1 + 3 * c * x2)
            }
        }
    }
}

// dout, inp, dinp are (n); backward from the input: dinp = dout · GELU'(inp), the derivative computed
// here rather than saved by forward (large activations, see geluOp). exact: GELU' = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π);
// tanh: GELU' = 0.5(1 + tanh u) + 0.5·x·(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).
func geluBackward<T: NNFloat>(_ form: GELUForm, _ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>,
                              _ inp: UnsafePointer<T>, _ n: Int) {
    let k = T(0.79788456080286535588), c = T(0.044715)   // √(2/π)
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        switch form {
        case .exact:
            for i in r { let x = inp[i], (cdf, pdf) = T.normalCDFAndPDF(x); dinp[i] = dout[i] * (cdf + x * pdf) }
        case .tanh:
            for i in r {
                let x = inp[i], x2 = x * x, t = 1 - 2 / (1 + T.fastExp(2 * k * (x + c * x2 * x)))
                dinp[i] = dout[i] * (T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * k * (1 + 3 * c * x2))
            }
        }
    }
}

// out, dout, inp are (n); dinp may be out itself (each element is read before it is written). Backward
// from the input and the output, with Φ(x) = out/x (out = x·Φ(x); Φ(0) = 1/2): exact, GELU' = Φ(x) + x·φ(x)
// needs only φ(x) = e^(−x²/2)/√(2π), one exp instead of the erfc polynomial and its exp; tanh,
// 1 + tanh u = 2·out/x, and no exp at all. out/x carries out's relative rounding (a few ulp) into Φ.
func geluBackwardFromOutput<T: NNFloat>(_ form: GELUForm, _ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>,
                                        _ inp: UnsafePointer<T>, _ out: UnsafePointer<T>, _ n: Int) {
    let k = T(0.79788456080286535588), c = T(0.044715), invSqrt2Pi = T(0.39894228040143267794)
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        switch form {
        case .exact:
            for i in r {
                let x = inp[i], cdf = x != 0 ? out[i] / x : T(0.5)
                dinp[i] = dout[i] * (cdf + x * invSqrt2Pi * T.fastExp(x * x * T(-0.5)))
            }
        case .tanh:
            for i in r {
                let x = inp[i], x2 = x * x, t = x != 0 ? 2 * out[i] / x - 1 : 0
                dinp[i] = dout[i] * (T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * k * (1 + 3 * c * x2))
            }
        }
    }
}

extension NN {
    /// GELU, exact (erf) by default, or the tanh approximation.
    public static func gelu(_ x: Tensor, form: GELUForm = .exact) throws -> Tensor {
        switch x.dtype {
        case .float32: return try geluOp(x, form, Float.self)
        case .float64: return try geluOp(x, form, Double.self)
        }
    }

    static func geluOp<T: NNFloat>(_ x: Tensor, _ form: GELUForm, _: T.Type) throws -> Tensor {
        let inp = try x.contiguous()
        let out = try empty(x.shape, x.dtype)
        let (xShape, dt, n) = (x.shape, x.dtype, x.count)
        if !willRecord([x]) || n * MemoryLayout<T>.stride < recomputeMinimumBytes {
            // Saved: the derivative, computed with the value (the consumer saves the output itself).
            let deriv = willRecord([x]) ? try empty(x.shape, x.dtype) : nil
            geluForward(form, out.pointer(T.self), deriv?.pointer(T.self), inp.pointer(T.self), n)
            guard let deriv else { return out }
            return record("gelu", output: out, inputs: [x]) { g, _ in
                let dinp = try empty(xShape, dt)
                arithForward(.mul, dinp.pointer(T.self), g.pointer(T.self), deriv.pointer(T.self), n)
                return [dinp]
            }
        }
        geluForward(form, out.pointer(T.self), nil, inp.pointer(T.self), n)
        // Large: saved, the input only. The consumer of the output (the MLP's c_proj) keeps the recipe
        // below instead of the output; once its backward is done with the recomputed output, this op's
        // backward (which runs next) writes the input's gradient over it. Backward thus needs one (B,T,4C)
        // buffer besides the output's gradient, not three (the output, a saved derivative, the input's
        // gradient): at the `paper` preset, 200 MB less at the peak, for one more evaluation of GELU (and a
        // cheap derivative from the output, geluBackwardFromOutput).
        let spare = SpareBuffer()
        let recompute = { () throws -> Tensor in
            let y = try empty(xShape, dt)
            geluForward(form, y.pointer(T.self), nil, inp.pointer(T.self), n)
            spare.tensor = y
            return y
        }
        return record("gelu", output: out, inputs: [x], recompute: recompute) { g, _ in
            if let y = spare.tensor {   // the derivative from the recomputed output, written over it
                spare.tensor = nil
                geluBackwardFromOutput(form, y.pointer(T.self), g.pointer(T.self), inp.pointer(T.self), y.pointer(T.self), n)
                return [y]
            }
            let dinp = try empty(xShape, dt)
            geluBackward(form, dinp.pointer(T.self), g.pointer(T.self), inp.pointer(T.self), n)
            return [dinp]
        }
    }
}


/// A recomputed output handed from its consumer's backward to the producer's backward, which reuses its
/// memory for the input's gradient.
final class SpareBuffer: @unchecked Sendable { var tensor: Tensor? = nil }
