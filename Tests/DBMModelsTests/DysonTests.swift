import Foundation
import Testing
import DBMCore
import DBMModels

/// The DBMError message of body, or nil when it succeeds.
private func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

/// CDF of the semicircle of radius r centred at 0: 1/2 + (u√(1 − u²) + asin u)/π, u = x/r clamped to [−1, 1].
private func semicircleCDF(_ x: Double, radius r: Double) -> Double {
    let u = max(-1, min(1, x / r))
    return 0.5 + (u * (1 - u * u).squareRoot() + asin(u)) / Double.pi
}

/// Spacing ratios r_i = min(s_i, s_{i+1})/max(s_i, s_{i+1}) of ascending levels (all levels).
private func spacingRatios(_ x: [Double]) -> [Double] {
    let s = (1..<x.count).map { x[$0] - x[$0 - 1] }
    return (1..<s.count).map { min(s[$0], s[$0 - 1]) / max(s[$0], s[$0 - 1]) }
}

/// One harmonic ensemble shared by the density and spacing tests: N = 50, k = T = 1 (R = 10), dt = 10⁻³;
/// 4 streams of seed 2026 run in parallel, each equilibrated for 10 time units (≈ 10 relaxation times 1/k)
/// and then recorded every time unit, 200 records.
private struct HarmonicEnsemble: Sendable {
    static let n = 50, streams = 4, records = 200, dt = 1e-3
    let records: [[Double]]       // streams·records rows of n ascending levels
    let radius: Double
    let rejections: Int, skipped: Int, steps: Int, seconds: Double

    static let shared: HarmonicEnsemble = {
        let start = Date()
        final class Box: @unchecked Sendable { var rows = [[[Double]]](repeating: [], count: streams); var counts = [(Int, Int, Int)](repeating: (0, 0, 0), count: streams) }
        let box = Box()
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: streams) { s in
            let sim = try! DysonSimulator(n: n, k: 1, temperature: 1, dt: dt, seed: 2026, stream: UInt64(s))
            sim.step(Int((10 / dt).rounded()))
            var rows: [[Double]] = []
            for _ in 0..<records {
                sim.step(Int((1 / dt).rounded()))
                rows.append(sim.levelValues)
            }
            lock.lock(); box.rows[s] = rows; box.counts[s] = (sim.rejections, sim.skippedSubsteps, sim.steps); lock.unlock()
        }
        let r = (2 * Double(n) * 1 / 1).squareRoot()
        return HarmonicEnsemble(records: box.rows.flatMap { $0 }, radius: r,
                                rejections: box.counts.map { $0.0 }.reduce(0, +), skipped: box.counts.map { $0.1 }.reduce(0, +),
                                steps: box.counts.map { $0.2 }.reduce(0, +), seconds: Date().timeIntervalSince(start))
    }()
}

@Suite("Dyson Brownian motion (β = 1, harmonic potential)")
struct DysonTests {
    @Test("the levels stay strictly ascending over a long run, also from a crowded start")
    func orderingKept() throws {
        // Levels 10⁻⁶ apart at the start: the first steps must be halved many times.
        let sim = try DysonSimulator(levels: (0..<20).map { 1e-6 * Double($0) }, k: 2, temperature: 0.5, dt: 2e-3, seed: 7)
        var worst = Double.infinity
        for _ in 0..<2000 {
            sim.step(25)
            let x = sim.levelValues
            for i in 1..<x.count { worst = min(worst, x[i] - x[i - 1]) }
            #expect(x.allSatisfy { $0.isFinite })
        }
        #expect(worst > 0)
        #expect(sim.steps == 50_000 && abs(sim.time - 100) < 1e-9)
        let t = try sim.levels
        #expect(t.dtype == .float64 && t.shape == [20] && t.toDoubles() == sim.levelValues)
        print("Dyson ordering: smallest gap \(worst), rejections \(sim.rejections), skipped \(sim.skippedSubsteps) in \(sim.steps) steps")
    }

    @Test("stationary density is the semicircle of radius √(2NT/k): KS distance ≤ 0.03")
    func semicircleDensity() {
        let e = HarmonicEnsemble.shared
        let pooled = e.records.flatMap { $0 }.sorted()
        let cdf = pooled.map { semicircleCDF($0, radius: e.radius) }
        let ks = cdf.withUnsafeBufferPointer { Spectral.ksDistance($0) }
        print("Dyson semicircle: KS \(ks) over \(pooled.count) levels; rejections \(e.rejections), skipped \(e.skipped) in \(e.steps) steps; ensemble \(e.seconds) s")
        #expect(ks <= 0.03)
        // The radius is √(2NT/k), not √(NT/k) or √(4NT/k): both of those are far off.
        let half = pooled.map { semicircleCDF($0, radius: e.radius / 2.squareRoot()) }.withUnsafeBufferPointer { Spectral.ksDistance($0) }
        let double = pooled.map { semicircleCDF($0, radius: e.radius * 2.squareRoot()) }.withUnsafeBufferPointer { Spectral.ksDistance($0) }
        #expect(half > 0.05 && double > 0.05)
    }

    // Measured: 0.5373 (seed 2026), 0.5379 (2027) at dt = 10⁻³; 0.5347 at dt = 10⁻⁴. Exact 50×50 GOE (numpy,
    // 2000 matrices): 0.5286 all levels, 0.5304 bulk. So Euler–Maruyama leaves a +0.006…0.009 bias that
    // shrinks slowly with dt (the singular repulsion): this test has 0.003 to spare, not more.
    @Test("GOE spacing ratio ⟨r⟩ is 0.5307 within 0.01")
    func goeSpacingRatio() {
        let e = HarmonicEnsemble.shared
        let r = e.records.flatMap(spacingRatios)
        let mean = r.reduce(0, +) / Double(r.count)
        let bulk = e.records.flatMap { spacingRatios(Array($0[12..<38])) }
        let bulkMean = bulk.reduce(0, +) / Double(bulk.count)
        print("Dyson ⟨r⟩ = \(mean) over \(r.count) ratios (all levels); \(bulkMean) over \(bulk.count) (bulk)")
        #expect(abs(mean - 0.5307) <= 0.01)
        #expect(e.skipped == 0)
    }

    @Test("bad parameters throw, naming the parameter")
    func badParameters() {
        func make(levels: [Double] = [0, 1], k: Double = 1, t: Double = 1, dt: Double = 1e-3) -> String? {
            failure { try DysonSimulator(levels: levels, k: k, temperature: t, dt: dt, seed: 1) }
        }
        #expect(make(levels: [0])?.contains("levels") == true)
        #expect(make(levels: [0, .nan])?.contains("levels") == true)
        #expect(make(levels: [1, 1, 2])?.contains("distinct") == true)
        for bad in [0.0, -1, .infinity, .nan] {
            #expect(make(k: bad)?.contains("k must") == true)
            #expect(make(t: bad)?.contains("temperature") == true)
            #expect(make(dt: bad)?.contains("dt") == true)
        }
        #expect(failure { try DysonSimulator(n: 1, k: 1, temperature: 1, dt: 1e-3, seed: 1) }?.contains("n must") == true)
        #expect(failure { try DysonSimulator(n: 3, k: -1, temperature: 1, dt: 1e-3, seed: 1) }?.contains("k must") == true)
        #expect(make() == nil)
        // Unordered input is sorted.
        let sim = try? DysonSimulator(levels: [2, -1, 0.5], k: 1, temperature: 1, dt: 1e-3, seed: 1)
        #expect(sim?.levelValues == [-1, 0.5, 2])
    }
}
