# Makefile — a thin front for CMake. Everything real lives in CMakeLists.txt.
#   make          install missing Debian packages, configure (Release), build
#   make demo     ... and run recipes/quickstart.lua
#   make test     ... and run every test on the release and the ASan+UBSan
#                 builds; ends with "N passed, N failed, N skipped"
#   make asan     the whole suite under AddressSanitizer + UBSan (build-asan/)
#   make bench    the benchmarks in bench/ (ratios against PyTorch)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build build-asan demo test asan bench clean

all: build

deps:
	@tools/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/torsh recipes/quickstart.lua

test: build build-asan
	@tools/run-tests.sh $(BUILD) build-asan

build-asan: deps
	@[ -f build-asan/CMakeCache.txt ] || cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTORSH_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)

asan: build-asan
	@tools/run-tests.sh build-asan

bench: build
	@tools/run-bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
