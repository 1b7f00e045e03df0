-- powerlaw: tail exponent α of the spectral density p(λ) ∝ λ^{−α}, λ ≥ x_min (heavy-tailed self-regularisation).
-- Clauset, Shalizi & Newman, SIAM Rev. 51 (2009) 661: for each candidate x_min the MLE α̂ = 1 + n/Σ log(λ_i/x_min)
-- (eq. 3.1) and the KS distance D of the tail to the fitted CDF 1 − (λ/x_min)^{1−α̂} (eq. 3.9); x_min minimises D;
-- standard error (α̂ − 1)/√n (eq. 3.2). The O(n²) scan over candidates runs in Swift (dbm.powerlaw_scan).
-- WeightWatcher 0.7.7 (weightwatcher.py apply_norm_metrics, fit_powerlaw): alpha_weighted = α·log10 λ_max,
-- log_alpha_norm = log10 Σ λ_i^α (‖WᵀW‖ in the Schatten α-norm, to the power α: Σ s_i^{2α}), warnings
-- α < 2 "over-trained", α > 6 "under-trained".
--
-- Two KS distances (option powerlaw_ks, `dbm-lua analyze --ks=`):
--   "two-sided" (default): max_j max((j+1)/n − P_j, P_j − j/n), the distance between the fitted CDF and the
--       empirical step function; candidates: every distinct positive level leaving a tail of powerlaw_min_tail levels.
--   "powerlaw": WeightWatcher 0.7.7's default fit (WW_powerlaw.WWFit, pl_package='ww', xmax=None): the levels
--       above 1e-5 (its EVALS_THRESH), every position but the last as a candidate (tail ≥ 2), D = max_j |P_j − j/n|
--       (the fitted CDF against j/n only, as the `powerlaw` package does); with fewer than 20 such levels, its
--       small-N fit (fit_powerlaw_smallN): α̂ = 1 + (n−1)/Σ log(λ_i/x_min) on tails of n ≥ 8, x_min minimising D.
-- Options (ctx.options):
--   powerlaw_min_tail   smallest tail n considered (default 10 with "two-sided": below that D is small by chance and
--                       α̂ noisy; 2 with "powerlaw", WeightWatcher's)
--   powerlaw_ks         "two-sided" (default) or "powerlaw"
--   powerlaw_tpl        true: also fit the truncated power law λ^{−α}e^{−Λλ} to the same tail and compare the two by
--                       their log-likelihood ratio (dbm.powerlaw_tpl; Clauset et al. §5; the powerlaw package's
--                       distribution_compare('power_law', 'truncated_power_law', normalized_ratio=True), which
--                       WeightWatcher calls): tpl_alpha, tpl_lambda, tpl_llr = Σ log p_PL − log p_TPL (≤ 0: nested),
--                       tpl_llr_normalized (R/√(nσ²)), tpl_p = erfc(√|R|) (small: the truncation is real)
-- Outputs: alpha, alpha_err, alpha_xmin, alpha_D, alpha_ntail, alpha_weighted, log_alpha_norm, alpha_warning
--   ("over-trained", "under-trained" or ""). No candidate (fewer positive levels than the minimum tail, or all
--   equal): only alpha_ntail = 0 and a `note`.
-- Model level (summary): the means of alpha, alpha_weighted and log_alpha_norm over the matrices, the counts
--   alpha_over_trained, alpha_under_trained and alpha_warnings, the matrices warned about ("NAME over-trained
--   (α = 1.830); ..."); plot_model draws α and α_weighted by layer (model_alpha).

local WW_EVALS_THRESH, WW_SMALL_N, WW_SMALL_N_MIN_TAIL = 1e-5, 20, 8
local OVER_TRAINED, UNDER_TRAINED = 2, 6   -- WeightWatcher's OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH

-- WeightWatcher's small-N fit on ascending levels x (all > 0, fewer than 20): index, α, D of the winner. Its
-- fit_powerlaw_smallN fits α̂ = 1 + (n−1)/Σ log(x_i/x_min) and D on every tail of n ≥ 8; WWFit.__init__ then takes
-- the candidate of smallest D (its J = D − 0.868/√n only truncates the data it keeps), the first on ties.
local function small_n_fit(x)
  local n_all, best, best_D, best_alpha = #x, nil, math.huge, nil
  local function fit_at(i)
    local n, s = n_all - i + 1, 0
    for k = i, n_all do s = s + math.log(x[k]) end
    s = s - n * math.log(x[i])
    if s <= 1e-12 then return nil end
    local a = 1 + (n - 1) / s
    if a <= 1 then return nil end
    local d = 0
    for k = i, n_all do d = math.max(d, math.abs((k - i) / n - (1 - (x[k] / x[i]) ^ (1 - a)))) end
    return a, d
  end
  for i = 1, n_all - WW_SMALL_N_MIN_TAIL + 1 do
    local a, d = fit_at(i)
    if a and d < best_D then best, best_D, best_alpha = i, d, a end
  end
  if not best then   -- no tail of 8 with a valid fit: WeightWatcher falls back to the whole set
    local a, d = fit_at(1)
    if not a then return nil end
    return 1, a, d
  end
  return best, best_alpha, best_D
end

-- The scan's winner: the first candidate of smallest D (NaN: no candidate).
local function argmin(D)
  local best
  for k = 1, #D do
    if D[k] == D[k] and (best == nil or D[k] < D[best]) then best = k end
  end
  return best
end

local function warning(alpha)
  if alpha < OVER_TRAINED then return "over-trained" end
  if alpha > UNDER_TRAINED then return "under-trained" end
  return ""
end

-- WeightWatcher's norm metrics of the fit: α·log10 λ_max and log10 Σ λ^α over all levels (round-off below 0 is 0).
local function weighted_norms(levels, alpha)
  local sum, top = 0, 0
  for _, l in ipairs(levels) do
    local v = math.max(l, 0)
    sum, top = sum + v ^ alpha, math.max(top, v)
  end
  return alpha * math.log(top, 10), math.log(sum, 10)
end

local function fit(ctx)
  local opts = ctx.options or {}
  local ks = opts.powerlaw_ks or "two-sided"
  if ks ~= "two-sided" and ks ~= "powerlaw" then
    error(("powerlaw: option powerlaw_ks: expected \"two-sided\" or \"powerlaw\", got %s"):format(dbm._printable(tostring(ks))))
  end
  local min_tail = opts.powerlaw_min_tail or (ks == "powerlaw" and 2 or 10)
  local x, levels = ctx.levels, ctx.eigenvalues
  if ks == "powerlaw" then   -- WeightWatcher fits the levels above its threshold only
    local kept = {}
    for _, l in ipairs(x) do if l > WW_EVALS_THRESH then kept[#kept + 1] = l end end
    x = kept
    if #x > 0 and #x < WW_SMALL_N and opts.powerlaw_min_tail == nil then
      local i, a, d = small_n_fit(x)
      if i then return {alpha = a, alpha_xmin = x[i], alpha_D = d, alpha_ntail = #x - i + 1} end
      return nil, min_tail
    end
    if #x == 0 then return nil, min_tail end
    levels = dbm.tensor(x, {dtype = "float64"})
  end
  if #x == 0 then return nil, min_tail end
  -- Only the smallest D matters here: candidates that cannot attain it are cut short (D = +∞).
  local alphas, D = dbm.powerlaw_scan(levels, {min_tail = min_tail, exhaustive = false, ks = ks})
  alphas, D = alphas:totable(), D:totable()
  local best = argmin(D)
  if best == nil then return nil, min_tail end
  return {alpha = alphas[best], alpha_xmin = x[best], alpha_D = D[best], alpha_ntail = #x - best + 1}
end

local mean_of = require("dbm.diagnostics").mean_over   -- the mean of a scalar over the rows of a summary

return {
  name = "powerlaw",
  columns = {{"α", "alpha"}, {"α_w", "alpha_weighted"}},
  panels = {{key = "alpha", ylabel = "α (tail exponent)"}},
  options = {
    min_tail = {type = "integer", doc = "smallest tail n considered (default 10; 2 with ks=powerlaw)"},
    ks = {values = {"two-sided", "powerlaw"}, doc = "KS distance for x_min: two-sided (default) or powerlaw (WeightWatcher 0.7.7's fit)"},
    tpl = {type = "boolean", doc = "also fit the truncated power law and compare it with the power law (default false)"},
  },
  doc = "power-law tail exponent α of the density (Clauset et al. 2009: MLE per x_min, x_min at minimum KS distance), α_weighted, log α-norm",
  run = function(ctx)
    local r, min_tail = fit(ctx)
    if r == nil then
      return {alpha_ntail = 0, note = ("powerlaw: no candidate x_min (a positive level with at least %d levels at or above it)"):format(min_tail)}
    end
    r.alpha_err = (r.alpha - 1) / math.sqrt(r.alpha_ntail)
    r.alpha_weighted, r.log_alpha_norm = weighted_norms(ctx.levels, r.alpha)
    r.alpha_warning = warning(r.alpha)
    if (ctx.options or {}).powerlaw_tpl and r.alpha > 1 and r.alpha_ntail >= 2 then
      local tail = {}
      for _, l in ipairs(ctx.levels) do if l >= r.alpha_xmin then tail[#tail + 1] = l end end
      r.tpl_alpha, r.tpl_lambda, r.tpl_llr, r.tpl_llr_normalized, r.tpl_p = dbm.powerlaw_tpl(tail, r.alpha_xmin, r.alpha)
    end
    return r
  end,
  -- Model-level figures: WeightWatcher's get_summary means, and how many layers carry each warning.
  summary = function(rows)
    local count, named = {["over-trained"] = 0, ["under-trained"] = 0}, {}
    for _, r in ipairs(rows) do
      local w = r.scalars.alpha and warning(r.scalars.alpha) or ""
      if w ~= "" then
        count[w] = count[w] + 1
        named[#named + 1] = ("%s %s (α = %.3f)"):format(r.name, w, r.scalars.alpha)
      end
    end
    if mean_of(rows, "alpha") == nil then return {} end
    return {alpha = mean_of(rows, "alpha"), alpha_weighted = mean_of(rows, "alpha_weighted"),
            log_alpha_norm = mean_of(rows, "log_alpha_norm"), alpha_over_trained = count["over-trained"],
            alpha_under_trained = count["under-trained"], alpha_warnings = table.concat(named, "; ")}
  end,
  -- α and α_weighted against the layer's position in the model (rows in file order), WeightWatcher's thresholds dashed.
  plot_model = function(rows, h)
    local index, alpha, weighted = {}, {}, {}
    for i, r in ipairs(rows) do index[i], alpha[i], weighted[i] = i, r.scalars.alpha, r.scalars.alpha_weighted end
    if mean_of(rows, "alpha") == nil then return end
    h.plot.series(h.base .. "_alpha", index, {alpha = alpha, alpha_weighted = weighted}, {
      title = "α and α_weighted by layer", xlabel = "layer (in file order)",
      panels = {{names = {"alpha"}, ylabel = "α", hlines = {{OVER_TRAINED, "α = 2 (below: over-trained)"}, {UNDER_TRAINED, "α = 6 (above: under-trained)"}}},
                {names = {"alpha_weighted"}, ylabel = "α log10 λ_max"}}})
  end,
}
