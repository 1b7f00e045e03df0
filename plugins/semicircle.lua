-- semicircle: Wigner semicircle fit of the eigenvalues of a symmetric (GOE-like) matrix.
-- ρ(x) = (2/(πR²))√(R² − (x − κ)²) (Wigner, Ann. Math. 67 (1958) 325; DESIGN §2), fitted by moments: the semicircle
-- has mean κ and variance R²/4, so κ = mean(λ), R = 2·std(λ); CDF F(x) = ½ + (u√(1 − u²) + asin u)/π, u = (x − κ)/R
-- (dbm.laws.semicircle_cdf).
--
-- Runs on ctx.symmetric matrices and on plain levels; for a general matrix (Gram spectrum) it returns only a note.
-- Outputs: semicircle_center (κ), semicircle_radius (R), semicircle_ks (KS distance of the levels to F).
--   Fewer than 2 levels or all equal: only the centre (radius 0, KS nil).

-- The semicircle at the first and the last record (the last only where it moved by more than 2% of R).
local function density_curves(records)
  local curves, previous = {}, nil
  for _, r in ipairs(records) do
    local c, R = r.result.semicircle_center or 0, r.result.semicircle_radius
    if R and R > 0 and not (previous and math.abs(R - previous[2]) <= 0.02 * R and math.abs(c - previous[1]) <= 0.02 * R) then
      curves[#curves + 1] = {f = function(x) return dbm.laws.semicircle_density(x, c, R) end, lo = c - R, hi = c + R,
        label = ("semicircle%s (radius %.4g)"):format(r.step and (" at step " .. r.step) or "", R)}
      previous = {c, R}
    end
  end
  return curves
end

return {
  name = "semicircle",
  panels = {{key = "semicircle_radius", ylabel = "semicircle radius"}},
  density_curves = density_curves,
  doc = "Wigner semicircle fit (centre κ = mean, radius R = 2·std) and KS distance, for symmetric matrices",
  run = function(ctx)
    if ctx.matrix ~= nil and not ctx.symmetric then
      return {note = "semicircle is for symmetric matrices only (watch it with symmetric = true)"}
    end
    local x = ctx.levels
    local n = #x
    if n == 0 then return {note = "semicircle: no levels"} end
    local sum, sum2 = 0, 0
    for i = 1, n do sum = sum + x[i] end
    local centre = sum / n
    for i = 1, n do sum2 = sum2 + (x[i] - centre) ^ 2 end
    local radius = 2 * math.sqrt(sum2 / n)
    local out = {semicircle_center = centre, semicircle_radius = radius}
    if not (radius > 0) then return out end
    out.semicircle_ks = dbm.ks_distance(dbm.laws.semicircle_cdf(x, centre, radius))
    return out
  end,
}
