import CBLAS
import DBMCore
import Foundation

/// A Bernoulli–Bernoulli restricted Boltzmann machine (DESIGN §3, "Bernoulli RBM on real images"):
/// binary visible v ∈ {0,1}^nv and hidden h ∈ {0,1}^nh with energy E(v, h) = −bᵀv − cᵀh − hᵀWv, so
///     p(h_j = 1 | v) = σ(c_j + W_j·v),    p(v_i = 1 | h) = σ(b_i + W_{:,i}·h),
/// and the free energy F(v) = −bᵀv − Σ_j softplus(c_j + W_j·v) with p(v) = e^{−F(v)}/Z.
///
/// Training: plain SGD on the mean log-likelihood of mini-batches of |B| data rows (an epoch visits every
/// row once, in a fresh shuffle; the last batch is smaller when |B| does not divide the rows),
///     ∂/∂W = ⟨p(h|v) vᵀ⟩_data − ⟨p(h|v) vᵀ⟩_model,  ∂/∂b = ⟨v⟩_data − ⟨v⟩_model,  ∂/∂c = ⟨p(h|v)⟩_data − ⟨p(h|v)⟩_model,
///     W ← W + lr·(∂/∂W − weightDecay·W),  b ← b + lr·∂/∂b,  c ← c + lr·∂/∂c.
/// Both phases use the hidden probabilities p(h|v), not samples (Hinton, "A practical guide to training
/// RBMs", §3): E[v hᵀ] = E[v p(h|v)ᵀ] exactly, with less noise. The model average comes from chains after
/// k full Gibbs sweeps (h ~ p(h|v), then v ~ p(v|h)) taken at their binary visible states: CD-k starts
/// one chain at each batch row (its first h drawn from p(h|row)); PCD-k keeps |B| persistent chains,
/// started at random data rows drawn as Bernoulli(pixel).
///
/// Initialisation: W ~ N(0, 0.01²); hidden biases 0; visible biases log(p_i/(1 − p_i)) of the data's column
/// means p_i clipped to [0.001, 0.999] (Hinton's guide §8: the model starts at the independent-pixel fit,
/// so the weights learn correlations rather than the mean image); 0 for a model made without data.
///
/// Random numbers, all from one `Generator(seed:stream:)`: W (row-major), the persistent chains' rows and
/// bits, then per step the epoch's permutation when one starts, the batch's binarisation, the chains' draws.
/// Batch products are cblas_dgemm calls on buffers allocated once; nothing is allocated inside `step`.
public final class BernoulliRBM: SteppedModel {
    /// How a data row in [0, 1]^nv enters the positive phase.
    public enum Binarize: String, Sendable, CaseIterable {
        /// Each visit draws v_i ~ Bernoulli(x_i).
        case sample
        /// v_i = 1 when x_i > 0.5.
        case threshold
        /// v = x as it is (the probabilities themselves).
        case probabilities
    }

    /// Standard deviation of the initial weights.
    public static let initStd = 0.01
    /// Enumeration limits for the exact quantities (2^12 visible and 2^8 hidden states).
    public static let maxEnumerableVisible = 12
    public static let maxEnumerableHidden = 8

    public let visible: Int
    public let hidden: Int
    public let lr: Double
    public let weightDecay: Double
    public let batchSize: Int
    public let k: Int
    public let persistent: Bool
    public let binarize: Binarize
    public let generator: Generator

    /// W (hidden, visible), b (visible), c (hidden): live float64 tensors, read and written by `step`.
    public let weight: Tensor
    public let visibleBias: Tensor
    public let hiddenBias: Tensor

    // data is (nData, nv), a private contiguous copy in the caller's dtype; nil for a model made without data.
    private let data: Tensor?
    public let nData: Int
    // chains is (|B|, nv): PCD's persistent visible states (unused by CD).
    private let chains: Tensor
    private let work: Workspace

