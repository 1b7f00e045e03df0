import CBLAS
import DBMCore
import DBMLua
import Foundation

/// The recorder's cost per record must not grow with the length of the run (issue 12, item 5): one
/// 64×64 matrix's spectrum recorded at every step, 10,000 steps against 20,000 (target: at most 2.2×).
/// Before the spectra files grew by appending, each record rewrote spectra/W.npy and steps.npy whole,
/// so 20,000 steps cost about 4× 10,000. Each run is timed from its first rec:step to the end of
/// rec:close (plots off: gnuplot is not the recorder); the two lengths alternate, medians of up to 3.
/// OpenBLAS on one thread: the 64×64 eigenvalues then take ~0.15 ms rather than ~1 ms (two threads
/// cost more than they save on so small a matrix), so the files' share of each record, the part that
/// used to grow with the run, weighs more in the ratio, and the benchmark takes a quarter of the time.
enum RecorderBench {
    static func run(reps: Int) throws {
        let threads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(threads) }
        let lua = try LuaState()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dbm-bench-recorder-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func seconds(steps: Int, rep: Int) throws -> Double {
            let run = "\(dir)/run-\(steps)-\(rep)"
            defer { try? FileManager.default.removeItem(atPath: run) }
            let code = """
            (function()
              collectgarbage()
              local rec = dbm.recorder{out_dir = "\(run)", plots = false, report = function() end}
              local W = dbm.randn(64, 64, {dtype = "float64", generator = dbm.generator(1)})
              rec:watch("W", W, {every = 1})
              local t0 = dbm.clock()
              for step = 0, \(steps - 1) do rec:step(step) end
              rec:close()
              local t = dbm.clock() - t0
              local rows = dbm.load_npy("\(run)/spectra/W.npy"):shape()[1]
              assert(rows == \(steps), "spectra/W.npy has " .. rows .. " rows")
              return t
            end)()
            """
            guard let v = Double(try lua.evaluate(code).first ?? "") else { throw DBMError("the recorder benchmark failed") }
            return v
        }
        let n = max(1, min(reps, 3))
        var short: [Double] = [], long: [Double] = []
        for r in 0..<n {
            short.append(try seconds(steps: 10_000, rep: r))
            long.append(try seconds(steps: 20_000, rep: r))
        }
        let (a, b) = (median(short), median(long))
        print(String(format: "recorder, one 64x64 matrix's spectrum every step (OpenBLAS on 1 thread): 10000 steps %.2f s (%.0f us/record), "
                     + "20000 steps %.2f s (%.0f us/record); ratio %.3f (target <= 2.2; medians of %d)",
                     a, a / 10_000 * 1e6, b, b / 20_000 * 1e6, b / a, n))
    }
}
