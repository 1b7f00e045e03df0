import CBLAS
import Foundation

public enum BinaryOp: String, Sendable { case add = "+", sub = "-", mul = "*", div = "/", pow = "^", max, min }
public enum UnaryOp: String, Sendable { case neg, exp, log, sqrt, abs, square, sign, tanh, sigmoid, relu }

// ---------------------------------------------------------------------- elementwise

extension Tensor {
    /// numpy broadcasting: shapes aligned at the right; each pair of sizes equal or one of them 1.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw DBMError("cannot broadcast shapes \(formatShape(a)) and \(formatShape(b)): expected equal sizes or 1 in dimension \(i + 1), got \(da) and \(db)")
            }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides that read this tensor as if it had shape `target` (stride 0 along broadcast dims).
    func broadcastStrides(to target: [Int]) -> [Int] {
        let pad = target.count - rank
        return (0..<target.count).map { i in i < pad || shape[i - pad] == 1 ? 0 : strides[i - pad] }
    }

    public func binary(_ op: BinaryOp, _ other: Tensor) throws -> Tensor {
        let outShape = try Tensor.broadcastShape(shape, other.shape)
        let dt = DType.promoted(dtype, other.dtype)
        let a = try converted(to: dt), b = try other.converted(to: dt)
        let out = try Tensor(shape: outShape, dtype: dt, zeroed: false)
        switch dt {
        case .float32: Tensor.binaryKernel(op, a, b, out, Float.self)
        case .float64: Tensor.binaryKernel(op, a, b, out, Double.self)
        }
        return out
    }

    /// Elementwise op with a scalar; `scalarFirst` computes s op t instead of t op s.
    public func binary(_ op: BinaryOp, scalar s: Double, scalarFirst: Bool = false) throws -> Tensor {
        let out = try Tensor(shape: shape, dtype: dtype, zeroed: false)
        let src = try contiguous()
        switch dtype {
        case .float32: Tensor.scalarKernel(op, src.pointer(Float.self), Float(s), scalarFirst, out.pointer(Float.self), count)
        case .float64: Tensor.scalarKernel(op, src.pointer(Double.self), s, scalarFirst, out.pointer(Double.self), count)
        }
        return out
    }

    @inline(__always)
    static func apply<T: TensorScalar>(_ op: BinaryOp, _ x: T, _ y: T) -> T {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        case .pow: return T.pow(x, y)
        case .max: return x.isNaN || y.isNaN ? .nan : Swift.max(x, y)
        case .min: return x.isNaN || y.isNaN ? .nan : Swift.min(x, y)
        }
    }

    static func scalarKernel<T: TensorScalar>(_ op: BinaryOp, _ src: UnsafePointer<T>, _ s: T, _ scalarFirst: Bool,
                                             _ dst: UnsafeMutablePointer<T>, _ n: Int) {
        if scalarFirst { for i in 0..<n { dst[i] = apply(op, s, src[i]) } }
        else {
            switch op {   // the common cases as plain loops the compiler vectorises
            case .add: for i in 0..<n { dst[i] = src[i] + s }
            case .mul: for i in 0..<n { dst[i] = src[i] * s }
            default: for i in 0..<n { dst[i] = apply(op, src[i], s) }
            }
        }
    }

    static func binaryKernel<T: TensorScalar>(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor, _: T.Type) {
        let n = out.count
        if n == 0 { return }
        let pa = a.storage.bytes.assumingMemoryBound(to: T.self), pb = b.storage.bytes.assumingMemoryBound(to: T.self)
        let po = out.pointer(T.self)
        if a.shape == out.shape && b.shape == out.shape && a.isContiguous && b.isContiguous {
            let x = pa + a.offset, y = pb + b.offset
            switch op {
            case .add: for i in 0..<n { po[i] = x[i] + y[i] }
            case .sub: for i in 0..<n { po[i] = x[i] - y[i] }
            case .mul: for i in 0..<n { po[i] = x[i] * y[i] }
            case .div: for i in 0..<n { po[i] = x[i] / y[i] }
            default: for i in 0..<n { po[i] = apply(op, x[i], y[i]) }
            }
            return
        }
        // General case: walk the output in row-major order with broadcast strides for a and b.
        let sa = a.broadcastStrides(to: out.shape), sb = b.broadcastStrides(to: out.shape)
        let r = out.rank, last = r - 1
        let inner = out.shape[last], ia = sa[last], ib = sb[last]
        var idx = [Int](repeating: 0, count: r)
        var oa = a.offset, ob = b.offset, k = 0
        for _ in 0..<(n / inner) {
            for j in 0..<inner { po[k + j] = apply(op, pa[oa + j * ia], pb[ob + j * ib]) }
            k += inner
            var d = last - 1
            while d >= 0 {
                idx[d] += 1; oa += sa[d]; ob += sb[d]
                if idx[d] < out.shape[d] { break }
                oa -= sa[d] * out.shape[d]; ob -= sb[d] * out.shape[d]; idx[d] = 0; d -= 1
            }
        }
    }

    public func unary(_ op: UnaryOp) throws -> Tensor {
        let src = try contiguous()
        let out = try Tensor(shape: shape, dtype: dtype, zeroed: false)
        switch dtype {
        case .float32: Tensor.unaryKernel(op, src.pointer(Float.self), out.pointer(Float.self), count)
        case .float64: Tensor.unaryKernel(op, src.pointer(Double.self), out.pointer(Double.self), count)
        }
        return out
    }

    static func unaryKernel<T: TensorScalar>(_ op: UnaryOp, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        switch op {
        case .neg: for i in 0..<n { y[i] = -x[i] }
        case .exp: for i in 0..<n { y[i] = T.exp(x[i]) }
        case .log: for i in 0..<n { y[i] = T.log(x[i]) }
        case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
        case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
        case .square: for i in 0..<n { y[i] = x[i] * x[i] }
        case .sign: for i in 0..<n { y[i] = x[i] > 0 ? 1 : (x[i] < 0 ? -1 : x[i]) }
        case .tanh: for i in 0..<n { let e = T.exp(-2 * Swift.abs(x[i])); let t = (1 - e) / (1 + e); y[i] = x[i] < 0 ? -t : t }
        case .sigmoid: for i in 0..<n { y[i] = 1 / (1 + T.exp(-x[i])) }
        case .relu: for i in 0..<n { y[i] = x[i] > 0 ? x[i] : 0 }
        }
    }

    public func clamped(min lo: Double, max hi: Double) throws -> Tensor {
        guard !(lo > hi) else { throw DBMError("expected min <= max, got \(lo) > \(hi)") }
        return try binary(.max, scalar: lo).binary(.min, scalar: hi)
    }
}