    public private(set) var order: [Int] = []
    public private(set) var position: Int
    public private(set) var stepCount = 0
    public private(set) var epochCount = 0
    /// Rows in the last training batch (0 before the first step).
    private var lastBatchRows = 0

    /// SGD steps in one epoch: ⌈nData/|B|⌉.
    public var stepsPerEpoch: Int { (nData + batchSize - 1) / batchSize }

    /// A model trained on `data` (rows = samples, entries in [0, 1], float32 or float64; copied).
    public convenience init(data: Tensor, hidden: Int, lr: Double = 0.05, weightDecay: Double = 0,
                            batchSize: Int = 64, k: Int = 1, persistent: Bool = false,
                            binarize: Binarize = .sample, seed: UInt64 = 0, stream: UInt64 = 0) throws {
        guard data.rank == 2, data.shape[0] >= 1, data.shape[1] >= 1 else {
            throw DBMError("bernoulli-rbm: data must be a 2-D tensor (rows, visible) with at least one row and column, "
                + "got shape \(data.shape)")
        }
        let owned = try data.copy()
        let means = try Self.checkedColumnMeans(owned, what: "data")
        guard batchSize >= 1, batchSize <= owned.shape[0] else {
            throw DBMError("bernoulli-rbm: batchSize must be >= 1 and <= the data's \(owned.shape[0]) rows, got \(batchSize)")
        }
        try self.init(visible: owned.shape[1], hidden: hidden, lr: lr, weightDecay: weightDecay, batchSize: batchSize,
                      k: k, persistent: persistent, binarize: binarize, seed: seed, stream: stream, data: owned)
        let b = visibleBias.pointer(Double.self)
        for i in 0..<visible { let p = min(max(means[i], 0.001), 0.999); b[i] = log(p / (1 - p)) }
        if persistent {
            let v = chains.pointer(Double.self)
            for r in 0..<batchSize { copyRow(generator.below(nData), into: v + r * visible) }
            sample(v, into: v, count: batchSize * visible)
        }
    }

    /// A model without data (zero biases, W ~ N(0, 0.01²)) for the exact quantities and `sampledGradient`;
    /// it has nothing to train on, and `step` stops the program.
    public convenience init(visible: Int, hidden: Int, binarize: Binarize = .sample, seed: UInt64 = 0,
                            stream: UInt64 = 0) throws {
        try self.init(visible: visible, hidden: hidden, lr: 0.05, weightDecay: 0, batchSize: 1, k: 1,
                      persistent: false, binarize: binarize, seed: seed, stream: stream, data: nil)
    }

