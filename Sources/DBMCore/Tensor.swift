import Foundation

public enum DType: String, Sendable, CaseIterable {
    case float32, float64
    public var byteSize: Int { self == .float32 ? 4 : 8 }
    public static func promoted(_ a: DType, _ b: DType) -> DType { a == .float64 || b == .float64 ? .float64 : .float32 }
}

/// The element types a tensor can hold, with the few math functions the kernels need generically.
public protocol TensorScalar: BinaryFloatingPoint, Sendable {
    static var dtype: DType { get }
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
    @inline(__always) public static func exp(_ x: Float) -> Float { Foundation.expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { Foundation.logf(x) }
    @inline(__always) public static func pow(_ x: Float, _ y: Float) -> Float { Foundation.powf(x, y) }
}

extension Double: TensorScalar {
    public static var dtype: DType { .float64 }
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
}

/// A block of memory holding tensor elements; views share it. Checked against MemoryLimit.
public final class Storage: @unchecked Sendable {
    public let bytes: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Bumped by every in-place write made through the library's in-place operations (t:fill, t:copy,
    /// t[i] = v, an optimizer step): the tape compares it with what an op saw when it recorded itself,
    /// so a backward never reads a saved tensor that changed since (as PyTorch's version counter).
    public private(set) var version = 0
    public func bumpVersion() { version &+= 1 }

    public init(byteCount: Int, zeroed: Bool = true) throws {
        try MemoryLimit.reserve(byteCount)
        var p: UnsafeMutableRawPointer? = nil
        if posix_memalign(&p, 64, max(byteCount, 64)) != 0 || p == nil {
            MemoryLimit.release(byteCount)
            throw DBMError("out of memory allocating \(MemoryLimit.formatBytes(byteCount))")
        }
        if zeroed { memset(p!, 0, byteCount) }
        bytes = p!
        self.byteCount = byteCount
    }

    deinit {
        free(bytes)
        MemoryLimit.release(byteCount)
    }
}

/// A dense, strided, n-dimensional array of Float32 or Float64 (row-major when contiguous).
/// Indices are 0-based here; the Lua bridge converts from Lua's 1-based indices.
public final class Tensor: @unchecked Sendable {
    public let storage: Storage
    public let dtype: DType
    public let shape: [Int]
    public let strides: [Int]   // in elements
    public let offset: Int      // in elements

    // Autograd state, used only by DBMNN's tape (the core knows nothing of its types):
    /// True for a tensor whose gradient is wanted: a parameter (a leaf), or the result of a recorded op.
    public var requiresGrad = false
    /// The accumulated gradient of a leaf after `backward` (same shape and dtype).
    public var grad: Tensor? = nil
    /// The tape node of the op that produced this tensor (nil for leaves and untracked tensors).
    public var gradFn: AnyObject? = nil

    public init(storage: Storage, dtype: DType, shape: [Int], strides: [Int], offset: Int) {
        self.storage = storage; self.dtype = dtype; self.shape = shape; self.strides = strides; self.offset = offset
    }

