import Foundation
import Testing
import DBMCore

/// ∫_a^b f by Simpson's rule on n (even) intervals.
private func integrate(_ a: Double, _ b: Double, _ n: Int = 200_000, _ f: (Double) -> Double) -> Double {
    let h = (b - a) / Double(n)
    var sum = f(a) + f(b)
    for k in 1..<n { sum += (k % 2 == 1 ? 4 : 2) * f(a + Double(k) * h) }
    return sum * h / 3
}

/// ∫_a^b f by the midpoint rule on n intervals (never evaluates f at a or b).
private func integrateOpen(_ a: Double, _ b: Double, _ n: Int = 200_000, _ f: (Double) -> Double) -> Double {
    let h = (b - a) / Double(n)
    var sum = 0.0
    for k in 0..<n { sum += f(a + (Double(k) + 0.5) * h) }
    return sum * h
}

/// The largest |F(x) − F(a) − ∫_a^x ρ| over `points` values of x spread over [a, b] (trapezoid rule).
private func worstCDFGap(_ a: Double, _ b: Double, density: (Double) -> Double, cdf: (Double) -> Double,
                         steps: Int = 200_000, points: Int = 200) -> Double {
    let h = (b - a) / Double(steps)
    var integral = 0.0, worst = 0.0
    for k in 1...steps {
        integral += h * (density(a + Double(k - 1) * h) + density(a + Double(k) * h)) / 2
        if k % (steps / points) == 0 { worst = max(worst, abs(integral - (cdf(a + Double(k) * h) - cdf(a)))) }
    }
    return worst
}

@Suite("Laws: the limiting laws of random-matrix theory, one function each (DBMCore/Laws.swift)")
struct LawsTests {
    // Marchenko–Pastur cases: (σ², rows, cols); q = 1/4 (either orientation), q = 1, q = 0.9.
    static let mpCases: [(Double, Int, Int)] = [(0.5, 30, 120), (0.5, 120, 30), (2, 40, 40), (0.01, 100, 90)]

    @Test("Marchenko–Pastur edges are Nσ²(1 ± √q)²: 15 and 135 for σ² = 0.5 and 30×120 in either orientation")
    func marchenkoPasturEdges() {
        for (rows, cols) in [(30, 120), (120, 30)] {
            let e = Laws.marchenkoPasturEdges(variance: 0.5, rows: rows, cols: cols)
            #expect(abs(e.lower - 15) < 1e-12 && abs(e.upper - 135) < 1e-12)
        }
        let square = Laws.marchenkoPasturEdges(variance: 2, rows: 40, cols: 40)
        #expect(square.lower == 0 && abs(square.upper - 320) < 1e-12)
    }

    @Test("Marchenko–Pastur density integrates to 1, has mean Nσ² and equals the textbook form in y = x/(Nσ²)")
    func marchenkoPasturDensity() {
        for (v, rows, cols) in Self.mpCases {
            let (lo, hi) = Laws.marchenkoPasturEdges(variance: v, rows: rows, cols: cols)
            let rho = { (x: Double) in Laws.marchenkoPasturDensity(x, variance: v, rows: rows, cols: cols) }
            // x = lo + (hi − lo) sin²φ removes the square-root edges (and the 1/√x of q = 1 at lo = 0, where the
            // open rule never evaluates).
            let mass = integrateOpen(0, Double.pi / 2) { phi in
                let s = sin(phi), c = cos(phi)
                return rho(lo + (hi - lo) * s * s) * 2 * (hi - lo) * s * c
            }
            let mean = integrateOpen(0, Double.pi / 2) { phi in
                let s = sin(phi), c = cos(phi), x = lo + (hi - lo) * s * s
                return x * rho(x) * 2 * (hi - lo) * s * c
            }
            let n = Double(max(rows, cols)), q = Double(min(rows, cols)) / n
            #expect(abs(mass - 1) < 1e-8, "σ² = \(v), \(rows)×\(cols): ∫ρ = \(mass)")
            #expect(abs(mean / (n * v) - 1) < 1e-8, "σ² = \(v), \(rows)×\(cols): mean \(mean), Nσ² = \(n * v)")
            // Independently: ρ_y(y) = √((y₊ − y)(y − y₋))/(2πqy) with y± = (1 ± √q)², and ρ(x) = ρ_y(x/(Nσ²))/(Nσ²).
            let yPlus = (1 + q.squareRoot()) * (1 + q.squareRoot()), yMinus = (1 - q.squareRoot()) * (1 - q.squareRoot())
            for t in [0.01, 0.2, 0.5, 0.77, 0.99] {
                let y = yMinus + t * (yPlus - yMinus)
                let expected = ((yPlus - y) * (y - yMinus)).squareRoot() / (2 * Double.pi * q * y) / (n * v)
                #expect(abs(rho(y * n * v) / expected - 1) < 1e-12)
            }
            #expect(rho(lo - 1e-9 * hi) == 0 && rho(hi * (1 + 1e-12)) == 0 && rho(-1) == 0)
            #expect(Laws.marchenkoPasturDensity(.nan, variance: v, rows: rows, cols: cols).isNaN)
        }
    }

