import Foundation
import Testing
import DBMCore
import DBMLua

/// `dbm-lua analyze` as a user runs it: on weights written by numpy and by Python's safetensors, as a
/// table and as JSON lines, with plots, and on every kind of bad file (one line on stderr, status 1).
@Suite("dbm-lua analyze")
struct AnalyzeTests {
    func tempDir() throws -> String { try makeTempDir("dbm-analyze") }

    func python(_ script: String, _ args: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/env", ["python3", "-c", script] + args)
    }

    /// Gaussian weights (σ = 0.02, the nano-GPT init) written by the reference writers: W.npy (1000×500)
    /// and ckpt.safetensors with two matrices (one wider than tall), a 1-D LayerNorm weight, optimizer
    /// and RNG state, and metadata.
    func writeGaussianWeights(_ dir: String) throws {
        let script = #"""
import sys, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
rng = np.random.default_rng(12)
np.save(f'{d}/W.npy', (0.02 * rng.standard_normal((1000, 500))).astype('<f4'))
save_file({
    'transformer.h.0.attn.c_attn.weight': (0.02 * rng.standard_normal((1200, 400))).astype('<f4'),
    'transformer.h.0.mlp.c_proj.weight': (0.02 * rng.standard_normal((300, 900))).astype('<f4'),
    'transformer.h.0.ln_1.weight': np.ones(400, dtype='<f4'),
    'optim.m.transformer.h.0.attn.c_attn.weight': np.zeros((1200, 400), dtype='<f4'),
    'rng.state': np.arange(4, dtype='<i8'),
}, f'{d}/ckpt.safetensors', metadata={'n_layer': '1'})
print('OK')
"""#
        let r = try python(script, [dir])
        try #require(r.status == 0 && r.stdout.contains("OK"), "python failed: \(r.stdout) \(r.stderr)")
    }

    @Test("the table lists every 2-D tensor with its diagnostics and the skipped tensors")
    func table() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeGaussianWeights(dir)

        let r = try runProcess(bin, ["analyze", "\(dir)/ckpt.safetensors"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stdout)\n\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("5 tensors, 2 analyzed") == true, "\(r.stdout)")
        for heading in ["name", "shape", "λ_max", "MP σ²", "outliers", "⟨r⟩", "KS GOE", "α", "stable rank"] {
            #expect(lines.count > 1 && lines[1].contains(heading), "column \(heading): \(r.stdout)")
        }
        let attn = lines.first { $0.hasPrefix("transformer.h.0.attn.c_attn.weight ") }
        #expect(attn?.contains("(1200, 400)") == true, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("transformer.h.0.mlp.c_proj.weight ") && $0.contains("(300, 900)") })
        #expect(lines.contains("skipped transformer.h.0.ln_1.weight (400): 1-D, not a matrix"), "\(r.stdout)")
        #expect(lines.contains("skipped 2 optimizer/RNG state tensors (optim.*, rng.*)"), "\(r.stdout)")
        #expect(!r.stdout.contains("optim.m.") && !r.stdout.contains("rng.state"))
        // The columns line up: every row of the table is as wide as the heading (in characters).
        let width = lines[1].count
        #expect(lines[2].count == width && (attn?.count ?? 0) == width, "\(r.stdout)")

        let npy = try runProcess(bin, ["analyze", "\(dir)/W.npy"])
        #expect(npy.status == 0 && npy.stdout.contains("1 tensor, 1 analyzed") && npy.stdout.contains("\nW "), "\(npy.stdout)\n\(npy.stderr)")
    }

    @Test("--json: one object per tensor with the DESIGN §8 keys; Gaussian weights are MP with GOE spacings")
    func json() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeGaussianWeights(dir)
        for file in ["ckpt.safetensors", "W.npy"] {
            let r = try runProcess(bin, ["analyze", "\(dir)/\(file)", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            try r.stdout.write(toFile: "\(dir)/\(file).jsonl", atomically: true, encoding: .utf8)
            if file.hasSuffix(".safetensors") {
                // Skipped tensors are reported on stderr, so stdout stays pure JSON lines.
                #expect(r.stderr.contains("skipped transformer.h.0.ln_1.weight (400): 1-D"), "\(r.stderr)")
            }
        }
        let script = #"""
import sys, json, math
d = sys.argv[1]
keys = ['name', 'shape', 'lambda_max', 'r_mean', 'ks_goe', 'ks_poisson', 'mp_sigma2', 'mp_edge_minus', 'mp_edge_plus',
        'mp_ks', 'mp_outliers', 'alpha', 'alpha_err', 'alpha_xmin', 'alpha_D', 'alpha_ntail', 'stable_rank',
        'spectral_norm', 'frobenius_norm', 'entropy']
expected = {'ckpt.safetensors': [('transformer.h.0.attn.c_attn.weight', [1200, 400]), ('transformer.h.0.mlp.c_proj.weight', [300, 900])],
            'W.npy': [('W', [1000, 500])]}
problems, r_values = [], []
for file, tensors in expected.items():
    lines = open(f'{d}/{file}.jsonl').read().splitlines()
    records = [json.loads(l) for l in lines]   # every line is one JSON object
    summary = records.pop()                     # the last one is the summary
    if summary.get('summary') is not True or summary['matrices'] != len(tensors): problems.append(f'{file}: summary {summary}')
    if abs(summary.get('alpha', 0) - sum(x['alpha'] for x in records) / len(records)) > 1e-12:
        problems.append(f'{file}: summary alpha {summary.get("alpha")} is not the mean of the matrices\' alpha')
    if [(x['name'], x['shape']) for x in records] != tensors:
        problems.append(f'{file}: tensors {[(x["name"], x["shape"]) for x in records]}')
    for x in records:
        if list(x)[:2] != ['name', 'shape']: problems.append(f'{x["name"]}: name and shape do not lead')
        missing = [k for k in keys if k not in x]
        if missing: problems.append(f'{x["name"]}: missing {missing}')
        if missing: continue
        n, m = max(x['shape']), min(x['shape'])
        s2 = 0.02 ** 2
        edge = n * s2 * (1 + math.sqrt(m / n)) ** 2
        if x['mp_outliers'] != 0: problems.append(f'{x["name"]}: {x["mp_outliers"]} MP outliers in Gaussian weights')
        if abs(x['mp_sigma2'] / s2 - 1) > 0.03: problems.append(f'{x["name"]}: mp_sigma2 {x["mp_sigma2"]} vs {s2}')
        if abs(x['lambda_max'] / edge - 1) > 0.05: problems.append(f'{x["name"]}: lambda_max {x["lambda_max"]} vs the MP edge {edge}')
        if abs(x['frobenius_norm'] ** 2 / (n * m * s2) - 1) > 0.02: problems.append(f'{x["name"]}: frobenius_norm {x["frobenius_norm"]}')
        if abs(x['spectral_norm'] ** 2 / x['lambda_max'] - 1) > 1e-3: problems.append(f'{x["name"]}: spectral_norm² != lambda_max')
        if x['mp_ks'] > 0.05: problems.append(f'{x["name"]}: mp_ks {x["mp_ks"]}')
        if abs(x['r_mean'] - 0.5307) > 0.04: problems.append(f'{x["name"]}: r_mean {x["r_mean"]}')
        if not x['ks_goe'] < x['ks_poisson']: problems.append(f'{x["name"]}: spacings closer to Poisson than to GOE')
        r_values.append(x['r_mean'])
pooled = sum(r_values) / len(r_values)
if abs(pooled - 0.5307) > 0.02: problems.append(f'pooled r_mean {pooled}')
print('R', ' '.join(f'{r:.4f}' for r in r_values), 'pooled', f'{pooled:.4f}')
print('PROBLEMS', problems)
print('VERDICT', 'FAIL' if problems else 'OK')
"""#
        let check = try python(script, [dir])
        print("analyze --json on Gaussian weights: " + (check.stdout.split(separator: "\n").first { $0.hasPrefix("R ") } ?? ""))
        #expect(check.status == 0 && check.stdout.contains("VERDICT OK"), "\(check.stdout)\n\(check.stderr)")
    }

    /// scripts/gpt2_layout_model.py (the benchmark's generator) in the source tree.
    static let gpt2Generator = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/gpt2_layout_model.py").standardized.path

    /// Reads BF16/F32 safetensors shards in Python (numpy has no bfloat16: the bits are widened by hand)
    /// and checks analyze's JSON Lines against eigvalsh of the smaller Gram matrix of each 2-D tensor.
    static let gpt2Check = #"""
import sys, json, struct, re, numpy as np
d, out = sys.argv[1], sys.argv[2]
def tensors(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); data = b[8 + n:]
    for name, e in h.items():
        if name == '__metadata__': continue
        lo, hi = e['data_offsets']
        x = np.frombuffer(data[lo:hi], '<u2').astype(np.uint32) << 16 if e['dtype'] == 'BF16' else np.frombuffer(data[lo:hi], '<f4')
        yield name, x.view(np.float32).reshape(e['shape'])
index = json.load(open(f'{d}/model.safetensors.index.json'))['weight_map']
all_t = {}
for shard in sorted(set(index.values())): all_t.update(dict(tensors(f'{d}/{shard}')))
natural = lambda s: [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', s)]
matrices = sorted([n for n, x in all_t.items() if x.ndim == 2], key=natural)
records = [json.loads(l) for l in open(out).read().splitlines()]
summary = records.pop()
problems = []
if [r['name'] for r in records] != matrices: problems.append(f'rows {[r["name"] for r in records]} != {matrices}')
if summary.get('summary') is not True or summary['matrices'] != len(matrices) or summary['skipped'] != len(all_t) - len(matrices):
    problems.append(f'summary {summary}')
worst = 0
for r in records:
    w = all_t[r['name']].astype(np.float64)
    g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    ev = np.linalg.eigvalsh(g)
    if r['shape'] != list(w.shape): problems.append(f'{r["name"]}: shape {r["shape"]}')
    for key, v in (('lambda_max', ev[-1]), ('lambda_min', ev[0])):
        worst = max(worst, abs(r[key] - v) / ev[-1])
print('MATRICES', len(matrices), 'WORST', worst)
if worst > 1e-10: problems.append(f'levels differ from numpy by {worst}')
print('PROBLEMS', problems)
print('VERDICT', 'FAIL' if problems else 'OK')
"""#

    // The shortened form of the GPT-2 small benchmark (scripts/bench): the same layout, names, shards,
    // index and BF16, with smaller dimensions, and 11 layers so that natural order (h.2 before h.10) shows.
    @Test("a GPT-2-layout folder (3 BF16 shards + index): one row per 2-D tensor in natural order, levels equal numpy's, the mask buffer skipped with its reason")
    func gpt2LayoutFolder() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/gpt2"
        let gen = try runProcess("/usr/bin/env", ["python3", AnalyzeTests.gpt2Generator, model, "--n_embd", "48", "--n_layer", "11",
                                                  "--vocab", "1000", "--block", "64", "--shards", "3", "--dtype", "BF16"])
        try #require(gen.status == 0, "generator: \(gen.stdout) \(gen.stderr)")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: model))
        #expect(files.isSuperset(of: ["model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"]))

        let json = try runProcess(bin, ["analyze", model, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        try json.stdout.write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        #expect(json.stderr.contains("skipped h.0.attn.bias (1, 1, 64, 64): 4-D and not named *.weight: a buffer (such as an attention mask), not a matrix"),
                "\(json.stderr.prefix(500))")
        let check = try python(AnalyzeTests.gpt2Check, [model, dir + "/out.jsonl"])
        print("analyze on a GPT-2-layout folder: " + (check.stdout.split(separator: "\n").first { $0.hasPrefix("MATRICES") } ?? ""))
        #expect(check.status == 0 && check.stdout.contains("VERDICT OK"), "\(check.stdout)\n\(check.stderr)")

        let table = try runProcess(bin, ["analyze", model])
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(table.status == 0 && lines.first == "\(model): 147 tensors, 46 analyzed; diagnostics: spectrum, mp, spacing, powerlaw, norms", "\(lines.first ?? "")")
        let order = lines.compactMap { $0.split(separator: " ").first.map(String.init) }
        let (h2, h10) = (order.firstIndex(of: "h.2.attn.c_attn.weight"), order.firstIndex(of: "h.10.attn.c_attn.weight"))
        #expect(h2 != nil && h10 != nil && h2! < h10!, "h.2 before h.10")
        #expect(lines.last?.hasPrefix("summary: 46 matrices analyzed, 101 skipped") == true, "\(lines.last ?? "")")

        let csv = try runProcess(bin, ["analyze", model, "--csv", "--layers", "h.*.mlp.*.weight"])
        let rows = csv.stdout.split(separator: "\n")
        #expect(csv.status == 0 && rows.count == 1 + 22 && rows[0].hasPrefix("name,rows,cols,file,alpha,") && rows[1].hasPrefix("h.0.mlp.c_fc.weight,48,192,"),
                "\(csv.stdout.prefix(400))")
        let md = try runProcess(bin, ["analyze", model, "--markdown", "--layers", "wte"])
        #expect(md.status == 0 && md.stdout.hasPrefix("| name | shape | λ\\_max |") && md.stdout.contains("| wte.weight | (1000, 48) |"), "\(md.stdout)")
    }

    @Test("pickled files (.pt, .bin, .ckpt, pickle or zip magic) are refused after reading at most their magic bytes, with the one-line conversion")
    func picklesRefused() throws {
        // The reading API watched from Lua: which bytes of which file were read (Tests/DBMLuaTests/lua/model_files.lua).
        let err = try LuaState().runFile(luaTestFolder + "/model_files.lua")
        #expect(err == nil, "\(err ?? "")")
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A pickle that would run a command if it were ever unpickled.
        let pickle: [UInt8] = [0x80, 0x04] + Array("cos\nsystem\n(S'touch \(dir)/PWNED'\ntR.".utf8)
        for name in ["pytorch_model.bin", "model.pt", "last.ckpt", "weights.data"] {
            try Data(pickle).write(to: URL(fileURLWithPath: dir + "/" + name))
            let r = try runProcess(bin, ["analyze", dir + "/" + name])
            #expect(r.status == 1 && r.stdout.isEmpty && r.stderr.split(separator: "\n").count == 1, "\(name): \(r.stderr)")
            for fragment in ["would run code", "torch.load(", "weights_only=True", "save_file("] {
                #expect(r.stderr.contains(fragment), "\(name): \(r.stderr)")
            }
        }
        try Data([0x50, 0x4B, 3, 4, 0, 0]).write(to: URL(fileURLWithPath: dir + "/zipped.data"))
        let zip = try runProcess(bin, ["analyze", dir + "/zipped.data"])
        #expect(zip.status == 1 && zip.stderr.contains("zip archive") && zip.stderr.contains("weights_only=True"), "\(zip.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/PWNED"))
    }

    @Test("model folders: .safetensors preferred to .bin, an index naming a missing shard, .npy folders, several PATHs, --layers, convolution kernels sliced as WeightWatcher")
    func modelFolders() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = #"""
import sys, os, json, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
rng = np.random.default_rng(5)
for sub in ['mixed', 'npys', 'broken']: os.makedirs(f'{d}/{sub}', exist_ok=True)
conv = rng.standard_normal((8, 4, 3, 3)).astype(np.float16)
save_file({'conv1.weight': conv, 'conv1.bias': np.zeros(8, np.float16), 'fc.weight': rng.standard_normal((10, 20)).astype('<f4')}, f'{d}/mixed/model.safetensors')
open(f'{d}/mixed/pytorch_model.bin', 'wb').write(b'\x80\x04junk')
s = conv.astype(np.float64)[:, :, 1, 2]
print('SLICE', np.linalg.eigvalsh(s.T @ s)[-1])
np.save(f'{d}/npys/a.npy', rng.standard_normal((10, 5)))
np.save(f'{d}/npys/b.npy', np.ones(5))
save_file({'x.weight': np.ones((3, 3), np.float32)}, f'{d}/broken/model-00001-of-00002.safetensors')
json.dump({'weight_map': {'x.weight': 'model-00001-of-00002.safetensors', 'y.weight': 'model-00002-of-00002.safetensors'}},
          open(f'{d}/broken/model.safetensors.index.json', 'w'))
"""#
        let w = try python(script, [dir])
        try #require(w.status == 0, "\(w.stderr)")
        let slice = Double(w.stdout.split(separator: "\n").first { $0.hasPrefix("SLICE") }?.split(separator: " ").last ?? "") ?? .nan

        let r = try runProcess(bin, ["analyze", dir + "/mixed", dir + "/npys", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let records = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        func text(_ v: JSONValue?) -> String? { if case .string(let s)? = v { return s }; return nil }
        func number(_ v: JSONValue?) -> Double? { if case .number(let x)? = v { return x }; if case .integer(let i)? = v { return Double(i) }; return nil }
        let names = records.dropLast().compactMap { text($0["name"]) }
        let slices = (0..<3).flatMap { i in (0..<3).map { j in "conv1.weight[:,:,\(i),\(j)]" } }
        #expect(names == slices + ["fc.weight", "a"], "\(names)")
        #expect(records.dropLast().map { text($0["file"]) } == Array(repeating: dir + "/mixed", count: 10) + [dir + "/npys"])
        let conv12 = records.first { text($0["name"]) == "conv1.weight[:,:,1,2]" }
        #expect(abs((number(conv12?["lambda_max"]) ?? 0) / slice - 1) < 1e-12, "the (1, 2) kernel slice against numpy: \(slice)")
        #expect(r.stderr.contains("skipped conv1.bias (8): 1-D") && r.stderr.contains("skipped b (5): 1-D"), "\(r.stderr)")

        let selected = try runProcess(bin, ["analyze", dir + "/mixed", "--csv", "--layers", "conv1.weight"])
        #expect(selected.status == 0 && selected.stdout.split(separator: "\n").count == 1 + 9, "\(selected.stdout)")
        let broken = try runProcess(bin, ["analyze", dir + "/broken"])
        #expect(broken.status == 1 && broken.stderr.contains("names 1 shard missing from the folder: model-00002-of-00002.safetensors"), "\(broken.stderr)")
    }

    @Test("--plots DIR writes the density and spacing plots of each tensor")
    func plots() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeGaussianWeights(dir)
        let out = dir + "/plots/nested"
        let r = try runProcess(bin, ["analyze", "\(dir)/ckpt.safetensors", "--plots", out])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        let gnuplot = try runProcess("/bin/sh", ["-c", "command -v gnuplot"]).status == 0
        let kinds = gnuplot ? ["dat", "gp", "png", "svg"] : ["dat", "gp"]
        for name in ["transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_proj.weight"] {
            for plot in ["density", "spacing"] {
                for kind in kinds {
                    let f = "\(name)_\(plot).\(kind)"
                    #expect(files.contains(f), "missing \(f) in \(files.sorted())")
                    if kind == "png" || kind == "svg" {
                        let size = (try? FileManager.default.attributesOfItem(atPath: "\(out)/\(f)")[.size] as? Int) ?? 0
                        #expect(size > 1000, "\(f) has \(size) bytes")
                    }
                }
            }
        }
        // The density plot carries the Marchenko–Pastur curve fitted to the matrix.
        let script = try String(contentsOfFile: "\(out)/transformer.h.0.attn.c_attn.weight_density.gp", encoding: .utf8)
        #expect(script.contains("Marchenko–Pastur"), "\(script)")
        #expect(!files.contains { $0.contains("optim") || $0.contains("ln_1") })
    }

    @Test("a plugin dropped into $DBM_LUA_PATH is used by --diagnostics, with no rebuild")
    func temporaryPlugin() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        -- trace: the sum of the levels, which equals the squared Frobenius norm of the matrix.
        return {name = "trace", doc = "sum of the levels", run = function(ctx)
          local s = 0
          for _, x in ipairs(ctx.levels) do s = s + x end
          return {trace = s}
        end}
        """.write(toFile: dir + "/trace.lua", atomically: true, encoding: .utf8)
        try "return {name = 'broken', doc = 'fails', run = function(ctx) error('no luck') end}"
            .write(toFile: dir + "/broken.lua", atomically: true, encoding: .utf8)
        let w = try Tensor.from([3, 0, 0, 4, 1, 2], shape: [3, 2], dtype: .float64)
        try Npy.write(w, path: dir + "/w.npy")
        var env = ProcessInfo.processInfo.environment
        env["DBM_LUA_PATH"] = dir
        let r = try runProcess(bin, ["analyze", dir + "/w.npy", "--json", "--diagnostics=trace,norms,broken"], environment: env)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines.last?.contains("\"summary\":true") == true, "one matrix and the summary: \(r.stdout)")
        let record = try JSONValue.parse(lines.first ?? "")
        #expect(record["trace"].map { if case .number(let t) = $0 { abs(t - 30) < 1e-9 } else { false } } == true, "\(r.stdout)")
        #expect(record["frobenius_norm"] != nil)
        // The failing plugin is reported once, with its file and line, and the others still ran.
        #expect(r.stderr.contains("w: diagnostic 'broken' failed at \(dir)/broken.lua:1: ") && r.stderr.contains("no luck"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test("a plugin with a plot in a $DBM_LUA_PATH folder: its scalars, arrays, plot and analyze column appear, with no rebuild")
    func pluginIsTheWholeDiagnostic() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/mine", withIntermediateDirectories: true)
        // The 20-line example of plugins/README.md, with the array of the gaps and a plot of them.
        try """
        -- gap: the gaps between neighbouring levels, and the largest (a level repulsion check).
        return {
          name = "gap",
          doc = "gaps between neighbouring levels; gap_max, the largest",
          columns = {{"max gap", "gap_max"}},
          panels = {{key = "gap_max", ylabel = "largest gap"}},
          run = function(ctx)
            local x, gaps, top = ctx.levels, {}, 0
            for i = 2, #x do gaps[i - 1] = x[i] - x[i - 1]; top = math.max(top, gaps[i - 1]) end
            return {gap_max = top, gaps = gaps}
          end,
          plot = function(h)
            local gaps, index = h.arrays.gaps[h.records], {}
            for i = 1, gaps:numel() do index[i] = i end
            h.plot.xy(h.path, {{x = index, y = gaps, label = "gaps at the last record"}},
                      {title = h.matrix .. ": gaps", xlabel = "index", ylabel = "gap"})
          end,
        }
        """.write(toFile: dir + "/mine/gap.lua", atomically: true, encoding: .utf8)
        try """
        local rec = dbm.recorder{out_dir = arg[1]}
        local W = dbm.randn(40, 10, {dtype = "float64", generator = dbm.generator(1)})
        rec:watch("W", W, {diagnostics = {"gap"}, every = 2})
        for step = 0, 5 do W:copy(W * 1.1); rec:step(step, {loss = 1 / (step + 1)}) end
        rec:close()
        """.write(toFile: dir + "/run.lua", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["DBM_LUA_PATH"] = dir + "/mine"
        let run = try runProcess(bin, [dir + "/run.lua", dir + "/run"], environment: env)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let gnuplot = try runProcess("/bin/sh", ["-c", "command -v gnuplot"]).status == 0
        let check = try python("""
        import json, sys, os
        import numpy as np
        d = sys.argv[1]
        obs = [json.loads(l) for l in open(d + "/observables.jsonl")]
        assert [o["step"] for o in obs] == [0, 2, 4] and all(o["diagnostic"] == "gap" and "gap_max" in o for o in obs), obs
        S, gaps = np.load(d + "/spectra/W.npy"), np.load(d + "/arrays/W/gap.gaps.npy")
        assert gaps.shape == (3, 9) and np.allclose(gaps, np.diff(S, axis=1)), gaps
        assert np.allclose(gaps.max(axis=1), [o["gap_max"] for o in obs])
        assert sorted(os.listdir(d + "/arrays/W")) == ["gap.gaps.npy"], "the levels are not stored twice"
        for f in ["W_gap.dat", "W_gap.gp", "W_density.dat", "W_flow.dat", "W_observables.dat"] + (["W_gap.png"] if sys.argv[2] == "1" else []):
            assert os.path.exists(d + "/plots/" + f), f
        assert "gap_max" in open(d + "/plots/W_observables.dat").readline(), "the plugin's panel"
        print("OK")
        """, [dir + "/run", gnuplot ? "1" : "0"])
        #expect(check.status == 0 && check.stdout.contains("OK"), "\(check.stdout)\n\(check.stderr)")
        // analyze: its column in the table, and its plot
        let S = try Tensor.from((0..<60).map { Double(($0 * 37) % 11) - 5 }, shape: [10, 6], dtype: .float64)
        try Npy.write(S, path: dir + "/w.npy")
        let a = try runProcess(bin, ["analyze", dir + "/w.npy", "--diagnostics=spectrum,gap", "--plots", dir + "/ap"], environment: env)
        #expect(a.status == 0 && a.stdout.contains("max gap") && a.stdout.contains("λ_max"), "\(a.stdout)\n\(a.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/ap/w_gap.dat") && FileManager.default.fileExists(atPath: dir + "/ap/w_density.gp"))
    }

    @Test("bad files and bad arguments: one line on stderr, status 1 (2 for usage), never a crash or a traceback")
    func badInput() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeGaussianWeights(dir)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/ckpt.safetensors")))
        let goodNpy = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/W.npy")))
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
            return dir + "/" + name
        }
        func safetensors(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
            let h = Array(header.utf8)
            return (0..<8).map { UInt8(truncatingIfNeeded: h.count >> (8 * $0)) } + h + data
        }
        func npy(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
            var h = Array(header.utf8)
            h += [UInt8](repeating: 0x20, count: (64 - (10 + h.count + 1) % 64) % 64) + [0x0A]
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + data
        }
        let oneD = try Tensor.zeros([5])
        try Safetensors.write([("bias", oneD), ("optim.v.w", try Tensor.zeros([3, 3]))], path: dir + "/no2d.safetensors")
        try Npy.write(oneD, path: dir + "/vector.npy")
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        try "notes".write(toFile: dir + "/other/README.txt", atomically: true, encoding: .utf8)

