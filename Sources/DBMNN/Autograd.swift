import DBMCore
import Foundation

// Reverse-mode automatic differentiation: the tape.
//
// Every differentiable op (NN.linear, NN.layerNorm, ...) computes its output with a forward kernel and,
// when grad mode is on and one of its inputs requires a gradient, hangs a GradNode on the output
// (`output.gradFn`). The node holds one edge per input (to the node that produced it, to the leaf
// itself, or nothing) and a backward closure that maps the output's gradient to the inputs' gradients,
// using what the forward pass saved (layer norm's mean and rstd, the attention probabilities, ...).
// `NN.backward(loss)` orders the nodes reachable from the loss topologically, runs their closures from
// the loss down, accumulates into `.grad` of the leaves (tensors with requiresGrad and no gradFn, i.e.
// parameters), and frees the graph: the closures and what they saved are released, so a second backward
// through the same graph is an error.
//
// Ownership: a node holds the nodes of its inputs, not the input tensors, so an activation stays alive
// only if some backward closure saved it (a residual add saves nothing; GELU saves its derivative, not
// its input). A node never holds its output (the output holds the node); a closure that needs the
// output (softmax, sigmoid) captures `NN.saved(output)`, an alias without autograd state.
// Backward closures read their output gradient and never write to it: a gradient may be shared
// (add passes it on to both inputs, reshape passes a view of it).

/// Where an input's gradient goes: the node that produced the input, the input itself when it is a
/// leaf that requires a gradient, or nowhere.
enum GradEdge {
    case none
    case leaf(Tensor)
    case node(GradNode)

    init(_ t: Tensor) {
        if !t.requiresGrad { self = .none }
        else if let n = t.gradFn as? GradNode { self = .node(n) }
        else { self = .leaf(t) }
    }

    var node: GradNode? { if case .node(let n) = self { return n }; return nil }
}

/// One recorded op: where its inputs' gradients go and how the output's gradient maps to theirs.
public final class GradNode: CustomStringConvertible {
    /// The op's name, for messages ("linear", "layer_norm", ...).
    public let op: String
    /// True after a backward pass ran through this node without retainGraph.
    public private(set) var isFreed = false
    /// The number of inputs (gradients the backward closure returns).
    public let inputCount: Int
    fileprivate private(set) var edges: [GradEdge]
    private let inputShapes: [[Int]]
    private let inputDTypes: [DType]
    private var backwardFn: ((Tensor) throws -> [Tensor?])?
    /// Recomputes the op's output from what its backward saves, when that is cheap (layer norm, GELU):
    /// a consumer that would save the output for its own backward (a linear layer) keeps this instead,
    /// and the output's memory is released with the tensor. See `NN.savedInput`.
    let recompute: (() throws -> Tensor)?
    // The output's gradient, summed over its uses, while a backward pass runs.
    fileprivate var pendingGrad: Tensor? = nil
    fileprivate var pendingOwned = false   // pendingGrad is a sum this pass made (may be updated in place)

    /// The storages the backward reads (the inputs it saved, or its own output) and their versions then.
    private let savedVersions: [(storage: Storage, version: Int)]
    /// The version of the output's storage when the op computed it. A write into the output that bypasses
    /// the tape (through a view or t:detach() taken without gradient tracking: the storage is shared, so
    /// the version moves) makes its values something this node's gradient does not describe.
    let outputVersion: Int
    /// The op whose result had been changed in place that way when this op used it, if any: the gradient
    /// through this node would be wrong, so a backward that reaches it raises (checkSavedVersions).
    private let changedInput: String?

