import Foundation
import Testing
import DBMCore
import DBMModels

// Environment: DBM_FULL=1 runs the bigger ensembles (4–5× the samples); DBM_SEED=s changes the seed (default 2026).

/// The DBMError message of body, or nil when it succeeds.
private func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

/// Helpers shared by the Dyson and matrix-Brownian-motion tests (a namespace: other test files of this
/// target have private helpers of the same names).
enum LevelStatistics {
    /// True when the bigger forms of the statistical tests are wanted (DBM_FULL=1).
    static let full = ProcessInfo.processInfo.environment["DBM_FULL"] == "1"

    /// The seed of the statistical tests: DBM_SEED, or 2026.
    static let seed = UInt64(ProcessInfo.processInfo.environment["DBM_SEED"] ?? "") ?? 2026

    /// Spacing ratios r_i = min(s_i, s_{i+1})/max(s_i, s_{i+1}) of ascending levels.
    static func spacingRatios(_ x: ArraySlice<Double>) -> [Double] {
        let s = zip(x.dropFirst(), x).map { $0 - $1 }
        return zip(s.dropFirst(), s).map { min($0, $1) / max($0, $1) }
    }

    static func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }

    /// The mean of independent samples and its standard error.
    static func meanAndError(_ v: [Double]) -> (mean: Double, error: Double) {
        let m = mean(v)
        return (m, (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count * (v.count - 1))).squareRoot())
    }

    /// ⟨r⟩ over the levels `range` (default all) of each record, and its standard error from the spread of the
    /// records' own means (records further apart than the spacings' relaxation time are independent).
    static func meanRatio(_ records: [[Double]], levels range: Range<Int>? = nil) -> (mean: Double, error: Double) {
        meanAndError(records.map { mean(spacingRatios($0[range ?? $0.indices])) })
    }

    /// KS distance of pooled levels to a limiting law.
    static func ksDistance(_ levels: [Double], to law: SpectralLaw) -> Double {
        levels.sorted().map(law.cdf).withUnsafeBufferPointer { Spectral.ksDistance($0) }
    }
}

/// A stationary ensemble of one potential: `streams` simulators of one seed run on both cores, each
/// equilibrated from the stationary law's quantiles for `equilibrate` time units, then recorded every
/// `every` time units.
struct DysonEnsemble: Sendable {
    let records: [[Double]]       // streams·records rows of N ascending levels
    let law: SpectralLaw
    let acceptance: Double, outsideFraction: Double, shortenedFraction: Double
    let sweepsPerSecond: Double   // per core
    let seconds: Double

