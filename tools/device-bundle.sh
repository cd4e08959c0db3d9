#!/usr/bin/env bash
# Gather the built binaries and the shared libraries they need (found with
# ldd, glibc excluded) into BUILD/bundle, with an ICD file and scripts, so
# cldetr and its tests run on a GPU machine where nothing can be installed.
#
#   tools/device-bundle.sh [BUILD_DIR]          -> BUILD_DIR/bundle
#   on the GPU machine, from the repository root:
#     BUILD_DIR/bundle/env.sh cldetr devices
#     BUILD_DIR/bundle/run-tests.sh              (every test binary, TAP; "N passed, N failed")
#     BUILD_DIR/bundle/run-bench.sh [OUTDIR]     (issue 12's GPU timings: shapes, R50 800x800, GEMM)
#
# The ICD file points at NVIDIA's libnvidia-opencl.so.1; env.sh looks for it in
# the usual folders (or $NVIDIA_OPENCL) and writes the .icd file there.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
out="$build/bundle"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/tests"
cp "$build/src/cli/cldetr" "$out/bin/"
for b in bench_gemm bench_perf_kernels bench_conv; do cp "$build/bench/$b" "$out/bin/"; done
find "$build/tests" -maxdepth 2 -type f -name 'test_*' -perm -u+x -exec cp {} "$out/tests/" \;
cp tests/*/*.sh "$out/tests/" 2>/dev/null || true
for f in "$out"/bin/* "$out"/tests/test_*; do
  [ -f "$f" ] && file "$f" | grep -q ELF || continue
  ldd "$f" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
      *) cp -n "$lib" "$out/lib/" ;;
    esac
  done
done
cat > "$out/env.sh" <<'EOS'
#!/usr/bin/env bash
# Run a command with the bundle's libraries and NVIDIA's OpenCL driver.
here=$(cd "$(dirname "$0")" && pwd)
lib=${NVIDIA_OPENCL:-}
for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/lib64 /usr/lib; do
  [ -n "$lib" ] && break
  [ -e "$d/libnvidia-opencl.so.1" ] && lib="$d/libnvidia-opencl.so.1"
done
[ -z "$lib" ] && lib=$(find / -name 'libnvidia-opencl.so*' 2>/dev/null | head -1)
mkdir -p "$here/vendors"
echo "$lib" > "$here/vendors/nvidia.icd"
export OCL_ICD_VENDORS="$here/vendors"
export LD_LIBRARY_PATH="$here/lib:${LD_LIBRARY_PATH:-}"
export PATH="$here/bin:$PATH"
exec "$@"
EOS
cat > "$out/run-tests.sh" <<'EOS'
#!/usr/bin/env bash
# Every test binary of the bundle on the default device, then "N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
export CLDETR_SOURCE_ROOT=${CLDETR_SOURCE_ROOT:-$(pwd)}
export CLDETR_BIN="$here/bin/cldetr"
pass=0; fail=0
for t in "$here"/tests/test_*; do
  name=$(basename "$t")
  case "$name" in *.sh) args=("$CLDETR_BIN");; *) args=();; esac
  out=$("$here/env.sh" timeout 600 "$t" "${args[@]}" 2>&1); rc=$?
  p=$(grep -c '^ok ' <<<"$out"); f=$(grep -c '^not ok ' <<<"$out")
  [ $rc != 0 ] && [ "$f" = 0 ] && f=1
  pass=$((pass + p)); fail=$((fail + f))
  printf '%-32s %4d passed %3d failed (exit %d)\n' "$name" "$p" "$f" "$rc"
  [ "$f" != 0 ] && grep -E '^not ok|^#' <<<"$out" | head -15
done
echo "$pass passed, $fail failed"
EOS
cat > "$out/run-bench.sh" <<'EOS'
#!/usr/bin/env bash
# The GPU timing set of issue 12 in one go, from
# the repository root: the devices, the shapes step as trained and as the
# PyTorch twin, DETR-R50 800x800 batch 2 (timed, then profiled), the three
# again with fused attention (CLDETR_ATTENTION=fused: is it faster on a GPU?),
# shapes and R50 with a conv's operands read in place (CLDETR_CONV_TILES=implicit),
# the GEMM paths at R50's shapes, then `cldetr tune --kernels tiles` (the tile
# GEMM's shape pairs timed; the best stored) and the three steps with its
# pair (about 7 minutes in all). Logs go to OUTDIR (default $OUT, else bench-logs).
#   BUILD/bundle/run-bench.sh [OUTDIR]
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${OUT:-bench-logs}}
mkdir -p "$out"
run() {   # name, seconds, command...
  local name=$1 secs=$2; shift 2
  echo "== $name: $*" | tee "$out/$name.log"
  "$here/env.sh" timeout "$secs" "$@" >> "$out/$name.log" 2>&1
  echo "(exit $?)" >> "$out/$name.log"
  grep -E '^(device|step|first step|memory|device time|matrix kernels)' "$out/$name.log"
}
twin=(--set model.num_queries=20 --set model.dropout=0.1 --set train.query_groups=1 --set train.dn_groups=0)
r50=(configs/detr_r50.ini --set augment.scales=800 --set augment.max_size=800 --set model.num_classes=91)
run devices 60 cldetr devices
run shapes 120 cldetr bench configs/shapes.ini --steps 30
run shapes-profile 120 cldetr bench configs/shapes.ini --steps 20 --profile
run twin 120 cldetr bench configs/shapes.ini "${twin[@]}" --steps 30
run twin-profile 120 cldetr bench configs/shapes.ini "${twin[@]}" --steps 20 --profile
run r50 240 cldetr bench "${r50[@]}" --steps 10 --warmup 2
run r50-profile 240 cldetr bench "${r50[@]}" --steps 3 --warmup 1 --profile
run shapes-fused 120 env CLDETR_ATTENTION=fused cldetr bench configs/shapes.ini --steps 30
run twin-fused 120 env CLDETR_ATTENTION=fused cldetr bench configs/shapes.ini "${twin[@]}" --steps 30
run r50-fused 240 env CLDETR_ATTENTION=fused cldetr bench "${r50[@]}" --steps 10 --warmup 2 --profile
run shapes-implicit 120 env CLDETR_CONV_TILES=implicit cldetr bench configs/shapes.ini --steps 30 --profile
run r50-implicit 240 env CLDETR_CONV_TILES=implicit cldetr bench "${r50[@]}" --steps 10 --warmup 2 --profile
run gemm-r50 240 bench_gemm --r50 --paths clblast,tiles,tiles-small,tiles-large
# the tile shapes by measurement: cldetr tune stores the fastest pair in this
# machine's cache, and the steps run again with it (the runs above had the
# built-in pair: a fresh machine has no tuning stored)
run tune-tiles 300 cldetr tune --kernels tiles
run r50-tuned 240 cldetr bench "${r50[@]}" --steps 10 --warmup 2
run twin-tuned 120 cldetr bench configs/shapes.ini "${twin[@]}" --steps 30
run shapes-tuned 120 cldetr bench configs/shapes.ini --steps 30
echo "logs in $out"
EOS
chmod +x "$out/env.sh" "$out/run-tests.sh" "$out/run-bench.sh"
du -sh "$out"
