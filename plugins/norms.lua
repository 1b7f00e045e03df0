-- norms: matrix norms and spectral entropy from the squared singular values s_i² of the matrix.
-- ‖W‖_F = √Σs², ‖W‖₂ = s_max, stable rank Σs²/s²_max (Rudelson & Vershynin 2007), log norm log10 ‖W‖_F² and
-- matrix entropy −Σp log p / log n with p_i = s_i²/Σs² (Martin & Mahoney, JMLR 22 (2021) 165, as WeightWatcher's
-- log_norm and entropy), effective rank exp(−Σp log p) (Roy & Vetterli, EUSIPCO 2007).
-- Rank as WeightWatcher 0.7.7 (RMT_Util.matrix_rank, calc_rank_loss; numpy's matrix_rank): matrix_rank = #{s_i >
-- s_max·max(N, M)·ε}, ε = 2.2e-16 (float64), rank_loss = min(N, M) − matrix_rank, weak_rank_loss = #{s_i² < 1e-6}.
--
-- The Gram levels are exact to about (N+M)·ε·λ_max, far above WeightWatcher's threshold (s_max·Nε)²: a level above
-- 4(N+M)ε·λ_max is a non-zero singular value beyond doubt; when some level lies below, the singular values of the
-- matrix are computed in float64 (dbm.svdvals) and counted as numpy does. Plain levels: the levels alone decide.
--
-- s_i² = λ_i for a Gram spectrum (negative round-off clamped to 0), s_i² = λ_i² for the eigenvalues of a symmetric
-- matrix (ctx.symmetric: then spectral_norm = max|λ|, frobenius_norm = √Σλ²). Plain levels are read as a Gram
-- spectrum unless ctx.symmetric is set.
-- Outputs: frobenius_norm, spectral_norm, stable_rank, log_norm, log_spectral_norm (log10 s²_max, WeightWatcher's),
--   entropy (in [0, 1]; 0 for a single level), effective_rank, matrix_rank, rank_loss, weak_rank_loss.
--   A zero matrix: frobenius_norm = spectral_norm = 0, matrix_rank = 0, the ratios and logs nil.
-- Model level (summary): the means of log_norm, log_spectral_norm and stable_rank (WeightWatcher's get_summary).

local EPS = 2.220446049250313e-16   -- float64 machine epsilon (numpy's finfo(float64).eps)

-- numpy's matrix_rank rule on the squared singular values s2 (any order): #{s > s_max·dim·ε}.
local function count_rank(s2, top, dim)
  local tol, rank = math.sqrt(top) * dim * EPS, 0
  for _, v in ipairs(s2) do if math.sqrt(v) > tol then rank = rank + 1 end end
  return rank
end

-- The rank of the matrix behind the levels: from the levels when they decide it, else from its singular values.
local function matrix_rank(ctx, s2, top)
  if ctx.symmetric or ctx.shape == nil then return count_rank(s2, top, ctx.shape and ctx.shape[1] or #s2) end
  local N, M = ctx.shape[1], ctx.shape[2]
  local floor = 4 * (N + M) * EPS * top
  for _, v in ipairs(s2) do
    if v <= floor then
      local sv = dbm.svdvals(ctx.matrix, {dtype = "float64"}):totable()
      for i, x in ipairs(sv) do sv[i] = x * x end
      return count_rank(sv, sv[1], math.max(N, M))
    end
  end
  return #s2
end

local mean_of = require("dbm.diagnostics").mean_over   -- the mean of a scalar over the rows of a summary

return {
  name = "norms",
  columns = {{"stable rank", "stable_rank"}, {"rank loss", "rank_loss"}},
  summary = function(rows)
    return {log_norm = mean_of(rows, "log_norm"), log_spectral_norm = mean_of(rows, "log_spectral_norm"),
            stable_rank = mean_of(rows, "stable_rank")}
  end,
  doc = "Frobenius and spectral norms, stable rank, log norm (log10 ‖W‖_F²), normalised spectral entropy, effective rank",
  run = function(ctx)
    local s2 = {}
    for i, l in ipairs(ctx.levels) do s2[i] = ctx.symmetric and l * l or math.max(l, 0) end
    local n = #s2
    local total, top = 0, 0
    for i = 1, n do total = total + s2[i]; top = math.max(top, s2[i]) end
    local out = {frobenius_norm = math.sqrt(total), spectral_norm = math.sqrt(top), weak_rank_loss = 0}
    for i = 1, n do if s2[i] < 1e-6 then out.weak_rank_loss = out.weak_rank_loss + 1 end end
    if not (total > 0) then out.matrix_rank, out.rank_loss = 0, n; return out end
    out.matrix_rank = matrix_rank(ctx, s2, top)
    out.rank_loss = n - out.matrix_rank

    local h = 0
    for i = 1, n do
      local p = s2[i] / total
      if p > 0 then h = h - p * math.log(p) end
    end
    out.stable_rank = total / top
    out.log_norm = math.log(total, 10)
    out.log_spectral_norm = math.log(top, 10)
    out.entropy = n > 1 and h / math.log(n) or 0
    out.effective_rank = math.exp(h)
    return out
  end,
}
