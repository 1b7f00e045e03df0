// Speed of the differentiable core (issue 4): forward + backward of one GPT block, Float32, random
// weights, at nanoGPT's "cpu" size and at the paper's size, against the sgemm reference of the same run.
import DBMCore
import DBMNN
import Foundation

enum NNBench {
    /// One configuration: batch, sequence length, width, heads.
    struct Config { let B: Int, T: Int, C: Int, heads: Int }

    static func run(referenceGflops: Double) throws {
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 15
        let configs = [Config(B: 12, T: 64, C: 128, heads: 4), Config(B: 64, T: 256, C: 384, heads: 6)]
        print("GPT block forward + backward (float32, no dropout; products: the four linear layers at 2·N·Cin·Cout "
              + "per product, ×3 for forward + backward, and attention's QKᵀ and PV at 2·hs per (query, key) pair, "
              + "×3; causal count = only the pairs j ≤ i, full count = all T² pairs as nanoGPT's estimate_mfu):")
        for (n, cfg) in configs.enumerated() {
            let r = try measure(cfg, reps: n == 0 ? reps * 4 : max(3, reps / 3))
            let causal = r.causalFlops / r.seconds / 1e9, full = r.fullFlops / r.seconds / 1e9
            print(String(format: "  B=%d T=%d C=%d heads=%d: %.2f ms, %.1f GFLOP/s causal count = %.1f%% of the sgemm reference "
                         + "(%.1f GFLOP/s = %.1f%% with the full count; target >= 75%%)",
                         cfg.B, cfg.T, cfg.C, cfg.heads, r.seconds * 1e3, causal, 100 * causal / referenceGflops,
                         full, 100 * full / referenceGflops))
        }
        let rss = MemoryLimit.residentSet()
        print(String(format: "  peak resident memory after the larger block: %.0f MiB (VmHWM; tensors at most %.0f MiB at once)",
                     Double(rss.peak) / 1048576, Double(MemoryLimit.peak) / 1048576))
    }

    /// Median seconds of forward + backward after warm-up, and the FLOPs counted for one.
    static func measure(_ cfg: Config, reps: Int) throws -> (seconds: Double, causalFlops: Double, fullFlops: Double) {
        let g = Generator(seed: 2024)
        let (B, T, C) = (cfg.B, cfg.T, cfg.C)
        let w = try GPTBlockWeights.random(C: C, nLayer: 6, dtype: .float32, generator: g)
        let x = NN.parameter(try Tensor.randn([B, T, C], dtype: .float32, generator: g))   // dx as in a stack of blocks
        let dOut = try Tensor.randn([B, T, C], std: 1e-3, dtype: .float32, generator: g)
        // Warm-up: at least two passes and 0.3 s. After the reference's multithreaded sgemm, OpenBLAS's
        // worker thread keeps spinning for about 0.1 s and takes a core (the first small-block passes
        // measured 12 ms instead of 7).
        var times: [Double] = []
        let start = now()
        var warmups = 0
        while times.count < reps {
            NN.zeroGrad([x] + w.all)
            let t0 = now()
            let y = try NN.gptBlock(x, w, heads: cfg.heads)
            try y.backward(gradient: dOut)
            let t = now() - t0
            if warmups < 2 || now() - start < 0.3 { warmups += 1 } else { times.append(t) }
        }
        let N = Double(B * T), c = Double(C)
        let linear = 3 * 2 * N * (c * 3 * c + c * c + c * 4 * c + 4 * c * c)
        let hs = c / Double(cfg.heads), pairsFull = Double(B * cfg.heads) * Double(T * T)
        let pairsCausal = Double(B * cfg.heads) * Double(T * (T + 1) / 2)
        let attention = { (pairs: Double) in 3 * 2 * (2 * pairs * hs) }
        return (median(times), linear + attention(pairsCausal), linear + attention(pairsFull))
    }
}
