-- The Lua half of the dbm library. Receives the core table of Swift functions and returns `dbm`.
-- Errors raised here use error(msg, 2) so that they name the caller's line, like the Swift ones.
local core = ...
local dbm = {_VERSION = "dbm-lua " .. core._version, version = core._version, _core = core}
local help = {}            -- function -> one-line help text

local function export(name, f, text)
  dbm[name] = f
  help[f] = text or help[f]
end

-- Everything the core offers at the top level, except the object internals.
local hidden = {generator_uniform = true, generator_normal = true, generator_permutation = true,
                jsonl_write = true, jsonl_close = true, index = true, setindex = true,
                jsonl_open = true, requires_grad = true, is_leaf = true, grad_fn = true, grad = true,
                set_grad = true, backward = true, detach = true, clip_grad_norm = true,
                generator_state = true, generator_set_state = true,
                dataset_vocab_size = true, dataset_vocab = true, dataset_size = true, dataset_encode = true,
                dataset_decode = true, dataset_batch = true,
                npy_appender_append = true, npy_appender_rows = true, npy_appender_truncate = true,
                npy_appender_close = true, npy_appender_tostring = true}
--- dbm.F: the differentiable functional ops (core functions F_name), from which nn modules are built.
--- dbm.laws: the limiting laws of random-matrix theory (core functions law_name, DBMCore/Laws.swift).
dbm.F, dbm.laws = {}, {}
for name, f in pairs(core) do
  if type(f) == "function" then
    help[f] = core._help[name]
    if name:sub(1, 2) == "F_" then dbm.F[name:sub(3)] = f
    elseif name:sub(1, 4) == "law_" then dbm.laws[name:sub(5)] = f
    elseif name:sub(1, 6) == "optim_" then   -- used by dbm.optim (optim.lua)
    elseif name:sub(1, 6) == "model_" then   -- used by dbm.models (models.lua)
    elseif not hidden[name] then dbm[name] = f end
  end
end
dbm.jsonl = core.jsonl_open
dbm.laws.goe2_density = core.goe2_density
for _, name in ipairs({"tanh", "sigmoid", "relu", "matmul"}) do dbm.F[name] = core[name] end

-- ---------------------------------------------------------------- tensors

local Tensor = {}          -- methods of tensors: t:name(...)
dbm.Tensor = Tensor
local tensor_methods = {
  "shape", "size", "dim", "numel", "dtype", "is_contiguous", "totable", "get", "set", "item", "reshape",
  "t", "transpose", "narrow", "select", "contiguous", "clone", "to", "fill", "copy", "matmul",
  "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log", "sqrt", "abs", "square",
  "sign", "tanh", "sigmoid", "relu", "clamp", "sum", "mean", "var", "max", "min", "argmax", "argmin",
  "norm", "sort", "histogram", "gram", "eigvalsh", "eigh", "svdvals", "svd",
}
for _, name in ipairs(tensor_methods) do Tensor[name] = core[name] end
Tensor.index = core.index_select
Tensor.view = core.reshape
export("index_select", core.index_select)

Tensor.backward, Tensor.detach, Tensor.zero_grad = core.backward, core.detach, core.zero_grad

local function method(name, f, text) Tensor[name] = f; help[f] = text end
method("requires_grad_", function(t, on) return core.parameter(t, on == nil or on) end,
  "t:requires_grad_([on=true]) -> t, marked (or unmarked) as a parameter whose gradient backward() computes")
method("row", function(t, i) return core.select(t, 1, i) end, "t:row(i) -> view of row i")
method("col", function(t, j) return core.select(t, 2, j) end, "t:col(j) -> view of column j")
method("double", function(t) return core.to(t, "float64") end, "t:double() -> t as float64")
method("float", function(t) return core.to(t, "float32") end, "t:float() -> t as float32")
method("save", function(t, path, opts) return core.save_npy(path, t, opts) end, "t:save(path [, opts]): write a .npy file")

