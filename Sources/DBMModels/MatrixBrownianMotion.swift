import DBMCore
import Foundation

/// Matrix Brownian motion ("Direct DBM simulation" of DESIGN §3): every entry of W (rows × cols, float64)
/// follows the Ornstein–Uhlenbeck process dW = −γ W dt + √(2T) dB independently, integrated with its exact
/// transition over a step dt,
///
///     W ← e^{−γ dt} W + √(T (1 − e^{−2γ dt})/γ) · G,   G iid N(0, 1),
///
/// which for γ = 0 is the Brownian step W ← W + √(2T dt) G (T = ½, the default: W ← W + √dt·G). Being exact,
/// it holds for any dt: from W = 0 the entries at time t have variance 2Tt (γ = 0) or T(1 − e^{−2γt})/γ,
/// and the stationary variance is σ² = T/γ. (The Euler form W ← (1 − γ dt) W + √(2T dt) G, which is what SGD
/// does on a quadratic loss, is exact only for γ = 0: its stationary variance is T/(γ(1 − γ dt/2)), the
/// α/(2 − α) effect of DESIGN §2.) The eigenvalues of WᵀW then perform the Wishart-type DBM of DESIGN §2
/// (`DysonSimulator` with `.wishart` integrates the same process in the eigenvalues alone), and at each
/// time follow Marchenko–Pastur with σ² the entries' variance.
///
/// Random numbers: one `Generator(seed:stream:)`, the entries of G in row-major order at each step, drawn by
/// its ziggurat fill (a few ns per deviate; Box–Muller's `normal()` made it 10× slower).
public final class MatrixBrownianMotion: SteppedModel {
    public let rows: Int
    public let cols: Int
    public let dt: Double
    /// Temperature T: the entries' noise is √(2T) dB.
    public let temperature: Double
    /// Restoring rate γ ≥ 0 (0: plain Brownian motion).
    public let restoring: Double
    /// W (rows, cols), float64, live: `step` updates it in place, so a script can set it between steps.
    public let weight: Tensor
    public private(set) var stepCount = 0

    private let generator: Generator
    private let decay: Double        // e^{−γ dt}
    private let noiseScale: Double   // √(T (1 − e^{−2γ dt})/γ)
    private let noise: UnsafeMutableBufferPointer<Double>   // G, rows·cols

    /// Starts from W = 0.
    public init(rows: Int, cols: Int, dt: Double, temperature: Double = 0.5, restoring: Double = 0,
                seed: UInt64, stream: UInt64 = 0) throws {
        guard rows >= 1, cols >= 1 else {
            throw DBMError("MatrixBrownianMotion: rows and cols must be >= 1 (got \(rows) and \(cols))")
        }
        guard dt.isFinite, dt > 0 else { throw DBMError("MatrixBrownianMotion: dt must be finite and > 0 (got \(dt))") }
        guard temperature.isFinite, temperature > 0 else {
            throw DBMError("MatrixBrownianMotion: temperature must be finite and > 0 (got \(temperature))")
        }
        guard restoring.isFinite, restoring >= 0 else {
            throw DBMError("MatrixBrownianMotion: restoring (γ) must be finite and >= 0 (got \(restoring))")
        }
        self.rows = rows; self.cols = cols; self.dt = dt; self.temperature = temperature; self.restoring = restoring
        weight = try Tensor(shape: [rows, cols], dtype: .float64)
        generator = Generator(seed: seed, stream: stream)
        decay = Foundation.exp(-restoring * dt)
        // T(1 − e^{−2γ dt})/γ → 2T dt as γ → 0; expm1 keeps it accurate for small γ dt.
        noiseScale = (restoring == 0 ? 2 * temperature * dt : -temperature * Foundation.expm1(-2 * restoring * dt) / restoring).squareRoot()
        noise = .allocate(capacity: rows * cols)
    }

    /// Starts from a copy of W0 (any dtype and layout; 2-D, finite).
    public convenience init(initial w0: Tensor, dt: Double, temperature: Double = 0.5, restoring: Double = 0,
                            seed: UInt64, stream: UInt64 = 0) throws {
        guard w0.rank == 2 else { throw DBMError("MatrixBrownianMotion: initial W must be 2-D (got shape \(w0.shape))") }
        try self.init(rows: w0.shape[0], cols: w0.shape[1], dt: dt, temperature: temperature, restoring: restoring,
                      seed: seed, stream: stream)
        try weight.assign(from: w0)
        guard weight.toDoubles().allSatisfy({ $0.isFinite }) else {
            throw DBMError("MatrixBrownianMotion: initial W must be finite")
        }
    }

    public var modelName: String { "matrix-brownian-motion" }

    /// Elapsed time: steps times dt.
    public var time: Double { Double(stepCount) * dt }

    /// The variance of each entry at time t when started from W = 0: 2Tt (γ = 0) or T(1 − e^{−2γt})/γ.
    public func entryVariance(at t: Double) -> Double {
        restoring == 0 ? 2 * temperature * t : -temperature * Foundation.expm1(-2 * restoring * t) / restoring
    }

    /// Advances n steps of dt (n ≥ 0; n < 0 does nothing): a flat loop over the entries, no allocation.
    public func step(_ n: Int = 1) {
        let w = weight.pointer(Double.self), size = rows * cols
        let a = decay, b = noiseScale
        for _ in 0..<max(n, 0) {
            generator.fillNormalZiggurat(noise)
            for k in 0..<size { w[k] = a * w[k] + b * noise[k] }
            stepCount += 1
        }
    }

    /// The eigenvalues of the smaller Gram matrix, ascending: WᵀW (cols of them) when rows ≥ cols, else WWᵀ
    /// (DESIGN §8's `dbm.gram`); the other Gram matrix has the same ones plus |rows − cols| zeros.
    /// NaN levels when W is not finite (a script may have set it so).
    public func levels() -> [Double] {
        guard let g = try? Linalg.gram(weight), let e = try? Linalg.eigvalsh(g) else {
            return [Double](repeating: .nan, count: min(rows, cols))
        }
        return e.toDoubles()
    }

    /// ("t", the elapsed time); the recorder keeps `time` for the wall clock.
    public func scalars() -> [(String, Double)] { [("t", time)] }

    deinit { noise.deallocate() }
}
