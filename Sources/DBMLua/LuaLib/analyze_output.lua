-- dbm.analyze_output: what `dbm-lua analyze` prints: the aligned table, JSON Lines, CSV and Markdown.
--
-- A row is {name =, shape = {rows, cols}, origin = the PATH it came from, scalars = {key = number}};
-- a skipped tensor {name =, shape =, reason =}; the summary {summary = true, matrices =, skipped =,
-- seconds =, ...} (analyze fills the counts, the plugins' summary(rows) their model-level figures).
-- Every name from a file goes through dbm._printable (no control characters reach a terminal), and
-- is quoted for CSV (RFC 4180) and escaped for Markdown.
local dbm = require "dbm"

local O = {}

local function shape_text(shape)
  if not shape then return "(?)" end
  return "(" .. table.concat(shape, ", ") .. ")"
end
O.shape_text = shape_text

local function display_width(s) return utf8.len(s) or #s end

local function pad(s, width, right)
  local fill = string.rep(" ", math.max(0, width - display_width(s)))
  return right and fill .. s or s .. fill
end

local function format_value(v)
  if v == nil then return "-" end
  if type(v) == "boolean" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.floor(v) and math.abs(v) < 1e6 then return string.format("%d", v) end
  return string.format("%.4g", v)
end

--- O.columns(plugins, rows) -> {{heading, key}, ...}: the columns the plugins declare
--- (plugins/README.md), in the order of --diagnostics, that at least one row has.
function O.columns(plugins, rows)
  local columns = {}
  for _, p in ipairs(plugins) do
    for _, c in ipairs(type(p.columns) == "table" and p.columns or {}) do
      for _, r in ipairs(rows) do
        if r.scalars[c[2]] ~= nil then columns[#columns + 1] = c; break end
      end
    end
  end
  return columns
end

-- The name of a row: with several PATHs, the PATH it came from first ("PATH: name").
local function row_name(r, several)
  return dbm._printable(several and (r.origin .. ": " .. r.name) or r.name)
end

-- The cells of the table: header, then one line per row.
local function table_cells(rows, columns, several)
  local header = {"name", "shape"}
  for _, c in ipairs(columns) do header[#header + 1] = c[1] end
  local lines = {header}
  for _, r in ipairs(rows) do
    local line = {row_name(r, several), shape_text(r.shape)}
    for _, c in ipairs(columns) do line[#line + 1] = format_value(r.scalars[c[2]]) end
    lines[#lines + 1] = line
  end
  return lines
end

-- The summary's scalars as "key value" text, the counts first.
local function summary_items(summary)
  local keys = {}
  for k, v in pairs(summary) do
    if type(v) == "number" and k ~= "matrices" and k ~= "skipped" and k ~= "seconds" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local items = {}
  for _, k in ipairs(keys) do items[#items + 1] = dbm._printable(k) .. " " .. format_value(summary[k]) end
  return items
end

local function summary_line(summary)
  local head = ("%d matri%s analyzed, %d skipped, %.2f s"):format(summary.matrices, summary.matrices == 1 and "x" or "ces",
    summary.skipped, summary.seconds)
  local items = summary_items(summary)
  return #items == 0 and head or head .. "; " .. table.concat(items, ", ")
end

--- O.print_table(out, rows, skipped, summary, opts): the aligned table. out(line) prints a line;
--- opts = {title =, columns =, state = optimizer/RNG tensors left out, several = several PATHs}.
function O.print_table(out, rows, skipped, summary, opts)
  local lines = table_cells(rows, opts.columns, opts.several)
  local widths = {}
  for _, line in ipairs(lines) do
    for j, cell in ipairs(line) do widths[j] = math.max(widths[j] or 0, display_width(cell)) end
  end
  out(dbm._printable(opts.title))
  for k, line in ipairs(lines) do
    local cells = {}
    for j, cell in ipairs(line) do cells[j] = pad(cell, widths[j], j > 2) end
    out(table.concat(cells, "  "))
    if k == 1 then
      local rule = {}
      for j = 1, #line do rule[j] = string.rep("-", widths[j]) end
      out(table.concat(rule, "  "))
    end
  end
  for _, s in ipairs(skipped) do
    out(dbm._printable(("skipped %s %s: %s"):format(s.name, shape_text(s.shape), s.reason)))
  end
  if opts.state > 0 then
    out(("skipped %d optimizer/RNG state tensor%s (optim.*, rng.*)"):format(opts.state, opts.state == 1 and "" or "s"))
  end
  out("summary: " .. summary_line(summary))
end

--- O.json_row(row) -> one JSON object: name, shape, origin, then the row's numeric scalars.
function O.json_row(r)
  local record = {}
  for k, v in pairs(r.scalars) do record[k] = v end
  record.name, record.shape, record.file = r.name, r.shape, r.origin
  return dbm.json_encode(record)
end

--- O.json_summary(summary) -> the summary object {"summary": true, ...}.
function O.json_summary(summary) return dbm.json_encode(summary) end

--- O.csv(out, rows): a header line, then one line per row: name, rows, cols, file, then every numeric
--- scalar any row has (sorted by key; empty where a row lacks it).
function O.csv(out, rows)
  local seen, keys = {}, {}
  for _, r in ipairs(rows) do
    for k, v in pairs(r.scalars) do
      if type(v) == "number" and not seen[k] then seen[k] = true; keys[#keys + 1] = k end
    end
  end
  table.sort(keys)
  local header = {"name", "rows", "cols", "file"}
  for _, k in ipairs(keys) do header[#header + 1] = dbm._csv_field(k) end
  out(table.concat(header, ","))
  for _, r in ipairs(rows) do
    local line = {dbm._csv_field(r.name), tostring(r.shape[1]), tostring(r.shape[2]), dbm._csv_field(r.origin)}
    for _, k in ipairs(keys) do
      local v = r.scalars[k]
      line[#line + 1] = dbm._csv_field(v)
    end
    out(table.concat(line, ","))
  end
end

-- Markdown table cell text: | and the characters Markdown formats with escaped.
local function md_cell(s)
  return (dbm._printable(s):gsub("[|\\*_%[%]<>#]", "\\%0"))
end

--- O.markdown(out, rows, skipped, summary, opts): a Markdown table with the columns of the terminal
--- table, the skipped tensors as a list, the summary as a last line.
function O.markdown(out, rows, skipped, summary, opts)
  local lines = table_cells(rows, opts.columns, opts.several)
  for k, line in ipairs(lines) do
    local cells = {}
    for j, cell in ipairs(line) do cells[j] = md_cell(cell) end
    out("| " .. table.concat(cells, " | ") .. " |")
    if k == 1 then
      local rule = {}
      for j = 1, #line do rule[j] = j > 2 and "---:" or "---" end
      out("| " .. table.concat(rule, " | ") .. " |")
    end
  end
  if #skipped > 0 or opts.state > 0 then out("") end
  for _, s in ipairs(skipped) do out(("- skipped %s %s: %s"):format(md_cell(s.name), shape_text(s.shape), md_cell(s.reason))) end
  if opts.state > 0 then out(("- skipped %d optimizer/RNG state tensors (optim.\\*, rng.\\*)"):format(opts.state)) end
  out("")
  out("Summary: " .. md_cell(summary_line(summary)))
end

return O