// ---------------------------------------------------------------------- reductions

public enum ReduceOp: String, Sendable { case sum, mean, variance = "var", max, min, argmax, argmin, norm }

extension Tensor {
    /// Reduces over all elements (dim nil, result shape []) or along one dimension (removed from the
    /// shape). Sums accumulate in Double. argmax/argmin give 0-based indices (as Float64 values).
    /// `ddof` applies to var: divide by n − ddof.
    public func reduce(_ op: ReduceOp, dim: Int? = nil, ddof: Int = 0) throws -> Tensor {
        let src = try contiguous()
        var outer = 1, n = count, inner = 1
        var outShape: [Int] = []
        if let d = dim {
            guard d >= 0, d < rank else { throw DBMError("expected a dimension in 1..\(rank), got \(d + 1)") }
            outer = shape[..<d].reduce(1, *); n = shape[d]; inner = shape[(d + 1)...].reduce(1, *)
            outShape = shape; outShape.remove(at: d)
        }
        if n == 0 && op != .sum && op != .norm {
            throw DBMError("cannot take the \(op.rawValue) of an empty tensor (shape \(formatShape(shape)))")
        }
        if op == .variance && n - ddof <= 0 {
            throw DBMError("var with ddof \(ddof) needs more than \(ddof) elements, got \(n)")
        }
        let outType: DType = (op == .argmax || op == .argmin) ? .float64 : dtype
        let out = try Tensor(shape: outShape, dtype: outType, zeroed: false)
        let values: [Double] = src.dtype == .float32
            ? Tensor.reduceKernel(op, src.pointer(Float.self), outer, n, inner, ddof)
            : Tensor.reduceKernel(op, src.pointer(Double.self), outer, n, inner, ddof)
        if outType == .float64 { values.withUnsafeBufferPointer { out.pointer(Double.self).update(from: $0.baseAddress!, count: values.count) } }
        else { let p = out.pointer(Float.self); for i in values.indices { p[i] = Float(values[i]) } }
        return out
    }

