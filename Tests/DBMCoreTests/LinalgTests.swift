import Foundation
import Testing
import DBMCore

// Tests of Linalg: agreement with numpy (run through python3), algebraic identities, random-matrix
// laws (GOE semicircle, Marchenko–Pastur) and input checks.

/// The parent suite (so `--filter LinalgTests` selects all of these).
@Suite struct LinalgTests {}

// ------------------------------------------------------------------ helpers

/// Row-major Float64 values of a random (m, n) matrix with N(0, 1) entries.
private func randomMatrix(_ m: Int, _ n: Int, seed: UInt64, dtype: DType = .float64) throws -> Tensor {
    try Tensor.randn([m, n], dtype: dtype, generator: Generator(seed: seed))
}

/// A symmetric (n, n) Float64 matrix B + Bᵀ.
private func randomSymmetric(_ n: Int, seed: UInt64) throws -> Tensor {
    let b = try randomMatrix(n, n, seed: seed).toDoubles()
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { a[i * n + j] = b[i * n + j] + b[j * n + i] } }
    return try Tensor.from(a, shape: [n, n], dtype: .float64)
}

/// C = A (m, k) · B (k, n), row-major arrays.
private func matmul(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for p in 0..<k {
            let x = a[i * k + p]
            for j in 0..<n { c[i * n + j] += x * b[p * n + j] }
        }
    }
    return c
}

private func transpose(_ a: [Double], _ m: Int, _ n: Int) -> [Double] {
    var t = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { t[j * m + i] = a[i * n + j] } }
    return t
}

private func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }

private func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    if a.count != b.count { return .infinity }   // a size mismatch fails the comparison, not the process
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Max |QᵀQ − I| for Q (m, k) with (hopefully) orthonormal columns.
private func orthonormalityError(_ q: [Double], _ m: Int, _ k: Int) -> Double {
    let qtq = matmul(transpose(q, m, k), q, k, m, k)
    var e = 0.0
    for i in 0..<k { for j in 0..<k { e = max(e, abs(qtq[i * k + j] - (i == j ? 1 : 0))) } }
    return e
}

