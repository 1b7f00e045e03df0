-- dbm.laws from Lua: the limiting laws of DBMCore/Laws.swift, bound once. Values against formulas written out
-- here; numbers, tensors and tables in, the same shape out; the library's old names (dbm.plot.marchenko_pastur,
-- dbm.plot.semicircle, dbm.stats.wigner_cdf, poisson_cdf, dbm.goe2_density) are the same laws; bad calls name
-- the function and this script's line; every law has a help text.
local laws = dbm.laws
local here = "laws.lua:"
local function L() return debug.getinfo(2, "l").currentline end
local function close(a, b, tol, what)
  if not (math.abs(a - b) <= tol * math.max(1, math.abs(b))) then
    error(("%s: got %.17g, expected %.17g"):format(what, a, b), 2)
  end
end

-- ---------------------------------------------------------------- Marchenko–Pastur
-- 30×120 of variance 0.5: N = 120, q = 1/4, x± = 60(1 ± 1/2)² = 15, 135.
local lo, hi = laws.mp_edges(0.5, 30, 120)
close(lo, 15, 1e-14, "mp x-"); close(hi, 135, 1e-14, "mp x+")
local lo2, hi2 = laws.mp_edges(0.5, 120, 30)
assert(lo2 == lo and hi2 == hi, "the orientation of the matrix does not matter")
for _, x in ipairs({15.5, 40, 75, 134}) do
  close(laws.mp_density(x, 0.5, 30, 120), math.sqrt((135 - x) * (x - 15)) / (2 * math.pi * 0.5 * 120 * 0.25 * x), 1e-13, "mp density")
end
assert(laws.mp_density(10, 0.5, 30, 120) == 0 and laws.mp_density(140, 0.5, 30, 120) == 0)
assert(laws.mp_cdf(15, 0.5, 30, 120) == 0 and laws.mp_cdf(135, 0.5, 30, 120) == 1)
-- The CDF is the density's integral (midpoint rule on 20,000 intervals) and the quantile inverts it.
local F, n = 0, 20000
for k = 1, n do
  local x = lo + (hi - lo) * (k - 0.5) / n
  F = F + laws.mp_density(x, 0.5, 30, 120) * (hi - lo) / n
  if k % 4000 == 0 then close(laws.mp_cdf(lo + (hi - lo) * k / n, 0.5, 30, 120), F, 1e-5, "mp cdf at " .. k) end
end
for _, p in ipairs({0.1, 0.5, 0.9}) do close(laws.mp_cdf(laws.mp_quantile(p, 0.5, 30, 120), 0.5, 30, 120), p, 1e-12, "mp quantile") end

-- Numbers, tables and tensors: a tensor keeps its shape (float64), a table gives a 1-d float64 tensor.
local xs = dbm.tensor({{20, 50}, {80, 130}})
local d = laws.mp_density(xs, 0.5, 30, 120)
assert(dbm.is_tensor(d) and d:dtype() == "float64" and d:shape()[1] == 2 and d:shape()[2] == 2)
assert(d:get(2, 1) == laws.mp_density(80, 0.5, 30, 120))
local t = laws.mp_cdf({20, 50, 80}, 0.5, 30, 120)
assert(dbm.is_tensor(t) and t:numel() == 3 and t[3] == laws.mp_cdf(80, 0.5, 30, 120))

-- ---------------------------------------------------------------- semicircle
close(laws.semicircle_density(1, 1, 2), 1 / math.pi, 1e-15, "semicircle at its centre: 2/(πR)")
close(laws.semicircle_density(2, 1, 2), 2 / (math.pi * 4) * math.sqrt(3), 1e-15, "semicircle at κ + R/2")
assert(laws.semicircle_density(3, 1, 2) == 0 and laws.semicircle_density(-1.5, 1, 2) == 0)
assert(laws.semicircle_cdf(1, 1, 2) == 0.5 and laws.semicircle_cdf(-1, 1, 2) == 0 and laws.semicircle_cdf(3, 1, 2) == 1)
for _, x in ipairs({-0.5, 0.3, 1.7, 2.9}) do   -- F = (θ − sin θ cos θ)/π with x − κ = −R cos θ
  local theta = math.acos(-(x - 1) / 2)
  close(laws.semicircle_cdf(x, 1, 2), (theta - math.sin(theta) * math.cos(theta)) / math.pi, 1e-13, "semicircle cdf")
end

