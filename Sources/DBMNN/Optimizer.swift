import DBMCore

/// First-order optimizers over leaf parameters: SGD (with momentum, dampening, Nesterov), Adam, AdamW,
/// following the update rules PyTorch documents for torch.optim.SGD, Adam and AdamW (maximize = false,
/// amsgrad = false). One `step()` updates every parameter whose `.grad` is set, in place on its storage.
///
/// Parameters come in groups (numbered from 1 in messages, as a person counts them), each with its own learning rate and weight decay (nanoGPT decays only the
/// tensors of rank ≥ 2). A parameter is a leaf that requires a gradient (`NN.parameter(t)`), float32 or
/// float64, contiguous, and appears once across all groups.
///
/// The learning rate is the optimizer's: with a schedule γ(t) (`LearningRateSchedule`, or a value the
/// caller evaluates, `step(scheduled:)`), group g's rate for the update from step t is
/// γ_g = lr_g · γ(t) / baseLR, where lr_g is the group's own rate and baseLR the optimizer's base rate.
/// A group whose own rate is the base rate follows the schedule exactly; the schedule never overwrites a
/// group's own rate. Without a schedule γ_g = lr_g.
///
/// The update rules, for a parameter θ with gradient g, learning rate γ, weight decay λ, at step t:
///
///     SGD (momentum μ, dampening τ):   g ← g + λθ                                  (coupled: an L2 term)
///                                      if μ ≠ 0:  b ← g                on the parameter's first step,
///                                                 b ← μb + (1 − τ)g    afterwards
///                                                 g ← g + μb if nesterov, else g ← b
///                                      θ ← θ − γg
///     Adam (β1, β2, ε):                g ← g + λθ                                  (coupled: an L2 term)
///                                      m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
///                                      m̂ = m / (1 − β1ᵗ),       v̂ = v / (1 − β2ᵗ)
///                                      θ ← θ − γ·m̂ / (√v̂ + ε)
///     AdamW (β1, β2, ε):               θ ← θ·(1 − γλ)                              (decoupled)
///                                      then the Adam step with λ = 0.
///
/// Adam's last line is computed as PyTorch computes it: θ ← θ − (γ / (1 − β1ᵗ))·m / (√v / √(1 − β2ᵗ) + ε).
/// The bias corrections and the other coefficients are computed in Double, the per-element arithmetic
/// in the parameter's dtype (as PyTorch does for float32).
///
/// Step counter: t is the optimizer's `stepCount`, incremented by every `step()`. PyTorch keeps one
/// counter per parameter; the two agree as long as every parameter has a gradient at every step.
/// A parameter whose `.grad` is nil is skipped: neither it nor its state changes (as in PyTorch), but the
/// shared t still advances, so a parameter that starts late gets Adam's bias corrections of the current
/// step rather than of its own first step.
///
/// State (PyTorch's names and values): SGD with momentum keeps "momentum_buffer", Adam and AdamW keep
/// "exp_avg" (m) and "exp_avg_sq" (v), tensors of the parameter's shape and dtype created on the
/// parameter's first step (m and v from zeros). `state(of:)`, `loadState(of:_:)`, `setStepCount(_:)` and
/// `setLearningRate(_:group:)` save and restore them for checkpoints.
public final class Optimizer {
    /// The update rule and its constants (PyTorch's defaults).
    public enum Algorithm: Sendable, Equatable {
        case sgd(momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false)
        case adam(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8)
        case adamW(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8)

        /// "sgd", "adam" or "adamw", for messages.
        public var name: String {
            switch self {
            case .sgd: "sgd"
            case .adam: "adam"
            case .adamW: "adamw"
            }
        }

        /// The names of the state tensors kept per parameter, in the order `state(of:)` returns them.
        public var stateNames: [String] {
            switch self {
            case .sgd(let momentum, _, _): momentum == 0 ? [] : ["momentum_buffer"]
            case .adam, .adamW: ["exp_avg", "exp_avg_sq"]
            }
        }

