-- dbm.models: the paper's small models (DESIGN §3). The hot loops run in Swift (DBMModels); Lua drives
-- the steps, the schedule and the recording.
--
--   local m = dbm.models.teacher_student{lr = 0.1, batch_size = 16, eps = 0.1, seed = 1}
--   local rec = dbm.recorder{config = cfg}
--   rec:watch("W", m.weight, {every = 500})           -- m.weight is live: every step updates it
--   for epoch = 1, 10 do m:step(500); rec:step(m.steps, m:scalars()) end
--
--   local final = dbm.models.ensemble("teacher_student", {seeds = 2000, epochs = 10})   -- (2000, 2)
--
-- Every model has m:step([n]), m:run(steps, every, after) (steps in chunks, after(done) after each),
-- m.weight (a float64 tensor), m:levels() (ascending, float64), m.steps, m.name and m:scalars() (a table
-- for rec:step).
local dbm = require("dbm")
local core = dbm._core
local fail = dbm._fail

local models = {}

--- Raises an error naming the script's line for an unknown key of opts (a table or nil).
local function check_options(what, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" or dbm.is_tensor(opts) then
    fail("%s: expected a table of options, got %s", what, dbm.is_tensor(opts) and "a tensor" or type(opts))
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      fail("%s: unknown option '%s': expected one of %s", what, tostring(k), table.concat(names, ", "))
    end
  end
  return opts
end

--- Calls a core function, re-raising its error at the script's line under the name `what` (the core's
--- message starts with a position and the core function's name: both are dropped).
local function call(what, f, ...)
  local results = table.pack(pcall(f, ...))
  if not results[1] then
    local message = tostring(results[2]):gsub("^[^\n]-:%d+: ", "", 1):gsub("^[%w_%.:]+: ", "", 1)
    fail("%s: %s", what, message)
  end
  return table.unpack(results, 2, results.n)
end

local function keys(list)
  local t = {}
  for _, k in ipairs(list) do t[k] = true end
  return t
end

local constructors = {
  teacher_student = {core.model_teacher_student, keys{"lr", "batch_size", "eps", "n_data", "seed"}},
  rbm_scalar = {core.model_rbm_scalar, keys{"lr", "batch_size", "k", "mass", "field_mass", "n", "target_kernel", "seed"}},
  dyson = {core.model_dyson, keys{"n", "potential", "k", "rows", "variance", "temperature", "dt", "levels", "seed"}},
  matrix_bm = {core.model_matrix_bm, keys{"rows", "cols", "dt", "temperature", "restoring", "initial", "seed"}},
  rbm_bernoulli = {core.model_rbm_bernoulli, keys{"data", "hidden", "lr", "weight_decay", "batch_size", "k", "persistent",
                                                  "binarize", "seed"}},
}
local ensembles = {
  teacher_student = {core.model_teacher_student_ensemble, keys{"seeds", "seed", "epochs", "lr", "batch_size", "eps", "history"}},
  rbm_scalar = {core.model_rbm_scalar_ensemble, keys{"seeds", "seed", "steps", "lr", "batch_size", "k", "mass", "field_mass", "n",
                                                     "history", "burn_in", "record_every"}},
}

local core_names = {teacher_student = "model_teacher_student", rbm_scalar = "model_rbm_scalar", dyson = "model_dyson",
                    matrix_bm = "model_matrix_bm", rbm_bernoulli = "model_rbm_bernoulli"}
for name, c in pairs(constructors) do
  local what = "dbm.models." .. name
  models[name] = function(opts)
    return call(what, c[1], check_options(what, opts, c[2]))
  end
  dbm._set_help(models[name], core._help[core_names[name]])
end

--- dbm.models.ensemble(name, opts) -> tensor: independent seeds (seed, seed + 1, …) of a model run in Swift
--- on all cores; the final levels as (seeds × levels), ascending in each row (with history = true, every
--- record: (seeds, records, levels)).
function models.ensemble(name, opts)
  local e = ensembles[name]
  if e == nil then
    local names = {}
    for n in pairs(ensembles) do names[#names + 1] = n end
    table.sort(names)
    fail("dbm.models.ensemble: argument 1 (model): expected one of %s, got %s", table.concat(names, ", "), tostring(name))
  end
  local what = "dbm.models.ensemble(\"" .. name .. "\")"
  return call(what, e[1], check_options(what, opts, e[2]))
end

-- ---------------------------------------------------------------- the model objects

local Model = {}
Model.__index = Model
function Model.step(m, n) return call("m:step", core.model_step, m, n) end
function Model.levels(m) return core.model_levels(m) end
function Model.scalars(m) return core.model_scalars(m) end
function Model.info(m) return core.model_info(m) end
function Model.stationary_cdf(m, x) return call("m:stationary_cdf", core.model_stationary_cdf, m, x) end
function Model.reconstruction_error(m, x, limit) return call("m:reconstruction_error", core.model_rbm_reconstruction_error, m, x, limit) end
function Model.biases(m) return call("m:biases", core.model_rbm_biases, m) end
function Model.log_likelihood(m, x) return call("m:log_likelihood", core.model_rbm_log_likelihood, m, x) end

--- m:run(steps, every, after) -> m: `steps` more steps in chunks of `every` (the last one shorter when
--- `every` does not divide `steps`), calling after(done) at the end of each chunk, done counting the steps
--- of this call: an experiment's loop that records every `every` steps and once at the end.
function Model.run(m, steps, every, after)
  if math.type(steps) ~= "integer" or steps < 0 then
    fail("m:run: argument 1 (steps): expected a whole number >= 0, got %s", tostring(steps))
  end
  if math.type(every) ~= "integer" or every < 1 then
    fail("m:run: argument 2 (every): expected a whole number >= 1, got %s", tostring(every))
  end
  if type(after) ~= "function" then fail("m:run: argument 3 (after): expected a function, got %s", type(after)) end
  local done = 0
  while done < steps do
    local chunk = math.min(every, steps - done)
    m:step(chunk)
    done = done + chunk
    after(done)
  end
  return m
end

local properties = {weight = core.model_weight, steps = core.model_steps, name = core.model_name}
models.Model = Model

dbm._set_help(models.ensemble, "dbm.models.ensemble(\"teacher_student\" | \"rbm_scalar\", {seeds=, seed=0, history=false, ...the model's options; teacher_student: epochs=10; rbm_scalar: steps=100000, burn_in=, record_every=}) -> (seeds × levels) float64 tensor of the final levels (ascending), or (seeds, records, levels) with history = true; seeds seed, seed + 1, … run on all cores")
for name, f in pairs(Model) do
  local text = core._help["model_" .. name] or core._help["model_rbm_" .. name]
  if text then dbm._set_help(f, text) end
end
dbm._set_help(Model.run, "m:run(steps, every, after) -> m: steps more steps in chunks of every, calling after(done) after each "
  .. "(done: the steps of this call so far; the last chunk is shorter when every does not divide steps)")

local mt = core._model_mt
mt.__index = function(m, k)
  local p = properties[k]
  if p then return p(m) end
  local f = Model[k]
  if f == nil then
    fail("a %s model has no field '%s' (fields: weight, steps, name; methods: step, run, levels, scalars, info; stationary_cdf for Dyson; reconstruction_error, biases, log_likelihood for the Bernoulli RBM)", core.model_name(m), tostring(k))
  end
  return f
end
mt.__tostring = function(m)
  return ("dbm.Model (%s, %d steps, weight %s)"):format(core.model_name(m), core.model_steps(m),
    table.concat(core.model_weight(m):shape(), "×"))
end

return models
