import CLua
import CLua54
import DBMCore

/// Lua values to and from JSONValue. Object keys come out in a fixed order: the keys the run files
/// lead with (DESIGN §8), then the rest sorted, so lines read the same on every run.
enum LuaJSON {
    static let leadingKeys = ["summary", "step", "time", "name", "matrix", "diagnostic", "shape"]

    static func value(_ c: LuaCall, _ idx: Int32, depth: Int) throws -> JSONValue {
        let L = c.L
        let i = lua_absindex(L, idx)
        switch lua_type(L, i) {
        case LUA_TNIL, LUA_TNONE: return .null
        case LUA_TBOOLEAN: return .bool(lua_toboolean(L, i) != 0)
        case LUA_TNUMBER:
            if lua_isinteger(L, i) != 0 { return .integer(Int(dbm_tointeger(L, i, nil))) }
            return .number(dbm_tonumber(L, i, nil))
        case LUA_TSTRING: return .string(try c.string(i, "value"))
        case LUA_TUSERDATA:
            if let t = c.tensorOrNil(i) { return tensorJSON(t.toDoubles(), t.shape, 0, 0) }
            throw c.fail("cannot encode \(c.describe(i)) as JSON")
        case LUA_TTABLE:
            if depth > 64 { throw c.fail("cannot encode a table nested more than 64 levels (a cycle?) as JSON") }
            var entries: [(key: String, intKey: Int?, value: JSONValue)] = []
            lua_pushnil(L)
            while lua_next(L, i) != 0 {
                let v = try value(c, -1, depth: depth + 1)
                let key: String, intKey: Int?
                switch lua_type(L, -2) {
                case LUA_TSTRING: key = try c.string(-2, "key"); intKey = nil
                case LUA_TNUMBER:
                    if lua_isinteger(L, -2) != 0 { let k = Int(dbm_tointeger(L, -2, nil)); key = String(k); intKey = k }
                    else { key = formatNumber(dbm_tonumber(L, -2, nil)); intKey = nil }
                default:
                    dbm_pop(L, 2)
                    throw c.fail("cannot encode a table with a key of type \(String(cString: lua_typename(L, lua_type(L, -2)))) as JSON")
                }
                entries.append((key, intKey, v))
                dbm_pop(L, 1)
            }
            let n = entries.count
            let ints = entries.compactMap(\.intKey)
            if n == 0 { return .array([]) }
            // 1 and "1" (or 1.5 and "1.5") would both become the key "1": JSON objects have one value a key.
            var seen = Set<String>()
            for e in entries where !seen.insert(e.key).inserted {
                throw c.fail("cannot encode a table with two keys that are both \"\(e.key)\" in JSON (a number and a string)")
            }
            if ints.count == n, Set(ints) == Set(1...n) {
                return .array(entries.sorted { $0.intKey! < $1.intKey! }.map(\.value))
            }
            let ordered = entries.sorted { a, b in
                let ia = leadingKeys.firstIndex(of: a.key) ?? Int.max, ib = leadingKeys.firstIndex(of: b.key) ?? Int.max
                return ia != ib ? ia < ib : a.key < b.key
            }
            return .object(ordered.map { ($0.key, $0.value) })
        default:
            throw c.fail("cannot encode \(c.describe(i)) as JSON")
        }
    }

    static func tensorJSON(_ v: [Double], _ shape: [Int], _ dim: Int, _ offset: Int) -> JSONValue {
        if shape.isEmpty { return .number(v[0]) }
        let stride = shape[(dim + 1)...].reduce(1, *)
        if dim == shape.count - 1 { return .array((0..<shape[dim]).map { .number(v[offset + $0]) }) }
        return .array((0..<shape[dim]).map { tensorJSON(v, shape, dim + 1, offset + $0 * stride) })
    }

    static func push(_ c: LuaCall, _ v: JSONValue) throws {
        switch v {
        case .null: c.pushNil()
        case .bool(let b): c.push(b)
        case .number(let d): c.push(d)
        case .integer(let i): c.push(i)
        case .string(let s): try c.push(s)
        case .array(let a):
            try c.newTable(narr: a.count)
            for (k, e) in a.enumerated() { try push(c, e); try c.setIndex(-2, k + 1) }
        case .object(let o):
            try c.newTable(nrec: o.count)
            for (k, e) in o { try push(c, e); try c.setField(-2, k) }
        }
    }
}
