import Foundation
import Testing
import DBMCore
import DBMLua

@Suite("Diagnostics plugins against random-matrix theory")
struct DiagnosticsTests {
    @Test("plugins: GOE and Poisson level statistics, Marchenko–Pastur with BBP spikes, Pareto tails, semicircle, IPR, norms, degenerate input")
    func pluginsAgainstKnownCases() throws { try LuaScriptTests().runScript("plugins.lua") }

    @Test("the power-law scan's KS distances match a direct evaluation with pow to 1e-12")
    func powerLawScanMatchesDirectFormula() throws {
        // Levels with a heavy tail and a bulk, ascending.
        let g = Generator(seed: 42)
        let x = (0..<300).map { _ in pow(1 - g.uniform(), -1 / 1.7) * (0.5 + g.uniform()) }.sorted()
        let (alpha, ks) = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: 10) }
        var checked = 0
        for k in x.indices where !ks[k].isNaN {
            let tail = x[k...], n = Double(tail.count)
            let a = 1 + n / tail.reduce(0) { $0 + log($1 / x[k]) }
            var d = 0.0
            for (j, xj) in tail.enumerated() {
                let p = 1 - pow(xj / x[k], 1 - a)
                d = max(d, Double(j + 1) / n - p, p - Double(j) / n)
            }
            #expect(abs(alpha[k] - a) <= 1e-12 * a && abs(ks[k] - d) <= 1e-12, "x_min = levels[\(k)]: α \(alpha[k]) vs \(a), D \(ks[k]) vs \(d)")
            checked += 1
        }
        #expect(checked == 291, "every level but the last 9 is a candidate (minTail 10)")
        // The pruned scan keeps the minimum (and only +∞ elsewhere).
        let pruned = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: 10, exhaustive: false) }
        let best = ks.filter { !$0.isNaN }.min()!
        #expect(pruned.ks.filter { !$0.isNaN }.min()! == best)
        #expect(pruned.ks.allSatisfy { $0.isNaN || $0 == .infinity || ks.contains($0) })
    }

    @Test("truncated power law: the normaliser ∫₁^∞ u^{−α}e^{−βu}du equals its closed forms to 1e-9; the fit recovers α and Λ of truncated samples (p < 1e-6) and finds no truncation in pure power-law samples (|R| < 5)")
    func truncatedPowerLawFit() throws {
        let e1 = 0.219383934395520   // E₁(1)
        for (a, b, exact) in [(2.5, 0.0, 1 / 1.5), (0.0, 2.0, exp(-2.0) / 2), (1.0, 1.0, e1), (2.0, 1.0, exp(-1.0) - e1),
                              (-1.0, 2.0, exp(-2.0) * 0.75), (3.0, 1e-8, 0.5 - 1e-8)   /* E₃(x) = ½ − x + O(x² log x) */] {
            let i = Spectral.truncatedPowerLawIntegral(alpha: a, beta: b)
            #expect(abs(i / exact - 1) <= 1e-9, "I(\(a), \(b)) = \(i), expected \(exact)")
        }
        let g = Generator(seed: 15)
        func sample(_ alpha: Double, _ lambda: Double, _ n: Int) -> [Double] {
            var x: [Double] = []
            while x.count < n {   // the power law by inversion, thinned by e^{−Λ(x − 1)}: x^{−α}e^{−Λx} on x ≥ 1
                let v = pow(1 - g.uniform(), -1 / (alpha - 1))
                if g.uniform() < exp(-lambda * (v - 1)) { x.append(v) }
            }
            return x
        }
        let truncated = sample(1.8, 0.05, 20000)
        let plAlpha = 1 + 20000 / truncated.reduce(0) { $0 + log($1) }
        let t = try #require(Spectral.truncatedPowerLawFit(tail: truncated, xMin: 1, alpha: plAlpha))
        // standard errors at n = 2·10⁴: α ≈ 0.01, Λ ≈ 0.003
        #expect(abs(t.alpha - 1.8) < 0.06 && abs(t.lambda - 0.05) < 0.015 && t.logLikelihoodRatio < 0 && t.p < 1e-6,
                "truncated samples: α \(t.alpha), Λ \(t.lambda), R \(t.logLikelihoodRatio), p \(t.p)")
        let pure = sample(2.5, 0, 20000)
        let pureAlpha = 1 + 20000 / pure.reduce(0) { $0 + log($1) }
        let u = try #require(Spectral.truncatedPowerLawFit(tail: pure, xMin: 1, alpha: pureAlpha))
        // nested laws under the null: 2|R| ~ χ²₁, P(|R| ≥ 5) = 0.16%
        #expect(abs(u.alpha - 2.5) < 0.06 && u.lambda < 0.002 && u.logLikelihoodRatio <= 1e-12 && abs(u.logLikelihoodRatio) < 5,
                "pure power law: α \(u.alpha), Λ \(u.lambda), R \(u.logLikelihoodRatio), p \(u.p)")
    }

    @Test("the power-law scan with the powerlaw package's KS distance max|P_j − j/n| matches WeightWatcher's formula to 1e-12, ties as positions")
    func powerLawScanOneSidedMatchesWeightWatcherFormula() throws {
        let g = Generator(seed: 7)
        var x = (0..<200).map { _ in pow(1 - g.uniform(), -1 / 2.3) }
        x += [x[50], x[120]]   // ties: WeightWatcher takes every position data[i] as a candidate
        x.sort()
        let (alpha, ks) = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: 2, distance: .powerlaw) }
        for k in 0..<(x.count - 1) {   // WWFit.fit_power_law_standard: xmins = data[:-1]
            let tail = x[k...], n = Double(tail.count)
            let a = 1 + n / tail.reduce(0) { $0 + log($1 / x[k]) }
            var d = 0.0
            for (j, xj) in tail.enumerated() { d = max(d, abs(1 - pow(xj / x[k], 1 - a) - Double(j) / n)) }
            #expect(abs(alpha[k] - a) <= 1e-12 * a && abs(ks[k] - d) <= 1e-12, "x_min = levels[\(k)]: α \(alpha[k]) vs \(a), D \(ks[k]) vs \(d)")
        }
        #expect(ks[x.count - 1].isNaN, "a tail of one level is no candidate")
        let pruned = x.withUnsafeBufferPointer { Spectral.powerLawScan($0, minTail: 2, exhaustive: false, distance: .powerlaw) }
        #expect(pruned.ks.filter { !$0.isNaN }.min()! == ks.filter { !$0.isNaN }.min()!)
    }
}
