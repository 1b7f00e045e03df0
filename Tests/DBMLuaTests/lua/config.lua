-- dbm.config from Lua: the one type rule (config.parse), presets chosen by --preset, --resume=RUN_DIR
-- (the run's config.json, then the arguments), rules declared beside the defaults with messages naming
-- the key, and declaration errors; each error names this script's line.
local parse = require("dbm.config").parse
local function fails(part, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing: " .. part)
  assert(tostring(err):find(part, 1, true), ("expected '%s' in: %s"):format(part, tostring(err)))
  assert(tostring(err):find("config.lua:%d+:"), "the error names this script's line: " .. tostring(err))
end

-- ---------------------------------------------------------------- the type rule
assert(parse("12", "integer") == 12 and math.type(parse("1e3", "integer")) == "integer" and parse("1e3", "integer") == 1000)
assert(select(2, parse("1.5", "integer")) == "'1.5' is not an integer" and parse("abc", "integer") == nil)
assert(math.type(parse("2", "float")) == "float" and parse("2", "float") == 2.0 and parse("1e-3", "float") == 1e-3)
assert(parse("inf", "float") == nil and parse("nan", "float") == nil and select(2, parse("fast", "float")) == "'fast' is not a number")
assert(parse("yes", "boolean") == true and parse("off", "boolean") == false and select(2, parse("maybe", "boolean")) == "'maybe' is not true or false")
assert(parse("1-3", "string") == "1-3" and parse("x", "table") == nil)

-- ---------------------------------------------------------------- presets
local presets = {small = {n = 2, width = 8.0}, big = {n = 6, width = 32.0}}
local defaults = {preset = "small", seed = 1, out_dir = ""}
local cfg = dbm.config(defaults, {presets = presets, args = {}})
assert(cfg.preset == "small" and cfg.n == 2 and cfg.width == 8.0 and cfg.seed == 1 and cfg.resume == nil)
cfg = dbm.config(defaults, {presets = presets, args = {"--n=3", "--preset=big"}})
assert(cfg.preset == "big" and cfg.n == 3 and cfg.width == 32.0, "the preset is chosen first, wherever --preset stands; arguments override it")
fails("unknown preset 'huge' (expected big or small)", dbm.config, defaults, {presets = presets, args = {"--preset=huge"}})
fails("preset 'big' does not set 'depth'", dbm.config, defaults, {presets = {small = {depth = 1}, big = {}}, args = {}})
fails("defaults.preset must name one of them", dbm.config, {seed = 1}, {presets = presets, args = {}})
fails("unknown option 'preset'", dbm.config, defaults, {preset = presets, args = {}})

-- ---------------------------------------------------------------- rules
local spec = {presets = presets, rules = {
  n = {positive = true},
  width = {min = 1, below = 64},
  seed = {choices = {1, 2, 3}},
  out_dir = {check = function(d, c) return d == "/" and ("--out_dir=/ is not a run directory (n = %d)"):format(c.n) end},
}}
local function with(args) spec.args = args; return dbm.config(defaults, spec) end
assert(with({"--n=4", "--width=63.5", "--seed=3"}).width == 63.5)
fails("--n: expected a positive integer, got 0", with, {"--n=0"})
fails("--width: expected a number in [1, 64), got 64.0", with, {"--width=64"})
fails("--seed: expected one of 1, 2, 3, got 7", with, {"--seed=7"})
fails("--out_dir=/ is not a run directory (n = 2)", with, {"--out_dir=/"})
-- each key's bounds come before the custom checks, which may rely on them
spec.rules.out_dir.check = function(_, c) return 12 % c.n ~= 0 and "12 is not a multiple of --n" end
fails("--n: expected a positive integer, got 0", with, {"--n=0"})
fails("12 is not a multiple of --n", with, {"--n=5"})
fails("a rule for 'depth', which is not a key", dbm.config, defaults, {rules = {depth = {min = 1}}, args = {}})
fails("unknown option 'minimum'", dbm.config, {n = 1}, {rules = {n = {minimum = 1}}, args = {}})

-- ---------------------------------------------------------------- --resume=RUN_DIR
local dir = os.tmpname()
os.remove(dir)
dbm.mkdir(dir)
local f = assert(io.open(dir .. "/config.json", "w"))
f:write(dbm.json_encode({name = "run", config = {preset = "big", n = 5, width = 40, seed = 2, out_dir = "elsewhere",
  resume = "old", unknown = 1, seedless = true}}))
f:close()
local resumable = {presets = presets, resume = true, args = {"--resume=" .. dir, "--seed=3"}}
cfg = dbm.config(defaults, resumable)
assert(cfg.preset == "big" and cfg.n == 5 and cfg.seed == 3 and cfg.out_dir == "elsewhere" and cfg.resume == dir, dbm.json_encode(cfg))
assert(math.type(cfg.width) == "float" and cfg.width == 40.0, "a float key stays a float when config.json wrote it as 40")
assert(cfg.unknown == nil and cfg.seedless == nil, "keys the script does not declare are left out")
resumable.args = {"--resume=" .. dir .. "/nothing"}
fails("--resume=" .. dir .. "/nothing: expected a run directory with a config.json, found none", dbm.config, defaults, resumable)
f = assert(io.open(dir .. "/config.json", "w"))
f:write(dbm.json_encode({config = {preset = "gone"}}))
f:close()
resumable.args = {"--resume=" .. dir}
fails("its config.json names an unknown preset 'gone'", dbm.config, defaults, resumable)
resumable.args = {"--resume=" .. dir, "--preset=small"}
assert(dbm.config(defaults, resumable).preset == "small", "a preset given again overrides the run's")
os.remove(dir .. "/config.json")
os.remove(dir)
