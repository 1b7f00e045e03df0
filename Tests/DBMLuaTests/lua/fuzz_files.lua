-- The file fuzzer's driver (issue 13, item 9, part 2), run by FuzzTests in children as fuzz_api.lua is:
--   dbm-lua fuzz_files.lua run SEED FIRST LAST   mutated files through every loader, one per call
--   dbm-lua fuzz_files.lua names SEED I FILE      a safetensors file with hostile tensor names, for analyze
-- Call i writes one file, a mutation of a valid .npy, safetensors, IDX or checkpoint file (chosen by i and
-- mutated from (seed, i) alone, so a failing call repeats), and loads it with the matching loader in a
-- pcall: a Lua error is the right answer to a broken file; a signal or a hang fails the parent's test.
-- Lines for the parent: "\1FUZZ B i kind" before a call, "\1FUZZ E i status" after it, "\1FUZZ D" at the end.
local mode = arg[1]
local nn = dbm.nn

local function emit(...) io.stdout:write("\1FUZZ ", table.concat({...}, " "), "\n"); io.stdout:flush() end
local function read(path) local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); return s end
local function write(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end

-- Names that must stay text wherever they go: line breaks with gnuplot and shell commands after them,
-- quotes, backquotes, $( ), escape sequences, NUL, a leading '<' or '|' (a command to gnuplot), a
-- leading '-' (an option), path separators. `canary` is a path a command that ran would create.
local function hostile_names(canary)
  return {
    'w\nsystem "touch ' .. canary .. '1"\n#', "w'\nsystem 'touch " .. canary .. "2'\n#", "w`touch " .. canary .. "3`",
    "w$(touch " .. canary .. "4)", "w'; touch " .. canary .. "5; echo '", "<touch " .. canary .. "6", "|touch " .. canary .. "7",
    "-rf", "../../w", "w\r\27[2J\27[31mred\7", "w\0nul", "w\\\nsystem 'touch " .. canary .. "8'", "@w", "w\194\155" .. "31m",
    ("x"):rep(300), "", " ", "\"", "'", "\\",
  }
end

-- JSON string literal of any bytes (control characters as \u00XX).
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"'
end

-- A safetensors file by hand (float32 tensors of the given names, 2×3 each), so that names can be anything.
local function safetensors_bytes(names, metadata)
  local header, body, offset = {}, {}, 0
  for k, name in ipairs(names) do
    header[#header + 1] = ('%s:{"dtype":"F32","shape":[2,3],"data_offsets":[%d,%d]}'):format(json_string(name), offset, offset + 24)
    body[#body + 1] = string.pack("<ffffff", k, 0.5, -1, 2, 0.25, k / 7)
    offset = offset + 24
  end
  if metadata then header[#header + 1] = '"__metadata__":{"note":' .. json_string(metadata) .. '}' end
  local h = "{" .. table.concat(header, ",") .. "}"
  h = h .. (" "):rep((8 - #h % 8) % 8)
  return string.pack("<I8", #h) .. h .. table.concat(body)
end

-- ---------------------------------------------------------------- the valid files mutations start from

local function idx_bytes(dims, fill)
  local head = string.pack(">BBBB", 0, 0, 8, #dims)
  for _, d in ipairs(dims) do head = head .. string.pack(">I4", d) end
  local n = 1
  for _, d in ipairs(dims) do n = n * d end
  local body = {}
  for i = 1, n do body[i] = string.char((i * fill) % 256) end
  return head .. table.concat(body)
end

local function make_bases()
  dbm.seed(5)
  dbm.save_npy("b1.npy", dbm.randn(3, 4))
  dbm.save_npy("b2.npy", dbm.randn(5, {dtype = "float64"}))
  dbm.save_npy("b3.npy", dbm.tensor({{1, 2}, {3, 4}}), {dtype = "int64"})
  dbm.save_safetensors("b4.safetensors", {w = dbm.randn(4, 3), b = dbm.randn(3, {dtype = "float64"})}, {n_layer = "2"})
  write("b5.safetensors", safetensors_bytes({"a", "b"}, "meta"))
  write("b6.idx", idx_bytes({3, 4, 5}, 7))
  write("b7.idx", idx_bytes({10}, 3))
  local m = nn.Sequential({nn.Linear(3, 2), nn.LayerNorm(2)})
  local opt = dbm.optim.AdamW(m, {lr = 0.01})
  local loss = (m(dbm.randn(4, 3)) ^ 2):sum()
  loss:backward(); opt:step()
  dbm.save_checkpoint("b8.ckpt", {model = m, optimizer = opt, step = 1, generators = {default = dbm.default_generator()}})
  return {
    {name = "npy", files = {"b1.npy", "b2.npy", "b3.npy"}, load = function(p) return dbm.load_npy(p) end},
    {name = "safetensors", files = {"b4.safetensors", "b5.safetensors", "b8.ckpt"}, load = function(p) return dbm.load_safetensors(p) end},
    {name = "idx", files = {"b6.idx", "b7.idx"}, load = function(p) return dbm.load_idx(p) end},
    {name = "checkpoint", files = {"b8.ckpt"}, load = function(p)
      local model = nn.Sequential({nn.Linear(3, 2), nn.LayerNorm(2)})
      return dbm.load_checkpoint(p, {model = model, optimizer = dbm.optim.AdamW(model, {lr = 0.01}),
                                     generators = {default = dbm.generator(1)}})
    end},
  }
end

-- ---------------------------------------------------------------- mutations

local HOSTILE_NUMBERS = {"0", "-1", "1", "65535", "4294967295", "4294967296", "9223372036854775807", "18446744073709551616",
                         "99999999999999999999999", "1e308", "-0", "NaN", "3.5", ""}

-- One mutation of s, from the generator g.
local function mutate(s, g)
  local function int(n) return math.floor(g:uniform() * n) end   -- 0 ..< n
  local kind = int(7)
  if kind == 0 then          -- a few bytes changed
    for _ = 1, 1 + int(8) do
      if #s > 0 then local p = 1 + int(#s); s = s:sub(1, p - 1) .. string.char(int(256)) .. s:sub(p + 1) end
    end
    return s, "bytes"
  elseif kind == 1 then      -- cut short
    return s:sub(1, int(#s + 1)), "truncated"
  elseif kind == 2 then      -- bytes inserted
    local at, junk = int(#s + 1), {}
    for k = 1, 1 + int(16) do junk[k] = string.char(int(256)) end
    return s:sub(1, at) .. table.concat(junk) .. s:sub(at + 1), "inserted"
  elseif kind == 3 then      -- a number in the header replaced by a hostile one
    local head = math.min(#s, 256)
    local starts = {}
    for p in s:sub(1, head):gmatch("()%d+") do starts[#starts + 1] = p end
    if #starts == 0 then return s .. "x", "appended" end
    local p = starts[1 + int(#starts)]
    local q = s:find("%D", p) or head + 1
    return s:sub(1, p - 1) .. HOSTILE_NUMBERS[1 + int(#HOSTILE_NUMBERS)] .. s:sub(q), "header-number"
  elseif kind == 4 then      -- a chunk repeated
    local a = 1 + int(math.max(#s, 1)); local len = 1 + int(64)
    return s:sub(1, a) .. s:sub(a, a + len) .. s:sub(a + 1), "duplicated"
  elseif kind == 5 then      -- a binary length field (safetensors header, IDX dimension) set to a hostile value
    local v = ({0, 1, 7, 0x7fffffff, 0xffffffff, 0x7fffffffffffffff, -1})[1 + int(7)]
    local at = ({1, 5, 9})[1 + int(3)]
    if #s < at + 7 then return s, "short" end
    return s:sub(1, at - 1) .. string.pack("<i8", v) .. s:sub(at + 8), "length"
  else                       -- nothing but the end: trailing garbage
    return s .. ("\0"):rep(int(40)), "trailing"
  end
end

-- ---------------------------------------------------------------- modes

if mode == "run" then
  local seed, first, last = math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4]))
  dbm.set_memory_limit(64 * 1024 * 1024)
  local loaders = make_bases()
  local bases = {}
  for _, l in ipairs(loaders) do for _, f in ipairs(l.files) do bases[f] = read(f) end end
  emit("T", #loaders)
  for i = first, last do
    local loader = loaders[(i - 1) % #loaders + 1]
    local g = dbm.generator(seed * 1000003 + i)
    local base = loader.files[1 + math.floor(g:uniform() * #loader.files)]
    local bytes, how = mutate(bases[base], g)
    if g:uniform() < 0.3 then bytes = mutate(bytes, g) end   -- sometimes two mutations
    local path = "m" .. i % 4 .. "." .. (loader.name == "idx" and "idx" or "bin")
    write(path, bytes)
    emit("B", i, loader.name .. ":" .. how)
    local ok = pcall(loader.load, path)
    emit("E", i, ok and "ok" or "err")
    os.remove(path)
  end
  emit("D")
elseif mode == "names" then
  -- A safetensors file whose tensor names (and metadata) are hostile, some files also mutated.
  local seed, i, file, canary = math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), arg[4], arg[5]
  local g = dbm.generator(seed * 1000003 + i)
  local pool = hostile_names(canary)
  local names, seen = {}, {}
  for _ = 1, 1 + math.floor(g:uniform() * 4) do
    local n = pool[1 + math.floor(g:uniform() * #pool)]
    if g:uniform() < 0.3 then n = n .. string.char(math.floor(g:uniform() * 32)) end
    if not seen[n] then seen[n] = true; names[#names + 1] = n end
  end
  local bytes = safetensors_bytes(names, pool[1 + math.floor(g:uniform() * #pool)])
  if g:uniform() < 0.2 then bytes = mutate(bytes, g) end
  write(file, bytes)
else
  io.stderr:write("usage: dbm-lua fuzz_files.lua run SEED FIRST LAST | names SEED I FILE CANARY\n")
  os.exit(2)
end
