import Foundation
import Testing
import DBMCore

/// Checkpoints as users and outside tools meet them: a run resumed in another process continues bitwise;
/// Python's safetensors and numpy read what dbm.save_checkpoint wrote (names, dtypes, shapes, values,
/// metadata strings); a file written by Python loads into a model; damaged files are clear errors.
@Suite("Checkpoints")
struct CheckpointTests {
    func tempDir() throws -> String { try makeTempDir("dbm-ckpt") }

    func dbmLua(_ args: [String]) throws -> ProcessResult {
        let r = try runProcess(try dbmLuaBinary(), args)
        #expect(r.status == 0, "dbm-lua \(args.joined(separator: " ")) failed: \(r.stdout) \(r.stderr)")
        return r
    }

    @Test("train N steps, checkpoint, resume in a new process, train M more: bitwise the run without a break")
    func resumeAcrossProcesses() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let script = luaTestFolder + "/resume.lua"
        _ = try dbmLua([script, "full", d + "/full.npy"])
        _ = try dbmLua([script, "first", d + "/ckpt.safetensors"])
        _ = try dbmLua([script, "resume", d + "/ckpt.safetensors", d + "/resumed.npy"])
        let full = try Npy.read(path: d + "/full.npy"), resumed = try Npy.read(path: d + "/resumed.npy")
        #expect(full.shape == resumed.shape && full.count > 1000)
        let a = full.toDoubles(), b = resumed.toDoubles()
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(a.count) parameters differ after resuming")
    }

    @Test("Python's safetensors reads a checkpoint; a file Python writes loads into a model")
    func pythonInterop() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // A model with one step of AdamW, saved with its optimizer and generator; its values as .npy too.
        let lua = """
        local nn = dbm.nn
        dbm.seed(5)
        local model = nn.Sequential({nn.Linear(6, 4, {std = 0.02}), nn.LayerNorm(4)})
        local opt = dbm.optim.AdamW(model, {lr = 1e-3})
        local loss = (model(dbm.randn(3, 6)) ^ 2):mean()
        loss:backward(); opt:step()
        dbm.save_checkpoint(arg[1] .. "/ckpt.safetensors", {model = model, optimizer = opt, step = 1,
          generators = {default = dbm.default_generator()}, metadata = {vocab = "abc", n_embd = 4}})
        model[1].weight:save(arg[1] .. "/w.npy")
        opt:state(model[1].weight).exp_avg_sq:save(arg[1] .. "/v.npy")
        """
        try lua.write(toFile: d + "/save.lua", atomically: true, encoding: .utf8)
        _ = try dbmLua([d + "/save.lua", d])
        let py = #"""
import sys, json, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
d = sys.argv[1]
t = load_file(f'{d}/ckpt.safetensors')
with safe_open(f'{d}/ckpt.safetensors', framework='np') as f:
    meta = f.metadata()
expected = {'0.weight': ('float32', (4, 6)), '0.bias': ('float32', (4,)), '1.weight': ('float32', (4,)),
            '1.bias': ('float32', (4,)), 'optim.0.weight.exp_avg': ('float32', (4, 6)),
            'optim.0.weight.exp_avg_sq': ('float32', (4, 6)), 'optim.1.bias.exp_avg': ('float32', (4,)),
            'optim.step_count': ('float64', ()), 'optim.lr': ('float64', (1,)), 'optim.group_lr': ('float64', (1,)),
            'rng.default': ('float64', (12,))}
for k, (dt, shape) in expected.items():
    assert k in t, f'missing {k}: {sorted(t)}'
    assert str(t[k].dtype) == dt and t[k].shape == shape, (k, t[k].dtype, t[k].shape)
assert len(t) == 4 + 2 * 4 + 4, sorted(t)
assert np.array_equal(t['0.weight'], np.load(f'{d}/w.npy'))
assert np.array_equal(t['optim.0.weight.exp_avg_sq'], np.load(f'{d}/v.npy'))
assert t['optim.step_count'] == 1 and t['optim.lr'][0] == 1e-3 and t['optim.group_lr'][0] == 1e-3
assert meta == {'format': 'dbm-lua checkpoint', 'step': '1', 'vocab': 'abc', 'n_embd': '4'}, meta
# The header as the specification describes it: 8-byte little-endian length, JSON, data offsets in order.
raw = open(f'{d}/ckpt.safetensors', 'rb').read()
n = int.from_bytes(raw[:8], 'little')
header = json.loads(raw[8:8 + n])
spans = sorted(v['data_offsets'] for k, v in header.items() if k != '__metadata__')
assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(raw) - 8 - n
# Weights written by Python for the same architecture.
rng = np.random.default_rng(3)
save_file({'0.weight': rng.standard_normal((4, 6)).astype('<f4'), '0.bias': np.arange(4, dtype='<f4'),
           '1.weight': np.full(4, 2, dtype='<f4'), '1.bias': np.zeros(4, dtype='<f4')}, f'{d}/py.safetensors',
          metadata={'source': 'numpy'})
