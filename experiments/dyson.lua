-- Dyson Brownian motion simulated directly (DESIGN §2, §3): n levels with β = 1 Coulomb repulsion at
-- temperature T in a harmonic potential V = k x²/2 (stationary density: a semicircle of radius √(2nT/k)) or a
-- Wishart potential (the eigenvalues of WᵀW for a rows × n Gaussian W of entry variance σ²: Marchenko–Pastur).
-- The levels repel: their spacing ratio is GOE-like, ⟨r⟩ ≈ 0.5307 (Poisson levels: 0.386). This is what the
-- learning models are compared with.
--
-- Run: dbm-lua experiments/dyson.lua [--n=50 --potential=harmonic|wishart --k=1 --rows=100 --variance=1
--                                    --temperature=1 --dt=0.001 --burn_in=10 --records=200 --every=1 --seed=0
--                                    --compare_matrix --out_dir=DIR]
-- burn_in and every are in units of time (every/dt steps between records). --compare_matrix (Wishart only)
-- also runs the matrix Ornstein–Uhlenbeck process whose eigenvalues follow the same law.
-- Writes spectra/levels.npy (records × n), spectra/final.npy (1 × n), metrics.jsonl, summary.md, plots/.
local cfg = dbm.config({n = 50, potential = "harmonic", k = 1.0, rows = 100, variance = 1.0, temperature = 1.0, dt = 0.001,
                        burn_in = 10.0, records = 200, every = 1.0, seed = 0, compare_matrix = false, out_dir = ""})
local plot, stats = require("dbm.plot"), dbm.stats
local wishart = cfg.potential == "wishart"
local opts = {n = cfg.n, potential = cfg.potential, temperature = cfg.temperature, dt = cfg.dt, seed = cfg.seed}
if wishart then opts.rows, opts.variance = cfg.rows, cfg.variance else opts.k = cfg.k end
local m = dbm.models.dyson(opts)

local rec = dbm.recorder{config = cfg, out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil, name = "dyson"}
local per_record = math.max(1, math.floor(cfg.every / cfg.dt + 0.5))
local burn = math.floor(cfg.burn_in / cfg.dt + 0.5)
rec:watch("levels", m.weight, {diagnostics = {"spacing"}, when = function(step) return step >= burn and (step - burn) % per_record == 0 end})

