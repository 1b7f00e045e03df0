-- dbm.report: `dbm-lua report DIR` (re)draws the plots and index.html of a run directory — finished,
-- killed or still running — or of a sweep directory (sweep.json: `sweep collect` then writes its page).
--
-- It reads the run's files as the recorder wrote them (config.json, metrics.jsonl, observables.jsonl,
-- spectra/, arrays/) and writes only plots/ and index.html, each file atomically: so it draws a running
-- run without disturbing it. The recorder runs it as `dbm-lua report --refresh DIR` in the background at
-- each rec:refresh() and every plot_every_s seconds: --refresh holds the lock plots/.refresh.lock while
-- it draws and does nothing when another refresh holds it (never two drawing at once).
--
-- index.html: the run's status ("running, step N of M, updated at …", reloading itself every
-- plot_every_s seconds; or done / ended without DONE), the summary (from summary.json, the table
-- dbm.write_summary wrote summary.md from), the metrics plots (the loss curves), each matrix's plots in
-- a grid with the steps they show, the other plots, and the configuration. One file with inline style
-- and relative links only: no scripts, fonts or network addresses.
local dbm = require "dbm"
local H = require "dbm.html"
local P = require "dbm.plot"

local R = {}

R.usage = [[
usage: dbm-lua report DIR [--no-plots]
(Re)draws the plots (DIR/plots/) and DIR/index.html of a run directory, finished, killed or still
running (its files are only read), or the index.html of a sweep directory (as `sweep collect` does).
  --no-plots   write index.html only]]

local function eprint(...) io.stderr:write(table.concat({...}), "\n") end

local function exists(path) local f = io.open(path, "rb"); if f then f:close() return true end return false end

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local ok, v = pcall(dbm.json_decode, f:read("a"))
  f:close()
  return ok and type(v) == "table" and v or nil
end

--- R.lock_path(dir) -> the lock a refresh holds while it draws.
function R.lock_path(dir) return dir .. "/plots/.refresh.lock" end

-- ---------------------------------------------------------------- reading a run

local function valid_name(name) return type(name) == "string" and name:match("^[%w_%-][%w_%.%-]*$") ~= nil end

