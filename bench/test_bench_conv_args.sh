#!/usr/bin/env bash
# bench_conv's arguments (TAP): a switch's value other than 0 or 1, an unknown
# option and a non-number shape are usage errors (exit 2, the usage line), and
# the switches run a small shape.
bin=$1
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache

for args in "--implicit yes" "--movers 2" "--dw-gemm" "--help" "8 x 32"; do
    out=$("$bin" $args 2>&1); rc=$?
    ok $([ $rc = 2 ] && echo "$out" | grep -q "^usage: bench_conv" && echo 0 || echo 1) \
        "bench_conv $args: exit 2 with the usage line (got $rc)"
done
out=$("$bin" 2 3 8 16 16 3 1 1 --iters 1 --implicit 1 --movers 1 --dw-gemm 0 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $([ $rc = 0 ] && echo "$out" | grep -q "op_conv2d_forward" && echo 0 || echo 1) \
    "bench_conv with every switch set runs a small shape (got $rc)"
echo "1..$n"
exit $failed
