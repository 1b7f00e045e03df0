import DBMCore

/// The weights of one nanoGPT transformer block (DESIGN §3: no biases, LayerNorm weight only),
/// in PyTorch layouts: linear weights are (out, in).
public struct GPTBlockWeights {
    public var ln1: Tensor      // (C)      ln_1.weight
    public var cAttn: Tensor    // (3C, C)  attn.c_attn.weight: q, k, v row blocks
    public var cProj: Tensor    // (C, C)   attn.c_proj.weight
    public var ln2: Tensor      // (C)      ln_2.weight
    public var cFc: Tensor      // (4C, C)  mlp.c_fc.weight
    public var mlpProj: Tensor  // (C, 4C)  mlp.c_proj.weight

    public init(ln1: Tensor, cAttn: Tensor, cProj: Tensor, ln2: Tensor, cFc: Tensor, mlpProj: Tensor) {
        self.ln1 = ln1; self.cAttn = cAttn; self.cProj = cProj; self.ln2 = ln2; self.cFc = cFc; self.mlpProj = mlpProj
    }

    /// nanoGPT's initialisation: LayerNorm weights 1, linear weights N(0, std²), the two residual
    /// projections N(0, (std/√(2·nLayer))²). Every tensor is a parameter (requiresGrad).
    public static func random(C: Int, nLayer: Int = 1, std: Double = 0.02, dtype: DType = .float32,
                              generator g: Generator) throws -> GPTBlockWeights {
        let projStd = std / (2 * Double(nLayer)).squareRoot()
        let w = GPTBlockWeights(
            ln1: try Tensor.full([C], 1, dtype: dtype),
            cAttn: try Tensor.randn([3 * C, C], std: std, dtype: dtype, generator: g),
            cProj: try Tensor.randn([C, C], std: projStd, dtype: dtype, generator: g),
            ln2: try Tensor.full([C], 1, dtype: dtype),
            cFc: try Tensor.randn([4 * C, C], std: std, dtype: dtype, generator: g),
            mlpProj: try Tensor.randn([C, 4 * C], std: projStd, dtype: dtype, generator: g))
        for t in w.all { NN.parameter(t) }
        return w
    }

    /// The six tensors in nanoGPT's parameter order.
    public var all: [Tensor] { [ln1, cAttn, cProj, ln2, cFc, mlpProj] }
}

extension NN {
    /// One pre-LayerNorm GPT block as nanoGPT composes it (and as the Lua nn.Block does):
    /// x + resid_dropout(c_proj(attention(c_attn(ln_1(x))))), then x + dropout(c_proj(gelu(c_fc(ln_2(x))))).
    /// x is (B, T, C). The reference composition for the tests and the benchmark.
    public static func gptBlock(_ x: Tensor, _ w: GPTBlockWeights, heads: Int, dropout p: Double = 0,
                                generator: Generator? = nil) throws -> Tensor {
        func drop(_ t: Tensor) throws -> Tensor {
            guard p > 0 else { return t }
            guard let generator else { throw DBMError("gpt_block: expected a generator for dropout p = \(p), got none") }
            return try dropout(t, p: p, generator: generator)
        }
        let qkv = try linear(try layerNorm(x, weight: w.ln1), weight: w.cAttn)
        let y = try causalSelfAttention(qkv, heads: heads, dropout: p, generator: generator)
        let h = try add(x, try drop(try linear(y, weight: w.cProj)))
        let m = try linear(try gelu(try linear(try layerNorm(h, weight: w.ln2), weight: w.cFc)), weight: w.mlpProj)
        return try add(h, try drop(m))
    }
}
