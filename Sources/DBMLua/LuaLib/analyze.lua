-- dbm.analyze: `dbm-lua analyze FILE [--json] [--plots DIR] [--diagnostics=a,b,...]`.
-- The random-matrix diagnostics on every 2-D tensor of a .npy or .safetensors file (weights saved by
-- any framework, or our own checkpoints), as a table or as JSON lines with the keys of DESIGN §8.
-- Expected failures (bad arguments, unreadable files) are one line on stderr and an exit status
-- (2 for usage, 1 otherwise); main returns the status, it never raises for them.
local dbm = require("dbm")

local A = {}

A.default_diagnostics = {"spectrum", "mp", "spacing", "powerlaw", "norms"}

-- Checkpoint state that is not a weight (DESIGN §8): optimizer moments and generator states.
A.skipped_prefixes = {"optim.", "rng."}

A.usage = [[
usage: dbm-lua analyze FILE [--json] [--plots DIR] [--diagnostics=a,b,...] [--split-qkv]
       dbm-lua analyze CHECKPOINT... --out_dir DIR [--series] [--lr=RATE] [--split-qkv] [--diagnostics=...]
Random-matrix diagnostics of every 2-D tensor in FILE: a numpy .npy file (one matrix, named after the
file) or a .safetensors file (all its tensors; optimizer and RNG state, optim.* and rng.*, is skipped).
Levels are the eigenvalues of the smaller Gram matrix (WᵀW or WWᵀ).
Several .safetensors checkpoints of one model (the same tensor names and shapes) are a series when their
metadata carries a `step` (as dbm-lua's checkpoints do), or with --series (steps from the file names,
ckpt_1000.safetensors; a folder stands for its .safetensors files): their spectra over the steps go into
a run directory as a training run's (docs/formats.md), with the noise temperature of each matrix.
  --json               one JSON object per tensor per line: name, shape and the diagnostics' numeric
                       scalars (the keys of docs/formats.md)
  --plots DIR          write each diagnostic's plots of each tensor into DIR as PNG and SVG (needs
                       gnuplot): the spectral density with the plugins' curves (Marchenko–Pastur), the
                       spacing histogram, and those of any plugin with a plot function
  --diagnostics=LIST   comma-separated plugin names (default: spectrum,mp,spacing,powerlaw,norms);
                       plugins are found in $DBM_LUA_PATH and the project's plugins/
  --split-qkv          a fused attention projection (<module>.c_attn.weight, .query_key_value.weight,
                       .qkv_proj.weight, .wqkv.weight) is analysed as <module>.q, <module>.k and <module>.v,
                       in the layout its config.json (or the file's metadata) and shape name; an unknown
                       layout is an error
  --series             the files (or the .safetensors files in a folder) are a series; steps from the
                       numbers in the file names
  --out_dir DIR        a series' run directory: spectra/, observables.jsonl, arrays/, plots/, summary.md,
                       noise_temperature.jsonl
  --lr=RATE            a series' noise temperature in units of the learning rate (δt = RATE × steps);
                       without it, per step
  -h, --help           print this help
Tensors that are not analyzed (1-D, 3-D, NaN or Inf) are listed as skipped; a diagnostic that fails on
one tensor is reported on stderr and the others go on.
Exit status: 0 on success; 1 on a missing, unreadable or malformed file, a file without a 2-D tensor,
or a plot that could not be written; 2 on a usage error.]]

