-- nn.Module: the base of every layer. A module owns parameters (tensors with requires_grad) and child
-- modules, each registered under a name; their dotted paths ("h.0.attn.c_attn.weight") are the names of
-- named_parameters(), state_dict() and checkpoints, in registration order. Calling a module calls its
-- forward; train()/eval() switch the mode that dropout reads.
--
--   local Linear = nn.Module:extend("Linear")
--   function Linear:init(n_in, n_out) self:param("weight", dbm.randn(n_out, n_in, {std = 0.02})) end
--   function Linear:forward(x) return dbm.F.linear(x, self.weight) end
local dbm = require("dbm")

local Module = {}
Module.__index = Module
Module.__name = "Module"

local is_tensor = dbm.is_tensor

local fail = dbm._fail   -- errors name the script's line, however deep inside nn they are raised

-- Checks of what modules are built with: each fails naming the module, the argument and what was given.
function Module.check_size(who, what, v)
  if math.type(v) ~= "integer" or v < 1 then fail("%s: expected %s to be a positive integer, got %s", who, what, tostring(v)) end
  return v
end

-- Module.check_options(who, opts, known) -> opts ({} for nil); an unknown key fails naming the known ones.
Module.check_options = dbm._check_options

-- The keys of nanoGPT's block configuration (nn.Block, nn.CausalSelfAttention, nn.MLP; nn.GPT adds
-- vocab_size and block_size).
Module.block_keys = {"n_embd", "n_head", "n_layer", "dropout", "bias", "dtype", "generator"}

-- nanoGPT's block settings (nn.Block, nn.CausalSelfAttention, nn.GPT): the positive integers `sizes`,
-- n_embd a multiple of n_head, dropout in [0, 1).
-- Returns nil, or what is wrong.
function Module.block_config_problem(cfg, sizes)
  if type(cfg) ~= "table" then return "expected a configuration table {n_embd =, n_head =, ...}, got " .. type(cfg) end
  for _, key in ipairs(sizes) do
    local v = cfg[key]
    if math.type(v) ~= "integer" or v < 1 then
      return ("expected %s to be a positive integer, got %s"):format(key, tostring(v))
    end
  end
  if cfg.n_embd % cfg.n_head ~= 0 then
    return ("expected n_embd (%d) to be a multiple of n_head, got n_head = %d"):format(cfg.n_embd, cfg.n_head)
  end
  local p = cfg.dropout or 0
  if type(p) ~= "number" or not (p >= 0 and p < 1) then return "expected dropout in [0, 1), got " .. tostring(p) end
  return nil
end

function Module.check_block_config(who, cfg)
  if type(cfg) == "table" then Module.check_options(who, cfg, Module.block_keys) end
  -- n_layer (for the residual projections' init) is optional here, checked when given
  local sizes = (type(cfg) == "table" and cfg.n_layer ~= nil) and {"n_embd", "n_head", "n_layer"} or {"n_embd", "n_head"}
  local why = Module.block_config_problem(cfg, sizes)
  if why then fail("%s: %s", who, why) end
  return cfg
end

-- Module:extend(name) -> a new class deriving from this one. Calling the class, Class(...), makes an
-- instance and runs Class.init(self, ...).
function Module.extend(parent, name)
  if type(name) ~= "string" then fail("nn.Module:extend: argument 1 (name): expected a string, got %s", type(name)) end
  local cls = {__name = name, __tostring = Module.__tostring}
  for k, v in pairs(parent) do   -- metamethods are looked up raw: copy the parent's (__len, ...)
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__name" then cls[k] = v end
  end
  cls.__index = cls
  cls.__call = function(self, ...) return self:forward(...) end
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local self = setmetatable({_params = {}, _children = {}, training = true}, c)
      c.init(self, ...)
      return self
    end,
    __tostring = function() return "nn." .. name end,
  })
end

function Module:init() end

function Module:forward()
  fail("nn.%s: forward is not defined", getmetatable(self).__name)
end

