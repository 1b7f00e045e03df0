// The same GPT block as NNBench, composed in Lua from dbm.nn modules (nn.Block) as an experiment script
// writes it: what the Lua layer costs on top of the Swift kernels, measured in the same run.
import CBLAS
import DBMCore
import DBMLua
import Foundation

enum LuaNNBench {
    static func run(lua: LuaState, referenceGflops: Double) throws {
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 15
        print("GPT block from Lua (nn.Block forward + backward, float32, no dropout), against the Swift-composed block of the same run:")
        for cfg in [NNBench.Config(B: 12, T: 64, C: 128, heads: 4), NNBench.Config(B: 64, T: 256, C: 384, heads: 6)] {
            let small = cfg.B == 12
            let n = small ? reps * 4 : max(3, reps / 3)
            let code = """
            local nn = dbm.nn
            dbm.seed(2024)
            local block = nn.Block({n_embd = \(cfg.C), n_head = \(cfg.heads), n_layer = 6})
            local x = dbm.parameter(dbm.randn(\(cfg.B), \(cfg.T), \(cfg.C)))
            local dout = dbm.randn(\(cfg.B), \(cfg.T), \(cfg.C), {std = 1e-3})
            local params = block:parameters()
            params[#params + 1] = x
            local times = {}
            local start = dbm.clock()
            while #times < \(n) do
              dbm.zero_grad(params)
              local t0 = dbm.clock()
              block(x):backward(dout)
              local t = dbm.clock() - t0
              if dbm.clock() - start > 0.3 then times[#times + 1] = t end
            end
            table.sort(times)
            return times[#times // 2 + 1]
            """
            guard let luaSeconds = Double(try lua.evaluate("(function() \(code) end)()").first ?? "") else {
                throw DBMError("the Lua block benchmark failed")
            }
            let swift = try NNBench.measure(cfg, reps: n)
            let gflops = swift.causalFlops / luaSeconds / 1e9
            print(String(format: "  B=%d T=%d C=%d: from Lua %.2f ms = %.1f GFLOP/s (causal count) = %.1f%% of the sgemm reference; "
                         + "Swift-composed %.2f ms; Lua's share %+.1f%%",
                         cfg.B, cfg.T, cfg.C, luaSeconds * 1e3, gflops, 100 * gflops / referenceGflops,
                         swift.seconds * 1e3, 100 * (luaSeconds / swift.seconds - 1)))
        }
    }
}

/// A whole nano-GPT training step from Lua (forward, backward, clipping, AdamW), at the issue 5 presets,
/// as experiments/nanogpt.lua runs it; and the cost of recording the spectra at the default cadence.
enum GPTStepBench {
    struct Preset { let name: String, nLayer: Int, nHead: Int, nEmbd: Int, block: Int, batch: Int, steps: Int, target: Int }

    static func run(lua: LuaState) throws {
        let quick = ProcessInfo.processInfo.environment["BENCH_REPS"].flatMap { Int($0) }.map { $0 < 10 } ?? false
        print("nano-GPT training step from Lua (forward + backward + clip + AdamW, float32; FLOPs = 6 × non-embedding "
              + "parameters × tokens + 12·n_layer·n_embd·T per token for attention, as nanoGPT's estimate_mfu):")
        var paperPeak = 0
        for p in [Preset(name: "cpu", nLayer: 4, nHead: 4, nEmbd: 128, block: 64, batch: 12, steps: quick ? 10 : 30, target: 60),
                  Preset(name: "paper", nLayer: 6, nHead: 6, nEmbd: 384, block: 256, batch: 64, steps: quick ? 2 : 5, target: 85)] {
            if p.name == "paper" {   // the peak of this preset alone: drop cached memory, reset VmHWM
                _ = try lua.evaluate("(function() collectgarbage(); collectgarbage(); return dbm.release_cached_memory() end)()")
                try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            }
            _ = try lua.evaluate("(function() \(setupScript(p)) end)()")
            let (stepTimes, references) = try timeSteps(p, lua: lua)
            let r = try lua.evaluate("_bench_record()")
            _ = try lua.evaluate("(function() _bench_step, _bench_record = nil, nil; collectgarbage() end)()")
            guard r.count == 3, let record = Double(r[0]), let params = Double(r[1]) else {
                throw DBMError("the GPT step benchmark failed: \(r)")
            }
            report(p, stepTimes: stepTimes, references: references, params: params, matrices: r[2], record: record)
            if p.name == "paper" { paperPeak = MemoryLimit.residentSet().peak }   // before the ceiling's own tensors
            try reportLinearCeiling(p, referenceGflops: median(references))
        }
        print(String(format: "  peak resident memory of the paper preset: %.0f MiB (VmHWM, reset before it; target <= 2200 MiB)", Double(paperPeak) / 1048576))
    }

