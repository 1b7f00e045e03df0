-- Bad input never crashes the process: every wrong call is a Lua error that names the function, says
-- what was expected and what was given, and carries this script's file and line; pcall catches it.
local cases, here = 0, "errors.lua:"

-- check(fname, ok, msg, line): the pcall at `line` must have failed with a message naming fname and line.
local function check(fname, line, ok, msg)
  cases = cases + 1
  if ok then error(("case %d at line %d: %s should have failed"):format(cases, line, fname), 2) end
  msg = tostring(msg)
  if not msg:find(fname, 1, true) then error(("case %d at line %d: message does not name %s: %s"):format(cases, line, fname, msg), 2) end
  if not msg:find(here .. line .. ":", 1, true) then error(("case %d: message does not give the line %d: %s"):format(cases, line, msg), 2) end
  local says = false
  for _, word in ipairs({"expected", "cannot", "exceeds", "file '", "does not", "not a"}) do
    says = says or msg:find(word, 1, true) ~= nil
  end
  if not says then
    error(("case %d at line %d: message says nothing of what was expected: %s"):format(cases, line, msg), 2)
  end
end
local function L() return debug.getinfo(2, "l").currentline end

local t, m = dbm.randn(3, 4), dbm.randn(4, 4)
local wrong_values = {"x", true, {}, function() end, -1, 0.5, 1e300, 0 / 0, dbm.generator(1)}

-- Wrong argument types to every creation function, many values each.
for _, v in ipairs(wrong_values) do
  local line
  line = L(); check("dbm.zeros", line, pcall(dbm.zeros, v, "y"))
  line = L(); check("dbm.randn", line, pcall(dbm.randn, v, 2))
  line = L(); check("dbm.matmul", line, pcall(dbm.matmul, t, v))
  line = L(); check("dbm.matmul", line, pcall(dbm.matmul, v, t))
  line = L(); check("dbm.eigvalsh", line, pcall(dbm.eigvalsh, v))
  line = L(); check("dbm.svdvals", line, pcall(dbm.svdvals, v))
  line = L(); check("dbm.gram", line, pcall(dbm.gram, v))
  line = L(); check("dbm.svd", line, pcall(dbm.svd, v))
  line = L(); check("dbm.eigh", line, pcall(dbm.eigh, v))
  line = L(); check("dbm.save_npy", line, pcall(dbm.save_npy, "/tmp/x.npy", v))
  line = L(); check("dbm.add", line, pcall(dbm.add, v, v))
  line = L(); check("dbm.sum", line, pcall(dbm.sum, v))
  line = L(); check("dbm.histogram", line, pcall(dbm.histogram, v, 10))
end

-- Negative sizes, absurd sizes, allocations over the memory limit.
for _, size in ipairs({-1, -100, -math.maxinteger}) do
  local line
  line = L(); check("dbm.zeros", line, pcall(dbm.zeros, size))
  line = L(); check("dbm.randn", line, pcall(dbm.randn, 3, size))
  line = L(); check("dbm.ones", line, pcall(dbm.ones, {size, 2}))
end
local line
line = L(); check("dbm.zeros", line, pcall(dbm.zeros, 1000000, 1000000))              -- 10^12 elements
line = L(); check("dbm.randn", line, pcall(dbm.randn, 1000000, 1000000))
line = L(); check("dbm.zeros", line, pcall(dbm.zeros, math.maxinteger, math.maxinteger))  -- overflows
local mem = dbm.memory()
local n075 = math.floor(0.75 * 2 * mem.limit / 4)                                    -- 0.75 of the machine
line = L(); check("dbm.zeros", line, pcall(dbm.zeros, n075))
line = L(); check("dbm.full", line, pcall(dbm.full, {n075}, 1))

-- Shapes that do not fit.
local shapes = {{3, 5}, {2, 4}, {5}, {3, 3, 3}, {1, 3}}
for _, s in ipairs(shapes) do
  local other = dbm.randn(s)
  line = L(); check("dbm.matmul", line, pcall(dbm.matmul, t, other))
  line = L(); check("dbm.add", line, pcall(function() return t + other end))
  line = L(); check("dbm.sub", line, pcall(function() return t - other end))
  line = L(); check("dbm.mul", line, pcall(function() return t * other end))
  line = L(); check("dbm.div", line, pcall(function() return t / other end))
