-- The diagnostics plugins (plugins/*.lua) against cases known analytically: GOE and Poisson level statistics,
-- Marchenko–Pastur with and without planted spikes (BBP), planted Pareto tails, the semicircle, eigenvector
-- localisation, norms by hand, and degenerate input. Thresholds hold for any seed: each is several times the
-- statistical fluctuation of the pooled sample it is checked on (the fluctuation is stated next to it).

-- ---------------------------------------------------------------- the context of DESIGN §8, built by hand

-- ctx for a matrix (levels of the smaller Gram matrix, or of the matrix itself when symmetric), a 1-d tensor of
-- levels, or a Lua array of levels; levels ascending Float64.
local function context(x, opts)
  opts = opts or {}
  local ctx = {options = opts.options or {}, symmetric = opts.symmetric or false}
  if type(x) == "table" and getmetatable(x) == nil then
    local v = table.move(x, 1, #x, 1, {})
    table.sort(v)
    ctx.eigenvalues = dbm.tensor(v, {dtype = "float64"})
  elseif x:dim() == 1 then
    ctx.eigenvalues = dbm.sort(x:to("float64"))
  else
    ctx.matrix, ctx.shape = x, x:shape()
    ctx.eigenvalues = dbm.eigvalsh(ctx.symmetric and x or dbm.gram(x))
  end
  ctx.levels = ctx.eigenvalues:totable()
  if ctx.matrix ~= nil then
    function ctx:eigenvectors()
      if self.vectors_cache == nil then
        local _, v = dbm.eigh(self.symmetric and self.matrix or dbm.gram(self.matrix))
        self.vectors_cache = v
      end
      return self.vectors_cache
    end
  end
  return ctx
end

local plugins = {}
for _, name in ipairs({"spectrum", "mp", "spacing", "powerlaw", "norms", "semicircle", "vectors"}) do
  local path = assert(dbm.find_plugin(name), "plugin " .. name .. " not found")
  local p = dofile(path)
  assert(p.name == name and type(p.doc) == "string" and type(p.run) == "function", path .. ": protocol {name, doc, run}")
  plugins[name] = p
end
local function run(name, ctx) return plugins[name].run(ctx) end

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local function close(got, want, tol, what)
  check(math.abs(got - want) <= tol * math.max(1, math.abs(want)), "%s: got %.15g, expected %.15g", what, got, want)
end

local function append(dst, t) for _, v in ipairs(t:totable()) do dst[#dst + 1] = v end end

local function mean(v)
  local s = 0
  for _, x in ipairs(v) do s = s + x end
  return s / #v
end

-- KS distance of a pooled sample to a CDF, through the same kernel the plugins use.
local function ks(sample, cdf)
  local s = table.move(sample, 1, #sample, 1, {})
  table.sort(s)
  local F = {}
  for i, x in ipairs(s) do F[i] = cdf(x) end
  return dbm.ks_distance(F)
end
local function wigner_cdf(s) return 1 - math.exp(-math.pi * s * s / 4) end
local function poisson_cdf(s) return 1 - math.exp(-s) end

-- ---------------------------------------------------------------- kernels

close(dbm.ks_distance({0.5}), 0.5, 1e-15, "KS of one sample at its model median")
close(dbm.ks_distance(dbm.tensor({0.25, 0.5, 0.75}, {dtype = "float64"})), 0.25, 1e-15, "KS of three samples")
do   -- a cubic through ten points is reproduced exactly by the degree-3 fit
  local x, y = {}, {}
  for i = 1, 10 do x[i] = i * 0.7 - 2; y[i] = 1 - 2 * x[i] + 0.5 * x[i] ^ 3 end
  local fit = dbm.polyfit_values(x, y, 3):totable()
  for i = 1, 10 do close(fit[i], y[i], 1e-12, "cubic fit") end
  -- and the line of least squares through three points
  fit = dbm.polyfit_values({0, 1, 2}, {0, 2, 1}, 1):totable()
  close(fit[1], 0.5, 1e-12, "least-squares line"); close(fit[3], 1.5, 1e-12, "least-squares line")
  close(dbm.polyfit_values({2, 2, 2}, {1, 2, 6}, 0):totable()[2], 3, 1e-15, "all x equal, degree 0: the mean of y")
  assert(not pcall(dbm.polyfit_values, {2, 2, 2}, {1, 2, 6}, 1), "all x equal, degree 1: too few distinct x")
  assert(not pcall(dbm.polyfit_values, {1, 2, 2}, {1, 2, 6}, 2), "two distinct x, degree 2: too few distinct x")
  assert(not pcall(dbm.ks_distance, {5, 7}), "CDF values above 1")
  assert(not pcall(dbm.ks_distance, {0.5, 0.2}), "decreasing CDF values")
  assert(not pcall(dbm.json_encode, {[1] = 1, ["1"] = 2}), "1 and '1' are the same JSON key")
end
for _, bad in ipairs({
  {function() return dbm.ks_distance("x") end, "dbm.ks_distance: argument 1 (F): expected a 1-d tensor or a table of numbers"},
  {function() return dbm.ks_distance({}) end, "dbm.ks_distance: argument 1 (F): expected at least one CDF value"},
  {function() return dbm.ks_distance({0.1, "a"}) end, "entry 2 is a string"},
  {function() return dbm.powerlaw_scan(dbm.tensor({3, 2, 1})) end, "expected ascending levels"},
  {function() return dbm.powerlaw_scan({1, 2}, {min_tail = 0}) end, "option 'min_tail': expected a positive tail size"},
  {function() return dbm.polyfit_values({1, 1, 2}, {1, 2, 3}, 2) end, "needs at least 3 distinct x values, got 2"},
  {function() return dbm.polyfit_values({1, 2}, {1}, 1) end, "argument 2 (y): expected 2 values"},
}) do
  local ok, err = pcall(bad[1])
  check(not ok and err:find(bad[2], 1, true) ~= nil, "expected an error containing %q, got %s", bad[2], tostring(err))
  check(err:find("plugins.lua:", 1, true) ~= nil, "the error names the script line: %s", err)
end
do   -- the pruned scan finds the minimum of the exhaustive one
  for seed = 1, 20 do
    local g = dbm.generator(seed)
    local x = dbm.sort((1 - dbm.rand(300, {dtype = "float64", generator = g})) ^ (-1 / 1.5)) * dbm.rand(300, {dtype = "float64", generator = g})
    x = dbm.sort(x)
    local _, d1 = dbm.powerlaw_scan(x)
    local _, d2 = dbm.powerlaw_scan(x, {exhaustive = false})
    local m1, m2 = math.huge, math.huge
    for k, d in ipairs(d1:totable()) do if d == d then m1 = math.min(m1, d) end end
    for k, d in ipairs(d2:totable()) do if d == d then m2 = math.min(m2, d) end end
    check(m1 == m2, "pruned power-law scan: minimum D %.17g, exhaustive %.17g", m2, m1)
  end
end

-- ---------------------------------------------------------------- GOE level statistics

-- GOE 1000×1000, H = (A + Aᵀ)/√2, pooled over 20 matrices: ⟨r⟩ = 0.5307 within 0.01 (the pooled mean of ~20,000
-- ratios fluctuates by 0.002); unfolded spacings KS ≤ 0.04 to the Wigner surmise (the surmise differs from the
-- exact GOE law by < 0.01 in CDF; KS fluctuation of 16,000 spacings ≈ 0.01) and ≥ 0.15 to Poisson (measured 0.21).
-- The same matrices: semicircle radius 2√N within 1%, eigenvector IPR at the GOE value 3/N.
do
  local N = 1000
  local spacings, ratios, ipr_ratios = {}, {}, {}
  local worst_radius, worst_sc_ks = 0, 0
  for k = 1, 20 do
    local a = dbm.randn(N, N, {dtype = "float64", generator = dbm.generator(1000 + k)})
    local h = (a + a:t()) / math.sqrt(2)
    local ctx = context(h, {symmetric = true})
    local sp = run("spacing", ctx)
    append(spacings, sp.spacings); append(ratios, sp.ratios)
    check(sp.ks_goe < 0.06 and sp.ks_poisson > 0.12, "GOE matrix %d: ks_goe %.3f, ks_poisson %.3f", k, sp.ks_goe, sp.ks_poisson)
    local sc = run("semicircle", ctx)
    worst_radius = math.max(worst_radius, math.abs(sc.semicircle_radius / (2 * math.sqrt(N)) - 1))
    worst_sc_ks = math.max(worst_sc_ks, sc.semicircle_ks)
    check(math.abs(sc.semicircle_center) < 0.05 * math.sqrt(N), "semicircle centre %.3f", sc.semicircle_center)
    if k <= 5 then ipr_ratios[#ipr_ratios + 1] = run("vectors", ctx).ipr_ratio end
  end
  local r, kg, kp = mean(ratios), ks(spacings, wigner_cdf), ks(spacings, poisson_cdf)
  print(("GOE N=%d x20: <r> = %.4f (%d ratios), KS to Wigner surmise %.4f, to Poisson %.4f (%d unfolded spacings)")
    :format(N, r, #ratios, kg, kp, #spacings))
  check(math.abs(r - 0.5307) <= 0.01, "GOE spacing ratio is 0.5307 within 0.01: got %.4f", r)
  check(kg <= 0.04, "GOE unfolded spacings follow the Wigner surmise (KS <= 0.04): got %.4f", kg)
  check(kp >= 0.15, "GOE unfolded spacings are not Poisson (KS >= 0.15): got %.4f", kp)
  -- radius from the second moment: relative fluctuation ~1/N; KS of 1000 rigid levels to the semicircle ~0.005
  print(("GOE semicircle: radius within %.2f%% of 2√N, KS <= %.4f"):format(100 * worst_radius, worst_sc_ks))
  check(worst_radius < 0.01, "semicircle radius is 2√N within 1%%: off by %.3f%%", 100 * worst_radius)
  check(worst_sc_ks < 0.02, "GOE levels follow the semicircle (KS < 0.02): got %.4f", worst_sc_ks)
  -- IPR of one GOE vector fluctuates by ~3.3/√N ≈ 10% of its mean: the mean over 25 vectors by ~2%
  local ipr = mean(ipr_ratios)
  print(("GOE top-5 eigenvector IPR / (3/N) over 5 matrices: %.3f"):format(ipr))
  check(math.abs(ipr - 1) < 0.15, "GOE eigenvectors are delocalised: IPR / (3/N) = %.3f, expected 1 within 0.15", ipr)
end

-- 20,000 independent uniform levels: ⟨r⟩ = 2 ln 2 − 1 ≈ 0.386 within 0.01 (fluctuation 0.002), KS of the unfolded
-- spacings to Poisson ≤ 0.03 (fluctuation ≈ 0.01 for 16,000 spacings).
do
  local levels = dbm.rand(20000, {dtype = "float64", generator = dbm.generator(77)})
  local sp = run("spacing", context(levels))
  print(("Poisson 20000 levels: <r> = %.4f, KS to Poisson %.4f, to Wigner %.4f"):format(sp.r_mean, sp.ks_poisson, sp.ks_goe))
  check(math.abs(sp.r_mean - (2 * math.log(2) - 1)) <= 0.01, "uncorrelated levels: <r> = 0.386 within 0.01, got %.4f", sp.r_mean)
  check(sp.ks_poisson <= 0.03, "uncorrelated levels: unfolded spacings are Poisson (KS <= 0.03), got %.4f", sp.ks_poisson)
  check(sp.ks_goe > 0.15, "uncorrelated levels are not Wigner: KS %.4f", sp.ks_goe)
  -- the histogram sits on e^{-s}: its integral over [0, 4] is 1 − e^{-4} up to the fluctuation
  local h, e = sp.histogram_density:totable(), sp.histogram_edges:totable()
  local integral = 0
  for i = 1, #h do integral = integral + h[i] * (e[i + 1] - e[i]) end
  close(integral, 1 - math.exp(-4), 0.01, "spacing histogram integral over [0, 4]")
end

-- ---------------------------------------------------------------- Marchenko–Pastur

-- 2000×500 Gaussian W (σ² = 1): the fit recovers σ² within 2% (its fluctuation is 0.16%), mp_ks ≤ 0.02 (measured
-- ≈ 0.006), no outliers (λ_max exceeds x₊ by 3 Tracy–Widom units with probability ≈ 0.3%: TW₁ tail plus the
-- uncertainty of the fitted σ²).
-- BBP: for W = G + Σ θ_k u_k v_kᵀ (G of N×M entries of variance σ², unit u_k, v_k) a spike gives an outlier of WᵀW
-- when θ > θ_c = σ(NM)^{1/4} (Benaych-Georges & Nadakuditi, J. Multivar. Anal. 111 (2012) 120: with X = W/√N,
-- c = M/N, the threshold is θ/√N > c^{1/4}), at x = Nσ²(1 + τ²)(q + τ²)/τ², τ = θ/(σ√N). θ_c = 31.6 here; the
-- planted θ = 2, 2.5, 3 θ_c give outliers at 6750, 8910, 11611, far above x₊ + margin = 4582.
do
  local N, M = 2000, 500
  local theta_c = (N * M) ^ 0.25
  for seed = 1, 3 do
    local W = dbm.randn(N, M, {dtype = "float64", generator = dbm.generator(2000 + seed)})
    local r = run("mp", context(W))
    print(("MP 2000x500 seed %d: sigma2 %.4f, mp_ks %.4f, x- %.1f, x+ %.1f, outliers %d"):format(
      seed, r.mp_sigma2, r.mp_ks, r.mp_edge_minus, r.mp_edge_plus, r.mp_outliers))
    check(math.abs(r.mp_sigma2 - 1) < 0.02, "MP fit recovers sigma2 = 1 within 2%%: got %.4f", r.mp_sigma2)
    check(r.mp_ks <= 0.02, "Gaussian W follows MP: mp_ks %.4f > 0.02", r.mp_ks)
    check(r.mp_outliers == 0, "Gaussian W has no outliers: got %d", r.mp_outliers)
    close(r.mp_edge_plus, N * r.mp_sigma2 * 1.5 ^ 2, 1e-12, "x+ = Nσ²(1+√q)²")
    close(r.mp_edge_minus, N * r.mp_sigma2 * 0.5 ^ 2, 1e-12, "x- = Nσ²(1-√q)²")
    -- the same matrix transposed gives the same fit
    local rt = run("mp", context(W:t()))
    close(rt.mp_sigma2, r.mp_sigma2, 1e-9, "MP fit of Wᵀ")

    local g = dbm.generator(3000 + seed)
    local planted, predicted = W, {}
    for _, factor in ipairs({2, 2.5, 3}) do
      local u = dbm.randn(N, 1, {dtype = "float64", generator = g})
      local v = dbm.randn(1, M, {dtype = "float64", generator = g})
      local theta = factor * theta_c
      planted = planted + u:matmul(v) * (theta / (u:norm() * v:norm()))
      local tau2 = theta ^ 2 / N
      predicted[#predicted + 1] = N * (1 + tau2) * (M / N + tau2) / tau2
    end
    local rs = run("mp", context(planted))
    local found = rs.outlier_values:totable()
    print(("  planted rank 3 at 2, 2.5, 3 x BBP: %d outliers at %s (predicted %s), sigma2 %.4f"):format(
      rs.mp_outliers, table.concat(found, ", "), table.concat(predicted, ", "), rs.mp_sigma2))
    check(rs.mp_outliers == 3, "a planted rank-3 perturbation above twice the BBP threshold gives exactly 3 outliers: got %d", rs.mp_outliers)
    -- the outliers fluctuate by ≈ 2.3% about the prediction (measured over 30 seeds)
    for k = 1, 3 do close(found[k] / predicted[k], 1, 0.15, "outlier " .. k .. " at the BBP prediction (ratio)") end
    check(math.abs(rs.mp_sigma2 - 1) < 0.02, "MP fit ignores the outliers: sigma2 %.4f", rs.mp_sigma2)
  end
  -- a given init variance is used as it is
  local W = dbm.randn(N, M, {dtype = "float64", std = 0.5, generator = dbm.generator(4000)})
  local r = run("mp", context(W, {options = {mp_sigma2 = 0.25}}))
  check(r.mp_sigma2 == 0.25 and r.mp_ks <= 0.02 and r.mp_outliers == 0, "MP with the given sigma2: ks %.4f, outliers %d", r.mp_ks, r.mp_outliers)
  -- a square matrix (q = 1, x₋ = 0, density ∝ x^{-1/2} at 0)
  r = run("mp", context(dbm.randn(600, 600, {dtype = "float64", generator = dbm.generator(4001)})))
  check(math.abs(r.mp_sigma2 - 1) < 0.02 and r.mp_ks < 0.03 and r.mp_edge_minus == 0, "MP square: sigma2 %.4f, ks %.4f", r.mp_sigma2, r.mp_ks)
  -- the MP curve integrates to 1 (midpoint rule; the edges hold a √ singularity, hence the tolerance)
  r = run("mp", context(dbm.randn(1000, 250, {dtype = "float64", generator = dbm.generator(4002)})))
  local cx, cd = r.mp_curve_x:totable(), r.mp_curve_density:totable()
  local integral = 0
  for k = 1, #cd do integral = integral + cd[k] * (cx[2] - cx[1]) end
  close(integral, 1, 0.01, "MP density integral")
  -- no shape, or a symmetric matrix: a note, no fit
  check(run("mp", context({1, 2, 3})).note ~= nil and run("mp", context({1, 2, 3})).mp_sigma2 == nil, "mp on plain levels: a note")
  check(run("mp", context(dbm.eye(3, {dtype = "float64"}), {symmetric = true})).note ~= nil, "mp on a symmetric matrix: a note")
end

-- ---------------------------------------------------------------- power-law tails

-- Planted Pareto tails p(λ) ∝ λ^{−α} (λ ≥ 1), 5000 samples: Clauset's estimate has a standard error of
-- (α−1)/√5000 ≈ 0.04 at α = 4 even at the true x_min (so one sample misses 0.1 in ~8% of seeds, with the x_min
-- choice); the mean over 16 samples is within 0.1 of α (its fluctuation ≈ 0.015).
do
  for _, alpha in ipairs({2.5, 3.5, 4}) do
    local estimates, worst = {}, 0
    for seed = 1, 16 do
      local u = dbm.rand(5000, {dtype = "float64", generator = dbm.generator(5000 + seed)})
      local r = run("powerlaw", context((1 - u) ^ (-1 / (alpha - 1))))
      estimates[#estimates + 1] = r.alpha
      worst = math.max(worst, math.abs(r.alpha - alpha))
      close(r.alpha_err, (r.alpha - 1) / math.sqrt(r.alpha_ntail), 1e-12, "alpha_err = (α−1)/√n")
      check(r.alpha_ntail >= 10 and r.alpha_xmin >= 1 and r.alpha_D > 0 and r.alpha_D < 0.1, "powerlaw outputs: n %d, xmin %g, D %g",
        r.alpha_ntail, r.alpha_xmin, r.alpha_D)
    end
    local m = mean(estimates)
    print(("Pareto alpha=%.1f, 5000 samples x16: mean alpha %.4f, worst single %.3f off"):format(alpha, m, worst))
    check(math.abs(m - alpha) <= 0.1, "a planted Pareto tail is recovered within 0.1: alpha %.1f, got %.4f", alpha, m)
  end
  -- a tail planted above a bulk: 4000 levels uniform in [0, 1), 1000 Pareto (α = 3) above 1
  local bulk = dbm.rand(4000, {dtype = "float64", generator = dbm.generator(6000)}):totable()
  local u = dbm.rand(1000, {dtype = "float64", generator = dbm.generator(6001)}):totable()
  for _, x in ipairs(u) do bulk[#bulk + 1] = (1 - x) ^ (-1 / 2) end
  local r = run("powerlaw", context(bulk))
  print(("Pareto alpha=3 above a uniform bulk: alpha %.3f ± %.3f, x_min %.3f, tail %d"):format(r.alpha, r.alpha_err, r.alpha_xmin, r.alpha_ntail))
  -- over 60 seeds: |α̂ − 3| ≤ 2.2 standard errors, x_min in [0.98, 1.8] (the bulk ends at 1)
  check(math.abs(r.alpha - 3) <= 4 * r.alpha_err and r.alpha_xmin > 0.9 and r.alpha_xmin < 2.5,
    "a tail above a bulk: alpha %.3f ± %.3f, x_min %.3f", r.alpha, r.alpha_err, r.alpha_xmin)
end

-- ---------------------------------------------------------------- norms by hand

do
  -- W = [1 2; 3 4; 0 0]: WᵀW = [10 14; 14 20], eigenvalues 15 ± √221, ‖W‖_F² = 30
  local W = dbm.tensor({{1, 2}, {3, 4}, {0, 0}}, {dtype = "float64"})
  local r = run("norms", context(W))
  local l1, l2 = 15 - math.sqrt(221), 15 + math.sqrt(221)
  local p1, p2 = l1 / 30, l2 / 30
  local h = -(p1 * math.log(p1) + p2 * math.log(p2))
  close(r.frobenius_norm, math.sqrt(30), 1e-12, "frobenius_norm")
  close(r.spectral_norm, math.sqrt(l2), 1e-12, "spectral_norm")
  close(r.stable_rank, 30 / l2, 1e-12, "stable_rank")
  close(r.log_norm, math.log(30, 10), 1e-12, "log_norm")
  close(r.entropy, h / math.log(2), 1e-12, "entropy")
  close(r.effective_rank, math.exp(h), 1e-12, "effective_rank")
  -- symmetric S with eigenvalues −3, 1, 2: ‖S‖_F² = 14, ‖S‖₂ = 3
  local S = dbm.tensor({{-3, 0, 0}, {0, 1, 0}, {0, 0, 2}}, {dtype = "float64"})
  r = run("norms", context(S, {symmetric = true}))
  close(r.frobenius_norm, math.sqrt(14), 1e-12, "symmetric frobenius_norm")
  close(r.spectral_norm, 3, 1e-12, "symmetric spectral_norm")
  close(r.stable_rank, 14 / 9, 1e-12, "symmetric stable_rank")
  -- the identity: entropy 1, effective rank n
  r = run("norms", context(dbm.eye(7, {dtype = "float64"})))
  close(r.entropy, 1, 1e-12, "entropy of the identity"); close(r.effective_rank, 7, 1e-12, "effective rank of the identity")
end

-- ---------------------------------------------------------------- spectrum

do
  local W = dbm.randn(1536, 384, {generator = dbm.generator(8000)})
  local ctx = context(W)
  local r = run("spectrum", ctx)
  check(r.n_levels == 384 and r.lambda_max == ctx.levels[384] and r.lambda_min == ctx.levels[1], "spectrum scalars")
  check(r.levels == ctx.eigenvalues, "spectrum levels are ctx.eigenvalues")
  local d, e, c = r.histogram_density:totable(), r.histogram_edges:totable(), r.histogram_counts:totable()
  local integral, count = 0, 0
  for i = 1, #d do integral = integral + d[i] * (e[i + 1] - e[i]); count = count + c[i] end
  close(integral, 1, 1e-12, "spectrum histogram integrates to 1")
  check(count == 384 and #e == #d + 1 and #d >= 5 and #d <= 40, "spectrum histogram: %d bins, %d counted", #d, count)
  r = run("spectrum", context(W, {options = {spectrum_bins = 17}}))
  check(r.histogram_density:numel() == 17, "spectrum_bins option")
end

-- ---------------------------------------------------------------- eigenvector localisation

-- GOE(N = 300)/√N plus 10 on one diagonal entry: the top eigenvector sits on that site (IPR ≈ 1), the other top
-- ones stay delocalised; mean IPR over the top 5 ≈ (1 + 4·3/N)/5, so ipr_ratio ≈ N/15 = 20.
do
  local N = 300
  local a = dbm.randn(N, N, {dtype = "float64", generator = dbm.generator(8100)})
  local h = (a + a:t()) / math.sqrt(2 * N)
  h:set(1, 1, h:get(1, 1) + 10)
  local r = run("vectors", context(h, {symmetric = true}))
  print(("localised top eigenvector: IPR %.3f, ipr_ratio %.1f"):format(r.ipr_max, r.ipr_ratio))
  check(r.ipr_max > 0.9 and r.ipr:totable()[1] == r.ipr_max, "the planted eigenvector is localised: IPR %.3f", r.ipr_max)
  check(r.ipr_ratio > 10, "a localised eigenvector has IPR ≫ 3/N: ratio %.2f", r.ipr_ratio)
  -- a general matrix: the right singular vectors (dimension 40 for a 100×40 W)
  r = run("vectors", context(dbm.randn(100, 40, {dtype = "float64", generator = dbm.generator(8101)})))
  close(r.ipr_goe, 3 / 40, 1e-15, "ipr_goe = 3/N with N the vectors' dimension")
  check(run("vectors", context({1, 2, 3})).note ~= nil, "vectors on plain levels: a note")
  check(run("semicircle", context(dbm.randn(5, 3))).note ~= nil, "semicircle on a general matrix: a note")
end

-- ---------------------------------------------------------------- garbage in, no garbage out

-- Every plugin on degenerate input: no error, and every number it returns (scalars and array entries) is finite
-- or a documented nil (+∞ only where documented: pruned power-law candidates are not returned).
do
  local cases = {
    {"exact degeneracies", {1, 1, 2, 2, 2, 3, 5, 5, 5, 5, 8, 8, 13, 13, 13, 13, 13, 21, 21, 34}},
    {"one level", {2}},
    {"two levels", {1, 3}},
    {"all equal", {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}},
    {"no levels", {}},
    {"zeros and negatives", {-1e-12, 0, 0, 0, 1e-13, 2, 2, 7}},
    {"zero matrix", dbm.zeros(6, 4, {dtype = "float64"})},
    {"rank-one matrix", dbm.ones(30, 12)},
    {"1×1 matrix", dbm.full({1, 1}, 3)},
    {"symmetric all-equal", dbm.eye(5), {symmetric = true}},
  }
  for _, case in ipairs(cases) do
    for name, p in pairs(plugins) do
      local ok, out = pcall(p.run, context(case[2], case[3]))
      check(ok, "%s on %s: %s", name, case[1], tostring(out))
      check(type(out) == "table", "%s on %s: expected a table, got %s", name, case[1], type(out))
      for key, v in pairs(out) do
        check(type(key) == "string" and (key:match("^[a-z][a-z0-9_]*$") or key == "alpha_D"), "%s on %s: key %s is not snake_case", name, case[1], tostring(key))
        if type(v) == "number" then
          check(v == v and v > -math.huge and v < math.huge, "%s on %s: %s = %s", name, case[1], key, tostring(v))
        elseif getmetatable(v) == getmetatable(dbm.zeros(1)) then
          for _, x in ipairs(v:numel() > 0 and v:totable() or {}) do
            check(x == x and x > -math.huge and x < math.huge, "%s on %s: %s holds %s", name, case[1], key, tostring(x))
          end
        else
          check((key == "note" or key:match("_warning$")) and type(v) == "string", "%s on %s: %s is a %s", name, case[1], key, type(v))
        end
      end
    end
  end
end

-- ---------------------------------------------------------------- through the runner

-- The same plugins through dbm.diagnostics (the recorder's runner): no failure, results checked by it, and the
-- same numbers as with the context built above.
do
  local ok, diagnostics = pcall(require, "dbm.diagnostics")
  if ok and type(diagnostics) == "table" and type(diagnostics.run) == "function" then
    local names = {"spectrum", "mp", "spacing", "powerlaw", "norms", "semicircle", "vectors"}
    local a = dbm.randn(200, 200, {dtype = "float64", generator = dbm.generator(9000)})
    local cases = {
      {"general 300x120", dbm.randn(300, 120, {generator = dbm.generator(9001)})},
      {"GOE 200", (a + a:t()) / math.sqrt(2), {symmetric = true}},
      {"plain levels", {3, 1, 2, 2, 5, 8, 13, 21, 34, 55, 89, 144}},
    }
    for _, case in ipairs(cases) do
      local results, failures = diagnostics.run(names, case[2], case[3])
      local name, why = next(failures)
      check(name == nil, "through dbm.diagnostics on %s: %s", case[1], tostring(why))
      for _, n in ipairs(names) do
        local mine = run(n, context(case[2], case[3]))
        for key, v in pairs(mine) do
          if type(v) == "number" then
            -- Two eigendecompositions on threaded OpenBLAS may differ in the last bits.
            local r = results[n][key]
            check(r == v or math.abs(r - v) <= 1e-9 * math.max(1, math.abs(v)),
                  "%s.%s on %s: runner %s, direct %s", n, key, case[1], tostring(r), tostring(v))
          end
        end
      end
    end
  else
    print("dbm.diagnostics has no run function yet: the check through the runner is skipped")
  end
end

print("plugins: ok")
