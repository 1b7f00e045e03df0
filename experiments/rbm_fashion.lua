-- A Bernoulli–Bernoulli RBM on Fashion-MNIST (beyond the papers, DESIGN §3): 784 binary visible units, a
-- hidden layer, CD-k or PCD-k. Training pulls a few eigenvalues of WᵀW out of the initial Marchenko–Pastur
-- sea — the learned features — while the reconstruction error falls. The recorder follows the flow.
--
-- Run: dbm-lua experiments/rbm_fashion.lua [--hidden=64 --lr=0.05 --batch_size=64 --k=1 --persistent
--                                          --binarize=sample --images=20000 --steps=6000 --record_every=100
--                                          --seed=0 --out_dir=DIR]
-- Needs the Debian package dataset-fashion-mnist (scripts/setup installs it).
-- Writes metrics.jsonl (reconstruction_error on the batch, heldout_error on 1000 test images),
-- spectra/W.npy (the levels of the smaller Gram matrix WWᵀ at each record), spectra/final.npy (1 × hidden),
-- observables.jsonl,
-- model.safetensors (W, b, c), summary.md, plots/ (W_flow: the eigenvalue flow; metrics: the errors).
local cfg = dbm.config({hidden = 64, lr = 0.05, batch_size = 64, k = 1, persistent = false, binarize = "sample",
                        images = 20000, steps = 6000, record_every = 100, seed = 0, out_dir = ""})

local X = dbm.fashion_mnist("train", {limit = cfg.images})
local heldout = dbm.fashion_mnist("test", {limit = 1000})
local m = dbm.models.rbm_bernoulli{data = X, hidden = cfg.hidden, lr = cfg.lr, batch_size = cfg.batch_size, k = cfg.k,
                                   persistent = cfg.persistent, binarize = cfg.binarize, seed = cfg.seed}
print(("rbm_fashion: %d training images of 784 pixels, %d hidden units, %s-%d, alpha = %g, |B| = %d, %d steps"):format(
  X:shape()[1], cfg.hidden, cfg.persistent and "PCD" or "CD", cfg.k, cfg.lr, cfg.batch_size, cfg.steps))

local rec = dbm.recorder{config = cfg, out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil, name = "rbm_fashion", total_steps = cfg.steps}
rec:watch("W", m.weight, {diagnostics = {"spectrum", "spacing", "mp"}, every = cfg.record_every})

local progress = dbm.progress{total = cfg.steps, label = "Bernoulli RBM"}
local first_error = m:reconstruction_error(heldout)
rec:step(0, {heldout_error = first_error})
local errors = {first_error}
m:run(cfg.steps, cfg.record_every, function(done)
  local scalars = m:scalars()
  scalars.heldout_error = m:reconstruction_error(heldout)
  scalars.epoch = m:info().epoch
  errors[#errors + 1] = scalars.heldout_error
  rec:step(done, scalars)
  rec:refresh()   -- an evaluation (the held-out error): its plots, drawn in the background
  progress:update(done, {heldout = scalars.heldout_error})
end)
progress:done()

local b, c = m:biases()
dbm.save_safetensors(rec.dir .. "/model.safetensors", {weight = m.weight, visible_bias = b, hidden_bias = c},
  {model = "bernoulli-rbm", hidden = tostring(cfg.hidden), visible = "784"})
local levels = m:levels():totable()
dbm.save_npy(rec.dir .. "/spectra/final.npy", dbm.tensor({levels}, {dtype = "float64"}))   -- one seed × levels

-- Falls steadily: the held-out error at a fifth, two fifths, … of the run.
local marks = {}
for i = 0, 5 do marks[#marks + 1] = errors[1 + math.floor(i * (#errors - 1) / 5 + 0.5)] end
local monotone = true
for i = 2, #marks do monotone = monotone and marks[i] < marks[i - 1] end
local function joined(values, sep)
  local t = {}
  for i, v in ipairs(values) do t[i] = ("%.4f"):format(v) end
  return table.concat(t, sep)
end
local top = {}
for i = #levels, math.max(1, #levels - 4), -1 do top[#top + 1] = ("%.3g"):format(levels[i]) end

-- The summary, before rec:close() writes DONE.
local dir = rec.dir
dbm.write_summary(dir, {
  title = "Bernoulli RBM on Fashion-MNIST",
  settings = ("%d images, %d hidden, %s-%d, α = %g, |B| = %d, %d steps.")
    :format(X:shape()[1], cfg.hidden, cfg.persistent and "PCD" or "CD", cfg.k, cfg.lr, cfg.batch_size, cfg.steps),
  config = cfg,
  notes = {
    ("Held-out reconstruction error (1000 test images) at 0, 1/5, …, 5/5 of the run: %s (%s).")
      :format(joined(marks, ", "), monotone and "falling at every mark" or "not monotone"),
    ("Largest eigenvalues of WWᵀ at the end: %s (median %.3g)."):format(table.concat(top, ", "), levels[(#levels + 1) // 2]),
  },
  files = {"plots/W_flow.png (the eigenvalue flow)", "plots/W_density.png", "plots/metrics.png (errors)"},
})
rec:close()

print(("  held-out reconstruction error: %s"):format(joined(marks, " -> ")))
print(("  largest eigenvalues of W W^T: %s"):format(table.concat(top, ", ")))
print("run directory: " .. dir)
