import CBLAS
import DBMCore
import Dispatch
import Foundation

/// The Gaussian ("scalar field") RBM of arXiv:2407.16427 (DESIGN §3), trained to reproduce a free scalar
/// field. Visible v ∈ ℝⁿ with fixed mass μ, hidden h ∈ ℝⁿ with σ_h = 1, no biases, W of shape (N_h, N_v):
///     h | v ~ N(σ_h² W v, σ_h²),    v | h ~ N(Wᵀh/μ², 1/μ²),
/// so the visible marginal is N(0, K_RBM⁻¹) with K_RBM = μ²·1 − σ_h² WᵀW. The target is N(0, K_φ⁻¹), by
/// default the 1-d periodic lattice field of mass m, K_φ = (2 + m²)δ_ij − δ_{i,j+1} − δ_{i,j−1}, with
/// eigenvalues κ_p = m² + 2 − 2cos(2πp/n). One update step is the exact positive phase against the
/// negative phase of |B| persistent chains (started at all ones), each advanced by k sweeps (h from v,
/// then v from h):
///     W ← W + α σ_h² W (K_φ⁻¹ − C_B),    C_B = VᵀV/|B|  (V: the chains' visible states, |B| × N_v),
/// the chains' uncentred second moment. At the fixed point ⟨C_B⟩ = K_RBM⁻¹ = K_φ⁻¹, so the eigenvalues
/// of WᵀW go to μ² − κ_p (`expectedLevels`), exactly as α → 0. At finite α the means of the sorted levels
/// are off by O(α) (measured at α = 0.01, |B| = 16: −1.5% for the lowest, +0.35% for the highest; each
/// degenerate pair splits, with Wigner-surmise spacings).
///
/// Random numbers, all from one `Generator(seed:stream:)` in this order: W's n² entries (row-major) by
/// `normal()`, N(0, 0.1²); then at every sweep |B|·n deviates for h, then |B|·n for v, by
/// `fillNormalZiggurat`, unit by unit (all |B| chains of unit 0, then of unit 1, …).
/// The hot loop is small cblas_dgemm calls (two per sweep, two for the update) on buffers carved from one
/// allocation: nothing is allocated in `step`. (Measured at n = 10, |B| = 16, k = 3: 1.6–1.9× faster than
/// the same products as plain Swift loops, which the compiler vectorises for SSE2 only; the ziggurat's
/// 960 deviates take about 2.5 µs of the step's 5–6 µs.)
///
/// If α is so large that a level of WᵀW passes μ², K_RBM is no longer positive definite, the chains
/// diverge and W becomes non-finite; `levels()` then returns NaNs.
public final class ScalarFieldRBM: SteppedModel {
    /// σ_h, the hidden layer's standard deviation.
    public static let hiddenStd = 1.0
    /// Standard deviation of W's initial entries.
    public static let initStd = 0.1

    /// N_v = N_h = n.
    public let n: Int
    /// μ, the visible layer's mass (its conditional variance is 1/μ²).
    public let mass: Double
    public let lr: Double
    public let batchSize: Int
    /// Gibbs sweeps per update.
    public let k: Int
    /// κ, the eigenvalues of the target kernel K_φ, ascending.
    public let targetEigenvalues: [Double]
    /// μ² − κ, the levels WᵀW is trained towards, ascending.
    public let expectedLevels: [Double]
    public let generator: Generator

    /// W, (N_h, N_v) float64, live: read at the start of `step`, written at its end.
    public let weight: Tensor
    public private(set) var stepCount = 0

    // One float64 tensor (so the memory limit applies), carved into (row-major):
    //   kinv (n, n) K_φ⁻¹; c (n, n) C_B of the last step; d (n, n) K_φ⁻¹ − C_B; dw (n, n) the update;
    //   v (N_v, |B|) and h (N_h, |B|): column b is chain b, the transposes of the V and H of the formulas,
    //   so that each sweep is one product with W and the noise fills contiguous rows.
    private let buffer: Tensor
    private let kinv, c, d, dw, v, h: UnsafeMutablePointer<Double>

    /// The paper's setup: the periodic lattice field of mass `fieldMass` on n sites as the target.
    public convenience init(n: Int = 10, mass: Double = 3, fieldMass: Double = 2, lr: Double = 0.1,
                            batchSize: Int = 16, k: Int = 3, seed: UInt64 = 0, stream: UInt64 = 0) throws {
        try self.init(targetKernel: try Self.latticeKernel(n: n, fieldMass: fieldMass), mass: mass, lr: lr,
                      batchSize: batchSize, k: k, seed: seed, stream: stream)
    }

