-- nn.Dropout(p [, opts]): in training mode, each element is zeroed with probability p and the others
-- scaled by 1/(1 − p); in eval mode the identity. opts.generator: the random stream (default: dbm's).
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local Dropout = Module:extend("Dropout")

function Dropout:init(p, opts)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p >= 1 then
    dbm._fail("nn.Dropout: argument 1 (p): expected a probability in [0, 1), got %s", tostring(p))
  end
  opts = Module.check_options("nn.Dropout", opts, {"generator"})
  self.p, self.generator = p, opts.generator
end

function Dropout:forward(x)
  return dbm.F.dropout(x, self.p, {training = self.training, generator = self.generator})
end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return Dropout
