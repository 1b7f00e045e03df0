import CLua
import CLua54
import DBMCore
import Foundation

/// Character-level text datasets (DBMCore's CharDataset) as Lua objects, for the nano-GPT: ids are
/// 1-based here (the core's tokens + 1) and travel as float32 tensors, as the embedding layer takes them.
/// The methods are put on the dataset metatable by LuaLib/dbm.lua. Also the image datasets (DBMCore's IDX):
/// dbm.load_idx and dbm.fashion_mnist.
extension Bindings {
    static func dataset(_ c: LuaCall) throws -> CharDataset {
        try c.object(1, kind: Int32(DBM_KIND_DATASET), "dataset", CharDataset.self)
    }

    /// The split named at argument i: "train" or "val".
    static func split(_ c: LuaCall, _ i: Int32) throws -> CharDataset.Split {
        guard c.type(i) == LUA_TSTRING else { throw c.argError(i, "split", expected: "\"train\" or \"val\"") }
        switch try c.string(i, "split") {
        case "train": return .train
        case "val": return .validation
        default: throw c.argError(i, "split", expected: "\"train\" or \"val\"")
        }
    }

    /// A positive size at argument i (batch and block sizes).
    static func positiveSize(_ c: LuaCall, _ i: Int32, _ what: String) throws -> Int {
        let n = try c.integer(i, what)
        guard n > 0 else { throw c.fail("argument \(i) (\(what)): expected a positive integer, got \(n)") }
        return n
    }

    /// A float32 tensor of the 1-based ids of 0-based tokens.
    static func idTensor(_ tokens: [Int32], shape: [Int]) throws -> Tensor {
        let t = try Tensor(shape: shape, dtype: .float32, zeroed: false)
        let p = t.pointer(Float.self)
        for (k, v) in tokens.enumerated() { p[k] = Float(v + 1) }
        return t
    }