end
line = L(); check("dbm.eigvalsh", line, pcall(dbm.eigvalsh, t))                    -- not square
line = L(); check("dbm.eigvalsh", line, pcall(dbm.eigvalsh, dbm.randn(5)))         -- 1-d
line = L(); check("Tensor:reshape", line, pcall(t.reshape, t, 5, 5))
line = L(); check("Tensor:reshape", line, pcall(t.reshape, t, -1, -1))
line = L(); check("Tensor:copy", line, pcall(t.copy, t, m))

-- Out-of-range indices and dimensions (t[#t + 1] is nil, as for an array: ipairs stops there).
assert(t[4] == nil, "one past the last row is nil")
for _, i in ipairs({0, 4, 100, -4, -100}) do
  line = L(); check("Tensor[]", line, pcall(function() return t[i == 4 and 5 or i] end))
  line = L(); check("Tensor:get", line, pcall(t.get, t, i, 1))
  line = L(); check("Tensor:set", line, pcall(t.set, t, 1, i + 10, 3))
  line = L(); check("Tensor:select", line, pcall(t.select, t, 1, i))
  line = L(); check("Tensor:size", line, pcall(t.size, t, i == 0 and 3 or i))
  line = L(); check("Tensor:narrow", line, pcall(t.narrow, t, 2, i, 2))
  line = L(); check("Tensor:index", line, pcall(t.index, t, 1, {1, i}))
  line = L(); check("dbm.sum", line, pcall(dbm.sum, t, i == 0 and 3 or i))
  line = L(); check("Tensor:transpose", line, pcall(t.transpose, t, 1, i == 0 and 3 or i))
end
line = L(); check("Tensor[]=", line, pcall(function() t[9] = 1 end))
line = L(); check("Tensor[]=", line, pcall(function() t[1] = dbm.zeros(7) end))
line = L(); check("Tensor:get", line, pcall(t.get, t, 1))                          -- too few indices

-- Empty tensors.
local e = dbm.zeros(0, 3)
line = L(); check("dbm.eigvalsh", line, pcall(dbm.eigvalsh, dbm.zeros(0, 0)))
line = L(); check("dbm.svdvals", line, pcall(dbm.svdvals, e))
line = L(); check("dbm.max", line, pcall(dbm.max, e))
line = L(); check("dbm.mean", line, pcall(dbm.mean, e))
line = L(); check("dbm.histogram", line, pcall(dbm.histogram, e, 10))
line = L(); check("Tensor:item", line, pcall(e.item, e))

-- NaN and Inf given to the eigensolvers.
for _, bad in ipairs({0 / 0, 1 / 0, -1 / 0}) do
  local a = dbm.randn(6, 6, {dtype = "float64"}); a = a + a:t(); a:set(2, 3, bad)
  line = L(); check("dbm.eigvalsh", line, pcall(dbm.eigvalsh, a))
  line = L(); check("dbm.eigh", line, pcall(dbm.eigh, a))
  line = L(); check("dbm.svdvals", line, pcall(dbm.svdvals, a))
  line = L(); check("dbm.svd", line, pcall(dbm.svd, a))
  line = L(); check("dbm.gram", line, pcall(dbm.gram, a))
end

-- Missing and corrupt .npy files.
local dir = os.tmpname(); os.remove(dir)
line = L(); check("dbm.load_npy", line, pcall(dbm.load_npy, dir .. "/does-not-exist.npy"))
local contents = {"", "not an npy file at all", "\147NUMPY\1\0\10\0{'descr': ", "\147NUMPY\9\9",
                  "\147NUMPY\1\0\70\0{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }       \n"}
for k, text in ipairs(contents) do
  local path = dir .. "-" .. k .. ".npy"
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
  line = L(); check("dbm.load_npy", line, pcall(dbm.load_npy, path))
  os.remove(path)
end
line = L(); check("dbm.save_npy", line, pcall(dbm.save_npy, "/nonexistent-dir/x.npy", t))
line = L(); check("dbm.save_npy", line, pcall(dbm.save_npy, dir .. ".npy", t, {dtype = "int8"}))

-- Options of the wrong type.
line = L(); check("dbm.randn", line, pcall(dbm.randn, 2, 2, {std = "wide"}))
line = L(); check("dbm.randn", line, pcall(dbm.randn, 2, 2, {dtype = "float16"}))
line = L(); check("dbm.randn", line, pcall(dbm.randn, 2, 2, {std = -1}))
line = L(); check("dbm.randn", line, pcall(dbm.randn, 2, 2, {generator = 3}))
line = L(); check("dbm.tensor", line, pcall(dbm.tensor, {{1, 2}, {3}}))
line = L(); check("dbm.tensor", line, pcall(dbm.tensor, {1, "two"}))
line = L(); check("Tensor:to", line, pcall(t.to, t, "int"))
line = L(); check("dbm.histogram", line, pcall(dbm.histogram, t, 0))
line = L(); check("dbm.histogram", line, pcall(dbm.histogram, t, 10, 1, 0))
line = L(); check("dbm.arange", line, pcall(dbm.arange, 0, 10, 0))
line = L(); check("dbm.json_decode", line, pcall(dbm.json_decode, "{bad json"))
line = L(); check("dbm.set_memory_limit", line, pcall(dbm.set_memory_limit, -5))

-- Methods called on something that is not a tensor (t.method(x) instead of t:method()).
for _, name in ipairs({"shape", "numel", "sum", "matmul", "reshape", "t", "totable", "clone", "eigvalsh", "sort"}) do
  line = L(); check(name, line, pcall(t[name], "not a tensor"))
end

-- The differentiable ops and the optimizers, given every wrong value in every argument position.
local x3, W3 = dbm.parameter(dbm.randn(2, 3)), dbm.parameter(dbm.randn(4, 3))
local good_args = {
  {"dbm.F.linear", dbm.F.linear, {x3, W3}},
  {"dbm.F.embedding", dbm.F.embedding, {{1, 2}, W3}},
  {"dbm.F.layer_norm", dbm.F.layer_norm, {x3, dbm.ones(3)}},
  {"dbm.F.gelu", dbm.F.gelu, {x3, {approximate = "tanh"}}},
  {"dbm.F.softmax", dbm.F.softmax, {x3}},
  {"dbm.F.dropout", dbm.F.dropout, {x3, 0.5}},
  {"dbm.F.causal_attention", dbm.F.causal_attention, {dbm.randn(1, 2, 6), 2}},
  {"dbm.F.cross_entropy", dbm.F.cross_entropy, {x3, {1, 3}}},
  {"dbm.parameter", dbm.parameter, {dbm.randn(2)}},
  {"dbm.zero_grad", dbm.zero_grad, {{x3}}},
  {"Tensor:backward", x3.backward, {x3:sum(), {retain_graph = true}}},
}
for _, case in ipairs(good_args) do
  local fname, f, args = case[1], case[2], case[3]
  assert(pcall(f, table.unpack(args)), fname .. " should accept its good arguments")
  for pos = 1, #args do
    for _, v in ipairs({"x", true, function() end, -1, 1e300, 0 / 0, dbm.generator(1), dbm.randn(5, 7)}) do
      local bad = {table.unpack(args)}
      bad[pos] = v
      local okay = pcall(f, table.unpack(bad))
      if not okay then line = L(); check(fname, line, pcall(f, table.unpack(bad))) end
    end
  end
end
for _, make in ipairs({{"dbm.optim.SGD", dbm.optim.SGD}, {"dbm.optim.Adam", dbm.optim.Adam}, {"dbm.optim.AdamW", dbm.optim.AdamW}}) do
  local fname, f = make[1], make[2]
  line = L(); check(fname, line, pcall(function() return f({dbm.randn(3)}, {lr = 0.1}) end))     -- not a parameter
  line = L(); check(fname, line, pcall(function() return f({x3 * 2}, {lr = 0.1}) end))            -- not a leaf
  line = L(); check(fname, line, pcall(function() return f({x3}, {lr = 0 / 0}) end))              -- NaN learning rate
  line = L(); check(fname, line, pcall(function() return f({x3}, {lr = -1}) end))
  line = L(); check(fname, line, pcall(function() return f({x3, x3}, {lr = 0.1}) end))            -- twice
  line = L(); check(fname, line, pcall(function() return f({}, {lr = 0.1}) end))                  -- nothing
  line = L(); check(fname, line, pcall(function() return f({x3}, {lr = 0.1, wieght_decay = 1}) end))
  line = L(); check(fname, line, pcall(function() return f("params", {lr = 0.1}) end))
  line = L(); check(fname, line, pcall(function() return f({x3}, {lr = 0.1, weight_decay = 0 / 0}) end))
end
line = L(); check("dbm.optim.Adam", line, pcall(function() return dbm.optim.Adam({x3}, {betas = {0.9, 1}}) end))
line = L(); check("dbm.optim.Adam", line, pcall(function() return dbm.optim.Adam({x3}, {eps = 0}) end))
line = L(); check("dbm.optim.SGD", line, pcall(function() return dbm.optim.SGD({x3}, {lr = 1, nesterov = true}) end))
local opt3 = dbm.optim.SGD({x3}, {lr = 0.1})
line = L(); check("Optimizer:set_lr", line, pcall(function() opt3:set_lr(0 / 0) end))
line = L(); check("Optimizer:set_lr", line, pcall(function() opt3:set_lr(0.1, 2) end))
local sched = dbm.optim.SGD({x3}, {lr = 0.1, schedule = function() return 0 / 0 end})
x3.grad = dbm.ones(2, 3)
line = L(); check("Optimizer:step", line, pcall(function() sched:step() end))
line = L(); check("Tensor.grad=", line, pcall(function() x3.grad = dbm.ones(3, 2) end))
line = L(); check("dbm.optim.clip_grad_norm", line, pcall(function() return dbm.optim.clip_grad_norm({x3}, 0) end))
line = L(); check("dbm.optim.cosine", line, pcall(function() return dbm.optim.cosine{lr = 1, warmup = 10, total = 5} end))

-- Numbers Lua can express that once trapped the Swift runtime (issue 13): each is a Lua error now.
local z23, f64z = dbm.zeros(2, 3), dbm.zeros(1, {dtype = "float64"})
line = L(); check("dbm.arange", line, pcall(dbm.arange, 0, 1, 1e-300))
line = L(); check("dbm.arange", line, pcall(dbm.arange, -1e308, 1e308, 1e-308))
line = L(); check("Tensor:narrow", line, pcall(z23.narrow, z23, 1, math.maxinteger, 1))
line = L(); check("Tensor:narrow", line, pcall(z23.narrow, z23, 1, 2, math.maxinteger))
line = L(); check("Tensor:narrow", line, pcall(z23.narrow, z23, 1, math.mininteger, 1))
for _, bad in ipairs({0 / 0, 1 / 0, -1 / 0, 1e300, -1e300, 1.7}) do
  line = L(); check("Tensor:index", line, pcall(z23.index, z23, 1, dbm.tensor({bad}, {dtype = "float64"})))
end
line = L(); check("dbm.histogram", line, pcall(dbm.histogram, f64z, math.maxinteger))
line = L(); check("Generator:permutation", line, pcall(function() return dbm.generator(1):permutation(1e10) end))
line = L(); check("Generator:permutation", line, pcall(function() return dbm.generator(1):permutation(math.maxinteger) end))
-- and the ones with an answer: a subnormal range, a range wider than the largest double
local counts, edges = dbm.histogram(f64z, 2, 0, 5e-324)
assert(counts[1] == 1 and counts[2] == 0 and edges[1] == 0 and edges[3] == 5e-324, "histogram over [0, 5e-324]")
counts, edges = dbm.histogram(dbm.tensor({0, -1e308, 1e308}, {dtype = "float64"}), 10, -1e308, 1e308)
for i = 1, 11 do assert(edges[i] == edges[i] and math.abs(edges[i]) <= 1e308, "finite edge " .. i .. ": " .. edges[i]) end
assert(counts:sum() == 3 and counts[1] == 1 and counts[10] == 1, "histogram over ±1e308")
-- A userdata given another kind's metatable is not taken for that kind.
local g = dbm.generator(1)
local fake = dbm.zeros(2)
debug.setmetatable(fake, getmetatable(g))
line = L(); check("Generator:normal", line, pcall(function() return fake:normal() end))
local fake2 = dbm.generator(2)
debug.setmetatable(fake2, getmetatable(dbm.zeros(1)))
line = L(); check("dbm.sum", line, pcall(function() return fake2:sum() end))
line = L(); check("dbm.add", line, pcall(function() return fake2 + 1 end))
fake, fake2 = nil, nil
collectgarbage(); collectgarbage()   -- their finalizers release the right objects
-- dbm.npy_appender and its methods (a file of 3 columns; nothing is appended by a bad call).
local atmp = os.tmpname(); os.remove(atmp)
assert(os.execute("mkdir -p " .. atmp))
local a = dbm.npy_appender(atmp .. "/a.npy", {cols = 3})
local g = dbm.generator(1)
local path = atmp .. "/b.npy"
for _, v in ipairs({true, {}, function() end, -1, 0.5, g, ""}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, v))
end
for _, v in ipairs({"x", true, -1, g, a}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, v))
end
for _, v in ipairs({"x", "float16", true, {}, -1, g}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {dtype = v}))
end
for _, v in ipairs({"x", true, {}, -1, 0.5, 1e300, 0 / 0, g}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {cols = v}))
end
for _, v in ipairs({"x", true, function() end, -1, 0.5, 0 / 0, g, {1, 2}, {{1, 2, 3}, {1, 2}}, {{"a", 2, 3}}, dbm.randn(2, 4)}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {cols = 3, data = v}))
end
line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, atmp .. "/no/such/dir/c.npy", {cols = 3}))
line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {dtype = "int64", data = {1, 0 / 0}}))
for _, v in ipairs({"x", true, function() end, -1, 0.5, 1e300, 0 / 0, g, {1, 2}, {{1, 2, 3}, {1, 2}}, dbm.randn(2, 4), dbm.randn(3, 1)}) do
  line = L(); check("NpyAppender:append", line, pcall(a.append, a, v))
