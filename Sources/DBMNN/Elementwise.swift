import DBMCore

// Elementwise ops. Loops are split over the cores in chunks of at least `elementGrain` elements (fewer
// for the costlier functions): shorter ones run on the calling thread (see Parallel).
let elementGrain = 1 << 15

// ---------------------------------------------------------------------- add, sub, mul with broadcasting

enum Arith { case add, sub, mul }

// a, b, out are (n) (same shape); out = a ∘ b
func arithForward<T: NNFloat>(_ op: Arith, _ out: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int) {
    Parallel.chunks(n, grain: elementGrain) { r, _ in
        switch op {
        case .add: for i in r { out[i] = a[i] + b[i] }
        case .sub: for i in r { out[i] = a[i] - b[i] }
        case .mul: for i in r { out[i] = a[i] * b[i] }
        }
    }
}

// a is (R,M), b is (M) (a row broadcast: bias, residual of a smaller rank), out is (R,M); out = a ∘ b
// (bFirst: out = b ∘ a)
func arithRowsForward<T: NNFloat>(_ op: Arith, _ out: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                  _ R: Int, _ M: Int, bFirst: Bool) {
    Parallel.chunks(R, grain: max(1, elementGrain / max(M, 1))) { rows, _ in
        for r in rows {
            let o = out + r * M, x = a + r * M
            switch (op, bFirst) {
            case (.add, _): for j in 0..<M { o[j] = x[j] + b[j] }
            case (.mul, _): for j in 0..<M { o[j] = x[j] * b[j] }
            case (.sub, false): for j in 0..<M { o[j] = x[j] - b[j] }
            case (.sub, true): for j in 0..<M { o[j] = b[j] - x[j] }
            }
        }
    }
}

/// The gradient g (of the broadcast shape) summed down to `shape` (numpy broadcasting: sizes aligned at
/// the right, summed where shape has 1 or no dimension). Returns g itself when the shapes agree.
func sumToShape(_ g: Tensor, _ shape: [Int]) throws -> Tensor {
    if g.shape == shape { return g }
    let gc = try g.contiguous()
    let n = elementCount(shape)
    // Row broadcast ((R, M) summed to (M), possibly with leading 1s): column sums.
    let trimmed = Array(shape.drop { $0 == 1 })
    if !trimmed.isEmpty, Array(gc.shape.suffix(trimmed.count)) == trimmed, gc.count % max(n, 1) == 0 {
        let out = try NN.empty(shape, g.dtype)
        switch g.dtype {
        case .float32: columnSums(out.pointer(Float.self), gc.pointer(Float.self), gc.count / max(n, 1), n)
        case .float64: columnSums(out.pointer(Double.self), gc.pointer(Double.self), gc.count / max(n, 1), n)
        }
        return out
    }
    let out = try NN.empty(shape, g.dtype, zeroed: true)   // accumulated into
    switch g.dtype {
    case .float32: sumToShapeKernel(out.pointer(Float.self), shape, gc.pointer(Float.self), gc.shape)
    case .float64: sumToShapeKernel(out.pointer(Double.self), shape, gc.pointer(Double.self), gc.shape)
    }
    return out
}

/// The number of elements of a shape (already validated by the tensor that has it).
func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

// g is gShape (contiguous), out is shape (broadcastable to gShape, zeroed); out[broadcast index] += g
func sumToShapeKernel<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ shape: [Int], _ g: UnsafePointer<T>, _ gShape: [Int]) {
    let r = gShape.count, pad = r - shape.count
    let outStrides = Tensor.contiguousStrides(shape)
    let s = (0..<r).map { i in i < pad || shape[i - pad] == 1 ? 0 : outStrides[i - pad] }
    let n = gShape.reduce(1, *)
    if n == 0 { return }
    if r == 0 { out[0] += g[0]; return }
    var idx = [Int](repeating: 0, count: r)
    var o = 0
    let last = r - 1, inner = gShape[last], sl = s[last]
    var k = 0
    for _ in 0..<(n / inner) {
        for j in 0..<inner { out[o + j * sl] += g[k + j] }
        k += inner
        var d = last - 1
        while d >= 0 {
            idx[d] += 1; o += s[d]
            if idx[d] < gShape[d] { break }
            o -= s[d] * gShape[d]; idx[d] = 0; d -= 1
        }
    }
}

