-- randomize: the spectrum of W with its entries shuffled, against that of W (opt-in: one more eigendecomposition).
-- WeightWatcher 0.7.7 (weightwatcher.py apply_random_esd, randomize=True; RMT_Util.jensen_shannon_distance):
-- rand_distance = √((KL(p‖m) + KL(q‖m))/2), m = (p + q)/2, p and q the ascending levels of W and of the shuffled W
-- each normalised to sum 1 (natural log); ww_softrank = λ_max(shuffled)/λ_max; num_traps = the spikes of the
-- shuffled spectrum above its Marchenko–Pastur edge (WeightWatcher's rand_num_spikes): shuffling destroys every
-- correlation, so what stays above the bulk is a "correlation trap", a few entries large enough to make a spike
-- on their own (Martin & Mahoney, arXiv:2106.00734 §5). The spikes are counted by the mp plugin (its fit and
-- Tracy–Widom margin) run on the shuffled matrix.
--
-- One shuffle per matrix (WeightWatcher draws a second, and five for the MP fit of matrices with fewer than 100
-- levels), from dbm.generator(randomize_seed): the same matrix gives the same figures on every run.
-- Options (ctx.options):
--   randomize_seed   the generator's seed (default 0)
-- Outputs: rand_distance, ww_softrank, rand_lambda_max, num_traps, rand_mp_sigma2; array rand_levels (the shuffled
--   levels, ascending). Plain levels or a symmetric matrix: only `note`.
local D = require("dbm.diagnostics")

-- The entries of W in a random order, same shape.
local function shuffled(W, g)
  local shape = W:shape()
  local n = shape[1] * shape[2]
  return W:contiguous():reshape(n):index(1, g:permutation(n)):reshape(shape[1], shape[2])
end

-- Jensen–Shannon distance of two non-negative vectors of equal length, each normalised to sum 1.
local function jensen_shannon_distance(a, b)
  local sa, sb = 0, 0
  for i = 1, #a do sa, sb = sa + math.max(a[i], 0), sb + math.max(b[i], 0) end
  local kl_p, kl_q = 0, 0
  for i = 1, #a do
    local p, q = math.max(a[i], 0) / sa, math.max(b[i], 0) / sb
    local m = (p + q) / 2
    if p > 0 then kl_p = kl_p + p * math.log(p / m) end
    if q > 0 then kl_q = kl_q + q * math.log(q / m) end
  end
  return math.sqrt(math.max(0, (kl_p + kl_q) / 2))
end

return {
  name = "randomize",
  doc = "the spectrum of W with its entries shuffled: Jensen–Shannon distance to W's (rand_distance), correlation traps (num_traps)",
  columns = {{"rand dist", "rand_distance"}, {"traps", "num_traps"}},
  options = {seed = {type = "integer", doc = "seed of the shuffle's generator (default 0)"}},
  run = function(ctx)
    if ctx.matrix == nil then return {note = "randomize needs the matrix: got plain levels"} end
    if ctx.symmetric then return {note = "randomize applies to weight matrices (Gram spectra), not to a symmetric matrix"} end
    local g = dbm.generator((ctx.options or {}).randomize_seed or 0)
    local results, failures, rctx = D.run({"mp"}, shuffled(ctx.matrix, g))
    local levels, rand = ctx.levels, rctx.levels
    local out = {
      rand_distance = jensen_shannon_distance(levels, rand),
      rand_lambda_max = rand[#rand],
      ww_softrank = levels[#levels] > 0 and rand[#rand] / levels[#levels] or nil,
      rand_levels = rctx.eigenvalues,
    }
    local mp = results.mp
    if mp and mp.num_spikes then out.num_traps, out.rand_mp_sigma2 = mp.num_spikes, mp.mp_sigma2
    elseif failures.mp then error("randomize: the MP fit of the shuffled matrix failed: " .. failures.mp, 0) end
    return out
  end,
  -- The density of the levels and of the shuffled levels at the last record.
  plot = function(h)
    local rand = h.arrays.rand_levels and h.arrays.rand_levels[h.records]
    if not rand then return end
    h.plot.density(h.path, {h.last, rand}, {labels = {"W", "W with its entries shuffled"}, xlabel = h.xlabel,
      title = h.matrix .. ": spectral density of W and of W shuffled (correlation traps: shuffled spikes)"})
  end,
}