    static let data: [Binding] = [
        fn("text_dataset", "dbm.text_dataset",
           "dbm.text_dataset(path [, {train_fraction=0.9}]) -> ds: characters of a UTF-8 text file; vocabulary = the sorted set of its characters, ids 1-based; the first train_fraction of the text trains, the rest validates") { c in
            let path = try c.string(1, "path")
            let o = try c.options(2, known: ["train_fraction"])
            let fraction = try c.optionNumber(o, "train_fraction") ?? 0.9
            try c.push(object: try CharDataset(path: path, trainFraction: fraction), kind: Int32(DBM_KIND_DATASET)); return 1
        },
        fn("dataset_vocab_size", "Dataset:vocab_size", "ds:vocab_size() -> the number of distinct characters") { c in
            c.push(try dataset(c).vocabSize); return 1
        },
        fn("dataset_vocab", "Dataset:vocab", "ds:vocab() -> the characters in id order, as one string (checkpoint metadata `vocab`)") { c in
            try c.push(try dataset(c).vocabularyString); return 1
        },
        fn("dataset_size", "Dataset:size", "ds:size([\"train\" | \"val\"]) -> characters in a split, or in the whole text") { c in
            let ds = try dataset(c)
            c.push(c.isNoneOrNil(2) ? ds.tokens.count : ds.count(try split(c, 2))); return 1
        },
        fn("dataset_encode", "Dataset:encode", "ds:encode(text) -> float32 1-d tensor of the 1-based ids of its characters") { c in
            let ds = try dataset(c)
            var len = 0
            guard let p = dbm_tolstring_raw(c.L, 2, &len) else { throw c.argError(2, "text", expected: "a string") }
            let tokens = try p.withMemoryRebound(to: UInt8.self, capacity: len) { try ds.encode(utf8: UnsafeBufferPointer(start: $0, count: len)) }
            try c.push(try idTensor(tokens, shape: [tokens.count])); return 1
        },
        fn("dataset_decode", "Dataset:decode", "ds:decode(ids) -> the string of 1-based ids (a tensor, row after row, or a table)") { c in
            let ds = try dataset(c)
            let v = ds.vocabSize
            var ids: [Int32] = []
            func add(_ x: Double, _ k: Int) throws {
                guard x == x.rounded(), x >= 1, x <= Double(v) else {
                    throw c.fail("argument 2 (ids): expected ids in 1..\(v), entry \(k) is \(formatNumber(x))")
                }
                ids.append(Int32(x) - 1)
            }
            if let t = c.tensorOrNil(2) {
                for (k, x) in t.toDoubles().enumerated() { try add(x, k + 1) }
            } else if c.type(2) == LUA_TTABLE, dbm_object_kind(c.L, 2) == 0 {
                let n = Int(lua_rawlen(c.L, 2))
                ids.reserveCapacity(n)
                for k in 0..<n {
                    lua_rawgeti(c.L, 2, lua_Integer(k + 1)); defer { dbm_pop(c.L, 1) }
                    guard c.type(-1) == LUA_TNUMBER else { throw c.fail("argument 2 (ids): expected ids in 1..\(v), entry \(k + 1) is \(c.describe(-1))") }
                    try add(dbm_tonumber(c.L, -1, nil), k + 1)
                }
            } else { throw c.argError(2, "ids", expected: "a tensor or a table of ids") }
            try c.push(try ds.decode(ids)); return 1
        },
        fn("dataset_batch", "Dataset:batch",
           "ds:batch(\"train\" | \"val\", batch_size, block_size [, {generator=}]) -> x, y: float32 (B, T) tensors of 1-based ids at uniform random offsets, y = x shifted by one character") { c in
            let ds = try dataset(c)
            let s = try split(c, 2)
            let b = try positiveSize(c, 3, "batch_size"), t = try positiveSize(c, 4, "block_size")
            let g = try generatorOption(c, try c.options(5, known: ["generator"]))
            let (x, y) = try ds.batch(split: s, batchSize: b, blockSize: t, generator: g)
            try c.push(try idTensor(x, shape: [b, t])); try c.push(try idTensor(y, shape: [b, t])); return 2
        },
        fn("load_idx", "dbm.load_idx",
           "dbm.load_idx(path [, {limit=}]) -> tensor: an IDX file (gzipped or plain, unsigned bytes): images (n, rows, cols) as float32 (n, rows·cols) of pixel/255 in [0, 1]; labels (n) as float32 (n) of the byte values; any other shape as float32 of that shape") { c in
            let path = try c.string(1, "path")
            let o = try c.options(2, known: ["limit"])
            let limit = try c.optionInteger(o, "limit")
            if let limit, limit < 1 { throw c.fail("option 'limit': expected a positive number of items, got \(limit)") }
            let (shape, bytes) = try IDX.read(path: path)
            let count = min(shape[0], limit ?? shape[0])
            let item = shape.dropFirst().reduce(1, *)
            let images = shape.count == 3
            let t = try Tensor(shape: images ? [count, item] : [count] + shape.dropFirst(), dtype: .float32, zeroed: false)
            let p = t.pointer(Float.self)
            for k in 0..<(count * item) { p[k] = images ? Float(bytes[k]) / 255 : Float(bytes[k]) }
            try c.push(t); return 1
        },
        fn("fashion_mnist", "dbm.fashion_mnist",
           "dbm.fashion_mnist([\"train\" | \"test\"] [, {limit=}]) -> images, labels: Fashion-MNIST from Debian's dataset-fashion-mnist (scripts/setup installs it): float32 (n, 784) pixels in [0, 1] and float32 (n) labels 0–9") { c in
            let split = c.isNoneOrNil(1) ? "train" : try c.string(1, "split")
            guard split == "train" || split == "test" else { throw c.argError(1, "split", expected: "\"train\" or \"test\"") }
            let o = try c.options(2, known: ["limit"])
            let limit = try c.optionInteger(o, "limit")
            if let limit, limit < 1 { throw c.fail("option 'limit': expected a positive number of images, got \(limit)") }
            let prefix = IDX.fashionMNISTDirectory + "/" + (split == "train" ? "train" : "t10k")
            guard FileManager.default.fileExists(atPath: prefix + "-images-idx3-ubyte.gz") else {
                throw c.fail("Fashion-MNIST is not installed at \(IDX.fashionMNISTDirectory): run scripts/setup (Debian package dataset-fashion-mnist)")
            }
            try c.push(try IDX.images(path: prefix + "-images-idx3-ubyte.gz", limit: limit))
            let labels = try IDX.labels(path: prefix + "-labels-idx1-ubyte.gz", limit: limit)
            try c.push(try Tensor.from(labels.map(Double.init), shape: [labels.count], dtype: .float32)); return 2
        },
    ]
}
