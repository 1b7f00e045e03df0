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

return {
  name = "spectrum",
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
