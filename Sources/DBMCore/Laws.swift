import Foundation

/// The limiting laws of random-matrix theory that spectra are compared against (DESIGN §2), each computed by
/// one function here and nowhere else (issue 14, "one home per law"): the plugins, plots, statistics, the
/// Dyson simulator and the experiments call these, through `dbm.laws` from Lua.
///
/// Conventions: a density is 0 outside its support and a CDF is 0 below it and 1 above it; a NaN argument
/// gives NaN. Parameters are not checked here (a Marchenko–Pastur variance ≤ 0, a radius ≤ 0 give
/// meaningless numbers, never a trap): the callers check them — the Lua bindings with messages, the Dyson
/// simulator when it is made.
public enum Laws {
    // ------------------------------------------------------------------ Marchenko–Pastur

    /// The support [x₋, x₊] of Marchenko–Pastur for the eigenvalues of the smaller Gram matrix of a
    /// rows × cols matrix of iid entries of variance σ²: with N = max(rows, cols), q = min(rows, cols)/N,
    /// x± = N σ² (1 ± √q)² (Marchenko & Pastur, Mat. Sb. 72 (1967) 507).
    public static func marchenkoPasturEdges(variance: Double, rows: Int, cols: Int) -> (lower: Double, upper: Double) {
        let (scale, q) = marchenkoPasturScale(variance, rows, cols)
        let sq = q.squareRoot()
        return (scale * (1 - sq) * (1 - sq), scale * (1 + sq) * (1 + sq))
    }

    /// The Marchenko–Pastur density ρ(x) = √((x₊ − x)(x − x₋)) / (2π σ² N q x) on (x₋, x₊) (see the edges).
    public static func marchenkoPasturDensity(_ x: Double, variance: Double, rows: Int, cols: Int) -> Double {
        if x.isNaN { return .nan }
        let (lo, hi) = marchenkoPasturEdges(variance: variance, rows: rows, cols: cols)
        guard x > lo, x < hi, x > 0 else { return 0 }
        let (n, q) = (Double(max(rows, cols)), Double(min(rows, cols)) / Double(max(rows, cols)))
        return ((hi - x) * (x - lo)).squareRoot() / (2 * Double.pi * variance * n * q * x)
    }

    /// The Marchenko–Pastur CDF. In y = x/(N σ²) = a − c cos θ (a = 1 + q, c = 2√q) the density integrates in θ to
    ///     F = [c sin θ + a θ − 2(1 − q) atan(((1 + √q)/(1 − √q)) tan(θ/2))] / (2πq)   (the atan term vanishes at q = 1).
    public static func marchenkoPasturCDF(_ x: Double, variance: Double, rows: Int, cols: Int) -> Double {
        if x.isNaN { return .nan }
        let (scale, q) = marchenkoPasturScale(variance, rows, cols)
        let sq = q.squareRoot(), a = 1 + q, c = 2 * sq
        let u = (a - x / scale) / c
        if u >= 1 { return 0 }
        if u <= -1 { return 1 }
        let theta = acos(u)
        var f = c * sin(theta) + a * theta
        if q < 1 { f -= 2 * (1 - q) * atan((1 + sq) / (1 - sq) * tan(theta / 2)) }
        return max(0, min(1, f / (2 * Double.pi * q)))
    }

    // (N σ², q) of a Marchenko–Pastur law.
    private static func marchenkoPasturScale(_ variance: Double, _ rows: Int, _ cols: Int) -> (Double, Double) {
        let big = Double(max(rows, cols)), small = Double(min(rows, cols))
        return (big * variance, small / big)
    }

    // ------------------------------------------------------------------ Wigner semicircle

    /// The Wigner semicircle ρ(x) = (2/(πR²)) √(R² − (x − κ)²) on [κ − R, κ + R] (Wigner, Ann. Math. 67 (1958) 325).
    public static func semicircleDensity(_ x: Double, radius: Double, center: Double = 0) -> Double {
        if x.isNaN { return .nan }
        let u = x - center
        guard abs(u) < radius else { return 0 }
        return 2 / (Double.pi * radius * radius) * (radius * radius - u * u).squareRoot()
    }

    /// The semicircle's CDF F(x) = ½ + (u√(1 − u²) + asin u)/π, u = (x − κ)/R clamped to [−1, 1].
    public static func semicircleCDF(_ x: Double, radius: Double, center: Double = 0) -> Double {
        if x.isNaN { return .nan }
        let u = max(-1, min(1, (x - center) / radius))
        return 0.5 + (u * (1 - u * u).squareRoot() + asin(u)) / Double.pi
    }

