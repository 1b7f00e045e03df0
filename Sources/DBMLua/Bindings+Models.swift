import CLua
import CLua54
import DBMCore
import DBMModels

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

    /// A (rows, levels) float64 tensor of rows of levels.
    static func levelRows(_ rows: [[Double]]) throws -> Tensor {
        let width = rows.first?.count ?? 0
        return try Tensor.from(rows.flatMap { $0 }, shape: [rows.count, width], dtype: .float64)
    }

    static let models: [Binding] = [
        fn("noise_temperature", "dbm.noise_temperature",
           "dbm.noise_temperature(history, dt) -> {temperature, stderr, per_level, increments}: the noise temperature T of one run from the increments of its levels (eigenvalues of WᵀW, a (records, levels) tensor recorded δt = dt apart; for SGD dt = lr × steps between records): Var(δx_i) = 8 T x_i δt after the drift is fitted out (DESIGN §2)") { c in
            let h = try c.tensor(1, "history")
            let dt = try c.number(2, "dt")
            let e = try NoiseTemperature.estimate(history: h, dt: dt)
            try c.newTable(nrec: 4)
            c.push(e.temperature); try c.setField(-2, "temperature")
            c.push(e.standardError); try c.setField(-2, "stderr")
            c.push(e.increments); try c.setField(-2, "increments")
            try c.push(try Tensor.from(e.perLevel, shape: [e.perLevel.count], dtype: .float64)); try c.setField(-2, "per_level")
            return 1
        },
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
            let range = first..<(first + seeds)
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
            let range = first..<(first + seeds)
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
        fn("model_info", "Model:info", "m:info() -> table of the model's settings and constants (lr, batch_size, …; the scalar-field RBM also mass, target_eigenvalues κ and expected_levels μ² − κ, ascending)") { c in
            let m = try model(c)
            var numbers: [(String, Double)] = []
            var vectors: [(String, [Double])] = []
            switch m {
            case let t as TeacherStudent:
                numbers = [("lr", t.lr), ("batch_size", Double(t.batchSize)), ("eps", t.eps), ("n_data", Double(t.nData)),
                           ("steps_per_epoch", Double(t.stepsPerEpoch))]
            case let r as ScalarFieldRBM:
                numbers = [("lr", r.lr), ("batch_size", Double(r.batchSize)), ("k", Double(r.k)), ("mass", r.mass), ("n", Double(r.n))]
                vectors = [("target_eigenvalues", r.targetEigenvalues), ("expected_levels", r.expectedLevels)]
            default: break
            }
            try c.newTable(nrec: numbers.count + vectors.count + 1)
            try c.push(m.modelName); try c.setField(-2, "name")
            for (key, v) in numbers {
                if v == v.rounded(), abs(v) < 1e15, key != "lr", key != "eps", key != "mass" { c.push(Int(v)) } else { c.push(v) }
                try c.setField(-2, key)
            }
            for (key, v) in vectors { try c.push(try Tensor.from(v, shape: [v.count], dtype: .float64)); try c.setField(-2, key) }
            return 1
        },
        fn("model_step", "Model:step", "m:step([n=1]) -> m: n update steps (Ctrl-C is honoured between calls, not inside one)") { c in
            let m = try model(c)
            let n = c.isNoneOrNil(2) ? 1 : try c.integer(2, "n")
            guard n >= 0 else { throw c.fail("argument 2 (n): expected a non-negative number of steps, got \(n)") }
            m.step(n)
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