--- R.read(dir, levels) -> the run: {dir, meta (config.json), metric_steps, metrics, matrices = {{name, steps, rows,
--- buf, diagnostics, symmetric, own_steps}}}; read only. levels == false: the matrices' names alone
--- ({name, steps = {}} for each watched matrix), without reading their files.
function R.read(dir, levels)
  local Rec = require "dbm.recorder"
  local run = {dir = dir, meta = read_json(dir .. "/config.json") or {}, metric_steps = {}, metrics = {}, matrices = {}}
  for _, line in ipairs(Rec.read_lines(dir .. "/metrics.jsonl")) do Rec.remember_metrics(run, line) end
  local union = levels ~= false and Rec.load_steps(dir .. "/spectra/steps.npy") or {}
  for _, entry in ipairs(type(run.meta.watch) == "table" and run.meta.watch or {}) do
    if type(entry) == "table" and valid_name(entry.name) and levels == false then
      run.matrices[#run.matrices + 1] = {name = entry.name, steps = {}}
    elseif type(entry) == "table" and valid_name(entry.name) then
      local ok, m = pcall(Rec.read_matrix, dir, entry.name, union)
      if ok and m and m.rows > 0 then
        m.diagnostics = type(entry.diagnostics) == "table" and entry.diagnostics or {}
        m.symmetric = entry.symmetric == true
        run.matrices[#run.matrices + 1] = m
      end
    end
  end
  return run
end

-- ---------------------------------------------------------------- drawing

-- Each matrix's plots (its plugins' plot(h), with the scalars of observables.jsonl) unless opts.matrices
-- is false, then the metrics; one gnuplot process for them all, PNG alone when opts.svg is false.
function R.draw(run, report, opts)
  opts = opts or {}
  local Rec, D = require "dbm.recorder", require "dbm.diagnostics"
  local dir = run.dir .. "/plots"
  local records = opts.matrices ~= false and Rec.observable_records(Rec.read_lines(run.dir .. "/observables.jsonl")) or {}
  local saved = P.report
  P.report = report
  P.batch(function()
    for _, m in ipairs(opts.matrices ~= false and run.matrices or {}) do
      local ok, err = xpcall(function()
        m.plugins = {}
        for _, name in ipairs(m.diagnostics) do
          local loaded, p = pcall(D.load, name)
          if loaded then m.plugins[#m.plugins + 1] = p else report("dbm-lua report: " .. tostring(p)) end
        end
        m.history = Rec.read_history(run.dir, m, records[m.name] or {})
        Rec.plot_matrix(m, dir, report)
      end, debug.traceback)
      if not ok then report(("dbm-lua report: could not plot matrix '%s': %s"):format(m.name, tostring(err))) end
    end
    local name = type(run.meta.name) == "string" and run.meta.name or "run"
    local ok, err = pcall(P.metrics, dir .. "/metrics", run.metric_steps, run.metrics, name .. ": metrics")
    if not ok then report("dbm-lua report: could not plot the metrics: " .. tostring(err)) end
  end, {svg = opts.svg})
  P.report = saved
end

-- ---------------------------------------------------------------- pacing the refreshes of a running run

-- Refreshes of a running run are paced by their cost, as drawing at the lowest priority still slows
-- the training loop by about the CPU time it takes (measured by `dbm-bench report`). A refresh draws
-- the metrics and index.html (a tenth of a second), and the matrices' plots (seconds: a hundred plots
-- in the `cpu` preset) only when their last drawing started at least `R.pace` times its CPU seconds
-- ago; the recorder starts a refresh no sooner than `R.pace` times the CPU seconds of the last one
-- without the matrices (process start included) after the last started. Each kind takes at most
-- 1/R.pace of a core. The state: plots/.refresh.json, {pace, last_at (Unix seconds), light_cpu,
-- matrices_at, matrices_cpu, drawn = {name = {records, first step, last step}}} (drawn: the steps
-- index.html says the plots show).
R.pace = 100

local function state_path(dir) return dir .. "/plots/.refresh.json" end
R.state_path = state_path

-- CPU seconds of this process and of its children waited for (gnuplot), from /proc/self/stat: utime,
-- stime, cutime, cstime in clock ticks of 1/100 s (Linux's USER_HZ); os.clock() where it is missing.
local function cpu_seconds()
  local f = io.open("/proc/self/stat", "rb")
  local stat = f and f:read("a")
  if f then f:close() end
  local fields = {}
  for v in (stat and stat:match("%)%s+(.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = v end   -- from field 3, the state
  local ticks = {tonumber(fields[12]), tonumber(fields[13]), tonumber(fields[14]), tonumber(fields[15])}   -- fields 14 to 17
  if #ticks < 4 then return os.clock() end
  return (ticks[1] + ticks[2] + ticks[3] + ticks[4]) / 100
end

local function drawn_steps(run)
  local drawn = {}
  for _, m in ipairs(run.matrices) do drawn[m.name] = {#m.steps, m.steps[1], m.steps[#m.steps]} end
  return drawn
end

-- ---------------------------------------------------------------- index.html

-- The PNG files of plots/ (sorted), and which of them have an SVG beside them.
local function plot_files(dir)
  local pngs, svgs = {}, {}
  local ls = io.popen("ls -1 " .. dbm._shell_quote(dir .. "/plots") .. " 2>/dev/null")
  for file in ls:lines() do
    if file:sub(1, 1) ~= "." then
      if file:match("%.png$") then pngs[#pngs + 1] = file elseif file:match("%.svg$") then svgs[file] = true end
    end
  end
  ls:close()
  table.sort(pngs)
  return pngs, svgs
end

local function figure(file, svgs, caption)
  local svg = file:gsub("%.png$", ".svg")
  return H.figure("plots/" .. file, svgs[svg] and ("plots/" .. svg) or nil, caption)
end

-- "running, step N of M, updated at …" and the like.
local function status_line(run, status)
  local last = run.metric_steps[#run.metric_steps]
  local total = tonumber(run.meta.total_steps) or type(run.meta.config) == "table" and tonumber(run.meta.config.max_iters)
  local at = last and (" step " .. tostring(math.tointeger(last) or last) .. (total and (" of " .. ("%.0f"):format(total)) or ""))
    or " no step yet"
  local words = {running = "running,", done = "done:", ended = "ended without DONE (an error, Ctrl-C or a kill):"}
  return ("%s%s, updated at %s"):format(words[status], at, os.date("!%Y-%m-%d %H:%M:%S UTC"))
end

local function config_section(meta)
  local rows, keys = {}, {}
  local cfg = type(meta.config) == "table" and meta.config or {}
  for k in pairs(cfg) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = cfg[k]
    rows[#rows + 1] = {k, type(v) == "table" and dbm.json_encode(v) or tostring(v)}
  end
  local out = {"<h2>Configuration</h2>", H.table({"key", "value"}, rows)}
  local facts = {}
  for _, k in ipairs({"script", "start_time", "host", "dbm_lua_version", "git_commit", "seed"}) do
    if meta[k] ~= nil and type(meta[k]) ~= "table" then facts[#facts + 1] = {k, tostring(meta[k])} end
  end
  if #facts > 0 then out[#out + 1] = H.table({"run", ""}, facts) end
  return table.concat(out, "\n")
end

local function summary_section(dir)
  local report = read_json(dir .. "/summary.json")
  if report then
    local ok, html = pcall(require("dbm.summary").html, report)
    if ok then return "<h2>Summary</h2>\n" .. html end
  end
  local f = io.open(dir .. "/summary.md", "rb")   -- a run from before summary.json: its text as it is
  if not f then return "" end
  local text = f:read("a"); f:close()
  return "<h2>Summary</h2>\n<pre>" .. H.text(text) .. "</pre>"
end

-- The steps a matrix's plots show: its records, first to last (drawn: {records, first, last} of the
-- last drawing of a running run's matrices, else its records now).
local function steps_caption(m, drawn)
  local n, first, last = #m.steps, m.steps[1], m.steps[#m.steps]
  if type(drawn) == "table" and math.tointeger(drawn[1]) and type(drawn[2]) == "number" and type(drawn[3]) == "number" then
    n, first, last = math.tointeger(drawn[1]), drawn[2], drawn[3]
  end
  if n == 0 then return "" end
  return ("records at %d steps, %s to %s"):format(n, math.tointeger(first) or first, math.tointeger(last) or last)
end

local function plots_sections(run, drawn)
  local pngs, svgs = plot_files(run.dir)
  local used, out = {}, {}
  local metrics = {}
  for _, f in ipairs(pngs) do if f:match("^metrics[_%d]*%.png$") then metrics[#metrics + 1] = figure(f, svgs, f); used[f] = true end end
  if #metrics > 0 then out[#out + 1] = "<h2>Loss curves and metrics</h2>\n<div class=\"grid\">" .. table.concat(metrics, "\n") .. "</div>" end
  local matrices = {}
  for _, m in ipairs(run.matrices) do
    local figs = {}
    for _, f in ipairs(pngs) do
      if not used[f] and f:sub(1, #m.name + 1) == m.name .. "_" then
        figs[#figs + 1] = figure(f, svgs, f:sub(#m.name + 2):gsub("%.png$", "") .. " (" .. steps_caption(m, drawn[m.name]) .. ")")
        used[f] = true
      end
    end
    if #figs > 0 then
      matrices[#matrices + 1] = "<h3>" .. H.text(m.name) .. "</h3>\n<p>" .. H.text(steps_caption(m, drawn[m.name])) .. "</p>\n<div class=\"grid\">"
        .. table.concat(figs, "\n") .. "</div>"
    end
  end
  if #matrices > 0 then out[#out + 1] = "<h2>Matrices</h2>\n" .. table.concat(matrices, "\n") end
  local others = {}
  for _, f in ipairs(pngs) do if not used[f] then others[#others + 1] = figure(f, svgs, f) end end
  if #others > 0 then out[#out + 1] = "<h2>Other plots</h2>\n<div class=\"grid\">" .. table.concat(others, "\n") .. "</div>" end
  return table.concat(out, "\n")
end

--- R.write_index(dir, opts) -> path: writes dir/index.html (atomically). opts.status: "running", "done" or
--- "ended" (default: done when DONE exists, else ended); opts.run: the run as R.read returns it; opts.drawn:
--- the steps each matrix's plots show when they are older than its records ({name = {records, first, last}}).
function R.write_index(dir, opts)
  opts = opts or {}
  local run = opts.run or R.read(dir)
  local status = opts.status or (exists(dir .. "/DONE") and "done" or "ended")
  local name = type(run.meta.name) == "string" and run.meta.name or dir:match("([^/]+)$") or dir
  local every = tonumber(run.meta.plot_every_s) or 60
  local body = {
    "<h1>" .. H.text(name) .. "</h1>",
    '<p class="status">' .. H.text(status_line(run, status)) .. "</p>",
    summary_section(dir),
    plots_sections(run, type(opts.drawn) == "table" and opts.drawn or {}),
    config_section(run.meta),
    "<h2>Files</h2>\n<p>" .. table.concat({H.tag("a", {{"href", "config.json"}}, "config.json"),
      H.tag("a", {{"href", "metrics.jsonl"}}, "metrics.jsonl"), H.tag("a", {{"href", "observables.jsonl"}}, "observables.jsonl")}, ", ")
      .. (exists(dir .. "/summary.md") and (", " .. H.tag("a", {{"href", "summary.md"}}, "summary.md")) or "") .. "</p>",
  }
  local path = dir .. "/index.html"
  P.write_atomic(path, H.page(name .. " (dbm-lua run)", table.concat(body, "\n"), status == "running" and every or nil))
  return path
end

--- R.refresh(dir, opts): the plots (unless opts.plots == false) and index.html of a run directory.
--- opts.running: the run is going on (index.html says so and reloads itself; PNG alone, the matrices'
--- plots paced by R.pace); opts.whole_process: this process is the refresh (its CPU time from its
--- start is the refresh's); opts.report: messages.
function R.refresh(dir, opts)
  opts = opts or {}
  local report = opts.report or eprint
  local started, c0 = os.time(), opts.whole_process and 0 or cpu_seconds()
  local state = opts.running and read_json(state_path(dir)) or {}
  local at, cpu = tonumber(state.matrices_at), tonumber(state.matrices_cpu)
  local matrices = opts.plots ~= false and (not (opts.running and at and cpu) or os.time() - at >= R.pace * math.max(cpu, 0.01))
  -- The matrices' files are read to draw them, or for the page's captions where no drawing gave their steps.
  local run = R.read(dir, matrices or not (opts.running and type(state.drawn) == "table"))
  if opts.plots ~= false then
    local c1 = cpu_seconds()
    R.draw(run, report, {svg = not opts.running, matrices = matrices})
    if matrices then state.matrices_at, state.matrices_cpu, state.drawn = started, cpu_seconds() - c1, drawn_steps(run) end
  end
  local status = opts.running and "running" or nil
  if not status and not exists(dir .. "/DONE") and R.running(dir) then status = "running" end
  local path = R.write_index(dir, {run = run, status = status, drawn = opts.running and state.drawn or nil})
  if opts.running then
    state.pace, state.last_at = R.pace, started
    if not matrices then state.light_cpu = cpu_seconds() - c0 end
    P.write_atomic(state_path(dir), dbm.json_encode(state) .. "\n")
  end
  return path
end

--- R.next_refresh(dir) -> the Unix time before which no refresh of the running run should start.
function R.next_refresh(dir)
  local state = read_json(state_path(dir)) or {}
  local at, cpu = tonumber(state.last_at), tonumber(state.light_cpu)
  return at and cpu and at + R.pace * math.max(cpu, 0.01) or 0   -- 0.01 s: a clock tick, the resolution
end

--- R.running(dir) -> whether a recorder holds the run's lock (run.lock) now.
function R.running(dir)
  local lock = dir .. "/run.lock"
  if not exists(lock) then return false end
  local free = pcall(dbm._lock, lock)
  if free then dbm._unlock(lock) end
  return not free
end

function R.main(args)
  local dir, plots, refresh = nil, true, false
  for _, a in ipairs(args) do
    if a == "-h" or a == "--help" then print(R.usage); return 0
    elseif a == "--no-plots" then plots = false
    elseif a == "--refresh" then refresh = true
    elseif a:sub(1, 1) == "-" then eprint("dbm-lua report: unrecognized option '", a, "'\n", R.usage); return 2
    elseif dir then eprint("dbm-lua report: one directory at a time\n", R.usage); return 2
    else dir = a end
  end
  if not dir then eprint(R.usage); return 2 end
  dir = dir:gsub("(.)/+$", "%1")
  if exists(dir .. "/sweep.json") then return require("dbm.sweep_collect").main({dir}) end
  if not exists(dir .. "/config.json") then eprint("dbm-lua report: ", dir, " is not a run directory (no config.json)"); return 1 end
  dbm.mkdir(dir .. "/plots")
  local lock = R.lock_path(dir)
  local locked, why = pcall(dbm._lock, lock)
  if not locked then
    if refresh then return 0 end   -- another refresh is drawing: this one is skipped
    eprint("dbm-lua report: another report is drawing ", dir, ": ", tostring(why)); return 1
  end
  local ok, path = pcall(R.refresh, dir, {plots = plots, running = refresh or nil, whole_process = refresh})
  dbm._unlock(lock)
  if not ok then eprint("dbm-lua report: ", tostring(path)); return 1 end
  if not refresh then print("report: " .. path) end
  return 0
end

return R
