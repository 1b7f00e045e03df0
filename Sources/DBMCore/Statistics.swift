import Foundation

/// The statistics the linear-scaling experiments report (issue 6): Kolmogorov–Smirnov p-values (one and
/// two samples), the maximum-likelihood fit of the 2×2 GOE block density (`Laws.goe2Density`, DESIGN §2),
/// and a straight line through the origin.
public enum Statistics {
    /// Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}: the probability that the scaled KS distance exceeds λ.
    public static func kolmogorovQ(_ lambda: Double) -> Double {
        guard lambda > 0.2 else { return 1 }   // the series converges slowly there; Q(0.2) = 1 − 3·10⁻¹⁵
        var sum = 0.0, sign = 1.0
        for j in 1...100 {
            let term = exp(-2 * Double(j * j) * lambda * lambda)
            sum += sign * term
            if term < 1e-17 * sum { break }
            sign = -sign
        }
        return min(1, max(0, 2 * sum))
    }

    /// The asymptotic p-value of a KS distance d from n effective samples, with the small-sample correction
    /// λ = (√n + 0.12 + 0.11/√n)·d of Stephens (1970) (Numerical Recipes' `probks`).
    public static func ksPValue(distance d: Double, samples n: Double) -> Double {
        let r = n.squareRoot()
        return kolmogorovQ((r + 0.12 + 0.11 / r) * d)
    }

    /// The two-sample KS distance sup |F_a − F_b| and its p-value (n = n_a n_b/(n_a + n_b)).
    public static func ksTwoSample(_ a: [Double], _ b: [Double]) throws -> (distance: Double, p: Double) {
        guard !a.isEmpty, !b.isEmpty else { throw DBMError("expected two non-empty samples (got \(a.count) and \(b.count))") }
        guard a.allSatisfy({ !$0.isNaN }), b.allSatisfy({ !$0.isNaN }) else { throw DBMError("expected samples without NaN") }
        let x = a.sorted(), y = b.sorted()
        var i = 0, j = 0, d = 0.0
        while i < x.count && j < y.count {
            let v = min(x[i], y[j])
            while i < x.count && x[i] <= v { i += 1 }
            while j < y.count && y[j] <= v { j += 1 }
            d = max(d, abs(Double(i) / Double(x.count) - Double(j) / Double(y.count)))
        }
        let n = Double(x.count) * Double(y.count) / Double(x.count + y.count)
        return (d, ksPValue(distance: d, samples: n))
    }

    /// The maximum-likelihood (x₀, σ) of the 2×2 GOE block density (`Laws.goe2Density`) for pooled levels
    /// (both eigenvalues of each block): x₀ starts at the mean, σ at the root-mean-square deviation/√1.5 (E(x − x₀)² = 1.5σ²),
    /// then coordinate-wise golden-section searches until both settle.
    public static func fitGOE2(_ levels: [Double]) throws -> (center: Double, sigma: Double) {
        guard levels.count >= 4, levels.allSatisfy({ $0.isFinite }) else {
            throw DBMError("expected at least 4 finite levels, got \(levels.count)")
        }
        let n = Double(levels.count)
        var x0 = levels.reduce(0, +) / n
        let rms = (levels.reduce(0) { $0 + ($1 - x0) * ($1 - x0) } / n).squareRoot()
        guard rms > 0 else { throw DBMError("expected levels that are not all equal") }
        var sigma = rms / 1.5.squareRoot()
        func logLikelihood(_ c: Double, _ s: Double) -> Double {
            levels.reduce(0) { $0 + log(max(Laws.goe2Density($1, center: c, sigma: s), 1e-300)) }
        }
        for _ in 0..<6 {
            sigma = goldenMaximum(0.5 * sigma, 2 * sigma) { logLikelihood(x0, $0) }
            x0 = goldenMaximum(x0 - sigma, x0 + sigma) { logLikelihood($0, sigma) }
        }
        return (x0, sigma)
    }

    /// The maximum of a unimodal f on [a, b] by golden-section search (relative tolerance 1e-7).
    static func goldenMaximum(_ a: Double, _ b: Double, _ f: (Double) -> Double) -> Double {
        let g = (5.0.squareRoot() - 1) / 2
        var (a, b) = (a, b)
        var c = b - g * (b - a), d = a + g * (b - a)
        var fc = f(c), fd = f(d)
        while abs(b - a) > 1e-7 * max(abs(a), abs(b), 1e-300) {
            if fc > fd { b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c) }
            else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d) }
        }
        return (a + b) / 2
    }

    /// The least-squares line y = slope·x through the origin, the slope's standard error from the residuals,
    /// and R² about the origin (1 − Σe²/Σy²).
    public static func slopeThroughOrigin(_ x: [Double], _ y: [Double]) throws -> (slope: Double, error: Double, r2: Double) {
        guard x.count == y.count, x.count >= 2 else {
            throw DBMError("expected two equal-length series of at least 2 points, got \(x.count) and \(y.count)")
        }
        let sxx = zip(x, x).reduce(0) { $0 + $1.0 * $1.1 }, sxy = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
        guard sxx > 0 else { throw DBMError("expected some non-zero x") }
        let slope = sxy / sxx
        let rss = zip(x, y).reduce(0) { $0 + ($1.1 - slope * $1.0) * ($1.1 - slope * $1.0) }
        let syy = y.reduce(0) { $0 + $1 * $1 }
        return (slope, (rss / Double(x.count - 1) / sxx).squareRoot(), syy > 0 ? 1 - rss / syy : 1)
    }
}
