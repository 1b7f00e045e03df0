-- dbm.model_files and the bindings under it: pickles are refused after reading at most their first 9
-- bytes (io.open is watched), tensors are read one at a time from the header's offsets, a file that
-- changed since its header was read is refused, names sort naturally, --layers patterns, and
-- dbm.gram_levels equals eigvalsh(gram(W)) matrix by matrix.
local M = require("dbm.model_files")
local dir = os.tmpname(); os.remove(dir); dbm.mkdir(dir)

local function write(name, bytes) local f = assert(io.open(dir .. "/" .. name, "wb")); f:write(bytes); f:close(); return dir .. "/" .. name end
local function expect_error(f, fragment, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing " .. fragment)
  assert(tostring(err):find(fragment, 1, true), ("expected '%s' in: %s"):format(fragment, tostring(err)))
end

-- Every byte read through io.open while body runs: {path = bytes}. Pickled files never reach a parser.
local function watched_reads(body)
  local reads, real_open = {}, io.open
  io.open = function(path, mode)
    local f, e = real_open(path, mode)
    if not f or path:sub(-2) == "/." then return f, e end
    reads[path] = reads[path] or 0
    return setmetatable({}, {__index = function(_, k)
      if k == "read" then return function(_, n) local s = f:read(n); reads[path] = reads[path] + #(s or ""); return s end end
      return function(_, ...) return f[k](f, ...) end
    end})
  end
  local ok, a, b = pcall(body)
  io.open = real_open
  assert(ok, a)
  return reads, a, b
end

-- A pickle whose code would run on load (os.system through REDUCE), after the 2-byte protocol magic:
-- only the magic may be read.
local payload = "\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R." .. string.rep("\xff", 4096)
for _, name in ipairs({"model.bin", "weights.pt", "w.pth", "last.ckpt", "state.pkl"}) do
  local path = write(name, payload)
  local reads, format, why = watched_reads(function() return M.file_format(path) end)
  assert(format == nil and why:find("weights_only=True", 1, true) and why:find("save_file", 1, true), why)
  assert(reads[path] == nil, name .. ": a pickled file was opened")
end
for name, bytes in pairs({["blob.dat"] = payload, ["zipped.data"] = "PK\3\4" .. string.rep("\0", 4096)}) do
  local path = write(name, bytes)
  local reads, format, why = watched_reads(function() return M.file_format(path) end)
  assert(format == nil and why:find("would run code", 1, true), why)
  assert(reads[path] <= 9, ("%s: %d bytes read, expected only the magic"):format(name, reads[path]))
end
-- Through M.list, a folder of pickles only: refused, nothing of the pickle read.
dbm.mkdir(dir .. "/hf"); write("hf/pytorch_model.bin", payload)
local reads, entries, why = watched_reads(function() return M.list({dir .. "/hf"}) end)
assert(entries == nil and why:find("weights_only=True", 1, true), why)
assert(reads[dir .. "/hf/pytorch_model.bin"] == nil)

-- Header, then one tensor at a time, at the offsets the header gives; a changed file is refused.
local g = dbm.generator(7)
local A, B = dbm.randn(6, 4, {generator = g}), dbm.randn(3, 5, {dtype = "float64", generator = g})
dbm.save_safetensors(dir .. "/two.safetensors", {{"b", B}, {"a", A}})
local list, meta, size = dbm.safetensors_header(dir .. "/two.safetensors")
assert(#list == 2 and list[1].name == "b" and list[1].dtype == "F64" and list[2].dtype == "F32", "header entries in data order")
assert(list[1].nbytes == 3 * 5 * 8 and list[2].offset == list[1].offset + list[1].nbytes)
local b = dbm.safetensors_tensor(dir .. "/two.safetensors", list[1], size)
assert((b - B):abs():max() == 0 and b:dtype() == "float64")
local f = io.open(dir .. "/two.safetensors", "ab"); f:write("x"); f:close()
expect_error(dbm.safetensors_tensor, "changed since its header was read", dir .. "/two.safetensors", list[2], size)
expect_error(dbm.safetensors_tensor, "dbm.safetensors_tensor", dir .. "/two.safetensors", {dtype = "F99", shape = {1}, offset = 0}, size + 1)
expect_error(dbm.safetensors_tensor, "reaches past the end", dir .. "/two.safetensors", {dtype = "F32", shape = {1000}, offset = 8}, size + 1)
expect_error(dbm.safetensors_header, "does not exist", dir .. "/nope.safetensors")

-- Natural order and --layers.
local names = {"h.10.w", "h.2.w", "h.1.w", "wte", "h.1"}
table.sort(names, M.natural_less)
assert(table.concat(names, " ") == "h.1 h.1.w h.2.w h.10.w wte", table.concat(names, " "))
assert(M.name_matches("h.1.attn", "h.1") and not M.name_matches("h11.attn", "h.1"), "a substring, not a Lua pattern")
assert(M.name_matches("h.3.attn.c_attn.weight", "h.*.attn.*") and not M.name_matches("h.3.mlp.c_fc.weight", "*.attn.*"))

-- dbm.gram_levels: the levels of each matrix, whichever way they are computed (concurrently or not,
-- in Float64 slabs for float32 input), equal eigvalsh(gram(W)); a non-finite matrix gets an error.
local mats = {dbm.randn(300, 40, {generator = g}), dbm.randn(20, 70, {dtype = "float64", generator = g}),
              dbm.randn(50, 30, {generator = g}):t(), dbm.randn(9, 9, {generator = g})}
mats[4]:set(2, 3, 0 / 0)
local levels, errors = dbm.gram_levels(mats)
for i = 1, 3 do
  local ref = dbm.eigvalsh(dbm.gram(mats[i]:to("float64")))
  assert((levels[i] - ref):abs():max() <= 1e-12 * ref:abs():max(), "gram_levels " .. i)
end
assert(levels[4] == nil and errors[4]:find("NaN at (2, 3)", 1, true), tostring(errors[4]))
expect_error(dbm.gram_levels, "dbm.gram_levels", {dbm.zeros(3)})
expect_error(dbm.gram_levels, "dbm.gram_levels", "nope")

-- analyze --csv: names from files never reach a spreadsheet as formulas; numbers (also negative) untouched
local csv = {}
require("dbm.analyze_output").csv(function(l) csv[#csv + 1] = l end, {
  {name = '=HYPERLINK("x")', shape = {2, 3}, origin = "@f,g", scalars = {a = -1.5}},
  {name = "-2+3", shape = {2, 2}, origin = "+f", scalars = {a = 2}},
  {name = "h.0.w", shape = {4, 4}, origin = "model.safetensors", scalars = {}}})
assert(csv[1] == "name,rows,cols,file,a", csv[1])
assert(csv[2] == [["'=HYPERLINK(""x"")",2,3,"'@f,g",-1.5]], csv[2])
assert(csv[3] == "'-2+3,2,2,'+f,2" and csv[4] == "h.0.w,4,4,model.safetensors,", csv[3] .. "\n" .. csv[4])

-- the one CSV field writer (analyze --csv, sweep collect): numbers read back exactly, text made safe
local F = dbm._csv_field
assert(F(nil) == "" and F(3) == "3" and F(-2) == "-2" and F(0.1) == "0.1" and F(-1.5) == "-1.5" and F(true) == "true")
assert(tonumber(F(1 / 3)) == 1 / 3 and tonumber(F(2 ^ -1074)) == 2 ^ -1074 and F(1e300) == "1e+300", F(1 / 3))
assert(F(0 / 0) == "nan" and F(math.huge) == "inf" and F(-math.huge) == "-inf", F(0 / 0))
assert(F("-0.5") == "'-0.5" and F("@SUM(A1)") == "'@SUM(A1)" and F("a\nb") == "a\\x0ab" and F('say "x"') == '"say ""x"""',
  F("a\nb"))

os.execute("rm -rf " .. dbm._shell_quote(dir))
print("model_files: ok")
