import CLua
import CLua54
import DBMCore

/// Thrown by bridge functions: becomes a Lua error "name: message" raised by the C trampoline.
struct LuaFailure: Error { let message: String }

/// The arguments and results of one call from Lua into Swift. Reads with non-raising API calls only;
/// pushes through the protected helpers of the C shim (DESIGN §6).
struct LuaCall {
    let L: OpaquePointer
    let tag: Int   // which binding is running (its name is only needed for error messages)

    var name: String { Bindings.entries[tag].luaName }

    var top: Int32 { lua_gettop(L) }
    var context: BridgeContext { BridgeContext.of(L) }

    func fail(_ message: String) -> LuaFailure { LuaFailure(message: message) }

    // ------------------------------------------------------------------ reading

    func type(_ i: Int32) -> Int32 { lua_type(L, i) }
    func isNoneOrNil(_ i: Int32) -> Bool { lua_type(L, i) <= 0 }

    /// How a value is described in error messages: "a number (3.5)", "nil", "a tensor of shape (3, 4)".
    func describe(_ i: Int32) -> String {
        switch lua_type(L, i) {
        case LUA_TNONE: return "nothing"
        case LUA_TNIL: return "nil"
        case LUA_TBOOLEAN: return "a boolean (\(lua_toboolean(L, i) != 0))"
        case LUA_TNUMBER: return "a number (\(formatNumber(dbm_tonumber(L, i, nil))))"
        case LUA_TSTRING:
            var len = 0
            let s = dbm_tolstring_raw(L, i, &len).map { String(cString: $0) } ?? ""
            return "a string (\"\(s.count > 40 ? String(s.prefix(40)) + "..." : s)\")"
        case LUA_TTABLE: return "a table"
        case LUA_TFUNCTION: return "a function"
        case LUA_TUSERDATA:
            if let t = tensorOrNil(i) { return "a \(t.dtype.rawValue) tensor of shape \(formatShape(t.shape))" }
            switch dbm_object_kind(L, i) {
            case Int32(DBM_KIND_GENERATOR): return "a generator"
            case Int32(DBM_KIND_WRITER): return "a writer"
            case Int32(DBM_KIND_OPTIMIZER): return "an optimizer"
            case Int32(DBM_KIND_DATASET): return "a dataset"
            case Int32(DBM_KIND_MODEL): return "a model"
            case Int32(DBM_KIND_APPENDER): return "a NpyAppender"
            default: return "a userdata"
            }
        default: return String(cString: lua_typename(L, lua_type(L, i)))
        }
    }

    func argError(_ i: Int32, _ what: String, expected: String) -> LuaFailure {
        fail("argument \(i) (\(what)): expected \(expected), got \(describe(i))")
    }

    func tensorOrNil(_ i: Int32) -> Tensor? {
        guard let p = dbm_toobject(L, i, Int32(DBM_KIND_TENSOR)) else { return nil }
        return Unmanaged<Tensor>.fromOpaque(p).takeUnretainedValue()
    }

    func tensor(_ i: Int32, _ what: String = "tensor") throws -> Tensor {
        guard let t = tensorOrNil(i) else { throw argError(i, what, expected: "a tensor") }
        return t
    }

    func object<T: AnyObject>(_ i: Int32, kind: Int32, _ what: String, _: T.Type) throws -> T {
        guard let p = dbm_toobject(L, i, kind) else { throw argError(i, what, expected: "a \(what)") }
        return Unmanaged<T>.fromOpaque(p).takeUnretainedValue()
    }

    func number(_ i: Int32, _ what: String) throws -> Double {
        var ok: Int32 = 0
        let v = dbm_tonumber(L, i, &ok)
        guard ok != 0, lua_type(L, i) == LUA_TNUMBER else { throw argError(i, what, expected: "a number") }
        return v
    }

    func optNumber(_ i: Int32, _ what: String, _ def: Double) throws -> Double {
        isNoneOrNil(i) ? def : try number(i, what)
    }

    func integer(_ i: Int32, _ what: String) throws -> Int {
        var ok: Int32 = 0
        let v = dbm_tointeger(L, i, &ok)
        guard ok != 0, lua_type(L, i) == LUA_TNUMBER else { throw argError(i, what, expected: "an integer") }
        return Int(v)
    }

    func optInteger(_ i: Int32, _ what: String, _ def: Int) throws -> Int {
        isNoneOrNil(i) ? def : try integer(i, what)
    }