    static func reduceKernel<T: TensorScalar>(_ op: ReduceOp, _ p: UnsafePointer<T>, _ outer: Int, _ n: Int, _ inner: Int, _ ddof: Int) -> [Double] {
        var out = [Double](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = p + o * n * inner + i
                var r = 0.0
                switch op {
                case .sum, .mean:
                    for k in 0..<n { r += Double(base[k * inner]) }
                    if op == .mean { r /= Double(n) }
                case .variance:
                    var m = 0.0
                    for k in 0..<n { m += Double(base[k * inner]) }
                    m /= Double(n)
                    for k in 0..<n { let d = Double(base[k * inner]) - m; r += d * d }
                    r /= Double(n - ddof)
                case .norm:
                    for k in 0..<n { let v = Double(base[k * inner]); r += v * v }
                    r = r.squareRoot()
                case .max, .min, .argmax, .argmin:
                    var best = Double(base[0]), at = 0
                    let wantMax = op == .max || op == .argmax
                    for k in 1..<max(n, 1) {
                        let v = Double(base[k * inner])
                        if best.isNaN { break }
                        if v.isNaN || (wantMax ? v > best : v < best) { best = v; at = k }
                    }
                    r = (op == .max || op == .min) ? best : Double(at)
                }
                out[o * inner + i] = r
            }
        }
        return out
    }

    /// Sorted copy of a 1-D tensor (or of each row along the last dimension), with the 0-based
    /// source index of each element. NaN sorts last.
    public func sorted(descending: Bool = false) throws -> (values: Tensor, indices: [Int]) {
        guard rank >= 1 else { throw DBMError("expected a tensor of rank >= 1, got a scalar") }
        let src = try contiguous()
        let n = shape[rank - 1], rows = n == 0 ? 0 : count / n
        let out = try Tensor(shape: shape, dtype: dtype, zeroed: false)
        var allIndices = [Int](); allIndices.reserveCapacity(count)
        let v = src.toDoubles()
        for r in 0..<rows {
            let base = r * n
            let order = (0..<n).sorted { i, j in
                let a = v[base + i], b = v[base + j]
                if a.isNaN { return false }
                if b.isNaN { return true }
                return descending ? a > b : a < b
            }
            for (k, i) in order.enumerated() { try out.setValue(v[base + i], at: rank == 1 ? [k] : Tensor.unflatten(base + k, shape)) }
            allIndices.append(contentsOf: order)
        }
        return (out, allIndices)
    }

    static func unflatten(_ flat: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count), f = flat
        for d in stride(from: shape.count - 1, through: 0, by: -1) { idx[d] = f % shape[d]; f /= shape[d] }
        return idx
    }

    /// Counts of the elements in `bins` equal-width bins over [lo, hi] (the last bin includes hi;
    /// values outside, and NaN, are not counted), and the bins + 1 edges.
    public func histogram(bins: Int, lo: Double, hi: Double) throws -> (counts: Tensor, edges: Tensor) {
        guard bins > 0, bins < Int.max / 16 else { throw DBMError("expected a positive number of bins, got \(bins)") }
        guard lo.isFinite, hi.isFinite, lo < hi else { throw DBMError("expected finite lo < hi, got \(lo), \(hi)") }
        let counts = try Tensor(shape: [bins], dtype: .float64)
        let edges = try Tensor(shape: [bins + 1], dtype: .float64, zeroed: false)
        let c = counts.pointer(Double.self), e = edges.pointer(Double.self)
        // A range wider than the largest double (−1e308 to 1e308) is worked in halves, which never
        // overflow; any other range as it is (a subnormal range still gives fractions in [0, 1]).
        let scale = (hi - lo).isFinite ? 1.0 : 0.5
        let range = hi * scale - lo * scale
        for i in 0...bins { e[i] = i == bins ? hi : (lo * scale + range * (Double(i) / Double(bins))) / scale }
        for v in toDoubles() where v >= lo && v <= hi {
            let f = (v * scale - lo * scale) / range * Double(bins)
            c[f.isFinite ? min(bins - 1, max(0, Int(f))) : bins - 1] += 1
        }
        return (counts, edges)
    }
}

// ---------------------------------------------------------------------- matmul

extension Tensor {
    /// How cblas can read a 2-D view without copying: (transposed?, leading dimension), or nil.
    func blasLayout() -> (trans: Bool, ld: Int)? {
        guard rank == 2 else { return nil }
        let (r, c) = (shape[0], shape[1])
        if strides[1] == 1 || c == 1 { let ld = max(strides[0], c, 1); if r == 1 || strides[0] >= c { return (false, ld) } }
        if strides[0] == 1 || r == 1 { let ld = max(strides[1], r, 1); if c == 1 || strides[1] >= r { return (true, ld) } }
        return nil
    }

