-- The nano-GPT experiment (DESIGN §3; arXiv:2411.13512): a character-level GPT trained on Shakespeare
-- with AdamW, and the spectra of its weight matrices from initialisation (Marchenko–Pastur) to the end
-- of training (outliers, a heavy tail, spacings still GOE-like).
--
--   dbm-lua experiments/nanogpt.lua                      -- the `cpu` preset: a few minutes on two cores
--   dbm-lua experiments/nanogpt.lua --preset=paper       -- the paper's size (hours)
--   dbm-lua experiments/nanogpt.lua --max_iters=200 --data=other.txt --out_dir=runs/mine
--   dbm-lua experiments/nanogpt.lua --resume=runs/nanogpt-20261129-101500   -- continue a run
--   dbm-lua experiments/nanogpt.lua --keep_checkpoints   -- also checkpoints/ckpt_<step>.safetensors per evaluation
--
-- The run directory (DESIGN §8): config.json, metrics.jsonl (step, time, train_loss, val_loss, lr),
-- observables.jsonl and spectra/ for every 2-D weight (the query, key and value blocks of each fused
-- attention projection as h.<i>.attn.q/k/v), model.safetensors and ckpt.safetensors at each evaluation
-- (nanoGPT's names: they load into nanoGPT's PyTorch code and `dbm-lua analyze`), plots/, summary.md; with
-- --keep_checkpoints also checkpoints/ckpt_<step>.safetensors, the weights at each evaluation (as
-- model.safetensors), a series for `dbm-lua analyze checkpoints/*.safetensors --out_dir DIR --split-qkv`.
local write_summary = dofile((arg and arg[0] or ""):gsub("%.lua$", "") .. "/summary.lua")   -- nanogpt/summary.lua

-- ---------------------------------------------------------------- configuration

local positive = {positive = true}
local cfg = dbm.config({
  preset = "cpu", weight_decay = 0.1, grad_clip = 1.0, eval_interval = 250, eval_iters = 200, spectra_every = 100,
  seed = 1337, data = "", out_dir = "", sample_tokens = 500, temperature = 0.8, top_k = 40, keep_checkpoints = false,
}, {
  presets = {   -- --preset=NAME sets these keys; arguments given with it override them
    cpu = {n_layer = 4, n_head = 4, n_embd = 128, block_size = 64, batch_size = 12, max_iters = 2000,
           lr = 1e-3, min_lr = 1e-4, warmup_iters = 100, dropout = 0.0},
    paper = {n_layer = 6, n_head = 6, n_embd = 384, block_size = 256, batch_size = 64, max_iters = 5000,
             lr = 1e-3, min_lr = 1e-4, warmup_iters = 100, dropout = 0.2},
  },
  resume = true,   -- --resume=RUN_DIR: the run's config.json, then the arguments given again
  rules = {
    n_layer = positive, n_head = positive, block_size = positive, batch_size = positive, max_iters = positive,
    eval_interval = positive, eval_iters = positive, spectra_every = positive,
    n_embd = {positive = true, check = function(C, c)
      return C % c.n_head ~= 0 and ("--n_embd=%d is not divisible by --n_head=%d"):format(C, c.n_head) end},
    lr = {check = function(lr, c) return (lr <= 0 or c.min_lr < 0 or c.min_lr > lr)
      and ("expected 0 <= min_lr <= lr and lr > 0, got lr = %g, min_lr = %g"):format(lr, c.min_lr) end},
    warmup_iters = {check = function(w, c) return (w < 0 or w >= c.max_iters)
      and ("expected 0 <= warmup_iters < max_iters, got --warmup_iters=%d with --max_iters=%d"):format(w, c.max_iters) end},
    dropout = {min = 0, below = 1, what = "a probability in [0, 1)"},
  },
})

local function fail(fmt, ...) io.stderr:write("nanogpt: ", fmt:format(...), "\n"); os.exit(1) end

-- ---------------------------------------------------------------- data

local here = (arg and arg[0] or ""):match("^(.*)/experiments/[^/]*$") or "."   -- the project
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
local model = dbm.nn.GPT{vocab_size = ds:vocab_size(), block_size = cfg.block_size, n_layer = cfg.n_layer,
                          n_head = cfg.n_head, n_embd = cfg.n_embd, dropout = cfg.dropout, bias = false}
local opt = dbm.optim.AdamW(model:optimizer_groups(cfg.weight_decay), {lr = cfg.lr, betas = {0.9, 0.99}, eps = 1e-8,
  schedule = dbm.optim.cosine{lr = cfg.lr, warmup = cfg.warmup_iters, total = cfg.max_iters, min_lr = cfg.min_lr}})
local generators = {default = dbm.default_generator(), data = data_rng}
local metadata = {n_layer = cfg.n_layer, n_head = cfg.n_head, n_embd = cfg.n_embd, block_size = cfg.block_size,
                  vocab_size = ds:vocab_size(), vocab = ds:vocab()}

