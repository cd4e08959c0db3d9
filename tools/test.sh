#!/usr/bin/env bash
# Build (if needed) and run the whole test suite, then print one line
# "N passed, N failed" counted over every TAP check meson ran.
# Usage: tools/test.sh [BUILD_DIR] [extra meson test args...]
set -u
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" ${MESON_SETUP_ARGS:-} || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$build" || { echo "0 passed, 1 failed"; exit 1; }
meson test -C "$build" --print-errorlogs "$@"
rc=$?
log="$build/meson-logs/testlog.json"
python3 - "$log" <<'PY'
import json, sys
passed = failed = 0
# TAP tests contribute one entry per check ("ok"/"not ok") under "subtests"? meson
# writes each TAP test as one JSON line; count its checks from the stdout lines.
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        res = t.get("result")
        out = t.get("stdout") or ""
        oks = sum(1 for l in out.splitlines() if l.startswith("ok "))
        noks = sum(1 for l in out.splitlines() if l.startswith("not ok "))
        if oks + noks == 0:
            if res in ("OK", "EXPECTEDFAIL"): passed += 1
            elif res != "SKIP": failed += 1
        else:
            passed += oks
            failed += noks
            if res not in ("OK", "EXPECTEDFAIL", "SKIP") and noks == 0:
                failed += 1   # crashed or timed out after its last check
print(f"{passed} passed, {failed} failed")
PY
exit $rc
