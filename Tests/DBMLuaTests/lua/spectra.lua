-- Spectra from Lua, checked against numpy (matrices exchanged through .npy files) and against
-- random-matrix theory (GOE semicircle, Marchenko–Pastur edges). Thresholds hold for any seed.
local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir -p " .. dir))

local function numpy(code)
  local script = dir .. "/check.py"
  local f = assert(io.open(script, "w")); f:write("import numpy as np\n" .. code); f:close()
  local ok = os.execute("python3 " .. script)
  assert(ok, "python3 with numpy failed on:\n" .. code)
end

local function max_rel_diff(a, b)
  assert(a:numel() == b:numel(), "sizes differ")
  local scale = math.max(a:abs():max(), 1e-300)
  return (a - b):abs():max() / scale
end

-- 1. eigvalsh and svdvals agree with numpy to 1e-10 relative (Float64).
dbm.seed(7)
local worst_eig, worst_sv = 0, 0
for _, n in ipairs({1, 2, 17, 200}) do
  local a = dbm.randn(n, n, {dtype = "float64"}); a = (a + a:t()) / 2
  dbm.save_npy(dir .. "/a.npy", a)
  numpy(("a = np.load('%s/a.npy'); np.save('%s/ev.npy', np.linalg.eigvalsh(a))"):format(dir, dir))
  local d = max_rel_diff(dbm.eigvalsh(a), dbm.load_npy(dir .. "/ev.npy"))
  worst_eig = math.max(worst_eig, d)
  assert(d < 1e-10, ("eigvalsh n=%d differs from numpy by %.3g"):format(n, d))
end
for _, s in ipairs({{30, 10}, {10, 30}, {64, 64}, {300, 120}}) do
  local w = dbm.randn(s[1], s[2], {dtype = "float64"})
  dbm.save_npy(dir .. "/w.npy", w)
  numpy(("w = np.load('%s/w.npy'); np.save('%s/sv.npy', np.linalg.svd(w, compute_uv=False))"):format(dir, dir))
  local d = max_rel_diff(dbm.svdvals(w), dbm.load_npy(dir .. "/sv.npy"))
  worst_sv = math.max(worst_sv, d)
  assert(d < 1e-10, ("svdvals %dx%d differs from numpy by %.3g"):format(s[1], s[2], d))
  -- and the eigenvalues of the Gram matrix are the squared singular values
  local g = dbm.eigvalsh(dbm.gram(w))
  local sv = dbm.sort(dbm.load_npy(dir .. "/sv.npy") ^ 2)
  assert(max_rel_diff(g, sv) < 1e-10, "gram eigenvalues are the squared singular values")
end
print(("numpy agreement (float64, via .npy): eigvalsh max rel. diff %.2e, svdvals %.2e (limit 1e-10)"):format(worst_eig, worst_sv))
-- numpy writes, we read: a Fortran-ordered float32 matrix.
numpy(("np.save('%s/f.npy', np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)))"):format(dir))
local f = dbm.load_npy(dir .. "/f.npy")
assert(f:dtype() == "float32" and f[2][3] == 6, "fortran-order file reads as numpy shows it")

-- 2. eigh and svd reconstruct their input.
local a = dbm.randn(50, 50, {dtype = "float64"}); a = a + a:t()
local vals, vecs = dbm.eigh(a)
assert((a:matmul(vecs) - vecs * vals):abs():max() < 1e-10 * a:abs():max() * 50, "A V = V diag(λ)")
local w = dbm.randn(40, 25, {dtype = "float64"})
local U, S, Vt = dbm.svd(w)
assert(U:shape()[2] == 25 and Vt:shape()[1] == 25)
assert((U * S):matmul(Vt):sub(w):abs():max() < 1e-12 * 40, "W = U diag(S) Vᵀ")

-- 3. GOE 1000×1000, pooled over 10 matrices: a semicircle of radius 2√N (off-diagonal variance 1).
local N, R = 1000, 2 * math.sqrt(1000)
local lo, hi, m2, count = math.huge, -math.huge, 0, 0
for k = 1, 10 do
  local g = dbm.randn(N, N, {dtype = "float64", generator = dbm.generator(100 + k)})
  local h = (g + g:t()) / math.sqrt(2)
  local ev = dbm.eigvalsh(h)
  lo, hi = math.min(lo, ev:min()), math.max(hi, ev:max())
  m2 = m2 + (ev / R):square():sum(); count = count + N
end
m2 = m2 / count
-- The radius fitted from the second moment (R²/4 for a semicircle) is within 2% of 2√N; the extreme
-- levels sit at ±R up to Tracy–Widom fluctuations (about 0.6% for one matrix at N = 1000, heavier
-- tail outward, so the outer margin is 3%).
local fitted = 2 * math.sqrt(m2) * R
print(("GOE N=%d x10: fitted radius %.4f R; edges %.4f, %.4f of R"):format(N, fitted / R, lo / R, hi / R))
assert(math.abs(fitted / R - 1) < 0.02, "semicircle radius within 2%")
assert(hi / R > 0.98 and hi / R < 1.03 and lo / R < -0.98 and lo / R > -1.03, "semicircle edges at ±R")

-- 4. Marchenko–Pastur: W 1536×384 Gaussian, eigenvalues of WᵀW within [0.92 x₋, 1.04 x₊],
--    the largest within 4% of x₊ (N = 1536, q = 1/4, σ² = 1).
local rows, cols = 1536, 384
local q = cols / rows
local xm, xp = rows * (1 - math.sqrt(q)) ^ 2, rows * (1 + math.sqrt(q)) ^ 2
for k = 1, 3 do
  local W = dbm.randn(rows, cols, {generator = dbm.generator(200 + k)})
  local ev = dbm.eigvalsh(dbm.gram(W))
  assert(ev:numel() == cols)
  print(("MP 1536x384 seed %d: min/x- = %.4f, max/x+ = %.4f"):format(k, ev:min() / xm, ev:max() / xp))
  assert(ev:min() >= 0.92 * xm and ev:max() <= 1.04 * xp, "all eigenvalues inside the MP edges (with margins)")
  assert(math.abs(ev:max() / xp - 1) < 0.04, "largest eigenvalue within 4% of x+")
end

os.execute("rm -rf " .. dir)
print("spectra: ok")
