-- The Gaussian scalar-field RBM of arXiv:2407.16427 (DESIGN §3): 10 visible and 10 hidden Gaussian units
-- learn a free periodic scalar field of mass m = 2 (kernel K_φ, eigenvalues κ_n = m² + 2 − 2cos(2πn/10)).
-- The eigenvalues of WᵀW flow to μ² − κ_n (μ = 3): two single levels and four degenerate pairs. SGD noise
-- splits each pair, with Wigner-surmise spacings of size ∝ √(α(μ² − κ)/|B|), and shifts every mode down by
-- a small O(α/|B|) amount.
--
-- Run: dbm-lua experiments/rbm_scalar.lua [--lr=0.1 --batch_size=16 --k=3 --steps=100000 --seeds=64
--                                         --seed=0 --record_every=100 --deviation_scan --out_dir=DIR]
-- --deviation_scan adds the α → 0 check: the relative deviation of the ensemble means from μ² − κ_n over
-- α ∈ {0.04, 0.02, 0.01, 0.005} at |B| = batch_size (a few minutes).
-- Writes a run directory: spectra/W.npy (one model's levels every record_every steps), spectra/final.npy
-- (seeds × 10), metrics.jsonl, summary.md, plots/ (W_flow: the levels flowing to μ² − κ_n).
local cfg = dbm.config({lr = 0.1, batch_size = 16, k = 3, steps = 100000, seeds = 64, seed = 0, record_every = 100,
                        deviation_scan = false, out_dir = ""})
local plot, stats = require("dbm.plot"), dbm.stats

local rec = dbm.recorder{config = cfg, out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil, name = "rbm_scalar", total_steps = cfg.steps}
local m = dbm.models.rbm_scalar{lr = cfg.lr, batch_size = cfg.batch_size, k = cfg.k, seed = cfg.seed}
local info = m:info()
local expected = info.expected_levels:totable()   -- μ² − κ_n, ascending: single, 4 pairs, single
local n = #expected

-- 1. One model, watched: the flow of its levels to μ² − κ_n.
rec:watch("W", m.weight, {diagnostics = {"spacing"}, every = cfg.record_every})   -- W_spacing, W_density, W_flow
local progress = dbm.progress{total = cfg.steps, label = "scalar-field RBM"}
rec:step(0, {})
m:run(cfg.steps, cfg.record_every, function(done)
  local l = m:levels()
  rec:step(done, {lowest = l[1], highest = l[n]})
  progress:update(done)
end)
progress:done()

-- Noise temperature of this model from per-step increments over its last 2000 steps (δt = α per step).
local rows = {}
for r = 1, 2000 do m:step(1); rows[r] = m:levels():totable() end
local T = dbm.noise_temperature(dbm.tensor(rows, {dtype = "float64"}), cfg.lr)

-- 2. The ensemble: levels of every seed, recorded after a burn-in of half the steps.
local burn = cfg.steps // 2
local every = math.max(1, (cfg.steps - burn) // 20)
local t0 = dbm.clock()
local history = dbm.models.ensemble("rbm_scalar", {seeds = cfg.seeds, seed = cfg.seed, steps = cfg.steps, burn_in = burn,
                                                   record_every = every, lr = cfg.lr, batch_size = cfg.batch_size, k = cfg.k,
                                                   history = true})
local ensemble_seconds = dbm.clock() - t0
local records = history:shape()[2]
local final = history:select(2, records):contiguous()
dbm.save_npy(rec.dir .. "/spectra/final.npy", final)

-- Means over seeds and records: single levels 1 and n, pair midpoints (levels 2p, 2p + 1).
local pooled = history:reshape(-1, n)
local mean = pooled:mean(1):totable()
local rows_out, worst, figures = {}, 0, {}
local function row(label, measured, target)
  local dev = (measured - target) / target
  worst = math.max(worst, math.abs(dev))
  figures["deviation_" .. label:gsub("[^%w]+", "_"):gsub("_$", "")] = dev
  rows_out[#rows_out + 1] = {label, ("%.4f"):format(target), ("%.4f"):format(measured), ("%+.2f%%"):format(100 * dev)}
end
row("single (n = 5)", mean[1], expected[1])
for p = 1, 4 do row(("pair %d midpoint"):format(p), (mean[2 * p] + mean[2 * p + 1]) / 2, expected[2 * p]) end
row("single (n = 0)", mean[n], expected[n])
-- Pair spacings, normalised per pair (each pair has its own scale ∝ √(μ² − κ)), pooled.
local spacings, pair_S = {}, {}
for p = 1, 4 do
  local s = {}
  for _, r in ipairs(pooled:totable()) do s[#s + 1] = r[2 * p + 1] - r[2 * p] end
  pair_S[p] = stats.mean(s)
  for _, v in ipairs(stats.normalise(s)) do spacings[#spacings + 1] = v end
end
local D_w, p_w = stats.ks(spacings, stats.wigner_cdf)
local D_p, p_p = stats.ks(spacings, stats.poisson_cdf)

-- 3. Optional: the deviation from μ² − κ_n shrinking as α → 0.
local scan = {}
if cfg.deviation_scan then
  for _, a in ipairs({0.04, 0.02, 0.01, 0.005}) do
    -- the slowest mode relaxes in about 250/α steps from the initialisation; 3 of those burn in
    local steps = math.ceil(1500 / a)
    local h = dbm.models.ensemble("rbm_scalar", {seeds = math.max(16, cfg.seeds // 4), seed = cfg.seed, steps = steps,
                                                 burn_in = steps // 2, record_every = math.ceil(steps / 40), lr = a,
                                                 batch_size = cfg.batch_size, k = cfg.k, history = true})
    local mm = h:reshape(-1, n):mean(1):totable()
    local dev = 0
    local points = {mm[1]}
    for p = 1, 4 do points[#points + 1] = (mm[2 * p] + mm[2 * p + 1]) / 2 end
    points[#points + 1] = mm[n]
    local targets = {expected[1], expected[2], expected[4], expected[6], expected[8], expected[n]}
    for i, v in ipairs(points) do dev = math.max(dev, math.abs(v - targets[i]) / targets[i]) end
    scan[#scan + 1] = {alpha = a, deviation = dev, steps = steps}
    print(("  alpha = %g: max relative deviation from mu^2 - kappa = %.4f (%d steps)"):format(a, dev, steps))
  end
  local x, y = {}, {}
  for _, s in ipairs(scan) do x[#x + 1], y[#y + 1] = s.alpha, s.deviation end
  plot.xy(rec.dir .. "/plots/deviation", {{x = x, y = y, label = "max |⟨level⟩ − (μ² − κ)|/(μ² − κ)"}}, {
    xlabel = "α", ylabel = "relative deviation", title = "scalar-field RBM: the modes reach μ² − κ_n as α → 0 (|B| = " .. cfg.batch_size .. ")"})
end

-- The figures, as the last line of metrics.jsonl (at the watched model's step).
figures.max_deviation, figures.ks_wigner, figures.ks_wigner_p, figures.ks_poisson_p = worst, D_w, p_w, p_p
figures.noise_temperature, figures.noise_temperature_se, figures.ensemble_seconds = T.temperature, T.stderr, ensemble_seconds
for p = 1, 4 do figures["spacing_pair" .. p] = pair_S[p] end
for _, s in ipairs(scan) do figures[("scan_deviation_%g"):format(s.alpha):gsub("%.", "_")] = s.deviation end
rec:step(m.steps, figures)

-- 4. Plots and summary, before rec:close() writes DONE.
local dir = rec.dir
local hl = {}
for i, v in ipairs(expected) do if i == 1 or i == n or i % 2 == 0 then hl[#hl + 1] = v end end
local series = {}
local l = dbm.load_npy(dir .. "/spectra/W.npy")
local steps_t = dbm.load_npy(dir .. "/spectra/steps.npy")
plot.flow(dir .. "/plots/levels_vs_target", steps_t, l, {title = "scalar-field RBM: eigenvalues of WᵀW; targets μ² − κ_n dashed",
  hlines = hl})
plot.spacing(dir .. "/plots/pair_spacing", spacings, {
  title = ("pair splittings S/⟨S⟩ (4 pairs pooled, %d values): KS to Wigner %.3f (p = %.2g)"):format(#spacings, D_w, p_w)})

local sections = {}
if #scan > 0 then
  local r = {}
  for _, sc in ipairs(scan) do r[#r + 1] = {sc.alpha, sc.steps, ("%.4f"):format(sc.deviation)} end
  sections[1] = {heading = "α → 0 (plots/deviation.png)", table = {header = {"α", "steps", "max relative deviation"}, rows = r}}
end
dbm.write_summary(dir, {
  title = "Scalar-field RBM (arXiv:2407.16427)",
  settings = ("α = %g, |B| = %d, k = %d, %d steps; %d seeds from %d, levels recorded %d times after %d steps (ensemble %.1f s).")
    :format(cfg.lr, cfg.batch_size, cfg.k, cfg.steps, cfg.seeds, cfg.seed, records, burn, ensemble_seconds),
  config = cfg,
  figures = {header = {"mode", "μ² − κ", "ensemble mean", "deviation"}, rows = rows_out},
  notes = {
    ("Pair splittings ⟨S⟩: %.4f, %.4f, %.4f, %.4f (pairs 1–4, ascending level). KS of S/⟨S⟩ to the Wigner surmise: "
      .. "D = %.4f, p = %.3g; to Poisson: D = %.4f, p = %.3g."):format(pair_S[1], pair_S[2], pair_S[3], pair_S[4], D_w, p_w, D_p, p_p),
    ("Noise temperature of seed %d (per-step increments, δt = α): T = %.4g ± %.2g."):format(cfg.seed, T.temperature, T.stderr),
  },
  sections = sections,
  files = {"spectra/final.npy (seeds × 10)", "spectra/W.npy", "plots/levels_vs_target.png", "plots/pair_spacing.png"},
})
rec:close()

print(("scalar-field RBM: alpha = %g, |B| = %d, k = %d, %d steps, %d seeds (ensemble %.1f s)"):format(
  cfg.lr, cfg.batch_size, cfg.k, cfg.steps, cfg.seeds, ensemble_seconds))
for _, r in ipairs(rows_out) do print(("  %-16s target %s  mean %s  (%s)"):format(r[1], r[2], r[3], r[4])) end
print(("  pair spacings: KS to Wigner D = %.4f p = %.3g; to Poisson p = %.3g"):format(D_w, p_w, p_p))
print(("  noise temperature T = %.4g +- %.2g"):format(T.temperature, T.stderr))
print("run directory: " .. dir)