extension NN {
    /// a + b with numpy broadcasting (residual adds, bias rows).
    public static func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try arith(.add, "add", a, b) }
    /// a − b with numpy broadcasting.
    public static func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try arith(.sub, "sub", a, b) }
    /// a ⊙ b (elementwise) with numpy broadcasting.
    public static func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try arith(.mul, "mul", a, b) }

    static func arith(_ op: Arith, _ name: String, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape: [Int]
        do { shape = try Tensor.broadcastShape(a.shape, b.shape) }
        catch let e as DBMError { throw DBMError("\(name): \(e.message)") }
        try requireSameDType(name, [("a", a), ("b", b)])
        switch a.dtype {
        case .float32: return try arithOp(op, name, a, b, shape, Float.self)
        case .float64: return try arithOp(op, name, a, b, shape, Double.self)
        }
    }

    static func arithOp<T: NNFloat>(_ op: Arith, _ name: String, _ a: Tensor, _ b: Tensor, _ shape: [Int], _: T.Type) throws -> Tensor {
        let out: Tensor
        let isRowOf = { (small: Tensor, big: Tensor) -> Bool in
            let trimmed = Array(small.shape.drop { $0 == 1 })
            return big.shape == shape && big.rank >= trimmed.count && Array(big.shape.suffix(trimmed.count)) == trimmed
        }
        if a.shape == b.shape {
            let (ac, bc) = (try a.contiguous(), try b.contiguous())
            out = try empty(shape, a.dtype)
            arithForward(op, out.pointer(T.self), ac.pointer(T.self), bc.pointer(T.self), out.count)
        } else if isRowOf(b, a) || isRowOf(a, b) {
            let bRow = isRowOf(b, a)
            let (big, small) = bRow ? (try a.contiguous(), try b.contiguous()) : (try b.contiguous(), try a.contiguous())
            out = try empty(shape, a.dtype)
            let M = small.count
            arithRowsForward(op, out.pointer(T.self), big.pointer(T.self), small.pointer(T.self),
                             M == 0 ? 0 : out.count / M, M, bFirst: !bRow)
        } else {   // general broadcasting: the core's strided kernel
            let core: BinaryOp = op == .add ? .add : (op == .sub ? .sub : .mul)
            out = try a.binary(core, b)
        }
        // Saved: nothing for add and sub (the shapes); both inputs for mul (each gradient is g times the other).
        let (aShape, bShape) = (a.shape, b.shape)
        switch op {
        case .add:
            return record(name, output: out, inputs: [a, b], reads: []) { g, needs in
                [needs[0] ? try sumToShape(g, aShape) : nil, needs[1] ? try sumToShape(g, bShape) : nil]
            }
        case .sub:
            return record(name, output: out, inputs: [a, b], reads: []) { g, needs in
                [needs[0] ? try sumToShape(g, aShape) : nil,
                 needs[1] ? try sumToShape(try g.binary(.mul, scalar: -1), bShape) : nil]
            }
        case .mul:
            return record(name, output: out, inputs: [a, b]) { g, needs in
                [needs[0] ? try sumToShape(try g.binary(.mul, b), aShape) : nil,
                 needs[1] ? try sumToShape(try g.binary(.mul, a), bShape) : nil]
            }
        }
    }
}

// ---------------------------------------------------------------------- pointwise functions of one input

enum Pointwise: String { case scale, sigmoid, tanh, relu }

// inp, out are (n); out = f(inp) (scale: s · inp)
func pointwiseForward<T: NNFloat>(_ f: Pointwise, _ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ n: Int, _ s: T) {
    Parallel.chunks(n, grain: f == .scale || f == .relu ? elementGrain : elementGrain / 8) { r, _ in
        switch f {
        case .scale: for i in r { out[i] = s * inp[i] }
        case .sigmoid: for i in r { out[i] = 1 / (1 + T.fastExp(-inp[i])) }
        case .tanh: for i in r { out[i] = T.tanh(inp[i]) }
        case .relu: for i in r { out[i] = inp[i] > 0 ? inp[i] : 0 }
        }
    }
}

// dout, out, dinp are (n); backward needs the output only (scale: nothing): sigmoid' = y(1 − y),
// tanh' = 1 − y², relu' = [y > 0]
func pointwiseBackward<T: NNFloat>(_ f: Pointwise, _ dinp: UnsafeMutablePointer<T>, _ dout: UnsafePointer<T>,
                                   _ out: UnsafePointer<T>?, _ n: Int, _ s: T) {
    Parallel.chunks(n, grain: elementGrain) { r, _ in
        guard let out else { for i in r { dinp[i] = s * dout[i] }; return }
        switch f {
        case .scale: for i in r { dinp[i] = s * dout[i] }
        case .sigmoid: for i in r { dinp[i] = dout[i] * out[i] * (1 - out[i]) }
        case .tanh: for i in r { dinp[i] = dout[i] * (1 - out[i] * out[i]) }
        case .relu: for i in r { dinp[i] = out[i] > 0 ? dout[i] : 0 }
        }
    }
}

