import CBLAS
import Foundation

/// Kernels of the random-matrix diagnostics (plugins/*.lua) that would be too slow as Lua loops:
/// the Kolmogorov–Smirnov distance of a sample to a model CDF, the least-squares polynomial that
/// unfolds a spectrum, and the Clauset–Shalizi–Newman scan of power-law fits over every candidate
/// x_min (O(n²)). The plugins keep the formulas readable and call these for the loops.
public enum Spectral {

    // ------------------------------------------------------------------ Kolmogorov–Smirnov

    /// KS distance sup_x |F_n(x) − F(x)| between the empirical CDF F_n of n ascending samples x_1 ≤ … ≤ x_n
    /// and a model CDF F given by its values F_i = F(x_i): D = max_i max(i/n − F_i, F_i − (i−1)/n).
    /// Tied samples are handled exactly (F_n jumps over the whole tie). NaN for n = 0.
    public static func ksDistance(_ cdf: UnsafeBufferPointer<Double>) -> Double {
        let n = cdf.count
        guard n > 0 else { return .nan }
        let inv = 1 / Double(n)
        var d = 0.0
        for i in 0..<n {
            let f = cdf[i]
            d = Swift.max(d, Double(i + 1) * inv - f, f - Double(i) * inv)
        }
        return d
    }

    // ------------------------------------------------------------------ least-squares polynomial

    /// Values at the x_i of the least-squares polynomial of the given degree through the points (x_i, y_i):
    /// p(x) = Σ_{j≤d} c_j T_j(t), t = (2x − x_min − x_max)/(x_max − x_min) ∈ [−1, 1], T_j the Chebyshev
    /// polynomials, c from LAPACK's QR solver (dgels) on the design matrix T_j(t_i) (well conditioned even when
    /// the x_i cluster, unlike the normal equations). Shapes: x (m), y (m) → (m).
    /// Needs at least degree + 1 distinct x values; all x equal: the mean of y.
    public static func polynomialFitValues(_ x: [Double], _ y: [Double], degree: Int) throws -> [Double] {
        let m = x.count
        guard y.count == m else { throw DBMError("expected as many y values as x values, got \(y.count) and \(m)") }
        guard degree >= 0, degree < max(m, 1) else {
            throw DBMError("expected a degree in 0..<\(max(m, 1)) (fewer than the \(m) points), got \(degree)")
        }
        let cols = degree + 1
        guard let lo = x.min(), let hi = x.max() else { return [] }
        guard x.allSatisfy({ $0.isFinite }), y.allSatisfy({ $0.isFinite }) else { throw DBMError("expected finite x and y values") }
        if lo == hi {
            guard degree == 0 else {
                throw DBMError("a polynomial of degree \(degree) needs at least \(cols) distinct x values, got 1")
            }
            return [Double](repeating: y.reduce(0, +) / Double(m), count: m)
        }
        let distinct = Set(x).count
        guard distinct >= cols else {
            throw DBMError("a polynomial of degree \(degree) needs at least \(cols) distinct x values, got \(distinct)")
        }
        guard m <= Int(Int32.max) / cols else { throw DBMError("expected fewer than \(Int(Int32.max) / cols) points for LAPACK, got \(m)") }
        // Design matrix, column-major m × cols: a[i + j·m] = T_j(t_i).
        var a = [Double](repeating: 0, count: m * cols)
        for i in 0..<m {
            let t = (2 * x[i] - lo - hi) / (hi - lo)
            a[i] = 1
            if cols > 1 { a[i + m] = t }
            if cols > 2 { for j in 2..<cols { a[i + j * m] = 2 * t * a[i + (j - 1) * m] - a[i + (j - 2) * m] } }
        }
        let design = a
        var b = y
        var query = 0.0
        let n32 = Int32(m), c32 = Int32(cols), trans = CChar(UInt8(ascii: "N"))
        var info = LAPACKE_dgels_work(LAPACK_COL_MAJOR, trans, n32, c32, 1, &a, n32, &b, n32, &query, -1)
        guard info == 0 else { throw DBMError("LAPACK dgels workspace query failed (info = \(info))") }
        var work = [Double](repeating: 0, count: max(1, Int(query)))
        info = LAPACKE_dgels_work(LAPACK_COL_MAJOR, trans, n32, c32, 1, &a, n32, &b, n32, &work, Int32(work.count))
        guard info == 0 else { throw DBMError("LAPACK dgels failed (info = \(info)): the design matrix is rank deficient") }
        // b[0..<cols] holds the coefficients; the fitted values are design · c.
        var fitted = [Double](repeating: 0, count: m)
        for j in 0..<cols { let c = b[j]; for i in 0..<m { fitted[i] += design[i + j * m] * c } }
        return fitted
    }

