import CLua
import CLua54
import DBMCore

/// Checkpoints in Hugging Face's safetensors format (DESIGN §8): `dbm.load_safetensors` and
/// `dbm.save_safetensors`. The format itself is DBMCore's Safetensors.
extension Bindings {
    static let safetensors: [Binding] = [
        fn("load_safetensors", "dbm.load_safetensors",
           "dbm.load_safetensors(path) -> tensors (name -> tensor), metadata (string -> string), names (in file order); "
           + "F32/F16/BF16 load as float32, F64 and integers as float64") { c in
            let path = try c.string(1, "path")
            let (tensors, metadata) = try Safetensors.read(path: path)
            for (name, _) in tensors where name.utf8.contains(0) {
                throw c.fail("file '\(path)': the tensor name \(JSONValue.string(name).encoded()) holds a NUL character, "
                    + "which a Lua table key from here cannot")
            }
            for key in metadata.keys where key.utf8.contains(0) {
                throw c.fail("file '\(path)': the metadata key \(JSONValue.string(key).encoded()) holds a NUL character, "
                    + "which a Lua table key from here cannot")
            }
            try c.newTable(nrec: tensors.count)
            for (name, t) in tensors { try c.push(t); try c.setField(-2, name) }
            try c.newTable(nrec: metadata.count)
            for (k, v) in metadata { try c.push(v); try c.setField(-2, k) }
            try c.newTable(narr: tensors.count)
            for (i, (name, _)) in tensors.enumerated() { try c.push(name); try c.setIndex(-2, i + 1) }
            return 3
        },
        fn("safetensors_header", "dbm.safetensors_header",
           "dbm.safetensors_header(path) -> entries, metadata, file_size: the checked header only, no tensor data read; "
           + "entries in data order, each {name =, dtype = \"F32\"|\"BF16\"|..., shape = {...}, offset = byte offset in the file, nbytes =}; "
           + "read one tensor with dbm.safetensors_tensor") { c in
            let path = try c.string(1, "path")
            let header = try Safetensors.readHeader(path: path)
            try c.newTable(narr: header.entries.count)
            for (i, e) in header.entries.enumerated() {
                try c.newTable(nrec: 5)
                try c.push(e.name); try c.setField(-2, "name")
                try c.push(e.type.rawValue); try c.setField(-2, "dtype")
                try c.push(integers: e.shape); try c.setField(-2, "shape")
                c.push(header.dataStart + e.begin); try c.setField(-2, "offset")
                c.push(e.end - e.begin); try c.setField(-2, "nbytes")
                try c.setIndex(-2, i + 1)
            }
            try c.newTable(nrec: header.metadata.count)
            for (k, v) in header.metadata.sorted(by: { $0.key < $1.key }) {
                guard !k.utf8.contains(0) else {
                    throw c.fail("file '\(path)': the metadata key \(JSONValue.string(k).encoded()) holds a NUL character, which a Lua table key from here cannot")
                }
                try c.push(v); try c.setField(-2, k)
            }
            c.push(header.fileSize)
            return 3
        },
        fn("safetensors_tensor", "dbm.safetensors_tensor",
           "dbm.safetensors_tensor(path, entry, file_size) -> tensor: one tensor of a header read by dbm.safetensors_header "
           + "(entry = {dtype =, shape =, offset =}), read with pread (never mapped); refused when the file no longer has file_size bytes. "
           + "F32/F16/BF16 load as float32, F64 and integers as float64") { c in
            let path = try c.string(1, "path")
            guard c.type(2) == LUA_TTABLE, dbm_object_kind(c.L, 2) == 0 else {
                throw c.argError(2, "entry", expected: "a table {dtype =, shape =, offset =} from dbm.safetensors_header")
            }
            let fileSize = try c.integer(3, "file_size")
            let dtypeName = try c.optionString(2, "dtype")
            guard let dtypeName, let type = Safetensors.ElementType(rawValue: dtypeName) else {
                throw c.fail("argument 2 (entry): field 'dtype' is \(dtypeName.map { "'\($0)'" } ?? "missing"), expected a safetensors dtype such as \"F32\"")
            }
            guard let shape = try c.option(2, "shape", { try c.integerTable($0, "shape") }) else {
                throw c.fail("argument 2 (entry): field 'shape' is missing, expected an array of sizes")
            }
            guard let offset = try c.optionInteger(2, "offset") else {
                throw c.fail("argument 2 (entry): field 'offset' is missing, expected a byte offset")
            }
            let name = try c.optionString(2, "name") ?? "?"
            try c.push(try Safetensors.readTensor(path: path, type: type, shape: shape, offset: offset, fileSize: fileSize, name: name))
            return 1
        },
        fn("save_safetensors", "dbm.save_safetensors",
           "dbm.save_safetensors(path, tensors [, metadata]): write a safetensors file atomically; tensors is a table "
           + "name -> tensor (written in sorted name order) or an array of {name, tensor} pairs (written in that order); "
           + "metadata maps strings to strings (numbers are refused: convert them with tostring)") { c in
            let path = try c.string(1, "path")
            guard c.type(2) == LUA_TTABLE, dbm_object_kind(c.L, 2) == 0 else {
                throw c.argError(2, "tensors", expected: "a table name -> tensor or an array of {name, tensor} pairs")
            }
            let tensors = try readTensorList(c, 2)
            var metadata: [String: String] = [:]
            if !c.isNoneOrNil(3) {
                guard c.type(3) == LUA_TTABLE, dbm_object_kind(c.L, 3) == 0 else {
                    throw c.argError(3, "metadata", expected: "a table of strings keyed by strings")
                }
                try forEachPair(c, 3) { key, value in
                    guard c.type(key) == LUA_TSTRING else {
                        throw c.fail("argument 3 (metadata): expected string keys, got \(c.describe(key))")
                    }
                    let k = try c.string(key, "key")
                    guard c.type(value) == LUA_TSTRING else {
                        throw c.fail("argument 3 (metadata): the value of '\(k)' is \(c.describe(value)); "
                            + "safetensors metadata values are strings (convert with tostring)")
                    }
                    metadata[k] = try c.string(value, "value")
                }
            }
            try Safetensors.write(tensors, metadata: metadata, path: path)
            return 0
        },
    ]