    /// A 1-based Lua index turned 0-based, checked against 1...size (negative counts from the end).
    func index(_ i: Int32, _ what: String, size: Int) throws -> Int {
        let k = try integer(i, what)
        let z = k < 0 ? size + k : k - 1
        guard z >= 0, z < size else {
            throw fail("argument \(i) (\(what)): expected an index in 1..\(size) (or -\(size)..-1), got \(k)")
        }
        return z
    }

    /// A 1-based dimension number turned 0-based (negative counts from the end).
    func dim(_ i: Int32, rank: Int, _ what: String = "dim") throws -> Int {
        let k = try integer(i, what)
        let z = k < 0 ? rank + k : k - 1
        guard z >= 0, z < rank else {
            throw fail("argument \(i) (\(what)): expected a dimension in 1..\(rank), got \(k)")
        }
        return z
    }

    func string(_ i: Int32, _ what: String) throws -> String {
        var len = 0
        guard let p = dbm_tolstring_raw(L, i, &len) else { throw argError(i, what, expected: "a string") }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    func optString(_ i: Int32, _ what: String) throws -> String? {
        isNoneOrNil(i) ? nil : try string(i, what)
    }

    func boolean(_ i: Int32) -> Bool { lua_toboolean(L, i) != 0 }

    /// Sizes given either as integers from argument `first` on, or as one table {r, c, ...}.
    /// Returns the shape and the index of the first argument after it.
    /// The entries 1...#t of the table at i, each an integer (or an integral float).
    func integerTable(_ i: Int32, _ what: String) throws -> [Int] {
        let n = Int(lua_rawlen(L, i))
        var s: [Int] = []
        for k in 1...max(n, 1) where n > 0 {
            lua_rawgeti(L, i, lua_Integer(k))
            defer { dbm_pop(L, 1) }
            var ok: Int32 = 0
            let v = dbm_tointeger(L, -1, &ok)
            guard ok != 0, lua_type(L, -1) == LUA_TNUMBER else {
                throw fail("argument \(i) (\(what)): expected a table of integer sizes, entry \(k) is \(describe(-1))")
            }
            s.append(Int(v))
        }
        return s
    }

    func shape(from first: Int32, _ what: String = "size") throws -> (shape: [Int], next: Int32) {
        if lua_type(L, first) == LUA_TTABLE && dbm_object_kind(L, first) == 0 {
            return (try checkedShape(try integerTable(first, what), first), first + 1)
        }
        var s: [Int] = []
        var i = first
        while lua_type(L, i) == LUA_TNUMBER {
            s.append(try integer(i, what))
            i += 1
        }
        if s.isEmpty { throw argError(first, what, expected: "sizes (integers or a table of integers)") }
        return (try checkedShape(s, first), i)
    }

    private func checkedShape(_ s: [Int], _ i: Int32) throws -> [Int] {
        if let bad = s.first(where: { $0 < 0 }) {
            throw fail("argument \(i) (size): expected non-negative sizes, got \(bad) in \(formatShape(s))")
        }
        return s
    }

    // ------------------------------------------------------------------ options tables

    /// Reads field `key` of the options table at i (absent table or field: nil). Leaves the stack as it was.
    func option<T>(_ i: Int32, _ key: String, _ read: (Int32) throws -> T) throws -> T? {
        guard lua_type(L, i) == LUA_TTABLE else { return nil }
        if dbm_get_field(L, i, key) != 0 { throw fail(popString() ?? "out of memory") }
        defer { dbm_pop(L, 1) }
        if lua_type(L, -1) <= 0 { return nil }
        return try read(lua_gettop(L))
    }

    func optionNumber(_ i: Int32, _ key: String) throws -> Double? {
        try option(i, key) { j in
            guard lua_type(L, j) == LUA_TNUMBER else { throw fail("option '\(key)': expected a number, got \(describe(j))") }
            return dbm_tonumber(L, j, nil)
        }
    }

    func optionInteger(_ i: Int32, _ key: String) throws -> Int? {
        try option(i, key) { j in
            var ok: Int32 = 0
            let v = dbm_tointeger(L, j, &ok)
            guard ok != 0, lua_type(L, j) == LUA_TNUMBER else { throw fail("option '\(key)': expected an integer, got \(describe(j))") }
            return Int(v)
        }
    }

    func optionString(_ i: Int32, _ key: String) throws -> String? {
        try option(i, key) { j in
            var len = 0
            guard let p = dbm_tolstring_raw(L, j, &len) else { throw fail("option '\(key)': expected a string, got \(describe(j))") }
            return String(cString: p) as String
        }
    }

    func optionBool(_ i: Int32, _ key: String) throws -> Bool? {
        try option(i, key) { j in
            guard lua_type(L, j) == LUA_TBOOLEAN else { throw fail("option '\(key)': expected true or false, got \(describe(j))") }
            return lua_toboolean(L, j) != 0
        }
    }

    func optionDType(_ i: Int32, _ key: String = "dtype", default def: DType) throws -> DType {
        guard let s = try optionString(i, key) else { return def }
        guard let d = DType(rawValue: s) else {
            throw fail("option '\(key)': expected \"float32\" or \"float64\", got \"\(s)\"")
        }
        return d
    }

    /// The options table at i must be a table or absent; with `known`, a key it does not list is an
    /// error naming the ones it does (a misspelt option is never silently ignored).
    func options(_ i: Int32, known: [String]? = nil) throws -> Int32 {
        if isNoneOrNil(i) { return i }
        guard lua_type(L, i) == LUA_TTABLE && dbm_object_kind(L, i) == 0 else {
            throw argError(i, "options", expected: "a table of options")
        }
        guard let known else { return i }
        let t = lua_absindex(L, i)
        lua_pushnil(L)
        while lua_next(L, t) != 0 {   // raw traversal of a table we do not change: never raises
            let key = lua_type(L, -2) == LUA_TSTRING ? (dbm_tolstring_raw(L, -2, nil).map { String(cString: $0) } ?? "") : nil
            if key == nil || !known.contains(key!) {
                let shown = key.map { "'\($0)'" } ?? describe(-2)
                dbm_pop(L, 2)
                throw fail("argument \(i) (options): unknown option \(shown) (known: \(known.joined(separator: ", ")))")
            }
            dbm_pop(L, 1)
        }
        return i
    }

    // ------------------------------------------------------------------ pushing

    func popString() -> String? {
        defer { dbm_pop(L, 1) }
        var len = 0
        guard let p = dbm_tolstring_raw(L, -1, &len) else { return nil }
        return String(cString: p)
    }

    func check(_ status: Int32) throws {
        if status != 0 { throw fail(popString() ?? "out of memory") }
    }

    func push(_ v: Double) { lua_pushnumber(L, v) }
    func push(_ v: Int) { lua_pushinteger(L, lua_Integer(v)) }
    func push(_ v: Bool) { lua_pushboolean(L, v ? 1 : 0) }
    func pushNil() { lua_pushnil(L) }

    func push(_ s: String) throws {
        try check(dbm_push_string(L, s, s.utf8.count))
    }

    /// Tells the collector about the bytes the tensor shows, not its whole storage: a view (a row of a
    /// big buffer, say) holds no new memory, and counting the buffer at every view ran a full GC cycle
    /// per view, a cost that grew with the buffer (the recorder's rows: O(records²) over a run).
    func push(_ t: Tensor) throws {
        let p = Unmanaged.passRetained(t).toOpaque()
        var callerKeeps: Int32 = 1
        let st = dbm_push_object(L, p, Int32(DBM_KIND_TENSOR), min(t.storage.byteCount, t.byteCount), &callerKeeps)
        if callerKeeps != 0 { Unmanaged<Tensor>.fromOpaque(p).release() }
        try check(st)
    }

    func push(object: AnyObject, kind: Int32) throws {
        let p = Unmanaged.passRetained(object).toOpaque()
        var callerKeeps: Int32 = 1
        let st = dbm_push_object(L, p, kind, 0, &callerKeeps)
        if callerKeeps != 0 { Unmanaged<AnyObject>.fromOpaque(p).release() }
        try check(st)
    }

    func push(numbers: [Double]) throws {
        try numbers.withUnsafeBufferPointer { try check(dbm_push_numbers(L, $0.baseAddress, $0.count)) }
    }

    func push(integers: [Int]) throws {
        let v = integers.map { Int64($0) }
        try v.withUnsafeBufferPointer { try check(dbm_push_integers(L, $0.baseAddress, $0.count)) }
    }

    func newTable(narr: Int = 0, nrec: Int = 0) throws { try check(dbm_new_table(L, Int32(narr), Int32(nrec))) }
    func setField(_ table: Int32, _ key: String) throws { try check(dbm_set_field(L, table, key)) }
    func setIndex(_ table: Int32, _ i: Int) throws { try check(dbm_set_index(L, table, lua_Integer(i))) }
}

func formatNumber(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
}