    init(potential: DysonPotential, n: Int, temperature: Double, dt: Double, streams: Int,
         equilibrate: Double, records: Int, every: Double) {
        let start = Date()
        final class Box: @unchecked Sendable {
            var rows: [[[Double]]]; var counts: [(proposed: Int, rejected: Int, outside: Int, shortened: Int, sweeps: Int, seconds: Double)]
            init(_ n: Int) { rows = .init(repeating: [], count: n); counts = .init(repeating: (0, 0, 0, 0, 0, 0), count: n) }
        }
        let box = Box(streams), lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: streams) { s in
            let t0 = Date()
            let sim = try! DysonSimulator(n: n, potential: potential, temperature: temperature, dt: dt,
                                          seed: LevelStatistics.seed, stream: UInt64(s))
            sim.step(Int((equilibrate / dt).rounded()))
            var rows: [[Double]] = []
            for _ in 0..<records {
                sim.step(Int((every / dt).rounded()))
                rows.append(sim.levels())
            }
            let c = (sim.proposedMoves, sim.rejectedMoves, sim.outsideMoves, sim.shortenedMoves, sim.stepCount, Date().timeIntervalSince(t0))
            lock.lock(); box.rows[s] = rows; box.counts[s] = c; lock.unlock()
        }
        let proposed = Double(box.counts.map(\.proposed).reduce(0, +))
        self.records = box.rows.flatMap { $0 }
        law = try! DysonSimulator(n: n, potential: potential, temperature: temperature, dt: dt, seed: 0).stationaryLaw
        acceptance = 1 - Double(box.counts.map(\.rejected).reduce(0, +)) / proposed
        outsideFraction = Double(box.counts.map(\.outside).reduce(0, +)) / proposed
        shortenedFraction = Double(box.counts.map(\.shortened).reduce(0, +)) / proposed
        sweepsPerSecond = box.counts.map { Double($0.sweeps) / $0.seconds }.reduce(0, +) / Double(streams)
        seconds = Date().timeIntervalSince(start)
    }

    func summary(_ name: String) -> String {
        "\(name): \(records.count) records of \(records[0].count) levels, seed \(LevelStatistics.seed); acceptance \(acceptance), "
            + "outside the domain \(outsideFraction), shortened \(shortenedFraction); \(Int(sweepsPerSecond)) sweeps/s per core; \(seconds) s"
    }

    /// N = 50, k = T = 1 (R = 10), dt = 10⁻³: 4 streams equilibrated for 10 time units (10 relaxation times
    /// 1/k of the slowest mode), then 800 records (4000 with DBM_FULL) 0.25 apart (the spacings relax in
    /// ~ gap²/T ≈ 0.1).
    static let harmonic = DysonEnsemble(potential: .harmonic(k: 1), n: 50, temperature: 1, dt: 1e-3, streams: 4,
                                        equilibrate: 10, records: LevelStatistics.full ? 4000 : 800, every: 0.25)

    /// N = 50 levels of WᵀW, W of 100 × 50 entries of variance σ² = 1, T = 1 (γ = T/σ² = 1; the levels relax
    /// at rate 2γ), dt = 10⁻³: 4 streams equilibrated for 5 time units, then 800 records (4000) 0.125 apart.
    static let wishart = DysonEnsemble(potential: .wishart(rows: 100, variance: 1), n: 50, temperature: 1, dt: 1e-3,
                                       streams: 4, equilibrate: 5, records: LevelStatistics.full ? 4000 : 800, every: 0.125)
}

// Exact ensembles for reference (numpy, N = 50): GOE ⟨r⟩ = 0.5298 over all levels, 0.5300 over levels 13…38
// (bulk); Laguerre M = 100: 0.5296 all, 0.5303 bulk (5·10⁴ matrices, each ± 0.0003). KS of pooled levels to
// the limiting law (4000 matrices): semicircle 0.0037, Marchenko–Pastur 0.0043; ⟨λ_max⟩/x₊ = 0.951 (sd 0.046).
// One record's ⟨r⟩ has a spread of ≈ 0.05 (all levels), 0.07 (bulk).