    /// Any target N(0, K⁻¹): `targetKernel` is K, (n, n), symmetric positive definite, with all its
    /// eigenvalues below μ² (else the mode μ² − κ would be negative and WᵀW cannot reach it).
    public convenience init(targetKernel: Tensor, mass: Double = 3, lr: Double = 0.1, batchSize: Int = 16,
                            k: Int = 3, seed: UInt64 = 0, stream: UInt64 = 0) throws {
        let target = try Target(targetKernel, mass: mass)
        try Self.validate(lr: lr, batchSize: batchSize, k: k)
        try self.init(validated: target, mass, lr, batchSize, k, Generator(seed: seed, stream: stream))
    }

    /// K_φ = (2 + m²)δ_ij − δ_{i,j+1} − δ_{i,j−1}, periodic (for n = 2 both neighbours are the same site,
    /// whose entry is −2, as the eigenvalues m² + 2 − 2cos(2πp/n) require).
    public static func latticeKernel(n: Int, fieldMass: Double) throws -> Tensor {
        guard n >= 2, n <= 1 << 12 else { throw DBMError("scalar-field RBM: n must be >= 2 and <= 4096, got \(n)") }
        guard fieldMass.isFinite, fieldMass >= 0 else {
            throw DBMError("scalar-field RBM: fieldMass must be finite and >= 0, got \(fieldMass)")
        }
        var k = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            k[i * n + i] += 2 + fieldMass * fieldMass
            k[i * n + (i + 1) % n] -= 1
            k[i * n + (i + n - 1) % n] -= 1
        }
        return try Tensor.from(k, shape: [n, n], dtype: .float64)
    }

    private static func validate(lr: Double, batchSize: Int, k: Int) throws {
        guard lr.isFinite, lr > 0 else { throw DBMError("scalar-field RBM: lr must be finite and > 0, got \(lr)") }
        guard batchSize >= 1, batchSize <= 1 << 20 else {
            throw DBMError("scalar-field RBM: batchSize must be >= 1 and <= 2^20, got \(batchSize)")
        }
        guard k >= 1 else { throw DBMError("scalar-field RBM: k must be >= 1, got \(k)") }
    }

    /// The checked target: K⁻¹ and the eigenvalues of K.
    private struct Target: Sendable {
        let n: Int
        let kernelInverse: [Double]     // (n, n)
        let eigenvalues: [Double]       // ascending

        init(_ kernel: Tensor, mass: Double) throws {
            guard kernel.rank == 2, kernel.shape[0] == kernel.shape[1], kernel.shape[0] >= 2, kernel.shape[0] <= 1 << 12 else {
                throw DBMError("scalar-field RBM: targetKernel must be a square (n, n) matrix with 2 <= n <= 4096, got shape \(kernel.shape)")
            }
            guard mass.isFinite, mass > 0 else { throw DBMError("scalar-field RBM: mass must be finite and > 0, got \(mass)") }
            let n = kernel.shape[0]
            let a = kernel.toDoubles()
            guard a.allSatisfy({ $0.isFinite }) else { throw DBMError("scalar-field RBM: targetKernel must be finite") }
            let scale = a.map(abs).max()!
            for i in 0..<n { for j in 0..<i where abs(a[i * n + j] - a[j * n + i]) > 1e-12 * scale {
                throw DBMError("scalar-field RBM: the target kernel is not symmetric (K[\(i),\(j)] = \(a[i * n + j]), "
                               + "K[\(j),\(i)] = \(a[j * n + i]))")
            } }
            let (values, vectors) = try Linalg.eigh(try Tensor.from(a, shape: [n, n], dtype: .float64))
            let kappa = values.toDoubles()
            // A relative floor: an eigenvalue at rounding level (e.g. fieldMass = 0, κ_0 = 0) is not positive.
            guard kappa[0] > 1e-12 * abs(kappa[n - 1]) else {
                throw DBMError("scalar-field RBM: the target kernel is not positive definite (smallest eigenvalue \(kappa[0]))")
            }
            guard mass * mass > kappa[n - 1] else {
                throw DBMError("scalar-field RBM: mass² = \(mass * mass) must exceed the target kernel's largest eigenvalue "
                               + "\(kappa[n - 1]): the mode μ² − κ would be negative")
            }
            // K⁻¹ = Q diag(1/κ) Qᵀ, q[r·n + p] = component r of eigenvector p.
            let q = try vectors.contiguous().toDoubles()
            var inverse = [Double](repeating: 0, count: n * n)
            for r in 0..<n { for s in 0..<n {
                var sum = 0.0
                for p in 0..<n { sum += q[r * n + p] * q[s * n + p] / kappa[p] }
                inverse[r * n + s] = sum
            } }
            self.n = n; kernelInverse = inverse; eigenvalues = kappa
        }
    }

    private init(validated target: Target, _ mass: Double, _ lr: Double, _ batchSize: Int, _ k: Int,
                 _ g: Generator) throws {
        let n = target.n
        self.n = n; self.mass = mass; self.lr = lr; self.batchSize = batchSize; self.k = k; generator = g
        targetEigenvalues = target.eigenvalues
        expectedLevels = target.eigenvalues.map { mass * mass - $0 }.reversed()
        let nn = n * n, nb = n * batchSize
        buffer = try Tensor(shape: [4 * nn + 2 * nb], dtype: .float64)   // zeroed
        kinv = buffer.pointer(Double.self); c = kinv + nn; d = c + nn; dw = d + nn; v = dw + nn; h = v + nb
        for i in 0..<nn { kinv[i] = target.kernelInverse[i] }
        for i in 0..<nb { v[i] = 1 }   // the chains start at all ones
        let sd = Self.initStd
        weight = try Tensor.from((0..<nn).map { _ in sd * g.normal() }, shape: [n, n], dtype: .float64)
    }

    /// n update steps (n ≥ 0), each k Gibbs sweeps of the |B| chains and one update of W.
    public func step(_ count: Int = 1) {
        precondition(count >= 0, "scalar-field RBM: a negative number of steps (\(count))")
        let n = Int32(self.n), b = Int32(batchSize), nn = self.n * self.n, w = weight.pointer(Double.self)
        let s2 = Self.hiddenStd * Self.hiddenStd
        let hNoise = UnsafeMutableBufferPointer(start: h, count: self.n * batchSize)
        let vNoise = UnsafeMutableBufferPointer(start: v, count: self.n * batchSize)
        for _ in 0..<count {
            for _ in 0..<k {
                // h = σ_h z + σ_h² W v: H (N_h, |B|) = σ_h Z + σ_h² W (N_h, N_v) · V (N_v, |B|).
                generator.fillNormalZiggurat(hNoise, std: Self.hiddenStd)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, b, n, s2, w, n, v, b, 1, h, b)
                // v = z/μ + Wᵀh/μ²: V (N_v, |B|) = Z/μ + Wᵀ (N_v, N_h) · H (N_h, |B|) / μ².
                generator.fillNormalZiggurat(vNoise, std: 1 / mass)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, b, n, 1 / (mass * mass), w, n, h, b, 1, v, b)
            }
            // C_B = V Vᵀ/|B| in our (N_v, |B|) layout: (N_v, N_v).
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, b, 1 / Double(b), v, b, v, b, 0, c, n)
            // W ← W + α σ_h² W (K_φ⁻¹ − C_B); the product goes to dw first, as it reads W.
            for i in 0..<nn { d[i] = kinv[i] - c[i] }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, lr * s2, w, n, d, n, 0, dw, n)
            for i in 0..<nn { w[i] += dw[i] }
        }
        stepCount += count
    }

    public var modelName: String { "scalar-field RBM" }

    /// The eigenvalues of WᵀW, ascending (NaN if W is not finite).
    public func levels() -> [Double] {
        guard let x = try? Linalg.eigvalsh(try Linalg.gram(weight)) else { return [Double](repeating: .nan, count: n) }
        return x.toDoubles()
    }

    /// tr C_B of the last step (its target is tr K_φ⁻¹).
    public func scalars() -> [(String, Double)] {
        var trace = 0.0
        for i in 0..<n { trace += c[i * n + i] }
        return [("second_moment_trace", trace)]
    }

    /// C_B = VᵀV/|B| of the last step (zeros before the first): an (n, n) float64 copy.
    public func lastSecondMoment() throws -> Tensor {
        let t = try Tensor(shape: [n, n], dtype: .float64, zeroed: false)
        t.pointer(Double.self).update(from: c, count: n * n)
        return t
    }

    // ------------------------------------------------------------------ ensembles

    /// The eigenvalues of WᵀW (ascending) of independent models after `steps` steps, model s =
    /// `ScalarFieldRBM(seed: s)` (stream 0): a (seeds.count, n) float64 tensor. Runs on all cores.
    public static func ensemble(seeds: Range<Int>, steps: Int, n: Int = 10, mass: Double = 3, fieldMass: Double = 2,
                                lr: Double = 0.1, batchSize: Int = 16, k: Int = 3) throws -> Tensor {
        let target = try Target(try latticeKernel(n: n, fieldMass: fieldMass), mass: mass)
        try validate(lr: lr, batchSize: batchSize, k: k)
        guard steps >= 0 else { throw DBMError("scalar-field RBM: steps must be >= 0, got \(steps)") }
        let h = try run(seeds: seeds, target, mass, lr, batchSize, k, burnIn: steps, records: 1, recordEvery: 0)
        return try h.select(1, 0).contiguous()
    }

    /// As `ensemble`, recording the eigenvalues of WᵀW after steps burnIn + recordEvery, burnIn + 2·recordEvery,
    /// …, up to `steps`: a (seeds.count, records, n) float64 tensor, records = ⌊(steps − burnIn)/recordEvery⌋.
    /// Averages over axes 0 and 1 pool seeds and time. For independent snapshots, take records further apart
    /// than the slowest relaxation time, about κ²/(2α(μ² − κ)) steps at the largest κ (6400 steps at
    /// α = 0.005 in the paper's setup).
    public static func ensembleHistory(seeds: Range<Int>, steps: Int, burnIn: Int, recordEvery: Int, n: Int = 10,
                                       mass: Double = 3, fieldMass: Double = 2, lr: Double = 0.1, batchSize: Int = 16,
                                       k: Int = 3) throws -> Tensor {
        let target = try Target(try latticeKernel(n: n, fieldMass: fieldMass), mass: mass)
        try validate(lr: lr, batchSize: batchSize, k: k)
        guard steps >= 0 else { throw DBMError("scalar-field RBM: steps must be >= 0, got \(steps)") }
        guard burnIn >= 0, burnIn <= steps else {
            throw DBMError("scalar-field RBM: burnIn must be >= 0 and <= steps (\(steps)), got \(burnIn)")
        }
        guard recordEvery >= 1 else { throw DBMError("scalar-field RBM: recordEvery must be >= 1, got \(recordEvery)") }
        let records = (steps - burnIn) / recordEvery
        guard records >= 1 else {
            throw DBMError("scalar-field RBM: no record: steps − burnIn (\(steps - burnIn)) is below recordEvery (\(recordEvery))")
        }
        return try run(seeds: seeds, target, mass, lr, batchSize, k, burnIn: burnIn, records: records, recordEvery: recordEvery)
    }

    // Model s steps burnIn, then `records` times recordEvery steps and its levels: (seeds, records, n).
    private static func run(seeds: Range<Int>, _ target: Target, _ mass: Double, _ lr: Double, _ batchSize: Int, _ k: Int,
                            burnIn: Int, records: Int, recordEvery: Int) throws -> Tensor {
        guard !seeds.isEmpty else { throw DBMError("scalar-field RBM: empty seed range \(seeds)") }
        let n = target.n
        let out = try Tensor(shape: [seeds.count, records, n], dtype: .float64)
        let result = OutputRows(out.pointer(Double.self))
        let failure = FirstError()
        DispatchQueue.concurrentPerform(iterations: seeds.count) { s in
            let model: ScalarFieldRBM
            do {
                model = try ScalarFieldRBM(validated: target, mass, lr, batchSize, k,
                                           Generator(seed: UInt64(bitPattern: Int64(seeds.lowerBound + s))))
            } catch { failure.record(error); return }   // over the memory limit
            model.step(burnIn)
            for r in 0..<records {
                model.step(recordEvery)
                let x = model.levels()
                for i in 0..<n { result.p[(s * records + r) * n + i] = x[i] }
            }
        }
        if let error = failure.error { throw error }
        return out
    }
}

/// The ensemble's output: each concurrent iteration writes its own rows only.
private struct OutputRows: @unchecked Sendable {
    let p: UnsafeMutablePointer<Double>
    init(_ p: UnsafeMutablePointer<Double>) { self.p = p }
}

/// The first error among the ensemble's concurrent iterations.
private final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    func record(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
}
