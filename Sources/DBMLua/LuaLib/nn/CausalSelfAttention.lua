-- nn.CausalSelfAttention(cfg): nanoGPT's attention layer.
-- x is (B, T, C) with C = cfg.n_embd; c_attn (3C, C) projects to q, k, v; each of cfg.n_head heads
-- attends causally (position t sees 1..t) with softmax(q·kᵀ/√(C/n_head)) (dropout cfg.dropout on the
-- probabilities); the heads are concatenated and projected back by c_proj (C, C), then dropped out.
-- cfg: n_embd, n_head, dropout (0), bias (false), n_layer (for c_proj's init: std 0.02/√(2·n_layer)),
-- dtype, generator.
local dbm = require("dbm")
local Module = require("dbm.nn.Module")
local Linear = require("dbm.nn.Linear")
local Dropout = require("dbm.nn.Dropout")

local CausalSelfAttention = Module:extend("CausalSelfAttention")

function CausalSelfAttention:init(cfg)
  Module.check_block_config("nn.CausalSelfAttention", cfg)
  local C = cfg.n_embd
  self.n_head, self.dropout = cfg.n_head, cfg.dropout or 0
  local o = {bias = cfg.bias or false, dtype = cfg.dtype, generator = cfg.generator, std = 0.02}
  self:child("c_attn", Linear(C, 3 * C, o))
  o.std = 0.02 / math.sqrt(2 * (cfg.n_layer or 1))
  self:child("c_proj", Linear(C, C, o))
  self:child("resid_dropout", Dropout(self.dropout))
end

function CausalSelfAttention:forward(x)
  local qkv = self.c_attn(x)                                  -- (B, T, 3C)
  local y = dbm.F.causal_attention(qkv, self.n_head,          -- (B, T, C)
    {dropout = self.training and self.dropout or 0})
  return self.resid_dropout(self.c_proj(y))
end

function CausalSelfAttention:extra_repr() return ("n_head=%d"):format(self.n_head) end

return CausalSelfAttention
