-- torsh/nn.lua — torsh.nn: Module, layers, losses, functional forms and the
-- model zoo, with PyTorch's names.
--   local nn = require "torsh.nn"
--   local model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
--   local loss = nn.functional.cross_entropy(model(x), y)
local nn = {}
nn.Module = require "torsh.nn.module"
nn.functional = require "torsh.nn.functional"
nn.F = nn.functional
for k, v in pairs(require "torsh.nn.layers") do nn[k] = v end
for k, v in pairs(require "torsh.nn.loss") do nn[k] = v end
setmetatable(nn, { __index = function(t, k)
  if k == "zoo" then local z = require "torsh.nn.zoo"; rawset(t, "zoo", z); return z end
end })
return nn
