-- Checkpoints: one safetensors file (DESIGN §8) with
--   <parameter name>                 the model's parameters under their dotted names (after `prefix`)
--   optim.<parameter name>.<state>   the optimizer's state of that parameter (exp_avg, exp_avg_sq, momentum_buffer)
--   optim.step_count                 the number of steps taken (0-d, float64)
--   optim.lr                         each group's rate for the update from that step (float64): the rate
--                                    the optimizer applied next, and applies next when resumed
--   optim.group_lr                   each group's own rate, which a schedule scales (float64). Files
--                                    written before it existed hold optim.lr only: the rate of the
--                                    last step, which is the groups' own rates when there is no schedule
--   rng.<name>                       each named generator's state (float64, 12 exact 32-bit halves)
-- and the metadata strings `format` = "dbm-lua checkpoint", `step`, and the caller's own entries.
-- Without an optimizer and generators the file holds the weights only (model.safetensors).
-- Loading reads tensors and strings only: nothing in the file is ever executed.
local dbm = require("dbm")
local fail = dbm._fail

local C = {}

local function check_opts(what, opts)
  if type(opts) ~= "table" then fail("%s: argument 2: expected a table {model = ..., optimizer = ..., generators = ...}, got %s", what, type(opts)) end
  if opts.model == nil or type(opts.model) ~= "table" or type(opts.model.named_parameters) ~= "function" then
    fail("%s: expected an nn module as 'model', got %s", what, type(opts.model))
  end
  if opts.generators ~= nil and type(opts.generators) ~= "table" then
    fail("%s: 'generators': expected a table name -> generator, got %s", what, type(opts.generators))
  end
end

local function metadata_string(what, key, v)
  if type(v) == "string" then return v end
  if math.type(v) == "integer" or type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then return string.format("%.17g", v) end
  fail("%s: metadata '%s': expected a string, number or boolean, got %s", what, tostring(key), type(v))
end

