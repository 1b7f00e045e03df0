import DBMCore
import DBMNN
import Foundation
import Testing

/// One parameter under the published update rules (PyTorch's documentation of torch.optim.SGD, Adam and
/// AdamW, maximize = false, amsgrad = false), on plain Double arrays, transcribed from the formulas
/// independently of Optimizer.swift. `t` is the step number (from 1).
struct ReferenceParameter {
    var theta: [Double]
    var momentumBuffer: [Double]? = nil   // b, absent before the first step with momentum
    var m: [Double]                       // first moment, from zeros
    var v: [Double]                       // second moment, from zeros

    init(_ theta: [Double]) {
        self.theta = theta
        m = [Double](repeating: 0, count: theta.count)
        v = m
    }

    mutating func step(_ algorithm: Optimizer.Algorithm, grad: [Double], lr γ: Double, weightDecay λ: Double, t: Int) {
        switch algorithm {
        case .sgd(let μ, let τ, let nesterov):
            var g = grad
            if λ != 0 { for i in g.indices { g[i] = g[i] + λ * theta[i] } }
            if μ != 0 {
                var b = momentumBuffer ?? g           // b₁ = g₁
                if momentumBuffer != nil { for i in b.indices { b[i] = μ * b[i] + (1 - τ) * g[i] } }
                momentumBuffer = b
                for i in g.indices { g[i] = nesterov ? g[i] + μ * b[i] : b[i] }
            }
            for i in theta.indices { theta[i] = theta[i] - γ * g[i] }
        case .adam(let β1, let β2, let ε), .adamW(let β1, let β2, let ε):
            let decoupled: Bool
            if case .adamW = algorithm { decoupled = true } else { decoupled = false }
            for i in theta.indices {
                var g = grad[i]
                if decoupled { theta[i] = theta[i] - γ * λ * theta[i] }
                else if λ != 0 { g = g + λ * theta[i] }
                m[i] = β1 * m[i] + (1 - β1) * g
                v[i] = β2 * v[i] + (1 - β2) * g * g
                let mHat = m[i] / (1 - pow(β1, Double(t)))
                let vHat = v[i] / (1 - pow(β2, Double(t)))
                theta[i] = theta[i] - γ * mHat / (vHat.squareRoot() + ε)
            }
        }
    }
}

/// An algorithm with its learning rate and weight decay, named for the test log.
struct RuleCase: Sendable, CustomTestStringConvertible {
    let label: String
    let algorithm: Optimizer.Algorithm
    let lr: Double
    let weightDecay: Double
    var testDescription: String { label }
}

/// n normal values (std) rounded to what dtype holds, so that the reference starts from the same numbers.
func representableValues(_ n: Int, _ g: Generator, std: Double = 1, _ dtype: DType) -> [Double] {
    (0..<n).map { _ in
        let x = std * g.normal()
        return dtype == .float32 ? Double(Float(x)) : x
    }
}

/// A parameter holding the given values.
func parameterTensor(_ values: [Double], _ shape: [Int], _ dtype: DType) throws -> Tensor {
    NN.parameter(try Tensor.from(values, shape: shape, dtype: dtype))
}

/// Largest |a − b| relative to the largest |b − origin|: the error of a displacement from origin.
func displacementError(_ a: [Double], _ b: [Double], from origin: [Double]) -> Double {
    relativeDifference(zip(a, origin).map { $0 - $1 }, zip(b, origin).map { $0 - $1 })
}

@Suite("Optimizers: SGD, Adam, AdamW against the published rules; groups, state, clipping, validation")
struct OptimizerTests {
    static let sgdCases: [RuleCase] = [
        RuleCase(label: "sgd plain", algorithm: .sgd(), lr: 0.1, weightDecay: 0),
        RuleCase(label: "sgd momentum 0.9", algorithm: .sgd(momentum: 0.9), lr: 0.05, weightDecay: 0),
        RuleCase(label: "sgd momentum 0.8 dampening 0.3", algorithm: .sgd(momentum: 0.8, dampening: 0.3), lr: 0.05, weightDecay: 0),
        RuleCase(label: "sgd nesterov 0.9", algorithm: .sgd(momentum: 0.9, nesterov: true), lr: 0.05, weightDecay: 0),
        RuleCase(label: "sgd plain, weight decay 0.1", algorithm: .sgd(), lr: 0.1, weightDecay: 0.1),
        RuleCase(label: "sgd nesterov, weight decay 0.2", algorithm: .sgd(momentum: 0.7, nesterov: true), lr: 0.05, weightDecay: 0.2),
        RuleCase(label: "sgd momentum, dampening, weight decay", algorithm: .sgd(momentum: 0.5, dampening: 0.5), lr: 0.05, weightDecay: 0.3),
    ]
    static let adamCases: [RuleCase] = [
        RuleCase(label: "adam defaults", algorithm: .adam(), lr: 0.01, weightDecay: 0),
        RuleCase(label: "adam, coupled weight decay 0.1", algorithm: .adam(), lr: 0.01, weightDecay: 0.1),
        RuleCase(label: "adam betas (0.8, 0.95) eps 1e-3", algorithm: .adam(beta1: 0.8, beta2: 0.95, eps: 1e-3), lr: 0.02, weightDecay: 0),
        RuleCase(label: "adamw, decoupled weight decay 0.1", algorithm: .adamW(), lr: 0.01, weightDecay: 0.1),
        RuleCase(label: "adamw betas (0.9, 0.95), weight decay 0.5", algorithm: .adamW(beta1: 0.9, beta2: 0.95, eps: 1e-8), lr: 0.03, weightDecay: 0.5),
        RuleCase(label: "adamw beta1 0 (no first moment)", algorithm: .adamW(beta1: 0, beta2: 0.99, eps: 1e-8), lr: 0.01, weightDecay: 0.1),
    ]

