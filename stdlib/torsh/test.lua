-- torsh/test.lua — the test runner for Lua tests.
--
--   local T = require "torsh.test"
--   T.case("add broadcasts", function()
--     T.close(torsh.ones(2, 3) + torsh.ones(3), {{2,2,2},{2,2,2}})
--   end)
--   T.finish()        -- prints "N passed, N failed, N skipped"; exits 1 on failure
--
-- Assertions raise with the caller's file:line; a case fails on the first.
-- T.skip(reason) inside a case marks it skipped. T.raises(fn, pattern)
-- checks an error message, T.same_bytes(a, b) two tensors' bytes. Files:
-- T.tmpdir() (a fresh folder, removed by T.finish()), T.read_file,
-- T.write_file, T.listdir. Counts go to $TORSH_TEST_RESULTS/<file> for the
-- suite's closing line (tools/run-tests.sh).
local torsh = require "torsh"

local T = { passed = 0, failed = 0, skipped = 0 }
local SKIP = setmetatable({}, { __tostring = function() return "skip" end })
local filter = os.getenv("TORSH_TEST_FILTER")

local function fmt(v)
  if torsh.is_tensor(v) then return tostring(v) end
  if type(v) == "table" then return require("torsh.format").table(v) end
  return tostring(v)
end

--- T.case(name, fn): runs one test case.
function T.case(name, fn)
  if filter and not name:find(filter, 1, true) then return end
  local ok, err = xpcall(fn, function(e)
    if e == SKIP or (type(e) == "table" and e.skip) then return e end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then
    T.passed = T.passed + 1
    io.write("ok ", name, "\n")
  elseif type(err) == "table" and err.skip then
    T.skipped = T.skipped + 1
    io.write("skip ", name, ": ", err.reason, "\n")
  else
    T.failed = T.failed + 1
    io.write("not ok ", name, "\n", "  ", tostring(err):gsub("\n", "\n  "), "\n")
  end
end

function T.skip(reason) error({ skip = true, reason = reason or "" }, 0) end

function T.ok(cond, msg)
  if not cond then error(msg or "assertion failed", 2) end
end

function T.eq(got, want, msg)
  if got ~= want then
    error(string.format("%sexpected %s, got %s", msg and msg .. ": " or "", fmt(want), fmt(got)), 2)
  end
end

-- Flattens a tensor or nested table into a list, recording the shape.
local function flatten(v, out, shape, depth)
  if torsh.is_tensor(v) then v = v:to(v:dtype() == "bool" and "bool" or (v:dtype() == "f16" or v:dtype() == "bf16") and "f32" or v:dtype()):totable() end
  if type(v) ~= "table" then out[#out + 1] = v; return end
  shape[depth] = shape[depth] or #v
  if shape[depth] ~= #v then shape.ragged = true end
  for _, x in ipairs(v) do flatten(x, out, shape, depth + 1) end
end

local function shape_of(v)
  if torsh.is_tensor(v) then return v:shape() end
  local s, x = {}, v
  while type(x) == "table" do s[#s + 1] = #x; x = x[1] end
  return s
end

--- T.close(got, want, tol): elementwise |got - want| <= atol + rtol*|want|
--- (tol: number for both, or {atol=, rtol=}; default 1e-5). Shapes must match;
--- NaN matches NaN; booleans compare exactly.
function T.close(got, want, tol, msg)
  local atol, rtol = 1e-5, 1e-5
  if type(tol) == "number" then atol, rtol = tol, tol
  elseif type(tol) == "table" then atol, rtol = tol.atol or atol, tol.rtol or rtol end
  local gs, ws = shape_of(got), shape_of(want)
  if type(want) ~= "table" and not torsh.is_tensor(want) then ws = gs end
  if #gs ~= #ws then error(string.format("%sshape %s vs expected %s", msg and msg .. ": " or "", fmt(gs), fmt(ws)), 2) end
  for i = 1, #gs do
    if gs[i] ~= ws[i] then error(string.format("%sshape %s vs expected %s", msg and msg .. ": " or "", fmt(gs), fmt(ws)), 2) end
  end
  local g, w = {}, {}
  flatten(got, g, {}, 1)
  flatten(want, w, {}, 1)
  if #w == 1 and #g > 1 then for i = 2, #g do w[i] = w[1] end end
  if #g ~= #w then error(string.format("%s%d values vs %d expected", msg and msg .. ": " or "", #g, #w), 2) end
  for i = 1, #g do
    local a, b = g[i], w[i]
    if type(a) == "boolean" or type(b) == "boolean" then
      if a ~= b then error(string.format("%sat flat index %d: got %s, expected %s", msg and msg .. ": " or "", i, tostring(a), tostring(b)), 2) end
    elseif not (a ~= a and b ~= b) then
      local ok = (a == b) or math.abs(a - b) <= atol + rtol * math.abs(b)
      if not ok then
        error(string.format("%sat flat index %d: got %.9g, expected %.9g (atol %g, rtol %g)",
          msg and msg .. ": " or "", i, a, b, atol, rtol), 2)
      end
    end
  end
end

--- T.raises(fn, pattern): fn must raise an error whose message contains pattern (plain).
function T.raises(fn, pattern)
  local ok, err = pcall(fn)
  if ok then error("expected an error" .. (pattern and (" matching '" .. pattern .. "'") or ""), 2) end
  if pattern and not tostring(err):find(pattern, 1, true) then
    error(string.format("error '%s' does not contain '%s'", tostring(err), pattern), 2)
  end
  return err
end

--- T.same_bytes(a, b, msg): tensors a and b have the same dtype, the same
--- shape and the same bytes (compared by CRC-32; any strides).
function T.same_bytes(a, b, msg)
  local function differ(what, x, y)
    error(string.format("%s%s differ: %s vs %s", msg and msg .. ": " or "", what, tostring(x), tostring(y)), 3)
  end
  if a:dtype() ~= b:dtype() then differ("dtypes", a:dtype(), b:dtype()) end
  local sa, sb = table.concat(a:shape(), ","), table.concat(b:shape(), ",")
  if sa ~= sb then differ("shapes", "[" .. sa .. "]", "[" .. sb .. "]") end
  local ca, cb = torsh._io.crc32(a), torsh._io.crc32(b)
  if ca ~= cb then differ("bytes", string.format("crc32 %08x", ca), string.format("crc32 %08x", cb)) end
end

--- T.tensor(spec): a tensor from a fixture record {dtype=, shape=, data=flat list}
--- (the form tests/fixtures/luafmt.py writes); handles 0-dim, empty, f16/bf16.
function T.tensor(spec)
  local t
  if #spec.data == 0 then t = torsh.zeros(0, spec.dtype)
  elseif spec.dtype == "f16" or spec.dtype == "bf16" then t = torsh.tensor(spec.data, "f64"):to(spec.dtype)
  else t = torsh.tensor(spec.data, spec.dtype) end
  return t:reshape(spec.shape)
end

-- ---- files ----------------------------------------------------------------------

local tmpdirs = {}

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- T.tmpdir(): a new empty folder (mktemp -d) and a function naming a path
--- inside it; the folder and all in it are removed by T.finish().
---   local tmpdir, tmp = T.tmpdir()      -- tmp("a.bin") == tmpdir .. "/a.bin"
function T.tmpdir()
  local p = assert(io.popen("mktemp -d -t torsh_test.XXXXXX"))
  local dir = p:read("l")
  p:close()
  if not dir or dir == "" then error("T.tmpdir: mktemp -d failed", 2) end
  tmpdirs[#tmpdirs + 1] = dir
  return dir, function(name) return dir .. "/" .. name end
end

--- T.read_file(path): the file's bytes (raises when it cannot be read).
function T.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("T.read_file: " .. err, 2) end
  local s = f:read("a")
  f:close()
  return s
end

--- T.write_file(path, bytes): (re)writes the file; returns path.
function T.write_file(path, bytes)
  local f, err = io.open(path, "wb")
  if not f then error("T.write_file: " .. err, 2) end
  f:write(bytes)
  f:close()
  return path
end

--- T.listdir(dir): the names in dir, hidden ones too, sorted ({} when dir
--- does not exist).
function T.listdir(dir)
  local p = assert(io.popen("ls -A " .. quote(dir) .. " 2>/dev/null"))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

--- T.finish(): removes the T.tmpdir() folders, prints the closing line and
--- exits (status 1 on failures).
function T.finish()
  for _, dir in ipairs(tmpdirs) do os.execute("rm -rf " .. quote(dir)) end
  io.write(string.format("%d passed, %d failed, %d skipped\n", T.passed, T.failed, T.skipped))
  local dir = os.getenv("TORSH_TEST_RESULTS")
  if dir and dir ~= "" then
    local name = (arg and arg[0] or "lua"):gsub("[^%w_.-]", "_")
    local f = io.open(dir .. "/lua_" .. name, "w")
    if f then f:write(string.format("%d %d %d\n", T.passed, T.failed, T.skipped)); f:close() end
  end
  io.stdout:flush()
  os.exit(T.failed == 0 and 0 or 1, true)
end

return T
