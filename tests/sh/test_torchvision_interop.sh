#!/usr/bin/env bash
# test_torchvision_interop.sh BUILD — torchvision's ResNet-18 and
# MobileNetV2 state dicts (made by real PyTorch, saved as .npy by
# tests/fixtures/make_torchvision_npy.py) load into torsh's zoo models with
# strict=true and give PyTorch's outputs. Skipped without python3-torchvision.
set -u
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py_has torchvision || skip_all torchvision "python3-torchvision is not installed"

compare() {   # MODEL
  /usr/bin/python3 tests/fixtures/make_torchvision_npy.py "$tmp/$1" "$1" || return 1
  "$build/torsh" -e "
    local data, nn = require 'torsh.data', require 'torsh.nn'
    local dir = '$tmp/$1'
    local model = nn.zoo['$1']()
    local sd = {}
    for key in io.lines(dir .. '/__keys__.txt') do sd[key] = data.npy_read(dir .. '/' .. key .. '.npy') end
    model:load_state_dict(sd)                       -- strict
    model:eval()
    local y = torsh.no_grad(function() return model(data.npy_read(dir .. '/__input__.npy')) end)
    local want = data.npy_read(dir .. '/__output__.npy')
    local diff = (y - want):abs():amax():item()
    print(string.format('$1: max abs difference %.3g', diff))
    assert(diff < 1e-4, 'outputs differ by ' .. diff)
  "
}
t_resnet() { compare resnet18; }
check "torchvision resnet18 state dict -> torsh resnet18, same outputs" t_resnet
t_mobilenet() { compare mobilenet_v2; }
check "torchvision mobilenet_v2 state dict -> torsh mobilenet_v2, same outputs" t_mobilenet
finish torchvision
