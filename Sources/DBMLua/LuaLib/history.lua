-- dbm.history: what the plugins of one matrix returned, record by record, and the plots they draw from it
-- (DESIGN §8). The recorder keeps one per watched matrix; `analyze --plots` makes one of a single record.
--
-- Record i is the i-th record of the matrix (its i-th row in spectra/<matrix>.npy). For each plugin the
-- history holds its numeric scalars and its arrays per record; a record of arrays one level deep
-- (histogram = {counts = ..., edges = ...}) gives the arrays histogram.counts and histogram.edges. An array
-- that is the record's levels themselves (ctx.eigenvalues) is not kept: the levels are in spectra/.
--
-- With a folder (the recorder's arrays/<matrix>/) every array is appended to .npy files as it comes
-- (dbm.npy_appender: kill-safe, O(1) per record):
--   <plugin>.<array>.npy          Float64, records × length, while the length is the same at every record
--                                 (a record where the plugin did not return the array: a row of NaN)
--   <plugin>.<array>.values.npy   once the length varies: the rows one after another (Float64, 1-D), and
--   <plugin>.<array>.offsets.npy  int64, records + 1 entries from 0: row i is values[offsets[i]:offsets[i+1]]
--                                 (an empty row where the plugin did not return the array)
-- An array whose length changes is rewritten once as values + offsets, then its fixed file removed (a
-- kill in between leaves both: the values + offsets win). Values are written before offsets, and the
-- recorder writes arrays before the spectra rows, so a killed run's array files hold at least the rows
-- of its spectra file; M.load keeps the first n.
local dbm = require "dbm"

local M = {}
local is_tensor = dbm.is_tensor

-- ---------------------------------------------------------------- one array's store

local Store = {}
Store.__index = Store

local function new_store(base, absent)
  local s = setmetatable({base = base, rows = {}}, Store)
  for i = 1, absent or 0 do s.rows[i] = false end
  return s
end

local function as_row(v)
  if is_tensor(v) then return v:to("float64"):contiguous():reshape(v:numel()):clone() end
  if #v == 0 then return dbm.zeros(0, {dtype = "float64"}) end
  return dbm.tensor(v, {dtype = "float64"})
end

-- The common length of the present rows and of `width` (that of a fixed file already written, if any),
-- or nil when it varies.
local function fixed_width(rows, width)
  for _, r in ipairs(rows) do
    if r then
      if width == nil then width = r:numel() elseif r:numel() ~= width then return nil end
    end
  end
  return width or 0
end

local function fixed_data(rows, width, from, to)
  local data = dbm.zeros(to - from + 1, width, {dtype = "float64"})
  for i = from, to do
    local row = data:row(i - from + 1)
    if rows[i] then row:copy(rows[i]) else row:fill(0 / 0) end
  end
  return data
end

-- The values of rows from..to, one after another, and the offsets after each of them (from `start`).
local function concatenated(rows, from, to, start)
  local values, offsets, at = {}, {}, start
  for i = from, to do
    if rows[i] then
      for _, x in ipairs(rows[i]:totable()) do values[#values + 1] = x end
      at = at + rows[i]:numel()
    end
    offsets[#offsets + 1] = at
  end
  return values, offsets
end

function Store:_to_variable()
  local values, offsets = concatenated(self.rows, 1, #self.rows, 0)
  table.insert(offsets, 1, 0)
  self.values_file = dbm.npy_appender(self.base .. ".values.npy", {dtype = "float64", data = values})
  self.offsets_file = dbm.npy_appender(self.base .. ".offsets.npy", {dtype = "int64", data = offsets})
  self.end_offset = offsets[#offsets]
  if self.file then self.file:close(); self.file = nil end
  os.remove(self.base .. ".npy")
  self.variable = true
end

-- Brings the files to the rows in memory (rows are only added here, cut by truncate).
function Store:sync()
  if not self.base then return end
  local n = #self.rows
  if not self.variable and fixed_width(self.rows, self.width) == nil then return self:_to_variable() end
  if self.variable then
    local have = self.offsets_file:rows() - 1
    if have >= n then return end
    local values, offsets = concatenated(self.rows, have + 1, n, self.end_offset)
    if #values > 0 then self.values_file:append(values) end
    self.offsets_file:append(offsets)
    self.end_offset = offsets[#offsets]
  elseif not self.file then
    local width = fixed_width(self.rows, self.width)
    self.width = width
    self.file = dbm.npy_appender(self.base .. ".npy", {cols = width, data = fixed_data(self.rows, width, 1, n)})
  elseif self.file:rows() < n then
    self.file:append(fixed_data(self.rows, self.width, self.file:rows() + 1, n))
  end
end

function Store:truncate(n)
  for i = #self.rows, n + 1, -1 do self.rows[i] = nil end
  if self.variable then
    local _, offsets = concatenated(self.rows, 1, n, 0)
    self.end_offset = offsets[n] or 0
    if self.offsets_file:rows() > n + 1 then self.offsets_file:truncate(n + 1) end
    if self.values_file:rows() > self.end_offset then self.values_file:truncate(self.end_offset) end
  elseif self.file and self.file:rows() > n then
    self.file:truncate(n)
  end
end

function Store:close()
  for _, key in ipairs({"file", "values_file", "offsets_file"}) do
    if self[key] then self[key]:close() end
  end
end

-- ---------------------------------------------------------------- the history of one matrix

local History = {}
History.__index = History
M.History = History

--- M.new(matrix, dir) -> an empty history; dir: the folder of its array files, or nil (memory only).
function M.new(matrix, dir)
  return setmetatable({matrix = matrix, dir = dir, n = 0, entries = {}}, History)
end

-- The entry of one plugin: its scalars {key = {record = value}} and array stores {name = Store}.
function History:entry(name)
  local e = self.entries[name]
  if not e then
    e = {name = name, scalars = {}, arrays = {}}
    self.entries[name] = e
  end
  return e
end

-- The arrays of a result by stored name, without the levels themselves.
local function arrays_of(result, levels)
  local out = {}
  for k, v in pairs(result) do
    if is_tensor(v) then
      if not rawequal(v, levels) then out[k] = v end
    elseif type(v) == "table" then
      if #v > 0 or next(v) == nil then out[k] = v else
        for k2, v2 in pairs(v) do out[k .. "." .. k2] = v2 end
      end
    end
  end
  return out
end

--- h:add(results, levels): one more record; results = {plugin name = result} (a failed plugin: none).
function History:add(results, levels)
  local n = self.n + 1
  self.n = n
  for name, res in pairs(results) do
    local e = self:entry(name)
    for k, v in pairs(res) do
      if type(v) == "number" then e.scalars[k] = e.scalars[k] or {}; e.scalars[k][n] = v end
    end
    for k, v in pairs(arrays_of(res, levels)) do
      e.arrays[k] = e.arrays[k] or new_store(self.dir and (self.dir .. "/" .. name .. "." .. k), n - 1)
      e.arrays[k].rows[n] = as_row(v)
    end
  end
  self:_fill_and_sync()
end

-- Every store gets its row n (absent where the plugin did not return it) and its files follow.
function History:_fill_and_sync()
  if self.dir and not self.made then dbm.mkdir(self.dir); self.made = true end
  for _, e in pairs(self.entries) do
    for _, s in pairs(e.arrays) do
      for i = #s.rows + 1, self.n do s.rows[i] = false end
      s:sync()
    end
  end
end

--- h:set_scalars(i, results): the scalars of record i ({plugin = {key = value}}), for a resumed run.
function History:set_scalars(i, results)
  for name, scalars in pairs(results) do
    local e = self:entry(name)
    for k, v in pairs(scalars) do e.scalars[k] = e.scalars[k] or {}; e.scalars[k][i] = v end
  end
end

--- h:truncate(n): keeps the first n records (in memory and in the files).
function History:truncate(n)
  if n >= self.n then return end
  self.n = n
  for _, e in pairs(self.entries) do
    for _, values in pairs(e.scalars) do for i = #values, n + 1, -1 do values[i] = nil end end
    for _, s in pairs(e.arrays) do s:truncate(n) end
  end
end

function History:close()
  for _, e in pairs(self.entries) do
    for _, s in pairs(e.arrays) do s:close() end
  end
end

-- The stored arrays of a folder: {["plugin.array"] = {base =, variable = bool}}.
local function stored_arrays(dir)
  local found, ls = {}, io.popen("ls -1 " .. dbm._shell_quote(dir) .. " 2>/dev/null")
  for file in ls:lines() do
    local key = file:match("^(.+)%.values%.npy$")
    if key then found[key] = {variable = true}
    else
      key = file:match("^(.+)%.npy$")
      if key and not key:match("%.offsets$") and not found[key] then found[key] = {variable = false} end
    end
  end
  ls:close()
  return found
end

local function load_rows(base, variable, n)
  local rows = {}
  if variable then
    local values, offsets = dbm.load_npy(base .. ".values.npy"), dbm.load_npy(base .. ".offsets.npy"):totable()
    for i = 1, math.min(n, #offsets - 1) do
      local a, b = math.tointeger(offsets[i]), math.tointeger(offsets[i + 1])
      rows[i] = b > a and values:narrow(1, a + 1, b - a):clone() or false
    end
  else
    local data = dbm.load_npy(base .. ".npy")
    for i = 1, math.min(n, data:shape()[1]) do   -- a row of NaN only: the array was absent
      local r, present = data:row(i):clone(), data:shape()[2] == 0
      for _, x in ipairs(r:totable()) do if x == x then present = true; break end end
      rows[i] = present and r
    end
  end
  return rows
end

--- M.load(matrix, dir, n) -> the history of a resumed run's matrix: the arrays of its first n records
--- from the files in dir (rewritten with those rows only); the scalars come from set_scalars.
function M.load(matrix, dir, n)
  local h = M.new(matrix, dir)
  h.n = n
  for key, how in pairs(stored_arrays(dir)) do
    local plugin, array = key:match("^([^.]+)%.(.+)$")
    if plugin then
      local base = dir .. "/" .. key
      local s = new_store(base)
      s.rows = load_rows(base, how.variable, n)
      if not how.variable then s.width = dbm.load_npy(base .. ".npy"):shape()[2] end   -- pinned by the file, rows or not
      os.remove(base .. ".npy"); os.remove(base .. ".values.npy"); os.remove(base .. ".offsets.npy")
      h:entry(plugin).arrays[array] = s
    end
  end
  h.made = true
  h:_fill_and_sync()
  return h
end

--- M.read(matrix, dir, n) -> the history of a matrix's first n records from the files in dir, read only
--- (dbm-lua report draws a running run's plots this way: the run keeps appending to those files). The
--- scalars come from set_scalars; the history has no folder, so nothing it does writes a file.
function M.read(matrix, dir, n)
  local h = M.new(matrix, nil)
  h.n = n
  for key, how in pairs(stored_arrays(dir)) do
    local plugin, array = key:match("^([^.]+)%.(.+)$")
    if plugin then
      local s = new_store(nil)
      s.rows = load_rows(dir .. "/" .. key, how.variable, n)
      for i = #s.rows + 1, n do s.rows[i] = false end
      h:entry(plugin).arrays[array] = s
    end
  end
  return h
end

--- M.remove(dir): removes the array files of a folder (a resumed run's matrix with no record kept).
function M.remove(dir)
  for key in pairs(stored_arrays(dir)) do
    for _, ext in ipairs({".npy", ".values.npy", ".offsets.npy"}) do os.remove(dir .. "/" .. key .. ext) end
  end
end

-- ---------------------------------------------------------------- plots

-- The x label of a density: which Gram matrix the levels are of.
local function levels_label(shape, symmetric)
  if symmetric or not shape then return "eigenvalue" end
  return shape[1] >= shape[2] and "eigenvalue of W^T W" or "eigenvalue of W W^T"
end

-- The view of one plugin's history a plot reads: scalars {key = {record = value}}, arrays {name = {record =
-- tensor}} (nil where absent), result(i) (its scalars and arrays at record i, as run returned them, nested
-- arrays under their dotted names).
function History:view(name, plugin)
  local e = self.entries[name] or {scalars = {}, arrays = {}}
  local arrays = {}
  for k, s in pairs(e.arrays) do
    arrays[k] = {}
    for i = 1, self.n do arrays[k][i] = s.rows[i] or nil end
  end
  local v = {name = name, plugin = plugin, scalars = e.scalars, arrays = arrays}
  function v.result(i)
    local r = {}
    for k, values in pairs(e.scalars) do r[k] = values[i] end
    for k, rows in pairs(arrays) do r[k] = rows[i] end
    return r
  end
  return v
end

--- h:plot(plugins, opts): calls plot(h) of each plugin that has one. opts: dir (the plots folder), stem (the
--- matrix's name in file names), steps, levels (records × levels, 2-D), shape, symmetric, report
--- (where a failing plot is reported; it never raises). The handle h of plugin p (plugins/README.md):
--- h.steps, h.scalars, h.arrays, h.result(i), h.first, h.last (levels at the first and last record),
--- h.levels, h.matrix, h.dir, h.path (= dir/stem_plugin), h.base (= dir/stem), h.plot (dbm.plot),
--- h.shape, h.symmetric, h.xlabel, and h.plugins: the views of every plugin of the matrix (watch order).
function History:plot(plugins, opts)
  local P = require "dbm.plot"
  local views = {}
  for i, p in ipairs(plugins) do views[i] = self:view(p.name, p) end
  for i, p in ipairs(plugins) do
    if type(p.plot) == "function" and self.n > 0 then
      local h = setmetatable({
        matrix = self.matrix, dir = opts.dir, base = opts.dir .. "/" .. opts.stem, path = opts.dir .. "/" .. opts.stem .. "_" .. p.name,
        plot = P, steps = opts.steps, records = self.n, levels = opts.levels, first = opts.levels:row(1), last = opts.levels:row(self.n),
        shape = opts.shape, symmetric = opts.symmetric, xlabel = levels_label(opts.shape, opts.symmetric), plugins = views,
      }, {__index = views[i]})
      local ok, err = xpcall(p.plot, debug.traceback, h)
      if not ok then
        opts.report(("could not plot matrix '%s' with plugin '%s' (%s): %s"):format(self.matrix, p.name, p.file or "?", tostring(err)))
      end
    end
  end
end

return M
