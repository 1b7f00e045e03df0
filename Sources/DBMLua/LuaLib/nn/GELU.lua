-- nn.GELU([opts]): y = x·Φ(x), Φ the standard normal CDF (opts.approximate = "tanh": the tanh form
-- 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local GELU = Module:extend("GELU")

function GELU:init(opts)
  opts = Module.check_options("nn.GELU", opts, {"approximate"})
  local a = opts.approximate or "none"
  if a ~= "none" and a ~= "tanh" then
    dbm._fail("nn.GELU: option 'approximate': expected \"none\" or \"tanh\", got %s", type(a) == "string" and ("\"" .. dbm._printable(a) .. "\"") or tostring(a))
  end
  self.approximate = a
end

function GELU:forward(x) return dbm.F.gelu(x, {approximate = self.approximate}) end

function GELU:extra_repr() return self.approximate == "none" and "" or "approximate=" .. self.approximate end

return GELU
