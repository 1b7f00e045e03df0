import CLua
import CLua54
import DBMCore

/// dbm.npy_appender: a .npy file that grows by appending rows (NpyAppender), for the recorder's
/// spectra and steps files. The Lua half (dbm.lua) checks the option names and sets the methods.
extension Bindings {
    static func appender(_ c: LuaCall, _ i: Int32 = 1) throws -> NpyAppender {
        try c.object(i, kind: Int32(DBM_KIND_APPENDER), "NpyAppender", NpyAppender.self)
    }

    /// The rows given at i: a tensor, a number (one element) or a (nested) table of numbers, as a
    /// tensor. An empty table is no rows: shape (0, rowShape...).
    static func appenderRows(_ c: LuaCall, _ i: Int32, _ what: String, rowShape: [Int]) throws -> Tensor {
        if let t = c.tensorOrNil(i) { return t }
        switch c.type(i) {
        case LUA_TNUMBER:
            return try Tensor.from([try c.number(i, what)], shape: [], dtype: .float64)
        case LUA_TTABLE where dbm_object_kind(c.L, i) == 0:
            var values: [Double] = []
            let shape = try readNested(c, i, depth: 0, values: &values)
            if values.isEmpty && shape == [0] { return try Tensor(shape: [0] + rowShape, dtype: .float64) }
            return try Tensor.from(values, shape: shape, dtype: .float64)
        default:
            throw c.argError(i, what, expected: "a tensor, a number or a table of numbers")
        }
    }

    static let npyAppender: [Binding] = [
        fn("npy_appender", "dbm.npy_appender",
           "dbm.npy_appender(path [, {dtype=\"float64\"|\"float32\"|\"int64\"|\"int32\", cols=n, data=rows}]) -> a .npy file that grows "
           + "by rows (n columns; no cols: 1-D), created with `data` (a tensor or table) atomically; a:append(rows), a:rows(), "
           + "a:truncate(n), a:close(). A killed process leaves a file numpy loads") { c in
            let path = try c.string(1, "path")
            guard !path.isEmpty else { throw c.fail("argument 1 (path): expected a file name, got an empty string") }
            let o = try c.options(2)
            let type: NpyWriteType
            switch try c.optionString(o, "dtype") {
            case nil, "float64": type = .float64
            case "float32": type = .float32
            case "int64": type = .int64
            case "int32": type = .int32
            case let s?: throw c.fail("option 'dtype': expected \"float64\", \"float32\", \"int64\" or \"int32\", got \"\(s)\"")
            }
            var rowShape: [Int] = []
            if let cols = try c.optionInteger(o, "cols") {
                guard cols >= 0 else { throw c.fail("option 'cols': expected a non-negative number of columns, got \(cols)") }
                rowShape = [cols]
            }
            let data = try c.option(o, "data") { j in try appenderRows(c, j, "option 'data'", rowShape: rowShape) }
            try c.push(object: try NpyAppender(path: path, rowShape: rowShape, type: type, initial: data),
                       kind: Int32(DBM_KIND_APPENDER))
            return 1
        },
        fn("npy_appender_append", "NpyAppender:append",
           "a:append(rows) -> the row count: appends one row (a tensor of cols elements; a number for a 1-D file) or k rows "
           + "(k × cols, a tensor or a table of rows), then updates the header in place") { c in
            let a = try appender(c)
            let rows = try appenderRows(c, 2, "rows", rowShape: a.rowShape)
            c.push(try a.append(rows)); return 1
        },
        fn("npy_appender_rows", "NpyAppender:rows", "a:rows() -> the number of rows in the file") { c in
            c.push(try appender(c).rows); return 1
        },
        fn("npy_appender_truncate", "NpyAppender:truncate", "a:truncate(n): keeps the first n rows (0 ≤ n ≤ a:rows())") { c in
            let a = try appender(c)
            let n = try c.integer(2, "n")
            guard n >= 0, n <= a.rows else { throw c.fail("argument 2 (n): expected a row count in 0..\(a.rows), got \(n)") }
            try a.truncate(rows: n); return 0
        },
        fn("npy_appender_close", "NpyAppender:close", "a:close(): flushes the file to disk (fsync) and closes it; idempotent") { c in
            try appender(c).close(); return 0
        },
        fn("npy_appender_tostring", "NpyAppender:tostring", "tostring(a) -> its path, row count and row shape") { c in
            let a = try appender(c)
            let row = a.rowShape.isEmpty ? "" : " × " + a.rowShape.map(String.init).joined(separator: " × ")
            try c.push("dbm.NpyAppender(\(a.path): \(a.rows)\(row) \(a.descr)\(a.isClosed ? ", closed" : ""))"); return 1
        },
    ]
}