end
line = L(); check("NpyAppender:append", line, pcall(a.append, a))
for _, v in ipairs({"x", true, {}, function() end, -1, 0.5, 1e300, 0 / 0, g, 1}) do
  line = L(); check("NpyAppender:truncate", line, pcall(a.truncate, a, v))
end
for _, v in ipairs({false, "x", 3, {}, dbm.randn(3), g}) do
  if v == false then v = nil end
  line = L(); check("NpyAppender:append", line, pcall(dbm.NpyAppender.append, v, {1, 2, 3}))
  line = L(); check("NpyAppender:rows", line, pcall(dbm.NpyAppender.rows, v))
  line = L(); check("NpyAppender:truncate", line, pcall(dbm.NpyAppender.truncate, v, 0))
  line = L(); check("NpyAppender:close", line, pcall(dbm.NpyAppender.close, v))
end
assert(a:rows() == 0, "failed appends append nothing")
a:close()
line = L(); check("NpyAppender:append", line, pcall(a.append, a, {1, 2, 3}))
line = L(); check("NpyAppender:truncate", line, pcall(a.truncate, a, 0))
assert(dbm.help(dbm.npy_appender):find("a:append(rows)", 1, true) and dbm.help(a.append):find("the row count", 1, true))
os.execute("rm -rf " .. atmp)