extension NN {
    /// s · x.
    public static func scale(_ x: Tensor, _ s: Double) throws -> Tensor { try pointwise(.scale, x, s) }
    /// 1 / (1 + e^(−x)).
    public static func sigmoid(_ x: Tensor) throws -> Tensor { try pointwise(.sigmoid, x, 0) }
    /// tanh x.
    public static func tanh(_ x: Tensor) throws -> Tensor { try pointwise(.tanh, x, 0) }
    /// max(x, 0) (gradient 0 at 0).
    public static func relu(_ x: Tensor) throws -> Tensor { try pointwise(.relu, x, 0) }

    static func pointwise(_ f: Pointwise, _ x: Tensor, _ s: Double) throws -> Tensor {
        switch x.dtype {
        case .float32: return try pointwiseOp(f, x, Float(s), Float.self)
        case .float64: return try pointwiseOp(f, x, s, Double.self)
        }
    }

    static func pointwiseOp<T: NNFloat>(_ f: Pointwise, _ x: Tensor, _ s: T, _: T.Type) throws -> Tensor {
        let inp = try x.contiguous()
        let out = try empty(x.shape, x.dtype)
        pointwiseForward(f, out.pointer(T.self), inp.pointer(T.self), x.count, s)
        let y = f == .scale ? nil : saved(out)   // saved: the output (the derivative is a function of it)
        let (xShape, dt, n) = (x.shape, x.dtype, x.count)
        return record(f.rawValue, output: out, inputs: [x], reads: y.map { [$0] } ?? []) { g, _ in
            let dinp = try empty(xShape, dt)
            pointwiseBackward(f, dinp.pointer(T.self), g.pointer(T.self), y?.pointer(T.self), n, s)
            return [dinp]
        }
    }
}

// ---------------------------------------------------------------------- functions through the core's kernels
// exp, log, sqrt, abs, x^p, a/b and clamp: what a script's own losses and diagnostics use (not the hot
// loops of the models), so forward and backward are the core's elementwise ops, each a line of calculus.

extension NN {
    /// e^x; d/dx = e^x (the output, saved).
    public static func exp(_ x: Tensor) throws -> Tensor {
        let y = try x.unary(.exp), ys = saved(y)
        return record("exp", output: y, inputs: [x], reads: [y]) { g, _ in [try g.binary(.mul, ys)] }
    }

    /// ln x; d/dx = 1/x (the input, saved).
    public static func log(_ x: Tensor) throws -> Tensor {
        let xs = saved(x)
        return record("log", output: try x.unary(.log), inputs: [x]) { g, _ in [try g.binary(.div, xs)] }
    }

    /// √x; d/dx = 1/(2√x) (the output, saved).
    public static func sqrt(_ x: Tensor) throws -> Tensor {
        let y = try x.unary(.sqrt), ys = saved(y)
        return record("sqrt", output: y, inputs: [x], reads: [y]) { g, _ in [try g.binary(.div, try ys.binary(.mul, scalar: 2))] }
    }

    /// |x|; d/dx = sign x (0 at 0, as PyTorch).
    public static func abs(_ x: Tensor) throws -> Tensor {
        let xs = saved(x)
        return record("abs", output: try x.unary(.abs), inputs: [x]) { g, _ in [try g.binary(.mul, try xs.unary(.sign))] }
    }

    /// x^p for a constant p; d/dx = p·x^(p−1).
    public static func pow(_ x: Tensor, _ p: Double) throws -> Tensor {
        let xs = saved(x)
        return record("pow", output: try x.binary(.pow, scalar: p), inputs: [x]) { g, _ in
            [try g.binary(.mul, try xs.binary(.pow, scalar: p - 1).binary(.mul, scalar: p))]
        }
    }

    /// a / b with numpy broadcasting; d/da = 1/b, d/db = −(a/b)/b.
    public static func div(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try requireSameDType("div", [("a", a), ("b", b)])
        let out: Tensor
        do { out = try a.binary(.div, b) } catch let e as DBMError { throw DBMError("div: \(e.message)") }
        let (bs, ys, aShape, bShape) = (saved(b), saved(out), a.shape, b.shape)
        return record("div", output: out, inputs: [a, b]) { g, needs in
            let gb = try g.binary(.div, bs)   // g/b, of the broadcast shape
            return [needs[0] ? try sumToShape(gb, aShape) : nil,
                    needs[1] ? try sumToShape(try gb.binary(.mul, ys).binary(.mul, scalar: -1), bShape) : nil]
        }
    }

    /// x limited to [lo, hi]; d/dx = 1 inside, 0 where clamped.
    public static func clamp(_ x: Tensor, min lo: Double, max hi: Double) throws -> Tensor {
        let xs = saved(x)
        return record("clamp", output: try x.clamped(min: lo, max: hi), inputs: [x]) { g, _ in
            let distance = try xs.clamped(min: lo, max: hi).binary(.sub, xs).unary(.abs)   // 0 inside (and on the bounds)
            let inside = try distance.unary(.sign).binary(.mul, scalar: -1).binary(.add, scalar: 1)
            return [try g.binary(.mul, inside)]
        }
    }
}
