import CLua
import CLua54
import DBMCore
import DBMModels
import Foundation

/// The paper's small models (DBMModels) as Lua objects, wrapped by LuaLib/models.lua (`dbm.models`):
/// Lua drives `step(n)` and the recording; each model's state is one live float64 tensor (`m.weight`),
/// so the recorder watches it directly. Ensembles run in Swift on all cores and return their levels as
/// (seeds × levels) tensors. Options are checked for unknown keys by models.lua; values are checked here
/// and by the models themselves.
extension Bindings {
    static func model(_ c: LuaCall, _ i: Int32 = 1) throws -> SteppedModel {
        guard let p = dbm_toobject(c.L, i, Int32(DBM_KIND_MODEL)) else { throw c.argError(i, "model", expected: "a model") }
        // Every object of this kind is pushed by `pushModel`, so it conforms.
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as! SteppedModel
    }

    static func pushModel(_ c: LuaCall, _ m: SteppedModel) throws {
        try c.push(object: m, kind: Int32(DBM_KIND_MODEL))
    }

    /// Option `key` of the options table at i as a seed (an integer; negative ones wrap to 64 bits).
    static func seedOption(_ c: LuaCall, _ o: Int32, _ key: String, default def: Int = 0) throws -> Int {
        try c.optionInteger(o, key) ?? def
    }

    /// The seeds first, first + 1, …, first + count − 1 (refused when they would pass the largest integer).
    static func seedRange(_ c: LuaCall, _ first: Int, _ count: Int) throws -> Range<Int> {
        guard first <= Int.max - count else { throw c.fail("option 'seed': expected a first seed up to \(Int.max - count), got \(first)") }
        return first..<(first + count)
    }

    /// Option `key` as a positive integer, or the default.
    static func positiveOption(_ c: LuaCall, _ o: Int32, _ key: String, default def: Int) throws -> Int {
        let v = try c.optionInteger(o, key) ?? def
        guard v >= 1 else { throw c.fail("option '\(key)': expected a positive integer, got \(v)") }
        return v
    }

    /// Option `key` as a number (finiteness and sign are the model's to check, with its own message).
    static func numberOption(_ c: LuaCall, _ o: Int32, _ key: String, default def: Double) throws -> Double {
        try c.optionNumber(o, key) ?? def
    }

