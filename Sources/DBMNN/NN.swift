import DBMCore

/// The differentiable ops and the tape (Autograd.swift). Each op takes and returns tensors; when grad
/// mode is on and an input requires a gradient, the output carries a GradNode and `NN.backward(loss)`
/// fills `.grad` of the leaves. Inputs of any layout are accepted (non-contiguous ones are copied once);
/// outputs are contiguous row-major. Float32 and Float64; the inputs of one op share a dtype.
/// Integer inputs (token ids, targets, dimensions) are 0-based here; the Lua bridge converts from 1-based.
///
/// Ops, one file each with its forward and backward kernels side by side:
///   Linear.swift      linear(x, weight:, bias:) (weight (out, in) as in PyTorch), matmul(a, b)
///   Elementwise.swift add, sub, mul (numpy broadcasting), scale, sigmoid, tanh, relu
///   GELU.swift        gelu(x, form: .exact | .tanh)
///   LayerNorm.swift   layerNorm(x, weight:, bias:, eps:) over the last dimension
///   Softmax.swift     softmax(x) over the last dimension, crossEntropy(logits, targets:) (fused log-softmax)
///   Attention.swift   causalSelfAttention(qkv, heads:, dropout:, generator:) — fused, qkv in c_attn layout
///   Embedding.swift   embedding(ids, weight:)
///   Dropout.swift     dropout(x, p:, generator:)
///   Shape.swift       sum, mean (all elements or one dimension), reshape, transpose, narrow, contiguous
///   GPTBlock.swift    gptBlock(x, weights, heads:) — nanoGPT's block composed from the above (tests, bench)
/// The tape: Autograd.swift (backward, grad mode, zeroGrad, detach). Memory reuse: StorageCache.swift.
/// Products, parallel loops and the vectorisable math: Support.swift.
public enum NN {}

extension NN {
    /// Throws unless every named tensor has the dtype of the first.
    static func requireSameDType(_ op: String, _ tensors: [(String, Tensor)]) throws {
        guard let first = tensors.first else { return }
        for (name, t) in tensors.dropFirst() where t.dtype != first.1.dtype {
            throw DBMError("\(op): expected \(name) of dtype \(first.1.dtype.rawValue) (as \(first.0)), got \(t.dtype.rawValue)")
        }
    }

    /// Throws unless t has the given rank.
    static func requireRank(_ op: String, _ name: String, _ t: Tensor, _ rank: Int, _ what: String) throws {
        guard t.rank == rank else {
            throw DBMError("\(op): expected \(name) of shape \(what), got \(formatShape(t.shape))")
        }
    }

    /// Integer ids (token ids, class targets) from a tensor of integral values, each checked to lie in 0..<bound.
    static func integerIds(_ op: String, _ what: String, _ t: Tensor, below bound: Int) throws -> [Int32] {
        let values = t.toDoubles()
        var ids = [Int32](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            guard v == v.rounded(), v >= 0, v < Double(bound) else {
                throw DBMError("\(op): expected \(what) that are integers in 0..<\(bound), got \(v) at position \(i)")
            }
            ids[i] = Int32(v)
        }
        return ids
    }

    /// Checks integer ids against 0..<bound.
    static func checkIds(_ op: String, _ what: String, _ ids: [Int32], below bound: Int) throws {
        for (i, v) in ids.enumerated() where v < 0 || Int(v) >= bound {
            throw DBMError("\(op): expected \(what) in 0..<\(bound), got \(v) at position \(i)")
        }
    }
}