local function check_name(self, what, name)
  if type(name) ~= "string" or name == "" or name:find("%.") then
    fail("%s:%s: argument 1 (name): expected a name without dots, got %s", getmetatable(self).__name,
      what, type(name) == "string" and ("'" .. name .. "'") or type(name))
  end
  if self[name] ~= nil then   -- a field, or a method the name would hide
    fail("%s:%s: the name '%s' is already in use", getmetatable(self).__name, what, name)
  end
end

-- self:param(name, t) -> t, registered as a parameter (requires_grad) and stored as self[name].
function Module:param(name, t)
  check_name(self, "param", name)
  if not is_tensor(t) then fail("%s:param: argument 2: expected a tensor, got %s", getmetatable(self).__name, type(t)) end
  dbm.parameter(t)
  self._params[#self._params + 1] = name
  rawset(self, name, t)
  return t
end

-- self:child(name, module) -> module, registered as a child and stored as self[name].
function Module:child(name, m)
  check_name(self, "child", name)
  if not Module.is_module(m) then fail("%s:child: argument 2: expected an nn module, got %s", getmetatable(self).__name, type(m)) end
  -- A module tree has no cycles (parameters(), state_dict() walk it): m may not be self or hold it.
  local stack, seen = {m}, {}
  while #stack > 0 do
    local node = table.remove(stack)
    if node == self then
      fail("%s:child: argument 2 ('%s'): expected a module that does not contain this one, got %s (a cycle)",
        getmetatable(self).__name, name, node == m and "the module itself" or "one that holds it")
    end
    if not seen[node] then
      seen[node] = true
      for _, child_name in ipairs(node._children or {}) do stack[#stack + 1] = rawget(node, child_name) end
    end
  end
  self._children[#self._children + 1] = name
  rawset(self, name, m)
  return m
end

function Module.is_module(x)
  local mt = getmetatable(x)
  while type(mt) == "table" do
    if mt == Module then return true end
    local up = getmetatable(mt)
    mt = up and up.__index
  end
  return false
end

-- Visits (path, tensor) for every parameter, own first, then each child's, in registration order.
-- A tensor registered under several names (tied weights, as GPT's embedding and head) is visited
-- once, under its first name, unless all_names (state_dict, load_state_dict: every name).
local function each_parameter(m, prefix, visit, all_names)
  local seen = {}
  local function walk(mod, pre)
    for _, name in ipairs(mod._params) do
      local t = mod[name]
      if all_names or not seen[t] then seen[t] = true; visit(pre .. name, t) end
    end
    for _, name in ipairs(mod._children) do walk(mod[name], pre .. name .. ".") end
  end
  walk(m, prefix)
end

-- self:tie(name, t): the parameter `name` becomes the tensor t (registered elsewhere too): one tensor,
-- one gradient, visited once by parameters(), saved under both names by state_dict().
function Module:tie(name, t)
  if not is_tensor(t) or not t.requires_grad then fail("%s:tie: argument 2: expected a parameter, got %s", getmetatable(self).__name, type(t)) end
  local have = rawget(self, name)
  local found = false
  for _, n in ipairs(self._params) do found = found or n == name end
  if not found then fail("%s:tie: expected the name of one of its parameters, got '%s'", getmetatable(self).__name, tostring(name)) end
  if table.concat(have:shape(), ",") ~= table.concat(t:shape(), ",") then
    fail("%s:tie: expected a tensor of shape (%s) for '%s', got (%s)", getmetatable(self).__name,
      table.concat(have:shape(), ", "), name, table.concat(t:shape(), ", "))
  end
  rawset(self, name, t)
  return t
end

-- for name, p in model:named_parameters([prefix [, all_names]]) do ... end (dotted names, in a stable
-- order; a tied tensor once, unless all_names)
function Module:named_parameters(prefix, all_names)
  local list = {}
  each_parameter(self, prefix or "", function(name, t) list[#list + 1] = {name, t} end, all_names)
  local i = 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

-- model:parameters() -> array of the parameter tensors (the order of named_parameters)
function Module:parameters()
  local list = {}
  each_parameter(self, "", function(_, t) list[#list + 1] = t end)
  return list
end

-- model:parameter_names() -> array of the dotted names (the order of named_parameters)
function Module:parameter_names()
  local list = {}
  each_parameter(self, "", function(name) list[#list + 1] = name end)
  return list
end

-- model:state_dict([prefix]) -> table name -> tensor (the parameters themselves, not copies)
function Module:state_dict(prefix)
  local d = {}
  each_parameter(self, prefix or "", function(name, t) d[name] = t end, true)
  return d
end

-- model:load_state_dict(tensors [, {strict=true, prefix=""}]): copies tensors[name] into each parameter
-- (same shape; converted to the parameter's dtype). strict: every parameter present, no unknown names
-- (names outside prefix are ignored).
function Module:load_state_dict(tensors, opts)
  local cls = getmetatable(self).__name
  if type(tensors) ~= "table" then fail("%s:load_state_dict: argument 1: expected a table name -> tensor, got %s", cls, type(tensors)) end
  opts = Module.check_options(cls .. ":load_state_dict", opts, {"strict", "prefix", "check_only"})
  local strict, prefix = opts.strict ~= false, opts.prefix or ""
  -- All or nothing: every entry is checked before any parameter changes.
  local known, missing, pairs_to_copy = {}, {}, {}
  each_parameter(self, prefix, function(name, p)
    known[name] = true
    local t = tensors[name]
    if t == nil then missing[#missing + 1] = name; return end
    if not is_tensor(t) then fail("%s:load_state_dict: '%s' is a %s, expected a tensor", cls, name, type(t)) end
    local ps, ts = p:shape(), t:shape()
    if table.concat(ps, ",") ~= table.concat(ts, ",") then
      fail("%s:load_state_dict: '%s': expected shape (%s), got (%s)", cls, name, table.concat(ps, ", "), table.concat(ts, ", "))
    end
    pairs_to_copy[#pairs_to_copy + 1] = {p, t}
  end, true)
  if strict then
    if #missing > 0 then fail("%s:load_state_dict: missing parameters: %s", cls, table.concat(missing, ", ")) end
    local unknown = {}
    for name in pairs(tensors) do
      if type(name) == "string" and name:sub(1, #prefix) == prefix and not known[name] then unknown[#unknown + 1] = name end
    end
    table.sort(unknown)
    if #unknown > 0 then fail("%s:load_state_dict: unexpected names: %s", cls, table.concat(unknown, ", ")) end
  end
  if opts.check_only then return self end
  for _, pt in ipairs(pairs_to_copy) do pt[1]:copy(pt[2]) end
  return self
end

-- model:num_parameters() -> the number of scalar parameters
function Module:num_parameters()
  local n = 0
  each_parameter(self, "", function(_, t) n = n + t:numel() end)
  return n
end

-- model:train([on=true]) / model:eval(): the mode of this module and every descendant; returns self
function Module:train(on)
  if on == nil then on = true end
  self.training = on
  for _, name in ipairs(self._children) do self[name]:train(on) end
  return self
end

function Module:eval() return self:train(false) end

-- model:zero_grad(): zero every parameter's gradient in place (the buffers are kept for the next backward)
function Module:zero_grad() dbm.zero_grad(self:parameters()) end

-- model:modules() -> iterator over (path, module), this module first ("")
function Module:modules()
  local list = {}
  local function walk(m, path)
    list[#list + 1] = {path, m}
    for _, name in ipairs(m._children) do walk(m[name], path == "" and name or path .. "." .. name) end
  end
  walk(self, "")
  local i = 0
  return function() i = i + 1; if list[i] then return list[i][1], list[i][2] end end
end

-- A one-line description of this module's own settings, for printing (overridden by layers).
function Module:extra_repr() return "" end

-- tostring(model): the tree of modules, as PyTorch prints it
function Module.__tostring(self)
  local function render(m, indent)
    local name, extra = getmetatable(m).__name, m:extra_repr()
    if #m._children == 0 then return name .. "(" .. extra .. ")" end
    local lines = {name .. "("}
    if extra ~= "" then lines[2] = indent .. "  " .. extra end
    for _, name in ipairs(m._children) do
      lines[#lines + 1] = indent .. "  (" .. name .. "): " .. render(m[name], indent .. "  ")
    end
    lines[#lines + 1] = indent .. ")"
    return table.concat(lines, "\n")
  end
  return render(self, "")
end

return Module
