-- nn.MLP(cfg): nanoGPT's feed-forward layer, y = dropout(c_proj(gelu(c_fc(x)))).
-- x is (B, T, C); c_fc is (4C, C), c_proj (C, 4C) with std 0.02/√(2·n_layer) at initialisation.
-- cfg: n_embd, dropout (0), bias (false), n_layer, dtype, generator (the block configuration: n_head is
-- accepted and not used here).
local Module = require("dbm.nn.Module")
local Linear = require("dbm.nn.Linear")
local GELU = require("dbm.nn.GELU")
local Dropout = require("dbm.nn.Dropout")

local MLP = Module:extend("MLP")

function MLP:init(cfg)
  if type(cfg) == "table" then Module.check_options("nn.MLP", cfg, Module.block_keys) end
  Module.check_size("nn.MLP", "n_embd", type(cfg) == "table" and cfg.n_embd or cfg)
  local C = cfg.n_embd
  local o = {bias = cfg.bias or false, dtype = cfg.dtype, generator = cfg.generator, std = 0.02}
  self:child("c_fc", Linear(C, 4 * C, o))
  self:child("gelu", GELU())
  o.std = 0.02 / math.sqrt(2 * (cfg.n_layer or 1))
  self:child("c_proj", Linear(4 * C, C, o))
  self:child("dropout", Dropout(cfg.dropout or 0))
end

function MLP:forward(x) return self.dropout(self.c_proj(self.gelu(self.c_fc(x)))) end

return MLP
