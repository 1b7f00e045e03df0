-- dbm.qkv: a fused attention projection split into its query, key and value matrices (`analyze --split-qkv`).
--
--   Q.split(name, W, config) -> {{name = ..., tensor = ...}, ...}
--
-- A tensor whose name is not a fused projection comes back alone and unchanged. A fused projection
-- `<module>.<fused>.weight` comes back as `<module>.q`, `<module>.k`, `<module>.v` (so nanoGPT's
-- transformer.h.0.attn.c_attn.weight gives transformer.h.0.attn.q/k/v, the recorder's h.0.attn.q/k/v);
-- the parts keep the file's orientation (GPT-2's Conv1D parts are (in, out)), which changes no level.
-- A fused name whose layout is not one of Q.layouts (an unknown model type, or a shape the config does not
-- explain) raises an error: it is never guessed.
--
-- `config` is the model's configuration: config.json's keys (model_type, num_attention_heads, ...) or
-- our checkpoints' metadata (n_head, n_embd; numbers as strings). Q.model_config builds it.
local dbm = require("dbm")
local fail = dbm._fail

local Q = {}

-- The layouts that exist, as data. fused: the projection's name in <module>.<fused>.weight;
-- model_types: config.json's model_type values it belongs to (`none`: a file without one, i.e. nanoGPT's own
-- checkpoints and ours, or a bare GPT-2 state dict); when: config keys that must hold; axis: 1 when q, k, v
-- are stacked along the rows (nn.Linear's (out, in)), 2 along the columns (GPT-2's Conv1D (in, out));
-- arrangement:
--   blocks     q | k | v one after another, of n_head·hd, n_kv·hd and n_kv·hd (hd = head size)
--   per_head   for each head its q, k and v (hd each): fused_qkv.view(..., n_head, 3, hd)
--   per_group  for each key/value head its n_head/n_kv query heads, then its k, then its v:
--              fused_qkv.view(..., n_kv, n_head/n_kv + 2, hd)
-- kv_heads = 1: multi-query attention, one key/value head whatever the config says.
local none = ""
Q.layouts = {
  {name = "nanoGPT c_attn (3C×C, rows q | k | v)", fused = "c_attn", model_types = {none, "nanogpt"},
   axis = 1, arrangement = "blocks"},
  {name = "GPT-2 Conv1D c_attn (C×3C, columns q | k | v)", fused = "c_attn", model_types = {none, "gpt2"},
   axis = 2, arrangement = "blocks"},
  {name = "GPTBigCode c_attn, multi-query (rows q | k | v of C, hd, hd)", fused = "c_attn",
   model_types = {"gpt_bigcode"}, when = {multi_query = true}, axis = 1, arrangement = "blocks", kv_heads = 1},
  {name = "GPTBigCode c_attn, multi-head (interleaved per head, unlike GPT-2)", fused = "c_attn",
   model_types = {"gpt_bigcode"}, when = {multi_query = false}, axis = 1, arrangement = "per_head"},
  {name = "GPT-NeoX / BLOOM query_key_value (interleaved per head)", fused = "query_key_value",
   model_types = {"gpt_neox", "bloom"}, axis = 1, arrangement = "per_head"},
  {name = "Falcon query_key_value, new decoder architecture (per key/value group)", fused = "query_key_value",
   model_types = {"falcon"}, when = {new_decoder_architecture = true}, axis = 1, arrangement = "per_group"},
  {name = "Falcon query_key_value, multi-query (rows q | k | v of C, hd, hd)", fused = "query_key_value",
   model_types = {"falcon"}, when = {new_decoder_architecture = false, multi_query = true}, axis = 1, arrangement = "blocks", kv_heads = 1},
  {name = "Falcon query_key_value, multi-head (interleaved per head)", fused = "query_key_value",
   model_types = {"falcon"}, when = {new_decoder_architecture = false, multi_query = false}, axis = 1, arrangement = "per_head"},
  {name = "Phi-3 qkv_proj (grouped-query, rows q | k | v)", fused = "qkv_proj", model_types = {"phi3"},
   axis = 1, arrangement = "blocks"},
  {name = "InternLM2 wqkv (per key/value group)", fused = "wqkv", model_types = {"internlm2"},
   axis = 1, arrangement = "per_group"},
}