    /// A new contiguous tensor (zero-filled unless `zeroed` is false).
    public convenience init(shape: [Int], dtype: DType = .float32, zeroed: Bool = true) throws {
        let n = try checkedCount(shape)
        _ = try checkedCount(shape.map { max($0, 1) })   // the strides, also for shapes with a zero size
        let (bytes, o) = n.multipliedReportingOverflow(by: dtype.byteSize)
        if o { throw DBMError("expected a shape whose size in bytes fits in 64 bits, got \(formatShape(shape))") }
        let storage = try Storage(byteCount: bytes, zeroed: zeroed)
        self.init(storage: storage, dtype: dtype, shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0)
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= max(shape[i], 1) }
        return s
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize }
    public var isContiguous: Bool {
        if shape.contains(0) { return true }   // no elements: any layout is dense
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Pointer to the first element (typed). The tensor must hold T.
    @inline(__always) public func pointer<T: TensorScalar>(_: T.Type) -> UnsafeMutablePointer<T> {
        precondition(T.dtype == dtype, "tensor holds \(dtype), not \(T.dtype)")
        return storage.bytes.assumingMemoryBound(to: T.self) + offset
    }

    // ------------------------------------------------------------------ element access

    /// Storage offset (in elements) of a multi-index, checked.
    public func elementOffset(_ index: [Int]) throws -> Int {
        guard index.count == rank else {
            throw DBMError("expected \(rank) indices for a tensor of shape \(formatShape(shape)), got \(index.count)")
        }
        var o = offset
        for (d, i) in index.enumerated() {
            guard i >= 0 && i < shape[d] else {
                throw DBMError("expected an index in 1..\(shape[d]) in dimension \(d + 1) of shape \(formatShape(shape)), got \(i + 1)")
            }
            o += i * strides[d]
        }
        return o
    }

    public func value(at index: [Int]) throws -> Double {
        let o = try elementOffset(index)
        return dtype == .float32 ? Double(storage.bytes.assumingMemoryBound(to: Float.self)[o])
                                 : storage.bytes.assumingMemoryBound(to: Double.self)[o]
    }

    public func setValue(_ v: Double, at index: [Int]) throws {
        let o = try elementOffset(index)
        if dtype == .float32 { storage.bytes.assumingMemoryBound(to: Float.self)[o] = Float(v) }
        else { storage.bytes.assumingMemoryBound(to: Double.self)[o] = v }
    }

    /// All elements in row-major order, as Double.
    public func toDoubles() -> [Double] {
        let c = contiguousOrSelf()
        let n = c.count
        if c.dtype == .float64 { return Array(UnsafeBufferPointer(start: c.pointer(Double.self), count: n)) }
        let p = c.pointer(Float.self)
        return (0..<n).map { Double(p[$0]) }
    }

    /// All elements in row-major order, as Float.
    public func toFloats() -> [Float] {
        let c = contiguousOrSelf()
        let n = c.count
        if c.dtype == .float32 { return Array(UnsafeBufferPointer(start: c.pointer(Float.self), count: n)) }
        let p = c.pointer(Double.self)
        return (0..<n).map { Float(p[$0]) }
    }

    // ------------------------------------------------------------------ creation

    public static func zeros(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try Tensor(shape: shape, dtype: dtype)
    }

    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32) throws -> Tensor {
        let t = try Tensor(shape: shape, dtype: dtype, zeroed: false)
        t.fill(value)
        return t
    }

    public static func from(_ values: [Double], shape: [Int], dtype: DType = .float32) throws -> Tensor {
        let n = try checkedCount(shape)
        guard n == values.count else {
            throw DBMError("\(values.count) values do not fill shape \(formatShape(shape)) (\(n) elements)")
        }
        let t = try Tensor(shape: shape, dtype: dtype, zeroed: false)
        values.withUnsafeBufferPointer { src in
            if dtype == .float64 { t.pointer(Double.self).update(from: src.baseAddress!, count: n) }
            else { let p = t.pointer(Float.self); for i in 0..<n { p[i] = Float(src[i]) } }
        }
        return t
    }

    public static func from(_ values: [Float], shape: [Int]) throws -> Tensor {
        let n = try checkedCount(shape)
        guard n == values.count else {
            throw DBMError("\(values.count) values do not fill shape \(formatShape(shape)) (\(n) elements)")
        }
        let t = try Tensor(shape: shape, dtype: .float32, zeroed: false)
        values.withUnsafeBufferPointer { t.pointer(Float.self).update(from: $0.baseAddress!, count: n) }
        return t
    }