local tensor_mt = core._tensor_mt
local index_core, setindex_core = core.index, core.setindex
-- Read-only fields of tensors, computed on access: t.grad, t.requires_grad, t.is_leaf, t.grad_fn.
local properties = {grad = core.grad, requires_grad = core.requires_grad, is_leaf = core.is_leaf, grad_fn = core.grad_fn}
tensor_mt.__index = core._make_indexer(Tensor, index_core, properties)   -- t[i]; else Tensor[k]; else properties
local set_grad, set_parameter = core.set_grad, core.parameter
tensor_mt.__newindex = function(t, k, v)
  if type(k) == "number" then return setindex_core(t, k, v) end
  if k == "grad" then return set_grad(t, v) end
  if k == "requires_grad" then
    if type(v) ~= "boolean" then error("t.requires_grad = v: expected true or false, got " .. type(v), 2) end
    set_parameter(t, v)
    return
  end
  error("cannot set field '" .. tostring(k) .. "' of a tensor (use t[i] = v, t:set(i, j, v), t.grad = g or t.requires_grad = true)", 2)
end
tensor_mt.__add, tensor_mt.__sub, tensor_mt.__mul = core.add, core.sub, core.mul
tensor_mt.__div, tensor_mt.__pow = core.div, core.pow
tensor_mt.__unm = function(t) return core.neg(t) end
tensor_mt.__len = function(t)
  if core.dim(t) == 0 then error("a 0-d tensor has no length", 2) end
  return core.size(t, 1)
end
tensor_mt.__tostring = core.tostring

export("is_tensor", function(x) return getmetatable(x) == tensor_mt end, "dbm.is_tensor(x) -> whether x is a tensor")

-- ---------------------------------------------------------------- Ctrl-C through pcall

-- Ctrl-C stops the script, also inside code that recovers from errors (a plugin's failure is logged and
-- the run goes on; a sweep goes on to its next point): pcall and xpcall pass the interrupt on instead of
-- returning it, as Python's `except Exception` lets KeyboardInterrupt through. The dbm.on_exit hooks
-- then run (they close run directories and write checkpoints) and the program ends with status 130.
-- Only dbm.no_grad and the exit hooks' runner use the raw ones (they restore state, then go on).
local raw_pcall, raw_xpcall = pcall, xpcall
local interrupted = core._interrupted
local function pass_interrupt(ok, ...)
  if not ok then
    local message = interrupted()
    if message then error(message, 0) end
  end
  return ok, ...
end
pcall = function(f, ...) return pass_interrupt(raw_pcall(f, ...)) end
xpcall = function(f, handler, ...) return pass_interrupt(raw_xpcall(f, handler, ...)) end

-- ---------------------------------------------------------------- gradients

--- dbm.no_grad(f, ...) -> f(...) run with gradient recording off (evaluation), restored afterwards.
export("no_grad", function(f, ...)
  if type(f) ~= "function" then dbm._fail("dbm.no_grad: argument 1: expected a function, got %s", type(f)) end
  local previous = core.set_grad_enabled(false)
  local result = table.pack(raw_pcall(f, ...))
  core.set_grad_enabled(previous)
  if not result[1] then error(result[2], 0) end
  return table.unpack(result, 2, result.n)
end, "dbm.no_grad(f, ...) -> f(...) with gradient recording off (evaluation: no graph is kept), restored afterwards, also after an error")

-- Off the gradient tape (inside dbm.no_grad, or on tensors that require no gradient) t:sum() and
-- t:mean() are numbers: a tensor method called on one says why, instead of "attempt to index a number".
debug.setmetatable(0, {__index = function(n, key)
  error(("attempt to use the tensor method '%s' on a number (%s): off the gradient tape (inside dbm.no_grad, "
    .. "or from tensors that require no gradient) t:sum() and t:mean() return numbers, not tensors"):format(tostring(key), tostring(n)), 2)
end})