    /// The Lua code that builds the preset's model, optimizer and batch, takes two warm-up steps and
    /// defines `_bench_step` (one timed step) and `_bench_record` (the spectra of every watched matrix).
    static func setupScript(_ p: Preset) -> String {
        let dropout = p.name == "paper" ? 0.2 : 0.0
        return """
        local nn = dbm.nn
        dbm.seed(1)
        local V = 65
        local model = nn.GPT{vocab_size = V, block_size = \(p.block), n_layer = \(p.nLayer), n_head = \(p.nHead), n_embd = \(p.nEmbd), dropout = \(dropout)}
        local opt = dbm.optim.AdamW(model:optimizer_groups(0.1), {lr = 1e-3, betas = {0.9, 0.99}})
        local g = dbm.generator(7)
        local function batch()
          local ids = g:rand(\(p.batch), \(p.block) + 1, {low = 1, high = V + 1}):clamp(1, V):totable()
          for _, row in ipairs(ids) do for j = 1, #row do row[j] = math.floor(row[j]) end end
          local t = dbm.tensor(ids)
          return t:narrow(2, 1, \(p.block)), t:narrow(2, 2, \(p.block))
        end
        local function step(x, y)
          local _, loss = model(x, y)
          loss:backward()
          dbm.optim.clip_grad_norm(model, 1.0)
          opt:step(); opt:zero_grad()
        end
        local x, y = batch()
        step(x, y); step(x, y)
        -- one timed step, called from Swift between runs of the sgemm reference
        _bench_step = function() local t0 = dbm.clock(); step(x, y); return dbm.clock() - t0 end
        -- spectra of every watched matrix (as the experiment watches them) with its five diagnostics
        _bench_record = function()
          local C, names = \(p.nEmbd), {"spectrum", "mp", "spacing", "powerlaw", "norms"}
          local mats = {model.transformer.wte.weight, model.transformer.wpe.weight}
          for _, b in model.transformer.h:ipairs() do
            for j = 1, 3 do mats[#mats + 1] = b.attn.c_attn.weight:narrow(1, (j - 1) * C + 1, C) end
            mats[#mats + 1] = b.attn.c_proj.weight; mats[#mats + 1] = b.mlp.c_fc.weight; mats[#mats + 1] = b.mlp.c_proj.weight
          end
          local t0 = dbm.clock()
          for _, W in ipairs(mats) do dbm.diagnostics(names, W) end
          return dbm.clock() - t0, model:num_parameters(), #mats
        end
        """
    }

    /// The measure: the step times against 5 reference runs interleaved with the steps, so that
    /// both see the same load on this shared machine.
    static func timeSteps(_ p: Preset, lua: LuaState) throws -> (stepTimes: [Double], references: [Double]) {
        var stepTimes: [Double] = [], references: [Double] = []
        let rounds = 5, perRound = max(1, p.steps / rounds)
        for _ in 0..<rounds {
            references.append(try sgemmReferenceGflops(reps: 5))   // one reference run: 5 back-to-back calls
            // The reference is a threaded call: OpenBLAS's worker spins for about 0.1 s after it and takes a
            // core from the steps (training never wakes it: Gemm.run). Untimed steps until it sleeps.
            let settle = now()
            while now() - settle < 0.2 { _ = try lua.evaluate("_bench_step()") }
            for _ in 0..<perRound {
                guard let t = Double(try lua.evaluate("_bench_step()").first ?? "") else { throw DBMError("the GPT step failed") }
                stepTimes.append(t)
            }
        }
        return (stepTimes, references)
    }

