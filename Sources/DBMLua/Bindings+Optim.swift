import CLua
import CLua54
import DBMCore
import DBMNN

/// The optimizers of DBMNN as Lua objects (wrapped by LuaLib/optim.lua, which is `dbm.optim`), their
/// learning-rate schedules, gradient clipping, and generator states for checkpoints. Groups are numbered
/// from 1 here.
extension Bindings {
    static func optimizer(_ c: LuaCall, _ i: Int32 = 1) throws -> Optimizer {
        try c.object(i, kind: Int32(DBM_KIND_OPTIMIZER), "optimizer", Optimizer.self)
    }

    /// A 1-based group number at argument i turned 0-based (nil when absent).
    /// The table {name = tensor} at i (an optimizer state).
    static func stateTable(_ c: LuaCall, _ i: Int32) throws -> [String: Tensor] {
        guard c.type(i) == LUA_TTABLE, dbm_object_kind(c.L, i) == 0 else { throw c.argError(i, "state", expected: "a table name -> tensor") }
        var state: [String: Tensor] = [:]
        try forEachPair(c, i) { k, v in
            guard c.type(k) == LUA_TSTRING, let t = c.tensorOrNil(v) else {
                throw c.fail("argument \(i) (state): expected tensors under string names, got \(c.describe(v)) under \(c.describe(k))")
            }
            state[try c.string(k, "name")] = t
        }
        return state
    }

    static func group(_ c: LuaCall, _ i: Int32, _ o: Optimizer) throws -> Int? {
        if c.isNoneOrNil(i) { return nil }
        let g = try c.integer(i, "group")
        guard g >= 1, g <= o.groups.count else {
            throw c.fail("argument \(i) (group): expected a group number in 1..\(o.groups.count), got \(g)")
        }
        return g - 1
    }

    /// A number that must be finite and non-negative (learning rates, weight decays).
    static func rate(_ c: LuaCall, _ v: Double, _ what: String) throws -> Double {
        guard v.isFinite, v >= 0 else { throw c.fail("\(what): expected a finite non-negative number, got \(formatNumber(v))") }
        return v
    }

    /// The schedule described by the table at i, as dbm.optim.constant, cosine and step_decay build it:
    /// {kind = "cosine", lr =, warmup = 0, total =, min_lr = 0}, {kind = "step_decay", lr =, every =,
    /// gamma = 0.1} or {kind = "constant", lr =}. Throws unless it is one, with its constants in range.
    static func schedule(_ c: LuaCall, _ i: Int32) throws -> LearningRateSchedule {
        guard c.type(i) == LUA_TTABLE, dbm_object_kind(c.L, i) == 0 else { throw c.argError(i, "schedule", expected: "a schedule table") }
        let kind = try c.optionString(i, "kind") ?? ""
        func number(_ key: String, _ def: Double? = nil) throws -> Double {
            guard let v = try c.optionNumber(i, key) ?? def else { throw c.fail("\(kind) schedule: expected a number '\(key)'") }
            return v
        }
        let s: LearningRateSchedule
        switch kind {
        case "constant":
            _ = try c.options(i, known: ["kind", "lr"])
            s = .constant(lr: try number("lr"))
        case "cosine":
            _ = try c.options(i, known: ["kind", "lr", "warmup", "total", "min_lr"])
            s = .cosine(lr: try number("lr"), warmup: try number("warmup", 0), total: try number("total"), minLR: try number("min_lr", 0))
        case "step_decay":
            _ = try c.options(i, known: ["kind", "lr", "every", "gamma"])
            s = .stepDecay(lr: try number("lr"), every: try number("every"), gamma: try number("gamma", 0.1))
        default:
            throw c.fail("schedule: expected kind \"constant\", \"cosine\" or \"step_decay\", got \"\(kind)\"")
        }
        try s.validate()   // (its messages start with the constant's name: not through nnOp, which drops it)
        return s
    }

    /// The value γ(t) of a schedule written in Lua, the function at i (nil when absent), for the update
    /// from the optimizer's step t: one call of the function, from here, where the update runs.
    static func luaSchedule(_ c: LuaCall, _ i: Int32, _ o: Optimizer) throws -> Double? {
        if c.isNoneOrNil(i) { return nil }
        guard c.type(i) == LUA_TFUNCTION else { throw c.argError(i, "schedule", expected: "a function of the step") }
        guard lua_checkstack(c.L, 2) != 0 else { throw c.fail("the schedule: out of stack space") }
        lua_pushvalue(c.L, i)
        lua_pushinteger(c.L, lua_Integer(o.stepCount))
        guard lua_pcallk(c.L, 1, 1, 0, 0, nil) == LUA_OK else {   // a Lua error stays in Lua (no longjmp here)
            throw c.fail("the schedule failed for step \(o.stepCount): \(c.popString() ?? "an error that is not a string")")
        }
        defer { dbm_pop(c.L, 1) }
        guard c.type(-1) == LUA_TNUMBER else {
            throw c.fail("the schedule returned \(c.describe(-1)) for step \(o.stepCount), expected a finite non-negative learning rate")
        }
        return dbm_tonumber(c.L, -1, nil)
    }

