-- The teacher–student model of arXiv:2407.16427 (DESIGN §3): a 2×2 student W_s learns the teacher 2·I by
-- plain SGD, each of its n_data = 500·|B| samples carrying a fixed GOE "intrinsic noise" matrix of strength ε.
-- At the end the two singular values of W_s sit around 2 and repel: their spacing S follows the Wigner
-- surmise, with ⟨S⟩ = √π σ, σ² = 2αε²/(|B|(2 − α)) (the linearised, Ornstein–Uhlenbeck prediction).
--
-- Run: dbm-lua experiments/teacher_student.lua [--lr=0.1 --batch_size=16 --eps=0.1 --epochs=10
--                                              --seeds=2000 --seed=0 --out_dir=DIR]
-- Writes a run directory: spectra/final.npy (seeds × 2, the final singular values, ascending),
-- spectra/W.npy (one model's WᵀW levels at every step), metrics.jsonl, summary.md, plots/.
local cfg = dbm.config({lr = 0.1, batch_size = 16, eps = 0.1, epochs = 10, seeds = 2000, seed = 0, out_dir = ""})
local plot, stats = require("dbm.plot"), dbm.stats
local steps_per_epoch = 500

local rec = dbm.recorder{config = cfg, out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil, name = "teacher_student"}

-- 1. The ensemble: every seed's singular values at the end of every epoch.
local t0 = dbm.clock()
local history = dbm.models.ensemble("teacher_student", {seeds = cfg.seeds, seed = cfg.seed, epochs = cfg.epochs,
                                                        lr = cfg.lr, batch_size = cfg.batch_size, eps = cfg.eps, history = true})
local ensemble_seconds = dbm.clock() - t0
local final = history:select(2, cfg.epochs):contiguous()       -- (seeds, 2)
dbm.save_npy(rec.dir .. "/spectra/final.npy", final)

-- Pooled snapshots: epochs 2..E (the first epoch relaxes from the initialisation; snapshots an epoch
-- apart are nearly independent).
local first = math.min(2, cfg.epochs)
local pooled = history:narrow(2, first, cfg.epochs - first + 1):reshape(-1, 2):totable()
local levels, spacings = {}, {}
for i, row in ipairs(pooled) do
  levels[#levels + 1], levels[#levels + 2] = row[1], row[2]
  spacings[i] = row[2] - row[1]
end
local final_mid = {}
for i, row in ipairs(final:totable()) do final_mid[i] = (row[1] + row[2]) / 2 end

local mid, mid_se = stats.mean(final_mid)
local S, S_se = stats.mean(spacings)
local sigma_ou = math.sqrt(2 * cfg.lr * cfg.eps ^ 2 / (cfg.batch_size * (2 - cfg.lr)))
local spacing_ou = dbm.laws.goe2_mean_spacing(sigma_ou)   -- √π σ
local x0, sigma_fit = dbm.fit_goe2(levels)
local D_w, p_w = stats.wigner_ks(spacings)
local D_p, p_p = stats.poisson_ks(spacings)

-- 2. One model (seed `seed`), watched at every step: the flow of its levels, and the noise temperature from
-- their increments after the first epoch (t = step·α, so δt = α per step; the levels of WᵀW are s²).
local m = dbm.models.teacher_student{lr = cfg.lr, batch_size = cfg.batch_size, eps = cfg.eps, seed = cfg.seed}
rec:watch("W", m.weight, {diagnostics = {"spacing"}, every = 1})   -- W_spacing, W_density, W_flow
local total = cfg.epochs * steps_per_epoch
local gram_levels = {}
local T = {temperature = 0 / 0, stderr = 0 / 0}
for step = 0, total do
  if step > 0 then m:step(1) end
  local s = m:levels()
  if step >= steps_per_epoch then gram_levels[#gram_levels + 1] = {s[1] ^ 2, s[2] ^ 2} end
  local scalars = {s1 = s[1], s2 = s[2], epoch = m:scalars().epoch}
  if step == total then
    -- the last line of metrics.jsonl also carries the ensemble's figures
    if #gram_levels >= 10 then T = dbm.noise_temperature(dbm.tensor(gram_levels, {dtype = "float64"}), cfg.lr) end
    for k, v in pairs({ensemble_mean_level = mid, ensemble_mean_level_se = mid_se, ensemble_spacing = S,
                       ensemble_spacing_se = S_se, spacing_ou = spacing_ou, sigma_fit = sigma_fit,
                       sigma_ou = sigma_ou, ks_wigner = D_w, ks_wigner_p = p_w, ks_poisson = D_p, ks_poisson_p = p_p,
                       noise_temperature = T.temperature, noise_temperature_se = T.stderr, ensemble_seconds = ensemble_seconds}) do
      scalars[k] = v
    end
  end
  rec:step(step, scalars)
end

-- 3. Plots and summary, before rec:close() writes DONE.
local dir = rec.dir
plot.density(dir .. "/plots/final_density", levels, {
  labels = {"singular values (pooled)"},
  curves = {{f = function(x) return dbm.goe2_density(x, x0, sigma_fit) end, lo = x0 - 5 * sigma_fit, hi = x0 + 5 * sigma_fit,
             label = ("2×2 GOE block, fit: x0 = %.4f, σ = %.4g"):format(x0, sigma_fit)}},
  title = ("teacher–student: singular values after epochs %d–%d, %d seeds (α = %g, |B| = %d, ε = %g)")
    :format(first, cfg.epochs, cfg.seeds, cfg.lr, cfg.batch_size, cfg.eps)})
plot.spacing(dir .. "/plots/final_spacing", stats.normalise(spacings), {
  title = ("teacher–student: S/⟨S⟩ of the final pair, %d snapshots; KS to Wigner %.3f (p = %.2g)"):format(#spacings, D_w, p_w)})

dbm.write_summary(dir, {
  title = "Teacher–student (arXiv:2407.16427)",
  settings = ("α = %g, |B| = %d, ε = %g, %d epochs of %d steps; %d seeds from seed %d (ensemble: %.1f s on all cores).")
    :format(cfg.lr, cfg.batch_size, cfg.eps, cfg.epochs, steps_per_epoch, cfg.seeds, cfg.seed, ensemble_seconds),
  config = cfg,
  figures = {header = {"quantity", "measured", "expected"}, rows = {
    {"⟨(s₁ + s₂)/2⟩ at the end", ("%.5f ± %.5f"):format(mid, mid_se), "2"},
    {"⟨S⟩ (epochs " .. first .. "–" .. cfg.epochs .. ")", ("%.5f ± %.5f"):format(S, S_se), ("√π σ = %.5f (OU)"):format(spacing_ou)},
    {"σ fitted (2×2 GOE density)", ("%.5f"):format(sigma_fit), ("%.5f (OU)"):format(sigma_ou)},
    {"KS of S/⟨S⟩ to the Wigner surmise", ("D = %.4f, p = %.3g"):format(D_w, p_w), "p > 0.01"},
    {"KS of S/⟨S⟩ to Poisson", ("D = %.4f, p = %.3g"):format(D_p, p_p), "rejected"},
    {"noise temperature T (one run, δt = α)", ("%.4g ± %.2g"):format(T.temperature, T.stderr), "∝ α/|B|"},
  }},
  files = {"spectra/final.npy (seeds × 2, ascending)", "spectra/W.npy (levels of WᵀW of seed " .. cfg.seed .. " at every step)",
           "plots/final_density.png", "plots/final_spacing.png", "plots/W_flow.png"},
})
rec:close()

print(("teacher-student: alpha = %g, |B| = %d, eps = %g, %d seeds x %d epochs (%.1f s)"):format(
  cfg.lr, cfg.batch_size, cfg.eps, cfg.seeds, cfg.epochs, ensemble_seconds))
print(("  <(s1+s2)/2> = %.5f +- %.5f (expected 2)"):format(mid, mid_se))
print(("  <S> = %.5f +- %.5f; OU prediction sqrt(pi) sigma = %.5f (ratio %.3f)"):format(S, S_se, spacing_ou, S / spacing_ou))
print(("  fitted sigma = %.5f (OU %.5f); KS to Wigner D = %.4f p = %.3g; to Poisson D = %.4f p = %.3g"):format(
  sigma_fit, sigma_ou, D_w, p_w, D_p, p_p))
print(("  noise temperature T = %.4g +- %.2g (alpha/|B| = %.4g)"):format(T.temperature, T.stderr, cfg.lr / cfg.batch_size))
print("run directory: " .. dir)
