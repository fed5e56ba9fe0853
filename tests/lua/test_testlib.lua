-- test_testlib.lua — the file helpers of the test runner itself
-- (stdlib/torsh/test.lua): T.tmpdir() gives fresh, distinct, empty folders
-- that T.finish() removes (checked in a child interpreter), T.read_file /
-- T.write_file keep bytes exactly, T.listdir lists hidden names too, sorted;
-- T.same_bytes compares dtype, shape and bytes.
local T = require "torsh.test"

local function exists(path)
  local ok = os.execute("test -e '" .. path .. "'")
  return ok == true
end

T.case("T.tmpdir: fresh, distinct, empty folders; tmp() names paths inside", function()
  local a, tmp_a = T.tmpdir()
  local b = T.tmpdir()
  T.ok(a ~= b, "two calls gave the same folder " .. a)
  T.ok(exists(a) and exists(b))
  T.eq(#T.listdir(a), 0)
  T.eq(tmp_a("x.bin"), a .. "/x.bin")
end)

T.case("T.write_file / T.read_file / T.listdir", function()
  local dir, tmp = T.tmpdir()
  local bytes = "\0\1\255 line\r\nend\0"
  T.eq(T.write_file(tmp("b"), bytes), tmp("b"))
  T.eq(T.read_file(tmp("b")), bytes)
  T.write_file(tmp(".hidden"), "")
  T.write_file(tmp("a"), "x")
  T.eq(table.concat(T.listdir(dir), ","), ".hidden,a,b")
  T.eq(#T.listdir(tmp("nowhere")), 0)
  T.raises(function() T.read_file(tmp("missing")) end, "T.read_file: " .. tmp("missing"))
  T.raises(function() T.write_file(tmp("no/such/dir"), "x") end, "T.write_file: ")
end)

T.case("T.same_bytes: dtype, shape and bytes", function()
  local torsh = require "torsh"
  local a = torsh.arange(6):reshape(2, 3)
  T.same_bytes(a, a:t():contiguous():t(), "strides do not matter")
  T.raises(function() T.same_bytes(a, a:to("f64")) end, "dtypes differ")
  T.raises(function() T.same_bytes(a, a:reshape(3, 2), "x") end, "x: shapes differ: [2,3] vs [3,2]")
  local b = a:clone()
  b:set(7, 2, 3)
  T.raises(function() T.same_bytes(a, b) end, "bytes differ")
end)

T.case("T.finish removes the T.tmpdir folders with their contents", function()
  local script = "local T = require 'torsh.test'; local d, tmp = T.tmpdir(); T.write_file(tmp('f'), 'x'); " ..
                 "os.execute('mkdir ' .. tmp('sub')); T.write_file(tmp('sub/g'), 'y'); print(d); T.finish()"
  local p = assert(io.popen(string.format("%q -e %q 2>&1", arg[-1] or "torsh", script)))
  local out = p:read("a")
  local ok = p:close()
  T.ok(ok, out)
  local dir = out:match("^(%S+)\n")
  T.ok(dir and dir:find("torsh_test", 1, true), out)
  T.ok(not exists(dir), dir .. " is still there after T.finish()")
end)

T.finish()
