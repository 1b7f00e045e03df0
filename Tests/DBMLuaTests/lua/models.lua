-- dbm.models from Lua: live weights, steps, levels, ensembles; the statistics helpers; and every bad call
-- is a Lua error that names the function and this script's line.
local here = "models.lua:"
local function L() return debug.getinfo(2, "l").currentline end
local cases = 0
local function check(fname, line, ok, msg)
  cases = cases + 1
  if ok then error(("case %d at line %d: %s should have failed"):format(cases, line, fname), 2) end
  msg = tostring(msg)
  if not msg:find(fname, 1, true) then error(("case %d at line %d: message does not name %s: %s"):format(cases, line, fname, msg), 2) end
  if not msg:find(here .. line .. ":", 1, true) then error(("case %d: message does not give the line %d: %s"):format(cases, line, msg), 2) end
  local says = false
  for _, word in ipairs({"expected", "must", "no field", "not positive definite", "cannot", "truncated", "magic", "does not exist"}) do
    says = says or msg:find(word, 1, true) ~= nil
  end
  if not says then
    error(("case %d at line %d: message says nothing of what was expected: %s"):format(cases, line, msg), 2)
  end
end
local function close(a, b, tol) return math.abs(a - b) <= tol * math.max(1, math.abs(b)) end

-- ---------------------------------------------------------------- the teacher–student model
local m = dbm.models.teacher_student{lr = 0.1, batch_size = 16, eps = 0.1, seed = 3}
assert(m.name == "teacher-student" and m.steps == 0)
local W = m.weight
assert(dbm.is_tensor(W) and W:dtype() == "float64" and W:shape()[1] == 2 and W:shape()[2] == 2)
local before = W:clone()
assert(m:step(10) == m and m.steps == 10)
assert(rawequal(W, m.weight), "m.weight is one live tensor")
assert((W - before):abs():max() > 0, "a step changes the live weight")
-- levels: the singular values of W, ascending
local s = m:levels():totable()
local sv = dbm.svdvals(W):totable()
table.sort(sv)
assert(s[1] <= s[2] and close(s[1], sv[1], 1e-12) and close(s[2], sv[2], 1e-12), "levels are the singular values")
-- The weight is read by the next step: W = 2·I with ε = 0 is a fixed point.
local fixed = dbm.models.teacher_student{eps = 0, seed = 1}
local F = fixed.weight
F:set(1, 1, 2); F:set(1, 2, 0); F:set(2, 1, 0); F:set(2, 2, 2)
fixed:step(100)
assert(F:get(1, 1) == 2 and F:get(1, 2) == 0 and F:get(2, 1) == 0 and F:get(2, 2) == 2, "the step reads the weight set from Lua")
assert(m:scalars().epoch == 0)
m:step(490)
assert(m:scalars().epoch == 1 and m.steps == 500)
assert(tostring(m):find("teacher%-student, 500 steps"))
-- m:run(steps, every, after): the steps in chunks of `every`, the last one shorter, after(done) after each;
-- the same weights as the steps taken in one call.
local runner, seen = dbm.models.teacher_student{seed = 4}, {}
runner:run(25, 10, function(done) seen[#seen + 1] = done .. "@" .. runner.steps end)
assert(table.concat(seen, " ") == "10@10 20@20 25@25", "m:run calls after(done) per chunk: " .. table.concat(seen, " "))
local stepped = dbm.models.teacher_student{seed = 4}
stepped:step(25)
assert((stepped.weight - runner.weight):abs():max() == 0, "m:run(25, 10, f) moves W as m:step(25) does")
runner:run(0, 10, function() error("m:run(0, ...) calls after") end)
assert(runner.steps == 25)

-- Ensembles: row k is the model of seed `seed + k − 1` after `epochs` epochs.
local e = dbm.models.ensemble("teacher_student", {seeds = 6, seed = 10, epochs = 2})
assert(e:shape()[1] == 6 and e:shape()[2] == 2)
local m12 = dbm.models.teacher_student{seed = 12}
m12:step(1000)
local l12 = m12:levels()
assert(e:get(3, 1) == l12[1] and e:get(3, 2) == l12[2], "ensemble row 3 = seed 12")
local h = dbm.models.ensemble("teacher_student", {seeds = 6, seed = 10, epochs = 2, history = true})
assert(h:dim() == 3 and h:shape()[2] == 2 and (h:select(2, 2) - e):abs():max() == 0)

-- ---------------------------------------------------------------- statistics helpers
local mean, se = dbm.stats.mean({1, 2, 3, 4})
assert(mean == 2.5 and close(se, math.sqrt(5 / 3) / 2, 1e-12))
local wig = {}
local g = dbm.generator(4)
for i = 1, 4000 do   -- spacings of 2×2 GOE blocks follow the Wigner surmise exactly
  local a, b, c = g:normal(), g:normal(), g:normal() / math.sqrt(2)
  wig[i] = 2 * math.sqrt(((a - b) / 2) ^ 2 + c ^ 2)
end
local D, p = dbm.stats.wigner_ks(wig)
local Dp, pp = dbm.stats.poisson_ks(wig)
assert(p > 1e-3 and pp < 1e-10, ("Wigner p = %g, Poisson p = %g"):format(p, pp))
local D2, p2 = dbm.ks_2samp({1, 2, 3, 4, 5}, {1.5, 2.5, 3.5, 10, 11, 12})
assert(D2 == 0.5 and p2 > 0 and p2 < 1)
local slope, err, r2 = dbm.fit_origin({1, 2, 3}, {2, 4, 6})
assert(close(slope, 2, 1e-12) and err < 1e-12 and close(r2, 1, 1e-12))
assert(close(dbm.goe2_density(0, 0, 1), 1 / (2 * math.sqrt(math.pi)), 1e-12))
-- noise temperature of matrix Brownian motion W ← W + √(2Tδt)G
local Wb = dbm.randn(12, 6, {dtype = "float64", generator = g})
local T, dt, rows = 0.02, 0.01, {}
for r = 1, 1500 do
  rows[r] = dbm.eigvalsh(dbm.gram(Wb)):totable()
  Wb = Wb + dbm.randn(12, 6, {dtype = "float64", generator = g}) * math.sqrt(2 * T * dt)
end
local est = dbm.noise_temperature(dbm.tensor(rows, {dtype = "float64"}), dt)
assert(math.abs(est.temperature - T) < 5 * est.stderr + 0.02 * T, ("T = %g ± %g, expected %g"):format(est.temperature, est.stderr, T))
assert(est.per_level:numel() == 6 and est.increments == 1499)

-- ---------------------------------------------------------------- bad calls
local ts = dbm.models.teacher_student
local line
for _, v in ipairs({-1, 0, 0 / 0, math.huge}) do
  line = L(); check("dbm.models.teacher_student", line, pcall(ts, {lr = v}))
end
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {lr = "x"}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {batch_size = 0}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {batch_size = 2.5}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {eps = -0.1}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {n_data = 3, batch_size = 16}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, {learning_rate = 0.1}))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, 5))
line = L(); check("dbm.models.teacher_student", line, pcall(ts, dbm.zeros(2)))
line = L(); check("m:step", line, pcall(m.step, m, -1))
line = L(); check("m:step", line, pcall(m.step, m, "x"))
line = L(); check("m:step", line, pcall(m.step, m, 1.5))
line = L(); check("m:step", line, pcall(m.step, {}, 1))
line = L(); check("m:run", line, pcall(m.run, m, -1, 10, print))
line = L(); check("m:run", line, pcall(m.run, m, 2.5, 10, print))
line = L(); check("m:run", line, pcall(m.run, m, 10, 0, print))
line = L(); check("m:run", line, pcall(m.run, m, 10, nil, print))
line = L(); check("m:run", line, pcall(m.run, m, 10, 5))
line = L(); check("no field", line, pcall(function() return m.wieght end))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "tsm", {}))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "teacher_student", {seeds = 0}))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "teacher_student", {epochs = 0}))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "teacher_student", {seeds = 2, lr = -1}))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "teacher_student", {sedes = 2}))
line = L(); check("dbm.noise_temperature", line, pcall(dbm.noise_temperature, dbm.ones(10), 0.1))
line = L(); check("dbm.noise_temperature", line, pcall(dbm.noise_temperature, dbm.ones(10, 2), 0))
line = L(); check("dbm.noise_temperature", line, pcall(dbm.noise_temperature, -dbm.ones(10, 2), 0.1))
line = L(); check("dbm.noise_temperature", line, pcall(dbm.noise_temperature, dbm.ones(3, 2), 0.1))
line = L(); check("dbm.noise_temperature", line, pcall(dbm.noise_temperature, "x", 0.1))
line = L(); check("dbm.ks_2samp", line, pcall(dbm.ks_2samp, {}, {1}))
line = L(); check("dbm.ks_2samp", line, pcall(dbm.ks_2samp, {1}, "x"))
line = L(); check("dbm.ks_pvalue", line, pcall(dbm.ks_pvalue, 2, 10))
line = L(); check("dbm.ks_pvalue", line, pcall(dbm.ks_pvalue, 0.1, 0))
line = L(); check("dbm.fit_goe2", line, pcall(dbm.fit_goe2, {1, 2}))
line = L(); check("dbm.fit_origin", line, pcall(dbm.fit_origin, {0, 0}, {1, 2}))
line = L(); check("dbm.goe2_density", line, pcall(dbm.goe2_density, 0, 0, -1))
line = L(); check("dbm.stats.mean", line, pcall(dbm.stats.mean, {}))
line = L(); check("dbm.stats.ks", line, pcall(dbm.stats.ks, "x", dbm.stats.wigner_cdf))
-- The other models: bad parameters.
local rs = dbm.models.rbm_scalar
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {field_mass = 0}))          -- κ_0 = 0: not positive definite
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {mass = 2}))                -- μ² below the largest κ
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {lr = 0 / 0}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {lr = -0.1}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {batch_size = 0}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {k = 0}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {target_kernel = -dbm.eye(4)}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {target_kernel = dbm.ones(3, 4)}))
line = L(); check("dbm.models.rbm_scalar", line, pcall(rs, {target_kernel = "K"}))
line = L(); check("dbm.models.ensemble", line, pcall(dbm.models.ensemble, "rbm_scalar", {seeds = 2, steps = -1}))
local dy = dbm.models.dyson
line = L(); check("dbm.models.dyson", line, pcall(dy, {dt = 0}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {temperature = -1}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {k = 0 / 0}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {n = 1}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {potential = "quartic"}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {potential = "wishart", n = 10, rows = 5}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {potential = "wishart", levels = {-1, 2}}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {levels = {1, 1, 2}}))
line = L(); check("dbm.models.dyson", line, pcall(dy, {n = 3, levels = {1, 2}}))
local dm = dbm.models.dyson{n = 5, seed = 1}
dm:step(10)
assert(dm.steps == 10 and dm.weight:numel() == 5 and dm:info().potential == "harmonic")
dm.weight:set(2, dm.weight[1])   -- two coincident levels: the next step refuses them
line = L(); check("m:step", line, pcall(dm.step, dm, 1))
local mb = dbm.models.matrix_bm{rows = 40, cols = 20, dt = 0.5, seed = 3}
mb:step(100)
local var = (mb.weight * mb.weight):mean()
assert(math.abs(var - 50) < 10, "entries of variance t = 50, got " .. var)
line = L(); check("dbm.models.matrix_bm", line, pcall(dbm.models.matrix_bm, {dt = 0.1}))
line = L(); check("dbm.models.matrix_bm", line, pcall(dbm.models.matrix_bm, {rows = 3, cols = 2, dt = -1}))
line = L(); check("m:stationary_cdf", line, pcall(m.stationary_cdf, m, {1, 2}))
local rb = dbm.models.rbm_bernoulli
local X = dbm.rand(20, 6)
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {hidden = 4}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = X * 2, hidden = 4}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = X, hidden = 0}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = X, batch_size = 21}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = X, lr = -1}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = X, binarize = "round"}))
line = L(); check("dbm.models.rbm_bernoulli", line, pcall(rb, {data = dbm.rand(6)}))
local rbm = rb{data = X, hidden = 3, batch_size = 5, seed = 2}
rbm:step(10)
assert(rbm.steps == 10 and rbm.weight:shape()[1] == 3 and rbm.weight:shape()[2] == 6)
assert(rbm:scalars().reconstruction_error > 0 and rbm:levels():numel() == 3)
local bits = dbm.tensor({{1, 0, 1, 0, 1, 0}, {0, 0, 1, 1, 0, 1}}, {dtype = "float64"})
local ll, logz = rbm:log_likelihood(bits)
assert(ll < 0 and logz > 0, "exact log-likelihood of a 6 × 3 RBM")
line = L(); check("m:reconstruction_error", line, pcall(rbm.reconstruction_error, rbm, dbm.rand(4, 5)))
line = L(); check("m:biases", line, pcall(m.biases, m))
-- IDX files: wrong magic number, truncated body, missing file
local dir = os.tmpname(); os.remove(dir); os.execute("mkdir -p " .. dir)
local function write(name, bytes) local f = assert(io.open(dir .. "/" .. name, "wb")); f:write(bytes); f:close(); return dir .. "/" .. name end
local good = write("good.idx", "\0\0\8\1\0\0\0\3" .. "\1\2\3")
assert(dbm.load_idx(good):numel() == 3 and dbm.load_idx(good)[2] == 2)
line = L(); check("dbm.load_idx", line, pcall(dbm.load_idx, write("magic.idx", "\1\0\8\1\0\0\0\3\1\2\3")))
line = L(); check("dbm.load_idx", line, pcall(dbm.load_idx, write("short.idx", "\0\0\8\1\0\0\0\9\1\2\3")))
line = L(); check("dbm.load_idx", line, pcall(dbm.load_idx, dir .. "/missing.idx"))
line = L(); check("dbm.load_idx", line, pcall(dbm.load_idx, good, {limit = 0}))
line = L(); check("dbm.fashion_mnist", line, pcall(dbm.fashion_mnist, "validation"))
os.execute("rm -rf " .. dir)
print(("models.lua: %d bad calls caught, all checks passed"):format(cases))
