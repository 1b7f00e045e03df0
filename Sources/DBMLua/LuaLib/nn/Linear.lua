-- nn.Linear(n_in, n_out [, opts]): y = x·Wᵀ + b.
-- x is (..., n_in), weight W is (n_out, n_in) as in PyTorch, bias b is (n_out); y is (..., n_out).
-- opts: bias (default true), dtype, generator, std. Initialisation: with std, W ~ N(0, std²) and b = 0
-- (nanoGPT's); without, PyTorch's default W, b ~ U(−1/√n_in, 1/√n_in).
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local Linear = Module:extend("Linear")

function Linear:init(n_in, n_out, opts)
  Module.check_size("nn.Linear", "argument 1 (n_in)", n_in)
  Module.check_size("nn.Linear", "argument 2 (n_out)", n_out)
  opts = Module.check_options("nn.Linear", opts, {"bias", "dtype", "generator", "std"})
  local o = {dtype = opts.dtype, generator = opts.generator}
  self.n_in, self.n_out = n_in, n_out
  if opts.std then
    o.std = opts.std
    self:param("weight", dbm.randn(n_out, n_in, o))
    if opts.bias ~= false then self:param("bias", dbm.zeros(n_out, {dtype = opts.dtype})) end
  else
    local bound = 1 / math.sqrt(n_in)
    o.low, o.high = -bound, bound
    self:param("weight", dbm.rand(n_out, n_in, o))
    if opts.bias ~= false then self:param("bias", dbm.rand(n_out, o)) end
  end
end

function Linear:forward(x) return dbm.F.linear(x, self.weight, self.bias) end

function Linear:extra_repr()
  return ("in=%d, out=%d, bias=%s"):format(self.n_in, self.n_out, tostring(self.bias ~= nil))
end

return Linear
