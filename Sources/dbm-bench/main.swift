// Speed figures of dbm-lua against raw cblas/LAPACK measured in the same run (DESIGN §8).
// Run by scripts/bench. Each figure is the median of several repetitions.
import CBLAS
import DBMCore
import DBMLua
import CLua
import Foundation

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The median seconds of `runs` calls of body, after one untimed warm-up call.
func medianSeconds(runs: Int, _ body: () -> Void) -> Double {
    body()
    return median((0..<runs).map { _ in let t0 = now(); body(); return now() - t0 })
}

/// GFLOP/s of a 1024³ cblas_sgemm on all cores (the reference of every speed ratio): the median of `reps`
/// calls after a warm-up.
func sgemmReferenceGflops(reps: Int) throws -> Double {
    let n = 1024
    let a = try Tensor.randn([n, n], generator: Generator(seed: 1))
    let b = try Tensor.randn([n, n], generator: Generator(seed: 2))
    let c = try Tensor(shape: [n, n])
    let seconds = medianSeconds(runs: reps) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.pointer(Float.self), Int32(n),
                    b.pointer(Float.self), Int32(n), 0, c.pointer(Float.self), Int32(n))
    }
    return 2.0 * Double(n * n * n) / seconds / 1e9
}

/// The reference as the full bench prints it.
func sgemmReference(reps: Int) throws -> Double {
    let gflops = try sgemmReferenceGflops(reps: reps)
    print(String(format: "sgemm reference (cblas_sgemm 1024x1024x1024 float32, all cores): %.2f ms, %.1f GFLOP/s",
                 2.0 * 1024 * 1024 * 1024 / gflops / 1e6, gflops))
    return gflops
}

enum Bench {
    static func run() throws {
        dbm_stdout_line_buffered()
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 15
        // What runs first: every figure below, the sgemm reference included, is on this kernel.
        print("dbm-bench: \(ProcessInfo.processInfo.activeProcessorCount) cores of \(BLASInfo.cpuModel); BLAS: \(BLASInfo.current.summary); "
              + "\(BLASInfo.current.config); medians of \(reps) runs")
        // `dbm-bench models` (scripts/bench models): only the small models' figures, in seconds.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("models") { try ModelsBench.run(reps: reps); return }
        // `dbm-bench sweep`: only the local sweep's 8-points-on-2-cores figure.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("sweep") { try SweepBench.run(); return }
        // `dbm-bench analyze`: only `dbm-lua analyze` on a GPT-2 small model folder.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("analyze") { try AnalyzeBench.run(); return }
        // `dbm-bench recorder`: only the recorder's 10,000 against 20,000 recorded steps.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("recorder") { try RecorderBench.run(reps: reps); return }
        // `dbm-bench report`: only what refreshing the plots during a nano-GPT run costs its training loop.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("report") { try ReportBench.run(reps: reps); return }

        // Ours and the reference alternate within each repetition, so that both see the same load
        // on this shared machine; each figure is the median over the repetitions.
        let lua = try LuaState()
        // `dbm-bench gpt`: only the sgemm reference and the nano-GPT training step.
        if ProcessInfo.processInfo.arguments.dropFirst().contains("gpt") {
            _ = try sgemmReference(reps: reps); try GPTStepBench.run(lua: lua)
            return
        }
        let refGflops = try matmulAgainstSgemm(lua: lua, reps: reps)
        try eigvalshAgainstDsyevd(lua: lua, reps: reps)
        try trivialCallCost(lua: lua)
        try DiagnosticsBench.run(lua: lua)
        try NNBench.run(referenceGflops: refGflops)
        try LuaNNBench.run(lua: lua, referenceGflops: refGflops)
        try GPTStepBench.run(lua: lua)
        try ModelsBench.run(reps: reps)
        try SweepBench.run()
        try RecorderBench.run(reps: reps)
        try AnalyzeBench.run()
        try ReportBench.run(reps: reps)
    }

    /// The seconds `body` (Lua statements) takes, timed inside Lua.
    static func luaTimed(_ lua: LuaState, _ body: String) throws -> Double {
        let r = try lua.evaluate("(function() local t0 = dbm.clock(); \(body); return dbm.clock() - t0 end)()")
        guard let v = Double(r.first ?? "") else { throw DBMError("benchmark code failed: \(body)") }
        return v
    }

    /// The median seconds of `reps` calls of `body` (Lua statements) after `setup` and one warm-up call,
    /// timed inside Lua.
    static func luaSeconds(_ lua: LuaState, _ setup: String, _ body: String, reps: Int) throws -> Double {
        let code = """
        \(setup)
        local function body() \(body) end
        body()
        local times = {}
        for i = 1, \(reps) do local t0 = dbm.clock(); body(); times[i] = dbm.clock() - t0 end
        table.sort(times)
        return times[\(reps / 2 + 1)]
        """
        guard let v = Double(try lua.evaluate("(function() \(code) end)()").first ?? "") else { throw DBMError("benchmark code failed") }
        return v
    }

