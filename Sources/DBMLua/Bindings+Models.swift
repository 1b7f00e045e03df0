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
