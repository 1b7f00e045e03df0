import Foundation
import Testing
import DBMCore
import DBMModels

/// The DBMError message of body, or nil when it succeeds.
private func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

/// `count` independent runs (streams of `LevelStatistics.seed`) on both cores, each from W = 0 for `steps` steps of dt:
/// the entries' sum of squares and the levels of every run.
private func runs(rows: Int, cols: Int, dt: Double, steps: Int, count: Int) -> (sumSquares: Double, levels: [[Double]]) {
    final class Box: @unchecked Sendable { var levels: [[Double]]; var squares: [Double]
        init(_ n: Int) { levels = .init(repeating: [], count: n); squares = .init(repeating: 0, count: n) } }
    let box = Box(count), lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: count) { s in
        let m = try! MatrixBrownianMotion(rows: rows, cols: cols, dt: dt, seed: LevelStatistics.seed, stream: UInt64(s))
        m.step(steps)
        let squares = m.weight.toDoubles().map { $0 * $0 }.reduce(0, +), levels = m.levels()
        lock.lock(); box.levels[s] = levels; box.squares[s] = squares; lock.unlock()
    }
    return (box.squares.reduce(0, +), box.levels)
}

@Suite("Matrix Brownian motion W ← W + √dt·G (and its Ornstein–Uhlenbeck form)")
struct MatrixBrownianMotionTests {
    // 100 × 50, t = 1 in 4 steps: 2000 runs (10⁴ with DBM_FULL). Exact Laguerre (numpy): KS to MP 0.0043,
    // ⟨r⟩ 0.5296 all / 0.5303 bulk, ⟨λ_max⟩/x₊ = 0.951 (sd 0.046).
    static let rows = 100, cols = 50, t = 1.0, steps = 4
    static let ensemble = runs(rows: rows, cols: cols, dt: t / Double(steps), steps: steps, count: LevelStatistics.full ? 10_000 : 2000)

    @Test("from W = 0 the entries have variance t, and the levels follow Marchenko–Pastur with σ² = t (KS ≤ 0.02)")
    func marchenkoPastur() {
        let e = Self.ensemble
        let variance = e.sumSquares / Double(e.levels.count * Self.rows * Self.cols)
        let pooled = e.levels.flatMap { $0 }
        let law = SpectralLaw.marchenkoPastur(variance: Self.t, rows: Self.rows, cols: Self.cols)
        let ks = LevelStatistics.ksDistance(pooled, to: law)
        print("MatrixBrownianMotion: \(e.levels.count) runs of \(Self.rows)×\(Self.cols) to t = \(Self.t), seed \(LevelStatistics.seed): entry variance \(variance); KS to MP(σ² = t) \(ks)")
        #expect(abs(variance - Self.t) < 0.01)   // standard error √(2/(runs·M·N)) ≤ 0.0007
        #expect(ks <= 0.02)
        #expect(LevelStatistics.ksDistance(pooled, to: .marchenkoPastur(variance: 1.2 * Self.t, rows: Self.rows, cols: Self.cols)) > 0.05)
    }

    @Test("GOE spacing ratio of the levels: ⟨r⟩ in the bulk within 0.01 of 0.5307; the largest level near the MP edge")
    func spacingAndEdge() {
        let e = Self.ensemble
        let all = LevelStatistics.meanRatio(e.levels), bulk = LevelStatistics.meanRatio(e.levels, levels: 12..<38)
        let edge = SpectralLaw.marchenkoPastur(variance: Self.t, rows: Self.rows, cols: Self.cols).edges.upper
        let largest = LevelStatistics.mean(e.levels.map { $0.last! / edge })
        print("MatrixBrownianMotion: ⟨r⟩ \(all.mean) ± \(all.error) (all), \(bulk.mean) ± \(bulk.error) (bulk); "
              + "⟨λ_max⟩/x₊ = \(largest) (exact Laguerre 0.951)")
        // Standard errors: bulk ⟨r⟩ 0.07/√runs ≈ 0.0016; λ_max ratio 0.046/√runs ≈ 0.001.
        #expect(abs(bulk.mean - 0.5307) <= 0.01)
        #expect(abs(largest - 0.951) <= 0.015)
    }

