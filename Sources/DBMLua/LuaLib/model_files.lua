-- dbm.model_files: the tensors of the files and folders a user points `analyze` at, listed from their
-- headers and read one at a time, so that the peak memory is the largest tensor, never the model.
--
--   local entries, info = M.list(paths, {layers = "attn"})   -- or nil, message
--   for _, e in ipairs(entries) do local t = e.load() ... end
--
-- A PATH is a .safetensors file, an .npy file, or a folder holding a model: model.safetensors, or shards
-- with model.safetensors.index.json (its weight_map says which shard holds which tensor; every shard must
-- exist), or any other .safetensors files, or a flat folder of .npy files (one tensor each, named after
-- the file). A folder with both pickled (.bin) and .safetensors files uses the safetensors. Pickled
-- files (.pt, .pth, .bin, .ckpt, .pkl, or a file starting with a pickle or zip signature) are refused
-- without being read past those first bytes: loading a pickle runs code.
--
-- An entry: {name =, shape = {...} (nil for an .npy until loaded), dtype = "BF16"|"F32"|... or "npy",
-- file = the file holding it, origin = the PATH it came from, load = function() -> tensor}.
-- Entries are in the order of the PATHs, and within one PATH in natural order of their names
-- (h.2 before h.10). Optimizer and RNG state of our own checkpoints (optim.*, rng.*) is counted in
-- info.state, not listed.
local dbm = require "dbm"

local M = {}

-- Checkpoint state that is not a weight (DESIGN §8): optimizer moments and generator states.
M.state_prefixes = {"optim.", "rng."}

M.pickle_extensions = {pt = true, pth = true, bin = true, ckpt = true, pkl = true, pickle = true}

-- ---------------------------------------------------------------- names

--- M.natural_less(a, b): a before b with runs of digits compared as numbers ("h.2" < "h.10").
function M.natural_less(a, b)
  local i, j = 1, 1
  while i <= #a and j <= #b do
    local da, db = a:match("^%d+", i), b:match("^%d+", j)
    if da and db then
      local na, nb = tonumber(da), tonumber(db)
      if na ~= nb then return na < nb end
      if #da ~= #db then return #da < #db end   -- "01" and "1": the shorter first, for a total order
      i, j = i + #da, j + #db
    else
      local ca, cb = a:sub(i, i), b:sub(j, j)
      if ca ~= cb then return ca < cb end
      i, j = i + 1, j + 1
    end
  end
  return #a - i < #b - j
end

-- Whether name matches --layers: a glob with * and ? when it holds one (matched against the whole name),
-- else a plain substring. No Lua pattern: "h.1" must not match "h11".
function M.name_matches(name, pattern)
  if not pattern then return true end
  if not pattern:find("[*?]") then return name:find(pattern, 1, true) ~= nil end
  local lua = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
  return name:match(lua) ~= nil
end

