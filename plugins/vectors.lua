-- vectors: localisation of the top eigenvectors by the inverse participation ratio IPR = Σ_k v_k⁴ (unit v).
-- A delocalised (GOE, uniformly random) unit vector of dimension N has ⟨IPR⟩ = 3/(N + 2) ≈ 3/N; a vector on one site
-- has IPR = 1 (Bell & Dean, Discuss. Faraday Soc. 50 (1970) 55; Porter–Thomas statistics of GOE vectors).
--
-- Vectors: ctx:eigenvectors(), those of the matrix when ctx.symmetric, else of the smaller Gram matrix (the right
-- singular vectors of W when it has at least as many rows as columns, else the left ones); "top" means the largest
-- eigenvalues. N is the vectors' dimension.
-- Options (ctx.options): vectors_top   how many top eigenvectors (default 5)
-- Outputs: ipr_mean (over the top vectors), ipr_max, ipr_goe (= 3/N), ipr_ratio (= ipr_mean / (3/N): ≈ 1 when
--   delocalised, ≫ 1 when localised), vectors_top (the count used); array ipr (top vector first).
--   Plain levels (no matrix): only a note.

return {
  name = "vectors",
  options = {top = {type = "integer", doc = "how many of the top eigenvectors are measured (default 5)"}},
  doc = "inverse participation ratio Σv⁴ of the top eigenvectors against the GOE value 3/N",
  run = function(ctx)
    if ctx.matrix == nil or ctx.eigenvectors == nil then return {note = "vectors needs a matrix: got plain levels"} end
    local V = ctx:eigenvectors()            -- columns, in ascending order of the eigenvalues
    local N, n = V:size(1), V:size(2)
    if n == 0 then return {note = "vectors: empty matrix"} end
    local k = math.min((ctx.options or {}).vectors_top or 5, n)
    local ascending = (V:narrow(2, n - k + 1, k) ^ 4):sum(1):totable()
    local ipr, total, top = {}, 0, 0
    for j = 1, k do
      ipr[j] = ascending[k + 1 - j]
      total = total + ipr[j]
      top = math.max(top, ipr[j])
    end
    local ipr_mean = total / k
    return {
      ipr_mean = ipr_mean, ipr_max = top, ipr_goe = 3 / N, ipr_ratio = ipr_mean / (3 / N), vectors_top = k,
      ipr = dbm.tensor(ipr, {dtype = "float64"}),
    }
  end,
}
