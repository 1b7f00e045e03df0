-- dbm.analyze: `dbm-lua analyze PATH... [--json|--csv|--markdown] [--plots DIR] [--layers PATTERN] [--diagnostics=a,b,...]`.
-- The random-matrix diagnostics on every weight matrix of the models in PATH... (weights saved by any
-- framework, or our own checkpoints), as a table, JSON Lines, CSV or Markdown with the keys of DESIGN §8.
-- This file orchestrates: the files are read by dbm.model_files (one tensor at a time), the levels of
-- several matrices computed at once by dbm.gram_levels, the plugins run by dbm.diagnostics, and the
-- output written by dbm.analyze_output.
-- Expected failures (bad arguments, unreadable files) are one line on stderr and an exit status
-- (2 for usage, 1 otherwise); main returns the status, it never raises for them.
local dbm = require("dbm")
local files = require("dbm.model_files")
local output = require("dbm.analyze_output")

local A = {}

A.default_diagnostics = {"spectrum", "mp", "spacing", "powerlaw", "norms"}
A.skipped_prefixes = files.state_prefixes

A.usage = [[
usage: dbm-lua analyze PATH... [--json | --csv | --markdown] [--plots DIR] [--layers PATTERN] [--diagnostics=a,b,...]
                       [--option plugin.key=value ...] [--ks=two-sided|powerlaw] [--split-qkv]
       dbm-lua analyze CHECKPOINT... --out_dir DIR [--series] [--lr=RATE] [--split-qkv] [--diagnostics=...]
Random-matrix diagnostics of every weight matrix of the models in PATH...; each PATH is
  - a .safetensors file (all its tensors; optimizer and RNG state, optim.* and rng.*, is skipped),
  - a numpy .npy file (one matrix, named after the file), or
  - a folder: model.safetensors, or shards with model.safetensors.index.json (Hugging Face), or other
    .safetensors files, or .npy files. Pickled files (.bin, .pt, .ckpt) are never read: loading them runs
    code; the message says how to convert them to safetensors in one line of Python.
Tensors are read one at a time (F64, F32, F16, BF16, integers) and listed in natural order (h.2 before
h.10). Levels are the eigenvalues of the smaller Gram matrix (WᵀW or WWᵀ). A 3-D or 4-D tensor named
*.weight is a convolution kernel, analysed slice by slice as WeightWatcher slices it (README); other
tensors that are not matrices (biases, an attention-mask buffer) are listed as skipped, with the reason.
  --json               JSON Lines: one object per matrix (name, shape, file and the diagnostics' numeric
                       scalars, the keys of docs/formats.md), then one {"summary": true, ...} object
  --csv                CSV: a header line, then one line per matrix (name, rows, cols, file, scalars)
  --markdown           a Markdown table of the terminal table's columns, the skipped tensors, the summary
  --plots DIR          write each diagnostic's plots of each matrix into DIR as PNG and SVG (needs gnuplot)
  --layers PATTERN     only the tensors whose name contains PATTERN; with * or ? in it, a glob matched
                       against the whole name (--layers 'h.*.attn.*'); not a Lua pattern
  --diagnostics=LIST   comma-separated plugin names (default: spectrum,mp,spacing,powerlaw,norms);
                       plugins are found in $DBM_LUA_PATH and the project's plugins/ (opt-in: rank, randomize)
  --option P.K=V       option K of plugin P (repeatable), e.g. --option powerlaw.min_tail=5; the plugin sees it
                       as ctx.options.P_K (plugins/README.md lists each plugin's options)
  --ks=two-sided|powerlaw
                       the power-law fit's KS distance for x_min (--option powerlaw.ks=...): two-sided (default),
                       or powerlaw, WeightWatcher 0.7.7's default fit (the powerlaw package's distance)
  --split-qkv          a fused attention projection (<module>.c_attn.weight, .query_key_value.weight,
                       .qkv_proj.weight, .wqkv.weight) is analysed as <module>.q, <module>.k and <module>.v,
                       in the layout its config.json (or the file's metadata) and shape name; an unknown
                       layout is an error
Several .safetensors checkpoints of one model (the same tensor names and shapes) are a series when their
metadata carries a `step` (as dbm-lua's checkpoints do), or with --series (steps from the file names,
ckpt_1000.safetensors; a folder stands for its .safetensors files): their spectra over the steps go into
a run directory as a training run's (docs/formats.md), with the noise temperature of each matrix.
  --series             the files (or the .safetensors files in a folder) are a series; steps from the
                       numbers in the file names
  --out_dir DIR        a series' run directory: spectra/, observables.jsonl, arrays/, plots/, summary.md,
                       noise_temperature.jsonl
  --lr=RATE            a series' noise temperature in units of the learning rate (δt = RATE × steps);
                       without it, per step
  -h, --help           print this help
A diagnostic that fails on one matrix is reported on stderr and the others go on. Runs longer than a
second show a progress line on stderr when it is a terminal.
Exit status: 0 on success; 1 on a missing, unreadable, pickled or malformed file, a model without a
matrix, or a plot that could not be written; 2 on a usage error.]]

function A.eprint(...)
  io.stderr:write("dbm-lua analyze: ", dbm._printable(table.concat({...})), "\n")   -- names from files: no escapes
end

local eprint = A.eprint
local clean = files.clean
A.clean = clean

-- ---------------------------------------------------------------- arguments

local formats = {["--json"] = "json", ["--csv"] = "csv", ["--markdown"] = "markdown"}

-- Returns options or nil, message (a usage error).
function A.parse_args(args)
  local o = {format = "table", diagnostics = A.default_diagnostics, paths = {}, options = {}}
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
    elseif formats[flag] and not inline then
      if o.format ~= "table" and o.format ~= formats[flag] then return nil, "give one of --json, --csv, --markdown" end
      o.format = formats[flag]
    elseif flag == "--plots" or flag == "--layers" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      if v == "" then return nil, flag .. (flag == "--plots" and " needs a directory" or " needs a pattern") end
      o[flag:sub(3)] = v
    elseif flag == "--diagnostics" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      local names = {}
      for name in v:gmatch("[^,%s]+") do names[#names + 1] = name end
      if #names == 0 then return nil, "--diagnostics needs at least one name" end
      o.diagnostics = names
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
    elseif flag == "--option" or flag == "--ks" then
      local v, err = value_of(flag, inline)
      if not v then return nil, err end
      o.options[#o.options + 1] = flag == "--ks" and "powerlaw.ks=" .. v or v
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option '" .. a .. "'"
    else
      o.paths[#o.paths + 1] = a
    end
    i = i + 1
  end
  if not o.help and #o.paths == 0 then return nil, "expected a .safetensors or .npy file, or a model folder" end
  o.files = o.paths   -- the name dbm.analyze_series reads
  return o
end

-- ---------------------------------------------------------------- matrices of a tensor

-- How a convolution kernel is sliced, as WeightWatcher slices it (get_conv2D_Wmats): a PyTorch kernel
-- (out, in, kh, kw) gives the kh·kw matrices W[:, :, i, j] of out × in; a Keras one (kh, kw, in, out), told
-- apart by WeightWatcher's rule out + in < kh + kw, gives W[i, j, :, :]. A 3-D (out, in, k) kernel gives
-- the k matrices W[:, :, j] ((k, in, out) when the first side is the smaller end). Returns whether the
-- kernel dimensions come first, and their sizes.
local function kernel_layout(shape)
  if #shape == 3 then
    local keras = shape[3] > shape[1]
    return keras, keras and {shape[1]} or {shape[3]}
  end
  local keras = shape[1] + shape[2] < shape[3] + shape[4]
  return keras, keras and {shape[1], shape[2]} or {shape[3], shape[4]}
end

-- The slices of a kernel, named with their index, 0-based as in Python: "conv.weight[:,:,0,1]".
local function kernel_slices(name, t, shape)
  local keras, sizes = kernel_layout(shape)
  local list = {}
  local function add(...)
    local s, at = t, {...}
    for k, i in ipairs(at) do s = keras and s:select(1, i) or s:select(#shape - #at + 1, i); at[k] = i - 1 end
    local text = table.concat(at, ",")
    list[#list + 1] = {name = name .. (keras and ("[" .. text .. ",:,:]") or ("[:,:," .. text .. "]")), tensor = s}
  end
  if #sizes == 1 then
    for j = 1, sizes[1] do add(j) end
  else
    for i = 1, sizes[1] do for j = 1, sizes[2] do add(i, j) end end
  end
  return list
end

local function is_kernel(name, shape)
  return (#shape == 3 or #shape == 4) and name:match("%.weight$") ~= nil
end

-- Why a tensor of this name and shape gives no matrix (nil when it gives some), before it is read.
local function skip_reason(name, shape)
  if #shape == 2 then
    if shape[1] < 2 or shape[2] < 2 then return "a matrix needs at least 2 rows and 2 columns for a spectrum" end
    return nil
  end
  if is_kernel(name, shape) then
    local keras, sizes = kernel_layout(shape)
    local rows, cols = keras and shape[#shape - 1] or shape[1], keras and shape[#shape] or shape[2]
    if rows < 2 or cols < 2 or sizes[1] < 1 or (sizes[2] or 1) < 1 then
      return "a convolution kernel whose slices have fewer than 2 rows or columns"
    end
    return nil
  end
  if #shape > 2 then return #shape .. "-D and not named *.weight: a buffer (such as an attention mask), not a matrix" end
  return #shape .. "-D, not a matrix"
end

-- The matrices of a read tensor: itself, or a kernel's slices.
local function matrices_of(entry, t)
  local shape = t:shape()
  if #shape == 2 then return {{name = entry.name, tensor = t}} end
  return kernel_slices(entry.name, t, shape)
end

-- ---------------------------------------------------------------- analysis

-- A file name for a matrix name: path separators and other odd characters become '_'.
local function file_stem(name)
  local s = name:gsub("[^%w%._%-]", "_")
  if s == "" or s:match("^%.") then s = "_" .. s end
  return s
end

-- Draws the plots of every plugin with a plot function (and of the levels' plugin) for one matrix, as a
-- history of one record (files DIR/STEM_*); returns a list of problems.
local function write_plots(D, dir, stem, name, shape, plugins, results, ctx)
  local problems = {}
  local history = require("dbm.history").new(name)
  history:add(results, ctx.eigenvalues)
  local levels = ctx.eigenvalues
  history:plot(D.plotted(plugins), {dir = dir, stem = stem, steps = {}, levels = levels:reshape(1, levels:numel()),
    shape = shape, symmetric = false, report = function(msg) problems[#problems + 1] = clean(msg) end})
  return problems
end

-- The scalars of all diagnostics of one matrix, merged (the first diagnostic to give a key wins).
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

-- One run of the command: its options, plugins, and what it has found so far.
local Run = {}
Run.__index = Run

-- Distinct names may map to one file stem ("a/b" and "a_b"): number the later ones.
function Run:stem(name)
  local stem, k = file_stem(name), 1
  while self.stems[stem .. (k > 1 and "_" .. k or "")] do k = k + 1 end
  stem = stem .. (k > 1 and "_" .. k or "")
  self.stems[stem] = true
  return stem
end

-- The plugins on one matrix whose levels are known: a row, its plots.
function Run:analyze_matrix(m, levels)
  local D, o = self.D, self.o
  local ctx = D.context(m.tensor, {eigenvalues = levels, options = self.plugin_options})
  -- D.run raises only when a plugin cannot be loaded (the same for every matrix, so it ends the
  -- command, see main); a plugin failing on this matrix is in failures.
  local results, failures = D.run(self.plugins, ctx)
  for _, d in ipairs(o.diagnostics) do
    if failures[d] then self.notes[#self.notes + 1] = m.name .. ": " .. tostring(failures[d]) end
  end
  local row = {name = m.name, shape = m.tensor:shape(), origin = m.origin, scalars = merged_scalars(D, o.diagnostics, results)}
  self.rows[#self.rows + 1] = row
  if o.format == "json" then print(output.json_row(row)) end
  if o.plots then
    for _, p in ipairs(write_plots(D, o.plots, self:stem(m.name), m.name, row.shape, self.plugins, results, ctx)) do
      self.notes[#self.notes + 1] = p; self.status = 1
    end
  end
end

-- The matrices gathered so far: their levels at once (dbm.gram_levels: small ones concurrently on all
-- cores), then the plugins one matrix after the other.
function Run:flush()
  local group = self.group
  if #group == 0 then return end
  self.group, self.group_elements = {}, 0
  local tensors = {}
  for i, m in ipairs(group) do tensors[i] = m.tensor end
  local levels, errors = dbm.gram_levels(tensors)
  for i, m in ipairs(group) do
    if errors[i] then
      local why = errors[i]:gsub("^expected finite entries, found ", "holds NaN or Inf: ")
      self.skipped[#self.skipped + 1] = {name = m.name, shape = m.tensor:shape(), reason = why}
    else
      self:analyze_matrix(m, levels[i])
    end
  end
  -- The group's tensors are garbage now: free them before the next ones are read (a full cycle of a
  -- small heap; the collector would otherwise let a few groups pile up).
  group, tensors, levels = nil, nil, nil
  collectgarbage()
end

-- Matrices are gathered until this many, or this many elements, then computed together: enough for
-- both cores to stay busy, while the memory held stays near the largest tensor.
A.group_matrices, A.group_elements = 8, 1 << 24

function Run:add(m)
  self.group[#self.group + 1] = m
  self.group_elements = self.group_elements + m.tensor:numel()
  if #self.group >= A.group_matrices or self.group_elements >= A.group_elements then self:flush() end
end

-- With --split-qkv, a fused attention projection as its q, k and v (dbm.qkv), in the layout of the
-- config.json beside the file or the file's metadata: a list of {name =, tensor =}.
function Run:split_qkv(e, t)
  if not self.o.split_qkv then return {{name = e.name, tensor = t}} end
  local Q = require("dbm.qkv")
  self.qkv_configs = self.qkv_configs or {}
  local config = self.qkv_configs[e.file]
  if not config then
    local why
    config, why = Q.model_config(e.file, self.metadata and self.metadata[e.origin])
    if not config then error({message = why}) end
    self.qkv_configs[e.file] = config
  end
  return Q.split(e.name, t, config)
end

-- One entry of the model: skipped with its reason, or read and its matrices gathered.
function Run:entry(e)
  local reason = e.shape and skip_reason(e.name, e.shape)
  if reason then self.skipped[#self.skipped + 1] = {name = e.name, shape = e.shape, reason = reason}; return true end
  local ok, t = pcall(e.load)
  if not ok then return nil, clean(t) end
  local shape = t:shape()
  reason = skip_reason(e.name, shape)
  if reason then self.skipped[#self.skipped + 1] = {name = e.name, shape = shape, reason = reason}; return true end
  self.tensors_analyzed = self.tensors_analyzed + 1
  for _, part in ipairs(self:split_qkv(e, t)) do
    for _, m in ipairs(matrices_of({name = part.name}, part.tensor)) do
      m.origin = e.origin
      self:add(m)
    end
  end
  return true
end

-- A progress line on stderr, shown once the run has taken more than a second, on a terminal only
-- (DBM_PROGRESS=plain forces plain lines; dbm.progress).
function Run:progress(done, total)
  if self.progress_line == nil then
    if dbm.clock() - self.t0 < 1 then return end
    local P = require("dbm.progress")
    if not P.is_terminal(io.stderr) and os.getenv("DBM_PROGRESS") ~= "plain" then self.progress_line = false; return end
    self.progress_line = P.new{total = total, label = "analyze", stream = io.stderr}
    -- Rate and ETA count from the start of the run, not from the first line shown.
    self.progress_line.t0, self.progress_line.first_step = self.t0, 1
  end
  if self.progress_line then self.progress_line:update(done) end
end

-- The summary object: the counts, then what each plugin's summary(rows) returns (the first to give a
-- key wins; a failing summary is a note).
function Run:summary()
  local s = {summary = true, matrices = #self.rows, skipped = #self.skipped, seconds = dbm.clock() - self.t0}
  local figures, problems = self.D.summary(self.plugins, self.rows)
  for k, v in pairs(figures) do if s[k] == nil then s[k] = v end end
  table.move(problems, 1, #problems, #self.notes + 1, self.notes)
  if self.o.plots then   -- the plugins' model-level plots (plot_model)
    local plot_problems = self.D.plot_model(self.plugins, self.rows, self.o.plots)
    table.move(plot_problems, 1, #plot_problems, #self.notes + 1, self.notes)
    if #plot_problems > 0 then self.status = 1 end
  end
  return s
end

-- ---------------------------------------------------------------- output

function Run:print(entries, info)
  local summary = self:summary()
  local o, out = self.o, print
  local opts = {columns = output.columns(self.plugins, self.rows), state = info.state, several = #o.paths > 1}
  if o.format == "json" then
    for _, s in ipairs(self.skipped) do eprint("skipped ", s.name, " ", output.shape_text(s.shape), ": ", s.reason) end
    if info.state > 0 then eprint("skipped ", info.state, " optimizer/RNG state tensors (optim.*, rng.*)") end
    print(output.json_summary(summary))
  elseif o.format == "csv" then
    output.csv(out, self.rows)
  elseif o.format == "markdown" then
    output.markdown(out, self.rows, self.skipped, summary, opts)
  else
    local total = #entries + info.state
    opts.title = ("%s: %d tensor%s, %d analyzed%s; diagnostics: %s"):format(table.concat(o.paths, ", "), total,
      total == 1 and "" or "s", self.tensors_analyzed, info.unselected > 0 and (" (" .. info.unselected .. " not selected by --layers)") or "",
      table.concat(o.diagnostics, ", "))
    output.print_table(out, self.rows, self.skipped, summary, opts)
  end
end

-- The message when no matrix was found.
local function nothing_message(o, skipped, info)
  local parts = {}
  for _, s in ipairs(skipped) do parts[#parts + 1] = s.name .. " " .. output.shape_text(s.shape) .. ": " .. s.reason end
  if info.state > 0 then parts[#parts + 1] = info.state .. " optimizer/RNG state tensors" end
  if info.unselected > 0 then parts[#parts + 1] = info.unselected .. " tensors not selected by --layers" end
  return ("%s holds no 2-D tensor to analyze%s"):format(#o.paths == 1 and ("file '" .. o.paths[1] .. "'") or "'" .. table.concat(o.paths, "', '") .. "'",
    #parts > 0 and " (" .. table.concat(parts, "; ") .. ")" or " (it holds no tensors)")
end

-- ---------------------------------------------------------------- main

local function load_plugins(D, names)
  return pcall(function()
    local list = {}
    for i, d in ipairs(names) do list[i] = D.load(d) end
    return list
  end)
end

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

  local entries, info = files.list(o.paths, {layers = o.layers})
  if not entries then eprint(info); return 1 end
  if o.plots then
    local ok, err = pcall(dbm.mkdir, o.plots)
    if not ok then eprint("cannot create the plot directory '", o.plots, "': ", (tostring(err):gsub("^.-dbm%.mkdir: ", ""))); return 1 end
  end
  local D = require("dbm.diagnostics")
  local loaded, plugins = load_plugins(D, o.diagnostics)
  if not loaded then eprint(clean(plugins)); return 1 end
  local options, option_error = D.plugin_options(plugins, o.options)
  if not options then eprint(option_error, " (dbm-lua analyze --help for usage)"); return 2 end

  local run = setmetatable({o = o, D = D, plugins = plugins, plugin_options = options, metadata = info.metadata, rows = {}, skipped = {}, notes = {},
    status = 0, stems = {}, group = {}, group_elements = 0, tensors_analyzed = 0, t0 = dbm.clock()}, Run)
  local ok, err = pcall(function()
    for k, e in ipairs(entries) do
      local fine, why = run:entry(e)
      if not fine then error({message = why}) end
      run:progress(k, #entries)
    end
    run:flush()
  end)
  if run.progress_line then run.progress_line:done() end
  if not ok then eprint(type(err) == "table" and err.message or clean(err)); return 1 end
  if #run.rows == 0 then eprint(nothing_message(o, run.skipped, info)); return 1 end
  run:print(entries, info)
  for _, n in ipairs(run.notes) do eprint(n) end
  return run.status
end

-- ---------------------------------------------------------------- for a series (dbm.analyze_series)

A.file_format = files.file_format

-- Why a loaded tensor gives no matrix (nil when it does).
function A.skip_reason(t) return skip_reason("", t:shape()) end

-- One checkpoint file: an array of {name =, tensor =} in natural order (state left out; with
-- opts.split_qkv each fused attention projection as its q, k and v), the number of state tensors, and
-- the file's metadata. nil, message on failure.
function A.load(path, opts)
  local entries, info = files.list({path})
  if not entries then return nil, info end
  local run = setmetatable({o = {split_qkv = opts and opts.split_qkv}, metadata = info.metadata}, Run)
  local ok, list = pcall(function()
    local list = {}
    for _, e in ipairs(entries) do
      for _, part in ipairs(run:split_qkv(e, e.load())) do list[#list + 1] = part end
    end
    return list
  end)
  if not ok then return nil, type(list) == "table" and list.message or clean(list) end
  return list, info.state, info.metadata[path]
end

return A