@Suite("Dyson Brownian motion (β = 1; harmonic and Wishart potentials)")
struct DysonTests {
    @Test("the levels stay strictly ascending over a long run, also from a crowded start")
    func orderingKept() throws {
        // Levels 10⁻⁶ apart at the start: the repulsion is 10⁶ times its typical size.
        let sim = try DysonSimulator(levels: (0..<20).map { 1e-6 * Double($0) }, k: 2, temperature: 0.5, dt: 2e-3, seed: 7)
        var worst = Double.infinity
        for _ in 0..<1000 {
            sim.step(25)
            let x = sim.levels()
            for i in 1..<x.count { worst = min(worst, x[i] - x[i - 1]) }
            #expect(x.allSatisfy { $0.isFinite })
        }
        #expect(worst > 0)
        #expect(sim.stepCount == 25_000 && abs(sim.time - 50) < 1e-9)
        #expect(sim.weight.dtype == .float64 && sim.weight.shape == [20] && sim.weight.toDoubles() == sim.levels())
        // Equilibrated by then: the spread matches the semicircle's (variance R²/4 = NT/(2k) = 2.5).
        let x = sim.levels(), m = LevelStatistics.mean(x)
        let variance = x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count)
        print("Dyson ordering: smallest gap \(worst); variance \(variance) (semicircle 2.5); acceptance \(sim.acceptanceRate)")
        #expect(variance > 1 && variance < 4)
        // A square W (rows = N): no wall term (M − N) log s, the smallest level near 0; it stays > 0.
        let square = try DysonSimulator(n: 10, potential: .wishart(rows: 10, variance: 1), temperature: 1, dt: 1e-3, seed: 7)
        var smallest = Double.infinity
        for _ in 0..<1000 {
            square.step(10)
            let x = square.levels()
            smallest = min(smallest, x[0])
            #expect(zip(x.dropFirst(), x).allSatisfy { $0 > $1 })
        }
        print("Dyson square Wishart: smallest level \(smallest) in 10⁴ sweeps; acceptance \(square.acceptanceRate)")
        #expect(smallest > 0)
    }

    @Test("the live weight tensor: a script's levels are read (and sorted) by the next step")
    func liveWeight() throws {
        let sim = try DysonSimulator(n: 4, k: 1, temperature: 1, dt: 1e-3, seed: 1)
        let w = sim.weight
        for (i, v) in [3.0, -1, 0.5, 2].enumerated() { try w.setValue(v, at: [i]) }
        sim.step(0)
        #expect(sim.levels() == [-1, 0.5, 2, 3] && w.toDoubles() == [-1, 0.5, 2, 3])
        sim.step(1)
        #expect(sim.weight === w && zip(w.toDoubles(), [-1, 0.5, 2, 3]).allSatisfy { abs($0 - $1) < 0.5 })
        // Invalid levels stop the step without a change; `advance` says why.
        try w.setValue(0.5, at: [0]); try w.setValue(0.5, at: [1])
        let before = sim.stepCount
        sim.step(10)
        #expect(sim.stepCount == before)
        #expect(failure { try sim.advance(1) }?.contains("distinct") == true)
        let wishart = try DysonSimulator(levels: [1, 2, 3], potential: .wishart(rows: 5, variance: 1), temperature: 1, dt: 1e-3, seed: 1)
        try wishart.weight.setValue(-1, at: [0])
        #expect(failure { try wishart.advance(1) }?.contains("wishart levels must be > 0") == true)
    }

    @Test("stationary density is the semicircle of radius √(2NT/k): KS distance ≤ 0.03")
    func semicircleDensity() {
        let e = DysonEnsemble.harmonic
        let pooled = e.records.flatMap { $0 }
        let ks = LevelStatistics.ksDistance(pooled, to: e.law)
        print(e.summary("Dyson harmonic") + "; KS to the semicircle \(ks)")
        #expect(ks <= 0.03)
        #expect(e.law == .semicircle(radius: 10))
        // The radius is √(2NT/k), not √(NT/k) or √(4NT/k): both of those are far off.
        #expect(LevelStatistics.ksDistance(pooled, to: .semicircle(radius: 10 / 2.squareRoot())) > 0.05)
        #expect(LevelStatistics.ksDistance(pooled, to: .semicircle(radius: 10 * 2.squareRoot())) > 0.05)
    }

    @Test("GOE spacing ratio ⟨r⟩ is 0.5307 within 0.01 (harmonic); acceptance > 0.95")
    func goeSpacingRatio() {
        let e = DysonEnsemble.harmonic
        let all = LevelStatistics.meanRatio(e.records), bulk = LevelStatistics.meanRatio(e.records, levels: 12..<38)
        print("Dyson harmonic ⟨r⟩ = \(all.mean) ± \(all.error) (all levels), \(bulk.mean) ± \(bulk.error) (bulk); "
              + "exact GOE 0.5298, 0.5300; acceptance \(e.acceptance)")
        #expect(abs(all.mean - 0.5307) <= 0.01 && abs(bulk.mean - 0.5307) <= 0.01)
        #expect(e.acceptance > 0.95)
    }

    @Test("Wishart potential: Marchenko–Pastur density (KS ≤ 0.03), GOE ⟨r⟩ in the bulk, levels positive and ordered")
    func wishartStationary() {
        let e = DysonEnsemble.wishart
        let pooled = e.records.flatMap { $0 }
        let ks = LevelStatistics.ksDistance(pooled, to: e.law)
        let all = LevelStatistics.meanRatio(e.records), bulk = LevelStatistics.meanRatio(e.records, levels: 12..<38)
        let edges = e.law.edges
        print(e.summary("Dyson wishart") + "; KS to Marchenko–Pastur \(ks) (edges \(edges)); ⟨r⟩ \(all.mean) ± \(all.error) (all), "
              + "\(bulk.mean) ± \(bulk.error) (bulk); exact Laguerre 0.5296, 0.5303")
        #expect(e.law == .marchenkoPastur(variance: 1, rows: 100, cols: 50))
        #expect(abs(edges.lower - 100 * pow(1 - 0.5.squareRoot(), 2)) < 1e-9 && abs(edges.upper - 100 * pow(1 + 0.5.squareRoot(), 2)) < 1e-9)
        #expect(ks <= 0.03)
        #expect(abs(bulk.mean - 0.5307) <= 0.01)
        #expect(e.acceptance > 0.95)
        #expect(e.records.allSatisfy { x in x[0] > 0 && zip(x.dropFirst(), x).allSatisfy { $0 > $1 } })
        // σ² and M matter: a 20% larger variance, or the levels of a square W, are far off.
        #expect(LevelStatistics.ksDistance(pooled, to: .marchenkoPastur(variance: 1.2, rows: 100, cols: 50)) > 0.05)
        #expect(LevelStatistics.ksDistance(pooled, to: .marchenkoPastur(variance: 1, rows: 50, cols: 50)) > 0.05)
    }

    // Exact 3-level laws (numpy, 2·10⁶ matrices): GOE (k = T = 1) ⟨r⟩ = 0.53584 (= 4 − 2√3), ⟨x₂ − x₁⟩ = 1.4654;
    // Laguerre M = 5, σ² = 1: ⟨r⟩ = 0.44453, ⟨x₁⟩ = 1.1460. Each ± 0.0002 (r) / 0.0006.
    @Test("Metropolis-adjusted moves are exact for any dt: 3 levels reproduce the 3×3 GOE and Laguerre laws at dt = 0.02 and 0.3")
    func exactForAnyDt() throws {
        for (potential, rExact, exact) in [(DysonPotential.harmonic(k: 1), 0.53584, 1.4654), (.wishart(rows: 5, variance: 1), 0.44453, 1.1460)] {
            for dt in [0.02, 0.3] {
                let sim = try DysonSimulator(n: 3, potential: potential, temperature: 1, dt: dt, seed: LevelStatistics.seed)
                let every = max(1, Int(1 / dt)), records = LevelStatistics.full ? 400_000 : 100_000
                var r = 0.0, other = 0.0
                sim.step(10 * every)
                for _ in 0..<records {
                    sim.step(every)
                    let x = sim.levels()
                    r += LevelStatistics.spacingRatios(x[...])[0] / Double(records)
                    other += (potential == .harmonic(k: 1) ? x[1] - x[0] : x[0]) / Double(records)
                }
                print("Dyson 3 levels, \(potential), dt = \(dt): ⟨r⟩ \(r) (exact \(rExact)), \(other) (exact \(exact)); "
                      + "acceptance \(sim.acceptanceRate), shortened \(Double(sim.shortenedMoves) / Double(sim.proposedMoves))")
                // Standard errors (records ≈ one relaxation time apart): ⟨r⟩ 0.0008, the other ≈ 0.004.
                #expect(abs(r - rExact) < 0.005 && abs(other - exact) < 0.02)
            }
        }
    }

    @Test("dynamics from a crowded start: Σx² grows as the DBM predicts when dt resolves the gaps")
    func crowdedRelaxation() throws {
        // Harmonic DBM: Σ_i x_i Σ_{j≠i} 1/(x_i − x_j) = N(N − 1)/2, so E Σx² = A (1 − e^{−2kt}) + Σx²(0) e^{−2kt}
        // with A = T N(N + 1)/(2k), exactly. From levels 10⁻⁶ apart (the repulsion 10⁶ times its typical size),
        // 32 runs (128 with DBM_FULL). Relative spread of Σx² in one run ≈ 9%, so 1.6% for the mean.
        let (n, k, temperature, runs) = (20, 2.0, 0.5, LevelStatistics.full ? 128 : 32)
        let a = temperature * Double(n * (n + 1)) / (2 * k)
        func meanSquares(dt: Double, at times: [Double]) throws -> [(mean: Double, error: Double)] {
            var squares = [[Double]](repeating: [], count: times.count)
            for s in 0..<runs {
                let sim = try DysonSimulator(levels: (0..<n).map { 1e-6 * Double($0) }, k: k, temperature: temperature, dt: dt,
                                             seed: LevelStatistics.seed, stream: UInt64(s))
                for (m, t) in times.enumerated() {
                    sim.step(Int((t / dt).rounded()) - sim.stepCount)
                    squares[m].append(sim.levels().map { $0 * $0 }.reduce(0, +))
                }
            }
            return squares.map(LevelStatistics.meanAndError)
        }
        // dt = 2·10⁻⁵ resolves the gaps after a few sweeps. Measured (128 runs): −6.6 ± 0.9% at t = 0.01 (the
        // first sweeps' lag), −1.1 ± 0.8% at 0.05, −1.8 ± 0.8% at 0.1; allowed: the lag and 5 standard errors of 32 runs.
        let fine = [(0.01, 0.2), (0.05, 0.1), (0.1, 0.1)], fineSums = try meanSquares(dt: 2e-5, at: fine.map { $0.0 })
        for ((t, tolerance), v) in zip(fine, fineSums) {
            let exact = a * (1 - exp(-2 * k * t))
            print("Dyson crowded start, dt = 2e-5, t = \(t): ⟨Σx²⟩ \(v.mean) ± \(v.error) (DBM \(exact))")
            #expect(abs(v.mean / exact - 1) < tolerance)
        }
        // dt = 2·10⁻³ ≫ the first gaps²/T = 2·10⁻¹²: moves are shortened until the gaps reach √(T dt), and the
        // spread lags DBM (measured ⟨Σx²⟩ 5.0 against 17.3 at t = 0.1, 41 against 45 at t = 0.5), then joins it.
        let coarse = [0.1, 0.5, 1.0], coarseSums = try meanSquares(dt: 2e-3, at: coarse)
        for (t, v) in zip(coarse, coarseSums) {
            print("Dyson crowded start, dt = 2e-3, t = \(t): ⟨Σx²⟩ \(v.mean) ± \(v.error) (DBM \(a * (1 - exp(-2 * k * t))))")
        }
        #expect(abs(coarseSums[2].mean / (a * (1 - exp(-2 * k))) - 1) < 0.15)
    }

    @Test("dynamics: Σx² relaxes at the DBM rate (within 3.5% at dt = 10⁻³)")
    func relaxationRate() throws {
        // N = 50 levels at the quantiles of the semicircle for k = 4 (R = 5), released at k = 1 (R = 10): E Σx²(t)
        // = A (1 − e^{−2kt}) + Σx²(0) e^{−2kt}, A = T N(N + 1)/(2k), exactly (see crowdedRelaxation). 100 runs
        // (400 with DBM_FULL) to t = 0.5. Measured (400 runs, seed 9): ratio to DBM 1.0112 ± 0.0019 at
        // dt = 10⁻³, 1.0035 ± 0.0019 at 10⁻⁴: the O(dt) weak error of any Euler-type step, enlarged by the
        // singular repulsion (E a_i² h² diverges logarithmically for β = 1), not the Metropolis correction.
        let (n, t, dt, runs) = (50, 0.5, 1e-3, LevelStatistics.full ? 400 : 100)
        let start = try DysonSimulator(n: n, k: 4, temperature: 1, dt: dt, seed: 0).levels()
        let squares0 = start.map { $0 * $0 }.reduce(0, +)
        var squares: [Double] = []
        for s in 0..<runs {
            let sim = try DysonSimulator(levels: start, k: 1, temperature: 1, dt: dt, seed: LevelStatistics.seed, stream: UInt64(s))
            sim.step(Int(t / dt))
            squares.append(sim.levels().map { $0 * $0 }.reduce(0, +))
        }
        let (m, error) = LevelStatistics.meanAndError(squares)
        let exact = Double(n * (n + 1)) / 2 * (1 - exp(-2 * t)) + squares0 * exp(-2 * t)
        print("Dyson relaxation, dt = \(dt): ⟨Σx²(\(t))⟩ \(m) ± \(error), DBM \(exact) (ratio \(m / exact))")
        #expect(abs(m / exact - 1) < 0.035)   // the 1.1% bias and 5 standard errors (0.4% each)
    }

    @Test("limiting laws: CDFs integrate their densities; quantiles invert them")
    func limitingLaws() {
        for law in [SpectralLaw.semicircle(radius: 2, center: 1), .marchenkoPastur(variance: 0.5, rows: 30, cols: 120),
                    .marchenkoPastur(variance: 1, rows: 40, cols: 40)] {
            let (lo, hi) = law.edges
            // F(x) − F(a) against the trapezoid rule on 2·10⁵ intervals from a = lo + 1% of the support
            // (at q = 1 the density diverges as 1/√x at lo = 0, which the rule cannot integrate).
            let a = lo + 0.01 * (hi - lo), m = 200_000, h = (hi - a) / Double(m)
            var integral = 0.0, worst = 0.0
            for k in 1...m {
                integral += h * (law.density(a + Double(k - 1) * h) + law.density(a + Double(k) * h)) / 2
                if k % 1000 == 0 { worst = max(worst, abs(integral - (law.cdf(a + Double(k) * h) - law.cdf(a)))) }
            }
            #expect(worst < 1e-5, "\(law): CDF off its density's integral by \(worst)")
            for p in [0.01, 0.3, 0.5, 0.97] { #expect(abs(law.cdf(law.quantile(p)) - p) < 1e-9) }
            #expect(law.cdf(lo - 1) == 0 && law.cdf(hi + 1) == 1)
        }
    }

    @Test("bad parameters throw, naming the parameter")
    func badParameters() {
        func make(levels: [Double] = [0, 1], k: Double = 1, t: Double = 1, dt: Double = 1e-3) -> String? {
            failure { try DysonSimulator(levels: levels, k: k, temperature: t, dt: dt, seed: 1) }
        }
        #expect(make(levels: [0])?.contains("n (the number of levels) must be at least 2") == true)
        #expect(make(levels: [0, .nan])?.contains("levels must all be finite") == true)
        #expect(make(levels: [1, 1, 2])?.contains("distinct") == true)
        for bad in [0.0, -1, .infinity, .nan] {
            #expect(make(k: bad)?.contains("k must") == true)
            #expect(make(t: bad)?.contains("temperature") == true)
            #expect(make(dt: bad)?.contains("dt") == true)
            #expect(failure { try DysonSimulator(n: 3, potential: .wishart(rows: 3, variance: bad), temperature: 1, dt: 1e-3, seed: 1) }?
                .contains("wishart variance must be") == true)
        }
        #expect(failure { try DysonSimulator(n: 1, k: 1, temperature: 1, dt: 1e-3, seed: 1) }?.contains("n (the number") == true)
        #expect(failure { try DysonSimulator(n: 3, k: -1, temperature: 1, dt: 1e-3, seed: 1) }?.contains("k must") == true)
        #expect(failure { try DysonSimulator(n: 4, potential: .wishart(rows: 3, variance: 1), temperature: 1, dt: 1e-3, seed: 1) }?
            .contains("wishart rows must be >= the number of levels 4 (got 3)") == true)
        #expect(failure { try DysonSimulator(levels: [-1, 2], potential: .wishart(rows: 3, variance: 1), temperature: 1, dt: 1e-3, seed: 1) }?
            .contains("wishart levels must be > 0 (got -1.0)") == true)
        #expect(make() == nil)
        // Unordered input is sorted.
        let sim = try? DysonSimulator(levels: [2, -1, 0.5], k: 1, temperature: 1, dt: 1e-3, seed: 1)
        #expect(sim?.levels() == [-1, 0.5, 2])
    }
}
