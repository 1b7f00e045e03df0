-- dbm.optim: optimizers (the update rules run in Swift, DBMNN/Optimizer.swift), learning-rate schedules
-- and gradient clipping.
--
--   local opt = dbm.optim.AdamW(model, {lr = 6e-4, betas = {0.9, 0.95}, weight_decay = 0.1,
--                                       schedule = dbm.optim.cosine{lr = 6e-4, warmup = 100, total = 5000, min_lr = 6e-5}})
--   loss:backward(); dbm.optim.clip_grad_norm(model:parameters(), 1.0); opt:step(); opt:zero_grad()
--
-- Parameters are given as a module, an array of tensors, or an array of groups
-- {params = {...}, lr = ..., weight_decay = ...} (a group's missing settings come from the options).
-- A schedule is any function of the step (the number of steps taken so far, 0 for the first) returning
-- the learning rate; opt:step() applies it to every group before updating.
local dbm = require("dbm")
local core = dbm._core
local fail = dbm._fail

local optim = {}

local Optimizer = {}
Optimizer.__index = Optimizer
Optimizer.__name = "dbm.Optimizer"

local function is_module(x) return type(x) == "table" and type(x.parameters) == "function" and x._params ~= nil end

local function make(algorithm, params, opts, defaults)
  local what = "dbm.optim." .. defaults.name
  if opts ~= nil and type(opts) ~= "table" then fail("%s: argument 2 (options): expected a table, got %s", what, type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if not defaults.keys[k] then
      local known = {}
      for name in pairs(defaults.keys) do known[#known + 1] = name end
      table.sort(known)
      fail("%s: unknown option '%s': expected one of %s", what, tostring(k), table.concat(known, ", "))
    end
  end
  if opts.schedule ~= nil and type(opts.schedule) ~= "function" then
    fail("%s: option 'schedule': expected a function of the step, got %s", what, type(opts.schedule))
  end
  local lr = opts.lr or defaults.lr
  if lr == nil then fail("%s: expected a learning rate (option lr)", what) end
  local wd = opts.weight_decay or defaults.weight_decay
  if is_module(params) then params = params:parameters() end
  if type(params) ~= "table" then fail("%s: argument 1 (params): expected a module, an array of tensors or of groups, got %s", what, type(params)) end
  local groups = {}
  if #params > 0 and not dbm.is_tensor(params[1]) then
    for i, g in ipairs(params) do
      if type(g) ~= "table" or dbm.is_tensor(g) then fail("%s: argument 1 (params): entry %d is a %s, expected a group table", what, i, type(g)) end
      local ps = is_module(g.params) and g.params:parameters() or g.params
      groups[i] = {params = ps, lr = g.lr or lr, weight_decay = g.weight_decay or wd}
    end
  else
    groups[1] = {params = params, lr = lr, weight_decay = wd}
  end
  local ok, handle = pcall(core.optim_new, algorithm, groups, opts)
  if not ok then fail("%s", (tostring(handle):gsub("^.-dbm%.optim: ", what .. ": "))) end
  return setmetatable({_handle = handle, name = defaults.name, schedule = opts.schedule}, Optimizer)
end

local common = {lr = true, weight_decay = true, schedule = true}
local function keys(extra)
  local k = {}
  for name in pairs(common) do k[name] = true end
  for _, name in ipairs(extra) do k[name] = true end
  return k
end

--- dbm.optim.SGD(params, {lr, momentum=0, dampening=0, nesterov=false, weight_decay=0 (coupled: g + wd·θ), schedule})
function optim.SGD(params, opts)
  return make("sgd", params, opts, {name = "SGD", weight_decay = 0, keys = keys({"momentum", "dampening", "nesterov"})})
end

--- dbm.optim.Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0 (coupled, as L2), schedule})
function optim.Adam(params, opts)
  return make("adam", params, opts, {name = "Adam", lr = 1e-3, weight_decay = 0, keys = keys({"betas", "eps"})})
end

--- dbm.optim.AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01 (decoupled: θ·(1 − lr·wd)), schedule})
function optim.AdamW(params, opts)
  return make("adamw", params, opts, {name = "AdamW", lr = 1e-3, weight_decay = 0.01, keys = keys({"betas", "eps"})})
end

-- The optimizer's Swift object. A method called with a dot (opt.step()) or on something else fails
-- saying so, rather than with "attempt to index a nil value".
local function handle(self, method)
  if getmetatable(self) ~= Optimizer then
    fail("Optimizer:%s: expected to be called on an optimizer with a colon, opt:%s(...), got %s as self", method, method, type(self))
  end
  return self._handle
end

-- opt:step(): sets the scheduled learning rate (if any) for this step, then updates every parameter
-- that has a gradient.
function Optimizer:step()
  local h = handle(self, "step")
  if self.schedule then
    local lr = self.schedule(core.optim_step_count(h))
    if type(lr) ~= "number" or lr ~= lr or lr < 0 or lr == math.huge then
      fail("%s:step: the schedule returned %s for step %d, expected a finite non-negative learning rate",
        self.name, tostring(lr), core.optim_step_count(h))
    end
    core.optim_set_lr(h, lr)
  end
  core.optim_step(h)
