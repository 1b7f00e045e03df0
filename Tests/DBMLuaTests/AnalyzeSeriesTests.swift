import Foundation
import Testing
import DBMCore
import DBMLua

/// `dbm-lua analyze` on checkpoints over a training run (a series) and on fused attention projections
/// (--split-qkv): the series writes the run directory a training run's recorder writes, with the noise
/// temperature of each matrix from its level increments.
@Suite("dbm-lua analyze: checkpoint series and --split-qkv")
struct AnalyzeSeriesTests {
    func tempDir() throws -> String { try makeTempDir("dbm-series") }

    func python(_ script: String, _ args: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/env", ["python3", "-c", script] + args)
    }

    /// The lines of noise_temperature.jsonl, one object per matrix (JSON Lines and numbers read as the
    /// experiments' tests read them).
    func temperatures(_ dir: String) throws -> [[String: JSONValue]] {
        try ModelExperimentsTests().jsonLines(dir + "/noise_temperature.jsonl")
    }

    func number(_ v: JSONValue?) -> Double { ModelExperimentsTests().number(v) }

    func text(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    /// Checkpoints of matrix Brownian motion (dbm.models.matrix_bm from W(0) of iid N(0, 1) entries), one per
    /// step, named ckpt_<step>.safetensors with the step in their metadata.
    func writeBrownianCheckpoints(_ dir: String, rows: Int, cols: Int, temperature: Double, dt: Double,
                                  restoring: Double, steps: Int, seed: Int) throws {
        let script = dir + "/write.lua"
        try """
        local g = dbm.generator(\(seed))
        local m = dbm.models.matrix_bm{initial = dbm.randn(\(rows), \(cols), {dtype = "float64", generator = g}), dt = \(dt),
          temperature = \(temperature), restoring = \(restoring), seed = \(seed)}
        dbm.mkdir("\(dir)/ckpt")
        for s = 0, \(steps) do
          if s > 0 then m:step() end
          dbm.save_safetensors(("\(dir)/ckpt/ckpt_%d.safetensors"):format(s), {{"W", m.weight}}, {step = tostring(s)})
        end
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runProcess(try dbmLuaBinary(), [script])
        try #require(r.status == 0, "writing the checkpoints failed: \(r.stderr)")
    }

    @Test("--split-qkv: every layout of dbm.qkv takes its model's rows or columns for q, k and v; unknown layouts are refused")
    func layouts() throws {
        let state = try LuaState()
        let err = state.runFile(luaTestFolder + "/qkv.lua")
        #expect(err == nil, "qkv.lua: \(err ?? "")")
    }

    @Test("--split-qkv reads the layout from the model folder's config.json: GPT-2's Conv1D columns; a model type without a layout is refused")
    func splitFromConfig() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let bin = try dbmLuaBinary()
        for sub in ["gpt2", "mpt"] { try FileManager.default.createDirectory(atPath: d + "/" + sub, withIntermediateDirectories: true) }
        try #"{"model_type": "gpt2", "n_embd": 16, "n_head": 4}"#.write(toFile: d + "/gpt2/config.json", atomically: true, encoding: .utf8)
        try #"{"model_type": "mpt", "d_model": 16, "n_heads": 4}"#.write(toFile: d + "/mpt/config.json", atomically: true, encoding: .utf8)
        let script = d + "/write.lua"
        try """
        dbm.save_safetensors("\(d)/gpt2/model.safetensors", {{"h.0.attn.c_attn.weight", dbm.randn(16, 48)}, {"h.0.mlp.c_fc.weight", dbm.randn(16, 64)}})
        dbm.save_safetensors("\(d)/mpt/model.safetensors", {{"transformer.blocks.0.attn.Wqkv.weight", dbm.randn(48, 16)}})
        """.write(toFile: script, atomically: true, encoding: .utf8)
        try #require(try runProcess(bin, [script]).status == 0)
        let gpt2 = try runProcess(bin, ["analyze", d + "/gpt2/model.safetensors", "--split-qkv", "--json", "--diagnostics=spectrum"])
        #expect(gpt2.status == 0, "\(gpt2.stderr)")
        for part in ["q", "k", "v"] {
            #expect(gpt2.stdout.contains("\"name\":\"h.0.attn.\(part)\"") && gpt2.stdout.contains("\"shape\":[16,16]"), "\(gpt2.stdout)")
        }
        #expect(gpt2.stdout.contains("\"name\":\"h.0.mlp.c_fc.weight\"") && !gpt2.stdout.contains("c_attn"), "\(gpt2.stdout)")
        let mpt = try runProcess(bin, ["analyze", d + "/mpt/model.safetensors", "--split-qkv"])
        #expect(mpt.status == 1 && mpt.stderr.contains("no known layout of a fused q, k, v projection fits")
                && mpt.stderr.contains("model_type 'mpt'") && mpt.stderr.split(separator: "\n").count == 1, "\(mpt.stderr)")
    }

    /// The recorder of experiments/nanogpt.lua computes each level from the float32 weights converted to
    /// float64 (dbm.gram converts, then dsyrk and dsyevd in float64); the series reads the same float32
    /// values from the kept checkpoints and goes through the same recorder, and the key block is the same
    /// narrow of the same rows: so the levels agree to rounding (here bit for bit), far inside 1e-10.
    @Test("a nano-GPT run's kept checkpoints as a series with --split-qkv: the run's own levels of h.<i>.attn.k (q, v, every matrix) within 1e-10")
    func nanoGPTSeries() throws {
        try #require(FileManager.default.fileExists(atPath: NanoGPTTests.corpus), "scripts/setup fetches the corpus")
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let run = d + "/run", series = d + "/series"
        let r = try runProcess(try dbmLuaBinary(), [NanoGPTTests.script] + NanoGPTTests.small
            + ["--keep_checkpoints", "--eval_interval=100", "--spectra_every=100", "--max_iters=400", "--eval_iters=5", "--out_dir=" + run])
        try #require(r.status == 0, "nanogpt failed: \(r.stdout) \(r.stderr)")
        // The steps from the checkpoints' metadata (no --series), in any order of the arguments.
        let files = [400, 0, 300, 100, 200].map { "\(run)/checkpoints/ckpt_\($0).safetensors" }
        let a = try runProcess(try dbmLuaBinary(), ["analyze"] + files + ["--split-qkv", "--out_dir", series])
        try #require(a.status == 0, "analyze failed: \(a.stdout) \(a.stderr)")
        // Fewer than 8 checkpoints: the summary says why there is no temperature.
        #expect(a.stdout.contains("no noise temperature: 5 checkpoints: the estimate needs at least 8"), "\(a.stdout)")
        let summary = try String(contentsOfFile: series + "/summary.md", encoding: .utf8)
        #expect(summary.contains("No noise temperature: 5 checkpoints"), "\(summary)")
        for file in ["DONE", "config.json", "metrics.jsonl", "observables.jsonl", "spectra/steps.npy", "noise_temperature.jsonl",
                     "plots/transformer.h.0.attn.k_flow.png", "plots/transformer.h.1.attn.k_density.png"] {
            #expect(FileManager.default.fileExists(atPath: series + "/" + file), "missing \(file)")
        }
        let py = #"""
import sys, json, numpy as np
run, series = sys.argv[1], sys.argv[2]
steps = np.load(f'{run}/spectra/steps.npy')
assert list(steps) == [0, 100, 200, 300, 400] and list(np.load(f'{series}/spectra/steps.npy')) == list(steps), steps
# The name mapping of the README: the run's h.<i>.attn.q/k/v are the series' transformer.h.<i>.attn.q/k/v,
# its other matrices transformer.<name>.weight.
worst = 0.0
for i in range(2):
    pairs = [(f'h.{i}.attn.{p}', f'transformer.h.{i}.attn.{p}') for p in 'qkv']
    pairs += [(f'h.{i}.{m}', f'transformer.h.{i}.{m}.weight') for m in ['attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']]
    for a, b in pairs + [('wte', 'transformer.wte.weight'), ('wpe', 'transformer.wpe.weight')]:
        x, y = np.load(f'{run}/spectra/{a}.npy'), np.load(f'{series}/spectra/{b}.npy')
        assert x.shape == y.shape and x.shape[0] == 5, (a, x.shape, y.shape)
        worst = max(worst, float(np.max(np.abs(x - y) / np.abs(x))))
        assert np.all(np.abs(x - y) <= 1e-10 * np.abs(x)), (a, b)
obs = [json.loads(l) for l in open(f'{series}/observables.jsonl')]
assert {o['step'] for o in obs if o['matrix'] == 'transformer.h.0.attn.k'} == {0, 100, 200, 300, 400}
print('OK worst relative difference', worst)
"""#
        let p = try python(py, [run, series])
        print("nano-GPT series: \(p.stdout)")
        #expect(p.status == 0 && p.stdout.contains("OK"), "python: \(p.stdout) \(p.stderr)")
    }

    /// W ← W + √(2Tδt) G: the levels of WᵀW perform the Wishart-type DBM at temperature T (DESIGN §2).
    /// 40×4, T = 0.02, δt = 0.01, 400 steps: over 200 seeds the estimate's z = (T̂ − T)/SE was −0.21 ± 0.96
    /// (with 20 levels it is biased low by about one standard error, so few levels are used here).
    @Test("matrix Brownian motion checkpointed every step: the series' noise temperature is the known T within 3 standard errors, with no warning")
    func brownianTemperature() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let (t, dt) = (0.02, 0.01)
        try writeBrownianCheckpoints(d, rows: 40, cols: 4, temperature: t, dt: dt, restoring: 0, steps: 400, seed: 3)
        let a = try runProcess(try dbmLuaBinary(), ["analyze", d + "/ckpt", "--series", "--out_dir", d + "/series", "--lr=\(dt)", "--diagnostics=spectrum"])
        try #require(a.status == 0, "analyze failed: \(a.stdout) \(a.stderr)")
        let lines = try temperatures(d + "/series")
        try #require(lines.count == 1)
        let (tHat, se) = (number(lines[0]["temperature"]), number(lines[0]["stderr"]))
        print("matrix Brownian motion series: T = \(t), estimate \(tHat) ± \(se), z = \((tHat - t) / se)")
        #expect(abs(tHat - t) < 3 * se, "T = \(tHat) ± \(se), expected \(t)")
        #expect(lines[0]["warning"] == nil && !a.stderr.contains("warning"), "\(a.stderr)")
        #expect(number(lines[0]["checkpoints"]) == 401 && text(lines[0]["unit"]) == "lr")
        #expect(a.stdout.contains("units of lr = 0.01"), "\(a.stdout)")
    }

    /// dW = −γW dt + √(2T) dB relaxes its levels at rate 2γ: checkpoints δt = 0.5 apart with γ = 2 see
    /// levels that have forgotten the last checkpoint, so T comes out far too small, and the series says so.
    @Test("an Ornstein–Uhlenbeck matrix checkpointed far beyond its relaxation time: the series warns that T is underestimated")
    func relaxationWarning() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try writeBrownianCheckpoints(d, rows: 40, cols: 4, temperature: 0.02, dt: 0.5, restoring: 2, steps: 100, seed: 4)
        let a = try runProcess(try dbmLuaBinary(), ["analyze", d + "/ckpt", "--series", "--out_dir", d + "/series", "--diagnostics=spectrum"])
        try #require(a.status == 0, "analyze failed: \(a.stdout) \(a.stderr)")
        #expect(a.stderr.contains("warning: W: the intervals are long against the relaxation time"), "\(a.stderr)")
        let lines = try temperatures(d + "/series")
        #expect(lines.first?["warning"] != nil && text(lines.first?["unit"]) == "step")
        let summary = try String(contentsOfFile: d + "/series/summary.md", encoding: .utf8)
        #expect(summary.contains("the intervals are long against the relaxation time"), "\(summary)")
    }

    @Test("bad series: checkpoints of different models, steps missing or repeated, no --out_dir: one line on stderr, status 1 (2 for usage)")
    func badSeries() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let bin = try dbmLuaBinary()
        let script = d + "/write.lua"
        try """
        dbm.save_safetensors("\(d)/a_1.safetensors", {{"W", dbm.randn(6, 4)}}, {step = "1"})
        dbm.save_safetensors("\(d)/b_2.safetensors", {{"W", dbm.randn(6, 5)}}, {step = "2"})
        dbm.save_safetensors("\(d)/c_2.safetensors", {{"W", dbm.randn(6, 4)}}, {step = "2"})
        dbm.save_safetensors("\(d)/d_3.safetensors", {{"V", dbm.randn(6, 4)}}, {step = "3"})
        dbm.save_safetensors("\(d)/nostep.safetensors", {{"W", dbm.randn(6, 4)}})
        """.write(toFile: script, atomically: true, encoding: .utf8)
        try #require(try runProcess(bin, [script]).status == 0)
        let cases: [([String], Int32, String)] = [
            (["a_1", "b_2"], 1, "the tensor 'W' is (6, 4) in"),
            (["a_1", "d_3"], 1, "lacks the tensor 'W'"),
            (["c_2", "b_2"], 1, "are both step 2"),
            (["a_1", "nostep"], 1, "has no step in its metadata: give --series"),
        ]
        for (files, status, message) in cases {
            let r = try runProcess(bin, ["analyze"] + files.map { "\(d)/\($0).safetensors" } + ["--out_dir", d + "/out"])
            #expect(r.status == status && r.stderr.contains(message), "\(files): \(r.status) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(files): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: d + "/out"), "\(files) made a run directory")
        }
        let noOut = try runProcess(bin, ["analyze", d + "/a_1.safetensors", d + "/c_2.safetensors"])
        #expect(noOut.status == 2 && noOut.stderr.contains("give --out_dir DIR"), "\(noOut.stderr)")
        // Files that are no series (one has no step) are models analysed side by side.
        let notSeries = try runProcess(bin, ["analyze", d + "/a_1.safetensors", d + "/nostep.safetensors"])
        #expect(notSeries.status == 0 && notSeries.stdout.contains("nostep.safetensors: "), "\(notSeries.stdout)\n\(notSeries.stderr)")
        let names = try runProcess(bin, ["analyze", "--series", d + "/nostep.safetensors", d + "/a_1.safetensors", "--out_dir", d + "/out"])
        #expect(names.status == 1 && names.stderr.contains("no step number in its file name"), "\(names.stderr)")
        let lr = try runProcess(bin, ["analyze", d + "/a_1.safetensors", d + "/c_2.safetensors", "--out_dir", d + "/out", "--lr=-1"])
        #expect(lr.status == 2 && lr.stderr.contains("--lr needs a learning rate > 0"), "\(lr.stderr)")
    }
}
