-- Train N steps, checkpoint, resume in fresh objects, train M more: bitwise the same as N + M steps
-- without a break. A small GPT (embeddings, two blocks with dropout, a head) in float32, AdamW with
-- parameter groups, a warm-up + cosine schedule and gradient clipping; batches drawn from a generator.
-- Run as a test in one process (no arguments), or in two processes by CheckpointTests:
--   dbm-lua resume.lua first <ckpt> / dbm-lua resume.lua resume <ckpt> <out.npy> / full <out.npy>
local nn = dbm.nn
local V, C, T, B, N, M = 11, 16, 6, 3, 6, 5
local cfg = {n_embd = C, n_head = 2, n_layer = 2, dropout = 0.1}

local Tiny = nn.Module:extend("Tiny")
function Tiny:init()
  self:child("wte", nn.Embedding(V, C, {std = 0.02}))
  self:child("wpe", nn.Embedding(T, C, {std = 0.02}))
  self:child("h", nn.ModuleList({nn.Block(cfg), nn.Block(cfg)}))
  self:child("ln_f", nn.LayerNorm(C, {bias = false}))
  self:child("lm_head", nn.Linear(C, V, {bias = false, std = 0.02}))
end
function Tiny:forward(ids)
  local x = self.wte(ids) + self.wpe(dbm.arange(1, T + 1))
  for _, block in self.h:ipairs() do x = block(x) end
  return self.lm_head(self.ln_f(x))
end

-- A fresh run: model initialised from seed, its optimizer and data generator.
local function setup(seed)
  dbm.seed(seed)
  local model = Tiny()
  local decay, no_decay = {}, {}
  for _, p in ipairs(model:parameters()) do table.insert(p:dim() >= 2 and decay or no_decay, p) end
  local opt = dbm.optim.AdamW({{params = decay, weight_decay = 0.1}, {params = no_decay, weight_decay = 0}},
    {lr = 3e-3, betas = {0.9, 0.95}, schedule = dbm.optim.cosine{lr = 3e-3, warmup = 3, total = N + M, min_lr = 3e-4}})
  return {model = model, opt = opt, data = dbm.generator(seed, 7)}
end

local function train(run, steps, losses)
  for _ = 1, steps do
    local ids = run.data:rand(B, T + 1, {low = 1, high = V + 1}):clamp(1, V)
    local values = ids:totable()
    for i = 1, B do for j = 1, T + 1 do values[i][j] = math.floor(values[i][j]) end end
    local all = dbm.tensor(values)
    local x, y = all:narrow(2, 1, T), all:narrow(2, 2, T)
    local loss = dbm.F.cross_entropy(run.model(x):reshape(B * T, V), y:contiguous():reshape(B * T))
    loss:backward()
    dbm.optim.clip_grad_norm(run.model, 1.0)
    run.opt:step()
    run.opt:zero_grad()
    losses[#losses + 1] = loss:item()
  end
end

local function save(run, path)
  dbm.save_checkpoint(path, {model = run.model, optimizer = run.opt, step = run.opt:step_count(),
    generators = {default = dbm.default_generator(), data = run.data}, metadata = {note = "resume test"}})
end

local function resume(path)
  local run = setup(99)   -- different initial weights and streams: everything must come from the file
  local step, meta = dbm.load_checkpoint(path, {model = run.model, optimizer = run.opt,
    generators = {default = dbm.default_generator(), data = run.data}})
  assert(step == N and meta.note == "resume test" and meta.format == "dbm-lua checkpoint", tostring(step))
  return run
end

-- All parameters flattened into one float64 vector (float32 values are exact in it).
local function flat(model)
  local parts = {}
  for _, p in ipairs(model:parameters()) do parts[#parts + 1] = p:detach():double():reshape(p:numel()) end
  local n = 0
  for _, t in ipairs(parts) do n = n + t:numel() end
  local out, k = dbm.zeros(n, {dtype = "float64"}), 0
  for _, t in ipairs(parts) do out:narrow(1, k + 1, t:numel()):copy(t); k = k + t:numel() end
  return out
end

local mode = arg and arg[1]
if mode == "full" then
  local run = setup(1); train(run, N + M, {}); flat(run.model):save(arg[2])
elseif mode == "first" then
  local run = setup(1); train(run, N, {}); save(run, arg[2])
elseif mode == "resume" then
  local run = resume(arg[2]); train(run, M, {}); flat(run.model):save(arg[3])
else
  local full_losses, part_losses = {}, {}
  local full = setup(1)
  train(full, N + M, full_losses)
  local first = setup(1)
  train(first, N, part_losses)
  local path = os.tmpname()
  save(first, path)
  first = nil
  collectgarbage()
  local second = resume(path)
  train(second, M, part_losses)
  os.remove(path)
  for i = 1, N + M do
    assert(full_losses[i] == part_losses[i], ("step %d: loss %.9g without a break, %.9g resumed"):format(i, full_losses[i], part_losses[i]))
  end
  local a, b = flat(full.model), flat(second.model)
  local diff = (a - b):abs():max()
  assert(diff == 0, "parameters differ after resuming by up to " .. diff)
  assert(second.opt:step_count() == N + M and second.opt:lr() == full.opt:lr())
  print(("resume.lua: %d + %d steps bitwise equal to %d steps (loss %.4f -> %.4f)"):format(N, M, N + M, full_losses[1], full_losses[N + M]))
end
