import CLua
import CLua54
import DBMCore
import DBMNN
import Foundation

/// The differentiable core (DBMNN) as Lua sees it: gradients (`t.grad`, `t:backward()`, `dbm.parameter`,
/// `dbm.no_grad`) and the functional ops `dbm.F.*` that the Lua `nn` modules are written with.
/// Ids and targets are 1-based here, as every index in Lua; DBMNN takes them 0-based.
/// The plain tensor operators (+, -, *, matmul, sum, reshape, ...) record themselves on the tape when an
/// operand requires a gradient: see `Bindings.tracked`.
extension Bindings {
    /// Whether an op on these operands goes through DBMNN (and is recorded): grad mode is on and one of
    /// them requires a gradient.
    static func tracked(_ tensors: Tensor?...) -> Bool {
        NN.isGradEnabled && tensors.contains { $0?.requiresGrad == true }
    }

    /// The error of an operator that has no derivative here, given a tensor on the tape.
    static func notDifferentiable(_ c: LuaCall, _ i: Int32) -> LuaFailure {
        c.fail("argument \(i): expected a tensor without gradient tracking (this operation has no derivative here), "
            + "got \(c.describe(i)) that requires grad; use t:detach(), or compute it inside dbm.no_grad(function() ... end)")
    }

    /// DBMNN's messages start with the op's own name ("linear: expected ..."); the binding's Lua name
    /// replaces it.
    static func nnOp<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as DBMError {
            let m = e.message
            if let colon = m.range(of: ": "), !m[..<colon.lowerBound].contains(" ") {
                throw LuaFailure(message: String(m[colon.upperBound...]))
            }
            throw LuaFailure(message: m)
        }
    }

    /// 1-based integer ids (a tensor of integral values, or a (nested) table of integers) as 0-based Int32,
    /// each checked to lie in 1...bound; also their shape.
    static func ids(_ c: LuaCall, _ i: Int32, _ what: String, below bound: Int) throws -> (ids: [Int32], shape: [Int]) {
        var values: [Double] = []
        let shape: [Int]
        if let t = c.tensorOrNil(i) { values = t.toDoubles(); shape = t.shape }
        else if c.type(i) == LUA_TTABLE && dbm_object_kind(c.L, i) == 0 { shape = try readNested(c, i, depth: 0, values: &values) }
        else { throw c.argError(i, what, expected: "a tensor or a table of integer \(what)") }
        var out = [Int32](repeating: 0, count: values.count)
        for (k, v) in values.enumerated() {
            guard v == v.rounded(), v >= 1, v <= Double(bound) else {
                throw c.fail("argument \(i) (\(what)): expected integers in 1..\(bound), got \(formatNumber(v)) at position \(k + 1)")
            }
            out[k] = Int32(v) - 1
        }
        return (out, shape)
    }

    /// a op b on the tape (a or b requires grad): + − * / and ^ (a constant exponent) through DBMNN;
    /// numbers become constants. maximum, minimum and a tensor exponent have no derivative here: an error.
    static func differentiable(_ c: LuaCall, _ op: BinaryOp, _ a: Tensor?, _ b: Tensor?) throws -> Tensor {
        func constant(_ v: Double, like t: Tensor) throws -> Tensor { try Tensor.full([], v, dtype: t.dtype) }
        return try nnOp {
            switch (op, a, b) {
            case (.add, let x?, let y?): return try NN.add(x, y)
            case (.sub, let x?, let y?): return try NN.sub(x, y)
            case (.mul, let x?, let y?): return try NN.mul(x, y)
            case (.div, let x?, let y?): return try NN.div(x, y)
            case (.add, let x?, nil): return try NN.add(x, try constant(try c.number(2, "b"), like: x))
            case (.sub, let x?, nil): return try NN.add(x, try constant(-(try c.number(2, "b")), like: x))
            case (.mul, let x?, nil): return try NN.scale(x, try c.number(2, "b"))
            case (.div, let x?, nil): return try NN.scale(x, 1 / (try c.number(2, "b")))
            case (.pow, let x?, nil):
                let p = try c.number(2, "b")
                return p == 2 ? try NN.mul(x, x) : try NN.pow(x, p)
            case (.add, nil, let y?): return try NN.add(try constant(try c.number(1, "a"), like: y), y)
            case (.sub, nil, let y?): return try NN.sub(try constant(try c.number(1, "a"), like: y), y)
            case (.mul, nil, let y?): return try NN.scale(y, try c.number(1, "a"))
            case (.div, nil, let y?): return try NN.scale(try NN.pow(y, -1), try c.number(1, "a"))
            default: throw notDifferentiable(c, a?.requiresGrad == true ? 1 : 2)
            }
        }
    }

    /// op(t) on the tape: −, square, exp, log, sqrt, abs, tanh, sigmoid, relu through DBMNN; sign (whose
    /// derivative is zero almost everywhere) is an error rather than a silent constant.
    static func differentiable(_ c: LuaCall, _ op: UnaryOp, _ t: Tensor) throws -> Tensor {
        try nnOp {
            switch op {
            case .neg: return try NN.scale(t, -1)
            case .square: return try NN.mul(t, t)
            case .exp: return try NN.exp(t)
            case .log: return try NN.log(t)
            case .sqrt: return try NN.sqrt(t)
            case .abs: return try NN.abs(t)
            case .tanh: return try NN.tanh(t)
            case .sigmoid: return try NN.sigmoid(t)
            case .relu: return try NN.relu(t)
            default: throw notDifferentiable(c, 1)
            }
        }
    }

    /// Slice i along dimension d, that dimension removed (a view; recorded as narrow + reshape on the tape).
    static func selected(_ t: Tensor, _ d: Int, _ i: Int) throws -> Tensor {
        guard tracked(t) else { return try t.select(d, i) }
        var shape = t.shape
        shape.remove(at: d)
        return try nnOp { try NN.reshape(try NN.narrow(t, dim: d, start: i, length: 1), shape) }
    }

    static let autograd: [Binding] = [
        fn("parameter", "dbm.parameter",
           "dbm.parameter(t [, requires_grad=true]) -> t, marked as a leaf whose gradient backward() computes (t.grad)") { c in
            let t = try c.tensor(1)
            let on = c.isNoneOrNil(2) ? true : c.boolean(2)
            guard t.isLeaf else {
                throw c.fail("argument 1: expected a leaf tensor (not computed by a recorded op), got one computed by '\((t.gradFn as? GradNode)?.op ?? "?")'; use t:detach()")
            }
            t.requiresGrad = on
            if !on { t.grad = nil }
            lua_settop(c.L, 1); return 1
        },
        fn("requires_grad", "Tensor.requires_grad", "t.requires_grad -> whether backward() computes a gradient for t or through it") { c in
            c.push(try c.tensor(1).requiresGrad); return 1
        },
        fn("is_leaf", "Tensor.is_leaf", "t.is_leaf -> true unless t was computed by a recorded op") { c in
            c.push(try c.tensor(1).isLeaf); return 1
        },
        fn("grad_fn", "Tensor.grad_fn", "t.grad_fn -> the name of the recorded op that computed t (nil for a leaf)") { c in
            let t = try c.tensor(1)
            if let node = t.gradFn as? GradNode { try c.push(node.op) } else { c.pushNil() }
            return 1
        },
        fn("grad", "Tensor.grad", "t.grad -> the gradient accumulated by backward() (nil before the first)") { c in
            if let g = try c.tensor(1).grad { try c.push(g) } else { c.pushNil() }
            return 1
        },
        fn("set_grad", "Tensor.grad=", "t.grad = g | nil: set or drop the gradient (g of t's shape; copied to t's dtype)") { c in
            let t = try c.tensor(1)
            if c.isNoneOrNil(2) { t.grad = nil; return 0 }
            let g = try c.tensor(2, "gradient")
            guard g.shape == t.shape else {
                throw c.fail("argument 2 (gradient): expected the tensor's shape \(formatShape(t.shape)), got \(formatShape(g.shape))")
            }
            t.grad = try g.copy(dtype: t.dtype)
            return 0
        },
        fn("backward", "Tensor:backward",
           "t:backward([gradient] [, {retain_graph=false}]): accumulate d t/d p into p.grad of every parameter p that t depends on; "
           + "t must be a scalar unless gradient (of t's shape) is given; frees the graph unless retain_graph") { c in
            let t = try c.tensor(1)
            let gradient = c.tensorOrNil(2)
            if gradient == nil && !c.isNoneOrNil(2) && !(c.type(2) == LUA_TTABLE && dbm_object_kind(c.L, 2) == 0) {
                throw c.argError(2, "gradient", expected: "a tensor of the tensor's shape or an options table")
            }
            let o = try c.options(gradient == nil ? 2 : 3, known: ["retain_graph"])
            let retain = try c.optionBool(o, "retain_graph") ?? false
            do { try NN.backward(t, gradient: gradient, retainGraph: retain) } catch let e as DBMError {
                // DBMNN's messages name its Swift arguments; say what a script passes instead.
                throw c.fail(e.message.replacingOccurrences(of: "pass retainGraph: true to", with: "pass {retain_graph = true} to")
                    .replacingOccurrences(of: "pass gradient: for", with: "pass a gradient tensor for")
                    .replacingOccurrences(of: "backward without a gradient: ", with: "")
                    .replacingOccurrences(of: "backward: ", with: ""))
            }
            return 0
        },
        fn("zero_grad", "dbm.zero_grad",
           "dbm.zero_grad(t | {tensors} [, {set_to_none=false}]) or t:zero_grad(): zero the gradients in place (or drop them)") { c in
            var list: [Tensor] = []
            if let t = c.tensorOrNil(1) { list = [t] }
            else if c.type(1) == LUA_TTABLE && dbm_object_kind(c.L, 1) == 0 { list = try tensorArray(c, 1, "tensors") }
            else { throw c.argError(1, "tensors", expected: "a tensor or a table of tensors") }
            let toNone = try c.optionBool(try c.options(2, known: ["set_to_none"]), "set_to_none") ?? false
            NN.zeroGrad(list, setToNil: toNone)
            return 0
        },
        fn("detach", "Tensor:detach", "t:detach() -> the same elements (shared memory) without gradient tracking") { c in
            try c.push(try c.tensor(1).detached()); return 1
        },
        fn("set_grad_enabled", "dbm.set_grad_enabled",
           "dbm.set_grad_enabled(on) -> the previous setting: whether ops on tensors that require grad are recorded") { c in
            guard c.type(1) == LUA_TBOOLEAN else { throw c.argError(1, "on", expected: "true or false") }
            let previous = NN.isGradEnabled
            NN.isGradEnabled = c.boolean(1)
            c.push(previous); return 1
        },
        fn("_watch_interrupts", "dbm._watch_interrupts", "dbm._watch_interrupts(co): Ctrl-C interrupts the coroutine co too") { c in
            guard c.type(1) == LUA_TTHREAD, let co = lua_tothread(c.L, 1) else { throw c.argError(1, "co", expected: "a coroutine") }
            dbm_watch_interrupts(co); return 0
        },
        fn("_interrupted", "dbm._interrupted", "dbm._interrupted() -> the message of the Ctrl-C raised in the running chunk, or nil") { c in
            if let m = dbm_interrupt_raised() { try c.push(String(cString: m)) } else { c.pushNil() }
            return 1
        },
        fn("is_grad_enabled", "dbm.is_grad_enabled", "dbm.is_grad_enabled() -> whether ops are recorded for backward()") { c in
            c.push(NN.isGradEnabled); return 1
        },
        fn("release_cached_memory", "dbm.release_cached_memory",
           "dbm.release_cached_memory() -> bytes returned to the system from the ops' memory cache (memory no tensor uses)") { c in
            c.push(NN.releaseCachedMemory()); return 1
        },
    ]

    /// The tensors of a Lua array at i.
    static func tensorArray(_ c: LuaCall, _ i: Int32, _ what: String) throws -> [Tensor] {
        var list: [Tensor] = []
        let n = Int(lua_rawlen(c.L, i))
        for k in 0..<n {
            lua_rawgeti(c.L, i, lua_Integer(k + 1))
            defer { dbm_pop(c.L, 1) }
            guard let t = c.tensorOrNil(-1) else {
                throw c.fail("argument \(i) (\(what)): expected tensors, entry \(k + 1) is \(c.describe(-1))")
            }
            list.append(t)
        }
        return list
    }

    // ------------------------------------------------------------------ dbm.F: the functional ops

    static let functional: [Binding] = [
        fn("F_linear", "dbm.F.linear", "dbm.F.linear(x, weight [, bias]) -> x·weightᵀ + bias; x is (..., in), weight (out, in), bias (out)") { c in
            let x = try c.tensor(1, "x"), w = try c.tensor(2, "weight")
            let b = c.isNoneOrNil(3) ? nil : try c.tensor(3, "bias")
            try c.push(try nnOp { try NN.linear(x, weight: w, bias: b) }); return 1
        },
        fn("F_embedding", "dbm.F.embedding",
           "dbm.F.embedding(ids, weight) -> rows of weight (V, C) at the 1-based ids (a tensor or table, any shape): ids.shape + (C)") { c in
            let w = try c.tensor(2, "weight")
            guard w.rank == 2 else { throw c.fail("argument 2 (weight): expected shape (V, C), got \(formatShape(w.shape))") }
            let (ids, shape) = try ids(c, 1, "ids", below: w.shape[0])
            try c.push(try nnOp { try NN.embedding(ids: ids, shape: shape, weight: w) }); return 1
        },
        fn("F_layer_norm", "dbm.F.layer_norm",
           "dbm.F.layer_norm(x, weight [, bias] [, {eps=1e-5}]) -> (x − mean)/√(var + eps)·weight + bias over the last dimension") { c in
            let x = try c.tensor(1, "x"), w = try c.tensor(2, "weight")
            let b = c.tensorOrNil(3)
            if b == nil && !c.isNoneOrNil(3) && !(c.type(3) == LUA_TTABLE && dbm_object_kind(c.L, 3) == 0) {
                throw c.argError(3, "bias", expected: "a tensor, nil or an options table")
            }
            let o = try c.options(b == nil && c.type(3) == LUA_TTABLE ? 3 : 4, known: ["eps"])
            let eps = try c.optionNumber(o, "eps") ?? 1e-5
            guard eps.isFinite, eps >= 0 else { throw c.fail("option 'eps': expected a finite non-negative number, got \(eps)") }
            try c.push(try nnOp { try NN.layerNorm(x, weight: w, bias: b, eps: eps) }); return 1
        },
        fn("F_gelu", "dbm.F.gelu", "dbm.F.gelu(x [, {approximate=\"none\" | \"tanh\"}]) -> x·Φ(x) (exact erf form), or its tanh approximation") { c in
            let x = try c.tensor(1, "x")
            let s = try c.optionString(try c.options(2, known: ["approximate"]), "approximate") ?? "none"
            guard let form = GELUForm(rawValue: s) else { throw c.fail("option 'approximate': expected \"none\" or \"tanh\", got \"\(s)\"") }
            try c.push(try nnOp { try NN.gelu(x, form: form) }); return 1
        },
        fn("F_softmax", "dbm.F.softmax", "dbm.F.softmax(x) -> softmax over the last dimension") { c in
            let x = try c.tensor(1, "x")
            try c.push(try nnOp { try NN.softmax(x) }); return 1
        },
        fn("F_dropout", "dbm.F.dropout",
           "dbm.F.dropout(x, p [, {training=true, generator=}]) -> x with elements zeroed with probability p, the rest scaled by 1/(1−p); x itself when not training or p = 0") { c in
            let x = try c.tensor(1, "x")
            let p = try c.number(2, "p")
            guard p >= 0, p < 1 else { throw c.fail("argument 2 (p): expected a probability in [0, 1), got \(formatNumber(p))") }
            let o = try c.options(3, known: ["training", "generator"])
            let training = try c.optionBool(o, "training") ?? true
            if !training || p == 0 { lua_settop(c.L, 1); return 1 }
            let g = try generatorOption(c, o)
            try c.push(try nnOp { try NN.dropout(x, p: p, generator: g) }); return 1
        },
        fn("F_causal_attention", "dbm.F.causal_attention",
           "dbm.F.causal_attention(qkv, heads [, {dropout=0, generator=}]) -> causal multi-head self-attention, fused: qkv (B, T, 3C) as c_attn's output, result (B, T, C)") { c in
            let qkv = try c.tensor(1, "qkv")
            let heads = try c.integer(2, "heads")
            let o = try c.options(3, known: ["dropout", "generator"])
            let p = try c.optionNumber(o, "dropout") ?? 0
            guard p >= 0, p < 1 else { throw c.fail("option 'dropout': expected a probability in [0, 1), got \(formatNumber(p))") }
            let g = p > 0 ? try generatorOption(c, o) : nil
            try c.push(try nnOp { try NN.causalSelfAttention(qkv, heads: heads, dropout: p, generator: g) }); return 1
        },
        fn("F_cross_entropy", "dbm.F.cross_entropy",
           "dbm.F.cross_entropy(logits, targets) -> mean of −log softmax(logits)[target] over the rows of logits (..., V); targets 1-based, one per row") { c in
            let logits = try c.tensor(1, "logits")
            guard logits.rank >= 1, let V = logits.shape.last, V > 0 else {
                throw c.fail("argument 1 (logits): expected shape (..., V) with V ≥ 1, got \(formatShape(logits.shape))")
            }
            let (targets, _) = try ids(c, 2, "targets", below: V)
            guard targets.count == logits.count / V else {
                throw c.fail("argument 2 (targets): expected \(logits.count / V) targets (one per row of logits \(formatShape(logits.shape))), got \(targets.count)")
            }
            try c.push(try nnOp { try NN.crossEntropy(logits, targets: targets) }); return 1
        },
    ]
}
