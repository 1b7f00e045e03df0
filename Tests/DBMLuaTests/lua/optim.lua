-- dbm.optim from Lua: schedules (evaluated in Swift) against their formulas, a schedule driving the
-- learning rate of each step, an SGD and an AdamW step against hand computations, parameter groups, clipping.
local function close(a, b, tol, what)
  if math.abs(a - b) > (tol or 1e-12) * math.max(1, math.abs(b)) then
    error(("%s: got %.17g, expected %.17g"):format(what, a, b), 2)
  end
end
local optim = dbm.optim

-- schedules: nanoGPT's get_lr (warm-up (it+1)/(warmup+1), cosine to min_lr, min_lr after total)
local cos = optim.cosine{lr = 1.0, warmup = 4, total = 14, min_lr = 0.1}
close(cos(0), 1 / 5, 1e-15, "warm-up start"); close(cos(3), 4 / 5, 1e-15, "warm-up end")
close(cos(4), 1.0, 1e-15, "peak"); close(cos(9), 0.1 + 0.45, 1e-15, "half-way")
close(cos(14), 0.1, 1e-15, "end"); close(cos(100), 0.1, 1e-15, "after the end")
local sd = optim.step_decay{lr = 2, every = 3, gamma = 0.5}
close(sd(0), 2, 0, "step 0"); close(sd(2), 2, 0, "step 2"); close(sd(3), 1, 0, "step 3"); close(sd(7), 0.5, 0, "step 7")
close(optim.constant(0.3)(12345), 0.3, 0, "constant")
assert(tostring(cos) == "dbm.optim.cosine{lr = 1.0, min_lr = 0.1, total = 14, warmup = 4}", tostring(cos))

-- SGD with momentum, driven by a schedule, against the update written out by hand (float64)
local w = dbm.parameter(dbm.tensor({1.0, -2.0}, {dtype = "float64"}))
local opt = optim.SGD({w}, {lr = 99, momentum = 0.9, schedule = function(step) return 0.1 / (step + 1) end})
local x, b = {1.0, -2.0}, {0, 0}
for step = 0, 4 do
  local lr = 0.1 / (step + 1)   -- the schedule's, exactly: the optimizer's lr option (99) is the base of the ratio
  close(opt:lr(), lr, 0, "scheduled learning rate of the update from step " .. step)
  local loss = (w * w):sum() * 0.5 + w:sum()   -- gradient w + 1
  loss:backward()
  opt:step(); opt:zero_grad()
  for i = 1, 2 do
    local g = x[i] + 1
    b[i] = step == 0 and g or 0.9 * b[i] + g
    x[i] = x[i] - lr * b[i]
  end
end
close(w[1], x[1], 1e-15, "SGD w[1]"); close(w[2], x[2], 1e-15, "SGD w[2]")
assert(opt:step_count() == 5 and w.grad:abs():max() == 0)
opt:zero_grad({set_to_none = true}); assert(w.grad == nil)

-- AdamW, two groups (decay only for the matrix), one step by hand: θ ← θ(1 − lr·wd) − lr·m̂/(√v̂ + eps)
local lin = dbm.nn.Linear(3, 2, {dtype = "float64"})
local decay, no_decay = {}, {}
for _, p in ipairs(lin:parameters()) do table.insert(p:dim() >= 2 and decay or no_decay, p) end
local adam = optim.AdamW({{params = decay, weight_decay = 0.1}, {params = no_decay, weight_decay = 0}}, {lr = 0.01, betas = {0.9, 0.95}})
local W0, b0 = lin.weight:clone(), lin.bias:clone()
local loss = dbm.F.linear(dbm.ones(1, 3, {dtype = "float64"}), lin.weight, lin.bias):sum()
loss:backward()
local gW = lin.weight.grad:clone()
adam:step()
for i = 1, 2 do
  for j = 1, 3 do
    local g = gW:get(i, j)
    local m, v = 0.1 * g / (1 - 0.9), 0.05 * g * g / (1 - 0.95)
    close(lin.weight:get(i, j), W0:get(i, j) * (1 - 0.01 * 0.1) - 0.01 * m / (math.sqrt(v) + 1e-8), 1e-14, "AdamW weight")
  end
  close(lin.bias[i], b0[i] - 0.01 * 1 / (1 + 1e-8), 1e-14, "AdamW bias (no decay)")
end
local st = adam:state(lin.weight)
close(st.exp_avg:get(1, 1), 0.1 * gW:get(1, 1), 1e-15, "exp_avg")
assert(adam:group_count() == 2 and #adam:parameters() == 2 and adam:parameters()[1] == lin.weight)

-- clipping through the module
lin.weight.grad = dbm.full({2, 3}, 3, {dtype = "float64"}); lin.bias.grad = dbm.full({2}, 4, {dtype = "float64"})
local norm = optim.clip_grad_norm(lin, 1)
close(norm, math.sqrt(6 * 9 + 2 * 16), 1e-14, "norm before clipping")
close(lin.weight.grad:norm() ^ 2 + lin.bias.grad:norm() ^ 2, (1 / (norm + 1e-6) * norm) ^ 2, 1e-12, "clipped norm")
print("optim.lua: schedules, SGD with a schedule, AdamW with groups and clipping agree with the formulas")
