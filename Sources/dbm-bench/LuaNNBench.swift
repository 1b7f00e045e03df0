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
