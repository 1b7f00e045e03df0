import DBMCore

// ---------------------------------------------------------------------- GELU

/// The two forms of GELU: exact x·Φ(x) with Φ the normal CDF (erf), or the tanh approximation
/// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
public enum GELUForm: String, Sendable { case exact = "none", tanh }

// inp, out are (n); deriv (n) or nil. exact: out = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), deriv = Φ(x) + x·φ(x)
// with φ(x) = e^(−x²/2)/√(2π); tanh: out = 0.5·x·(1 + tanh u), u = √(2/π)(x + 0.044715x³),
// deriv = 0.5(1 + tanh u) + 0.5·x·(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²), tanh u = 1 − 2/(1 + e^(2u)).
// Forward writes the derivative when the op is recorded: it shares the expensive part (erfc and its
// exp) with the value, so backward is a product (measured here, float32: forward 1.3 ns per element,
// a separate backward recomputing Φ and φ 1.7 ns; the saved derivative replaces the saved input).
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

// dout, deriv, dinp are (n); backward needs the saved derivative: dinp = dout · deriv
func geluBackward<T: NNFloat>(_ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>, _ deriv: UnsafePointer<T>, _ n: Int) {
    arithForward(.mul, dinp, dout, deriv, n)
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
        let deriv = willRecord([x]) ? try empty(x.shape, x.dtype) : nil   // saved: the derivative
        geluForward(form, out.pointer(T.self), deriv?.pointer(T.self), inp.pointer(T.self), x.count)
        guard let deriv else { return out }
        let (xShape, dt, n) = (x.shape, x.dtype, x.count)
        return record("gelu", output: out, inputs: [x]) { g, _ in
            let dinp = try empty(xShape, dt)
            geluBackward(dinp.pointer(T.self), g.pointer(T.self), deriv.pointer(T.self), n)
            return [dinp]
        }
    }
}
