-- dbm.config: the one reader of an experiment's configuration (docs/formats.md, "Configuration").
--   defaults      the keys and their values; a key's type is its default's (integer, float, boolean, string)
--   presets       {name = {key = value}}: the key `preset` names the one that replaces defaults
--   resume        true: `--resume=RUN_DIR` starts from RUN_DIR/config.json, arguments override it
--   rules         {key = {min=, max=, above=, below=, positive=, choices=, what=, check=}}: checked last
-- Layers, each over the one before: defaults, the preset, the resumed run's configuration, `--key=value`.
-- `parse` is the one type rule of a value given as text: dbm.config uses it, the sweep asks a script to
-- check its grid with it (DBM_CONFIG_CHECK) and `sweep collect` types the grid values with it.
local dbm = require("dbm")

local C = {}

local spec_keys = {"presets", "resume", "rules", "args"}
local rule_keys = {"min", "max", "above", "below", "positive", "choices", "what", "check"}
local booleans = {["true"] = true, ["1"] = true, yes = true, on = true, ["false"] = false, ["0"] = false, no = false, off = false}

--- C.kind(v) -> the type of a config value: integer, float, boolean, string (only these can be set), or another.
function C.kind(v) return math.type(v) or type(v) end

--- C.parse(text, kind) -> the value `text` stands for in a key of type `kind`, or nil and why not.
function C.parse(text, kind)
  local n = tonumber(text)
  local finite = n ~= nil and n == n and n ~= math.huge and n ~= -math.huge
  if kind == "integer" then
    local i = finite and math.tointeger(n) or nil
    if i == nil then return nil, ("'%s' is not an integer"):format(text) end
    return i
  elseif kind == "float" then
    if not finite then return nil, ("'%s' is not a number"):format(text) end
    return n + 0.0
  elseif kind == "boolean" then
    if booleans[text] == nil then return nil, ("'%s' is not true or false"):format(text) end
    return booleans[text]
  elseif kind == "string" then
    return text
  end
  return nil, "cannot be set from the command line (its default is a " .. kind .. ")"
end

-- What a rule asks for, in words: "a positive integer", "a number in [0, 1)", "one of cpu, paper".
local function wanted(rule, v)
  if rule.what then return rule.what end
  local noun = math.type(v) == "integer" and "an integer" or "a number"
  if rule.choices then
    local names = {}
    for i, c in ipairs(rule.choices) do names[i] = tostring(c) end
    return "one of " .. table.concat(names, ", ")
  elseif rule.positive then return (noun:gsub("^an? ", "a positive ")) end
  local lo = rule.min and ("[" .. rule.min) or rule.above and ("(" .. rule.above)
  local hi = rule.max and (rule.max .. "]") or rule.below and (rule.below .. ")")
  if lo and hi then return ("%s in %s, %s"):format(noun, lo, hi) end
  if lo then return ("%s %s %s"):format(noun, rule.min and ">=" or ">", lo:sub(2)) end
  return ("%s %s %s"):format(noun, rule.max and "<=" or "<", hi:sub(1, -2))
end

-- Why v breaks the declared bounds or choices of `key` (nil when it keeps them); not the custom check,
-- which may look at the other keys.
local function rule_problem(key, v, rule)
  if rule == nil then return nil end
  local ok = (rule.min == nil or v >= rule.min) and (rule.max == nil or v <= rule.max)
    and (rule.above == nil or v > rule.above) and (rule.below == nil or v < rule.below)
    and (not rule.positive or v > 0)
  if ok and rule.choices then
    ok = false
    for _, c in ipairs(rule.choices) do ok = ok or c == v end
  end
  if ok then return nil end
  return ("--%s: expected %s, got %s"):format(key, wanted(rule, v), tostring(v))
end

