import Foundation
import Testing
import DBMCore

/// experiments/nanogpt.lua as a user runs it, shortened: bad configurations stop before any training;
/// a small model learns Shakespeare and fills its run directory (spectra at initialisation on the
/// Marchenko–Pastur law, nanoGPT's checkpoint names); Ctrl-C and a kill both leave a run that resumes
/// to exactly the losses of a run that never stopped.
@Suite("nano-GPT experiment")
struct NanoGPTTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = root + "/experiments/nanogpt.lua"
    static let corpus = root + "/data/shakespeare/input.txt"
    /// A small model that trains in seconds.
    static let small = ["--n_layer=2", "--n_head=2", "--n_embd=64", "--block_size=32", "--batch_size=16",
                        "--warmup_iters=20", "--lr=2e-3", "--min_lr=2e-4", "--sample_tokens=40"]

    func tempDir() throws -> String { try makeTempDir("dbm-nanogpt") }

    func metrics(_ dir: String) throws -> [[String: JSONValue]] {
        let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            guard case .object(let fields) = try JSONValue.parse(String(line)) else { throw DBMError("not an object: \(line)") }
            return Dictionary(fields, uniquingKeysWith: { a, _ in a })
        }
    }

    func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .number(let x)?: return x
        case .integer(let i)?: return Double(i)
        default: return nil
        }
    }

    /// The evaluation lines (step, train_loss, val_loss, lr) as text, for exact comparison.
    func evaluations(_ dir: String) throws -> [String] {
        try metrics(dir).filter { $0["val_loss"] != nil }.map { m in
            ["step", "train_loss", "val_loss", "lr"].map { m[$0].map { $0.encoded() } ?? "-" }.joined(separator: " ")
        }
    }

    @Test("bad configurations: one clear message and status 1 before any training, no run directory")
    func badConfigurations() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let tiny = d + "/tiny.txt"
        try "to be or not to be".write(toFile: tiny, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--n_layer=0"], "--n_layer: expected a positive integer, got 0"),
            (["--batch_size=-3"], "--batch_size: expected a positive integer, got -3"),
            (["--n_embd=100", "--n_head=3"], "--n_embd=100 is not divisible by --n_head=3"),
            (["--preset=huge"], "unknown preset 'huge' (expected cpu or paper)"),
            (["--data=" + d + "/missing.txt"], "cannot read the text"),
            (["--data=" + tiny], "--block_size=64 is larger than the train split"),
            (["--lr=-1"], "lr > 0"),
            (["--dropout=1.5"], "--dropout: expected a probability in [0, 1), got 1.5"),
            (["--n_layr=2"], "unknown key 'n_layr'"),
            (["--n_head=0"], "--n_head: expected a positive integer, got 0"),
            (["--warmup_iters=2000"], "expected 0 <= warmup_iters < max_iters, got --warmup_iters=2000 with --max_iters=2000"),
            (["--preset=paper", "--n_layer=abc"], "--n_layer: 'abc' is not an integer"),
            (["--resume=" + d + "/nothing"], "expected a run directory with a config.json"),
        ]
        for (args, message) in cases {
            let out = d + "/run"
            let r = try runProcess(try dbmLuaBinary(), [Self.script] + args + ["--out_dir=" + out])
            #expect(r.status == 1, "\(args): status \(r.status)")
            #expect(r.stderr.contains(message), "\(args): stderr was \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(args) created a run directory")
            #expect(!r.stdout.contains("train "), "\(args) started training")
        }
    }

    @Test("--help lists the keys with the chosen preset's values, and the presets")
    func help() throws {
        let r = try runProcess(try dbmLuaBinary(), [Self.script, "--preset=paper", "--help"])
        #expect(r.status == 0 && r.stdout.contains("  n_layer=6\n") && r.stdout.contains("  dropout=0.2\n")
                && r.stdout.contains("presets (--preset=NAME): cpu, paper") && r.stdout.contains("--resume=RUN_DIR"), "\(r.stdout) \(r.stderr)")
    }

    @Test("a small GPT learns Shakespeare; its run directory: losses, spectra on MP at initialisation, nanoGPT's checkpoint, plots, summary")
    func shortRun() throws {
        try #require(FileManager.default.fileExists(atPath: Self.corpus), "scripts/setup fetches the corpus")
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let out = d + "/run"
        let r = try runProcess(try dbmLuaBinary(), [Self.script] + Self.small
            + ["--max_iters=300", "--eval_interval=100", "--eval_iters=20", "--spectra_every=100", "--out_dir=" + out])
        try #require(r.status == 0, "nanogpt failed: \(r.stdout) \(r.stderr)")
        let evals = try metrics(out).filter { $0["val_loss"] != nil }
        #expect(evals.count == 4)
        guard let first = number(evals.first?["val_loss"]), let last = number(evals.last?["val_loss"]) else {
            Issue.record("no losses in metrics.jsonl"); return
        }
        // ln 84 = 4.43 at initialisation; a model that learns nothing beyond character frequencies stays
        // above 3.3; this one reaches about 2.5 in 300 steps.
        #expect(first > 4.2 && first < 4.7, "initial validation loss \(first)")
        #expect(last < 2.9, "validation loss after 300 steps: \(last)")
        for file in ["config.json", "metrics.jsonl", "observables.jsonl", "model.safetensors", "ckpt.safetensors", "summary.md",
                     "DONE", "spectra/h.0.attn.k.npy", "spectra/h.1.mlp.c_fc.npy", "spectra/wte.npy", "spectra/steps.npy",
                     "plots/metrics.png", "plots/h.1.attn.k_density.png", "plots/h.0.attn.q_flow.png", "plots/h.0.attn.k_observables.png"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "missing \(file)")
        }
        #expect(r.stdout.contains("sample:"))
        #expect(try filesWrittenAfterDone(out) == [], "summary.md, checkpoints and plots are written before DONE")
        let summary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
        #expect(summary.contains("\nFinal losses: train ") && summary.contains("\n| h.0.attn.k | 0 | ") && summary.contains("\n## Sample\n"),
                "summary.md: \(summary)")
        // Python: nanoGPT's names and layout, the metadata; the key blocks at step 0 on the MP law.
        let py = #"""