--- dbm.save_checkpoint(path, {model=, prefix="", optimizer=, generators = {name = g}, step=, metadata = {}})
function C.save(path, opts)
  local what = "dbm.save_checkpoint"
  if type(path) ~= "string" then fail("%s: argument 1 (path): expected a string, got %s", what, type(path)) end
  check_opts(what, opts)
  local list, names_of = {}, {}
  for name, p in opts.model:named_parameters(opts.prefix, true) do   -- tied tensors under each name
    list[#list + 1] = {name, p}
    names_of[p] = names_of[p] or name
  end
  local opt = opts.optimizer
  if opt ~= nil then
    for _, p in ipairs(opt:parameters()) do
      local name = names_of[p]
      if name == nil then fail("%s: the optimizer holds a tensor of shape (%s) that is not a parameter of the model", what, table.concat(p:shape(), ", ")) end
      local state, keys = opt:state(p), {}
      for k in pairs(state) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do list[#list + 1] = {"optim." .. name .. "." .. k, state[k]} end
    end
    list[#list + 1] = {"optim.step_count", dbm.tensor(opt:step_count(), {dtype = "float64"})}
    local rates, own = {}, {}
    for g = 1, opt:group_count() do rates[g], own[g] = opt:lr(g), opt:group_lr(g) end
    list[#list + 1] = {"optim.lr", dbm.tensor(rates, {dtype = "float64"})}
    list[#list + 1] = {"optim.group_lr", dbm.tensor(own, {dtype = "float64"})}
  end
  local gnames = {}
  for name in pairs(opts.generators or {}) do gnames[#gnames + 1] = name end
  table.sort(gnames)
  for _, name in ipairs(gnames) do
    local g = opts.generators[name]
    if getmetatable(g) ~= getmetatable(dbm.default_generator()) then fail("%s: generators.%s: expected a generator, got %s", what, tostring(name), type(g)) end
    list[#list + 1] = {"rng." .. name, g:state()}
  end
  local meta = {format = "dbm-lua checkpoint"}
  if opts.step ~= nil then meta.step = metadata_string(what, "step", opts.step) end
  for k, v in pairs(opts.metadata or {}) do meta[k] = metadata_string(what, k, v) end
  dbm.save_safetensors(path, list, meta)
end

-- The learning rates under key, one finite rate >= 0 per group of opt (nil if absent and not required).
local function group_rates(what, path, tensors, key, opt, required)
  local t = tensors[key]
  if t == nil and not required then return nil end
  if t == nil or t:numel() ~= opt:group_count() then
    fail("%s: '%s': expected %s with %d learning rates, got %s", what, path, key, opt:group_count(), t and t:numel() or "none")
  end
  for g = 1, opt:group_count() do
    local lr = t[g]
    if lr ~= lr or lr < 0 or lr == math.huge then fail("%s: '%s': %s[%d] is %s, expected a finite rate >= 0", what, path, key, g, tostring(lr)) end
  end
  return t
end

-- The optimizer's entries of a checkpoint, checked: each parameter's state, the step count and the
-- groups' own learning rates. Returns the function that loads them into opts.optimizer.
local function check_optimizer(what, path, tensors, opts)
  local opt, states = opts.optimizer, {}
  local count = tensors["optim.step_count"]
  local step_count = count and count:numel() == 1 and math.tointeger(count:item())
  if not step_count or step_count < 0 then
    fail("%s: '%s': expected optim.step_count, one whole number >= 0, got %s", what, path, count and tostring(count:numel()) .. " values" or "none")
  end
  local applied = group_rates(what, path, tensors, "optim.lr", opt, true)
  local own = group_rates(what, path, tensors, "optim.group_lr", opt, false)
  -- A file from before optim.group_lr: without a schedule its optim.lr is the groups' own rates; with
  -- one it is the schedule's value at the last step, no group's own rate, so the optimizer keeps its
  -- own (as it did then, when the next step overwrote what was loaded).
  if own == nil and opt.schedule == nil then own = applied end
  local names_of = {}
  for name, p in opts.model:named_parameters(opts.prefix) do names_of[p] = name end   -- first names, as saved
  for _, p in ipairs(opt:parameters()) do
    local name = names_of[p]
    if name == nil then fail("%s: the optimizer holds a tensor that is not a parameter of the model", what) end
    local state, head = {}, "optim." .. name .. "."
    for key, t in pairs(tensors) do
      if key:sub(1, #head) == head and not key:sub(#head + 1):find("%.") then state[key:sub(#head + 1)] = t end
    end
    local good, why = pcall(opt.check_state, opt, p, state)
    if not good then fail("%s: '%s': %s: %s", what, path, name, (tostring(why):gsub("^.-check_state: ", ""))) end
    states[#states + 1] = {p, state}
  end
  return function()
    for _, ps in ipairs(states) do opt:load_state(ps[1], ps[2]) end
    opt:set_step_count(step_count)
    if own then for g = 1, opt:group_count() do opt:set_lr(own[g], g) end end
  end
end

--- dbm.load_checkpoint(path, {model=, prefix="", optimizer=, generators = {name = g}, strict=true}) -> step, metadata
--- All or nothing: every entry (weights, optimizer state, step count, learning rates, generator states)
--- is checked before the model, the optimizer or a generator changes.
function C.load(path, opts)
  local what = "dbm.load_checkpoint"
  if type(path) ~= "string" then fail("%s: argument 1 (path): expected a string, got %s", what, type(path)) end
  check_opts(what, opts)
  local ok, tensors, meta = pcall(dbm.load_safetensors, path)
  if not ok then fail("%s", (tostring(tensors):gsub("^.-dbm%.load_safetensors: ", what .. ": "))) end
  local weights = {}
  for name, t in pairs(tensors) do
    if name:sub(1, 6) ~= "optim." and name:sub(1, 4) ~= "rng." then weights[name] = t end
  end
  local model_opts = {strict = opts.strict, prefix = opts.prefix, check_only = true}
  local checked, err = pcall(opts.model.load_state_dict, opts.model, weights, model_opts)
  if not checked then fail("%s: '%s': %s", what, path, (tostring(err):gsub("^.-load_state_dict: ", ""))) end

  -- The optimizer: each parameter's state, the step count and the groups' own learning rates.
  local load_optimizer = opts.optimizer ~= nil and check_optimizer(what, path, tensors, opts)

  -- The generators: a state each, tried on a scratch generator.
  local rng = {}
  for name, g in pairs(opts.generators or {}) do
    local t = tensors["rng." .. name]
    if t == nil then fail("%s: '%s' holds no state for the generator '%s' (no rng.%s)", what, path, tostring(name), tostring(name)) end
    local good, why = pcall(function() dbm.generator(0):set_state(t) end)
    if not good then fail("%s: '%s': rng.%s: %s", what, path, tostring(name), (tostring(why):gsub("^.-set_state: ", ""))) end
    rng[#rng + 1] = {g, t}
  end

  -- Everything checked: now change what was asked.
  model_opts.check_only = nil
  opts.model:load_state_dict(weights, model_opts)
  if load_optimizer then load_optimizer() end
  for _, gt in ipairs(rng) do gt[1]:set_state(gt[2]) end
  return meta.step and tonumber(meta.step), meta
end

--- dbm.checkpoint_on_exit{save = function(step), optimizer =, generators = {name = g}, name =, dir =} -> guard:
--- when the program ends before guard:finish() (Ctrl-C, an error, os.exit), save(step) writes the state
--- at the start of an iteration, so that a resumed run redoes it as the uninterrupted run did. The
--- parameters change only inside optimizer:step(): before the current iteration's step, that state is the
--- parameters as they are with the generators rewound to their states at guard:iteration(step); after
--- it, the state as it is, the start of the next iteration.
function C.on_exit(opts)
  dbm._check_options("dbm.checkpoint_on_exit", opts, {"save", "optimizer", "generators", "name", "dir"})
  local guard, finished, iteration, rng_at_start = {}, false, nil, nil
  function guard.iteration(_, step)
    local states = {}   -- complete before it replaces the last iteration's (Ctrl-C may come in between)
    for name, g in pairs(opts.generators or {}) do states[name] = g:state() end
    iteration, rng_at_start = step, states
  end
  function guard.finish() finished = true end
  dbm.on_exit(function()
    if finished then return end
    local step = opts.optimizer:step_count()
    if step == iteration and rng_at_start then
      for name, g in pairs(opts.generators or {}) do g:set_state(rng_at_start[name]) end
    end
    local ok, err = pcall(opts.save, step)
    io.stderr:write(ok and ("%s: interrupted; checkpoint of step %d in %s (continue with --resume=%s)\n"):format(opts.name, step, opts.dir, opts.dir)
      or ("%s: could not write the checkpoint: %s\n"):format(opts.name, tostring(err)))
  end)
  return guard
end

return C
