import DBMCore
import Foundation

/// Dyson Brownian motion (DESIGN §2, "Direct DBM simulation" of §3): N levels x_1 < … < x_N with β = 1
/// Coulomb repulsion in the harmonic potential V(x) = k x²/2 at temperature T,
///
///     dx_i = [ −k x_i + T Σ_{j≠i} 1/(x_i − x_j) ] dt + √(2T) dB_i,
///
/// the β = 1 DBM of DESIGN §2 with K_i = −V′(x_i), T_e = T. It is the overdamped Langevin equation
/// dx = −∇U dt + √(2T) dB for U = Σ_i k x_i²/2 − T Σ_{i<j} log|x_i − x_j|, so its stationary density is
/// exp(−U/T) = Π_{i<j} |x_i − x_j| · exp(−Σ_i k x_i²/(2T)): the β = 1 Coulomb gas. With y = x √(k/T) this
/// is the Gaussian β-ensemble Π|Δy|^β e^{−Σy²/2}, whose density is a semicircle of radius √(2βN); hence
/// R = √(2 N T / k) in x, exactly as DESIGN §2 states (check: the saddle point N k x/T = N² ⨍ρ(y)/(x − y) dy
/// and ⨍ρ(y)/(x − y) dy = 2x/R² for a semicircle give R² = 2NT/k). At finite N, E Σy² = N + βN(N − 1)/2
/// makes the effective radius √(1 + 1/N) larger (1% at N = 50).
///
/// Integration: Euler–Maruyama with time step dt. A step whose proposal would cross two neighbouring levels
/// (x′_{i+1} ≤ x′_i) is rejected and replaced by two half steps whose Brownian increments are the two halves
/// of the same Brownian path (Brownian-bridge split: ΔB₁ = ΔB/2 + √(h/4) Z, ΔB₂ = ΔB − ΔB₁), recursively.
/// Refining the same path rather than redrawing the noise keeps the rejection from biasing the noise
/// (a redraw would throw away exactly the large kicks). `rejections` counts the halvings. After
/// `maxHalvings` halvings in a row (sub-step 2^−40 dt; it happens when a proposal leaves a gap of ~10⁻¹⁰,
/// whose repulsion then overshoots the neighbours: 2 in 2.6·10⁵ steps at dt = 2·10⁻³, N = 50) the piece is
/// skipped — the levels stay put for that sub-interval — and counted in `skippedSubsteps`: the order always holds.
/// (Tried and dropped: also halving whenever hT > c g², g the smallest gap, for c = 1 and 0.1. The
/// refinements cascade — each finer level again leaves gaps ≪ √h with finite probability — and ran ~30×
/// slower with more skips, not fewer.) Cost O(N²) per step (the pair sum), no allocation inside `step`.
public final class DysonSimulator {
    /// Harmonic stiffness k of V(x) = k x²/2, temperature T, Euler–Maruyama time step dt.
    public let k: Double
    public let temperature: Double
    public let dt: Double
    /// The number of levels N.
    public let count: Int
    /// Elapsed time: the number of steps times dt.
    public private(set) var time = 0.0
    /// Steps taken by `step`.
    public private(set) var steps = 0
    /// Proposals rejected because they would have crossed two levels (each one halved its sub-step).
    public private(set) var rejections = 0
    /// Sub-steps skipped after `maxHalvings` halvings in a row (expected 0).
    public private(set) var skippedSubsteps = 0
    /// Halvings allowed in a row before a sub-step is skipped.
    public static let maxHalvings = 40

    private let generator: Generator
    // x: levels (ascending); trial: proposal; drift: K_i + T Σ 1/(x_i − x_j) at x;
    // noise: 2·(maxHalvings + 1) rows of N Brownian increments, rows 2d and 2d+1 the halves at depth d.
    private var x: UnsafeMutablePointer<Double>
    private var trial: UnsafeMutablePointer<Double>
    private let drift: UnsafeMutablePointer<Double>
    private let noise: UnsafeMutablePointer<Double>

    /// Starts from the given levels (any order; sorted ascending here; they must be distinct and finite).
    public init(levels: [Double], k: Double, temperature: Double, dt: Double, seed: UInt64, stream: UInt64 = 0) throws {
        guard levels.count >= 2 else { throw DBMError("DysonSimulator: levels needs at least 2 levels (got \(levels.count))") }
        guard levels.allSatisfy({ $0.isFinite }) else { throw DBMError("DysonSimulator: levels must all be finite") }
        try Self.validate(k: k, temperature: temperature, dt: dt)
        let sorted = levels.sorted()
        for i in 1..<sorted.count where !(sorted[i] > sorted[i - 1]) {
            throw DBMError("DysonSimulator: levels must be distinct (\(sorted[i]) appears twice)")
        }
        self.k = k
        self.temperature = temperature
        self.dt = dt
        self.count = sorted.count
        self.generator = Generator(seed: seed, stream: stream)
        x = .allocate(capacity: count)
        trial = .allocate(capacity: count)
        drift = .allocate(capacity: count)
        noise = .allocate(capacity: 2 * (Self.maxHalvings + 1) * count)
        for i in 0..<count { x[i] = sorted[i] }
    }