    // ------------------------------------------------------------------ power-law tail (Clauset et al.)

    /// Power-law fits p(x) ∝ x^{−α} of the tail x ≥ x_min for every candidate x_min among the levels
    /// (Clauset, Shalizi & Newman, SIAM Rev. 51 (2009) 661, eqs. 3.1 and 3.9):
    ///   α̂ = 1 + n / Σ_{x_i ≥ x_min} log(x_i / x_min),
    ///   D = KS distance of the tail to the fitted CDF P(x) = 1 − (x/x_min)^{1−α̂}.
    /// Shapes: levels (n), ascending and finite → alpha (n), ks (n); entry k belongs to x_min = levels[k].
    /// A level is a candidate when it is positive, is the first of its run of equal values (the tail is
    /// every level ≥ x_min), and leaves a tail of at least `minTail` levels with a positive log sum;
    /// the other entries are NaN.
    ///
    /// `distance` chooses the KS distance: `.twoSided` compares the fitted CDF with the empirical one on both
    /// sides of each step, max_j max((j+1)/n − P_j, P_j − j/n) (Clauset et al. eq. 3.9); `.powerlaw` compares it
    /// with j/n only, max_j |P_j − j/n|, as the `powerlaw` package and WeightWatcher 0.7.7 (WW_powerlaw.WWFit) do.
    /// With `.powerlaw` every position is a candidate (WeightWatcher's x_min = data[i] for i < n − 1, the tail
    /// data[i:], ties included); with `.twoSided` only the first of a run of equal levels.
    ///
    /// D costs O(n) per candidate, O(n²) in all. Unless `exhaustive`, only the minimum of D is computed
    /// exactly: a lower bound of each D (the same KS terms at every 8th tail level) orders the candidates,
    /// and a candidate whose bound or partial maximum already exceeds the smallest D found stops there and
    /// gets D = +∞. Every candidate that attains the minimum keeps its exact D, so the argmin (and its α̂)
    /// is that of the exhaustive scan; typically 3–5× faster.
    public enum KSDistance: String, Sendable { case twoSided = "two-sided", powerlaw }

    public static func powerLawScan(_ x: UnsafeBufferPointer<Double>, minTail: Int, exhaustive: Bool = true,
                                    distance: KSDistance = .twoSided) -> (alpha: [Double], ks: [Double]) {
        let n = x.count
        var alpha = [Double](repeating: .nan, count: n), ks = [Double](repeating: .nan, count: n)
        guard n > 0 else { return (alpha, ks) }
        // logs[i] = log x_i for positive levels; suffix[k] = Σ_{i ≥ k} log x_i over them.
        var logs = [Double](repeating: 0, count: n)
        for i in 0..<n where x[i] > 0 { logs[i] = Foundation.log(x[i]) }
        var suffix = [Double](repeating: 0, count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) { suffix[i] = suffix[i + 1] + logs[i] }
        var candidates: [Int] = []
        for k in 0..<n {
            let tail = n - k
            let firstOfRun = k == 0 || x[k - 1] != x[k] || distance == .powerlaw
            guard x[k] > 0, tail >= Swift.max(minTail, 1), firstOfRun else { continue }
            let logSum = suffix[k] - Double(tail) * logs[k]          // Σ log(x_i / x_min)
            guard logSum > 0 else { continue }
            alpha[k] = 1 + Double(tail) / logSum
            candidates.append(k)
        }
        logs.withUnsafeBufferPointer { L in
            let base = L.baseAddress!
            if exhaustive {
                for k in candidates { ks[k] = powerLawKS(base + k, n - k, exponent: 1 - alpha[k], distance: distance) }
                return
            }
            let bound = candidates.map { powerLawKSBound(base + $0, n - $0, exponent: 1 - alpha[$0], every: 8, distance: distance) }
            var best = Double.infinity
            for c in bound.indices.sorted(by: { bound[$0] < bound[$1] }) {
                let k = candidates[c]
                if bound[c] > best * (1 + 1e-12) { ks[k] = .infinity; continue }   // slack: the two exps differ by ulps
                ks[k] = powerLawKS(base + k, n - k, exponent: 1 - alpha[k], distance: distance, stopAbove: best)
                best = Swift.min(best, ks[k])
            }
        }
        return (alpha, ks)
    }

