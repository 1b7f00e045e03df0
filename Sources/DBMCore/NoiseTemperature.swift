import Foundation

/// The noise temperature T of one run, from the increments of its levels between records (DESIGN §2):
/// the eigenvalues x_i of X = WᵀW move as the Wishart-type Dyson Brownian motion
///
///     dx_i = [2√x_i u_iᵀF v_i + 2TN + 2T Σ_{j≠i} (x_i + x_j)/(x_i − x_j)] dt + √(8 T x_i) dB_i,
///
/// so over a record interval δt the increment δx_i has variance 8 T x_i δt around its drift. The drift is
/// removed by a least-squares fit of δx_i, level by level, on (1, x_i, R_i) with R_i = Σ_{j≠i}(x_i + x_j)/(x_i − x_j):
/// near a stationary point the force term is affine in x_i and the repulsion is 2T R_i. The residuals e of a
/// least-squares fit with hat matrix H have E e_r² = Σ_s (I − H)²_rs σ_s², so for σ_s² = 8 T x_s δt
///
///     E Σ_r e_r² = 8 T δt Σ_r x_r (1 − H_rr)     and     T = Σ_i Σ_r e_i(r)² / Σ_i Σ_r 8 x_i(r) δt (1 − H_rr),
///
/// unbiased for increments whose drift the fit describes, whatever the path of x_i (the n/(n − p) correction
/// used before is the same when the leverages do not follow x_i; for Brownian matrices they agreed to 10⁻⁴).
/// The standard error is that of a sum of independent increments of unequal variances: √(2 Σ w_s²) / Σ w_s · T
/// with w_s = x_s (1 − H_ss). The √(2/dof)·T used before assumed equal variances and was too small where the
/// levels spread: (estimate − T)/stderr had a spread of 1.27 (40 × 20 matrices) and 1.44 (24 × 20), now 1.0–1.05.
/// For SGD, t = n·α: δt = α times the steps between records, and T ∝ α/|B| (the linear scaling rule).
/// The estimate assumes δt well below the relaxation time of the levels (record every step or every few
/// steps): the increment's variance is 8 T x δt (1 + b′ δt) to second order, b′ the slope of the drift along
/// x_i, negative (the repulsion of close neighbours, the restoring force), so T comes out low. Measured for
/// matrix Brownian motion (40 × 20, T = 0.01, 400 records, 200 runs): −0.68 ± 0.14% at δt = 0.0025, −1.11% at
/// 0.01, −2.06% at 0.04, about 0.5 to 1.1 standard errors of one run; it falls as δt^0.6, not as δt: close
/// encounters of levels, where the expansion fails, dominate it.
public enum NoiseTemperature {
    public struct Estimate {
        /// The pooled estimate over all levels, and its standard error √(2 Σ w²)/Σ w · T (see above).
        public let temperature: Double
        public let standardError: Double
        /// The estimate of each level, in the order of the columns.
        public let perLevel: [Double]
        /// Increments used per level.
        public let increments: Int
    }

    /// history is (records, levels): each row the ascending levels at one record, δt apart.
    public static func estimate(history: Tensor, dt: Double) throws -> Estimate {
        guard history.shape.count == 2 else {
            throw DBMError("expected a (records, levels) history, got shape \(history.shape)")
        }
        guard dt.isFinite, dt > 0 else { throw DBMError("dt must be finite and > 0, got \(dt)") }
        let (records, count) = (history.shape[0], history.shape[1])
        let p = count > 1 ? 3 : 2
        guard count >= 1, records - 1 > p + 1 else {
            throw DBMError("expected at least \(p + 3) records of at least one level, got \(records) × \(count)")
        }
        let x = history.toDoubles()
        if let v = x.first(where: { !($0 > 0 && $0.isFinite) }) {
            throw DBMError("the levels must be positive and finite (eigenvalues of WᵀW), found \(v)")
        }
        let n = records - 1
        var rssTotal = 0.0, weightTotal = 0.0, weightSquares = 0.0
        var perLevel = [Double](repeating: 0, count: count)
        for i in 0..<count {
            // Rows of the design matrix: (1, x_i, R_i) at the start of each increment; y = δx_i.
            var a = [Double](repeating: 0, count: n * p), y = [Double](repeating: 0, count: n)
            for r in 0..<n {
                let row = x[(r * count)..<((r + 1) * count)]
                let xi = row[row.startIndex + i]
                a[r * p] = 1; a[r * p + 1] = xi
                if p == 3 {
                    var rep = 0.0
                    for (j, xj) in row.enumerated() where j != i { rep += (xi + xj) / (xi - xj) }
                    a[r * p + 2] = rep
                }
                y[r] = x[(r + 1) * count + i] - xi
            }
            let (rss, leverage) = leastSquaresResidual(a, rows: n, cols: p, y)
            // w_r = 8 x_r δt (1 − H_rr): E e_r² summed over the rows is T Σ w_r.
            var weight = 0.0
            for r in 0..<n {
                let w = 8 * x[r * count + i] * dt * (1 - leverage[r])
                weight += w; weightSquares += w * w
            }
            perLevel[i] = rss / weight
            rssTotal += rss
            weightTotal += weight
        }
        let t = rssTotal / weightTotal
        return Estimate(temperature: t, standardError: t * (2 * weightSquares).squareRoot() / weightTotal,
                        perLevel: perLevel, increments: n)
    }

    /// The residual sum of squares of the least-squares fit of y on the columns of a (rows × cols, row-major),
    /// and the leverages H_rr (the diagonal of the hat matrix), by modified Gram–Schmidt on the columns; a
    /// column that is collinear with the kept ones is dropped (a level that never moved, or R_i ∝ x_i for two
    /// levels at a fixed ratio).
    static func leastSquaresResidual(_ a: [Double], rows: Int, cols: Int, _ y: [Double]) -> (rss: Double, leverage: [Double]) {
        var basis: [[Double]] = []
        for j in 0..<cols {
            var v = (0..<rows).map { a[$0 * cols + j] }
            for b in basis {
                let d = zip(v, b).reduce(0) { $0 + $1.0 * $1.1 }
                for r in 0..<rows { v[r] -= d * b[r] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let original = (0..<rows).reduce(0.0) { $0 + a[$1 * cols + j] * a[$1 * cols + j] }.squareRoot()
            guard norm > 1e-10 * max(original, 1e-300), norm.isFinite else { continue }
            basis.append(v.map { $0 / norm })
        }
        var e = y, leverage = [Double](repeating: 0, count: rows)
        for b in basis {
            let d = zip(e, b).reduce(0) { $0 + $1.0 * $1.1 }
            for r in 0..<rows { e[r] -= d * b[r]; leverage[r] += b[r] * b[r] }
        }
        return (e.reduce(0) { $0 + $1 * $1 }, leverage)
    }
}
