#!/usr/bin/env bash
# The main job on a fresh Debian machine: install the packages, build, list
# the OpenCL devices, tune GEMM for the default device (once, ~20 s on a CPU),
# make the shapes dataset and train configs/shapes.ini, ending with the
# validation AP table and where the run folder and its charts are.
# Usage: tools/quickstart.sh [--set section.key=value ...]   (run as root or with sudo for the install)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then tools/install-deps.sh; else sudo tools/install-deps.sh; fi
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
./build/src/cli/cldetr devices
./build/src/cli/cldetr tune --quick
exec ./build/src/cli/cldetr train configs/shapes.ini "$@"
