import DBMCore
import Dispatch
import Foundation

/// The teacher–student model of arXiv:2407.16427 (DESIGN §3): a 2×2 student W_s learns the teacher
/// W_t = 2·I from targets y = W_t x by plain SGD on ½|y − W_s x|², each sample carrying its own fixed
/// symmetric GOE "intrinsic noise" matrix a that is added to the gradient:
///     W_s ← W_s − α·[ −(W_t − W_s)·⟨x xᵀ⟩_B + ā_B ].
/// Linearised around W_t this is an Ornstein–Uhlenbeck process whose symmetric part is a 2×2 GOE block
/// of diagonal variance σ² = 2αε²/(|B|(2 − α)), so the singular-value spacing has ⟨S⟩ = √π·σ.
///
/// Random numbers, all from one `Generator(seed:stream:)` in this order: for each sample in turn x₀, x₁,
/// a₀₀, a₁₁, a₀₁; then the student's four entries (row-major); then one `permutation(nData)` per epoch.
/// The hot loop is scalar code on precomputed per-sample numbers (no BLAS, no allocation per step).
public final class TeacherStudent: SteppedModel {
    /// The teacher is `teacherScale`·I.
    public static let teacherScale = 2.0
    /// Standard deviation of the student's initial entries.
    public static let initStd = 0.1
    /// Samples per batch in an epoch of the default data set: nData = 500·|B|.
    public static let defaultStepsPerEpoch = 500

    public let lr: Double
    public let batchSize: Int
    public let eps: Double
    public let nData: Int
    public let generator: Generator

    // samples is (nData, 6): per sample (x₀², x₀x₁, x₁², a₀₀, a₀₁, a₁₁), the upper triangles of x xᵀ and a.
    private let samples: [Double]
    /// The student W_s: a 2×2 float64 tensor, live (read at the start of `step`, written at its end).
    public let weight: Tensor
    private var w: UnsafeMutablePointer<Double> { weight.pointer(Double.self) }

    /// The current epoch's visiting order (a fresh permutation of 0..<nData at the start of each epoch).
    public private(set) var order: [Int]
    /// How many samples of `order` the current epoch has used (0 ... nData; nData means a new shuffle
    /// comes before the next step).
    public private(set) var position: Int
    /// SGD steps taken and epochs completed so far.
    public private(set) var stepCount = 0
    public private(set) var epochCount = 0
    /// How often each sample has entered a mini-batch so far (for checking that an epoch visits each
    /// sample exactly once).
    public private(set) var visits: [Int]

    /// SGD steps in one epoch: ⌈nData/|B|⌉ (the last batch is smaller when |B| does not divide nData).
    public var stepsPerEpoch: Int { (nData + batchSize - 1) / batchSize }

    /// Draws the data set and the student. nData defaults to 500·|B| (500 steps per epoch).
    public convenience init(lr: Double = 0.1, batchSize: Int = 16, eps: Double = 0.1, nData: Int? = nil,
                            seed: UInt64 = 0, stream: UInt64 = 0) throws {
        let n = nData ?? TeacherStudent.defaultStepsPerEpoch * batchSize
        try TeacherStudent.validate(lr: lr, batchSize: batchSize, eps: eps, nData: n)
        self.init(validated: lr, batchSize, eps, n, Generator(seed: seed, stream: stream))
    }

    static func validate(lr: Double, batchSize: Int, eps: Double, nData: Int) throws {
        guard lr.isFinite, lr > 0 else { throw DBMError("teacher-student: lr must be finite and > 0, got \(lr)") }
        guard eps.isFinite, eps >= 0 else { throw DBMError("teacher-student: eps must be finite and >= 0, got \(eps)") }
        guard batchSize >= 1 else { throw DBMError("teacher-student: batchSize must be >= 1, got \(batchSize)") }
        guard nData >= batchSize, nData <= 1 << 28 else {
            throw DBMError("teacher-student: nData must be >= batchSize (\(batchSize)) and <= 2^28, got \(nData)")
        }
    }

    private init(validated lr: Double, _ batchSize: Int, _ eps: Double, _ nData: Int, _ g: Generator) {
        self.lr = lr; self.batchSize = batchSize; self.eps = eps; self.nData = nData; self.generator = g
        var s = [Double](repeating: 0, count: 6 * nData)
        let diagStd = 2.0.squareRoot() * eps
        for i in 0..<nData {
            let x0 = g.normal(), x1 = g.normal()
            let a00 = diagStd * g.normal(), a11 = diagStd * g.normal(), a01 = eps * g.normal()
            s[6 * i] = x0 * x0; s[6 * i + 1] = x0 * x1; s[6 * i + 2] = x1 * x1
            s[6 * i + 3] = a00; s[6 * i + 4] = a01; s[6 * i + 5] = a11
        }
        samples = s
        let sd = TeacherStudent.initStd
        // 4 doubles cannot exceed the memory limit.
        weight = try! Tensor.from((0..<4).map { _ in sd * g.normal() }, shape: [2, 2], dtype: .float64)
        order = Array(0..<nData)
        position = nData
        visits = [Int](repeating: 0, count: nData)
    }