import sys, json, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
d = sys.argv[1]
t = load_file(f'{d}/model.safetensors')
with safe_open(f'{d}/model.safetensors', framework='np') as f: meta = f.metadata()
names = {'transformer.wte.weight': (84, 64), 'transformer.wpe.weight': (32, 64), 'transformer.ln_f.weight': (64,),
         'lm_head.weight': (84, 64)}
for i in range(2):
    names.update({f'transformer.h.{i}.ln_1.weight': (64,), f'transformer.h.{i}.attn.c_attn.weight': (192, 64),
                  f'transformer.h.{i}.attn.c_proj.weight': (64, 64), f'transformer.h.{i}.ln_2.weight': (64,),
                  f'transformer.h.{i}.mlp.c_fc.weight': (256, 64), f'transformer.h.{i}.mlp.c_proj.weight': (64, 256)})
assert set(t) == set(names), sorted(set(t) ^ set(names))
for k, shape in names.items(): assert t[k].shape == shape and t[k].dtype == np.float32, (k, t[k].shape)
assert np.array_equal(t['lm_head.weight'], t['transformer.wte.weight'])
assert meta['n_layer'] == '2' and meta['n_head'] == '2' and meta['n_embd'] == '64' and meta['block_size'] == '32'
assert meta['vocab_size'] == '84' and len(meta['vocab']) == 84 and meta['vocab'] == ''.join(sorted(meta['vocab'])), meta
c = load_file(f'{d}/ckpt.safetensors')
assert any(k.startswith('optim.') for k in c) and 'rng.default' in c and 'rng.data' in c
# The logged lr is the optimizer's rate for the update from each evaluation step, nanoGPT's get_lr (warm-up
# 20, 2e-3 -> 2e-4 at 300), one rate for both groups; the last checkpoint holds that rate and the own rates.
import math
def get_lr(it, lr=2e-3, warmup=20, total=300, min_lr=2e-4):
    if it < warmup: return lr * (it + 1) / (warmup + 1)
    if it > total: return min_lr
    return min_lr + 0.5 * (1 + math.cos(math.pi * (it - warmup) / (total - warmup))) * (lr - min_lr)
