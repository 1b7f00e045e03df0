import DBMCore
import DBMNN
import Foundation
import Testing

@Suite("The tape: accumulation, zeroing, no-grad mode, detach, freeing")
struct AutogradTests {
    /// loss = Σ (x·w)² for a fixed x; d loss / d w = 2 xᵀ(x w).
    func quadraticLoss(_ x: Tensor, _ w: Tensor) throws -> Tensor {
        let y = try NN.matmul(x, w)
        return try NN.sum(try NN.mul(y, y))
    }

    @Test("gradients accumulate over backward calls (as PyTorch) until zeroed; zeroGrad keeps the buffer")
    func accumulation() throws {
        let g = Generator(seed: 1)
        let x = try randn([4, 3], g), w = NN.parameter(try randn([3, 2], g))
        try quadraticLoss(x, w).backward()
        let once = w.grad!.toDoubles()
        let expected = try NN.matmul(try x.t(), try NN.scale(try NN.matmul(x, w), 2)).toDoubles()
        #expect(relativeDifference(once, expected) < 1e-14)
        let buffer = w.grad!
        try quadraticLoss(x, w).backward()
        #expect(relativeDifference(w.grad!.toDoubles(), once.map { 2 * $0 }) < 1e-14)
        #expect(w.grad! === buffer)   // accumulated in place
        NN.zeroGrad([w])
        #expect(w.grad! === buffer && buffer.toDoubles().allSatisfy { $0 == 0 })
        try quadraticLoss(x, w).backward()
        #expect(relativeDifference(w.grad!.toDoubles(), once) < 1e-14)
        NN.zeroGrad([w], setToNil: true)
        #expect(w.grad == nil)
        #expect(x.grad == nil)   // x never required a gradient
    }

    @Test("a non-scalar output needs an explicit gradient; with one, backward is the vector-Jacobian product")
    func explicitGradient() throws {
        let g = Generator(seed: 2)
        let w = NN.parameter(try randn([3, 2], g))
        let x = try randn([4, 3], g)
        let y = try NN.matmul(x, w)
        let message = errorMessage { try y.backward() }
        #expect(message.contains("expected a scalar") && message.contains("got shape (4, 2)"), "\(message)")
        let seed = try randn([4, 2], g)
        try y.backward(gradient: seed)
        #expect(relativeDifference(w.grad!.toDoubles(), try x.t().matmul(seed).toDoubles()) < 1e-14)
        let wrong = errorMessage { try NN.matmul(x, w).backward(gradient: try randn([2, 4], g)) }
        #expect(wrong.contains("expected a gradient of the tensor's shape (4, 2), got (2, 4)"), "\(wrong)")
    }

    @Test("backward twice through a freed graph is an error; retainGraph keeps it; a fresh forward works")
    func freedGraph() throws {
        let g = Generator(seed: 3)
        let x = try randn([4, 3], g), w = NN.parameter(try randn([3, 2], g))
        let loss = try quadraticLoss(x, w)
        try loss.backward()
        let before = w.grad!.toDoubles()
        let message = errorMessage { try loss.backward() }
        #expect(message.contains("backward through a freed graph") && message.contains("got a second backward through 'sum'"), "\(message)")
        #expect(w.grad!.toDoubles() == before)   // nothing accumulated by the failed call
        // Sharing a freed subgraph: y's producer was freed by the first backward.
        let y = try NN.matmul(x, w)
        try NN.sum(y).backward()
        let second = errorMessage { try NN.mean(y).backward() }
        #expect(second.contains("got a second backward through 'matmul'"), "\(second)")
        // retainGraph: the same graph twice gives twice the gradient.
        NN.zeroGrad([w])
        let kept = try quadraticLoss(x, w)
        try kept.backward(retainGraph: true)
        try kept.backward()
        #expect(relativeDifference(w.grad!.toDoubles(), before.map { 2 * $0 }) < 1e-14)
        // Nodes are released: the output's node reports itself freed.
        #expect((kept.gradFn as? GradNode)?.isFreed == true)
    }

    @Test("backward on a tensor without a graph is an error; on a leaf it seeds its own gradient")
    func noGraph() throws {
        let plain = try Tensor.full([], 2, dtype: .float64)
        let message = errorMessage { try plain.backward() }
        #expect(message.contains("expected a tensor that requires grad"), "\(message)")
        let leaf = NN.parameter(try Tensor.full([], 2, dtype: .float64))
        try leaf.backward()
        #expect(leaf.grad!.toDoubles() == [1])
    }

