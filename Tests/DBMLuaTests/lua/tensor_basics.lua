-- Tensors from Lua: creation, views, arithmetic with broadcasting, reductions, matmul, printing.
local function close(a, b, tol, what)
  if math.abs(a - b) > (tol or 1e-12) * math.max(1, math.abs(b)) then
    error(("%s: got %.17g, expected %.17g"):format(what or "value", a, b), 2)
  end
end
local function same(t, expected, tol, what)
  local got = t:totable()
  local function walk(g, e, path)
    if type(e) == "table" then
      assert(type(g) == "table" and #g == #e, (what or "tensor") .. ": shape differs at " .. path)
      for i = 1, #e do walk(g[i], e[i], path .. "[" .. i .. "]") end
    else
      close(g, e, tol or 1e-6, (what or "tensor") .. path)
    end
  end
  walk(got, expected, "")
end

-- creation
local z = dbm.zeros(2, 3)
assert(z:dtype() == "float32" and z:dim() == 2 and z:numel() == 6 and #z == 2)
same(z, {{0, 0, 0}, {0, 0, 0}})
same(dbm.ones({2, 2}, {dtype = "float64"}), {{1, 1}, {1, 1}})
assert(dbm.ones(3, {dtype = "float64"}):dtype() == "float64")
same(dbm.full({2}, 2.5), {2.5, 2.5})
same(dbm.arange(4), {0, 1, 2, 3})
same(dbm.arange(1, 2, 0.25), {1, 1.25, 1.5, 1.75})
same(dbm.eye(2), {{1, 0}, {0, 1}})
local a = dbm.tensor({{1, 2, 3}, {4, 5, 6}})
assert(a:shape()[1] == 2 and a:shape()[2] == 3 and a:size(2) == 3)
assert(a[2][3] == 6 and a:get(1, 2) == 2 and a[-1][-1] == 6)
assert(dbm.tensor(3):item() == 3 and dbm.tensor({}):numel() == 0)

-- reproducible random numbers, independent generators
dbm.seed(42); local r1 = dbm.randn(100)
dbm.seed(42); local r2 = dbm.randn(100)
assert((r1 - r2):abs():max() == 0, "same seed must give the same numbers")
local g = dbm.generator(42, 1)
assert((g:randn(100) - r1):abs():max() > 0, "another stream gives other numbers")
local big = dbm.randn(200000, {mean = 3, std = 2, dtype = "float64"})
close(big:mean(), 3, 0.01, "randn mean"); close(big:var() ^ 0.5, 2, 0.01, "randn std")
local u = dbm.rand(100000, {low = -1, high = 1})
assert(u:min() >= -1 and u:max() < 1); close(u:mean(), 0, 0.02, "rand mean")

-- views share storage
local m = dbm.tensor({{1, 2}, {3, 4}, {5, 6}})
local row = m:row(2); row:fill(0)
same(m, {{1, 2}, {0, 0}, {5, 6}})
m[2] = dbm.tensor({7, 8}); same(m, {{1, 2}, {7, 8}, {5, 6}})
local col = m:col(2); assert(not col:is_contiguous()); same(col, {2, 8, 6})
same(m:t(), {{1, 7, 5}, {2, 8, 6}})
assert(not m:t():is_contiguous() and m:t():contiguous():is_contiguous())
same(m:narrow(1, 2, 2), {{7, 8}, {5, 6}})
same(m:index(1, {3, 1}), {{5, 6}, {1, 2}})
same(m:reshape(2, 3), {{1, 2, 7}, {8, 5, 6}})
same(m:reshape({-1}), {1, 2, 7, 8, 5, 6})
same(m:t():reshape(6), {1, 7, 5, 2, 8, 6})
local c = m:clone(); c[1][1] = 100; assert(m[1][1] == 1)
assert(m:double():dtype() == "float64" and m:double():float():dtype() == "float32")
local v1 = dbm.zeros(3); v1[2] = 5; same(v1, {0, 5, 0})
local s = dbm.zeros(2, 2); s:set(2, 1, 9); same(s, {{0, 0}, {9, 0}})

-- arithmetic and broadcasting
local x = dbm.tensor({{1, 2, 3}, {4, 5, 6}})
same(x + 1, {{2, 3, 4}, {5, 6, 7}}); same(1 - x, {{0, -1, -2}, {-3, -4, -5}})
same(x * 2, {{2, 4, 6}, {8, 10, 12}}); same(x / 2, {{0.5, 1, 1.5}, {2, 2.5, 3}})
same(x ^ 2, {{1, 4, 9}, {16, 25, 36}}); same(-x, {{-1, -2, -3}, {-4, -5, -6}})
same(x + dbm.tensor({10, 20, 30}), {{11, 22, 33}, {14, 25, 36}})        -- row broadcast
same(x * dbm.tensor({{1}, {2}}), {{1, 2, 3}, {8, 10, 12}})              -- column broadcast
same(x - x:t():t(), {{0, 0, 0}, {0, 0, 0}})
same(x:t() + dbm.tensor({{1, 1}, {1, 1}, {1, 1}}), {{2, 5}, {3, 6}, {4, 7}})   -- non-contiguous operand
assert((x + x:double()):dtype() == "float64")
same(dbm.tensor({1, 4, 9}):sqrt(), {1, 2, 3}); same(dbm.tensor({-1, 2}):abs(), {1, 2})
same(dbm.tensor({0}):exp(), {1}); same(dbm.tensor({1}):log(), {0})
same(dbm.tensor({-2, 0.5, 2}):clamp(-1, 1), {-1, 0.5, 1}); same(dbm.tensor({2, 3}):pow(2), {4, 9})

-- reductions
close(x:sum(), 21); close(x:mean(), 3.5); close(x:max(), 6); close(x:min(), 1)
close(x:var(), 35 / 12, 1e-6); close(x:var({ddof = 1}), 3.5, 1e-6)
same(x:sum(1), {5, 7, 9}); same(x:sum(2), {6, 15}); same(x:mean(2), {2, 5})
local mx, ix = x:max(2); same(mx, {3, 6}); same(ix, {3, 3})
assert(x:argmax() == 6 and x:argmin() == 1)
close(dbm.tensor({3, 4}):norm(), 5)

-- matmul against a hand computation, transposes without copies, batches, vectors
local A = dbm.tensor({{1, 2}, {3, 4}, {5, 6}})
local B = dbm.tensor({{1, 0, 2}, {0, 1, 3}})
same(A:matmul(B), {{1, 2, 8}, {3, 4, 18}, {5, 6, 28}})
same(dbm.matmul(B:t(), A:t()), {{1, 3, 5}, {2, 4, 6}, {8, 18, 28}})
same(A:t():matmul(A), {{35, 44}, {44, 56}})
same(A:matmul(dbm.tensor({1, 1})), {3, 7, 11})
same(dbm.tensor({1, 1, 1}):matmul(A), {9, 12})
local batch = dbm.tensor({{{1, 0}, {0, 1}}, {{2, 0}, {0, 2}}})
same(batch:matmul(batch), {{{1, 0}, {0, 1}}, {{4, 0}, {0, 4}}})
same(batch:matmul(dbm.tensor({{1, 2}, {3, 4}})), {{{1, 2}, {3, 4}}, {{2, 4}, {6, 8}}})
local R = dbm.randn(64, 48, {dtype = "float64"}); local S = dbm.randn(48, 32, {dtype = "float64"})
local P = R:matmul(S)
local manual = 0
for k = 1, 48 do manual = manual + R[5][k] * S[k][7] end
close(P[5][7], manual, 1e-12, "matmul element")

-- sort and histogram
local vals, idx = dbm.sort(dbm.tensor({3, 1, 2}))
same(vals, {1, 2, 3}); same(idx, {2, 3, 1})
same(dbm.sort(dbm.tensor({3, 1, 2}), {descending = true}), {3, 2, 1})
local counts, edges = dbm.histogram(dbm.tensor({0, 0.1, 0.5, 0.9, 1, 2}), 2, 0, 1)
same(counts, {2, 3}); same(edges, {0, 0.5, 1})

-- printing: shape and dtype in the footer, truncated when big
local text = tostring(dbm.zeros(100, 100))
assert(text:find("float32 tensor of shape (100, 100)", 1, true) and text:find("...", 1, true), text)
assert(#text < 1000, "a big tensor prints truncated")
assert(tostring(dbm.tensor({{1.5, 2}, {3, 4}})):find("1.5000", 1, true))

-- config: defaults overridden by --key=value, converted to the default's type
local cfg = dbm.config({lr = 0.1, batch_size = 16, name = "x", verbose = false},
                       {"--lr=0.05", "--batch_size=8", "--verbose", "positional"})
assert(cfg.lr == 0.05 and cfg.batch_size == 8 and math.type(cfg.batch_size) == "integer" and cfg.verbose == true and cfg.name == "x")
local ok, err = pcall(dbm.config, {lr = 0.1}, {"--lrr=3"})
assert(not ok and err:find("unknown key 'lrr'") and err:find("lr=0.1"), err)
ok, err = pcall(dbm.config, {batch_size = 16}, {"--batch_size=abc"})
assert(not ok and err:find("batch_size") and err:find("'abc' is not an integer"), err)
ok, err = pcall(dbm.config, {batch_size = 16}, {"--batch_size=1.5"})
assert(not ok and err:find("'1.5' is not an integer"), err)

-- help texts for every exposed function
for name, f in pairs(dbm) do
  if type(f) == "function" and name:sub(1, 1) ~= "_" then
    assert(dbm.help(f) ~= nil and not dbm.help(f):find("^no help"), "no help text for dbm." .. name)
  end
end
assert(dbm.help(dbm.eigvalsh):find("ascending"))
assert(require("dbm") == dbm)
print("tensor_basics: ok")
