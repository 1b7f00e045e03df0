-- nn.Block(cfg): one pre-LayerNorm transformer block (nanoGPT):
--   x ← x + attn(ln_1(x));  x ← x + mlp(ln_2(x)),  x is (B, T, C).
-- cfg: n_embd, n_head, dropout, bias, n_layer, dtype, generator.
local Module = require("dbm.nn.Module")
local LayerNorm = require("dbm.nn.LayerNorm")
local CausalSelfAttention = require("dbm.nn.CausalSelfAttention")
local MLP = require("dbm.nn.MLP")

local Block = Module:extend("Block")

function Block:init(cfg)
  Module.check_block_config("nn.Block", cfg)
  self:child("ln_1", LayerNorm(cfg.n_embd, {bias = cfg.bias or false, dtype = cfg.dtype}))
  self:child("attn", CausalSelfAttention(cfg))
  self:child("ln_2", LayerNorm(cfg.n_embd, {bias = cfg.bias or false, dtype = cfg.dtype}))
  self:child("mlp", MLP(cfg))
end

function Block:forward(x)
  x = x + self.attn(self.ln_1(x))
  return x + self.mlp(self.ln_2(x))
end

return Block
