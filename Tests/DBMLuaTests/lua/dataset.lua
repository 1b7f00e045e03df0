-- Character datasets from Lua (dbm.text_dataset): vocabulary, 1-based ids, splits, batches as nanoGPT's
-- get_batch (y is x shifted by one, windows inside their split, reproducible from a generator), and
-- bad calls, each a Lua error naming the function, what was expected, and this script's line.
local here = "dataset.lua:"
local function L() return debug.getinfo(2, "l").currentline end
local cases = 0
local function check(fname, line, expect, ok, msg)
  cases = cases + 1
  if ok then error(("case %d at line %d: %s should have failed"):format(cases, line, fname), 2) end
  msg = tostring(msg)
  for _, part in ipairs({fname, here .. line .. ":", expect}) do
    if not msg:find(part, 1, true) then error(("case %d at line %d: message does not say '%s': %s"):format(cases, line, part, msg), 2) end
  end
end

-- a temporary text file with one non-ASCII character
local text = string.rep("To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n", 20) .. "Café.\n"
local path = os.tmpname()
local f = assert(io.open(path, "wb")); f:write(text); f:close()

-- the characters of the text (UTF-8), sorted by code point
local chars, seen = {}, {}
for _, c in utf8.codes(text) do if not seen[c] then seen[c] = true; chars[#chars + 1] = c end end
table.sort(chars)
local n = utf8.len(text)

local ds = dbm.text_dataset(path)
assert(tostring(ds):find("^dbm.Dataset"), tostring(ds))
assert(ds:vocab_size() == #chars, "vocab_size")
assert(ds:vocab() == utf8.char(table.unpack(chars)), "vocab is the sorted set of characters: " .. ds:vocab())
assert(ds:size() == n and ds:size("train") == math.floor(n * 0.9) and ds:size("val") == n - math.floor(n * 0.9), "split sizes")
assert(dbm.text_dataset(path, {train_fraction = 0.5}):size("train") == n // 2, "train_fraction")

-- ids are 1-based, in vocabulary order; decode inverts encode
local ids = ds:encode(text)
assert(dbm.is_tensor(ids) and ids:dtype() == "float32" and ids:dim() == 1 and ids:numel() == n, "encode gives a 1-d float32 tensor")
assert(ids:min() == 1 and ids:max() == #chars, "ids run from 1 to the vocabulary size")
assert(ds:decode(ids) == text, "decode(encode(text))")
assert(ds:encode("\n")[1] == 1 and ds:encode("é")[1] == #chars, "'\\n' is the first character, 'é' the last")
assert(ds:decode({1, #chars}) == "\né" and ds:decode({}) == "" and ds:encode(""):numel() == 0, "decode of a table")

-- batches: (B, T) float32 ids; y is x shifted by one; each row is a window of its split
local function part(split)   -- the characters of a split, as a string
  local cut = utf8.offset(text, ds:size("train") + 1)
  return split == "train" and text:sub(1, cut - 1) or text:sub(cut)
end
for _, split in ipairs({"train", "val"}) do
  local x, y = ds:batch(split, 6, 10, {generator = dbm.generator(5)})
  assert(x:dtype() == "float32" and x:size(1) == 6 and x:size(2) == 10 and y:size(1) == 6 and y:size(2) == 10, "batch shapes")
  for b = 1, 6 do
    for t = 1, 9 do assert(y:get(b, t) == x:get(b, t + 1), "y is x shifted by one") end
    local window = ds:decode(x[b]) .. ds:decode({y:get(b, 10)})
    assert(part(split):find(window, 1, true), split .. " window " .. b .. " lies in its split: " .. window)
  end
end
-- the same generator seed, or the same dbm.seed for the default generator, gives the same batch
local function same(a, b) return (a - b):abs():max() == 0 end
local x1 = ds:batch("train", 4, 16, {generator = dbm.generator(9)})
local x2 = ds:batch("train", 4, 16, {generator = dbm.generator(9)})
local x3 = ds:batch("train", 4, 16, {generator = dbm.generator(10)})
assert(same(x1, x2) and not same(x1, x3), "batches follow the generator")
dbm.seed(3); local d1 = ds:batch("val", 4, 16)
dbm.seed(3); local d2 = ds:batch("val", 4, 16)
assert(same(d1, d2), "the default generator follows dbm.seed")

-- bad calls
local line
local bad = os.tmpname()
f = assert(io.open(bad, "wb")); f:write("ab\xffc"); f:close()
local empty = os.tmpname()
line = L(); check("dbm.text_dataset", line, "argument 1 (path): expected a string, got a number (42)", pcall(dbm.text_dataset, 42))
line = L(); check("dbm.text_dataset", line, "does not exist", pcall(dbm.text_dataset, path .. ".missing"))
line = L(); check("dbm.text_dataset", line, "at byte offset 2 of file '" .. bad .. "'", pcall(dbm.text_dataset, bad))
line = L(); check("dbm.text_dataset", line, "expected a non-empty text", pcall(dbm.text_dataset, empty))
line = L(); check("dbm.text_dataset", line, "argument 2 (options): expected a table of options", pcall(dbm.text_dataset, path, 0.5))
line = L(); check("dbm.text_dataset", line, "option 'train_fraction': expected a number", pcall(dbm.text_dataset, path, {train_fraction = "half"}))
line = L(); check("dbm.text_dataset", line, "strictly between 0 and 1, got 1.5", pcall(dbm.text_dataset, path, {train_fraction = 1.5}))
line = L(); check("Dataset:vocab_size", line, "argument 1 (dataset): expected a dataset, got a number", pcall(ds.vocab_size, 42))
line = L(); check("Dataset:vocab", line, "expected a dataset, got a generator", pcall(ds.vocab, dbm.generator(1)))
line = L(); check("Dataset:size", line, "argument 2 (split): expected \"train\" or \"val\", got a string (\"test\")", pcall(ds.size, ds, "test"))
line = L(); check("Dataset:size", line, "argument 2 (split): expected \"train\" or \"val\", got a number (1)", pcall(ds.size, ds, 1))
line = L(); check("Dataset:encode", line, "argument 2 (text): expected a string, got a number (5)", pcall(ds.encode, ds, 5))
line = L(); check("Dataset:encode", line, "character 'Z' (U+005A) at position 3 is not in the vocabulary", pcall(ds.encode, ds, "ToZ"))
line = L(); check("Dataset:encode", line, "expected UTF-8 text, got an invalid byte sequence at byte offset 2 of the text to encode (byte 0xFF)", pcall(ds.encode, ds, "To\xff"))
line = L(); check("Dataset:decode", line, "argument 2 (ids): expected a tensor or a table of ids, got a string", pcall(ds.decode, ds, "abc"))
line = L(); check("Dataset:decode", line, "expected ids in 1.." .. #chars .. ", entry 2 is 0", pcall(ds.decode, ds, {1, 0}))
line = L(); check("Dataset:decode", line, "entry 1 is 1.5", pcall(ds.decode, ds, {1.5}))
line = L(); check("Dataset:decode", line, "entry 1 is a string (\"a\")", pcall(ds.decode, ds, {"a"}))
line = L(); check("Dataset:decode", line, "entry 2 is " .. (#chars + 1), pcall(ds.decode, ds, dbm.tensor({1, #chars + 1})))
line = L(); check("Dataset:batch", line, "argument 2 (split): expected \"train\" or \"val\"", pcall(ds.batch, ds, "validation", 2, 4))
line = L(); check("Dataset:batch", line, "argument 3 (batch_size): expected a positive integer, got 0", pcall(ds.batch, ds, "train", 0, 4))
line = L(); check("Dataset:batch", line, "argument 3 (batch_size): expected an integer, got a string (\"2\")", pcall(ds.batch, ds, "train", "2", 4))
line = L(); check("Dataset:batch", line, "argument 4 (block_size): expected an integer, got a number (1.5)", pcall(ds.batch, ds, "train", 2, 1.5))
line = L(); check("Dataset:batch", line, "argument 4 (block_size): expected an integer, got nothing", pcall(ds.batch, ds, "train", 2))
local long = ("block size %d is larger than the validation split (%d characters)"):format(ds:size("val") + 5, ds:size("val"))
line = L(); check("Dataset:batch", line, long, pcall(ds.batch, ds, "val", 2, ds:size("val") + 5))
line = L(); check("Dataset:batch", line, "expected at most " .. (ds:size("train") - 1), pcall(ds.batch, ds, "train", 2, ds:size("train")))
line = L(); check("Dataset:batch", line, "argument 5 (options): expected a table of options", pcall(ds.batch, ds, "train", 2, 4, 7))
line = L(); check("Dataset:batch", line, "option 'generator': expected a generator (dbm.generator(seed)), got a number (5)", pcall(ds.batch, ds, "train", 2, 4, {generator = 5}))
line = L(); check("Dataset:batch", line, "expected a dataset", pcall(function() return ds.batch(nil, "train", 2, 4) end))
os.remove(path); os.remove(bad); os.remove(empty)

-- the nano-GPT corpus, when scripts/setup has fetched it (DESIGN §7)
local folder = debug.getinfo(1, "S").source:match("^@(.-)dataset%.lua$")   -- Tests/DBMLuaTests/lua/
local corpus = folder and folder .. "../../../data/shakespeare/input.txt"
local corpus_file = corpus and io.open(corpus, "rb")
if corpus_file then
  corpus_file:close()
  local sh = dbm.text_dataset(corpus)
  assert(sh:size() == 5057198 and sh:vocab_size() == 84, ("Shakespeare: %d characters, %d distinct"):format(sh:size(), sh:vocab_size()))
  assert(sh:size("train") == 4551478 and sh:vocab():sub(1, 2) == "\n ", "Shakespeare split and vocabulary")
end
