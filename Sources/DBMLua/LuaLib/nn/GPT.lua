-- nn.GPT(cfg): nanoGPT's character-level transformer (DESIGN §3), with nanoGPT's parameter names:
--   transformer.wte (vocab_size, C)   token embedding, tied to lm_head.weight
--   transformer.wpe (block_size, C)   learned position embedding
--   transformer.h.<i>                 n_layer pre-LayerNorm blocks (nn.Block)
--   transformer.ln_f                  final LayerNorm (weight only when bias = false)
--   lm_head (vocab_size, C)           the output projection (the same tensor as wte)
-- forward(idx [, targets]): idx and targets (B, T) 1-based token ids, T ≤ block_size;
--   x = dropout(wte[idx] + wpe[1..T]); x = block_i(x); logits = lm_head(ln_f(x)) (B, T, vocab_size);
--   returns logits and, with targets, the mean cross-entropy.
-- cfg: vocab_size, block_size, n_layer, n_head, n_embd, dropout (0), bias (false), dtype, generator.
-- Initialisation: every linear and embedding weight N(0, 0.02²), the residual projections
-- N(0, (0.02/√(2·n_layer))²), LayerNorm weights 1.
local dbm = require("dbm")
local Module = require("dbm.nn.Module")
local Embedding = require("dbm.nn.Embedding")
local Dropout = require("dbm.nn.Dropout")
local ModuleList = require("dbm.nn.ModuleList")
local Block = require("dbm.nn.Block")
local LayerNorm = require("dbm.nn.LayerNorm")
local Linear = require("dbm.nn.Linear")

local Transformer = Module:extend("Transformer")   -- the container nanoGPT calls `transformer`

function Transformer:init(cfg)
  local o = {std = 0.02, dtype = cfg.dtype, generator = cfg.generator}
  local block_cfg = {}   -- the blocks' share of the configuration (no vocab_size, block_size)
  for _, key in ipairs(Module.block_keys) do block_cfg[key] = cfg[key] end
  self:child("wte", Embedding(cfg.vocab_size, cfg.n_embd, o))
  self:child("wpe", Embedding(cfg.block_size, cfg.n_embd, o))
  self:child("drop", Dropout(cfg.dropout or 0))
  local blocks = {}
  for i = 1, cfg.n_layer do blocks[i] = Block(block_cfg) end
  self:child("h", ModuleList(blocks))
  self:child("ln_f", LayerNorm(cfg.n_embd, {bias = cfg.bias or false, dtype = cfg.dtype}))
end

local GPT = Module:extend("GPT")

GPT.config_keys = {"vocab_size", "block_size", table.unpack(Module.block_keys)}

-- Checks a configuration's values; returns nil or a message naming the first problem (GPT(cfg) also
-- refuses keys outside GPT.config_keys).
function GPT.check_config(cfg)
  return Module.block_config_problem(cfg, {"vocab_size", "block_size", "n_layer", "n_head", "n_embd"})
end

function GPT:init(cfg)
  if type(cfg) == "table" then Module.check_options("nn.GPT", cfg, GPT.config_keys) end
  local why = GPT.check_config(cfg)
  if why then dbm._fail("nn.GPT: %s", why) end
  self.config = cfg
  self:child("transformer", Transformer(cfg))
  self:child("lm_head", Linear(cfg.n_embd, cfg.vocab_size, {bias = false, std = 0.02, dtype = cfg.dtype, generator = cfg.generator}))
  self.lm_head:tie("weight", self.transformer.wte.weight)   -- weight tying, as nanoGPT
end

