-- Heavy-tailed test matrices for the comparison with WeightWatcher 0.7.7 (issue 15), from dbm's generator:
-- Student-t entries (ν = 2, 3, 4: t = Z/√(χ²_ν/ν)), symmetric Pareto entries (±U^{−1/μ}, μ = 1.5, 2.5) and
-- products of a Gaussian with a t matrix, in shapes around 100×300 (both orientations, and square); and three
-- with fewer than 20 levels, where WeightWatcher switches to its small-N fit.
-- Writes DIR/model.safetensors (all of them, for dbm-lua analyze) and DIR/flat/<name>.weight.npy (one file each,
-- WeightWatcher's flat-file model), float32. Usage: dbm-lua heavy_tailed.lua --dir=DIR
local cfg = dbm.config{dir = ""}
assert(cfg.dir ~= "", "heavy_tailed.lua: --dir=DIR is required")
local g = dbm.generator(1507)

local function student_t(rows, cols, nu)
  local chi2 = dbm.zeros(rows, cols, {dtype = "float64"})
  for _ = 1, nu do chi2 = chi2 + dbm.randn(rows, cols, {dtype = "float64", generator = g}) ^ 2 end
  return dbm.randn(rows, cols, {dtype = "float64", generator = g}) / (chi2 / nu):sqrt()
end

local function pareto(rows, cols, mu)
  local u = dbm.rand(rows, cols, {dtype = "float64", low = 1e-12, high = 1, generator = g})
  local sign = dbm.randn(rows, cols, {dtype = "float64", generator = g}):sign()
  return sign * u ^ (-1 / mu)
end

local shapes = {{100, 300}, {300, 100}, {150, 150}, {120, 360}}
local matrices = {}
for i, shape in ipairs(shapes) do
  for _, nu in ipairs({2, 3, 4}) do matrices[#matrices + 1] = {("t%d_%d"):format(nu, i), student_t(shape[1], shape[2], nu)} end
  for _, mu in ipairs({1.5, 2.5}) do matrices[#matrices + 1] = {("pareto%g_%d"):format(mu, i), pareto(shape[1], shape[2], mu)} end
  local A = dbm.randn(shape[1], 80, {dtype = "float64", generator = g})
  matrices[#matrices + 1] = {("product_%d"):format(i), A:matmul(student_t(80, shape[2], 3))}
end
-- fewer than 20 levels: WeightWatcher's small-N fit (WW_powerlaw.WWFit.fit_powerlaw_smallN)
for i, shape in ipairs({{12, 40}, {18, 18}, {40, 15}}) do matrices[#matrices + 1] = {("small_%d"):format(i), student_t(shape[1], shape[2], 2)} end

dbm.mkdir(cfg.dir .. "/flat")
local tensors = {}
for _, m in ipairs(matrices) do
  local W = (m[2] * 0.02):to("float32")
  tensors[m[1] .. ".weight"] = W
  dbm.save_npy(cfg.dir .. "/flat/" .. m[1] .. ".weight.npy", W)
end
dbm.save_safetensors(cfg.dir .. "/model.safetensors", tensors)
print(("heavy_tailed.lua: %d matrices in %s"):format(#matrices, cfg.dir))