    /// dbm.matmul from Lua against cblas_sgemm, 1024³ float32 on all cores; prints both and returns the
    /// reference's GFLOP/s (what the later figures are compared with).
    static func matmulAgainstSgemm(lua: LuaState, reps: Int) throws -> Double {
        let n = 1024
        let ga = try Tensor.randn([n, n], generator: Generator(seed: 1))
        let gb = try Tensor.randn([n, n], generator: Generator(seed: 2))
        let gc = try Tensor(shape: [n, n])
        _ = try lua.evaluate("(function() A, B = dbm.randn(1024, 1024), dbm.randn(1024, 1024) end)()")
        var refTimes: [Double] = [], ourTimes: [Double] = []
        for _ in 0...reps {
            let t0 = now()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, ga.pointer(Float.self), Int32(n),
                        gb.pointer(Float.self), Int32(n), 0, gc.pointer(Float.self), Int32(n))
            refTimes.append(now() - t0)
            ourTimes.append(try luaTimed(lua, "local C = dbm.matmul(A, B)"))
        }
        refTimes.removeFirst(); ourTimes.removeFirst()   // warm-up
        let flops = 2.0 * Double(n * n * n)
        let refGflops = flops / median(refTimes) / 1e9, ourGflops = flops / median(ourTimes) / 1e9
        print(String(format: "sgemm reference (cblas_sgemm 1024x1024x1024 float32, all cores): %.2f ms, %.1f GFLOP/s",
                     median(refTimes) * 1e3, refGflops))
        print(String(format: "matmul from Lua (1024x1024 float32): %.2f ms, %.1f GFLOP/s = %.1f%% of the sgemm reference (target >= 90%%)",
                     median(ourTimes) * 1e3, ourGflops, 100 * ourGflops / refGflops))
        return refGflops
    }

    /// dbm.eigvalsh from Lua against LAPACKE_dsyevd called directly, 1536×1536 float64.
    static func eigvalshAgainstDsyevd(lua: LuaState, reps: Int) throws {
        let m = 1536
        let a = try Tensor.randn([m, m], dtype: .float64, generator: Generator(seed: 3))
        let sym = try a.binary(.add, try a.t())
        try Npy.write(sym, path: "/tmp/dbm-bench-sym.npy")
        _ = try lua.evaluate("(function() S = dbm.load_npy('/tmp/dbm-bench-sym.npy') end)()")
        let work = try Tensor(shape: [m, m], dtype: .float64)
        let w = try Tensor(shape: [m], dtype: .float64)
        // The reference gets LAPACK's optimal workspace (a query first), as dbm's eigvalsh does.
        var query = [Double](repeating: 0, count: 1)
        var iquery = [Int32](repeating: 0, count: 1)
        _ = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "U")), Int32(m),
                                work.pointer(Double.self), Int32(m), w.pointer(Double.self), &query, -1, &iquery, -1)
        var lwork = [Double](repeating: 0, count: max(2 * m + 1, Int(query[0].rounded(.up)) + 1))
        var iwork = [Int32](repeating: 0, count: max(1, Int(iquery[0])))
        var lapackTimes: [Double] = [], eigTimes: [Double] = []
        for _ in 0...max(3, reps / 2) {
            let t0 = now()
            // The routine destroys its input, so a direct call needs a fresh copy as well.
            memcpy(work.pointer(Double.self), sym.pointer(Double.self), m * m * 8)
            _ = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "U")), Int32(m),
                                    work.pointer(Double.self), Int32(m), w.pointer(Double.self), &lwork, Int32(lwork.count), &iwork, Int32(iwork.count))
            lapackTimes.append(now() - t0)
            eigTimes.append(try luaTimed(lua, "local e = dbm.eigvalsh(S)"))
        }
        lapackTimes.removeFirst(); eigTimes.removeFirst()
        print(String(format: "eigvalsh from Lua (1536x1536 float64): %.1f ms; LAPACKE_dsyevd direct (with its input copy): %.1f ms; ratio %.3f (target <= 1.1)",
                     median(eigTimes) * 1e3, median(lapackTimes) * 1e3, median(eigTimes) / median(lapackTimes)))
    }

    /// The cost of a trivial binding call (dbm.numel) from Lua, above a Lua function call, and as a method.
    static func trivialCallCost(lua: LuaState) throws {
        let calls = 5_000_000
        let empty = try luaSeconds(lua, "local t = dbm.zeros(1); local f = function(x) return 1 end", "for i = 1, \(calls) do local n = f(t) end", reps: 5)
        let trivial = try luaSeconds(lua, "local t = dbm.zeros(1); local f = dbm.numel", "for i = 1, \(calls) do local n = f(t) end", reps: 5)
        let method = try luaSeconds(lua, "local t = dbm.zeros(1)", "for i = 1, \(calls) do local n = t:numel() end", reps: 5)
        print(String(format: "trivial call dbm.numel(t) from Lua: %.1f ns per call (%.1f ns above a Lua function call; target <= 100 ns); as a method t:numel(): %.1f ns",
                     trivial / Double(calls) * 1e9, (trivial - empty) / Double(calls) * 1e9, method / Double(calls) * 1e9))
    }
}

try Bench.run()
