-- The optimizer owns its learning rate (issue 14, item 5). A schedule scales each group's own rate,
-- lr_g · γ(t) / lr, and never overwrites it; the `lr` a run logs at step s is the rate the update from s
-- applies; a checkpoint saves the rates used and the groups' own rates, and a checkpoint in the older
-- layout (optim.lr only) still resumes.
--
-- Plain SGD moves θ by −γ·g, so with g = 1 each update shows the rate it applied: γ = θ_before − θ_after.
local optim = dbm.optim

local function close(a, b, what)
  if type(a) ~= "number" or math.abs(a - b) > 1e-12 * math.max(1e-3, math.abs(b)) then
    error(("%s: got %s, expected %.17g"):format(what, tostring(a), b), 2)
  end
end

-- Two groups of float64 parameters: group 1 at the optimizer's rate 0.1, group 2 with its own 0.01.
local function sgd(schedule, own2)
  local a = dbm.parameter(dbm.zeros(3, {dtype = "float64"}))
  local b = dbm.parameter(dbm.zeros(2, {dtype = "float64"}))
  local opt = optim.SGD({{params = {a}}, {params = {b}, lr = own2}}, {lr = 0.1, schedule = schedule})
  return {opt = opt, a = a, b = b}
end

-- One update with gradient 1 everywhere; the rates it applied to group 1 and group 2.
local function step(run)
  local a0, b0 = run.a[1], run.b[1]
  local loss = run.a:sum() + run.b:sum()
  loss:backward()
  run.opt:step()
  run.opt:zero_grad()
  return a0 - run.a[1], b0 - run.b[1]
end

-- ---------------------------------------------------------------- a per-group rate survives a schedule

local cos = optim.cosine{lr = 0.1, warmup = 2, total = 8, min_lr = 0.01}
for _, schedule in ipairs({cos, function(t) return cos(t) end}) do   -- evaluated in Swift, or a Lua function
  local kind = type(schedule) == "function" and "a Lua function" or "dbm.optim.cosine"
  local run = sgd(schedule, 0.01)
  for t = 0, 10 do
    if t == 6 then run.opt:set_lr(0.05, 2) end   -- a new own rate, scaled from the next update on
    local own2 = t < 6 and 0.01 or 0.05
    local want1, want2 = cos(t), own2 / 0.1 * cos(t)
    assert(run.opt:lr() == want1 and run.opt:lr(1) == want1, kind .. ": group 1 follows the schedule exactly")
    assert(run.opt:lr(2) == want2, ("%s, step %d: group 2's rate %.17g, expected %.17g"):format(kind, t, run.opt:lr(2), want2))
    local m = run.opt:lr_metrics()
    assert(m.lr == want1 and m.lr_2 == want2, kind .. ": lr_metrics")
    local got1, got2 = step(run)
    close(got1, want1, ("%s: rate applied to group 1 at step %d"):format(kind, t))
    close(got2, want2, ("%s: rate applied to group 2 at step %d"):format(kind, t))
    assert(run.opt:group_lr(1) == 0.1 and run.opt:group_lr(2) == own2, kind .. ": the own rates are kept")
  end
end
-- Groups at one rate log `lr` alone; without a schedule each group keeps its own rate.
local same = sgd(cos, nil)
local m = same.opt:lr_metrics()
assert(m.lr == cos(0) and m.lr_2 == nil)
local plain = sgd(nil, 0.01)
m = plain.opt:lr_metrics()
assert(m.lr == 0.1 and m.lr_2 == 0.01)
local g1, g2 = step(plain)
close(g1, 0.1, "unscheduled group 1"); close(g2, 0.01, "unscheduled group 2")
-- A Lua schedule is checked where it runs: a bad value names the step and changes nothing.
local bad = sgd(function(t) return t < 1 and 0.1 or 0 / 0 end, 0.01)
step(bad)
local a1 = bad.a[1]
local ok, err = pcall(step, bad)
assert(not ok and tostring(err):find("Optimizer:step", 1, true) and tostring(err):find("from step 1, got", 1, true) and tostring(err):find("nan", 1, true), tostring(err))
assert(bad.a[1] == a1 and bad.opt:step_count() == 1)
ok, err = pcall(step, sgd(function() error("no rate here") end, 0.01))
assert(not ok and tostring(err):find("the schedule failed for step 0", 1, true) and tostring(err):find("no rate here", 1, true), tostring(err))
-- A misspelt constant of a schedule is an error, not a silent default.
ok, err = pcall(optim.cosine, {lr = 0.1, warmpu = 2, total = 8})
assert(not ok and tostring(err):find("dbm.optim.cosine", 1, true) and tostring(err):find("'warmpu'", 1, true), tostring(err))