    @Test("Marchenko–Pastur CDF is the integral of the density: 0 below x₋, 1 above x₊, monotone")
    func marchenkoPasturCDF() {
        for (v, rows, cols) in Self.mpCases {
            let (lo, hi) = Laws.marchenkoPasturEdges(variance: v, rows: rows, cols: cols)
            let rho = { (x: Double) in Laws.marchenkoPasturDensity(x, variance: v, rows: rows, cols: cols) }
            let F = { (x: Double) in Laws.marchenkoPasturCDF(x, variance: v, rows: rows, cols: cols) }
            // From 1% into the support (at q = 1 the density diverges at 0, which the trapezoid rule cannot integrate).
            let a = lo + 0.01 * (hi - lo)
            let gap = worstCDFGap(a, hi, density: rho, cdf: F)
            #expect(gap < 1e-5, "σ² = \(v), \(rows)×\(cols): CDF off its density's integral by \(gap)")
            #expect(F(lo - 1) == 0 && F(lo) == 0 && F(hi) == 1 && F(hi + 1) == 1)
            var previous = 0.0
            for k in 0...1000 {
                let f = F(lo + (hi - lo) * Double(k) / 1000)
                #expect(f >= previous - 1e-15)
                previous = f
            }
        }
        // Independently, q = 1 and σ² = 1/N (support [0, 4]): ρ(y) = √((4 − y)/y)/(2π), and with y = 4 sin²φ
        // F(y) = (√(y(4 − y)) + 4 asin(√y/2))/(2π).
        for y in [0.1, 1.0, 2.0, 3.5] {
            let expected = ((y * (4 - y)).squareRoot() + 4 * asin(y.squareRoot() / 2)) / (2 * Double.pi)
            let f = Laws.marchenkoPasturCDF(y, variance: 1.0 / 50, rows: 50, cols: 50)
            #expect(abs(f - expected) < 1e-12, "q = 1: F(\(y)) = \(f), expected \(expected)")
        }
    }

    @Test("semicircle: integrates to 1 with variance R²/4; the CDF is its integral; 2/(πR) at the centre")
    func semicircle() {
        let (r, c) = (2.0, 1.0)
        let rho = { (x: Double) in Laws.semicircleDensity(x, radius: r, center: c) }
        let F = { (x: Double) in Laws.semicircleCDF(x, radius: r, center: c) }
        let mass = integrate(-Double.pi / 2, Double.pi / 2) { t in rho(c + r * sin(t)) * r * cos(t) }
        let variance = integrate(-Double.pi / 2, Double.pi / 2) { t in
            let x = c + r * sin(t)
            return (x - c) * (x - c) * rho(x) * r * cos(t)
        }
        #expect(abs(mass - 1) < 1e-10 && abs(variance - r * r / 4) < 1e-10)
        #expect(abs(rho(c) - 2 / (Double.pi * r)) < 1e-15)
        #expect(rho(c - r) == 0 && rho(c + r + 1e-9) == 0)
        #expect(worstCDFGap(c - r, c + r, density: rho, cdf: F) < 1e-6)
        #expect(F(c - r - 1) == 0 && F(c) == 0.5 && F(c + r + 1) == 1)
        // Independent form: F(x) = (θ − sin θ cos θ)/π with x − κ = −R cos θ, θ ∈ [0, π].
        for x in [-0.5, 0.3, 1.7, 2.9] {
            let theta = acos(-(x - c) / r)
            #expect(abs(F(x) - (theta - sin(theta) * cos(theta)) / Double.pi) < 1e-12)
        }
        #expect(Laws.semicircleDensity(.nan, radius: r).isNaN && Laws.semicircleCDF(.nan, radius: r).isNaN)
    }

