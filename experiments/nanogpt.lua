-- The nano-GPT experiment (DESIGN §3; arXiv:2411.13512): a character-level GPT trained on Shakespeare
-- with AdamW, and the spectra of its weight matrices from initialisation (Marchenko–Pastur) to the end
-- of training (outliers, a heavy tail, spacings still GOE-like).
--
--   dbm-lua experiments/nanogpt.lua                      -- the `cpu` preset: a few minutes on two cores
--   dbm-lua experiments/nanogpt.lua --preset=paper       -- the paper's size (hours)
--   dbm-lua experiments/nanogpt.lua --max_iters=200 --data=other.txt --out_dir=runs/mine
--   dbm-lua experiments/nanogpt.lua --resume=runs/nanogpt-20261129-101500   -- continue a run
--
-- The run directory (DESIGN §8): config.json, metrics.jsonl (step, time, train_loss, val_loss, lr),
-- observables.jsonl and spectra/ for every 2-D weight (the query, key and value blocks of each fused
-- attention projection as h.<i>.attn.q/k/v), model.safetensors and ckpt.safetensors at each evaluation
-- (nanoGPT's names: they load into nanoGPT's PyTorch code and into `dbm-lua analyze`), plots/ and
-- summary.md.
local nn = dbm.nn

-- ---------------------------------------------------------------- configuration

local presets = {
  cpu = {n_layer = 4, n_head = 4, n_embd = 128, block_size = 64, batch_size = 12, max_iters = 2000,
         lr = 1e-3, min_lr = 1e-4, warmup_iters = 100, dropout = 0.0},
  paper = {n_layer = 6, n_head = 6, n_embd = 384, block_size = 256, batch_size = 64, max_iters = 5000,
           lr = 1e-3, min_lr = 1e-4, warmup_iters = 100, dropout = 0.2},
}
local common = {preset = "cpu", weight_decay = 0.1, grad_clip = 1.0, eval_interval = 250, eval_iters = 200,
                spectra_every = 100, seed = 1337, data = "", out_dir = "", resume = "", sample_tokens = 500,
                temperature = 0.8, top_k = 40}

local function fail(fmt, ...)
  io.stderr:write("nanogpt: ", fmt:format(...), "\n")
  os.exit(1)
end

-- The preset decides the defaults of the other keys, so it is read first; a resumed run starts from the
-- configuration it was started with (its config.json), and arguments given again override it.
local preset, resume = "cpu", nil
for _, a in ipairs(arg or {}) do
  preset = a:match("^%-%-preset=(.*)$") or preset
  resume = a:match("^%-%-resume=(.+)$") or resume
end
local defaults = {}
for k, v in pairs(common) do defaults[k] = v end
if resume then
  local f = io.open(resume .. "/config.json")
  if not f then fail("--resume=%s: expected a run directory with a config.json, found none", resume) end
  local original = dbm.json_decode(f:read("a")).config or {}
  f:close()
  preset = original.preset or preset
  if not presets[preset] then fail("--resume=%s: its config.json names an unknown preset '%s'", resume, tostring(preset)) end
  for k, v in pairs(presets[preset]) do defaults[k] = v end
  for k, v in pairs(original) do
    if defaults[k] ~= nil and type(v) == type(defaults[k]) then
      defaults[k] = math.type(defaults[k]) == "integer" and math.tointeger(v) or v
    end
  end
  defaults.resume = ""
elseif presets[preset] then
  for k, v in pairs(presets[preset]) do defaults[k] = v end
else
  fail("unknown preset '%s' (expected cpu or paper)", preset)
end
local cfg = dbm.config(defaults)
for _, key in ipairs({"n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters", "eval_interval",
                      "eval_iters", "spectra_every"}) do
  if cfg[key] < 1 then fail("--%s: expected a positive integer, got %d", key, cfg[key]) end