-- Columns of the table: those the plugins declare, columns = {{heading, scalar key}, ...}, in the order of
-- --diagnostics (plugins/README.md).
function A.columns(plugins)
  local columns = {}
  for _, p in ipairs(plugins) do
    for _, c in ipairs(type(p.columns) == "table" and p.columns or {}) do columns[#columns + 1] = c end
  end
  return columns
end

-- ---------------------------------------------------------------- small helpers

function A.eprint(...)
  io.stderr:write("dbm-lua analyze: ", dbm._printable(table.concat({...})), "\n")   -- names from files: no escapes
end
local eprint = A.eprint

-- The message of an error raised by a dbm function, without the position and the function's name:
-- "[dbm] analyze.lua:12: dbm.load_npy: file 'x' ..." -> "file 'x' ...".
function A.clean(message)
  message = tostring(message)
  message = message:gsub("^%[dbm%] [%w_]+%.lua:%d+: ", "", 1)
  message = message:gsub("^dbm%.[%w_]+: ", "", 1)
  return message
end
local clean = A.clean

local function has_prefix(s, prefixes)
  for _, p in ipairs(prefixes) do
    if s:sub(1, #p) == p then return true end
  end
  return false
end

local function shape_text(shape)
  return "(" .. table.concat(shape, ", ") .. ")"
end

local function display_width(s)
  return utf8.len(s) or #s
end

local function pad(s, width, right)
  local fill = string.rep(" ", math.max(0, width - display_width(s)))
  return right and fill .. s or s .. fill
end

local function format_value(v)
  if v == nil then return "-" end
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.floor(v) and math.abs(v) < 1e6 then return string.format("%d", v) end
  return string.format("%.4g", v)
end


-- ---------------------------------------------------------------- arguments

-- Returns options or nil, message (a usage error).
function A.parse_args(args)
  local o = {json = false, diagnostics = A.default_diagnostics, files = {}}
  local i = 1
  local function value_of(flag, inline)
    if inline then return inline end
    i = i + 1
    local v = args[i]
    if v == nil or v:sub(1, 2) == "--" then return nil, flag .. " needs a value" end
    return v
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w_-]+)=(.*)$")
    flag = flag or a
    if flag == "-h" or flag == "--help" then
      o.help = true
    elseif flag == "--json" and not inline then
      o.json = true
    elseif (flag == "--split-qkv" or flag == "--series") and not inline then
      o[flag:sub(3):gsub("-", "_")] = true
    elseif flag == "--out_dir" or flag == "--lr" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      if flag == "--lr" then
        v = tonumber(v)
        if not v or not (v > 0 and v < math.huge) then return nil, "--lr needs a learning rate > 0" end
      elseif v == "" then return nil, "--out_dir needs a directory" end
      o[flag:sub(3)] = v
    elseif flag == "--plots" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      if v == "" then return nil, "--plots needs a directory" end
      o.plots = v
    elseif flag == "--diagnostics" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      local names = {}
      for name in v:gmatch("[^,%s]+") do names[#names + 1] = name end
      if #names == 0 then return nil, "--diagnostics needs at least one name" end
      o.diagnostics = names
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option '" .. a .. "'"
    else
      o.files[#o.files + 1] = a
    end
    i = i + 1
  end
  o.file = o.files[1]
  if not o.help and not o.file then return nil, "expected a .npy or .safetensors file" end
  return o
end

-- ---------------------------------------------------------------- loading

-- The format of a file: by its extension, else by its first bytes. nil, message if neither.
function A.file_format(path)
  local lower = path:lower()
  if lower:match("%.npy$") then return "npy" end
  if lower:match("%.safetensors$") then return "safetensors" end
  local f, open_error = io.open(path, "rb")
  if not f then
    -- io.open's message is "PATH: reason"; keep the reason.
    return nil, "cannot open file '" .. path .. "': " .. tostring(open_error):gsub("^.*: ", "")
  end
  local head, read_error = f:read(9)
  f:close()
  if read_error then return nil, "cannot read file '" .. path .. "': " .. tostring(read_error):gsub("^.*: ", "") end
  head = head or ""
  if head:sub(1, 6) == "\x93NUMPY" then return "npy" end
  if #head == 9 and head:sub(9, 9) == "{" then return "safetensors" end
  return nil, "file '" .. path .. "' is neither a .npy nor a .safetensors file"
end

-- Loads the file: an array of {name =, tensor =} in file order (skipped state left out; with opts.split_qkv
-- each fused attention projection as its q, k and v, dbm.qkv), the number of tensors skipped as
-- optimizer/RNG state, and the file's metadata. nil, message on failure.
function A.load(path, opts)
  local format, why = A.file_format(path)
  if not format then return nil, why end
  if format == "npy" then
    local ok, t = pcall(dbm.load_npy, path)
    if not ok then return nil, clean(t) end
    local name = path:match("([^/]+)$"):gsub("%.[Nn][Pp][Yy]$", "")
    return {{name = name, tensor = t}}, 0
  end
  local ok, tensors, meta, names = pcall(dbm.load_safetensors, path)
  if not ok then return nil, clean(tensors) end
  local Q, config = require("dbm.qkv"), nil
  if opts and opts.split_qkv then
    local why
    config, why = Q.model_config(path, meta)
    if not config then return nil, why end
  end
  local list, state = {}, 0
  for _, name in ipairs(names) do
    if has_prefix(name, A.skipped_prefixes) then state = state + 1
    elseif config then
      local done, parts = pcall(Q.split, name, tensors[name], config)
      if not done then return nil, clean(parts) end
      table.move(parts, 1, #parts, #list + 1, list)
    else list[#list + 1] = {name = name, tensor = tensors[name]} end
  end
  return list, state, meta
end

-- Why a tensor is not analyzed (nil when it is).
function A.skip_reason(t)
  local shape = t:shape()
  if #shape ~= 2 then return #shape .. "-D, not a matrix" end
  if shape[1] < 2 or shape[2] < 2 then return "a matrix needs at least 2 rows and 2 columns for a spectrum" end
  -- x - x is 0 for finite x and NaN for NaN or ±Inf.
  if (t - t):abs():sum() ~= 0 then return "holds NaN or Inf" end
  return nil
end

-- ---------------------------------------------------------------- analysis

-- A file name for a tensor name: path separators and other odd characters become '_'.
local function file_stem(name)
  local s = name:gsub("[^%w%._%-]", "_")
  if s == "" or s:match("^%.") then s = "_" .. s end
  return s
end

-- Draws the plots of every plugin with a plot function (and of the levels' plugin) for one tensor, as a
-- history of one record (files DIR/STEM_*); returns a list of problems.
local function write_plots(D, dir, stem, name, t, plugins, results, ctx)
  local problems = {}
  local history = require("dbm.history").new(name)
  history:add(results, ctx.eigenvalues)
  local levels = ctx.eigenvalues
  history:plot(D.plotted(plugins), {dir = dir, stem = stem, steps = {}, levels = levels:reshape(1, levels:numel()),
    shape = t:shape(), symmetric = false, report = function(msg) problems[#problems + 1] = clean(msg) end})
  return problems
end

-- The scalars of all diagnostics of one tensor, merged (the first diagnostic to give a key wins).
local function merged_scalars(D, names, results)
  local out = {}
  for _, d in ipairs(names) do
    if results[d] then
      for k, v in pairs(D.scalars(results[d])) do
        if out[k] == nil then out[k] = v end
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------- output

local function print_table(file, rows, skipped, state, diagnostics, plugins)
  local columns = {}
  for _, c in ipairs(A.columns(plugins)) do
    for _, r in ipairs(rows) do
      if r.scalars[c[2]] ~= nil then columns[#columns + 1] = c; break end
    end
  end
  local header = {"name", "shape"}
  for _, c in ipairs(columns) do header[#header + 1] = c[1] end
  local lines = {header}
  for _, r in ipairs(rows) do
    local line = {dbm._printable(r.name), shape_text(r.shape)}   -- a name from the file: no escapes
    for _, c in ipairs(columns) do line[#line + 1] = format_value(r.scalars[c[2]]) end
    lines[#lines + 1] = line
  end
  local widths = {}
  for _, line in ipairs(lines) do
    for j, cell in ipairs(line) do widths[j] = math.max(widths[j] or 0, display_width(cell)) end
  end
  local total = #rows + #skipped + state
  print(string.format("%s: %d tensor%s, %d analyzed; diagnostics: %s", dbm._printable(file), total, total == 1 and "" or "s",
                      #rows, table.concat(diagnostics, ", ")))
  for k, line in ipairs(lines) do
    local cells = {}
    for j, cell in ipairs(line) do cells[j] = pad(cell, widths[j], j > 2) end
    print(table.concat(cells, "  "))
    if k == 1 then
      local rule = {}
      for j = 1, #line do rule[j] = string.rep("-", widths[j]) end
      print(table.concat(rule, "  "))
    end
  end
  for _, s in ipairs(skipped) do
    print(dbm._printable(string.format("skipped %s %s: %s", s.name, shape_text(s.shape), s.reason)))
  end
  if state > 0 then
    print(string.format("skipped %d optimizer/RNG state tensor%s (optim.*, rng.*)", state, state == 1 and "" or "s"))
  end
end

-- ---------------------------------------------------------------- main

function A.main(args)
  local o, usage_error = A.parse_args(args or {})
  if not o then
    eprint(usage_error, " (dbm-lua analyze --help for usage)")
    return 2
  end
  if o.help then print(A.usage); return 0 end

  for _, name in ipairs(o.diagnostics) do
    if not dbm.find_plugin(name) then
      eprint("unknown diagnostic '", name, "': no ", name, ".lua in $DBM_LUA_PATH or the project's plugins/")
      return 2
    end
  end

  -- Several checkpoints, or --series: a run directory of spectra over the steps (dbm.analyze_series).
  local series = require("dbm.analyze_series")
  if series.is_series(o, A) then return series.main(o, A) end
  if #o.files > 1 then
    eprint("expected one file, got '", o.files[1], "' and '", o.files[2], "' (checkpoints with a step in their metadata, or --series, are a series)")
    return 2
  end

  local tensors, state = A.load(o.file, o)
  if not tensors then eprint(state); return 1 end

  local analyzable, skipped = {}, {}
  for _, e in ipairs(tensors) do
    local reason = A.skip_reason(e.tensor)
    if reason then skipped[#skipped + 1] = {name = e.name, shape = e.tensor:shape(), reason = reason}
    else analyzable[#analyzable + 1] = e end
  end
  if #analyzable == 0 then
    local parts = {}
    for _, s in ipairs(skipped) do parts[#parts + 1] = s.name .. " " .. shape_text(s.shape) .. ": " .. s.reason end
    if state > 0 then parts[#parts + 1] = state .. " optimizer/RNG state tensors" end
    eprint("file '", o.file, "' holds no 2-D tensor to analyze",
           #parts > 0 and " (" .. table.concat(parts, "; ") .. ")" or " (it holds no tensors)")
    return 1
  end

  if o.plots then
    local ok, err = pcall(dbm.mkdir, o.plots)
    if not ok then eprint("cannot create the plot directory '", o.plots, "': ", (tostring(err):gsub("^.-dbm%.mkdir: ", ""))); return 1 end
  end

  local D = require("dbm.diagnostics")
  local loaded, plugins = pcall(function()
    local list = {}
    for i, d in ipairs(o.diagnostics) do list[i] = D.load(d) end
    return list
  end)
  if not loaded then eprint(clean(plugins)); return 1 end
  local rows, notes, status, stems = {}, {}, 0, {}
  for _, e in ipairs(analyzable) do
    -- D.run raises only when a plugin cannot be loaded (a syntax error, a bad table): the same for
    -- every tensor, so it ends the command; a plugin failing on this tensor is in failures.
    local ok, results, failures, ctx = pcall(D.run, plugins, e.tensor, {})
    if not ok then eprint(clean(results)); return 1 end
    results, failures = results or {}, failures or {}
    for _, d in ipairs(o.diagnostics) do
      if failures[d] then notes[#notes + 1] = e.name .. ": " .. tostring(failures[d]) end
    end
    local row = {name = e.name, shape = e.tensor:shape(), scalars = merged_scalars(D, o.diagnostics, results)}
    rows[#rows + 1] = row
    if o.json then
      local record = {name = row.name, shape = row.shape}
      for k, v in pairs(row.scalars) do
        if k ~= "name" and k ~= "shape" then record[k] = v end
      end
      print(dbm.json_encode(record))
    end
    if o.plots then
      -- Distinct names may map to one file stem ("a/b" and "a_b"): number the later ones.
      local stem, k = file_stem(e.name), 1
      while stems[stem .. (k > 1 and "_" .. k or "")] do k = k + 1 end
      stem = stem .. (k > 1 and "_" .. k or "")
      stems[stem] = true
      for _, p in ipairs(write_plots(D, o.plots, stem, e.name, e.tensor, plugins, results, ctx)) do notes[#notes + 1] = p; status = 1 end
    end
  end

  if o.json then
    for _, s in ipairs(skipped) do eprint("skipped ", s.name, " ", shape_text(s.shape), ": ", s.reason) end
    if state > 0 then eprint("skipped ", state, " optimizer/RNG state tensors (optim.*, rng.*)") end
  else
    print_table(o.file, rows, skipped, state, o.diagnostics, plugins)
  end
  for _, n in ipairs(notes) do eprint(n) end
  return status
end

return A