-- Messages that say what went wrong (issue 13): the argument, what was expected, what was given.
local function says(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok and tostring(err):find(pattern, 1, true) and tostring(err):find(here, 1, true), tostring(err))
end
says("argument 2 (sizes): expected a table of integer sizes, entry 1 is a number (2.5)", function() return dbm.zeros(2, 3):reshape({2.5, 2}) end)
local rows = 0
for _, row in ipairs(dbm.ones(3, 2)) do rows = rows + 1; assert(row:numel() == 2) end
assert(rows == 3, "ipairs over a tensor's rows ends after the last")
says("Tensor[]: argument 2 (index): expected an index in 1..3", function() return dbm.ones(3)[5] end)
says("dbm.randn: argument 3 (options): unknown option 'stdev' (known: mean, std, dtype, generator)", function() return dbm.randn(2, 2, {stdev = 5}) end)
says("attempt to use the tensor method 'backward' on a number", function()
  local p = dbm.parameter(dbm.ones(2))
  dbm.no_grad(function() local l = (p * p):sum(); l:backward() end)
end)
says("nn.Linear: expected argument 1 (n_in) to be a positive integer, got 0", function() return dbm.nn.Linear(0, 5) end)
says("nn.Linear: unknown option 'stdev' (known: bias, dtype, generator, std)", function() return dbm.nn.Linear(2, 2, {stdev = 1}) end)
says("nn.Embedding: expected argument 2 (dim) to be a positive integer, got 2.5", function() return dbm.nn.Embedding(3, 2.5) end)
says("nn.LayerNorm: expected argument 1 (dim) to be a positive integer, got nil", function() return dbm.nn.LayerNorm() end)
says("nn.Block: expected n_head to be a positive integer, got 0", function() return dbm.nn.Block({n_embd = 64, n_head = 0}) end)
says("nn.Block: expected a configuration table", function() return dbm.nn.Block() end)
says("nn.CausalSelfAttention: expected n_embd (10) to be a multiple of n_head, got n_head = 3",
  function() return dbm.nn.CausalSelfAttention({n_embd = 10, n_head = 3}) end)
