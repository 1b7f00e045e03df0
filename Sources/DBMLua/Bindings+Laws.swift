import CLua
import CLua54
import DBMCore

/// `dbm.laws`: the limiting laws of DBMCore/Laws.swift, bound once (core names `law_*`; dbm.lua gathers them
/// into the table). Each takes its variable as a number (returns a number), a tensor of any shape (returns a
/// float64 tensor of that shape) or a table of numbers (returns a 1-d float64 tensor).
extension Bindings {
    static let laws: [Binding] = [
        fn("law_mp_density", "dbm.laws.mp_density",
           "dbm.laws.mp_density(x, sigma2, n, m) -> the Marchenko–Pastur density ρ(x) = √((x₊−x)(x−x₋))/(2πσ²Nqx) of the eigenvalues of the smaller Gram matrix of an n×m matrix of iid entries of variance sigma2 (N = max(n, m), q = min(n, m)/N); x a number, tensor or table") { c in
            let (v, rows, cols) = try marchenkoPasturParameters(c)
            return try evaluate(c, 1, "x") { Laws.marchenkoPasturDensity($0, variance: v, rows: rows, cols: cols) }
        },
        fn("law_mp_cdf", "dbm.laws.mp_cdf",
           "dbm.laws.mp_cdf(x, sigma2, n, m) -> the Marchenko–Pastur CDF at x (closed form; parameters as dbm.laws.mp_density)") { c in
            let (v, rows, cols) = try marchenkoPasturParameters(c)
            return try evaluate(c, 1, "x") { Laws.marchenkoPasturCDF($0, variance: v, rows: rows, cols: cols) }
        },
        fn("law_mp_edges", "dbm.laws.mp_edges",
           "dbm.laws.mp_edges(sigma2, n, m) -> x₋, x₊: the edges Nσ²(1 ∓ √q)² of the Marchenko–Pastur law of an n×m matrix (N = max(n, m), q = min(n, m)/N)") { c in
            let (v, rows, cols) = try marchenkoPasturParameters(c, first: 1)
            let e = Laws.marchenkoPasturEdges(variance: v, rows: rows, cols: cols)
            c.push(e.lower); c.push(e.upper); return 2
        },
        fn("law_mp_quantile", "dbm.laws.mp_quantile",
           "dbm.laws.mp_quantile(p, sigma2, n, m) -> the x at which the Marchenko–Pastur CDF reaches p (p in [0, 1]; bisection to machine precision)") { c in
            let (v, rows, cols) = try marchenkoPasturParameters(c)
            let law = SpectralLaw.marchenkoPastur(variance: v, rows: rows, cols: cols)
            return try evaluate(c, 1, "p") { p in
                guard p >= 0, p <= 1 else { throw c.fail("argument 1 (p): expected probabilities in [0, 1], got \(formatNumber(p))") }
                return law.quantile(p)
            }
        },
        fn("law_semicircle_density", "dbm.laws.semicircle_density",
           "dbm.laws.semicircle_density(x, center, radius) -> the Wigner semicircle (2/(πR²))√(R² − (x − κ)²) on [κ − R, κ + R]; x a number, tensor or table") { c in
            let (center, radius) = try semicircleParameters(c)
            return try evaluate(c, 1, "x") { Laws.semicircleDensity($0, radius: radius, center: center) }
        },
        fn("law_semicircle_cdf", "dbm.laws.semicircle_cdf",
           "dbm.laws.semicircle_cdf(x, center, radius) -> the semicircle's CDF ½ + (u√(1 − u²) + asin u)/π, u = (x − κ)/R") { c in
            let (center, radius) = try semicircleParameters(c)
            return try evaluate(c, 1, "x") { Laws.semicircleCDF($0, radius: radius, center: center) }
        },
        fn("law_spacing_density", "dbm.laws.spacing_density",
           "dbm.laws.spacing_density(s, \"goe\" | \"gue\" | \"poisson\") -> the density of spacings s of mean 1: Wigner surmise (πs/2)e^{−πs²/4} (GOE), (32/π²)s²e^{−4s²/π} (GUE), or e^{−s} (Poisson)",
           ensembleLaw("s", Laws.spacingDensity)),
        fn("law_spacing_cdf", "dbm.laws.spacing_cdf",
           "dbm.laws.spacing_cdf(s, \"goe\" | \"gue\" | \"poisson\") -> the CDF of those spacing laws: 1 − e^{−πs²/4} (GOE), erf(2s/√π) − (4s/π)e^{−4s²/π} (GUE), 1 − e^{−s} (Poisson)",
           ensembleLaw("s", Laws.spacingCDF)),
        fn("law_ratio_density", "dbm.laws.ratio_density",
           "dbm.laws.ratio_density(r, \"goe\" | \"gue\" | \"poisson\") -> the density on [0, 1] of spacing ratios r = min(δ_i, δ_{i+1})/max(δ_i, δ_{i+1}): the Atas et al. (2013) surmise (27/4)(r+r²)/(1+r+r²)^{5/2} (GOE; GUE its β = 2 form), 2/(1+r)² (Poisson)",
           ensembleLaw("r", Laws.spacingRatioDensity)),
        fn("law_ratio_cdf", "dbm.laws.ratio_cdf",
           "dbm.laws.ratio_cdf(r, \"goe\" | \"gue\" | \"poisson\") -> the CDF of dbm.laws.ratio_density (closed forms), e.g. for a KS test of spacing ratios",
           ensembleLaw("r", Laws.spacingRatioCDF)),
        fn("law_ratio_mean", "dbm.laws.ratio_mean",
           "dbm.laws.ratio_mean(\"goe\" | \"gue\" | \"poisson\") -> the reference ⟨r⟩ of large matrices: GOE 0.5307, GUE 0.5996 (Atas et al. 2013), Poisson 2 ln 2 − 1 ≈ 0.3863") { c in
            c.push(Laws.meanSpacingRatio(try ensemble(c, 1))); return 1
        },
        fn("law_goe2_mean_spacing", "dbm.laws.goe2_mean_spacing",
           "dbm.laws.goe2_mean_spacing(sigma) -> √π σ, the mean spacing of the two levels of a 2×2 GOE block of width sigma (dbm.goe2_density)") { c in
            let s = try c.number(1, "sigma")
            // NaN passes through: an experiment's predicted width is NaN where its formula does not apply.
            guard !(s < 0) else { throw c.fail("argument 1 (sigma): expected a width >= 0, got \(formatNumber(s))") }
            c.push(Laws.goe2MeanSpacing(sigma: s)); return 1
        },
    ]

