-- nn.LayerNorm(dim [, opts]): y = (x − mean(x)) / √(var(x) + eps) · weight + bias over the last dimension.
-- x is (..., dim); weight (dim) starts at 1, bias (dim) at 0. opts: bias (default true; nanoGPT's
-- configuration has none), eps (default 1e-5), dtype.
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local LayerNorm = Module:extend("LayerNorm")

function LayerNorm:init(dim, opts)
  Module.check_size("nn.LayerNorm", "argument 1 (dim)", dim)
  opts = Module.check_options("nn.LayerNorm", opts, {"bias", "eps", "dtype"})
  self.dim, self.eps = dim, opts.eps or 1e-5
  self:param("weight", dbm.ones(dim, {dtype = opts.dtype}))
  if opts.bias ~= false then self:param("bias", dbm.zeros(dim, {dtype = opts.dtype})) end
end

function LayerNorm:forward(x) return dbm.F.layer_norm(x, self.weight, self.bias, {eps = self.eps}) end

function LayerNorm:extra_repr() return ("%d, eps=%g, bias=%s"):format(self.dim, self.eps, tostring(self.bias ~= nil)) end

return LayerNorm
