-- dbm.qkv (analyze --split-qkv): each layout of Q.layouts takes the rows (or columns) its model puts q, k and v in.
-- A fused matrix whose entries are their own row (or column) number shows which ones each part got.
local Q = require("dbm.qkv")

-- A (rows, cols) float32 matrix with entry (r, c) = r (by_rows) or c.
local function numbered(rows, cols, by_rows)
  local t = dbm.zeros(rows, cols)
  for r = 1, rows do for c = 1, cols do t:set(r, c, by_rows and r or c) end end
  return t
end

-- The row numbers (or column numbers) a part holds.
local function numbers(part, by_rows)
  local out, n = {}, by_rows and part:shape()[1] or part:shape()[2]
  for i = 1, n do out[i] = math.tointeger(by_rows and part:get(i, 1) or part:get(1, i)) end
  return table.concat(out, ",")
end

local function range(a, b) local t = {} for i = a, b do t[#t + 1] = i end return table.concat(t, ",") end

local function expect_split(name, W, config, by_rows, want_names, want)
  local parts = Q.split(name, W, config)
  assert(#parts == 3, name .. ": expected 3 parts, got " .. #parts)
  for p = 1, 3 do
    assert(parts[p].name == want_names[p], ("%s: part %d is named %s, expected %s"):format(name, p, parts[p].name, want_names[p]))
    local got = numbers(parts[p].tensor, by_rows)
    assert(got == want[p], ("%s: part %s holds %s, expected %s"):format(name, want_names[p], got, want[p]))
  end
end

local function expect_refused(name, W, config, words)
  local ok, err = pcall(Q.split, name, W, config)
  assert(not ok, name .. ": a layout that is not known was split")
  assert(tostring(err):find("dbm.qkv.split", 1, true) and tostring(err):find(words, 1, true), tostring(err))
end

-- nanoGPT (our checkpoints): 3C×C, rows q | k | v; with our metadata (strings) or no config at all.
local qkv = {"transformer.h.0.attn.q", "transformer.h.0.attn.k", "transformer.h.0.attn.v"}
expect_split("transformer.h.0.attn.c_attn.weight", numbered(12, 4, true), {n_head = "2", n_embd = "4"}, true, qkv,
  {range(1, 4), range(5, 8), range(9, 12)})
expect_split("transformer.h.0.attn.c_attn.weight", numbered(12, 4, true), {}, true, qkv, {range(1, 4), range(5, 8), range(9, 12)})
-- the parts of a row split are views: the recorder's narrow of the same rows, bit for bit
assert(Q.split("transformer.h.0.attn.c_attn.weight", numbered(12, 4, true), {})[2].tensor:is_contiguous())

-- GPT-2's Conv1D: C×3C, columns q | k | v; Hugging Face's names.
local hf = {"h.3.attn.q", "h.3.attn.k", "h.3.attn.v"}
expect_split("h.3.attn.c_attn.weight", numbered(4, 12, false), {model_type = "gpt2", n_embd = 4, n_head = 2}, false, hf,
  {range(1, 4), range(5, 8), range(9, 12)})
expect_split("h.3.attn.c_attn.weight", numbered(4, 12, false), {}, false, hf, {range(1, 4), range(5, 8), range(9, 12)})
-- a GPT-2 config with a 3C×C matrix (or a nanoGPT one with C×3C) fits no layout
expect_refused("h.3.attn.c_attn.weight", numbered(12, 4, true), {model_type = "gpt2", n_embd = 4, n_head = 2}, "no known layout")
expect_refused("h.3.attn.c_attn.weight", numbered(4, 12, true), {format = "dbm-lua checkpoint", n_embd = "4", n_head = "2"}, "no known layout")

-- GPT-NeoX and BLOOM: per head q, k, v (hd = 2, two heads).
local neox = {"gpt_neox.layers.0.attention.q", "gpt_neox.layers.0.attention.k", "gpt_neox.layers.0.attention.v"}
for _, mt in ipairs({"gpt_neox", "bloom"}) do
  expect_split("gpt_neox.layers.0.attention.query_key_value.weight", numbered(12, 4, true),
    {model_type = mt, hidden_size = 4, num_attention_heads = 2}, true, neox, {"1,2,7,8", "3,4,9,10", "5,6,11,12"})
end
expect_refused("gpt_neox.layers.0.attention.query_key_value.weight", numbered(12, 4, true), {model_type = "gpt_neox"}, "number of heads")
expect_refused("gpt_neox.layers.0.attention.query_key_value.weight", numbered(12, 4, true), {}, "no known layout")

-- GPTBigCode: multi-query (its default) q | k | v of C, hd, hd; multi-head per head (unlike GPT-2).
local big = {"transformer.h.0.attn.q", "transformer.h.0.attn.k", "transformer.h.0.attn.v"}
expect_split("transformer.h.0.attn.c_attn.weight", numbered(8, 4, true), {model_type = "gpt_bigcode", n_embd = 4, n_head = 2}, true,
  big, {range(1, 4), "5,6", "7,8"})
expect_split("transformer.h.0.attn.c_attn.weight", numbered(12, 4, true),
  {model_type = "gpt_bigcode", n_embd = 4, n_head = 2, multi_query = false}, true, big, {"1,2,7,8", "3,4,9,10", "5,6,11,12"})

-- Grouped-query, unequal blocks (Phi-3): 4 query heads, 2 key/value heads, hd = 2: q 8 rows, k and v 4 each.
local phi = {"model.layers.0.self_attn.q", "model.layers.0.self_attn.k", "model.layers.0.self_attn.v"}
expect_split("model.layers.0.self_attn.qkv_proj.weight", numbered(16, 8, true),
  {model_type = "phi3", hidden_size = 8, num_attention_heads = 4, num_key_value_heads = 2}, true, phi,
  {range(1, 8), range(9, 12), range(13, 16)})
-- per key/value group (InternLM2, Falcon's new architecture): group j holds its 2 query heads, then k, then v.
expect_split("model.layers.0.attention.wqkv.weight", numbered(16, 8, true),
  {model_type = "internlm2", hidden_size = 8, num_attention_heads = 4, num_key_value_heads = 2}, true,
  {"model.layers.0.attention.q", "model.layers.0.attention.k", "model.layers.0.attention.v"},
  {"1,2,3,4,9,10,11,12", "5,6,13,14", "7,8,15,16"})
expect_split("transformer.h.0.self_attention.query_key_value.weight", numbered(16, 8, true),
  {model_type = "falcon", hidden_size = 8, num_attention_heads = 4, num_kv_heads = 2, new_decoder_architecture = true}, true,
  {"transformer.h.0.self_attention.q", "transformer.h.0.self_attention.k", "transformer.h.0.self_attention.v"},
  {"1,2,3,4,9,10,11,12", "5,6,13,14", "7,8,15,16"})
-- Falcon's multi-query (its config's default): q of all heads, then one k and one v head.
expect_split("transformer.h.0.self_attention.query_key_value.weight", numbered(12, 8, true),
  {model_type = "falcon", hidden_size = 8, num_attention_heads = 4}, true,
  {"transformer.h.0.self_attention.q", "transformer.h.0.self_attention.k", "transformer.h.0.self_attention.v"},
  {range(1, 8), "9,10", "11,12"})

-- Unknown: a fused name of a model type without a layout, or a shape the config does not explain.
expect_refused("transformer.blocks.0.attn.Wqkv.weight", numbered(12, 4, true), {model_type = "mpt"}, "known layouts")
expect_refused("model.layers.0.self_attn.qkv_proj.weight", numbered(12, 8, true),
  {model_type = "phi3", hidden_size = 8, num_attention_heads = 4, num_key_value_heads = 2}, "expected 16")
expect_refused("blocks.0.attn.qkv.weight", numbered(12, 4, true), {}, "no known layout")

-- Anything else comes back alone and unchanged.
local W = numbered(4, 4, true)
local same = Q.split("transformer.h.0.mlp.c_fc.weight", W, {})
assert(#same == 1 and same[1].name == "transformer.h.0.mlp.c_fc.weight" and rawequal(same[1].tensor, W))
assert(#Q.split("h.0.attn.c_attn.bias", dbm.zeros(12), {}) == 1)

-- Bad calls name the function.
for _, args in ipairs({{1, W, {}}, {"x.weight", "W", {}}, {"x.weight", W, 5}}) do
  local ok, err = pcall(Q.split, table.unpack(args))
  assert(not ok and tostring(err):find("dbm.qkv.split: argument", 1, true), tostring(err))
end
print("qkv: OK")
