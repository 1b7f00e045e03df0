-- dbm.stats: the small statistics the experiments report (issue 6). The loops that need speed are in
-- Swift (dbm.ks_distance, dbm.ks_2samp, dbm.ks_pvalue, dbm.fit_goe2, dbm.fit_origin); these combine them.
--
--   local D, p = dbm.stats.wigner_ks(spacings)      -- normalised by their mean, against the Wigner surmise
--   local m, se = dbm.stats.mean(values)            -- mean and its standard error
local dbm = require("dbm")
local fail = dbm._fail

local S = {}

local function array(x, what)
  if dbm.is_tensor(x) then return x:to("float64"):contiguous():reshape(x:numel()):totable() end
  if type(x) ~= "table" then fail("%s: expected a tensor or a table of numbers, got %s", what, type(x)) end
  return x
end
S.array = array

--- S.mean(values) -> mean, standard error of the mean, standard deviation.
function S.mean(values)
  local v = array(values, "dbm.stats.mean")
  local n = #v
  if n == 0 then fail("dbm.stats.mean: expected at least one value, got none") end
  local sum = 0
  for i = 1, n do sum = sum + v[i] end
  local m = sum / n
  local ss = 0
  for i = 1, n do ss = ss + (v[i] - m) ^ 2 end
  local sd = n > 1 and math.sqrt(ss / (n - 1)) or 0
  return m, sd / math.sqrt(n), sd
end

--- S.ks(samples, cdf) -> D, p: one-sample Kolmogorov–Smirnov distance of the samples from the model CDF
--- (a function) and its asymptotic p-value.
function S.ks(samples, cdf)
  local v = array(samples, "dbm.stats.ks")
  if #v == 0 then fail("dbm.stats.ks: expected at least one sample, got none") end
  local sorted = table.move(v, 1, #v, 1, {})
  table.sort(sorted)
  local F = {}
  for i = 1, #sorted do F[i] = cdf(sorted[i]) end
  local D = dbm.ks_distance(F)
  return D, dbm.ks_pvalue(D, #sorted)
end

--- The Wigner surmise (GOE) and Poisson CDFs of spacings s of mean 1 (dbm.laws.spacing_cdf).
local spacing_cdf = dbm.laws.spacing_cdf
function S.wigner_cdf(s) return spacing_cdf(s, "goe") end
function S.poisson_cdf(s) return spacing_cdf(s, "poisson") end

--- S.normalise(spacings) -> spacings / their mean (a new table).
function S.normalise(spacings)
  local v = array(spacings, "dbm.stats.normalise")
  local m = S.mean(v)
  local out = {}
  for i = 1, #v do out[i] = v[i] / m end
  return out
end

--- S.wigner_ks(spacings) -> D, p against the Wigner surmise, after normalising the spacings to mean 1.
--- S.poisson_ks(spacings) -> D, p against Poisson e^{−s}.
function S.wigner_ks(spacings) return S.ks(S.normalise(spacings), S.wigner_cdf) end
function S.poisson_ks(spacings) return S.ks(S.normalise(spacings), S.poisson_cdf) end

--- S.markdown_table(header, rows) -> text: a Markdown table (numbers formatted with %.4g).
function S.markdown_table(header, rows)
  local function cell(x)
    if type(x) == "number" then
      if math.type(x) == "integer" then return tostring(x) end
      return ("%.4g"):format(x)
    end
    return tostring(x)
  end
  local lines = {"| " .. table.concat(header, " | ") .. " |", "|" .. string.rep("---|", #header)}
  for _, r in ipairs(rows) do
    local cells = {}
    for i = 1, #header do cells[i] = cell(r[i]) end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n") .. "\n"
end

return S