    /// Matrix product. 2-D × 2-D through cblas gemm (transposed views are not copied); 1-D operands
    /// are treated as a row (left) or column (right) vector and that dimension is dropped; 3-D × 3-D
    /// is a batched product over the first dimension, 3-D × 2-D applies the matrix to every batch.
    public func matmul(_ other: Tensor) throws -> Tensor {
        if rank == 1 || other.rank == 1 {
            let a = rank == 1 ? try reshaped([1, shape[0]]) : self
            let b = other.rank == 1 ? try other.reshaped([other.shape[0], 1]) : other
            guard a.rank == 2, b.rank == 2 else {
                throw DBMError("cannot multiply shapes \(formatShape(shape)) and \(formatShape(other.shape))")
            }
            let r = try a.matmul(b)
            var s = r.shape
            if other.rank == 1 { s.removeLast() }
            if rank == 1 { s.removeFirst() }
            return try r.reshaped(s)
        }
        if rank == 3 && other.rank == 2 {   // (B,M,K) x (K,N): one gemm over B*M rows when contiguous
            let a = try contiguous()
            let r = try a.reshaped([shape[0] * shape[1], shape[2]]).matmul(other)
            return try r.reshaped([shape[0], shape[1], other.shape[1]])
        }
        if rank == 3 && other.rank == 3 {
            guard shape[0] == other.shape[0], shape[2] == other.shape[1] else {
                throw DBMError("cannot multiply batches of shapes \(formatShape(shape)) and \(formatShape(other.shape)): expected (B, M, K) and (B, K, N)")
            }
            let dt = DType.promoted(dtype, other.dtype)
            let out = try Tensor(shape: [shape[0], shape[1], other.shape[2]], dtype: dt)
            for b in 0..<shape[0] {
                try Tensor.gemm(try select(0, b), try other.select(0, b), into: try out.select(0, b))
            }
            return out
        }
        guard rank == 2, other.rank == 2 else {
            throw DBMError("cannot multiply shapes \(formatShape(shape)) and \(formatShape(other.shape)): expected 1-D, 2-D or 3-D tensors")
        }
        guard shape[1] == other.shape[0] else {
            throw DBMError("cannot multiply \(formatShape(shape)) by \(formatShape(other.shape)): inner sizes \(shape[1]) and \(other.shape[0]) differ")
        }
        // Not zero-filled: gemm with beta = 0 writes every element.
        let out = try Tensor(shape: [shape[0], other.shape[1]], dtype: DType.promoted(dtype, other.dtype), zeroed: false)
        try Tensor.gemm(self, other, into: out)
        return out
    }

    /// out = a·b (+ beta·out), out contiguous 2-D of the promoted dtype.
    public static func gemm(_ a0: Tensor, _ b0: Tensor, into out: Tensor, alpha: Double = 1, beta: Double = 0) throws {
        let dt = out.dtype
        var a = try a0.converted(to: dt), b = try b0.converted(to: dt)
        guard let _ = a.blasLayout() else { a = try a.copy(); return try gemm(a, b, into: out, alpha: alpha, beta: beta) }
        if b.blasLayout() == nil { b = try b.copy() }
        let (ta, lda) = a.blasLayout()!, (tb, ldb) = b.blasLayout()!
        let m = Int32(a.shape[0]), k = Int32(a.shape[1]), n = Int32(b.shape[1])
        if m == 0 || n == 0 { return }
        if k == 0 { if beta == 0 { out.fill(0) }; return }   // an empty sum; cblas would leave out untouched
        let tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans
        let ldc = Int32(out.strides[0])
        switch dt {
        case .float32:
            cblas_sgemm(CblasRowMajor, tA, tB, m, n, k, Float(alpha), a.pointer(Float.self), Int32(lda),
                        b.pointer(Float.self), Int32(ldb), Float(beta), out.pointer(Float.self), ldc)
        case .float64:
            cblas_dgemm(CblasRowMajor, tA, tB, m, n, k, alpha, a.pointer(Double.self), Int32(lda),
                        b.pointer(Double.self), Int32(ldb), beta, out.pointer(Double.self), ldc)
        }
    }
}