    /// Runs `steps` steps of the optimizer and of the reference on parameters of the given shapes with
    /// random gradients, and returns the worst error over the steps, relative on the parameters and on
    /// their displacement from the start (the sharper figure: an update is small against θ).
    func compareWithReference(_ c: RuleCase, _ dtype: DType, shapes: [[Int]], steps: Int = 4, seed: UInt64)
        throws -> (value: Double, displacement: Double) {
        let g = Generator(seed: seed)
        let initial = shapes.map { representableValues($0.reduce(1, *), g, dtype) }
        let params = try zip(initial, shapes).map { try parameterTensor($0, $1, dtype) }
        var reference = initial.map(ReferenceParameter.init)
        let optimizer = try Optimizer(params, algorithm: c.algorithm, lr: c.lr, weightDecay: c.weightDecay)
        var worst = (value: 0.0, displacement: 0.0)
        for t in 1...steps {
            for (k, p) in params.enumerated() {
                let grad = representableValues(p.count, g, dtype)
                p.grad = try Tensor.from(grad, shape: p.shape, dtype: dtype)
                reference[k].step(c.algorithm, grad: grad, lr: c.lr, weightDecay: c.weightDecay, t: t)
            }
            try optimizer.step()
            #expect(optimizer.stepCount == t)
            for (k, p) in params.enumerated() {
                let have = p.toDoubles()
                worst.value = max(worst.value, relativeDifference(have, reference[k].theta))
                worst.displacement = max(worst.displacement, displacementError(have, reference[k].theta, from: initial[k]))
            }
        }
        return worst
    }

    /// Tolerances: float64 agrees to rounding; float32 runs its per-element math in float32.
    func expectAgreement(_ c: RuleCase, _ dtype: DType, _ e: (value: Double, displacement: Double)) {
        print("optimizer \(c.label) \(dtype.rawValue): relative error \(e.value), of the displacement \(e.displacement)")
        if dtype == .float64 {
            #expect(e.value < 1e-13 && e.displacement < 1e-12, "\(c.label): \(e)")
        } else {
            #expect(e.value < 1e-6 && e.displacement < 1e-4, "\(c.label): \(e)")
        }
    }

    @Test("SGD (plain, momentum, dampening, Nesterov, coupled weight decay) follows the published rule over 4 steps",
          arguments: sgdCases, DType.allCases)
    func sgdMatchesReference(_ c: RuleCase, _ dtype: DType) throws {
        expectAgreement(c, dtype, try compareWithReference(c, dtype, shapes: [[3, 4], [5], [1]], seed: 11))
    }

    @Test("Adam (coupled weight decay) and AdamW (decoupled) follow the published rules over 4 steps",
          arguments: adamCases, DType.allCases)
    func adamMatchesReference(_ c: RuleCase, _ dtype: DType) throws {
        expectAgreement(c, dtype, try compareWithReference(c, dtype, shapes: [[3, 4], [5], [1]], seed: 12))
    }

    @Test("tensors of 160k elements (split across the cores) follow the published rules",
          arguments: [sgdCases[5], adamCases[1], adamCases[3]], DType.allCases)
    func largeTensors(_ c: RuleCase, _ dtype: DType) throws {
        expectAgreement(c, dtype, try compareWithReference(c, dtype, shapes: [[400, 400], [7]], steps: 3, seed: 13))
    }