        /// Throws unless the constants are in range: momentum, dampening finite ≥ 0, Nesterov only with
        /// momentum > 0 and dampening 0; betas in [0, 1), eps finite > 0.
        func validate() throws {
            switch self {
            case .sgd(let momentum, let dampening, let nesterov):
                try requireNonNegative("sgd: momentum", momentum)
                try requireNonNegative("sgd: dampening", dampening)
                if nesterov && (momentum <= 0 || dampening != 0) {
                    throw DBMError("sgd: nesterov momentum: expected momentum > 0 and dampening = 0, "
                        + "got momentum \(momentum) and dampening \(dampening)")
                }
            case .adam(let beta1, let beta2, let eps), .adamW(let beta1, let beta2, let eps):
                for (what, beta) in [("beta1", beta1), ("beta2", beta2)] where !(beta >= 0 && beta < 1) {
                    throw DBMError("\(name): \(what): expected a number in [0, 1), got \(beta)")
                }
                guard eps.isFinite && eps > 0 else {
                    throw DBMError("\(name): eps: expected a finite positive number, got \(eps)")
                }
            }
        }
    }

    /// Parameters that share a learning rate γ and a weight decay λ (coupled for SGD and Adam, decoupled
    /// for AdamW; 0 = none). `lr` is the group's own rate: a schedule scales it (`learningRates`).
    public struct ParamGroup {
        public var params: [Tensor]
        public var lr: Double
        public var weightDecay: Double

        public init(params: [Tensor], lr: Double, weightDecay: Double = 0) {
            self.params = params; self.lr = lr; self.weightDecay = weightDecay
        }
    }

    public let algorithm: Algorithm
    /// The groups in the order given; their own learning rates change through `setLearningRate` only.
    public private(set) var groups: [ParamGroup]
    /// Evaluated at each step (nil: each group keeps its own rate).
    public let schedule: LearningRateSchedule?
    /// The rate the schedule's values are relative to (γ_g = lr_g · γ(t) / baseLR).
    public let baseLR: Double
    /// The number of `step()` calls so far (t of the bias corrections is stepCount after the increment).
    public private(set) var stepCount = 0
    /// Every parameter, group by group.
    public var parameters: [Tensor] { groups.flatMap(\.params) }

    /// Where each parameter sits (group, position), by identity.
    private let positions: [ObjectIdentifier: (group: Int, position: Int)]
    /// Each parameter's state tensors, in `algorithm.stateNames` order; absent before its first step.
    private var states: [ObjectIdentifier: [Tensor]] = [:]

    /// An optimizer over parameter groups, with a schedule relative to baseLR (default: the first group's
    /// rate). Throws unless every tensor is a contiguous leaf parameter that appears once, there is at
    /// least one, every learning rate and weight decay is finite and ≥ 0 (the base rate > 0 under a
    /// schedule), and the constants of the algorithm and the schedule are in range.
    public init(groups: [ParamGroup], algorithm: Algorithm, schedule: LearningRateSchedule? = nil,
                baseLR: Double? = nil) throws {
        try algorithm.validate()
        try schedule?.validate()
        var positions: [ObjectIdentifier: (group: Int, position: Int)] = [:]
        for (gi, group) in groups.enumerated() {
            try requireNonNegative("optimizer: learning rate of group \(gi + 1)", group.lr)
            try requireNonNegative("optimizer: weight decay of group \(gi + 1)", group.weightDecay)
            for (pi, p) in group.params.enumerated() {
                let what = "a tensor of shape \(formatShape(p.shape)) (parameter \(pi + 1) of group \(gi + 1))"
                if !p.requiresGrad {
                    throw DBMError("optimizer: expected parameters (tensors with requires_grad and no producing op), "
                        + "got \(what) that does not require a gradient")
                }
                if let node = p.gradFn {
                    let op = (node as? GradNode).map { "'\($0.op)'" } ?? "an op"
                    throw DBMError("optimizer: expected parameters (tensors with requires_grad and no producing op), "
                        + "got \(what) that is the output of \(op), not a leaf")
                }
                if !p.isContiguous {   // (the dtype is float32 or float64: DType has no other case)
                    throw DBMError("optimizer: expected contiguous parameters, got \(what) with strides "
                        + "\(formatShape(p.strides))")
                }
                if let first = positions[ObjectIdentifier(p)] {
                    throw DBMError("optimizer: expected each parameter once, got the same tensor of shape "
                        + "\(formatShape(p.shape)) (parameter \(first.position + 1) of group \(first.group + 1)) "
                        + "and again (parameter \(pi + 1) of group \(gi + 1))")
                }
                positions[ObjectIdentifier(p)] = (gi, pi)
            }
        }
        guard !positions.isEmpty else {
            throw DBMError("optimizer: expected at least one parameter, got \(groups.count) groups with none")
        }
        let baseLR = baseLR ?? groups[0].lr
        try requireNonNegative("optimizer: base learning rate", baseLR)
        if schedule != nil && baseLR == 0 {
            throw DBMError("optimizer: a schedule needs a base learning rate > 0 (its values are relative to it), got 0")
        }
        self.algorithm = algorithm
        self.groups = groups
        self.schedule = schedule
        self.baseLR = baseLR
        self.positions = positions
    }