evals = [m for m in map(json.loads, open(f'{d}/metrics.jsonl')) if 'val_loss' in m]
assert [m['step'] for m in evals] == [0, 100, 200, 300], evals
for m in evals: assert abs(m['lr'] - get_lr(m['step'])) <= 1e-18 and not any(k.startswith('lr_') for k in m), m
assert c['optim.lr'].tolist() == [evals[-1]['lr']] * 2 and c['optim.group_lr'].tolist() == [2e-3, 2e-3], (c['optim.lr'], c['optim.group_lr'])
obs = [json.loads(l) for l in open(f'{d}/observables.jsonl')]
edge = 4 * 64 * 0.02 ** 2
for i in range(2):
    at0 = {o['diagnostic']: o for o in obs if o['matrix'] == f'h.{i}.attn.k' and o['step'] == 0}
    assert abs(at0['spectrum']['lambda_max'] / edge - 1) < 0.12, at0['spectrum']['lambda_max']
    assert at0['mp']['mp_outliers'] == 0 and at0['mp']['mp_ks'] < 0.08, at0['mp']
    assert abs(at0['mp']['mp_sigma2'] / 0.02 ** 2 - 1) < 0.1, at0['mp']['mp_sigma2']
print('OK')
"""#
        let p = try runProcess("/usr/bin/env", ["python3", "-c", py, out])
        #expect(p.status == 0 && p.stdout.contains("OK"), "python: \(p.stdout) \(p.stderr)")
    }

    /// Waits until the run has logged a line at or after `step`.
    func waitForStep(_ dir: String, _ step: Int, timeout: Double = 120) throws {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if let m = try? metrics(dir), m.contains(where: { (number($0["step"]) ?? -1) >= Double(step) }) { return }
            usleep(20_000)
        }
        throw DBMError("the run did not reach step \(step) in \(timeout) s")
    }

    /// Rewrites a run's checkpoint into the layout written before optim.group_lr: optim.lr alone, the rate
    /// the last step had set on every group (the schedule's value at step − 1).
    func rewriteInOlderLayout(_ dir: String) throws {
        let lua = """
        local path = arg[1] .. "/ckpt.safetensors"
        local t, meta = dbm.load_safetensors(path)
        local step = math.tointeger(t["optim.step_count"]:item())
        local last = dbm.optim.cosine{lr = 2e-3, warmup = 20, total = 80, min_lr = 2e-4}(math.max(step - 1, 0))
        t["optim.group_lr"] = nil
        t["optim.lr"] = dbm.tensor({last, last}, {dtype = "float64"})
        dbm.save_safetensors(path, t, meta)
        """
        try lua.write(toFile: dir + "/older.lua", atomically: true, encoding: .utf8)
        let r = try runProcess(try dbmLuaBinary(), [dir + "/older.lua", dir])
        #expect(r.status == 0, "\(r.stderr)")
        try FileManager.default.removeItem(atPath: dir + "/older.lua")
    }

    @Test("Ctrl-C writes a checkpoint and valid files; a kill leaves the last evaluation's; both resume to the same losses bit for bit, also from a checkpoint in the older layout")
    func interruptAndResume() throws {
        try #require(FileManager.default.fileExists(atPath: Self.corpus), "scripts/setup fetches the corpus")
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let args = Self.small + ["--max_iters=80", "--eval_interval=20", "--eval_iters=5", "--spectra_every=10", "--dropout=0.1"]
        let exe = try dbmLuaBinary()
        let full = try runProcess(exe, [Self.script] + args + ["--out_dir=" + d + "/full"])
        try #require(full.status == 0, "\(full.stderr)")
        let expected = try evaluations(d + "/full")
        #expect(expected.count == 5)

        for (signal, older) in [(SIGINT, false), (SIGKILL, false), (SIGKILL, true)] {
            let dir = d + "/cut\(signal)" + (older ? "-older" : "")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = [Self.script] + args + ["--out_dir=" + dir]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run()
            try waitForStep(dir, 33)
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            #expect(p.terminationStatus == (signal == SIGINT ? 130 : SIGKILL), "signal \(signal): status \(p.terminationStatus)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/DONE"))
            if older { try rewriteInOlderLayout(dir) }
            let resumed = try runProcess(exe, [Self.script, "--resume=" + dir])
            try #require(resumed.status == 0, "resume after signal \(signal): \(resumed.stderr)")
            #expect(try evaluations(dir) == expected, "signal \(signal): losses differ after resuming")
            #expect(FileManager.default.fileExists(atPath: dir + "/DONE"))
            let steps = try Npy.read(path: dir + "/spectra/steps.npy").toDoubles()
            #expect(steps == stride(from: 0.0, through: 80, by: 10).map { $0 }, "signal \(signal): recorded steps \(steps)")
        }
    }
}
