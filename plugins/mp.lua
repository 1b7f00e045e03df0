-- mp: Marchenko–Pastur fit of the eigenvalues of WᵀW, W of N×M iid entries of variance σ² (N ≥ M, q = M/N):
-- ρ(x) = √((x₊−x)(x−x₋))/(2πσ²Nqx), x± = Nσ²(1±√q)² (Marchenko & Pastur, Mat. Sb. 72 (1967) 507; DESIGN §2);
-- outliers above x₊ + 3σ²(√N+√M)(1/√N+1/√M)^{1/3}, three Tracy–Widom units (Johnstone, Ann. Stat. 29 (2001) 295).
--
-- N = max(rows, cols), M = min(rows, cols): the levels are those of the smaller Gram matrix.
-- σ² is ctx.options.mp_sigma2 when given (e.g. the init variance), else fitted to the bulk: the mean of the lowest
-- fraction f of the levels (f = 3/4) against MP's mean over its lowest fraction f,
--   σ² = Σ_{i ≤ fM} λ_i / (M · N · m₁(θ_f)),   m₁(θ) = ∫ y ρ dy up to y(θ) = (2/π)(θ/2 − sin 2θ / 4),
-- θ_f where F = f. Nothing above the 75th percentile enters (outliers, a heavy tail), and averaging 3M/4 rigid levels
-- is as precise as the full trace (relative error 0.16% at 2000×500, against 0.3% for the median alone).
-- The fit is self-consistent in the spikes: the k levels above x₊ + margin are not of the bulk, so the lowest
-- fraction f of the remaining M − k levels is compared with MP's partial mean over the same fraction; k and σ² are
-- refitted until k no longer changes (the bulk of a rank-k perturbation interlaces that of the noise: BBP).
-- mp_ks is the KS distance of the bulk (levels ≤ x₊ + margin) to the MP CDF (dbm.laws.mp_cdf), whose closed form
-- follows from integrating ρ with y = x/(Nσ²) = a − c·cos θ, a = 1 + q, c = 2√q:
--   F(y) = [c sin θ + a θ − 2(1 − q) atan(((1 + √q)/(1 − √q)) tan(θ/2))] / (2πq).
-- The law itself (density, CDF, edges, quantile) is computed by dbm.laws (DBMCore/Laws.swift); the fit is this file's.
--
-- Options (ctx.options):
--   mp_sigma2         the variance σ² of the entries of W (default: fitted, see above)
--   mp_fit_fraction   the fraction f of lowest levels the fit uses (default 0.75)
-- Outputs: mp_sigma2, mp_edge_minus (x₋), mp_edge_plus (x₊), mp_ks, mp_outliers (count), mp_tw_margin,
--   mp_q, mp_n_bulk, num_spikes (WeightWatcher's name for mp_outliers), mp_softrank = x₊/λ_max (WeightWatcher's
--   "MP soft rank", weightwatcher.py mp_fit: bulk_max/lambda_max; Martin & Mahoney arXiv:1810.01075); arrays
--   outlier_values (ascending), mp_curve_x and mp_curve_density (ρ on 200 points
--   in (x₋, x₊), for plots). Plain levels (no shape) or a symmetric matrix: only `note`, nothing fitted.

-- The angle θ_f at which the scaled law's CDF reaches f: y_f = a − c cos θ_f, y_f = x_f/N for the f-quantile x_f at σ² = 1.
local function mp_quantile_angle(N, M, f)
  local q = M / N
  local y = dbm.laws.mp_quantile(f, 1, N, M) / N
  return math.acos(math.max(-1, math.min(1, (1 + q - y) / (2 * math.sqrt(q)))))
end

-- Partial first moment ∫ y ρ(y) dy of the scaled law up to angle θ: y ρ(y) dy = (2/π) sin²θ dθ.
local function mp_partial_mean(theta) return (2 / math.pi) * (theta / 2 - math.sin(2 * theta) / 4) end

