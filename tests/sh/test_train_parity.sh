#!/usr/bin/env bash
# test_train_parity.sh BUILD — the whole training stack against PyTorch:
# the recipe CNN starts from PyTorch's initial weights and takes the same 20
# Adam steps on the same batches; every step's loss, and the final model's
# eval-mode output, must match PyTorch's (f32 tolerance, growing slowly with
# the steps as rounding differences compound). Skipped without python3-torch.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py_has torch || skip_all train_parity "python3-torch is not installed"
t_parity() {
  /usr/bin/python3 tests/fixtures/make_train_parity.py "$tmp" || return 1
  "$build/torsh" -e "
    local nn, optim, data = torsh.nn, torsh.optim, torsh.data
    torsh.set_num_threads(1)
    local dir = '$tmp'
    local model = nn.zoo.fashion_cnn()
    local sd = {}
    for k in io.lines(dir .. '/keys.txt') do sd[k] = data.npy_read(dir .. '/' .. k .. '.npy') end
    model:load_state_dict(sd)
    local xs, ys = data.npy_read(dir .. '/x.npy'), data.npy_read(dir .. '/y.npy')
    local want = data.npy_read(dir .. '/losses.npy')
    local opt = optim.Adam(model:parameters(), { lr = 1e-3 })
    for i = 1, 20 do
      local loss = nn.functional.cross_entropy(model(xs:select(1, i)), ys:select(1, i))
      opt:zero_grad()
      loss:backward()
      opt:step()
      local got, exp = loss:item(), want:get(i)
      local tol = 1e-5 * i + 1e-5
      assert(math.abs(got - exp) <= tol * math.max(1, math.abs(exp)),
        string.format('step %d: loss %.8f, PyTorch %.8f', i, got, exp))
    end
    model:eval()
    local y = torsh.no_grad(function() return model(xs:select(1, 1)) end)
    local d = (y - data.npy_read(dir .. '/eval_out.npy')):abs():amax():item()
    assert(d < 2e-3, 'eval output after 20 steps differs by ' .. d)
  "
}
check "recipe CNN: 20 Adam steps from PyTorch's weights give PyTorch's losses" t_parity
finish train_parity