    /// An optimizer over one group of parameters. (The weight decay defaults to 0 for every algorithm;
    /// PyTorch's AdamW defaults to 0.01.)
    public convenience init(_ params: [Tensor], algorithm: Algorithm, lr: Double, weightDecay: Double = 0) throws {
        try self.init(groups: [ParamGroup(params: params, lr: lr, weightDecay: weightDecay)], algorithm: algorithm)
    }

    // ------------------------------------------------------------------ settings

    /// Sets the own learning rate of one group (0-based), or of every group when group is nil; a schedule
    /// scales it from the next step on.
    public func setLearningRate(_ lr: Double, group: Int? = nil) throws {
        try requireNonNegative("learning rate", lr)
        if let g = group {
            guard groups.indices.contains(g) else {
                throw DBMError("learning rate: expected a group index in 0..<\(groups.count), got \(g)")
            }
            groups[g].lr = lr
        } else {
            for g in groups.indices { groups[g].lr = lr }
        }
    }

    /// Each group's rate for the next update (the one from step stepCount): its own rate, scaled by the
    /// schedule's value γ(stepCount) over baseLR. `scheduled` is γ(stepCount) when the caller evaluates the
    /// schedule itself (a function written in Lua); it takes the place of `schedule`.
    public func learningRates(scheduled: Double? = nil) throws -> [Double] {
        guard let rate = scheduled ?? schedule?.rate(at: stepCount) else { return groups.map(\.lr) }
        guard rate.isFinite && rate >= 0 else {
            throw DBMError("learning-rate schedule: expected a finite non-negative rate for the update from step "
                + "\(stepCount), got \(rate)")
        }
        guard baseLR > 0 else {
            throw DBMError("learning-rate schedule: expected a base learning rate > 0 (the schedule's values are relative to it), got 0")
        }
        let rates = groups.map { $0.lr / baseLR * rate }   // exactly `rate` for a group at the base rate
        if let g = rates.firstIndex(where: { !$0.isFinite }) {
            throw DBMError("learning-rate schedule: the rate of group \(g + 1) overflows: \(groups[g].lr) · \(rate) / \(baseLR)")
        }
        return rates
    }

    /// Sets the step counter (when resuming from a checkpoint): the next step uses t = n + 1.
    public func setStepCount(_ n: Int) throws {
        guard n >= 0 else { throw DBMError("step count: expected a non-negative integer, got \(n)") }
        stepCount = n
    }