    @Test("Ornstein–Uhlenbeck form: exact transition, mean e^{−γt}W₀ and variance T(1 − e^{−2γt})/γ for any dt")
    func ornsteinUhlenbeck() throws {
        // One step of dt = t must give the same law as many small ones: the transition is exact.
        let w0 = try Tensor.full([200, 100], 3, dtype: .float32)
        for steps in [1, 50] {
            let m = try MatrixBrownianMotion(initial: w0, dt: 2 / Double(steps), temperature: 0.8, restoring: 0.5, seed: LevelStatistics.seed)
            m.step(steps)
            let w = m.weight.toDoubles(), mu = LevelStatistics.mean(w)
            let variance = w.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(w.count)
            let (meanExpected, varianceExpected) = (3 * exp(-1.0), m.entryVariance(at: 2))
            print("MatrixBrownianMotion OU, \(steps) step(s) to t = 2: mean \(mu) (\(meanExpected)), variance \(variance) (\(varianceExpected))")
            // Standard errors over 2·10⁴ entries: mean 0.0063, variance 1%.
            #expect(abs(mu - meanExpected) < 0.035 && abs(variance / varianceExpected - 1) < 0.05)
            #expect(abs(varianceExpected - 0.8 * (1 - exp(-2.0)) / 0.5) < 1e-12 && abs(m.time - 2) < 1e-12)
        }
    }

    @Test("the eigenvalues of WᵀW move as the Wishart-type DBM: MatrixBrownianMotion and DysonSimulator(.wishart) agree")
    func agreesWithWishartDBM() throws {
        // Both from the levels of one W₀ (50 × 20 of variance 0.5), T = 1, γ = 0.5 (σ² = 2), to t = 0.5:
        // 400 runs each (2000 with DBM_FULL). Per run, x̄ spreads by ≈ 6%, λ_max by ≈ 7%.
        let (rows, cols, t, dt, runs) = (50, 20, 0.5, 1e-3, LevelStatistics.full ? 2000 : 400)
        let w0 = try Tensor.randn([rows, cols], std: 0.5.squareRoot(), dtype: .float64, generator: Generator(seed: LevelStatistics.seed))
        let x0 = try MatrixBrownianMotion(initial: w0, dt: 1, seed: 0).levels()
        var matrix: [(mean: Double, largest: Double)] = [], dyson: [(mean: Double, largest: Double)] = []
        for s in 0..<runs {
            let m = try MatrixBrownianMotion(initial: w0, dt: t / 10, temperature: 1, restoring: 0.5,
                                             seed: LevelStatistics.seed, stream: UInt64(s + 1))
            m.step(10)
            let d = try DysonSimulator(levels: x0, potential: .wishart(rows: rows, variance: 2), temperature: 1, dt: dt,
                                       seed: LevelStatistics.seed, stream: UInt64(s + 1))
            d.step(Int(t / dt))
            let (a, b) = (m.levels(), d.levels())
            matrix.append((LevelStatistics.mean(a), a.last!))
            dyson.append((LevelStatistics.mean(b), b.last!))
        }
        let (dm, dmErr) = LevelStatistics.meanAndError(dyson.map(\.mean)), (mm, mmErr) = LevelStatistics.meanAndError(matrix.map(\.mean))
        let (dl, dlErr) = LevelStatistics.meanAndError(dyson.map(\.largest)), (ml, mlErr) = LevelStatistics.meanAndError(matrix.map(\.largest))
        // E x̄(t) = x̄(0) e^{−2γt} + Mσ²(1 − e^{−2γt}) (the pair sum of the DBM drift cancels in the mean).
        let expected = LevelStatistics.mean(x0) * exp(-0.5) + Double(rows) * 2 * (1 - exp(-0.5))
        print("Wishart DBM vs matrix OU at t = \(t), \(runs) runs: mean level \(dm) ± \(dmErr) vs \(mm) ± \(mmErr) "
              + "(exact \(expected)); largest \(dl) ± \(dlErr) vs \(ml) ± \(mlErr)")
        // Standard errors 0.22% (x̄), 0.4% (λ_max; measured differences +0.1% and +1.7% for seeds 2026, 2027). The DBM at dt = 10⁻³ relaxes ≈ 1% fast (the O(dt) bias of
        // DysonTests' relaxationRate; measured here: x̄ +1.1% at dt = 10⁻³, +0.85% at 3·10⁻⁴, +0.6% at 10⁻⁴).
        #expect(abs(mm / expected - 1) < 0.012)
        #expect(abs(dm / expected - 1) < 0.025)
        #expect(abs(dl / ml - 1) < 0.05)
    }

