// Cost of the diagnostics plugins (issue 3: recording spectrum, mp, spacing and powerlaw for a 384×1536
// matrix takes ≤ 1.3× the time of eigvalsh(gram(W)) alone). Both are timed from Lua in the same run,
// alternating within each repetition so that both see the same load; the figure is the ratio of medians.
import DBMCore
import DBMLua

enum DiagnosticsBench {
    static func run(lua: LuaState) throws {
        let reps = 41
        // A record as the recorder makes it: dbm.diagnostics builds one context (eigvalsh of the smaller Gram
        // matrix, shared by the plugins) and runs each plugin on it, checking its result.
        _ = try lua.evaluate("""
            (function()
              local diagnostics = require("dbm.diagnostics")
              local names = {"spectrum", "mp", "spacing", "powerlaw"}
              local W = dbm.randn(384, 1536, {generator = dbm.generator(11)})
              for _, name in ipairs(names) do diagnostics.load(name) end
              DiagnosticsBench = {}
              function DiagnosticsBench.reference()
                local t0 = dbm.clock()
                local levels = dbm.eigvalsh(dbm.gram(W))
                return dbm.clock() - t0
              end
              function DiagnosticsBench.record()
                local t0 = dbm.clock()
                local results, failures = diagnostics.run(names, W)
                local elapsed = dbm.clock() - t0
                local name, why = next(failures)
                if name then error(why) end
                return elapsed
              end
            end)()
            """)
        var reference: [Double] = [], record: [Double] = []
        for _ in 0...reps {
            guard let r = Double(try lua.evaluate("DiagnosticsBench.reference()").first ?? ""),
                  let d = Double(try lua.evaluate("DiagnosticsBench.record()").first ?? "") else {
                throw DBMError("diagnostics benchmark: a timing did not return a number")
            }
            reference.append(r); record.append(d)
        }
        reference.removeFirst(); record.removeFirst()   // warm-up
        let ratio = median(record) / median(reference)
        print(String(format: "diagnostics spectrum+mp+spacing+powerlaw on 384x1536: %.2f ms per record; eigvalsh(gram(W)) alone: %.2f ms; ratio %.3f (target <= 1.3)",
                     median(record) * 1e3, median(reference) * 1e3, ratio))
    }
}
