import Foundation
import Testing
import DBMCore
import DBMModels

/// The DBMError message of body, or nil when it succeeds.
private func failure(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
}

/// The OU prediction for the diagonal standard deviation of the student's symmetric fluctuation
/// (DESIGN §3): σ² = 2αε²/(|B|(2 − α)); ⟨S⟩ = √π·σ.
private func predictedSpacing(lr: Double, batchSize: Int, eps: Double) -> Double {
    Double.pi.squareRoot() * (2 * lr * eps * eps / (Double(batchSize) * (2 - lr))).squareRoot()
}

/// Mean of s₁ − s₂ (columns 1 and 0: ascending) over the snapshots of epochs `from`..<epochs of a (seeds, epochs, 2) history.
private func meanSpacing(_ h: Tensor, from: Int) -> (mean: Double, count: Int) {
    let (seeds, epochs) = (h.shape[0], h.shape[1])
    let v = h.toDoubles()
    var sum = 0.0
    for k in 0..<seeds { for e in from..<epochs { sum += v[2 * (k * epochs + e) + 1] - v[2 * (k * epochs + e)] } }
    let n = seeds * (epochs - from)
    return (sum / Double(n), n)
}

/// Correlation of S = s₁ − s₂ between consecutive epochs (pairs e, e+1 with e ≥ from) of a history.
private func spacingCorrelation(_ h: Tensor, from: Int) -> Double {
    let (seeds, epochs) = (h.shape[0], h.shape[1])
    let v = h.toDoubles()
    func spacing(_ k: Int, _ e: Int) -> Double { v[2 * (k * epochs + e) + 1] - v[2 * (k * epochs + e)] }
    var pairs = [(Double, Double)]()
    for k in 0..<seeds { for e in from..<(epochs - 1) { pairs.append((spacing(k, e), spacing(k, e + 1))) } }
    let n = Double(pairs.count)
    let ma = pairs.map { $0.0 }.reduce(0, +) / n, mb = pairs.map { $0.1 }.reduce(0, +) / n
    var cov = 0.0, va = 0.0, vb = 0.0
    for (a, b) in pairs { cov += (a - ma) * (b - mb); va += (a - ma) * (a - ma); vb += (b - mb) * (b - mb) }
    return cov / (va * vb).squareRoot()
}

@Suite("TeacherStudent: the 2×2 teacher–student model of arXiv:2407.16427")
struct TeacherStudentTests {
    @Test("one SGD step equals W + α[(W_t − W)⟨xxᵀ⟩_B − ā_B] computed by hand from the documented draws")
    func oneStepByHand() throws {
        let (lr, eps, seed) = (0.3, 0.2, UInt64(7))
        let m = try TeacherStudent(lr: lr, batchSize: 2, eps: eps, nData: 3, seed: seed, stream: 4)
        // Replay the generator: per sample x₀, x₁, a₀₀, a₁₁, a₀₁; then the student's 4 entries.
        let g = Generator(seed: seed, stream: 4)
        var x = [[Double]](), a = [[Double]]()
        for _ in 0..<3 {
            let x0 = g.normal(), x1 = g.normal()
            let a00 = 2.0.squareRoot() * eps * g.normal(), a11 = 2.0.squareRoot() * eps * g.normal(), a01 = eps * g.normal()
            x.append([x0, x1]); a.append([a00, a01, a01, a11])
        }
        let w0 = (0..<4).map { _ in 0.1 * g.normal() }
        #expect(m.weight.toDoubles() == w0)
        m.step(1)
        #expect(m.position == 2 && m.stepCount == 1 && m.epochCount == 0 && m.stepsPerEpoch == 2)
        let batch = Array(m.order[0..<2])
        var c = [0.0, 0, 0, 0], abar = [0.0, 0, 0, 0]
        for i in batch { for r in 0..<2 { for s in 0..<2 { c[2 * r + s] += x[i][r] * x[i][s] / 2; abar[2 * r + s] += a[i][2 * r + s] / 2 } } }
        let d = [2 - w0[0], -w0[1], -w0[2], 2 - w0[3]]
        var expected = [Double](repeating: 0, count: 4)
        for r in 0..<2 { for s in 0..<2 {
            let dc = d[2 * r] * c[s] + d[2 * r + 1] * c[2 + s]
            expected[2 * r + s] = w0[2 * r + s] + lr * (dc - abar[2 * r + s])
        } }
        let got = m.weight.toDoubles()
        #expect(zip(got, expected).allSatisfy { abs($0 - $1) < 1e-14 }, "\(got) vs \(expected)")
        // The singular values' closed form agrees with √eig(WᵀW).
        let (s1, s2) = m.singularValues()
        let (p, q, r) = (got[0] * got[0] + got[2] * got[2], got[0] * got[1] + got[2] * got[3], got[1] * got[1] + got[3] * got[3])
        let disc = (((p - r) / 2) * ((p - r) / 2) + q * q).squareRoot()
        #expect(abs(s1 - ((p + r) / 2 + disc).squareRoot()) < 1e-12)
        #expect(abs(s2 - max(0, (p + r) / 2 - disc).squareRoot()) < 1e-12)
    }

