import DBMCore
import DBMNN
import Foundation
import Testing

// Every op's backward against central finite differences in Float64 (relative error ≤ 1e-6, issue 4),
// on random shapes and the edge cases: sequence length 1, one head, batch 1, one class.

@Suite("Gradients agree with central finite differences in Float64")
struct GradientTests {
    @Test("linear with and without bias, on 2-D and 3-D inputs, and a single output")
    func linear() throws {
        let g = Generator(seed: 1)
        try expectGradients("linear (B,T,C)→OC with bias", [try randn([2, 3, 5], g), try randn([4, 5], g), try randn([4], g)]) {
            try NN.linear($0[0], weight: $0[1], bias: $0[2])
        }
        try expectGradients("linear (N,C) no bias", [try randn([7, 3], g), try randn([6, 3], g)]) {
            try NN.linear($0[0], weight: $0[1])
        }
        try expectGradients("linear to one output, batch 1", [try randn([1, 1, 4], g), try randn([1, 4], g), try randn([1], g)]) {
            try NN.linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    @Test("matmul: 2-D, transposed views read in place, (..., M, K)·(K, N), batched")
    func matmul() throws {
        let g = Generator(seed: 2)
        try expectGradients("matmul 2-D", [try randn([3, 4], g), try randn([4, 5], g)]) { try NN.matmul($0[0], $0[1]) }
        try expectGradients("matmul of transposed views", [try randn([4, 3], g), try randn([5, 4], g)]) {
            try NN.matmul(try NN.transpose($0[0], 0, 1), try NN.transpose($0[1], 0, 1))
        }
        try expectGradients("matmul (B,T,K)·(K,N)", [try randn([2, 3, 4], g), try randn([4, 2], g)]) { try NN.matmul($0[0], $0[1]) }
        try expectGradients("matmul batched", [try randn([2, 3, 3, 4], g), try randn([2, 3, 4, 2], g)]) { try NN.matmul($0[0], $0[1]) }
    }

    @Test("add, sub, mul: same shapes, bias rows, general broadcasting")
    func arithmetic() throws {
        let g = Generator(seed: 3)
        try expectGradients("add same shape", [try randn([3, 4], g), try randn([3, 4], g)]) { try NN.add($0[0], $0[1]) }
        try expectGradients("add bias row", [try randn([2, 3, 4], g), try randn([4], g)]) { try NN.add($0[0], $0[1]) }
        try expectGradients("add row first", [try randn([1, 4], g), try randn([3, 4], g)]) { try NN.add($0[0], $0[1]) }
        try expectGradients("sub broadcast (3,1,4) − (5,1)", [try randn([3, 1, 4], g), try randn([5, 1], g)]) { try NN.sub($0[0], $0[1]) }
        try expectGradients("sub row first", [try randn([4], g), try randn([2, 4], g)]) { try NN.sub($0[0], $0[1]) }
        try expectGradients("mul same shape", [try randn([5], g), try randn([5], g)]) { try NN.mul($0[0], $0[1]) }
        try expectGradients("mul bias row", [try randn([3, 4], g), try randn([4], g)]) { try NN.mul($0[0], $0[1]) }
        try expectGradients("mul broadcast (2,1,3)·(4,1)", [try randn([2, 1, 3], g), try randn([4, 1], g)]) { try NN.mul($0[0], $0[1]) }
        try expectGradients("mul by a scalar tensor", [try randn([2, 3], g), try randn([], g)]) { try NN.mul($0[0], $0[1]) }
    }

    @Test("scale, sigmoid, tanh, relu")
    func pointwise() throws {
        let g = Generator(seed: 4)
        try expectGradients("scale", [try randn([3, 5], g)]) { try NN.scale($0[0], -1.7) }
        try expectGradients("sigmoid", [try randn([3, 5], g, std: 3)]) { try NN.sigmoid($0[0]) }
        try expectGradients("tanh", [try randn([3, 5], g, std: 2)]) { try NN.tanh($0[0]) }
        try expectGradients("relu", [try randn([4, 6], g)]) { try NN.relu($0[0]) }
    }

    @Test("exp, log, sqrt, abs, pow, div (with broadcasting), clamp")
    func functions() throws {
        let g = Generator(seed: 12)
        func positive(_ shape: [Int]) throws -> Tensor { try Tensor.rand(shape, low: 0.5, high: 2, dtype: .float64, generator: g) }
        try expectGradients("exp", [try randn([3, 4], g)]) { try NN.exp($0[0]) }
        try expectGradients("log", [try positive([5])]) { try NN.log($0[0]) }
        try expectGradients("sqrt", [try positive([2, 3])]) { try NN.sqrt($0[0]) }
        try expectGradients("abs", [try randn([7], g)]) { try NN.abs($0[0]) }
        try expectGradients("pow 1.5 and -2", [try positive([4, 2])]) { try NN.add(try NN.pow($0[0], 1.5), try NN.pow($0[0], -2)) }
        try expectGradients("div same shape", [try randn([3, 4], g), try positive([3, 4])]) { try NN.div($0[0], $0[1]) }
        try expectGradients("div by a row", [try randn([2, 3, 4], g), try positive([4])]) { try NN.div($0[0], $0[1]) }
        try expectGradients("div of a row", [try randn([4], g), try positive([3, 4])]) { try NN.div($0[0], $0[1]) }
        try expectGradients("clamp", [try randn([20], g)]) { try NN.clamp($0[0], min: -0.5, max: 0.7) }
    }

    @Test("GELU, exact (erf) and tanh forms")
    func gelu() throws {
        let g = Generator(seed: 5)
        try expectGradients("gelu exact", [try randn([4, 7], g, std: 2)]) { try NN.gelu($0[0]) }
        try expectGradients("gelu tanh", [try randn([4, 7], g, std: 2)]) { try NN.gelu($0[0], form: .tanh) }
    }

    @Test("layer norm with weight, with and without bias; one row")
    func layerNorm() throws {
        let g = Generator(seed: 6)
        try expectGradients("layer_norm with bias", [try randn([2, 3, 6], g), try randn([6], g), try randn([6], g)]) {
            try NN.layerNorm($0[0], weight: $0[1], bias: $0[2])
        }
        try expectGradients("layer_norm no bias", [try randn([5, 4], g, std: 3), try randn([4], g)]) {
            try NN.layerNorm($0[0], weight: $0[1])
        }
        try expectGradients("layer_norm one row", [try randn([1, 8], g), try randn([8], g)]) {
            try NN.layerNorm($0[0], weight: $0[1])
        }
    }

    @Test("softmax over the last dimension")
    func softmax() throws {
        let g = Generator(seed: 7)
        try expectGradients("softmax", [try randn([3, 2, 5], g, std: 2)]) { try NN.softmax($0[0]) }
        try expectGradients("softmax of one element", [try randn([4, 1], g)]) { try NN.softmax($0[0]) }
    }

    @Test("cross-entropy: (N,V), (B,T,V), a single class, a single row")
    func crossEntropy() throws {
        let g = Generator(seed: 8)
        try expectGradients("cross_entropy (N,V)", [try randn([6, 5], g, std: 2)]) {
            try NN.crossEntropy($0[0], targets: [0, 4, 2, 2, 1, 3])
        }
        let targets = try Tensor.from([1, 0, 2, 2, 1, 0] as [Double], shape: [2, 3], dtype: .float64)
        try expectGradients("cross_entropy (B,T,V), targets as a tensor", [try randn([2, 3, 3], g)]) {
            try NN.crossEntropy($0[0], targets: targets)
        }
        try expectGradients("cross_entropy one class", [try randn([4, 1], g)]) { try NN.crossEntropy($0[0], targets: [0, 0, 0, 0]) }
        try expectGradients("cross_entropy one row", [try randn([1, 7], g)]) { try NN.crossEntropy($0[0], targets: [6]) }
    }

    @Test("embedding with repeated ids (the gradient is scattered and summed)")
    func embedding() throws {
        let g = Generator(seed: 9)
        let ids = try Tensor.from([3, 1, 3, 0, 3, 4] as [Double], shape: [2, 3], dtype: .float32)
        try expectGradients("embedding", [try randn([5, 4], g)]) { try NN.embedding(ids, weight: $0[0]) }
        try expectGradients("embedding, [Int32] ids", [try randn([3, 2], g)]) { try NN.embedding(ids: [2, 2, 0], weight: $0[0]) }
    }

    @Test("dropout with a fixed mask (the same generator state for every evaluation)")
    func dropout() throws {
        let g = Generator(seed: 10)
        try expectGradients("dropout p=0.4", [try randn([5, 6], g)]) { try NN.dropout($0[0], p: 0.4, generator: Generator(seed: 77)) }
        try expectGradients("dropout p=0", [try randn([3], g)]) { try NN.dropout($0[0], p: 0, generator: Generator(seed: 77)) }
    }

    @Test("sum and mean, over everything and along each dimension")
    func reductions() throws {
        let g = Generator(seed: 11)
        try expectGradients("sum", [try randn([3, 4], g)]) { try NN.sum($0[0]) }
        try expectGradients("mean", [try randn([3, 4], g)]) { try NN.mean($0[0]) }
        for d in 0..<3 {
            try expectGradients("sum dim \(d)", [try randn([2, 3, 4], g)]) { try NN.sum($0[0], dim: d) }
            try expectGradients("mean dim \(d)", [try randn([2, 3, 4], g)]) { try NN.mean($0[0], dim: d) }
        }
    }

    @Test("reshape, transpose, narrow, contiguous (the views heads need)")
    func views() throws {
        let g = Generator(seed: 12)
        try expectGradients("reshape+transpose+contiguous", [try randn([2, 3, 4], g)]) {
            try NN.mul(try NN.contiguous(try NN.transpose(try NN.reshape($0[0], [2, 3, 2, 2]), 1, 2)),
                       try Tensor.randn([2, 2, 3, 2], dtype: .float64, generator: Generator(seed: 5)))
        }
        try expectGradients("narrow", [try randn([3, 6], g)]) { try NN.narrow($0[0], dim: 1, start: 2, length: 3) }
        try expectGradients("a tensor used twice (gradients summed)", [try randn([3, 3], g)]) {
            try NN.add(try NN.matmul($0[0], $0[0]), try NN.transpose($0[0], 0, 1))
        }
    }

    @Test("fused causal self-attention: several heads, one head, T = 1, batch 1, T beyond one block, dropout")
    func attention() throws {
        let g = Generator(seed: 13)
        let cases: [(B: Int, T: Int, C: Int, heads: Int)] = [(2, 5, 12, 3), (1, 7, 6, 1), (3, 1, 8, 2), (1, 1, 4, 1), (2, 4, 8, 4), (1, 70, 4, 2)]
        for c in cases {
            try expectGradients("causal_self_attention B=\(c.B) T=\(c.T) C=\(c.C) heads=\(c.heads)",
                                [try randn([c.B, c.T, 3 * c.C], g)]) {
                try NN.causalSelfAttention($0[0], heads: c.heads)
            }
        }
        try expectGradients("causal_self_attention with dropout 0.3", [try randn([2, 6, 3 * 6], g)]) {
            try NN.causalSelfAttention($0[0], heads: 2, dropout: 0.3, generator: Generator(seed: 21))
        }
        try expectGradients("causal_self_attention with dropout, T beyond one block", [try randn([1, 67, 3 * 2], g)]) {
            try NN.causalSelfAttention($0[0], heads: 1, dropout: 0.2, generator: Generator(seed: 22))
        }
    }

    @Test("a whole tiny GPT block x + attn(ln_1(x)), x + mlp(ln_2(x)): every weight and the input")
    func gptBlock() throws {
        let cases: [(B: Int, T: Int, C: Int, heads: Int)] = [(2, 5, 8, 2), (1, 1, 4, 1), (1, 3, 6, 1)]
        for (n, c) in cases.enumerated() {
            let g = Generator(seed: 30 + UInt64(n))
            // Weights larger than nanoGPT's 0.02 so that every nonlinearity is exercised; LayerNorm weights random.
            let w = try GPTBlockWeights.random(C: c.C, std: 0.4, dtype: .float64, generator: g)
            w.ln1.assign(fromValues: try randn([c.C], g, std: 0.5).toDoubles().map { 1 + $0 })
            w.ln2.assign(fromValues: try randn([c.C], g, std: 0.5).toDoubles().map { 1 + $0 })
            let x = try randn([c.B, c.T, c.C], g)
            try expectGradients("gpt block B=\(c.B) T=\(c.T) C=\(c.C) heads=\(c.heads)", [x] + w.all) { t in
                try NN.gptBlock(t[0], GPTBlockWeights(ln1: t[1], cAttn: t[2], cProj: t[3], ln2: t[4], cFc: t[5], mlpProj: t[6]),
                                heads: c.heads)
            }
        }
        // With dropout on the attention probabilities and after both residual projections.
        let g = Generator(seed: 40)
        let w = try GPTBlockWeights.random(C: 4, std: 0.4, dtype: .float64, generator: g)
        try expectGradients("gpt block with dropout 0.25", [try randn([2, 3, 4], g)] + w.all) { t in
            try NN.gptBlock(t[0], GPTBlockWeights(ln1: t[1], cAttn: t[2], cProj: t[3], ln2: t[4], cFc: t[5], mlpProj: t[6]),
                            heads: 2, dropout: 0.25, generator: Generator(seed: 41))
        }
    }

    @Test("random shapes: B in 1...3, T in 1...9, heads in 1...3, head size in 1...4, classes in 1...6")
    func randomShapes() throws {
        for seed in 0..<8 {
            let g = Generator(seed: 900 + UInt64(seed))
            let (B, T, heads, hs, V) = (1 + g.below(3), 1 + g.below(9), 1 + g.below(3), 1 + g.below(4), 1 + g.below(6))
            let C = heads * hs
            let tag = "B=\(B) T=\(T) heads=\(heads) C=\(C) V=\(V)"
            try expectGradients("linear, \(tag)", [try randn([B, T, C], g), try randn([V, C], g), try randn([V], g)]) {
                try NN.linear($0[0], weight: $0[1], bias: $0[2])
            }
            try expectGradients("layer_norm, \(tag)", [try randn([B, T, C], g), try randn([C], g), try randn([C], g)]) {
                try NN.layerNorm($0[0], weight: $0[1], bias: $0[2])
            }
            try expectGradients("softmax, \(tag)", [try randn([B, T, V], g)]) { try NN.softmax($0[0]) }
            let targets = (0..<(B * T)).map { _ in Int32(g.below(V)) }
            try expectGradients("cross_entropy, \(tag)", [try randn([B, T, V], g)]) { try NN.crossEntropy($0[0], targets: targets) }
            try expectGradients("gelu, \(tag)", [try randn([B, T, C], g, std: 2)]) { try NN.gelu($0[0]) }
            let ids = (0..<(B * T)).map { _ in Int32(g.below(V)) }
            try expectGradients("embedding, \(tag)", [try randn([V, C], g)]) { try NN.embedding(ids: ids, shape: [B, T], weight: $0[0]) }
            try expectGradients("causal_self_attention, \(tag)", [try randn([B, T, 3 * C], g)]) {
                try NN.causalSelfAttention($0[0], heads: heads)
            }
            let w = try GPTBlockWeights.random(C: C, std: 0.4, dtype: .float64, generator: g)
            try expectGradients("gpt block, \(tag)", [try randn([B, T, C], g)] + w.all) { t in
                try NN.gptBlock(t[0], GPTBlockWeights(ln1: t[1], cAttn: t[2], cProj: t[3], ln2: t[4], cFc: t[5], mlpProj: t[6]),
                                heads: heads)
            }
        }
    }

    @Test("a tiny GPT end to end: embeddings, a block, final layer norm, tied head, cross-entropy")
    func tinyGPT() throws {
        let g = Generator(seed: 50)
        let (V, B, T, C) = (5, 2, 3, 4)
        let wte = try randn([V, C], g, std: 0.5), wpe = try randn([T, C], g, std: 0.5), lnf = try randn([C], g, std: 0.3)
        let w = try GPTBlockWeights.random(C: C, std: 0.4, dtype: .float64, generator: g)
        let ids: [Int32] = [0, 3, 4, 1, 1, 2], targets: [Int32] = [3, 4, 1, 1, 2, 0]
        try expectGradients("tiny GPT loss", [wte, wpe, lnf] + w.all) { t in
            let tok = try NN.embedding(ids: ids, shape: [B, T], weight: t[0])
            let x = try NN.add(tok, t[1])   // (B,T,C) + (T,C)
            let h = try NN.gptBlock(x, GPTBlockWeights(ln1: t[3], cAttn: t[4], cProj: t[5], ln2: t[6], cFc: t[7], mlpProj: t[8]), heads: 2)
            let logits = try NN.linear(try NN.layerNorm(h, weight: t[2]), weight: t[0])   // tied head
            return try NN.crossEntropy(logits, targets: targets)
        }
    }
}

extension Tensor {
    /// Test helper: sets the elements (row-major) from values.
    func assign(fromValues values: [Double]) {
        try! assign(from: try! Tensor.from(values, shape: shape, dtype: .float64))
    }
}
