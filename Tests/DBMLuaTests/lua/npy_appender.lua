-- dbm.npy_appender: a .npy file that grows by rows (the recorder's spectra and steps files). numpy
-- reads it back after appends, after a cut, and with bytes past the rows its header counts (what a
-- kill between a row write and its header update leaves); every bad call is a Lua error naming the
-- function, what was expected and what was given, at this file's line.
local tmp = os.tmpname(); os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local function python(code, ...)
  local script = tmp .. "/check.py"
  local f = assert(io.open(script, "w")); f:write("import io, sys\nimport numpy as np\n" .. code); f:close()
  local args = {}
  for i, a in ipairs({...}) do args[i] = "'" .. tostring(a) .. "'" end
  assert(os.execute("python3 " .. script .. " " .. table.concat(args, " ")), "python3 check failed:\n" .. code)
end

-- ---------------------------------------------------------------- growing files

local m = dbm.npy_appender(tmp .. "/m.npy", {cols = 3, data = {{1, 2, 3}}})
assert(m:rows() == 1 and tostring(m):find("1 × 3 <f8", 1, true), tostring(m))
assert(m:append(dbm.tensor({4, 5, 6}, {dtype = "float64"})) == 2, "one row, a tensor")
assert(m:append({{7, 8, 9}, {10, 11, 12}}) == 4, "two rows, a table")
assert(m:append(dbm.tensor({{13, 14, 15}})) == 5, "a float32 tensor of one row")
assert(m:append({}) == 5, "an empty table appends nothing")
local back = dbm.load_npy(tmp .. "/m.npy")
assert(back:dtype() == "float64" and back:shape()[1] == 5 and back:get(5, 3) == 15)

local s = dbm.npy_appender(tmp .. "/steps.npy", {dtype = "int64"})
for step = 0, 109 do s:append(step * 3) end                 -- numbers, across the digit boundaries
s:append({330, 333})
assert(s:rows() == 112)
s:truncate(111)
assert(s:rows() == 111 and dbm.load_npy(tmp .. "/steps.npy"):shape()[1] == 111)
s:close(); s:close()
assert(tostring(s):find("closed", 1, true))
m:close()

-- bytes past the header's rows (a kill before the header update): numpy and dbm.load_npy ignore them
local f = assert(io.open(tmp .. "/m.npy", "ab")); f:write(string.rep("\0", 24 + 5)); f:close()
assert(dbm.load_npy(tmp .. "/m.npy"):shape()[1] == 5)
python([==[
d = sys.argv[1]
m = np.load(d + "/m.npy"); s = np.load(d + "/steps.npy")
assert m.dtype == np.float64 and m.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15]], m
assert s.dtype == np.int64 and s.tolist() == [3 * k for k in range(111)], s
buf = io.BytesIO(); np.save(buf, s)
assert open(d + "/steps.npy", "rb").read() == buf.getvalue(), "the bytes numpy.save writes"
print("npy_appender.lua: numpy reads the appended files (and ignores the bytes past the header's rows)")
]==], tmp)

-- a file created again replaces the old one whole
local again = dbm.npy_appender(tmp .. "/m.npy", {cols = 2, dtype = "float32", data = dbm.ones(2, 2)})
assert(dbm.load_npy(tmp .. "/m.npy"):dtype() == "float32" and dbm.load_npy(tmp .. "/m.npy"):shape()[1] == 2)
again:close()

-- ---------------------------------------------------------------- bad calls

local cases, here = 0, "npy_appender.lua:"
local function check(fname, line, ok, msg)
  cases = cases + 1
  if ok then error(("case %d at line %d: %s should have failed"):format(cases, line, fname), 2) end
  msg = tostring(msg)
  if not msg:find(fname, 1, true) then error(("case %d at line %d: message does not name %s: %s"):format(cases, line, fname, msg), 2) end
  if not msg:find(here .. line .. ":", 1, true) then error(("case %d: message does not give the line %d: %s"):format(cases, line, msg), 2) end
  if not (msg:find("expected", 1, true) or msg:find("cannot", 1, true) or msg:find("unknown option", 1, true)) then
    error(("case %d at line %d: message says nothing of what was expected: %s"):format(cases, line, msg), 2)
  end
end
local function L() return debug.getinfo(2, "l").currentline end

local a = dbm.npy_appender(tmp .. "/a.npy", {cols = 3})
local g = dbm.generator(1)
local path = tmp .. "/b.npy"
local line
for _, v in ipairs({true, {}, function() end, -1, 0.5, g, ""}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, v))
end
for _, v in ipairs({"x", true, -1, g, a}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, v))
end
for _, v in ipairs({"x", "float16", true, {}, -1, g}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {dtype = v}))
end
for _, v in ipairs({"x", true, {}, -1, 0.5, 1e300, 0 / 0, g}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {cols = v}))
end
for _, v in ipairs({"x", true, function() end, -1, 0.5, 0 / 0, g, {1, 2}, {{1, 2, 3}, {1, 2}}, {{"a", 2, 3}}, dbm.randn(2, 4)}) do
  line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {cols = 3, data = v}))
end
line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {colz = 3}))
line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, tmp .. "/no/such/dir/c.npy", {cols = 3}))
line = L(); check("dbm.npy_appender", line, pcall(dbm.npy_appender, path, {dtype = "int64", data = {1, 0 / 0}}))
for _, v in ipairs({"x", true, function() end, -1, 0.5, 1e300, 0 / 0, g, {1, 2}, {{1, 2, 3}, {1, 2}}, dbm.randn(2, 4), dbm.randn(3, 1)}) do
  line = L(); check("NpyAppender:append", line, pcall(a.append, a, v))
end
line = L(); check("NpyAppender:append", line, pcall(a.append, a))
for _, v in ipairs({"x", true, {}, function() end, -1, 0.5, 1e300, 0 / 0, g, 1}) do
  line = L(); check("NpyAppender:truncate", line, pcall(a.truncate, a, v))
end
for _, v in ipairs({false, "x", 3, {}, dbm.randn(3), g}) do
  if v == false then v = nil end
  line = L(); check("NpyAppender:append", line, pcall(dbm.NpyAppender.append, v, {1, 2, 3}))
  line = L(); check("NpyAppender:rows", line, pcall(dbm.NpyAppender.rows, v))
  line = L(); check("NpyAppender:truncate", line, pcall(dbm.NpyAppender.truncate, v, 0))
  line = L(); check("NpyAppender:close", line, pcall(dbm.NpyAppender.close, v))
end
assert(a:rows() == 0, "failed appends append nothing")
a:close()
line = L(); check("NpyAppender:append", line, pcall(a.append, a, {1, 2, 3}))
line = L(); check("NpyAppender:truncate", line, pcall(a.truncate, a, 0))
assert(dbm.help(dbm.npy_appender):find("a:append(rows)", 1, true) and dbm.help(a.append):find("the row count", 1, true))

os.execute("rm -rf " .. tmp)
print(("npy_appender.lua: %d bad calls caught, each naming its function and line"):format(cases))
