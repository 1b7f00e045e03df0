import CKernels
import DBMCore

// ---------------------------------------------------------------------- GELU

/// The two forms of GELU: exact x·Φ(x) with Φ the normal CDF (erf), or the tanh approximation
/// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
public enum GELUForm: String, Sendable { case exact = "none", tanh }

// The loops are C (CKernels/dbm_kernels.c), built for AVX2 + FMA as well as for baseline x86-64, where
// the Swift loops they replace ran four lanes at a time: perf, `paper` preset, GELU forward (run twice,
// see geluOp) 4.1% of the training step and backward 1.9% with SSE, 1.6% and 0.8% with AVX2. The
// formulas are in dbm_kernels.h: exact x·Φ(x) with Φ from a polynomial erfc sharing its exp with φ, or
// the tanh form; here the chunks over both cores.

/// Pointers of T as the C kernel's element type (T is Float or Double, chosen by T's size).
/// A pointer to the same memory as the C kernels' element type (T is U: the callers check T.self).
@inline(__always) func c<T, U>(_ p: UnsafePointer<T>) -> UnsafePointer<U> { UnsafeRawPointer(p).assumingMemoryBound(to: U.self) }
@inline(__always) func c<T, U>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<U> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: U.self)
}

// inp, out are (n); deriv (n) or nil: out = GELU(inp), and deriv = GELU'(inp) when asked for (it shares the
// expensive part, erfc and its exp, with the value).
func geluForward<T: NNFloat>(_ form: GELUForm, _ out: UnsafeMutablePointer<T>, _ deriv: UnsafeMutablePointer<T>?,
                             _ inp: UnsafePointer<T>, _ n: Int) {
    let tanh: Int32 = form == .tanh ? 1 : 0
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        let (o, d, x, m) = (out + r.lowerBound, deriv.map { $0 + r.lowerBound }, inp + r.lowerBound, r.count)
        if T.self == Float.self { dbm_gelu_forward_f32(tanh, c(o), d.map(c), c(x), m) }
        else { dbm_gelu_forward_f64(tanh, c(o), d.map(c), c(x), m) }
    }
}

// dout, inp, dinp are (n); dinp = dout · GELU'(inp), the derivative computed here rather than saved by
// forward (large activations, see geluOp).
func geluBackward<T: NNFloat>(_ form: GELUForm, _ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>,
                              _ inp: UnsafePointer<T>, _ n: Int) {
    let tanh: Int32 = form == .tanh ? 1 : 0
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        let (di, g, x, m) = (dinp + r.lowerBound, dout + r.lowerBound, inp + r.lowerBound, r.count)
        if T.self == Float.self { dbm_gelu_backward_f32(tanh, c(di), c(g), c(x), m) }
        else { dbm_gelu_backward_f64(tanh, c(di), c(g), c(x), m) }
    }
}

// out, dout, inp are (n); dinp may be out itself. The same from the input and the forward's output:
// Φ(x) = out/x, so one exp instead of the erfc polynomial and its exp (tanh form: no exp).
func geluBackwardFromOutput<T: NNFloat>(_ form: GELUForm, _ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>,
                                        _ inp: UnsafePointer<T>, _ out: UnsafePointer<T>, _ n: Int) {
    let tanh: Int32 = form == .tanh ? 1 : 0
    Parallel.chunks(n, grain: elementGrain / 4) { r, _ in
        let (di, g, x, y, m) = (dinp + r.lowerBound, dout + r.lowerBound, inp + r.lowerBound, out + r.lowerBound, r.count)
        if T.self == Float.self { dbm_gelu_backward_from_output_f32(tanh, c(di), c(g), c(x), c(y), m) }
        else { dbm_gelu_backward_from_output_f64(tanh, c(di), c(g), c(x), c(y), m) }
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
