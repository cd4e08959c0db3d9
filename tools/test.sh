#!/usr/bin/env bash
# Build (if needed) and run the test suite, then print one line
# "N passed, N failed" counted over every TAP check meson ran.
#
# Usage:
#   tools/test.sh [BUILD_DIR] [extra meson test args...]
#       the whole suite (BUILD_DIR: build)
#   tools/test.sh --sanitize [BUILD_DIR] [extra meson test args...]
#       the ASan+UBSan build (BUILD_DIR: build-asan, set up with
#       -Db_sanitize=address,undefined) and the part of the suite that fits
#       CI's time under it: the suites in SANITIZE_SUITES and the tests in
#       SANITIZE_TESTS (see docs/testing.md); any sanitizer report fails
#   tools/test.sh --count BUILD_DIR...
#       only the line, summed over the last run in each build folder
# --no-count (before the other arguments) runs without printing the line, for
# a caller that sums several runs with --count (.ci/run).
set -u
cd "$(dirname "$0")/.."

# What the sanitizer run covers (docs/testing.md §3): host code, parsers and
# fuzzers whole; the device tests that are quick under ASan. Left out: device,
# cli_device, ops_linear, nn_detr_fd (minutes under ASan); cli_train (it gives
# a run 20 s to print its first step before interrupting it); cli_weights (its
# error cases end cldetr through paths that exit without freeing what they
# loaded, which LeakSanitizer reports).
SANITIZE_SUITES=${SANITIZE_SUITES:-"fuzz data loss config eval"}
SANITIZE_TESTS=${SANITIZE_TESTS:-"nn_safetensors nn_checkpoint nn_detr_parity nn_tape nn_detr_params nn_weights
  ops_elementwise ops_dropout ops_reduce ops_softmax ops_layernorm ops_permute
  ops_conv ops_pool ops_batchnorm ops_stats device_blas_tune train_optim
  app_infer app_train app_layers cli_cocoeval cli_plot cli_eval_predict cli_sweep"}

# Python: the checks counted over the test logs given (a missing log: 1 failed).
count() {
  python3 - "$@" <<'PY'
import json, os, sys
import re
passed = failed = skipped = 0
skip = re.compile(r"#\s*skip", re.I)
for log in sys.argv[1:]:
    if not os.path.exists(log):
        failed += 1          # the build failed, or meson never ran
        continue
    # meson writes one JSON object per test; a TAP test's checks are its
    # stdout's "ok"/"not ok" lines.
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            res = t.get("result")
            out = t.get("stdout") or ""
            lines = out.splitlines()
            oks = sum(1 for l in lines if l.startswith("ok ") and not skip.search(l))
            skips = sum(1 for l in lines if l.startswith("ok ") and skip.search(l))   # "ok N - ... # SKIP why"
            noks = sum(1 for l in lines if l.startswith("not ok "))
            if oks + noks + skips == 0:
                if res in ("OK", "EXPECTEDFAIL"): passed += 1
                elif res == "SKIP": skipped += 1
                else: failed += 1
            else:
                passed += oks
                failed += noks
                skipped += skips
                if res not in ("OK", "EXPECTEDFAIL", "SKIP") and noks == 0:
                    failed += 1   # crashed or timed out after its last check
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
}

logs_of() {   # the test logs of a build folder's last run
  local d=$1 found=0
  for f in "$d"/meson-logs/testlog*.json; do
    [ -f "$f" ] && { echo "$f"; found=1; }
  done
  [ $found = 1 ] || echo "$d/meson-logs/testlog.json"
}

if [ "${1:-}" = "--count" ]; then
  shift
  logs=()
  for d in "$@"; do
    while IFS= read -r l; do logs+=("$l"); done < <(logs_of "$d")
  done
  count "${logs[@]}"
  exit 0
fi

print_count=1
if [ "${1:-}" = "--no-count" ]; then print_count=0; shift; fi
sanitize=0
if [ "${1:-}" = "--sanitize" ]; then sanitize=1; shift; fi
default=build
[ $sanitize = 1 ] && default=build-asan
build=${1:-$default}; shift || true

mkdir -p "$build/meson-logs"
rm -f "$build"/meson-logs/testlog*.json
fail_build() {
  [ $print_count = 1 ] && echo "0 passed, 1 failed"
  exit 1
}
if [ ! -f "$build/build.ninja" ]; then
  setup=(${MESON_SETUP_ARGS:-})
  [ $sanitize = 1 ] && setup+=(-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized)
  meson setup "$build" "${setup[@]}" || fail_build
fi
ninja -C "$build" || fail_build

if [ $sanitize = 0 ]; then
  meson test -C "$build" --print-errorlogs "$@"
  rc=$?
else
  # any report ends the test process with an error; PoCL's own allocations
  # left at exit are not leaks of ours (tests/lsan.supp)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_summary=1:detect_leaks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_summary=1:print_stacktrace=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
  rc=0
  if [ $# -gt 0 ]; then
    meson test -C "$build" --print-errorlogs "$@" || rc=$?
  else
    suites=()
    for s in $SANITIZE_SUITES; do suites+=(--suite "$s"); done
    meson test -C "$build" --print-errorlogs --logbase testlog-suites "${suites[@]}" || rc=$?
    # shellcheck disable=SC2086
    meson test -C "$build" --print-errorlogs --logbase testlog-tests $SANITIZE_TESTS || rc=$?
  fi
fi
if [ $print_count = 1 ]; then
  mapfile -t logs < <(logs_of "$build")
  count "${logs[@]}"
fi
exit $rc
