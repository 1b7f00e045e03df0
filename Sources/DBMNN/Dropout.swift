import DBMCore

// ---------------------------------------------------------------------- dropout

/// Elements per independent random stream of a dropout mask. The mask depends only on the generator's
/// state (one 64-bit draw seeds the streams) and on this constant, not on how many cores filled it.
let dropoutBlock = 1 << 16

// mask is (n) bytes; mask[i] = 1 (kept) with probability 1 − p, from stream i / dropoutBlock of `seed`:
// element i is dropped when that stream's next uniform deviate is < p.
func dropoutMask(_ mask: UnsafeMutablePointer<UInt8>, _ n: Int, _ p: Double, seed: UInt64, streamOffset: UInt64 = 0) {
    let blocks = (n + dropoutBlock - 1) / dropoutBlock
    Parallel.chunks(blocks, grain: 1) { bs, _ in
        for b in bs {
            let g = Generator(seed: seed, stream: streamOffset + UInt64(b))
            for i in b * dropoutBlock ..< min(n, (b + 1) * dropoutBlock) { mask[i] = g.uniform() < p ? 0 : 1 }
        }
    }
}

// inp, out are (n), mask (n); out = inp·mask·scale with scale = 1/(1 − p). The backward is the same map
// applied to dout (it needs only the mask).
func dropoutApply<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ mask: UnsafePointer<UInt8>,
                              _ n: Int, _ scale: T) {
    Parallel.chunks(n, grain: elementGrain) { r, _ in for i in r { out[i] = mask[i] != 0 ? inp[i] * scale : 0 } }
}

extension NN {
    /// Zeroes each element with probability p and scales the others by 1/(1 − p); p = 0 returns x
    /// itself. The mask comes from generator (one draw per call) and is saved for backward.
    public static func dropout(_ x: Tensor, p: Double, generator: Generator) throws -> Tensor {
        guard p >= 0, p <= 1 else { throw DBMError("dropout: expected a probability p in [0, 1], got \(p)") }
        if p == 0 { return x }
        switch x.dtype {
        case .float32: return try dropoutOp(x, p, generator, Float.self)
        case .float64: return try dropoutOp(x, p, generator, Double.self)
        }
    }

    static func dropoutOp<T: NNFloat>(_ x: Tensor, _ p: Double, _ generator: Generator, _: T.Type) throws -> Tensor {
        let n = x.count
        let inp = try x.contiguous()
        let (maskStorage, mask) = try scratch(UInt8.self, count: n)
        dropoutMask(mask, n, p, seed: generator.nextUInt64())
        let scale = p < 1 ? T(1 / (1 - p)) : 0
        let out = try empty(x.shape, x.dtype)
        dropoutApply(out.pointer(T.self), inp.pointer(T.self), mask, n, scale)
        let (xShape, dt) = (x.shape, x.dtype)   // saved: the mask
        return record("dropout", output: out, inputs: [x]) { g, _ in
            let dinp = try empty(xShape, dt)
            dropoutApply(dinp.pointer(T.self), g.pointer(T.self), maskStorage.bytes.assumingMemoryBound(to: UInt8.self), n, scale)
            return [dinp]
        }
    }
}