local function ratios(rows, from, to)
  local r = {}
  for _, row in ipairs(rows) do
    for i = from + 1, to - 1 do
      local a, b = row[i] - row[i - 1], row[i + 1] - row[i]
      r[#r + 1] = math.min(a, b) / math.max(a, b)
    end
  end
  return r
end

local progress = dbm.progress{total = burn + cfg.records * per_record, label = "Dyson Brownian motion"}
local t0 = dbm.clock()
rec:step(0, {t = 0})
m:step(burn)
local rows, pooled, D, r_all, r_bulk, r_last = {}, {}, 0 / 0, 0 / 0, 0 / 0, nil
for r = 0, cfg.records do
  if r > 0 then m:step(per_record) end
  local levels = m:levels():totable()
  rows[#rows + 1] = levels
  local scalars = {t = m.steps * cfg.dt, acceptance_rate = m:info().acceptance_rate}
  if r == cfg.records then
    -- Pooled over the records: the density against the stationary law (KS), ⟨r⟩ over all levels and the bulk.
    for _, row in ipairs(rows) do for _, v in ipairs(row) do pooled[#pooled + 1] = v end end
    table.sort(pooled)
    D = dbm.ks_distance(m:stationary_cdf(pooled))
    r_all = stats.mean(ratios(rows, 1, cfg.n))
    local q = cfg.n // 4
    r_bulk = stats.mean(ratios(rows, q + 1, cfg.n - q))
    scalars.ks_stationary, scalars.r_mean_pooled, scalars.r_mean_bulk = D, r_all, r_bulk
  end
  local recorded = rec:step(m.steps, scalars)
  if recorded.levels and recorded.levels.spacing then r_last = recorded.levels.spacing.r_mean end
  progress:update(m.steps, {["<r>"] = r_last})
end
progress:done()
local seconds = dbm.clock() - t0
dbm.save_npy(rec.dir .. "/spectra/final.npy", dbm.tensor({rows[#rows]}, {dtype = "float64"}))

-- Optional: the matrix process with the same stationary law (Wishart: dW = −γW dt + √(2T) dB, γ = T/σ²).
local matrix_D, matrix_r
if cfg.compare_matrix and wishart then
  local mb = dbm.models.matrix_bm{rows = cfg.rows, cols = cfg.n, dt = cfg.dt * 10, temperature = cfg.temperature,
                                  restoring = cfg.temperature / cfg.variance, seed = cfg.seed}
  mb:step(math.floor(cfg.burn_in / (cfg.dt * 10) + 0.5))
  local mrows, all = {}, {}
  for r = 1, cfg.records do
    mb:step(math.max(1, per_record // 10))
    mrows[r] = mb:levels():totable()
    for _, v in ipairs(mrows[r]) do all[#all + 1] = v end
  end
  table.sort(all)
  matrix_D = dbm.ks_distance(m:stationary_cdf(all))
  matrix_r = stats.mean(ratios(mrows, 1, cfg.n))
end
local dir = rec.dir

-- The pooled density, and the summary, before rec:close() writes DONE.
local law = wishart and {mp = {sigma2 = cfg.variance, n = cfg.rows, m = cfg.n, label = "Marchenko–Pastur"}}
  or {semicircle = {center = 0, radius = m:info().edge_upper, label = "semicircle, R = √(2nT/k)"}}   -- the simulator's own law
law.title = ("Dyson Brownian motion (%s, n = %d, T = %g): %d records pooled, KS %.4f"):format(cfg.potential, cfg.n,
  cfg.temperature, #rows, D)
law.labels = {"levels"}
plot.density(dir .. "/plots/pooled_density", pooled, law)

local info = m:info()
dbm.write_summary(dir, {
  title = "Dyson Brownian motion",
  settings = ("%s potential, n = %d, T = %g, dt = %g; burn-in %g, then %d records every %g time units (%.1f s, acceptance %.4f).")
    :format(cfg.potential, cfg.n, cfg.temperature, cfg.dt, cfg.burn_in, cfg.records, cfg.every, seconds, info.acceptance_rate),
  config = cfg,
  figures = {header = {"quantity", "measured", "expected"}, rows = {
    {"KS distance of the pooled levels to the stationary law", ("%.4f"):format(D), "≤ 0.03"},
    {"⟨r⟩, all levels", ("%.4f"):format(r_all), "0.5307 (GOE; Poisson 0.386)"},
    {"⟨r⟩, middle half", ("%.4f"):format(r_bulk), "0.5307"},
    {"stationary support", ("[%.4g, %.4g]"):format(info.edge_lower, info.edge_upper), wishart and "Marchenko–Pastur" or "semicircle"},
  }},
  notes = matrix_D and ("The matrix process dW = −γW dt + √(2T) dB (γ = T/σ²): KS to the same law %.4f, ⟨r⟩ = %.4f.")
    :format(matrix_D, matrix_r) or nil,
  files = {"plots/pooled_density.png", "plots/levels_flow.png", "plots/levels_observables.png"},
})
rec:close()

print(("Dyson (%s, n = %d, T = %g, dt = %g): %d records, %.1f s, acceptance %.4f"):format(cfg.potential, cfg.n,
  cfg.temperature, cfg.dt, #rows, seconds, info.acceptance_rate))
print(("  KS to the stationary law %.4f (<= 0.03); <r> = %.4f all levels, %.4f bulk (GOE 0.5307)"):format(D, r_all, r_bulk))
if matrix_D then print(("  matrix process: KS %.4f, <r> = %.4f"):format(matrix_D, matrix_r)) end
print("run directory: " .. dir)
