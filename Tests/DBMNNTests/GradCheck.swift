import DBMCore
import DBMNN
import Foundation
import Testing

/// Random Float64 tensor (a fresh leaf).
func randn(_ shape: [Int], _ g: Generator, std: Double = 1, dtype: DType = .float64) throws -> Tensor {
    try Tensor.randn(shape, std: std, dtype: dtype, generator: g)
}

/// Central finite differences against the tape, in Float64. With a fixed random R of the output's shape,
/// L(x) = Σ R ⊙ f(x); the analytic gradient of L (one backward) is compared, for every element k of every
/// input, with the central differences D(h) = (L(x + h eₖ) − L(x − h eₖ)) / 2h at h and 2h combined by
/// Richardson extrapolation, (4·D(h) − D(2h)) / 3 (error O(h⁴)), h = 1e-4·max(1, |xₖ|). The plain D(h)
/// at h = 1e-6 has an error of ~1e-10·|L| from rounding alone, which is 1e-6 of a gradient of 1e-4: a
/// layer norm over 2 features (its output saturates at ±1, the input gradient is ~eps/d³) failed so.
/// Returns, per input, the largest difference relative to the largest gradient element (max-norm).
func gradientErrors(_ inputs: [Tensor], seed: UInt64 = 99, _ f: ([Tensor]) throws -> Tensor) throws -> [Double] {
    for x in inputs {
        precondition(x.dtype == .float64 && x.isContiguous)
        x.requiresGrad = true
        x.grad = nil
    }
    let out = try f(inputs)
    let r = try randn(out.shape, Generator(seed: seed))
    let rv = r.toDoubles()
    func loss() throws -> Double {
        let y = try f(inputs).toDoubles()
        var s = 0.0
        for i in y.indices { s += rv[i] * y[i] }
        return s
    }
    try NN.sum(try NN.mul(out, r)).backward()
    return try NN.withNoGrad {
        try inputs.map { x in
            let analytic = x.grad?.toDoubles() ?? [Double](repeating: 0, count: x.count)
            let p = x.pointer(Double.self)
            var worst = 0.0, scale = 0.0
            for k in 0..<x.count {
                let x0 = p[k], h = 1e-4 * max(1, abs(x0))
                func central(_ h: Double) throws -> Double {
                    p[k] = x0 + h
                    let lp = try loss()
                    p[k] = x0 - h
                    let lm = try loss()
                    p[k] = x0
                    return (lp - lm) / (2 * h)
                }
                let numeric = (4 * (try central(h)) - (try central(2 * h))) / 3
                worst = max(worst, abs(numeric - analytic[k]))
                scale = max(scale, abs(numeric), abs(analytic[k]))
            }
            return scale == 0 ? worst : worst / scale
        }
    }
}

/// Checks every input's gradient error against the Must-hold tolerance (1e-6) and prints the figures.
func expectGradients(_ name: String, _ inputs: [Tensor], seed: UInt64 = 99, tolerance: Double = 1e-6,
                     sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) throws -> Tensor) throws {
    let errors = try gradientErrors(inputs, seed: seed, f)
    let worst = errors.max() ?? 0
    print("grad check \(name): max relative error \(String(format: "%.2e", worst)) over \(inputs.map { $0.count }.reduce(0, +)) elements")
    #expect(worst <= tolerance, "\(name): gradient errors \(errors)", sourceLocation: sourceLocation)
}

/// Largest |a − b| relative to the largest |b|.
func relativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var d = 0.0, s = 0.0
    for i in a.indices { d = max(d, abs(a[i] - b[i])); s = max(s, abs(b[i])) }
    return s == 0 ? d : d / s
}

/// The DBMError message thrown by body, or nil (recorded as a test issue) when it throws none.
func errorMessage(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any) -> String {
    do { _ = try body() }
    catch let e as DBMError { return e.message }
    catch { Issue.record("expected a DBMError, got \(error)", sourceLocation: sourceLocation); return "" }
    Issue.record("expected an error, got none", sourceLocation: sourceLocation)
    return ""
}
