#!/usr/bin/env bash
# The op cases (`cldetr selftest --ops`, src/ops/op_cases.c) on oclgrind's
# simulated device with its uninitialised-value and data-race checks (TAP),
# in the kernels' GPU shape (with a conv's operands as im2col's columns and
# read in place) and again in their CPU shape.
# Any oclgrind report fails: in one of our kernels (cl/*.cl), or anywhere else
# (CLBlast's kernels that the conv2d and linear cases call, the OpenCL API,
# oclgrind itself). The GEMM checks of the full selftest are left out: they
# run only CLBlast's kernels (docs/testing.md, "oclgrind").
# Usage: test_oclgrind.sh CLDETR_BINARY; skipped where oclgrind is absent.
bin=$1
if ! command -v oclgrind >/dev/null 2>&1; then
  echo "1..0 # SKIP oclgrind not installed (apt-get install oclgrind)"
  exit 0
fi
root=${CLDETR_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache      # build every program under oclgrind, no cached binaries
export CLDETR_DEVICE=Oclgrind
log=$tmp/oclgrind.log

# One pass per kernel shape. oclgrind says it is a GPU, so the default pass
# runs the GPU shapes; CLDETR_KERNEL_SHAPE=cpu runs the CPU shapes (row GEMM,
# implicit conv, the small-plane im2col and col2im, the stem's parity split)
# on the same op cases. That pass leaves out --uninitialized: the horizontal
# sums and even/odd lane shuffles of those kernels are the undefined-lane
# shufflevectors oclgrind 21.10 misreports and then crashes on (cl/common.cl);
# out-of-bounds accesses, data races and API errors are still reported.
check_pass() {   # label, oclgrind flags...
  local label=$1; shift
  : > "$log"
  local t0=$(date +%s)
  out=$(oclgrind "$@" --data-races --check-api --max-errors 200 --log "$log" "$bin" selftest --ops 2>&1); rc=$?
  echo "$out" | sed 's/^/# /'
  echo "# oclgrind run ($label): $(( $(date +%s) - t0 )) s"
  ok $([ $rc = 0 ] && echo "$out" | grep -q "^device .*Oclgrind" && echo "$out" | grep -q " 0 failed$" \
       && echo 0 || echo 1) "selftest --ops passes on oclgrind's device, $label (exit $rc)"
  # oclgrind's log: one message per blank-line-separated block; a report in a
  # kernel names it on a "Kernel: NAME" line.
  ours=$(grep -ho '^__kernel \(__attribute__((.*)) \)\?void [A-Za-z0-9_]*' "$root"/cl/*.cl | awk '{print $NF}' |
         sort -u)
  [ -s "$log" ] || : > "$log"
  summary=$(awk -v ours="$ours" '
    BEGIN { n = split(ours, k, "\n"); for (i = 1; i <= n; i++) mine[k[i]] = 1; RS = "" }
    { kernel = ""; if (match($0, /Kernel: [A-Za-z0-9_]+/)) kernel = substr($0, RSTART + 8, RLENGTH - 8)
      split($0, line, "\n"); where = ""
      for (i = 1; i in line; i++) if (line[i] ~ /^\tAt line/) { where = line[i]; sub(/^\t/, "", where) }
      side = (kernel != "" && kernel in mine) ? "ours" : "other"
      key = side "\t" line[1] " [" (kernel == "" ? "no kernel" : kernel) "] " where
      sub(/address 0x[0-9a-f]+/, "address ...", key); count[key]++ }
    END { for (key in count) print count[key] "\t" key }' "$log" | sort -rn)
  mine=$(echo "$summary" | awk -F'\t' '$2 == "ours"')
  other=$(echo "$summary" | awk -F'\t' '$2 == "other"')
  [ -n "$mine" ] && echo "$mine" | awk -F'\t' '{print "# " $1 "x " $3}'
  ok $([ -z "$mine" ] && echo 0 || echo 1) "no oclgrind report in cldetr's kernels (cl/*.cl), $label"
  [ -n "$other" ] && echo "$other" | awk -F'\t' '{print "# " $1 "x " $3}'
  ok $([ -z "$other" ] && echo 0 || echo 1) \
    "no other oclgrind report (CLBlast's kernels, the OpenCL API, oclgrind itself), $label"
}

check_pass "GPU shapes" --uninitialized
# the tile kernels reading a conv's operands in place (cl/blas_tile_conv.cl's conv_fw, conv_dw, conv_dx)
CLDETR_CONV_TILES=implicit check_pass "GPU shapes, conv operands in place" --uninitialized
export CLDETR_KERNEL_SHAPE=cpu
check_pass "CPU shapes"
unset CLDETR_KERNEL_SHAPE

echo "1..$n"
exit $failed