    static let optim: [Binding] = [
        fn("optim_new", "dbm.optim",
           "core: optim_new(algorithm, groups, constants) -> optimizer; algorithm \"sgd\" | \"adam\" | \"adamw\", groups an array of {params = {tensors}, lr =, weight_decay =}; constants: the algorithm's, lr (the base rate) and schedule (a schedule table)") { c in
            let name = try c.string(1, "algorithm")
            guard c.type(2) == LUA_TTABLE else { throw c.argError(2, "groups", expected: "an array of parameter groups") }
            let o = try c.options(3)
            let algorithm: Optimizer.Algorithm
            switch name {
            case "sgd":
                algorithm = .sgd(momentum: try c.optionNumber(o, "momentum") ?? 0, dampening: try c.optionNumber(o, "dampening") ?? 0,
                                 nesterov: try c.optionBool(o, "nesterov") ?? false)
            case "adam", "adamw":
                let betas = try c.option(o, "betas") { j -> (Double, Double) in
                    guard lua_type(c.L, j) == LUA_TTABLE, lua_rawlen(c.L, j) == 2 else {
                        throw c.fail("option 'betas': expected a pair {beta1, beta2}, got \(c.describe(j))")
                    }
                    var b: [Double] = []
                    for k in 1...2 {
                        lua_rawgeti(c.L, j, lua_Integer(k)); defer { dbm_pop(c.L, 1) }
                        guard lua_type(c.L, -1) == LUA_TNUMBER else { throw c.fail("option 'betas': entry \(k) is \(c.describe(-1)), expected a number") }
                        b.append(dbm_tonumber(c.L, -1, nil))
                    }
                    return (b[0], b[1])
                } ?? (0.9, 0.999)
                let eps = try c.optionNumber(o, "eps") ?? 1e-8
                algorithm = name == "adam" ? .adam(beta1: betas.0, beta2: betas.1, eps: eps) : .adamW(beta1: betas.0, beta2: betas.1, eps: eps)
            default: throw c.fail("argument 1 (algorithm): expected \"sgd\", \"adam\" or \"adamw\", got \"\(name)\"")
            }
            var groups: [Optimizer.ParamGroup] = []
            for k in 1...max(1, Int(lua_rawlen(c.L, 2))) where lua_rawlen(c.L, 2) > 0 {
                lua_rawgeti(c.L, 2, lua_Integer(k)); defer { dbm_pop(c.L, 1) }
                let g = c.top
                guard lua_type(c.L, g) == LUA_TTABLE else { throw c.fail("group \(k): expected a table {params = ..., lr = ...}, got \(c.describe(g))") }
                guard let params = try c.option(g, "params", { j -> [Tensor] in
                    guard lua_type(c.L, j) == LUA_TTABLE, dbm_object_kind(c.L, j) == 0 else {
                        throw c.fail("group \(k): 'params': expected an array of tensors, got \(c.describe(j))")
                    }
                    return try tensorArray(c, j, "params of group \(k)")
                }) else { throw c.fail("group \(k): expected a field 'params' (an array of tensors)") }
                guard let lr = try c.optionNumber(g, "lr") else { throw c.fail("group \(k): expected a learning rate 'lr'") }
                groups.append(.init(params: params, lr: try rate(c, lr, "group \(k): learning rate"),
                                    weightDecay: try rate(c, try c.optionNumber(g, "weight_decay") ?? 0, "group \(k): weight decay")))
            }
            guard !groups.isEmpty, groups.contains(where: { !$0.params.isEmpty }) else {
                throw c.fail("expected at least one parameter to optimize, got none")
            }
            let base = try c.optionNumber(o, "lr").map { try rate(c, $0, "option 'lr'") }
            let sched = try c.option(o, "schedule") { j in try schedule(c, j) }
            try c.push(object: try nnOp { try Optimizer(groups: groups, algorithm: algorithm, schedule: sched, baseLR: base) },
                       kind: Int32(DBM_KIND_OPTIMIZER))
            return 1
        },
        fn("optim_step", "Optimizer:step",
           "core: optim_step(opt [, schedule_fn]): update every parameter that has a gradient, at the scheduled rates") { c in
            let o = try optimizer(c)
            let scheduled = try luaSchedule(c, 2, o)
            try nnOp { try o.step(scheduled: scheduled) }
            return 0
        },
        fn("optim_zero_grad", "Optimizer:zero_grad",
           "opt:zero_grad([{set_to_none=false}]): zero the gradients of the optimizer's parameters in place (keeping the buffers), or drop them") { c in
            let o = try optimizer(c)
            o.zeroGrad(setToNil: try c.optionBool(try c.options(2, known: ["set_to_none"]), "set_to_none") ?? false); return 0
        },
        fn("optim_set_lr", "Optimizer:set_lr", "opt:set_lr(lr [, group]): the own learning rate of one group, or of all (a schedule scales it)") { c in
            let o = try optimizer(c)
            let lr = try rate(c, try c.number(2, "lr"), "argument 2 (lr)")
            try nnOp { try o.setLearningRate(lr, group: try group(c, 3, o)) }
            return 0
        },
        fn("optim_lr", "Optimizer:lr",
           "opt:lr([group=1]) -> the group's rate for the next update (its own rate × schedule / base rate)") { c in
            let o = try optimizer(c)
            let g = try group(c, 2, o) ?? 0
            let scheduled = try luaSchedule(c, 3, o)
            c.push(try nnOp { try o.learningRates(scheduled: scheduled) }[g]); return 1
        },
        fn("optim_group_lr", "Optimizer:group_lr", "opt:group_lr([group=1]) -> the group's own learning rate (what set_lr set; a schedule scales it)") { c in
            let o = try optimizer(c)
            c.push(o.groups[try group(c, 2, o) ?? 0].lr); return 1
        },
        fn("optim_schedule_check", "dbm.optim.schedule", "core: optim_schedule_check(schedule): raises unless the schedule table is one") { c in
            _ = try schedule(c, 1); return 0
        },
        fn("optim_schedule_rate", "schedule(step)", "core: optim_schedule_rate(schedule, step) -> the schedule's rate for the update from step") { c in
            let s = try schedule(c, 1)
            let step = try c.integer(2, "step")
            guard step >= 0 else { throw c.fail("argument 2 (step): expected a step count >= 0, got \(step)") }
            c.push(s.rate(at: step)); return 1
        },
        fn("optim_group_count", "Optimizer:group_count", "opt:group_count() -> the number of parameter groups") { c in
            c.push(try optimizer(c).groups.count); return 1
        },
        fn("optim_step_count", "Optimizer:step_count", "opt:step_count() -> the number of steps taken") { c in
            c.push(try optimizer(c).stepCount); return 1
        },
        fn("optim_set_step_count", "Optimizer:set_step_count", "opt:set_step_count(n): continue as after n steps (when resuming)") { c in
            let o = try optimizer(c)
            let n = try c.integer(2, "n")
            try nnOp { try o.setStepCount(n) }
            return 0
        },
        fn("optim_parameters", "Optimizer:parameters", "opt:parameters() -> array of the parameters, group by group") { c in
            let ps = try optimizer(c).parameters
            try c.newTable(narr: ps.count)
            for (k, p) in ps.enumerated() { try c.push(p); try c.setIndex(-2, k + 1) }
            return 1
        },
        fn("optim_state", "Optimizer:state", "opt:state(p) -> table name -> tensor of p's state (momentum_buffer, or exp_avg and exp_avg_sq; empty before p's first step)") { c in
            let o = try optimizer(c), p = try c.tensor(2, "parameter")
            let st = o.state(of: p)
            try c.newTable(nrec: st.count)
            for (name, t) in st { try c.push(t); try c.setField(-2, name) }
            return 1
        },
        fn("optim_load_state", "Optimizer:load_state", "opt:load_state(p, {name = tensor}): replace p's state by copies") { c in
            let o = try optimizer(c), p = try c.tensor(2, "parameter")
            let state = try stateTable(c, 3)
            try nnOp { try o.loadState(of: p, state) }
            return 0
        },
        fn("optim_check_state", "Optimizer:check_state", "opt:check_state(p, {name = tensor}): the error load_state would raise, changing nothing") { c in
            let o = try optimizer(c), p = try c.tensor(2, "parameter")
            let state = try stateTable(c, 3)
            try nnOp { try o.checkState(of: p, state) }
            return 0
        },
        fn("clip_grad_norm", "dbm.optim.clip_grad_norm",
           "dbm.optim.clip_grad_norm(params, max_norm) -> the global 2-norm of the gradients before clipping; scales them by max_norm/(norm + 1e-6) when that is below 1 (PyTorch's clip_grad_norm_)") { c in
            guard c.type(1) == LUA_TTABLE, dbm_object_kind(c.L, 1) == 0 else { throw c.argError(1, "params", expected: "an array of tensors") }
            let ps = try tensorArray(c, 1, "params")
            let m = try c.number(2, "max_norm")
            c.push(try nnOp { try NN.clipGradNorm(ps, maxNorm: m) }); return 1
        },
    ]
}