says("nn.GPT: expected vocab_size to be a positive integer", function() return dbm.nn.GPT({n_embd = 8, n_head = 2, n_layer = 1, block_size = 4}) end)
-- Unknown option keys are errors everywhere, naming the function, the key and the known keys (issue 13):
-- every nn module and method with options, and the plot functions with their option records.
local cfg = {n_embd = 8, n_head = 2}
local function with(extra) local c = {}; for k, v in pairs(cfg) do c[k] = v end; for k, v in pairs(extra) do c[k] = v end; return c end
local block_keys = "(known: n_embd, n_head, n_layer, dropout, bias, dtype, generator)"
says("nn.Dropout: unknown option 'seed' (known: generator)", function() return dbm.nn.Dropout(0.1, {seed = 1}) end)
says("nn.Dropout: expected a table of options, got number", function() return dbm.nn.Dropout(0.1, 5) end)
says("nn.GELU: unknown option 'approx' (known: approximate)", function() return dbm.nn.GELU({approx = "tanh"}) end)
says("nn.GELU: option 'approximate': expected \"none\" or \"tanh\", got \"fast\"", function() return dbm.nn.GELU({approximate = "fast"}) end)
says("nn.Block: unknown option 'n_embed' " .. block_keys, function() return dbm.nn.Block(with({n_embed = 8})) end)
says("nn.CausalSelfAttention: unknown option 'heads' " .. block_keys, function() return dbm.nn.CausalSelfAttention(with({heads = 2})) end)
says("nn.MLP: unknown option 'hidden' " .. block_keys, function() return dbm.nn.MLP(with({hidden = 32})) end)
says("nn.GPT: unknown option 'n_layers' (known: vocab_size, block_size, n_embd, n_head, n_layer, dropout, bias, dtype, generator)",
  function() return dbm.nn.GPT(with({vocab_size = 5, block_size = 4, n_layer = 1, n_layers = 2})) end)
