-- dbm.diagnostics: the runner of the random-matrix diagnostic plugins (DESIGN §8).
--
-- A plugin is a Lua file NAME.lua in a folder of $DBM_LUA_PATH or in the project's plugins/ (the
-- search path is dbm.plugin_path, read at each lookup: a test or a script may prepend its own folder,
-- "DIR/?.lua;" .. dbm.plugin_path). It returns {name = "NAME", doc = "...", run = function(ctx) ... end};
-- `run` returns a table of named scalars (numbers, booleans, strings) and arrays (tensors or Lua arrays
-- of numbers; a record of such arrays one level deep, e.g. histogram = {counts = ..., edges = ...}).
--
-- All plugins named for one matrix share one context, so one eigendecomposition per matrix and per
-- record:
--   ctx.matrix       the 2-D tensor, or nil when levels were given directly
--   ctx.eigenvalues  ascending Float64 1-D tensor: eigvalsh of the matrix when ctx.symmetric, else of the
--                    smaller Gram matrix dbm.gram(W) (WᵀW or WWᵀ); or the given levels, sorted
--   ctx.levels       the same as a plain Lua array (made on first use; each plugin gets its own copy)
--   ctx.shape        {rows, cols} of the matrix, or nil
--   ctx.symmetric    true when the matrix was marked symmetric
--   ctx.options      the caller's options table ({} by default), the same for every plugin
--   ctx:eigenvectors() -> vectors, values: eigh of the matrix when symmetric, else of the Gram matrix
--                    (so the columns are the right singular vectors v_i of W when rows ≥ cols, the left
--                    ones u_i otherwise); computed once on first call, ascending like ctx.eigenvalues.
--
-- Errors: a plugin that cannot be found or loaded (syntax error, bad table) is an error at load time,
-- naming the file and line. A plugin whose run raises an error or returns garbage is a *failure*: D.run
-- returns it with a message naming the plugin's file and line, and goes on with the other plugins.
local dbm = require "dbm"

local D = {}

local is_tensor = dbm.is_tensor
-- Errors name the script's line once, wherever they are raised (here, or in a core function D.context calls).
local fail = dbm._fail

-- ---------------------------------------------------------------- loading

local cache = {}           -- name or path -> plugin table

