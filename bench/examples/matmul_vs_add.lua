-- example for `torsh bench`: matmul 128x128 vs 256x256, contiguous vs transposed add
-- Run: torsh bench bench/examples/matmul_vs_add.lua [--format markdown]
local n = 256
local x, y = torsh.randn(n, n), torsh.randn(n, n)
local xt = x:t()
local s, s2 = torsh.randn(128, 128), torsh.randn(128, 128)

return {
  min_time = 0.5,
  cases = {
    { name = "add 256x256", fn = function() local r <close> = x + y end },
  },
  compare = {
    { name = "matmul 128 vs 256",
      a = function() local r <close> = s:matmul(s2) end,
      b = function() local r <close> = x:matmul(y) end },
    { name = "add contiguous vs transposed",
      a = function() local r <close> = x + y end,
      b = function() local r <close> = xt + y end },
  },
}