-- Coroutines keep their own gradient mode: a coroutine that yields inside dbm.no_grad leaves the
-- resumer's mode as it was, and finds its own again when resumed (as each thread has its own in
-- PyTorch). And Ctrl-C reaches a loop running inside a coroutine.
do
  local create, resume = coroutine.create, coroutine.resume
  local modes = setmetatable({}, {__mode = "k"})   -- coroutine -> its gradient mode while suspended
  coroutine.create = function(f)
    local co = create(f)
    core._watch_interrupts(co)
    modes[co] = core.is_grad_enabled()
    return co
  end
  coroutine.resume = function(co, ...)
    local mine = modes[co]
    if mine == nil then return resume(co, ...) end   -- not made by coroutine.create (a C library's)
    local outer = core.set_grad_enabled(mine)
    local result = table.pack(resume(co, ...))
    modes[co] = core.set_grad_enabled(outer)
    return table.unpack(result, 1, result.n)
  end
  coroutine.wrap = function(f)
    local co = coroutine.create(f)
    return function(...)
      local result = table.pack(coroutine.resume(co, ...))
      if result[1] then return table.unpack(result, 2, result.n) end
      coroutine.close(co)
      error(result[2], 0)
    end
  end
end

-- ---------------------------------------------------------------- generators and writers

local Generator = {
  uniform = core.generator_uniform, normal = core.generator_normal, permutation = core.generator_permutation,
  state = core.generator_state, set_state = core.generator_set_state,
  randn = function(g, ...) return dbm.randn(dbm._with_generator(g, ...)) end,
  rand = function(g, ...) return dbm.rand(dbm._with_generator(g, ...)) end,
}
help[Generator.randn] = "g:randn(sizes... [, opts]) -> normal samples from g"
help[Generator.rand] = "g:rand(sizes... [, opts]) -> uniform samples from g"
core._generator_mt.__index = Generator
core._generator_mt.__tostring = function() return "dbm.Generator" end

-- Appends {generator = g} to (sizes..., [opts]).
function dbm._with_generator(g, ...)
  local args = table.pack(...)
  local last = args[args.n]
  if type(last) == "table" and getmetatable(last) == nil and not (args.n == 1 and #last > 0) then
    local opts = {}
    for k, v in pairs(last) do opts[k] = v end
    opts.generator = g
    args[args.n] = opts
  else
    args.n = args.n + 1
    args[args.n] = {generator = g}
  end
  return table.unpack(args, 1, args.n)
end

core._writer_mt.__index = {write = core.jsonl_write, close = core.jsonl_close}
core._writer_mt.__tostring = function() return "dbm.Writer" end

-- ---------------------------------------------------------------- growing .npy files

local appender_options = {dtype = true, cols = true, data = true}
export("npy_appender", function(path, opts)
  if type(opts) == "table" and getmetatable(opts) == nil then
    for k in pairs(opts) do
      if not appender_options[k] then
        dbm._fail("dbm.npy_appender: unknown option '%s' (known: dtype, cols, data)", tostring(k))
      end
    end
  end
  return core.npy_appender(path, opts)
end, core._help.npy_appender)
dbm.NpyAppender = {append = core.npy_appender_append, rows = core.npy_appender_rows,
                   truncate = core.npy_appender_truncate, close = core.npy_appender_close}
core._appender_mt.__index = dbm.NpyAppender
core._appender_mt.__tostring = core.npy_appender_tostring

-- ---------------------------------------------------------------- datasets

--- ds = dbm.text_dataset(path): ds:vocab_size(), ds:vocab(), ds:size([split]), ds:encode(text),
--- ds:decode(ids), ds:batch(split, batch_size, block_size [, {generator=}]) (ids are 1-based).
local Dataset = {
  vocab_size = core.dataset_vocab_size, vocab = core.dataset_vocab, size = core.dataset_size,
  encode = core.dataset_encode, decode = core.dataset_decode, batch = core.dataset_batch,
}
dbm.Dataset = Dataset
core._dataset_mt.__index = Dataset
core._dataset_mt.__tostring = function(ds)
  return ("dbm.Dataset (%d characters: train %d, val %d; vocabulary of %d)"):format(
    core.dataset_size(ds), core.dataset_size(ds, "train"), core.dataset_size(ds, "val"), core.dataset_vocab_size(ds))
end

-- ---------------------------------------------------------------- help

local function help_text(x)
  if type(x) == "string" then x = dbm[x] or Tensor[x] or (x:match("^laws%.") and dbm.laws[x:sub(6)]) end
  if help[x] then return help[x] end
  if getmetatable(x) == tensor_mt then
    local names = {}
    for k in pairs(Tensor) do names[#names + 1] = k end
    table.sort(names)
    return "a tensor; methods: " .. table.concat(names, ", ")
  end
  return nil
end

--- dbm.help([f | name]) prints and returns the help text of a dbm function (all of them without argument).
export("help", function(x)
  local text
  if x == nil then
    local lines, seen = {}, {}
    for _, t in ipairs({dbm, dbm.laws}) do
      for name, f in pairs(t) do
        if type(f) == "function" and help[f] and name:sub(1, 1) ~= "_" and not seen[f] then
          seen[f] = true
          lines[#lines + 1] = help[f]
        end
      end
    end
    table.sort(lines)
    text = table.concat(lines, "\n")
  else
    text = help_text(x) or ("no help for " .. tostring(x))
  end
  return text
end, "dbm.help([f | \"name\" | \"laws.name\"]) -> the one-line help text of a dbm function (all of them without argument)")

-- The script's frame: the first calling frame outside the embedded library that is Lua code (the rule of
-- dbm_where in the C shim, which places the Swift functions' errors). Returns its level counted from the
-- function that calls script_frame, and its debug info; nil when there is none (a command of dbm-lua).
local function script_frame()
  local level = 3
  while true do
    local info = debug.getinfo(level, "Sl")
    if info == nil then return nil end
    if info.currentline > 0 and info.source:sub(1, 6) ~= "=[dbm]" then return level - 1, info end
    level = level + 1
  end
end

--- dbm._fail(fmt, ...): raises string.format(fmt, ...) as an error at the script's line: the first
--- calling frame outside the embedded library (as the Swift functions do), whatever the depth inside it.
function dbm._fail(fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(msg, script_frame() or 0)
end

--- dbm._where() -> "file:line: ", the position dbm._fail and the Swift functions put in front of their
--- messages here ("" outside any script), so that code re-raising such a message under its own name
--- can take it off and name the line once.
function dbm._where()
  local _, info = script_frame()
  return info and ("%s:%d: "):format(info.short_src, info.currentline) or ""
end

--- dbm._check_options(who, opts, known) -> opts, or {} for nil: the one check of a Lua function's options
--- table (the Swift bindings' is LuaCall.options(known:)). A key that the array `known` does not list is
--- an error at the script's line naming `who`, the key and the known keys: a misspelt option
--- ({stdev = 5}) is never silently ignored.
function dbm._check_options(who, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    dbm._fail("%s: expected a table of options, got %s", who, dbm.is_tensor(opts) and "a tensor" or type(opts))
  end
  for k in pairs(opts) do
    local ok = false
    for _, name in ipairs(known) do ok = ok or k == name end
    if not ok then
      dbm._fail("%s: unknown option %s (known: %s)", who, type(k) == "string" and ("'" .. dbm._printable(k) .. "'") or tostring(k),
        table.concat(known, ", "))
    end
  end
  return opts
end

--- dbm._printable(s): s with every control character (C0, DEL and, UTF-8 encoded, C1) and backquote
--- written as \xNN text, so that text from files and scripts (tensor names, metadata, arguments) reaches
--- a terminal without escape sequences, and a gnuplot string without a line break that would end it.
function dbm._printable(s)
  s = tostring(s):gsub("[%c`]", function(c) return ("\\x%02x"):format(c:byte()) end)
  return (s:gsub("\194([\128-\159])", function(c) return ("\\u%04x"):format(c:byte()) end))
end

--- dbm._csv_field(v): v as one CSV field (RFC 4180). A number is the shortest text that reads back as
--- the same number (nan, inf, -inf as numpy writes them); nil is empty. Text is made printable, quoted when
--- it holds a comma or a quote, and given a leading ' when it starts with =, +, - or @ (OWASP's advice):
--- a spreadsheet opening the file would run it as a formula, and names come from downloaded files.
function dbm._csv_field(v)
  if v == nil then return "" end
  if math.type(v) == "float" then
    if v ~= v then return "nan" end
    if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
    local s = ("%.15g"):format(v)
    return tonumber(s) == v and s or ("%.17g"):format(v)
  end
  if type(v) ~= "string" then return tostring(v) end
  local s = dbm._printable(v)
  if s:find("^[=+%-@]") then s = "'" .. s end
  if s:find('[,"]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- dbm._shell_quote(s): s as one word for sh, the one way text reaches a shell command. A NUL would cut
--- the command short where C reads it: refused.
function dbm._shell_quote(s)
  s = tostring(s)
  if s:find("\0", 1, true) then dbm._fail("expected a path or word without NUL characters, got '%s'", dbm._printable(s)) end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- dbm._list_dir(dir) -> the names of the entries of a folder (unsorted; none when it cannot be read).
--- Separated by NUL characters, the one byte a file name cannot hold, so a name with a line break is
--- one name.
function dbm._list_dir(dir)
  local names, p = {}, io.popen("find " .. dbm._shell_quote(dir) .. " -mindepth 1 -maxdepth 1 -printf '%f\\0' 2>/dev/null")
  if not p then return names end
  for name in p:read("a"):gmatch("[^\0]+") do names[#names + 1] = name end
  p:close()
  return names
end

-- Lua-defined functions register their help text here.
function dbm._set_help(f, text) help[f] = text end

--- dbm._set_module_help(module, texts): the help text texts[name] for each function module[name] of a
--- Lua module (the one registration loop of the modules that keep their help texts in one table).
function dbm._set_module_help(module, texts)
  for name, text in pairs(texts) do
    help[assert(module[name], "help text for a function the module lacks: " .. name)] = text
  end
end

-- ---------------------------------------------------------------- config

--- dbm.config(defaults [, {presets=, resume=, rules=, args=} | args]) -> the configuration (config.lua).
export("config", function(defaults, spec) return require("dbm.config").read(defaults, spec) end,
  "dbm.config(defaults [, {presets = {name = {...}}, resume = true, rules = {key = {min=, max=, above=, below=, positive=, choices=, what=, check=}}, args=}]) "
  .. "-> defaults, then the preset named by --preset, then --resume=RUN_DIR's config.json, overridden by --key=value arguments after the script, "
  .. "then the rules checked; --help lists the keys; with DBM_CONFIG_JSON=FILE (or - for stdout) set, writes {defaults=, types=} as one JSON line and exits 0")

-- ---------------------------------------------------------------- plugins and modules

dbm.plugin_path = core._plugin_path
if dbm.plugin_path ~= "" then package.path = dbm.plugin_path .. ";" .. package.path end

--- dbm.find_plugin(name) -> path of plugins/NAME.lua in $DBM_LUA_PATH or the project's plugins/.
export("find_plugin", function(name)
  if type(name) ~= "string" then error("dbm.find_plugin: argument 1 (name): expected a string, got " .. type(name), 2) end
  return package.searchpath(name, dbm.plugin_path)
end, "dbm.find_plugin(name) -> path of the plugin file NAME.lua ($DBM_LUA_PATH, then the project's plugins/)")

-- ---------------------------------------------------------------- REPL support

-- Prints values as the REPL shows them: tensors and other objects through tostring, tables inline
-- when short.
local function show_value(v, depth)
  if type(v) == "string" then return depth > 0 and string.format("%q", v) or v end
  if type(v) ~= "table" or getmetatable(v) ~= nil then return tostring(v) end
  if depth >= 2 then return tostring(v) end
  local parts, n = {}, 0
  for i, x in ipairs(v) do
    n = i
    if i > 20 then parts[#parts + 1] = "... (" .. #v .. " entries)"; break end
    parts[#parts + 1] = show_value(x, depth + 1)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    if i > 20 then parts[#parts + 1] = "..."; break end
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show_value(k, 1) .. "]"
    parts[#parts + 1] = key .. " = " .. show_value(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function dbm._show(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = show_value((select(i, ...)), 0) end
  print(table.concat(out, "\t"))
end

-- Completions of "a.b.c" / "a.b:c" for the REPL: fields of the value the prefix names.
function dbm._complete(text)
  local prefix, sep, partial = text:match("^(.-)([%.:]?)([%w_]*)$")
  local scope = _G
  if sep ~= "" then
    for name in prefix:gmatch("[^%.:]+") do
      if type(scope) ~= "table" and getmetatable(scope) == nil then return {} end
      local ok, v = pcall(function() return scope[name] end)
      if not ok or v == nil then return {} end
      scope = v
    end
  else
    prefix = ""
  end
  local out, seen = {}, {}
  local function add(k)
    if type(k) == "string" and k:sub(1, #partial) == partial and not seen[k] and k:sub(1, 1) ~= "_" then
      seen[k] = true
      out[#out + 1] = prefix .. sep .. k
    end
  end
  if type(scope) == "table" then for k in pairs(scope) do add(k) end end
  local mt = getmetatable(scope)
  if mt and type(mt.__index) == "table" then for k in pairs(mt.__index) do add(k) end end
  if mt == tensor_mt then for k in pairs(Tensor) do add(k) end end
  table.sort(out)
  return out
end

-- ---------------------------------------------------------------- embedded modules, exit hooks

for name, m in pairs(core._modules) do
  package.preload[name] = function(...)
    return assert(load(m[2], "=[dbm] " .. m[1]))(...)
  end
end

-- Functions run when the program ends, normally or not (an error, Ctrl-C): recorders close their
-- run directories here, so an interrupted run still leaves complete files.
local exit_hooks = {}
export("on_exit", function(f)
  if type(f) ~= "function" then error("dbm.on_exit: argument 1: expected a function, got " .. type(f), 2) end
  exit_hooks[#exit_hooks + 1] = f
  return f
end, "dbm.on_exit(f): call f() when the program ends, also after an error or Ctrl-C")

function dbm._run_exit_hooks()
  local hooks = exit_hooks
  exit_hooks = {}
  for i = #hooks, 1, -1 do
    local ok, err = raw_xpcall(hooks[i], debug.traceback)
    if not ok then io.stderr:write("dbm-lua: in an exit hook: ", tostring(err), "\n") end
  end
end

-- os.exit([code]) ends the program as the end of a script does: the exit hooks run first (recorders
-- close their run directories), then the process exits without C++ static destructors (see main).
local process_exit = core._exit
os.exit = function(code)
  local status = code == nil and 0 or code == true and 0 or code == false and 1 or math.tointeger(code)
  if status == nil then error("os.exit: expected true, false or an integer status, got " .. tostring(code), 2) end
  dbm._run_exit_hooks()
  io.stdout:flush(); io.stderr:flush()
  process_exit(status)
end

-- ---------------------------------------------------------------- runs: recorder, progress, diagnostics
-- (tail calls, so that errors raised with level 2 inside name the script's line)

export("recorder", function(opts) return require("dbm.recorder").new(opts) end,
  "dbm.recorder{out_dir=, config=, name=, plots=true, resume=step} -> rec: rec:watch(name, W | fn, {diagnostics=, every= | steps= | when=, symmetric=, options=}), rec:step(step, scalars), rec:record(step), rec:close()")
export("progress", function(opts) return require("dbm.progress").new(opts) end,
  "dbm.progress{total=, label=, every=seconds} -> p: p:update(step, {loss=...}) shows step/total, rate, ETA; p:done()")
export("write_summary", function(dir, report) return require("dbm.summary").write(dir, report) end,
  "dbm.write_summary(dir, {title=, settings=, config=, figures = {header=, rows=}, notes=, sections = {{heading=, text=, table=, notes=, code=}}, files=}) -> path: the experiment's summary.md, written before rec:close()")
export("diagnostics", function(names, x, opts) return require("dbm.diagnostics").run(names, x, opts) end,
  "dbm.diagnostics({names...}, W | levels [, {symmetric=, options=}]) -> results, failures: diagnostic plugins on one shared eigendecomposition")

package.loaded.dbm = dbm
_G.dbm = dbm
dbm.nn = require("dbm.nn")
dbm.optim = require("dbm.optim")
dbm.models = require("dbm.models")
dbm.stats = require("dbm.stats")
local checkpoint = require("dbm.checkpoint")
export("save_checkpoint", checkpoint.save,
  "dbm.save_checkpoint(path, {model=, prefix=, optimizer=, generators = {name = g}, step=, metadata = {}}): weights, optim.* and rng.* in one safetensors file")
export("load_checkpoint", checkpoint.load,
  "dbm.load_checkpoint(path, {model=, prefix=, optimizer=, generators = {name = g}}) -> step, metadata: restores what save_checkpoint wrote")
export("checkpoint_on_exit", checkpoint.on_exit,
  "dbm.checkpoint_on_exit{save = function(step), optimizer=, generators = {name = g}, name=, dir=} -> guard: guard:iteration(step) at the start of each iteration; "
  .. "ending before guard:finish() (Ctrl-C, an error) calls save with the state at the start of the current iteration")
return dbm