-- ---------------------------------------------------------------- metrics.jsonl's lr is the rate applied

local dir = os.tmpname()
os.remove(dir)
local rec = dbm.recorder{out_dir = dir, config = {lr = 0.1}, plots = false}
local run = sgd(cos, 0.01)
local applied = {}
for s = 0, 9 do
  local scalars = run.opt:lr_metrics()
  scalars.loss = s
  rec:step(s, scalars)
  applied[s] = {step(run)}
end
rec:close()
local lines = 0
for line in io.lines(dir .. "/metrics.jsonl") do
  local rec_line = dbm.json_decode(line)
  local s = rec_line.step
  close(rec_line.lr, applied[s][1], "metrics.jsonl lr at step " .. s)
  close(rec_line.lr_2, applied[s][2], "metrics.jsonl lr_2 at step " .. s)
  lines = lines + 1
end
assert(lines == 10, lines)
os.execute("rm -rf '" .. dir .. "'")

-- ---------------------------------------------------------------- checkpoints: what was used, and the older layout

-- A model holding the two parameters, for dbm.save_checkpoint / load_checkpoint.
local Pair = dbm.nn.Module:extend("Pair")
function Pair:init(run) self:param("a", run.a); self:param("b", run.b) end
local function save(run, path)
  dbm.save_checkpoint(path, {model = Pair(run), optimizer = run.opt, step = run.opt:step_count()})
end
local function load(run, path) dbm.load_checkpoint(path, {model = Pair(run), optimizer = run.opt}) end
local function same_params(x, y, what)
  assert((x.a - y.a):abs():max() == 0 and (x.b - y.b):abs():max() == 0, what .. ": parameters differ")
end

local path = os.tmpname()
local N, M = 3, 5
local full = sgd(cos, 0.01)
for _ = 1, N + M do step(full) end
local first = sgd(cos, 0.01)
for _ = 1, N do step(first) end
save(first, path)
local t = dbm.load_safetensors(path)
assert(t["optim.lr"][1] == cos(N) and t["optim.lr"][2] == 0.01 / 0.1 * cos(N), "optim.lr: the rates of the update from step N")
assert(t["optim.group_lr"][1] == 0.1 and t["optim.group_lr"][2] == 0.01, "optim.group_lr: the own rates")
-- Resumed into an optimizer built without group 2's own rate: the file's rates win, and the next update
-- applies exactly what the file says.
local second = sgd(cos, nil)
load(second, path)
assert(second.opt:step_count() == N and second.opt:group_lr(2) == 0.01)
assert(second.opt:lr(1) == t["optim.lr"][1] and second.opt:lr(2) == t["optim.lr"][2])
local r1, r2 = step(second)
close(r1, t["optim.lr"][1], "resumed group 1"); close(r2, t["optim.lr"][2], "resumed group 2")
for _ = 2, M do step(second) end
same_params(second, full, "resumed")

-- The older layout: no optim.group_lr, and optim.lr the rate the last step set on every group (the
-- schedule's value at N − 1). The schedule gives the rates again; the groups keep the rates the script
-- gives them, and the run continues exactly as one that never stopped.
local tensors, meta = dbm.load_safetensors(path)
tensors["optim.group_lr"] = nil
tensors["optim.lr"] = dbm.tensor({cos(N - 1), cos(N - 1)}, {dtype = "float64"})
dbm.save_safetensors(path, tensors, meta)
local old = sgd(cos, 0.01)
load(old, path)
assert(old.opt:group_lr(1) == 0.1 and old.opt:group_lr(2) == 0.01 and old.opt:lr(2) == 0.01 / 0.1 * cos(N))
for _ = 1, M do step(old) end
same_params(old, full, "resumed from the older layout")
-- Older layout without a schedule: optim.lr was each group's own rate (set_lr's), and is restored.
local unscheduled = sgd(nil, 0.01)
unscheduled.opt:set_lr(0.03, 2)
step(unscheduled)
save(unscheduled, path)
tensors, meta = dbm.load_safetensors(path)
tensors["optim.group_lr"] = nil
dbm.save_safetensors(path, tensors, meta)
local fresh = sgd(nil, 0.01)
load(fresh, path)
assert(fresh.opt:group_lr(2) == 0.03 and fresh.opt:lr(2) == 0.03 and fresh.opt:lr(1) == 0.1)
os.remove(path)

print("learning_rate.lua: per-group rates survive a schedule; metrics.jsonl's lr is the rate applied; checkpoints (both layouts) resume it")