    /// Zeroes every parameter's gradient in place, keeping the buffers: the next backward accumulates
    /// into them directly (a nano-GPT step at the cpu preset: 2.5–3 ms of 38 saved). With setToNil the
    /// gradients are dropped instead (PyTorch's default set_to_none; the step then skips a parameter
    /// that gets no new gradient, where a zeroed one still moves by its momentum).
    public func zeroGrad(setToNil: Bool = false) {
        NN.zeroGrad(parameters, setToNil: setToNil)
    }

    // ------------------------------------------------------------------ state for checkpoints

    /// The state of one parameter as (name, tensor) pairs in `algorithm.stateNames` order: empty before
    /// the parameter's first step (and for a tensor the optimizer does not hold). The tensors are the
    /// optimizer's own, updated in place by later steps: copy them to keep a snapshot.
    public func state(of param: Tensor) -> [(name: String, tensor: Tensor)] {
        guard let tensors = states[ObjectIdentifier(param)] else { return [] }
        return Array(zip(algorithm.stateNames, tensors))
    }

    /// Replaces the state of one parameter by copies of the given tensors: either exactly the entries
    /// the algorithm keeps (`algorithm.stateNames`), each of the parameter's shape and dtype (any
    /// layout), or none (the parameter then starts afresh on its next step).
    public func loadState(of param: Tensor, _ state: [String: Tensor]) throws {
        try checkState(of: param, state)
        if state.isEmpty { states[ObjectIdentifier(param)] = nil; return }
        states[ObjectIdentifier(param)] = try algorithm.stateNames.map { try state[$0]!.copy() }
    }

    /// Throws what loadState would throw, changing nothing (a checkpoint is checked whole before any load).
    public func checkState(of param: Tensor, _ state: [String: Tensor]) throws {
        guard positions[ObjectIdentifier(param)] != nil else {
            throw DBMError("optimizer state: expected one of the optimizer's parameters, got a tensor of shape "
                + "\(formatShape(param.shape)) that it does not hold")
        }
        if state.isEmpty { return }
        let names = algorithm.stateNames
        guard Set(state.keys) == Set(names) else {
            throw DBMError("optimizer state (\(algorithm.name)): expected the entries "
                + "\(names.isEmpty ? "(none)" : names.joined(separator: ", ")), "
                + "got \(state.keys.sorted().joined(separator: ", "))")
        }
        for name in names {
            let t = state[name]!
            guard t.shape == param.shape && t.dtype == param.dtype else {
                throw DBMError("optimizer state: expected '\(name)' of the parameter's shape \(formatShape(param.shape)) "
                    + "and dtype \(param.dtype.rawValue), got \(formatShape(t.shape)) \(t.dtype.rawValue)")
            }
        }
    }

    // ------------------------------------------------------------------ the step

    /// One parameter's share of a step: the tensors the kernel reads and writes, and its group's settings.
    private struct Update {
        let param: Tensor, grad: Tensor, state: [Tensor]
        let firstStep: Bool   // the state was just created
        let lr: Double, weightDecay: Double
    }