    @Test("an epoch visits every sample exactly once, in a fresh shuffle each epoch; step(n) continues it")
    func epochVisitsEachSampleOnce() throws {
        let m = try TeacherStudent(lr: 0.1, batchSize: 7, eps: 0.1, nData: 100, seed: 3)
        #expect(m.stepsPerEpoch == 15)   // 14 batches of 7 and one of 2
        m.epoch()
        #expect(m.visits == [Int](repeating: 1, count: 100) && m.stepCount == 15 && m.epochCount == 1)
        let first = m.order
        m.step(4)   // part of epoch 2
        #expect(m.position == 28 && m.visits.reduce(0, +) == 128)
        m.epoch()   // finishes epoch 2
        #expect(m.visits == [Int](repeating: 2, count: 100) && m.stepCount == 30 && m.epochCount == 2)
        #expect(m.order != first && Set(m.order) == Set(0..<100))
        m.step(31)   // two whole epochs and one step
        #expect(m.visits.reduce(0, +) == 407 && m.epochCount == 4 && m.position == 7)
        // Default size: 500 steps per epoch.
        let d = try TeacherStudent(batchSize: 16, seed: 1)
        #expect(d.nData == 8000 && d.stepsPerEpoch == 500)
    }

    // Measured (release, this file's seeds, pooled 2000 seeds × epochs 2–10 = 18000 snapshots, statistical
    // error ±0.4%, the spacing's relative spread being ≈ 0.52): ⟨S⟩/(√π σ) = 1.005 at the baseline (DESIGN
    // quotes about +2% for the fixed per-sample noise), 1.007 at |B| = 4 (7500 snapshots, ±0.6%). The 5%
    // tolerance is thus ≥ 8 statistical errors from the measured value. Snapshots one epoch (500 steps) apart
    // are nearly independent: the linearised dynamics forget in about 1/α = 10 steps.
    @Test("baseline α = 0.1, |B| = 16, ε = 0.1: ⟨(s₁+s₂)/2⟩ = 2 within 1e-3 and ⟨S⟩ = √π σ within 5%")
    func baselineSpacing() throws {
        let (lr, bs, eps, epochs) = (0.1, 16, 0.1, 10)
        let h = try TeacherStudent.ensembleHistory(seeds: 0..<2000, epochs: epochs, lr: lr, batchSize: bs, eps: eps)
        let final = try TeacherStudent.ensemble(seeds: 0..<4, epochs: epochs, lr: lr, batchSize: bs, eps: eps)
        // ensemble = the last epoch of ensembleHistory, and model k = TeacherStudent(seed: k).
        #expect(final.toDoubles() == (try h.narrow(0, 0, 4).select(1, epochs - 1)).toDoubles())
        let m = try TeacherStudent(lr: lr, batchSize: bs, eps: eps, seed: 3)
        for _ in 0..<epochs { m.epoch() }
        let (s1, s2) = m.singularValues()
        #expect([s2, s1] == Array(final.toDoubles()[6..<8]) && m.levels() == [s2, s1])

        let last = try h.select(1, epochs - 1).toDoubles()
        let meanLevel: Double = last.reduce(0, +) / Double(last.count)   // the mean of (s₁ + s₂)/2
        #expect(abs(meanLevel - 2) < 1e-3, "⟨(s₁+s₂)/2⟩ = \(meanLevel)")
        // Epochs 2–10 (the first epoch is the relaxation from the initialisation).
        let (spacing, n) = meanSpacing(h, from: 1)
        let ratio = spacing / predictedSpacing(lr: lr, batchSize: bs, eps: eps)
        print("teacher-student baseline: ⟨(s1+s2)/2⟩ = \(meanLevel), ⟨S⟩/(√π σ) = \(ratio) over \(n) snapshots")
        #expect(abs(ratio - 1) < 0.05, "⟨S⟩/(√π σ) = \(ratio)")
        // Pooling assumes snapshots one epoch apart are nearly independent: their correlation is small.
        let lag1 = spacingCorrelation(h, from: 1)
        print("teacher-student baseline: correlation of S between consecutive epochs = \(lag1)")
        #expect(abs(lag1) < 0.05)
    }

