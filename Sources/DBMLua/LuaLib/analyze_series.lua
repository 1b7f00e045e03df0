-- dbm.analyze_series: `dbm-lua analyze CHECKPOINT... --out_dir DIR [--series] [--lr=RATE] [--split-qkv]`.
-- Checkpoints of one model over its training (the same tensor names and shapes), ordered by step, go
-- through the recorder as the steps of a training run would (dbm.recorder: spectra/<matrix>.npy one row
-- per checkpoint, spectra/steps.npy, observables.jsonl, arrays/, plots/), so anyone's run gets the
-- nano-GPT experiment's figures; then the Dyson Brownian noise temperature of each matrix from the level
-- increments between checkpoints (dbm.noise_temperature, docs/physics.md §4.8) into
-- noise_temperature.jsonl and summary.md.
local dbm = require("dbm")

local S = {}

-- The estimate needs increments: with fewer checkpoints the summary says why there is none.
S.min_checkpoints = 8
-- Intervals count as long against the relaxation time when they make T too small by more than 10%.
S.underestimate_warning = 0.9

-- ---------------------------------------------------------------- the checkpoints

-- The checked header of a safetensors file, without the tensors (dbm.safetensors_header, as every
-- other reader of analyze): {entries = {{name, dtype, shape, ...}}, metadata}; nil, message when it is
-- not one.
local function read_header(path)
  local ok, entries, metadata = pcall(dbm.safetensors_header, path)
  if not ok then return nil, require("dbm.model_files").clean(entries) end
  return {entries = entries, metadata = metadata}
end