-- The declaration: spec's options, the preset key and every preset's keys, the rules' keys and fields.
local function check_declaration(defaults, spec)
  if type(defaults) ~= "table" then dbm._fail("dbm.config: argument 1 (defaults): expected a table of defaults, got %s", type(defaults)) end
  dbm._check_options("dbm.config", spec, spec_keys)
  local keys = {}
  for k in pairs(defaults) do keys[k] = true end
  if spec.resume then keys.resume = true end
  if spec.presets then
    if spec.presets[defaults.preset] == nil then
      dbm._fail("dbm.config: with presets, defaults.preset must name one of them, got %s", tostring(defaults.preset))
    end
    for _, p in pairs(spec.presets) do for k in pairs(p) do keys[k] = true end end
    for name, p in pairs(spec.presets) do
      for k in pairs(keys) do
        if defaults[k] == nil and p[k] == nil and not (k == "resume" and spec.resume) then
          dbm._fail("dbm.config: preset '%s' does not set '%s' (a key without a default is set by every preset)", name, k)
        end
      end
    end
  end
  for k, rule in pairs(spec.rules or {}) do
    if not keys[k] then dbm._fail("dbm.config: a rule for '%s', which is not a key", tostring(k)) end
    dbm._check_options("dbm.config: the rule of '" .. k .. "'", rule, rule_keys)
  end
end