end
if cfg.n_embd % cfg.n_head ~= 0 then fail("--n_embd=%d is not divisible by --n_head=%d", cfg.n_embd, cfg.n_head) end
if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.min_lr > cfg.lr then fail("expected 0 <= min_lr <= lr and lr > 0, got lr = %g, min_lr = %g", cfg.lr, cfg.min_lr) end
if cfg.warmup_iters < 0 or cfg.warmup_iters >= cfg.max_iters then
  fail("expected 0 <= warmup_iters < max_iters, got --warmup_iters=%d with --max_iters=%d", cfg.warmup_iters, cfg.max_iters)
end
if cfg.dropout < 0 or cfg.dropout >= 1 then fail("--dropout: expected a probability in [0, 1), got %g", cfg.dropout) end

-- ---------------------------------------------------------------- data

local here = (arg and arg[0] or ""):match("^(.*)/experiments/[^/]*$") or "."
local path = cfg.data ~= "" and cfg.data or here .. "/data/shakespeare/input.txt"
local ok, ds = pcall(dbm.text_dataset, path)
if not ok then
  fail("cannot read the text: %s%s", tostring(ds):gsub("^.-dbm%.text_dataset: ", ""),
    cfg.data == "" and " (scripts/setup fetches the Shakespeare corpus)" or "")
end
for _, split in ipairs({"train", "val"}) do
  if cfg.block_size >= ds:size(split) then
    fail("--block_size=%d is larger than the %s split of %s (%d characters)", cfg.block_size, split, path, ds:size(split))
  end
end

-- ---------------------------------------------------------------- model, optimizer, run directory

dbm.seed(cfg.seed)
local data_rng = dbm.generator(cfg.seed, 1)   -- batches; the default generator drives init and dropout
local model = nn.GPT{vocab_size = ds:vocab_size(), block_size = cfg.block_size, n_layer = cfg.n_layer,
                     n_head = cfg.n_head, n_embd = cfg.n_embd, dropout = cfg.dropout, bias = false}
local opt = dbm.optim.AdamW(model:optimizer_groups(cfg.weight_decay), {lr = cfg.lr, betas = {0.9, 0.99}, eps = 1e-8,
  schedule = dbm.optim.cosine{lr = cfg.lr, warmup = cfg.warmup_iters, total = cfg.max_iters, min_lr = cfg.min_lr}})
local generators = {default = dbm.default_generator(), data = data_rng}
local metadata = {n_layer = cfg.n_layer, n_head = cfg.n_head, n_embd = cfg.n_embd, block_size = cfg.block_size,
                  vocab_size = ds:vocab_size(), vocab = ds:vocab()}

local start = 0
local out_dir = cfg.out_dir ~= "" and cfg.out_dir or nil
if cfg.resume ~= "" then
  out_dir = cfg.resume
  local ck = cfg.resume .. "/ckpt.safetensors"
  local loaded, step = pcall(dbm.load_checkpoint, ck, {model = model, optimizer = opt, generators = generators})
  if not loaded then fail("cannot resume from %s: %s", cfg.resume, tostring(step):gsub("^.-dbm%.load_checkpoint: ", "")) end
  start = step
end

local rec = dbm.recorder{config = cfg, out_dir = out_dir, name = "nanogpt", resume = cfg.resume ~= "" and start or nil}
local C = cfg.n_embd
local watch = {diagnostics = {"spectrum", "mp", "spacing", "powerlaw", "norms"}, every = cfg.spectra_every}
for i = 0, cfg.n_layer - 1 do
  local block = model.transformer.h[i + 1]
  local W = block.attn.c_attn.weight                  -- (3C, C): rows of q, then k, then v
  for j, part in ipairs({"q", "k", "v"}) do
    rec:watch(("h.%d.attn.%s"):format(i, part), W:narrow(1, (j - 1) * C + 1, C):detach(), watch)
  end
  rec:watch(("h.%d.attn.c_proj"):format(i), block.attn.c_proj.weight:detach(), watch)
  rec:watch(("h.%d.mlp.c_fc"):format(i), block.mlp.c_fc.weight:detach(), watch)
  rec:watch(("h.%d.mlp.c_proj"):format(i), block.mlp.c_proj.weight:detach(), watch)
end
rec:watch("wte", model.transformer.wte.weight:detach(), watch)
rec:watch("wpe", model.transformer.wpe.weight:detach(), watch)

