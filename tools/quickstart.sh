#!/usr/bin/env bash
# The main job on a fresh Debian machine: install the packages, build, list
# the OpenCL devices, make the shapes dataset and train configs/shapes.ini,
# ending with the validation AP table and where the run folder and its charts
# are. (No `cldetr tune`: the training step runs cldetr's own GEMM kernels on
# CPUs and GPUs; tuning only serves CLBlast, CLDETR_GEMM_KERNELS=clblast.)
# Usage: tools/quickstart.sh [--set section.key=value ...]   (run as root or with sudo for the install)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then tools/install-deps.sh; else sudo tools/install-deps.sh; fi
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
./build/src/cli/cldetr devices
exec ./build/src/cli/cldetr train configs/shapes.ini "$@"
