import Foundation

/// The truncated power law p(x) = x^{−α} e^{−Λx} / Z on x ≥ x_min, Z = Λ^{α−1} Γ(1−α, Λx_min), as the alternative to the
/// pure power law of a spectral tail, and the likelihood-ratio test between the two (Clauset, Shalizi & Newman, SIAM
/// Rev. 51 (2009) 661, §5 and Table 6.2; the `powerlaw` package's Truncated_Power_Law and loglikelihood_ratio, which
/// WeightWatcher's distribution_compare(…, 'truncated_power_law', normalized_ratio=True) calls).
extension Spectral {
    public struct TruncatedPowerLawFit: Sendable {
        /// The maximum-likelihood α and Λ (Λ ≥ 0) of the truncated law on the tail.
        public let alpha: Double, lambda: Double
        /// R = Σ_i [log p_PL(x_i) − log p_TPL(x_i)] (≤ 0: the laws are nested, Λ = 0 is the power law),
        /// its normalised form R/√(n σ²) (σ² the variance of the pointwise differences), and the p-value of |R|
        /// for nested laws, P(χ²₁ > 2|R|) = erfc(√|R|): a small p says the truncation is real.
        public let logLikelihoodRatio: Double, normalizedRatio: Double, p: Double
    }

    /// I(α, β) = ∫₁^∞ u^{−α} e^{−βu} du = ∫₀^∞ exp(−(α−1)t − βe^t) dt (β = Λx_min; the generalised exponential integral
    /// E_α(β)); +∞ when it diverges (β = 0, α ≤ 1). Adaptive Simpson in t over the range where the integrand is above
    /// e^{−46} of its peak, relative tolerance 1e-11.
    public static func truncatedPowerLawIntegral(alpha a: Double, beta b: Double) -> Double {
        if b <= 1e-300 { return a > 1 ? 1 / (a - 1) : .infinity }
        let g = { (t: Double) -> Double in -(a - 1) * t - b * Foundation.exp(t) }
        let peak = a < 1 ? Swift.max(0, Foundation.log((1 - a) / b)) : 0
        let top = g(peak)
        var end = peak + 1
        while g(end) > top - 46 && end < 1e6 { end = peak + 2 * (end - peak) }
        let f = { (t: Double) -> Double in Foundation.exp(g(t) - top) }
        var evaluations = 0   // a budget: no input can make the bisection run away
        func simpson(_ l: Double, _ r: Double, _ fl: Double, _ fm: Double, _ fr: Double, _ whole: Double, _ depth: Int) -> Double {
            let m = (l + r) / 2, lm = (l + m) / 2, rm = (m + r) / 2
            let flm = f(lm), frm = f(rm)
            evaluations += 2
            let left = (m - l) / 6 * (fl + 4 * flm + fm), right = (r - m) / 6 * (fm + 4 * frm + fr)
            // (a non-finite estimate cannot improve by bisection: stop there rather than recurse 2^depth times)
            if depth <= 0 || evaluations > 200_000 || !(left + right).isFinite || abs(left + right - whole) <= 1e-11 * 15 * Swift.max(left + right, 1e-300) {
                return left + right + (left + right - whole) / 15
            }
            return simpson(l, m, fl, flm, fm, left, depth - 1) + simpson(m, r, fm, frm, fr, right, depth - 1)
        }
        // The rising side [0, peak] (α < 1), then 16 panels on the falling side, so that the peak cannot fall
        // between the first samples.
        var bounds = peak > 0 ? [0.0] : []
        for k in 0...16 { bounds.append(peak + Double(k) * (end - peak) / 16) }
        var sum = 0.0
        for k in 1..<bounds.count {
            let l = bounds[k - 1], r = bounds[k]
            let fl = f(l), fr = f(r), fm = f((l + r) / 2)
            sum += simpson(l, r, fl, fm, fr, (r - l) / 6 * (fl + 4 * fm + fr), 40)
        }
        return sum * Foundation.exp(top)
    }