    // ------------------------------------------------------------------ nearest-neighbour spacings (mean 1)

    /// The Wigner surmise for GOE (β = 1), the spacing law of a 2×2 GOE matrix: P(s) = (πs/2) e^{−πs²/4}, s ≥ 0.
    public static func wignerSurmiseGOE(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s <= 0 ? 0 : Double.pi * s / 2 * exp(-Double.pi * s * s / 4)
    }

    /// Its CDF 1 − e^{−πs²/4}.
    public static func wignerSurmiseGOECDF(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s <= 0 ? 0 : 1 - exp(-Double.pi * s * s / 4)
    }

    /// The Wigner surmise for GUE (β = 2): P(s) = (32/π²) s² e^{−4s²/π}, s ≥ 0 (Mehta, Random Matrices, §1.5).
    public static func wignerSurmiseGUE(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s <= 0 ? 0 : 32 / (Double.pi * Double.pi) * s * s * exp(-4 * s * s / Double.pi)
    }

    /// Its CDF erf(2s/√π) − (4s/π) e^{−4s²/π}.
    public static func wignerSurmiseGUECDF(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s <= 0 ? 0 : erf(2 * s / Double.pi.squareRoot()) - 4 * s / Double.pi * exp(-4 * s * s / Double.pi)
    }

    /// The spacing law of uncorrelated (Poisson) levels: P(s) = e^{−s}, s ≥ 0.
    public static func poissonSpacing(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s < 0 ? 0 : exp(-s)
    }

    /// Its CDF 1 − e^{−s}.
    public static func poissonSpacingCDF(_ s: Double) -> Double {
        if s.isNaN { return .nan }
        return s <= 0 ? 0 : 1 - exp(-s)
    }

    /// The spacing density of an ensemble: one of the three laws above.
    public static func spacingDensity(_ s: Double, _ ensemble: LevelEnsemble) -> Double {
        switch ensemble {
        case .goe: return wignerSurmiseGOE(s)
        case .gue: return wignerSurmiseGUE(s)
        case .poisson: return poissonSpacing(s)
        }
    }

    /// The spacing CDF of an ensemble: one of the three laws above.
    public static func spacingCDF(_ s: Double, _ ensemble: LevelEnsemble) -> Double {
        switch ensemble {
        case .goe: return wignerSurmiseGOECDF(s)
        case .gue: return wignerSurmiseGUECDF(s)
        case .poisson: return poissonSpacingCDF(s)
        }
    }

    // ------------------------------------------------------------------ spacing ratios

    /// The density of r = min(δ_i, δ_{i+1}) / max(δ_i, δ_{i+1}) on [0, 1], twice the law of δ_{i+1}/δ_i folded
    /// (Atas, Bogomolny, Giraud & Roux, PRL 110 (2013) 084101): the 3×3 surmise
    /// P(r) = 2 (r + r²)^β / (Z_β (1 + r + r²)^{1 + 3β/2}), Z_1 = 8/27, Z_2 = 4π/(81√3), for GOE and GUE;
    /// 2/(1 + r)² for Poisson levels (exact).
    public static func spacingRatioDensity(_ r: Double, _ ensemble: LevelEnsemble) -> Double {
        if r.isNaN { return .nan }
        guard r >= 0, r <= 1 else { return 0 }
        let w = 1 + r + r * r, p = r + r * r
        switch ensemble {
        case .goe: return 27.0 / 4 * p / (w * w * w.squareRoot())
        case .gue: return 81 * 3.0.squareRoot() / (2 * Double.pi) * p * p / (w * w * w * w)
        case .poisson: return 2 / ((1 + r) * (1 + r))
        }
    }

    /// The CDF of `spacingRatioDensity`, integrated in closed form:
    /// GOE 1 − (1 − r)(r + 2)(2r + 1) / (2 (1 + r + r²)^{3/2}); GUE (6/π) atan((2r + 1)/√3) − 1
    /// + (3√3/(2π)) r (2r⁴ + 5r³ − 5r − 2) / (1 + r + r²)³; Poisson 2r/(1 + r).
    public static func spacingRatioCDF(_ r: Double, _ ensemble: LevelEnsemble) -> Double {
        if r.isNaN { return .nan }
        if r <= 0 { return 0 }
        if r >= 1 { return 1 }
        let w = 1 + r + r * r, root3 = 3.0.squareRoot()
        let f: Double
        switch ensemble {
        case .goe: f = 1 - (1 - r) * (r + 2) * (2 * r + 1) / (2 * w * w.squareRoot())
        case .gue:
            f = 6 / Double.pi * atan((2 * r + 1) / root3) - 1
                + 3 * root3 / (2 * Double.pi) * r * (((2 * r + 5) * r * r - 5) * r - 2) / (w * w * w)
        case .poisson: f = 2 * r / (1 + r)
        }
        return max(0, min(1, f))
    }

