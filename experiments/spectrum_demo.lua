-- A first look at random-matrix spectra with dbm-lua (DESIGN §2):
--   1. a Gaussian weight matrix W (N×M, entries of variance σ²): the eigenvalues of WᵀW fill the
--      Marchenko–Pastur law between x± = N σ² (1 ± √q)², q = M/N;
--   2. a GOE matrix: its levels repel, with mean spacing ratio ⟨r⟩ ≈ 0.5307 (Poisson levels: 0.386).
-- Run: dbm-lua experiments/spectrum_demo.lua [--rows=1536 --cols=384 --sigma=0.02 --goe_n=1000 --seed=1]
local cfg = dbm.config({rows = 1536, cols = 384, sigma = 0.02, goe_n = 1000, seed = 1})
dbm.seed(cfg.seed)

-- 1. Marchenko–Pastur
local W = dbm.randn(cfg.rows, cfg.cols, {std = cfg.sigma})
local t0 = dbm.clock()
local levels = dbm.eigvalsh(dbm.gram(W))            -- ascending, Float64
local seconds = dbm.clock() - t0
local N, s2 = math.max(cfg.rows, cfg.cols), cfg.sigma ^ 2
local lo, hi = dbm.laws.mp_edges(s2, cfg.rows, cfg.cols)
print(("W: %d×%d Gaussian, σ = %g; %d eigenvalues of the Gram matrix in %.1f ms"):format(
  cfg.rows, cfg.cols, cfg.sigma, levels:numel(), seconds * 1e3))
print(("  smallest %.5f   Marchenko–Pastur x- = %.5f   (ratio %.3f)"):format(levels:min(), lo, levels:min() / lo))
print(("  largest  %.5f   Marchenko–Pastur x+ = %.5f   (ratio %.3f)"):format(levels:max(), hi, levels:max() / hi))
print(("  mean     %.5f   Marchenko–Pastur mean N σ² = %.5f"):format(levels:mean(), N * s2))

-- The empirical density against the MP density ρ(x) = √((x₊ − x)(x − x₋)) / (2π σ² N q x).
local bins = 12
local counts, edges = dbm.histogram(levels, bins, lo * 0.9, hi * 1.05)
print("  density   bin centre   empirical   Marchenko–Pastur")
for i = 1, bins do
  local a, b = edges[i], edges[i + 1]
  local x = (a + b) / 2
  local mp = dbm.laws.mp_density(x, s2, cfg.rows, cfg.cols)
  local emp = counts[i] / (levels:numel() * (b - a))
  print(("            %9.5f   %9.3f   %9.3f  %s"):format(x, emp, mp, string.rep("#", math.floor(emp / (1 / (hi - lo)) * 4 + 0.5))))
end

-- 2. GOE level repulsion: the spacing ratio needs no unfolding.
local n = cfg.goe_n
local A = dbm.randn(n, n, {dtype = "float64"})
local H = (A + A:t()) / math.sqrt(2)
local ev = dbm.eigvalsh(H):totable()
local sum, count = 0, 0
for i = 2, #ev - 1 do
  local d1, d2 = ev[i] - ev[i - 1], ev[i + 1] - ev[i]
  sum = sum + math.min(d1, d2) / math.max(d1, d2); count = count + 1
end
print(("GOE %d×%d: edges %.3f, %.3f (semicircle ±2√N = ±%.3f); spacing ratio <r> = %.4f (GOE %.4f, Poisson %.4f)"):format(
  n, n, ev[1], ev[#ev], 2 * math.sqrt(n), sum / count, dbm.laws.ratio_mean("goe"), dbm.laws.ratio_mean("poisson")))
