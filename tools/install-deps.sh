#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages torsh needs to build, test
# and benchmark. As root it runs apt-get; otherwise it prints the exact
# apt-get line to run and exits 1. Idempotent: exits at once when all is there.
set -euo pipefail

BUILD_PKGS="build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-cjson libopenblas-dev libopenblas0-pthread zlib1g-dev libreadline-dev libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler"
# reference outputs and benchmarks compare against real PyTorch / NumPy
TEST_PKGS="python3-numpy python3-torch python3-torchvision python3-onnx python3-protobuf chromium nginx-light curl dataset-fashion-mnist"

missing=()
for p in $BUILD_PKGS ${TORSH_SKIP_TEST_DEPS:+} $([ -n "${TORSH_SKIP_TEST_DEPS:-}" ] || echo "$TEST_PKGS"); do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "torsh needs these Debian packages: ${missing[*]}" >&2
  echo "run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
