-- dbm.write_summary: an experiment's summary.md, written from data, the same way for every experiment.
--
--   dbm.write_summary(rec.dir, {
--     title = "Teacher–student (arXiv:2407.16427)",
--     settings = "α = 0.1, |B| = 16, …",                 -- the run in words: one paragraph
--     config = cfg,                                     -- listed as the --key=value arguments of the run
--     figures = {header = {"quantity", "measured", "expected"}, rows = {{"⟨S⟩", "0.0123 ± 0.0004", "0.0125"}}},
--     notes = {"a paragraph", ...},                     -- after the figures
--     sections = {{heading = "Sample", text = ..., table = {header =, rows =}, notes = {...}, code = "..."}},
--     files = {"spectra/final.npy (seeds × 2)", "plots/final_density.png"},
--   })  -> the path of summary.md
--
-- Every field but `title` is optional. The text reads, in this order: `# title`, the settings, the
-- configuration, the figures (a Markdown table; numbers in cells as %.4g, integers whole), the notes,
-- each section (`## heading`, its text, its table, its notes, its code block), then `Files: a, b, c.`.
-- The file is written atomically; an experiment writes it before rec:close(), which writes DONE last.
-- Beside it, summary.json holds the same table: index.html renders it (S.html) with the same blocks.
local dbm = require("dbm")
local stats = require("dbm.stats")
local fail = dbm._fail

local S = {}

local known = {title = true, settings = true, config = true, figures = true, notes = true, sections = true, files = true}
local section_known = {heading = true, text = true, table = true, notes = true, code = true}

local function check_text(v, what)
  if type(v) ~= "string" then fail("dbm.write_summary: %s: expected a string, got %s", what, type(v)) end
  return v
end

-- A string or a list of strings, as a list.
local function paragraphs(v, what)
  if v == nil then return {} end
  if type(v) == "string" then return {v} end
  if type(v) ~= "table" then fail("dbm.write_summary: %s: expected a string or a list of strings, got %s", what, type(v)) end
  for i, p in ipairs(v) do check_text(p, ("%s[%d]"):format(what, i)) end
  return v
end

local function markdown_table(t, what)
  if type(t) ~= "table" or type(t.header) ~= "table" or type(t.rows) ~= "table" then
    fail("dbm.write_summary: %s: expected {header = {...}, rows = {{...}, ...}}, got %s", what, type(t))
  end
  -- a `|` inside a cell (α/|B|) would end the cell: escaped, as Markdown renders it
  local function cells(r)
    local out = {}
    for i = 1, #t.header do out[i] = type(r[i]) == "string" and r[i]:gsub("|", "\\|") or r[i] end
    return out
  end
  local rows = {}
  for i, r in ipairs(t.rows) do
    if type(r) ~= "table" then fail("dbm.write_summary: %s.rows[%d]: expected a list of cells, got %s", what, i, type(r)) end
    rows[i] = cells(r)
  end
  return stats.markdown_table(cells(t.header), rows)
end

