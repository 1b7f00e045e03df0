-- dbm.nn: layers written in Lua over the differentiable ops dbm.F.* (one file per module, in nn/).
-- Each module is a class: nn.Linear(16, 4) makes one, calling it runs forward. See nn/Module.lua.
local nn = {}
for _, name in ipairs({"Module", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "ModuleList", "Sequential",
                       "CausalSelfAttention", "MLP", "Block"}) do
  nn[name] = require("dbm.nn." .. name)
end
return nn