    /// The tensors of argument i: an array of {name, tensor} pairs in its order, or a table
    /// name -> tensor in sorted name order.
    static func readTensorList(_ c: LuaCall, _ i: Int32) throws -> [(String, Tensor)] {
        let n = Int(lua_rawlen(c.L, i))
        var out: [(String, Tensor)] = []
        if n > 0 {
            for k in 1...n {
                lua_rawgeti(c.L, i, lua_Integer(k))
                defer { dbm_pop(c.L, 1) }
                let pair = lua_gettop(c.L)
                guard c.type(pair) == LUA_TTABLE, dbm_object_kind(c.L, pair) == 0 else {
                    throw c.fail("argument \(i) (tensors): entry \(k) is \(c.describe(pair)), expected a {name, tensor} pair")
                }
                lua_rawgeti(c.L, pair, 1)
                lua_rawgeti(c.L, pair, 2)
                defer { dbm_pop(c.L, 2) }
                guard c.type(-2) == LUA_TSTRING else {
                    throw c.fail("argument \(i) (tensors): the name of pair \(k) is \(c.describe(-2)), expected a string")
                }
                let name = try c.string(-2, "name")
                guard let t = c.tensorOrNil(-1) else {
                    throw c.fail("argument \(i) (tensors): the tensor of pair \(k) ('\(name)') is \(c.describe(-1)), expected a tensor")
                }
                out.append((name, t))
            }
            // A table mixing pairs and named tensors would lose the named ones silently: refuse it.
            var extra: String? = nil
            try forEachPair(c, i) { key, _ in
                guard extra == nil else { return }
                let isArrayIndex = lua_isinteger(c.L, key) != 0 && (1...n).contains(Int(dbm_tointeger(c.L, key, nil)))
                if !isArrayIndex { extra = c.describe(key) }
            }
            if let extra {
                throw c.fail("argument \(i) (tensors): expected either an array of {name, tensor} pairs or a table "
                    + "name -> tensor, got an array with the extra key \(extra)")
            }
            return out
        }
        try forEachPair(c, i) { key, value in
            guard c.type(key) == LUA_TSTRING else {
                throw c.fail("argument \(i) (tensors): expected tensor names as keys, got \(c.describe(key))")
            }
            let name = try c.string(key, "name")
            guard let t = c.tensorOrNil(value) else {
                throw c.fail("argument \(i) (tensors): '\(name)' is \(c.describe(value)), expected a tensor")
            }
            out.append((name, t))
        }
        return out.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    }

    /// Calls body with the stack indices of each key and value of the table at i (raw traversal).
    /// The key is never converted in place, so lua_next stays valid.
    static func forEachPair(_ c: LuaCall, _ i: Int32, _ body: (Int32, Int32) throws -> Void) throws {
        let t = lua_absindex(c.L, i)
        lua_pushnil(c.L)
        while lua_next(c.L, t) != 0 {
            let top = lua_gettop(c.L)
            do { try body(top - 1, top) } catch { dbm_pop(c.L, 2); throw error }
            dbm_pop(c.L, 1)
        }
    }
}