    /// Increments stepCount (t of this step) and updates every parameter that has a gradient, in place,
    /// at the rates `learningRates(scheduled:)` gives. The rates and every gradient are checked (the
    /// parameter's shape and dtype) and missing state is allocated before anything changes, so a step that
    /// throws leaves the parameters, their state and the counter as they were.
    public func step(scheduled: Double? = nil) throws {
        let rates = try learningRates(scheduled: scheduled)
        var updates: [Update] = []
        for (gi, group) in groups.enumerated() {
            for (pi, p) in group.params.enumerated() {
                guard let g = p.grad else { continue }
                guard g.shape == p.shape && g.dtype == p.dtype else {
                    throw DBMError("optimizer step: expected the gradient of parameter \(pi + 1) of group "
                        + "\(gi + 1) to have its shape \(formatShape(p.shape)) and dtype \(p.dtype.rawValue), got "
                        + "\(formatShape(g.shape)) \(g.dtype.rawValue)")
                }
                let existing = states[ObjectIdentifier(p)]
                let state = try existing ?? algorithm.stateNames.map { _ in try Tensor(shape: p.shape, dtype: p.dtype) }
                updates.append(Update(param: p, grad: try g.contiguous(), state: state, firstStep: existing == nil,
                                      lr: rates[gi], weightDecay: group.weightDecay))
            }
        }
        stepCount += 1
        for u in updates {
            if u.firstStep && !u.state.isEmpty { states[ObjectIdentifier(u.param)] = u.state }
            u.param.storage.bumpVersion()   // the parameter changes in place: a graph that saved it is stale
        }
        // Every parameter's elements in pieces of at most `pieceElements`, the pieces of all parameters taken
        // in turn by the cores. Updated one by one, each tensor below 64k elements ran on one core (the `cpu`
        // preset's weights are 16k–65k elements) and the other core waited.
        var pieces: [(update: Int, range: Range<Int>)] = []
        for (k, u) in updates.enumerated() {
            let n = u.param.count
            for start in stride(from: 0, to: n, by: pieceElements) { pieces.append((k, start ..< min(n, start + pieceElements))) }
        }
        Parallel.dynamicChunks(pieces.count, parts: pieces.count) { r, _ in
            for i in r {
                let (u, range) = (updates[pieces[i].update], pieces[i].range)
                switch u.param.dtype {
                case .float32: apply(Float.self, u, range)
                case .float64: apply(Double.self, u, range)
                }
            }
        }
    }

    /// Updates elements `range` of one parameter (the kernels are elementwise: any split gives the same result).
    private func apply<T: NNFloat>(_: T.Type, _ u: Update, _ range: Range<Int>) {
        let p = u.param.pointer(T.self) + range.lowerBound, g = UnsafePointer(u.grad.pointer(T.self)) + range.lowerBound
        let n = range.count
        switch algorithm {
        case .sgd(let momentum, let dampening, let nesterov):
            let c = SGDCoefficients<T>(lr: T(u.lr), weightDecay: T(u.weightDecay), momentum: T(momentum),
                                       oneMinusDampening: T(1 - dampening), nesterov: nesterov, firstStep: u.firstStep)
            if momentum == 0 { sgdKernel(p, g, n, c) }
            else { sgdMomentumKernel(p, g, u.state[0].pointer(T.self) + range.lowerBound, n, c) }
        case .adam(let beta1, let beta2, let eps):
            let c = AdamCoefficients<T>(beta1: beta1, beta2: beta2, eps: eps, lr: u.lr, t: stepCount,
                                        coupledWeightDecay: u.weightDecay, decay: 1)
            adamKernel(p, g, u.state[0].pointer(T.self) + range.lowerBound, u.state[1].pointer(T.self) + range.lowerBound, n, c)
        case .adamW(let beta1, let beta2, let eps):
            let c = AdamCoefficients<T>(beta1: beta1, beta2: beta2, eps: eps, lr: u.lr, t: stepCount,
                                        coupledWeightDecay: 0, decay: 1 - u.lr * u.weightDecay)
            adamKernel(p, g, u.state[0].pointer(T.self) + range.lowerBound, u.state[1].pointer(T.self) + range.lowerBound, n, c)
        }
    }
}

/// Throws unless x is finite and ≥ 0: "<what>: expected a finite non-negative number, got <x>".
private func requireNonNegative(_ what: String, _ x: Double) throws {
    guard x.isFinite && x >= 0 else { throw DBMError("\(what): expected a finite non-negative number, got \(x)") }
}

// ---------------------------------------------------------------------- kernels
// In place over contiguous storage, elementwise (so splitting across the cores changes no result); each
// call is one piece of a parameter (`step`). Two details keep the loops vectorised:
// - the loop-invariant choices go through `select` (both sides evaluated): Swift's `?:` evaluates one
//   side only, and a load inside it (p[i] for the weight decay, b[i] for the momentum) is a branch the
//   loop vectorizer cannot remove;
// - √v is taken of |v| (v ≥ 0 anyway; NaN stays NaN): the compiler then knows the argument is not
//   negative and uses vector square roots, where it otherwise keeps a scalar check for negative inputs
//   (which set errno).