np.save(f'{d}/py_w.npy', load_file(f'{d}/py.safetensors')['0.weight'])
print('OK')
"""#
        let r = try runProcess("/usr/bin/env", ["python3", "-c", py, d])
        #expect(r.status == 0 && r.stdout.contains("OK"), "python: \(r.stdout) \(r.stderr)")
        let load = """
        local nn = dbm.nn
        local model = nn.Sequential({nn.Linear(6, 4), nn.LayerNorm(4)})
        local step, meta = dbm.load_checkpoint(arg[1] .. "/py.safetensors", {model = model})
        assert(step == nil and meta.source == "numpy")
        assert((model[1].weight - dbm.load_npy(arg[1] .. "/py_w.npy")):detach():abs():max() == 0)
        assert(model[1].bias[4] == 3 and model[2].weight[1] == 2)
        -- the dbm checkpoint restores its optimizer and generator
        local model2 = nn.Sequential({nn.Linear(6, 4, {std = 0.02}), nn.LayerNorm(4)})
        local opt = dbm.optim.AdamW(model2, {lr = 5})
        local g = dbm.generator(0)
        assert(dbm.load_checkpoint(arg[1] .. "/ckpt.safetensors", {model = model2, optimizer = opt, generators = {default = g}}) == 1)
        assert(opt:step_count() == 1 and opt:lr() == 1e-3)
        assert((opt:state(model2[1].weight).exp_avg_sq - dbm.load_npy(arg[1] .. "/v.npy")):abs():max() == 0)
        print("OK")
        """
        try load.write(toFile: d + "/load.lua", atomically: true, encoding: .utf8)
        let l = try dbmLua([d + "/load.lua", d])
        #expect(l.stdout.contains("OK"))
    }

    @Test("truncated, corrupt, mismatched or missing checkpoints are one clear error each")
    func badCheckpoints() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let lua = """
        local nn = dbm.nn
        local function model() return nn.Sequential({nn.Linear(6, 4), nn.LayerNorm(4)}) end
        local m = model()
        local opt = dbm.optim.SGD(m, {lr = 0.1, momentum = 0.9})
        dbm.save_checkpoint(arg[1] .. "/good.safetensors", {model = m, optimizer = opt})
        local raw = assert(io.open(arg[1] .. "/good.safetensors", "rb")):read("a")
        local function write(name, bytes) local f = assert(io.open(arg[1] .. "/" .. name, "wb")); f:write(bytes); f:close() end
        write("truncated.safetensors", raw:sub(1, #raw - 7))
        write("header.safetensors", raw:sub(1, 20))
        write("garbage.safetensors", ("\\255"):rep(64))
        write("empty.safetensors", "")
        local function fails(pattern, f)
          local ok, err = pcall(f)
          assert(not ok, "expected an error containing " .. pattern)
          assert(tostring(err):find(pattern, 1, true), tostring(err))
          assert(tostring(err):find("dbm.load_checkpoint", 1, true), tostring(err))
          assert(tostring(err):find("load.lua:", 1, true), tostring(err))
        end
        for _, name in ipairs({"truncated", "header", "garbage", "empty", "absent"}) do
          fails(name .. ".safetensors", function() dbm.load_checkpoint(arg[1] .. "/" .. name .. ".safetensors", {model = model()}) end)
        end
        local bigger = nn.Sequential({nn.Linear(6, 5), nn.LayerNorm(5)})
        fails("expected shape (5, 6), got (4, 6)", function() dbm.load_checkpoint(arg[1] .. "/good.safetensors", {model = bigger}) end)
        local other = nn.Sequential({nn.Linear(6, 4), nn.LayerNorm(4), nn.GELU(), nn.Linear(4, 2)})
        fails("missing parameters: 3.weight, 3.bias", function() dbm.load_checkpoint(arg[1] .. "/good.safetensors", {model = other}) end)
        fails("holds no state for the generator 'data'", function()
          dbm.load_checkpoint(arg[1] .. "/good.safetensors", {model = model(), generators = {data = dbm.generator(1)}})
        end)
        print("OK")
        """
        try lua.write(toFile: d + "/load.lua", atomically: true, encoding: .utf8)
        let r = try dbmLua([d + "/load.lua", d])
        #expect(r.stdout.contains("OK"))
    }

    @Test("a checkpoint that fails to load leaves the model, the optimizer and the generators exactly as they were, byte for byte")
    func failedLoadChangesNothing() throws {
        let d = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let lua = """
        local nn = dbm.nn
        dbm.seed(3)
        local m = nn.Sequential({nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 3)})
        local opt = dbm.optim.AdamW(m, {lr = 0.01, weight_decay = 0.1})
        local g, data = dbm.default_generator(), dbm.generator(11)
        local function train(n)
          for _ = 1, n do
            local loss = (m(dbm.randn(5, 6, {generator = data})) ^ 2):mean()
            loss:backward(); opt:step(); opt:zero_grad()
          end
        end
        train(3)
        local good = arg[1] .. "/good.safetensors"
        dbm.save_checkpoint(good, {model = m, optimizer = opt, step = 3, generators = {default = g, data = data}})
        train(2); g:uniform()   -- the state a failed load must leave alone
        -- Every byte of the state: weights, optimizer state, step count, rates, generators.
        local function exact(t)   -- every value in hexadecimal: nothing rounded away
          local v = t:reshape(t:numel()):totable()
          for i = 1, #v do v[i] = ("%a"):format(v[i]) end
          return table.concat(v, ",")
        end
        local function snapshot()
          local parts = {}
          for name, p in m:named_parameters() do parts[#parts + 1] = name .. "=" .. exact(p) end
          for k, p in ipairs(opt:parameters()) do
            local st, keys = opt:state(p), {}
            for key in pairs(st) do keys[#keys + 1] = key end
            table.sort(keys)
            for _, key in ipairs(keys) do parts[#parts + 1] = k .. key .. "=" .. exact(st[key]) end
          end
          parts[#parts + 1] = "steps=" .. opt:step_count() .. (" lr=%a own=%a"):format(opt:lr(1), opt:group_lr(1))
          parts[#parts + 1] = "g=" .. exact(g:state()) .. " data=" .. exact(data:state())
          return table.concat(parts, ";")
        end
        local before = snapshot()
        local tensors, meta = dbm.load_safetensors(good)
        -- One broken entry per file, each checked after the weights in load order.
        local function broken(name, change)
          local copy = {}
          for k, v in pairs(tensors) do copy[k] = v end
          change(copy)
          local path = arg[1] .. "/" .. name .. ".safetensors"
          dbm.save_safetensors(path, copy, meta)
          return path
        end
        local p3 = "optim.2.weight.exp_avg_sq"
        local cases = {
          {"no rng.data", function(t) t["rng.data"] = nil end, "rng.data"},
          {"a bad generator state", function(t) t["rng.data"] = dbm.full({12}, 0.5, {dtype = "float64"}) end, "rng.data"},
          {"an optimizer state of the wrong shape", function(t) t[p3] = dbm.zeros(2, 2) end, "exp_avg_sq"},
          {"an optimizer state missing", function(t) t[p3] = nil end, "optimizer state"},
          {"no step count", function(t) t["optim.step_count"] = nil end, "optim.step_count"},
          {"a fractional step count", function(t) t["optim.step_count"] = dbm.full({1}, 2.5, {dtype = "float64"}) end, "optim.step_count"},
          {"two rates for one group", function(t) t["optim.lr"] = dbm.ones(2, {dtype = "float64"}) end, "optim.lr"},
          {"a NaN rate", function(t) t["optim.lr"] = dbm.full({1}, 0 / 0, {dtype = "float64"}) end, "optim.lr"},
          {"a negative own rate", function(t) t["optim.group_lr"] = dbm.full({1}, -1, {dtype = "float64"}) end, "optim.group_lr"},
          {"a weight of the wrong shape", function(t) t["2.weight"] = dbm.zeros(3, 5) end, "expected shape"},
        }
        for _, case in ipairs(cases) do
          local path = broken(case[1]:gsub(" ", "_"), case[2])
          local ok, err = pcall(dbm.load_checkpoint, path, {model = m, optimizer = opt, generators = {default = g, data = data}})
          assert(not ok and tostring(err):find(case[3], 1, true), case[1] .. ": " .. tostring(err))
          assert(snapshot() == before, case[1] .. ": the failed load changed the state")
        end
        -- and the good file loads, changing the state
        assert(dbm.load_checkpoint(good, {model = m, optimizer = opt, generators = {default = g, data = data}}) == 3)
        assert(snapshot() ~= before)
        print("OK " .. #cases)
        """
        try lua.write(toFile: d + "/allornothing.lua", atomically: true, encoding: .utf8)
        let r = try dbmLua([d + "/allornothing.lua", d])
        #expect(r.stdout.contains("OK 10"), "\(r.stdout) \(r.stderr)")
    }
}
