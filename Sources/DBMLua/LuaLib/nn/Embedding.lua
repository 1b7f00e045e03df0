-- nn.Embedding(n, dim [, opts]): row i of the table W for each id i.
-- ids are 1-based integers of any shape; weight W is (n, dim); the result is ids.shape + (dim).
-- opts: std (default 1, as PyTorch; nanoGPT uses 0.02), dtype, generator.
local dbm = require("dbm")
local Module = require("dbm.nn.Module")

local Embedding = Module:extend("Embedding")

function Embedding:init(n, dim, opts)
  Module.check_size("nn.Embedding", "argument 1 (n)", n)
  Module.check_size("nn.Embedding", "argument 2 (dim)", dim)
  opts = Module.check_options("nn.Embedding", opts, {"std", "dtype", "generator"})
  self.n, self.dim = n, dim
  self:param("weight", dbm.randn(n, dim, {std = opts.std or 1, dtype = opts.dtype, generator = opts.generator}))
end

function Embedding:forward(ids) return dbm.F.embedding(ids, self.weight) end

function Embedding:extra_repr() return ("%d, %d"):format(self.n, self.dim) end

return Embedding