local function has_prefix(s, prefixes)
  for _, p in ipairs(prefixes) do
    if s:sub(1, #p) == p then return true end
  end
  return false
end

-- ---------------------------------------------------------------- files

local function extension(path) return (path:match("%.([%w]+)$") or ""):lower() end

local function is_directory(path)
  local f = io.open(path .. "/.", "rb")   -- opens for a directory only (a file gives ENOTDIR)
  if f then f:close() return true end
  return false
end

-- The message for a pickled file: what it is, why it is not read, and the one line of Python that
-- converts it (weights_only=True loads tensors without running the pickle's code).
function M.pickle_message(path, why)
  local out = path:gsub("%.[%w]+$", "") .. ".safetensors"
  return ("file '%s' is %s: loading it would run code from the file, so dbm-lua does not read it. "
    .. "Convert it once to safetensors: python3 -c \"import torch, safetensors.torch as st; "
    .. "st.save_file({k: v.contiguous().clone() for k, v in torch.load('%s', weights_only=True).items()}, '%s')\" "
    .. "(for a training checkpoint, take its state dict, e.g. torch.load(...)['model'])"):format(path, why, path, out)
end

-- The format of a file from its name, else from its first 9 bytes (nothing more is read):
-- "npy", "safetensors", or nil and a message (pickles and unknown files).
function M.file_format(path)
  local ext = extension(path)
  if ext == "npy" then return "npy" end
  if ext == "safetensors" then return "safetensors" end
  if M.pickle_extensions[ext] then return nil, M.pickle_message(path, "a pickled PyTorch file (." .. ext .. ")") end
  if ext == "npz" then
    return nil, ("file '%s' is a zip of .npy files: unzip it into a folder (python3 -m zipfile -e '%s' DIR) and analyze the folder"):format(path, path)
  end
  local f, open_error = io.open(path, "rb")
  if not f then return nil, "cannot open file '" .. path .. "': " .. tostring(open_error):gsub("^.*: ", "") end
  local head, read_error = f:read(9)
  f:close()
  if read_error then return nil, "cannot read file '" .. path .. "': " .. tostring(read_error):gsub("^.*: ", "") end
  head = head or ""
  if head:sub(1, 6) == "\x93NUMPY" then return "npy" end
  if #head == 9 and head:sub(9, 9) == "{" then return "safetensors" end
  if head:match("^\x80[\2-\5]") then return nil, M.pickle_message(path, "a Python pickle") end
  if head:sub(1, 4) == "PK\3\4" then return nil, M.pickle_message(path, "a zip archive (PyTorch's format for pickled tensors)") end
  return nil, "file '" .. path .. "' is neither a .npy nor a .safetensors file"
end

-- The message of an error raised by a dbm function, without its position and the function's name.
local function clean(message)
  return (tostring(message):gsub("^%[dbm%] [%w_]+%.lua:%d+: ", "", 1):gsub("^dbm%.[%w_]+: ", "", 1))
end
M.clean = clean

-- The entries of one .safetensors file (header only), and the number of state tensors left out.
local function safetensors_entries(file, origin)
  local ok, entries, metadata, size = pcall(dbm.safetensors_header, file)
  if not ok then return nil, clean(entries) end
  local list, state = {}, 0
  for _, e in ipairs(entries) do
    if has_prefix(e.name, M.state_prefixes) then state = state + 1
    else
      list[#list + 1] = {name = e.name, shape = e.shape, dtype = e.dtype, file = file, origin = origin,
                         load = function() return dbm.safetensors_tensor(file, e, size) end}
    end
  end
  return list, state, metadata
end

local function npy_entry(file, origin)
  local name = file:match("([^/]+)$"):gsub("%.[Nn][Pp][Yy]$", "")
  return {name = name, dtype = "npy", file = file, origin = origin, load = function() return dbm.load_npy(file) end}
end

-- The files of a folder, in natural order.
local function folder_files(dir)
  local names = dbm._list_dir(dir)
  table.sort(names, M.natural_less)
  return names
end

-- The .safetensors files of a model folder: those of the index's weight_map (each must exist), else
-- model.safetensors, else every .safetensors file. nil, message when the index is unusable.
local function model_shards(dir, names)
  local has = {}
  for _, n in ipairs(names) do has[n] = true end
  local index = dir .. "/model.safetensors.index.json"
  if has["model.safetensors.index.json"] then
    local f = io.open(index, "rb")
    local text = f and f:read("a")
    if f then f:close() end
    local ok, json = pcall(dbm.json_decode, text or "")
    if not ok or type(json) ~= "table" or type(json.weight_map) ~= "table" then
      return nil, "the index '" .. index .. "' is not a JSON object with a weight_map"
    end
    local shards, seen, missing = {}, {}, {}
    for _, shard in pairs(json.weight_map) do
      if type(shard) ~= "string" or shard:find("/", 1, true) or shard:sub(1, 1) == "." then
        return nil, "the index '" .. index .. "' names a shard that is not a file name in its folder: " .. tostring(shard)
      end
      if not seen[shard] then
        seen[shard] = true
        if has[shard] then shards[#shards + 1] = shard else missing[#missing + 1] = shard end
      end
    end
    table.sort(missing, M.natural_less)
    if #missing > 0 then
      return nil, ("the index '%s' names %d shard%s missing from the folder: %s"):format(index, #missing,
        #missing == 1 and "" or "s", table.concat(missing, ", "))
    end
    table.sort(shards, M.natural_less)
    return shards, json.weight_map
  end
  if has["model.safetensors"] then return {"model.safetensors"} end
  local all = {}
  for _, n in ipairs(names) do if extension(n) == "safetensors" then all[#all + 1] = n end end
  return all
end

-- The entries of a folder (a model, or a flat folder of .npy files).
local function folder_entries(dir)
  local names = folder_files(dir)
  local shards, weight_map = model_shards(dir, names)
  if not shards then return nil, weight_map end
  local list, state, metadata = {}, 0, {}
  if #shards > 0 then
    for _, shard in ipairs(shards) do
      local entries, n, meta = safetensors_entries(dir .. "/" .. shard, dir)
      if not entries then return nil, n end
      for _, e in ipairs(entries) do
        if weight_map and weight_map[e.name] ~= nil and weight_map[e.name] ~= shard then
          return nil, ("tensor '%s' is in shard %s, but the index puts it in %s"):format(e.name, shard, tostring(weight_map[e.name]))
        end
        list[#list + 1] = e
      end
      state = state + n
      for k, v in pairs(meta) do metadata[k] = v end
    end
    return list, state, metadata
  end
  local pickles = {}
  for _, n in ipairs(names) do
    if extension(n) == "npy" then list[#list + 1] = npy_entry(dir .. "/" .. n, dir)
    elseif M.pickle_extensions[extension(n)] then pickles[#pickles + 1] = n end
  end
  if #list > 0 then return list, 0, {} end
  if #pickles > 0 then return nil, M.pickle_message(dir .. "/" .. pickles[1], "a pickled PyTorch file, and the folder has no .safetensors") end
  return nil, "folder '" .. dir .. "' holds no model: no .safetensors file (model.safetensors, or shards with "
    .. "model.safetensors.index.json) and no .npy file"
end

-- The entries of one PATH.
local function path_entries(path)
  if is_directory(path) then return folder_entries(path) end
  local format, why = M.file_format(path)
  if not format then return nil, why end
  if format == "npy" then return {npy_entry(path, path)}, 0, {} end
  return safetensors_entries(path, path)
end

--- M.list(paths, opts) -> entries, info; or nil, message. opts.layers: the --layers pattern
--- (M.name_matches). info = {state = tensors of optimizer/RNG state left out, unselected = entries
--- --layers left out, metadata = {[path] = the safetensors metadata of each PATH}}.
function M.list(paths, opts)
  opts = opts or {}
  local entries, info = {}, {state = 0, unselected = 0, metadata = {}}
  for _, path in ipairs(paths) do
    local list, state, metadata = path_entries(path)
    if not list then return nil, state end
    table.sort(list, function(a, b) return M.natural_less(a.name, b.name) end)
    local seen = {}
    for _, e in ipairs(list) do
      if seen[e.name] then return nil, ("'%s' holds two tensors named '%s' (in %s and %s)"):format(path, e.name, seen[e.name], e.file) end
      seen[e.name] = e.file
      if M.name_matches(e.name, opts.layers) then entries[#entries + 1] = e else info.unselected = info.unselected + 1 end
    end
    info.state = info.state + state
    info.metadata[path] = metadata
  end
  return entries, info
end

return M