    static let models: [Binding] = [
        fn("model_teacher_student", "dbm.models.teacher_student",
           "dbm.models.teacher_student{lr=0.1, batch_size=16, eps=0.1, n_data=500*batch_size, seed=0} -> model: the 2×2 teacher–student model of arXiv:2407.16427 (DESIGN §3); m.weight is the student W_s, m:levels() its singular values") { c in
            let o = try c.options(1)
            let bs = try positiveOption(c, o, "batch_size", default: 16)
            let m = try TeacherStudent(lr: try numberOption(c, o, "lr", default: 0.1), batchSize: bs,
                                       eps: try numberOption(c, o, "eps", default: 0.1),
                                       nData: try c.optionInteger(o, "n_data"),
                                       seed: UInt64(bitPattern: Int64(try seedOption(c, o, "seed"))))
            try pushModel(c, m); return 1
        },
        fn("model_teacher_student_ensemble", "dbm.models.ensemble",
           "core: teacher–student ensemble {seeds, seed, epochs, lr, batch_size, eps, history} -> (seeds × 2) final singular values, ascending, or (seeds, epochs, 2) with history = true") { c in
            let o = try c.options(1)
            let seeds = try positiveOption(c, o, "seeds", default: 1000), first = try seedOption(c, o, "seed")
            let args = (epochs: try positiveOption(c, o, "epochs", default: 10), lr: try numberOption(c, o, "lr", default: 0.1),
                        bs: try positiveOption(c, o, "batch_size", default: 16), eps: try numberOption(c, o, "eps", default: 0.1))
            let range = try seedRange(c, first, seeds)
            let t = try c.optionBool(o, "history") == true
                ? try TeacherStudent.ensembleHistory(seeds: range, epochs: args.epochs, lr: args.lr, batchSize: args.bs, eps: args.eps)
                : try TeacherStudent.ensemble(seeds: range, epochs: args.epochs, lr: args.lr, batchSize: args.bs, eps: args.eps)
            try c.push(t); return 1
        },
        fn("model_rbm_scalar", "dbm.models.rbm_scalar",
           "dbm.models.rbm_scalar{lr=0.1, batch_size=16, k=3, mass=3, field_mass=2, n=10, target_kernel=K, seed=0} -> model: the Gaussian scalar-field RBM of arXiv:2407.16427 (DESIGN §3), PCD-k with exact positive phase; m.weight is W (n×n), m:levels() the eigenvalues of WᵀW, which go to μ² − κ_n") { c in
            let o = try c.options(1)
            let lr = try numberOption(c, o, "lr", default: 0.1), mass = try numberOption(c, o, "mass", default: 3)
            let bs = try positiveOption(c, o, "batch_size", default: 16), k = try positiveOption(c, o, "k", default: 3)
            let seed = UInt64(bitPattern: Int64(try seedOption(c, o, "seed")))
            let kernel = try c.option(o, "target_kernel") { j -> Tensor in
                guard let t = c.tensorOrNil(j) else { throw c.fail("option 'target_kernel': expected a square tensor, got \(c.describe(j))") }
                return t
            }
            let m: ScalarFieldRBM
            if let kernel {
                guard try c.optionNumber(o, "field_mass") == nil, try c.optionInteger(o, "n") == nil else {
                    throw c.fail("option 'target_kernel': give either target_kernel or field_mass and n, not both")
                }
                m = try ScalarFieldRBM(targetKernel: try kernel.converted(to: .float64), mass: mass, lr: lr, batchSize: bs, k: k, seed: seed)
            } else {
                m = try ScalarFieldRBM(n: try c.optionInteger(o, "n") ?? 10, mass: mass,
                                       fieldMass: try numberOption(c, o, "field_mass", default: 2), lr: lr, batchSize: bs, k: k, seed: seed)
            }
            try pushModel(c, m); return 1
        },
        fn("model_rbm_scalar_ensemble", "dbm.models.ensemble",
           "core: scalar-field RBM ensemble {seeds, seed, steps, lr, batch_size, k, mass, field_mass, n, history, burn_in, record_every} -> (seeds × n) final eigenvalues of WᵀW, or (seeds, records, n) with history = true") { c in
            let o = try c.options(1)
            let seeds = try positiveOption(c, o, "seeds", default: 100), first = try seedOption(c, o, "seed")
            let steps = try c.optionInteger(o, "steps") ?? 100_000
            let (n, mass, field) = (try c.optionInteger(o, "n") ?? 10, try numberOption(c, o, "mass", default: 3),
                                    try numberOption(c, o, "field_mass", default: 2))
            let (lr, bs, k) = (try numberOption(c, o, "lr", default: 0.1), try positiveOption(c, o, "batch_size", default: 16),
                               try positiveOption(c, o, "k", default: 3))
            let range = try seedRange(c, first, seeds)
            let t: Tensor
            if try c.optionBool(o, "history") == true {
                let every = try positiveOption(c, o, "record_every", default: 1000)
                t = try ScalarFieldRBM.ensembleHistory(seeds: range, steps: steps, burnIn: try c.optionInteger(o, "burn_in") ?? steps / 2,
                                                       recordEvery: every, n: n, mass: mass, fieldMass: field, lr: lr, batchSize: bs, k: k)
            } else {
                t = try ScalarFieldRBM.ensemble(seeds: range, steps: steps, n: n, mass: mass, fieldMass: field, lr: lr, batchSize: bs, k: k)
            }
            try c.push(t); return 1
        },
        fn("model_dyson", "dbm.models.dyson",
           "dbm.models.dyson{n=50, potential=\"harmonic\" | \"wishart\", k=1, rows=2n, variance=1, temperature=1, dt=1e-3, levels=, seed=0} -> model: Dyson Brownian motion of n levels with β = 1 repulsion (Metropolis-adjusted, so the Coulomb gas is exactly stationary); harmonic V = k x²/2 (semicircle of radius √(2nT/k)) or Wishart (Marchenko–Pastur of a rows × n matrix of variance σ²); m.weight is the levels, dt per step") { c in
            let o = try c.options(1)
            let kind = try c.optionString(o, "potential") ?? "harmonic"
            let levels = try c.option(o, "levels") { j -> [Double] in try numbers(c, j, "levels") }
            let n = try c.optionInteger(o, "n") ?? levels?.count ?? 50
            if let levels, levels.count != n { throw c.fail("option 'levels': expected \(n) levels (option n), got \(levels.count)") }
            let potential: DysonPotential
            switch kind {
            case "harmonic":
                guard try c.optionInteger(o, "rows") == nil, try c.optionNumber(o, "variance") == nil else {
                    throw c.fail("options 'rows' and 'variance': expected only with potential = \"wishart\"")
                }
                potential = .harmonic(k: try numberOption(c, o, "k", default: 1))
            case "wishart":
                guard try c.optionNumber(o, "k") == nil else { throw c.fail("option 'k': expected only with potential = \"harmonic\"") }
                potential = .wishart(rows: try c.optionInteger(o, "rows") ?? 2 * n, variance: try numberOption(c, o, "variance", default: 1))
            default: throw c.fail("option 'potential': expected \"harmonic\" or \"wishart\", got \"\(kind)\"")
            }
            let (t, dt) = (try numberOption(c, o, "temperature", default: 1), try numberOption(c, o, "dt", default: 1e-3))
            let seed = UInt64(bitPattern: Int64(try seedOption(c, o, "seed")))
            let m = try levels.map { try DysonSimulator(levels: $0, potential: potential, temperature: t, dt: dt, seed: seed) }
                ?? DysonSimulator(n: n, potential: potential, temperature: t, dt: dt, seed: seed)
            try pushModel(c, m); return 1
        },
        fn("model_matrix_bm", "dbm.models.matrix_bm",
           "dbm.models.matrix_bm{rows=, cols=, dt=0.01, temperature=0.5, restoring=0, initial=W, seed=0} -> model: matrix Brownian motion W ← e^{−γdt}W + √(T(1 − e^{−2γdt})/γ)·G (γ = restoring; γ = 0, T = ½: W ← W + √dt·G), from W = 0 or a copy of initial; m:levels() the eigenvalues of the smaller Gram matrix") { c in
            let o = try c.options(1)
            let initial = try c.option(o, "initial") { j -> Tensor in
                guard let t = c.tensorOrNil(j) else { throw c.fail("option 'initial': expected a 2-d tensor, got \(c.describe(j))") }
                return t
            }
            let (dt, t, g) = (try numberOption(c, o, "dt", default: 0.01), try numberOption(c, o, "temperature", default: 0.5),
                              try numberOption(c, o, "restoring", default: 0))
            let seed = UInt64(bitPattern: Int64(try seedOption(c, o, "seed")))
            let m: MatrixBrownianMotion
            if let initial {
                guard try c.optionInteger(o, "rows") == nil, try c.optionInteger(o, "cols") == nil else {
                    throw c.fail("option 'initial': give either initial or rows and cols, not both")
                }
                m = try MatrixBrownianMotion(initial: initial, dt: dt, temperature: t, restoring: g, seed: seed)
            } else {
                guard let rows = try c.optionInteger(o, "rows"), let cols = try c.optionInteger(o, "cols") else {
                    throw c.fail("options 'rows' and 'cols': expected the matrix size (or option initial)")
                }
                m = try MatrixBrownianMotion(rows: rows, cols: cols, dt: dt, temperature: t, restoring: g, seed: seed)
            }
            try pushModel(c, m); return 1
        },
        fn("model_stationary_cdf", "Model:stationary_cdf",
           "m:stationary_cdf(x) -> float64 tensor of the stationary law's CDF at the values x (a tensor or table) — the Dyson simulator's semicircle or Marchenko–Pastur law; for KS tests of pooled levels") { c in
            guard let d = try model(c) as? DysonSimulator else {
                throw c.fail("argument 1 (model): expected a Dyson simulator (dbm.models.dyson), got a \(try model(c).modelName) model")
            }
            let law = d.stationaryLaw
            let v = try numbers(c, 2, "x").map { law.cdf($0) }
            try c.push(try Tensor.from(v, shape: [v.count], dtype: .float64)); return 1
        },
        fn("model_rbm_bernoulli", "dbm.models.rbm_bernoulli",
           "dbm.models.rbm_bernoulli{data=X, hidden=64, lr=0.05, weight_decay=0, batch_size=64, k=1, persistent=false, binarize=\"sample\" | \"threshold\" | \"probabilities\", seed=0} -> model: a Bernoulli–Bernoulli RBM with biases trained by CD-k (PCD-k with persistent = true) on the rows of X (entries in [0, 1]); m.weight is W (hidden × visible), m:levels() the eigenvalues of the smaller Gram matrix, m:scalars() the reconstruction error") { c in
            let o = try c.options(1)
            guard let data = try c.option(o, "data", { j -> Tensor in
                guard let t = c.tensorOrNil(j) else { throw c.fail("option 'data': expected a 2-d tensor of rows in [0, 1], got \(c.describe(j))") }
                return t
            }) else { throw c.fail("option 'data': expected a 2-d tensor of rows in [0, 1] (the training set)") }
            let name = try c.optionString(o, "binarize") ?? "sample"
            guard let binarize = BernoulliRBM.Binarize(rawValue: name) else {
                throw c.fail("option 'binarize': expected \"sample\", \"threshold\" or \"probabilities\", got \"\(name)\"")
            }
            let m = try BernoulliRBM(data: data, hidden: try positiveOption(c, o, "hidden", default: 64),
                                     lr: try numberOption(c, o, "lr", default: 0.05),
                                     weightDecay: try numberOption(c, o, "weight_decay", default: 0),
                                     batchSize: try positiveOption(c, o, "batch_size", default: 64),
                                     k: try positiveOption(c, o, "k", default: 1), persistent: try c.optionBool(o, "persistent") ?? false,
                                     binarize: binarize, seed: UInt64(bitPattern: Int64(try seedOption(c, o, "seed"))))
            try pushModel(c, m); return 1
        },
        fn("model_rbm_reconstruction_error", "Model:reconstruction_error",
           "m:reconstruction_error(X [, limit]) -> the mean squared error between the rows of X and their mean-field one-step reconstructions σ(b + Wᵀσ(c + Wx)) (Bernoulli RBM)") { c in
            guard let r = try model(c) as? BernoulliRBM else { throw c.fail("argument 1 (model): expected a Bernoulli RBM (dbm.models.rbm_bernoulli)") }
            let x = try c.tensor(2, "X")
            let limit = c.isNoneOrNil(3) ? nil : try positiveSize(c, 3, "limit")
            c.push(try r.reconstructionError(data: x, limit: limit)); return 1
        },
        fn("model_rbm_biases", "Model:biases",
           "m:biases() -> b, c: the visible and hidden biases of a Bernoulli RBM (live float64 tensors)") { c in
            guard let r = try model(c) as? BernoulliRBM else { throw c.fail("argument 1 (model): expected a Bernoulli RBM (dbm.models.rbm_bernoulli)") }
            try c.push(r.visibleBias); try c.push(r.hiddenBias); return 2
        },
        fn("model_rbm_log_likelihood", "Model:log_likelihood",
           "m:log_likelihood(X) -> mean log p(v) over the binary rows of X, and log Z: exact, by enumeration (Bernoulli RBM with at most 12 visible and 8 hidden units)") { c in
            guard let r = try model(c) as? BernoulliRBM else { throw c.fail("argument 1 (model): expected a Bernoulli RBM (dbm.models.rbm_bernoulli)") }
            c.push(try r.logLikelihood(data: try c.tensor(2, "X"))); c.push(try r.logPartition()); return 2
        },
        fn("model_info", "Model:info", "m:info() -> table of the model's settings and constants (lr, batch_size, …; the scalar-field RBM also mass, target_eigenvalues κ and expected_levels μ² − κ, ascending)") { c in
            let m = try model(c)
            var numbers: [(String, Double)] = []
            var vectors: [(String, [Double])] = []
            var strings: [(String, String)] = []
            switch m {
            case let t as TeacherStudent:
                numbers = [("lr", t.lr), ("batch_size", Double(t.batchSize)), ("eps", t.eps), ("n_data", Double(t.nData)),
                           ("steps_per_epoch", Double(t.stepsPerEpoch))]
            case let r as ScalarFieldRBM:
                numbers = [("lr", r.lr), ("batch_size", Double(r.batchSize)), ("k", Double(r.k)), ("mass", r.mass), ("n", Double(r.n))]
                vectors = [("target_eigenvalues", r.targetEigenvalues), ("expected_levels", r.expectedLevels)]
            case let d as DysonSimulator:
                numbers = [("n", Double(d.count)), ("temperature", d.temperature), ("dt", d.dt), ("time", d.time),
                           ("acceptance_rate", d.acceptanceRate), ("edge_lower", d.stationaryLaw.edges.lower),
                           ("edge_upper", d.stationaryLaw.edges.upper)]
                switch d.potential {
                case .harmonic(let k): numbers += [("k", k)]
                case .wishart(let rows, let variance): numbers += [("rows", Double(rows)), ("variance", variance)]
                }
                strings = [("potential", { if case .harmonic = d.potential { return "harmonic" } else { return "wishart" } }())]
            case let r as BernoulliRBM:
                numbers = [("visible", Double(r.visible)), ("hidden", Double(r.hidden)), ("lr", r.lr), ("weight_decay", r.weightDecay),
                           ("batch_size", Double(r.batchSize)), ("k", Double(r.k)), ("n_data", Double(r.nData)),
                           ("steps_per_epoch", Double(r.stepsPerEpoch)), ("epoch", Double(r.epochCount))]
                strings = [("binarize", r.binarize.rawValue), ("persistent", r.persistent ? "true" : "false")]
            case let b as MatrixBrownianMotion:
                numbers = [("rows", Double(b.rows)), ("cols", Double(b.cols)), ("dt", b.dt), ("temperature", b.temperature),
                           ("restoring", b.restoring), ("time", b.time)]
            default: break
            }
            try c.newTable(nrec: numbers.count + vectors.count + strings.count + 1)
            try c.push(m.modelName); try c.setField(-2, "name")
            // Counts are integers in Lua; rates, masses and times stay floats even when whole.
            let counts: Set<String> = ["batch_size", "n_data", "steps_per_epoch", "k", "n", "rows", "cols", "visible", "hidden", "epoch"]
            for (key, v) in numbers {
                if counts.contains(key), !(m is DysonSimulator && key == "k"), let n = Int(exactly: v) { c.push(n) } else { c.push(v) }
                try c.setField(-2, key)
            }
            for (key, v) in strings { try c.push(v); try c.setField(-2, key) }
            for (key, v) in vectors { try c.push(try Tensor.from(v, shape: [v.count], dtype: .float64)); try c.setField(-2, key) }
            return 1
        },
        fn("model_step", "Model:step", "m:step([n=1]) -> m: n update steps (Ctrl-C stops it between chunks of 64 steps)") { c in
            let m = try model(c)
            let n = c.isNoneOrNil(2) ? 1 : try c.integer(2, "n")
            guard n >= 0 else { throw c.fail("argument 2 (n): expected a non-negative number of steps, got \(n)") }
            // In chunks, so that Ctrl-C stops a long call within milliseconds: the interrupt hook then raises
            // at the next Lua instruction. The Dyson simulator refuses levels a script has set out of its
            // domain (its plain step would stand still).
            let interrupts = dbm_sigint_generation()
            var remaining = n
            while remaining > 0, dbm_sigint_generation() == interrupts {
                let chunk = min(remaining, 64)
                if let d = m as? DysonSimulator { try d.advance(chunk) } else { m.step(chunk) }
                remaining -= chunk
            }
            lua_settop(c.L, 1); return 1
        },
        fn("model_weight", "Model.weight", "m.weight: the model's state as a live float64 tensor (W; the Dyson simulator's levels), updated by every step and read by the next") { c in
            try c.push(try model(c).weight); return 1
        },
        fn("model_levels", "Model:levels", "m:levels() -> float64 tensor of the model's levels, ascending (singular values of W for the teacher–student model, eigenvalues of WᵀW for the RBMs, positions for the Dyson simulator)") { c in
            let v = try model(c).levels()
            try c.push(try Tensor.from(v, shape: [v.count], dtype: .float64)); return 1
        },
        fn("model_steps", "Model.steps", "m.steps: update steps taken so far") { c in
            c.push(try model(c).stepCount); return 1
        },
        fn("model_name", "Model.name", "m.name: the model's name") { c in
            try c.push(try model(c).modelName); return 1
        },
        fn("model_scalars", "Model:scalars", "m:scalars() -> table of the model's own scalars (e.g. reconstruction_error), for rec:step") { c in
            let s = try model(c).scalars()
            try c.newTable(nrec: s.count)
            for (k, v) in s { c.push(v); try c.setField(-2, k) }
            return 1
        },
    ]
}