local start = 0   -- the first step: 0, or the step of the checkpoint resumed from
if cfg.resume ~= "" then
  local loaded, step = pcall(dbm.load_checkpoint, cfg.resume .. "/ckpt.safetensors", {model = model, optimizer = opt, generators = generators})
  start = loaded and step or fail("cannot resume from %s: %s", cfg.resume, tostring(step):gsub("^.-dbm%.load_checkpoint: ", ""))
end
local rec = dbm.recorder{config = cfg, out_dir = cfg.resume ~= "" and cfg.resume or cfg.out_dir ~= "" and cfg.out_dir or nil,
                         name = "nanogpt", resume = cfg.resume ~= "" and start or nil}

-- The spectra of every 2-D weight every spectra_every steps, with these diagnostics (plugins/).
local watch = {diagnostics = {"spectrum", "mp", "spacing", "powerlaw", "norms"}, every = cfg.spectra_every}
for _, m in ipairs(model:weight_matrices()) do rec:watch(m[1], m[2], watch) end

local function save(step)
  dbm.save_checkpoint(rec.dir .. "/model.safetensors", {model = model, metadata = metadata, step = step})
  dbm.save_checkpoint(rec.dir .. "/ckpt.safetensors", {model = model, optimizer = opt, generators = generators,
    metadata = metadata, step = step})
end

-- The weights of one evaluation kept for good (--keep_checkpoints): a checkpoint series of the run.
local function keep(step)
  dbm.mkdir(rec.dir .. "/checkpoints")
  dbm.save_checkpoint(("%s/checkpoints/ckpt_%d.safetensors"):format(rec.dir, step), {model = model, metadata = metadata, step = step})
end

-- Mean loss over eval_iters random batches of each split, without a graph and without dropout.
local function estimate_loss()
  local out = {}
  model:eval()
  dbm.no_grad(function()
    for _, split in ipairs({"train", "val"}) do
      local total = 0
      for _ = 1, cfg.eval_iters do
        local _, loss = model(ds:batch(split, cfg.batch_size, cfg.block_size, {generator = data_rng}))
        total = total + loss:item()
      end
      out[split] = total / cfg.eval_iters
    end
  end)
  model:train()
  return out
end

-- ---------------------------------------------------------------- training

print(("nanogpt: %s preset, %.2fM parameters, %d characters of text (%d distinct), run directory %s")
  :format(cfg.preset, model:num_parameters() / 1e6, ds:size(), ds:vocab_size(), rec.dir))

-- A checkpoint holds the state at the start of an iteration (before its evaluation), so a resumed run
-- redoes that iteration exactly as the uninterrupted run did; Ctrl-C or an error writes one too.
local guard = dbm.checkpoint_on_exit{save = save, optimizer = opt, generators = generators, name = "nanogpt", dir = rec.dir}
local last_losses = {}   -- the latest evaluation
local progress = dbm.progress{total = cfg.max_iters, label = "train"}
local t_train = dbm.clock()
for step = start, cfg.max_iters do
  guard:iteration(step)
  local scalars = nil
  if step % cfg.eval_interval == 0 or step == cfg.max_iters then
    save(step)
    if cfg.keep_checkpoints then keep(step) end
    last_losses = estimate_loss()
    scalars = opt:lr_metrics()   -- lr: the rate of the update from this step, as the optimizer applies it
    scalars.train_loss, scalars.val_loss = last_losses.train, last_losses.val
  end
  rec:step(step, scalars)   -- records the matrices due at this step (step 0: initialisation)
  if scalars then rec:refresh() end   -- plots and index.html of each evaluation, drawn in the background
  if step == cfg.max_iters then break end
  local _, loss = model(ds:batch("train", cfg.batch_size, cfg.block_size, {generator = data_rng}))
  loss:backward()
  dbm.optim.clip_grad_norm(model, cfg.grad_clip)
  opt:step()
  opt:zero_grad()
  progress:update(step + 1, {loss = loss:item(), val = last_losses.val})
end
progress:done()
guard:finish()
local seconds = dbm.clock() - t_train

-- ---------------------------------------------------------------- sample, summary

local sample = ds:decode(model:generate(ds:encode("\n"):totable(), cfg.sample_tokens, {temperature = cfg.temperature, top_k = cfg.top_k}))
print(("step %d: train loss %.4f, val loss %.4f (%.1f s)"):format(cfg.max_iters, last_losses.train, last_losses.val, seconds))
print("sample:\n" .. sample)
write_summary(rec.dir, seconds, sample, {preset = cfg.preset, cfg = cfg, model = model, last_losses = last_losses})
local dir = rec:close()   -- writes DONE last
print("run directory: " .. dir)
print("plots: " .. dir .. "/plots/ (metrics.png: losses; h.<i>.attn.k_density.png: KᵀK at init and at the end with the MP law)")