    @Test("live weight, levels of the smaller Gram matrix, and speed")
    func weightAndLevels() throws {
        let m = try MatrixBrownianMotion(rows: 3, cols: 5, dt: 0.1, seed: 1)
        #expect(m.weight.shape == [3, 5] && m.weight.dtype == .float64 && m.weight.toDoubles().allSatisfy { $0 == 0 })
        m.step(3)
        #expect(m.stepCount == 3 && m.modelName == "matrix-brownian-motion")
        // Levels: the 3 eigenvalues of WWᵀ (rows < cols), ascending = the squared singular values.
        let s = try Linalg.svdvals(m.weight).toDoubles().map { $0 * $0 }.sorted()
        #expect(zip(m.levels(), s).allSatisfy { abs($0 - $1) < 1e-12 * (1 + $1) } && m.levels().count == 3)
        // A script's W is the next step's start.
        m.weight.fill(1)
        let before = m.weight.toDoubles()
        m.step(1)
        #expect(zip(m.weight.toDoubles(), before).allSatisfy { abs($0 - $1) < 2 })   // moved by √0.1 G from 1
        m.weight.fill(.nan)
        #expect(m.levels().allSatisfy { $0.isNaN })

        let big = try MatrixBrownianMotion(rows: 100, cols: 50, dt: 1e-3, seed: 2)
        let start = Date()
        big.step(2000)
        let perSecond = 2000 / Date().timeIntervalSince(start)
        print("MatrixBrownianMotion 100×50: \(Int(perSecond)) steps/s")
    }

    @Test("bad parameters throw, naming the parameter")
    func badParameters() throws {
        for bad in [0.0, -1, .infinity, .nan] {
            #expect(failure { try MatrixBrownianMotion(rows: 2, cols: 2, dt: bad, seed: 1) }?.contains("dt must") == true)
            #expect(failure { try MatrixBrownianMotion(rows: 2, cols: 2, dt: 1, temperature: bad, seed: 1) }?.contains("temperature must") == true)
        }
        #expect(failure { try MatrixBrownianMotion(rows: 2, cols: 2, dt: 1, restoring: -1, seed: 1) }?.contains("restoring (γ) must") == true)
        #expect(failure { try MatrixBrownianMotion(rows: 2, cols: 2, dt: 1, restoring: .nan, seed: 1) }?.contains("restoring (γ) must") == true)
        #expect(failure { try MatrixBrownianMotion(rows: 0, cols: 2, dt: 1, seed: 1) }?.contains("rows and cols must be >= 1") == true)
        #expect(failure { try MatrixBrownianMotion(initial: try Tensor.zeros([4]), dt: 1, seed: 1) }?.contains("2-D") == true)
        #expect(failure { try MatrixBrownianMotion(initial: try Tensor.full([2, 2], .nan), dt: 1, seed: 1) }?.contains("finite") == true)
        #expect(failure { try MatrixBrownianMotion(rows: 2, cols: 2, dt: 1, restoring: 0, seed: 1) } == nil)
    }
}
