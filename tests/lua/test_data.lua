-- test_data.lua — torsh.data: the file readers (IDX plain/gzip, .npy,
-- CIFAR-10) on files made here and on the real Fashion-MNIST when Debian's
-- dataset-fashion-mnist is installed; their errors on broken files; the
-- datasets; the transforms against hand-computed values; the DataLoader's
-- coverage, reproducibility, thread-count independence, exact resume,
-- drop_last, C path == Lua path, and closing mid-epoch without leaks.
local T = require "torsh.test"
local data = require "torsh.data"
local TF = data.transforms
local C = torsh._data

local tmp = T.tmpdir()

local function write(name, bytes)
  local path = tmp .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

local function gzip(path)
  assert(os.execute("gzip -nf " .. path))
  return path .. ".gz"
end

-- IDX bytes: type code, shape, big-endian values of format fmt ("B", ">i2", ">f", ...)
local function idx_bytes(code, shape, fmt, values)
  local parts = { string.char(0, 0, code, #shape) }
  for _, d in ipairs(shape) do parts[#parts + 1] = string.pack(">I4", d) end
  for _, v in ipairs(values) do parts[#parts + 1] = string.pack(fmt, v) end
  return table.concat(parts)
end

local function max_diff(a, b) return (a:to("f64") - b:to("f64")):abs():max():item() end
local function same(a, b, msg) T.eq(max_diff(a, b), 0.0, msg) end

-- ---- readers ---------------------------------------------------------------------------

T.case("idx_read: u8, i16, f32, f64, plain and gzip", function()
  local p = write("a.idx", idx_bytes(8, { 2, 3 }, "B", { 1, 2, 3, 4, 5, 250 }))
  local t = assert(data.idx_read(p))
  T.eq(t:dtype(), "u8")
  T.close(t, { { 1, 2, 3 }, { 4, 5, 250 } })
  local g = assert(data.idx_read(gzip(p)))
  same(g, t)
  T.close(assert(data.idx_read(write("b.idx", idx_bytes(0x0B, { 3 }, ">i2", { -300, 0, 32000 })))), { -300, 0, 32000 })
  local f = assert(data.idx_read(gzip(write("c.idx", idx_bytes(0x0D, { 1, 2 }, ">f", { 1.5, -0.25 })))))
  T.eq(f:dtype(), "f32")
  T.close(f, { { 1.5, -0.25 } })
  T.close(assert(data.idx_read(write("d.idx", idx_bytes(0x0E, { 1 }, ">d", { math.pi })))), { math.pi }, 1e-15)
  T.close(assert(data.idx_read(write("e.idx", idx_bytes(0x0C, { 2 }, ">i4", { -70000, 7 })))), { -70000, 7 })
end)

T.case("idx_read: broken files are refused with the reason", function()
  local good = idx_bytes(8, { 2, 3 }, "B", { 1, 2, 3, 4, 5, 6 })
  local function err(name, bytes)
    local t, msg = data.idx_read(write(name, bytes))
    T.eq(t, nil)
    T.ok(msg:find(name, 1, true), "the message names the file: " .. msg)
    return msg
  end
  T.ok(err("t1.idx", good:sub(1, -3)):find("truncated: the header declares [2, 3] u8 (6 bytes of data) but only 4", 1, true))
  T.ok(err("t2.idx", good .. "x"):find("1 unexpected bytes after", 1, true))
  T.ok(err("t3.idx", "\1\0\8\1"):find("not an IDX file", 1, true))
  T.ok(err("t4.idx", "\0\0\7\1\0\0\0\1\1"):find("unknown IDX type code 0x07", 1, true))
  T.ok(err("t5.idx", "\0\0\8\9"):find("declares 9 dims", 1, true))
  T.ok(err("t6.idx", "\0\0"):find("too short", 1, true))
  T.ok(err("t7.idx", good:sub(1, 7)):find("truncated header", 1, true))
  -- a header that claims 47 MB in a tiny gzip file: "truncated", nothing allocated
  local before = torsh.memory().live
  local t, msg = data.idx_read(gzip(write("t8.idx", idx_bytes(8, { 60000, 28, 28 }, "B", { 1, 2, 3 }))))
  T.eq(t, nil)
  T.ok(msg:find("but only 3 bytes follow", 1, true), msg)
  T.eq(torsh.memory().live, before)
  local _, missing = data.idx_read(tmp .. "/nope.idx")
  T.ok(missing:find("cannot open " .. tmp .. "/nope.idx", 1, true), missing)
  -- a gzip file cut short
  local gz = gzip(write("t9.idx", idx_bytes(8, { 400 }, "B", (function() local v = {} for i = 1, 400 do v[i] = i % 251 end return v end)())))
  local f = assert(io.open(gz, "rb"))
  local bytes = f:read("a")
  f:close()
  local t2, msg2 = data.idx_read(write("t10.idx.gz", bytes:sub(1, #bytes // 2)))
  T.eq(t2, nil)
  T.ok(msg2:find("t10.idx.gz", 1, true) and (msg2:find("truncated", 1, true) or msg2:find("gzip", 1, true)), msg2)
  T.raises(function() assert(data.idx_read(write("t11.idx", good:sub(1, -2)))) end, "truncated")
end)

-- .npy v1.0 bytes with a given header dict and raw data
local function npy_bytes(dict, raw, major)
  major = major or 1
  local pre = major == 1 and 10 or 12
  local total = ((pre + #dict + 1 + 63) // 64) * 64
  local header = dict .. string.rep(" ", total - pre - #dict - 1) .. "\n"
  local len = major == 1 and string.pack("<I2", #header) or string.pack("<I4", #header)
  return "\x93NUMPY" .. string.char(major, 0) .. len .. header .. raw
end

T.case("npy_read: dtypes, versions, Fortran order, errors", function()
  local raw = string.pack("<ffffff", 0, 1, 2, 3, 4, 5)
  local t = assert(data.npy_read(write("a.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw))))
  T.close(t, { { 0, 1, 2 }, { 3, 4, 5 } })
  local fo = assert(data.npy_read(write("b.npy", npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
    string.pack("<dddddd", 0, 3, 1, 4, 2, 5), 2))))
  T.eq(fo:dtype(), "f64")
  T.close(fo, { { 0, 1, 2 }, { 3, 4, 5 } })
  T.close(assert(data.npy_read(write("c.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
    string.pack("<i8i8", -5, 1 << 40), 3)))), { -5, 1 << 40 })
  local b = assert(data.npy_read(write("d.npy", npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\0\1"))))
  T.eq(b:dtype(), "bool")
  local h = assert(data.npy_read(write("e.npy", npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", "\0\60"))))
  T.eq(h:dtype(), "f16")
  T.close(h, { 1 })
  local _, msg = data.npy_read(write("f.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw:sub(1, 20))))
  T.ok(msg:find("truncated: shape [2, 3] of <f4 needs 24 bytes", 1, true), msg)
  _, msg = data.npy_read(write("g.npy", npy_bytes("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", "abc")))
  T.ok(msg:find("dtype '<U3' is not supported", 1, true), msg)
  _, msg = data.npy_read(write("h.npy", "not numpy at all"))
  T.ok(msg:find("not a .npy file", 1, true), msg)
end)

T.case("cifar10_read and CIFAR10 dataset on made batch files", function()
  local function batch(name, labels)
    local parts = {}
    for r, l in ipairs(labels) do
      parts[#parts + 1] = string.char(l) .. string.rep(string.char(r), 3072)
    end
    return write(name, table.concat(parts))
  end
  local dir = tmp .. "/cifar"
  assert(os.execute("mkdir -p " .. dir))
  for k = 1, 5 do batch("cifar/data_batch_" .. k .. ".bin", { k, 9 }) end
  batch("cifar/test_batch.bin", { 3 })
  local im, lb = data.cifar10_read(dir .. "/test_batch.bin")
  T.eq(table.concat(im:shape(), "x"), "1x3x32x32")
  T.eq(lb:dtype(), "i64")
  T.close(lb, { 3 })
  local ds = data.CIFAR10 { root = dir }
  T.eq(#ds, 10)
  T.eq(ds.classes[4], "cat")
  local x, y = ds:get(3)
  T.eq(y, 2)
  T.eq(x:get(2, 5, 5), 1)
  local _, msg = data.cifar10_read(write("bad.bin", "\1\2\3"))
  T.ok(msg:find("not a whole number of 3073-byte records", 1, true), msg)
  T.raises(function() data.CIFAR10 { root = tmp .. "/nowhere" } end, tmp .. "/nowhere/data_batch_1.bin not found")
end)

local FMNIST = data.FASHION_MNIST_ROOT
local have_fmnist = io.open(FMNIST .. "/train-images-idx3-ubyte.gz", "rb")
if have_fmnist then have_fmnist:close() end

T.case("Fashion-MNIST from Debian's package", function()
  if not have_fmnist then T.skip("dataset-fashion-mnist is not installed") end
  local train = data.FashionMNIST {}
  T.eq(#train, 60000)
  T.eq(table.concat(train.images:shape(), "x"), "60000x28x28")
  T.eq(train.images:dtype(), "u8")
  T.eq(train.labels:dtype(), "i64")
  T.close(train.labels:narrow(1, 1, 10), { 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 })
  T.eq(train.images:select(1, 1):to("i64"):sum():item(), 76247)
  T.eq(train.images:get(1, 11, 15), 228)
  local x, y = train:get(60000)
  T.eq(x:to("i64"):sum():item(), 16684)
  T.eq(y, 5)
  local few = data.FashionMNIST { limit = 100 }
  T.eq(#few, 100)
  T.close(few.labels:narrow(1, 1, 3), { 9, 0, 0 })
  T.raises(function() data.FashionMNIST { limit = -1 } end, "limit must be an integer >= 0")
  local test = data.FashionMNIST { train = false }
  T.eq(#test, 10000)
  T.close(test.labels:narrow(1, 1, 10), { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 })
  T.eq(test.classes[1], "T-shirt/top")
  T.eq(test.classes[10], "Ankle boot")
  local mean, std = data.channel_stats(train.images)
  T.close(mean[1] / 255, 0.2860405969887955, 1e-12)
  T.close(std[1] / 255, 0.35302424451492237, 1e-10)
end)

T.case("FashionMNIST / MNIST name the missing path and the package", function()
  local err = T.raises(function() data.FashionMNIST { root = tmp .. "/none" } end, tmp .. "/none/train-images-idx3-ubyte.gz")
  T.ok(err:find("dataset-fashion-mnist", 1, true), err)
  T.raises(function() data.MNIST { root = tmp .. "/none", train = false } end, "t10k-images-idx3-ubyte.gz not found")
end)

T.case("MNIST-style folder made here, unzipped files accepted", function()
  local dir = tmp .. "/mnist"
  assert(os.execute("mkdir -p " .. dir))
  local px = {}
  for i = 1, 3 * 4 * 4 do px[i] = i end
  write("mnist/t10k-images-idx3-ubyte", idx_bytes(8, { 3, 4, 4 }, "B", px))
  gzip(write("mnist/t10k-labels-idx1-ubyte", idx_bytes(8, { 3 }, "B", { 7, 1, 0 })))
  local ds = data.MNIST { root = dir, train = false }
  T.eq(#ds, 3)
  local x, y = ds:get(2)
  T.eq(y, 1)
  T.eq(x:get(1, 1), 17)
  write("mnist/train-images-idx3-ubyte", idx_bytes(8, { 2, 4, 4 }, "B", table.move(px, 1, 32, 1, {})))
  write("mnist/train-labels-idx1-ubyte", idx_bytes(8, { 3 }, "B", { 7, 1, 0 }))
  T.raises(function() data.MNIST { root = dir } end, "do not form a data set")
  write("mnist/train-labels-idx1-ubyte", idx_bytes(8, { 3 }, "B", { 7, 1 }))
  T.raises(function() data.MNIST { root = dir } end, "MNIST: idx_read: " .. dir .. "/train-labels-idx1-ubyte: truncated")
end)

T.case("NpyFolder: labels.npy, class folders, lazy", function()
  local dir = tmp .. "/npy"
  assert(os.execute("mkdir -p " .. dir .. "/classes/cats " .. dir .. "/classes/dogs " .. dir .. "/flat"))
  local function sample(path, v)
    write(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", string.pack("<ffff", v, v, v, v + 1)))
  end
  sample("npy/flat/b.npy", 2)
  sample("npy/flat/a.npy", 1)
  write("npy/flat/labels.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", string.pack("<i8i8", 10, 20)))
  local flat = data.NpyFolder { root = dir .. "/flat" }
  T.eq(#flat, 2)
  local x, y = flat:get(1)
  T.close(x, { { 1, 1 }, { 1, 2 } })
  T.eq(y, 10)
  T.ok(flat:tensors() ~= nil)
  sample("npy/classes/cats/1.npy", 5)
  sample("npy/classes/dogs/1.npy", 6)
  sample("npy/classes/dogs/2.npy", 7)
  local byclass = data.NpyFolder { root = dir .. "/classes", lazy = true }
  T.eq(#byclass, 3)
  T.eq(byclass.classes[1], "cats")
  T.eq(byclass.classes[2], "dogs")
  T.eq(byclass:tensors(), nil)
  local x3, y3 = byclass:get(3)
  T.eq(y3, 1)
  T.eq(x3:get(1, 1), 7)
  local loader = data.DataLoader(byclass, { batch_size = 2 })
  T.eq(loader.fast, false)
  local _, bx, by = loader:iter()()
  T.eq(table.concat(bx:shape(), "x"), "2x2x2")
  T.close(by, { 0, 1 })
  write("npy/flat/labels.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", string.pack("<i8i8i8", 1, 2, 3)))
  T.raises(function() data.NpyFolder { root = dir .. "/flat" } end, "3 labels for 2 sample files")
end)

-- ---- transforms ------------------------------------------------------------------------

-- u8 image [C, H, W] with values v(c, h, w) = (c * 37 + h * 11 + w * 3) % 256
local function image(c, h, w)
  local t = {}
  for ci = 1, c do
    t[ci] = {}
    for hi = 1, h do
      t[ci][hi] = {}
      for wi = 1, w do t[ci][hi][wi] = ((ci - 1) * 37 + (hi - 1) * 11 + (wi - 1) * 3) % 256 end
    end
  end
  return torsh.tensor(t, "u8")
end

T.case("ToTensor / ToFloat / Normalize against hand-computed values", function()
  local img = image(2, 3, 4)
  local x = TF.Compose { TF.ToTensor(), TF.Normalize({ 0.5, 0.25 }, { 0.2, 0.5 }) }(img)
  T.eq(x:dtype(), "f32")
  local want = {}
  for c = 1, 2 do
    want[c] = {}
    for h = 1, 3 do
      want[c][h] = {}
      for w = 1, 4 do
        local v = ((c - 1) * 37 + (h - 1) * 11 + (w - 1) * 3) % 256
        want[c][h][w] = (v / 255 - ({ 0.5, 0.25 })[c]) / ({ 0.2, 0.5 })[c]
      end
    end
  end
  T.close(x, want, 1e-6)
  -- the C kernel gives the same bits
  same(TF.apply_native(TF.Compose { TF.ToTensor(), TF.Normalize({ 0.5, 0.25 }, { 0.2, 0.5 }) }.steps, img), x)
  -- [H, W]: ToTensor and ToFloat add the channel unless told not to
  local flat = img:select(1, 1)
  T.eq(table.concat(TF.ToTensor()(flat):shape(), "x"), "1x3x4")
  T.eq(table.concat(TF.ToFloat()(flat):shape(), "x"), "1x3x4")
  T.eq(table.concat(TF.ToFloat { add_channel = false }(flat):shape(), "x"), "3x4")
  T.close(TF.ToFloat { divisor = 1, add_channel = false }(flat), flat:to("f32"))
  same(TF.apply_native({ TF.ToFloat(2) }, flat), flat:to("f32"):unsqueeze(1) / 2)
  T.raises(function() TF.Normalize({ 1, 2 }, { 1, 2, 3 }) end, "2 means and 3 stds")
  T.raises(function() TF.Normalize(0, 0) end, "std[1] is 0")
  T.raises(function() TF.apply_native({ TF.Normalize({ 0, 0, 0 }, { 1, 1, 1 }) }, img) end, "3 mean/std values for 2 channels")
end)

T.case("RandomCrop: a window of the padded image", function()
  local img = image(2, 5, 6):to("f32")
  -- crop to the full size without padding is the identity
  same(TF.RandomCrop({ 5, 6 })(img, { seed = 1, epoch = 1, position = 3 }), img)
  local padded = img:pad({ 2, 2, 2, 2 }, "constant", -1)
  local seen = {}
  for pos = 0, 40 do
    local ctx = { seed = 7, epoch = 1, position = pos }
    local out = TF.RandomCrop({ 4, 5 }, { padding = 2, fill = -1 })(img, ctx)
    T.eq(table.concat(out:shape(), "x"), "2x4x5")
    same(TF.apply_native({ TF.RandomCrop({ 4, 5 }, { padding = 2, fill = -1 }) }, img, ctx), out)
    local found
    for top = 0, 5 do
      for left = 0, 5 do
        if not found and max_diff(padded:narrow(2, top + 1, 4):narrow(3, left + 1, 5), out) == 0 then found = top * 10 + left end
      end
    end
    T.ok(found, "the crop is a window of the padded image")
    seen[found] = true
  end
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  T.ok(n > 8, "crops land at many offsets, got " .. n)
  T.raises(function() TF.RandomCrop(9)(img) end, "does not fit")
end)

T.case("RandomHorizontalFlip: p = 0, 1, 0.5", function()
  local img = image(3, 4, 5):to("f32")
  same(TF.RandomHorizontalFlip(1)(img), img:flip(3))
  same(TF.RandomHorizontalFlip(0)(img), img)
  local flips = 0
  for pos = 0, 399 do
    local out = TF.apply_native({ TF.RandomHorizontalFlip(0.5) }, img, { seed = 3, epoch = 2, position = pos })
    if max_diff(out, img) ~= 0 then
      same(out, img:flip(3))
      flips = flips + 1
    end
  end
  T.ok(flips > 160 and flips < 240, "about half flipped: " .. flips)
end)

T.case("RandomErasing: one box of the asked value and size", function()
  local img = (image(2, 16, 16):to("f32") + 1)
  local erased = 0
  for pos = 0, 99 do
    local ctx = { seed = 11, epoch = 1, position = pos }
    local step = TF.RandomErasing { p = 0.75, scale = { 0.05, 0.2 }, ratio = { 0.5, 2 }, value = 0 }
    local out = step(img, ctx)
    same(TF.apply_native({ step }, img, ctx), out)
    local zeros = out:eq(0):to("i64"):sum():item()
    if zeros > 0 then
      erased = erased + 1
      T.eq(zeros % 2, 0, "both channels erased alike")
      local area = zeros // 2
      T.ok(area >= 0.05 * 256 * 0.6 and area <= 0.2 * 256 * 1.6, "area " .. area)
      -- the box is a rectangle: its rows and columns
      local mask = out:select(1, 1):eq(0):to("i64")
      local rows, cols = mask:sum(2):gt(0):to("i64"):sum():item(), mask:sum(1):gt(0):to("i64"):sum():item()
      T.eq(rows * cols, area)
      -- outside the box nothing changed
      T.eq(max_diff(out + out:eq(0):to("f32") * img, img), 0.0)
    else
      same(out, img)
    end
  end
  T.ok(erased > 55 and erased < 95, "about 3/4 erased: " .. erased)
  same(TF.RandomErasing(0)(img), img)
  -- random values: the same noise in C and Lua
  local ctx = { seed = 5, epoch = 4, position = 2 }
  local r = TF.RandomErasing { p = 1, value = "random" }
  same(TF.apply_native({ r }, img, ctx), r(img, ctx))
  T.raises(function() TF.RandomErasing { value = "noise" } end, 'number or "random"')
end)

-- ---- the DataLoader ----------------------------------------------------------------------

local N = 23
local function toy()
  local x = torsh.arange(N * 2 * 6 * 6):remainder(251):to("u8"):view(N, 2, 6, 6)
  return data.TensorDataset(x, torsh.arange(N))   -- label = sample index
end

local function epoch_batches(loader)
  local xs, ys = {}, {}
  for i, x, y in loader:iter() do xs[i], ys[i] = x, y end
  return xs, ys
end

local function labels_of(ys)
  local out = {}
  for _, y in ipairs(ys) do
    for _, v in ipairs(y:totable()) do out[#out + 1] = v end
  end
  return out
end

T.case("DataLoader: every sample once per epoch, batch shapes, drop_last, #loader", function()
  local ds = toy()
  local loader = data.DataLoader(ds, { batch_size = 5, shuffle = true, seed = 1 })
  T.eq(#loader, 5)
  T.eq(loader.fast, true)
  local xs, ys = epoch_batches(loader)
  T.eq(#xs, 5)
  T.eq(table.concat(xs[1]:shape(), "x"), "5x2x6x6")
  T.eq(xs[1]:dtype(), "f32")
  T.eq(ys[1]:dtype(), "i64")
  T.eq(xs[5]:size(1), 3)
  local seen = {}
  for _, v in ipairs(labels_of(ys)) do
    T.eq(seen[v], nil, "sample " .. v .. " twice")
    seen[v] = true
  end
  for i = 0, N - 1 do T.ok(seen[i], "sample " .. i .. " missing") end
  -- the batch holds the samples its labels name
  local y1 = ys[2]:totable()
  for j = 1, #y1 do same(xs[2]:select(1, j), ds.samples:select(1, y1[j] + 1)) end
  T.eq(loader:state().epoch, 2)
  T.eq(loader:state().batch, 0)
  local dl = data.DataLoader(ds, { batch_size = 5, drop_last = true, shuffle = true, seed = 1 })
  T.eq(#dl, 4)
  local dx = epoch_batches(dl)
  T.eq(#dx, 4)
  T.eq(dx[4]:size(1), 5)
  -- without shuffle: in order
  local plain = data.DataLoader(ds, { batch_size = 10 })
  local _, py = epoch_batches(plain)
  T.close(py[3], { 20, 21, 22 })
  -- the call form
  local n = 0
  for x, y in plain() do n = n + x:size(1); T.eq(y:size(1), x:size(1)) end
  T.eq(n, N)
end)

T.case("DataLoader: shuffle reproducible with a seed, new order each epoch", function()
  local ds = toy()
  local function order(seed, epochs)
    local l = data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = seed })
    local out = {}
    for e = 1, epochs do
      local _, ys = epoch_batches(l)
      out[e] = table.concat(labels_of(ys), ",")
    end
    return out
  end
  local a, b, c = order(42, 2), order(42, 2), order(43, 1)
  T.eq(a[1], b[1])
  T.eq(a[2], b[2])
  T.ok(a[1] ~= a[2], "epochs differ")
  T.ok(a[1] ~= c[1], "seeds differ")
  -- torsh.manual_seed fixes the default seed
  torsh.manual_seed(5)
  local s1 = data.DataLoader(ds, { shuffle = true }).seed
  torsh.manual_seed(5)
  T.eq(data.DataLoader(ds, { shuffle = true }).seed, s1)
end)

local AUGMENT = TF.Compose { TF.RandomCrop(5, 1), TF.RandomHorizontalFlip(), TF.ToTensor(),
                             TF.Normalize({ 0.4, 0.5 }, { 0.2, 0.3 }), TF.RandomErasing { p = 0.5, value = "random" } }

T.case("DataLoader: identical batches with 0, 1, 2, 3 workers and any prefetch", function()
  local ds = toy()
  local ref
  for _, cfg in ipairs { { 0 }, { 1 }, { 2 }, { 3, 1 }, { 2, 8 } } do
    local l = data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 9, num_workers = cfg[1], prefetch = cfg[2],
                                    transform = AUGMENT })
    l:set_epoch(3)
    local xs, ys = epoch_batches(l)
    if not ref then ref = { xs, ys }
    else
      T.eq(#xs, #ref[1])
      for i = 1, #xs do
        same(xs[i], ref[1][i], "workers " .. cfg[1] .. " batch " .. i)
        same(ys[i], ref[2][i])
      end
    end
  end
end)

T.case("DataLoader: the Lua path gives the C path's batches", function()
  local ds = toy()
  local lua_ds = data.Dataset { len = function() return ds:len() end, get = function(_, i) return ds:get(i) end }
  local fast = data.DataLoader(ds, { batch_size = 6, shuffle = true, seed = 4, transform = AUGMENT })
  local slow = data.DataLoader(lua_ds, { batch_size = 6, shuffle = true, seed = 4, transform = AUGMENT })
  T.eq(#lua_ds, N)
  T.eq(fast.fast, true)
  T.eq(slow.fast, false)
  for _ = 1, 2 do
    local fx, fy = epoch_batches(fast)
    local sx, sy = epoch_batches(slow)
    T.eq(#fx, #sx)
    for i = 1, #fx do
      same(fx[i], sx[i], "batch " .. i)
      same(fy[i], sy[i])
    end
  end
  -- a Lua function in the pipeline forces the Lua path on a TensorDataset
  local lam = data.DataLoader(ds, { batch_size = 6, transform = TF.Compose { TF.ToFloat { add_channel = false }, TF.Lambda(function(x) return x * 2 end) } })
  T.eq(lam.fast, false)
  local _, x1 = lam:iter()()
  same(x1, ds.samples:narrow(1, 1, 6):to("f32") / 255 * 2)
end)

T.case("DataLoader: resume from state() gives the remaining batches bit for bit", function()
  local ds = toy()
  local opts = { batch_size = 3, shuffle = true, seed = 77, num_workers = 2, transform = AUGMENT }
  local full = data.DataLoader(ds, opts)
  local ex1, ey1 = epoch_batches(full)
  local ex2 = epoch_batches(full)
  -- stop after 4 batches of epoch 1
  local part = data.DataLoader(ds, opts)
  local st
  for i, x in part:iter() do
    same(x, ex1[i])
    if i == 4 then st = part:state(); break end
  end
  T.eq(st.epoch, 1)
  T.eq(st.batch, 4)
  T.eq(st.seed, 77)
  -- a new loader (other worker count) picks up there
  local again = data.DataLoader(ds, { batch_size = 3, shuffle = true, seed = 1, num_workers = 0, transform = AUGMENT })
  again:load_state(st)
  local n = 4
  for i, x, y in again:iter() do
    T.eq(i, n + 1)
    n = i
    same(x, ex1[i])
    same(y, ey1[i])
  end
  T.eq(n, #ex1)
  local rx = epoch_batches(again)
  for i = 1, #ex2 do same(rx[i], ex2[i]) end
  -- set_epoch to the epoch a state is in keeps its position; another epoch restarts
  local kept = data.DataLoader(ds, opts)
  kept:load_state { epoch = 1, batch = 6, seed = 77 }
  kept:set_epoch(1)
  local i1, kx = kept:iter()()
  T.eq(i1, 7)
  same(kx, ex1[7])
  kept:set_epoch(2)
  T.eq(kept:state().batch, 0)
  -- a state taken at the last batch resumes with the next epoch
  local last = data.DataLoader(ds, opts)
  for i in last:iter() do if i == #ex1 then st = last:state(); break end end
  local next_epoch = data.DataLoader(ds, opts)
  next_epoch:load_state(st)
  local nx = epoch_batches(next_epoch)
  same(nx[1], ex2[1])
  T.raises(function() again:load_state { epoch = 1, batch = 99 } end, "past the 8 batches")
end)

T.case("DataLoader: closing mid-epoch stops the workers and frees the batches", function()
  local ds = toy()
  collectgarbage()
  collectgarbage()
  local before = torsh.memory().live
  do
    local l = data.DataLoader(ds, { batch_size = 2, shuffle = true, seed = 3, num_workers = 3, prefetch = 4, transform = AUGMENT })
    local step, s, c, closing = l:iter()
    T.ok(step(s, c))
    T.eq(closing:closed(), false)
    for i in l:iter() do if i == 3 then break end end   -- the for loop's closing value joins the threads
    closing:close()
    T.eq(closing:closed(), true)
    T.raises(function() closing:next() end, "loader is closed")
    -- dropped without closing: __gc joins
    local _ = l:iter()
  end
  collectgarbage()
  collectgarbage()
  T.eq(torsh.memory().live, before)
end)

T.case("DataLoader: a Lua dataset with number labels, and argument errors", function()
  local ds = data.Dataset {
    len = function() return 5 end,
    get = function(_, i) return torsh.full({ 2 }, i), i * 0.5 end,
  }
  local l = data.DataLoader(ds, { batch_size = 2 })
  local _, x, y = l:iter()()
  T.close(x, { { 1, 1 }, { 2, 2 } })
  T.eq(y:dtype(), "f32")
  T.close(y, { 0.5, 1 })
  T.raises(function() data.DataLoader(ds, { batch_size = 0 }) end, "batch_size must be an integer >= 1")
  T.raises(function() data.DataLoader({}, {}) end, "needs len() and get(i)")
  T.raises(function() toy():get(0) end, "out of range 1..23")
  T.raises(function() data.TensorDataset(torsh.zeros(3, 2), torsh.zeros(4)) end, "3 samples but 4 labels")
  T.raises(function() C.Loader(torsh.zeros(3, 2), nil, torsh.tensor({ 0, 5 }), { batch_size = 1 }) end,
    "order[1] = 5 is out of range for 3 samples")
  T.raises(function() C.Loader(torsh.zeros(3, 2), nil, nil, { batch_size = 1, transforms = { { kind = "blur" } } }) end,
    "unknown kind 'blur'")
end)

T.finish()
