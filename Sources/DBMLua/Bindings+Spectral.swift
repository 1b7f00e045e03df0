import CLua
import CLua54
import DBMCore

/// Kernels for the diagnostics plugins (plugins/*.lua): the loops that are too slow in Lua; and DBMCore's
/// noise-temperature estimator.
extension Bindings {
    static let spectral: [Binding] = [
        fn("ks_distance", "dbm.ks_distance",
           "dbm.ks_distance(F) -> Kolmogorov–Smirnov distance max_i max(i/n − F_i, F_i − (i−1)/n) of n ascending samples from a model CDF, given its values F_i at them (table or 1-d tensor)") { c in
            let f = try numbers(c, 1, "F")
            guard !f.isEmpty else { throw c.fail("argument 1 (F): expected at least one CDF value, got none") }
            // The model CDF at ascending samples: values in [0, 1], never decreasing; up to a rounding slack
            // of 1e-9 (a CDF evaluated in closed form can come out at 1 + 2⁻⁵², or a hair below its
            // neighbour at two nearly equal samples), far below any KS distance that matters.
            let slack = 1e-9
            for k in f.indices {
                guard f[k] >= -slack, f[k] <= 1 + slack else { throw c.fail("argument 1 (F): expected CDF values in [0, 1], entry \(k + 1) is \(formatNumber(f[k]))") }
                guard k == 0 || f[k] >= f[k - 1] - slack else {
                    throw c.fail("argument 1 (F): expected non-decreasing CDF values (at ascending samples), entry \(k + 1) (\(formatNumber(f[k]))) is below entry \(k) (\(formatNumber(f[k - 1])))")
                }
            }
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
           "dbm.powerlaw_scan(levels [, {min_tail=10, exhaustive=true, ks=\"two-sided\"}]) -> alpha, D: for x_min = levels[k] (ascending), the MLE α̂ = 1 + n/Σlog(λ/x_min) of the tail λ ≥ x_min and its KS distance (Clauset et al. 2009); NaN where levels[k] is no candidate; exhaustive=false computes only the minimum D exactly (+inf for candidates that cannot attain it); ks=\"powerlaw\" compares the fitted CDF with j/n only and takes every position as a candidate (the powerlaw package, WeightWatcher 0.7.7), \"two-sided\" with both sides of each step") { c in
            let x = try numbers(c, 1, "levels")
            let o = try c.options(2, known: ["min_tail", "exhaustive", "ks"])
            let minTail = try c.optionInteger(o, "min_tail") ?? 10
            let exhaustive = try c.optionBool(o, "exhaustive") ?? true
            let ksName = try c.optionString(o, "ks") ?? "two-sided"
            guard let distance = Spectral.KSDistance(rawValue: ksName) else {
                throw c.fail("option 'ks': expected \"two-sided\" or \"powerlaw\", got \"\(ksName)\"")
            }
            guard minTail >= 1 else { throw c.fail("option 'min_tail': expected a positive tail size, got \(minTail)") }
            for k in x.indices {
                guard x[k].isFinite else { throw c.fail("argument 1 (levels): expected finite levels, entry \(k + 1) is \(x[k])") }
                if k > 0 && x[k] < x[k - 1] {
                    throw c.fail("argument 1 (levels): expected ascending levels, entry \(k + 1) (\(x[k])) is below entry \(k) (\(x[k - 1]))")
                }
            }
            let r = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: minTail, exhaustive: exhaustive, distance: distance) }
            try c.push(try Tensor.from(r.alpha, shape: [x.count], dtype: .float64))
            try c.push(try Tensor.from(r.ks, shape: [x.count], dtype: .float64)); return 2
        },
        fn("powerlaw_tpl", "dbm.powerlaw_tpl",
           "dbm.powerlaw_tpl(tail, x_min, alpha) -> tpl_alpha, tpl_lambda, R, R_normalized, p: the maximum-likelihood truncated power law x^{−α}e^{−Λx} on the tail (levels ≥ x_min) and the log-likelihood ratio R of the power law of exponent alpha against it (nested: p = erfc(√|R|); Clauset et al. 2009 §5, the powerlaw package's distribution_compare)") { c in
            let x = try numbers(c, 1, "tail")
            let xMin = try c.number(2, "x_min"), alpha = try c.number(3, "alpha")
            guard xMin > 0, xMin.isFinite else { throw c.fail("argument 2 (x_min): expected a positive number, got \(formatNumber(xMin))") }
            guard alpha > 1, alpha.isFinite else { throw c.fail("argument 3 (alpha): expected a power-law exponent > 1, got \(formatNumber(alpha))") }
            guard x.count >= 2 else { throw c.fail("argument 1 (tail): expected at least 2 levels, got \(x.count)") }
            for k in x.indices where !(x[k] >= xMin && x[k].isFinite) {
                throw c.fail("argument 1 (tail): expected finite levels ≥ x_min (\(formatNumber(xMin))), entry \(k + 1) is \(formatNumber(x[k]))")
            }
            guard let r = Spectral.truncatedPowerLawFit(tail: x, xMin: xMin, alpha: alpha) else {
                throw c.fail("argument 2 (x_min): the levels over x_min (\(formatNumber(xMin))) exceed the range of a double")
            }
            c.push(r.alpha); c.push(r.lambda); c.push(r.logLikelihoodRatio); c.push(r.normalizedRatio); c.push(r.p); return 5
        },
        fn("ks_pvalue", "dbm.ks_pvalue",
           "dbm.ks_pvalue(D, n) -> the asymptotic p-value of a KS distance D from n samples (Kolmogorov's Q with Stephens' correction); for two samples use n = n1·n2/(n1 + n2)") { c in
            let d = try c.number(1, "D"), n = try c.number(2, "n")
            guard d.isFinite, d >= 0, d <= 1 else { throw c.fail("argument 1 (D): expected a KS distance in [0, 1], got \(formatNumber(d))") }
            guard n.isFinite, n >= 1 else { throw c.fail("argument 2 (n): expected a sample count >= 1, got \(formatNumber(n))") }
            c.push(Statistics.ksPValue(distance: d, samples: n)); return 1
        },
        fn("ks_2samp", "dbm.ks_2samp",
           "dbm.ks_2samp(a, b) -> D, p: the two-sample Kolmogorov–Smirnov distance of two samples (1-d tensors or tables) and its asymptotic p-value") { c in
            let r = try Statistics.ksTwoSample(try numbers(c, 1, "a"), try numbers(c, 2, "b"))
            c.push(r.distance); c.push(r.p); return 2
        },
        fn("goe2_density", "dbm.goe2_density",
           "dbm.goe2_density(x, x0, sigma) -> the eigenvalue density at x of a 2×2 GOE block centred at x0 (variance σ² on the diagonal, σ²/2 off it; DESIGN §2); its mean spacing is √π σ (dbm.laws.goe2_mean_spacing); also dbm.laws.goe2_density") { c in
            let x = try c.number(1, "x"), x0 = try c.number(2, "x0"), s = try c.number(3, "sigma")
            guard s > 0, s.isFinite else { throw c.fail("argument 3 (sigma): expected a positive number, got \(formatNumber(s))") }
            c.push(Laws.goe2Density(x, center: x0, sigma: s)); return 1
        },
        fn("fit_goe2", "dbm.fit_goe2",
           "dbm.fit_goe2(levels) -> x0, sigma: the maximum-likelihood centre and width of the 2×2 GOE block density for pooled levels (both eigenvalues of every block)") { c in
            let r = try Statistics.fitGOE2(try numbers(c, 1, "levels"))
            c.push(r.center); c.push(r.sigma); return 2
        },
        fn("fit_origin", "dbm.fit_origin",
           "dbm.fit_origin(x, y) -> slope, stderr, r2: the least-squares line y = slope·x through the origin") { c in
            let r = try Statistics.slopeThroughOrigin(try numbers(c, 1, "x"), try numbers(c, 2, "y"))
            c.push(r.slope); c.push(r.error); c.push(r.r2); return 3
        },
        fn("noise_temperature", "dbm.noise_temperature",
           "dbm.noise_temperature(history, dt) -> {temperature, stderr, per_level, increments}: the noise temperature T of one run from the increments of its levels (eigenvalues of WᵀW, a (records, levels) tensor recorded δt = dt apart; for SGD dt = lr × steps between records): Var(δx_i) = 8 T x_i δt after the drift is fitted out (DESIGN §2)") { c in
            let h = try c.tensor(1, "history")
            let dt = try c.number(2, "dt")
            let e = try NoiseTemperature.estimate(history: h, dt: dt)
            try c.newTable(nrec: 4)
            c.push(e.temperature); try c.setField(-2, "temperature")
            c.push(e.standardError); try c.setField(-2, "stderr")
            c.push(e.increments); try c.setField(-2, "increments")
            try c.push(try Tensor.from(e.perLevel, shape: [e.perLevel.count], dtype: .float64)); try c.setField(-2, "per_level")
            return 1
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
