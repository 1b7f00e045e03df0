-- dbm.plot: figures of spectra through gnuplot (Debian gnuplot-nox; scripts/setup installs it).
--
-- Each function takes a base path without extension, writes BASE.dat (plain text columns, blocks
-- separated by two blank lines, a '#' header naming the columns) and BASE.gp (a gnuplot script that
-- reads BASE.dat by its file name, so the pair can be moved and re-run by hand: `gnuplot BASE.gp`),
-- then runs gnuplot in BASE's folder to make BASE.png (pngcairo, or png where cairo is missing) and
-- BASE.svg. It returns the list of files written. Without gnuplot it says so once on stderr and
-- leaves the data and scripts; a gnuplot failure is reported on stderr and never raises.
--
--   P.density(base, levels | {levels1, levels2, ...}, {labels=, mp=, semicircle=, curves=, title=, xlabel=, bins=, logy=, clip=true})
--   P.spacing(base, spacings, {title=, bins=})
--   P.flow(base, steps, levels_by_step, {title=, ylabel=, max_lines=200, logy=auto, hlines=})
--   P.series(base, steps, {name = values, ...}, {title=, logy=, ylabel=, hlines=, panels=})
--   P.metrics(base, steps, {name = values, ...}, title)
--   P.xy(base, {{x=, y=, err=, label=}, ...}, {title=, xlabel=, ylabel=, logx=, logy=, lines=})
--   P.batch(f, {svg=true})   the plots f renders, drawn at its end by one gnuplot process per folder
-- An option table with a key not listed here (or in the option records mp, semicircle, curves, panels,
-- lines) is an error naming the known keys.
-- Levels and values are Lua arrays or tensors; a nil or non-finite value is a missing point.
local dbm = require "dbm"

local P = {}

P.gnuplot = "gnuplot"      -- the command run (a test may point it elsewhere)
P.width, P.height = 960, 640
P.font = "DejaVu Sans,12"
P.report = function(msg) io.stderr:write(msg, "\n") end

local is_tensor = dbm.is_tensor
local check_options = dbm._check_options   -- an unknown option is an error naming the known ones

-- ---------------------------------------------------------------- files and gnuplot

local shell_quote = dbm._shell_quote
-- Text for gnuplot, the one way names and titles reach its scripts: a single-quoted string, inside which
-- gnuplot expands nothing (no `command` substitution, no @macros, no backslash escapes) and a doubled
-- quote is a quote; the control characters that could end the line (and backquotes) become \xNN text.
local function gp_quote(s) return "'" .. dbm._printable(s):gsub("'", "''") .. "'" end
P.shell_quote = shell_quote

local function split_path(base)
  local dir, name = base:match("^(.*)/([^/]+)$")
  if not dir then return ".", base end
  return dir == "" and "/" or dir, name
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close(); return true end
  return false
end

-- Writes text to path through a temporary file and a rename, so a reader never sees half a file.
local function write_atomic(path, text)
  local ok, err = pcall(dbm.write_file, path, text)
  if not ok then error("dbm.plot: " .. tostring(err):gsub("^.-dbm%.write_file: ", ""), 0) end
end
P.write_atomic = write_atomic

local function ensure_dir(dir)
  if not os.rename(dir, dir) then dbm.mkdir(dir) end
end

local probed, available, png_terminal, warned = nil, false, "png", false

-- Whether gnuplot runs here, and which PNG terminal it has (checked once per command).
function P.available()
  if probed ~= P.gnuplot then
    probed = P.gnuplot
    available = os.execute("command -v " .. shell_quote(P.gnuplot) .. " >/dev/null 2>&1") == true
    if available then
      local f = io.popen(shell_quote(P.gnuplot) .. " -e 'set terminal' 2>&1")
      local text = f and f:read("a") or ""
      if f then f:close() end
      png_terminal = text:find("pngcairo", 1, true) and "pngcairo" or "png"
    end
  end
  return available
end

local function format_number(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return "NaN" end
  return ("%.10g"):format(v)
end

local function terminal(kind, height)
  if kind == "png" then
    local font = png_terminal == "pngcairo" and (" font " .. gp_quote(P.font)) or ""
    return ("set terminal %s size %d,%d noenhanced%s\n"):format(png_terminal, P.width, height, font)
  end
  return ("set terminal svg size %d,%d noenhanced font %s background rgb 'white'\n"):format(P.width, height, gp_quote(P.font))
end

-- One terminal's half of a plot script. It draws into `out` when the caller set it (a temporary name,
-- renamed when whole), else into NAME.png / NAME.svg. `reset`, not `reset session`: that also deletes
-- the variables, `out` among them, and the SVG would be drawn in place.
local function script_pass(kind, name, height, body)
  return terminal(kind, height)
    .. ("set output (exists('out') ? out : %s) . '.%s'\n"):format(gp_quote(name), kind)
    .. "reset\nset datafile missing NaN\nset encoding utf8\n" .. body .. "unset multiplot\nunset output\n"
end

-- While P.batch runs its function, the plots are queued here and drawn at its end.
local queue = nil