local function search_folders()
  local dirs = {}
  for template in dbm.plugin_path:gmatch("[^;]+") do dirs[#dirs + 1] = (template:gsub("/%?%.lua$", "")) end
  return table.concat(dirs, ", ")
end

local function validate(p, where)
  if type(p) ~= "table" then
    return nil, ("%s: expected the plugin to return {name = ..., doc = ..., run = function(ctx) ... end}, got %s")
      :format(where, p == nil and "nothing" or type(p))
  end
  local missing = {}
  if type(p.name) ~= "string" or p.name == "" then missing[#missing + 1] = "name (a string)" end
  if type(p.doc) ~= "string" then missing[#missing + 1] = "doc (a string)" end
  if type(p.run) ~= "function" then missing[#missing + 1] = "run (a function of ctx)" end
  if #missing > 0 then
    return nil, ("%s: the plugin table lacks %s"):format(where, table.concat(missing, ", "))
  end
  return p
end

--- D.load(name) -> plugin table {name, doc, run, file}, cached. `name` is a plugin name (searched in
--- dbm.plugin_path), a path to a .lua file, or a plugin table given directly (validated, file "(table)").
function D.load(name)
  if type(name) == "table" then
    local p, err = validate(name, "diagnostic table")
    if not p then fail("%s", err) end
    p.file = p.file or "(table)"
    return p
  end
  if type(name) ~= "string" then
    fail("diagnostics: expected a plugin name, a path to a .lua file or a plugin table, got %s", type(name))
  end
  if cache[name] then return cache[name] end
  local path = name
  local by_path = name:find("/", 1, true) or name:match("%.lua$")
  if not by_path then
    path = dbm.find_plugin(name)
    if not path then
      fail("diagnostics: no plugin '%s': no file %s.lua in %s", name, name, search_folders())
    end
  end
  local chunk, err = loadfile(path)
  if not chunk then fail("diagnostics: cannot load plugin '%s': %s", name, err) end
  -- The plugin's own message names its line; a traceback here would repeat the script's frames (and
  -- its position) inside the message.
  local ok, p = pcall(chunk)
  if not ok then fail("diagnostics: plugin file %s raised an error when loaded: %s", path, tostring(p)) end
  local valid, why = validate(p, path)
  if not valid then fail("diagnostics: %s", why) end
  local stem = path:match("([^/]+)%.lua$")
  if not by_path and p.name ~= name then
    fail("diagnostics: %s declares name = '%s'; a plugin's name must be its file name ('%s')", path, p.name, name)
  end
  p.file = path
  cache[name] = p
  if stem ~= name then cache[path] = p end
  return p
end

--- D.clear(): forget the loaded plugins (the next D.load reads the files again).
function D.clear() cache = {} end

--- D.available() -> sorted names of the plugins in the search path (first folder wins).
function D.available()
  local names, seen = {}, {}
  for template in dbm.plugin_path:gmatch("[^;]+") do
    local dir = template:match("^(.*)/%?%.lua$")
    if dir then
      local ls = io.popen("ls -1 " .. dbm._shell_quote(dir) .. " 2>/dev/null")
      if ls then
        for file in ls:lines() do
          local n = file:match("^([%w_%-]+)%.lua$")
          if n and not seen[n] then seen[n] = true; names[#names + 1] = n end
        end
        ls:close()
      end
    end
  end
  table.sort(names)
  return names
end

-- ---------------------------------------------------------------- the shared context

local Context = {}
local context_mt = {}

function context_mt.__index(ctx, key)
  if key == "levels" then
    local levels = ctx.eigenvalues:totable()
    rawset(ctx, "levels", levels)
    return levels
  end
  return Context[key]
end

--- ctx:eigenvectors() -> vectors (columns, Float64), values: eigh of the matrix (symmetric) or of its
--- smaller Gram matrix; computed once.
function Context:eigenvectors()
  local base = self._base
  if not base._vectors then
    if not base.matrix then error("ctx:eigenvectors(): no matrix (the levels were given directly)", 2) end
    local values, vectors = dbm.eigh(base.symmetric and base.matrix or base._gram or dbm.gram(base.matrix))
    base._vectors, base._vector_values = vectors, values
  end
  return base._vectors, base._vector_values
end

-- Symmetry is checked, not assumed: eigvalsh reads one triangle only and would silently give the
-- levels of a different matrix. Tolerances allow the rounding of a product like XᵀX in each dtype.
local function check_symmetric(x)
  local scale = x:abs():max()
  if scale == 0 then return end
  local asym = (x - x:t()):abs():max()
  local tol = x:dtype() == "float32" and 1e-4 or 1e-10
  if asym > tol * scale then
    return ("marked symmetric, but max|A - Aᵀ| = %.3g (%.3g of max|A|): symmetrise it, (A + Aᵀ)/2, or watch it as general")
      :format(asym, asym / scale)
  end
end

local function sorted_levels(t)
  return (dbm.sort(t:to("float64")))
end

--- D.context(x, opts) -> ctx for the plugins (see the top of this file). x: a 2-D tensor (a matrix),
--- a 1-D tensor or a Lua array of numbers (levels). opts: {symmetric = bool, options = table,
--- eigenvalues = the matrix's levels when already computed (dbm.gram_levels: analyze computes those of
--- several matrices at once), ascending Float64, used as they are}.
function D.context(x, opts)
  opts = dbm._check_options("dbm.diagnostics", opts, {"symmetric", "options", "eigenvalues"})
  local ctx = {symmetric = opts.symmetric and true or false, options = opts.options or {}}
  ctx._base = ctx
  if is_tensor(x) then
    x = x:detach()   -- a measurement: plugins see the values, off the gradient tape
    local d = x:dim()
    if d == 2 then
      local shape = x:shape()
      ctx.matrix, ctx.shape = x, {shape[1], shape[2]}
      if ctx.symmetric then
        if shape[1] ~= shape[2] then
          fail("diagnostics: a matrix marked symmetric must be square, got %d×%d", shape[1], shape[2])
        end
        local why = check_symmetric(x)
        if why then fail("diagnostics: %s", why) end
        ctx.eigenvalues = dbm.eigvalsh(x)
      elseif opts.eigenvalues then
        ctx.eigenvalues = opts.eigenvalues
      else
        ctx._gram = dbm.gram(x)
        ctx.eigenvalues = dbm.eigvalsh(ctx._gram)
      end
    elseif d == 1 then
      ctx.eigenvalues = sorted_levels(x)
    else
      fail("diagnostics: expected a matrix (2-D tensor) or levels (1-D tensor or array), got a %d-D tensor", d)
    end
  elseif type(x) == "table" and getmetatable(x) == nil then
    for i = 1, #x do
      if type(x[i]) ~= "number" then
        fail("diagnostics: levels must be numbers, entry %d is a %s", i, type(x[i]))
      end
    end
    ctx.eigenvalues = sorted_levels(dbm.tensor(x, {dtype = "float64"}))
  else
    fail("diagnostics: expected a matrix (2-D tensor) or levels (1-D tensor or array of numbers), got %s", type(x))
  end
  return setmetatable(ctx, context_mt)
end

local function is_context(x) return getmetatable(x) == context_mt end
D.is_context = is_context

-- Each plugin sees the shared context through a view: reads go to the shared one, writes stay in the
-- view, and ctx.levels is the view's own copy, so one plugin sorting or editing it cannot disturb the next.
local function plugin_view(ctx)
  local own_levels
  return setmetatable({}, {__index = function(_, key)
    if key == "levels" then
      if not own_levels then local l = ctx.levels; own_levels = table.move(l, 1, #l, 1, {}) end
      return own_levels
    end
    return ctx[key]
  end})
end

-- ---------------------------------------------------------------- running and checking

-- Why a value cannot be a result field, or nil when it can.
local function garbage_in(v, key, depth)
  local kind = type(v)
  if kind == "number" or kind == "boolean" or kind == "string" or is_tensor(v) then return nil end
  if kind ~= "table" or getmetatable(v) ~= nil then
    return ("field '%s' is a %s"):format(key, kind)
  end
  local n = #v
  for k, x in pairs(v) do
    if math.type(k) == "integer" and k >= 1 and k <= n then
      if type(x) ~= "number" then
        return ("field '%s' is an array with a %s at index %d (arrays must hold numbers)"):format(key, type(x), k)
      end
    elseif type(k) == "string" and depth == 0 and n == 0 then
      local why = garbage_in(x, key .. "." .. k, 1)
      if why then return why end
    elseif type(k) == "string" and depth > 0 then
      return ("field '%s' nests tables more than one level deep"):format(key)
    elseif type(k) == "string" then
      return ("field '%s' mixes array entries and named fields"):format(key)
    else
      return ("field '%s' is a table with the key %s (neither an array index nor a name)"):format(key, tostring(k))
    end
  end
  return nil
end

--- D.check(result) -> nil when result is a valid plugin result, else the reason it is garbage.
function D.check(result)
  if type(result) ~= "table" or getmetatable(result) ~= nil then
    return ("returned %s; expected a table of named scalars and arrays"):format(
      is_tensor(result) and "a tensor" or result == nil and "nothing" or "a " .. type(result))
  end
  for k, v in pairs(result) do
    if type(k) ~= "string" then
      return ("returned a table with the key %s; results are named (string keys)"):format(tostring(k))
    end
    local why = garbage_in(v, k, 0)
    if why then return "returned garbage: " .. why .. "; expected a number, boolean, string, tensor or array of numbers" end
  end
  return nil
end

-- The message handler of a plugin run: the innermost line of the plugin's file on the stack.
local function failure_handler(plugin)
  local source = "@" .. plugin.file
  return function(err)
    local line
    for level = 2, 100 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.source == source and info.currentline > 0 then line = info.currentline; break end
    end
    return {message = tostring(err), line = line}
  end
end

local function run_line(plugin)
  local info = debug.getinfo(plugin.run, "S")
  return info.linedefined
end

-- One plugin on a context: result, or nil and the failure message (naming file and line).
local function run_plugin(plugin, ctx)
  local ok, res = xpcall(plugin.run, failure_handler(plugin), plugin_view(ctx))
  if not ok then
    local line = res.line or run_line(plugin)
    local where = plugin.file .. ":" .. line
    local msg = res.message
    if msg:sub(1, #where + 2) == where .. ": " then msg = msg:sub(#where + 3) end
    return nil, ("diagnostic '%s' failed at %s: %s"):format(plugin.name, where, msg)
  end
  local why = D.check(res)
  if why then
    return nil, ("diagnostic '%s' (%s:%d, its run function) %s"):format(plugin.name, plugin.file, run_line(plugin), why)
  end
  return res
end

--- D.run(names, x, opts) -> results {[name] = table}, failures {[name] = message}, ctx.
--- names: list of plugin names, paths or tables; x: a matrix, levels, or a ctx from D.context;
--- opts as for D.context. One context (one eigendecomposition) serves all the plugins.
function D.run(names, x, opts)
  if type(names) ~= "table" then fail("diagnostics.run: argument 1 (names): expected a list of plugin names, got %s", type(names)) end
  local plugins = {}
  for i, n in ipairs(names) do plugins[i] = D.load(n) end
  local ctx = is_context(x) and x or D.context(x, opts)
  local results, failures = {}, {}
  for _, p in ipairs(plugins) do
    local res, err = run_plugin(p, ctx)
    if res then results[p.name] = res else failures[p.name] = err end
  end
  return results, failures, ctx
end

-- The plugin of the levels themselves: its plot (density, flow, observables) is drawn for every matrix.
D.levels_plugin = "spectrum"

--- D.plotted(plugins) -> the plugins whose plot(h) is drawn for a matrix watched with `plugins`: the levels'
--- plugin first (loaded when it is not among them and can be found), then the others.
function D.plotted(plugins)
  local out = {}
  for _, p in ipairs(plugins) do if p.name == D.levels_plugin then out[1] = p end end
  if not out[1] and dbm.find_plugin(D.levels_plugin) then out[1] = D.load(D.levels_plugin) end
  for _, p in ipairs(plugins) do if p.name ~= D.levels_plugin then out[#out + 1] = p end end
  return out
end

--- D.scalars(result) -> a table of the result's numeric scalars only (for observables.jsonl).
function D.scalars(result)
  local out = {}
  for k, v in pairs(result) do
    if type(k) == "string" and type(v) == "number" then out[k] = v end
  end
  return out
end

-- ---------------------------------------------------------------- model level (analyze)

-- The arguments of the model-level functions: a list of plugin tables and a list of rows {name =, scalars = {...}}.
local function check_model_args(who, plugins, rows)
  if type(plugins) ~= "table" then fail("%s: argument 1 (plugins): expected a list of plugin tables, got %s", who, type(plugins)) end
  for i, p in ipairs(plugins) do
    if type(p) ~= "table" or type(p.name) ~= "string" then fail("%s: argument 1 (plugins): entry %d is not a plugin table (D.load)", who, i) end
  end
  if rows == nil then return end
  if type(rows) ~= "table" then fail("%s: argument 2 (rows): expected a list of {name =, scalars =} rows, got %s", who, type(rows)) end
  for i, r in ipairs(rows) do
    if type(r) ~= "table" or type(r.scalars) ~= "table" then fail("%s: argument 2 (rows): row %d has no scalars table", who, i) end
  end
end

-- A plugin hook run under pcall: its result, or nil and a message naming the plugin and the hook.
local function call_hook(p, hook, ...)
  local ok, res = pcall(p[hook], ...)
  if ok then return res end
  return nil, ("diagnostic '%s' (%s): %s failed: %s"):format(p.name, p.file or "?", hook, tostring(res))
end

--- D.summary(plugins, rows) -> figures, problems: each plugin's summary(rows) (model-level figures from the
--- per-matrix rows {{name =, shape =, scalars =}, ...}), merged in plugin order (the first to give a key wins);
--- only numbers, booleans and strings are kept. problems lists the hooks that failed or returned garbage.
function D.summary(plugins, rows)
  check_model_args("diagnostics.summary", plugins, rows or {})
  local out, problems = {}, {}
  for _, p in ipairs(plugins) do
    if type(p.summary) == "function" then
      local res, err = call_hook(p, "summary", rows)
      if err then problems[#problems + 1] = err
      elseif type(res) ~= "table" then
        problems[#problems + 1] = ("diagnostic '%s': summary returned %s, expected a table of scalars"):format(p.name, type(res))
      else
        for k, v in pairs(res) do
          local kind = type(v)
          if type(k) == "string" and out[k] == nil and (kind == "number" or kind == "boolean" or kind == "string") then out[k] = v end
        end
      end
    end
  end
  return out, problems
end

--- D.mean_over(rows, key) -> the mean of the finite numeric scalar `key` over summary rows, nil when none has it.
function D.mean_over(rows, key)
  if type(rows) ~= "table" then fail("diagnostics.mean_over: argument 1 (rows): expected a list of {name =, scalars =} rows, got %s", type(rows)) end
  check_model_args("diagnostics.mean_over", {}, rows)
  if type(key) ~= "string" then fail("diagnostics.mean_over: argument 2 (key): expected a scalar's name, got %s", type(key)) end
  local sum, n = 0, 0
  for _, r in ipairs(rows) do
    local v = r.scalars[key]
    if type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge then sum, n = sum + v, n + 1 end
  end
  return n > 0 and sum / n or nil
end

--- D.plot_model(plugins, rows, dir) -> problems: each plugin's plot_model(rows, h), h = {dir =, base = DIR/model,
--- path = DIR/model_<plugin>, plot = dbm.plot}.
function D.plot_model(plugins, rows, dir)
  check_model_args("diagnostics.plot_model", plugins, rows or {})
  if type(dir) ~= "string" or dir == "" then fail("diagnostics.plot_model: argument 3 (dir): expected a folder name, got %s", type(dir)) end
  local problems = {}
  for _, p in ipairs(plugins) do
    if type(p.plot_model) == "function" then
      local h = {dir = dir, base = dir .. "/model", path = dir .. "/model_" .. p.name, plot = require("dbm.plot")}
      local _, err = call_hook(p, "plot_model", rows, h)
      if err then problems[#problems + 1] = err end
    end
  end
  return problems
end

-- A value given on the command line: a number, true/false, or the string itself.
local function option_value(text)
  if text == "true" then return true elseif text == "false" then return false end
  return math.tointeger(tonumber(text)) or tonumber(text) or text
end

local function option_problem(p, key, v)
  local spec = type(p.options) == "table" and p.options[key]
  if not spec then
    local known = {}
    for k in pairs(type(p.options) == "table" and p.options or {}) do known[#known + 1] = k end
    table.sort(known)
    return ("%s.%s: plugin '%s' has no option '%s' (its options: %s)"):format(p.name, key, p.name, key, #known > 0 and table.concat(known, ", ") or "none")
  end
  if type(spec) ~= "table" then return nil end
  if spec.values then
    for _, allowed in ipairs(spec.values) do if v == allowed then return nil end end
    return ("%s.%s: expected one of %s, got '%s'"):format(p.name, key, table.concat(spec.values, ", "), tostring(v))
  end
  local want = spec.type
  if want == "integer" and math.type(v) ~= "integer" or want == "number" and type(v) ~= "number"
     or want == "boolean" and type(v) ~= "boolean" then
    return ("%s.%s: expected %s %s, got '%s'"):format(p.name, key, want == "integer" and "an" or "a", want, tostring(v))
  end
  return nil
end

--- D.plugin_options(plugins, settings) -> ctx.options, or nil and a message. settings: {"plugin.key=value", ...}
--- (`dbm-lua analyze --option`); plugin.key becomes the prefixed ctx.options name plugin_key (plugins/README.md).
--- The plugin must be among `plugins` and declare the key in its `options` table ({key = {doc =, type =, values =}}).
function D.plugin_options(plugins, settings)
  check_model_args("diagnostics.plugin_options", plugins)
  if settings ~= nil and type(settings) ~= "table" then
    fail("diagnostics.plugin_options: argument 2 (settings): expected a list of \"plugin.key=value\" strings, got %s", type(settings))
  end
  for i, s in ipairs(settings or {}) do
    if type(s) ~= "string" then fail("diagnostics.plugin_options: argument 2 (settings): entry %d is a %s, expected a string", i, type(s)) end
  end
  local by_name, out = {}, {}
  for _, p in ipairs(plugins) do by_name[p.name] = p end
  for _, s in ipairs(settings or {}) do
    local name, key, text = s:match("^([%w_%-]+)%.([%w_]+)=(.*)$")
    if not name then return nil, ("--option expects plugin.key=value, got '%s'"):format(s) end
    local p = by_name[name]
    if not p then return nil, ("--option %s: '%s' is not among the diagnostics of this run"):format(s, name) end
    local v = option_value(text)
    local why = option_problem(p, key, v)
    if why then return nil, "--option " .. why end
    out[name .. "_" .. key] = v
  end
  return out
end

D.is_tensor = is_tensor
return D
