-- dbm.html: the few pieces of HTML the reports are made of (index.html of a run, of a sweep). Every text
-- goes through H.text (names and values come from files and scripts); links are relative paths checked
-- by H.href, so a page never names a network address and works when copied off a cluster.
local dbm = require "dbm"

local H = {}

local entities = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}

--- H.text(v) -> v as HTML text (control characters but the line break and the tab shown as \xNN, as on a
--- terminal; backquotes, which dbm._printable shows as \x60 for gnuplot and shells, kept: `code` in a summary).
function H.text(v)
  local s = tostring(v):gsub("[^\n\t`]+", dbm._printable)
  return (s:gsub("[&<>\"']", entities))
end

--- H.href(path) -> a relative link to a file of the run (each byte outside [%w._~/-] percent-encoded, so a
--- name with ':' or '?' stays a path, never a scheme or a query).
function H.href(path)
  return (tostring(path):gsub("[^%w%._~/%-]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- H.tag(name, attrs, body) -> <name a="v">body</name>; attrs {{key, value}} in order (values escaped).
function H.tag(name, attrs, body)
  local parts = {"<", name}
  for _, kv in ipairs(attrs or {}) do parts[#parts + 1] = (' %s="%s"'):format(kv[1], H.text(kv[2])) end
  parts[#parts + 1] = ">"
  if body == nil then return table.concat(parts) end
  return table.concat(parts) .. body .. "</" .. name .. ">"
end

local function cell(v)
  if math.type(v) == "float" then return H.text(("%.4g"):format(v)) end
  return H.text(v == nil and "" or v)
end

--- H.table(header, rows [, link]) -> a <table>; link(i, j, value) may return an href for a cell.
function H.table(header, rows, link)
  local out = {"<table>\n<thead><tr>"}
  for _, h in ipairs(header) do out[#out + 1] = "<th>" .. cell(h) .. "</th>" end
  out[#out + 1] = "</tr></thead>\n<tbody>\n"
  for i, r in ipairs(rows) do
    out[#out + 1] = "<tr>"
    for j = 1, #header do
      local target = link and link(i, j, r[j])
      local text = cell(r[j])
      out[#out + 1] = "<td>" .. (target and H.tag("a", {{"href", H.href(target)}}, text) or text) .. "</td>"
    end
    out[#out + 1] = "</tr>\n"
  end
  out[#out + 1] = "</tbody>\n</table>"
  return table.concat(out)
end

--- H.figure(png, svg, caption) -> an image (the PNG, linked to the SVG when there is one) and its caption.
function H.figure(png, svg, caption)
  local img = H.tag("img", {{"src", H.href(png)}, {"alt", caption}, {"loading", "eager"}})
  if svg then img = H.tag("a", {{"href", H.href(svg)}}, img) end
  return H.tag("figure", nil, img .. H.tag("figcaption", nil, H.text(caption)))
end

local style = [[
body { font-family: sans-serif; margin: 1.5em; max-width: 110em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; font-size: 0.9em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(28em, 1fr)); gap: 1em; }
figure { margin: 0; }
figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.status { font-weight: bold; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
]]

--- H.page(title, body, refresh_s) -> a whole page: inline style only (no scripts, fonts or network);
--- refresh_s: reload every so many seconds (a running run), nil: never.
function H.page(title, body, refresh_s)
  local head = {'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'}
  if refresh_s then head[#head + 1] = ('<meta http-equiv="refresh" content="%d">\n'):format(math.max(1, math.ceil(refresh_s))) end
  head[#head + 1] = H.tag("title", nil, H.text(title)) .. "\n<style>\n" .. style .. "</style>\n</head>\n<body>\n"
  return table.concat(head) .. body .. "\n</body>\n</html>\n"
end

return H
