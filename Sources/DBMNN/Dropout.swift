import DBMCore

// ---------------------------------------------------------------------- dropout

// Masks are bits: element e is kept when bit e % 8 of byte e / 8 is set. A byte mask of the nano-GPT
// `paper` preset's attention took 25 MB per layer (a bit mask 3 MB), and drawing each decision through
// the Generator class cost more than the products it feeds (perf, the whole step with dropout 0.2: 7.5%
// of the time in Generator.uniform and its exclusivity checks on the class's state).

/// Elements per independent random stream of a dropout mask. The mask depends only on the generator's
/// state (one 64-bit draw seeds the streams) and on this constant, not on how many cores filled it.
/// A multiple of 64: each stream fills whole 64-bit words of the mask.
let dropoutBlock = 1 << 16

/// xoshiro256** (the Generator's algorithm) as a value on the stack, started from the Generator of
/// (seed, stream): the compiler keeps its state in registers and checks no exclusive access per draw.
struct MaskStream {
    var s0, s1, s2, s3: UInt64

    init(seed: UInt64, stream: UInt64) {
        (s0, s1, s2, s3) = Generator(seed: seed, stream: stream).state
    }

    @inline(__always) mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// The next 64 keep/drop decisions as bits (bit k set = element k kept), two per draw: an element is
    /// dropped when its 32-bit uniform integer u satisfies u < threshold = round(p·2³²), i.e. with
    /// probability p to within 2⁻³³.
    @inline(__always) mutating func keepBits(threshold: UInt64) -> UInt64 {
        var w: UInt64 = 0
        for k in 0..<32 {
            let r = next()
            let lo = (r & 0xFFFF_FFFF) >= threshold ? UInt64(1) : 0, hi = (r >> 32) >= threshold ? UInt64(1) : 0
            w |= (lo | hi << 1) << (2 * k)
        }
        return w
    }
}

/// The 32-bit threshold of `MaskStream.keepBits` for probability p in [0, 1].
func dropoutThreshold(_ p: Double) -> UInt64 { UInt64((p * 4294967296).rounded()) }

/// Bytes of a bit mask of n elements, in whole 64-bit words.
func maskBytes(_ n: Int) -> Int { (n + 63) / 64 * 8 }

// mask is (maskBytes(n)) bytes; element i is kept with probability 1 − p, decided by stream
// i / dropoutBlock of `seed` (each stream writes its own words, so the cores never share one).
func dropoutMask(_ mask: UnsafeMutablePointer<UInt8>, _ n: Int, _ p: Double, seed: UInt64) {
    let blocks = (n + dropoutBlock - 1) / dropoutBlock, threshold = dropoutThreshold(p)
    let words = UnsafeMutableRawPointer(mask)
    Parallel.chunks(blocks, grain: 1) { bs, _ in
        for b in bs {
            var g = MaskStream(seed: seed, stream: UInt64(b))
            for w in b * dropoutBlock / 64 ..< (min(n, (b + 1) * dropoutBlock) + 63) / 64 {
                words.storeBytes(of: g.keepBits(threshold: threshold).littleEndian, toByteOffset: 8 * w, as: UInt64.self)
            }
        }
    }
}

/// For each byte value m, the eight factors of its elements: lane k is `scale` when bit k of m is set,
/// else 0. Applying a bit mask is then one table load and one product per eight elements.
struct DropoutPatterns<T: NNFloat> {
    let table: UnsafeMutablePointer<SIMD8<T>>
    init(scale: T) {
        table = .allocate(capacity: 256)
        for m in 0..<256 {
            var v = SIMD8<T>()
            for k in 0..<8 where m >> k & 1 != 0 { v[k] = scale }
            table[m] = v
        }
    }
    func deallocate() { table.deallocate() }

    /// out[0..<n] = inp · mask · scale, the mask's bits starting at bit 0 of mask[0].
    @inline(__always)
    func apply(_ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ mask: UnsafePointer<UInt8>, _ n: Int) {
        var m = 0
        while 8 * m + 8 <= n {
            let x = UnsafeRawPointer(inp + 8 * m).loadUnaligned(as: SIMD8<T>.self)
            UnsafeMutableRawPointer(out + 8 * m).storeBytes(of: x * table[Int(mask[m])], as: SIMD8<T>.self)
            m += 1
        }
        if 8 * m < n {
            let f = table[Int(mask[m])]
            for k in 0..<(n - 8 * m) { out[8 * m + k] = inp[8 * m + k] * f[k] }
        }
    }
}

// inp, out are (n), mask (maskBytes(n)) bits; out = inp·mask·scale with scale = 1/(1 − p). The backward
// is the same map applied to dout (it needs only the mask). Chunks start at multiples of 8 elements.
func dropoutApply<T: NNFloat>(_ out: UnsafeMutablePointer<T>, _ inp: UnsafePointer<T>, _ mask: UnsafePointer<UInt8>,
                              _ n: Int, _ scale: T) {
    let patterns = DropoutPatterns(scale: scale)
    defer { patterns.deallocate() }
    let bytes = (n + 7) / 8
    Parallel.chunks(bytes, grain: elementGrain / 8) { r, _ in
        let i0 = 8 * r.lowerBound, i1 = min(n, 8 * r.upperBound)
        patterns.apply(out + i0, inp + i0, mask + r.lowerBound, i1 - i0)
    }
}

extension NN {
    /// Zeroes each element with probability p and scales the others by 1/(1 − p); p = 0 returns x
    /// itself. The mask comes from generator (one draw per call) and is saved for backward as bits.
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
        let (maskStorage, mask) = try scratch(UInt8.self, count: maskBytes(n))
        dropoutMask(mask, n, p, seed: generator.nextUInt64())
        let scale = p < 1 ? T(1 / (1 - p)) : 0
        let out = try empty(x.shape, x.dtype)
        dropoutApply(out.pointer(T.self), inp.pointer(T.self), mask, n, scale)
        let (xShape, dt) = (x.shape, x.dtype)   // saved: the mask
        return record("dropout", output: out, inputs: [x], reads: []) { g, _ in
            let dinp = try empty(xShape, dt)
            dropoutApply(dinp.pointer(T.self), g.pointer(T.self), maskStorage.bytes.assumingMemoryBound(to: UInt8.self), n, scale)
            return [dinp]
        }
    }
}