-- Names of fused projections of any framework: such a tensor matching no layout is refused, not analysed whole.
Q.fused_names = {"c_attn", "query_key_value", "qkv_proj", "wqkv", "Wqkv", "qkv", "in_proj"}

-- The config keys that give each size, in the order they are looked up (Hugging Face names, GPT-2's and ours).
local keys = {
  hidden = {"hidden_size", "n_embd", "d_model"},
  heads = {"num_attention_heads", "n_head", "n_heads"},
  kv_heads = {"num_key_value_heads", "num_kv_heads", "n_head_kv"},
  head_dim = {"head_dim"},
}

local function config_number(config, list)
  for _, k in ipairs(list) do
    local v = math.tointeger(tonumber(config[k]))
    if v then return v, k end
  end
  return nil
end

-- The defaults of the flags in `when` where config.json leaves them out (the model's configuration class in
-- Hugging Face's transformers); any other missing flag is false.
Q.flag_defaults = {falcon = {multi_query = true}, gpt_bigcode = {multi_query = true}}

local function flag(config, model_type, key)
  local v = config[key]
  if v == nil then v = (Q.flag_defaults[model_type] or {})[key] end
  return v == true or v == "true"
end

local function matches(layout, fused, model_type, config)
  if fused ~= layout.fused then return false end
  local typed = false
  for _, t in ipairs(layout.model_types) do typed = typed or t == model_type end
  if not typed then return false end
  for key, want in pairs(layout.when or {}) do
    if flag(config, model_type, key) ~= want then return false end
  end
  return true
end

-- The sizes of one layout for a fused tensor of `shape`: {q, k, v} along the fused axis and the head size,
-- or nil and why the shape does not fit.
local function part_sizes(layout, shape, config)
  local fused, other = shape[layout.axis], shape[3 - layout.axis]
  local hidden = config_number(config, keys.hidden) or other
  if other ~= hidden then return nil, ("the other axis has %d, the config's hidden size is %d"):format(other, hidden) end
  local heads, heads_key = config_number(config, keys.heads)
  local kv = layout.kv_heads or config_number(config, keys.kv_heads) or heads
  if layout.arrangement == "per_head" then kv = heads end   -- one k and one v per head, by construction
  if heads == nil then
    if layout.arrangement ~= "blocks" or layout.kv_heads then return nil, "the number of heads is not in the config (num_attention_heads or n_head)" end
    if fused ~= 3 * hidden then return nil, ("expected %d = 3 × %d along the fused axis, got %d"):format(3 * hidden, hidden, fused) end
    return {hidden, hidden, hidden}
  end
  local hd = config_number(config, keys.head_dim) or (hidden % heads == 0 and hidden // heads)
  if not hd or heads < 1 or kv < 1 or heads % kv ~= 0 then
    return nil, ("%s = %d does not divide the hidden size %d into heads, or the %d key/value heads into groups"):format(heads_key, heads, hidden, kv)
  end
  local want = (heads + 2 * kv) * hd
  if fused ~= want then
    return nil, ("expected %d = (%d + 2·%d heads) × %d along the fused axis, got %d"):format(want, heads, kv, hd, fused)
  end
  return {heads * hd, kv * hd, kv * hd}, hd, heads, kv
end

-- The indices (1-based) along the fused axis of q, k and v.
local function part_indices(arrangement, sizes, hd, heads, kv)
  local idx = {{}, {}, {}}
  local function take(part, from, n) for i = from, from + n - 1 do idx[part][#idx[part] + 1] = i end end
  if arrangement == "blocks" then
    take(1, 1, sizes[1]); take(2, sizes[1] + 1, sizes[2]); take(3, sizes[1] + sizes[2] + 1, sizes[3])
  elseif arrangement == "per_head" then
    for h = 0, heads - 1 do for p = 1, 3 do take(p, (3 * h + p - 1) * hd + 1, hd) end end
  else   -- per_group
    local g = heads // kv
    for j = 0, kv - 1 do
      local base = j * (g + 2) * hd
      take(1, base + 1, g * hd); take(2, base + g * hd + 1, hd); take(3, base + (g + 1) * hd + 1, hd)
    end
  end
  return idx
end

-- One part of W: a view when its indices are one range (so its levels are those of the same view of the
-- recorder's run, bit for bit), else a copy of those rows or columns.
local function part(W, axis, list)
  local first, n = list[1], #list
  if list[n] - first + 1 == n then return W:narrow(axis, first, n) end
  return W:index(axis, list)
end

-- <module>.<component>.weight -> module ("" without one), component; nil for other names. Plain string
-- operations, linear in the name's length (a pattern such as "^(.+)%.c_attn" backtracks quadratically
-- on a long name without dots).
local function parse_name(name)
  if #name < 8 or name:sub(-7) ~= ".weight" then return nil end
  local base = name:sub(1, -8)
  local dot = base:reverse():find(".", 1, true)
  if not dot then return "", base end
  return base:sub(1, #base - dot), base:sub(#base - dot + 2)
end

local function is_fused(component)
  for _, f in ipairs(Q.fused_names) do if component == f then return true end end
  return false
end

local function layout_names()
  local out = {}
  for _, l in ipairs(Q.layouts) do out[#out + 1] = l.name end
  return table.concat(out, "; ")
end

--- Q.split(name, W, config) -> {{name =, tensor =}, ...}: q, k, v of a fused projection, or W alone.
function Q.split(name, W, config)
  if type(name) ~= "string" then fail("dbm.qkv.split: argument 1 (name): expected a string, got %s", type(name)) end
  if not dbm.is_tensor(W) then fail("dbm.qkv.split: argument 2 (W): expected a tensor, got %s", type(W)) end
  config = config or {}
  if type(config) ~= "table" then fail("dbm.qkv.split: argument 3 (config): expected a table, got %s", type(config)) end
  local module, component = parse_name(name)
  if not is_fused(component) then return {{name = name, tensor = W}} end
  local shape = W:shape()
  -- our checkpoints name their format in the metadata: nanoGPT's layout (DESIGN §8)
  local model_type = type(config.model_type) == "string" and config.model_type
    or config.format == "dbm-lua checkpoint" and "nanogpt" or none
  if #shape ~= 2 then fail("dbm.qkv.split: '%s' is a fused attention projection of %d dimensions, expected 2", name, #shape) end
  local fits, reasons = {}, {}
  for _, layout in ipairs(Q.layouts) do
    if matches(layout, component, model_type, config) then
      local sizes, hd, heads, kv = part_sizes(layout, shape, config)
      if sizes then fits[#fits + 1] = {layout = layout, sizes = sizes, hd = hd, heads = heads, kv = kv}
      else reasons[#reasons + 1] = layout.name .. ": " .. hd end
    end
  end
  local what = ("'%s' (%d×%d, model_type %s)"):format(name, shape[1], shape[2], model_type == none and "not given" or "'" .. model_type .. "'")
  if #fits == 0 then
    fail("dbm.qkv.split: %s: no known layout of a fused q, k, v projection fits (%s); known layouts: %s",
      what, #reasons > 0 and table.concat(reasons, "; ") or "none for this name and model type", layout_names())
  end
  if #fits > 1 then fail("dbm.qkv.split: %s: ambiguous, it fits both %s and %s", what, fits[1].layout.name, fits[2].layout.name) end
  local f = fits[1]
  local idx = part_indices(f.layout.arrangement, f.sizes, f.hd, f.heads, f.kv)
  local out = {}
  for p, suffix in ipairs({"q", "k", "v"}) do
    out[p] = {name = (module == "" and "" or module .. ".") .. suffix, tensor = part(W, f.layout.axis, idx[p])}
  end
  return out
end

--- Q.model_config(path, metadata) -> the config of the model in file `path`: its folder's config.json (if
--- any), then the file's safetensors metadata for keys config.json lacks. nil, message for a bad config.json.
function Q.model_config(path, metadata)
  local config = {}
  local dir = path:match("^(.*)/[^/]*$") or "."
  local f = io.open(dir .. "/config.json", "rb")
  if f then
    local text = f:read("a") or ""
    f:close()
    local ok, value = pcall(dbm.json_decode, text)
    if not ok or type(value) ~= "table" then
      return nil, ("'%s/config.json' is not a JSON object: %s"):format(dir, ok and type(value) or tostring(value):gsub("^.-json_decode: ", ""))
    end
    config = value
  end
  for k, v in pairs(metadata or {}) do if config[k] == nil then config[k] = v end end
  return config
end

return Q
