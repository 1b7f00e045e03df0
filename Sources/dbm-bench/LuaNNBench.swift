// The same GPT block as NNBench, composed in Lua from dbm.nn modules (nn.Block) as an experiment script
// writes it: what the Lua layer costs on top of the Swift kernels, measured in the same run.
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

    static func run(lua: LuaState, referenceGflops: Double) throws {
        let quick = ProcessInfo.processInfo.environment["BENCH_REPS"].flatMap { Int($0) }.map { $0 < 10 } ?? false
        print("nano-GPT training step from Lua (forward + backward + clip + AdamW, float32; FLOPs = 6 × non-embedding "
              + "parameters × tokens + 12·n_layer·n_embd·T per token for attention, as nanoGPT's estimate_mfu):")
        for p in [Preset(name: "cpu", nLayer: 4, nHead: 4, nEmbd: 128, block: 64, batch: 12, steps: quick ? 10 : 30, target: 60),
                  Preset(name: "paper", nLayer: 6, nHead: 6, nEmbd: 384, block: 256, batch: 64, steps: quick ? 2 : 5, target: 85)] {
            let dropout = p.name == "paper" ? 0.2 : 0.0
            if p.name == "paper" {   // the peak of this preset alone: drop cached memory, reset VmHWM
                _ = try lua.evaluate("(function() collectgarbage(); collectgarbage(); return dbm.release_cached_memory() end)()")
                try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            }
            let code = """
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
            local times = {}
            for i = 1, \(p.steps) do
              local t0 = dbm.clock(); step(x, y); times[i] = dbm.clock() - t0
            end
            table.sort(times)
            -- spectra of every watched matrix (as the experiment watches them) with its five diagnostics
            local C, names = \(p.nEmbd), {"spectrum", "mp", "spacing", "powerlaw", "norms"}
            local mats = {model.transformer.wte.weight, model.transformer.wpe.weight}
            for _, b in model.transformer.h:ipairs() do
              for j = 1, 3 do mats[#mats + 1] = b.attn.c_attn.weight:narrow(1, (j - 1) * C + 1, C) end
              mats[#mats + 1] = b.attn.c_proj.weight; mats[#mats + 1] = b.mlp.c_fc.weight; mats[#mats + 1] = b.mlp.c_proj.weight
            end
            local t0 = dbm.clock()
            for _, W in ipairs(mats) do dbm.diagnostics(names, W) end
            local record = dbm.clock() - t0
            return times[#times // 2 + 1], model:num_parameters(), record, #mats
            """
            let r = try lua.evaluate("(function() \(code) end)()")
            guard r.count == 4, let seconds = Double(r[0]), let params = Double(r[1]), let record = Double(r[2]) else {
                throw DBMError("the GPT step benchmark failed: \(r)")
            }
            let tokens = Double(p.batch * p.block)
            let flops = 6 * params * tokens + 12 * Double(p.nLayer * p.nEmbd * p.block) * tokens
            let gflops = flops / seconds / 1e9
            let overhead = record / (100 * seconds)
            print(String(format: "  %@ (n_layer %d, n_embd %d, block %d, batch %d): %.1f ms per step, %.1f GFLOP/s = %.1f%% of the sgemm reference (target >= %d%%); "
                         + "recording the spectra of %@ matrices: %.0f ms, every 100 steps = %.2f%% of the training time (target <= 5%%)",
                         p.name, p.nLayer, p.nEmbd, p.block, p.batch, seconds * 1e3, gflops, 100 * gflops / referenceGflops, p.target,
                         r[3], record * 1e3, 100 * overhead))
        }
        let rss = MemoryLimit.residentSet()
        print(String(format: "  peak resident memory of the paper preset: %.0f MiB (VmHWM, reset before it; target <= 2200 MiB)", Double(rss.peak) / 1048576))
    }
}
