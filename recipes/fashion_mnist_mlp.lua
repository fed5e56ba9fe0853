-- fashion_mnist_mlp.lua — train a 784-256-128-10 MLP on Fashion-MNIST
-- (the CNN recipe with --model mlp; every option of recipes/fashion_mnist.lua works).
--   torsh recipes/fashion_mnist_mlp.lua --epochs 2
local args = { "--model", "mlp" }
for i = 1, #arg do args[#args + 1] = arg[i] end
local script = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "fashion_mnist.lua"
local chunk = assert(loadfile(script))
arg = setmetatable(args, { __index = function(_, k) if k == 0 then return script end end })
return chunk(table.unpack(args))