local function save(step)
  dbm.save_checkpoint(rec.dir .. "/model.safetensors", {model = model, metadata = metadata, step = step})
  dbm.save_checkpoint(rec.dir .. "/ckpt.safetensors", {model = model, optimizer = opt, generators = generators,
    metadata = metadata, step = step})
end

-- Mean loss over eval_iters random batches of each split, without a graph and without dropout.
local function estimate_loss()
  local out = {}
  model:eval()
  dbm.no_grad(function()
    for _, split in ipairs({"train", "val"}) do
      local total = 0
      for _ = 1, cfg.eval_iters do
        local x, y = ds:batch(split, cfg.batch_size, cfg.block_size, {generator = data_rng})
        local _, loss = model(x, y)
        total = total + loss:item()
      end
      out[split] = total / cfg.eval_iters
    end
  end)
  model:train()
  return out
end

-- ---------------------------------------------------------------- summary.md

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

local last_losses = {}   -- the latest evaluation

local function write_summary(dir, seconds, sample)
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

-- ---------------------------------------------------------------- training

print(("nanogpt: %s preset, %.2fM parameters, %d characters of text (%d distinct), run directory %s")
  :format(preset, model:num_parameters() / 1e6, ds:size(), ds:vocab_size(), rec.dir))

-- A checkpoint holds the state at the start of an iteration (before its evaluation), so a resumed run
-- redoes that iteration exactly as the uninterrupted run did. Ctrl-C or an error: the parameters change
-- only inside opt:step(), so the state at the start of the current iteration is the parameters as they
-- are when no step was taken in it yet (the generators rewound to their states at its start), else the
-- start of the next iteration.
local finished, iteration, rng_at_start = false, start, nil
dbm.on_exit(function()
  if finished then return end
  if opt:step_count() == iteration and rng_at_start then
    for name, g in pairs(generators) do g:set_state(rng_at_start[name]) end
  end
  local ok_save, err = pcall(save, opt:step_count())
  io.stderr:write(ok_save and ("nanogpt: interrupted; checkpoint of step %d in %s (continue with --resume=%s)\n")
    :format(opt:step_count(), rec.dir, rec.dir) or ("nanogpt: could not write the checkpoint: " .. tostring(err) .. "\n"))
end)

local progress = dbm.progress{total = cfg.max_iters, label = "train"}
local t_train = dbm.clock()
for step = start, cfg.max_iters do
  iteration = step
  rng_at_start = {}
  for name, g in pairs(generators) do rng_at_start[name] = g:state() end
  local scalars = nil
  if step % cfg.eval_interval == 0 or step == cfg.max_iters then
    save(step)
    last_losses = estimate_loss()
    scalars = opt:lr_metrics()   -- lr: the rate of the update from this step, as the optimizer applies it
    scalars.train_loss, scalars.val_loss = last_losses.train, last_losses.val
  end
  rec:step(step, scalars)   -- records the matrices due at this step (step 0: initialisation)
  if step == cfg.max_iters then break end
  local x, y = ds:batch("train", cfg.batch_size, cfg.block_size, {generator = data_rng})
  local _, loss = model(x, y)
  loss:backward()
  dbm.optim.clip_grad_norm(model, cfg.grad_clip)
  opt:step()
  opt:zero_grad()
  progress:update(step + 1, {loss = loss:item(), val = last_losses.val})
end
progress:done()
finished = true
local seconds = dbm.clock() - t_train

-- ---------------------------------------------------------------- sample, summary

local sample = ds:decode(model:generate(ds:encode("\n"):totable(), cfg.sample_tokens,
  {temperature = cfg.temperature, top_k = cfg.top_k}))
print(("step %d: train loss %.4f, val loss %.4f (%.1f s)"):format(cfg.max_iters, last_losses.train, last_losses.val, seconds))
print("sample:\n" .. sample)

write_summary(rec.dir, seconds, sample)   -- before rec:close(), which writes DONE last
local dir = rec:close()
print("run directory: " .. dir)
print("plots: " .. dir .. "/plots/ (metrics.png: losses; h.<i>.attn.k_density.png: KᵀK at init and at the end with the MP law)")
