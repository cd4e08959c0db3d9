#!/usr/bin/env bash
# Install every Debian package cldetr needs to build, test and run on the CPU
# (PoCL). Run as root (or with sudo). Safe to run again.
# The sanitizer build (tools/test.sh --sanitize) needs GCC's ASan and UBSan
# runtimes, libasan8 and libubsan1: build-essential's gcc depends on them.
# oclgrind runs the op cases on a simulated device with its uninitialised-value
# and data-race checks (tests/device/test_oclgrind.sh; skipped without it).
# Open MPI: data-parallel training under mpirun (docs/parallel.md; optional
# for the build, its test is skipped without it).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential pkg-config meson ninja-build python3
      pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo
      libclblast-dev libstb-dev libinih-dev libcjson-dev libopenblas-dev
      fonts-dejavu-core oclgrind libopenmpi-dev openmpi-bin"
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
