-- dbm.recorder: one run directory per run (DESIGN §8), filled while a run goes on.
--
--   local rec = dbm.recorder{out_dir = ..., config = cfg, name = ..., plots = true, report = fn,
--                            resume = S,   -- S: continue the run directory out_dir from step S (below)
--                            plot_every_s = 60, tensorboard = true,   -- default: cfg's shared keys (dbm.config)
--                            total_steps = M}                         -- the M of "step N of M" (cfg.max_iters)
--   rec:watch(name, tensor_or_function, {diagnostics = {...}, every = N | steps = {...} | when = fn,
--                                       symmetric = bool, options = {...}})
--        a tensor is read at each record (so it must be updated in place); a function is called at
--        each record and returns the tensor (or 1-D levels). No cadence: every step. `options` is
--        ctx.options for the plugins (e.g. {mp_sigma2 = 0.02^2}). Plugins are loaded here, so a
--        missing or broken plugin is an error at this line, before any training.
--   rec:step(step, {train_loss = ..., lr = ...})   -- logs the scalars; records the matrices that are due
--   rec:record(step [, name])                      -- records now, whatever the cadence
--   rec:refresh()                                  -- plots and index.html now, in the background (dbm.report);
--                                                  -- rec:step does it every plot_every_s seconds; paced
--                                                  -- by their cost: at most 1% of a core
--   rec:close()                                    -- plots, index.html, then DONE; idempotent
--
-- The run directory (default runs/<script>-<YYYYmmdd-HHMMSS>, made unique with -2, -3, ...):
--   run.lock           an exclusive flock held by the recording process until rec:close() (or its end),
--                      with its PID and host: a second run on the directory is refused at once
--   config.json        the experiment's config, seed, dbm-lua version, the BLAS (`blas`: library, version,
--                      core, threads, source, as dbm.blas_info), git commit (and whether the tree
--                      had uncommitted changes), start time (ISO 8601 UTC), host, script and arguments,
--                      and the watched matrices (rewritten at each watch)
--   metrics.jsonl      per rec:step: step, time (seconds since the recorder was made), then the scalars
--   observables.jsonl  per record and diagnostic: step, matrix, diagnostic, then its numeric scalars
--   spectra/<matrix>.npy  Float64, rows = the records of that matrix, columns = its ascending levels
--   spectra/steps.npy  int64, the steps of the records; matrices recorded at the same steps share it, and
--                      a matrix recorded at other steps than the others (its own cadence, or watched
--                      later) also gets spectra/<matrix>.steps.npy
--   arrays/<matrix>/   every array the plugins return, appended per record (dbm.history):
--                      <plugin>.<array>.npy, or .values.npy + .offsets.npy when its length varies
--   plots/             made by close() and each refresh: each plugin's plot(h) per matrix (the levels'
--                      plugin, spectrum, always: density, flow, observables; see plugins/README.md), and
--                      the metrics
--   index.html         the run's page (dbm.report), written by each refresh and by close()
--   events.out.tfevents.<time>.<host>   TensorBoard: metrics, plugin scalars (<matrix>/<plugin>/<key>) and
--                      levels (<matrix>/levels histograms), appended per record (dbm.tensorboard)
--   DONE               written by an explicit rec:close(), after its plots: the last file of a run, so
--                      an experiment writes its summary.md (dbm.write_summary) and its own plots before
--
-- Durability: JSON lines are appended and flushed one by one; .json files are written to a temporary
-- file and renamed. The spectra/ files grow by appending (dbm.npy_appender): a record writes its row
-- after the rows the file's header counts, then the header with the new count, in place (numpy's
-- header, with room for a 21-digit row count), so a run costs O(records), not O(records²); files are
-- fsync'd at close only. A killed run leaves every file valid up to its last record: rows of
-- spectra/<matrix>.npy are written before their steps (spectra/steps.npy or <matrix>.steps.npy; the
-- steps files grow once every matrix of a step has its row), so row i of a spectra file belongs to
-- steps[i] for every i ≤ len(steps), and after a kill a spectra file holds as many rows as its steps
-- file or one more. A kill between a row write and its header update leaves bytes after the rows the
-- header counts: np.load and dbm.load_npy ignore them, the resume below rewrites the file without
-- them. (A file is created whole, with its first rows, and renamed.)
-- dbm.on_exit closes the recorder after an error or Ctrl-C (plots included, no DONE); closing cuts
-- rows and steps to agree exactly, should Ctrl-C have landed inside a record.
-- Messages (plugin failures, gnuplot missing, closing without DONE) go to opts.report (stderr).
--
-- Resuming (a run continued from its checkpoint at step S redoes step S onward, deterministically, so
-- it records those steps again): dbm.recorder{out_dir = DIR, resume = S} keeps what DIR recorded at
-- steps < S and drops what it recorded at steps ≥ S, before it returns:
--   config.json        the original fields, and {step = S, time, args, blas} appended to its `resumed`
--                      array; a BLAS kernel other than the one the run last ran on is reported (the
--                      continuation is then not bit-exact);
--                      rec:watch replaces the watch entry of its name (or adds one)
--   *.jsonl            the lines with step < S (rewritten atomically, then appended to); `time` goes on
--                      from the last kept metrics line, so it stays monotone
--   spectra/           the rows whose step < S, steps files written before the rows they describe
--                      (each file rewritten once, then appended to)
--   DONE               removed; close() writes it again
-- rec:watch of a matrix with kept rows takes up its rows, steps, observables and first record, so
-- close() plots the whole run. A matrix that this run does not watch keeps its kept rows.
--
-- A plugin that fails (raises or returns garbage) is reported once per (matrix, diagnostic) on
-- stderr, with the plugin's file and line, and the run goes on; rec.failures[matrix][diagnostic]
-- holds the first message. A matrix with non-finite entries is reported once and not recorded.
local dbm = require "dbm"
local D = require "dbm.diagnostics"
local P = require "dbm.plot"
local History = require "dbm.history"
local TB = require "dbm.tensorboard"

local Recorder = {}
Recorder.__index = Recorder

local M = {Recorder = Recorder}

local is_tensor = D.is_tensor

