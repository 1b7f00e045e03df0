-- nn.ModuleList({m1, m2, ...}): a list of modules, registered as children "0", "1", ... (PyTorch's names,
-- so that checkpoints read h.0.attn...); list[1] is child "0". No forward of its own.
local Module = require("dbm.nn.Module")

local ModuleList = Module:extend("ModuleList")

function ModuleList:init(modules)
  self.n = 0
  for _, m in ipairs(modules or {}) do self:append(m) end
end

-- list:append(m) -> list
function ModuleList:append(m)
  self:child(tostring(self.n), m)
  self.n = self.n + 1
  rawset(self, self.n, m)
  return self
end

function ModuleList:__len() return self.n end

-- for i, m in list:ipairs() do ... end (i from 1)
function ModuleList:ipairs()
  local i = 0
  return function()
    i = i + 1
    if i <= self.n then return i, self[i] end
  end
end

return ModuleList