function GPT:forward(idx, targets)
  local shape = dbm.is_tensor(idx) and idx:shape() or {#idx, type(idx[1]) == "table" and #idx[1] or nil}
  local B, T = shape[1], shape[2]
  if T == nil or T > self.config.block_size then
    dbm._fail("GPT:forward: expected token ids of shape (B, T) with T <= block_size = %d, got (%s)",
      self.config.block_size, table.concat(shape, ", "))
  end
  local t = self.transformer
  local x = t.drop(t.wte(idx) + t.wpe(dbm.arange(1, T + 1)))   -- (B, T, C)
  for _, block in t.h:ipairs() do x = block(x) end
  local logits = self.lm_head(t.ln_f(x))                         -- (B, T, vocab_size)
  if targets == nil then return logits end
  local V = self.config.vocab_size
  local flat = dbm.is_tensor(targets) and targets:contiguous():reshape(B * T) or targets
  return logits, dbm.F.cross_entropy(logits:reshape(B * T, V), flat)
end

-- The 2-D weights whose spectra an experiment watches, as an array of {name, W} in this order: for each
-- block i (from 0, as nanoGPT) h.<i>.attn.q, .k, .v (the row blocks of the fused c_attn, each (C, C)),
-- h.<i>.attn.c_proj, h.<i>.mlp.c_fc, h.<i>.mlp.c_proj; then wte and wpe. Detached views of the weights,
-- so they follow the training.
function GPT:weight_matrices()
  local C, out = self.config.n_embd, {}
  local function add(name, W) out[#out + 1] = {name, W:detach()} end
  for i, block in self.transformer.h:ipairs() do
    local W = block.attn.c_attn.weight                  -- (3C, C): rows of q, then k, then v
    for j, part in ipairs({"q", "k", "v"}) do add(("h.%d.attn.%s"):format(i - 1, part), W:narrow(1, (j - 1) * C + 1, C)) end
    add(("h.%d.attn.c_proj"):format(i - 1), block.attn.c_proj.weight)
    add(("h.%d.mlp.c_fc"):format(i - 1), block.mlp.c_fc.weight)
    add(("h.%d.mlp.c_proj"):format(i - 1), block.mlp.c_proj.weight)
  end
  add("wte", self.transformer.wte.weight)
  add("wpe", self.transformer.wpe.weight)
  return out
end

-- The parameters nanoGPT counts: all but the position embedding (the tied head counted once).
function GPT:num_parameters(non_embedding)
  local n = Module.num_parameters(self)
  if non_embedding ~= false then n = n - self.transformer.wpe.weight:numel() end
  return n
end

-- nanoGPT's parameter groups: weight decay on every tensor of two or more dimensions (embeddings
-- included), none on the LayerNorm weights and biases.
function GPT:optimizer_groups(weight_decay)
  local decay, no_decay = {}, {}
  for _, p in ipairs(self:parameters()) do table.insert(p:dim() >= 2 and decay or no_decay, p) end
  return {{params = decay, weight_decay = weight_decay}, {params = no_decay, weight_decay = 0}}
end

-- model:generate(ids, n [, {temperature=1, top_k=, generator=}]) -> ids followed by n sampled tokens
-- (a Lua array of 1-based ids; the context is cropped to the last block_size tokens).
function GPT:generate(ids, n, opts)
  opts = Module.check_options("GPT:generate", opts, {"temperature", "top_k", "generator"})
  local temperature, top_k = opts.temperature or 1, opts.top_k
  local g = opts.generator or dbm.default_generator()
  if type(temperature) ~= "number" or temperature <= 0 then dbm._fail("GPT:generate: expected a positive temperature, got %s", tostring(temperature)) end
  local out = {}
  for i, v in ipairs(dbm.is_tensor(ids) and ids:totable() or ids) do out[i] = v end
  if #out == 0 then dbm._fail("GPT:generate: expected at least one token of context, got none") end
  local was_training = self.training
  self:eval()
  dbm.no_grad(function()
    for _ = 1, n do
      local start = math.max(1, #out - self.config.block_size + 1)
      local ctx = {table.unpack(out, start)}
      local logits = self(dbm.tensor({ctx}))                                  -- (1, T, V)
      local last = logits:select(2, #ctx):reshape(self.config.vocab_size):totable()
      local order = {}
      for k = 1, #last do last[k] = last[k] / temperature; order[k] = k end
      if top_k and top_k < #last then
        table.sort(order, function(a, b) return last[a] > last[b] end)
        local cut = last[order[top_k]]
        for k = 1, #last do if last[k] < cut then last[k] = -math.huge end end
      end
      local m = -math.huge
      for k = 1, #last do m = math.max(m, last[k]) end
      local total = 0
      for k = 1, #last do last[k] = math.exp(last[k] - m); total = total + last[k] end
      local u, acc, pick = g:uniform() * total, 0, #last
      for k = 1, #last do
        acc = acc + last[k]
        if u < acc then pick = k; break end
      end
      out[#out + 1] = pick
    end
  end)
  self:train(was_training)
  return out
end

function GPT:extra_repr()
  local c = self.config
  return ("n_layer=%d, n_head=%d, n_embd=%d, block_size=%d, vocab_size=%d"):format(c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size)
end

return GPT
