-- dbm.optim: optimizers (the update rules run in Swift, DBMNN/Optimizer.swift), learning-rate schedules
-- and gradient clipping.
--
--   local opt = dbm.optim.AdamW(model, {lr = 6e-4, betas = {0.9, 0.95}, weight_decay = 0.1,
--                                       schedule = dbm.optim.cosine{lr = 6e-4, warmup = 100, total = 5000, min_lr = 6e-5}})
--   loss:backward(); dbm.optim.clip_grad_norm(model:parameters(), 1.0); opt:step(); opt:zero_grad()
--
-- Parameters are given as a module, an array of tensors, or an array of groups
-- {params = {...}, lr = ..., weight_decay = ...} (a group's missing settings come from the options).
--
-- The optimizer owns the learning rate. A schedule γ(t) gives the rate of the update from step t (the
-- number of steps taken so far, 0 for the first); group g's rate for it is lr_g · γ(t) / lr, with lr_g
-- the group's own rate and lr the optimizer's option: a group without a rate of its own follows the
-- schedule exactly, one with its own keeps its ratio to it. The schedules below are descriptions that
-- the optimizer evaluates in Swift at each step; any other function of the step is called once per
-- step, by opt:step(). opt:lr(g) is group g's rate for the next update: what opt:step() applies, what a
-- run logs (opt:lr_metrics()) and what a checkpoint saves.
local dbm = require("dbm")
local core = dbm._core
local fail = dbm._fail

local optim = {}

-- A schedule built by dbm.optim.constant, cosine or step_decay: a table {kind = ..., its constants} that
-- the optimizer reads once; schedule(step) is its rate for the update from step (computed in Swift).
local Schedule = {}
Schedule.__index = Schedule
Schedule.__name = "dbm.optim.Schedule"
Schedule.__call = function(self, step) return core.optim_schedule_rate(self, step) end
Schedule.__tostring = function(self)
  local keys = {}
  for k, v in pairs(self) do if k ~= "kind" then keys[#keys + 1] = ("%s = %s"):format(k, tostring(v)) end end
  table.sort(keys)
  return ("dbm.optim.%s{%s}"):format(self.kind, table.concat(keys, ", "))
end

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
  local schedule = opts.schedule
  if schedule ~= nil and type(schedule) ~= "function" and getmetatable(schedule) ~= Schedule then
    fail("%s: option 'schedule': expected a schedule (dbm.optim.cosine{...}, ...) or a function of the step, got %s", what, type(schedule))
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
  local constants = {}   -- the algorithm's, the base rate, and a schedule Swift evaluates
  for k, v in pairs(opts) do constants[k] = v end
  constants.lr, constants.schedule = lr, getmetatable(schedule) == Schedule and schedule or nil
  local ok, handle = pcall(core.optim_new, algorithm, groups, constants)
  if not ok then fail("%s", (tostring(handle):gsub("^.-dbm%.optim: ", what .. ": "))) end
  return setmetatable({_handle = handle, name = defaults.name, schedule = schedule,
                       _schedule_fn = type(schedule) == "function" and schedule or nil}, Optimizer)
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

-- opt:step(): updates every parameter that has a gradient, each group at its rate for this step: one
-- call into Swift, which evaluates the schedule (or calls the Lua function given as one).
function Optimizer:step() core.optim_step(handle(self, "step"), self._schedule_fn) end

--- opt:lr([group=1]) -> the group's rate for the next update (its own rate × schedule / base rate)
function Optimizer:lr(group) return core.optim_lr(handle(self, "lr"), group, self._schedule_fn) end

--- opt:lr_metrics() -> {lr = group 1's rate for the next update, lr_<k> = group k's where it differs}:
--- the learning rates a run logs at a step, rec:step(step, opt:lr_metrics()), as they will be applied.
function Optimizer:lr_metrics()
  local h = handle(self, "lr_metrics")
  local out = {lr = core.optim_lr(h, 1, self._schedule_fn)}
  for k = 2, core.optim_group_count(h) do
    local rate = core.optim_lr(h, k, self._schedule_fn)
    if rate ~= out.lr then out["lr_" .. k] = rate end
  end
  return out
end

function Optimizer:zero_grad(opts) core.optim_zero_grad(handle(self, "zero_grad"), opts) end
-- opt:set_lr(lr [, group]): the own rate of one group (all when nil); a schedule scales it
function Optimizer:set_lr(lr, group) core.optim_set_lr(handle(self, "set_lr"), lr, group) end
-- opt:group_lr([group=1]) -> the group's own rate (what the constructor or set_lr gave it)
function Optimizer:group_lr(group) return core.optim_group_lr(handle(self, "group_lr"), group) end
function Optimizer:group_count() return core.optim_group_count(handle(self, "group_count")) end
function Optimizer:step_count() return core.optim_step_count(handle(self, "step_count")) end
function Optimizer:set_step_count(n) core.optim_set_step_count(handle(self, "set_step_count"), n) end
function Optimizer:parameters() return core.optim_parameters(handle(self, "parameters")) end
function Optimizer:state(p) return core.optim_state(handle(self, "state"), p) end
function Optimizer:load_state(p, state) core.optim_load_state(handle(self, "load_state"), p, state) end
-- opt:check_state(p, state): raises what load_state would raise, and changes nothing
function Optimizer:check_state(p, state) core.optim_check_state(handle(self, "check_state"), p, state) end
Optimizer.__tostring = function(self)   -- (printing never fails, even when a Lua schedule does)
  local ok, lr = pcall(self.lr, self)
  return ("dbm.optim.%s (%d groups, %d steps, lr %s)"):format(self.name, self:group_count(), self:step_count(),
    ok and ("%g"):format(lr) or "?")
end

--- dbm.optim.clip_grad_norm(params | module, max_norm) -> the gradients' global norm before clipping
function optim.clip_grad_norm(params, max_norm)
  if is_module(params) then params = params:parameters() end
  return core.clip_grad_norm(params, max_norm)
end

-- ---------------------------------------------------------------- schedules (DBMNN/LearningRateSchedule.swift)

-- The schedule of that kind with the given constants, checked in Swift.
local function schedule(kind, opts, fields)
  local what = "dbm.optim." .. kind
  if type(opts) ~= "table" then fail("%s: expected a table %s, got %s", what, fields, type(opts)) end
  local s = {}
  for k, v in pairs(opts) do s[k] = v end
  s.kind = kind
  local ok, err = pcall(core.optim_schedule_check, s)
  if not ok then fail("%s", (tostring(err):gsub("^.-dbm%.optim%.schedule: ", what .. ": "))) end
  return setmetatable(s, Schedule)
end

--- dbm.optim.constant(lr) -> step ↦ lr
function optim.constant(lr)
  if type(lr) ~= "number" then fail("dbm.optim.constant: argument 1 (lr): expected a number, got %s", type(lr)) end
  return schedule("constant", {lr = lr}, "")
end

--- dbm.optim.cosine{lr, warmup=0, total, min_lr=0} -> nanoGPT's schedule: linear warm-up
--- lr·(step+1)/(warmup+1) for step < warmup, then min_lr + ½(1 + cos(π·(step − warmup)/(total − warmup)))·(lr − min_lr),
--- and min_lr after total.
function optim.cosine(opts) return schedule("cosine", opts, "{lr=, warmup=, total=, min_lr=}") end

--- dbm.optim.step_decay{lr, every, gamma=0.1} -> step ↦ lr·gamma^⌊step/every⌋
function optim.step_decay(opts) return schedule("step_decay", opts, "{lr=, every=, gamma=}") end

local help = {
  SGD = "dbm.optim.SGD(params, {lr, momentum=0, dampening=0, nesterov=false, weight_decay=0 (coupled), schedule}) -> opt",
  Adam = "dbm.optim.Adam(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0 (coupled L2), schedule}) -> opt",
  AdamW = "dbm.optim.AdamW(params, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01 (decoupled), schedule}) -> opt; "
    .. "opt:step(), opt:zero_grad(), opt:lr([group]) (the rate of the next update), opt:lr_metrics(), "
    .. "opt:set_lr(lr [, group]) and opt:group_lr([group]) (a group's own rate, which the schedule scales), opt:state(p), opt:step_count()",
  clip_grad_norm = "dbm.optim.clip_grad_norm(params | module, max_norm) -> the global gradient norm before clipping (PyTorch's clip_grad_norm_)",
  constant = "dbm.optim.constant(lr) -> schedule: step -> lr",
  cosine = "dbm.optim.cosine{lr, warmup=0, total, min_lr=0} -> schedule: linear warm-up, cosine decay to min_lr (nanoGPT's)",
  step_decay = "dbm.optim.step_decay{lr, every, gamma=0.1} -> schedule: lr·gamma^floor(step/every)",
}
-- The help table stays a table: its entries (and those of nn.lua) look alike line by line because they are
-- data, one help line per function, not repeated code; the one loop that registers them is dbm._set_module_help.
dbm._set_module_help(optim, help)

return optim