-- The message of an error the diagnostics raised at the script's line, without that position: the
-- recorder names its own function and raises it again at the line it chooses (so the position appears once).
local function without_position(err)
  local msg, where = tostring(err), dbm._where()
  if where ~= "" and msg:sub(1, #where) == where then msg = msg:sub(#where + 1) end
  return msg
end

-- ---------------------------------------------------------------- files

local shell_quote = P.shell_quote

local function exists(path) return os.rename(path, path) ~= nil end

local write_atomic = P.write_atomic

-- mkdir -p: true, or false and why not.
local function mkdir_p(dir)
  local ok, err = pcall(dbm.mkdir, dir)
  return ok, not ok and (tostring(err):gsub("^.-dbm%.mkdir: ", "")) or nil
end

-- A steps file (int64, 1-D) holding steps[1..n], created whole (atomically); it grows by appending.
local function create_steps(path, steps, n)
  n = n or #steps
  return dbm.npy_appender(path, {dtype = "int64", data = table.move(steps, 1, n, 1, {})})
end

-- Appends steps[file:rows() + 1 .. #steps] to a steps file that holds the first entries of the list.
local function grow_steps(file, steps)
  local have = file:rows()
  if have < #steps then file:append(table.move(steps, have + 1, #steps, 1, {})) end
end

-- The number of leading entries a and b share, at most n.
local function common_prefix(a, b, n)
  local p = 0
  while p < n and p < #a and p < #b and a[p + 1] == b[p + 1] do p = p + 1 end
  return p
end

local function same_steps(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function read_command(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  if not f then return nil end
  local out = f:read("a")
  f:close()
  out = out and out:gsub("%s+$", "")
  return out ~= "" and out or nil
end

-- The BLAS that computes this run (dbm.blas_info without the build string), for config.json.
local function blas_provenance()
  local b = dbm.blas_info()
  return {library = b.library, version = b.version, core = b.core, threads = b.threads, source = b.source}
end

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname")
  if f then
    local h = f:read("l"); f:close()
    if h and h ~= "" then return h end
  end
  return os.getenv("HOSTNAME") or read_command("uname -n")
end

local function script_path()
  local a = _G.arg and _G.arg[0]
  if type(a) == "string" and a:match("%.lua$") then return a end
  return nil
end

-- The git commit of the script's folder (or the working directory), and whether tracked files differ
-- from it. `--no-optional-locks` keeps `git status` from writing the index.
local function git_state()
  local script = script_path()
  local dir = script and script:match("^(.*)/[^/]*$") or "."
  local git = "git -C " .. shell_quote(dir)
  local commit = read_command(git .. " rev-parse HEAD")
  if not commit or not commit:match("^%x+$") then return nil, nil end
  local status = read_command(git .. " --no-optional-locks status --porcelain --untracked-files=no")
  return commit, status ~= nil
end

-- Values JSON can hold: functions and other objects become their description.
local function plain(v, depth)
  if type(v) == "table" and not is_tensor(v) then
    if depth > 8 then return tostring(v) end
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" or math.type(k) == "integer" then out[k] = plain(x, depth + 1) end
    end
    return out
  elseif type(v) == "function" or type(v) == "userdata" and not is_tensor(v) or type(v) == "thread" then
    return tostring(v)
  end
  return v
end

-- JSON text of a config.json field; an empty table is an object ({}) only where one is expected.
local function encode(v, object)
  if object and type(v) == "table" and not is_tensor(v) and next(v) == nil then return "{}" end
  return dbm.json_encode(v)
end

-- ---------------------------------------------------------------- creation

local function default_dir(name)
  local stem = "runs/" .. name .. "-" .. os.date("%Y%m%d-%H%M%S")
  local dir, k = stem, 1
  while exists(dir) do k = k + 1; dir = stem .. "-" .. k end
  return dir
end

local known_options = {out_dir = true, config = true, name = true, plots = true, report = true, resume = true,
                       plot_every_s = true, tensorboard = true, total_steps = true}

-- The checked options of dbm.recorder: the run's name, the step to resume at (or nil) and the directory.
-- Errors name the caller of dbm.recorder (level 3 from here).
local function checked_options(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("dbm.recorder: expected a table of options {out_dir=, config=, name=}, got " .. type(opts), 3) end
  for k in pairs(opts) do
    if not known_options[k] then
      error(("dbm.recorder: unknown option '%s' (known: out_dir, config, name, plots, report, resume, plot_every_s, "
        .. "tensorboard, total_steps)"):format(tostring(k)), 3)
    end
  end
  if opts.out_dir ~= nil and (type(opts.out_dir) ~= "string" or opts.out_dir == "") then
    error("dbm.recorder: option 'out_dir': expected a folder name, got " .. type(opts.out_dir), 3)
  end
  if opts.config ~= nil and type(opts.config) ~= "table" then
    error("dbm.recorder: option 'config': expected the experiment's config table, got " .. type(opts.config), 3)
  end
  for _, k in ipairs({"plot_every_s", "total_steps"}) do
    local v = opts[k]
    if v ~= nil and not (type(v) == "number" and v > 0 and v < math.huge) then
      error(("dbm.recorder: option '%s': expected a positive number, got %s"):format(k, tostring(v)), 3)
    end
  end
  if opts.tensorboard ~= nil and type(opts.tensorboard) ~= "boolean" then
    error("dbm.recorder: option 'tensorboard': expected true or false, got " .. type(opts.tensorboard), 3)
  end
  -- the run's name: the script's file name without .lua ("dbm-lua" in the REPL or with -e)
  local arg0 = _G.arg and type(_G.arg[0]) == "string" and _G.arg[0] or "run"
  local default_name = arg0:match("([^/]*)$"):gsub("%.lua$", ""):gsub("[^%w_%.%-]", "_")
  if default_name == "" or default_name:match("^[_%.%-]*$") then default_name = "run" end
  local name = opts.name or default_name
  if type(name) ~= "string" or not name:match("^[%w_%.%-]+$") then
    error("dbm.recorder: option 'name': expected a name of letters, digits, '_', '-' or '.', got " .. tostring(name), 3)
  end
  local resume = opts.resume
  if resume ~= nil then
    if opts.out_dir == nil then error("dbm.recorder: option 'resume': give out_dir, the run directory to continue", 3) end
    if not (type(resume) == "number" and resume >= 0 and math.tointeger(resume)) then
      error("dbm.recorder: option 'resume': expected the step to resume at (an integer ≥ 0), got "
        .. (type(resume) == "number" and tostring(resume) or type(resume)), 3)
    end
    resume = math.tointeger(resume)
  end
  local dir = opts.out_dir or default_dir(name)
  dir = dir:gsub("/+$", "")
  if resume and not exists(dir) then error("dbm.recorder: option 'resume': no run directory " .. dir, 3) end
  if resume and not exists(dir .. "/config.json") then
    error("dbm.recorder: option 'resume': " .. dir .. " has no config.json (not a run directory)", 3)
  end
  return opts, name, resume, dir
end

-- Makes the run directory and takes its lock (one run at a time in a directory), before anything in it changes.
local function open_run_dir(dir)
  local made, why = mkdir_p(dir .. "/spectra")
  if not made then dbm._fail("dbm.recorder: cannot create the run directory %s: %s", dir, why) end
  -- One run at a time in a directory: an exclusive lock on run.lock for the recorder's life (until
  -- close, or the process's end), taken before anything in the directory changes.
  local lock = dir .. "/run.lock"
  local locked
  locked, why = pcall(dbm._lock, lock)
  if not locked then
    dbm._fail("dbm.recorder: the run directory %s is in use: %s; give another out_dir, or wait for that run to end",
      dir, (tostring(why):gsub("^.-dbm%._lock: ", "")))
  end
  if exists(dir .. "/config.json") then os.remove(dir .. "/DONE") end   -- a run directory used again, or resumed
  return lock
end

-- The provenance of a fresh run (config.json).
local function fresh_meta(name, cfg)
  local commit, dirty = git_state()
  return {
    name = name,
    script = _G.arg and _G.arg[0],
    args = _G.arg and table.move(_G.arg, 1, #_G.arg, 1, {}) or {},
    config = plain(cfg, 0),
    seed = type(cfg.seed) == "number" and cfg.seed or nil,
    dbm_lua_version = dbm.version,
    blas = blas_provenance(),
    git_commit = commit, git_dirty = dirty,
    start_time = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    host = hostname(),
    watch = {},
  }
end

--- M.new(opts) -> recorder (dbm.recorder calls this).
function M.new(opts)
  local name, resume, dir
  opts, name, resume, dir = checked_options(opts)
  local lock = open_run_dir(dir)
  local cfg = opts.config or {}
  local function option(key, default)   -- the recorder's option, else the config's shared key (dbm.config)
    if opts[key] ~= nil then return opts[key] end
    if type(cfg[key]) == type(default) then return cfg[key] end
    return default
  end
  local rec = setmetatable({
    dir = dir, name = name, config = cfg, lock = lock,
    make_plots = option("plots", true) ~= false,
    plot_every_s = option("plot_every_s", 60.0), last_refresh = dbm.clock(),
    total_steps = option("total_steps", cfg.max_iters),
    report = opts.report or function(msg) io.stderr:write(msg, "\n") end,
    t0 = dbm.clock(), time_offset = 0,   -- metrics `time` = time_offset + seconds since t0
    watched = {}, by_name = {},
    unclaimed = {},                       -- matrices of a resumed run with kept rows, not watched (yet)
    steps = {}, step_seen = {},           -- union of the recorded steps, in order
    metric_steps = {}, metrics = {},
    failures = {}, reported = {},
    closed = false,
  }, Recorder)
  if resume then
    local ok, err = pcall(rec._resume, rec, resume, opts.name)
    if not ok then error("dbm.recorder: cannot resume " .. dir .. ": " .. tostring(err), 2) end
  else
    rec.meta = fresh_meta(name, rec.config)
    local ok, err = pcall(rec._write_config, rec)
    if not ok then error("dbm.recorder: cannot write " .. dir .. "/config.json: " .. tostring(err), 2) end
    rec.steps_file = create_steps(dir .. "/spectra/steps.npy", {})   -- there from the start, empty until the first record
    rec.metrics_file = dbm.jsonl(dir .. "/metrics.jsonl", {append = false})
    rec.observables_file = dbm.jsonl(dir .. "/observables.jsonl", {append = false})
  end
  if option("tensorboard", true) then rec.events = TB.open(dir, rec.meta.host) end
  rec.meta.total_steps = math.tointeger(rec.total_steps) or rec.total_steps
  rec.meta.plot_every_s = rec.plot_every_s   -- how often index.html reloads itself while the run goes on
  rec:_write_config()
  dbm.on_exit(function() if not rec.closed then rec:_close(false) end end)
  return rec
end

local config_keys = {"name", "script", "args", "config", "seed", "dbm_lua_version", "blas", "git_commit", "git_dirty",
                     "start_time", "host", "total_steps", "watch"}

-- config.json, one field a line: the keys above in that order, then any others (sorted), `resumed` last.
function Recorder:_write_config()
  local keys, known = table.move(config_keys, 1, #config_keys, 1, {}), {resumed = true}
  for _, k in ipairs(config_keys) do known[k] = true end
  local others = {}
  for k in pairs(self.meta) do if not known[k] then others[#others + 1] = k end end
  table.sort(others)
  table.move(others, 1, #others, #keys + 1, keys)
  keys[#keys + 1] = "resumed"
  local lines = {}
  for _, k in ipairs(keys) do
    local v = self.meta[k]
    if v ~= nil then lines[#lines + 1] = "  " .. dbm.json_encode(k) .. ": " .. encode(v, k == "config") end
  end
  write_atomic(self.dir .. "/config.json", "{\n" .. table.concat(lines, ",\n") .. "\n}\n")
end

-- ---------------------------------------------------------------- watch

local function check_self(self, method)
  if getmetatable(self) ~= Recorder then
    error(("rec:%s: call it with a colon, rec:%s(...)"):format(method, method), 3)
  end
  if self.closed then error(("rec:%s: the recorder is closed (%s)"):format(method, self.dir), 3) end
end

local watch_options = {diagnostics = true, every = true, steps = true, when = true, symmetric = true, options = true}

-- The cadence of rec:watch: due(step) -> boolean, and its description for config.json. Errors name the
-- caller of rec:watch (level 3 from here).
local function watch_cadence(opts)
  local due, cadence
  if opts.every ~= nil then
    if math.type(opts.every) ~= "integer" and not (type(opts.every) == "number" and opts.every == math.floor(opts.every)) or opts.every < 1 then
      error("rec:watch: option 'every': expected a positive integer, got " .. tostring(opts.every), 3)
    end
    local every = math.tointeger(opts.every)
    due = function(step) return step % every == 0 end
    cadence = {every = every}
  elseif opts.steps ~= nil then
    if type(opts.steps) ~= "table" then error("rec:watch: option 'steps': expected a list of steps, got " .. type(opts.steps), 3) end
    local set = {}
    for i, s in ipairs(opts.steps) do
      if type(s) ~= "number" then error(("rec:watch: option 'steps': entry %d is a %s, expected a step number"):format(i, type(s)), 3) end
      set[s] = true
    end
    due = function(step) return set[step] == true end
    cadence = {steps = opts.steps}
  elseif opts.when ~= nil then
    if type(opts.when) ~= "function" then error("rec:watch: option 'when': expected a function(step) -> boolean, got " .. type(opts.when), 3) end
    due = opts.when
    cadence = {when = "function"}
  else
    due = function() return true end
    cadence = {every = 1}
  end
  return due, cadence
end

--- rec:watch(name, tensor_or_function, opts): record this matrix (or levels) on a cadence.
function Recorder:watch(name, source, opts)
  check_self(self, "watch")
  if type(name) ~= "string" or not name:match("^[%w_%-][%w_%.%-]*$") then
    error("rec:watch: argument 1 (name): expected a name of letters, digits, '_', '-' or '.' (it names spectra/<name>.npy), got "
      .. (type(name) == "string" and ("'" .. name .. "'") or type(name)), 2)
  end
  if self.by_name[name] then error(("rec:watch: a matrix named '%s' is already watched"):format(name), 2) end
  if not (is_tensor(source) or type(source) == "function") then
    error("rec:watch: argument 2: expected a tensor or a function returning one, got " .. type(source), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("rec:watch: argument 3 (opts): expected a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if not watch_options[k] then
      error(("rec:watch: unknown option '%s' (known: diagnostics, every, steps, when, symmetric, options)"):format(tostring(k)), 2)
    end
  end
  local cadences = (opts.every ~= nil and 1 or 0) + (opts.steps ~= nil and 1 or 0) + (opts.when ~= nil and 1 or 0)
  if cadences > 1 then error("rec:watch: give one cadence: every = N, steps = {...} or when = function(step)", 2) end
  local w = {name = name, source = source, symmetric = opts.symmetric and true or false,
             options = opts.options or {}, plugins = {}, rows = 0, steps = {}}
  w.due, w.cadence = watch_cadence(opts)
  if opts.diagnostics ~= nil and type(opts.diagnostics) ~= "table" then
    error("rec:watch: option 'diagnostics': expected a list of plugin names, got " .. type(opts.diagnostics), 2)
  end
  if type(w.options) ~= "table" then error("rec:watch: option 'options': expected a table, got " .. type(w.options), 2) end
  local names = {}
  for i, d in ipairs(opts.diagnostics or {}) do
    local ok, p = pcall(D.load, d)
    if not ok then error("rec:watch: " .. without_position(p), 2) end
    w.plugins[i], names[i] = p, p.name
  end
  self:_take_up(w)   -- a resumed run's kept rows of this matrix, if any
  w.history = w.history or History.new(name, self.dir .. "/arrays/" .. name)
  self.watched[#self.watched + 1] = w
  self.by_name[name] = w
  self:_note_watch(w, names)
  return self
end

-- The watch entry of config.json (a resumed run's entry of that name is replaced).
function Recorder:_note_watch(w, names)
  local entry = {name = w.name, diagnostics = names, symmetric = w.symmetric}
  for k, v in pairs(w.cadence) do entry[k] = v end
  if next(w.options) then entry.options = plain(w.options, 0) end
  local list, at = self.meta.watch, #self.meta.watch + 1
  for i, e in ipairs(list) do if e.name == w.name then at = i end end
  list[at] = entry
  self:_write_config()
end

-- ---------------------------------------------------------------- step and record

local function check_step(step, method)
  if math.type(step) ~= "integer" and not (type(step) == "number" and step == math.floor(step) and step == step) then
    error(("rec:%s: argument 1 (step): expected an integer step number, got %s"):format(method,
      type(step) == "number" and tostring(step) or type(step)), 3)
  end
  return math.tointeger(step)
end

local function report_once(self, key, msg)
  if self.reported[key] then return end
  self.reported[key] = true
  self.report("dbm.recorder: " .. msg)
end

-- Appends one row of levels to the matrix's in-memory table (doubling its capacity as needed).
local function append_row(w, levels)
  local k = levels:numel()
  if not w.buf or w.rows == w.buf:shape()[1] then
    local grown = dbm.zeros(math.max(16, 2 * w.rows), k, {dtype = "float64"})
    if w.rows > 0 then grown:narrow(1, 1, w.rows):copy(w.buf:narrow(1, 1, w.rows)) end
    w.buf = grown
  end
  w.rows = w.rows + 1
  if k > 0 then w.buf:row(w.rows):copy(levels) end
end

-- The context of one record of w (one eigendecomposition), its level count checked against the earlier
-- records; nil when the matrix has non-finite entries (reported once). `level` locates errors.
function Recorder:_context(w, step, level)
  local x = w.source
  if type(x) == "function" then
    x = x()
    if not (is_tensor(x) or type(x) == "table") then
      error(("rec:step: the function watched as '%s' returned %s; expected a tensor"):format(w.name, type(x)), level)
    end
  end
  local ok, ctx = pcall(D.context, x, {symmetric = w.symmetric, options = w.options})
  if not ok then
    local msg = without_position(ctx)
    if msg:find("finite", 1, true) then
      report_once(self, w.name .. "\0nonfinite", ("matrix '%s' at step %d: %s; not recorded (reported once, the run goes on)")
        :format(w.name, step, msg:gsub("^diagnostics: ", "")))
      return nil
    end
    error(("rec:step: matrix '%s': %s"):format(w.name, (msg:gsub("^diagnostics: ", ""))), level)
  end
  local levels = ctx.eigenvalues
  local k = levels:numel()
  if w.nlevels and k ~= w.nlevels then
    error(("rec:step: matrix '%s' has %d levels at step %d but had %d before; spectra/%s.npy needs a fixed count (watch it under another name)")
      :format(w.name, k, step, w.nlevels, w.name), level)
  end
  w.nlevels = k
  if w.shape == nil then w.shape = ctx.shape end
  return ctx
end

-- The observables lines of one record, and its failures (kept, reported once per matrix and plugin).
function Recorder:_write_observables(w, step, results, failures)
  for _, p in ipairs(w.plugins) do
    local res = results[p.name]
    if res then
      local line = D.scalars(res)
      if self.events then
        local tagged = {}
        for k, v in pairs(line) do tagged[w.name .. "/" .. p.name .. "/" .. k] = v end
        self.events:scalars(step, tagged)
      end
      line.step, line.matrix, line.diagnostic = step, w.name, p.name
      self.observables_file:write(line)
    else
      local msg = failures[p.name]
      local where = self.failures[w.name] or {}
      self.failures[w.name] = where
      where[p.name] = where[p.name] or msg
      report_once(self, w.name .. "\0" .. p.name, ("%s (matrix '%s', step %d; reported once, the run goes on)"):format(msg, w.name, step))
    end
  end
end

-- Brings the steps files to the records, after rec:step or rec:record has recorded every matrix due:
-- matrices recorded at the same steps share spectra/steps.npy, however many there are. (Deciding
-- after each matrix instead would see the union grow by a step that the next matrix has not been
-- recorded at yet, and give that matrix a steps file identical to steps.npy.) A matrix whose steps
-- have matched the union so far still does when both have the same length and last entry (both
-- lists only grow, each by at most one entry per call); once they differ (its own cadence, or watched
-- later) it keeps its own steps file for good. (An error that escapes a call skips this until the
-- next call; close() compares the lists in full.) The steps files grow after every row of the call is
-- written, and an own steps file is made before steps.npy grows past the rows of its matrix: so a
-- spectra file never has fewer rows than its steps file has steps, wherever the process is killed.
function Recorder:_write_steps()
  local union = self.steps
  for _, w in ipairs(self:_matrices_with_spectra()) do
    if w.rows > 0 then
      if not w.own_steps and not (#w.steps == #union and w.steps[#w.steps] == union[#union]) then
        w.own_steps = true
      end
      if w.own_steps then self:_write_own_steps(w) end
    end
  end
  grow_steps(self.steps_file, union)
end

-- Records one matrix at `step`: the diagnostics into observables.jsonl and arrays/, the levels into
-- spectra/. Returns {diagnostic = result} or nil when the matrix could not be recorded. `level` locates
-- errors. The union of steps takes `step`; the steps files follow in _write_steps, once every matrix
-- due at this step has its row.
function Recorder:_record(w, step, level)
  local ctx = self:_context(w, step, level + 1)
  if not ctx then return nil end
  local results, failures = D.run(w.plugins, ctx)
  self:_write_observables(w, step, results, failures)
  w.history:add(results, ctx.eigenvalues)   -- the arrays first: they never have fewer rows than spectra/
  append_row(w, ctx.eigenvalues)
  if self.events then self.events:histogram(step, w.name .. "/levels", ctx.eigenvalues) end
  w.steps[#w.steps + 1] = step
  self:_write_rows(w)
  if not self.step_seen[step] then
    self.step_seen[step] = true
    self.steps[#self.steps + 1] = step
  end
  return results
end

-- Brings spectra/<name>.npy to the matrix's rows: creates it with them (first record, or a resumed
-- run), else appends the rows it lacks or cuts those it has too many (_finalise).
function Recorder:_write_rows(w)
  if not w.file then
    w.file = dbm.npy_appender(self.dir .. "/spectra/" .. w.name .. ".npy", {cols = w.buf:shape()[2], data = w.buf:narrow(1, 1, w.rows)})
    return
  end
  local have = w.file:rows()
  if have > w.rows then w.file:truncate(w.rows)
  elseif have < w.rows then w.file:append(w.buf:narrow(1, have + 1, w.rows - have)) end
end

-- Brings spectra/<name>.steps.npy to the matrix's steps (created with them when it has none yet).
function Recorder:_write_own_steps(w)
  if not w.steps_file then
    w.steps_file = create_steps(self.dir .. "/spectra/" .. w.name .. ".steps.npy", w.steps)
  else
    grow_steps(w.steps_file, w.steps)
  end
end

-- The matrices whose spectra files the recorder keeps up: the watched ones, and those of a resumed run
-- that this run has not watched (their kept rows stay; their steps stay in the union).
function Recorder:_matrices_with_spectra()
  return table.move(self.unclaimed, 1, #self.unclaimed, #self.watched + 1,
                    table.move(self.watched, 1, #self.watched, 1, {}))
end

-- Makes memory and files agree at close (and when a resumed run has cut its rows): Ctrl-C can land
-- between two statements of _record, leaving a row without its step (or a step without its row).
-- Rows and steps are cut to the shorter, the union is rebuilt, and the files follow: an open file is
-- cut to what it shares with its new contents and the rest appended; a resumed run's files are
-- created anew (each once). In three passes: steps files shrink (or are created), then spectra files
-- shrink or grow, then steps files grow (as in _write_steps: rows first). So a spectra file never has
-- fewer rows than its steps file has steps, whenever the process is killed; at close, where files move
-- by a row at most, it has as many or one more. (A kill inside a resume's cut of k records can leave
-- up to k rows more: each row i ≤ len(steps) still belongs to steps[i], and resuming again drops the
-- rest, as it drops the one row more.)
-- Rows and steps of each matrix cut to the shorter, and the union of steps rebuilt from what is left (in
-- its order); returns the matrices, the union before, and those that need their own steps file.
function Recorder:_cut_to_rows()
  local matrices = self:_matrices_with_spectra()
  local old_union = self.steps
  local present = {}
  for _, w in ipairs(matrices) do
    local n = math.min(w.rows, #w.steps)
    w.rows = n
    for i = #w.steps, n + 1, -1 do w.steps[i] = nil end
    for _, s in ipairs(w.steps) do present[s] = true end
  end
  local union, seen = {}, {}
  for _, s in ipairs(self.steps) do
    if present[s] and not seen[s] then seen[s] = true; union[#union + 1] = s end
  end
  for _, w in ipairs(matrices) do
    for _, s in ipairs(w.steps) do
      if not seen[s] then seen[s] = true; union[#union + 1] = s end
    end
  end
  self.steps = union
  local own = {}
  for _, w in ipairs(matrices) do
    if w.rows > 0 and (w.own_steps or not same_steps(w.steps, union)) then
      w.own_steps = true
      own[#own + 1] = w
    end
  end
  return matrices, old_union, own
end

function Recorder:_finalise()
  local spectra = self.dir .. "/spectra/"
  local matrices, old_union, own = self:_cut_to_rows()
  local union = self.steps
  -- 1. steps files shrink to what they share with their new lists, or are created (a new one with no
  --    more steps than its spectra file has rows)
  if self.steps_file then
    local have = self.steps_file:rows()
    local keep = common_prefix(old_union, union, have)
    if keep < have then self.steps_file:truncate(keep) end
  else
    self.steps_file = create_steps(spectra .. "steps.npy", union)
  end
  for _, w in ipairs(own) do
    if w.steps_file then
      if w.steps_file:rows() > #w.steps then w.steps_file:truncate(#w.steps) end
    else
      local n = w.file and math.min(w.file:rows(), #w.steps) or #w.steps
      w.steps_file = create_steps(spectra .. w.name .. ".steps.npy", w.steps, n)
    end
  end
  -- 2. arrays and spectra files
  for _, w in ipairs(matrices) do
    if w.history then w.history:truncate(w.rows) end
    if w.rows > 0 then self:_write_rows(w) end
  end
  -- 3. steps files grow
  for _, w in ipairs(own) do grow_steps(w.steps_file, w.steps) end
  grow_steps(self.steps_file, union)
end

-- Flushes (fsync) and closes the spectra files, at close.
function Recorder:_close_files()
  for _, w in ipairs(self:_matrices_with_spectra()) do
    if w.file then w.file:close() end
    if w.steps_file then w.steps_file:close() end
    if w.history then w.history:close() end
  end
  if self.steps_file then self.steps_file:close() end
end

local function scalar_value(key, v)
  local kind = type(v)
  if kind == "number" or kind == "boolean" or kind == "string" then return v end
  if is_tensor(v) then
    if v:numel() ~= 1 then
      error(("rec:step: scalar '%s' is a tensor of %d elements; log a number (t:item(), t:mean())"):format(key, v:numel()), 3)
    end
    return v:item()
  end
  error(("rec:step: scalar '%s' is a %s; expected a number, boolean or string"):format(key, kind), 3)
end

-- The numeric scalars of a metrics line (or an observables line), without its step and time.
local function scalars_of(line)
  local out = {}
  for k, v in pairs(line) do
    if type(v) == "number" and k ~= "step" and k ~= "time" then out[k] = v end
  end
  return out
end

-- Keeps the numeric scalars of a metrics line in into.metric_steps and into.metrics, for the metrics plots.
local function remember_metrics(into, line)
  local i = #into.metric_steps + 1
  into.metric_steps[i] = line.step
  for k, v in pairs(scalars_of(line)) do
    into.metrics[k] = into.metrics[k] or {}
    into.metrics[k][i] = v
  end
end
M.remember_metrics = remember_metrics

--- rec:step(step, scalars) -> {matrix = {diagnostic = result}} of the matrices recorded now.
function Recorder:step(step, scalars)
  check_self(self, "step")
  step = check_step(step, "step")
  if scalars ~= nil and type(scalars) ~= "table" then
    error("rec:step: argument 2 (scalars): expected a table {name = number, ...}, got " .. type(scalars), 2)
  end
  local line = {}
  for k, v in pairs(scalars or {}) do
    if type(k) ~= "string" then error("rec:step: argument 2 (scalars): keys must be names, got " .. tostring(k), 2) end
    if k == "step" or k == "time" then error(("rec:step: the scalar name '%s' is reserved"):format(k), 2) end
    line[k] = scalar_value(k, v)
  end
  line.step, line.time = step, self.time_offset + dbm.clock() - self.t0
  self.metrics_file:write(line)
  remember_metrics(self, line)
  if self.events then self.events:scalars(step, scalars_of(line)) end
  local recorded, any = {}, false
  for _, w in ipairs(self.watched) do
    if w.due(step) then recorded[w.name] = self:_record(w, step, 3); any = true end
  end
  if any then self:_write_steps() end
  if self.pending_refresh or dbm.clock() - self.last_refresh >= self.plot_every_s then self:_refresh() end
  return recorded
end

--- rec:record(step [, name]) -> results: records every watched matrix (or the one named) now.
function Recorder:record(step, name)
  check_self(self, "record")
  step = check_step(step, "record")
  if name ~= nil and not self.by_name[name] then
    error(("rec:record: no watched matrix named '%s'"):format(tostring(name)), 2)
  end
  local recorded = {}
  for _, w in ipairs(self.watched) do
    if name == nil or w.name == name then recorded[w.name] = self:_record(w, step, 3) end
  end
  self:_write_steps()
  return recorded
end

-- ---------------------------------------------------------------- resume

-- The lines of a JSON Lines file recorded at steps < S: their text (kept byte for byte) and their
-- values. A line that does not parse (a write torn by a kill) goes too.
local function lines_before(path, S)
  local texts, values = {}, {}
  local f = io.open(path, "r")
  if not f then return texts, values end
  for text in f:lines() do
    local ok, v = pcall(dbm.json_decode, text)
    if ok and type(v) == "table" and type(v.step) == "number" and v.step < S then
      texts[#texts + 1], values[#values + 1] = text, v
    end
  end
  f:close()
  return texts, values
end

local function write_lines(path, texts)
  write_atomic(path, #texts > 0 and table.concat(texts, "\n") .. "\n" or "")
end

-- The steps of a steps file (int64 .npy) as integers; nil when there is no such file.
local function load_steps(path)
  if not exists(path) then return nil end
  local steps = dbm.load_npy(path):totable()
  for i, s in ipairs(steps) do steps[i] = math.tointeger(s) end
  return steps
end

-- The rows of spectra/<name>.npy recorded at steps < S, as the state of a watched matrix (buf, rows,
-- steps, own_steps, nlevels). Row i belongs to steps[i] of its own steps file, or else of the union,
-- for i ≤ #steps; the one row more a killed run may have left has no step and goes.
local function kept_matrix(dir, name, union, S)
  local path = dir .. "/spectra/" .. name .. ".npy"
  if not exists(path) then return nil end
  local own = load_steps(dir .. "/spectra/" .. name .. ".steps.npy")
  local steps = own or union
  local all = dbm.load_npy(path)
  if all:dim() ~= 2 then error(("%s: expected a 2-D array (records × levels), got %d-D"):format(path, all:dim()), 0) end
  local m = {name = name, rows = 0, steps = {}, own_steps = own ~= nil, nlevels = all:shape()[2]}
  for i = 1, math.min(all:shape()[1], #steps) do
    if steps[i] < S then
      append_row(m, all:row(i))
      m.steps[#m.steps + 1] = steps[i]
    end
  end
  return m
end

-- The kept observables lines of each matrix, grouped into its records: a record is the lines of one
-- step, one per diagnostic, as _record writes them. {matrix = {{step =, results = {diagnostic = scalars}}}}
local function observable_records(lines)
  local by_matrix = {}
  for _, line in ipairs(lines) do
    local name, diagnostic = line.matrix, line.diagnostic
    if type(name) == "string" and type(diagnostic) == "string" then
      local records = by_matrix[name] or {}
      by_matrix[name] = records
      local r = records[#records]
      if not r or r.step ~= line.step or r.results[diagnostic] then
        r = {step = line.step, results = {}}
        records[#records + 1] = r
      end
      local scalars = {}
      for k, v in pairs(line) do if type(v) == "number" and k ~= "step" then scalars[k] = v end end
      r.results[diagnostic] = scalars
    end
  end
  return by_matrix
end

-- The history of a kept matrix: its arrays' first rows (files cut to them by History.load; read only
-- with History.read), and the scalars of the observables records that match its steps in order (a
-- record where every plugin failed has no lines).
local function kept_history(dir, m, records, load)
  local h = (load or History.load)(m.name, dir .. "/arrays/" .. m.name, m.rows)
  local k = 1
  for i, step in ipairs(m.steps) do
    local r = records[k]
    if r and r.step == step then h:set_scalars(i, r.results); k = k + 1 end
  end
  return h
end

-- dbm.recorder{resume = S}: cuts the run directory to what was recorded at steps < S (see the header)
-- and takes up what stays: the config, the metrics, the union of steps, and the matrices' rows and
-- observables, which rec:watch claims by name.
-- config.json of a resumed run: its fields, and {step = S, time, args, blas} appended to `resumed` (a BLAS
-- kernel other than the one it last ran on is reported).
function Recorder:_resume_config(S, name)
  local dir = self.dir
  local f = assert(io.open(dir .. "/config.json", "r"))
  local meta = dbm.json_decode(f:read("a"))
  f:close()
  if type(meta) ~= "table" then error("config.json does not hold a JSON object", 0) end
  if type(meta.watch) ~= "table" then meta.watch = {} end
  if type(meta.resumed) ~= "table" then meta.resumed = {} end
  -- The kernel the run last ran on: another one sums in another order, so the continuation is no
  -- longer bit for bit what an uninterrupted run would have computed.
  local before = meta.blas
  for _, r in ipairs(meta.resumed) do if type(r) == "table" and type(r.blas) == "table" then before = r.blas end end
  local blas = blas_provenance()
  if type(before) == "table" and type(before.core) == "string" and before.core ~= blas.core then
    self.report(("dbm.recorder: resuming %s on the BLAS kernel %s, but it last ran on %s: the continuation is not "
      .. "bit-exact (products sum in another order); set OPENBLAS_CORETYPE=%s for a bit-exact resume"):format(
      dir, blas.core, before.core, before.core))
  end
  meta.resumed[#meta.resumed + 1] = {step = S, time = os.date("!%Y-%m-%dT%H:%M:%SZ"),
                                     args = _G.arg and table.move(_G.arg, 1, #_G.arg, 1, {}) or {}, blas = blas}
  self.meta = meta
  self.name = name or (type(meta.name) == "string" and meta.name) or self.name
  self:_write_config()
end

function Recorder:_resume(S, name)
  local dir = self.dir
  self:_resume_config(S, name)
  local meta = self.meta
  local metrics_text, metrics = lines_before(dir .. "/metrics.jsonl", S)
  local observables_text, observables = lines_before(dir .. "/observables.jsonl", S)
  write_lines(dir .. "/metrics.jsonl", metrics_text)
  write_lines(dir .. "/observables.jsonl", observables_text)
  for _, line in ipairs(metrics) do remember_metrics(self, line) end
  local last = metrics[#metrics]
  self.time_offset = last and type(last.time) == "number" and last.time or 0
  self.kept_records = observable_records(observables)

  -- the matrices named in config.json: their rows before S stay; one with none left loses its files
  local union = load_steps(dir .. "/spectra/steps.npy") or {}
  for _, entry in ipairs(meta.watch) do
    local wname = type(entry) == "table" and entry.name
    if type(wname) == "string" and wname:match("^[%w_%-][%w_%.%-]*$") then
      local m = kept_matrix(dir, wname, union, S)
      if m and m.rows > 0 then
        m.history = kept_history(dir, m, self.kept_records[wname] or {})
        self.unclaimed[#self.unclaimed + 1] = m
      else
        os.remove(dir .. "/spectra/" .. wname .. ".npy")
        os.remove(dir .. "/spectra/" .. wname .. ".steps.npy")
        History.remove(dir .. "/arrays/" .. wname)
      end
    end
  end
  self.steps = union
  self:_finalise()   -- the union of the kept steps; steps and spectra files cut
  for _, s in ipairs(self.steps) do self.step_seen[s] = true end

  self.metrics_file = dbm.jsonl(dir .. "/metrics.jsonl", {append = true})
  self.observables_file = dbm.jsonl(dir .. "/observables.jsonl", {append = true})
end

-- rec:watch of a matrix that a resumed run kept rows of: its rows, steps and history.
function Recorder:_take_up(w)
  local m
  for i, u in ipairs(self.unclaimed) do
    if u.name == w.name then m = table.remove(self.unclaimed, i); break end
  end
  if not m then return end
  w.buf, w.rows, w.steps, w.nlevels, w.own_steps = m.buf, m.rows, m.steps, m.nlevels, m.own_steps
  w.file, w.steps_file, w.history = m.file, m.steps_file, m.history
  if is_tensor(w.source) and w.source:dim() == 2 then   -- for the plots, should nothing more be recorded
    local shape = w.source:shape()
    w.shape = {shape[1], shape[2]}
  end
end

-- ---------------------------------------------------------------- plots and close

-- The files a run directory holds, read as the recorder wrote them, without writing any (dbm-lua report
-- reads a running run's directory with these): the JSON lines of a file, the steps of a steps file, the
-- observables grouped into records per matrix, a matrix's levels and steps, and its history.
M.read_lines = function(path) local _, values = lines_before(path, math.huge); return values end
M.load_steps = load_steps
M.observable_records = observable_records
M.read_matrix = function(dir, name, union) return kept_matrix(dir, name, union, math.huge) end
M.read_history = function(dir, m, records) return kept_history(dir, m, records, History.read) end

-- The plots are the plugins' (plot(h) of each plugin of a matrix, and of the levels' plugin) and the
-- metrics against the step (dbm.plot.metrics); the recorder only hands them what it recorded.
-- w: {name, history, plugins, steps, buf (records × levels), rows, shape, symmetric}.
function M.plot_matrix(w, dir, report)
  w.history:plot(D.plotted(w.plugins), {dir = dir, stem = w.name, steps = w.steps, levels = w.buf:narrow(1, 1, w.rows),
                                        shape = w.shape, symmetric = w.symmetric,
                                        report = function(msg) report("dbm.recorder: " .. msg) end})
end

function Recorder:_plot_matrix(w, dir) M.plot_matrix(w, dir, self.report) end

function Recorder:_make_plots()
  local dir = self.dir .. "/plots"
  local saved = P.report
  P.report = self.report       -- gnuplot's messages go where the recorder's go
  local ok, err = pcall(self._make_plots_in, self, dir)
  P.report = saved
  if not ok then error(err, 0) end
end

function Recorder:_make_plots_in(dir)
  local function attempt(what, f, ...)
    local ok, err = xpcall(f, debug.traceback, ...)
    if not ok then self.report(("dbm.recorder: could not plot %s: %s"):format(what, tostring(err))) end
  end
  P.batch(function()   -- one gnuplot process for every plot
    for _, w in ipairs(self.watched) do
      if w.rows > 0 and w.history then attempt("matrix '" .. w.name .. "'", self._plot_matrix, self, w, dir) end
    end
    attempt("the metrics", P.metrics, dir .. "/metrics", self.metric_steps, self.metrics, self.name .. ": metrics")
  end)
end

-- ---------------------------------------------------------------- refresh: plots while the run goes on

-- The command of a refresh when this process is dbm-lua: `dbm-lua report --refresh DIR` in a child at
-- the lowest priority (SCHED_IDLE where chrt is, and nice 19), so training does not wait for gnuplot.
-- Inside another host (a test's process) it is nil and a refresh draws in the foreground.
local refresh_command
local function refresher()
  if refresh_command == nil then
    local found = read_command("readlink /proc/$PPID/exe; command -v chrt")   -- $PPID: popen's shell is our child
    local exe, chrt = (found or ""):match("^([^\n]*)\n?(.*)$")
    refresh_command = exe:match("^/.*/dbm%-lua$") and ((chrt ~= "" and "chrt -i 0 " or "") .. "nice -n 19 " .. shell_quote(exe)) or false
  end
  return refresh_command or nil
end

-- Whether a refresh is drawing now: it holds the lock plots/.refresh.lock (dbm-lua report --refresh).
local function drawing(lock)
  if not exists(lock) then return false end
  local free = pcall(dbm._lock, lock)
  if free then dbm._unlock(lock) end
  return not free
end

-- Starts a refresh of the plots and index.html. One still drawing, or the pace the last one's cost asks
-- for (dbm.report: at most 1% of a core), makes it wait for a later rec:step (one refresh is queued,
-- never two drawn at once).
function Recorder:_refresh()
  self.last_refresh, self.pending_refresh = dbm.clock(), true
  local report = require "dbm.report"
  if os.time() < (self.refresh_not_before or 0) or drawing(report.lock_path(self.dir)) then return false end
  self.refresh_not_before = report.next_refresh(self.dir)
  if os.time() < self.refresh_not_before then return false end
  self.pending_refresh = nil
  local command = refresher()
  if command then
    mkdir_p(self.dir .. "/plots")
    os.execute(("%s report --refresh %s%s </dev/null >/dev/null 2>>%s &"):format(command,
      self.make_plots and "" or "--no-plots ", shell_quote(self.dir), shell_quote(self.dir .. "/plots/refresh.log")))
  else
    local ok, err = pcall(report.refresh, self.dir, {plots = self.make_plots, running = true, report = self.report})
    if not ok then self.report("dbm.recorder: could not refresh the plots: " .. tostring(err)) end
  end
  return true
end

--- rec:refresh() -> true when a refresh started: redraws the plots and index.html now (an experiment
--- calls it at each evaluation); rec:step does it at most every plot_every_s seconds otherwise. false
--- when one is drawing or the last one's cost asks to wait (dbm.report's pacing): it starts at a later
--- rec:step then.
function Recorder:refresh()
  check_self(self, "refresh")
  return self:_refresh()
end

-- At close, a refresh still drawing is waited for (up to a minute), so close's own plots come last.
local function wait_for_refresh(dir)
  local lock = require("dbm.report").lock_path(dir)
  for _ = 1, 600 do
    if not drawing(lock) then return end
    os.execute("sleep 0.1")
  end
end

-- index.html at close, after the plots.
function Recorder:_write_index(completed)
  local ok, err = pcall(require("dbm.report").write_index, self.dir, {status = completed and "done" or "ended"})
  if not ok then self.report("dbm.recorder: could not write index.html: " .. tostring(err)) end
end

function Recorder:_close(completed)
  if self.closed then return self.dir end
  self.closed = true
  pcall(self.metrics_file.close, self.metrics_file)
  pcall(self.observables_file.close, self.observables_file)
  if self.events then pcall(self.events.close, self.events) end
  local ok, err = xpcall(self._finalise, debug.traceback, self)
  if not ok then self.report("dbm.recorder: could not finish the spectra files: " .. tostring(err)) end
  ok, err = pcall(self._close_files, self)
  if not ok then self.report("dbm.recorder: could not close the spectra files: " .. tostring(err)) end
  wait_for_refresh(self.dir)
  os.remove(require("dbm.report").state_path(self.dir))   -- the refreshes' pacing: every plot is drawn now
  if self.make_plots then self:_make_plots() end
  self:_write_index(completed)
  if completed then
    write_atomic(self.dir .. "/DONE", os.date("!%Y-%m-%dT%H:%M:%SZ") .. "\n")
  else
    self.report(("dbm.recorder: the run ended before rec:close() (an error, Ctrl-C, or no close call): %s closed without DONE")
      :format(self.dir))
  end
  pcall(dbm._unlock, self.lock)
  return self.dir
end

--- rec:close() -> the run directory: makes the plots and writes DONE. A second call does nothing.
function Recorder:close()
  if getmetatable(self) ~= Recorder then error("rec:close: call it with a colon, rec:close()", 2) end
  return self:_close(true)
end

function Recorder:__tostring()
  return ("dbm.Recorder(%s, %d matrices watched%s)"):format(self.dir, #self.watched, self.closed and ", closed" or "")
end

return M