    /// f at argument i: a number gives a number, a tensor a float64 tensor of its shape, a table of numbers
    /// a 1-d float64 tensor. Pushes the one result.
    static func evaluate(_ c: LuaCall, _ i: Int32, _ what: String, _ f: (Double) throws -> Double) throws -> Int32 {
        if c.type(i) == LUA_TNUMBER { c.push(try f(try c.number(i, what))); return 1 }
        if let t = c.tensorOrNil(i) {
            try c.push(try Tensor.from(try t.toDoubles().map(f), shape: t.shape, dtype: .float64)); return 1
        }
        guard c.type(i) == LUA_TTABLE, dbm_object_kind(c.L, i) == 0 else {
            throw c.argError(i, what, expected: "a number, a tensor or a table of numbers")
        }
        let v = try numbers(c, i, what).map(f)
        try c.push(try Tensor.from(v, shape: [v.count], dtype: .float64)); return 1
    }

    /// The body of a binding law(x, ensemble): x at argument 1 (`what`), the ensemble's name at argument 2.
    private static func ensembleLaw(_ what: String, _ law: @escaping @Sendable (Double, LevelEnsemble) -> Double)
        -> @Sendable (LuaCall) throws -> Int32 {
        { c in
            let e = try ensemble(c, 2)
            return try evaluate(c, 1, what) { law($0, e) }
        }
    }

    /// (sigma2, n, m) at arguments first, first + 1, first + 2: a positive finite variance, positive sizes.
    private static func marchenkoPasturParameters(_ c: LuaCall, first: Int32 = 2) throws -> (Double, Int, Int) {
        let v = try c.number(first, "sigma2")
        guard v > 0, v.isFinite else {
            throw c.fail("argument \(first) (sigma2): expected a positive finite variance, got \(formatNumber(v))")
        }
        let rows = try c.integer(first + 1, "n"), cols = try c.integer(first + 2, "m")
        guard rows >= 1, cols >= 1 else {
            throw c.fail("arguments \(first + 1), \(first + 2) (n, m): expected positive matrix sizes, got \(rows) and \(cols)")
        }
        return (v, rows, cols)
    }

    /// (center, radius) at arguments 2 and 3: finite, radius > 0.
    private static func semicircleParameters(_ c: LuaCall) throws -> (Double, Double) {
        let center = try c.number(2, "center"), radius = try c.number(3, "radius")
        guard center.isFinite else { throw c.fail("argument 2 (center): expected a finite number, got \(formatNumber(center))") }
        guard radius > 0, radius.isFinite else {
            throw c.fail("argument 3 (radius): expected a positive finite radius, got \(formatNumber(radius))")
        }
        return (center, radius)
    }

    /// The ensemble named at argument i: "goe", "gue" or "poisson".
    private static func ensemble(_ c: LuaCall, _ i: Int32) throws -> LevelEnsemble {
        guard c.type(i) == LUA_TSTRING, let e = LevelEnsemble(rawValue: try c.string(i, "ensemble")) else {
            throw c.argError(i, "ensemble", expected: "\"goe\", \"gue\" or \"poisson\"")
        }
        return e
    }
}
