-- Matrix Brownian motion: the picture of Dyson Brownian motion (DESIGN §2, §3 "Direct DBM simulation").
-- A symmetric n×n matrix takes GOE increments, H ← H + √dt·(G + Gᵀ)/√2 with G of iid N(0, 1) entries, so its
-- off-diagonal entries grow a variance t = step·dt (diagonal 2t) on top of H(0). Its eigenvalues then perform
-- β = 1 Dyson Brownian motion, dλ_i = Σ_{j≠i} dt/(λ_i − λ_j) + √2 dB_i: they repel, so levels started on a
-- regular grid (start=diagonal) never cross and their spacings settle to the Wigner surmise; from H = 0
-- (start=zero) the spectrum is a GOE semicircle of radius R(t) = 2√(n t) at every t > 0.
-- Run: dbm-lua experiments/matrix_brownian.lua [--n=60 --steps=400 --dt=0.01 --every=4 --start=zero|diagonal --seed=1]
-- Writes a run directory (runs/matrix_brownian-<date> or --out_dir) with spectra, observables and plots.
local cfg = dbm.config({n = 60, steps = 400, dt = 0.01, every = 4, start = "zero", gap = 1.0, seed = 1, out_dir = ""})
if cfg.start ~= "diagonal" and cfg.start ~= "zero" then
  error("--start must be 'diagonal' or 'zero', got '" .. cfg.start .. "'")
end
dbm.seed(cfg.seed)
local n = cfg.n

-- H(0): zero, or diagonal with levels gap apart, centred on 0.
local H = dbm.zeros(n, n, {dtype = "float64"})
if cfg.start == "diagonal" then
  for i = 1, n do H:set(i, i, (i - (n + 1) / 2) * cfg.gap) end
end

local rec = dbm.recorder{config = cfg, out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil, total_steps = cfg.steps}
rec:watch("H", function() return H end,
          {diagnostics = {"spectrum", "spacing", "semicircle"}, every = cfg.every, symmetric = true})

-- Entry variance grows linearly: t = step·dt off the diagonal. From H = 0 the semicircle radius is 2√(n t).
local scale = math.sqrt(cfg.dt) / math.sqrt(2)
local progress = dbm.progress{total = cfg.steps, label = "matrix Brownian motion"}
local r_mean
for step = 0, cfg.steps do
  if step > 0 then
    local G = dbm.randn(n, n, {dtype = "float64"})
    H = H + (G + G:t()) * scale
  end
  local t = step * cfg.dt
  local scalars = {frobenius = H:norm()}
  if cfg.start == "zero" then scalars.radius_goe = 2 * math.sqrt(n * t) end   -- compare semicircle_radius
  local recorded = rec:step(step, scalars)
  if recorded.H and recorded.H.spacing then r_mean = recorded.H.spacing.r_mean end
  progress:update(step, {["<r>"] = r_mean})
end
progress:done()

local dir = rec:close()
print(("levels at t = %.2f: <r> = %.4f (GOE %.4f, Poisson %.4f)"):format(cfg.steps * cfg.dt, r_mean or 0 / 0,
  dbm.laws.ratio_mean("goe"), dbm.laws.ratio_mean("poisson")))
print("run directory: " .. dir)
print("plots: " .. dir .. "/plots/H_flow.png (eigenvalue flow), H_density, H_spacing, H_observables, metrics")
