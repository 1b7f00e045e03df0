-- The diagnostics runner, the recorder and its run directory (fresh and resumed), plots and progress,
-- in one Lua state.
-- Temporary plugins are written into a temporary folder put in front of dbm.plugin_path (the search
-- path dbm.find_plugin reads at each lookup), exactly as a user drops a file into $DBM_LUA_PATH:
-- nothing is rebuilt. Every file of the run directory is read back by python3 (json, numpy).
local D = require "dbm.diagnostics"
local P = require "dbm.plot"

local tmp = os.tmpname(); os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp .. "/plugins"))
local function write(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end
local function exists(path) local f = io.open(path, "rb"); if f then f:close() end; return f ~= nil end
local function python(code, ...)
  local script = tmp .. "/check.py"
  write(script, "import io, json, os, sys\nimport numpy as np\n" .. code)
  local args = {}
  for i, a in ipairs({...}) do args[i] = "'" .. tostring(a) .. "'" end
  local ok = os.execute("python3 " .. script .. " " .. table.concat(args, " "))
  assert(ok, "python3 check failed:\n" .. code)
end
local function throws(f, ...)   -- runs f(), returns its error message (asserting it raised)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  err = tostring(err)
  for _, part in ipairs({...}) do
    assert(err:find(part, 1, true), ("error message %q lacks %q"):format(err, part))
  end
  return err
end
local this_file = debug.getinfo(1, "S").short_src:match("[^/]+$")

local pdir = tmp .. "/plugins"
dbm.plugin_path = pdir .. "/?.lua;" .. dbm.plugin_path

-- Plugins: a good one that also checks the context it gets, one that raises on line 3, one that
-- returns garbage, one with a syntax error, one whose name is not its file's.
write(pdir .. "/tmp_good.lua", [[
return {name = "tmp_good", doc = "largest level, count, a histogram record", panels = {{key = "lambda_max"}}, run = function(ctx)
  local x = ctx.levels
  seen_eigenvalues = seen_eigenvalues or {}
  seen_eigenvalues[#seen_eigenvalues + 1] = ctx.eigenvalues
  x[1] = 1e300   -- a plugin scribbling on its levels must not disturb the next one
  return {lambda_max = x[#x], n_levels = #x, label = "ok", finite = true, levels = ctx.eigenvalues,
          histogram = {counts = {1, 2}, edges = {0, 1, 2}}, scale = ctx.options.scale}
end}
]])
write(pdir .. "/tmp_second.lua", [[
return {name = "tmp_second", doc = "sees the same eigenvalues", run = function(ctx)
  seen_eigenvalues[#seen_eigenvalues + 1] = ctx.eigenvalues
  return {first_level = ctx.levels[1]}
end}
]])
write(pdir .. "/tmp_boom.lua", [[
return {name = "tmp_boom", doc = "raises", run = function(ctx)
  local t = nil
  return {x = t.field}
end}
]])
write(pdir .. "/tmp_junk.lua", [[
return {name = "tmp_junk", doc = "returns garbage",
  run = function(ctx)
    return {x = function() end}
  end}
]])
write(pdir .. "/tmp_syntax.lua", "return {name = 'tmp_syntax',\n  doc = 'broken' run = 1}\n")
write(pdir .. "/tmp_misnamed.lua", "return {name = 'other', doc = '', run = function() return {} end}\n")
write(pdir .. "/tmp_notable.lua", "return 42\n")

-- ---------------------------------------------------------------- loading

local good = D.load("tmp_good")
assert(good.name == "tmp_good" and good.file == pdir .. "/tmp_good.lua" and D.load("tmp_good") == good, "loaded once, with its file")
throws(function() D.load("tmp_syntax") end, "tmp_syntax.lua:2:", "cannot load plugin 'tmp_syntax'")
throws(function() D.load("tmp_misnamed") end, "tmp_misnamed.lua", "name = 'other'")
throws(function() D.load("tmp_notable") end, "tmp_notable.lua", "got number")
throws(function() D.load("no_such_plugin") end, "no plugin 'no_such_plugin'", pdir)
assert(D.load(pdir .. "/tmp_boom.lua").name == "tmp_boom", "a plugin by its path")
local listed = table.concat(D.available(), ",")
assert(listed:find("tmp_good", 1, true) and listed:find("tmp_junk", 1, true), "D.available lists the plugin files: " .. listed)

-- ---------------------------------------------------------------- context

dbm.seed(11)
local W = dbm.randn(30, 12, {dtype = "float64"})
local ctx = D.context(W)
assert(ctx.eigenvalues:numel() == 12 and ctx.shape[1] == 30 and ctx.shape[2] == 12 and not ctx.symmetric)
local g = dbm.eigvalsh(dbm.gram(W))
assert((ctx.eigenvalues - g):abs():max() == 0, "general matrix: eigvalsh of the smaller Gram matrix")
assert(#ctx.levels == 12 and ctx.levels[1] == g[1], "ctx.levels is the same as an array")
for i = 2, 12 do assert(ctx.levels[i] >= ctx.levels[i - 1], "ascending") end
local vecs, vals = ctx:eigenvectors()
assert(vecs:shape()[1] == 12 and select(1, ctx:eigenvectors()) == vecs, "eigenvectors of the Gram matrix, computed once")
assert((dbm.gram(W):matmul(vecs) - vecs * vals):abs():max() < 1e-9 * vals:max(), "G v = λ v")
assert(D.context(W:t()).eigenvalues:numel() == 12, "a wide matrix: the smaller Gram matrix WWᵀ")

local A = dbm.randn(20, 20, {dtype = "float64"}); local H = (A + A:t()) / 2
local sctx = D.context(H, {symmetric = true, options = {scale = 3}})
assert((sctx.eigenvalues - dbm.eigvalsh(H)):abs():max() == 0 and sctx.symmetric and sctx.options.scale == 3)
throws(function() D.context(A, {symmetric = true}) end, "marked symmetric", "max|A - Aᵀ|")
throws(function() D.context(W, {symmetric = true}) end, "must be square", "30×12")
throws(function() D.context(dbm.zeros(2, 2, 2)) end, "3-D tensor")
throws(function() D.context({3, "x"}) end, "entry 2 is a string")
local lctx = D.context({3, 1, 2})
assert(lctx.matrix == nil and lctx.shape == nil and table.concat(lctx.levels, ",") == "1.0,2.0,3.0", "levels given directly, sorted")
throws(function() lctx:eigenvectors() end, "no matrix")
assert(D.context(dbm.tensor({2, 1})).levels[1] == 1, "a 1-D tensor of levels")

-- ---------------------------------------------------------------- running

seen_eigenvalues = {}
local results, failures = D.run({"tmp_good", "tmp_second", "tmp_boom", "tmp_junk"}, W)
assert(results.tmp_good and results.tmp_second and not results.tmp_boom and not results.tmp_junk)
assert(rawequal(seen_eigenvalues[1], seen_eigenvalues[2]), "plugins share one eigendecomposition")
assert(results.tmp_second.first_level == g[1], "a plugin's edits of ctx.levels stay its own")
assert(failures.tmp_boom:find(pdir .. "/tmp_boom.lua:3: attempt to index a nil value", 1, true), failures.tmp_boom)
assert(failures.tmp_junk:find(pdir .. "/tmp_junk.lua:2", 1, true) and failures.tmp_junk:find("field 'x' is a function", 1, true), failures.tmp_junk)
local sc = D.scalars(results.tmp_good)
assert(sc.lambda_max and sc.n_levels == 12 and sc.label == nil and sc.finite == nil and sc.levels == nil, "only numeric scalars")
assert(dbm.diagnostics({"tmp_second"}, {5, 4}).tmp_second.first_level == 4, "dbm.diagnostics on plain levels")
throws(function() dbm.diagnostics({"no_such_plugin"}, W) end, this_file, "no plugin 'no_such_plugin'")

-- What counts as garbage.
assert(D.check({a = 1, b = "s", c = true, d = {1, 2}, e = dbm.zeros(3), f = {g = {1}}, h = {}}) == nil)
for _, case in ipairs({
  {nil, "returned nothing"}, {5, "returned a number"}, {dbm.zeros(2), "returned a tensor"},
  {{1, 2}, "results are named"}, {{a = {1, "x"}}, "array with a string at index 2"},
  {{a = print}, "field 'a' is a function"}, {{a = {b = {c = {1}}}}, "more than one level deep"},
  {{a = {1, b = 2}}, "mixes array entries and named fields"}, {{a = io.stdout}, "field 'a' is a userdata"},
}) do
  local why = D.check(case[1])
  assert(why and why:find(case[2], 1, true), ("D.check: expected %q, got %s"):format(case[2], tostring(why)))
end

-- ---------------------------------------------------------------- the recorder

local dir = tmp .. "/run"
local messages = {}
local cfg = {lr = 0.1, seed = 5, name = "test"}
local rec = dbm.recorder{out_dir = dir, config = cfg, report = function(m) messages[#messages + 1] = m end}
assert(rec.dir == dir)
local Wt = dbm.randn(24, 10, {dtype = "float64"})
rec:watch("W", Wt, {diagnostics = {"tmp_good", "tmp_boom", "tmp_junk"}, every = 2, options = {scale = 2}})
local Ht = dbm.zeros(8, 8, {dtype = "float64"})
rec:watch("H", function() return Ht end, {diagnostics = {"tmp_second"}, steps = {0, 4, 9}, symmetric = true})
rec:watch("levels", function() return {3, 1, 2} end, {diagnostics = {"tmp_good"}, when = function(s) return s == 5 end})

-- argument checks, each naming this file's line
throws(function() rec:watch(1, Wt) end, this_file, "rec:watch: argument 1 (name)")
throws(function() rec:watch("bad/name", Wt) end, "rec:watch: argument 1 (name)")
throws(function() rec:watch("W", Wt) end, "already watched")
throws(function() rec:watch("X", "nope") end, "expected a tensor or a function")
throws(function() rec:watch("X", Wt, {evry = 3}) end, "unknown option 'evry'")
throws(function() rec:watch("X", Wt, {every = 0}) end, "positive integer")
throws(function() rec:watch("X", Wt, {every = 2, steps = {1}}) end, "one cadence")
throws(function() rec:watch("X", Wt, {diagnostics = {"tmp_syntax"}}) end, this_file, "tmp_syntax.lua:2:")
throws(function() rec:watch("X", Wt, {diagnostics = {"nope_nope"}}) end, "no plugin 'nope_nope'")
throws(function() rec.step(1) end, "call it with a colon")
throws(function() rec:step(1.5) end, this_file, "integer step")
throws(function() rec:step(1, {loss = dbm.zeros(3)}) end, this_file, "scalar 'loss' is a tensor of 3 elements")
throws(function() rec:step(1, {loss = {}}) end, "scalar 'loss' is a table")
throws(function() rec:step(1, {time = 3}) end, "reserved")
throws(function() dbm.recorder{outdir = "x"} end, this_file, "unknown option 'outdir'")

for step = 0, 9 do
  Wt:copy(Wt + dbm.randn(24, 10, {dtype = "float64", std = 0.05}))   -- in place: watched as a tensor
  local G = dbm.randn(8, 8, {dtype = "float64"}); Ht = Ht + (G + G:t()) * 0.1
  local recorded = rec:step(step, {loss = 1 / (step + 1), lr = 0.1, val_loss = step % 3 == 0 and 2.0 or nil, tag = "a",
                                   loss_tensor = dbm.tensor({0.5})})
  assert((recorded.W ~= nil) == (step % 2 == 0), "W is recorded every 2 steps")
  if recorded.W then assert(recorded.W.tmp_good.scale == 2 and recorded.W.tmp_boom == nil, "results per diagnostic") end
end
-- failures reported once each, with the plugin's file and line; the run went on
assert(#messages == 2, "two failing plugins, two messages: " .. table.concat(messages, "\n"))
assert(messages[1]:find(pdir .. "/tmp_boom.lua:3", 1, true) and messages[1]:find("reported once", 1, true), messages[1])
assert(messages[2]:find(pdir .. "/tmp_junk.lua:2", 1, true) and messages[2]:find("garbage", 1, true), messages[2])
assert(rec.failures.W.tmp_boom and rec.failures.W.tmp_junk)

-- a matrix whose level count changes is an error naming it, at the caller's line
local size = 4
rec:watch("shrinking", function() size = size - 1; return dbm.eye(size, {dtype = "float64"}) end, {steps = {10, 11}, symmetric = true})
rec:step(10)
throws(function() rec:step(11) end, this_file, "matrix 'shrinking' has 2 levels at step 11 but had 3 before")
-- a matrix with non-finite entries is reported once and skipped
local nan = dbm.full({3, 3}, 0 / 0, {dtype = "float64"})
rec:watch("diverged", function() return nan end, {steps = {12, 13}})
rec:step(12); rec:step(13)
assert(#messages == 3 and messages[3]:find("matrix 'diverged' at step 12", 1, true) and messages[3]:find("finite", 1, true), messages[3])
rec:record(14, "W")
throws(function() rec:record(15, "nope") end, "no watched matrix named 'nope'")

local closed = rec:close()
assert(closed == dir and rec:close() == dir, "close returns the directory, twice")
throws(function() rec:step(20) end, "closed")
assert(exists(dir .. "/DONE"), "an explicit close writes DONE")

local W_rows = 8   -- every 2 steps: 0, 2, ..., 12, and the forced record at 14
python([==[
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
assert cfg["config"] == {"lr": 0.1, "seed": 5, "name": "test"}, cfg
assert cfg["seed"] == 5 and cfg["dbm_lua_version"] and cfg["start_time"].endswith("Z") and cfg["host"]
assert set(cfg["blas"]) == {"library", "version", "core", "threads", "source"} and cfg["blas"]["core"], cfg["blas"]
assert cfg["blas"]["source"] in ("openblas", "user", "dbm-lua") and cfg["blas"]["threads"] >= 1, cfg["blas"]
assert [w["name"] for w in cfg["watch"]] == ["W", "H", "levels", "shrinking", "diverged"], cfg["watch"]
assert cfg["watch"][0]["every"] == 2 and cfg["watch"][0]["diagnostics"] == ["tmp_good", "tmp_boom", "tmp_junk"]
metrics = [json.loads(l) for l in open(d + "/metrics.jsonl")]
assert [m["step"] for m in metrics] == list(range(14)), [m["step"] for m in metrics]
assert list(metrics[0])[:2] == ["step", "time"] and metrics[0]["loss"] == 1.0 and metrics[0]["loss_tensor"] == 0.5
assert "val_loss" in metrics[0] and "val_loss" not in metrics[1] and metrics[0]["tag"] == "a"
assert all(b["time"] >= a["time"] for a, b in zip(metrics, metrics[1:]))
obs = [json.loads(l) for l in open(d + "/observables.jsonl")]
assert all(list(o)[:3] == ["step", "matrix", "diagnostic"] for o in obs)
w = [o for o in obs if o["matrix"] == "W"]
assert [o["step"] for o in w] == [0, 2, 4, 6, 8, 10, 12, 14] and all(o["diagnostic"] == "tmp_good" for o in w), w
assert all(set(o) == {"step", "matrix", "diagnostic", "lambda_max", "n_levels", "scale"} for o in w), w[0]
assert [o["step"] for o in obs if o["matrix"] == "H"] == [0, 4, 9]
assert [o["step"] for o in obs if o["matrix"] == "levels"] == [5]
S = np.load(d + "/spectra/W.npy"); steps = np.load(d + "/spectra/steps.npy")
assert S.shape == (int(sys.argv[2]), 10) and S.dtype == np.float64, S.shape
assert steps.dtype == np.int64 and list(steps) == [0, 2, 4, 5, 6, 8, 9, 10, 12, 14], list(steps)
assert list(np.load(d + "/spectra/W.steps.npy")) == [0, 2, 4, 6, 8, 10, 12, 14]
assert np.all(np.diff(S, axis=1) >= 0)
assert [o["lambda_max"] for o in w] == list(S[:, -1])
H = np.load(d + "/spectra/H.npy"); assert H.shape == (3, 8) and list(np.load(d + "/spectra/H.steps.npy")) == [0, 4, 9]
L = np.load(d + "/spectra/levels.npy"); assert L.tolist() == [[1.0, 2.0, 3.0]]
assert np.load(d + "/spectra/shrinking.npy").shape == (1, 3)
assert not os.path.exists(d + "/spectra/diverged.npy")
print("recorder.lua: run directory checked by python (json lines, npy shapes, steps)")
]==], dir, W_rows)

-- plots: PNG and SVG when gnuplot is here; the data and scripts always
local plots = dir .. "/plots/"
for _, base in ipairs({"W_density", "W_flow", "H_density", "H_flow", "levels_density", "metrics"}) do
  assert(exists(plots .. base .. ".dat") and exists(plots .. base .. ".gp"), "plot data and script " .. base)
  if P.available() then
    assert(exists(plots .. base .. ".png") and exists(plots .. base .. ".svg"), "plot images " .. base)
  end
end
assert(exists(plots .. "W_observables.gp"), "tmp_good declares a lambda_max panel: an observables plot")
assert(not exists(plots .. "W_spacing.gp"), "no spacing plot without the spacing plugin")
python([==[
d = sys.argv[1] + "/arrays/W/"
assert sorted(os.listdir(d)) == ["tmp_good.histogram.counts.npy", "tmp_good.histogram.edges.npy"], os.listdir(d)
assert np.load(d + "tmp_good.histogram.counts.npy").tolist() == [[1, 2]] * 8, "one row per record; the levels are not stored twice"
]==], dir)
if not P.available() then print("recorder.lua: gnuplot is not installed: plot images not checked") end

-- Without gnuplot: said once, scripts and data left, the run does not fail.
local saved = P.gnuplot
P.gnuplot = "/nonexistent/gnuplot"
local quiet = {}
local rec2 = dbm.recorder{out_dir = tmp .. "/run2", report = function(m) quiet[#quiet + 1] = m end}
rec2:watch("V", dbm.randn(10, 5, {dtype = "float64"}), {every = 1})
for s = 0, 3 do rec2:step(s, {loss = s}) end
rec2:close()
P.gnuplot = saved
assert(#quiet == 1 and quiet[1]:find("gnuplot not found", 1, true), table.concat(quiet, "\n"))
assert(exists(tmp .. "/run2/plots/V_flow.gp") and not exists(tmp .. "/run2/plots/V_flow.png"))

-- P.batch: the plots a function renders, drawn by one gnuplot process at its end; a plot gnuplot fails on
-- is reported and the others are drawn; PNG alone on request (a stale SVG removed); the scripts left make
-- both images by hand and draw into `out` for both terminals; nothing hidden is left behind.
if P.available() then
  local function whole_png(path)
    local f = io.open(path, "rb"); if not f then return false end
    local data = f:read("a"); f:close()
    return data:sub(1, 8) == "\137PNG\r\n\26\n" and data:sub(-8, -5) == "IEND"
  end
  local function hidden(d)
    local left = {}
    for _, name in ipairs(dbm._list_dir(d)) do if name:sub(1, 1) == "." then left[#left + 1] = name end end
    return left
  end
  local bd = tmp .. "/batch"
  local calls = tmp .. "/gnuplot-calls"
  write(tmp .. "/gnuplot-counting", ('#!/bin/sh\necho "$*" >> %s\nexec gnuplot "$@"\n'):format(calls))
  assert(os.execute("chmod +x " .. tmp .. "/gnuplot-counting"))
  local saved_gnuplot, saved_report = P.gnuplot, P.report
  P.gnuplot = tmp .. "/gnuplot-counting"
  local messages = {}
  P.report = function(m) messages[#messages + 1] = m end
  local line = {{x = {1, 2, 3}, y = {1, 4, 9}, label = "squares"}}
  os.remove(calls)
  P.batch(function()
    P.xy(bd .. "/a", line, {title = "a"})
    P.render(bd .. "/broken", "1 2\n", "plot 'broken.dat' using 1:2 with no_such_style\n")
    P.xy(bd .. "/c", line, {title = "c"})
  end, {svg = false})
  assert(whole_png(bd .. "/a.png") and whole_png(bd .. "/c.png"), "the plots around the broken one are drawn")
  assert(not exists(bd .. "/a.svg") and not exists(bd .. "/broken.png"), "PNG alone; no image of the broken plot")
  assert(#messages == 1 and messages[1]:find("broken.gp", 1, true), table.concat(messages, "\n"))
  assert(#hidden(bd) == 0, "temporaries left: " .. table.concat(hidden(bd), " "))
  os.remove(calls); messages = {}
  P.batch(function() P.xy(bd .. "/a", line); P.xy(bd .. "/c", line); P.xy(bd .. "/d", line) end)
  local n = 0
  for l in io.lines(calls) do if not l:find("set terminal", 1, true) then n = n + 1 end end
  assert(n == 1, "one gnuplot process for the batch of three, ran " .. n)
  for _, b in ipairs({"a", "c", "d"}) do assert(whole_png(bd .. "/" .. b .. ".png") and exists(bd .. "/" .. b .. ".svg"), b) end
  P.batch(function() P.xy(bd .. "/a", line) end, {svg = false})
  assert(whole_png(bd .. "/a.png") and not exists(bd .. "/a.svg"), "a PNG redrawn alone takes its older SVG away")
  throws(function() P.batch(function() P.xy(bd .. "/e", line); error("boom", 0) end) end, "boom")
  assert(whole_png(bd .. "/e.png"), "the plots rendered before an error are drawn")
  throws(function() P.batch("not a function") end, "dbm.plot.batch: expected a function, got string")
  throws(function() P.batch(function() end, {pdf = true}) end, "dbm.plot.batch: unknown option 'pdf'")
  P.gnuplot, P.report = saved_gnuplot, saved_report
  assert(os.execute("cd " .. bd .. " && gnuplot -e \"out = '.by-hand'\" d.gp"))
  assert(whole_png(bd .. "/.by-hand.png") and exists(bd .. "/.by-hand.svg"), "the script draws into `out` for both terminals")
  print("recorder.lua: dbm.plot.batch checked (one gnuplot process, a failing plot isolated, PNG alone)")
end
assert(require("dbm.html").text("a `b` <c>\1\tx") == "a `b` &lt;c&gt;\\x01\tx", require("dbm.html").text("a `b` <c>\1\tx"))

-- Refreshes of a running run (dbm.report), paced by their cost: the first draws every plot (PNG alone);
-- one soon after draws the metrics and index.html alone, whose captions give the steps the matrices'
-- plots show; the recorder waits R.pace times a light refresh's CPU; close draws everything.
if P.available() then
  local R = require "dbm.report"
  local function state(d) local f = assert(io.open(d .. "/plots/.refresh.json")); local v = dbm.json_decode(f:read("a")); f:close(); return v end
  local function page(d) local f = assert(io.open(d .. "/index.html")); local v = f:read("a"); f:close(); return v end
  local pd = tmp .. "/paced"
  local rec5 = dbm.recorder{out_dir = pd, report = function() end}
  rec5:watch("W", dbm.randn(12, 6, {dtype = "float64"}), {every = 1})
  for s = 0, 4 do rec5:step(s, {loss = 1 / (s + 1)}) end
  R.refresh(pd, {running = true})
  local st = state(pd)
  assert(exists(pd .. "/plots/W_density.png") and not exists(pd .. "/plots/W_density.svg"), "a running refresh draws PNG alone")
  assert(st.drawn.W[1] == 5 and st.drawn.W[2] == 0 and st.drawn.W[3] == 4 and st.pace == R.pace and st.light_cpu == nil, dbm.json_encode(st))
  for s = 5, 9 do rec5:step(s, {loss = 1 / (s + 1)}) end
  os.remove(pd .. "/plots/W_density.png"); os.remove(pd .. "/plots/metrics.png")
  local saved_pace = R.pace
  R.pace = 1e6
  R.refresh(pd, {running = true})
  st = state(pd)
  assert(exists(pd .. "/plots/metrics.png") and not exists(pd .. "/plots/W_density.png"), "a light refresh: the metrics alone")
  assert(type(st.light_cpu) == "number" and R.next_refresh(pd) == st.last_at + R.pace * math.max(st.light_cpu, 0.01), dbm.json_encode(st))
  assert(page(pd):find("records at 5 steps, 0 to 4", 1, true), "the captions say the steps the plots show")
  assert(rec5:refresh() == false, "the recorder waits R.pace times the last light refresh's CPU")
  R.pace = 0
  R.refresh(pd, {running = true})
  assert(exists(pd .. "/plots/W_density.png") and page(pd):find("records at 10 steps, 0 to 9", 1, true), "matrices due again")
  R.pace = saved_pace
  rec5:close()
  assert(not exists(pd .. "/plots/.refresh.json") and exists(pd .. "/plots/W_density.svg"), "close draws every plot, both images")
  print("recorder.lua: refresh pacing checked")
end

-- A run directory that exists already (config.json there): files start afresh, a stale DONE goes.
local rec3 = dbm.recorder{out_dir = dir, report = function() end}
assert(not exists(dir .. "/DONE"), "stale DONE removed")
rec3:step(0, {x = 1})
rec3:close()
python([==[
lines = open(sys.argv[1] + "/metrics.jsonl").read().splitlines()
assert len(lines) == 1, lines
]==], dir)

-- The real plugins of plugins/, where they are, through the recorder: none fails.
local real = {}
for _, name in ipairs({"spectrum", "mp", "spacing", "powerlaw", "norms", "vectors"}) do
  if dbm.find_plugin(name) then real[#real + 1] = name end
end
if #real > 0 then
  local failed = {}
  local rec4 = dbm.recorder{out_dir = tmp .. "/run4", report = function(m) failed[#failed + 1] = m end}
  local Wg = dbm.randn(200, 80, {dtype = "float64", std = 0.1})
  rec4:watch("Wg", function() return Wg end, {diagnostics = real, every = 5})
  local sym = dbm.find_plugin("semicircle") and {"semicircle", "spacing"} or {}
  local Hg = dbm.zeros(60, 60, {dtype = "float64"})
  rec4:watch("Hg", function() return Hg end, {diagnostics = sym, every = 5, symmetric = true})
  for s = 0, 20 do
    Wg = Wg + dbm.randn(200, 80, {dtype = "float64", std = 0.01})
    local G = dbm.randn(60, 60, {dtype = "float64"}); Hg = Hg + (G + G:t()) * 0.1
    rec4:step(s, {loss = 1 / (s + 1)})
  end
  rec4:close()
  assert(#failed == 0, "the plugins of plugins/ through the recorder:\n" .. table.concat(failed, "\n"))
  if P.available() then
    assert(exists(tmp .. "/run4/plots/Wg_density.png") and exists(tmp .. "/run4/plots/Hg_spacing.svg"))
  end
  print("recorder.lua: plugins " .. table.concat(real, ", ") .. (#sym > 0 and ", semicircle" or "") .. " recorded without failures")
end

-- ---------------------------------------------------------------- shared steps files
-- Matrices recorded at the same steps share spectra/steps.npy, however many they are, during the run
-- (what a killed run leaves) and after close: no <matrix>.steps.npy for them. A matrix with its own
-- cadence, and one watched later, get their own steps file; a forced record of all at an odd step
-- keeps the shared ones shared.
do
  local d = tmp .. "/shared"
  local r = dbm.recorder{out_dir = d, plots = false, report = function() end}
  local X = dbm.randn(6, 4, {dtype = "float64"})
  for _, name in ipairs({"A", "B", "C"}) do r:watch(name, X, {every = 2}) end
  r:watch("D", X, {every = 4})
  for s = 0, 9 do r:step(s) end
  r:record(9)                          -- every matrix, at a step none was due at
  r:watch("E", X, {every = 2})         -- watched later
  for s = 10, 12 do r:step(s) end
  local check = [==[
d = sys.argv[1]
sp = d + "/spectra/"
own = sorted(f for f in os.listdir(sp) if f.endswith(".steps.npy"))
assert own == ["D.steps.npy", "E.steps.npy"], (sys.argv[2], own)
assert list(np.load(sp + "steps.npy")) == [0, 2, 4, 6, 8, 9, 10, 12], (sys.argv[2], list(np.load(sp + "steps.npy")))
assert list(np.load(sp + "D.steps.npy")) == [0, 4, 8, 9, 12] and list(np.load(sp + "E.steps.npy")) == [10, 12]
for m, rows in (("A", 8), ("B", 8), ("C", 8), ("D", 5), ("E", 2)):
    assert np.load(sp + m + ".npy").shape == (rows, 4), (sys.argv[2], m, np.load(sp + m + ".npy").shape)
print("recorder.lua: shared steps (" + sys.argv[2] + "): A, B and C share steps.npy; D and E have their own")
]==]
  python(check, d, "during the run")
  r:close()
  python(check, d, "after close")

  -- Interrupted inside a step (as Ctrl-C would, in the second matrix's record): steps.npy has not grown
  -- past the rows of any matrix; closing gives the one left behind its own steps file.
  local d2 = tmp .. "/shared_cut"
  local r2 = dbm.recorder{out_dir = d2, plots = false, report = function() end}
  local stop = false
  r2:watch("A", X, {every = 1})
  r2:watch("B", function() if stop then error("interrupted") end; return X end, {every = 1})
  for s = 0, 3 do r2:step(s) end
  stop = true
  assert(not pcall(r2.step, r2, 4))
  python([==[
sp = sys.argv[1] + "/spectra/"
assert list(np.load(sp + "steps.npy")) == [0, 1, 2, 3] and not os.path.exists(sp + "B.steps.npy")
assert np.load(sp + "A.npy").shape == (5, 4) and np.load(sp + "B.npy").shape == (4, 4)
]==], d2)
  r2:_close(false)
  python([==[
sp = sys.argv[1] + "/spectra/"
assert list(np.load(sp + "steps.npy")) == [0, 1, 2, 3, 4] and not os.path.exists(sp + "A.steps.npy")
assert list(np.load(sp + "B.steps.npy")) == [0, 1, 2, 3] and np.load(sp + "B.npy").shape == (4, 4)
print("recorder.lua: shared steps: a step interrupted between two matrices leaves every spectra file with its steps")
]==], d2)
end

-- ---------------------------------------------------------------- resume
-- A run killed (or stopped) part-way and resumed from its checkpoint at step S leaves the same run
-- directory, line for line and byte for byte, as the run that never stopped (metrics `time` aside),
-- with plots over the whole run. The data are pure functions of the step (randn from
-- dbm.generator(step)), so a resumed run redoes step S onward exactly.

-- A diagnostic with the scalars the plots read: λ_max, and σ² of the entries from the trace of the
-- Gram matrix (tr WᵀW = N·M·σ² for zero-mean entries), which draws the MP curve at the first record.
write(pdir .. "/tmp_stats.lua", [[
return {name = "tmp_stats", doc = "lambda_max and the entries' variance", panels = {{key = "lambda_max"}},
  density_curves = function(records, h)
    local r = records[1].result
    if not r.mp_sigma2 then return {} end
    local lo, hi = dbm.laws.mp_edges(r.mp_sigma2, h.shape[1], h.shape[2])
    return {{f = function(x) return dbm.laws.mp_density(x, r.mp_sigma2, h.shape[1], h.shape[2]) end, lo = lo, hi = hi,
             label = "Marchenko-Pastur at step " .. records[1].step}}
  end,
  run = function(ctx)
  local x, sum = ctx.levels, 0
  for _, v in ipairs(x) do sum = sum + v end
  local above = {}   -- an array of varying length (the top 1 + ⌊trace⌋ mod 3 levels), and one of fixed length
  for k = 1, 1 + math.floor(sum) % 3 do above[k] = x[#x + 1 - k] end
  local out = {lambda_max = x[#x], trace = sum, top = {x[#x], x[#x - 1]}, above = above}
  if ctx.shape and not ctx.symmetric then out.mp_sigma2 = sum / (ctx.shape[1] * ctx.shape[2]) end
  return out
end}
]])

-- The experiment: W (30×12) recorded every 5 steps, symmetric H (10×10) every 10 steps (so it has
-- its own steps file), scalars at every step; all pure functions of the step.
local function W_at(step) return dbm.randn(30, 12, {dtype = "float64", generator = dbm.generator(step)}) end
local function H_at(step)
  local G = dbm.randn(10, 10, {dtype = "float64", generator = dbm.generator(1000 + step)})
  return (G + G:t()) * 0.5
end

local resume_messages = {}
local function report(m) resume_messages[#resume_messages + 1] = m end

-- Runs steps from..to into dir (resumed at `resume` when given); returns the recorder, not closed.
local function run(dir, from, to, resume, watch)
  local rec = dbm.recorder{out_dir = dir, resume = resume, config = {seed = 1, steps = 20},
                           name = resume == nil and "resume_test" or nil, report = report}
  local step
  for _, name in ipairs(watch or {"W", "H"}) do
    if name == "W" then rec:watch("W", function() return W_at(step) end, {diagnostics = {"tmp_stats"}, every = 5}) end
    if name == "H" then rec:watch("H", function() return H_at(step) end, {diagnostics = {"tmp_stats"}, every = 10, symmetric = true}) end
    if name == "V" then rec:watch("V", function() return W_at(step + 7) end, {diagnostics = {"tmp_stats"}, every = 5}) end
  end
  for s = from, to do
    step = s
    local g = dbm.generator(2000 + s)
    rec:step(s, {loss = 1 / (s + 1), noise = g:normal(), lr = 0.1})
  end
  return rec
end

-- A run killed with SIGKILL after its last step: its files stay as they are (every line flushed,
-- every .npy renamed whole), and nothing more is written, not even by dbm.on_exit.
local function kill(rec)
  rec.closed = true
  rec.metrics_file:close()
  rec.observables_file:close()
end

-- Compares two run directories: metrics lines without `time`, observables lines, every file of
-- spectra/ byte for byte, the data of every plot; `time` non-decreasing in the second.
local function same_run(a, c, label)
  python([==[
a, c = sys.argv[1], sys.argv[2]
def metrics(d):
    out = []
    for l in open(d + "/metrics.jsonl").read().splitlines():
        o = json.loads(l)
        assert list(o)[:2] == ["step", "time"], l
        out.append((o.pop("time"), json.dumps(o)))
    return out
ma, mc = metrics(a), metrics(c)
assert [m for _, m in ma] == [m for _, m in mc], (sys.argv[3], [m for _, m in mc])
assert all(t2 >= t1 for (t1, _), (t2, _) in zip(mc, mc[1:])), (sys.argv[3], "time goes back", [t for t, _ in mc])
assert open(a + "/observables.jsonl").read() == open(c + "/observables.jsonl").read(), sys.argv[3] + ": observables.jsonl"
fa, fc = sorted(os.listdir(a + "/spectra")), sorted(os.listdir(c + "/spectra"))
assert fa == fc and "H.steps.npy" in fa and "W.steps.npy" not in fa, (sys.argv[3], fa, fc)
for f in fa:
    assert open(a + "/spectra/" + f, "rb").read() == open(c + "/spectra/" + f, "rb").read(), sys.argv[3] + ": spectra/" + f
for m in ("W", "H"):
    fa, fc = sorted(os.listdir(a + "/arrays/" + m)), sorted(os.listdir(c + "/arrays/" + m))
    assert fa == fc == ["tmp_stats.above.offsets.npy", "tmp_stats.above.values.npy", "tmp_stats.top.npy"], (sys.argv[3], fa, fc)
    for f in fa:
        assert open(a + "/arrays/" + m + "/" + f, "rb").read() == open(c + "/arrays/" + m + "/" + f, "rb").read(), sys.argv[3] + ": arrays/" + f
top, S = np.load(c + "/arrays/W/tmp_stats.top.npy"), np.load(c + "/spectra/W.npy")
assert top.shape == (len(S), 2) and (top[:, 0] == S[:, -1]).all() and (top[:, 1] == S[:, -2]).all(), top
values, offsets = np.load(c + "/arrays/W/tmp_stats.above.values.npy"), np.load(c + "/arrays/W/tmp_stats.above.offsets.npy")
assert offsets.dtype == np.int64 and len(offsets) == len(S) + 1 and offsets[0] == 0 and offsets[-1] == len(values)
for i in range(len(S)):
    assert (values[offsets[i]:offsets[i + 1]] == S[i][::-1][:1 + int(np.floor(S[i].sum())) % 3]).all(), i
assert list(np.load(c + "/spectra/steps.npy")) == [0, 5, 10, 15, 20]
dat = sorted(f for f in os.listdir(a + "/plots") if f.endswith(".dat"))
assert {"W_density.dat", "W_flow.dat", "W_observables.dat", "H_flow.dat", "metrics.dat"} <= set(dat), dat
for f in dat:
    assert open(a + "/plots/" + f).read() == open(c + "/plots/" + f).read(), sys.argv[3] + ": plots/" + f
print("recorder.lua: resume: " + sys.argv[3] + ": the same run directory as the run that never stopped")
]==], a, c, label)
end

-- The plot state in memory, complete over the whole run: the same as the run that never stopped.
local function same_memory(A, C, label)
  local function list(t) return table.concat(t, ",") end
  assert(list(C.metric_steps) == list(A.metric_steps) and list(C.metrics.noise) == list(A.metrics.noise), label .. ": metrics")
  assert(list(C.steps) == list(A.steps), label .. ": union of steps " .. list(C.steps))
  for _, name in ipairs({"W", "H"}) do
    local a, c = A.by_name[name], C.by_name[name]
    local ha, hc = a.history:view("tmp_stats"), c.history:view("tmp_stats")
    assert(c.rows == a.rows and list(c.steps) == list(a.steps) and c.history.n == a.history.n, label .. ": " .. name .. " records")
    assert(list(hc.scalars.lambda_max) == list(ha.scalars.lambda_max), label .. ": " .. name .. " observables")
    assert(c.steps[1] == 0 and (c.buf:row(1) - a.buf:row(1)):abs():max() == 0, label .. ": " .. name .. " first record")
    assert(hc.result(1).trace == ha.result(1).trace, label .. ": " .. name .. " first results")
    assert((hc.arrays.above[c.rows] - ha.arrays.above[a.rows]):abs():max() == 0, label .. ": " .. name .. " arrays of the last record")
    assert((c.buf:row(c.rows) - a.buf:row(a.rows)):abs():max() == 0, label .. ": " .. name .. " last record")
  end
  assert(C.by_name.W.history:view("tmp_stats").result(1).mp_sigma2 == A.by_name.W.history:view("tmp_stats").result(1).mp_sigma2,
         label .. ": mp_sigma2 of the first record (the MP curve of the density plot)")
end

-- ---------------------------------------------------------------- the run that never stopped

local dirA = tmp .. "/A"
local A = run(dirA, 0, 20)
A:close()

-- ---------------------------------------------------------------- killed after step 13, resumed at 10

local dirB = tmp .. "/B"
kill(run(dirB, 0, 13))
assert(not exists(dirB .. "/DONE"))
write(tmp .. "/B_config.json", io.open(dirB .. "/config.json"):read("a"))
local C = run(dirB, 10, 20, 10)
python([==[
d = sys.argv[1]
cfg, before = json.load(open(d + "/config.json")), json.load(open(sys.argv[2]))
assert list(cfg) == list(before) + ["resumed"], (list(cfg), list(before))
assert all(cfg[k] == before[k] for k in before), "the original fields stay"
assert cfg["name"] == "resume_test" and cfg["config"] == {"seed": 1, "steps": 20}, cfg
assert len(cfg["resumed"]) == 1 and cfg["resumed"][0]["step"] == 10 and cfg["resumed"][0]["time"].endswith("Z"), cfg["resumed"]
assert list(cfg["resumed"][0]) == ["step", "time", "args", "blas"], cfg["resumed"][0]
assert cfg["resumed"][0]["blas"]["core"] == cfg["blas"]["core"], "resumed on the kernel it ran on"
assert [w["name"] for w in cfg["watch"]] == ["W", "H"], cfg["watch"]
]==], dirB, tmp .. "/B_config.json")
C:close()
assert(exists(dirB .. "/DONE"), "a resumed run closed: DONE")
same_run(dirA, dirB, "killed after step 13, resumed at 10")
same_memory(A, C, "resumed at 10")
if P.available() then
  for _, base in ipairs({"W_density", "W_flow", "W_observables", "H_density", "H_flow", "metrics"}) do
    assert(exists(dirB .. "/plots/" .. base .. ".png") and exists(dirB .. "/plots/" .. base .. ".svg"), "plot images " .. base)
  end
end
local density = io.open(dirB .. "/plots/W_density.gp"):read("a")
assert(density:find("Marchenko", 1, true), "the density at step 0 has its MP curve after resuming")

-- ---------------------------------------------------------------- resumed on another BLAS kernel
-- Another kernel sums in another order: the resume goes on, and says it is no longer bit-exact.
local dirX = tmp .. "/X"
kill(run(dirX, 0, 3))
local xcfg = io.open(dirX .. "/config.json"):read("a")
local edited, n = xcfg:gsub('("core"%s*:%s*)"[^"]*"', '%1"OtherKernel"')
assert(n == 1, "config.json names one BLAS kernel")
write(dirX .. "/config.json", edited)
local before_count = #resume_messages
run(dirX, 2, 4, 2):close()
local said = table.concat(resume_messages, "\n", before_count + 1)
assert(said:find("last ran on OtherKernel", 1, true) and said:find("not bit-exact", 1, true), said)
before_count = #resume_messages
run(dirX, 4, 5, 4):close()   -- resumed again on the kernel of the last resume: nothing to say
assert(not table.concat(resume_messages, "\n", before_count + 1):find("bit-exact", 1, true))

-- ---------------------------------------------------------------- killed inside step 15, resumed at 15
-- A SIGKILL between the rows and the steps of a record leaves spectra/W.npy one row longer than
-- steps.npy, the metrics line and the observables of that step written: that row has no step and goes.

local dirK = tmp .. "/K"
kill(run(dirK, 0, 14))
local Wrows = dbm.load_npy(dirK .. "/spectra/W.npy")
local longer = dbm.zeros(Wrows:shape()[1] + 1, 12, {dtype = "float64"})
longer:narrow(1, 1, Wrows:shape()[1]):copy(Wrows)
longer:row(Wrows:shape()[1] + 1):copy(dbm.arange(12, {dtype = "float64"}) * 1e3)
dbm.save_npy(dirK .. "/spectra/W.npy", longer)
local metrics_file = dbm.jsonl(dirK .. "/metrics.jsonl", {append = true})
metrics_file:write({step = 15, time = 99, loss = 7}); metrics_file:close()
local observables_file = dbm.jsonl(dirK .. "/observables.jsonl", {append = true})
observables_file:write({step = 15, matrix = "W", diagnostic = "tmp_stats", lambda_max = 7}); observables_file:close()
python([==[
a = np.load(sys.argv[1] + "/spectra/W.npy")
assert a.shape == (4, 12) and list(np.load(sys.argv[1] + "/spectra/steps.npy")) == [0, 5, 10], a.shape
]==], dirK)
-- the killed run's clock said 100 s a step: the resumed run's `time` goes on from the last kept line
python([==[
p = sys.argv[1] + "/metrics.jsonl"
lines = [json.loads(l) for l in open(p)]
for o in lines: o["time"] = 100.0 * o["step"]
open(p, "w").write("".join(json.dumps(o, separators=(",", ":")) + "\n" for o in lines))
]==], dirK)
-- resumed, and killed again at once: the directory is already cut, and valid
kill(dbm.recorder{out_dir = dirK, resume = 15, report = report})
python([==[
d = sys.argv[1]
assert np.load(d + "/spectra/W.npy").shape == (3, 12), "the row without a step is gone at once"
assert list(np.load(d + "/spectra/steps.npy")) == [0, 5, 10] and list(np.load(d + "/spectra/H.steps.npy")) == [0, 10]
assert [json.loads(l)["step"] for l in open(d + "/metrics.jsonl")] == list(range(15))
assert [json.loads(l)["step"] for l in open(d + "/observables.jsonl")] == [0, 0, 5, 10, 10]
]==], dirK)
local CK = run(dirK, 15, 20, 15)
CK:close()
python([==[
t = {o["step"]: o["time"] for o in map(json.loads, open(sys.argv[1] + "/metrics.jsonl"))}
assert t[14] == 1400 and 1400 < t[15] <= t[20] < 1400 + 60, t
]==], dirK)
same_run(dirA, dirK, "killed inside step 15, resumed at 15")
same_memory(A, CK, "resumed at 15")

-- ---------------------------------------------------------------- stopped by Ctrl-C, resumed at 10
-- (dbm.on_exit closes without DONE: plots made, rows and steps cut to agree)

local dirI = tmp .. "/I"
local stopped = run(dirI, 0, 12)
stopped:_close(false)
assert(not exists(dirI .. "/DONE") and resume_messages[#resume_messages]:find("closed without DONE", 1, true), resume_messages[#resume_messages])
local CI = run(dirI, 10, 20, 10)
CI:close()
same_run(dirA, dirI, "stopped by Ctrl-C after step 12, resumed at 10")

-- ---------------------------------------------------------------- a completed run resumed again

local again = dbm.recorder{out_dir = dirB, resume = 15, report = report}
assert(not exists(dirB .. "/DONE"), "DONE goes as soon as a run is resumed")
again:close()   -- resumed, closed at once: nothing recorded from step 15 on
assert(exists(dirB .. "/DONE"))
python([==[
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
assert [r["step"] for r in cfg["resumed"]] == [10, 15], cfg["resumed"]
assert [w["name"] for w in cfg["watch"]] == ["W", "H"], "entries of matrices not watched again stay: " + str(cfg["watch"])
assert [json.loads(l)["step"] for l in open(d + "/metrics.jsonl")] == list(range(15))
assert list(np.load(d + "/spectra/steps.npy")) == [0, 5, 10]
assert np.load(d + "/spectra/W.npy").shape == (3, 12) and list(np.load(d + "/spectra/H.steps.npy")) == [0, 10]
]==], dirB)
local E = run(dirB, 15, 20, 15)
E:close()
same_run(dirA, dirB, "resumed at 10, then again at 15")

-- Resumed at 20 and stopped by Ctrl-C before recording anything: the plots still cover steps 0..15,
-- and the density at step 0 still has its MP curve (the shape of W, watched as a tensor, is known).
os.remove(dirB .. "/plots/W_density.gp")
local stopped_at_once = dbm.recorder{out_dir = dirB, resume = 20, report = report}
stopped_at_once:watch("W", W_at(20), {diagnostics = {"tmp_stats"}, every = 5})
stopped_at_once:_close(false)
assert(io.open(dirB .. "/plots/W_density.gp"):read("a"):find("Marchenko", 1, true), "the MP curve with no new record")
assert(stopped_at_once.by_name.W.rows == 4 and stopped_at_once.by_name.W.steps[4] == 15, "the last kept record is the last")

-- ---------------------------------------------------------------- matrices not watched again, and new ones
-- H is not watched by the resumed run: its rows before S stay, its steps stay in the union. V is new:
-- it starts fresh, with its own steps file.

local dirF = tmp .. "/F"
kill(run(dirF, 0, 13))
local F = run(dirF, 10, 20, 10, {"W", "V"})
assert(F.by_name.V.rows == 3 and F.by_name.V.steps[1] == 10 and F.by_name.W.steps[1] == 0, "a new matrix starts fresh")
F:close()
python([==[
d = sys.argv[1]
assert list(np.load(d + "/spectra/steps.npy")) == [0, 5, 10, 15, 20]
assert not os.path.exists(d + "/spectra/W.steps.npy") and np.load(d + "/spectra/W.npy").shape == (5, 12)
assert np.load(d + "/spectra/H.npy").shape == (1, 10) and list(np.load(d + "/spectra/H.steps.npy")) == [0]
assert np.load(d + "/spectra/V.npy").shape == (3, 12) and list(np.load(d + "/spectra/V.steps.npy")) == [10, 15, 20]
cfg = json.load(open(d + "/config.json"))
assert [w["name"] for w in cfg["watch"]] == ["W", "H", "V"], cfg["watch"]
obs = [json.loads(l) for l in open(d + "/observables.jsonl")]
assert [(o["step"], o["matrix"]) for o in obs] == [(0, "W"), (0, "H"), (5, "W"), (10, "W"), (10, "V"), (15, "W"), (15, "V"), (20, "W"), (20, "V")], obs
]==], dirF)

-- A run directory written before matrices recorded at the same steps shared steps.npy: the second such
-- matrix has a <matrix>.steps.npy identical to steps.npy. Resumed, it is read as before and kept up:
-- the same rows and steps as the run that never stopped.
local dirO, dirP = tmp .. "/O", tmp .. "/P"
run(dirP, 0, 20, nil, {"W", "V"}):close()
kill(run(dirO, 0, 13, nil, {"W", "V"}))
assert(not exists(dirO .. "/spectra/V.steps.npy"), "W and V recorded at the same steps share steps.npy")
write(dirO .. "/spectra/V.steps.npy", io.open(dirO .. "/spectra/steps.npy", "rb"):read("a"))   -- the old layout
local O = run(dirO, 10, 20, 10, {"W", "V"})
assert(table.concat(O.by_name.V.steps, ",") == "0,5,10,15,20" and O.by_name.V.rows == 5, "V taken up from the old layout")
O:close()
python([==[
o, p = sys.argv[1] + "/spectra/", sys.argv[2] + "/spectra/"
def steps_of(sp, m):
    own = sp + m + ".steps.npy"
    return list(np.load(own if os.path.exists(own) else sp + "steps.npy"))
assert not os.path.exists(p + "V.steps.npy") and os.path.exists(o + "V.steps.npy")
for m in ("W", "V"):
    assert steps_of(o, m) == steps_of(p, m) == [0, 5, 10, 15, 20], (m, steps_of(o, m), steps_of(p, m))
    assert open(o + m + ".npy", "rb").read() == open(p + m + ".npy", "rb").read(), m
assert list(np.load(o + "steps.npy")) == list(np.load(p + "steps.npy"))
print("recorder.lua: resume: a run with the old redundant steps file resumes to the same spectra")
]==], dirO, dirP)

-- A resumed run that records a matrix with another level count than its kept rows: the usual error.
local dirG = tmp .. "/G"
kill(run(dirG, 0, 5))
local G = dbm.recorder{out_dir = dirG, resume = 5, report = report}
G:watch("W", function() return dbm.randn(30, 8, {dtype = "float64"}) end, {every = 5})
throws(function() G:step(5) end, this_file, "matrix 'W' has 8 levels at step 5 but had 12 before")
G:_close(false)

-- ---------------------------------------------------------------- Ctrl-C inside a record, then close
-- The spectra files grow by appending; closing brings each one to the rows and steps in memory (cut to
-- agree), appending what a record interrupted between its row and its files did not write.

-- Runs steps 0..12 into dir, then step 15 with `method` raising (as Ctrl-C would, inside _record),
-- then closes as dbm.on_exit does: spectra/W.npy and steps.npy end with step 15's row and step.
local function interrupted(dir, method, rows_before_close)
  local rec = run(dir, 0, 12)          -- W at 0, 5, 10; H at 0, 10 (its own steps file)
  rec.by_name.W.source = function() return W_at(15) end
  rec[method] = function() error("interrupted") end
  assert(not pcall(rec.step, rec, 15))
  rec[method] = nil
  python([==[
d = sys.argv[1]
assert np.load(d + "/spectra/W.npy").shape == (int(sys.argv[2]), 12) and list(np.load(d + "/spectra/steps.npy")) == [0, 5, 10]
]==], dir, rows_before_close)
  rec:_close(false)
  python([==[
d = sys.argv[1]
W = np.load(d + "/spectra/W.npy"); steps = np.load(d + "/spectra/steps.npy")
assert W.shape == (4, 12) and list(steps) == [0, 5, 10, 15], (W.shape, list(steps))
assert not os.path.exists(d + "/spectra/W.steps.npy")
assert list(np.load(d + "/spectra/H.steps.npy")) == [0, 10] and np.load(d + "/spectra/H.npy").shape == (2, 10)
for f in ("W.npy", "steps.npy", "H.npy", "H.steps.npy"):
    buf = io.BytesIO(); np.save(buf, np.load(d + "/spectra/" + f))
    assert open(d + "/spectra/" + f, "rb").read() == buf.getvalue(), f + ": numpy.save's bytes, nothing past the rows"
print("recorder.lua: Ctrl-C inside a record (" + sys.argv[2] + "): closing brings the files to the rows and steps in memory")
]==], dir, method)
end
interrupted(tmp .. "/J1", "_write_rows", 3)         -- after the row and the step went to memory, before spectra/W.npy
interrupted(tmp .. "/J2", "_write_own_steps", 4)    -- after spectra/W.npy got its row, before the steps files

-- ---------------------------------------------------------------- errors, at the caller's line

assert(os.execute("mkdir -p " .. tmp .. "/empty " .. tmp .. "/bad"))
throws(function() dbm.recorder{resume = 3} end, this_file, "option 'resume': give out_dir")
throws(function() dbm.recorder{out_dir = tmp .. "/nowhere", resume = 3} end, this_file, "no run directory " .. tmp .. "/nowhere")
assert(not exists(tmp .. "/nowhere"), "a resume that fails makes no directory")
throws(function() dbm.recorder{out_dir = tmp .. "/empty", resume = 3} end, this_file, "has no config.json")
throws(function() dbm.recorder{out_dir = dirA, resume = -1} end, this_file, "option 'resume': expected the step to resume at (an integer ≥ 0), got -1")
throws(function() dbm.recorder{out_dir = dirA, resume = 2.5} end, this_file, "got 2.5")
throws(function() dbm.recorder{out_dir = dirA, resume = "10"} end, this_file, "got string")
write(tmp .. "/bad/config.json", "{not json")
throws(function() dbm.recorder{out_dir = tmp .. "/bad", resume = 0} end, this_file, "cannot resume " .. tmp .. "/bad", "invalid JSON")
assert(exists(dirA .. "/DONE"), "a failed resume leaves the run alone")

-- ---------------------------------------------------------------- progress on a pipe or file

local out = io.open(tmp .. "/progress.txt", "w")
local p = dbm.progress{total = 5, label = "train", stream = out}
assert(not p.tty, "a file is not a terminal")
for s = 1, 5 do p:update(s, {loss = 1 / s}) end
p:done()
out:close()
local text = io.open(tmp .. "/progress.txt"):read("a")
local lines = {}
for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
assert(#lines == 2, "plain lines: the first step and the last, got:\n" .. text)
assert(lines[1]:find("train  1/5   20%", 1, true) and lines[1]:find("ETA", 1, true) and lines[1]:find("loss 1", 1, true), lines[1])
assert(lines[2]:find("5/5  100%", 1, true) and lines[2]:find("in 0:00", 1, true) and lines[2]:find("loss 0.2", 1, true), lines[2])
assert(not text:find("\r", 1, true), "no carriage returns off a terminal")
throws(function() dbm.progress{totl = 3} end, this_file, "unknown option 'totl'")
throws(function() p:update("x") end, "expected a number")

os.execute("rm -rf " .. tmp)
print("recorder.lua: all checks passed")
