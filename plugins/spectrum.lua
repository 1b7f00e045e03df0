-- spectrum: the levels and their empirical density.
-- Density as a histogram normalised to integrate to 1; bin width by the Freedman–Diaconis rule
-- h = 2·IQR·n^{−1/3} (Freedman & Diaconis, Z. Wahrscheinlichkeitstheorie 57 (1981) 453).
--
-- Options (ctx.options):
--   spectrum_bins   number of bins (default: Freedman–Diaconis, limited to 1..⌈2√n⌉ so that a heavy
--                   tail does not spread the bulk over hundreds of empty bins; ⌈√n⌉ when IQR = 0)
-- Outputs:
--   lambda_min, lambda_max, n_levels                      scalars
--   levels              the ascending Float64 levels (ctx.eigenvalues)
--   histogram_density   counts / (n · bin width): integrates to 1 over [first edge, last edge]
--   histogram_counts    the raw counts per bin
--   histogram_edges     the bins + 1 edges
-- With no levels only n_levels = 0 is reported.

-- The p-quantile of ascending values x (linear interpolation between order statistics).
local function quantile(x, p)
  local h = 1 + (#x - 1) * p
  local i = math.floor(h)
  if i >= #x then return x[#x] end
  return x[i] + (h - i) * (x[i + 1] - x[i])
end

local function freedman_diaconis_bins(x)
  local n = #x
  local cap = math.ceil(2 * math.sqrt(n))
  local iqr = quantile(x, 0.75) - quantile(x, 0.25)
  if not (iqr > 0) then return math.ceil(math.sqrt(n)) end
  local h = 2 * iqr * n ^ (-1 / 3)
  return math.max(1, math.min(cap, math.ceil((x[n] - x[1]) / h)))
end

-- The records a density shows: the first and the last (one when they are the same).
local function shown_records(h)
  local n = h.records
  local out = {{i = 1, step = h.steps[1], levels = h.first}}
  if n > 1 then out[2] = {i = n, step = h.steps[n], levels = h.last} end
  return out
end

-- The density at the first and the last record, with the curves other plugins declare: a plugin's
-- density_curves(records, h) gets {{step =, result =}, ...} of those records and returns {{f =, lo =, hi =, label =}, ...}.
local function density_plot(h)
  local records = shown_records(h)
  local sets, labels, curves = {}, {}, {}
  for k, r in ipairs(records) do sets[k], labels[k] = r.levels, r.step and ("step " .. r.step) or nil end
  for _, v in ipairs(h.plugins) do
    if v.plugin.density_curves then
      local at = {}
      for k, r in ipairs(records) do at[k] = {step = r.step, result = v.result(r.i)} end
      local list = v.plugin.density_curves(at, h) or {}
      table.move(list, 1, #list, #curves + 1, curves)
    end
  end
  local shape = h.shape and (" (%d×%d)"):format(h.shape[1], h.shape[2]) or ""
  h.plot.density(h.base .. "_density", sets, {labels = labels, curves = curves, xlabel = h.xlabel,
    title = h.matrix .. shape .. ": spectral density"})
end

-- The scalars against the step, one panel per entry of the plugins' `panels` = {{key =, ylabel =, hlines =}, ...}.
local function observables_plot(h)
  local panels, series = {}, {}
  for _, v in ipairs(h.plugins) do
    for _, panel in ipairs(v.plugin.panels or {}) do
      if v.scalars[panel.key] and not series[panel.key] then
        series[panel.key] = v.scalars[panel.key]
        panels[#panels + 1] = {names = {panel.key}, ylabel = panel.ylabel, hlines = panel.hlines, logy = panel.logy}
      end
    end
  end
  if #panels == 0 then return end
  h.plot.series(h.base .. "_observables", h.steps, series, {title = h.matrix .. ": observables", panels = panels})
end

return {
  name = "spectrum",
  options = {bins = {type = "integer", doc = "number of histogram bins (default: Freedman–Diaconis)"}},
  columns = {{"λ_max", "lambda_max"}},
  panels = {{key = "lambda_max", ylabel = "λ_max"}},
  -- Files keep the run directory's names: <matrix>_density, and with two records or more _flow, _observables.
  plot = function(h)
    density_plot(h)
    if h.records < 2 then return end
    h.plot.flow(h.base .. "_flow", h.steps, h.levels, {title = h.matrix .. ": eigenvalue flow", ylabel = h.xlabel})
    observables_plot(h)
  end,
  doc = "levels, lambda_min/max, and their density as a histogram (Freedman–Diaconis bins, integrates to 1)",
  run = function(ctx)
    local x = ctx.levels
    local n = #x
    if n == 0 then return {n_levels = 0} end
    local lo, hi = x[1], x[n]
    if hi == lo then   -- all levels equal: one bin of unit width around them
      lo, hi = lo - 0.5, hi + 0.5
    end
    local bins = (ctx.options or {}).spectrum_bins or freedman_diaconis_bins(x)
    local counts, edges = dbm.histogram(ctx.eigenvalues, bins, lo, hi)
    local width = (hi - lo) / bins
    return {
      lambda_min = x[1], lambda_max = x[n], n_levels = n,
      levels = ctx.eigenvalues,
      histogram_density = counts / (n * width),
      histogram_counts = counts,
      histogram_edges = edges,
    }
  end,
}
