-- Gradients from Lua: every differentiable op reachable from a script (dbm.F.*, the tensor operators on
-- the tape) and the nn modules built from them, against central finite differences in float64; the
-- Module API; and the errors of misuse.
local F, nn = dbm.F, dbm.nn
local f64 = {dtype = "float64"}
local checked = 0

-- Central differences of loss() (a scalar tensor) with respect to up to `per` entries of each
-- parameter, against the gradients backward() accumulates: error ≤ 1e-6 of the parameter's largest
-- gradient entry (or of 1e-3·|L|, whichever is larger). The bound comes from the error analysis, not from one BLAS kernel's rounding:
-- D(h) = (L(x+h) − L(x−h))/2h errs by h²/6·L''' (truncation) plus about u·|L|·m/h (the loss's rounding,
-- u = 1.1e-16, m ~ 100 operations, and a different summation order in another kernel changes it by as
-- much). At h = 1e-6 that rounding is ~1e-8·|L|: 1e-6 of a gradient entry of 1e-2·|L|, so a plain
-- difference at that h fails on some kernels and passes on others (seen: nn.Block, 1.8e-6). Richardson's
-- (4·D(h) − D(2h))/3 cancels the h² term (leaving O(h⁴)), which allows h = 1e-4·max(1, |x|): rounding
-- ~1e-10·|L|, truncation ~1e-17·L⁽⁵⁾, both far below 1e-6 of max(gradient scale, 1e-3·|L|).
-- (Off the tape, as inside no_grad, t:sum() is a number; on it, a 0-d tensor.)
local function value(v) return type(v) == "number" and v or v:item() end
local function gradcheck(what, loss, params, per)
  dbm.zero_grad(params, {set_to_none = true})
  local l0 = loss()
  local magnitude = math.abs(value(l0))
  l0:backward()
  for k, p in ipairs(params) do
    assert(p.grad, what .. ": parameter " .. k .. " got no gradient")
    -- the entries are changed through a view off the tape (a view on it refuses in-place writes)
    local flat, gflat = p:detach():reshape(p:numel()), p.grad:reshape(p:numel())
    local n = p:numel()
    local scale = p.grad:abs():max()
    local step = math.max(1, n // (per or 6))
    for i = 1, n, step do
      local x = flat[i]
      local h = 1e-4 * math.max(1, math.abs(x))
      local function central(d)
        flat[i] = x + d; local up = value(dbm.no_grad(loss))
        flat[i] = x - d; local down = value(dbm.no_grad(loss))
        flat[i] = x
        return (up - down) / (2 * d)
      end
      local numeric, analytic = (4 * central(h) - central(2 * h)) / 3, gflat[i]
      local err = math.abs(numeric - analytic) / math.max(scale, math.abs(numeric), 1e-3 * magnitude, 1e-300)
      if err > 1e-6 then
        error(("%s: parameter %d entry %d: analytic %.12g, numeric %.12g (relative error %.2e)"):format(
          what, k, i, analytic, numeric, err), 2)
      end
      checked = checked + 1
    end
  end
end

local function P(...) return dbm.parameter(dbm.randn(...)) end
dbm.seed(7)

-- ---------------------------------------------------------------- functional ops
for _, s in ipairs({{B = 2, T = 3, C = 8, H = 2}, {B = 1, T = 1, C = 4, H = 1}, {B = 3, T = 5, C = 6, H = 3}}) do
  local tag = ("(B=%d, T=%d, C=%d, heads=%d)"):format(s.B, s.T, s.C, s.H)
  local x, W, b = P(s.B, s.T, s.C, f64), P(2 * s.C, s.C, f64), P(2 * s.C, f64)
  local r = dbm.randn(s.B, s.T, 2 * s.C, f64)
  gradcheck("linear with bias " .. tag, function() return (F.linear(x, W, b) * r):sum() end, {x, W, b})
  gradcheck("linear without bias " .. tag, function() return (F.linear(x, W) * r):sum() end, {x, W})

  local w, lb = P(s.C, f64), P(s.C, f64)
  local rc = dbm.randn(s.B, s.T, s.C, f64)
  gradcheck("layer_norm " .. tag, function() return (F.layer_norm(x, w, lb) * rc):sum() end, {x, w, lb})
  gradcheck("layer_norm without bias " .. tag, function() return (F.layer_norm(x, w, {eps = 1e-3}) * rc):sum() end, {x, w})
  gradcheck("gelu " .. tag, function() return (F.gelu(x) * rc):sum() end, {x})
  gradcheck("gelu tanh " .. tag, function() return (F.gelu(x, {approximate = "tanh"}) * rc):sum() end, {x})
  gradcheck("softmax " .. tag, function() return (F.softmax(x) * rc):sum() end, {x})

  local qkv = P(s.B, s.T, 3 * s.C, f64)
  gradcheck("causal_attention " .. tag, function() return (F.causal_attention(qkv, s.H) * rc):sum() end, {qkv})
  gradcheck("causal_attention with dropout " .. tag, function()
    return (F.causal_attention(qkv, s.H, {dropout = 0.3, generator = dbm.generator(3)}) * rc):sum()
  end, {qkv})
  gradcheck("dropout " .. tag, function()
    return (F.dropout(x, 0.4, {generator = dbm.generator(5)}) * rc):sum()
  end, {x})

  local V = s.C + 1
  local E = P(V, s.C, f64)
  local ids = dbm.tensor(s.T == 1 and {{V}} or {{1, V, 2}}, f64)
  gradcheck("embedding " .. tag, function() return (F.embedding(ids, E) * dbm.randn(ids:size(1), ids:size(2), s.C, {dtype = "float64", generator = dbm.generator(1)})):sum() end, {E})
  local logits = P(s.B * s.T, V, f64)
  local targets = {}
  for i = 1, s.B * s.T do targets[i] = (i * 7) % V + 1 end
  gradcheck("cross_entropy " .. tag, function() return F.cross_entropy(logits, targets) end, {logits})
end
local one_class = P(4, 1, f64)
gradcheck("cross_entropy with a single class", function() return F.cross_entropy(one_class, {1, 1, 1, 1}) + one_class:sum() end, {one_class})

-- ---------------------------------------------------------------- the tensor operators on the tape
local a, b2, m = P(3, 4, f64), P(3, 4, f64), P(4, 5, f64)
local row = P(4, f64)
gradcheck("+ - * with broadcasting and numbers", function()
  return ((a + b2) * (a - row) * 3 + 2 - a / 4 + 1 - b2 + (-a) * 0.5):sum()
end, {a, b2, row})
gradcheck("^2, square, tanh, sigmoid, relu", function()
  return (a ^ 2 + b2:square() + a:tanh() * b2:sigmoid() + (a - 0.1):relu()):mean()
end, {a, b2})
gradcheck("matmul, transpose, t", function()
  return a:matmul(m):t():matmul(b2):sum() + (a:transpose(1, 2):matmul(a) * a:transpose(1, 2):matmul(b2)):sum()
end, {a, b2, m})
gradcheck("reshape, narrow, row, select, contiguous", function()
  local y = a:reshape(2, 6):narrow(2, 2, 3):contiguous()
  return (y:sum(2) * y:mean(1):sum() + a[2]:sum() + a:select(2, 3):square():sum() + a:t():contiguous():sum(1):sum()):sum()
end, {a})
gradcheck("division by a constant tensor", function() return (a / dbm.full({4}, 2.5, f64)):sum() end, {a})
local pos = dbm.parameter(dbm.rand(3, 4, {low = 0.5, high = 2, dtype = "float64"}))
gradcheck("exp, log, sqrt, abs, ^p, a/b with broadcasting, number/x, clamp", function()
  return (a:exp() * 0.1 + pos:log() + pos:sqrt() * a:abs() + pos ^ 1.5 + pos ^ -0.5 + a / pos + b2 / row:exp()
          + 3 / pos + a:clamp(-0.5, 0.7) * 2 + dbm.clamp(a, nil, 0.2)):sum()
end, {a, b2, pos, row})
assert(a:sum().requires_grad and a:sum():dim() == 0, "sum of a tensor on the tape is a 0-d tensor")
assert(type(a:detach():sum()) == "number" and type(a:max()) == "number", "off the tape: numbers")

-- ---------------------------------------------------------------- nn modules
local cfg = {n_embd = 8, n_head = 2, n_layer = 2, dtype = "float64"}
local block = nn.Block(cfg)
for _, shape in ipairs({{2, 3}, {1, 1}, {1, 4}}) do
  local xb = P(shape[1], shape[2], 8, f64)
  local rb = dbm.randn(shape[1], shape[2], 8, f64)
  local params = block:parameters()
  for _, p in ipairs(params) do p:copy(dbm.randn(p:shape(), {dtype = "float64", std = 0.3})) end
  params[#params + 1] = xb
  gradcheck(("nn.Block at (B=%d, T=%d)"):format(shape[1], shape[2]), function() return (block(xb) * rb):sum() end, params, 4)
end
local mlp = nn.Sequential({nn.Linear(3, 5, f64), nn.GELU({approximate = "tanh"}), nn.Linear(5, 2, f64)})
local xs = dbm.randn(4, 3, f64)
local ps = mlp:parameters()
gradcheck("nn.Sequential of Linear, GELU, Linear", function() return F.cross_entropy(mlp(xs), {1, 2, 2, 1}) end, ps)
local emb, ln = nn.Embedding(5, 3, f64), nn.LayerNorm(3, f64)
gradcheck("nn.Embedding then nn.LayerNorm", function() return (ln(emb({{1, 5}, {2, 2}})) * dbm.randn(2, 2, 3, {dtype = "float64", generator = dbm.generator(2)})):sum() end, {emb.weight, ln.weight, ln.bias})

local gpt = nn.GPT{vocab_size = 7, block_size = 5, n_layer = 2, n_head = 2, n_embd = 4, dtype = "float64"}
for _, p in ipairs(gpt:parameters()) do p:copy(dbm.randn(p:shape(), {dtype = "float64", std = 0.5})) end
local gx, gy = dbm.tensor({{1, 7, 3, 3}, {2, 2, 6, 5}}), dbm.tensor({{7, 3, 3, 1}, {2, 6, 5, 4}})
gradcheck("nn.GPT with tied embedding and head", function() local _, l = gpt(gx, gy); return l end, gpt:parameters(), 5)
local gnames = {}
for name in gpt:named_parameters() do gnames[#gnames + 1] = name end
assert(gnames[1] == "transformer.wte.weight" and gnames[3] == "transformer.h.0.ln_1.weight" and #gnames == 2 + 12 + 1,
  table.concat(gnames, ","))
local gsd = gpt:state_dict()
assert(gsd["lm_head.weight"] == gsd["transformer.wte.weight"] and gsd["transformer.h.1.mlp.c_proj.weight"])
assert(gpt(dbm.tensor({{1}})):size(3) == 7 and #gpt:generate({1}, 8, {top_k = 3, generator = dbm.generator(1)}) == 9)

-- names, state, modes
local names = block:parameter_names()
assert(table.concat(names, ",") == "ln_1.weight,attn.c_attn.weight,attn.c_proj.weight,ln_2.weight,mlp.c_fc.weight,mlp.c_proj.weight",
  table.concat(names, ","))
local h = nn.ModuleList({nn.Block(cfg), nn.Block(cfg)})
local listed = {}
for name, p in h:named_parameters("transformer.h.") do listed[#listed + 1] = name; assert(p.requires_grad) end
assert(listed[1] == "transformer.h.0.ln_1.weight" and listed[12] == "transformer.h.1.mlp.c_proj.weight" and #listed == 12)
assert(#h == 2 and h[2] == h["1"] and h:num_parameters() == 2 * (8 + 24 * 8 + 64 + 8 + 32 * 8 + 32 * 8))
local copy = nn.ModuleList({nn.Block(cfg), nn.Block(cfg)})
copy:load_state_dict(h:state_dict())
for name, p in pairs(copy:state_dict()) do assert((p - h:state_dict()[name]):abs():max() == 0, name) end

local drop = nn.Dropout(0.5)
local ones = dbm.ones(1000, f64)
assert((drop(ones) - ones):abs():max() > 0, "dropout in training mode changes elements")
drop:eval()
assert(drop(ones) == ones, "dropout in eval mode is the identity (the same tensor)")
block:eval(); assert(not block.attn.resid_dropout.training); block:train(); assert(block.mlp.dropout.training)

block:zero_grad()
for _, p in ipairs(block:parameters()) do assert(p.grad == nil or p.grad:abs():max() == 0) end

-- gradients accumulate until zeroed; retain_graph allows a second backward
local w1 = P(3, f64)
local l1 = (w1 * 2):sum()
l1:backward({retain_graph = true}); l1:backward()
assert(math.abs(w1.grad[1] - 4) < 1e-15, "two backward passes accumulate: " .. w1.grad[1])
w1.grad = nil; assert(w1.grad == nil)
w1.grad = dbm.ones(3); assert(w1.grad:dtype() == "float64")
assert(w1.is_leaf and not (w1 * 2).is_leaf and (w1 * 2).grad_fn == "scale")
w1.requires_grad = false; assert(not (w1 * 2).requires_grad)

-- ---------------------------------------------------------------- misuse is a clear error
local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching '" .. pattern .. "'")
  err = tostring(err)
  assert(err:find(pattern, 1, true), "error '" .. err .. "' does not contain '" .. pattern .. "'")
  assert(err:find("autograd.lua:", 1, true), "error does not name the script's line: " .. err)
end
local x = P(2, 3, f64)
local loss = (x * x):sum()
loss:backward()
fails("freed graph", function() loss:backward() end)
fails("expected a scalar", function() (x * 2):backward() end)
fails("retain_graph", function() loss:backward() end)
fails("shape (2, 3)", function() (x * 2):backward(dbm.ones(3, 2)) end)
fails("dbm.F.linear", F.linear, x, dbm.randn(4, 2, f64))
fails("expected x of shape (..., 2) to match weight (4, 2), got (2, 3)", F.linear, x, dbm.randn(4, 2, f64))
fails("dbm.F.linear", F.linear, x, dbm.randn(4, 3))            -- float32 weight for float64 x
fails("dbm.F.embedding: argument 1 (ids): expected integers in 1..4, got 0", F.embedding, {0, 1}, dbm.randn(4, 2))
fails("expected integers in 1..4, got 1.5", F.embedding, {1.5}, dbm.randn(4, 2))
fails("dbm.F.cross_entropy: argument 2 (targets): expected 2 targets", F.cross_entropy, dbm.randn(2, 3), {1})
fails("expected integers in 1..3, got 4", F.cross_entropy, dbm.randn(2, 3), {1, 4})
fails("heads", F.causal_attention, dbm.randn(1, 2, 12), 5)
fails("dbm.F.causal_attention", F.causal_attention, dbm.randn(1, 2, 10), 1)
fails("dbm.F.layer_norm", F.layer_norm, dbm.randn(2, 3), dbm.ones(4))
fails("expected a probability", F.dropout, x, 1)
fails("dbm.F.gelu: option 'approximate'", F.gelu, x, {approximate = "fast"})
fails("dbm.sign: argument 1: expected a tensor without gradient tracking", dbm.sign, x)
fails("no derivative", function() return dbm.maximum(x, 0) end)
fails("no derivative", function() return 2 ^ x end)
fails("dbm.add", function() return x + dbm.ones(3, 3, f64) end)
fails("Tensor:backward", function() dbm.randn(2):backward() end)
fails("dbm.parameter: argument 1: expected a leaf", dbm.parameter, x * 2)
fails("Tensor.grad=", function() x.grad = dbm.ones(5) end)
fails("expected true or false", function() x.requires_grad = 1 end)
fails("cannot set field 'gard'", function() x.gard = 1 end)
fails("nn.Dropout", function() return nn.Dropout(2) end)
fails("Linear:param: the name 'weight' is already in use", function() local l = nn.Linear(2, 2); l:param("weight", dbm.zeros(1)) end)
fails("missing parameters", function() nn.Linear(2, 2):load_state_dict({weight = dbm.zeros(2, 2)}) end)
fails("expected shape (2, 2), got (3, 2)", function() nn.Linear(2, 2):load_state_dict({weight = dbm.zeros(3, 2), bias = dbm.zeros(2)}) end)
fails("unexpected names: wieght", function() nn.Linear(2, 2, {bias = false}):load_state_dict({weight = dbm.zeros(2, 2), wieght = dbm.zeros(1)}) end)
fails("dbm.no_grad", dbm.no_grad, 3)
fails("nn.GPT: expected n_embd (6) to be a multiple of n_head", function() return nn.GPT{vocab_size = 5, block_size = 4, n_layer = 1, n_head = 4, n_embd = 6} end)
fails("nn.GPT: expected block_size to be a positive integer, got 0", function() return nn.GPT{vocab_size = 5, block_size = 0, n_layer = 1, n_head = 1, n_embd = 6} end)
fails("GPT:forward: expected token ids of shape (B, T) with T <= block_size = 5", function() return gpt(dbm.ones(1, 6)) end)
assert(dbm.is_grad_enabled())
pcall(dbm.no_grad, function() error("inside") end)
assert(dbm.is_grad_enabled(), "no_grad restores the mode after an error")

-- In-place changes and the tape (issue 13): a backward that would read a changed tensor raises,
-- naming the op; an in-place write into a tensor on the tape raises, naming the op that made it.
do
  local function raises(pattern, f)
    local ok, err = pcall(f)
    assert(not ok and tostring(err):find(pattern, 1, true), "expected an error with " .. pattern .. ", got " .. tostring(err))
  end
  local p = dbm.parameter(dbm.ones(2, f64))
  local l = (p * p):sum()
  p:fill(3)
  raises("a tensor that 'mul' saved for its gradient was changed in place", function() l:backward() end)
  assert(p.grad == nil, "the refused backward left no gradient")
  local q = p * 2
  raises("got one computed by 'scale'", function() q[1] = 7 end)
  raises("got one computed by 'scale'", function() q:fill(0) end)
  raises("got one computed by 'scale'", function() q:copy(dbm.zeros(2, f64)) end)
  raises("got one computed by 'scale'", function() q:set(1, 7) end)
  -- an op that does not read its inputs (add) is not disturbed by a later change
  local a = (p + 1):sum()
  p:fill(5)
  a:backward()
  assert(p.grad[1] == 1 and p.grad[2] == 1, "d(sum(p + 1))/dp = 1")
  -- an optimizer step between forward and backward changes the weights the graph saved
  local lin = dbm.nn.Linear(3, 2, f64)
  local opt = dbm.optim.SGD(lin, {lr = 0.1})
  local x = dbm.randn(4, 3, f64)
  local loss = (lin(x) ^ 2):sum()
  loss:backward(); opt:step(); opt:zero_grad()
  local stale = (lin(x) ^ 2):sum()
  opt:step()
  raises("a tensor that 'linear' saved for its gradient was changed in place", function() stale:backward() end)
  -- off the tape, everything may be written
  local d = q:detach()
  d[1] = 7
  assert(d[1] == 7 and q:detach()[1] == 7, "a detached view writes the shared storage")
  -- ... but a tape tensor written that way (through t:detach() or a view taken under dbm.no_grad: the
  -- storage, and so its version, is shared) no longer holds what its op computed: a backward that
  -- reaches it raises, naming that op, before touching any gradient (PyTorch's shared version counter).
  local p3 = dbm.parameter(dbm.ones(2, 3, f64))
  local writes = {
    {"narrow under no_grad", function(t) dbm.no_grad(function() t:narrow(1, 1, 1):fill(7) end) end},
    {"a row t[1] under no_grad", function(t) dbm.no_grad(function() t[1]:fill(7) end) end},
    {"select under no_grad", function(t) dbm.no_grad(function() t:select(2, 3)[1] = 7 end) end},
    {"transpose under no_grad", function(t) dbm.no_grad(function() t:t():copy(dbm.zeros(3, 2, f64)) end) end},
    {"reshape under no_grad", function(t) dbm.no_grad(function() t:reshape(6):set(2, 7) end) end},
    {"t:detach()", function(t) t:detach():set(1, 1, 7) end},
  }
  for _, case in ipairs(writes) do
    local q3 = p3 * 2
    case[2](q3)
    raises("the result of 'scale' was changed in place before 'sum' used it", function() q3:sum():backward() end)
    local r3 = p3 * 2
    case[2](r3)
    raises("the result of 'scale' was changed in place after it was computed", function() r3:backward(dbm.ones(2, 3, f64)) end)
  end
  assert(p3.grad == nil, "the refused backwards left no gradient")
  -- a view on the tape taken before the write names its own op
  local q4 = p3 * 2
  local v4 = q4:narrow(2, 1, 2)
  q4:detach():fill(1)
  raises("the result of 'narrow' was changed in place before 'mul' used it", function() (v4 * v4):sum():backward() end)
  -- a write after the last use of the tensor changes nothing the backward reads: the gradient stands
  local q5 = p3 * 2
  local s5 = q5:sum()
  q5:detach():fill(0)
  s5:backward()
  assert(p3.grad[1][1] == 2 and p3.grad[2][3] == 2, "d(sum(2p))/dp = 2")
end

print(("autograd.lua: %d finite-difference entries agree to 1e-6"):format(checked))

-- diagnostics measure parameters in the middle of training (grad mode on), off the tape
local Wd = dbm.parameter(dbm.randn(40, 20))
local results = dbm.diagnostics({"spectrum", "mp", "norms", "spacing"}, Wd)
assert(results.spectrum and results.spectrum.lambda_max > 0 and results.norms.frobenius_norm > 0)
print("autograd.lua: diagnostics run on a parameter")
