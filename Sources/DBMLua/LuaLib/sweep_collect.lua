-- dbm.sweep_collect: `dbm-lua sweep collect DIR [--plot COLUMN --x param.KEY ...]`.
-- Gathers the points of a sweep (DIR/sweep.json, written by `dbm-lua sweep`, by any machine into the
-- shared directory) into DIR/results.jsonl and DIR/results.csv, one row per point:
--   param.<key>                grid values, typed as the script's config default
--   status                     done (DONE exists), failed (its last attempt exited non-zero),
--                              incomplete (started, no DONE: running or killed), pending (never started)
--   metric.<name>              the last value of each scalar of the point's metrics.jsonl
--   <diagnostic>.<scalar>      from the last observables.jsonl line of each diagnostic when the run
--                              watches one matrix; with several matrices, <matrix>.<diagnostic>.<scalar>
-- The CSV has the union of the keys as columns (params, status, metric.*, then the rest sorted);
-- a missing value is an empty cell. --plot COLUMN --x param.KEY plots COLUMN against the grid key
-- (mean and standard error over the points that share x and the other grid values except `seed`)
-- into DIR/plots/<COLUMN>_vs_<KEY>.png/.svg. DIR/index.html shows the table, each point's row linked to
-- its run's report (its index.html, see dbm.report), and the plots of DIR/plots.
local dbm = require("dbm")

local C = {}

C.usage = [[
usage: dbm-lua sweep collect DIR [--plot COLUMN --x param.KEY] ...
Writes DIR/results.jsonl and DIR/results.csv from the points of the sweep in DIR (param.<key>, status,
metric.<name>, <diagnostic>.<scalar>); --plot/--x pairs write DIR/plots/COLUMN_vs_KEY.png and .svg.]]

local function eprint(...) io.stderr:write(table.concat({...}), "\n") end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a"); f:close()
  return text
end

local function exists(path) local f = io.open(path, "rb"); if f then f:close() return true end return false end