end

function Optimizer:zero_grad(opts) core.optim_zero_grad(handle(self, "zero_grad"), opts) end
function Optimizer:set_lr(lr, group) core.optim_set_lr(handle(self, "set_lr"), lr, group) end
function Optimizer:lr(group) return core.optim_lr(handle(self, "lr"), group) end
function Optimizer:group_count() return core.optim_group_count(handle(self, "group_count")) end
function Optimizer:step_count() return core.optim_step_count(handle(self, "step_count")) end
function Optimizer:set_step_count(n) core.optim_set_step_count(handle(self, "set_step_count"), n) end
function Optimizer:parameters() return core.optim_parameters(handle(self, "parameters")) end
function Optimizer:state(p) return core.optim_state(handle(self, "state"), p) end
function Optimizer:load_state(p, state) core.optim_load_state(handle(self, "load_state"), p, state) end
-- opt:check_state(p, state): raises what load_state would raise, and changes nothing
function Optimizer:check_state(p, state) core.optim_check_state(handle(self, "check_state"), p, state) end
Optimizer.__tostring = function(self)
  return ("dbm.optim.%s (%d groups, %d steps, lr %g)"):format(self.name, self:group_count(), self:step_count(), self:lr())
end

--- dbm.optim.clip_grad_norm(params | module, max_norm) -> the gradients' global norm before clipping
function optim.clip_grad_norm(params, max_norm)
  if is_module(params) then params = params:parameters() end
  return core.clip_grad_norm(params, max_norm)
end

-- ---------------------------------------------------------------- schedules: functions of the step

local function number(what, opts, key, default)
  local v = opts[key]
  if v == nil then v = default end
  if type(v) ~= "number" or v ~= v then fail("%s: option '%s': expected a number, got %s", what, key, tostring(v)) end
  return v
end

--- dbm.optim.constant(lr) -> step ↦ lr
function optim.constant(lr)
  if type(lr) ~= "number" then fail("dbm.optim.constant: argument 1 (lr): expected a number, got %s", type(lr)) end
  return function() return lr end
end

--- dbm.optim.cosine{lr, warmup=0, total, min_lr=0} -> nanoGPT's schedule: linear warm-up
--- lr·(step+1)/(warmup+1) for step < warmup, then min_lr + ½(1 + cos(π·(step − warmup)/(total − warmup)))·(lr − min_lr),
--- and min_lr after total.
function optim.cosine(opts)
  local what = "dbm.optim.cosine"
  if type(opts) ~= "table" then fail("%s: expected a table {lr=, warmup=, total=, min_lr=}, got %s", what, type(opts)) end
  local lr, warmup = number(what, opts, "lr"), number(what, opts, "warmup", 0)
  local total, min_lr = number(what, opts, "total"), number(what, opts, "min_lr", 0)
  if warmup < 0 or total <= warmup then fail("%s: expected 0 <= warmup < total, got warmup = %g, total = %g", what, warmup, total) end
  return function(step)
    if step < warmup then return lr * (step + 1) / (warmup + 1) end
    if step > total then return min_lr end
    local ratio = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - min_lr)
  end
end

--- dbm.optim.step_decay{lr, every, gamma=0.1} -> step ↦ lr·gamma^⌊step/every⌋
function optim.step_decay(opts)
  local what = "dbm.optim.step_decay"
  if type(opts) ~= "table" then fail("%s: expected a table {lr=, every=, gamma=}, got %s", what, type(opts)) end
  local lr, every, gamma = number(what, opts, "lr"), number(what, opts, "every"), number(what, opts, "gamma", 0.1)
  if every < 1 then fail("%s: option 'every': expected a positive number of steps, got %g", what, every) end
  return function(step) return lr * gamma ^ (step // every) end
end

local help = {
  SGD = "dbm.optim.SGD(params, {lr, momentum=0, dampening=0, nesterov=false, weight_decay=0 (coupled), schedule}) -> opt",
  Adam = "dbm.optim.Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0 (coupled L2), schedule}) -> opt",
  AdamW = "dbm.optim.AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01 (decoupled), schedule}) -> opt; "
    .. "opt:step(), opt:zero_grad(), opt:set_lr(lr [, group]), opt:lr([group]), opt:state(p), opt:step_count()",
  clip_grad_norm = "dbm.optim.clip_grad_norm(params | module, max_norm) -> the global gradient norm before clipping (PyTorch's clip_grad_norm_)",
  constant = "dbm.optim.constant(lr) -> schedule: step -> lr",
  cosine = "dbm.optim.cosine{lr, warmup=0, total, min_lr=0} -> schedule: linear warm-up, cosine decay to min_lr (nanoGPT's)",
  step_decay = "dbm.optim.step_decay{lr, every, gamma=0.1} -> schedule: lr·gamma^floor(step/every)",
}
-- The help table stays a table: its entries (and those of nn.lua) look alike line by line because they are
-- data, one help line per function, not repeated code; the one loop that registers them is dbm._set_module_help.
dbm._set_module_help(optim, help)

return optim
