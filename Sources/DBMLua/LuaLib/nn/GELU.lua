-- nn.GELU([opts]): y = x·Φ(x), Φ the standard normal CDF (opts.approximate = "tanh": the tanh form
-- 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local GELU = Module:extend("GELU")

function GELU:init(opts) self.approximate = (opts or {}).approximate or "none" end

function GELU:forward(x) return dbm.F.gelu(x, {approximate = self.approximate}) end

function GELU:extra_repr() return self.approximate == "none" and "" or "approximate=" .. self.approximate end

return GELU
