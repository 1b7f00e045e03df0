-- powerlaw: tail exponent α of the spectral density p(λ) ∝ λ^{−α}, λ ≥ x_min (heavy-tailed self-regularisation).
-- Clauset, Shalizi & Newman, SIAM Rev. 51 (2009) 661: for each candidate x_min the MLE α̂ = 1 + n/Σ log(λ_i/x_min)
-- (eq. 3.1) and the KS distance D of the tail to the fitted CDF 1 − (λ/x_min)^{1−α̂} (eq. 3.9); x_min minimises D;
-- standard error (α̂ − 1)/√n (eq. 3.2). The O(n²) scan over candidates runs in Swift (dbm.powerlaw_scan).
--
-- Candidates: every distinct positive level leaving a tail of at least `powerlaw_min_tail` levels.
-- Options (ctx.options):
--   powerlaw_min_tail   smallest tail n considered (default 10: below that D is small by chance and α̂ noisy)
-- Outputs: alpha, alpha_err, alpha_xmin, alpha_D, alpha_ntail. No candidate (fewer positive levels than the
--   minimum tail, or all equal): only alpha_ntail = 0 and a `note`.

return {
  name = "powerlaw",
  columns = {{"α", "alpha"}},
  panels = {{key = "alpha", ylabel = "α (tail exponent)"}},
  doc = "power-law tail exponent α of the density (Clauset et al. 2009: MLE per x_min, x_min at minimum KS distance)",
  run = function(ctx)
    local min_tail = (ctx.options or {}).powerlaw_min_tail or 10
    local x = ctx.levels
    -- Only the smallest D matters here: candidates that cannot attain it are cut short (D = +∞).
    local alphas, D = dbm.powerlaw_scan(ctx.eigenvalues, {min_tail = min_tail, exhaustive = false})
    alphas, D = alphas:totable(), D:totable()
    local best
    for k = 1, #D do
      if D[k] == D[k] and (best == nil or D[k] < D[best]) then best = k end   -- NaN: not a candidate
    end
    if best == nil then
      return {alpha_ntail = 0, note = ("powerlaw: no candidate x_min (a positive level with at least %d levels at or above it)"):format(min_tail)}
    end
    local n = #x - best + 1
    return {
      alpha = alphas[best], alpha_err = (alphas[best] - 1) / math.sqrt(n),
      alpha_xmin = x[best], alpha_D = D[best], alpha_ntail = n,
    }
  end,
}