    @Test("spacing laws (GOE and GUE Wigner surmise, Poisson): each integrates to 1 with mean spacing 1; CDFs are their integrals")
    func spacingLaws() {
        for e in LevelEnsemble.allCases {
            let p = { (s: Double) in Laws.spacingDensity(s, e) }
            let F = { (s: Double) in Laws.spacingCDF(s, e) }
            let mass = integrate(0, 40) { p($0) }, mean = integrate(0, 40) { $0 * p($0) }
            #expect(abs(mass - 1) < 1e-10 && abs(mean - 1) < 1e-10, "\(e): ∫P = \(mass), ⟨s⟩ = \(mean)")
            #expect(worstCDFGap(0, 6, density: p, cdf: F) < 1e-8, "\(e)")
            #expect(F(0) == 0 && F(-1) == 0 && p(-1) == 0 && abs(F(40) - 1) < 1e-15)
            #expect(p(.nan).isNaN && F(.nan).isNaN)
        }
        // Values written out independently.
        #expect(abs(Laws.wignerSurmiseGOE(1) - Double.pi / 2 * exp(-Double.pi / 4)) < 1e-15)
        #expect(abs(Laws.wignerSurmiseGOECDF(2) - (1 - exp(-Double.pi))) < 1e-15)
        #expect(abs(Laws.wignerSurmiseGUE(1) - 32 / (Double.pi * Double.pi) * exp(-4 / Double.pi)) < 1e-15)
        #expect(abs(Laws.poissonSpacing(0.5) - exp(-0.5)) < 1e-15 && abs(Laws.poissonSpacingCDF(3) - (1 - exp(-3))) < 1e-15)
        // Level repulsion: P(s) ∝ s^β at small s (β = 1 for GOE, 2 for GUE); Poisson has P(0) = 1.
        #expect(abs(Laws.wignerSurmiseGOE(1e-6) / 1e-6 - Double.pi / 2) < 1e-6)
        #expect(abs(Laws.wignerSurmiseGUE(1e-6) / 1e-12 - 32 / (Double.pi * Double.pi)) < 1e-6)
        #expect(Laws.poissonSpacing(0) == 1)
    }

    @Test("spacing-ratio laws on [0, 1]: integrate to 1; CDFs are their integrals; Poisson ⟨r⟩ = 2 ln 2 − 1 exactly, the GOE surmise's 4 − 2√3 is within 0.006 of the reference 0.5307")
    func spacingRatios() {
        for e in LevelEnsemble.allCases {
            let p = { (r: Double) in Laws.spacingRatioDensity(r, e) }
            let F = { (r: Double) in Laws.spacingRatioCDF(r, e) }
            #expect(abs(integrate(0, 1) { p($0) } - 1) < 1e-12, "\(e)")
            #expect(worstCDFGap(0, 1, density: p, cdf: F) < 1e-9, "\(e)")
            #expect(F(0) == 0 && F(1) == 1 && F(-0.5) == 0 && F(2) == 1 && p(-0.1) == 0 && p(1.1) == 0)
            #expect(p(.nan).isNaN && F(.nan).isNaN)
        }
        func mean(_ e: LevelEnsemble) -> Double { integrate(0, 1) { $0 * Laws.spacingRatioDensity($0, e) } }
        // Atas et al., PRL 110 (2013) 084101, Table I: the surmise's means and the large-N references.
        let goe = mean(.goe), gue = mean(.gue), poisson = mean(.poisson)
        print("⟨r⟩ of the P(r) laws: GOE surmise \(goe), GUE surmise \(gue), Poisson \(poisson)")
        #expect(abs(goe - (4 - 2 * 3.0.squareRoot())) < 1e-12)
        #expect(abs(gue - (2 * 3.0.squareRoot() / Double.pi - 0.5)) < 1e-12)
        #expect(abs(poisson - (2 * log(2.0) - 1)) < 1e-12)
        #expect(abs(Laws.meanSpacingRatio(.goe) - 0.5307) < 1e-12 && abs(Laws.meanSpacingRatio(.gue) - 0.5996) < 1e-12)
        #expect(abs(Laws.meanSpacingRatio(.poisson) - 0.3862943611198906) < 1e-15)
        #expect(abs(poisson - Laws.meanSpacingRatio(.poisson)) < 1e-12)
        #expect(abs(goe - Laws.meanSpacingRatio(.goe)) < 0.006 && abs(gue - Laws.meanSpacingRatio(.gue)) < 0.004)
        // Values written out independently: P_GOE(1) = (27/4)·2/3^{5/2}, P_Poisson(r) = 2/(1 + r)².
        #expect(abs(Laws.spacingRatioDensity(1, .goe) - 27.0 / 2 / pow(3, 2.5)) < 1e-14)
        #expect(abs(Laws.spacingRatioDensity(0.5, .poisson) - 2 / 2.25) < 1e-15)
        #expect(abs(Laws.spacingRatioCDF(0.5, .poisson) - 2.0 / 3) < 1e-15)
    }

