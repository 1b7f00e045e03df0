-- dbm.npy_appender: a .npy file that grows by rows (the recorder's spectra and steps files). numpy
-- reads it back after appends, after a cut, and with bytes past the rows its header counts (what a
-- kill between a row write and its header update leaves). Its bad calls are in errors.lua.
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

-- unknown options are named (the bad calls are in errors.lua)
local ok, err = pcall(dbm.npy_appender, tmp .. "/b.npy", {colz = 3})
assert(not ok and err:find("npy_appender.lua:%d+: dbm.npy_appender: unknown option 'colz' %(known: dtype, cols, data%)"), err)

os.execute("rm -rf " .. tmp)
print("npy_appender.lua: all checks passed")
