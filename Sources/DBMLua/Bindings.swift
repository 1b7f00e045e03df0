import CLua
import CLua54
import DBMCore
import DBMNN
import Foundation

/// The Swift functions of the `dbm` core table. Each has its Lua name (as the user sees it, for error
/// messages), a one-line help text, and a body that reads its arguments through LuaCall and returns
/// the number of results it pushed. Bodies throw; `dispatch` turns a throw into "name: message" for
/// the C trampoline to raise with the script's position.
struct Binding: Sendable {
    let name: String        // key in the core table
    let luaName: String     // how the user calls it, for messages: "dbm.eigvalsh", "Tensor:reshape"
    let help: String
    let body: @Sendable (LuaCall) throws -> Int32
}

enum Bindings {
    static let entries: [Binding] = creation + shapes + arithmetic + reductions + linalg + files + misc + safetensors + spectral + laws
        + autograd + functional + optim + data + models + npyAppender

    /// The single C entry point of every binding: reads the binding's index from upvalue 2.
    static let dispatch: @convention(c) (OpaquePointer?) -> Int32 = { L in
        guard let L else { return DBM_ERROR }
        let tag = Int(dbm_tointeger(L, dbm_upvalueindex(2), nil))
        let call = LuaCall(L: L, tag: tag)
        let base = lua_gettop(L)
        for attempt in 0..<2 {
            do {
                return try entries.withUnsafeBufferPointer { try $0[tag].body(call) }
            } catch let e as LuaFailure {
                let entry = Bindings.entries[tag]
                return dbm_error(L, "\(entry.luaName): \(e.message)")
            } catch let e as DBMError {
                // A tensor allocation may fail only because garbage still holds memory: collect, retry once.
                if attempt == 0 && e.message.contains("memory limit") && e.message.contains("already held") {
                    lua_settop(L, base)
                    dbm_gc_full(L)
                    continue
                }
                let entry = Bindings.entries[tag]
                return dbm_error(L, "\(entry.luaName): \(e.message)")
            } catch {
                return dbm_error(L, "\(Bindings.entries[tag].luaName): \(error)")
            }
        }
        return DBM_ERROR
    }

    static func fn(_ name: String, _ luaName: String, _ help: String, _ body: @escaping @Sendable (LuaCall) throws -> Int32) -> Binding {
        Binding(name: name, luaName: luaName, help: help, body: body)
    }

    // ------------------------------------------------------------------ creation

