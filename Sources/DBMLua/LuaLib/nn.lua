-- dbm.nn: layers written in Lua over the differentiable ops dbm.F.* (one file per module, in nn/).
-- Each module is a class: nn.Linear(16, 4) makes one, calling it runs forward. See nn/Module.lua.
local nn = {}
for _, name in ipairs({"Module", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "ModuleList", "Sequential",
                       "CausalSelfAttention", "MLP", "Block", "GPT"}) do
  nn[name] = require("dbm.nn." .. name)
end
local dbm = require("dbm")
local help = {
  Module = "nn.Module:extend(name) -> a class; self:param(name, t), self:child(name, m); m:named_parameters(), parameters(), state_dict(), load_state_dict(t), train(), eval(), zero_grad()",
  Linear = "nn.Linear(n_in, n_out [, {bias=true, std=, dtype=, generator=}]): y = x·Wᵀ + b, W is (n_out, n_in)",
  Embedding = "nn.Embedding(n, dim [, {std=1, dtype=, generator=}]): rows of W (n, dim) at 1-based ids",
  LayerNorm = "nn.LayerNorm(dim [, {bias=true, eps=1e-5, dtype=}]): normalise over the last dimension",
  Dropout = "nn.Dropout(p [, {generator=}]): zero with probability p in training mode, identity in eval mode",
  GELU = "nn.GELU([{approximate=\"none\" | \"tanh\"}]): x·Φ(x)",
  ModuleList = "nn.ModuleList({m1, m2, ...}): children \"0\", \"1\", ...; list[1] is child \"0\"; #list, list:ipairs(), list:append(m)",
  Sequential = "nn.Sequential({m1, m2, ...}): y = m_n(...m_1(x))",
  CausalSelfAttention = "nn.CausalSelfAttention{n_embd, n_head, dropout=0, bias=false, n_layer=1}: nanoGPT's attention (c_attn, fused causal attention, c_proj)",
  MLP = "nn.MLP{n_embd, dropout=0, bias=false, n_layer=1}: c_proj(gelu(c_fc(x))), hidden width 4·n_embd",
  GPT = "nn.GPT{vocab_size, block_size, n_layer, n_head, n_embd, dropout=0, bias=false}: nanoGPT (tied head); model(idx [, targets]) -> logits [, loss]; model:generate(ids, n, {temperature=, top_k=}); model:weight_matrices() -> {{name, W}, ...} (q, k, v split)",
  Block = "nn.Block{n_embd, n_head, dropout=0, bias=false, n_layer=1}: x + attn(ln_1(x)), then x + mlp(ln_2(x))",
}
-- The help table stays a table: its entries (and those of optim.lua) look alike line by line because they are
-- data, one help line per function, not repeated code; the one loop that registers them is dbm._set_module_help.
dbm._set_module_help(nn, help)
return nn
