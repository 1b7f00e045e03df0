-- The child half of the API fuzzer (issue 13, item 9; the parent is FuzzTests.swift). It enumerates,
-- at run time, every function and method reachable from `dbm` (and from the embedded dbm.* modules and
-- the objects the library hands out), so a new binding is fuzzed without editing this file, and calls
-- them with generated hostile arguments. Every argument is a Lua expression, evaluated here and also
-- printed in the reproducer, so a failing call can be re-run alone: the arguments of call i depend
-- only on (seed, i).
--
--   dbm-lua fuzz_api.lua list                  the targets, one per line: "index name [no-valid-builder]"
--   dbm-lua fuzz_api.lua run SEED FIRST LAST   calls FIRST..LAST; each prints "\1FUZZ B i" before and
--                                              "\1FUZZ E i ok|err|oom|int|setup" after (oom: Lua ran out
--                                              of memory under the 512 MB limit; int: Ctrl-C; setup: an
--                                              argument expression of the fuzzer itself failed)
--   dbm-lua fuzz_api.lua show SEED I           the reproducer of call I: one line of Lua
--   dbm-lua fuzz_api.lua canary KIND           the parent's self-check: KIND = signal | hang | oom | ok
--
-- Call i targets targets[(i - 1) % #targets + 1]; its round k = (i - 1) // #targets picks the kind of
-- arguments: rounds 0-5 of every 10 give the valid arguments with exactly one replaced by a hostile
-- value (or a hostile extra argument), so that checks past the first argument are reached; round 6
-- all-valid arguments; rounds 7-9 anything (hostile values, valid ones at random positions).
local mode = arg[1]

-- Tensor memory the library may hold in a child (dbm.set_memory_limit), and the resident memory the child
-- may reach (its peak, VmHWM): a call that takes the child past 512 MB allocated what the library did
-- not check. (Resident, not address space: OpenBLAS reserves 128 MB of address space for each thread
-- that calls it and waits for the allocation forever when a ulimit -v refuses it. The parent's ulimit
-- -v of 4 GB only keeps a runaway allocation from taking the machine down.)
local MEMORY_LIMIT = 64 * 1024 * 1024
local RESIDENT_LIMIT = 512 * 1024 * 1024
local memory = dbm.memory
local over_limit = false   -- the child's peak passed RESIDENT_LIMIT already (only the call that took it there is named)

-- ---------------------------------------------------------------- sandbox
-- Processes: gnuplot, git and `test -t` would make each call slow (and the fuzzer is not testing them);
-- `mkdir -p` of a relative folder is kept because the recorder and plots need their folders. An
-- unknown command behaves as one that failed (os.execute) or printed nothing (io.popen).
local real_execute, real_exit = os.execute, os.exit
os.execute = function(cmd)
  if cmd == nil then return true end
  if type(cmd) == "string" and cmd:match("^mkdir %-p ") and not cmd:find("'/", 1, true) then return real_execute(cmd) end
  return nil, "exit", 127
end
io.popen = function() return io.open("/dev/null", "r") end
-- Files and folders: only below the call's folder (a hostile "" joined with "/plots" is /plots).
for _, name in ipairs({"mkdir", "write_file"}) do
  local real = dbm[name]
  dbm[name] = function(path, ...)
    if type(path) == "string" and path:sub(1, 1) == "/" then error("fuzz: dbm." .. name .. " outside the call's folder", 2) end
    return real(path, ...)
  end
end
-- dbm.config exits on --help (and with DBM_CONFIG_JSON, which the parent unsets): an exit in the middle
-- of a batch would lose its remaining calls, so it becomes an error here.
os.exit = function() error("fuzz: os.exit called", 2) end

-- ---------------------------------------------------------------- targets

-- Tables of functions reachable from dbm that are not fields of dbm: the embedded modules, and the
-- method tables of the objects the library returns. Each is {display name, Lua expression}.
local EXTRA_ROOTS = {
  {"Generator", "getmetatable(dbm.generator(1)).__index"},
  {"Writer", "getmetatable(dbm.jsonl('fz_w.jsonl')).__index"},
  {"Optimizer", "getmetatable(dbm.optim.SGD({dbm.parameter(dbm.zeros(1))}, {lr = 0.1}))"},
  {"dbm.plot", "require('dbm.plot')"},
  {"dbm.recorder", "require('dbm.recorder')"},
  {"dbm.progress", "require('dbm.progress')"},
  {"dbm.diagnostics", "require('dbm.diagnostics')"},
  {"dbm.checkpoint", "require('dbm.checkpoint')"},
  {"dbm.analyze", "require('dbm.analyze')"},
  {"dbm.model_files", "require('dbm.model_files')"},
  {"dbm.analyze_output", "require('dbm.analyze_output')"},
  {"dbm.qkv", "require('dbm.qkv')"},
  {"dbm.analyze_series", "require('dbm.analyze_series')"},
  {"dbm.sweep_collect", "require('dbm.sweep_collect')"},
}

-- Metatables of the objects: their metamethods are reachable (t[i], t[i] = v, #t, -t, tostring(m), m.weight)
-- and are fuzzed like the named functions.
local METATABLES = {
  {"Tensor.metatable", "getmetatable(dbm.zeros(1))"},
  {"Generator.metatable", "getmetatable(dbm.generator(1))"},
  {"Writer.metatable", "getmetatable(dbm.jsonl('fz_w.jsonl'))"},
  {"Model.metatable", "getmetatable(dbm.models.dyson{n = 3})"},
  {"Dataset.metatable", "getmetatable(dbm.text_dataset((function() local f = io.open('fz.txt', 'wb') f:write('ab') f:close() return 'fz.txt' end)()))"},
}
-- Metamethods left out, with the reason (every other reachable function is fuzzed):
local EXCLUDED_METAMETHODS = {
  __gc = "a finalizer called by hand frees a live object's storage: the collector's hook, not an API",
  __close = "the same, for to-be-closed variables",
}

local function is_identifier(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

-- Breadth-first over the roots with sorted keys, so that every child numbers the targets the same way
-- and a function reachable under several names (dbm.sum and dbm.Tensor.sum) is fuzzed once, under its
-- shortest name. Private names (a leading `_`) are skipped; so are metamethods.
local function enumerate()
  local targets, seen_fn, seen_tab = {}, {}, {}
  local queue, metatables = {{"dbm", "dbm", dbm}}, {}
  for _, r in ipairs(EXTRA_ROOTS) do queue[#queue + 1] = {r[1], r[2], assert(load("return " .. r[2]))()} end
  for _, r in ipairs(METATABLES) do
    local mt = assert(load("return " .. r[2]))()
    metatables[mt] = true
    queue[#queue + 1] = {r[1], r[2], mt}
  end
  local head = 1
  while head <= #queue do
    local name, expr, t = table.unpack(queue[head])
    head = head + 1
    if not seen_tab[t] then
      seen_tab[t] = true
      local keys = {}
      for k in pairs(t) do
        if is_identifier(k) and (k:sub(1, 1) ~= "_" or (metatables[t] and k:sub(1, 2) == "__" and not EXCLUDED_METAMETHODS[k])) then
          keys[#keys + 1] = k
        end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = rawget(t, k)
        local sep = (name:match("^%u") and not name:find("%.")) and ":" or "."   -- Generator:uniform
        local full, fexpr = name .. sep .. k, expr .. "." .. k
        local callable = type(v) == "function"
          or (type(v) == "table" and getmetatable(v) and type(getmetatable(v).__call) == "function")
        if callable and not seen_fn[v] then
          seen_fn[v] = true
          targets[#targets + 1] = {name = full, expr = fexpr}
        end
        if type(v) == "table" then queue[#queue + 1] = {full, fexpr, v} end
      end
    end
  end
  return targets
end

-- ---------------------------------------------------------------- argument expressions

-- Hostile values: the issue's list and a few more of each kind. Paths are relative (the child's folder
-- is a fresh temporary one): never a system path, which a save through rename would replace.
local HOSTILE = {
  "nil", "true", "false", "{}", "{1, 2, 3}", "{{1, 2}, {3}}", "{x = 1}", "{-1}", "{0}", "{1e300}", "{0/0}",
  "{math.maxinteger, math.mininteger}", "{{}}", "{dbm.zeros(2)}",
  "setmetatable({}, {__index = function() error('hostile __index') end})",
  '""', '"x"', '"float64"', '"train"', '"\\0"', '"a\\0b"', '"../x"', '"."', 'string.rep("x", 100000)',
  '"\\255\\254"', '"%s%n"', '"1e308"',
  "0", "-0.0", "1", "-1", "2", "0.5", "0/0", "1/0", "-1/0", "5e-324", "-5e-324", "1e-300", "1e300",
  "-1e300", "math.maxinteger", "math.mininteger", "2^53", "2^31", "-2^31", "1e10", "-1e10", "3.5",
  "dbm.zeros(0)", "dbm.zeros(0, 3)", "dbm.zeros(3, 0)", "dbm.zeros(0, 0)", "dbm.tensor(1.5)",
  "dbm.tensor(0/0)", "dbm.zeros(2, 2, {dtype = 'float64'})", "dbm.full({3, 3}, 0/0)", "dbm.full({3}, 1/0)",
  "dbm.randn(4, 5):t()", "dbm.zeros(2, 3, 4)", "dbm.zeros(1, 1, 1, 1, 1)", "dbm.parameter(dbm.randn(2, 3))",
  "dbm.arange(10)", "dbm.tensor({{1e300, -1e300}, {5e-324, 0}}, {dtype = 'float64'})",
  "dbm.randn(3, 3, {dtype = 'float64'})", "dbm.full({2, 2}, math.maxinteger)",
  "dbm.generator(1)", "io.tmpfile()", "coroutine.create(print)", "print",
  "function() error('hostile callback') end", "function() return 0/0 end",
  "dbm.jsonl('fz_h.jsonl')", "dbm.models.teacher_student{n_data = 16, seed = 1}", "dbm.nn.Linear(2, 3)",
}
-- The hostile values by kind, for replacing a valid argument by one of its own kind.
local function kind_of(src)
  if tonumber(src) or src:match("^%-?%d") or src:match("^math%.") or src:match("^%-?1/0") or src == "0/0" then return "number" end
  if src:match("^[\"']") or src:match("^string%.") then return "string" end
  if src:match("^{") or src:match("^setmetatable") then return "table" end
  if src:match("^dbm%.[%w_]+%(") and not src:match("^dbm%.generator") and not src:match("^dbm%.jsonl")
     and not src:match("^dbm%.models") and not src:match("^dbm%.nn") then return "tensor" end
  return "other"
end
local HOSTILE_OF = {}
for _, h in ipairs(HOSTILE) do
  local k = kind_of(h)
  HOSTILE_OF[k] = HOSTILE_OF[k] or {}
  table.insert(HOSTILE_OF[k], h)
end

-- Counts of work that are meant to take long when huge (m:step(10^18) runs 10^18 steps; Ctrl-C stops
-- it, CommandLineTests checks that): for these targets the huge numbers are left out of the hostile
-- values, or every such call would cost the 10 s time limit without finding anything.
local HUGE = {["1e300"] = true, ["math.maxinteger"] = true, ["2^53"] = true, ["2^31"] = true, ["1e10"] = true,
              ["1/0"] = true, ["dbm.full({2, 2}, math.maxinteger)"] = true, ['"1e308"'] = true}   -- (a string converts)
local LONG_BY_REQUEST = {["dbm.models.Model.step"] = true, ["dbm.models.Model.run"] = true, ["dbm.nn.GPT.generate"] = true,
                         ["dbm.models.ensemble"] = true}

-- Valid-argument builders. r(lo, hi) is the call's random integer. Small sizes (at most 8×8) keep each
-- call fast. Objects are made fresh in every call (expressions), so no call sees another's state.
-- A valid tensor of the given sizes: normal or uniform samples, or zeros (a range of width zero), in
-- float32 or float64, so that a hostile bound meets data inside it (histogram(zeros, 2, 0, 5e-324)).
local TENSOR_FORMS = {"dbm.randn(%s)", "dbm.randn(%s)", "dbm.zeros(%s)", "dbm.randn(%s, {dtype = 'float64'})",
                      "dbm.rand(%s, {dtype = 'float64'})", "dbm.zeros(%s, {dtype = 'float64'})"}
local function tensor_of(r, sizes) return TENSOR_FORMS[r(1, #TENSOR_FORMS)]:format(sizes) end
local function mat(r) return tensor_of(r, ("%d, %d"):format(r(1, 6), r(1, 6))) end
local function vec(r) return tensor_of(r, tostring(r(1, 8))) end
local SYM = "(function() local a = dbm.randn(5, 5, {dtype = 'float64'}) return a + a:t() end)()"
local LEVELS = "dbm.sort(dbm.rand(40, {dtype = 'float64'}) + 0.1)"
local PARAM = "dbm.parameter(dbm.randn(3, 4))"
local function file(name, text)   -- an expression that writes a small file and returns its name
  return ("(function() local f = io.open(%q, 'wb') f:write(%q) f:close() return %q end)()"):format(name, text, name)
end
local TEXT = file("fz.txt", "hello world, the quick brown fox\n")
local NPY = "(function() dbm.save_npy('fz.npy', dbm.randn(4, 3)) return 'fz.npy' end)()"
local SAFE = "(function() dbm.save_safetensors('fz.safetensors', {w = dbm.randn(4, 3)}) return 'fz.safetensors' end)()"
local IDX = file("fz.idx", "\0\0\8\1\0\0\0\3\1\2\3")
local DS = "dbm.text_dataset(" .. TEXT .. ")"
local TS = "dbm.models.teacher_student{n_data = 32, batch_size = 4, seed = 1}"
local RBM = "dbm.models.rbm_bernoulli{data = dbm.rand(8, 6), hidden = 4, batch_size = 4}"
local DYSON = "dbm.models.dyson{n = 6}"
local OPT = "dbm.optim.SGD({" .. PARAM .. "}, {lr = 0.1})"
local OPT_FZ = "(function() _FZ = " .. PARAM .. " return dbm.optim.SGD({_FZ}, {lr = 0.1, momentum = 0.9}) end)()"
local APP = "dbm.npy_appender('fz_a.npy', {cols = 3})"   -- a 3-column file in the call's folder
local MOD = "dbm.nn.Linear(4, 3)"
local GPTCFG = "{vocab_size = 5, block_size = 4, n_layer = 1, n_head = 2, n_embd = 4}"
local BLOCKCFG = "{n_embd = 4, n_head = 2}"
local REC = "dbm.recorder{out_dir = 'fz_run', plots = false}"
local PROG = "dbm.progress{total = 10}"
local FN = "function() return 1 end"
-- two checkpoints of one model with steps in their metadata (a series), and a run directory's spectra
local SERIES = "(function() for s = 1, 2 do dbm.save_safetensors('fz_s' .. s .. '.safetensors', {w = dbm.randn(4, 3)}, {step = tostring(s)}) end "
  .. "return {'fz_s1.safetensors', 'fz_s2.safetensors'} end)()"
local SPECTRA = "(function() dbm.mkdir('fz_t/spectra') dbm.save_npy('fz_t/spectra/w.npy', dbm.rand(10, 3, {dtype = 'float64'}) + 1) "
  .. "dbm.save_npy('fz_t/spectra/steps.npy', dbm.arange(10)) return 'fz_t' end)()"
local SWEEP = "{grid = {{key = 'lr'}}, types = {lr = 'float'}}"
local SWEEP_ROWS = "{{['param.lr'] = 0.1, status = 'done', ['metric.loss'] = 1}}"
local function ids(r) return ("dbm.tensor({{%d, %d, %d}})"):format(r(1, 5), r(1, 5), r(1, 5)) end

local VALID = {
  ["dbm.zeros"] = function(r) return {r(0, 5), r(0, 5)} end,
  ["dbm.ones"] = function(r) return {r(0, 5), r(0, 5)} end,
  ["dbm.randn"] = function(r) return {r(0, 5), r(0, 5)} end,
  ["dbm.rand"] = function(r) return {r(0, 5), r(0, 5)} end,
  ["dbm.full"] = function(r) return {("{%d, %d}"):format(r(0, 4), r(0, 4)), "2.5"} end,
  ["dbm.arange"] = function(r) return {r(0, 3), r(4, 20), r(1, 3)} end,
  ["dbm.eye"] = function(r) return {r(0, 6)} end,
  ["dbm.tensor"] = function() return {"{{1, 2}, {3, 4}}"} end,
  ["dbm.seed"] = function(r) return {r(0, 100)} end,
  ["dbm.generator"] = function(r) return {r(0, 100), r(0, 3)} end,
  ["Generator:uniform"] = function() return {"dbm.generator(1)"} end,
  ["Generator:normal"] = function() return {"dbm.generator(1)"} end,
  ["Generator:permutation"] = function(r) return {"dbm.generator(1)", r(0, 10)} end,
  ["Generator:state"] = function() return {"dbm.generator(1)"} end,
  ["Generator:set_state"] = function() return {"dbm.generator(1)", "dbm.generator(2):state()"} end,
  ["Generator:randn"] = function(r) return {"dbm.generator(1)", r(1, 4), r(1, 4)} end,
  ["Generator:rand"] = function(r) return {"dbm.generator(1)", r(1, 4), r(1, 4)} end,
  ["dbm.size"] = function(r) return {mat(r), r(1, 2)} end,
  ["dbm.get"] = function(r) return {"dbm.randn(3, 4)", r(1, 3), r(1, 4)} end,
  ["dbm.set"] = function(r) return {"dbm.randn(3, 4)", r(1, 3), r(1, 4), "7"} end,
  ["dbm.item"] = function() return {"dbm.tensor({3})"} end,
  ["dbm.reshape"] = function() return {"dbm.randn(3, 4)", 2, 6} end,
  ["dbm.Tensor.view"] = function() return {"dbm.randn(3, 4)", 4, -1} end,
  ["dbm.transpose"] = function(r) return {"dbm.randn(2, 3, 4)", r(1, 3), r(1, 3)} end,
  ["dbm.narrow"] = function(r) return {"dbm.randn(4, 5)", r(1, 2), r(1, 3), r(0, 2)} end,
  ["dbm.select"] = function(r) return {"dbm.randn(4, 5)", r(1, 2), r(1, 4)} end,
  ["dbm.index_select"] = function(r) return {"dbm.randn(4, 5)", r(1, 2), ("{%d, %d}"):format(r(1, 4), r(1, 4))} end,
  ["dbm.Tensor.row"] = function(r) return {"dbm.randn(4, 5)", r(1, 4)} end,
  ["dbm.Tensor.col"] = function(r) return {"dbm.randn(4, 5)", r(1, 5)} end,
  ["dbm.to"] = function(r) return {mat(r), r(0, 1) == 0 and '"float32"' or '"float64"'} end,
  ["dbm.fill"] = function(r) return {mat(r), "1.5"} end,
  ["dbm.copy"] = function() return {"dbm.randn(3, 4)", "dbm.randn(4, 3)"} end,
  ["dbm.matmul"] = function(r) local n = r(1, 5); return {("dbm.randn(3, %d)"):format(n), ("dbm.randn(%d, 2)"):format(n)} end,
  ["dbm.add"] = function(r) return {"dbm.randn(3, 4)", "dbm.randn(4)"} end,
  ["dbm.sub"] = function(r) return {"dbm.randn(3, 4)", "2"} end,
  ["dbm.mul"] = function(r) return {"dbm.randn(3, 4)", "dbm.randn(3, 1)"} end,
  ["dbm.div"] = function(r) return {"dbm.randn(3, 4)", "dbm.rand(3, 4) + 1"} end,
  ["dbm.pow"] = function(r) return {"dbm.rand(3, 4)", "2"} end,
  ["dbm.maximum"] = function(r) return {"dbm.randn(3, 4)", "0"} end,
  ["dbm.minimum"] = function(r) return {"dbm.randn(3, 4)", "dbm.randn(3, 4)"} end,
  ["dbm.clamp"] = function(r) return {mat(r), "-0.5", "0.5"} end,
  ["dbm.sum"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.mean"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.var"] = function(r) return {"dbm.randn(3, 4)", r(1, 2), "{ddof = 1}"} end,
  ["dbm.max"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.min"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.argmax"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.argmin"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.norm"] = function(r) return {"dbm.randn(3, 4)", r(1, 2)} end,
  ["dbm.sort"] = function(r) return {mat(r), "{descending = true}"} end,
  ["dbm.histogram"] = function(r) return {vec(r), r(1, 5), "0", "1"} end,   -- lo = 0: a hostile hi makes a tiny range
  ["dbm.eigvalsh"] = function() return {SYM} end,
  ["dbm.eigh"] = function() return {SYM} end,
  ["dbm.load_npy"] = function() return {NPY} end,
  ["dbm.save_npy"] = function(r) return {'"fz_out.npy"', mat(r), "{dtype = 'float64'}"} end,
  ["dbm.Tensor.save"] = function(r) return {mat(r), '"fz_out.npy"'} end,
  ["dbm.json_encode"] = function() return {"{a = 1, b = {1, 2}, c = 'x'}"} end,
  ["dbm.json_decode"] = function() return {'\'{"a": [1, 2.5, null, true]}\''} end,
  ["dbm.jsonl"] = function() return {'"fz_w.jsonl"', "{append = false}"} end,
  ["Writer:write"] = function() return {"dbm.jsonl('fz_w.jsonl')", "{step = 1, loss = 0.5}"} end,
  ["Writer:close"] = function() return {"dbm.jsonl('fz_w.jsonl')"} end,
  ["dbm.set_memory_limit"] = function() return {MEMORY_LIMIT} end,
  ["dbm.load_safetensors"] = function() return {SAFE} end,
  ["dbm.save_safetensors"] = function(r) return {'"fz_out.safetensors"', "{a = dbm.randn(2, 3)}", "{k = 'v'}"} end,
  ["dbm.load_idx"] = function() return {IDX, "{limit = 2}"} end,
  ["dbm.text_dataset"] = function() return {TEXT, "{train_fraction = 0.5}"} end,
  ["dbm.Dataset.vocab_size"] = function() return {DS} end,
  ["dbm.Dataset.vocab"] = function() return {DS} end,
  ["dbm.Dataset.size"] = function() return {DS, '"train"'} end,
  ["dbm.Dataset.encode"] = function() return {DS, '"hello"'} end,
  ["dbm.Dataset.decode"] = function() return {DS, "{1, 2, 3}"} end,
  ["dbm.Dataset.batch"] = function(r) return {DS, '"train"', r(1, 3), r(1, 4)} end,
  ["dbm.fashion_mnist"] = function(r) return {'"test"', ("{limit = %d}"):format(r(1, 5))} end,
  ["dbm.parameter"] = function(r) return {mat(r), "true"} end,
  ["dbm.Tensor.requires_grad_"] = function(r) return {mat(r), "true"} end,
  ["dbm.Tensor.backward"] = function() return {"(" .. PARAM .. "):square():sum()"} end,
  ["dbm.Tensor.detach"] = function() return {PARAM} end,
  ["dbm.zero_grad"] = function() return {"{" .. PARAM .. "}", "{set_to_none = true}"} end,
  ["dbm.set_grad_enabled"] = function() return {"true"} end,
  ["dbm.no_grad"] = function() return {"function(a) return a end", "1"} end,
  ["dbm.on_exit"] = function() return {FN} end,
  ["dbm.config"] = function() return {"{lr = 0.1, n = 3, name = 'x', on = false}", "{'--lr=0.5', '--on'}"} end,
  ["dbm.find_plugin"] = function() return {'"spacing"'} end,
  ["dbm.help"] = function() return {'"eigvalsh"'} end,
  ["dbm.is_tensor"] = function(r) return {mat(r)} end,
  ["dbm.diagnostics"] = function() return {"{'spectrum', 'spacing'}", "dbm.randn(12, 8)"} end,
  ["dbm.recorder"] = function() return {"{out_dir = 'fz_run', plots = false}"} end,
  ["dbm.progress"] = function() return {"{total = 10, label = 'x'}"} end,
  ["dbm.fit_goe2"] = function() return {LEVELS} end,
  ["dbm.fit_origin"] = function() return {"dbm.arange(1, 6)", "dbm.arange(1, 6) * 2"} end,
  ["dbm.goe2_density"] = function() return {"0.3", "0", "1"} end,
  ["dbm.laws.mp_density"] = function(r) return {vec(r), "0.5", "30", "120"} end,
  ["dbm.laws.mp_cdf"] = function() return {"{20, 50, 80}", "0.5", "30", "120"} end,
  ["dbm.laws.mp_edges"] = function() return {"0.5", "30", "120"} end,
  ["dbm.laws.mp_quantile"] = function() return {"0.3", "0.5", "30", "120"} end,
  ["dbm.laws.semicircle_density"] = function(r) return {vec(r), "0", "2"} end,
  ["dbm.laws.semicircle_cdf"] = function() return {"0.7", "0", "2"} end,
  ["dbm.laws.spacing_density"] = function(r) return {vec(r), "'goe'"} end,
  ["dbm.laws.spacing_cdf"] = function() return {"0.7", "'poisson'"} end,
  ["dbm.laws.ratio_density"] = function() return {"0.4", "'gue'"} end,
  ["dbm.laws.ratio_cdf"] = function() return {"{0.1, 0.5}", "'goe'"} end,
  ["dbm.laws.ratio_mean"] = function() return {"'goe'"} end,
  ["dbm.laws.goe2_mean_spacing"] = function() return {"0.3"} end,
  ["dbm.ks_2samp"] = function() return {"dbm.randn(20)", "dbm.randn(30)"} end,
  ["dbm.ks_distance"] = function() return {"{0.1, 0.4, 0.8}"} end,
  ["dbm.ks_pvalue"] = function() return {"0.2", "30"} end,
  ["dbm.noise_temperature"] = function() return {"dbm.rand(10, 3, {dtype = 'float64'}) + dbm.tensor({1, 2, 3})", "0.1"} end,
  ["dbm.polyfit_values"] = function(r) return {"dbm.arange(8)", "dbm.randn(8)", r(0, 3)} end,
  ["dbm.powerlaw_scan"] = function() return {LEVELS, "{min_tail = 5, ks = 'powerlaw'}"} end,
  ["dbm.powerlaw_tpl"] = function() return {"{1, 1.5, 2, 4, 9}", "1", "2.5"} end,
  ["dbm.save_checkpoint"] = function() return {'"fz_ckpt.safetensors"', "{model = " .. MOD .. ", step = 3, generators = {g = dbm.generator(1)}}"} end,
  ["dbm.load_checkpoint"] = function()
    return {"(function() dbm.save_checkpoint('fz_ck.safetensors', {model = dbm.nn.Linear(4, 3)}) return 'fz_ck.safetensors' end)()",
            "{model = " .. MOD .. "}"}
  end,
  -- dbm.F
  ["dbm.F.linear"] = function() return {"dbm.randn(2, 4)", "dbm.randn(3, 4)", "dbm.randn(3)"} end,
  ["dbm.F.embedding"] = function(r) return {ids(r), "dbm.randn(5, 4)"} end,
  ["dbm.F.layer_norm"] = function() return {"dbm.randn(2, 4)", "dbm.ones(4)", "dbm.zeros(4)", "{eps = 1e-5}"} end,
  ["dbm.F.gelu"] = function() return {"dbm.randn(2, 4)", "{approximate = 'tanh'}"} end,
  ["dbm.F.softmax"] = function(r) return {mat(r)} end,
  ["dbm.F.dropout"] = function() return {"dbm.randn(2, 4)", "0.5", "{generator = dbm.generator(1)}"} end,
  ["dbm.F.cross_entropy"] = function(r) return {"dbm.randn(3, 5)", ids(r):gsub("{{", "{"):gsub("}}", "}")} end,
  ["dbm.F.causal_attention"] = function() return {"dbm.randn(1, 3, 12)", "2", "{dropout = 0}"} end,
  -- optimizers and schedules
  ["dbm.optim.SGD"] = function() return {"{" .. PARAM .. "}", "{lr = 0.1, momentum = 0.9}"} end,
  ["dbm.optim.Adam"] = function() return {"{" .. PARAM .. "}", "{lr = 0.1}"} end,
  ["dbm.optim.AdamW"] = function() return {MOD, "{lr = 0.1, weight_decay = 0.1}"} end,
  ["dbm.optim.clip_grad_norm"] = function() return {"{" .. PARAM .. "}", "1.0"} end,
  ["dbm.optim.constant"] = function() return {"0.1"} end,
  ["dbm.optim.cosine"] = function() return {"{lr = 0.1, warmup = 2, total = 10}"} end,
  ["dbm.optim.step_decay"] = function() return {"{lr = 0.1, every = 3}"} end,
  ["Optimizer:step"] = function() return {OPT} end,
  ["Optimizer:zero_grad"] = function() return {OPT} end,
  ["Optimizer:set_lr"] = function() return {OPT, "0.01", "1"} end,
  ["Optimizer:lr"] = function() return {OPT, "1"} end,
  ["Optimizer:group_lr"] = function() return {OPT, "1"} end,
  ["Optimizer:lr_metrics"] = function() return {OPT} end,
  ["Optimizer:group_count"] = function() return {OPT} end,
  ["Optimizer:step_count"] = function() return {OPT} end,
  ["Optimizer:set_step_count"] = function(r) return {OPT, r(0, 100)} end,
  ["Optimizer:parameters"] = function() return {OPT} end,
  -- The optimizer's own parameter is the second argument: the first expression leaves it in the global
  -- _FZ (arguments are evaluated left to right, here as in the reproducer; the driver clears _FZ).
  ["Optimizer:state"] = function() return {OPT_FZ, "_FZ"} end,
  ["Optimizer:load_state"] = function() return {OPT_FZ, "_FZ", "{momentum_buffer = dbm.zeros(3, 4)}"} end,
  ["Optimizer:check_state"] = function() return {OPT_FZ, "_FZ", "{momentum_buffer = dbm.zeros(3, 4)}"} end,
  ["dbm.npy_appender"] = function() return {"'fz_a.npy'", "{cols = 3}"} end,
  ["dbm.write_file"] = function() return {"'fz_f.txt'", "'some text'"} end,
  ["dbm.write_summary"] = function() return {"'.'", "{title = 't', config = {lr = 0.1}, figures = {header = {'a'}, rows = {{1}}}, notes = 'n'}"} end,
  ["dbm.NpyAppender.append"] = function() return {APP, "dbm.zeros(2, 3)"} end,
  ["dbm.NpyAppender.rows"] = function() return {APP} end,
  ["dbm.NpyAppender.truncate"] = function() return {APP, "0"} end,
  ["dbm.NpyAppender.close"] = function() return {APP} end,
  -- models
  ["dbm.models.teacher_student"] = function(r) return {("{n_data = 32, batch_size = 4, seed = %d}"):format(r(0, 9))} end,
  ["dbm.models.rbm_scalar"] = function() return {"{n = 4, batch_size = 4, seed = 1}"} end,
  ["dbm.models.dyson"] = function() return {"{n = 6, potential = 'wishart'}"} end,
  ["dbm.models.matrix_bm"] = function() return {"{rows = 4, cols = 3}"} end,
  ["dbm.models.rbm_bernoulli"] = function() return {"{data = dbm.rand(8, 6), hidden = 4, batch_size = 4, persistent = true}"} end,
  ["dbm.models.ensemble"] = function() return {'"teacher_student"', "{seeds = 3, epochs = 1, batch_size = 4}"} end,
  ["dbm.models.Model.step"] = function(r) return {TS, r(0, 50)} end,
  ["dbm.models.Model.run"] = function(r) return {TS, r(0, 50), r(1, 20), "function() end"} end,
  ["dbm.models.Model.levels"] = function() return {DYSON} end,
  ["dbm.models.Model.scalars"] = function() return {RBM} end,
  ["dbm.models.Model.info"] = function() return {TS} end,
  ["dbm.models.Model.stationary_cdf"] = function() return {DYSON, "dbm.randn(5)"} end,
  ["dbm.models.Model.reconstruction_error"] = function() return {RBM, "dbm.rand(3, 6)", "2"} end,
  ["dbm.models.Model.biases"] = function() return {RBM} end,
  ["dbm.models.Model.log_likelihood"] = function() return {RBM, "dbm.rand(3, 6):sign()"} end,
  -- nn (the classes are callable: nn.Linear(4, 3) makes one)
  ["dbm.nn.Linear"] = function(r) return {r(1, 6), r(1, 6)} end,
  ["dbm.nn.Embedding"] = function(r) return {r(1, 6), r(1, 6)} end,
  ["dbm.nn.LayerNorm"] = function(r) return {r(1, 6)} end,
  ["dbm.nn.Dropout"] = function() return {"0.1"} end,
  ["dbm.nn.GELU"] = function() return {"{approximate = 'tanh'}"} end,
  ["dbm.nn.ModuleList"] = function() return {"{dbm.nn.GELU(), dbm.nn.Linear(2, 2)}"} end,
  ["dbm.nn.Sequential"] = function() return {"{dbm.nn.Linear(4, 3), dbm.nn.GELU()}"} end,
  ["dbm.nn.CausalSelfAttention"] = function() return {BLOCKCFG} end,
  ["dbm.nn.MLP"] = function() return {BLOCKCFG} end,
  ["dbm.nn.Block"] = function() return {BLOCKCFG} end,
  ["dbm.nn.GPT"] = function() return {GPTCFG} end,
  ["dbm.nn.Module.extend"] = function() return {"dbm.nn.Module", '"Mine"'} end,
  ["dbm.nn.Module.param"] = function() return {"dbm.nn.Module:extend('M')()", '"w"', "dbm.randn(2, 2)"} end,
  ["dbm.nn.Module.child"] = function() return {"dbm.nn.Module:extend('M')()", '"c"', MOD} end,
  ["dbm.nn.Module.tie"] = function()
    return {"dbm.nn.Linear(2, 2)", '"weight"', "dbm.parameter(dbm.randn(2, 2))"}
  end,
  ["dbm.nn.Module.load_state_dict"] = function() return {MOD, "dbm.nn.Linear(4, 3):state_dict()"} end,
  ["dbm.nn.Module.named_parameters"] = function() return {MOD, '"p."'} end,
  ["dbm.nn.Module.state_dict"] = function() return {MOD, '"p."'} end,
  ["dbm.nn.Module.train"] = function() return {MOD, "false"} end,
  ["dbm.nn.Linear.forward"] = function() return {MOD, "dbm.randn(2, 4)"} end,
  ["dbm.nn.Embedding.forward"] = function(r) return {"dbm.nn.Embedding(5, 4)", ids(r)} end,
  ["dbm.nn.LayerNorm.forward"] = function() return {"dbm.nn.LayerNorm(4)", "dbm.randn(2, 4)"} end,
  ["dbm.nn.Dropout.forward"] = function() return {"dbm.nn.Dropout(0.5)", "dbm.randn(2, 4)"} end,
  ["dbm.nn.GELU.forward"] = function() return {"dbm.nn.GELU()", "dbm.randn(2, 4)"} end,
  ["dbm.nn.Sequential.forward"] = function() return {"dbm.nn.Sequential({dbm.nn.Linear(4, 3), dbm.nn.GELU()})", "dbm.randn(2, 4)"} end,
  ["dbm.nn.ModuleList.append"] = function() return {"dbm.nn.ModuleList({})", MOD} end,
  ["dbm.nn.CausalSelfAttention.forward"] = function() return {"dbm.nn.CausalSelfAttention" .. BLOCKCFG, "dbm.randn(1, 3, 4)"} end,
  ["dbm.nn.MLP.forward"] = function() return {"dbm.nn.MLP" .. BLOCKCFG, "dbm.randn(1, 3, 4)"} end,
  ["dbm.nn.Block.forward"] = function() return {"dbm.nn.Block" .. BLOCKCFG, "dbm.randn(1, 3, 4)"} end,
  ["dbm.nn.GPT.forward"] = function(r) return {"dbm.nn.GPT" .. GPTCFG, ids(r), ids(r)} end,
  ["dbm.nn.GPT.generate"] = function(r) return {"dbm.nn.GPT" .. GPTCFG, ("{%d, %d}"):format(r(1, 5), r(1, 5)), r(0, 3), "{top_k = 2}"} end,
  ["dbm.nn.GPT.check_config"] = function() return {GPTCFG} end,
  ["dbm.nn.GPT.optimizer_groups"] = function() return {"dbm.nn.GPT" .. GPTCFG, "0.1"} end,
  ["dbm.nn.GPT.num_parameters"] = function() return {"dbm.nn.GPT" .. GPTCFG, "true"} end,
  -- metamethods: t[i], t[i] = v, m.weight
  ["Tensor.metatable.__index"] = function(r) return {"dbm.randn(3, 4)", r(1, 3)} end,
  ["Tensor.metatable.__newindex"] = function(r) return {"dbm.randn(4)", r(1, 4), "0.5"} end,
  ["Model.metatable.__index"] = function() return {TS, '"weight"'} end,
  -- stats
  ["dbm.stats.ks"] = function() return {"{0.1, 0.5, 0.9}", "function(x) return x end"} end,
  ["dbm.stats.wigner_cdf"] = function() return {"0.7"} end,
  ["dbm.stats.poisson_cdf"] = function() return {"0.7"} end,
  ["dbm.stats.markdown_table"] = function() return {"{'a', 'b'}", "{{1, 2}, {3, 4}}"} end,
  -- recorder and progress objects
  ["dbm.recorder.new"] = function() return {"{out_dir = 'fz_run2', plots = false}"} end,
  ["dbm.recorder.Recorder.watch"] = function() return {REC, '"W"', "dbm.randn(6, 4)", "{every = 1, diagnostics = {'spacing'}}"} end,
  ["dbm.recorder.Recorder.step"] = function() return {REC, "1", "{loss = 0.5}"} end,
  ["dbm.recorder.Recorder.record"] = function() return {REC, "1"} end,
  ["dbm.recorder.Recorder.close"] = function() return {REC} end,
  ["dbm.progress.new"] = function() return {"{total = 5}"} end,
  ["dbm.progress.duration"] = function() return {"75.5"} end,
  ["dbm.progress.is_terminal"] = function() return {"io.stderr"} end,
  ["dbm.progress.Progress.update"] = function() return {PROG, "3", "{loss = 0.5}"} end,
  ["dbm.progress.Progress.done"] = function() return {PROG} end,
  ["dbm.progress.Progress.line"] = function() return {PROG, "true"} end,
  -- plots (gnuplot is not run: see the sandbox)
  ["dbm.plot.density"] = function() return {'"fz_plot"', LEVELS, "{mp = {sigma2 = 1, n = 10, m = 5}}"} end,
  ["dbm.plot.spacing"] = function() return {'"fz_plot"', "dbm.rand(20)"} end,
  ["dbm.plot.flow"] = function() return {'"fz_plot"', "{1, 2, 3}", "dbm.rand(3, 4)"} end,
  ["dbm.plot.series"] = function() return {'"fz_plot"', "{1, 2, 3}", "{loss = {3, 2, 1}}"} end,
  ["dbm.plot.xy"] = function() return {'"fz_plot"', "{{x = {1, 2}, y = {3, 4}, label = 'a'}}"} end,
  ["dbm.plot.marchenko_pastur"] = function() return {"1", "10", "5"} end,
  ["dbm.plot.semicircle"] = function() return {"0", "2"} end,
  ["dbm.plot.render"] = function() return {'"fz_plot"', '"1 2\\n"', '"plot \'fz_plot.dat\'\\n"'} end,
  ["dbm.plot.write_atomic"] = function() return {'"fz_atomic.txt"', '"text"'} end,
  ["dbm.plot.shell_quote"] = function() return {'"it\'s"'} end,
  -- diagnostics, checkpoint, analyze, sweep collect
  ["dbm.diagnostics.load"] = function() return {'"spacing"'} end,
  ["dbm.diagnostics.context"] = function() return {"dbm.randn(6, 4)"} end,
  ["dbm.diagnostics.run"] = function() return {"{'norms'}", "dbm.randn(6, 4)"} end,
  ["dbm.diagnostics.check"] = function() return {"{a = 1, b = dbm.zeros(2)}"} end,
  ["dbm.diagnostics.scalars"] = function() return {"{a = 1, b = dbm.zeros(2)}"} end,
  ["dbm.diagnostics.plotted"] = function() return {"{require('dbm.diagnostics').load('norms')}"} end,
  ["dbm.diagnostics.summary"] = function() return {"{require('dbm.diagnostics').load('powerlaw')}", "{{name = 'a', shape = {2, 3}, scalars = {alpha = 3}}}"} end,
  ["dbm.diagnostics.plot_model"] = function() return {"{require('dbm.diagnostics').load('powerlaw')}", "{{name = 'a', shape = {2, 3}, scalars = {alpha = 3}}}", '"fz_model"'} end,
  ["dbm.diagnostics.plugin_options"] = function() return {"{require('dbm.diagnostics').load('powerlaw')}", "{'powerlaw.min_tail=5'}"} end,
  ["dbm.diagnostics.mean_over"] = function() return {"{{scalars = {alpha = 3}}, {scalars = {}}}", '"alpha"'} end,
  ["dbm.plot.metrics"] = function() return {'"fz_plot"', "{1, 2, 3}", "{loss = {1, 0.5, 0.2}}", '"t"'} end,
  ["dbm.diagnostics.is_tensor"] = function(r) return {mat(r)} end,
  ["dbm.checkpoint.save"] = function() return {'"fz_ckpt2.safetensors"', "{model = " .. MOD .. "}"} end,
  ["dbm.analyze.main"] = function() return {"{" .. NPY .. ", '--json', '--diagnostics=norms'}"} end,
  ["dbm.analyze.parse_args"] = function() return {"{'fz.npy', '--json'}"} end,
  ["dbm.model_files.list"] = function() return {"{" .. NPY .. ", " .. SAFE .. "}", "{layers = 'w'}"} end,
  ["dbm.model_files.file_format"] = function() return {NPY} end,
  ["dbm.model_files.natural_less"] = function() return {'"h.2.w"', '"h.10.w"'} end,
  ["dbm.model_files.name_matches"] = function() return {'"h.2.attn.w"', '"h.*.attn.*"'} end,
  ["dbm.model_files.pickle_message"] = function() return {'"fz.pt"', '"a pickle"'} end,
  ["dbm.model_files.clean"] = function() return {'"[dbm] a.lua:1: dbm.f: message"'} end,
  ["dbm.analyze_output.columns"] = function() return {"{require('dbm.diagnostics').load('mp')}", "{{name = 'w', shape = {2, 2}, scalars = {mp_ks = 1}}}"} end,
  ["dbm.analyze_output.json_row"] = function() return {"{name = 'w', shape = {2, 2}, origin = 'f', scalars = {a = 1}}"} end,
  ["dbm.analyze_output.json_summary"] = function() return {"{summary = true, matrices = 1, skipped = 0, seconds = 0.1}"} end,
  ["dbm.analyze_output.shape_text"] = function() return {"{2, 3}"} end,
  ["dbm.analyze_output.csv"] = function() return {"print", "{{name = 'w', shape = {2, 2}, origin = 'f', scalars = {a = 1}}}"} end,
  ["dbm.analyze_output.print_table"] = function()
    return {"print", "{{name = 'w', shape = {2, 2}, origin = 'f', scalars = {a = 1}}}", "{}", "{summary = true, matrices = 1, skipped = 0, seconds = 0.1}",
            "{title = 't', columns = {{'A', 'a'}}, state = 0}"}
  end,
  ["dbm.analyze_output.markdown"] = function()
    return {"print", "{{name = 'w', shape = {2, 2}, origin = 'f', scalars = {a = 1}}}", "{}", "{summary = true, matrices = 1, skipped = 0, seconds = 0.1}",
            "{columns = {{'A', 'a'}}, state = 0}"}
  end,
  ["dbm.gram_levels"] = function(r) return {"{" .. mat(r) .. ", dbm.randn(5, 3)}"} end,
  ["dbm.safetensors_header"] = function() return {SAFE} end,
  -- Each argument makes the file itself: a hostile first argument leaves the others to stand alone.
  ["dbm.safetensors_tensor"] = function() return {SAFE, "dbm.safetensors_header(" .. SAFE .. ")[1]", "select(3, dbm.safetensors_header(" .. SAFE .. "))"} end,
  ["dbm.analyze.load"] = function() return {NPY} end,
  ["dbm.analyze.file_format"] = function() return {'"fz.npy"'} end,
  ["dbm.analyze.skip_reason"] = function(r) return {mat(r)} end,
  ["dbm.analyze.clean"] = function() return {'"[dbm] analyze.lua:1: dbm.load_npy: no"'} end,
  ["dbm.analyze.eprint"] = function() return {'"a message"'} end,
  ["dbm.qkv.split"] = function() return {'"h.0.attn.c_attn.weight"', "dbm.randn(12, 4)", "{}"} end,
  ["dbm.qkv.model_config"] = function() return {SAFE, "{}"} end,
  ["dbm.analyze_series.is_series"] = function() return {"{files = " .. SERIES .. "}", "require('dbm.analyze')"} end,
  ["dbm.analyze_series.checkpoints"] = function() return {"{files = " .. SERIES .. "}", "require('dbm.analyze')"} end,
  ["dbm.analyze_series.main"] = function()
    return {"{files = " .. SERIES .. ", out_dir = 'fz_series', diagnostics = {'norms'}}", "require('dbm.analyze')"}
  end,
  ["dbm.analyze_series.relaxation"] = function()
    return {"dbm.rand(10, 3, {dtype = 'float64'}) + 1", "0.1", "dbm.noise_temperature(dbm.rand(10, 3, {dtype = 'float64'}) + 1, 0.1)"}
  end,
  ["dbm.analyze_series.temperature"] = function() return {SPECTRA, '"w"'} end,
  ["dbm.analyze_series.write_summary"] = function()
    return {'"."', "{diagnostics = {'norms'}}", "{{path = 'a', step = 1}, {path = 'b', step = 2}}", "{}", "{}", '"per step"'}
  end,
  ["dbm.sweep_collect.row"] = function() return {SWEEP, '"."', "{params = {lr = '0.1'}, dir = 'p1'}"} end,
  ["dbm.sweep_collect.columns"] = function() return {SWEEP, SWEEP_ROWS} end,
  ["dbm.sweep_collect.plot"] = function() return {SWEEP, '"."', SWEEP_ROWS, '"metric.loss"', '"param.lr"'} end,
  ["dbm.plot.report"] = function() return {'"a message"'} end,
  ["dbm.sweep_collect.main"] = function() return {"{'fz_sweep'}"} end,
}

-- Self arguments of the object kinds, for the methods without their own builder.
local SELF = {
  ["dbm.Tensor."] = function(r) return mat(r) end, ["dbm.Dataset."] = function() return DS end,
  ["dbm.models.Model."] = function() return TS end, ["Generator:"] = function() return "dbm.generator(3)" end,
  ["Optimizer:"] = function() return OPT end, ["Writer:"] = function() return "dbm.jsonl('fz_w.jsonl')" end,
  ["dbm.NpyAppender."] = function() return APP end,
  ["dbm.recorder.Recorder."] = function() return REC end, ["dbm.progress.Progress."] = function() return PROG end,
  ["dbm.nn.Module."] = function() return MOD end, ["Tensor.metatable."] = function(r) return mat(r) end,
  ["Generator.metatable."] = function() return "dbm.generator(3)" end, ["Writer.metatable."] = function() return "dbm.jsonl('fz_w.jsonl')" end,
  ["Model.metatable."] = function() return TS end, ["Dataset.metatable."] = function() return DS end,
}

-- The valid arguments of a target: its builder, else a fresh object for a method, else one matrix.
local function valid_args(target, r)
  local b = VALID[target.name]
  if b then return b(r) end
  for prefix, s in pairs(SELF) do
    if target.name:sub(1, #prefix) == prefix then return {s(r)} end
  end
  -- A method of an nn class: self is an instance; init(self, ...) also takes the constructor's arguments.
  local class, method = target.name:match("^dbm%.nn%.(%u%w*)%.([%w_]+)$")
  if class and VALID["dbm.nn." .. class] then
    local a = VALID["dbm.nn." .. class](r)
    if method == "init" then   -- an instance not yet initialised, as Class(...) makes it
      return {("setmetatable({_params = {}, _children = {}, training = true}, dbm.nn.%s)"):format(class), table.unpack(a)}
    end
    return {"dbm.nn." .. class .. "(" .. table.concat(a, ", ") .. ")"}
  end
  return {mat(r)}
end

-- The argument expressions of call i (deterministic in seed and i).
local function call_args(targets, seed, i)
  local n = #targets
  local target = targets[(i - 1) % n + 1]
  local round = (i - 1) // n
  math.randomseed(seed, i)
  local function r(lo, hi) return math.random(lo, hi) end
  local function hostile()
    while true do
      local h = HOSTILE[r(1, #HOSTILE)]
      if not (LONG_BY_REQUEST[target.name] and HUGE[h]) then return h end
    end
  end
  local args, kind = valid_args(target, r), round % 10
  for k, a in ipairs(args) do args[k] = tostring(a) end
  if kind <= 5 then                        -- valid, one replaced (or one extra appended)
    local k = r(1, #args + 1)
    -- Half the time a hostile value of the same kind as the valid one (a number for a number): the
    -- checks of a number's range are only reached by a number.
    local same = args[k] and HOSTILE_OF[kind_of(args[k])]
    args[k] = (same and r(1, 2) == 1) and same[r(1, #same)] or hostile()
    if LONG_BY_REQUEST[target.name] and HUGE[args[k]] then args[k] = "-1" end
    kind = "one-hostile"
  elseif kind == 6 then
    kind = "valid"
  else                                     -- anything: hostile values and valid ones in any position
    local valid, out = args, {}
    for k = 1, r(0, 4) do out[k] = (r(1, 4) == 1 and valid[k]) or hostile() end
    args, kind = out, "random"
  end
  local count = 0
  for k in pairs(args) do count = math.max(count, k) end
  for k = 1, count do args[k] = args[k] or "nil" end
  return target, args, count, kind
end

-- One line of Lua that makes the arguments and calls the target, as the child does.
local function source(target, args, count, i)
  return ("dbm.set_memory_limit(%d); dbm.seed(%d); local f = %s; f(%s)"):format(
    MEMORY_LIMIT, i, target.expr, table.concat(args, ", ", 1, count))
end

-- ---------------------------------------------------------------- modes

local function emit(...) io.stdout:write("\1FUZZ ", table.concat({...}, " "), "\n"); io.stdout:flush() end

local targets = enumerate()
dbm.set_memory_limit(MEMORY_LIMIT)

if mode == "list" then
  for k, t in ipairs(targets) do
    print(k, t.name, VALID[t.name] and "" or "(no valid-argument builder: generic)")
  end
elseif mode == "show" then
  local seed, i = assert(math.tointeger(tonumber(arg[2]))), assert(math.tointeger(tonumber(arg[3])))
  local target, args, count = call_args(targets, seed, i)
  print(source(target, args, count, i))
elseif mode == "run" then
  local seed, first, last = math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), math.tointeger(tonumber(arg[4]))
  emit("T", #targets)
  for i = first, last do
    local target, args, count, kind = call_args(targets, seed, i)
    emit("B", i, kind)
    -- Fresh global state for every call: earlier calls may have changed the limit, the seed, grad mode.
    dbm.set_memory_limit(MEMORY_LIMIT); dbm.seed(i); dbm.set_grad_enabled(true); _FZ = nil
    local values, status, message = {}, nil, nil
    for k = 1, count do
      local f, err = load("return " .. args[k], "=arg")
      local ok, v = false, err
      if f then ok, v = pcall(f) end
      if not ok then status, message = "setup", ("argument %d (%s): %s"):format(k, args[k], tostring(v)) break end
      values[k] = v
    end
    if not status then
      local f = assert(load("return " .. target.expr))()
      local ok, err = pcall(f, table.unpack(values, 1, count))
      message = not ok and tostring(err) or nil
      if ok then status = "ok"
      elseif message:find("not enough memory", 1, true) then status = "oom"
      elseif message:find("interrupted!", 1, true) then status = "int"
      else status = "err" end
      if not over_limit and memory().peak_rss > RESIDENT_LIMIT then status, over_limit = "oom", true end
    end
    -- The message of a setup failure (a fuzzer bug), or of any error with DBM_FUZZ_VERBOSE set.
    local say = status == "setup" or (message and os.getenv("DBM_FUZZ_VERBOSE"))
    emit("E", i, status, say and (message:gsub("%s+", " "):sub(1, 200)) or "")
  end
  emit("D")
elseif mode == "canary" then
  -- Self-check of the parent: one call that dies by a signal, one that ignores Ctrl-C, one that runs
  -- out of memory, one that is fine. The shell child inherits nothing of the sandbox.
  local kind = arg[2]
  emit("T", 1)
  emit("B", 1, kind)
  local ok, err = pcall(function()
    if kind == "signal" then real_execute("kill -KILL $PPID; sleep 2")   -- (the Swift runtime survives a SIGSEGV sent by kill)
    elseif kind == "hang" then real_execute("sleep 12")               -- system() ignores SIGINT meanwhile
    -- 600 MB written once, past the library's limit lifted for it (a string.rep of that size writes
    -- 1.2 GB: it ran over the 10 s time limit once, beside the other test suites on a loaded machine)
    elseif kind == "oom" then
      dbm.set_memory_limit(1 << 40)
      return dbm.ones(75 * 1024 * 1024, {dtype = "float64"})
    end
  end)
  local over = memory().peak_rss > RESIDENT_LIMIT
  emit("E", 1, (over or not ok and tostring(err):find("not enough memory", 1, true)) and "oom" or ok and "ok" or "err")
  emit("D")
else
  io.stderr:write("usage: dbm-lua fuzz_api.lua list | run SEED FIRST LAST | show SEED I | canary KIND\n")
  real_exit(2)
end