local tiny = dbm.nn.GPT(with({vocab_size = 5, block_size = 4, n_layer = 1}))
says("GPT:generate: unknown option 'topk' (known: temperature, top_k, generator)", function() return tiny:generate({1}, 2, {topk = 2}) end)
says("GPT:load_state_dict: unknown option 'strct' (known: strict, prefix, check_only)", function() return tiny:load_state_dict(tiny:state_dict(), {strct = false}) end)
local plot = require("dbm.plot")
says("dbm.plot.density: unknown option 'bin' (known: labels, mp, semicircle, curves, title, xlabel, bins, logy, clip, outline)",
  function() return plot.density("never_written", {1, 2}, {bin = 3}) end)
says("dbm.plot.density: option 'mp': unknown option 'sigma' (known: sigma2, n, m, label)",
  function() return plot.density("never_written", {1, 2}, {mp = {sigma = 1, n = 4, m = 2}}) end)
says("dbm.plot.density: option 'semicircle': unknown option 'centre' (known: center, radius, label)",
  function() return plot.density("never_written", {1, 2}, {semicircle = {centre = 0, radius = 1}}) end)
says("dbm.plot.density: option 'curves': unknown option 'fn' (known: f, lo, hi, label)",
  function() return plot.density("never_written", {1, 2}, {curves = {{fn = math.exp, lo = 0, hi = 1}}}) end)