    @Test("⟨r⟩ of sampled 3×3 GOE matrices is the surmise's 4 − 2√3 within 0.005 (the surmise is exact for 3×3)")
    func ratioSurmiseIsExactForThreeLevels() {
        let g = Generator(seed: 17)
        var sum = 0.0
        let samples = 50_000
        for _ in 0..<samples {
            // H = (A + Aᵀ)/√2: eigenvalues by the trigonometric formula for a symmetric 3×3 matrix.
            var a = [[Double]](repeating: [0, 0, 0], count: 3)
            for i in 0..<3 { for j in 0..<3 { a[i][j] = g.normal() } }
            var h = a
            for i in 0..<3 { for j in 0..<3 { h[i][j] = (a[i][j] + a[j][i]) / 2.squareRoot() } }
            let ev = symmetric3Eigenvalues(h).sorted()
            let d1 = ev[1] - ev[0], d2 = ev[2] - ev[1]
            sum += min(d1, d2) / max(d1, d2)
        }
        let r = sum / Double(samples)
        print("3×3 GOE: ⟨r⟩ = \(r) over \(samples) matrices (surmise 4 − 2√3 = \(4 - 2 * 3.0.squareRoot()))")
        #expect(abs(r - (4 - 2 * 3.0.squareRoot())) < 0.005)   // standard error ≈ 0.001
    }

    @Test("2×2 GOE block: sampled spacings average √π σ within 1.5%")
    func goe2MeanSpacing() {
        let g = Generator(seed: 9)
        let sigma = 0.3
        var sum = 0.0
        for _ in 0..<20_000 {
            let a = sigma * g.normal(), b = sigma * g.normal(), c = sigma / 2.squareRoot() * g.normal()
            sum += 2 * (((a - b) / 2) * ((a - b) / 2) + c * c).squareRoot()
        }
        #expect(abs(sum / 20_000 / Laws.goe2MeanSpacing(sigma: sigma) - 1) < 0.015)
        #expect(Laws.goe2MeanSpacing(sigma: 1) == Double.pi.squareRoot())
    }

    @Test("SpectralLaw (the Dyson simulator's stationary law) is the Laws functions")
    func spectralLawDelegates() {
        let sc = SpectralLaw.semicircle(radius: 2, center: 1), mp = SpectralLaw.marchenkoPastur(variance: 0.5, rows: 30, cols: 120)
        for x in [-0.5, 0.7, 2.2, 20, 60, 130] {
            #expect(sc.density(x) == Laws.semicircleDensity(x, radius: 2, center: 1) && sc.cdf(x) == Laws.semicircleCDF(x, radius: 2, center: 1))
            #expect(mp.density(x) == Laws.marchenkoPasturDensity(x, variance: 0.5, rows: 30, cols: 120)
                    && mp.cdf(x) == Laws.marchenkoPasturCDF(x, variance: 0.5, rows: 30, cols: 120))
        }
        #expect(mp.edges == Laws.marchenkoPasturEdges(variance: 0.5, rows: 30, cols: 120) && sc.edges == (-1, 3))
    }
}

/// The eigenvalues of a symmetric 3×3 matrix (Smith, CACM 4 (1961) 168: trigonometric solution of the cubic).
private func symmetric3Eigenvalues(_ a: [[Double]]) -> [Double] {
    let p1 = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2]
    let q = (a[0][0] + a[1][1] + a[2][2]) / 3
    let p2 = (a[0][0] - q) * (a[0][0] - q) + (a[1][1] - q) * (a[1][1] - q) + (a[2][2] - q) * (a[2][2] - q) + 2 * p1
    let p = (p2 / 6).squareRoot()
    var b = a
    for i in 0..<3 { for j in 0..<3 { b[i][j] = (a[i][j] - (i == j ? q : 0)) / p } }
    let det = b[0][0] * (b[1][1] * b[2][2] - b[1][2] * b[2][1]) - b[0][1] * (b[1][0] * b[2][2] - b[1][2] * b[2][0])
        + b[0][2] * (b[1][0] * b[2][1] - b[1][1] * b[2][0])
    let phi = acos(max(-1, min(1, det / 2))) / 3
    let e1 = q + 2 * p * cos(phi), e3 = q + 2 * p * cos(phi + 2 * Double.pi / 3)
    return [e1, 3 * q - e1 - e3, e3]
}