    init(op: String, output: Tensor, inputs: [Tensor], reads: [Tensor], recompute: (() throws -> Tensor)? = nil,
         backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.op = op
        savedVersions = reads.map { ($0.storage, $0.storage.version) }
        outputVersion = output.storage.version
        changedInput = inputs.lazy.compactMap { t -> String? in
            guard let producer = t.gradFn as? GradNode, producer.outputVersion != t.storage.version else { return nil }
            return producer.op
        }.first
        self.recompute = recompute
        inputCount = inputs.count
        edges = inputs.map(GradEdge.init)
        inputShapes = inputs.map(\.shape); inputDTypes = inputs.map(\.dtype)
        backwardFn = backward
    }

    public var description: String { "GradNode(\(op)\(isFreed ? ", freed" : ""))" }

    /// Throws when a tensor this op's backward reads was changed in place after the op recorded itself,
    /// or when an input on the tape had been changed in place before the op used it.
    func checkSavedVersions() throws {
        if let producer = changedInput {
            throw DBMError("backward: the result of '\(producer)' was changed in place before '\(op)' used it (written "
                + "through a view or t:detach() taken off the gradient tape), so the gradient would be wrong: change a "
                + "copy (t:clone()), or compute it again after the change")
        }
        for (storage, version) in savedVersions where storage.version != version {
            throw DBMError("backward: a tensor that '\(op)' saved for its gradient was changed in place after it was used "
                + "(its version went from \(version) to \(storage.version)), so the gradient would be wrong: compute the "
                + "result again after the change, or change a copy (t:clone())")
        }
    }

    // A graph dropped without a backward pass is released iteratively: releasing a long chain of nodes
    // recursively (node → producer node → ...) would exhaust the stack.
    deinit {
        backwardFn = nil
        var stack = edges.compactMap(\.node)
        edges = []
        while var n = stack.popLast() {
            guard isKnownUniquelyReferenced(&n) else { continue }
            n.backwardFn = nil
            stack.append(contentsOf: n.edges.compactMap(\.node))
            n.edges = []
        }
    }

    fileprivate func runBackward(_ gradOutput: Tensor) throws -> [Tensor?] {
        guard let f = backwardFn else { throw NN.freedGraphError(op) }
        let grads = try f(gradOutput)
        guard grads.count == inputCount else {
            throw DBMError("internal: backward of '\(op)' returned \(grads.count) gradients for \(inputCount) inputs")
        }
        for (i, g) in grads.enumerated() {
            if let g, g.shape != inputShapes[i] || g.dtype != inputDTypes[i] {
                throw DBMError("internal: backward of '\(op)' returned a gradient of shape \(formatShape(g.shape)) "
                    + "\(g.dtype) for an input of shape \(formatShape(inputShapes[i])) \(inputDTypes[i])")
            }
        }
        return grads
    }

    fileprivate func free() {
        backwardFn = nil; edges = []; isFreed = true
        pendingGrad = nil; pendingOwned = false
    }

    fileprivate func accumulate(_ g: Tensor) throws {
        guard let have = pendingGrad else { pendingGrad = g; pendingOwned = false; return }
        if pendingOwned { try addInPlace(have, g) }
        else { pendingGrad = try sumOf(have, g); pendingOwned = true }
    }
}

extension NN {
    // ------------------------------------------------------------------ grad mode