    /// KS distance of the ascending tail (given by its logs, L[0] = log x_min) to the power-law CDF
    /// P(x) = 1 − (x/x_min)^e, e = 1 − α < 0: max_j max((j+1)/n − P_j, P_j − j/n) (two-sided), or
    /// max_j max(j/n − P_j, P_j − j/n) (`.powerlaw`), four levels at a time.
    /// Returns +∞ as soon as the running maximum exceeds `stopAbove`.
    static func powerLawKS(_ L: UnsafePointer<Double>, _ n: Int, exponent e: Double, distance: KSDistance,
                           stopAbove: Double = .infinity) -> Double {
        let inv = 1 / Double(n), l0 = L[0]
        let above = distance == .twoSided ? 1.0 : 0.0   // the empirical CDF the fit is compared with from below: (j + above)/n
        var d4 = SIMD4<Double>(repeating: 0)
        var j4 = SIMD4<Double>(0, 1, 2, 3)
        var j = 0
        while j + 4 <= n {
            let logs = UnsafeRawPointer(L + j).loadUnaligned(as: SIMD4<Double>.self)
            let p = 1 - expNonPositive(e * (logs - l0))
            d4 = pointwiseMax(d4, pointwiseMax((j4 + above) * inv - p, p - j4 * inv))
            j4 += 4
            j += 4
            if j & 31 == 0 && d4.max() > stopAbove { return .infinity }
        }
        var d = d4.max()
        while j < n {
            let p = 1 - Foundation.exp(e * (L[j] - l0))
            d = Swift.max(d, (Double(j) + above) * inv - p, p - Double(j) * inv)
            j += 1
        }
        return d > stopAbove ? .infinity : d
    }

    /// A lower bound of powerLawKS: the same terms at every `every`-th tail level only.
    static func powerLawKSBound(_ L: UnsafePointer<Double>, _ n: Int, exponent e: Double, every: Int, distance: KSDistance) -> Double {
        let inv = 1 / Double(n), l0 = L[0]
        let above = distance == .twoSided ? 1.0 : 0.0
        var d = 0.0
        for j in stride(from: 0, to: n, by: every) {
            let p = 1 - Foundation.exp(e * (L[j] - l0))
            d = Swift.max(d, (Double(j) + above) * inv - p, p - Double(j) * inv)
        }
        return d
    }

    /// e^y lane by lane for y ≤ 0: y = k·ln 2 + r with |r| ≤ ½ ln 2 (Cody–Waite reduction, ln 2 in two parts;
    /// k rounded by adding 1.5·2⁵², whose low mantissa bits then hold k), e^r by its Taylor polynomial to r¹³
    /// (truncation error below 1e-17), times 2^k written into the exponent bits. Agrees with Foundation.exp to
    /// a few ulp; y < −708 gives 0.
    @inline(__always)
    static func expNonPositive(_ y: SIMD4<Double>) -> SIMD4<Double> {
        let ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10, log2e = 1.44269504088896340736
        let shifter = SIMD4<Double>(repeating: 6755399441055744.0)
        let tiny = y .< -708
        let yc = y.replacing(with: -708, where: tiny)
        let shifted = yc * log2e + shifter
        let k = shifted - shifter
        let r = yc - k * ln2Hi - k * ln2Lo
        var p = SIMD4<Double>(repeating: 1.0 / 6227020800)          // 1/13!
        p = p * r + 1.0 / 479001600                                  // 1/12!
        p = p * r + 1.0 / 39916800
        p = p * r + 1.0 / 3628800
        p = p * r + 1.0 / 362880
        p = p * r + 1.0 / 40320
        p = p * r + 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let kBits = unsafeBitCast(shifted, to: SIMD4<UInt64>.self) &- unsafeBitCast(shifter, to: SIMD4<UInt64>.self)
        let scale = unsafeBitCast((kBits &+ 1023) &<< 52, to: SIMD4<Double>.self)
        return (p * scale).replacing(with: 0, where: tiny)
    }
}