says("dbm.plot.spacing: unknown option 'logy' (known: title, bins)", function() return plot.spacing("never_written", {1, 2}, {logy = true}) end)
says("dbm.plot.flow: unknown option 'max_line' (known: title, ylabel, max_lines, logy, hlines)",
  function() return plot.flow("never_written", {1}, {{1, 2}}, {max_line = 3}) end)
says("dbm.plot.series: unknown option 'xlabels' (known: title, logy, ylabel, hlines, panels, xlabel)",
  function() return plot.series("never_written", {1}, {a = {1}}, {xlabels = "t"}) end)
says("dbm.plot.series: option 'panels': unknown option 'name' (known: names, ylabel, logy, hlines)",
  function() return plot.series("never_written", {1}, {a = {1}}, {panels = {{name = {"a"}}}}) end)
says("dbm.plot.xy: unknown option 'logX' (known: title, xlabel, ylabel, logx, logy, lines)",
  function() return plot.xy("never_written", {{x = {1}, y = {1}}}, {logX = true}) end)
says("dbm.plot.xy: option 'lines': unknown option 'slop' (known: slope, label)",
  function() return plot.xy("never_written", {{x = {1}, y = {1}}}, {lines = {{slop = 1}}}) end)
says("dbm.diagnostics: unknown option 'symetric' (known: symmetric, options, eigenvalues)", function() return dbm.diagnostics({"spectrum"}, t, {symetric = true}) end)
for _, suffix in ipairs({".dat", ".gp", ".png", ".svg"}) do assert(not io.open("never_written" .. suffix), "a refused plot wrote nothing") end

-- An error inside dbm.diagnostics names this line once, also when a core function under it fails (issue
-- 13: "errors.lua:N: errors.lua:N: dbm.gram: ..."); the recorder, which re-raises them under its name, too.
local function names_line_once(pattern, f)   -- f: a call statement (a tail call would leave no frame at the line)
  local line = debug.getinfo(2, "l").currentline
  local ok, err = pcall(f)
  err = tostring(err)
  local _, positions = err:gsub("errors%.lua:%d+:", "")
  assert(not ok and err:find(pattern, 1, true) and err:find(here .. line .. ":", 1, true) and positions == 1,
    "expected one position (line " .. line .. ") and '" .. pattern .. "', got: " .. err)
