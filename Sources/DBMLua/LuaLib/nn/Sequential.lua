-- nn.Sequential({m1, m2, ...}): y = m_n(...m_2(m_1(x))); children named "0", "1", ... as in PyTorch.
local ModuleList = require("dbm.nn.ModuleList")

local Sequential = ModuleList:extend("Sequential")

function Sequential:forward(x)
  for i = 1, self.n do x = self[i](x) end
  return x
end

return Sequential