    @Test("AdamW's decoupled decay differs from Adam's coupled decay at the same λ; without decay they are equal")
    func adamWDiffersFromAdam() throws {
        let g = Generator(seed: 14)
        let theta = representableValues(20, g, std: 3, .float64)
        let grads = (0..<3).map { _ in representableValues(20, g, .float64) }
        func run(_ algorithm: Optimizer.Algorithm, weightDecay: Double) throws -> [Double] {
            let p = try parameterTensor(theta, [4, 5], .float64)
            let optimizer = try Optimizer([p], algorithm: algorithm, lr: 0.01, weightDecay: weightDecay)
            for grad in grads {
                p.grad = try Tensor.from(grad, shape: [4, 5], dtype: .float64)
                try optimizer.step()
            }
            return p.toDoubles()
        }
        let adam = try run(.adam(), weightDecay: 0.5), adamW = try run(.adamW(), weightDecay: 0.5)
        let gap = displacementError(adamW, adam, from: theta)
        print("optimizer: AdamW vs Adam at weight decay 0.5, relative gap of the displacement \(gap)")
        #expect(gap > 0.05)
        #expect(try run(.adam(), weightDecay: 0) == (try run(.adamW(), weightDecay: 0)))
    }

    @Test("two groups with their own learning rate and weight decay (one without); setLearningRate per group and for all",
          arguments: [Optimizer.Algorithm.adamW(), .adam(), .sgd(momentum: 0.9)], DType.allCases)
    func parameterGroups(_ algorithm: Optimizer.Algorithm, _ dtype: DType) throws {
        let g = Generator(seed: 15)
        let shapes = [[4, 3], [6, 2], [3], [6]]   // group 0: matrices (decayed), group 1: vectors
        let initial = shapes.map { representableValues($0.reduce(1, *), g, dtype) }
        let params = try zip(initial, shapes).map { try parameterTensor($0, $1, dtype) }
        let optimizer = try Optimizer(groups: [
            .init(params: Array(params[0..<2]), lr: 0.02, weightDecay: 0.3),
            .init(params: Array(params[2..<4]), lr: 0.05),
        ], algorithm: algorithm)
        #expect(optimizer.groups.map(\.lr) == [0.02, 0.05] && optimizer.groups.map(\.weightDecay) == [0.3, 0])
        #expect(optimizer.parameters.count == 4 && zip(optimizer.parameters, params).allSatisfy { $0 === $1 })
        var reference = initial.map(ReferenceParameter.init)
        var lrs = [0.02, 0.05]
        let decays = [0.3, 0.0]
        for t in 1...5 {
            if t == 3 { try optimizer.setLearningRate(0.01, group: 1); lrs[1] = 0.01 }
            if t == 5 { try optimizer.setLearningRate(0.004); lrs = [0.004, 0.004] }
            for (k, p) in params.enumerated() {
                let grad = representableValues(p.count, g, dtype)
                p.grad = try Tensor.from(grad, shape: p.shape, dtype: dtype)
                reference[k].step(algorithm, grad: grad, lr: lrs[k / 2], weightDecay: decays[k / 2], t: t)
            }
            try optimizer.step()
        }
        #expect(optimizer.groups.map(\.lr) == [0.004, 0.004])
        for (k, p) in params.enumerated() {
            let e = displacementError(p.toDoubles(), reference[k].theta, from: initial[k])
            #expect(e < (dtype == .float64 ? 1e-12 : 1e-4), "parameter \(k): \(e)")
        }
    }

    @Test("schedules against their formulas: nanoGPT's get_lr (warm-up, cosine, min_lr after the end), step decay, constant")
    func scheduleFormulas() throws {
        // nanoGPT's get_lr(it), transcribed: lr·(it+1)/(warmup+1); min_lr past lr_decay_iters; else cosine.
        func getLR(_ it: Int, lr: Double, warmup: Int, total: Int, minLR: Double) -> Double {
            if it < warmup { return lr * Double(it + 1) / Double(warmup + 1) }
            if it > total { return minLR }
            let decay = Double(it - warmup) / Double(total - warmup)
            return minLR + 0.5 * (1 + cos(Double.pi * decay)) * (lr - minLR)
        }
        let cosine = LearningRateSchedule.cosine(lr: 1e-3, warmup: 100, total: 2000, minLR: 1e-4)
        for t in [0, 1, 50, 99, 100, 101, 1000, 1999, 2000, 2001, 5000] {
            #expect(cosine.rate(at: t) == getLR(t, lr: 1e-3, warmup: 100, total: 2000, minLR: 1e-4), "step \(t)")
        }
        #expect(cosine.rate(at: 0) == 1e-3 / 101 && cosine.rate(at: 100) == 1e-3 && cosine.rate(at: 2000) == 1e-4)
        let decay = LearningRateSchedule.stepDecay(lr: 2, every: 3, gamma: 0.5)
        #expect([0, 2, 3, 5, 6, 7].map { decay.rate(at: $0) } == [2, 2, 1, 1, 0.5, 0.5])
        #expect(LearningRateSchedule.constant(lr: 0.3).rate(at: 12345) == 0.3)
        for (bad, message) in [(LearningRateSchedule.cosine(lr: 1, warmup: 10, total: 5, minLR: 0), "expected 0 <= warmup < total"),
                               (.cosine(lr: -1, warmup: 0, total: 5, minLR: 0), "lr: expected a finite non-negative number"),
                               (.cosine(lr: 1, warmup: 0, total: 5, minLR: .nan), "min_lr: expected a finite non-negative number"),
                               (.stepDecay(lr: 1, every: 0.5, gamma: 0.1), "every: expected a positive number of steps"),
                               (.constant(lr: .infinity), "lr: expected a finite non-negative number")] {
            #expect(errorMessage { try bad.validate() }.contains(message), "\(bad)")
        }
    }

