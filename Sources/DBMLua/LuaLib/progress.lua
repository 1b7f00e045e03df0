-- dbm.progress: progress of a long loop: step/total, rate, ETA and chosen scalars.
--
--   local p = dbm.progress{total = N, label = "train", every = seconds, stream = io.stdout}
--   for step = 1, N do ...; p:update(step, {loss = loss}) end
--   p:done()
--
-- On a terminal: one line, rewritten in place (carriage return) at most every `every` seconds (0.2 by
-- default). Otherwise (a pipe, a log file): plain lines at most every `every` seconds (10 by default),
-- plus the first and the last step. Lua cannot ask whether a stream is a terminal, so the check runs
-- `test -t FD` once in a shell that inherits our descriptors (1 for io.stdout, 2 for io.stderr);
-- DBM_PROGRESS=tty or DBM_PROGRESS=plain in the environment overrides it, DBM_PROGRESS=off silences
-- the progress lines.
local dbm = require "dbm"

local Progress = {}
Progress.__index = Progress

local M = {Progress = Progress}

local tty_cache = {}

-- Whether the stream is a terminal (see the top of the file).
function M.is_terminal(stream)
  local mode = os.getenv("DBM_PROGRESS")
  if mode == "tty" then return true elseif mode == "plain" or mode == "off" then return false end
  local fd = stream == io.stdout and 1 or stream == io.stderr and 2 or nil
  if not fd then return false end
  if tty_cache[fd] == nil then tty_cache[fd] = os.execute("test -t " .. fd) == true end
  return tty_cache[fd]
end

local function duration(seconds)
  if seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.floor(seconds + 0.5)
  local h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s) end
  return ("%d:%02d"):format(m, s)
end
M.duration = duration

local function number_text(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  local a = math.abs(v)
  if a ~= 0 and (a < 1e-3 or a >= 1e5) then return ("%.3e"):format(v) end
  return ("%.4g"):format(v)
end

local known = {total = true, label = true, every = true, stream = true}

--- M.new(opts) -> progress (dbm.progress calls this).
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("dbm.progress: expected {total = N, label = ..., every = seconds}, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if not known[k] then error(("dbm.progress: unknown option '%s' (known: total, label, every, stream)"):format(tostring(k)), 2) end
  end
  if opts.total ~= nil and (type(opts.total) ~= "number" or opts.total < 0) then
    error("dbm.progress: option 'total': expected a non-negative number of steps, got " .. tostring(opts.total), 2)
  end
  if opts.every ~= nil and (type(opts.every) ~= "number" or opts.every < 0) then
    error("dbm.progress: option 'every': expected seconds (a non-negative number), got " .. tostring(opts.every), 2)
  end
  local stream = opts.stream or io.stdout
  if io.type(stream) ~= "file" then error("dbm.progress: option 'stream': expected an open file such as io.stderr", 2) end
  local tty = M.is_terminal(stream)
  return setmetatable({
    total = opts.total, label = opts.label or "progress", stream = stream, tty = tty,
    every = opts.every or (tty and 0.2 or 10),
    silent = os.getenv("DBM_PROGRESS") == "off",
    t0 = dbm.clock(), last_print = nil, first_step = nil, step = nil, scalars = nil, width = 0, finished = false,
  }, Progress)
end

-- The text of the line: label, step/total, percent, rate, ETA (or elapsed time at the end), scalars.
function Progress:line(final)
  local elapsed = dbm.clock() - self.t0
  local step = self.step or 0
  local parts = {self.label}
  if self.total then
    parts[#parts + 1] = ("%d/%d"):format(step, self.total)
    if self.total > 0 then parts[#parts + 1] = ("%3d%%"):format(math.floor(100 * step / self.total)) end
  else
    parts[#parts + 1] = ("step %d"):format(step)
  end
  local done = step - (self.first_step or step) + 1
  local rate = elapsed > 0 and done / elapsed or 0
  if rate > 0 then parts[#parts + 1] = ("%s steps/s"):format(number_text(rate)) end
  if final or (self.total and step >= self.total) then
    parts[#parts + 1] = "in " .. duration(elapsed)
  elseif self.total and rate > 0 then
    parts[#parts + 1] = "ETA " .. duration((self.total - step) / rate)
  end
  if self.scalars then
    local keys = {}
    for k in pairs(self.scalars) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = self.scalars[k]
      if type(v) ~= "number" and type(v) ~= "string" and type(v) ~= "boolean" and v.item then v = v:item() end
      parts[#parts + 1] = ("%s %s"):format(k, type(v) == "number" and number_text(v) or tostring(v))
    end
  end
  return table.concat(parts, "  ")
end

function Progress:_emit(final)
  if self.silent then return end
  local text = self:line(final)
  if self.tty then
    -- \r returns to the start of the line; ESC[K clears what a longer earlier line left behind
    self.stream:write("\r", text, "\27[K", final and "\n" or "")
  else
    self.stream:write(text, "\n")
  end
  self.stream:flush()
  self.last_print = dbm.clock()
end

--- p:update(step [, scalars]): note the current step (and scalars to show); prints when it is time.
function Progress:update(step, scalars)
  if getmetatable(self) ~= Progress then error("p:update: call it with a colon, p:update(step, scalars)", 2) end
  if type(step) ~= "number" then error("p:update: argument 1 (step): expected a number, got " .. type(step), 2) end
  if scalars ~= nil and type(scalars) ~= "table" then error("p:update: argument 2 (scalars): expected a table, got " .. type(scalars), 2) end
  if not self.first_step then self.first_step = step end
  self.step, self.scalars = step, scalars or self.scalars
  local now = dbm.clock()
  local last = self.total and step >= self.total
  if self.last_print == nil or now - self.last_print >= self.every or (last and not self.tty) then
    if last and not self.tty then self.finished = true end
    self:_emit(false)
  end
end

--- p:done(): prints the final line (total time) and ends the terminal line.
function Progress:done()
  if getmetatable(self) ~= Progress then error("p:done: call it with a colon, p:done()", 2) end
  if self.finished and not self.tty then return end
  self.finished = true
  if self.step then self:_emit(true) end
end

function Progress:__tostring() return "dbm.Progress(" .. self.label .. ")" end

return M