-- The drawn temporaries of a plot (.NAME.tmp.KIND in its folder) renamed over BASE.KIND when gnuplot
-- succeeded, else removed; the images that exist are added to `files`. A plot drawn as PNG alone
-- loses its SVG of an earlier drawing, so that no page links a picture older than the PNG.
local function take_drawn(dir, name, base, kinds, ok, files)
  for _, kind in ipairs(kinds) do
    local drawn = dir .. "/." .. name .. ".tmp." .. kind
    if ok and exists(drawn) then os.rename(drawn, base .. "." .. kind) else os.remove(drawn) end
  end
  if #kinds == 1 then os.remove(base .. ".svg") end
  for _, kind in ipairs({"png", "svg"}) do
    if exists(base .. "." .. kind) then files[#files + 1] = base .. "." .. kind end
  end
  return files
end

-- Runs gnuplot in dir with the (shell-quoted) arguments; its success and its messages.
local function run_gnuplot(dir, args)
  local pipe = io.popen(("cd %s && %s %s 2>&1"):format(shell_quote(dir), shell_quote(P.gnuplot), args))
  local out = pipe:read("a")
  return pipe:close() == true, out
end

-- gnuplot draws into temporary names in the same folder (the script's `out`), renamed when complete:
-- a viewer (or index.html) never sees half a PNG, and the previous plot stays until the new one is whole.
local function draw_one(dir, name, base, files)
  local ok, out = run_gnuplot(dir, "-e " .. shell_quote("out = " .. gp_quote("." .. name .. ".tmp")) .. " " .. shell_quote("./" .. name .. ".gp"))
  if not ok then P.report(("dbm.plot: gnuplot failed on %s.gp: %s"):format(base, (out:gsub("%s+$", "")))) end
  return take_drawn(dir, name, base, {"png", "svg"}, ok, files)
end

-- Draws the queued plots of one folder with one gnuplot process, on one script made of theirs (the
-- PNG half alone unless svg), each followed by a line that says it is done. gnuplot stops at the first
-- error: the plots not done are then drawn one process each, which reports the failing one's error.
local function draw_queued(dir, plots, svg)
  local kinds = svg and {"png", "svg"} or {"png"}
  local parts = {}
  for i, p in ipairs(plots) do
    parts[i] = ("out = %s\n%sprint 'dbm-plot-done %d'\n"):format(gp_quote("." .. p.name .. ".tmp"), svg and p.png .. p.svg or p.png, i)
  end
  local path = os.tmpname()
  local written = pcall(dbm.write_file, path, table.concat(parts))
  local ok, out = false, ""
  if written then ok, out = run_gnuplot(dir, shell_quote(path)) end
  os.remove(path)
  local done = {}
  for i in out:gmatch("dbm%-plot%-done (%d+)") do done[tonumber(i)] = true end
  for i, p in ipairs(plots) do
    if ok or done[i] then take_drawn(dir, p.name, p.base, kinds, true, {})
    else
      take_drawn(dir, p.name, p.base, kinds, false, {})
      draw_one(dir, p.name, p.base, {})
      if not svg then os.remove(p.base .. ".svg") end
    end
  end
end

--- P.batch(f, {svg = true}): runs f(); the plots it renders are drawn at its end by one gnuplot process
--- per folder (a refresh of a small nano-GPT run, 105 plots: 1.8 s of CPU, against 4.2 s one process
--- each). svg = false draws the PNG files alone (the scripts still make both). Errors of f are raised
--- after the plots rendered before them are drawn.
function P.batch(f, opts)
  if type(f) ~= "function" then dbm._fail("dbm.plot.batch: expected a function, got %s", dbm.is_tensor(f) and "a tensor" or type(f)) end
  opts = check_options("dbm.plot.batch", opts, {"svg"})
  if queue then return f() end   -- inside another batch: part of it
  queue = {}
  local ok, err = pcall(f)
  local plots
  plots, queue = queue, nil
  local folders, order = {}, {}
  for _, p in ipairs(plots) do
    if not folders[p.dir] then folders[p.dir] = {}; order[#order + 1] = p.dir end
    table.insert(folders[p.dir], p)
  end
  for _, dir in ipairs(order) do draw_queued(dir, folders[dir], opts.svg ~= false) end
  if not ok then error(err, 0) end
end

-- Writes BASE.dat and BASE.gp and renders BASE.png and BASE.svg (queued while P.batch runs). `body` is
-- the plot commands, run once per terminal.
local function render(base, data, body, height)
  local dir, name = split_path(base)
  -- The file names gnuplot opens are BASE.dat, .png, .svg in its folder: plain names only (a name
  -- starting with '<' or '|' would be a command to gnuplot; a quote or a control character, a broken script).
  if name == "" or name:find("[%c'\"`\\]") or name:find("^[<|%-]") then
    error(("dbm.plot: expected a plot name without quotes, backslashes or control characters, not starting with '<', '|' or '-', got '%s'")
      :format(dbm._printable(name)), 0)
  end
  ensure_dir(dir)
  height = height or P.height
  local have_gnuplot = P.available()   -- also picks the PNG terminal the script names
  write_atomic(base .. ".dat", data)
  local png, svg = script_pass("png", name, height, body), script_pass("svg", name, height, body)
  write_atomic(base .. ".gp", "# gnuplot script written by dbm-lua; run in this folder: gnuplot " .. name .. ".gp\n" .. png .. svg)
  local files = {base .. ".dat", base .. ".gp"}
  if not have_gnuplot then
    if not warned then
      warned = true
      P.report(("dbm.plot: gnuplot not found (%s): the plot data and scripts are in %s; install gnuplot-nox and run `gnuplot NAME.gp` there")
        :format(P.gnuplot, dir))
    end
    return files
  end
  if queue then
    queue[#queue + 1] = {dir = dir, name = name, base = base, png = png, svg = svg}
    return files
  end
  return draw_one(dir, name, base, files)
end
P.render = render

-- ---------------------------------------------------------------- data helpers

local function to_array(v, what)
  if is_tensor(v) then return v:to("float64"):contiguous():reshape(v:numel()):totable() end
  if type(v) == "table" then return v end
  error(("dbm.plot: %s: expected a tensor or an array of numbers, got %s"):format(what, type(v)), 3)
end

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

local function finite_values(values)
  local out = {}
  for i = 1, #values do if finite(values[i]) then out[#out + 1] = values[i] end end
  return out
end

-- Histogram as a density on [lo, hi]: rows "centre density width", normalised by the full count n
-- (levels outside the range lower the area below 1 rather than bend the shape).
local function density_rows(values, lo, hi, bins)
  local counts = {}
  for b = 1, bins do counts[b] = 0 end
  local width = (hi - lo) / bins
  for _, x in ipairs(values) do
    if x >= lo and x <= hi then
      local b = math.min(bins, math.floor((x - lo) / width) + 1)
      counts[b] = counts[b] + 1
    end
  end
  local rows, peak = {}, 0
  for b = 1, bins do
    local d = counts[b] / (#values * width)
    peak = math.max(peak, d)
    rows[b] = ("%s %s %s"):format(format_number(lo + (b - 0.5) * width), format_number(d), format_number(width))
  end
  return table.concat(rows, "\n"), peak
end

local function curve_rows(f, lo, hi, points)
  local rows = {}
  for i = 0, points do
    local x = lo + (hi - lo) * i / points
    rows[#rows + 1] = format_number(x) .. " " .. format_number(f(x))
  end
  return table.concat(rows, "\n")
end

local function default_bins(n)
  return math.max(10, math.min(80, math.floor(1.5 * math.sqrt(n) + 0.5)))
end

local function list_of(x)
  if x == nil or next(x) == nil then return {} end
  if x[1] ~= nil then return x end
  return {x}
end

local palette = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"}
P.palette = palette

-- The theory curves as (density function, lower edge, upper edge); the laws are dbm.laws' (DBMCore/Laws.swift).
local laws = dbm.laws

-- Marchenko–Pastur density of the eigenvalues of WᵀW (W of n×m iid entries of variance σ²; levels of
-- the smaller Gram matrix): ρ(x) = √((x₊ − x)(x − x₋)) / (2π σ² N q x), x± = N σ² (1 ± √q)² (DESIGN §2).
function P.marchenko_pastur(sigma2, n, m)
  local lo, hi = laws.mp_edges(sigma2, n, m)
  return function(x) return laws.mp_density(x, sigma2, n, m) end, lo, hi
end

-- Wigner semicircle ρ(x) = (2/(πR²)) √(R² − (x − κ)²).
function P.semicircle(center, radius)
  return function(x) return laws.semicircle_density(x, center, radius) end, center - radius, center + radius
end

-- ---------------------------------------------------------------- the figures

-- The right end of the bulk axis: a little beyond the largest level inside Tukey's far fence Q3 + 3·IQR
-- of the pooled levels, and beyond the theory curves; hi (no cut) when no level lies further.
local function bulk_edge(sets, curves, lo, hi)
  local pooled = {}
  for _, set in ipairs(sets) do table.move(set, 1, #set, #pooled + 1, pooled) end
  if #pooled < 4 then return hi end
  table.sort(pooled)
  local q1, q3 = pooled[math.max(1, math.floor(0.25 * #pooled))], pooled[math.ceil(0.75 * #pooled)]
  local fence, edge = q3 + 3 * (q3 - q1), lo
  for _, x in ipairs(pooled) do if x <= fence then edge = x end end
  for _, c in ipairs(curves) do edge = math.max(edge, c.hi) end
  local cut = edge + 0.08 * (edge - lo)
  return cut < hi and cut or hi
end

-- The lower panel of a density with outliers: each set as a density of log10 λ (step lines) when the levels
-- are positive, else of λ, over the full range; the outliers marked at the bottom. Returns data blocks and
-- the gnuplot commands; the blocks are numbered from `first_index`.
local function full_range_panel(sets, labels, outliers, lo, hi, cut, first_index, datafile, xlabel)
  local logx = lo > 0
  local a, b = logx and math.log(lo, 10) or lo, logx and math.log(hi, 10) or hi
  local bins = 60
  local width = (b - a) / bins
  local blocks, plots = {}, {}
  for i, set in ipairs(sets) do
    local counts = {}
    for k = 1, bins do counts[k] = 0 end
    for _, x in ipairs(set) do
      local u = logx and math.log(x, 10) or x
      local k = math.min(bins, math.max(1, math.floor((u - a) / width) + 1))
      counts[k] = counts[k] + 1
    end
    local rows = {("# set %d, full range: left edge of the bin, density of %s\n"):format(i, logx and "log10 level" or "level")}
    for k = 1, bins + 1 do
      local edge = a + (k - 1) * width
      rows[#rows + 1] = ("%s %s\n"):format(format_number(logx and 10 ^ edge or edge), format_number((counts[math.min(k, bins)]) / (#set * width)))
    end
    blocks[#blocks + 1] = table.concat(rows)
    plots[#plots + 1] = ("%s index %d using 1:2 with steps lw 2 lc rgb '%s' title %s"):format(
      #plots == 0 and gp_quote(datafile) or "''", first_index + i - 1, palette[(i - 1) % #palette + 1],
      gp_quote(labels[i] or ("%d levels"):format(#set)))
  end
  local marks = {"# outliers (beyond the bulk axis)\n"}
  for _, x in ipairs(outliers) do marks[#marks + 1] = format_number(x) .. " 0\n" end
  if #outliers == 0 then marks[2] = "NaN NaN\n" end
  blocks[#blocks + 1] = table.concat(marks)
  plots[#plots + 1] = ("'' index %d using 1:2 with points pt 9 ps 1.6 lc rgb 'black' title %s"):format(
    first_index + #sets, gp_quote(("outliers (%d)"):format(#outliers)))
  local body = ("set title 'all levels%s'\nset xlabel %s\nset ylabel %s\nset key top right\nset grid\n"):format(
      logx and ", log axis" or "", gp_quote(xlabel .. (logx and " (log scale)" or "")),
      gp_quote(logx and "density of log10 λ" or "density"))
    .. (logx and "set logscale x\nset format x '%g'\n" or "")
    .. ("set xrange [%s:%s]\nset yrange [0:*]\nset arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb '#555555'\n"):format(
      format_number(logx and lo / 1.05 or lo), format_number(logx and hi * 1.05 or hi), format_number(cut), format_number(cut))
    .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
  return blocks, body
end

-- A set whose levels all coincide (H = 0 at the start) is a spike that would flatten every other
-- histogram: it is named in the title instead of drawn (unless nothing else is left). Returns the sets
-- and labels to draw and the descriptions of the spikes left out.
local function without_spikes(sets, labels)
  local spikes, kept, kept_labels = {}, {}, {}
  for i, s in ipairs(sets) do
    local a, b = math.huge, -math.huge
    for _, x in ipairs(s) do a = math.min(a, x); b = math.max(b, x) end
    if #s > 1 and a == b then
      spikes[#spikes + 1] = ("%s: all %d levels at %.4g"):format(labels[i] or "set " .. i, #s, a)
    else
      kept[#kept + 1], kept_labels[#kept + 1] = s, labels[i]
    end
  end
  if #kept > 0 and #spikes > 0 then return kept, kept_labels, spikes end
  return sets, labels, {}
end

-- The range of the pooled levels (widened when empty or a single value) and the size of the largest set.
local function levels_range(sets)
  local lo, hi, nmax = math.huge, -math.huge, 0
  for _, s in ipairs(sets) do
    for _, x in ipairs(s) do lo = math.min(lo, x); hi = math.max(hi, x) end
    nmax = math.max(nmax, #s)
  end
  if lo > hi then lo, hi = 0, 1 end
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  return lo, hi, nmax
end

-- The theory curves of P.density's options mp, semicircle and curves, as {f, lo, hi, label}.
local function density_curves(opts)
  local curves = {}
  for _, mp in ipairs(list_of(opts.mp)) do
    check_options("dbm.plot.density: option 'mp'", mp, {"sigma2", "n", "m", "label"})
    local f, a, b = P.marchenko_pastur(mp.sigma2, mp.n, mp.m)
    curves[#curves + 1] = {f = f, lo = a, hi = b,
      label = mp.label or ("Marchenko–Pastur, σ² = %.4g, %d×%d"):format(mp.sigma2, mp.n, mp.m)}
  end
  for _, sc in ipairs(list_of(opts.semicircle)) do
    check_options("dbm.plot.density: option 'semicircle'", sc, {"center", "radius", "label"})
    local f, a, b = P.semicircle(sc.center, sc.radius)
    curves[#curves + 1] = {f = f, lo = a, hi = b,
      label = sc.label or ("semicircle, centre %.4g, radius %.4g"):format(sc.center, sc.radius)}
  end
  for _, c in ipairs(opts.curves or {}) do
    curves[#curves + 1] = check_options("dbm.plot.density: option 'curves'", c, {"f", "lo", "hi", "label"})
  end
  return curves
end

-- Outliers far beyond the bulk (spikes above the MP edge, a heavy tail) would squeeze the bulk into two
-- or three bins: then the top panel shows the bulk (the levels inside Tukey's far fence Q3 + 3·IQR, and
-- the theory curves) and a second panel all the levels on a log axis, the outliers marked (opts.clip = false
-- keeps the full range in one panel). Returns the right end of the top panel's axis and the outliers beyond
-- it (nil when there is no cut).
local function bulk_and_outliers(sets, curves, lo, hi)
  local cut = bulk_edge(sets, curves, lo, hi)
  if not (cut < hi) then return hi, nil end
  local outliers = {}
  for _, set in ipairs(sets) do for _, x in ipairs(set) do if x > cut then outliers[#outliers + 1] = x end end end
  return cut, outliers
end

-- The histograms and the curves of the top panel on [lo, hi]: data blocks and plot clauses, the
-- largest density (the curves' away from their edges) and the x range that holds them all.
local function density_layers(sets, labels, curves, lo, hi, bins, datafile, outline)
  local width = (hi - lo) / bins
  local xlo, xhi = lo - width, hi + width
  local blocks, plots, ymax = {}, {}, 0
  for i, s in ipairs(sets) do
    local label = labels[i] and ("%s (%d levels)"):format(labels[i], #s) or ("%d levels"):format(#s)
    local rows, peak = density_rows(s, lo, hi, bins)
    ymax = math.max(ymax, peak)
    blocks[#blocks + 1] = ("# set %d: %s\n# centre density width\n"):format(i, label) .. rows
    local style = outline and "using 1:2 with histeps lw 2" or "using 1:2:3 with boxes fs transparent solid 0.4 noborder"
    plots[#plots + 1] = ("%s index %d %s lc rgb '%s' title %s")
      :format(i == 1 and gp_quote(datafile) or "''", i - 1, style, palette[(i - 1) % #palette + 1], gp_quote(label))
  end
  -- The y range follows the histograms and the curves away from their edges: an MP density with
  -- q = 1 diverges like x^{-1/2} at 0 and would squash everything else.
  for i, c in ipairs(curves) do
    xlo, xhi = math.min(xlo, c.lo), math.max(xhi, c.hi)
    for j = 1, 49 do local y = c.f(c.lo + (c.hi - c.lo) * j / 50); if y > ymax then ymax = y end end
    blocks[#blocks + 1] = ("# curve %d: %s\n# x density\n"):format(i, c.label) .. curve_rows(c.f, c.lo, c.hi, 600)
    plots[#plots + 1] = ("'' index %d using 1:2 with lines lw 2.5 lc rgb '%s' title %s")
      :format(#sets + i - 1, i == 1 and "black" or palette[(#sets + i - 1) % #palette + 1], gp_quote(c.label))
  end
  return blocks, plots, ymax, xlo, xhi
end

-- The gnuplot commands of the top panel: title, axes, y range (headroom for the key: one line per
-- histogram and curve) and the plot.
local function density_panel(opts, note, plots, nlayers, ymax, xlo, xhi)
  local body = ("set title %s\nset xlabel %s\nset ylabel %s\nset key top right\nset grid\nset xrange [%s:%s]\n")
    :format(gp_quote((opts.title or "spectral density") .. note), gp_quote(opts.xlabel or "eigenvalue"),
            gp_quote(opts.logy and "density (log scale)" or "density"), format_number(xlo), format_number(xhi))
  if opts.logy then
    body = body .. "set logscale y\n"
  else
    local room = 1.1 + 0.07 * nlayers
    body = body .. ("set yrange [0:%s]\n"):format(format_number(ymax > 0 and room * ymax or 1))
  end
  return body .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
end

--- P.density(base, levels | {levels, ...}, opts) -> files. A histogram as a density per level set
--- (opts.labels names them), with theory curves overlaid: opts.mp = {sigma2=, n=, m= [, label=]}
--- (or a list of them), opts.semicircle = {center=, radius= [, label=]} (or a list), and any other density
--- as opts.curves = {{f = function(x), lo=, hi=, label=}, ...}. opts.outline = true draws each histogram
--- as a step outline instead of a filled one (several sets that would hide each other).
function P.density(base, levels, opts)
  opts = check_options("dbm.plot.density", opts, {"labels", "mp", "semicircle", "curves", "title", "xlabel", "bins", "logy", "clip", "outline"})
  local given = {}
  if is_tensor(levels) or type(levels) == "table" and type(levels[1]) ~= "table" and not is_tensor(levels[1]) then
    given[1] = finite_values(to_array(levels, "levels"))
  else
    for i, l in ipairs(levels) do given[i] = finite_values(to_array(l, "levels set " .. i)) end
  end
  local sets, labels, spikes = without_spikes(given, opts.labels or {})
  local lo, full_hi, nmax = levels_range(sets)
  local curves = density_curves(opts)
  local note = #spikes > 0 and (" (" .. table.concat(spikes, "; ") .. ")") or ""
  local hi, outliers = full_hi, nil
  if opts.clip ~= false then hi, outliers = bulk_and_outliers(sets, curves, lo, full_hi) end
  if outliers then
    note = note .. (" (%d outlier%s beyond the bulk, up to %.4g: lower panel)"):format(#outliers, #outliers == 1 and "" or "s", full_hi)
  end
  local _, name = split_path(base)
  local blocks, plots, ymax, xlo, xhi = density_layers(sets, labels, curves, lo, hi, opts.bins or default_bins(nmax), name .. ".dat", opts.outline)
  local body = density_panel(opts, note, plots, #sets + #curves, ymax, xlo, xhi)
  if not outliers then return render(base, table.concat(blocks, "\n\n\n") .. "\n", body) end
  local full_blocks, full_body = full_range_panel(sets, labels, outliers, lo, full_hi, hi, #blocks, name .. ".dat",
                                                  opts.xlabel or "eigenvalue")
  table.move(full_blocks, 1, #full_blocks, #blocks + 1, blocks)
  body = "set multiplot\nset size 1,0.62\nset origin 0,0.38\n" .. body
    .. "unset arrow\nunset logscale y\nset size 1,0.38\nset origin 0,0\n" .. full_body
  return render(base, table.concat(blocks, "\n\n\n") .. "\n", body, math.floor(1.45 * P.height))
end

--- P.spacing(base, spacings, opts) -> files. Histogram of unfolded spacings s (mean 1) with the GOE
--- Wigner surmise P(s) = (πs/2) e^{−πs²/4} and the Poisson law P(s) = e^{−s}.
function P.spacing(base, spacings, opts)
  opts = check_options("dbm.plot.spacing", opts, {"title", "bins"})
  local s = finite_values(to_array(spacings, "spacings"))
  local hi = 4
  local bins = opts.bins or math.max(8, math.min(40, math.floor(math.sqrt(#s) + 0.5)))
  local wigner = function(x) return laws.spacing_density(x, "goe") end
  local poisson = function(x) return laws.spacing_density(x, "poisson") end
  local data = ("# unfolded spacings (%d)\n# centre density width\n"):format(#s) .. (#s > 0 and (density_rows(s, 0, hi, bins)) or "0 0 0.1")
    .. "\n\n\n# Wigner surmise (GOE)\n# s P(s)\n" .. curve_rows(wigner, 0, hi, 400)
    .. "\n\n\n# Poisson\n# s P(s)\n" .. curve_rows(poisson, 0, hi, 400) .. "\n"
  local _, name = split_path(base)
  local body = ("set title %s\nset xlabel 's (unfolded spacing, mean 1)'\nset ylabel 'P(s)'\nset key top right\nset grid\n"
    .. "set xrange [0:%d]\nset yrange [0:*]\n"
    .. "plot %s index 0 using 1:2:3 with boxes fs transparent solid 0.35 noborder lc rgb '%s' title %s, \\\n"
    .. "     '' index 1 using 1:2 with lines lw 2.5 lc rgb 'black' title 'Wigner surmise (GOE): (πs/2) exp(−πs²/4)', \\\n"
    .. "     '' index 2 using 1:2 with lines lw 2.5 dt 2 lc rgb '%s' title 'Poisson: exp(−s)'\n")
    :format(gp_quote(opts.title or "level spacings"), hi, gp_quote(name .. ".dat"), palette[1],
            gp_quote(("spacings (%d)"):format(#s)), palette[2])
  return render(base, data, body)
end

local function rows_of(levels)
  if is_tensor(levels) then
    if levels:dim() ~= 2 then error("dbm.plot.flow: expected a 2-D tensor (rows = steps), got " .. levels:dim() .. "-D", 3) end
    return levels:to("float64"):totable()
  end
  if type(levels) ~= "table" then error("dbm.plot.flow: expected a 2-D tensor or an array of rows, got " .. type(levels), 3) end
  local rows = {}
  for i, r in ipairs(levels) do rows[i] = to_array(r, "row " .. i) end
  return rows
end

--- P.flow(base, steps, levels, opts) -> files. Each eigenvalue against the step (rows of `levels` are
--- the records at `steps`, columns the levels): the picture of Dyson Brownian motion. At most
--- opts.max_lines (200) levels are drawn, evenly chosen, coloured by their index; the y axis is
--- logarithmic when the levels are positive and the top one exceeds 10× the median (opts.logy decides).
--- opts.hlines = {y, ...} draws dashed reference levels (targets such as μ² − κ_n).
function P.flow(base, steps, levels, opts)
  opts = check_options("dbm.plot.flow", opts, {"title", "ylabel", "max_lines", "logy", "hlines"})
  steps = to_array(steps, "steps")
  local rows = rows_of(levels)
  if #rows ~= #steps then
    error(("dbm.plot.flow: %d steps but %d rows of levels"):format(#steps, #rows), 2)
  end
  local k = rows[1] and #rows[1] or 0
  local stride = math.max(1, math.ceil(k / (opts.max_lines or 200)))
  local cols = {}
  for j = 1, k, stride do cols[#cols + 1] = j end
  if k > 0 and cols[#cols] ~= k then cols[#cols + 1] = k end   -- keep the top level: outliers live there
  local lines = {("# eigenvalue flow: %d records of %d levels; columns: step, then levels %s\n"):format(#rows, k,
    stride == 1 and "1.." .. k or table.concat(cols, " "))}
  for i, r in ipairs(rows) do
    local parts = {format_number(steps[i])}
    for _, j in ipairs(cols) do parts[#parts + 1] = format_number(r[j]) end
    lines[#lines + 1] = table.concat(parts, " ") .. "\n"
  end
  if #rows == 0 then lines[#lines + 1] = "0 NaN\n" end
  local _, name = split_path(base)
  local shown = #cols == k and ("%d levels"):format(k) or ("%d of %d levels"):format(#cols, k)
  local title = (opts.title or "eigenvalue flow") .. " (" .. shown .. ")"
  local n = math.max(#cols, 1)
  -- Positive levels with an outlier far above the bulk (a spike leaving the MP sea) read better on a
  -- log scale: the bulk keeps its width. opts.logy = true/false decides instead.
  local logy = opts.logy
  if logy == nil and #rows > 0 and k > 1 then
    local positive, top = true, -math.huge
    for _, r in ipairs(rows) do
      for j = 1, k do if not (r[j] > 0) then positive = false end end
      top = math.max(top, r[k])
    end
    local last = rows[#rows]
    logy = positive and top > 10 * last[(k + 1) // 2]
  end
  local ylabel = (opts.ylabel or "eigenvalue") .. (logy and " (log scale)" or "")
  local reference_lines = {}
  for _, y in ipairs(opts.hlines or {}) do
    reference_lines[#reference_lines + 1] = (", %s with lines dt 2 lw 1.5 lc rgb 'black' notitle"):format(format_number(y))
  end
  -- gnuplot's default tics on a log axis read 10.00000000: %g reads 10, 100, 0.01
  local body = (logy and "set logscale y\nset format y '%g'\n" or "") .. ("set title %s\nset xlabel 'step'\nset ylabel %s\nset grid\nset key off\n"
    .. "set palette defined (0 '#3b4cc0', 0.5 '#8a8a8a', 1 '#b40426')\nset cbrange [1:%d]\nset cblabel 'level index'\n"
    .. "set colorbox\n"
    .. "plot for [i=2:%d] %s using 1:i:(%s[i-1]) with %s lc palette lw 1 notitle%s\n")
    :format(gp_quote(title), gp_quote(ylabel), math.max(k, 2),
            n + 1, gp_quote(name .. ".dat"), "cols", (#rows > 60 or #cols > 40) and "lines" or "linespoints pt 7 ps 0.4",
            table.concat(reference_lines))
  body = ("array cols[%d] = [%s]\n"):format(n, table.concat(#cols > 0 and cols or {1}, ",")) .. body
  return render(base, table.concat(lines), body)
end

-- The plot clauses of one panel of P.series: its series (points joined by lines, the points left out
-- past 80 of them) and its dashed reference lines.
local function series_plots(panel, column, series, nsteps, datafile)
  local plots = {}
  for _, name in ipairs(panel.names) do
    local c = column[name]
    if c then
      local count = 0
      for i = 1, nsteps do if finite(series[name][i]) then count = count + 1 end end
      local style = count > 80 and "lines lw 1.5" or "linespoints lw 1.5 pt 7 ps 0.6"
      plots[#plots + 1] = ("%s using 1:%d with %s lc rgb '%s' title %s"):format(
        #plots == 0 and gp_quote(datafile) or "''", c, style, palette[(#plots) % #palette + 1], gp_quote(name))
    end
  end
  for j, h in ipairs(panel.hlines or {}) do
    plots[#plots + 1] = ("%s with lines dt 2 lw 1.5 lc rgb '%s' title %s"):format(
      format_number(h[1]), j == 1 and "#555555" or "#aaaaaa", gp_quote(h[2] or ""))
  end
  if #plots == 0 then plots[1] = "NaN notitle" end
  return plots
end

-- The y range of one panel of P.series: automatic, except that a constant series (a fixed learning rate)
-- would get tics that all read the same number, so it gets a range around its value.
local function series_yrange(panel, series, nsteps)
  local ymin, ymax = math.huge, -math.huge
  for _, name in ipairs(panel.names) do
    for i = 1, nsteps do
      local v = series[name] and series[name][i]
      if finite(v) then ymin, ymax = math.min(ymin, v), math.max(ymax, v) end
    end
  end
  for _, h in ipairs(panel.hlines or {}) do ymin, ymax = math.min(ymin, h[1]), math.max(ymax, h[1]) end
  if ymin ~= ymax then return "set autoscale y\n" end
  if panel.logy then return ("set yrange [%s:%s]\n"):format(format_number(ymin / 2), format_number(ymax * 2)) end
  local d = ymin ~= 0 and math.abs(ymin) * 0.5 or 1
  return ("set yrange [%s:%s]\n"):format(format_number(ymin - d), format_number(ymax + d))
end

--- P.series(base, steps, {name = values, ...}, opts) -> files. Scalar series against the step; a nil
--- or non-finite value is a missing point (lines join across it). opts.panels = {{names = {...},
--- ylabel=, logy=, hlines = {{value, label}, ...}}, ...} stacks panels sharing the step axis; by default
--- one panel with every series (opts.logy, opts.ylabel, opts.hlines apply to it). opts.xlabel names the
--- axis of `steps` (default "step": a model-level plot passes the layer index).
function P.series(base, steps, series, opts)
  opts = check_options("dbm.plot.series", opts, {"title", "logy", "ylabel", "hlines", "panels", "xlabel"})
  steps = to_array(steps, "steps")
  if type(series) ~= "table" then error("dbm.plot.series: argument 3: expected {name = values, ...}, got " .. type(series), 2) end
  local names = {}
  local values = {}
  for name, v in pairs(series) do names[#names + 1] = name; values[name] = to_array(v, "series " .. name) end
  table.sort(names)
  series = values
  local panels = opts.panels or {{names = names, ylabel = opts.ylabel, logy = opts.logy, hlines = opts.hlines}}
  for _, panel in ipairs(panels) do check_options("dbm.plot.series: option 'panels'", panel, {"names", "ylabel", "logy", "hlines"}) end
  local column, header = {}, {"step"}
  for _, name in ipairs(names) do header[#header + 1] = name; column[name] = #header end
  local lines = {"# " .. table.concat(header, " ") .. "\n"}
  for i = 1, #steps do
    local parts = {format_number(steps[i])}
    for _, name in ipairs(names) do parts[#parts + 1] = format_number(series[name][i]) end
    lines[#lines + 1] = table.concat(parts, " ") .. "\n"
  end
  local _, file = split_path(base)
  local k = #panels
  local body = {k > 1 and ("set multiplot layout %d,1 title %s\n"):format(k, gp_quote(opts.title or ""))
                       or "set title " .. gp_quote(opts.title or "") .. "\n"}
  -- fixed margins keep the step axes of stacked panels aligned; an opaque key and some headroom keep
  -- the legend legible over the curves
  body[#body + 1] = "set grid\nset key top right opaque box width 2\nset lmargin 12\nset rmargin 4\nset offsets 0, 0, graph 0.2, 0\n"
  for p, panel in ipairs(panels) do
    local plots = series_plots(panel, column, series, #steps, file .. ".dat")
    body[#body + 1] = series_yrange(panel, series, #steps)
      .. (panel.logy and "set logscale y\nset format y '%g'\n" or "unset logscale y\nset format y '% h'\n")
      .. "set ylabel " .. gp_quote(panel.ylabel or (#panel.names == 1 and panel.names[1] or "value")) .. "\n"
      .. "set xlabel " .. gp_quote(p == k and (opts.xlabel or "step") or "") .. "\n"
      .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
  end
  local height = k > 1 and math.max(P.height, 300 * k) or P.height
  return render(base, table.concat(lines), table.concat(body), height)
end

--- P.metrics(base, steps, {name = values}, title): a run's scalars against the step; the losses
--- share a panel, every other scalar gets its own, at most six panels per figure (BASE, BASE_2, ...).
function P.metrics(base, steps, metrics, title)
  local names = {}
  for n in pairs(metrics) do names[#names + 1] = n end
  if #names == 0 then return {} end
  table.sort(names)
  local panels, loss = {}, {}
  for _, n in ipairs(names) do if n:find("loss") then loss[#loss + 1] = n end end
  if #loss > 0 then panels[1] = {names = loss, ylabel = "loss"} end
  for _, n in ipairs(names) do if not n:find("loss") then panels[#panels + 1] = {names = {n}} end end
  local series = {}
  for _, n in ipairs(names) do
    local v = {}
    for i = 1, #steps do v[i] = metrics[n][i] end
    series[n] = v
  end
  for f = 1, math.ceil(#panels / 6) do
    local part = table.move(panels, 6 * (f - 1) + 1, math.min(#panels, 6 * f), 1, {})
    P.series(base .. (f > 1 and ("_" .. f) or ""), steps, series, {title = title, panels = part})
  end
end

--- P.xy(base, sets, opts) -> files. Points y against x, one style per set: sets = {{x = {...}, y = {...},
--- err = {...} (optional error bars), label=}, ...}; opts.lines = {{slope=, label=}, ...} draws lines
--- y = slope·x through the origin (a collapse plot); opts.xlabel, opts.ylabel, opts.title, opts.logx, opts.logy.
function P.xy(base, sets, opts)
  opts = check_options("dbm.plot.xy", opts, {"title", "xlabel", "ylabel", "logx", "logy", "lines"})
  if type(sets) ~= "table" then error("dbm.plot.xy: argument 2: expected a list of {x=, y=} sets, got " .. type(sets), 2) end
  local blocks, plots, xmax = {}, {}, 0
  local _, file = split_path(base)
  for i, set in ipairs(sets) do
    local x, y = to_array(set.x, "x of set " .. i), to_array(set.y, "y of set " .. i)
    local err = set.err and to_array(set.err, "err of set " .. i)
    local rows = {("# %s\n# x y err\n"):format(set.label or ("set " .. i))}
    for k = 1, #x do
      rows[#rows + 1] = ("%s %s %s\n"):format(format_number(x[k]), format_number(y[k]), format_number(err and err[k] or 0))
      if finite(x[k]) then xmax = math.max(xmax, x[k]) end
    end
    blocks[#blocks + 1] = table.concat(rows)
    local colour = palette[(i - 1) % #palette + 1]
    plots[#plots + 1] = ("%s index %d using 1:2%s with %s pt %d ps 1.2 lc rgb '%s' title %s"):format(
      #plots == 0 and gp_quote(file .. ".dat") or "''", i - 1, err and ":3" or "",
      err and "yerrorbars" or "points", 5 + 2 * ((i - 1) % 4), colour, gp_quote(set.label or ("set " .. i)))
  end
  for j, line in ipairs(opts.lines or {}) do
    check_options("dbm.plot.xy: option 'lines'", line, {"slope", "label"})
    plots[#plots + 1] = ("%s*x with lines lw 2 dt %d lc rgb 'black' title %s"):format(
      format_number(line.slope), j, gp_quote(line.label or ("slope " .. format_number(line.slope))))
  end
  if #plots == 0 then plots[1] = "NaN notitle" end
  local body = ("set title %s\nset xlabel %s\nset ylabel %s\nset grid\nset key top left opaque box\n")
    :format(gp_quote(opts.title or ""), gp_quote(opts.xlabel or "x"), gp_quote(opts.ylabel or "y"))
    .. (opts.logx and "set logscale x\n" or ("set xrange [0:%s]\n"):format(format_number(1.08 * (xmax > 0 and xmax or 1))))
    .. (opts.logy and "set logscale y\n" or "set yrange [0:*]\n")
    .. "plot " .. table.concat(plots, ", \\\n     ") .. "\n"
  return render(base, table.concat(blocks, "\n\n\n") .. "\n", body)
end

return P