local function read_jsonl(path)
  local text, rows = read_file(path), {}
  if not text then return rows end
  for line in text:gmatch("[^\n]+") do
    local ok, v = pcall(dbm.json_decode, line)   -- a half-written last line of a killed run is skipped
    if ok and type(v) == "table" then rows[#rows + 1] = v end
  end
  return rows
end

-- A grid value as the script reads it (dbm.config's type rule); the text when it is not one (a manifest
-- written by hand).
local function typed(text, kind)
  local v = require("dbm.config").parse(text, kind)
  if v == nil then return text end
  return v
end

-- One row for point p of manifest m.
function C.row(m, dir, p)
  local row = {}
  for _, axis in ipairs(m.grid) do row["param." .. axis.key] = typed(p.params[axis.key], m.types[axis.key]) end
  local pdir = dir .. "/" .. p.dir
  if exists(pdir .. "/DONE") then row.status = "done"
  else
    local st = read_file(pdir .. "/sweep-status.json")
    local ok, s = pcall(dbm.json_decode, st or "")
    if st and ok and type(s) == "table" and s.status == "failed" then row.status = "failed"
    elseif exists(pdir .. "/sweep.log") then row.status = "incomplete"
    else row.status = "pending" end
  end
  for _, line in ipairs(read_jsonl(pdir .. "/metrics.jsonl")) do
    for k, v in pairs(line) do
      if k ~= "step" and k ~= "time" and type(v) == "number" then row["metric." .. k] = v end
    end
  end
  local last, matrices = {}, {}
  for _, line in ipairs(read_jsonl(pdir .. "/observables.jsonl")) do
    if line.matrix and line.diagnostic then
      matrices[line.matrix] = true
      last[line.matrix .. "\0" .. line.diagnostic] = line
    end
  end
  local several = next(matrices) ~= nil and next(matrices, next(matrices)) ~= nil
  for _, line in pairs(last) do
    local prefix = (several and (line.matrix .. ".") or "") .. line.diagnostic .. "."
    for k, v in pairs(line) do
      if k ~= "step" and k ~= "matrix" and k ~= "diagnostic" and (type(v) == "number" or type(v) == "boolean") then
        row[prefix .. k] = v
      end
    end
  end
  return row
end

-- The CSV columns: the grid keys in grid order, status, metric.* sorted, then the rest sorted.
function C.columns(m, rows)
  local cols, seen, metrics, others = {}, {}, {}, {}
  for _, axis in ipairs(m.grid) do cols[#cols + 1] = "param." .. axis.key; seen[cols[#cols]] = true end
  cols[#cols + 1] = "status"; seen.status = true
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if not seen[k] then
        seen[k] = true
        if k:sub(1, 7) == "metric." then metrics[#metrics + 1] = k else others[#others + 1] = k end
      end
    end
  end
  table.sort(metrics); table.sort(others)
  for _, k in ipairs(metrics) do cols[#cols + 1] = k end
  for _, k in ipairs(others) do cols[#cols + 1] = k end
  return cols
end

-- COLUMN against the grid key `xkey` (param.KEY): one set per combination of the other grid keys
-- except seed; points sharing x in a set give the mean and the standard error.
function C.plot(m, dir, rows, column, xkey)
  local P = require("dbm.plot")
  local others = {}
  for _, axis in ipairs(m.grid) do
    local k = "param." .. axis.key
    if k ~= xkey and axis.key ~= "seed" then others[#others + 1] = k end
  end
  local groups, order = {}, {}
  for _, row in ipairs(rows) do
    local x, y = row[xkey], row[column]
    if type(x) == "number" and type(y) == "number" then
      local parts = {}
      for _, k in ipairs(others) do parts[#parts + 1] = k:sub(7) .. "=" .. tostring(row[k]) end
      local label = #parts > 0 and table.concat(parts, ", ") or column
      if not groups[label] then groups[label] = {}; order[#order + 1] = label end
      local g = groups[label]
      g[x] = g[x] or {}
      table.insert(g[x], y)
    end
  end
  local sets = {}
  for _, label in ipairs(order) do
    local xs = {}
    for x in pairs(groups[label]) do xs[#xs + 1] = x end
    table.sort(xs)
    local set = {x = {}, y = {}, err = {}, label = label}
    for i, x in ipairs(xs) do
      local ys, sum = groups[label][x], 0
      for _, y in ipairs(ys) do sum = sum + y end
      local mean, ss = sum / #ys, 0
      for _, y in ipairs(ys) do ss = ss + (y - mean) ^ 2 end
      set.x[i], set.y[i] = x, mean
      set.err[i] = #ys > 1 and math.sqrt(ss / (#ys - 1) / #ys) or 0
    end
    sets[#sets + 1] = set
  end
  local folder = (dir == "" and "." or dir) .. "/plots"   -- (an empty name is this folder, never /plots)
  dbm.mkdir(folder)
  local base = folder .. "/" .. (column .. "_vs_" .. xkey:gsub("^param%.", "")):gsub("[^%w%._=-]", "_")
  return P.xy(base, sets, {title = column .. " against " .. xkey, xlabel = xkey:gsub("^param%.", ""), ylabel = column})
end

-- DIR/index.html: the collected table (the point's status links to its report) and the sweep's plots.
function C.write_index(m, dir, rows, cols)
  local H = require("dbm.html")
  local cells = {}
  for i, row in ipairs(rows) do
    cells[i] = {}
    for j, c in ipairs(cols) do cells[i][j] = row[c] end
  end
  local status_col
  for j, c in ipairs(cols) do if c == "status" then status_col = j end end
  local function link(i, j)
    if j ~= status_col then return nil end
    local p = m.points[i].dir
    return exists(dir .. "/" .. p .. "/index.html") and (p .. "/index.html") or (p .. "/")
  end
  local figs, ls = {}, io.popen("ls -1 " .. dbm._shell_quote(dir .. "/plots") .. " 2>/dev/null")
  for file in ls:lines() do
    if file:match("%.png$") and file:sub(1, 1) ~= "." then
      local svg = file:gsub("%.png$", ".svg")
      figs[#figs + 1] = H.figure("plots/" .. file, exists(dir .. "/plots/" .. svg) and ("plots/" .. svg) or nil, file)
    end
  end
  ls:close()
  table.sort(figs)
  local name = type(m.script) == "string" and m.script or dir
  local body = {"<h1>Sweep: " .. H.text(name) .. "</h1>",
    "<p>" .. H.text(("%d points, collected at %s"):format(#rows, os.date("!%Y-%m-%d %H:%M:%S UTC"))) .. "</p>",
    "<h2>Points</h2>", H.table(cols, cells, link),
    #figs > 0 and ("<h2>Plots</h2>\n<div class=\"grid\">" .. table.concat(figs, "\n") .. "</div>") or "",
    "<p>" .. H.tag("a", {{"href", "results.csv"}}, "results.csv") .. ", " .. H.tag("a", {{"href", "results.jsonl"}}, "results.jsonl") .. "</p>"}
  require("dbm.plot").write_atomic(dir .. "/index.html", H.page("sweep " .. name, table.concat(body, "\n")))
end

function C.main(args)
  local dir, plots, i = nil, {}, 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then print(C.usage); return 0
    elseif a == "--plot" or a == "--x" then
      if not args[i + 1] then eprint("dbm-lua sweep collect: ", a, " needs a value"); return 2 end
      if a == "--plot" then plots[#plots + 1] = {column = args[i + 1]}
      elseif #plots == 0 then eprint("dbm-lua sweep collect: --x comes after --plot COLUMN"); return 2
      else plots[#plots].x = args[i + 1]:find("^param%.") and args[i + 1] or ("param." .. args[i + 1]) end
      i = i + 2
    elseif a:sub(1, 1) == "-" then eprint("dbm-lua sweep collect: unrecognized option '", a, "'\n", C.usage); return 2
    elseif dir then eprint("dbm-lua sweep collect: one directory at a time\n", C.usage); return 2
    else dir = a; i = i + 1 end
  end
  if not dir then eprint(C.usage); return 2 end
  local text = read_file(dir .. "/sweep.json")
  local ok, m = pcall(dbm.json_decode, text or "")
  if not text or not ok or type(m) ~= "table" or type(m.points) ~= "table" then
    eprint("dbm-lua sweep collect: ", dir, "/sweep.json: missing or not a sweep manifest"); return 1
  end
  m.types = m.types or {}
  local rows, counts = {}, {}
  for _, p in ipairs(m.points) do
    local row = C.row(m, dir, p)
    rows[#rows + 1] = row
    counts[row.status] = (counts[row.status] or 0) + 1
  end
  local cols = C.columns(m, rows)
  local jsonl, csv = {}, {}
  for _, row in ipairs(rows) do jsonl[#jsonl + 1] = dbm.json_encode(row) .. "\n" end
  local header = {}
  for j, c in ipairs(cols) do header[j] = dbm._csv_field(c) end
  csv[1] = table.concat(header, ",") .. "\n"
  for _, row in ipairs(rows) do
    local fields = {}
    for j, c in ipairs(cols) do fields[j] = dbm._csv_field(row[c]) end
    csv[#csv + 1] = table.concat(fields, ",") .. "\n"
  end
  local P = require("dbm.plot")
  P.write_atomic(dir .. "/results.jsonl", table.concat(jsonl))
  P.write_atomic(dir .. "/results.csv", table.concat(csv))
  local status = 0
  for _, pl in ipairs(plots) do
    if not pl.x then eprint("dbm-lua sweep collect: --plot ", pl.column, " needs --x param.KEY"); return 2 end
    local okp, err = pcall(C.plot, m, dir, rows, pl.column, pl.x)
    if not okp then eprint("dbm-lua sweep collect: plot ", pl.column, ": ", tostring(err)); status = 1 end
  end
  local oki, err = pcall(C.write_index, m, dir, rows, cols)
  if not oki then eprint("dbm-lua sweep collect: index.html: ", tostring(err)); status = 1 end
  print(("sweep collect: %d points (%d done, %d failed, %d incomplete, %d pending) -> %s/results.jsonl, results.csv")
    :format(#rows, counts.done or 0, counts.failed or 0, counts.incomplete or 0, counts.pending or 0, dir)
    .. ", index.html")
  return status
end

return C