/// The most elements of one parameter updated as one task of a step.
private let pieceElements = 1 << 15

/// condition ? a : b with both already evaluated (a branch-free select; see above).
@inline(__always) private func select<T>(_ condition: Bool, _ a: T, _ b: T) -> T { condition ? a : b }

private struct SGDCoefficients<T: NNFloat> {
    let lr: T, weightDecay: T, momentum: T, oneMinusDampening: T
    let nesterov: Bool, firstStep: Bool
}

/// SGD without momentum: θ ← θ − γ(g + λθ).
private func sgdKernel<T: NNFloat>(_ p: UnsafeMutablePointer<T>, _ grad: UnsafePointer<T>, _ n: Int,
                                   _ c: SGDCoefficients<T>) {
    for i in 0..<n {
        let g = select(c.weightDecay != 0, grad[i] + c.weightDecay * p[i], grad[i])
        p[i] -= c.lr * g
    }
}

/// SGD with momentum: g ← g + λθ; b ← g (first step) or μb + (1 − τ)g; θ ← θ − γ(g + μb or b).
private func sgdMomentumKernel<T: NNFloat>(_ p: UnsafeMutablePointer<T>, _ grad: UnsafePointer<T>,
                                           _ b: UnsafeMutablePointer<T>, _ n: Int, _ c: SGDCoefficients<T>) {
    for i in 0..<n {
        let g = select(c.weightDecay != 0, grad[i] + c.weightDecay * p[i], grad[i])
        let buf = select(c.firstStep, g, c.momentum * b[i] + c.oneMinusDampening * g)
        b[i] = buf
        p[i] -= c.lr * select(c.nesterov, g + c.momentum * buf, buf)
    }
}

/// Adam's constants for step t, computed in Double and rounded to T once.
private struct AdamCoefficients<T: NNFloat> {
    let beta1: T, oneMinusBeta1: T, beta2: T, oneMinusBeta2: T, eps: T
    let stepSize: T              // γ / (1 − β1ᵗ)
    let biasCorrection2Sqrt: T   // √(1 − β2ᵗ)
    let coupledWeightDecay: T    // Adam's λ (added to the gradient); 0 for AdamW
    let decay: T                 // AdamW's 1 − γλ (applied to θ first); 1 for Adam

    init(beta1: Double, beta2: Double, eps: Double, lr: Double, t: Int, coupledWeightDecay: Double, decay: Double) {
        let biasCorrection1 = 1 - Double.pow(beta1, Double(t))
        let biasCorrection2 = 1 - Double.pow(beta2, Double(t))
        self.beta1 = T(beta1); oneMinusBeta1 = T(1 - beta1)
        self.beta2 = T(beta2); oneMinusBeta2 = T(1 - beta2)
        self.eps = T(eps)
        stepSize = T(lr / biasCorrection1)
        biasCorrection2Sqrt = T(biasCorrection2.squareRoot())
        self.coupledWeightDecay = T(coupledWeightDecay)
        self.decay = T(decay)
    }
}

/// Adam / AdamW: g ← g + λθ; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
/// θ ← θ·decay − stepSize·m / (√v / √(1 − β2ᵗ) + ε).
private func adamKernel<T: NNFloat>(_ p: UnsafeMutablePointer<T>, _ grad: UnsafePointer<T>,
                                    _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>, _ n: Int,
                                    _ c: AdamCoefficients<T>) {
    for i in 0..<n {
        let g = select(c.coupledWeightDecay != 0, grad[i] + c.coupledWeightDecay * p[i], grad[i])
        let mi = c.beta1 * m[i] + c.oneMinusBeta1 * g
        let vi = c.beta2 * v[i] + c.oneMinusBeta2 * (g * g)
        m[i] = mi
        v[i] = vi
        let denom = vi.magnitude.squareRoot() / c.biasCorrection2Sqrt + c.eps
        p[i] = p[i] * c.decay - c.stepSize * (mi / denom)
    }
}
