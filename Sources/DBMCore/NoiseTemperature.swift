import Foundation

/// The noise temperature T of one run, from the increments of its levels between records (DESIGN §2):
/// the eigenvalues x_i of X = WᵀW move as the Wishart-type Dyson Brownian motion
///
///     dx_i = [2√x_i u_iᵀF v_i + 2TN + 2T Σ_{j≠i} (x_i + x_j)/(x_i − x_j)] dt + √(8 T x_i) dB_i,
///
/// so over a record interval δt the increment δx_i has variance 8 T x_i δt around its drift. The drift is
/// removed by a least-squares fit of δx_i, level by level, on (1, x_i, R_i) with R_i = Σ_{j≠i}(x_i + x_j)/(x_i − x_j):
/// near a stationary point the force term is affine in x_i and the repulsion is 2T R_i. Then
///
///     T_i = Σ_r e_i(r)² / Σ_r 8 x_i(r) δt · n/(n − p),     T = Σ_i Σ_r e_i(r)² / Σ_i Σ_r 8 x_i(r) δt · n/(n − p),
///
/// with e the fit residuals, n the increments per level and p = 3 fitted coefficients (p = 2 for one level).
/// For SGD, t = n·α: δt = α times the steps between records, and T ∝ α/|B| (the linear scaling rule).
/// The estimate assumes δt well below the relaxation time of the levels (record every step or every few
/// steps); over longer intervals the increments see the restoring force and T is underestimated.
public enum NoiseTemperature {
    public struct Estimate {
        /// The pooled estimate over all levels, and its standard error √(2/dof)·T.
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
        var rssTotal = 0.0, scaleTotal = 0.0
        var perLevel = [Double](repeating: 0, count: count)
        for i in 0..<count {
            // Rows of the design matrix: (1, x_i, R_i) at the start of each increment; y = δx_i.
            var a = [Double](repeating: 0, count: n * p), y = [Double](repeating: 0, count: n)
            var scale = 0.0
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
                scale += 8 * xi * dt
            }
            let rss = leastSquaresResidual(a, rows: n, cols: p, y)
            let correction = Double(n) / Double(n - p)
            perLevel[i] = rss / scale * correction
            rssTotal += rss * correction
            scaleTotal += scale
        }
        let t = rssTotal / scaleTotal
        return Estimate(temperature: t, standardError: t * (2 / Double(count * (n - p))).squareRoot(),
                        perLevel: perLevel, increments: n)
    }

    /// The residual sum of squares of the least-squares fit of y on the columns of a (rows × cols, row-major),
    /// by modified Gram–Schmidt on the columns; a column that is collinear with the kept ones is dropped (a
    /// level that never moved, or R_i ∝ x_i for two levels at a fixed ratio).
    static func leastSquaresResidual(_ a: [Double], rows: Int, cols: Int, _ y: [Double]) -> Double {
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
        var e = y
        for b in basis {
            let d = zip(e, b).reduce(0) { $0 + $1.0 * $1.1 }
            for r in 0..<rows { e[r] -= d * b[r] }
        }
        return e.reduce(0) { $0 + $1 * $1 }
    }
}
