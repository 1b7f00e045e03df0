-- spacing: nearest-neighbour level statistics against GOE (Wigner surmise) and Poisson (uncorrelated levels).
-- Unfolding by a polynomial fit of the staircase N(x) (Guhr, Müller-Groeling & Weidenmüller, Phys. Rep. 299
-- (1998) 189, §3.2.1); P_GOE(s) = (πs/2)e^{−πs²/4}, P_Poisson(s) = e^{−s}; spacing ratio r_i = min(δ_i, δ_{i+1}) /
-- max(δ_i, δ_{i+1}) needs no unfolding: ⟨r⟩ ≈ 0.5307 (GOE), 2 ln 2 − 1 ≈ 0.386 (Poisson) (Atas et al., PRL 110 (2013) 084101).
--
-- Unfolding: a fraction `spacing_trim` of the levels is discarded at each edge (where the density has square-root
-- edges or a tail that no low-degree polynomial follows). On the m kept levels x_i the smooth staircase ξ(x) is the
-- least-squares polynomial of degree d fitted to N(x_i) = i − ½, the middle of each step (dbm.polyfit_values: QR in
-- a Chebyshev basis), d = min(spacing_degree, max(1, ⌊m/10⌋), distinct levels − 1): at least ten levels per
-- coefficient, so that the fit cannot follow the level-to-level fluctuations it is meant to reveal. The unfolded
-- spacings s_i = ξ(x_{i+1}) − ξ(x_i) (0 where the fit decreases) are divided by their mean.
-- Degenerate levels: ratios with δ_i = δ_{i+1} = 0 are left out (0/0); zero spacings are kept (s = 0).
--
-- Options (ctx.options):
--   spacing_trim     fraction of levels discarded at each edge before unfolding (default 0.1)
--   spacing_degree   largest polynomial degree of the unfolding fit (default 9)
--   spacing_bins     bins of the spacing histogram on [0, 4] (default 40)
-- Outputs: r_mean, ks_goe, ks_poisson, n_spacings, n_ratios, spacing_degree (the degree used); arrays spacings
--   (unfolded, mean 1, in level order), ratios, histogram_density (integrates to the fraction of s ≤ 4),
--   histogram_edges, wigner_surmise and poisson (the two densities at the bin centres).
--   Fewer than 3 levels (or all equal): r_mean, ks_goe, ks_poisson are nil.

local laws = dbm.laws   -- P_GOE, P_Poisson and their CDFs (DBMCore/Laws.swift)

-- Spacing ratios r_i = min(δ_i, δ_{i+1}) / max(δ_i, δ_{i+1}) of the raw levels.
local function spacing_ratios(x)
  local r = {}
  for i = 2, #x - 1 do
    local d1, d2 = x[i] - x[i - 1], x[i + 1] - x[i]
    local big = math.max(d1, d2)
    if big > 0 then r[#r + 1] = math.min(d1, d2) / big end
  end
  return r
end

-- Unfolded spacings (mean 1) of the levels kept after trimming, and the degree used; nil if they cannot be unfolded.
local function unfolded_spacings(x, trim, max_degree)
  local cut = math.floor(trim * #x)
  local kept, staircase, distinct = {}, {}, 0
  for i = cut + 1, #x - cut do
    kept[#kept + 1] = x[i]
    staircase[#staircase + 1] = i - 0.5
    if #kept == 1 or x[i] ~= x[i - 1] then distinct = distinct + 1 end
  end
  local m = #kept
  if m < 3 or distinct < 2 then return nil end
  local degree = math.min(max_degree, math.max(1, m // 10), distinct - 1)
  local xi = dbm.polyfit_values(kept, staircase, degree):totable()   -- ξ(x_i), the smooth staircase
  local s, sum = {}, 0
  for i = 1, m - 1 do
    s[i] = math.max(0, xi[i + 1] - xi[i])
    sum = sum + s[i]
  end
  if not (sum > 0) then return nil end
  local mean = sum / #s
  for i = 1, #s do s[i] = s[i] / mean end
  return s, degree
end

local function mean(v)
  if #v == 0 then return nil end
  local sum = 0
  for i = 1, #v do sum = sum + v[i] end
  return sum / #v
end

local goe_r, poisson_r = laws.ratio_mean("goe"), laws.ratio_mean("poisson")

return {
  name = "spacing",
  options = {
    trim = {type = "number", doc = "fraction of levels discarded at each edge before unfolding (default 0.1)"},
    degree = {type = "integer", doc = "largest polynomial degree of the unfolding fit (default 9)"},
    bins = {type = "integer", doc = "bins of the spacing histogram on [0, 4] (default 40)"},
  },
  columns = {{"⟨r⟩", "r_mean"}, {"KS GOE", "ks_goe"}},
  panels = {{key = "r_mean", ylabel = "⟨r⟩ (spacing ratio)",
             hlines = {{goe_r, ("GOE %.4f"):format(goe_r)}, {poisson_r, ("Poisson %.4f"):format(poisson_r)}}}},
  -- <matrix>_spacing: the unfolded spacings of the last record against the Wigner surmise and Poisson.
  plot = function(h)
    local step, last = h.steps[h.records], h.result(h.records)
    if not last.spacings then return end
    h.plot.spacing(h.path, last.spacings, {title = ("%s: spacings%s (unfolded by the spacing plugin)%s"):format(h.matrix,
      step and (" at step " .. step) or "", last.r_mean and (", ⟨r⟩ = %.4f"):format(last.r_mean) or "")})
  end,
  doc = "unfolded nearest-neighbour spacings (polynomial staircase fit) vs Wigner surmise and Poisson: ks_goe, ks_poisson; spacing ratio r_mean",
  run = function(ctx)
    local opts = ctx.options or {}
    local x = ctx.levels
    local ratios = spacing_ratios(x)
    local out = {r_mean = mean(ratios), n_ratios = #ratios, ratios = dbm.tensor(ratios, {dtype = "float64"}), n_spacings = 0}

    local s, degree = unfolded_spacings(x, opts.spacing_trim or 0.1, opts.spacing_degree or 9)
    if s == nil then return out end
    local bins = opts.spacing_bins or 40
    local spacings = dbm.tensor(s, {dtype = "float64"})
    local counts, edges = dbm.histogram(spacings, bins, 0, 4)
    local width = 4 / bins
    local centres = {}
    for k = 1, bins do centres[k] = (k - 0.5) * width end
    out.spacings, out.n_spacings, out.spacing_degree = spacings, #s, degree
    local sorted = dbm.sort(spacings)
    out.ks_goe = dbm.ks_distance(laws.spacing_cdf(sorted, "goe"))
    out.ks_poisson = dbm.ks_distance(laws.spacing_cdf(sorted, "poisson"))
    out.histogram_density, out.histogram_edges = counts / (#s * width), edges
    out.wigner_surmise, out.poisson = laws.spacing_density(centres, "goe"), laws.spacing_density(centres, "poisson")
    return out
  end,
}
