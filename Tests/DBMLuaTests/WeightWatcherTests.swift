import Foundation
import Testing
import DBMCore

/// The per-layer metrics of issue 15 against WeightWatcher 0.7.7 itself (installed by scripts/setup; it needs no
/// deep-learning framework on its flat-file models), and the Marchenko–Pastur spike count against planted spikes.
@Suite("WeightWatcher metrics")
struct WeightWatcherTests {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("weightwatcher").path

    /// JSON lines of an output, as dictionaries keyed by "name" (lines without a name are skipped).
    func rows(_ text: String) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for line in text.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if let obj, let name = obj["name"] as? String { out[name] = obj }
        }
        return out
    }

    @Test("--ks=powerlaw reproduces WeightWatcher 0.7.7's default fit: α, x_min and D to 1e-6 on 27 heavy-tailed matrices (24 of 100..360 levels, 3 below 20 where it fits small-N); α_weighted, log α-norm, tail size, rank and warnings too")
    func powerLawFitEqualsWeightWatcher() throws {
        let bin = try dbmLuaBinary(), dir = try makeTempDir("dbm-ww")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try runProcess(bin, [folder + "/heavy_tailed.lua", "--dir=" + dir])
        try #require(made.status == 0, "heavy_tailed.lua: \(made.stderr)")
        let ours = try runProcess(bin, ["analyze", dir + "/model.safetensors", "--ks=powerlaw", "--json", "--diagnostics=powerlaw,norms"])
        try #require(ours.status == 0, "analyze: \(ours.stderr)")
        let ww = try runProcess("/usr/bin/env", ["python3", folder + "/ww_reference.py", dir])
        try #require(ww.status == 0, "WeightWatcher 0.7.7 (scripts/setup installs it): \(ww.stderr)")
        let a = try rows(ours.stdout), w = try rows(ww.stdout)
        #expect(w.count == 27 && a.count == 27, "27 matrices each: ours \(a.count), WeightWatcher \(w.count)")
        var worst: [String: Double] = [:]
        for (name, ref) in w {
            let mine = try #require(a[name], "\(name) is in our output")
            // WeightWatcher's key, ours, relative (x_min is a level: compared relative to it)
            for (wk, k, relative) in [("alpha", "alpha", false), ("xmin", "alpha_xmin", true), ("D", "alpha_D", false),
                                      ("sigma", "alpha_err", false), ("alpha_weighted", "alpha_weighted", false),
                                      ("log_alpha_norm", "log_alpha_norm", false), ("num_pl_spikes", "alpha_ntail", false),
                                      ("matrix_rank", "matrix_rank", false), ("rank_loss", "rank_loss", false),
                                      ("log_norm", "log_norm", false), ("log_spectral_norm", "log_spectral_norm", false)] {
                let x = try #require(ref[wk] as? Double), y = try #require(mine[k] as? Double, "\(name): \(k)")
                let d = abs(x - y) / (relative ? abs(x) : 1)
                worst[wk] = max(worst[wk] ?? 0, d)
                #expect(d <= 1e-6, "\(name): WeightWatcher's \(wk) \(x), our \(k) \(y)")
            }
            let alpha = try #require(mine["alpha"] as? Double)
            let warning = alpha < 2 ? "over-trained" : alpha > 6 ? "under-trained" : ""
            #expect(ref["warning"] as? String == warning, "\(name): WeightWatcher's warning \(ref["warning"] ?? "") for α = \(alpha)")
        }
        print("WeightWatcher 0.7.7 against --ks=powerlaw on \(w.count) matrices, largest differences: \(worst.sorted { $0.key < $1.key })")
    }

    @Test("the two KS distances differ: the default two-sided fit is not WeightWatcher's on some heavy-tailed matrix, and --option powerlaw.ks= is the same as --ks=")
    func ksChoiceMatters() throws {
        let bin = try dbmLuaBinary(), dir = try makeTempDir("dbm-ww")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(try runProcess(bin, [folder + "/heavy_tailed.lua", "--dir=" + dir]).status == 0)
        let file = dir + "/model.safetensors", diag = "--diagnostics=powerlaw"
        let two = try rows(try runProcess(bin, ["analyze", file, "--json", diag]).stdout)
        let ww = try rows(try runProcess(bin, ["analyze", file, "--json", diag, "--ks=powerlaw"]).stdout)
        let option = try rows(try runProcess(bin, ["analyze", file, "--json", diag, "--option", "powerlaw.ks=powerlaw"]).stdout)
        #expect(ww.count == 27 && two.count == 27)
        let differ = ww.keys.filter { (ww[$0]?["alpha"] as? Double) != (two[$0]?["alpha"] as? Double) }.count
        #expect(differ > 0, "some α differs between the two distances")
        for (name, r) in ww { #expect((r["alpha"] as? Double) == (option[name]?["alpha"] as? Double), "\(name): --ks and --option agree") }
        let bad = try runProcess(bin, ["analyze", file, "--ks=one-sided"])
        #expect(bad.status == 2 && bad.stderr.contains("two-sided, powerlaw"), "an unknown distance is a usage error: \(bad.stderr)")
        let unknown = try runProcess(bin, ["analyze", file, "--option", "powerlaw.tail=5"])
        #expect(unknown.status == 2 && unknown.stderr.contains("no option 'tail'"), "an unknown option is a usage error: \(unknown.stderr)")
    }

    @Test("rank of a rank-5 product as numpy counts it, correlation traps of two large entries in the shuffled spectrum (none in Gaussian weights), the truncated power law on a cut tail (p < 1e-6) and on a pure one, the model-level summary hooks")
    func otherWeightWatcherMetrics() throws {
        let r = try runProcess(try dbmLuaBinary(), [luaTestFolder + "/ww_metrics.lua"])
        print(r.stdout)
        #expect(r.status == 0, "ww_metrics.lua: \(r.stdout)\(r.stderr)")
    }

    @Test("MP fit: pure noise at q = 1, 1/4, 1/16 (256 levels) has no spike and σ² within 2%, and 3 spikes planted at 1.5, 2, 3 × the BBP threshold are found exactly, each in ≥ 95% of 24 seeds (scripts/validate: 200)")
    func marchenkoPasturSpikes() throws {
        let r = try runProcess(try dbmLuaBinary(), [luaTestFolder + "/mp_spikes.lua", "--seeds=24"])
        print(r.stdout)
        #expect(r.status == 0, "mp_spikes.lua: \(r.stdout)\(r.stderr)")
    }
}