    private init(visible: Int, hidden: Int, lr: Double, weightDecay: Double, batchSize: Int, k: Int,
                 persistent: Bool, binarize: Binarize, seed: UInt64, stream: UInt64, data: Tensor?) throws {
        guard visible >= 1 else { throw DBMError("bernoulli-rbm: visible must be >= 1, got \(visible)") }
        guard hidden >= 1 else { throw DBMError("bernoulli-rbm: hidden must be >= 1, got \(hidden)") }
        guard lr.isFinite, lr > 0 else { throw DBMError("bernoulli-rbm: lr must be finite and > 0, got \(lr)") }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw DBMError("bernoulli-rbm: weightDecay must be finite and >= 0, got \(weightDecay)")
        }
        guard k >= 1 else { throw DBMError("bernoulli-rbm: k must be >= 1, got \(k)") }
        self.visible = visible; self.hidden = hidden; self.lr = lr; self.weightDecay = weightDecay
        self.batchSize = batchSize; self.k = k; self.persistent = persistent; self.binarize = binarize
        self.generator = Generator(seed: seed, stream: stream)
        self.data = data
        self.nData = data?.shape[0] ?? 0
        weight = try Tensor(shape: [hidden, visible], dtype: .float64)   // throws past the memory limit
        visibleBias = try Tensor(shape: [visible], dtype: .float64)
        hiddenBias = try Tensor(shape: [hidden], dtype: .float64)
        chains = try Tensor(shape: [persistent ? batchSize : 0, visible], dtype: .float64)
        work = try Workspace(rows: batchSize, visible: visible, hidden: hidden)
        position = nData
        generator.fillNormal(weight, std: Self.initStd)
    }

    public var modelName: String { "bernoulli-rbm" }

    // ------------------------------------------------------------------ training

    /// n SGD steps, continuing the current epoch; an epoch's end reshuffles.
    public func step(_ n: Int = 1) {
        precondition(n >= 0, "bernoulli-rbm: a negative number of steps (\(n))")
        precondition(n == 0 || data != nil, "bernoulli-rbm: this model was made without data and cannot train")
        for _ in 0..<n {
            if position == nData { order = generator.permutation(nData); position = 0 }
            let m = min(batchSize, nData - position)
            let v0 = work.v0.pointer(Double.self)
            for r in 0..<m { copyRow(order[position + r], into: v0 + r * visible) }
            binarizeInPlace(v0, count: m * visible)
            if persistent {
                estimateGradient(rows: m, chains: chains.pointer(Double.self), chainCount: batchSize, sweeps: k,
                                 startAtBatch: false, work: work)
            } else {
                estimateGradient(rows: m, chains: work.v.pointer(Double.self), chainCount: m, sweeps: k,
                                 startAtBatch: true, work: work)
            }
            applyGradient()
            lastBatchRows = m
            position += m
            stepCount += 1
            if position == nData { epochCount += 1 }
        }
    }

    /// The rest of the current epoch, or a whole fresh one when the last epoch has just ended.
    public func epoch() {
        step(position == nData ? stepsPerEpoch : (nData - position + batchSize - 1) / batchSize)
    }

    // W ← (1 − lr·weightDecay)·W + lr·∂W; b, c ← b, c + lr·∂b, ∂c.
    private func applyGradient() {
        let w = weight.pointer(Double.self), gw = work.gW.pointer(Double.self)
        let shrink = 1 - lr * weightDecay
        for i in 0..<(hidden * visible) { w[i] = shrink * w[i] + lr * gw[i] }
        let b = visibleBias.pointer(Double.self), gb = work.gb.pointer(Double.self)
        for i in 0..<visible { b[i] += lr * gb[i] }
        let c = hiddenBias.pointer(Double.self), gc = work.gc.pointer(Double.self)
        for j in 0..<hidden { c[j] += lr * gc[j] }
    }

    /// The CD-k estimate of the log-likelihood gradient on `batch` (rows binarised as in training), not
    /// applied: `chains` chains (default one per row), chain r started at row r mod rows. For large k it
    /// is also what PCD-k estimates. Shapes: W (hidden, visible), b (visible), c (hidden), float64.
    public func sampledGradient(batch: Tensor, k: Int, chains: Int? = nil) throws -> (W: Tensor, b: Tensor, c: Tensor) {
        try checkRows(batch, what: "batch")
        _ = try Self.checkedColumnMeans(batch, what: "batch")
        guard k >= 1 else { throw DBMError("bernoulli-rbm: k must be >= 1, got \(k)") }
        let rows = batch.shape[0], n = chains ?? rows
        guard n >= 1 else { throw DBMError("bernoulli-rbm: chains must be >= 1, got \(n)") }
        let w = try Workspace(rows: max(rows, n), visible: visible, hidden: hidden)
        let v0 = w.v0.pointer(Double.self)
        v0.update(from: batch.toDoubles(), count: rows * visible)
        binarizeInPlace(v0, count: rows * visible)
        estimateGradient(rows: rows, chains: w.v.pointer(Double.self), chainCount: n, sweeps: k, startAtBatch: true, work: w)
        return (try w.gW.copy(), try w.gb.copy(), try w.gc.copy())
    }

    /// Fills work.gW, gb, gc with the gradient estimate from the `rows` rows of work.v0 and `chainCount`
    /// chains at `chains` (overwritten with their states after the sweeps). startAtBatch: chain r first
    /// becomes batch row r mod rows with h drawn from that row's p(h|v) (CD); else the chains continue (PCD).
    private func estimateGradient(rows m: Int, chains v: UnsafeMutablePointer<Double>, chainCount n: Int,
                                  sweeps: Int, startAtBatch: Bool, work: Workspace) {
        let nv = visible, nh = hidden
        // v0 is (m, nv), ph0 (m, nh); v (n, nv), h and ph (n, nh).
        let v0 = work.v0.pointer(Double.self), ph0 = work.ph0.pointer(Double.self)
        let h = work.h.pointer(Double.self), ph = work.ph.pointer(Double.self)
        conditionalProbabilities(.hidden, given: v0, rows: m, into: ph0)
        for s in 0..<sweeps {
            if s == 0 && startAtBatch {
                for r in 0..<n {
                    (v + r * nv).update(from: v0 + (r % m) * nv, count: nv)
                    sample(ph0 + (r % m) * nh, into: h + r * nh, count: nh)
                }
            } else {
                conditionalProbabilities(.hidden, given: v, rows: n, into: ph)
                sample(ph, into: h, count: n * nh)
            }
            conditionalProbabilities(.visible, given: h, rows: n, into: v)
            sample(v, into: v, count: n * nv)
        }
        conditionalProbabilities(.hidden, given: v, rows: n, into: ph)
        // gW (nh, nv) = ph0ᵀ v0 / m − phᵀ v / n.
        let gW = work.gW.pointer(Double.self), gb = work.gb.pointer(Double.self), gc = work.gc.pointer(Double.self)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(nh), Int32(nv), Int32(m),
                    1 / Double(m), ph0, Int32(nh), v0, Int32(nv), 0, gW, Int32(nv))
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(nh), Int32(nv), Int32(n),
                    -1 / Double(n), ph, Int32(nh), v, Int32(nv), 1, gW, Int32(nv))
        columnMeanDifference(v0, m, v, n, width: nv, into: gb)
        columnMeanDifference(ph0, m, ph, n, width: nh, into: gc)
    }

    // out[i] = mean over rows of a[:, i] − mean over rows of b[:, i].
    private func columnMeanDifference(_ a: UnsafeMutablePointer<Double>, _ na: Int, _ b: UnsafeMutablePointer<Double>,
                                      _ nb: Int, width: Int, into out: UnsafeMutablePointer<Double>) {
        out.update(repeating: 0, count: width)
        let (wa, wb) = (1 / Double(na), 1 / Double(nb))
        for r in 0..<na { for i in 0..<width { out[i] += wa * a[r * width + i] } }
        for r in 0..<nb { for i in 0..<width { out[i] -= wb * b[r * width + i] } }
    }

    // ------------------------------------------------------------------ conditionals

    /// A layer of units, for the conditional probabilities of one given the other.
    private enum Layer { case hidden, visible }

    // Half a Gibbs sweep, as probabilities, for `rows` rows x of the other layer; W is (nh, nv) row-major:
    //   .hidden:  p (rows, nh) = p(h = 1 | v) = σ(c + v Wᵀ) for x = v (rows, nv),
    //   .visible: p (rows, nv) = p(v = 1 | h) = σ(b + h W)  for x = h (rows, nh).
    // The same product both ways, W transposed or not.
    private func conditionalProbabilities(_ layer: Layer, given x: UnsafePointer<Double>, rows: Int,
                                          into p: UnsafeMutablePointer<Double>) {
        let (width, inner, bias, transW) = layer == .hidden
            ? (hidden, visible, hiddenBias, CblasTrans) : (visible, hidden, visibleBias, CblasNoTrans)
        let b = bias.pointer(Double.self)
        for r in 0..<rows { (p + r * width).update(from: b, count: width) }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, transW, Int32(rows), Int32(width), Int32(inner),
                    1, x, Int32(inner), weight.pointer(Double.self), Int32(visible), 1, p, Int32(width))
        for i in 0..<(rows * width) { p[i] = sigmoid(p[i]) }
    }

    // out[i] ~ Bernoulli(p[i]); out may be p. Two draws per 64-bit word: 32 bits are plenty for a
    // Bernoulli draw, and the generator is the hot loop's main cost.
    private func sample(_ p: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>, count: Int) {
        var i = 0
        while i + 1 < count {
            let r = generator.nextUInt64()
            out[i] = Double(r & 0xFFFF_FFFF) * 0x1p-32 < p[i] ? 1 : 0
            out[i + 1] = Double(r >> 32) * 0x1p-32 < p[i + 1] ? 1 : 0
            i += 2
        }
        if i < count { out[i] = generator.uniform() < p[i] ? 1 : 0 }
    }

    // ------------------------------------------------------------------ data rows

    // out (nv) = data row `row` as float64.
    private func copyRow(_ row: Int, into out: UnsafeMutablePointer<Double>) {
        let d = data!
        switch d.dtype {
        case .float32: let x = d.pointer(Float.self) + row * visible; for i in 0..<visible { out[i] = Double(x[i]) }
        case .float64: out.update(from: d.pointer(Double.self) + row * visible, count: visible)
        }
    }

    // Data values in [0, 1] become the positive phase's visible units, in place.
    private func binarizeInPlace(_ v: UnsafeMutablePointer<Double>, count: Int) {
        switch binarize {
        case .sample: sample(v, into: v, count: count)
        case .threshold: for i in 0..<count { v[i] = v[i] > 0.5 ? 1 : 0 }
        case .probabilities: break
        }
    }

    private func checkRows(_ t: Tensor, what: String) throws {
        guard t.rank == 2, t.shape[0] >= 1, t.shape[1] == visible else {
            throw DBMError("bernoulli-rbm: \(what) must be a 2-D tensor (rows >= 1, \(visible)), got shape \(t.shape)")
        }
    }

    /// The column means of a 2-D tensor whose entries all lie in [0, 1] (NaN is outside); no float64 copy
    /// of a float32 data set.
    private static func checkedColumnMeans(_ t: Tensor, what: String) throws -> [Double] {
        let x = try t.contiguous()
        let (rows, cols) = (x.shape[0], x.shape[1])
        return try withExtendedLifetime(x) {   // a copy's storage must outlive the pointer
            switch x.dtype {
            case .float32: return try checkedColumnMeans(x.pointer(Float.self), rows: rows, cols: cols, what: what)
            case .float64: return try checkedColumnMeans(x.pointer(Double.self), rows: rows, cols: cols, what: what)
            }
        }
    }

    private static func checkedColumnMeans<T: TensorScalar>(_ x: UnsafeMutablePointer<T>, rows: Int, cols: Int,
                                                             what: String) throws -> [Double] {
        var means = [Double](repeating: 0, count: cols)
        for r in 0..<rows {
            for i in 0..<cols {
                let v = Double(x[r * cols + i])
                guard v >= 0, v <= 1 else {
                    throw DBMError("bernoulli-rbm: \(what) entries must lie in [0, 1], got \(v) at row \(r), column \(i)")
                }
                means[i] += v
            }
        }
        return means.map { $0 / Double(rows) }
    }

    // ------------------------------------------------------------------ observables

    /// The eigenvalues of the smaller Gram matrix of W (hidden, visible), ascending: WWᵀ when hidden < visible,
    /// else WᵀW; the nonzero levels of the two agree. NaNs when W is not finite.
    public func levels() -> [Double] {
        let n = min(hidden, visible)
        guard let g = try? Linalg.gram(weight), let e = try? Linalg.eigvalsh(g) else {
            return [Double](repeating: .nan, count: n)
        }
        return e.toDoubles()
    }

    /// ("reconstruction_error", the mean-field reconstruction error of the last training batch with the
    /// current parameters; see `reconstructionError`). Empty before the first step.
    public func scalars() -> [(String, Double)] {
        guard lastBatchRows > 0 else { return [] }
        return [("reconstruction_error", meanFieldReconstructionError(work.v0.pointer(Double.self), rows: lastBatchRows,
                                                                      work: work))]
    }

    /// The mean over rows and pixels of (x − σ(b + Wᵀ·σ(c + W x)))²: the deterministic one-step
    /// reconstruction (probabilities, no sampling), of the first `limit` rows of `data` (all when nil).
    public func reconstructionError(data: Tensor, limit: Int? = nil) throws -> Double {
        try checkRows(data, what: "data")
        _ = try Self.checkedColumnMeans(data, what: "data")
        if let limit, limit < 1 { throw DBMError("bernoulli-rbm: limit must be >= 1, got \(limit)") }
        let rows = min(limit ?? data.shape[0], data.shape[0])
        let x = try data.narrow(0, 0, rows).toDoubles()
        let w = try Workspace(rows: rows, visible: visible, hidden: hidden)
        return meanFieldReconstructionError(x, rows: rows, work: w)
    }

    private func meanFieldReconstructionError(_ x: UnsafePointer<Double>, rows: Int, work: Workspace) -> Double {
        let ph = work.ph.pointer(Double.self), pv = work.v.pointer(Double.self)
        conditionalProbabilities(.hidden, given: x, rows: rows, into: ph)
        conditionalProbabilities(.visible, given: ph, rows: rows, into: pv)
        var sum = 0.0
        for i in 0..<(rows * visible) { sum += (x[i] - pv[i]) * (x[i] - pv[i]) }
        return sum / Double(rows * visible)
    }

    // ------------------------------------------------------------------ exact quantities (small RBMs)

    /// log Z = log Σ_h exp(cᵀh + Σ_i softplus(b_i + W_{:,i}·h)): the visibles summed analytically, the 2^nh
    /// hidden states enumerated, the sum taken by log-sum-exp.
    public func logPartition() throws -> Double {
        try checkEnumerable()
        let (nv, nh) = (visible, hidden)
        let w = weight.pointer(Double.self), b = visibleBias.pointer(Double.self), c = hiddenBias.pointer(Double.self)
        var terms = [Double]()
        for state in 0..<(1 << nh) {
            var t = 0.0
            for j in 0..<nh where state >> j & 1 == 1 { t += c[j] }
            for i in 0..<nv {
                var a = b[i]
                for j in 0..<nh where state >> j & 1 == 1 { a += w[j * nv + i] }
                t += softplus(a)
            }
            terms.append(t)
        }
        return logSumExp(terms)
    }

    /// The mean of log p(v) = −F(v) − log Z over the rows of `data` (binary rows, (rows, visible)).
    public func logLikelihood(data: Tensor) throws -> Double {
        let rows = try binaryRows(data)
        let logZ = try logPartition()
        return rows.map { -freeEnergy($0) }.reduce(0, +) / Double(rows.count) - logZ
    }

    /// The exact gradient of the mean log-likelihood of `data` (binary rows): the data averages of
    /// p(h|v) vᵀ, v, p(h|v) minus their model averages, the latter summed over all 2^nv visible states
    /// weighted by p(v) = e^{−F(v) − log Z}. Shapes: W (hidden, visible), b (visible), c (hidden), float64.
    public func exactGradient(data: Tensor) throws -> (W: Tensor, b: Tensor, c: Tensor) {
        let rows = try binaryRows(data)
        let logZ = try logPartition()
        let (nv, nh) = (visible, hidden)
        var gW = [Double](repeating: 0, count: nh * nv), gb = [Double](repeating: 0, count: nv)
        var gc = [Double](repeating: 0, count: nh)
        func accumulate(_ v: [Double], _ share: Double) {
            let ph = hiddenProbabilities(v)
            for i in 0..<nv { gb[i] += share * v[i] }
            for j in 0..<nh {
                gc[j] += share * ph[j]
                for i in 0..<nv { gW[j * nv + i] += share * ph[j] * v[i] }
            }
        }
        for v in rows { accumulate(v, 1 / Double(rows.count)) }
        for state in 0..<(1 << nv) {
            let v = (0..<nv).map { Double(state >> $0 & 1) }
            accumulate(v, -exp(-freeEnergy(v) - logZ))
        }
        return (try Tensor.from(gW, shape: [nh, nv], dtype: .float64), try Tensor.from(gb, shape: [nv], dtype: .float64),
                try Tensor.from(gc, shape: [nh], dtype: .float64))
    }

    // F(v) = −bᵀv − Σ_j softplus(c_j + W_j·v), v of `visible` entries.
    private func freeEnergy(_ v: [Double]) -> Double {
        let w = weight.pointer(Double.self), b = visibleBias.pointer(Double.self), c = hiddenBias.pointer(Double.self)
        var f = 0.0
        for i in 0..<visible { f -= b[i] * v[i] }
        for j in 0..<hidden {
            var a = c[j]
            for i in 0..<visible { a += w[j * visible + i] * v[i] }
            f -= softplus(a)
        }
        return f
    }

    private func hiddenProbabilities(_ v: [Double]) -> [Double] {
        let w = weight.pointer(Double.self), c = hiddenBias.pointer(Double.self)
        return (0..<hidden).map { j in
            var a = c[j]
            for i in 0..<visible { a += w[j * visible + i] * v[i] }
            return sigmoid(a)
        }
    }

    private func checkEnumerable() throws {
        guard visible <= Self.maxEnumerableVisible, hidden <= Self.maxEnumerableHidden else {
            throw DBMError("bernoulli-rbm: exact enumeration needs visible <= \(Self.maxEnumerableVisible) and hidden <= "
                + "\(Self.maxEnumerableHidden), got \(visible) and \(hidden)")
        }
    }

    private func binaryRows(_ t: Tensor) throws -> [[Double]] {
        try checkEnumerable()
        try checkRows(t, what: "data")
        let x = t.toDoubles()
        return try (0..<t.shape[0]).map { r in
            try (0..<visible).map { i in
                let v = x[r * visible + i]
                guard v == 0 || v == 1 else {
                    throw DBMError("bernoulli-rbm: data rows must be binary (0 or 1), got \(v) at row \(r), column \(i)")
                }
                return v
            }
        }
    }
}