-- ---------------------------------------------------------------- spacings and ratios
close(laws.spacing_density(1, "goe"), math.pi / 2 * math.exp(-math.pi / 4), 1e-15, "Wigner surmise (GOE) at s = 1")
close(laws.spacing_cdf(1.5, "goe"), 1 - math.exp(-math.pi * 2.25 / 4), 1e-15, "Wigner surmise CDF")
close(laws.spacing_density(1, "gue"), 32 / math.pi ^ 2 * math.exp(-4 / math.pi), 1e-15, "Wigner surmise (GUE) at s = 1")
close(laws.spacing_density(0.7, "poisson"), math.exp(-0.7), 1e-15, "Poisson spacing")
close(laws.spacing_cdf(0.7, "poisson"), 1 - math.exp(-0.7), 1e-15, "Poisson spacing CDF")
assert(laws.spacing_cdf(0, "goe") == 0 and laws.spacing_cdf(-1, "poisson") == 0)
close(laws.ratio_density(1, "goe"), 27 / 2 / 3 ^ 2.5, 1e-14, "P(r = 1), GOE surmise")
close(laws.ratio_density(0.5, "poisson"), 2 / 1.5 ^ 2, 1e-15, "P(r), Poisson")
close(laws.ratio_cdf(0.5, "poisson"), 2 / 3, 1e-15, "Poisson ratio CDF 2r/(1 + r)")
-- ⟨r⟩: the references; the mean of the Poisson P(r) is its reference, that of the GOE surmise 4 − 2√3.
close(laws.ratio_mean("goe"), 0.5307, 1e-15, "GOE ⟨r⟩")
close(laws.ratio_mean("poisson"), 2 * math.log(2) - 1, 1e-15, "Poisson ⟨r⟩")
local m_goe, m_poi = 0, 0
for k = 1, n do
  local r = (k - 0.5) / n
  m_goe, m_poi = m_goe + r * laws.ratio_density(r, "goe") / n, m_poi + r * laws.ratio_density(r, "poisson") / n
end
close(m_poi, laws.ratio_mean("poisson"), 1e-8, "⟨r⟩ of the Poisson P(r)")
close(m_goe, 4 - 2 * math.sqrt(3), 1e-8, "⟨r⟩ of the GOE surmise")
close(laws.goe2_mean_spacing(0.3), math.sqrt(math.pi) * 0.3, 1e-15, "2×2 GOE ⟨S⟩ = √π σ")
assert(laws.goe2_density == dbm.goe2_density, "dbm.goe2_density is dbm.laws.goe2_density")

-- ---------------------------------------------------------------- the old names are the same laws
local P, S = require("dbm.plot"), dbm.stats
local f, a, b = P.marchenko_pastur(0.5, 30, 120)
assert(a == lo and b == hi and f(40) == laws.mp_density(40, 0.5, 30, 120))
local g, c1, c2 = P.semicircle(1, 2)
assert(c1 == -1 and c2 == 3 and g(2) == laws.semicircle_density(2, 1, 2))
assert(S.wigner_cdf(1.2) == laws.spacing_cdf(1.2, "goe") and S.poisson_cdf(1.2) == laws.spacing_cdf(1.2, "poisson"))
assert(S.wigner_cdf(-1) == 0 and S.poisson_cdf(0) == 0)

-- ---------------------------------------------------------------- help and bad calls
local count = 0
for name, fn in pairs(laws) do
  count = count + 1
  local text = dbm.help(fn)
  assert(text and not text:find("^no help") and text:find(name, 1, true), "no help text for dbm.laws." .. name)
end
assert(count >= 12, "dbm.laws has " .. count .. " functions")
assert(dbm.help("laws.mp_density"):find("Marchenko", 1, true))
assert(dbm.help():find("dbm.laws.ratio_mean", 1, true), "dbm.help() lists dbm.laws")

-- Bad calls: each a Lua error naming the function, what it expected, and this script's line.
local function bad(fname, f, ...) return {fname = fname, f = f, args = table.pack(...)} end
local bad_calls = {
  bad("dbm.laws.mp_density", laws.mp_density, 1, -1, 30, 120),
  bad("dbm.laws.mp_density", laws.mp_density, 1, 0 / 0, 30, 120),
  bad("dbm.laws.mp_density", laws.mp_density, 1, 0.5, 0, 120),
  bad("dbm.laws.mp_density", laws.mp_density, 1, 0.5, 30.5, 120),
  bad("dbm.laws.mp_density", laws.mp_density, "x", 0.5, 30, 120),
  bad("dbm.laws.mp_cdf", laws.mp_cdf, {1, "x"}, 0.5, 30, 120),
  bad("dbm.laws.mp_edges", laws.mp_edges, 0.5, 30),
  bad("dbm.laws.mp_quantile", laws.mp_quantile, 1.5, 0.5, 30, 120),
  bad("dbm.laws.semicircle_density", laws.semicircle_density, 0, 0, 0),
  bad("dbm.laws.semicircle_cdf", laws.semicircle_cdf, 0, 1 / 0, 1),
  bad("dbm.laws.spacing_density", laws.spacing_density, 1, "gse"),
  bad("dbm.laws.spacing_cdf", laws.spacing_cdf, 1),
  bad("dbm.laws.ratio_density", laws.ratio_density, 0.5, 1),
  bad("dbm.laws.ratio_cdf", laws.ratio_cdf, nil, "goe"),
  bad("dbm.laws.ratio_mean", laws.ratio_mean, "GOE"),
  bad("dbm.laws.goe2_mean_spacing", laws.goe2_mean_spacing, -1),
}
for _, c in ipairs(bad_calls) do
  local line, ok, msg = L(), pcall(c.f, table.unpack(c.args, 1, c.args.n))
  msg = tostring(msg)
  assert(not ok and msg:find(c.fname, 1, true) and msg:find(here .. line .. ":", 1, true) and msg:find("expected", 1, true),
    ("%s: expected an error naming it, line %d and what was expected, got %s"):format(c.fname, line, msg))
end
print(("laws: ok (%d bad calls)"):format(#bad_calls))
