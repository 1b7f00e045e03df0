import DBMCore
import Foundation
import Synchronization

/// Reuse of the memory behind the ops' outputs, gradients and saved tensors (a caching allocator, as
/// PyTorch's): a training step allocates the same sizes every time, and fresh memory is expensive here.
/// Measured on this machine: writing 100 MB into freshly allocated memory takes 40–65 ms (the kernel
/// maps and zeroes every page on first touch) against 4–8 ms into memory already touched; the large GPT
/// block allocates about 1 GB per forward + backward, so without reuse page faults cost as much as the
/// products of its MLP.
///
/// Every storage handed out stays in the cache; it is handed out again once no tensor refers to it
/// (the cache holds the only reference). Cached storages count as live in MemoryLimit; when an
/// allocation would exceed the limit, the idle ones are released and the allocation retried.
/// `NN.releaseCachedMemory()` returns the idle ones to the system.
enum StorageCache {
    private static let pools = Mutex<[Int: [Storage]]>([:])

    /// Smaller storages are not cached: malloc serves them from memory it already has.
    static let minimumBytes = 64 << 10
    /// At most this many storages of one size are cached (each allocation scans them for a free one);
    /// more are allocated and freed as usual.
    static let maximumPerSize = 256

    /// A storage of exactly `bytes` bytes no tensor refers to, reused or new; zero-filled when asked.
    static func storage(bytes: Int, zeroed: Bool) throws -> Storage {
        if bytes < minimumBytes { return try Storage(byteCount: bytes, zeroed: zeroed) }
        if let s = reuse(bytes) {
            if zeroed { memset(s.bytes, 0, bytes) }
            return s
        }
        let s: Storage
        do { s = try Storage(byteCount: bytes, zeroed: zeroed) }
        catch {
            guard releaseIdle() > 0 else { throw error }
            s = try Storage(byteCount: bytes, zeroed: zeroed)
        }
        pools.withLock { pools in
            if pools[bytes, default: []].count < maximumPerSize { pools[bytes, default: []].append(s) }
        }
        return s
    }

    private static func reuse(_ bytes: Int) -> Storage? {
        pools.withLock { pools -> Storage? in
            guard var list = pools.removeValue(forKey: bytes) else { return nil }
            defer { pools[bytes] = list }
            for i in list.indices where isKnownUniquelyReferenced(&list[i]) { return list[i] }
            return nil
        }
    }

    /// Drops the storages no tensor refers to; returns the bytes released.
    @discardableResult
    static func releaseIdle() -> Int {
        pools.withLock { pools in
            var released = 0
            for key in Array(pools.keys) {
                var list = pools.removeValue(forKey: key)!
                var kept: [Storage] = []
                for i in list.indices {
                    if isKnownUniquelyReferenced(&list[i]) { released += list[i].byteCount } else { kept.append(list[i]) }
                }
                list = []
                if !kept.isEmpty { pools[key] = kept }
            }
            return released
        }
    }

    /// Bytes held by the cache: all of it, and the part no tensor refers to.
    static func statistics() -> (held: Int, idle: Int) {
        pools.withLock { pools in
            var held = 0, idle = 0
            for key in Array(pools.keys) {
                var list = pools.removeValue(forKey: key)!
                for i in list.indices {
                    held += list[i].byteCount
                    if isKnownUniquelyReferenced(&list[i]) { idle += list[i].byteCount }
                }
                pools[key] = list
            }
            return (held, idle)
        }
    }
}

extension NN {
    /// Returns the memory of the op cache that no tensor uses any more to the system; returns its size in bytes.
    @discardableResult
    public static func releaseCachedMemory() -> Int { StorageCache.releaseIdle() }

    /// Bytes the op cache holds (in use by tensors or idle) and the idle part.
    public static var cachedMemory: (held: Int, idle: Int) { StorageCache.statistics() }

    /// A contiguous tensor on cached memory: uninitialised unless zeroed (the kernel writes every element).
    static func empty(_ shape: [Int], _ dtype: DType, zeroed: Bool = false) throws -> Tensor {
        let n = try checkedCount(shape)
        let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow { throw DBMError("expected a shape whose size in bytes fits in 64 bits, got \(formatShape(shape))") }
        let s = try StorageCache.storage(bytes: bytes, zeroed: zeroed)
        return Tensor(storage: s, dtype: dtype, shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0)
    }

    /// Scratch memory for count elements of T, on cached memory; valid while the returned storage lives.
    static func scratch<T>(_: T.Type, count: Int) throws -> (Storage, UnsafeMutablePointer<T>) {
        let s = try StorageCache.storage(bytes: max(1, count) * MemoryLayout<T>.stride, zeroed: false)
        return (s, s.bytes.assumingMemoryBound(to: T.self))
    }
}