-- The configuration as the arguments that reproduce the run: `--key=value`, keys sorted.
local function arguments(config)
  if type(config) ~= "table" then fail("dbm.write_summary: config: expected the experiment's config table, got %s", type(config)) end
  local keys = {}
  for k in pairs(config) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  local args = {}
  for _, k in ipairs(keys) do
    local v = config[k]
    local text = type(v) == "table" and dbm.json_encode(v) or tostring(v)
    if not text:match("^[%w_%.,:/+%-]*$") then text = dbm._shell_quote(text) end
    args[#args + 1] = ("--%s=%s"):format(k, text)
  end
  return table.concat(args, " ")
end

-- The blocks of one section, in order, appended to out.
local function section_blocks(sec, what, out)
  if sec.heading ~= nil then out[#out + 1] = "## " .. check_text(sec.heading, what .. ".heading") end
  for _, p in ipairs(paragraphs(sec.text, what .. ".text")) do out[#out + 1] = p end
  if sec.table ~= nil then out[#out + 1] = markdown_table(sec.table, what .. ".table") end
  for _, p in ipairs(paragraphs(sec.notes, what .. ".notes")) do out[#out + 1] = p end
  if sec.code ~= nil then out[#out + 1] = "```\n" .. check_text(sec.code, what .. ".code") .. "\n```" end
end

--- S.markdown(report) -> the text of summary.md (see the header).
function S.markdown(report)
  if type(report) ~= "table" then fail("dbm.write_summary: expected a table {title =, settings =, ...}, got %s", type(report)) end
  for k in pairs(report) do
    if not known[k] then
      fail("dbm.write_summary: unknown field '%s' (known: title, settings, config, figures, notes, sections, files)", tostring(k))
    end
  end
  local blocks = {"# " .. check_text(report.title, "title")}
  for _, p in ipairs(paragraphs(report.settings, "settings")) do blocks[#blocks + 1] = p end
  if report.config ~= nil then blocks[#blocks + 1] = "Configuration: `" .. arguments(report.config) .. "`." end
  if report.figures ~= nil then blocks[#blocks + 1] = markdown_table(report.figures, "figures") end
  for _, p in ipairs(paragraphs(report.notes, "notes")) do blocks[#blocks + 1] = p end
  if report.sections ~= nil and type(report.sections) ~= "table" then
    fail("dbm.write_summary: sections: expected a list of {heading =, text =, table =, notes =, code =}, got %s", type(report.sections))
  end
  for i, sec in ipairs(report.sections or {}) do
    local what = ("sections[%d]"):format(i)
    if type(sec) ~= "table" then fail("dbm.write_summary: %s: expected a table, got %s", what, type(sec)) end
    for k in pairs(sec) do
      if not section_known[k] then fail("dbm.write_summary: %s: unknown field '%s' (known: heading, text, table, notes, code)", what, tostring(k)) end
    end
    section_blocks(sec, what, blocks)
  end
  local files = paragraphs(report.files, "files")
  if #files > 0 then blocks[#blocks + 1] = "Files: " .. table.concat(files, ", ") .. "." end
  -- a table ends with its own newline; every block is followed by one blank line
  for i, b in ipairs(blocks) do blocks[i] = b:gsub("\n$", "") end
  return table.concat(blocks, "\n\n") .. "\n"
end

--- S.html(report) -> the summary as HTML, block for block as S.markdown writes it (text escaped, not
--- read as Markdown); the report is the table summary.json holds (checked by S.markdown when written).
function S.html(report)
  local H = require "dbm.html"
  local function paras(v) local out = {}; for _, p in ipairs(paragraphs(v, "text")) do out[#out + 1] = "<p>" .. H.text(p) .. "</p>" end; return out end
  local function tbl(t) return H.table(t.header, t.rows) end
  local blocks = {"<h2>" .. H.text(report.title) .. "</h2>"}
  for _, p in ipairs(paras(report.settings)) do blocks[#blocks + 1] = p end
  if report.config ~= nil then blocks[#blocks + 1] = "<p>Configuration: <code>" .. H.text(arguments(report.config)) .. "</code></p>" end
  if report.figures ~= nil then blocks[#blocks + 1] = tbl(report.figures) end
  for _, p in ipairs(paras(report.notes)) do blocks[#blocks + 1] = p end
  for _, sec in ipairs(report.sections or {}) do
    if sec.heading ~= nil then blocks[#blocks + 1] = "<h3>" .. H.text(sec.heading) .. "</h3>" end
    for _, p in ipairs(paras(sec.text)) do blocks[#blocks + 1] = p end
    if sec.table ~= nil then blocks[#blocks + 1] = tbl(sec.table) end
    for _, p in ipairs(paras(sec.notes)) do blocks[#blocks + 1] = p end
    if sec.code ~= nil then blocks[#blocks + 1] = "<pre>" .. H.text(sec.code) .. "</pre>" end
  end
  local files = paragraphs(report.files, "files")
  if #files > 0 then blocks[#blocks + 1] = "<p>Files: " .. H.text(table.concat(files, ", ")) .. ".</p>" end
  return table.concat(blocks, "\n")
end

--- S.write(dir, report) -> path: writes dir/summary.md and dir/summary.json (atomically).
function S.write(dir, report)
  check_text(dir, "argument 1 (the run directory)")
  local text = S.markdown(report)
  dir = dir:gsub("/+$", "")
  local path = dir .. "/summary.md"
  local ok, err = pcall(dbm.write_file, path, text)
  if not ok then fail("dbm.write_summary: cannot write %s: %s", path, (tostring(err):gsub("^.-dbm%.write_file: ", ""))) end
  local encoded, json = pcall(dbm.json_encode, report)
  if encoded then pcall(dbm.write_file, dir .. "/summary.json", json .. "\n") end
  return path
end

return S