    static let creation: [Binding] = [
        fn("zeros", "dbm.zeros", "dbm.zeros(rows, cols, ... | {sizes} [, {dtype=}]) -> tensor of zeros") { c in
            let (shape, next) = try c.shape(from: 1)
            let o = try c.options(next, known: ["dtype"])
            try c.push(try Tensor.zeros(shape, dtype: try c.optionDType(o, default: .float32))); return 1
        },
        fn("ones", "dbm.ones", "dbm.ones(rows, cols, ... | {sizes} [, {dtype=}]) -> tensor of ones") { c in
            let (shape, next) = try c.shape(from: 1)
            let o = try c.options(next, known: ["dtype"])
            try c.push(try Tensor.full(shape, 1, dtype: try c.optionDType(o, default: .float32))); return 1
        },
        fn("full", "dbm.full", "dbm.full({sizes}, value [, {dtype=}]) -> tensor filled with value") { c in
            guard c.type(1) == LUA_TTABLE else { throw c.argError(1, "sizes", expected: "a table of sizes") }
            let (shape, _) = try c.shape(from: 1)
            let v = try c.number(2, "value")
            let o = try c.options(3, known: ["dtype"])
            try c.push(try Tensor.full(shape, v, dtype: try c.optionDType(o, default: .float32))); return 1
        },
        fn("randn", "dbm.randn", "dbm.randn(rows, cols, ... | {sizes} [, {mean=0, std=1, dtype=, generator=}]) -> normal samples") { c in
            let (shape, next) = try c.shape(from: 1)
            let o = try c.options(next, known: ["mean", "std", "dtype", "generator"])
            let g = try generatorOption(c, o)
            try c.push(try Tensor.randn(shape, mean: try c.optionNumber(o, "mean") ?? 0, std: try c.optionNumber(o, "std") ?? 1,
                                        dtype: try c.optionDType(o, default: .float32), generator: g)); return 1
        },
        fn("rand", "dbm.rand", "dbm.rand(rows, cols, ... | {sizes} [, {low=0, high=1, dtype=, generator=}]) -> uniform samples") { c in
            let (shape, next) = try c.shape(from: 1)
            let o = try c.options(next, known: ["low", "high", "dtype", "generator"])
            let g = try generatorOption(c, o)
            try c.push(try Tensor.rand(shape, low: try c.optionNumber(o, "low") ?? 0, high: try c.optionNumber(o, "high") ?? 1,
                                       dtype: try c.optionDType(o, default: .float32), generator: g)); return 1
        },
        fn("arange", "dbm.arange", "dbm.arange([start,] stop [, step] [, {dtype=}]) -> start, start+step, ... < stop (arange(n) is 0..n-1)") { c in
            var nums: [Double] = []
            var i: Int32 = 1
            while c.type(i) == LUA_TNUMBER && nums.count < 3 { nums.append(try c.number(i, "bound")); i += 1 }
            guard !nums.isEmpty else { throw c.argError(1, "stop", expected: "a number") }
            let o = try c.options(i, known: ["dtype"])
            let (start, stop, step) = nums.count == 1 ? (0, nums[0], 1) : (nums[0], nums[1], nums.count > 2 ? nums[2] : 1)
            try c.push(try Tensor.arange(start, stop, step, dtype: try c.optionDType(o, default: .float32))); return 1
        },
        fn("eye", "dbm.eye", "dbm.eye(n [, {dtype=}]) -> n×n identity") { c in
            let n = try c.integer(1, "n")
            guard n >= 0 else { throw c.fail("argument 1 (n): expected a non-negative size, got \(n)") }
            try c.push(try Tensor.eye(n, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float32))); return 1
        },
        fn("tensor", "dbm.tensor", "dbm.tensor(nested table of numbers | number [, {dtype=}]) -> tensor (a tensor argument is copied)") { c in
            let o = try c.options(2, known: ["dtype"])
            let dt = try c.optionDType(o, default: .float32)
            if let t = c.tensorOrNil(1) { try c.push(try t.copy(dtype: try c.optionDType(o, default: t.dtype))); return 1 }
            if c.type(1) == LUA_TNUMBER { try c.push(try Tensor.from([try c.number(1, "value")], shape: [], dtype: dt)); return 1 }
            guard c.type(1) == LUA_TTABLE else { throw c.argError(1, "values", expected: "a (nested) table of numbers") }
            var values: [Double] = []
            let shape = try readNested(c, 1, depth: 0, values: &values)
            try c.push(try Tensor.from(values, shape: shape, dtype: dt)); return 1
        },
        fn("seed", "dbm.seed", "dbm.seed(n): reseed the default generator (same n, same numbers on every run)") { c in
            let n = try c.integer(1, "seed")
            c.context.generator = Generator(seed: UInt64(bitPattern: Int64(n)))
            return 0
        },
        fn("generator", "dbm.generator", "dbm.generator(seed [, stream]) -> an independent generator to pass as {generator=g}") { c in
            let seed = try c.integer(1, "seed"), stream = try c.optInteger(2, "stream", 0)
            try c.push(object: Generator(seed: UInt64(bitPattern: Int64(seed)), stream: UInt64(bitPattern: Int64(stream))),
                       kind: Int32(DBM_KIND_GENERATOR)); return 1
        },
        fn("generator_uniform", "Generator:uniform", "g:uniform() -> a number uniform in [0, 1)") { c in
            let g = try c.object(1, kind: Int32(DBM_KIND_GENERATOR), "generator", Generator.self)
            c.push(g.uniform()); return 1
        },
        fn("generator_normal", "Generator:normal", "g:normal() -> a standard normal number") { c in
            let g = try c.object(1, kind: Int32(DBM_KIND_GENERATOR), "generator", Generator.self)
            c.push(g.normal()); return 1
        },
        fn("generator_permutation", "Generator:permutation", "g:permutation(n) -> table with a random order of 1..n") { c in
            let g = try c.object(1, kind: Int32(DBM_KIND_GENERATOR), "generator", Generator.self)
            let n = try c.integer(2, "n")
            guard n >= 0 else { throw c.fail("argument 2 (n): expected a non-negative count, got \(n)") }
            // The order (8 bytes an entry) and the Lua table it becomes (about 16) count against the memory limit.
            let bytes = n.multipliedReportingOverflow(by: 24)
            guard !bytes.overflow else { throw c.fail("argument 2 (n): expected a count that fits in memory, got \(n)") }
            try MemoryLimit.withReserved(bytes.partialValue) { try c.push(integers: g.permutation(n).map { $0 + 1 }) }
            return 1
        },
        fn("default_generator", "dbm.default_generator", "dbm.default_generator() -> the generator used when none is given (dbm.seed replaces it)") { c in
            try c.push(object: c.context.generator, kind: Int32(DBM_KIND_GENERATOR)); return 1
        },
        fn("generator_state", "Generator:state", "g:state() -> float64 tensor (12) of the full state as 32-bit halves (exact), for checkpoints") { c in
            let g = try c.object(1, kind: Int32(DBM_KIND_GENERATOR), "generator", Generator.self)
            let halves = g.snapshot.flatMap { [Double($0 >> 32), Double($0 & 0xFFFF_FFFF)] }
            try c.push(try Tensor.from(halves, shape: [halves.count], dtype: .float64)); return 1
        },
        fn("generator_set_state", "Generator:set_state", "g:set_state(t): continue from a state g:state() returned") { c in
            let g = try c.object(1, kind: Int32(DBM_KIND_GENERATOR), "generator", Generator.self)
            let t = try c.tensor(2, "state")
            let v = t.toDoubles()
            guard t.rank == 1, v.count == 12, v.allSatisfy({ $0 >= 0 && $0 < 4294967296 && $0 == $0.rounded() }) else {
                throw c.fail("argument 2 (state): expected the 12 32-bit halves g:state() returns, got \(c.describe(2))")
            }
            try g.restore(stride(from: 0, to: 12, by: 2).map { UInt64(v[$0]) << 32 | UInt64(v[$0 + 1]) })
            return 0
        },
    ]

    static func generatorOption(_ c: LuaCall, _ o: Int32) throws -> Generator {
        try c.option(o, "generator") { j in
            guard let p = dbm_toobject(c.L, j, Int32(DBM_KIND_GENERATOR)) else {
                throw c.fail("option 'generator': expected a generator (dbm.generator(seed)), got \(c.describe(j))")
            }
            return Unmanaged<Generator>.fromOpaque(p).takeUnretainedValue()
        } ?? c.context.generator
    }

    /// Reads a nested table of numbers (rectangular) into values; returns its shape.
    static func readNested(_ c: LuaCall, _ idx: Int32, depth: Int, values: inout [Double]) throws -> [Int] {
        if depth > 32 { throw c.fail("argument 1: tables nested too deeply") }
        let n = Int(lua_rawlen(c.L, idx))
        if n == 0 { return [0] }
        var inner: [Int]? = nil
        for k in 1...n {
            lua_rawgeti(c.L, idx, lua_Integer(k))
            defer { dbm_pop(c.L, 1) }
            let top = lua_gettop(c.L)
            let sub: [Int]
            switch lua_type(c.L, top) {
            case LUA_TNUMBER: values.append(dbm_tonumber(c.L, top, nil)); sub = []
            case LUA_TTABLE: sub = try readNested(c, top, depth: depth + 1, values: &values)
            default: throw c.fail("argument 1: expected numbers or tables of numbers, entry \(k) at depth \(depth + 1) is \(c.describe(top))")
            }
            if let i = inner, i != sub {
                throw c.fail("argument 1: expected rows of equal shape, got \(formatShape(i)) and \(formatShape(sub)) at depth \(depth + 1)")
            }
            inner = sub
        }
        return [n] + (inner ?? [])
    }

    // ------------------------------------------------------------------ shapes and views

    static let shapes: [Binding] = [
        fn("shape", "Tensor:shape", "t:shape() -> table of sizes, e.g. {3, 4}") { c in
            try c.push(integers: try c.tensor(1).shape); return 1
        },
        fn("size", "Tensor:size", "t:size([dim]) -> size along dim (1-based), or the table of sizes") { c in
            let t = try c.tensor(1)
            if c.isNoneOrNil(2) { try c.push(integers: t.shape); return 1 }
            c.push(t.shape[try c.dim(2, rank: t.rank)]); return 1
        },
        fn("dim", "Tensor:dim", "t:dim() -> number of dimensions") { c in c.push(try c.tensor(1).rank); return 1 },
        fn("numel", "Tensor:numel", "t:numel() -> number of elements") { c in c.push(try c.tensor(1).count); return 1 },
        fn("dtype", "Tensor:dtype", "t:dtype() -> \"float32\" or \"float64\"") { c in try c.push(try c.tensor(1).dtype.rawValue); return 1 },
        fn("is_contiguous", "Tensor:is_contiguous", "t:is_contiguous() -> whether the elements are dense in row-major order") { c in
            c.push(try c.tensor(1).isContiguous); return 1
        },
        fn("totable", "Tensor:totable", "t:totable() -> nested Lua table of numbers (a number for a 0-d tensor)") { c in
            let t = try c.tensor(1)
            if t.rank == 0 { c.push(try t.value(at: [])); return 1 }
            let v = t.toDoubles()
            try pushNested(c, v, t.shape, 0, 0); return 1
        },
        fn("tostring", "Tensor:tostring", "tostring(t) -> readable, truncated print with shape and dtype") { c in
            try c.push(TensorFormat.describe(try c.tensor(1))); return 1
        },
        fn("get", "Tensor:get", "t:get(i, j, ...) -> the element at 1-based indices") { c in
            let t = try c.tensor(1)
            var idx: [Int] = []
            for d in 0..<t.rank { idx.append(try c.index(Int32(d + 2), "index \(d + 1)", size: t.shape[d])) }
            if c.top > Int32(t.rank + 1) { throw c.fail("expected \(t.rank) indices for a tensor of shape \(formatShape(t.shape)), got \(c.top - 1)") }
            c.push(try t.value(at: idx)); return 1
        },
        fn("set", "Tensor:set", "t:set(i, j, ..., value): set one element (1-based indices); returns t") { c in
            let t = try c.tensor(1)
            guard c.top == Int32(t.rank + 2) else {
                throw c.fail("expected \(t.rank) indices and a value for a tensor of shape \(formatShape(t.shape)), got \(c.top - 1) arguments")
            }
            var idx: [Int] = []
            for d in 0..<t.rank { idx.append(try c.index(Int32(d + 2), "index \(d + 1)", size: t.shape[d])) }
            try writingInPlace(c, t)
            try t.setValue(try c.number(Int32(t.rank + 2), "value"), at: idx)
            lua_settop(c.L, 1); return 1
        },
        fn("index", "Tensor[]", "t[i] -> element i of a 1-d tensor, or a view of row i (slice along dimension 1); t[#t + 1] is nil, so ipairs(t) ends") { c in
            let t = try c.tensor(1)
            guard t.rank >= 1 else { throw c.fail("cannot index a 0-d tensor; use t:item()") }
            // One past the end is nil, as for a Lua array: ipairs(t) stops there. Any other index out of
            // range is an error (a typo should not read as nil).
            var ok: Int32 = 0
            if c.type(2) == LUA_TNUMBER, dbm_tointeger(c.L, 2, &ok) == lua_Integer(t.shape[0] + 1), ok != 0 { c.pushNil(); return 1 }
            let i = try c.index(2, "index", size: t.shape[0])
            if t.rank == 1 { c.push(try t.value(at: [i])) } else { try c.push(try selected(t, 0, i)) }
            return 1
        },
        fn("setindex", "Tensor[]=", "t[i] = v: set element i of a 1-d tensor, or fill/copy row i") { c in
            let t = try c.tensor(1)
            guard t.rank >= 1 else { throw c.fail("cannot index a 0-d tensor") }
            let i = try c.index(2, "index", size: t.shape[0])
            try writingInPlace(c, t)
            if t.rank == 1 { try t.setValue(try c.number(3, "value"), at: [i]); return 0 }
            let row = try t.select(0, i)
            if let src = c.tensorOrNil(3) {
                guard src.count == row.count else {
                    throw c.fail("cannot assign a tensor of shape \(formatShape(src.shape)) to a row of shape \(formatShape(row.shape))")
                }
                try row.assign(from: src)
            } else { row.fill(try c.number(3, "value")) }
            return 0
        },
        fn("item", "Tensor:item", "t:item() -> the number held by a one-element tensor") { c in
            let t = try c.tensor(1)
            guard t.count == 1 else { throw c.fail("expected a tensor with one element, got shape \(formatShape(t.shape))") }
            c.push(t.toDoubles()[0]); return 1
        },
        fn("reshape", "Tensor:reshape", "t:reshape(sizes... | {sizes}) -> same elements in a new shape (one size may be -1)") { c in
            let t = try c.tensor(1)
            var s: [Int] = []
            if c.type(2) == LUA_TTABLE {
                s = try c.integerTable(2, "sizes")
            } else {
                var i: Int32 = 2
                while !c.isNoneOrNil(i) { s.append(try c.integer(i, "size")); i += 1 }
            }
            guard !s.isEmpty || t.count == 1 else { throw c.argError(2, "sizes", expected: "sizes (integers or a table)") }
            try c.push(tracked(t) ? try nnOp { try NN.reshape(t, s) } : try t.reshaped(s)); return 1
        },
        fn("t", "Tensor:t", "t:t() -> transpose of a 2-d tensor (a view)") { c in
            let t = try c.tensor(1)
            if tracked(t) && t.rank == 2 { try c.push(try nnOp { try NN.transpose(t, 0, 1) }); return 1 }
            try c.push(try t.t()); return 1
        },
        fn("transpose", "Tensor:transpose", "t:transpose(d1, d2) -> view with dimensions d1 and d2 swapped") { c in
            let t = try c.tensor(1)
            let (d1, d2) = (try c.dim(2, rank: t.rank, "d1"), try c.dim(3, rank: t.rank, "d2"))
            try c.push(tracked(t) ? try nnOp { try NN.transpose(t, d1, d2) } : try t.transposed(d1, d2)); return 1
        },
        fn("narrow", "Tensor:narrow", "t:narrow(dim, start, length) -> view of elements start..start+length-1 along dim") { c in
            let t = try c.tensor(1)
            let d = try c.dim(2, rank: t.rank)
            let start = try c.integer(3, "start"), len = try c.integer(4, "length")
            guard start >= 1, len >= 0, len <= t.shape[d], start - 1 <= t.shape[d] - len else {   // no overflow
                throw c.fail("expected a range within 1..\(t.shape[d]) in dimension \(d + 1), got start \(start) and length \(len)")
            }
            try c.push(tracked(t) ? try nnOp { try NN.narrow(t, dim: d, start: start - 1, length: len) } : try t.narrow(d, start - 1, len)); return 1
        },
        fn("select", "Tensor:select", "t:select(dim, i) -> view of slice i along dim, that dimension removed") { c in
            let t = try c.tensor(1)
            let d = try c.dim(2, rank: t.rank)
            try c.push(try selected(t, d, try c.index(3, "index", size: t.shape[d]))); return 1
        },
        fn("index_select", "Tensor:index", "t:index(dim, {i1, i2, ...} | tensor) -> copy of the slices at those indices along dim") { c in
            let t = try c.tensor(1)
            let d = try c.dim(2, rank: t.rank)
            var idx: [Int] = []
            if let it = c.tensorOrNil(3) {
                for (k, v) in it.toDoubles().enumerated() {
                    guard let i = Int(exactly: v) else {
                        throw c.fail("argument 3 (indices): expected integer indices, entry \(k + 1) is \(formatNumber(v))")
                    }
                    idx.append(i)
                }
            }
            else if c.type(3) == LUA_TTABLE {
                for k in 0..<Int(lua_rawlen(c.L, 3)) {
                    lua_rawgeti(c.L, 3, lua_Integer(k + 1)); defer { dbm_pop(c.L, 1) }
                    var ok: Int32 = 0
                    let v = dbm_tointeger(c.L, -1, &ok)
                    guard ok != 0 else { throw c.fail("argument 3 (indices): entry \(k + 1) is \(c.describe(-1)), expected an integer") }
                    idx.append(Int(v))
                }
            } else { throw c.argError(3, "indices", expected: "a table of indices or a tensor") }
            for (k, i) in idx.enumerated() where i < 1 || i > t.shape[d] {
                throw c.fail("argument 3 (indices): expected indices in 1..\(t.shape[d]), entry \(k + 1) is \(i)")
            }
            try c.push(try t.indexSelect(d, idx.map { $0 - 1 })); return 1
        },
        fn("contiguous", "Tensor:contiguous", "t:contiguous() -> t if dense row-major, else a dense copy") { c in
            let t = try c.tensor(1)
            try c.push(tracked(t) ? try nnOp { try NN.contiguous(t) } : try t.contiguous()); return 1
        },
        fn("clone", "Tensor:clone", "t:clone() -> a dense copy") { c in try c.push(try c.tensor(1).copy()); return 1 },
        fn("to", "Tensor:to", "t:to(\"float32\" | \"float64\") -> t converted (t itself if already that dtype)") { c in
            let t = try c.tensor(1)
            let s = try c.string(2, "dtype")
            guard let d = DType(rawValue: s) else { throw c.fail("argument 2 (dtype): expected \"float32\" or \"float64\", got \"\(s)\"") }
            try c.push(try t.converted(to: d)); return 1
        },
        fn("fill", "Tensor:fill", "t:fill(v): set every element to v; returns t") { c in
            let t = try c.tensor(1)
            let v = try c.number(2, "value")
            try writingInPlace(c, t)
            t.fill(v); lua_settop(c.L, 1); return 1
        },
        fn("copy", "Tensor:copy", "t:copy(src): copy src's elements (same count) into t; returns t") { c in
            let t = try c.tensor(1), s = try c.tensor(2, "src")
            try writingInPlace(c, t)
            try t.assign(from: s); lua_settop(c.L, 1); return 1
        },
    ]

    static func pushNested(_ c: LuaCall, _ v: [Double], _ shape: [Int], _ dim: Int, _ offset: Int) throws {
        let n = shape[dim]
        if dim == shape.count - 1 {
            try v.withUnsafeBufferPointer { try c.check(dbm_push_numbers(c.L, $0.baseAddress! + offset, n)) }
            return
        }
        try c.newTable(narr: n)
        let stride = shape[(dim + 1)...].reduce(1, *)
        for i in 0..<n {
            try pushNested(c, v, shape, dim + 1, offset + i * stride)
            try c.setIndex(-2, i + 1)
        }
    }

    // ------------------------------------------------------------------ arithmetic

    static func binaryBinding(_ name: String, _ op: BinaryOp, _ symbol: String) -> Binding {
        fn(name, "dbm.\(name)", "dbm.\(name)(a, b) or a \(symbol) b: elementwise, numbers and broadcasting allowed") { c in
            let a = c.tensorOrNil(1), b = c.tensorOrNil(2)
            if tracked(a, b) { try c.push(try differentiable(c, op, a, b)); return 1 }
            switch (a, b) {
            case let (x?, y?): try c.push(try x.binary(op, y))
            case let (x?, nil): try c.push(try x.binary(op, scalar: try c.number(2, "b")))
            case let (nil, y?): try c.push(try y.binary(op, scalar: try c.number(1, "a"), scalarFirst: true))
            default: throw c.argError(1, "a", expected: "a tensor (or a number with a tensor)")
            }
            return 1
        }
    }

    static func unaryBinding(_ name: String, _ op: UnaryOp) -> Binding {
        fn(name, "dbm.\(name)", "dbm.\(name)(t) or t:\(name)() -> elementwise \(name)") { c in
            let t = try c.tensor(1)
            if tracked(t) { try c.push(try differentiable(c, op, t)); return 1 }
            try c.push(try t.unary(op)); return 1
        }
    }

    static let arithmetic: [Binding] = [
        binaryBinding("add", .add, "+"), binaryBinding("sub", .sub, "-"), binaryBinding("mul", .mul, "*"),
        binaryBinding("div", .div, "/"), binaryBinding("pow", .pow, "^"), binaryBinding("maximum", .max, "max"),
        binaryBinding("minimum", .min, "min"),
        unaryBinding("neg", .neg), unaryBinding("exp", .exp), unaryBinding("log", .log), unaryBinding("sqrt", .sqrt),
        unaryBinding("abs", .abs), unaryBinding("square", .square), unaryBinding("sign", .sign),
        unaryBinding("tanh", .tanh), unaryBinding("sigmoid", .sigmoid), unaryBinding("relu", .relu),
        fn("clamp", "dbm.clamp", "dbm.clamp(t, min, max) -> elements limited to [min, max] (nil: no limit)") { c in
            let t = try c.tensor(1)
            let (lo, hi) = (try c.optNumber(2, "min", -.infinity), try c.optNumber(3, "max", .infinity))
            if tracked(t) { try c.push(try nnOp { try NN.clamp(t, min: lo, max: hi) }); return 1 }
            try c.push(try t.clamped(min: lo, max: hi)); return 1
        },
        fn("matmul", "dbm.matmul", "dbm.matmul(a, b) or a:matmul(b) -> matrix product (cblas; 1-d, 2-d and batched 3-d)") { c in
            let a = try c.tensor(1, "a"), b = try c.tensor(2, "b")
            if tracked(a, b) { try c.push(try nnOp { try NN.matmul(a, b) }); return 1 }
            try c.push(try a.matmul(b)); return 1
        },
    ]

    // ------------------------------------------------------------------ reductions and order

    static func reduceBinding(_ name: String, _ op: ReduceOp, _ what: String) -> Binding {
        fn(name, "dbm.\(name)", "t:\(name)([dim]) -> \(what) of all elements (a number; a 0-d tensor when t is on the gradient tape), or along dim (a tensor)") { c in
            let t = try c.tensor(1)
            if (op == .sum || op == .mean) && tracked(t) {   // on the tape: a tensor (0-d without dim), not a number
                let d = c.isNoneOrNil(2) ? nil : try c.dim(2, rank: t.rank)
                try c.push(try nnOp { op == .sum ? try NN.sum(t, dim: d) : try NN.mean(t, dim: d) }); return 1
            }
            if c.isNoneOrNil(2) {
                let r = try t.reduce(op)
                c.push(r.toDoubles()[0] + (op == .argmax || op == .argmin ? 1 : 0)); return 1
            }
            let r = try t.reduce(op, dim: try c.dim(2, rank: t.rank))
            try c.push(op == .argmax || op == .argmin ? try r.binary(.add, scalar: 1) : r); return 1
        }
    }

    static let reductions: [Binding] = [
        reduceBinding("sum", .sum, "sum"), reduceBinding("mean", .mean, "mean"), reduceBinding("argmax", .argmax, "1-based index of the maximum"),
        reduceBinding("argmin", .argmin, "1-based index of the minimum"), reduceBinding("norm", .norm, "Euclidean (Frobenius) norm"),
        fn("var", "dbm.var", "t:var([dim] [, {ddof=0}]) -> variance (divided by n - ddof) of all elements or along dim") { c in
            let t = try c.tensor(1)
            let hasDim = c.type(2) == LUA_TNUMBER
            let o = try c.options(hasDim ? 3 : 2, known: ["ddof"])
            let ddof = try c.optionInteger(o, "ddof") ?? 0
            if !hasDim { c.push(try t.reduce(.variance, ddof: ddof).toDoubles()[0]); return 1 }
            try c.push(try t.reduce(.variance, dim: try c.dim(2, rank: t.rank), ddof: ddof)); return 1
        },
        fn("max", "dbm.max", "t:max([dim]) -> largest element; along dim: values and 1-based indices") { c in try maxMin(c, .max, .argmax) },
        fn("min", "dbm.min", "t:min([dim]) -> smallest element; along dim: values and 1-based indices") { c in try maxMin(c, .min, .argmin) },
        fn("sort", "dbm.sort", "dbm.sort(t [, {descending=false}]) -> sorted values, 1-based source indices (along the last dim)") { c in
            let t = try c.tensor(1)
            let desc = try c.optionBool(try c.options(2, known: ["descending"]), "descending") ?? false
            let (v, idx) = try t.sorted(descending: desc)
            try c.push(v)
            try c.push(try Tensor.from(idx.map { Double($0 + 1) }, shape: t.shape, dtype: .float64)); return 2
        },
        fn("histogram", "dbm.histogram", "dbm.histogram(t, bins [, lo, hi]) -> counts, edges (bins+1); lo/hi default to min/max") { c in
            let t = try c.tensor(1)
            let bins = try c.integer(2, "bins")
            var lo = try c.optNumber(3, "lo", .nan), hi = try c.optNumber(4, "hi", .nan)
            if lo.isNaN || hi.isNaN {
                guard t.count > 0 else { throw c.fail("cannot choose a range for an empty tensor: give lo and hi") }
                let v = t.toDoubles().filter { $0.isFinite }
                if lo.isNaN { lo = v.min() ?? 0 }
                if hi.isNaN { hi = v.max() ?? 1 }
                if lo == hi { hi = lo + 1 }
            }
            let (counts, edges) = try t.histogram(bins: bins, lo: lo, hi: hi)
            try c.push(counts); try c.push(edges); return 2
        },
    ]

    static func maxMin(_ c: LuaCall, _ op: ReduceOp, _ argOp: ReduceOp) throws -> Int32 {
        let t = try c.tensor(1)
        if c.isNoneOrNil(2) { c.push(try t.reduce(op).toDoubles()[0]); return 1 }
        let d = try c.dim(2, rank: t.rank)
        try c.push(try t.reduce(op, dim: d))
        try c.push(try t.reduce(argOp, dim: d).binary(.add, scalar: 1)); return 2
    }

    // ------------------------------------------------------------------ linear algebra

    static let linalg: [Binding] = [
        fn("gram", "dbm.gram", "dbm.gram(W [, {dtype=\"float64\"}]) -> WᵀW if W has at least as many rows as columns, else WWᵀ (syrk)") { c in
            let w = try c.tensor(1, "W")
            try c.push(try Linalg.gram(w, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float64))); return 1
        },
        fn("eigvalsh", "dbm.eigvalsh", "dbm.eigvalsh(A [, {dtype=\"float64\"}]) -> ascending eigenvalues of symmetric A (LAPACK syevd)") { c in
            let a = try c.tensor(1, "A")
            try c.push(try Linalg.eigvalsh(a, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float64))); return 1
        },
        fn("gram_levels", "dbm.gram_levels",
           "dbm.gram_levels({W1, W2, ...}) -> levels, errors: levels[i] = eigvalsh(gram(Wi)) (Float64, ascending) for each matrix, "
           + "small ones computed concurrently on all cores, large ones one at a time with BLAS threads; errors[i] says why Wi has none "
           + "(a non-finite entry, ...), levels[i] is then nil") { c in
            guard c.type(1) == LUA_TTABLE, dbm_object_kind(c.L, 1) == 0 else {
                throw c.argError(1, "matrices", expected: "an array of 2-D tensors")
            }
            let n = Int(lua_rawlen(c.L, 1))
            var matrices: [Tensor] = []
            for i in 1...max(1, n) where n > 0 {
                lua_rawgeti(c.L, 1, lua_Integer(i))
                defer { dbm_pop(c.L, 1) }
                guard let t = c.tensorOrNil(-1), t.rank == 2 else {
                    throw c.fail("argument 1 (matrices): entry \(i) is \(c.describe(-1)), expected a 2-D tensor")
                }
                matrices.append(t)
            }
            let results = Linalg.gramLevels(matrices)
            try c.newTable(narr: n)
            for (i, r) in results.enumerated() { if case .success(let t) = r { try c.push(t); try c.setIndex(-2, i + 1) } }
            try c.newTable(narr: n)
            for (i, r) in results.enumerated() { if case .failure(let e) = r { try c.push(e.message); try c.setIndex(-2, i + 1) } }
            return 2
        },
        fn("eigh", "dbm.eigh", "dbm.eigh(A [, {dtype=}]) -> ascending eigenvalues, eigenvectors as columns (syevd)") { c in
            let a = try c.tensor(1, "A")
            let (v, vec) = try Linalg.eigh(a, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float64))
            try c.push(v); try c.push(vec); return 2
        },
        fn("svdvals", "dbm.svdvals", "dbm.svdvals(W [, {dtype=}]) -> singular values, descending (LAPACK gesdd)") { c in
            let w = try c.tensor(1, "W")
            try c.push(try Linalg.svdvals(w, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float64))); return 1
        },
        fn("svd", "dbm.svd", "dbm.svd(W [, {dtype=}]) -> U, S, Vᵀ with W = U·diag(S)·Vᵀ (thin; S descending)") { c in
            let w = try c.tensor(1, "W")
            let r = try Linalg.svd(w, dtype: try c.optionDType(try c.options(2, known: ["dtype"]), default: .float64))
            try c.push(r.u); try c.push(r.s); try c.push(r.vt); return 3
        },
    ]

    // ------------------------------------------------------------------ files

    static let files: [Binding] = [
        fn("load_npy", "dbm.load_npy", "dbm.load_npy(path) -> tensor (float32 stays float32; other types load as float64)") { c in
            try c.push(try Npy.read(path: try c.string(1, "path"))); return 1
        },
        fn("save_npy", "dbm.save_npy", "dbm.save_npy(path, t [, {dtype=\"float32\"|\"float64\"|\"int32\"|\"int64\"}]): write numpy .npy atomically") { c in
            let path = try c.string(1, "path"), t = try c.tensor(2)
            let o = try c.options(3, known: ["dtype"])
            let kind: NpyWriteType
            switch try c.optionString(o, "dtype") {
            case nil: kind = .same
            case "float32": kind = .float32
            case "float64": kind = .float64
            case "int32": kind = .int32
            case "int64": kind = .int64
            case let s?: throw c.fail("option 'dtype': expected \"float32\", \"float64\", \"int32\" or \"int64\", got \"\(s)\"")
            }
            try Npy.write(t, path: path, as: kind); return 0
        },
        fn("json_encode", "dbm.json_encode", "dbm.json_encode(value) -> one-line JSON text (tables, numbers, strings, booleans, tensors)") { c in
            try c.push(try LuaJSON.value(c, 1, depth: 0).encoded()); return 1
        },
        fn("json_decode", "dbm.json_decode", "dbm.json_decode(text) -> Lua value (JSON null becomes nil)") { c in
            try LuaJSON.push(c, try JSONValue.parse(try c.string(1, "text"))); return 1
        },
        fn("jsonl_open", "dbm.jsonl", "dbm.jsonl(path [, {append=true}]) -> writer; w:write(table) appends one flushed line") { c in
            let path = try c.string(1, "path")
            let append = try c.optionBool(try c.options(2, known: ["append"]), "append") ?? true
            try c.push(object: try JSONLinesWriter(path: path, append: append), kind: Int32(DBM_KIND_WRITER)); return 1
        },
        fn("jsonl_write", "Writer:write", "w:write(table): append the table as one JSON line and flush") { c in
            let w = try c.object(1, kind: Int32(DBM_KIND_WRITER), "writer", JSONLinesWriter.self)
            guard c.type(2) == LUA_TTABLE else { throw c.argError(2, "record", expected: "a table") }
            try w.write(try LuaJSON.value(c, 2, depth: 0)); return 0
        },
        fn("jsonl_close", "Writer:close", "w:close(): close the file") { c in
            try c.object(1, kind: Int32(DBM_KIND_WRITER), "writer", JSONLinesWriter.self).close(); return 0
        },
    ]

    // ------------------------------------------------------------------ process

    /// Before an in-place write to t: a tensor computed on the gradient tape is refused (its gradient would
    /// no longer be that of what it holds); any other one gets a new version of its storage, which its views
    /// share, so that a recorded op that saved it refuses to differentiate with the changed values, and a
    /// tape tensor on the same storage (t written through t:detach() or a view taken under dbm.no_grad)
    /// makes a backward that reaches it raise (GradNode.checkSavedVersions, GradNode.outputVersion).
    static func writingInPlace(_ c: LuaCall, _ t: Tensor) throws {
        if let node = t.gradFn as? GradNode {
            throw c.fail("expected a tensor off the gradient tape, got one computed by '\(node.op)' (an in-place write would make "
                + "its gradient wrong): write into a copy (t:clone()), or compute it under dbm.no_grad")
        }
        t.storage.bumpVersion()
    }

    static let misc: [Binding] = [
        fn("memory", "dbm.memory", "dbm.memory() -> {rss=, peak_rss=, tensor_bytes=, peak_tensor_bytes=, limit=} in bytes") { c in
            let rss = MemoryLimit.residentSet()
            try c.newTable(nrec: 5)
            for (k, v) in [("rss", rss.current), ("peak_rss", rss.peak), ("tensor_bytes", MemoryLimit.live),
                           ("peak_tensor_bytes", MemoryLimit.peak), ("limit", MemoryLimit.limit)] {
                c.push(v); try c.setField(-2, k)
            }
            return 1
        },
        fn("write_file", "dbm.write_file", "dbm.write_file(path, text): writes text to path atomically (a reader sees the old "
           + "file or the new one), through a symbolic link to its target; refuses FIFOs, devices and directories") { c in
            let path = try c.string(1, "path")
            var len = 0
            guard let p = dbm_tolstring_raw(c.L, 2, &len) else { throw c.argError(2, "text", expected: "a string") }
            try writeFileAtomically(path, UnsafeRawBufferPointer(start: p, count: len))
            return 0
        },
        fn("_exit", "dbm._exit", "dbm._exit(status): flush C's streams and end the process at once (os.exit after the exit hooks)") { c in
            let status = try c.integer(1, "status")
            fflush(nil)
            _exit(Int32(truncatingIfNeeded: status))
        },
        fn("mkdir", "dbm.mkdir", "dbm.mkdir(path): creates the folder and its missing parents (mkdir -p); an error says which part failed and why") { c in
            try makeDirectories(try c.string(1, "path")); return 0
        },
        fn("_lock", "dbm._lock", "dbm._lock(path): an exclusive lock on the file path (created if need be), held until "
           + "dbm._unlock(path) or the end of the process; an error naming the holder when another process has it") { c in
            let path = try c.string(1, "path")
            if c.context.locks[path] == nil { c.context.locks[path] = try FileLock(path: path) }
            return 0
        },
        fn("_unlock", "dbm._unlock", "dbm._unlock(path): releases a lock dbm._lock took") { c in
            let path = try c.string(1, "path")
            c.context.locks.removeValue(forKey: path)?.release()
            return 0
        },
        fn("blas_info", "dbm.blas_info", "dbm.blas_info() -> {library=, version=, core=, threads=, source=, openblas_core=, config=}: "
           + "the BLAS kernel in use and who chose it (source: 'openblas', 'user' through OPENBLAS_CORETYPE, or 'dbm-lua')") { c in
            let b = BLASInfo.current
            try c.newTable(nrec: 7)
            for (k, v) in [("library", b.library), ("version", b.version), ("core", b.core), ("source", b.source),
                           ("openblas_core", b.openblasCore), ("config", b.config)] {
                try c.push(v); try c.setField(-2, k)
            }
            c.push(b.threads); try c.setField(-2, "threads")
            return 1
        },
        fn("set_memory_limit", "dbm.set_memory_limit", "dbm.set_memory_limit(bytes): cap on the bytes all tensors may hold at once") { c in
            let b = try c.integer(1, "bytes")
            guard b > 0 else { throw c.fail("argument 1 (bytes): expected a positive number of bytes, got \(b)") }
            MemoryLimit.limit = b; return 0
        },
        fn("clock", "dbm.clock", "dbm.clock() -> wall-clock seconds (monotonic), for timing") { c in
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            c.push(Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9); return 1
        },
    ]
}