    /// What raw cblas_sgemm makes of the step's linear products alone, at the preset's shapes (N tokens;
    /// forward out = X·Wᵀ, backward dX = dY·W and dW = dYᵀ·X, for c_attn, attn.c_proj, c_fc, mlp.c_proj and
    /// lm_head): they are about 90% of the FLOPs estimate_mfu counts, so their rate against the reference is
    /// roughly the most the step's ratio can show in the same minute (attention, layer norm, GELU, dropout and
    /// AdamW add time; estimate_mfu counts the full T² of attention, the step computes about its causal half).
    /// Measured after the steps, not interleaved with them: on this shared machine it is as noisy as the host.
    static func reportLinearCeiling(_ p: Preset, referenceGflops: Double) throws {
        let N = p.batch * p.block, C = p.nEmbd
        let shapes = [(3 * C, C), (C, C), (4 * C, C), (C, 4 * C), (65, C)]   // (out, in) of each weight
        let g = Generator(seed: 3)
        var seconds = 0.0, flops = 0.0
        for (outF, inF) in shapes {
            let x = try Tensor.randn([N, inF], generator: g), dy = try Tensor.randn([N, outF], generator: g)
            let w = try Tensor.randn([outF, inF], generator: g)
            let y = try Tensor(shape: [N, outF]), dx = try Tensor(shape: [N, inF]), dw = try Tensor(shape: [outF, inF])
            let (X, DY, W) = (x.pointer(Float.self), dy.pointer(Float.self), w.pointer(Float.self))
            let (n, o, i) = (Int32(N), Int32(outF), Int32(inF))
            seconds += medianSeconds(runs: 3) { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, o, i, 1, X, i, W, i, 0, y.pointer(Float.self), o) }
            seconds += medianSeconds(runs: 3) { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, i, o, 1, DY, o, W, i, 0, dx.pointer(Float.self), i) }
            seconds += medianSeconds(runs: 3) { cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, i, n, 1, DY, o, X, i, 0, dw.pointer(Float.self), i) }
            flops += 3 * 2 * Double(N) * Double(outF * inF)
        }
        // Every layer has the same four products; lm_head once.
        let layers = Double(p.nLayer), lm = 3 * 2 * Double(N) * Double(65 * C)
        let stepFlops = (flops - lm) * layers + lm
        let gflops = flops / seconds / 1e9
        print(String(format: "    its linear products alone as raw cblas_sgemm calls (forward, dX, dW at (%d tokens) × the block's and lm_head's "
                     + "weights, medians of 3): %.1f GFLOP/s = %.1f%% of the reference; %.1f GFLOP per step, %.0f ms per step at that rate",
                     N, gflops, 100 * gflops / referenceGflops, stepFlops / 1e9, stepFlops / gflops / 1e6))
    }

    /// Prints the preset's line: the median step and its GFLOP/s against the median reference, and the
    /// cost of recording the spectra of `matrices` matrices every 100 steps.
    static func report(_ p: Preset, stepTimes: [Double], references: [Double], params: Double, matrices: String, record: Double) {
        let seconds = median(stepTimes), referenceGflops = median(references)
        let tokens = Double(p.batch * p.block)
        let flops = 6 * params * tokens + 12 * Double(p.nLayer * p.nEmbd * p.block) * tokens
        let gflops = flops / seconds / 1e9
        let overhead = record / (100 * seconds)
        print(String(format: "  %@ (n_layer %d, n_embd %d, block %d, batch %d): %.1f ms per step (median of %d), %.1f GFLOP/s = %.1f%% "
                     + "of the sgemm reference interleaved with the steps (median of 5 runs: %.1f GFLOP/s, spread %.1f–%.1f) (target >= %d%%); "
                     + "recording the spectra of %@ matrices: %.0f ms, every 100 steps = %.2f%% of the training time (target <= 5%%)",
                     p.name, p.nLayer, p.nEmbd, p.block, p.batch, seconds * 1e3, stepTimes.count, gflops, 100 * gflops / referenceGflops,
                     referenceGflops, references.min() ?? 0, references.max() ?? 0, p.target, matrices, record * 1e3, 100 * overhead))
    }
}