    /// Starts from n levels equally spaced over (−R, R), R = √(2nT/k) the stationary semicircle's radius.
    public convenience init(n: Int, k: Double, temperature: Double, dt: Double, seed: UInt64, stream: UInt64 = 0) throws {
        guard n >= 2 else { throw DBMError("DysonSimulator: n must be at least 2 (got \(n))") }
        try Self.validate(k: k, temperature: temperature, dt: dt)
        let r = (2 * Double(n) * temperature / k).squareRoot()
        try self.init(levels: (0..<n).map { r * (2 * (Double($0) + 0.5) / Double(n) - 1) },
                      k: k, temperature: temperature, dt: dt, seed: seed, stream: stream)
    }

    private static func validate(k: Double, temperature: Double, dt: Double) throws {
        guard k.isFinite, k > 0 else { throw DBMError("DysonSimulator: k must be finite and > 0 (got \(k))") }
        guard temperature.isFinite, temperature > 0 else {
            throw DBMError("DysonSimulator: temperature must be finite and > 0 (got \(temperature))")
        }
        guard dt.isFinite, dt > 0 else { throw DBMError("DysonSimulator: dt must be finite and > 0 (got \(dt))") }
    }

    deinit {
        x.deallocate(); trial.deallocate(); drift.deallocate(); noise.deallocate()
    }

    /// The stationary semicircle's radius R = √(2NT/k).
    public var semicircleRadius: Double { (2 * Double(count) * temperature / k).squareRoot() }

    /// The current levels, ascending.
    public var levelValues: [Double] { Array(UnsafeBufferPointer(start: x, count: count)) }

    /// The current levels as a float64 tensor of shape (N), ascending.
    public var levels: Tensor {
        get throws {
            let t = try Tensor(shape: [count], dtype: .float64, zeroed: false)
            t.pointer(Double.self).update(from: x, count: count)
            return t
        }
    }

    /// Advances n steps of dt (n ≥ 0).
    public func step(_ n: Int = 1) {
        let sd = dt.squareRoot()
        for _ in 0..<max(n, 0) {
            for i in 0..<count { noise[i] = sd * generator.normal() }
            advance(dt, increments: noise, depth: 0)
            steps += 1
            time = Double(steps) * dt
        }
    }

    // ------------------------------------------------------------------ Euler–Maruyama with halving

    /// drift_i = −k x_i + T Σ_{j≠i} 1/(x_i − x_j), each pair once.
    private func computeDrift() {
        let n = count, t = temperature
        for i in 0..<n { drift[i] = -k * x[i] }
        for i in 0..<n {
            let xi = x[i]
            var fi = 0.0
            for j in (i + 1)..<n {
                let c = t / (xi - x[j])
                fi += c
                drift[j] -= c
            }
            drift[i] += fi
        }
    }

    /// One Euler–Maruyama sub-step of length h with Brownian increments dB (N of them, variance h each);
    /// a crossing proposal is replaced by two half sub-steps along the same Brownian path.
    private func advance(_ h: Double, increments dB: UnsafeMutablePointer<Double>, depth: Int) {
        let canSplit = depth < Self.maxHalvings
        computeDrift()
        let amplitude = (2 * temperature).squareRoot()
        for i in 0..<count { trial[i] = x[i] + h * drift[i] + amplitude * dB[i] }
        var ordered = true
        for i in 1..<count where !(trial[i] > trial[i - 1]) { ordered = false; break }
        if ordered { swap(&x, &trial); return }
        guard canSplit else { skippedSubsteps += 1; return }
        rejections += 1
        split(h, increments: dB, depth: depth)
    }

    /// Replaces a sub-step of length h by two of length h/2 along the same Brownian path (bridge split).
    private func split(_ h: Double, increments dB: UnsafeMutablePointer<Double>, depth: Int) {
        let first = noise + (2 * (depth + 1)) * count, second = first + count
        let bridge = (h / 4).squareRoot()
        for i in 0..<count {
            first[i] = 0.5 * dB[i] + bridge * generator.normal()
            second[i] = dB[i] - first[i]
        }
        advance(h / 2, increments: first, depth: depth + 1)
        advance(h / 2, increments: second, depth: depth + 1)
    }
}
