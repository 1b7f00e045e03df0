-- The summary.md of a nano-GPT run (experiments/nanogpt.lua): the run, the final losses, the spectra at
-- initialisation against the end of training, and a sample. Returns write_summary(dir, seconds, sample, run)
-- with run = {preset=, cfg=, model=, last_losses=}.

-- The first and last recorded scalars of each matrix and diagnostic, from observables.jsonl.
local function first_and_last(dir)
  local first, last, names = {}, {}, {}
  for line in io.lines(dir .. "/observables.jsonl") do
    local o = dbm.json_decode(line)
    if not first[o.matrix] then first[o.matrix], last[o.matrix] = {step = o.step}, {}; names[#names + 1] = o.matrix end
    if o.step == first[o.matrix].step then first[o.matrix][o.diagnostic] = o end
    if not last[o.matrix].step or o.step > last[o.matrix].step then last[o.matrix] = {step = o.step} end
    last[o.matrix][o.diagnostic] = o
  end
  return first, last, names
end

local function write_summary(dir, seconds, sample, run)
  local preset, cfg, model, last_losses = run.preset, run.cfg, run.model, run.last_losses
  local first, last, names = first_and_last(dir)
  local function get(t, diag, key) return t and t[diag] and t[diag][key] end
  local function fmt(v, f) return v == nil and "–" or (f or "%.3g"):format(v) end
  local rows, left = {}, {}
  for _, name in ipairs(names) do
    for _, snap in ipairs({first[name], last[name]}) do
      local edge = get(snap, "mp", "mp_edge_plus")
      local lmax = get(snap, "spectrum", "lambda_max")
      rows[#rows + 1] = {name, snap.step, fmt(get(snap, "mp", "mp_ks")), fmt(get(snap, "mp", "mp_outliers"), "%d"),
        fmt(edge and lmax and lmax / edge, "%.2f"), fmt(get(snap, "powerlaw", "alpha"), "%.2f"), fmt(get(snap, "spacing", "r_mean"), "%.3f")}
    end
    local n0, n1 = get(first[name], "mp", "mp_outliers"), get(last[name], "mp", "mp_outliers")
    if n1 and n0 and n1 > n0 then left[#left + 1] = ("%s (%d outliers)"):format(name, n1) end
  end
  dbm.write_summary(dir, {
    title = "nano-GPT run",
    settings = ("Preset `%s`: %d layers, %d heads, n_embd %d, block %d, batch %d, %d iterations, lr %g → %g, dropout %g; %.2fM parameters; %.0f s of training."):format(
      preset, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size, cfg.max_iters, cfg.lr, cfg.min_lr,
      cfg.dropout, model:num_parameters() / 1e6, seconds),
    config = cfg,
    notes = ("Final losses: train %.4f, validation %.4f."):format(last_losses.train, last_losses.val),
    sections = {
      {heading = "Spectra: initialisation against the end of training",
       text = "X = WᵀW (the smaller Gram matrix) of each weight. MP: the Marchenko–Pastur law fitted to the bulk; KS its\n"
         .. "Kolmogorov–Smirnov distance; outliers: levels beyond the MP edge plus a Tracy–Widom margin; λ_max/x₊:\n"
         .. "the largest level over the MP edge; α: the tail exponent of p(λ) ∝ λ^−α; ⟨r⟩: the mean spacing ratio\n"
         .. "(GOE 0.531, Poisson 0.386).",
       table = {header = {"matrix", "step", "MP KS", "outliers", "λ_max/x₊", "α", "⟨r⟩"}, rows = rows},
       notes = #left > 0 and ("Matrices that left the MP law (more outliers at the end than at initialisation): " .. table.concat(left, ", ") .. ".")
         or "No matrix has more MP outliers at the end than at initialisation."},
      {heading = "Sample", code = sample},
    },
  })
end

return write_summary