    /// n SGD steps, continuing the current epoch; an epoch's end (every sample used) reshuffles.
    public func step(_ n: Int = 1) {
        precondition(n >= 0, "teacher-student: a negative number of steps (\(n))")
        let w = self.w
        var (w00, w01, w10, w11) = (w[0], w[1], w[2], w[3])
        let t = TeacherStudent.teacherScale, lr = self.lr, bs = batchSize, nData = self.nData
        var remaining = n
        samples.withUnsafeBufferPointer { s in
            while remaining > 0 {
                if position == nData { order = generator.permutation(nData); position = 0 }
                let steps = min(remaining, (nData - position + bs - 1) / bs)   // to the epoch's end at most
                order.withUnsafeBufferPointer { o in
                    visits.withUnsafeMutableBufferPointer { v in
                        var p = position
                        for _ in 0..<steps {
                            let e = min(p + bs, nData)
                            // Batch means of x xᵀ (c) and of a (m), both symmetric.
                            var c0 = 0.0, c1 = 0.0, c2 = 0.0, m0 = 0.0, m1 = 0.0, m2 = 0.0
                            for k in p..<e {
                                let i = o[k]
                                v[i] &+= 1
                                c0 += s[6 * i]; c1 += s[6 * i + 1]; c2 += s[6 * i + 2]
                                m0 += s[6 * i + 3]; m1 += s[6 * i + 4]; m2 += s[6 * i + 5]
                            }
                            let inv = 1 / Double(e - p)
                            c0 *= inv; c1 *= inv; c2 *= inv; m0 *= inv; m1 *= inv; m2 *= inv
                            // W ← W + α·[(W_t − W)·C − ā], D = W_t − W.
                            let d00 = t - w00, d01 = -w01, d10 = -w10, d11 = t - w11
                            w00 += lr * (d00 * c0 + d01 * c1 - m0)
                            w01 += lr * (d00 * c1 + d01 * c2 - m1)
                            w10 += lr * (d10 * c0 + d11 * c1 - m1)
                            w11 += lr * (d10 * c1 + d11 * c2 - m2)
                            p = e
                        }
                        position = p
                    }
                }
                stepCount += steps
                remaining -= steps
                if position == nData { epochCount += 1 }
            }
        }
        (w[0], w[1], w[2], w[3]) = (w00, w01, w10, w11)
    }

    /// The rest of the current epoch, or a whole fresh one when the last epoch has just ended.
    public func epoch() {
        let b = batchSize
        step(position == nData ? stepsPerEpoch : (nData - position + b - 1) / b)
    }

    public var modelName: String { "teacher-student" }

    /// The singular values of W_s, ascending.
    public func levels() -> [Double] { let (s1, s2) = singularValues(); return [s2, s1] }

    public func scalars() -> [(String, Double)] { [("epoch", Double(epochCount))] }

    /// Singular values of W_s, descending: with p = |(a + d, c − b)| and q = |(a − d, b + c)| for
    /// W = [[a, b], [c, d]], s₁ = (p + q)/2 and s₂ = |p − q|/2.
    public func singularValues() -> (Double, Double) {
        let (w00, w01, w10, w11) = (w[0], w[1], w[2], w[3])
        let p = ((w00 + w11) * (w00 + w11) + (w10 - w01) * (w10 - w01)).squareRoot()
        let q = ((w00 - w11) * (w00 - w11) + (w01 + w10) * (w01 + w10)).squareRoot()
        return ((p + q) / 2, abs(p - q) / 2)
    }

    /// The final singular values (ascending, as `levels()`) of independent models, model k = `TeacherStudent(seed: k)`
    /// (stream 0), after `epochs` epochs: a (seeds.count, 2) float64 tensor. Runs on all cores.
    public static func ensemble(seeds: Range<Int>, epochs: Int, lr: Double = 0.1, batchSize: Int = 16,
                                eps: Double = 0.1) throws -> Tensor {
        let h = try ensembleHistory(seeds: seeds, epochs: epochs, lr: lr, batchSize: batchSize, eps: eps)
        return try h.select(1, epochs - 1).contiguous()
    }

    /// As `ensemble`, with the singular values at the end of every epoch: a (seeds.count, epochs, 2)
    /// float64 tensor. After the first epoch the student has relaxed (the deviation from W_t decays as
    /// (1 − α)ⁿ) and the fluctuations decorrelate within about 1/α steps, so end-of-epoch snapshots of
    /// one seed are nearly independent samples of the stationary state.
    public static func ensembleHistory(seeds: Range<Int>, epochs: Int, lr: Double = 0.1, batchSize: Int = 16,
                                       eps: Double = 0.1) throws -> Tensor {
        let nData = defaultStepsPerEpoch * batchSize
        try validate(lr: lr, batchSize: batchSize, eps: eps, nData: nData)
        guard epochs >= 1 else { throw DBMError("teacher-student: epochs must be >= 1, got \(epochs)") }
        guard !seeds.isEmpty else { throw DBMError("teacher-student: empty seed range \(seeds)") }
        let out = try Tensor(shape: [seeds.count, epochs, 2], dtype: .float64)
        let result = OutputRows(out.pointer(Double.self))
        DispatchQueue.concurrentPerform(iterations: seeds.count) { k in
            let model = TeacherStudent(validated: lr, batchSize, eps, nData,
                                       Generator(seed: UInt64(bitPattern: Int64(seeds.lowerBound + k))))
            for e in 0..<epochs {
                model.epoch()
                let (s1, s2) = model.singularValues()
                result.p[2 * (k * epochs + e)] = s2
                result.p[2 * (k * epochs + e) + 1] = s1
            }
        }
        return out
    }
}

/// The ensemble's output: each concurrent iteration writes its own rows only.
private struct OutputRows: @unchecked Sendable {
    let p: UnsafeMutablePointer<Double>
    init(_ p: UnsafeMutablePointer<Double>) { self.p = p }
}