    /// Whether ops record themselves on the tape: on by default, per thread (as PyTorch's grad mode), so
    /// evaluation on one thread never switches recording off for another. The one piece of global autograd
    /// state: a pthread key whose per-thread value is nil (enabled) or non-nil (disabled).
    private static let gradDisabledKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    public static var isGradEnabled: Bool {
        get { pthread_getspecific(gradDisabledKey) == nil }
        set { pthread_setspecific(gradDisabledKey, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }

    /// Runs body with recording off on this thread (evaluation: no graph, nothing saved for backward),
    /// then restores the previous mode, also when body throws.
    public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
        let previous = isGradEnabled
        isGradEnabled = false
        defer { isGradEnabled = previous }
        return try body()
    }

    // ------------------------------------------------------------------ recording

    /// Hangs a node for `op` on output when grad mode is on and an input requires a gradient; returns
    /// output. `backward(gradOutput, needs)` returns one gradient per input (nil where `needs` is false
    /// or the gradient is zero), each of the input's shape and dtype. The closure must capture every
    /// tensor whose memory it reads (the node does not keep the inputs alive, and the op cache hands
    /// freed memory out again: a pointer taken in forward is not enough), and must not capture `output`
    /// itself (a reference cycle): capture `NN.saved(output)`.
    /// `recompute`, when given, rebuilds output (equal bit for bit) from what backward captured; see
    /// `savedInput`.
    @discardableResult
    /// `reads`: the tensors whose values the backward reads (its saved inputs, by default all of them, or
    /// its own output), checked for in-place changes before a backward runs.
    static func record(_ op: String, output: Tensor, inputs: [Tensor], reads: [Tensor]? = nil,
                       recompute: (() throws -> Tensor)? = nil,
                       backward: @escaping (_ gradOutput: Tensor, _ needs: [Bool]) throws -> [Tensor?]) -> Tensor {
        guard willRecord(inputs) else { return output }
        let needs = inputs.map { $0.requiresGrad }
        output.requiresGrad = true
        output.gradFn = GradNode(op: op, output: output, inputs: inputs, reads: reads ?? inputs, recompute: recompute) { g in
            try backward(g, needs)
        }
        return output
    }

    /// Activations (layer norm, GELU outputs) of at least this many bytes are recomputed in backward rather
    /// than saved. Small ones stay in cache, where recomputing them is pure cost: the nano-GPT `cpu`
    /// preset's GELUs (1.5 MB each) took 10% of its step so (perf), against 3% saved; the `paper` preset's
    /// are 25 MB (layer norm) and 100 MB (GELU).
    static let recomputeMinimumBytes = 16 << 20

    /// What a backward closure keeps of an op's input x (read through `inp`, x made contiguous): x's
    /// producer's recipe when x is that producer's output as it was returned (layer norm, GELU), else inp.
    /// The recipe keeps nothing the producer's own backward does not keep anyway, so the activation itself
    /// is freed after forward (nano-GPT `paper` preset: the outputs of the layer norms and GELUs, 150 MB
    /// per layer of the 2.8 GB peak); the consumer's backward pays one more pass of the producer's forward.
    /// `reads` is what the consumer's node must check for in-place changes: inp when it is kept, nothing
    /// with the recipe (which checks its producer's saved tensors when it runs). Listing x there would keep
    /// its memory alive through the version check and undo the saving (paper preset: 2.1 → 3.0 GB peak).
    static func savedInput(_ x: Tensor, _ inp: Tensor) -> (value: () throws -> Tensor, reads: [Tensor]) {
        if inp === x, let producer = x.gradFn as? GradNode, let recompute = producer.recompute {
            return ({ try producer.checkSavedVersions(); return try recompute() }, [])
        }
        return ({ inp }, [inp])
    }

    /// Whether an op on these inputs is recorded (so that forward can skip what only backward needs).
    static func willRecord(_ inputs: [Tensor]) -> Bool {
        isGradEnabled && inputs.contains { $0.requiresGrad }
    }

    /// The gradient buffer a backward closure may accumulate into directly (beta = 1 in a product, no
    /// temporary, no separate sum): that of a leaf whose .grad already exists, contiguous, of its shape
    /// and dtype. nil otherwise: the closure returns the gradient and the engine sums it.
    static func leafGradBuffer(_ t: Tensor) -> Tensor? {
        guard t.requiresGrad, t.gradFn == nil, let g = t.grad, g.isContiguous, g.shape == t.shape, g.dtype == t.dtype
        else { return nil }
        return g
    }

    /// An alias of t (same storage, shape, strides) with no autograd state, for a backward closure to
    /// keep what forward computed without keeping the graph's output object (and so its node) alive.
    public static func saved(_ t: Tensor) -> Tensor {
        Tensor(storage: t.storage, dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset)
    }

    static func freedGraphError(_ op: String) -> DBMError {
        DBMError("backward through a freed graph: expected a graph not yet differentiated (run the forward pass "
            + "again, or pass retainGraph: true to the first backward), got a second backward through '\(op)', "
            + "whose saved tensors the first backward released")
    }

    // ------------------------------------------------------------------ backward

    /// Accumulates d(root)/d(leaf) · gradient into `.grad` of every leaf the root depends on, then frees
    /// the graph unless retainGraph. Without gradient, root must hold one element (a loss; the seed is 1).
    public static func backward(_ root: Tensor, gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard root.requiresGrad else {
            throw DBMError("backward: expected a tensor that requires grad (computed with grad mode on from tensors "
                + "with requiresGrad), got one of shape \(formatShape(root.shape)) without a graph")
        }
        let (seed, seedOwned) = try seedGradient(root, gradient)
        guard let rootNode = root.gradFn as? GradNode else {   // a leaf: its gradient is the seed
            try accumulateLeaf(root, seed)
            return
        }
        let order = try checkedPostOrder(from: rootNode, output: root)
        rootNode.pendingGrad = seed
        rootNode.pendingOwned = seedOwned
        defer { for node in order { node.pendingGrad = nil; node.pendingOwned = false } }
        try propagate(through: order, retainGraph: retainGraph)
    }

    /// The gradient backward starts from: the caller's (a contiguous copy in root's dtype when it is not
    /// one already; not owned, so never written in place), or an owned 1 for a scalar root.
    private static func seedGradient(_ root: Tensor, _ gradient: Tensor?) throws -> (seed: Tensor, owned: Bool) {
        if let g = gradient {
            guard g.shape == root.shape else {
                throw DBMError("backward: expected a gradient of the tensor's shape \(formatShape(root.shape)), "
                    + "got \(formatShape(g.shape))")
            }
            return (try g.contiguous().converted(to: root.dtype), false)
        }
        guard root.count == 1 else {
            throw DBMError("backward without a gradient: expected a scalar (one element, such as a loss), got "
                + "shape \(formatShape(root.shape)); pass gradient: for a non-scalar")
        }
        return (try Tensor.full(root.shape, 1, dtype: root.dtype), true)
    }

    /// The nodes reachable from rootNode in post order (every node after the nodes it consumes), by an
    /// iterative depth-first walk (a long graph must not exhaust the stack). Every node is checked before
    /// anything runs, so a freed graph fails without touching any .grad.
    private static func checkedPostOrder(from rootNode: GradNode, output root: Tensor) throws -> [GradNode] {
        var order: [GradNode] = []
        var visited: Set<ObjectIdentifier> = [ObjectIdentifier(rootNode)]
        if rootNode.isFreed { throw freedGraphError(rootNode.op) }
        if root.storage.version != rootNode.outputVersion {
            throw DBMError("backward: the result of '\(rootNode.op)' was changed in place after it was computed (written "
                + "through a view or t:detach() taken off the gradient tape), so its gradient would be wrong: change a "
                + "copy (t:clone()), or compute it again after the change")
        }
        try rootNode.checkSavedVersions()
        var stack: [(node: GradNode, next: Int)] = [(rootNode, 0)]
        while !stack.isEmpty {
            let (node, next) = stack[stack.count - 1]
            if next < node.edges.count {
                stack[stack.count - 1].next += 1
                if let child = node.edges[next].node, visited.insert(ObjectIdentifier(child)).inserted {
                    if child.isFreed { throw freedGraphError(child.op) }
                    try child.checkSavedVersions()
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
                stack.removeLast()
            }
        }
        return order
    }

    /// Runs each node's backward on its pending gradient, in reverse post order (every consumer of a
    /// tensor before its producer), and hands the results to the producers and leaves; frees each node
    /// after it ran unless retainGraph.
    private static func propagate(through order: [GradNode], retainGraph: Bool) throws {
        for node in order.reversed() {
            let edges = node.edges
            guard let pending = node.pendingGrad else {   // no gradient reached this node
                if !retainGraph { node.free() }
                continue
            }
            node.pendingGrad = nil
            let grads = try node.runBackward(try pending.contiguous())
            if !retainGraph { node.free() }
            for (edge, g) in zip(edges, grads) {
                guard let g else { continue }
                switch edge {
                case .none: continue
                case .node(let producer): try producer.accumulate(g)
                case .leaf(let leaf): try accumulateLeaf(leaf, g)
                }
            }
        }
    }

    /// leaf.grad += g, or a copy of g when leaf.grad is nil (g may alias a tensor of the graph).
    static func accumulateLeaf(_ leaf: Tensor, _ g: Tensor) throws {
        if let have = leaf.grad {
            guard have.shape == leaf.shape else {
                throw DBMError("expected .grad of the tensor's shape \(formatShape(leaf.shape)), got \(formatShape(have.shape))")
            }
            try addInPlace(have, g)
        } else {
            leaf.grad = try g.copy(dtype: leaf.dtype)
        }
    }

    // ------------------------------------------------------------------ leaves, zeroing, detach

    /// Marks t as a leaf whose gradient is wanted (a parameter); returns t.
    @discardableResult
    public static func parameter(_ t: Tensor) -> Tensor {
        t.requiresGrad = true
        return t
    }

    /// Zeroes the gradients of the given tensors in place (keeping their buffers, so the next backward
    /// accumulates without allocating); with setToNil the gradients are dropped instead.
    public static func zeroGrad(_ tensors: [Tensor], setToNil: Bool = false) {
        for t in tensors {
            if setToNil { t.grad = nil } else { t.grad?.fill(0) }
        }
    }
}

extension Tensor {
    /// A leaf: no recorded op produced it (parameters, data, detached tensors).
    public var isLeaf: Bool { gradFn == nil }

    /// The same elements (shared storage) cut off from the graph: requiresGrad false, no gradFn.
    public func detached() -> Tensor { NN.saved(self) }

    /// See `NN.backward`.
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try NN.backward(self, gradient: gradient, retainGraph: retainGraph)
    }

    /// See `NN.zeroGrad`.
    public func zeroGrad() { grad?.fill(0) }
}

// ---------------------------------------------------------------------- gradient sums

/// a += b elementwise (same shape and dtype; a contiguous, b any layout).
func addInPlace(_ a: Tensor, _ b: Tensor) throws {
    guard a.shape == b.shape else {
        throw DBMError("cannot accumulate a gradient of shape \(formatShape(b.shape)) into one of shape \(formatShape(a.shape))")
    }
    let bc = try b.contiguous().converted(to: a.dtype)
    guard a.isContiguous else {   // a user-assigned strided .grad: add through a copy
        try a.assign(from: try sumOf(a, bc))
        return
    }
    switch a.dtype {
    case .float32: axpyKernel(a.pointer(Float.self), bc.pointer(Float.self), a.count)
    case .float64: axpyKernel(a.pointer(Double.self), bc.pointer(Double.self), a.count)
    }
}

/// A new tensor a + b (same shape), on cached memory.
func sumOf(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let ac = try a.contiguous(), bc = try b.contiguous().converted(to: a.dtype)
    let out = try NN.empty(a.shape, a.dtype)
    switch a.dtype {
    case .float32: arithForward(.add, out.pointer(Float.self), ac.pointer(Float.self), bc.pointer(Float.self), a.count)
    case .float64: arithForward(.add, out.pointer(Double.self), ac.pointer(Double.self), bc.pointer(Double.self), a.count)
    }
    return out
}

// y += x
func axpyKernel<T: NNFloat>(_ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ n: Int) {
    Parallel.chunks(n, grain: 1 << 16) { r, _ in for i in r { y[i] += x[i] } }
}