    /// start, start+step, ... up to but excluding stop.
    public static func arange(_ start: Double, _ stop: Double, _ step: Double = 1, dtype: DType = .float32) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, stop.isFinite else {
            throw DBMError("expected finite start, stop and a non-zero step, got \(start), \(stop), \(step)")
        }
        // The count as a Double first: (stop − start)/step can be far beyond any Int (a step of 1e-300).
        let count = ((stop - start) / step).rounded(.up)
        guard count.isFinite, count < 1e15 else {
            throw DBMError("expected at most 10^15 elements, got a range of \(count) steps of \(step) from \(start) to \(stop)")
        }
        let n = count > 0 ? Int(count) : 0   // (a negative count, however large, is an empty range)
        let t = try Tensor(shape: [n], dtype: dtype, zeroed: false)
        if dtype == .float64 { let p = t.pointer(Double.self); for i in 0..<n { p[i] = start + Double(i) * step } }
        else { let p = t.pointer(Float.self); for i in 0..<n { p[i] = Float(start + Double(i) * step) } }
        return t
    }

    public static func eye(_ n: Int, dtype: DType = .float32) throws -> Tensor {
        let t = try Tensor(shape: [n, n], dtype: dtype)
        for i in 0..<n { try t.setValue(1, at: [i, i]) }
        return t
    }

    /// Sets every element (of this view) to v.
    public func fill(_ v: Double) {
        if isContiguous {   // one vectorised pass (zeroing every gradient each training step goes through here)
            let p = storage.bytes + offset * dtype.byteSize
            if dtype == .float64 { p.assumingMemoryBound(to: Double.self).update(repeating: v, count: count) }
            else { p.assumingMemoryBound(to: Float.self).update(repeating: Float(v), count: count) }
            return
        }
        if dtype == .float64 { forEachOffset { storage.bytes.assumingMemoryBound(to: Double.self)[$0] = v } }
        else { let f = Float(v); forEachOffset { storage.bytes.assumingMemoryBound(to: Float.self)[$0] = f } }
    }

    /// Calls body with the storage offset of every element, in row-major order.
    public func forEachOffset(_ body: (Int) -> Void) {
        let n = count
        if n == 0 { return }
        if isContiguous { for i in 0..<n { body(offset + i) }; return }
        var idx = [Int](repeating: 0, count: rank)
        var o = offset
        let last = rank - 1
        for _ in 0..<n / shape[last] {
            for j in 0..<shape[last] { body(o + j * strides[last]) }
            var d = last - 1
            while d >= 0 {
                idx[d] += 1; o += strides[d]
                if idx[d] < shape[d] { break }
                o -= strides[d] * shape[d]; idx[d] = 0; d -= 1
            }
        }
    }

    // ------------------------------------------------------------------ copies and conversion

    /// A contiguous copy with the given dtype (default: the same).
    public func copy(dtype newType: DType? = nil) throws -> Tensor {
        let to = newType ?? dtype
        let out = try Tensor(shape: shape, dtype: to, zeroed: false)
        if isContiguous && to == dtype {
            memcpy(out.storage.bytes, storage.bytes + offset * dtype.byteSize, byteCount)
            return out
        }
        var i = 0
        switch (dtype, to) {
        case (.float32, .float32):
            let s = storage.bytes.assumingMemoryBound(to: Float.self), d = out.pointer(Float.self)
            forEachOffset { d[i] = s[$0]; i += 1 }
        case (.float32, .float64):
            let s = storage.bytes.assumingMemoryBound(to: Float.self), d = out.pointer(Double.self)
            forEachOffset { d[i] = Double(s[$0]); i += 1 }
        case (.float64, .float32):
            let s = storage.bytes.assumingMemoryBound(to: Double.self), d = out.pointer(Float.self)
            forEachOffset { d[i] = Float(s[$0]); i += 1 }
        case (.float64, .float64):
            let s = storage.bytes.assumingMemoryBound(to: Double.self), d = out.pointer(Double.self)
            forEachOffset { d[i] = s[$0]; i += 1 }
        }
        return out
    }

    public func contiguous() throws -> Tensor { isContiguous ? self : try copy() }

    /// This tensor if contiguous; otherwise a copy, where failure (memory) is a programming error.
    func contiguousOrSelf() -> Tensor { isContiguous ? self : (try! copy()) }

    public func converted(to newType: DType) throws -> Tensor { newType == dtype ? self : try copy(dtype: newType) }

    /// Copies the elements of src (same count, any shape and dtype) into this tensor in row-major order.
    public func assign(from src: Tensor) throws {
        guard src.count == count else {
            throw DBMError("cannot copy \(formatShape(src.shape)) into \(formatShape(shape))")
        }
        let s = try src.copy(dtype: dtype)
        var i = 0
        if dtype == .float64 {
            let d = storage.bytes.assumingMemoryBound(to: Double.self), p = s.pointer(Double.self)
            forEachOffset { d[$0] = p[i]; i += 1 }
        } else {
            let d = storage.bytes.assumingMemoryBound(to: Float.self), p = s.pointer(Float.self)
            forEachOffset { d[$0] = p[i]; i += 1 }
        }
    }

    // ------------------------------------------------------------------ views

    /// Same elements, new shape (one entry may be -1). A view when contiguous, else a copy.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        if unknown.count > 1 { throw DBMError("expected at most one size of -1, got \(formatShape(newShape))") }
        if let u = unknown.first {
            var rest = s; rest[u] = 1
            let known = try checkedCount(rest)
            guard known > 0, count % known == 0 else {
                throw DBMError("cannot reshape \(formatShape(shape)) (\(count) elements) to \(formatShape(newShape))")
            }
            s[u] = count / known
        }
        let n = try checkedCount(s)
        guard n == count else {
            throw DBMError("cannot reshape \(formatShape(shape)) (\(count) elements) to \(formatShape(newShape)) (\(n) elements)")
        }
        let base = try contiguous()
        return Tensor(storage: base.storage, dtype: dtype, shape: s, strides: Tensor.contiguousStrides(s), offset: base.offset)
    }

    /// Swaps two dimensions (a view).
    public func transposed(_ d0: Int, _ d1: Int) throws -> Tensor {
        guard d0 >= 0, d0 < rank, d1 >= 0, d1 < rank else {
            throw DBMError("expected dimensions in 1..\(rank), got \(d0 + 1) and \(d1 + 1)")
        }
        var sh = shape, st = strides
        sh.swapAt(d0, d1); st.swapAt(d0, d1)
        return Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset)
    }

    /// The matrix transpose of a 2-D tensor (a 1-D tensor is returned as it is).
    public func t() throws -> Tensor {
        if rank == 1 { return self }
        guard rank == 2 else { throw DBMError("expected a 1-D or 2-D tensor, got shape \(formatShape(shape))") }
        return try transposed(0, 1)
    }

    /// Elements start ..< start+length along dim (a view).
    public func narrow(_ dim: Int, _ start: Int, _ length: Int) throws -> Tensor {
        guard dim >= 0, dim < rank else { throw DBMError("expected a dimension in 1..\(rank), got \(dim + 1)") }
        guard start >= 0, length >= 0, length <= shape[dim], start <= shape[dim] - length else {   // no overflow
            throw DBMError("expected a range within 1..\(shape[dim]) in dimension \(dim + 1), got start \(start) (0-based) and length \(length)")
        }
        var sh = shape; sh[dim] = length
        return Tensor(storage: storage, dtype: dtype, shape: sh, strides: strides, offset: offset + start * strides[dim])
    }

    /// The slice at index along dim, with that dimension removed (a view).
    public func select(_ dim: Int, _ index: Int) throws -> Tensor {
        guard dim >= 0, dim < rank else { throw DBMError("expected a dimension in 1..\(rank), got \(dim + 1)") }
        guard index >= 0, index < shape[dim] else {
            throw DBMError("expected an index in 1..\(shape[dim]) in dimension \(dim + 1), got \(index + 1)")
        }
        var sh = shape, st = strides
        sh.remove(at: dim); st.remove(at: dim)
        return Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset + index * strides[dim])
    }

    /// The slices at the given indices along dim, in that order (a copy).
    public func indexSelect(_ dim: Int, _ indices: [Int]) throws -> Tensor {
        guard dim >= 0, dim < rank else { throw DBMError("expected a dimension in 1..\(rank), got \(dim + 1)") }
        var sh = shape; sh[dim] = indices.count
        let out = try Tensor(shape: sh, dtype: dtype, zeroed: false)
        for (k, i) in indices.enumerated() {
            try out.select(dim, k).assign(from: try select(dim, i))
        }
        return out
    }
}