    /// The reference mean spacing ratio ⟨r⟩ of large matrices: GOE 0.5307, GUE 0.5996 (Atas et al. 2013,
    /// numerical, ±0.0001), Poisson 2 ln 2 − 1 ≈ 0.3863 (exact). (The 3×3 surmise's own means are
    /// 4 − 2√3 ≈ 0.5359 and 2√3/π − ½ ≈ 0.6027: the surmise is not the large-N law; the references are.)
    public static func meanSpacingRatio(_ ensemble: LevelEnsemble) -> Double {
        switch ensemble {
        case .goe: return 0.5307
        case .gue: return 0.5996
        case .poisson: return 2 * log(2.0) - 1
        }
    }

    // ------------------------------------------------------------------ the 2×2 GOE block

    /// The eigenvalue density of a 2×2 GOE block centred at x₀ (variance σ² on the diagonal, σ²/2 off it),
    /// DESIGN §2: ρ(x) = e^{−u²/2}/(4√π σ) · [2e^{−u²/2} + √(2π) u erf(u/√2)], u = (x − x₀)/σ.
    public static func goe2Density(_ x: Double, center x0: Double, sigma: Double) -> Double {
        let u = (x - x0) / sigma
        let g = exp(-u * u / 2)
        return g / (4 * Double.pi.squareRoot() * sigma) * (2 * g + (2 * Double.pi).squareRoot() * u * erf(u / 2.squareRoot()))
    }

    /// The mean spacing ⟨S⟩ = √π σ of the two levels of that block (the Wigner surmise, scaled).
    public static func goe2MeanSpacing(sigma: Double) -> Double { Double.pi.squareRoot() * sigma }
}

/// The reference ensembles of level statistics: the Gaussian orthogonal (β = 1) and unitary (β = 2) ensembles,
/// and uncorrelated (Poisson) levels. The raw value is the name Lua uses.
public enum LevelEnsemble: String, Sendable, CaseIterable {
    case goe, gue, poisson
}

/// A limiting spectral density as a value (the Dyson simulator's stationary law), with its support, density,
/// CDF and quantile; the formulas are those of `Laws`.
public enum SpectralLaw: Sendable, Equatable {
    /// Wigner semicircle of radius R centred at κ (`Laws.semicircleDensity`).
    case semicircle(radius: Double, center: Double = 0)
    /// Marchenko–Pastur law of the eigenvalues of the smaller Gram matrix of a rows × cols matrix of iid
    /// entries of variance σ² (`Laws.marchenkoPasturDensity`).
    case marchenkoPastur(variance: Double, rows: Int, cols: Int)

    /// The support [lower, upper].
    public var edges: (lower: Double, upper: Double) {
        switch self {
        case .semicircle(let r, let c): return (c - r, c + r)
        case .marchenkoPastur(let v, let rows, let cols): return Laws.marchenkoPasturEdges(variance: v, rows: rows, cols: cols)
        }
    }

    /// The density ρ(x).
    public func density(_ x: Double) -> Double {
        switch self {
        case .semicircle(let r, let c): return Laws.semicircleDensity(x, radius: r, center: c)
        case .marchenkoPastur(let v, let rows, let cols): return Laws.marchenkoPasturDensity(x, variance: v, rows: rows, cols: cols)
        }
    }

    /// The CDF F(x).
    public func cdf(_ x: Double) -> Double {
        switch self {
        case .semicircle(let r, let c): return Laws.semicircleCDF(x, radius: r, center: c)
        case .marchenkoPastur(let v, let rows, let cols): return Laws.marchenkoPasturCDF(x, variance: v, rows: rows, cols: cols)
        }
    }

    /// The x with F(x) = p (bisection to machine precision), p in [0, 1].
    public func quantile(_ p: Double) -> Double {
        var (lo, hi) = edges
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            guard mid > lo, mid < hi else { break }
            if cdf(mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}