        let cases: [(String, [String], String)] = [
            ("missing file", [dir + "/nope.safetensors"], "does not exist"),
            ("missing file of another type", [dir + "/nope.txt"], "No such file"),
            ("a text file", [try write("notes.txt", Array("hello, weights\n".utf8))], "neither a .npy nor a .safetensors file"),
            ("a missing folder", [dir + "/nowhere"], "No such file"),
            ("a folder without a model", [dir + "/other"], "holds no model"),
            ("an empty .safetensors", [try write("empty.safetensors", [])], "fewer than the 8"),
            ("a truncated .safetensors", [try write("trunc.safetensors", Array(good.prefix(good.count / 2)))], "reach past the end"),
            ("a .safetensors cut in its header", [try write("cut.safetensors", Array(good.prefix(40)))], "truncated"),
            ("a .safetensors whose header lies about sizes",
             [try write("lie.safetensors", safetensors(#"{"w":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 16)))],
             "needs 40000000000 bytes"),
            ("a .safetensors with overlapping tensors",
             [try write("overlap.safetensors", safetensors(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 16)))],
             "overlaps"),
            ("a .safetensors with a bad header", [try write("json.safetensors", safetensors("{\"w\": nope}"))], "not valid JSON"),
            ("an .npy named .safetensors", [try write("npy.safetensors", goodNpy)], "not a safetensors file"),
            ("a truncated .npy", [try write("trunc.npy", Array(goodNpy.prefix(goodNpy.count / 3)))], "needs 2000000"),
            ("an .npy whose header lies", [try write("lie.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", [0, 0, 0, 0]))], "needs 80000000000"),
            ("an .npy with a zero size and huge others", [try write("zero.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }"))], "4611686018427387904"),
            ("a .safetensors with no 2-D tensor", [dir + "/no2d.safetensors"], "holds no 2-D tensor"),
            ("a 1-D .npy", [dir + "/vector.npy"], "holds no 2-D tensor"),
            ("a .safetensors with no tensors", [try write("none.safetensors", safetensors("{}      "))], "holds no tensors"),
        ]
        for (what, args, fragment) in cases {
            let r = try runProcess(bin, ["analyze"] + args)
            let lines = r.stderr.split(separator: "\n")
            #expect(r.status == 1, "\(what): status \(r.status)\n\(r.stderr)")
            #expect(lines.count == 1 && lines[0].hasPrefix("dbm-lua analyze: ") && r.stderr.contains(fragment),
                    "\(what): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(what): \(r.stdout)")
        }

        let usage: [(String, [String], String)] = [
            ("no file", [], "expected a .safetensors or .npy file, or a model folder"),
            ("two output formats", [dir + "/W.npy", "--json", "--csv"], "give one of --json, --csv, --markdown"),
            ("--layers without a pattern", [dir + "/W.npy", "--layers"], "--layers needs a value"),
            ("an unknown option", [dir + "/W.npy", "--frobnicate"], "unknown option '--frobnicate'"),
            ("--plots without a directory", [dir + "/W.npy", "--plots"], "--plots needs a value"),
            ("an unknown diagnostic", [dir + "/W.npy", "--diagnostics=spectrum,nonesuch"], "unknown diagnostic 'nonesuch'"),
        ]
        for (what, args, fragment) in usage {
            let r = try runProcess(bin, ["analyze"] + args)
            #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(fragment), "\(what): \(r.status) \(r.stderr)")
        }
        let help = try runProcess(bin, ["analyze", "--help"])
        #expect(help.status == 0 && help.stdout.contains("usage: dbm-lua analyze PATH...") && help.stdout.contains("--plots DIR"))
    }

    @Test("mutated files through the command: every run ends with status 0 or 1, never a signal")
    func mutatedFilesNeverCrashTheCommand() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = Generator(seed: 404)
        try Safetensors.write([("w", try Tensor.randn([6, 4], generator: g)), ("b", try Tensor.randn([4], generator: g))],
                              metadata: ["n_layer": "1"], path: dir + "/base.safetensors")
        try Npy.write(try Tensor.randn([5, 3], dtype: .float64, generator: g), path: dir + "/base.npy")
        var tried = 0, analyzed = 0, rejected = 0
        for ext in ["safetensors", "npy"] {
            let base = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/base.\(ext)")))
            let headerEnd = ext == "npy" ? 128 : 8 + (Int(base[0]) | Int(base[1]) << 8)
            for _ in 0..<100 {
                var file = base
                for _ in 0...g.below(3) {
                    // Most edits land in the header, where the parsing is; the rest anywhere (data too).
                    let at = g.below(3) == 0 ? g.below(file.count) : g.below(min(headerEnd, file.count))
                    switch g.below(4) {
                    case 0: file[at] = UInt8(g.below(256))
                    case 1: file[at] ^= UInt8(1 << g.below(8))
                    case 2: file = Array(file.prefix(g.below(file.count + 1)))
                    default: file.insert(Array("0123456789,-[]{}()\"".utf8)[g.below(19)], at: at)
                    }
                    if file.isEmpty { break }
                }
                let path = "\(dir)/fuzz.\(ext)"
                try Data(file).write(to: URL(fileURLWithPath: path))
                let r = try runProcess(bin, ["analyze", path, "--json"])
                tried += 1
                if r.status == 0 { analyzed += 1 } else { rejected += 1 }
                #expect(r.status == 0 || (r.status == 1 && r.stderr.hasPrefix("dbm-lua analyze: ") && !r.stderr.contains("traceback")),
                        "\(ext) mutation: status \(r.status): \(r.stderr.prefix(300))")
            }
        }
        print("analyze fuzz: \(tried) mutated files through the command, \(analyzed) analyzed, \(rejected) rejected with one message")
        #expect(analyzed > 0 && rejected > 0)
    }

    // Names from a downloaded file reach gnuplot scripts (titles) and the terminal (the table): a name
    // with a line break and a gnuplot `system` command, backquotes, $( ), quotes and an escape sequence
    // must run nothing and print no control character.
    @Test("hostile tensor names run no command through gnuplot or a shell, and print no control characters")
    func hostileNames() throws {
        let bin = try dbmLuaBinary(), dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let canary = dir + "/PWNED"
        let script = #"""
import sys, numpy as np
from safetensors.numpy import save_file
d, canary = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(3)
names = ['w\nsystem "touch ' + canary + '1"\n#', "w'\nsystem 'touch " + canary + "2'\n#", 'w`touch ' + canary + '3`',
         'w$(touch ' + canary + '4)', 'w\r\x1b[31mred\x1b[0m\x07', "<touch " + canary + "5", "|touch " + canary + "6",
         'w\\\nsystem "touch ' + canary + '7"', 'w\u009b31m']
save_file({n: (0.1 * rng.standard_normal((40, 20))).astype('<f4') for n in names}, f'{d}/evil.safetensors')
print('OK')
"""#
        let w = try python(script, [dir, canary])
        try #require(w.status == 0 && w.stdout.contains("OK"), "python failed: \(w.stdout) \(w.stderr)")
        let r = try runProcess(bin, ["analyze", "\(dir)/evil.safetensors", "--plots", "\(dir)/plots"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let made = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        #expect(!made.contains { $0.hasPrefix("PWNED") }, "a command ran: \(made)")
        let plots = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/plots")) ?? []
        #expect(plots.filter { $0.hasSuffix(".png") }.count == 18 + 1, "density and spacing plots of 9 tensors, and model_alpha: \(plots.sorted())")
        for file in plots where file.hasSuffix(".gp") {
            let text = (try? String(contentsOfFile: dir + "/plots/" + file, encoding: .utf8)) ?? ""
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("system") || $0.hasPrefix("#\"") }, "\(file): \(text)")
            #expect(!text.contains("`"), "\(file) holds a backquote")
        }
        let out = r.stdout + r.stderr
        let controls = out.unicodeScalars.filter { $0.properties.generalCategory == .control && $0 != "\n" }
        #expect(controls.isEmpty, "control characters printed: \(controls.map { $0.value })")
        #expect(r.stdout.split(separator: "\n").count == 2 + 1 + 9 + 1, "one table line per tensor, and the summary: \(r.stdout)")
        #expect(r.stdout.contains("w\\x0asystem \"touch"), "the line break shown as \\x0a: \(r.stdout)")
    }
}
