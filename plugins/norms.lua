-- norms: matrix norms and spectral entropy from the squared singular values s_i² of the matrix.
-- ‖W‖_F = √Σs², ‖W‖₂ = s_max, stable rank Σs²/s²_max (Rudelson & Vershynin 2007), log norm log10 ‖W‖_F² and
-- matrix entropy −Σp log p / log n with p_i = s_i²/Σs² (Martin & Mahoney, JMLR 22 (2021) 165, as WeightWatcher's
-- log_norm and entropy), effective rank exp(−Σp log p) (Roy & Vetterli, EUSIPCO 2007).
--
-- s_i² = λ_i for a Gram spectrum (negative round-off clamped to 0), s_i² = λ_i² for the eigenvalues of a symmetric
-- matrix (ctx.symmetric: then spectral_norm = max|λ|, frobenius_norm = √Σλ²). Plain levels are read as a Gram
-- spectrum unless ctx.symmetric is set.
-- Outputs: frobenius_norm, spectral_norm, stable_rank, log_norm, entropy (in [0, 1]; 0 for a single level),
--   effective_rank. A zero matrix: frobenius_norm = spectral_norm = 0, the ratios and logs nil.

return {
  name = "norms",
  columns = {{"stable rank", "stable_rank"}},
  doc = "Frobenius and spectral norms, stable rank, log norm (log10 ‖W‖_F²), normalised spectral entropy, effective rank",
  run = function(ctx)
    local s2 = {}
    for i, l in ipairs(ctx.levels) do s2[i] = ctx.symmetric and l * l or math.max(l, 0) end
    local n = #s2
    local total, top = 0, 0
    for i = 1, n do total = total + s2[i]; top = math.max(top, s2[i]) end
    local out = {frobenius_norm = math.sqrt(total), spectral_norm = math.sqrt(top)}
    if not (total > 0) then return out end

    local h = 0
    for i = 1, n do
      local p = s2[i] / total
      if p > 0 then h = h - p * math.log(p) end
    end
    out.stable_rank = total / top
    out.log_norm = math.log(total, 10)
    out.entropy = n > 1 and h / math.log(n) or 0
    out.effective_rank = math.exp(h)
    return out
  end,
}