    /// Fits the truncated power law to a tail (the levels ≥ xMin) and compares it with the power law of exponent
    /// `alpha` on the same tail. Nelder–Mead on the mean negative log-likelihood in (α, log β), started at the
    /// power law's α and β = x_min/mean(x) (the powerlaw package's start, Λ₀ = 1/mean x); Λ is unconstrained above 0
    /// and α free (the package bounds α to [0, 3], a range that leaves out most weight spectra).
    /// nil when the tail has fewer than 2 levels, x_min ≤ 0, alpha ≤ 1, or x/x_min overflows.
    public static func truncatedPowerLawFit(tail x: [Double], xMin: Double, alpha plAlpha: Double) -> TruncatedPowerLawFit? {
        let n = Double(x.count)
        guard x.count >= 2, xMin > 0, plAlpha > 1 else { return nil }
        let meanLogU = x.reduce(0) { $0 + Foundation.log($1 / xMin) } / n
        let meanU = x.reduce(0) { $0 + $1 / xMin } / n
        guard meanU.isFinite, meanLogU.isFinite else { return nil }   // x/x_min beyond Double's range
        // mean −log p_TPL in units of u = x/x_min (the constant log x_min is left out of both laws alike)
        let cost = { (p: [Double]) -> Double in
            let b = Foundation.exp(p[1])
            let i = truncatedPowerLawIntegral(alpha: p[0], beta: b)
            guard i.isFinite, i > 0 else { return .infinity }
            return Foundation.log(i) + p[0] * meanLogU + b * meanU
        }
        let best = nelderMead(cost, start: [plAlpha, Foundation.log(1 / meanU)], steps: [0.1, 1])
        // The power law is the truncated law at Λ = 0: where the optimiser stopped short of it (a tail without
        // truncation drives β towards 0 only asymptotically), the power law itself is the maximum.
        let plCost = -Foundation.log(plAlpha - 1) + plAlpha * meanLogU
        guard cost(best) < plCost else {
            return TruncatedPowerLawFit(alpha: plAlpha, lambda: 0, logLikelihoodRatio: 0, normalizedRatio: 0, p: 1)
        }
        let a = best[0], b = Foundation.exp(best[1])
        let logI = Foundation.log(truncatedPowerLawIntegral(alpha: a, beta: b))
        var d = [Double](repeating: 0, count: x.count)
        for (k, xi) in x.enumerated() {
            let u = xi / xMin, logU = Foundation.log(u)
            let pl = Foundation.log(plAlpha - 1) - plAlpha * logU
            let tpl = -a * logU - b * u - logI
            d[k] = pl - tpl
        }
        // R = n (mean −log p_TPL − mean −log p_PL), < 0 by the guard above; Σd is the same up to rounding.
        let r = n * (cost(best) - plCost), mean = d.reduce(0, +) / n
        let variance = d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        return TruncatedPowerLawFit(alpha: a, lambda: b / xMin, logLikelihoodRatio: r,
                                    normalizedRatio: variance > 0 ? r / (n * variance).squareRoot() : 0,
                                    p: erfc(abs(r).squareRoot()))
    }

    /// Nelder–Mead minimisation (standard coefficients 1, 2, ½, ½) from `start` with initial steps `steps`, until the
    /// simplex's values agree to 1e-12 or 2000 iterations.
    static func nelderMead(_ f: ([Double]) -> Double, start: [Double], steps: [Double]) -> [Double] {
        let dim = start.count
        var simplex = [start] + (0..<dim).map { i in var p = start; p[i] += steps[i]; return p }
        var values = simplex.map(f)
        for _ in 0..<2000 {
            let order = values.indices.sorted { values[$0] < values[$1] }
            simplex = order.map { simplex[$0] }; values = order.map { values[$0] }
            if abs(values[dim] - values[0]) <= 1e-12 * (abs(values[0]) + 1e-12) { break }
            let centroid = (0..<dim).map { j in simplex[0..<dim].reduce(0) { $0 + $1[j] } / Double(dim) }
            let along = { (t: Double) -> [Double] in (0..<dim).map { centroid[$0] + t * (simplex[dim][$0] - centroid[$0]) } }
            let reflected = along(-1), fr = f(reflected)
            if fr < values[0] {
                let expanded = along(-2), fe = f(expanded)
                (simplex[dim], values[dim]) = fe < fr ? (expanded, fe) : (reflected, fr)
            } else if fr < values[dim - 1] {
                (simplex[dim], values[dim]) = (reflected, fr)
            } else {
                let contracted = along(fr < values[dim] ? -0.5 : 0.5), fc = f(contracted)
                if fc < Swift.min(fr, values[dim]) {
                    (simplex[dim], values[dim]) = (contracted, fc)
                } else {   // shrink towards the best point
                    for i in 1...dim {
                        simplex[i] = (0..<dim).map { simplex[0][$0] + 0.5 * (simplex[i][$0] - simplex[0][$0]) }
                        values[i] = f(simplex[i])
                    }
                }
            }
        }
        return simplex[values.indices.min { values[$0] < values[$1] }!]
    }
}
