import CLua
import CLua54
import DBMCore

/// Kernels for the diagnostics plugins (plugins/*.lua): the loops that are too slow in Lua.
extension Bindings {
    static let spectral: [Binding] = [
        fn("ks_distance", "dbm.ks_distance",
           "dbm.ks_distance(F) -> Kolmogorov–Smirnov distance max_i max(i/n − F_i, F_i − (i−1)/n) of n ascending samples from a model CDF, given its values F_i at them (table or 1-d tensor)") { c in
            let f = try numbers(c, 1, "F")
            guard !f.isEmpty else { throw c.fail("argument 1 (F): expected at least one CDF value, got none") }
            if let k = f.firstIndex(where: { $0.isNaN }) { throw c.fail("argument 1 (F): expected CDF values, entry \(k + 1) is NaN") }
            c.push(f.withUnsafeBufferPointer { Spectral.ksDistance($0) }); return 1
        },
        fn("polyfit_values", "dbm.polyfit_values",
           "dbm.polyfit_values(x, y, degree) -> the values at x of the least-squares polynomial of that degree through (x, y) (Chebyshev basis on [min x, max x], QR); needs degree+1 distinct x") { c in
            let x = try numbers(c, 1, "x"), y = try numbers(c, 2, "y")
            let degree = try c.integer(3, "degree")
            guard degree >= 0 else { throw c.fail("argument 3 (degree): expected a non-negative degree, got \(degree)") }
            guard y.count == x.count else { throw c.fail("argument 2 (y): expected \(x.count) values (as many as x), got \(y.count)") }
            try c.push(try Tensor.from(try Spectral.polynomialFitValues(x, y, degree: degree), shape: [x.count], dtype: .float64)); return 1
        },
        fn("powerlaw_scan", "dbm.powerlaw_scan",
           "dbm.powerlaw_scan(levels [, {min_tail=10, exhaustive=true}]) -> alpha, D: for x_min = levels[k] (ascending), the MLE α̂ = 1 + n/Σlog(λ/x_min) of the tail λ ≥ x_min and its KS distance (Clauset et al. 2009); NaN where levels[k] is no candidate; exhaustive=false computes only the minimum D exactly (+inf for candidates that cannot attain it)") { c in
            let x = try numbers(c, 1, "levels")
            let o = try c.options(2)
            let minTail = try c.optionInteger(o, "min_tail") ?? 10
            let exhaustive = try c.optionBool(o, "exhaustive") ?? true
            guard minTail >= 1 else { throw c.fail("option 'min_tail': expected a positive tail size, got \(minTail)") }
            for k in x.indices {
                guard x[k].isFinite else { throw c.fail("argument 1 (levels): expected finite levels, entry \(k + 1) is \(x[k])") }
                if k > 0 && x[k] < x[k - 1] {
                    throw c.fail("argument 1 (levels): expected ascending levels, entry \(k + 1) (\(x[k])) is below entry \(k) (\(x[k - 1]))")
                }
            }
            let r = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: minTail, exhaustive: exhaustive) }
            try c.push(try Tensor.from(r.alpha, shape: [x.count], dtype: .float64))
            try c.push(try Tensor.from(r.ks, shape: [x.count], dtype: .float64)); return 2
        },
    ]

    /// A 1-d tensor or a Lua array of numbers at argument i, as Float64 values.
    static func numbers(_ c: LuaCall, _ i: Int32, _ what: String) throws -> [Double] {
        if let t = c.tensorOrNil(i) {
            guard t.rank == 1 else { throw c.fail("argument \(i) (\(what)): expected a 1-d tensor, got shape \(formatShape(t.shape))") }
            return t.toDoubles()
        }
        guard c.type(i) == LUA_TTABLE, dbm_object_kind(c.L, i) == 0 else {
            throw c.argError(i, what, expected: "a 1-d tensor or a table of numbers")
        }
        let n = Int(lua_rawlen(c.L, i))
        var v = [Double](); v.reserveCapacity(n)
        for k in 0..<n {
            lua_rawgeti(c.L, i, lua_Integer(k + 1))
            defer { dbm_pop(c.L, 1) }
            guard lua_type(c.L, -1) == LUA_TNUMBER else {
                throw c.fail("argument \(i) (\(what)): expected numbers, entry \(k + 1) is \(c.describe(-1))")
            }
            v.append(dbm_tonumber(c.L, -1, nil))
        }
        return v
    }
}
