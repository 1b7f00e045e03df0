-- dbm.tensorboard: TensorBoard event files (`events.out.tfevents.<time>.<host>`), written by the recorder
-- so that `tensorboard --logdir runs/` shows a run's metrics, plugin scalars and spectra as they evolve.
--
--   local w = TB.open(dir)                 -- a new event file in dir; its first record says "brain.Event:2"
--   w:scalars(step, {tag = number, ...})   -- one Event of Summary.Value{tag, simple_value}
--   w:histogram(step, tag, levels)         -- one Event of Summary.Value{tag, histo = HistogramProto}
--   w:close()
--
-- The file is a sequence of TFRecords (tensorflow/core/lib/io/record_writer.cc):
--   uint64 length (little endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
-- masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32). Each record's data is a protobuf Event
-- (tensorboard/compat/proto/event.proto, summary.proto):
--   Event          wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary)
--   Summary        value = 1 (repeated Summary.Value)
--   Summary.Value  tag = 1 (string), simple_value = 2 (float), histo = 5 (HistogramProto)
--   HistogramProto min = 1, max = 2, num = 3, sum = 4, sum_squares = 5 (doubles),
--                  bucket_limit = 6, bucket = 7 (packed repeated doubles; bucket i counts
--                  (bucket_limit[i-1], bucket_limit[i]])
-- Records are appended and flushed one by one, so a killed run leaves every record before the kill
-- whole (a torn last record is skipped by TensorBoard's reader, which checks the CRCs).
local dbm = require "dbm"

local TB = {}
local Writer = {}
Writer.__index = Writer

-- ---------------------------------------------------------------- CRC-32C (Castagnoli, reflected 0x82f63b78)

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1) ~= 0 and (0x82f63b78 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end

local function crc32c(s)
  local c = 0xffffffff
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xff] ~ (c >> 8) end
  return c ~ 0xffffffff
end
TB.crc32c = crc32c

local function masked_crc(s)
  local c = crc32c(s)
  return ((((c >> 15) | (c << 17)) & 0xffffffff) + 0xa282ead8) & 0xffffffff
end

local function record(data)
  local length = string.pack("<I8", #data)
  return length .. string.pack("<I4", masked_crc(length)) .. data .. string.pack("<I4", masked_crc(data))
end

-- ---------------------------------------------------------------- protobuf wire format

local function varint(n)
  local out = {}
  repeat
    local b = n & 0x7f
    n = n >> 7   -- logical shift: a negative int64 takes ten bytes, as protobuf encodes it
    out[#out + 1] = string.char(n ~= 0 and (b | 0x80) or b)
  until n == 0
  return table.concat(out)
end

local function key(field, wire) return varint(field << 3 | wire) end
local function int_field(field, v) return key(field, 0) .. varint(v) end
local function double_field(field, v) return key(field, 1) .. string.pack("<d", v) end
local function float_field(field, v) return key(field, 5) .. string.pack("<f", v) end
local function bytes_field(field, s) return key(field, 2) .. varint(#s) .. s end

local function packed_doubles(field, list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = string.pack("<d", v) end
  return bytes_field(field, table.concat(parts))
end

local function event(step, body)
  return double_field(1, os.time() + 0.0) .. int_field(2, step) .. body
end

local function summary(values) return bytes_field(5, table.concat(values)) end   -- Event.summary

local function scalar_value(tag, v) return bytes_field(1, bytes_field(1, tag) .. float_field(2, v)) end

-- HistogramProto of the levels: 30 equal buckets over [min, max] (one bucket around a single value).
local function histogram_proto(levels)
  local n, lo, hi, sum, sum2 = #levels, math.huge, -math.huge, 0.0, 0.0
  for _, x in ipairs(levels) do
    lo, hi, sum, sum2 = math.min(lo, x), math.max(hi, x), sum + x, sum2 + x * x
  end
  local limits, counts = {}, {}
  if n > 0 then
    local buckets = hi > lo and 30 or 1
    local width = hi > lo and (hi - lo) / buckets or 1.0
    for i = 1, buckets do limits[i], counts[i] = lo + i * width, 0.0 end
    limits[buckets] = hi > lo and hi or hi + 0.5
    for _, x in ipairs(levels) do
      local i = math.min(buckets, math.max(1, math.ceil((x - lo) / width)))
      counts[i] = counts[i] + 1
    end
  else
    lo, hi = 0.0, 0.0
  end
  return double_field(1, lo) .. double_field(2, hi) .. double_field(3, n) .. double_field(4, sum)
    .. double_field(5, sum2) .. packed_doubles(6, limits) .. packed_doubles(7, counts)
end

-- ---------------------------------------------------------------- the writer

local function finite(x) return type(x) == "number" and x == x and x ~= math.huge and x ~= -math.huge end

--- TB.open(dir) -> a writer of a new event file in dir (named as TensorBoard's own writers name theirs).
function TB.open(dir, host)
  local path = ("%s/events.out.tfevents.%d.%s"):format(dir, os.time(), (host or "localhost"):gsub("[^%w%.%-]", "_"))
  local f, err = io.open(path, "ab")
  if not f then dbm._fail("dbm.tensorboard: cannot create %s: %s", path, tostring(err)) end
  local w = setmetatable({path = path, file = f}, Writer)
  w:_write(event(0, bytes_field(3, "brain.Event:2")))
  return w
end

function Writer:_write(data)
  self.file:write(record(data))
  self.file:flush()
end

--- w:scalars(step, {tag = value}): the finite numbers among the values, as one event (tags sorted).
function Writer:scalars(step, values)
  local tags = {}
  for tag, v in pairs(values) do if type(tag) == "string" and finite(v) then tags[#tags + 1] = tag end end
  if #tags == 0 then return end
  table.sort(tags)
  local parts = {}
  for i, tag in ipairs(tags) do parts[i] = scalar_value(tag, values[tag]) end
  self:_write(event(step, summary(parts)))
end

--- w:histogram(step, tag, levels): the distribution of the levels (a list or a 1-D tensor; the finite ones).
function Writer:histogram(step, tag, levels)
  if dbm.is_tensor(levels) then levels = levels:totable() end
  local xs = {}
  for _, x in ipairs(levels) do if finite(x) then xs[#xs + 1] = x end end
  self:_write(event(step, summary({bytes_field(1, bytes_field(1, tag) .. bytes_field(5, histogram_proto(xs)))})))
end

function Writer:close()
  if self.file then self.file:close(); self.file = nil end
end

return TB