/// Buffers for one batch of `rows` rows: v0 (rows, nv) the binarised batch, ph0 (rows, nh) its p(h|v);
/// v (rows, nv), h and ph (rows, nh) the chains; gW (nh, nv), gb (nv), gc (nh) the gradient estimate.
private final class Workspace {
    let v0, ph0, v, h, ph, gW, gb, gc: Tensor
    init(rows: Int, visible nv: Int, hidden nh: Int) throws {
        v0 = try Tensor(shape: [rows, nv], dtype: .float64); ph0 = try Tensor(shape: [rows, nh], dtype: .float64)
        v = try Tensor(shape: [rows, nv], dtype: .float64)
        h = try Tensor(shape: [rows, nh], dtype: .float64); ph = try Tensor(shape: [rows, nh], dtype: .float64)
        gW = try Tensor(shape: [nh, nv], dtype: .float64)
        gb = try Tensor(shape: [nv], dtype: .float64); gc = try Tensor(shape: [nh], dtype: .float64)
    }
}

@inline(__always) private func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

// log(1 + eˣ) without overflow.
@inline(__always) private func softplus(_ x: Double) -> Double { max(x, 0) + log1p(exp(-abs(x))) }

private func logSumExp(_ xs: [Double]) -> Double {
    let m = xs.max()!
    return m + log(xs.map { exp($0 - m) }.reduce(0, +))
}