-- The rules with the preset key's choices added (the names of the presets).
local function all_rules(spec)
  local rules = {}
  for k, r in pairs(spec.rules or {}) do rules[k] = r end
  rules.plot_every_s = rules.plot_every_s or {positive = true}
  if spec.presets then
    local names = {}
    for name in pairs(spec.presets) do names[#names + 1] = name end
    table.sort(names)
    rules.preset = setmetatable({choices = names}, {__index = rules.preset})
  end
  return rules
end

local function layer(cfg, values) for k, v in pairs(values or {}) do cfg[k] = v end; return cfg end

-- The defaults with the named preset over them (and `resume` when declared).
-- Keys every experiment understands, read by its recorder (dbm.recorder{config = cfg}): whether it draws
-- plots, the seconds between plot refreshes while it runs, and whether it writes TensorBoard event files.
C.shared = {plots = true, plot_every_s = 60.0, tensorboard = true}

local function base(defaults, spec, preset)
  local cfg = layer({}, C.shared)
  layer(cfg, defaults)
  if spec.resume then cfg.resume = cfg.resume or "" end
  return layer(cfg, spec.presets and spec.presets[preset])
end

-- The configuration RUN_DIR/config.json was started with.
local function run_config(dir)
  local f = io.open(dir .. "/config.json")
  if not f then dbm._fail("--resume=%s: expected a run directory with a config.json, found none", dir) end
  local ok, o = pcall(dbm.json_decode, f:read("a"))
  f:close()
  if not ok or type(o) ~= "table" then dbm._fail("--resume=%s: its config.json is not JSON", dir) end
  return type(o.config) == "table" and o.config or {}
end

-- The resumed run's values over cfg: the keys cfg has, of the same type (a whole float stays a float).
local function layer_resumed(cfg, original)
  for k, v in pairs(original) do
    local kind = C.kind(cfg[k])
    if type(v) == type(cfg[k]) and k ~= "resume" then
      cfg[k] = kind == "integer" and math.tointeger(v) or kind == "float" and v + 0.0 or v
    end
  end
end

-- The last --preset= and --resume= among args: they decide the layers under the other arguments.
local function scan(args)
  local preset, resume
  for _, a in ipairs(args) do
    if type(a) == "string" then
      preset = a:match("^%-%-preset=(.*)$") or preset
      resume = a:match("^%-%-resume=(.+)$") or resume
    end
  end
  return preset, resume
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function known_list(cfg)
  local parts = {}
  for _, k in ipairs(sorted_keys(cfg)) do parts[#parts + 1] = k .. "=" .. tostring(cfg[k]) end
  return table.concat(parts, ", ")
end

local function print_help(cfg, spec)
  print("configuration keys (set with --key=value):\n  " .. known_list(cfg):gsub(", ", "\n  "))
  if spec.presets then print("presets (--preset=NAME): " .. table.concat(sorted_keys(spec.presets), ", ")) end
  if spec.resume then print("--resume=RUN_DIR: start from RUN_DIR/config.json (arguments override it)") end
  os.exit(0)
end

-- One argument `--key=value` (or a bare `--key` for a boolean) onto cfg; `defaults` gives the types.
local function apply(cfg, a, spec)
  local key, value = a:match("^%-%-([^=]+)=(.*)$")
  key = key or a:sub(3)
  if key == "help" and cfg.help == nil then print_help(cfg, spec) end
  if cfg[key] == nil then dbm._fail("dbm.config: unknown key '%s' in '%s' (known keys: %s)", key, a, known_list(cfg)) end
  if value == nil then
    if type(cfg[key]) ~= "boolean" then dbm._fail("dbm.config: key '%s' needs a value: --%s=<%s>", key, key, type(cfg[key])) end
    value = "true"
  end
  local v, why = C.parse(value, C.kind(cfg[key]))
  if v == nil then dbm._fail("dbm.config: --%s: %s (default is %s; known keys: %s)", key, why, tostring(cfg[key]), known_list(cfg)) end
  cfg[key] = v
end

--- C.check_value(cfg, spec, key, text) -> nil, or why `text` is not a value of `key`: its type and
--- its declared bounds or choices (not a custom check, which may look at the other keys).
function C.check_value(cfg, spec, key, text)
  if cfg[key] == nil then return ("unknown key '%s'"):format(key) end
  local v, why = C.parse(text, C.kind(cfg[key]))
  if v == nil then return ("--%s: %s"):format(key, why) end
  return rule_problem(key, v, all_rules(spec)[key])
end

-- DBM_CONFIG_JSON=FILE (or -): {defaults, types, problems} as one JSON line, and exit 0. `problems`
-- answers DBM_CONFIG_CHECK=FILE2, a JSON list of [key, text] pairs (the sweep's grid): for each, why
-- it is not a value of its key, or "" when it is.
local function describe_and_exit(cfg, spec, dump)
  local types, problems = {}, {}
  for k, v in pairs(cfg) do types[k] = C.kind(v) end
  local check = os.getenv("DBM_CONFIG_CHECK")
  if check and check ~= "" then
    local f = assert(io.open(check))
    for i, pair in ipairs(dbm.json_decode(f:read("a"))) do problems[i] = C.check_value(cfg, spec, pair[1], pair[2]) or "" end
    f:close()
  end
  local text = dbm.json_encode({defaults = cfg, types = types, problems = problems}) .. "\n"
  if dump == "-" then io.stdout:write(text); io.stdout:flush()
  else
    local f = assert(io.open(dump, "w")); f:write(text); f:close()
  end
  os.exit(0)
end

--- C.read(defaults [, spec | args]) -> the configuration: see the top of this file.
function C.read(defaults, spec)
  if type(spec) == "table" and (spec[1] ~= nil or next(spec) == nil) then spec = {args = spec} end
  spec = spec or {}
  check_declaration(defaults, spec)
  local args = spec.args or _G.arg or {}
  local dump = os.getenv("DBM_CONFIG_JSON")
  if dump and dump ~= "" then describe_and_exit(base(defaults, spec, defaults.preset), spec, dump) end
  local asked, resume = scan(args)
  local original = spec.resume and resume and run_config(resume)
  local preset = asked or original and original.preset or defaults.preset
  local rules = all_rules(spec)
  if spec.presets and not spec.presets[preset] then
    if not asked then dbm._fail("--resume=%s: its config.json names an unknown preset '%s'", resume, tostring(preset)) end
    dbm._fail("unknown preset '%s' (expected %s)", tostring(preset), table.concat(rules.preset.choices, " or "))
  end
  local cfg = base(defaults, spec, preset)
  if original then layer_resumed(cfg, original) end
  for _, a in ipairs(args) do
    if type(a) == "string" and a:sub(1, 2) == "--" then apply(cfg, a, spec) end
  end
  -- Each key's bounds and choices first, so that a custom check may rely on the other keys' own rules.
  for _, key in ipairs(sorted_keys(rules)) do
    local why = rule_problem(key, cfg[key], rules[key])
    if why then dbm._fail("%s", why) end
  end
  for _, key in ipairs(sorted_keys(rules)) do
    local why = rules[key].check and rules[key].check(cfg[key], cfg)
    if why then dbm._fail("%s", why) end
  end
  return cfg
end

return C