    @Test("⟨S⟩ grows as √(α/((2 − α)|B|)): |B| = 4 vs 16 at α = 0.1 gives a ratio of 2 within 5%")
    func spacingScalesWithBatchSize() throws {
        let (lr, eps, epochs) = (0.1, 0.1, 6)
        let s4 = meanSpacing(try TeacherStudent.ensembleHistory(seeds: 0..<1500, epochs: epochs, lr: lr, batchSize: 4, eps: eps), from: 1)
        let s16 = meanSpacing(try TeacherStudent.ensembleHistory(seeds: 0..<1500, epochs: epochs, lr: lr, batchSize: 16, eps: eps), from: 1)
        let expected = predictedSpacing(lr: lr, batchSize: 4, eps: eps) / predictedSpacing(lr: lr, batchSize: 16, eps: eps)
        let ratio = s4.mean / s16.mean
        print("teacher-student ⟨S⟩(|B|=4)/⟨S⟩(|B|=16) = \(ratio) (expected \(expected)); each over \(s4.count) snapshots; "
              + "⟨S⟩/(√π σ) = \(s4.mean / predictedSpacing(lr: lr, batchSize: 4, eps: eps)), \(s16.mean / predictedSpacing(lr: lr, batchSize: 16, eps: eps))")
        #expect(abs(ratio / expected - 1) < 0.05, "ratio \(ratio)")
    }

    @Test("bad parameters throw errors that name them")
    func badParameters() throws {
        #expect(failure { try TeacherStudent(lr: .nan) }?.contains("lr must be finite and > 0, got nan") == true)
        #expect(failure { try TeacherStudent(lr: -0.1) }?.contains("lr must be finite and > 0, got -0.1") == true)
        #expect(failure { try TeacherStudent(lr: 0) }?.contains("lr") == true)
        #expect(failure { try TeacherStudent(eps: -1) }?.contains("eps must be finite and >= 0, got -1") == true)
        #expect(failure { try TeacherStudent(eps: .infinity) }?.contains("eps") == true)
        #expect(failure { try TeacherStudent(batchSize: 0) }?.contains("batchSize must be >= 1, got 0") == true)
        #expect(failure { try TeacherStudent(batchSize: 16, nData: 10) }?.contains("nData must be >= batchSize (16)") == true)
        #expect(failure { try TeacherStudent.ensemble(seeds: 0..<2, epochs: 0) }?.contains("epochs must be >= 1, got 0") == true)
        #expect(failure { try TeacherStudent.ensemble(seeds: 0..<0, epochs: 1) }?.contains("empty seed range") == true)
        #expect(failure { try TeacherStudent.ensemble(seeds: 0..<2, epochs: 1, lr: .nan) }?.contains("lr") == true)
        #expect(failure { try TeacherStudent(eps: 0) } == nil)   // ε = 0: noiseless SGD is valid
    }

    @Test("speed: SGD steps per second on one core at |B| = 16 (printed, not asserted)")
    func speed() throws {
        let m = try TeacherStudent(seed: 1)
        m.step(10_000)
        let n = 2_000_000
        let t0 = DispatchTime.now().uptimeNanoseconds
        m.step(n)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        print("teacher-student: \(Int(Double(n) / seconds)) SGD steps/s on one core at |B| = 16 (\(n) steps in \(seconds) s)")
        #expect(m.singularValues().0.isFinite)
    }
}
