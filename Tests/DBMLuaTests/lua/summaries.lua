-- dbm.write_summary: an experiment's summary.md from data (a title, the settings, the configuration, a
-- table of figures, notes, sections, files), the same layout for every experiment; bad reports are
-- errors at the caller's line.
local tmp = os.tmpname(); os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local function read(path) local f = assert(io.open(path, "rb")); local t = f:read("a"); f:close(); return t end
local function throws(f, ...)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  err = tostring(err)
  for _, part in ipairs({...}) do assert(err:find(part, 1, true), ("error message %q lacks %q"):format(err, part)) end
  return err
end
local this_file = debug.getinfo(1, "S").short_src:match("[^/]+$")

-- Every field, in the order the text has them; numbers in cells as stats.markdown_table writes them.
local path = dbm.write_summary(tmp .. "/", {
  title = "Teacher–student",
  settings = "α = 0.1, |B| = 16.",
  config = {lr = 0.1, batch_size = 16, persistent = false, data = "", note = "two words"},
  figures = {header = {"quantity", "measured", "expected"}, rows = {{"⟨S⟩", 0.0123456, "∝ α/|B|"}, {"seeds", 600, 600}}},
  notes = {"First note.", "Second note."},
  sections = {
    {heading = "Two-sample KS tests", text = "Between final spacings:", table = {header = {"D", "p"}, rows = {{0.05, "0.3"}}},
     notes = "No pair differs."},
    {heading = "Sample", code = "To be,\nor not"},
  },
  files = {"spectra/final.npy (seeds × 2)", "plots/final_density.png"},
})
assert(path == tmp .. "/summary.md", path)
local expected = table.concat({
  "# Teacher–student",
  "",
  "α = 0.1, |B| = 16.",
  "",
  "Configuration: `--batch_size=16 --data= --lr=0.1 --note='two words' --persistent=false`.",
  "",
  "| quantity | measured | expected |",
  "|---|---|---|",
  "| ⟨S⟩ | 0.01235 | ∝ α/\\|B\\| |",
  "| seeds | 600 | 600 |",
  "",
  "First note.",
  "",
  "Second note.",
  "",
  "## Two-sample KS tests",
  "",
  "Between final spacings:",
  "",
  "| D | p |",
  "|---|---|",
  "| 0.05 | 0.3 |",
  "",
  "No pair differs.",
  "",
  "## Sample",
  "",
  "```",
  "To be,",
  "or not",
  "```",
  "",
  "Files: spectra/final.npy (seeds × 2), plots/final_density.png.",
  "",
}, "\n")
local text = read(path)
assert(text == expected, "summary.md:\n" .. text .. "\nexpected:\n" .. expected)

-- Only the title is required; a second write replaces the file whole.
dbm.write_summary(tmp, {title = "Short"})
assert(read(tmp .. "/summary.md") == "# Short\n", read(tmp .. "/summary.md"))

-- Bad reports: errors naming the field, at this file's line.
throws(function() dbm.write_summary(tmp, {}) end, this_file, "dbm.write_summary: title: expected a string, got nil")
throws(function() dbm.write_summary(tmp, {title = "x", figure = {}}) end, this_file, "unknown field 'figure'")
throws(function() dbm.write_summary(tmp, {title = "x", figures = {rows = {}}}) end, this_file, "figures: expected {header = {...}, rows =")
throws(function() dbm.write_summary(tmp, {title = "x", figures = {header = {"a"}, rows = {1}}}) end, this_file, "figures.rows[1]: expected a list of cells")
throws(function() dbm.write_summary(tmp, {title = "x", notes = {"a", 2}}) end, this_file, "notes[2]: expected a string, got number")
throws(function() dbm.write_summary(tmp, {title = "x", sections = {{heading = "h", txt = "t"}}}) end, this_file, "sections[1]: unknown field 'txt'")
throws(function() dbm.write_summary(tmp, {title = "x", config = 3}) end, this_file, "config: expected the experiment's config table")
throws(function() dbm.write_summary(42, {title = "x"}) end, this_file, "argument 1 (the run directory): expected a string")
throws(function() dbm.write_summary(tmp .. "/missing/dir", {title = "x"}) end, this_file, "cannot write " .. tmp .. "/missing/dir/summary.md")
assert(read(tmp .. "/summary.md") == "# Short\n", "a failed write leaves the file as it was")

os.execute("rm -rf " .. tmp)
print("summaries.lua: all checks passed")