end
local nan = dbm.randn(5, 3); nan:set(1, 1, 0 / 0)
names_line_once("dbm.gram: expected finite entries, found NaN", function() dbm.diagnostics({"spectrum"}, nan) end)
names_line_once("dbm.gram: expected a non-empty matrix", function() dbm.diagnostics({"spectrum"}, dbm.zeros(0, 0)) end)
names_line_once("diagnostics: no plugin 'no_such_plugin'", function() dbm.diagnostics({"no_such_plugin"}, t) end)
names_line_once("diagnostics.run: argument 1 (names)", function() dbm.diagnostics(42, t) end)
names_line_once("must be square", function() dbm.diagnostics({"spectrum"}, t, {symmetric = true}) end)
names_line_once("unknown option 'symetric'", function() dbm.diagnostics({"spectrum"}, t, {symetric = true}) end)
local dtmp = os.tmpname(); os.remove(dtmp)
assert(os.execute("mkdir -p " .. dtmp))
local function write_plugin(name, text) local f = assert(io.open(dtmp .. "/" .. name .. ".lua", "w")); f:write(text); f:close() end
write_plugin("tmp_raises_on_load", "local x = 1\nerror('broken at load')\n")
write_plugin("tmp_raises_in_run", "return {name = 'tmp_raises_in_run', doc = 'raises', run = function(ctx)\n  local n = #ctx.levels\n  error('kaboom ' .. n)\nend}\n")
dbm.plugin_path = dtmp .. "/?.lua;" .. dbm.plugin_path
names_line_once("raised an error when loaded", function() dbm.diagnostics({"tmp_raises_on_load"}, t) end)
-- a plugin whose run raises is a failure, not an error: its message names the plugin's line once
local _, failures = dbm.diagnostics({"tmp_raises_in_run"}, t)
local _, plugin_positions = failures.tmp_raises_in_run:gsub("tmp_raises_in_run%.lua:3:", "")
assert(plugin_positions == 1 and failures.tmp_raises_in_run:find("kaboom 3", 1, true), failures.tmp_raises_in_run)
local rec = dbm.recorder{out_dir = dtmp .. "/run", plots = false}
names_line_once("rec:watch: diagnostics: no plugin 'no_such_plugin'", function() rec:watch("M", t, {diagnostics = {"no_such_plugin"}}) end)
rec:watch("E", dbm.zeros(0, 0), {diagnostics = {"spectrum"}})
names_line_once("rec:step: matrix 'E': dbm.gram: expected a non-empty matrix", function() rec:step(1) end)
rec:close()
os.execute("rm -rf " .. dtmp)

local sgd = dbm.optim.SGD({dbm.parameter(dbm.zeros(2))}, {lr = 0.1})
says("Optimizer:step: expected to be called on an optimizer with a colon, opt:step(...)", function() return sgd.step() end)
says("Optimizer:zero_grad: expected to be called on an optimizer with a colon", function() return sgd.zero_grad({}) end)
local afile = os.tmpname()
says("dbm.recorder: cannot create the run directory " .. afile .. "/run: cannot create the folder '" .. afile .. "/run': Not a directory",
  function() return dbm.recorder{out_dir = afile .. "/run"} end)
os.remove(afile)

-- Module trees refuse cycles (parameters() would loop forever).
local lin = dbm.nn.Linear(2, 2)
line = L(); check("Linear:child", line, pcall(lin.child, lin, "me", lin))
local inner = dbm.nn.Sequential({dbm.nn.Linear(2, 2)})
local outer = dbm.nn.Sequential({inner})
line = L(); check("Sequential:child", line, pcall(inner.child, inner, "up", outer))
assert(#outer:parameters() == 2, "the refused cycles left the tree as it was")
-- Coroutines keep their own gradient mode across yields.
local inside
local co = coroutine.create(function()
  dbm.no_grad(function() coroutine.yield(); inside = dbm.is_grad_enabled() end)
end)
assert(coroutine.resume(co))
assert(dbm.is_grad_enabled(), "a yield inside no_grad left gradients off in the resumer")
assert(coroutine.resume(co) and inside == false and dbm.is_grad_enabled(), "the coroutine's own no_grad held after resuming")
local gen = coroutine.wrap(function() dbm.no_grad(function() coroutine.yield(1) end) end)
assert(gen() == 1 and dbm.is_grad_enabled(), "coroutine.wrap too")
line = L(); check("dbm.zeros", line, pcall(coroutine.wrap(function() return dbm.zeros("x") end)))

-- The state is still healthy after all of that.
local ok = pcall(function() return dbm.eigvalsh(dbm.eye(3)):sum() end)
assert(ok)
assert(cases >= 200, "expected a few hundred cases, ran " .. cases)
print(("errors: %d bad calls, each caught as a Lua error naming the function, the expectation and this line; the state still works"):format(cases))
return cases