    @Test("no-grad mode records nothing and restores the mode, also after a throw; it is per thread")
    func noGradMode() throws {
        let g = Generator(seed: 4)
        let w = NN.parameter(try randn([3, 3], g))
        let y = try NN.withNoGrad { try NN.gelu(try NN.matmul(w, w)) }
        #expect(y.gradFn == nil && !y.requiresGrad)
        #expect(NN.isGradEnabled)
        _ = try? NN.withNoGrad { () throws -> Int in throw DBMError("x") }
        #expect(NN.isGradEnabled)
        NN.isGradEnabled = false
        #expect(try NN.tanh(w).gradFn == nil)
        // Another thread keeps its own mode (on).
        let other = Thread { if !NN.isGradEnabled { Issue.record("grad mode leaked to another thread") } }
        other.start()
        while !other.isFinished { usleep(1000) }
        NN.isGradEnabled = true
        #expect(try NN.tanh(w).gradFn != nil)
    }

    @Test("detach cuts the graph: no gradient flows through a detached tensor")
    func detach() throws {
        let g = Generator(seed: 5)
        let w = NN.parameter(try randn([2, 2], g))
        let y = try NN.mul(w, w)
        let d = y.detached()
        #expect(d.gradFn == nil && !d.requiresGrad && d.storage === y.storage)
        // loss = Σ w ⊙ detach(w ⊙ w): d/dw = w ⊙ w only.
        try NN.sum(try NN.mul(w, d)).backward()
        #expect(relativeDifference(w.grad!.toDoubles(), y.toDoubles()) < 1e-15)
        #expect(w.isLeaf && !y.isLeaf)
    }

    @Test("ops on tensors that need no gradient record nothing")
    func nothingToRecord() throws {
        let g = Generator(seed: 6)
        let a = try randn([2, 2], g), b = try randn([2, 2], g)
        let c = try NN.add(a, b)
        #expect(c.gradFn == nil && !c.requiresGrad)
        let w = NN.parameter(try randn([2, 2], g))
        let d = try NN.add(a, w)
        #expect((d.gradFn as? GradNode)?.op == "add" && d.requiresGrad)
        try NN.sum(d).backward()
        #expect(a.grad == nil && w.grad!.toDoubles() == [1, 1, 1, 1])
    }

    @Test("what backward saved stays valid while the op cache hands memory out again (forward, churn, backward)")
    func savedTensorsSurviveReuse() throws {
        let g = Generator(seed: 7)
        let (B, T, C) = (2, 64, 128)   // (B,T,C) in float32 is 64 KiB: every activation goes through the cache
        let w = try GPTBlockWeights.random(C: C, std: 0.1, dtype: .float32, generator: g)
        let x = NN.parameter(try randn([B, T, C], g, dtype: .float32))
        let qkv = NN.parameter(try randn([B, T, 3 * C], g, dtype: .float32))
        let dOut = try randn([B, T, C], g, dtype: .float32)
        let leaves = [x, qkv] + w.all
        func forward() throws -> Tensor {   // the block, and attention composed from matmul, softmax and views
            try NN.add(try NN.gptBlock(x, w, heads: 4), try unfusedAttention(qkv, heads: 4))
        }
        try forward().backward(gradient: dOut)
        let clean = leaves.map { $0.grad!.toFloats() }
        NN.zeroGrad(leaves)
        let y = try forward()
        // Every size the graph uses, taken from the cache and filled with NaN, held during backward: a
        // closure that kept a pointer into memory it does not own would now read NaN.
        var churn: [Tensor] = []
        for shape in [[B, T, C], [B, T, 3 * C], [B, T, 4 * C], [B, 4, T, T], [B, 4, T, C / 4]] {
            for _ in 0..<8 { churn.append(try NN.scale(try Tensor.full(shape, .nan), 1)) }
        }
        try y.backward(gradient: dOut)
        let unchanged = leaves.map { $0.grad!.toFloats() } == clean
        #expect(unchanged, "gradients differ from those of a backward without churn")
        #expect(churn.count == 40)
    }

    @Test("a long chain does not exhaust the stack; the graph is released after backward")
    func longChain() throws {
        let w = NN.parameter(try Tensor.full([4], 1, dtype: .float64))
        var y = w
        for _ in 0..<20_000 { y = try NN.scale(y, 1) }
        try NN.sum(y).backward()
        #expect(w.grad!.toDoubles() == [1, 1, 1, 1])
        // Dropped without a backward pass: released without recursion.
        var z = w
        for _ in 0..<200_000 { z = try NN.scale(z, 1) }
        z = w
        #expect(z === w)
    }
}

