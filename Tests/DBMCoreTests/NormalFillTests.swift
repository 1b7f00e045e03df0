import Foundation
import Testing
import DBMCore

/// Φ(x), the standard normal CDF.
private func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

/// n deviates of fillNormalZiggurat, filled in chunks of 1000 (each call saves and restores the state).
private func zigguratSample(_ n: Int, seed: UInt64) -> [Double] {
    let g = Generator(seed: seed)
    var out = [Double](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { p in
        for start in stride(from: 0, to: n, by: 1000) {
            g.fillNormalZiggurat(UnsafeMutableBufferPointer(rebasing: p[start..<min(n, start + 1000)]))
        }
    }
    return out
}

@Suite("Generator.fillNormalZiggurat: standard normal deviates by the 256-layer ziggurat")
struct NormalFillTests {
    // Every tolerance is 5 standard errors of its statistic at n = 4·10⁶ (or a KS/χ² bound that a
    // correct generator exceeds with probability below 10⁻⁴), so it holds for any seed.
    @Test("mean 0, variance 1, kurtosis 3, tail fractions (|z| > 2, > R = 3.654 where the tail algorithm starts, > 4) within 5 standard errors")
    func moments() {
        let n = 4_000_000
        let z = zigguratSample(n, seed: 11)
        let N = Double(n)
        let mean = z.reduce(0, +) / N
        let m2 = z.reduce(0) { $0 + $1 * $1 } / N
        let m4 = z.reduce(0) { $0 + $1 * $1 * $1 * $1 } / N
        print("ziggurat: mean \(mean), variance \(m2), fourth moment \(m4) over \(n) deviates")
        #expect(abs(mean) < 5 / N.squareRoot())
        #expect(abs(m2 - 1) < 5 * (2 / N).squareRoot())
        #expect(abs(m4 - 3) < 5 * (96 / N).squareRoot())   // Var(z⁴) = 105 − 9 = 96
        for t in [2.0, 3.6541528853610088, 4.0] {
            let p = 2 * normalCDF(-t)
            let count = Double(z.filter { abs($0) > t }.count)
            print("ziggurat: P(|z| > \(t)) = \(count / N) (expected \(p))")
            #expect(abs(count - N * p) < 5 * (N * p * (1 - p)).squareRoot())
        }
        #expect(z.allSatisfy { $0.isFinite })
    }

    @Test("the CDF is Φ: KS distance under 2/√n (p < 10⁻³) and χ² over 200 equiprobable bins under 300 (199 dof, 5 sd)")
    func distribution() {
        let n = 4_000_000
        let z = zigguratSample(n, seed: 12)
        let sorted = z[0..<1_000_000].sorted()
        let cdf = sorted.map(normalCDF)
        let ks = cdf.withUnsafeBufferPointer { Spectral.ksDistance($0) }
        // Bin by Φ(z): equiprobable bins whose edges fall anywhere, also on the ziggurat's layer edges.
        var counts = [Double](repeating: 0, count: 200)
        for x in z { counts[min(199, Int(normalCDF(x) * 200))] += 1 }
        let expected = Double(n) / 200
        let chi2 = counts.reduce(0) { $0 + ($1 - expected) * ($1 - expected) / expected }
        print("ziggurat: KS distance \(ks) over 10^6 (2/√n = 0.002); χ² = \(chi2) over 200 bins of \(n)")
        #expect(ks < 2 / 1000.0)
        #expect(chi2 < 300)
    }

    @Test("std scales the sequence; the same seed gives the same sequence; normal()'s spare deviate is left alone")
    func sequence() {
        let a = Generator(seed: 5), b = Generator(seed: 5)
        var x = [Double](repeating: 0, count: 777), y = x
        x.withUnsafeMutableBufferPointer { a.fillNormalZiggurat($0) }
        y.withUnsafeMutableBufferPointer { b.fillNormalZiggurat($0, std: 3) }
        #expect(zip(x, y).allSatisfy { 3 * $0 == $1 })
        #expect(a.state == b.state)
        // normal() caches the second deviate of each Box–Muller pair; a fill in between keeps it.
        let c = Generator(seed: 9), d = Generator(seed: 9)
        _ = c.normal(); _ = d.normal()
        x.withUnsafeMutableBufferPointer { c.fillNormalZiggurat($0) }
        #expect(c.normal() == d.normal())
    }
}