/// Runs numpy on each matrix (written as raw little-endian Float64) and returns the flat results.
/// mode: "eigvalsh", "svdvals", or "svd" (U, S, Vᵀ concatenated, each row-major).
private func numpy(_ mode: String, _ matrices: [Tensor]) throws -> [[Double]] {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("linalg-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var args = ["python3", "-c", """
        import sys, numpy as np
        mode = sys.argv[1]
        for path, m, n in zip(*[iter(sys.argv[2:])] * 3):
            a = np.fromfile(path, dtype='<f8').reshape(int(m), int(n))
            if mode == 'eigvalsh':
                r = np.linalg.eigvalsh(a)
            elif mode == 'svdvals':
                r = np.linalg.svd(a, compute_uv=False)
            else:
                u, s, vt = np.linalg.svd(a, full_matrices=False)
                r = np.concatenate([u.ravel(), s, vt.ravel()])
            r.astype('<f8').tofile(path + '.out')
        """, mode]
    for (i, t) in matrices.enumerated() {
        let path = dir.appendingPathComponent("m\(i).f64").path
        let values = t.toDoubles()
        let data = values.withUnsafeBufferPointer { Data(buffer: $0) }   // x86-64: little-endian already
        try data.write(to: URL(fileURLWithPath: path))
        args += [path, String(t.shape[0]), String(t.shape[1])]
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let err = Pipe()
    p.standardError = err
    try p.run()
    p.waitUntilExit()
    let message = String(data: err.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
    guard p.terminationStatus == 0 else { throw DBMError("python3/numpy failed: \(message)") }
    return try (0..<matrices.count).map { i in
        let data = try Data(contentsOf: dir.appendingPathComponent("m\(i).f64.out"))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }
}

/// Relative error of a spectrum against a reference, relative to the reference's largest |value|.
private func spectrumError(_ got: Tensor, _ want: [Double]) -> Double {
    maxAbsDiff(got.toDoubles(), want) / max(maxAbs(want), .leastNormalMagnitude)
}

// ------------------------------------------------------------------ agreement with numpy

extension LinalgTests {
    @Suite struct Numpy {
        @Test func eigvalshMatchesNumpy() throws {
            var inputs: [Tensor] = []
            for (i, n) in [1, 2, 7, 64, 257].enumerated() { inputs.append(try randomSymmetric(n, seed: UInt64(10 + i))) }
            // Not symmetric: only the lower triangle counts, as numpy's default UPLO = 'L'.
            inputs.append(try randomMatrix(40, 40, seed: 20))
            // A transposed view, and Float32 entries computed in Float64.
            inputs.append(try randomSymmetric(50, seed: 21).t())
            let s32 = try randomSymmetric(60, seed: 22).copy(dtype: .float32)
            inputs.append(s32)
            let want = try numpy("eigvalsh", inputs)
            for (a, w) in zip(inputs, want) {
                let got = try Linalg.eigvalsh(a)
                #expect(got.dtype == .float64 && got.shape == [a.shape[0]])
                let e = spectrumError(got, w)
                #expect(e < 1e-10, "eigvalsh \(formatShape(a.shape)) \(a.dtype): relative error \(e)")
            }
            // Float32 computation: single-precision accuracy.
            let got32 = try Linalg.eigvalsh(s32, dtype: .float32)
            #expect(got32.dtype == .float32)
            #expect(spectrumError(got32, want.last!) < 1e-5)
        }

        @Test func svdvalsMatchesNumpy() throws {
            var inputs: [Tensor] = []
            for (i, (m, n)) in [(1, 1), (1, 7), (7, 1), (50, 20), (20, 50), (300, 120), (120, 300)].enumerated() {
                inputs.append(try randomMatrix(m, n, seed: UInt64(30 + i)))
            }
            inputs.append(try randomMatrix(30, 80, seed: 40).t())                // transposed view (80, 30)
            inputs.append(try randomMatrix(90, 40, seed: 41).narrow(1, 5, 30))  // narrowed view (90, 30)
            let w32 = try randomMatrix(70, 45, seed: 42, dtype: .float32)
            inputs.append(w32)
            let want = try numpy("svdvals", inputs)
            for (w, s) in zip(inputs, want) {
                let got = try Linalg.svdvals(w)
                #expect(got.dtype == .float64 && got.shape == [min(w.shape[0], w.shape[1])])
                let e = spectrumError(got, s)
                #expect(e < 1e-10, "svdvals \(formatShape(w.shape)) \(w.dtype): relative error \(e)")
                let v = got.toDoubles()
                #expect(zip(v, v.dropFirst()).allSatisfy { $0 >= $1 }, "singular values not descending")
            }
            #expect(spectrumError(try Linalg.svdvals(w32, dtype: .float32), want.last!) < 1e-5)
        }

        @Test func svdMatchesNumpy() throws {
            let inputs = [try randomMatrix(50, 20, seed: 50), try randomMatrix(20, 50, seed: 51),
                          try randomMatrix(30, 45, seed: 52).t(), try randomMatrix(25, 25, seed: 53, dtype: .float32)]
            let want = try numpy("svd", inputs)
            for (w, flat) in zip(inputs, want) {
                let m = w.shape[0], n = w.shape[1], k = min(m, n)
                let (u, s, vt) = try Linalg.svd(w)
                #expect(u.shape == [m, k] && s.shape == [k] && vt.shape == [k, n])
                let wantU = Array(flat[0..<m * k]), wantS = Array(flat[m * k..<m * k + k])
                let wantVt = Array(flat[(m * k + k)...])
                #expect(spectrumError(s, wantS) < 1e-10, "svd S \(formatShape(w.shape))")
                // Singular vectors are unique up to sign (the random spectra here have no repeated values):
                // align each pair's sign with numpy's before comparing.
                var ud = u.toDoubles(), vd = vt.toDoubles()
                for i in 0..<k {
                    var dot = 0.0
                    for r in 0..<m { dot += ud[r * k + i] * wantU[r * k + i] }
                    if dot < 0 {
                        for r in 0..<m { ud[r * k + i] = -ud[r * k + i] }
                        for c in 0..<n { vd[i * n + c] = -vd[i * n + c] }
                    }
                }
                #expect(maxAbsDiff(ud, wantU) < 1e-9, "svd U \(formatShape(w.shape)): \(maxAbsDiff(ud, wantU))")
                #expect(maxAbsDiff(vd, wantVt) < 1e-9, "svd Vt \(formatShape(w.shape)): \(maxAbsDiff(vd, wantVt))")
            }
        }
    }
}

// ------------------------------------------------------------------ identities

extension LinalgTests {
    @Suite struct Identity {
        @Test(arguments: [1, 3, 40, 200])
        func eighDecomposes(n: Int) throws {
            let a = try randomSymmetric(n, seed: UInt64(60 + n))
            let (values, vectors) = try Linalg.eigh(a)
            #expect(values.shape == [n] && vectors.shape == [n, n])
            let lam = values.toDoubles(), v = vectors.toDoubles(), ad = a.toDoubles()
            #expect(zip(lam, lam.dropFirst()).allSatisfy { $0 <= $1 }, "eigenvalues not ascending")
            let scale = maxAbs(lam)
            // A·V = V·diag(λ): column i of V is the eigenvector of λ_i.
            let av = matmul(ad, v, n, n, n)
            var vl = v
            for r in 0..<n { for c in 0..<n { vl[r * n + c] *= lam[c] } }
            #expect(maxAbsDiff(av, vl) / scale < 1e-10, "A·V − V·diag(λ): \(maxAbsDiff(av, vl) / scale)")
            #expect(orthonormalityError(v, n, n) < 1e-10)
            #expect(maxAbsDiff(lam, try Linalg.eigvalsh(a).toDoubles()) / scale < 1e-12)
        }

        @Test(arguments: [(1, 1), (6, 1), (1, 6), (60, 25), (25, 60), (40, 40)])
        func svdReconstructs(m: Int, n: Int) throws {
            for w in [try randomMatrix(m, n, seed: UInt64(70 + m * 100 + n)),
                      try randomMatrix(n, m, seed: UInt64(71 + m * 100 + n)).t()] {
                let k = min(m, n)
                let (u, s, vt) = try Linalg.svd(w)
                let ud = u.toDoubles(), sd = s.toDoubles(), vtd = vt.toDoubles(), wd = w.toDoubles()
                #expect(zip(sd, sd.dropFirst()).allSatisfy { $0 >= $1 }, "singular values not descending")
                var us = ud
                for r in 0..<m { for c in 0..<k { us[r * k + c] *= sd[c] } }
                let back = matmul(us, vtd, m, k, n)
                #expect(maxAbsDiff(back, wd) / sd[0] < 1e-10, "U·diag(S)·Vᵀ − W: \(maxAbsDiff(back, wd) / sd[0])")
                #expect(orthonormalityError(ud, m, k) < 1e-10)
                #expect(orthonormalityError(transpose(vtd, k, n), n, k) < 1e-10)
                #expect(maxAbsDiff(sd, try Linalg.svdvals(w).toDoubles()) / sd[0] < 1e-12)
            }
        }

        @Test func float32Decompositions() throws {
            let a = try randomSymmetric(30, seed: 75).copy(dtype: .float32)
            let (values, vectors) = try Linalg.eigh(a, dtype: .float32)
            #expect(values.dtype == .float32 && vectors.dtype == .float32)
            let lam = values.toDoubles(), v = vectors.toDoubles(), n = 30
            let av = matmul(a.toDoubles(), v, n, n, n)
            var vl = v
            for r in 0..<n { for c in 0..<n { vl[r * n + c] *= lam[c] } }
            #expect(maxAbsDiff(av, vl) / maxAbs(lam) < 1e-5)
            #expect(orthonormalityError(v, n, n) < 1e-5)

            let w = try randomMatrix(20, 35, seed: 76, dtype: .float32)
            let (u, s, vt) = try Linalg.svd(w, dtype: .float32)
            #expect(u.dtype == .float32 && s.dtype == .float32 && vt.dtype == .float32)
            let sd = s.toDoubles()
            var us = u.toDoubles()
            for r in 0..<20 { for c in 0..<20 { us[r * 20 + c] *= sd[c] } }
            #expect(maxAbsDiff(matmul(us, vt.toDoubles(), 20, 20, 35), w.toDoubles()) / sd[0] < 1e-5)
        }

        @Test func gramLayouts() throws {
            let base = try randomMatrix(37, 23, seed: 80)
            let views: [Tensor] = [
                base,                              // (37, 23) contiguous: WᵀW
                try base.t(),                      // (23, 37) transposed view: WWᵀ of the view
                try base.narrow(1, 3, 15),         // (37, 15) row-major with leading dimension 23
                try base.narrow(0, 2, 10),         // (10, 23) contiguous rows: WWᵀ
                try base.narrow(0, 2, 30).t(),     // (23, 30) transposed view with leading dimension 23
                try base.select(1, 4).reshaped([37, 1]),
                try base.copy(dtype: .float32),    // Float32 input, computed in Float64
            ]
            for w in views {
                let m = w.shape[0], n = w.shape[1], k = min(m, n)
                let wd = w.toDoubles()
                let want = m >= n ? matmul(transpose(wd, m, n), wd, n, m, n) : matmul(wd, transpose(wd, m, n), m, n, m)
                let g = try Linalg.gram(w)
                #expect(g.shape == [k, k] && g.dtype == .float64 && g.isContiguous)
                let gd = g.toDoubles()
                #expect(maxAbsDiff(gd, want) / maxAbs(want) < 1e-13, "gram \(formatShape(w.shape)) strides \(w.strides)")
                #expect(gd == transpose(gd, k, k), "gram not exactly symmetric")
                let g32 = try Linalg.gram(w, dtype: .float32)
                #expect(g32.dtype == .float32)
                #expect(maxAbsDiff(g32.toDoubles(), want) / maxAbs(want) < 1e-5)
            }
        }
    }
}

// ------------------------------------------------------------------ random-matrix laws

extension LinalgTests {
    @Suite struct RandomMatrix {
        /// GOE H = (A + Aᵀ)/√2, A with N(0, 1) entries: off-diagonal variance 1, diagonal variance 2.
        /// Pooled eigenvalues fill the semicircle of radius R = 2√N, whose second moment is R²/4.
        @Test func goeSemicircle() throws {
            let n = 1000, matrices = 10
            let radius = 2 * Double(n).squareRoot()
            let generator = Generator(seed: 2024)
            var pooled: [Double] = []
            for _ in 0..<matrices {
                let a = try Tensor.randn([n, n], dtype: .float64, generator: generator)
                let h = try Tensor(shape: [n, n], dtype: .float64)
                let ap = a.pointer(Double.self), hp = h.pointer(Double.self)
                for i in 0..<n { for j in 0..<n { hp[i * n + j] = (ap[i * n + j] + ap[j * n + i]) / 2.0.squareRoot() } }
                pooled += try Linalg.eigvalsh(h).toDoubles()
            }
            // Each matrix's edge is R(1 + s·N^(-2/3)/2), s Tracy–Widom (β = 1: mean −1.2, sd 1.3), i.e. 0.5% of R
            // per unit (measured on 800 edges: mean −0.63%, sd 0.65%, one beyond +2%). Pooled over 10 matrices the
            // extreme edge falls short of R by 2% only if all 20 edges do (impossible in practice), but one of 20
            // edges beyond +2% (s > 4) happens for ~2% of seeds: allow +3% outward (s > 6: ~1e-6 per edge).
            let largest = pooled.max()!, smallest = pooled.min()!
            #expect(largest / radius > 0.98 && largest / radius < 1.03, "largest \(largest) vs R = \(radius)")
            #expect(-smallest / radius > 0.98 && -smallest / radius < 1.03, "smallest \(smallest) vs −R = \(-radius)")
            // ⟨(λ/R)²⟩ = (N + 1)/(4N) exactly in expectation; the pooled estimate fluctuates by ~0.05%.
            let moment = pooled.reduce(0) { $0 + ($1 / radius) * ($1 / radius) } / Double(pooled.count)
            #expect(abs(moment / 0.25 - 1) < 0.02, "second moment of λ/R: \(moment)")
        }

        /// Eigenvalues of WᵀW, W (N, M) with N(0, 1) entries, q = M/N, lie in [x₋, x₊], x± = N(1 ± √q)².
        @Test(arguments: [UInt64(1), 2, 3])
        func marchenkoPastur(seed: UInt64) throws {
            let rows = 1536, cols = 384
            let q = Double(cols) / Double(rows)
            let xPlus = Double(rows) * (1 + q.squareRoot()) * (1 + q.squareRoot())
            let xMinus = Double(rows) * (1 - q.squareRoot()) * (1 - q.squareRoot())
            let w = try Tensor.randn([rows, cols], dtype: .float64, generator: Generator(seed: seed))
            let g = try Linalg.gram(w)
            #expect(g.shape == [cols, cols])
            let x = try Linalg.eigvalsh(g).toDoubles()
            #expect(x.count == cols)
            // Measured over 2000 seeds: largest/x₊ − 1 has mean −0.9%, sd 0.9%, range −3.4% … +3.2%;
            // smallest/x₋ − 1 has mean +2%, sd 1.9%, minimum −5.6%.
            #expect(x.first! >= 0.92 * xMinus, "smallest \(x.first!) vs x₋ = \(xMinus)")
            #expect(x.last! <= 1.04 * xPlus, "largest \(x.last!) vs x₊ = \(xPlus)")
            #expect(abs(x.last! / xPlus - 1) < 0.04, "largest \(x.last!) vs x₊ = \(xPlus)")
        }
    }
}

// ------------------------------------------------------------------ bad inputs

extension LinalgTests {
    @Suite struct Input {
        private func message(_ body: () throws -> Any) -> String? {
            do { _ = try body(); return nil } catch let e as DBMError { return e.message } catch { return "\(error)" }
        }

        /// Every routine, applied to a: (name, call).
        private func all(_ a: Tensor) -> [(String, () throws -> Any)] {
            [("gram", { try Linalg.gram(a) }), ("eigvalsh", { try Linalg.eigvalsh(a) }),
             ("eigh", { try Linalg.eigh(a) }), ("svdvals", { try Linalg.svdvals(a) }), ("svd", { try Linalg.svd(a) })]
        }

        @Test func nonFiniteEntries() throws {
            for (bad, word) in [(Double.nan, "NaN"), (Double.infinity, "Inf"), (-Double.infinity, "-Inf")] {
                for dtype in [DType.float64, .float32] {
                    let a = try randomSymmetric(4, seed: 90).copy(dtype: dtype)
                    try a.setValue(bad, at: [1, 2])   // (2, 3) in 1-based terms
                    for (name, call) in all(a) {
                        let m = message(call)
                        #expect(m == "expected finite entries, found \(word) at (2, 3)", "\(name) \(dtype): \(m ?? "no error")")
                    }
                    // Through a transposed view the same element sits at (3, 2).
                    for (name, call) in all(try a.t()) {
                        let m = message(call)
                        #expect(m == "expected finite entries, found \(word) at (3, 2)", "\(name) on view: \(m ?? "no error")")
                    }
                }
            }
            // A Float64 value that does not fit Float32 is caught when computing in Float32.
            let big = try randomSymmetric(3, seed: 91)
            try big.setValue(1e300, at: [0, 0])
            let m = message { try Linalg.eigvalsh(big, dtype: .float32) }
            #expect(m?.contains("overflows float32") == true && m?.contains("(1, 1)") == true, "\(m ?? "no error")")
        }

        @Test func badShapes() throws {
            let cases: [(Tensor, String, Bool)] = [   // (input, expected fragment, fails for every routine)
                (try Tensor(shape: [5], dtype: .float64), "expected a 2-D matrix", true),
                (try Tensor(shape: [2, 2, 2], dtype: .float64), "expected a 2-D matrix", true),
                (try Tensor(shape: [0, 3], dtype: .float64), "expected a non-empty matrix", true),
                (try Tensor(shape: [3, 0], dtype: .float64), "expected a non-empty matrix", true),
                (try Tensor(shape: [0, 0], dtype: .float64), "expected a non-empty matrix", true),
                (try randomMatrix(3, 4, seed: 92), "expected a square matrix, got shape (3, 4)", false),
            ]
            for (a, fragment, everywhere) in cases {
                for (name, call) in all(a) {
                    let square = name == "eigvalsh" || name == "eigh"
                    let m = message(call)
                    if everywhere || square {
                        #expect(m?.contains(fragment) == true, "\(name) \(formatShape(a.shape)): \(m ?? "no error")")
                    } else {
                        #expect(m == nil, "\(name) \(formatShape(a.shape)) should succeed: \(m ?? "")")
                    }
                }
            }
        }
    }
}