-- The files of the arguments: a folder (with --series) stands for the .safetensors files in it.
local function expand(paths, series)
  local files = {}
  for _, p in ipairs(paths) do
    local dir = io.open(p .. "/.", "r")   -- opens only when p is a folder
    if dir and series then
      dir:close()
      local ls = io.popen("ls -1 " .. dbm._shell_quote(p) .. " 2>/dev/null")
      for name in ls:lines() do
        if name:match("%.safetensors$") then files[#files + 1] = p:gsub("/+$", "") .. "/" .. name end
      end
      ls:close()
    else
      if dir then dir:close() end
      files[#files + 1] = p
    end
  end
  return files
end

-- The step of a checkpoint: the last number in its file name (--series), else its metadata's `step`.
local function step_of(path, header, from_names)
  if from_names then
    local stem = path:match("([^/]*)$"):gsub("%.[Ss][Aa][Ff][Ee][Tt][Ee][Nn][Ss][Oo][Rr][Ss]$", "")
    local digits = stem:match("(%d+)%D*$")
    if not digits then return nil, ("'%s' has no step number in its file name (as in ckpt_1000.safetensors)"):format(path) end
    return math.tointeger(tonumber(digits))
  end
  local step = math.tointeger(tonumber(header.metadata.step))
  if not step then
    return nil, ("'%s' has no step in its metadata: give --series to take the steps from the file names"):format(path)
  end
  return step
end

-- The weights of a header (not optimizer or RNG state): name -> shape text.
local function weight_shapes(header, skipped_prefixes)
  local out = {}
  for _, e in ipairs(header.entries) do
    local state = false
    for _, p in ipairs(skipped_prefixes) do state = state or e.name:sub(1, #p) == p end
    if not state then out[e.name] = "(" .. table.concat(e.shape, ", ") .. ")" end
  end
  return out
end

-- Why checkpoint b is not of the model of checkpoint a (nil when it is): names and shapes.
local function mismatch(a, b)
  for name, shape in pairs(a.shapes) do
    if b.shapes[name] == nil then return ("'%s' lacks the tensor '%s' of '%s'"):format(b.path, name, a.path) end
    if b.shapes[name] ~= shape then
      return ("the tensor '%s' is %s in '%s' and %s in '%s'"):format(name, shape, a.path, b.shapes[name], b.path)
    end
  end
  for name in pairs(b.shapes) do
    if a.shapes[name] == nil then return ("'%s' has a tensor '%s' that '%s' lacks"):format(b.path, name, a.path) end
  end
  return nil
end

--- S.is_series(o, A) -> whether the arguments ask for a series: --series, --out_dir or --lr, or several
--- .safetensors files that all carry a step in their metadata.
function S.is_series(o, A)
  if o.series or o.out_dir or o.lr then return true end
  if #o.files < 2 then return false end
  for _, path in ipairs(o.files) do
    local header = A.file_format(path) == "safetensors" and read_header(path)
    if not (header and step_of(path, header, false)) then return false end
  end
  return true
end

--- S.checkpoints(o, A) -> the series {{path =, step =}, ...} ordered by step, its headers checked to be
--- one model; nil, message otherwise.
function S.checkpoints(o, A)
  local series, steps_seen = {}, {}
  for _, path in ipairs(expand(o.files, o.series)) do
    local format, why = A.file_format(path)
    if format ~= "safetensors" then return nil, why or ("'%s' is not a .safetensors file: a series is made of checkpoints"):format(path) end
    local header, bad = read_header(path)
    if not header then return nil, bad end
    local step, no_step = step_of(path, header, o.series)
    if not step then return nil, no_step end
    if steps_seen[step] then return nil, ("'%s' and '%s' are both step %d"):format(steps_seen[step], path, step) end
    steps_seen[step] = path
    series[#series + 1] = {path = path, step = step, shapes = weight_shapes(header, A.skipped_prefixes)}
  end
  if #series < 2 then return nil, ("a series needs at least 2 checkpoints, got %d"):format(#series) end
  table.sort(series, function(a, b) return a.step < b.step end)
  for i = 2, #series do
    local why = mismatch(series[1], series[i])
    if why then return nil, "the checkpoints are not of one model: " .. why end
  end
  return series
end

-- ---------------------------------------------------------------- recording

-- A recorder name for each analysable tensor (spectra/<name>.npy): odd characters become '_', and
-- names that then collide are numbered.
local function watch_names(list, A)
  local out, taken = {}, {}
  for _, e in ipairs(list) do
    if not A.skip_reason(e.tensor) then
      local stem = e.name:gsub("[^%w_%.%-]", "_"):gsub("^%.", "_.")
      if stem == "" then stem = "_" end
      local k, name = 1, stem
      while taken[name] do k = k + 1; name = stem .. "_" .. k end
      taken[name] = true
      out[#out + 1] = {tensor = e.name, name = name}
    end
  end
  return out
end

-- Records every checkpoint: each watched matrix is read from the checkpoint of the step being recorded.
-- Returns the watched {tensor =, name =} list, or nil, message.
local function record(rec, series, o, A)
  local first, why = A.load(series[1].path, o)
  if not first then return nil, why end
  local watched, current = watch_names(first, A), {}
  if #watched == 0 then return nil, ("'%s' holds no 2-D tensor to analyze"):format(series[1].path) end
  for _, w in ipairs(watched) do
    local ok, err = pcall(rec.watch, rec, w.name, function() return current[w.tensor] end, {diagnostics = o.diagnostics})
    if not ok then return nil, A.clean(err):gsub("^rec:watch: ", "") end
  end
  local progress = dbm.progress{total = #series, label = "checkpoints", stream = io.stderr}
  for i, c in ipairs(series) do
    local list = first   -- one checkpoint in memory at a time
    first = nil
    if i > 1 then list, why = A.load(c.path, o) end
    if not list then return nil, why end
    current = {}
    for _, e in ipairs(list) do current[e.name] = e.tensor end
    local ok, err = pcall(rec.step, rec, c.step)
    if not ok then return nil, ("'%s' (step %d): %s"):format(c.path, c.step, A.clean(err):gsub("^rec:step: ", "")) end
    progress:update(i)
  end
  progress:done()
  return watched
end

-- ---------------------------------------------------------------- noise temperature

-- The longest stretch of records equally many steps apart: first index, count, steps between them.
local function even_stretch(steps)
  local best_first, best_n, first = 1, math.min(#steps, 1), 1
  for i = 2, #steps do
    if i > first + 1 and steps[i] - steps[i - 1] ~= steps[first + 1] - steps[first] then first = i - 1 end
    if i - first + 1 > best_n then best_first, best_n = first, i - first + 1 end
  end
  return best_first, best_n, best_n > 1 and steps[best_first + 1] - steps[best_first] or nil
end

-- The fraction of T that an Ornstein–Uhlenbeck level relaxing at rate 1/τ shows over intervals δt = u·τ:
-- the increments' variance beyond the fitted drift is (1 − e^{−2u})/(2u) of 2Tδt (ρ = e^{−u} per interval).
local function seen_fraction(u)
  if u < 1e-6 then return 1 - u end   -- the series: no cancellation in 1 − e^{−2u}
  return (1 - math.exp(-2 * u)) / (2 * u)
end

--- S.relaxation(history, dt, estimate) -> how long the intervals are against the levels' relaxation time τ:
--- T estimated again from every other checkpoint (intervals 2δt). Brownian levels give the same T;
--- levels that relax give f(2u)/f(u) of it, f = seen_fraction, u = δt/τ: solved for u, so that T at δt is
--- f(u) of the true one. nil when the checkpoints are too few for the second estimate.
--- Returns {ratio, ratio_stderr, interval_over_relaxation = u, factor = f(u)}.
function S.relaxation(history, dt, estimate)
  local odd = {}
  for i = 1, history:shape()[1], 2 do odd[#odd + 1] = i end
  local ok, twice = pcall(dbm.noise_temperature, history:index(1, odd), 2 * dt)
  if not ok then return nil end
  local ratio = twice.temperature / estimate.temperature
  local se = ratio * math.sqrt((estimate.stderr / estimate.temperature) ^ 2 + (twice.stderr / twice.temperature) ^ 2)
  local u = 0
  if ratio <= 0.5 then u = math.huge
  elseif ratio < 1 then   -- f(2u)/f(u) falls from 1 (u = 0) to 1/2 (u → ∞): bisection on log u
    local lo, hi = -12, 12
    for _ = 1, 80 do
      local mid = (lo + hi) / 2
      if seen_fraction(2 * math.exp(mid)) / seen_fraction(math.exp(mid)) > ratio then lo = mid else hi = mid end
    end
    u = math.exp((lo + hi) / 2)
  end
  return {ratio = ratio, ratio_stderr = se, interval_over_relaxation = u, factor = u == math.huge and 0 or seen_fraction(u)}
end

-- The noise temperature of one recorded matrix (its spectra and steps files in dir), or {reason = why not}.
function S.temperature(dir, name, lr)
  local spectra = dir .. "/spectra/" .. name
  local levels = dbm.load_npy(spectra .. ".npy")
  local own, steps = pcall(dbm.load_npy, spectra .. ".steps.npy")
  steps = (own and steps or dbm.load_npy(dir .. "/spectra/steps.npy")):totable()
  for i, s in ipairs(steps) do steps[i] = math.tointeger(s) end
  local first, count, interval = even_stretch(steps)
  count = math.min(count, levels:shape()[1] - first + 1)
  if count < S.min_checkpoints then
    return {reason = ("%d checkpoints%s: the estimate needs at least %d, %d steps apart (the level increments between them)")
      :format(count, count < #steps and (" equally spaced of " .. #steps) or "", S.min_checkpoints, interval or 0)}
  end
  local history = levels:narrow(1, first, count)
  local dt = interval * (lr or 1)
  local ok, est = pcall(dbm.noise_temperature, history, dt)
  if not ok then return {reason = tostring(est):gsub("^.-dbm%.noise_temperature: ", "")} end
  local out = {temperature = est.temperature, stderr = est.stderr, unit = lr and "lr" or "step", dt = dt, interval = interval,
               checkpoints = count, first_step = steps[first], last_step = steps[first + count - 1]}
  local r = S.relaxation(history, dt, est)
  if r then
    out.ratio_two_intervals, out.interval_over_relaxation = r.ratio, r.interval_over_relaxation
    if r.factor < S.underestimate_warning and r.ratio < 1 - 3 * r.ratio_stderr then
      local u = r.interval_over_relaxation
      out.warning = ("the intervals are long against the relaxation time: from every other checkpoint T is %.3g ± %.2g of it, "
        .. "so %s; save checkpoints more often"):format(r.ratio, r.ratio_stderr, u == math.huge
          and "the levels decorrelate between checkpoints and T is far too small"
          or ("δt/τ ≈ %.3g and T is underestimated (≈ %.2f of the true one)"):format(u, r.factor))
    end
  end
  return out
end

-- ---------------------------------------------------------------- report

-- The temperatures on the terminal (or as JSON lines), in noise_temperature.jsonl and in summary.md.
local function report(dir, o, A, series, watched, results)
  local unit = o.lr and ("units of lr = %g (δt = lr × steps)"):format(o.lr) or "per step (δt = steps; --lr=RATE for units of the learning rate)"
  local file = dbm.jsonl(dir .. "/noise_temperature.jsonl", {append = false})
  local rows, notes, reasons = {}, {}, {}
  for _, r in ipairs(results) do reasons[r.reason or ""] = true end
  local common = next(reasons) ~= "" and next(reasons, next(reasons)) == nil and next(reasons)   -- one reason for all
  print(dbm._printable(("series of %d checkpoints (steps %d … %d, from the %s), %d matrices: %s")
    :format(#series, series[1].step, series[#series].step, o.series and "file names" or "metadata", #watched, dir)))
  print(common and ("no noise temperature: " .. common) or ("noise temperature T, " .. unit .. ":"))
  if common then notes[1] = "No noise temperature: " .. common .. "." end
  for i, w in ipairs(watched) do
    local r = results[i]
    local line = {matrix = w.name, tensor = w.tensor}   -- matrix: as in observables.jsonl and spectra/
    for k, v in pairs(r) do line[k] = v end
    file:write(line)
    if o.json then print(dbm.json_encode(line)) end
    local text = r.temperature and ("%.4g ± %.2g"):format(r.temperature, r.stderr) or "none: " .. r.reason
    if not common then print(dbm._printable(("  %s  T = %s"):format(w.name, text))) end
    if r.warning then notes[#notes + 1] = w.name .. ": " .. r.warning; A.eprint("warning: ", w.name, ": ", r.warning) end
    if not common then
      rows[#rows + 1] = {w.name, r.temperature and ("%.4g ± %.2g"):format(r.temperature, r.stderr) or "—",
                         r.interval_over_relaxation or "—", r.reason or r.warning and "intervals too long" or ""}
    end
  end
  file:close()
  return rows, notes, unit
end

-- summary.md of the series (dbm.write_summary), before rec:close() writes DONE.
function S.write_summary(dir, o, series, rows, notes, unit)
  dbm.write_summary(dir, {
    title = ("Checkpoint series: %d checkpoints, steps %d … %d"):format(#series, series[1].step, series[#series].step),
    settings = ("Checkpoints %s … %s (steps from the %s), analysed by `dbm-lua analyze`%s: per checkpoint the levels of each "
      .. "2-D weight (eigenvalues of the smaller Gram matrix, float64) in spectra/, the diagnostics %s in observables.jsonl and "
      .. "arrays/, their plots in plots/. The noise temperature T of the Wishart-type Dyson Brownian motion of the levels "
      .. "(docs/physics.md §4.8) comes from the level increments between equally spaced checkpoints (at least %d), %s.")
      :format(series[1].path, series[#series].path, o.series and "file names" or "metadata", o.split_qkv and " with --split-qkv" or "",
        table.concat(o.diagnostics, ", "), S.min_checkpoints, unit),
    figures = #rows > 0 and {header = {"matrix", "T ± standard error", "δt/τ", "note"}, rows = rows} or nil,
    notes = notes,
    files = {"spectra/<matrix>.npy (checkpoints × levels)", "spectra/steps.npy", "observables.jsonl", "arrays/", "plots/",
             "noise_temperature.jsonl"},
  })
end

--- S.main(o, A) -> exit status: the series of checkpoints o.files into the run directory o.out_dir.
function S.main(o, A)
  if not o.out_dir then A.eprint("a series of checkpoints writes a run directory: give --out_dir DIR (dbm-lua analyze --help)"); return 2 end
  if o.plots then A.eprint("--plots is for one file; a series writes its plots into --out_dir DIR/plots"); return 2 end
  local series, why = S.checkpoints(o, A)
  if not series then A.eprint(why); return 1 end
  local steps, files = {}, {}
  for i, c in ipairs(series) do steps[i], files[i] = c.step, c.path end
  local made, rec = pcall(dbm.recorder, {out_dir = o.out_dir, name = "analyze_series", config = {files = files, steps = steps,
    step_source = o.series and "file names" or "metadata", lr = o.lr, split_qkv = o.split_qkv or false, diagnostics = o.diagnostics}})
  if not made then A.eprint(A.clean(rec)); return 1 end
  local watched
  watched, why = record(rec, series, o, A)
  if not watched then A.eprint(why); return 1 end
  local results = {}
  for i, w in ipairs(watched) do results[i] = S.temperature(rec.dir, w.name, o.lr) end
  local rows, notes, unit = report(rec.dir, o, A, series, watched, results)
  S.write_summary(rec.dir, o, series, rows, notes, unit)
  rec:close()
  return 0
end

return S