-- σ² from the lowest fraction f of the bulk, the levels x[1 .. #x − k] (k spikes left out).
local function fit_sigma2(x, N, M, f, k)
  local m = #x - k
  local n_low = math.max(1, math.floor(f * m))
  local sum = 0
  for i = 1, n_low do sum = sum + x[i] end
  return sum / (m * N * mp_partial_mean(mp_quantile_angle(N, M, n_low / m)))
end

-- The Tracy–Widom margin above x₊: three units σ²(√N+√M)(1/√N+1/√M)^{1/3} (Johnstone 2001).
local function tw_margin(sigma2, N, M)
  return 3 * sigma2 * (math.sqrt(N) + math.sqrt(M)) * (1 / math.sqrt(N) + 1 / math.sqrt(M)) ^ (1 / 3)
end

-- The number of levels above x₊ + margin for σ².
local function spikes_above(x, sigma2, N, M)
  local _, edge_plus = dbm.laws.mp_edges(sigma2, N, M)
  local cut, k = edge_plus + tw_margin(sigma2, N, M), 0
  for i = #x, 1, -1 do
    if x[i] > cut then k = k + 1 else break end
  end
  return k
end

-- The self-consistent fit: σ² of the bulk without the k spikes it leaves above its edge (at most 20 rounds; k
-- settles in two or three). Never more than half the levels are taken for spikes.
local function fit_bulk(x, N, M, f)
  local k, sigma2 = 0, nil
  for _ = 1, 20 do
    sigma2 = fit_sigma2(x, N, M, f, k)
    if not (sigma2 > 0 and sigma2 < math.huge) then return sigma2 end
    local k_new = math.min(spikes_above(x, sigma2, N, M), math.floor(#x / 2))
    if k_new == k then break end
    k = k_new
  end
  return sigma2
end

-- The MP density at the first and the last record (the last only where σ² moved by more than 2%), for spectrum's plot.
local function density_curves(records, h)
  if not h.shape or h.symmetric then return {} end
  local N, M = math.max(h.shape[1], h.shape[2]), math.min(h.shape[1], h.shape[2])
  local curves, previous = {}, nil
  for _, r in ipairs(records) do
    local s2 = r.result.mp_sigma2
    if s2 and s2 > 0 and not (previous and math.abs(s2 - previous) <= 0.02 * previous) then
      local lo, hi = dbm.laws.mp_edges(s2, N, M)
      curves[#curves + 1] = {f = function(x) return dbm.laws.mp_density(x, s2, N, M) end, lo = lo, hi = hi,
        label = ("Marchenko–Pastur%s (σ² = %.4g)"):format(r.step and (" at step " .. r.step) or "", s2)}
      previous = s2
    end
  end
  return curves
end

return {
  name = "mp",
  columns = {{"MP σ²", "mp_sigma2"}, {"MP KS", "mp_ks"}, {"outliers", "mp_outliers"}},
  options = {
    sigma2 = {type = "number", doc = "the variance σ² of the entries of W (default: fitted to the bulk)"},
    fit_fraction = {type = "number", doc = "the fraction f of the lowest bulk levels the fit uses (default 0.75)"},
  },
  panels = {{key = "mp_outliers", ylabel = "MP outliers"}},
  density_curves = density_curves,
  -- Model level: the mean MP soft rank (WeightWatcher's get_summary) and the spikes of all matrices together.
  summary = function(rows)
    local spikes = 0
    for _, r in ipairs(rows) do spikes = spikes + (r.scalars.num_spikes or 0) end
    return {mp_softrank = require("dbm.diagnostics").mean_over(rows, "mp_softrank"), num_spikes = spikes}
  end,
  doc = "Marchenko–Pastur fit of a Gram spectrum: σ² (given or median-fitted), edges x±, KS of the bulk, outliers above x₊ + 3 TW units",
  run = function(ctx)
    if ctx.shape == nil then return {note = "mp needs a matrix shape (N×M): got plain levels"} end
    if ctx.symmetric then return {note = "mp applies to Gram spectra WᵀW, not to a symmetric matrix's own eigenvalues"} end
    local x, opts = ctx.levels, ctx.options or {}
    if #x == 0 then return {note = "mp: no levels"} end
    local N, M = math.max(ctx.shape[1], ctx.shape[2]), math.min(ctx.shape[1], ctx.shape[2])
    local q = M / N
    local sigma2 = opts.mp_sigma2
    if sigma2 == nil then sigma2 = fit_bulk(x, N, M, opts.mp_fit_fraction or 0.75) end
    if not (sigma2 > 0 and sigma2 < math.huge) then
      return {note = "mp: cannot fit σ² (the lowest levels are not positive)"}
    end

    local edge_minus, edge_plus = dbm.laws.mp_edges(sigma2, N, M)
    local margin = tw_margin(sigma2, N, M)

    local bulk, outliers = {}, {}
    for _, xi in ipairs(x) do
      if xi <= edge_plus + margin then bulk[#bulk + 1] = xi else outliers[#outliers + 1] = xi end
    end

    local curve_x = {}
    for k = 1, 200 do curve_x[k] = edge_minus + (edge_plus - edge_minus) * (k - 0.5) / 200 end
    curve_x = dbm.tensor(curve_x, {dtype = "float64"})

    return {
      mp_sigma2 = sigma2, mp_edge_minus = edge_minus, mp_edge_plus = edge_plus,
      mp_ks = #bulk > 0 and dbm.ks_distance(dbm.laws.mp_cdf(bulk, sigma2, N, M)) or nil,
      mp_outliers = #outliers, num_spikes = #outliers, mp_tw_margin = margin, mp_q = q, mp_n_bulk = #bulk,
      mp_softrank = x[#x] > 0 and edge_plus / x[#x] or nil,
      outlier_values = dbm.tensor(outliers, {dtype = "float64"}),
      mp_curve_x = curve_x,
      mp_curve_density = dbm.laws.mp_density(curve_x, sigma2, N, M),
    }
  end,
}