@Suite("Bad input: clear errors")
struct ErrorTests {
    /// Expects a DBMError whose message names the op and says what was expected and what was got.
    func expectShapeError(_ op: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                          _ body: () throws -> Any) {
        let m = errorMessage(sourceLocation: sourceLocation, body)
        #expect(m.hasPrefix(op + ":") && m.contains("expected") && m.contains("got"), "\(m)", sourceLocation: sourceLocation)
        for f in fragments { #expect(m.contains(f), "\(m) lacks \(f)", sourceLocation: sourceLocation) }
    }

    @Test("shape mismatches in every op")
    func shapeMismatches() throws {
        let g = Generator(seed: 1)
        let x = try randn([2, 3, 4], g)
        expectShapeError("linear", ["(..., 5)", "(2, 3, 4)"]) { try NN.linear(x, weight: try randn([6, 5], g)) }
        expectShapeError("linear", ["(out, in)"]) { try NN.linear(x, weight: try randn([4], g)) }
        expectShapeError("linear", ["bias of shape (6)", "(5)"]) { try NN.linear(x, weight: try randn([6, 4], g), bias: try randn([5], g)) }
        expectShapeError("matmul", ["inner sizes", "4 vs 5"]) { try NN.matmul(x, try randn([5, 2], g)) }
        expectShapeError("matmul", ["rank 2"]) { try NN.matmul(try randn([3], g), try randn([3, 2], g)) }
        expectShapeError("matmul", ["same leading dimensions"]) { try NN.matmul(x, try randn([3, 4, 2], g)) }
        expectShapeError("add", ["cannot broadcast", "(2, 3, 4)", "(5)"]) { try NN.add(x, try randn([5], g)) }
        expectShapeError("mul", ["cannot broadcast"]) { try NN.mul(x, try randn([3, 3], g)) }
        expectShapeError("sub", ["cannot broadcast"]) { try NN.sub(x, try randn([2, 4, 4], g)) }
        expectShapeError("layer_norm", ["weight of shape (4)", "got (3)"]) { try NN.layerNorm(x, weight: try randn([3], g)) }
        expectShapeError("layer_norm", ["bias of shape (4)"]) { try NN.layerNorm(x, weight: try randn([4], g), bias: try randn([2], g)) }
        expectShapeError("softmax", ["scalar"]) { try NN.softmax(try randn([], g)) }
        expectShapeError("cross_entropy", ["expected 6 targets", "got 5"]) { try NN.crossEntropy(x, targets: [0, 1, 2, 3, 0]) }
        expectShapeError("cross_entropy", ["targets in 0..<4", "got 4"]) { try NN.crossEntropy(x, targets: [0, 1, 2, 3, 4, 0]) }
        expectShapeError("cross_entropy", ["integers in 0..<4", "got 1.5"]) {
            try NN.crossEntropy(x, targets: try Tensor.from([0, 1, 2, 3, 1.5, 0] as [Double], shape: [2, 3]))
        }
        expectShapeError("embedding", ["token ids in 0..<5", "got 7"]) { try NN.embedding(ids: [1, 7], weight: try randn([5, 2], g)) }
        expectShapeError("embedding", ["weight of shape (V, C)"]) { try NN.embedding(ids: [1], weight: try randn([5], g)) }
        expectShapeError("embedding", ["ids of shape (2, 2)", "got 3 ids"]) { try NN.embedding(ids: [1, 2, 3], shape: [2, 2], weight: try randn([5, 2], g)) }
        expectShapeError("causal_self_attention", ["(B, T, 3C)", "(2, 3, 4)"]) { try NN.causalSelfAttention(x, heads: 1) }
        expectShapeError("causal_self_attention", ["heads dividing C = 4", "got 3"]) { try NN.causalSelfAttention(try randn([1, 2, 12], g), heads: 3) }
        expectShapeError("causal_self_attention", ["expected a generator"]) { try NN.causalSelfAttention(try randn([1, 2, 12], g), heads: 2, dropout: 0.1) }
        expectShapeError("dropout", ["p in [0, 1]", "got 1.5"]) { try NN.dropout(x, p: 1.5, generator: g) }
        expectShapeError("reshape", ["cannot reshape"]) { try NN.reshape(x, [5, 5]) }
        expectShapeError("transpose", ["dimensions in 0..<3", "got 0 and 3"]) { try NN.transpose(x, 0, 3) }
        expectShapeError("narrow", ["range within 0..<3", "got 2..<4"]) { try NN.narrow(x, dim: 1, start: 2, length: 2) }
        expectShapeError("sum", ["dimension in 0..<3", "got 3"]) { try NN.sum(x, dim: 3) }
        expectShapeError("linear", ["weight of dtype float64", "got float32"]) {
            try NN.linear(x, weight: try Tensor.zeros([2, 4], dtype: .float32))
        }
    }
}