    @Test("a schedule scales each group's own rate (lr_g · γ(t) / base) and never overwrites it; setLearningRate changes the own rate",
          arguments: [Optimizer.Algorithm.sgd(), .sgd(momentum: 0.9), .adamW()])
    func scheduleScalesGroups(_ algorithm: Optimizer.Algorithm) throws {
        let g = Generator(seed: 17)
        let shapes = [[4, 3], [5]]
        let initial = shapes.map { representableValues($0.reduce(1, *), g, .float64) }
        let params = try zip(initial, shapes).map { try parameterTensor($0, $1, .float64) }
        let schedule = LearningRateSchedule.cosine(lr: 0.1, warmup: 2, total: 6, minLR: 0.01)
        let optimizer = try Optimizer(groups: [.init(params: [params[0]], lr: 0.1, weightDecay: 0.1),
                                               .init(params: [params[1]], lr: 0.004)],
                                      algorithm: algorithm, schedule: schedule, baseLR: 0.1)
        var reference = initial.map(ReferenceParameter.init)
        var own = [0.1, 0.004]
        for t in 0..<9 {
            if t == 5 { try optimizer.setLearningRate(0.02, group: 1); own[1] = 0.02 }
            let rates = try optimizer.learningRates()
            #expect(rates[0] == schedule.rate(at: t), "group 1 at the base rate follows the schedule exactly")
            #expect(rates[1] == own[1] / 0.1 * schedule.rate(at: t), "group 2 keeps its ratio to the base at step \(t)")
            for (k, p) in params.enumerated() {
                let grad = representableValues(p.count, g, .float64)
                p.grad = try Tensor.from(grad, shape: p.shape, dtype: .float64)
                reference[k].step(algorithm, grad: grad, lr: rates[k], weightDecay: k == 0 ? 0.1 : 0, t: t + 1)
            }
            try optimizer.step()
            #expect(optimizer.groups.map(\.lr) == own, "the schedule never overwrites the own rates")
        }
        for (k, p) in params.enumerated() {
            let e = displacementError(p.toDoubles(), reference[k].theta, from: initial[k])
            #expect(e < 1e-12, "parameter \(k): \(e)")
        }
        // A value the caller evaluates (a schedule written in Lua) takes the schedule's place.
        #expect(try optimizer.learningRates(scheduled: 0.05) == [0.05, 0.02 / 0.1 * 0.05])
        // A bad value is refused before anything changes.
        let before = params.map { $0.toDoubles() }, count = optimizer.stepCount
        for p in params { p.grad = try Tensor.full(p.shape, 1, dtype: .float64) }
        #expect(errorMessage { try optimizer.step(scheduled: .nan) }.contains("expected a finite non-negative rate for the update from step 9"))
        #expect(params.map { $0.toDoubles() } == before && optimizer.stepCount == count)
        #expect(errorMessage { try Optimizer([params[0]], algorithm: algorithm, lr: 0).learningRates(scheduled: 0.1) }
            .contains("expected a base learning rate > 0"))
        #expect(errorMessage { try Optimizer(groups: [.init(params: [params[0]], lr: 0)], algorithm: algorithm, schedule: schedule) }
            .contains("a schedule needs a base learning rate > 0"))
    }

    @Test("a parameter whose gradient is nil is skipped (it and its state unchanged); SGD's buffer starts on its first step",
          arguments: [Optimizer.Algorithm.adam(), .adamW(), .sgd(momentum: 0.9, dampening: 0.1)])
    func nilGradientSkipped(_ algorithm: Optimizer.Algorithm) throws {
        let g = Generator(seed: 16)
        let initial = (0..<3).map { _ in representableValues(6, g, .float64) }
        let params = try initial.map { try parameterTensor($0, [2, 3], .float64) }
        var reference = initial.map(ReferenceParameter.init)
        let optimizer = try Optimizer(params, algorithm: algorithm, lr: 0.03, weightDecay: 0.1)
        // Which parameters have a gradient at steps 1...4: 1 misses step 2, 2 starts at step 3.
        let hasGrad = [[true, true, false], [true, false, false], [true, true, true], [true, true, true]]
        for t in 1...4 {
            let before = params.map { $0.toDoubles() }
            let stateBefore = params.map { optimizer.state(of: $0).map { $0.tensor.toDoubles() } }
            for (k, p) in params.enumerated() {
                if hasGrad[t - 1][k] {
                    let grad = representableValues(6, g, .float64)
                    p.grad = try Tensor.from(grad, shape: [2, 3], dtype: .float64)
                    reference[k].step(algorithm, grad: grad, lr: 0.03, weightDecay: 0.1, t: t)   // t is the optimizer's
                } else {
                    p.grad = nil
                }
            }
            try optimizer.step()
            for (k, p) in params.enumerated() where !hasGrad[t - 1][k] {
                #expect(p.toDoubles() == before[k], "parameter \(k) at step \(t)")
                #expect(optimizer.state(of: p).map { $0.tensor.toDoubles() } == stateBefore[k], "state of \(k) at step \(t)")
            }
            if t <= 2 { #expect(optimizer.state(of: params[2]).isEmpty) }
        }
        for (k, p) in params.enumerated() {
            #expect(displacementError(p.toDoubles(), reference[k].theta, from: initial[k]) < 1e-12, "parameter \(k)")
        }
    }

    @Test("state(of:) → loadState(of:) and setStepCount on a fresh optimizer continue bitwise identically",
          arguments: [Optimizer.Algorithm.sgd(momentum: 0.9, nesterov: true), .adam(), .adamW(beta1: 0.85, beta2: 0.99, eps: 1e-6)],
          DType.allCases)
    func stateRoundTrip(_ algorithm: Optimizer.Algorithm, _ dtype: DType) throws {
        let g = Generator(seed: 17)
        let shapes = [[5, 4], [3]]
        let a = try shapes.map { try parameterTensor(representableValues($0.reduce(1, *), g, dtype), $0, dtype) }
        let grads = (0..<5).map { _ in try! shapes.map { try Tensor.from(representableValues($0.reduce(1, *), g, dtype), shape: $0, dtype: dtype) } }
        let optimizerA = try Optimizer(a, algorithm: algorithm, lr: 0.02, weightDecay: 0.05)
        func step(_ o: Optimizer, _ params: [Tensor], _ t: Int) throws {
            for (p, grad) in zip(params, grads[t]) { p.grad = try grad.copy() }
            try o.step()
        }
        for t in 0..<3 { try step(optimizerA, a, t) }

        let b = try a.map { NN.parameter(try $0.copy()) }
        let optimizerB = try Optimizer(b, algorithm: algorithm, lr: 0.02, weightDecay: 0.05)
        for (pa, pb) in zip(a, b) {
            let state = optimizerA.state(of: pa)
            #expect(state.map(\.name) == algorithm.stateNames && !state.isEmpty)
            try optimizerB.loadState(of: pb, Dictionary(uniqueKeysWithValues: state.map { ($0.name, $0.tensor) }))
        }
        try optimizerB.setStepCount(optimizerA.stepCount)
        for t in 3..<5 {
            try step(optimizerA, a, t)
            try step(optimizerB, b, t)   // B's state must be its own copies, not A's tensors
        }
        #expect(optimizerB.stepCount == 5)
        for (pa, pb) in zip(a, b) {
            #expect(pa.toDoubles() == pb.toDoubles())
            #expect(optimizerA.state(of: pa).map { $0.tensor.toDoubles() } == optimizerB.state(of: pb).map { $0.tensor.toDoubles() })
        }
    }

    @Test("state: names and values after one step (m = (1−β1)g, v = (1−β2)g², b = g); loadState's checks; an empty load resets")
    func stateContents() throws {
        let g = Generator(seed: 18)
        let grad = representableValues(6, g, .float64)
        let p = try parameterTensor(representableValues(6, g, .float64), [2, 3], .float64)
        let adam = try Optimizer([p], algorithm: .adam(beta1: 0.9, beta2: 0.99), lr: 0.1)
        #expect(adam.state(of: p).isEmpty)
        p.grad = try Tensor.from(grad, shape: [2, 3], dtype: .float64)
        try adam.step()
        let state = adam.state(of: p)
        #expect(state.map(\.name) == ["exp_avg", "exp_avg_sq"])
        #expect(state.allSatisfy { $0.tensor.shape == [2, 3] && $0.tensor.dtype == .float64 })
        #expect(relativeDifference(state[0].tensor.toDoubles(), grad.map { (1 - 0.9) * $0 }) < 1e-15)
        #expect(relativeDifference(state[1].tensor.toDoubles(), grad.map { (1 - 0.99) * $0 * $0 }) < 1e-15)

        let q = try parameterTensor(grad, [2, 3], .float64)
        let sgd = try Optimizer([q], algorithm: .sgd(momentum: 0.9), lr: 0.1)
        q.grad = try Tensor.from(grad, shape: [2, 3], dtype: .float64)
        try sgd.step()
        #expect(sgd.state(of: q).map(\.name) == ["momentum_buffer"] && sgd.state(of: q)[0].tensor.toDoubles() == grad)
        let plain = try Optimizer([q], algorithm: .sgd(), lr: 0.1)
        try plain.step()
        #expect(plain.state(of: q).isEmpty && Optimizer.Algorithm.sgd().stateNames.isEmpty)

        let m = state[0].tensor, v = state[1].tensor
        let wrongName = errorMessage { try adam.loadState(of: p, ["exp_avg": m, "momentum_buffer": v]) }
        #expect(wrongName.contains("expected the entries exp_avg, exp_avg_sq, got exp_avg, momentum_buffer"), "\(wrongName)")
        let missing = errorMessage { try adam.loadState(of: p, ["exp_avg": m]) }
        #expect(missing.contains("expected the entries exp_avg, exp_avg_sq, got exp_avg"), "\(missing)")
        let wrongShape = errorMessage { try adam.loadState(of: p, ["exp_avg": try m.reshaped([3, 2]), "exp_avg_sq": v]) }
        #expect(wrongShape.contains("expected 'exp_avg' of the parameter's shape (2, 3) and dtype float64, got (3, 2) float64"), "\(wrongShape)")
        let wrongDType = errorMessage { try adam.loadState(of: p, ["exp_avg": m, "exp_avg_sq": try v.copy(dtype: .float32)]) }
        #expect(wrongDType.contains("expected 'exp_avg_sq'") && wrongDType.contains("got (2, 3) float32"), "\(wrongDType)")
        let stranger = errorMessage { try adam.loadState(of: q, ["exp_avg": m, "exp_avg_sq": v]) }
        #expect(stranger.contains("expected one of the optimizer's parameters"), "\(stranger)")
        #expect(adam.state(of: p)[0].tensor === m)   // failed loads changed nothing

        // A load copies (any layout); an empty load resets the parameter to a first step.
        let mT = try Tensor.from(grad, shape: [3, 2], dtype: .float64).t()
        try adam.loadState(of: p, ["exp_avg": mT, "exp_avg_sq": v])
        #expect(adam.state(of: p)[0].tensor !== mT && adam.state(of: p)[0].tensor.toDoubles() == mT.toDoubles())
        try adam.loadState(of: p, [:])
        #expect(adam.state(of: p).isEmpty)
    }

    @Test("zeroGrad zeroes every parameter's gradient in place, or drops it")
    func zeroGrad() throws {
        let g = Generator(seed: 19)
        let params = try [[2, 2], [3]].map { NN.parameter(try randn($0, g)) }
        let optimizer = try Optimizer(groups: [.init(params: [params[0]], lr: 0.1), .init(params: [params[1]], lr: 0.2)],
                                      algorithm: .sgd())
        for p in params { p.grad = try randn(p.shape, g) }
        let buffers = params.map { $0.grad! }
        optimizer.zeroGrad()
        #expect(zip(params, buffers).allSatisfy { $0.grad === $1 && $1.toDoubles().allSatisfy { $0 == 0 } })
        optimizer.zeroGrad(setToNil: true)
        #expect(params.allSatisfy { $0.grad == nil })
    }

    @Test("clipGradNorm: the global 2-norm by hand, clipped by maxNorm/(norm + 1e-6) only when that is below 1")
    func clipGradNorm() throws {
        // ‖(3, 4)‖² = 25, ‖(1, 2; 2, 0)‖² = 9 (float32), a tensor without gradient: total √34.
        let a = NN.parameter(try Tensor.zeros([2], dtype: .float64))
        let b = NN.parameter(try Tensor.zeros([2, 2], dtype: .float32))
        let none = NN.parameter(try Tensor.zeros([3], dtype: .float64))
        func setGrads() throws {
            a.grad = try Tensor.from([3, 4] as [Double], shape: [2], dtype: .float64)
            b.grad = try Tensor.from([1, 2, 2, 0] as [Double], shape: [2, 2], dtype: .float32)
        }
        let total = 34.0.squareRoot()
        try setGrads()
        #expect(try NN.clipGradNorm([a, b, none], maxNorm: 10) == total)   // no clip: unchanged
        #expect(a.grad!.toDoubles() == [3, 4] && b.grad!.toDoubles() == [1, 2, 2, 0] && none.grad == nil)

        let c = 2 / (total + 1e-6)
        #expect(try NN.clipGradNorm([a, b, none], maxNorm: 2) == total)
        #expect(a.grad!.toDoubles() == [3 * c, 4 * c])
        #expect(b.grad!.toFloats() == [1, 2, 2, 0].map { Float(c) * $0 })   // scaled in float32
        #expect(abs(try NN.clipGradNorm([a, b], maxNorm: 2) - 2) < 1e-6)   // now at the bound (float32 part)

        try setGrads()   // maxNorm = the norm itself: c = total/(total + 1e-6) < 1 clips slightly, as PyTorch
        #expect(try NN.clipGradNorm([a, b], maxNorm: total) == total)
        #expect(a.grad!.toDoubles()[0] == 3 * (total / (total + 1e-6)))

        // A non-finite norm is returned and the gradients are left as they were.
        a.grad = try Tensor.from([Double.infinity, 1], shape: [2], dtype: .float64)
        #expect(try NN.clipGradNorm([a, b], maxNorm: 1) == .infinity)
        #expect(a.grad!.toDoubles() == [.infinity, 1])
        a.grad = try Tensor.from([Double.nan, 1], shape: [2], dtype: .float64)
        #expect(try NN.clipGradNorm([a], maxNorm: 1).isNaN)

        // Nothing to clip: norm 0.
        #expect(try NN.clipGradNorm([none], maxNorm: 1) == 0)
        let bad = errorMessage { try NN.clipGradNorm([a], maxNorm: 0) }
        #expect(bad.contains("clip_grad_norm: expected a finite positive max norm, got 0.0"), "\(bad)")
        #expect(errorMessage { try NN.clipGradNorm([a], maxNorm: .nan) }.contains("got nan"))
    }

    @Test("clipGradNorm on large gradients (split across the cores) and a strided gradient, against plain loops",
          arguments: DType.allCases)
    func clipGradNormLarge(_ dtype: DType) throws {
        let g = Generator(seed: 20)
        let big = NN.parameter(try Tensor.zeros([300, 700], dtype: dtype))
        let strided = NN.parameter(try Tensor.zeros([4, 3], dtype: dtype))
        let bigValues = representableValues(big.count, g, dtype)
        big.grad = try Tensor.from(bigValues, shape: big.shape, dtype: dtype)
        strided.grad = try Tensor.from(representableValues(12, g, dtype), shape: [3, 4], dtype: dtype).t()
        let stridedValues = strided.grad!.toDoubles()   // row-major values of the (4, 3) view
        var sum = 0.0
        for x in bigValues + stridedValues { sum += x * x }
        let total = try NN.clipGradNorm([big, strided], maxNorm: 1)
        #expect(abs(total - sum.squareRoot()) <= 1e-12 * total)
        let c = 1 / (total + 1e-6)
        let expected = { (x: Double) in dtype == .float32 ? Double(Float(c) * Float(x)) : c * x }
        #expect(big.grad!.toDoubles() == bigValues.map(expected))
        #expect(strided.grad!.toDoubles() == stridedValues.map(expected))
    }

    @Test("invalid parameters, settings and gradients throw messages naming what was expected and what was given")
    func validation() throws {
        let g = Generator(seed: 21)
        let w = NN.parameter(try randn([3, 4], g)), u = NN.parameter(try randn([4], g))
        func expectMessage(_ keys: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any) {
            let message = errorMessage(sourceLocation: sourceLocation, body)
            #expect(keys.allSatisfy { message.contains($0) }, "\(message)", sourceLocation: sourceLocation)
        }
        let notParameter = try randn([3, 4], g)
        expectMessage(["optimizer: expected parameters (tensors with requires_grad and no producing op)",
                       "got a tensor of shape (3, 4) (parameter 2 of group 1) that does not require a gradient"]) {
            try Optimizer([u, notParameter], algorithm: .sgd(), lr: 0.1)
        }
        let produced = try NN.matmul(w, try randn([4, 2], g))
        expectMessage(["expected parameters", "shape (3, 2)", "the output of 'matmul', not a leaf"]) {
            try Optimizer(groups: [.init(params: [u], lr: 0.1), .init(params: [produced], lr: 0.1)], algorithm: .adam())
        }
        expectMessage(["(parameter 1 of group 2)"]) {
            try Optimizer(groups: [.init(params: [u], lr: 0.1), .init(params: [produced], lr: 0.1)], algorithm: .adam())
        }
        let view = NN.parameter(try randn([4, 3], g).t())
        expectMessage(["expected contiguous parameters", "shape (3, 4) (parameter 1 of group 1) with strides (1, 3)"]) {
            try Optimizer([view], algorithm: .adam(), lr: 0.1)
        }
        expectMessage(["expected each parameter once", "shape (3, 4) (parameter 1 of group 1) and again (parameter 2 of group 2)"]) {
            try Optimizer(groups: [.init(params: [w], lr: 0.1), .init(params: [u, w], lr: 0.1)], algorithm: .adamW())
        }
        expectMessage(["expected at least one parameter"]) { try Optimizer([], algorithm: .adam(), lr: 0.1) }
        expectMessage(["learning rate of group 1: expected a finite non-negative number, got nan"]) {
            try Optimizer([w], algorithm: .adam(), lr: .nan)
        }
        expectMessage(["weight decay of group 2: expected a finite non-negative number, got -0.1"]) {
            try Optimizer(groups: [.init(params: [w], lr: 0.1), .init(params: [u], lr: 0.1, weightDecay: -0.1)], algorithm: .adamW())
        }
        expectMessage(["adam: beta1: expected a number in [0, 1), got 1.0"]) {
            try Optimizer([w], algorithm: .adam(beta1: 1), lr: 0.1)
        }
        expectMessage(["adamw: beta2: expected a number in [0, 1), got 1.5"]) {
            try Optimizer([w], algorithm: .adamW(beta2: 1.5), lr: 0.1)
        }
        expectMessage(["beta1: expected a number in [0, 1), got nan"]) { try Optimizer([w], algorithm: .adam(beta1: .nan), lr: 0.1) }
        expectMessage(["adam: eps: expected a finite positive number, got 0.0"]) {
            try Optimizer([w], algorithm: .adam(eps: 0), lr: 0.1)
        }
        expectMessage(["sgd: nesterov momentum: expected momentum > 0 and dampening = 0, got momentum 0.0 and dampening 0.0"]) {
            try Optimizer([w], algorithm: .sgd(nesterov: true), lr: 0.1)
        }
        expectMessage(["nesterov momentum", "got momentum 0.9 and dampening 0.1"]) {
            try Optimizer([w], algorithm: .sgd(momentum: 0.9, dampening: 0.1, nesterov: true), lr: 0.1)
        }
        expectMessage(["sgd: momentum: expected a finite non-negative number, got -0.5"]) {
            try Optimizer([w], algorithm: .sgd(momentum: -0.5), lr: 0.1)
        }
        expectMessage(["sgd: dampening: expected a finite non-negative number, got inf"]) {
            try Optimizer([w], algorithm: .sgd(momentum: 0.5, dampening: .infinity), lr: 0.1)
        }

        let optimizer = try Optimizer(groups: [.init(params: [w], lr: 0.1), .init(params: [u], lr: 0.2)], algorithm: .adam())
        expectMessage(["learning rate: expected a finite non-negative number, got nan"]) { try optimizer.setLearningRate(.nan) }
        expectMessage(["learning rate: expected a finite non-negative number, got -1.0"]) { try optimizer.setLearningRate(-1, group: 0) }
        expectMessage(["learning rate: expected a finite non-negative number, got inf"]) { try optimizer.setLearningRate(.infinity) }
        expectMessage(["learning rate: expected a group index in 0..<2, got 2"]) { try optimizer.setLearningRate(0.1, group: 2) }
        #expect(optimizer.groups.map(\.lr) == [0.1, 0.2])
        expectMessage(["step count: expected a non-negative integer, got -1"]) { try optimizer.setStepCount(-1) }

        // A gradient of the wrong shape or dtype: nothing changes, not even the parameter before it.
        let before = w.toDoubles()
        w.grad = try randn([3, 4], g)
        u.grad = try randn([2, 2], g)
        expectMessage(["optimizer step: expected the gradient of parameter 1 of group 2 to have its shape (4) "
                       + "and dtype float64, got (2, 2) float64"]) { try optimizer.step() }
        u.grad = try randn([4], g, dtype: .float32)
        expectMessage(["and dtype float64, got (4) float32"]) { try optimizer.step() }
        #expect(w.toDoubles() == before && optimizer.stepCount == 0 && optimizer.state(of: w).isEmpty)
        u.grad = try randn([4], g)
        try optimizer.step()
        #expect(w.toDoubles() != before && optimizer.stepCount == 1)
    }
}
