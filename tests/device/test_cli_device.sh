#!/usr/bin/env bash
# CLI checks of the device layer (TAP): `cldetr devices`, the no-platform
# message, `cldetr selftest`, a kernel broken on purpose, unknown verbs, the
# CLDETR_GEMM_KERNELS, CLDETR_KERNEL_SHAPE, CLDETR_ATTENTION and CLDETR_CONV_TILES switches.
bin=$1
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache

out=$("$bin" devices 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $([ $rc = 0 ] && echo "$out" | grep -q '^\*' && echo 0 || echo 1) "devices lists a default device"

mkdir "$tmp/novendors"
out=$(OCL_ICD_VENDORS=$tmp/novendors "$bin" devices 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $([ $rc = 1 ] && echo "$out" | grep -q "pocl-opencl-icd" && echo 0 || echo 1) "no platform: exit 1 and the install hint"

out=$("$bin" selftest 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $([ $rc = 0 ] && echo "$out" | grep -q "0 failed" && echo 0 || echo 1) "selftest passes on the default device"

# Break elementwise.cl on purpose at a known line and load it via CLDETR_KERNEL_DIR.
mkdir "$tmp/kernels"
cp "$CLDETR_SOURCE_ROOT"/cl/*.cl "$tmp/kernels/"
line=$(grep -n "y\[gid\] = value;" "$tmp/kernels/elementwise.cl" | cut -d: -f1)
sed -i "${line}s/.*/    y[gid] = value +* ;/" "$tmp/kernels/elementwise.cl"
out=$(CLDETR_KERNEL_DIR=$tmp/kernels "$bin" selftest 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $([ $rc = 1 ] && echo 0 || echo 1) "broken kernel: selftest exits 1 (got $rc, not a crash)"
ok $(echo "$out" | grep -q "elementwise.cl:$line:" && echo 0 || echo 1) "broken kernel: the compiler log names elementwise.cl:$line"

out=$(CLDETR_KERNEL_DIR=$tmp/missing "$bin" selftest 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "CLDETR_KERNEL_DIR" && echo 0 || echo 1) "missing CLDETR_KERNEL_DIR folder is named"

out=$(CLDETR_DEVICE=no-such-gpu "$bin" selftest 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "no-such-gpu" && echo 0 || echo 1) "unknown CLDETR_DEVICE is named"

out=$(CLDETR_GEMM_KERNELS=fastest "$bin" selftest 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "CLDETR_GEMM_KERNELS=fastest: unknown; use clblast, rows, tiles or auto" \
     && echo 0 || echo 1) "unknown CLDETR_GEMM_KERNELS is named with the choices"
out=$(CLDETR_GEMM_KERNELS=clblast "$bin" selftest 2>&1); rc=$?
ok $([ $rc = 0 ] && echo 0 || echo 1) "CLDETR_GEMM_KERNELS=clblast: selftest passes on CLBlast (exit $rc)"
out=$(CLDETR_ATTENTION=flash "$bin" bench "$CLDETR_SOURCE_ROOT/configs/shapes.ini" --steps 1 --warmup 0 \
      --set model.num_classes=5 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "CLDETR_ATTENTION=flash: unknown; use fused, separate or auto" \
     && echo 0 || echo 1) "unknown CLDETR_ATTENTION is named with the choices (exit $rc)"
out=$(CLDETR_CONV_TILES=direct "$bin" bench "$CLDETR_SOURCE_ROOT/configs/shapes.ini" --steps 1 --warmup 0 \
      --set model.num_classes=5 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "CLDETR_CONV_TILES=direct: unknown; use implicit, columns or auto" \
     && echo 0 || echo 1) "unknown CLDETR_CONV_TILES is named with the choices (exit $rc)"
out=$(CLDETR_KERNEL_SHAPE=round "$bin" selftest --ops 2>&1); rc=$?
ok $([ $rc = 1 ] && echo "$out" | grep -q "CLDETR_KERNEL_SHAPE=round: unknown; use cpu, gpu or auto" \
     && echo 0 || echo 1) "unknown CLDETR_KERNEL_SHAPE is named with the choices (exit $rc)"
out=$(CLDETR_KERNEL_SHAPE=gpu "$bin" selftest --ops 2>&1); rc=$?
ok $([ $rc = 0 ] && echo "$out" | grep -q " 0 failed$" && echo 0 || echo 1) \
   "CLDETR_KERNEL_SHAPE=gpu: the op cases pass in the GPU shapes on this device too (exit $rc)"

out=$("$bin" frobnicate 2>&1); rc=$?
ok $([ $rc = 2 ] && echo "$out" | grep -q "unknown verb 'frobnicate'" && echo 0 || echo 1) "unknown verb: exit 2 and named"

# devices --help says how each verb picks a device, and what it says works: --set device.device for train
out=$("$bin" devices --help 2>&1); rc=$?
ok $([ $rc = 0 ] && echo "$out" | grep -q "CLDETR_DEVICE=N" && echo "$out" | grep -q "selftest, tune, bench-ops  --device N" \
     && echo 0 || echo 1) "devices --help: CLDETR_DEVICE for any verb, --device only for selftest, tune, bench-ops"
out=$("$bin" train x.ini --device 0 2>&1); rc=$?
ok $([ $rc = 2 ] && echo "$out" | grep -q "unknown option '--device'" && echo 0 || echo 1) "train refuses --device, as the help says"

echo "1..$n"
exit $failed
