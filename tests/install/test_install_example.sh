#!/usr/bin/env bash
# `meson install` of this build into a temporary folder, and a program built
# against the installed copy (TAP): every file in its place, cldetr.pc gives
# the flags, examples/detect.c compiles with them against the shared and the
# static library, and both print, for an image of a tiny trained run, the
# detections `cldetr predict` prints.
# Usage: test_install_example.sh CLDETR BUILD_DIR VERSION (CLDETR_SOURCE_ROOT: the source tree)
bin=$1 build=$2 version=$3 src=${CLDETR_SOURCE_ROOT:?}
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
bail() { echo "Bail out! $1"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

meson install -C "$build" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1; rc=$?
sed 's/^/# /' "$tmp/install.log" | tail -3
ok $rc "meson install --destdir into a temporary folder"
pc=$(find "$dest" -name cldetr.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || bail "no cldetr.pc installed"
prefix=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
root=$dest$prefix
[ -n "$prefix" ] && [ -d "$root" ] || bail "the build's prefix ($prefix) is not under $dest"
libdir=$(dirname "$(dirname "$pc")")
echo "# installed under $root, libraries in $libdir"

[ -x "$root/bin/cldetr" ]; ok $? "bin/cldetr"
[ -f "$libdir/libcldetr.a" ] && [ -e "$libdir/libcldetr.so" ]; ok $? "libcldetr.a and libcldetr.so beside pkgconfig/cldetr.pc"
: >"$tmp/miss"
for h in "$src"/include/cldetr/*; do
  cmp -s "$h" "$root/include/cldetr/$(basename "$h")" || echo "$(basename "$h")" >>"$tmp/miss"
done
[ ! -s "$tmp/miss" ]; ok $? "every public header under include/cldetr/ (missing: $(tr '\n' ' ' <"$tmp/miss"))"
[ -s "$root/share/man/man1/cldetr.1" ] && [ -s "$root/share/bash-completion/completions/cldetr" ]
ok $? "share/man/man1/cldetr.1 and share/bash-completion/completions/cldetr"
[ "$("$root/bin/cldetr" --version)" = "cldetr $version" ]; ok $? "the installed cldetr --version says the project's version $version"

# pkg-config on the installed cldetr.pc. A --destdir install keeps the prefix of
# the build, so a copy of the .pc points at the temporary folder instead.
mkdir -p "$tmp/pc" && sed "s|^prefix=.*|prefix=$root|" "$pc" >"$tmp/pc/cldetr.pc"
pkgc() { PKG_CONFIG_PATH=$tmp/pc pkg-config "$@"; }
[ "$(pkgc --modversion cldetr)" = "$version" ]; ok $? "pkg-config --modversion cldetr = $version"
pkgc --cflags --libs --static cldetr >"$tmp/flags" 2>&1; rc=$?
sed 's/^/# /' "$tmp/flags"
[ $rc = 0 ] && grep -q -- "-I$root/include" "$tmp/flags" && grep -q -- "-lcldetr" "$tmp/flags" && grep -q -- "-lOpenCL" "$tmp/flags" &&
  grep -q -- "-lclblast" "$tmp/flags" && grep -q -- "-lcjson" "$tmp/flags" && grep -q -- "-linih" "$tmp/flags"
ok $? "pkg-config --cflags --libs --static cldetr: its include folder, -lcldetr and the libraries it needs"

# examples/detect.c against the installed copy: strict warnings, the public headers only.
cflags=(-std=c11 -Wall -Wextra -Werror)
cc "${cflags[@]}" "$src/examples/detect.c" -o "$tmp/detect" $(pkgc --cflags --libs --static cldetr) 2>"$tmp/cc.log"
rc=$?; sed 's/^/# /' "$tmp/cc.log" | head -20
ok $rc "cc examples/detect.c \$(pkg-config --cflags --libs --static cldetr) (-std=c11 -Wall -Wextra -Werror)"
LD_LIBRARY_PATH=$libdir ldd "$tmp/detect" 2>/dev/null | grep -q "libcldetr.so.* => $libdir/"
ok $? "it runs on the installed libcldetr.so (LD_LIBRARY_PATH=$libdir)"
# the static library: libcldetr.a in place of -lcldetr, with the private libraries pkg-config --static adds
static=()
for f in $(pkgc --libs --static cldetr); do [ "$f" = -lcldetr ] && f=$libdir/libcldetr.a; static+=("$f"); done
cc "${cflags[@]}" "$src/examples/detect.c" -o "$tmp/detect-static" $(pkgc --cflags cldetr) "${static[@]}" 2>"$tmp/cc.log"
rc=$?; sed 's/^/# /' "$tmp/cc.log" | head -20
ok $rc "cc examples/detect.c with libcldetr.a and pkg-config --static's libraries"
! ldd "$tmp/detect-static" 2>/dev/null | grep -q libcldetr; ok $? "that one needs no libcldetr.so"

# A tiny run to detect with: the installed cldetr makes the data and trains 3 steps.
"$root/bin/cldetr" make-shapes "$tmp/shapes" --train 8 --val 4 --size 64 -q >"$tmp/out" 2>&1 || { cat "$tmp/out"; bail "make-shapes failed"; }
"$root/bin/cldetr" train "$src/tests/fixtures/tiny.ini" --set "data.root=$tmp/shapes" --set "train.out_dir=$tmp/runs" \
  --set train.name=x --set train.max_steps=3 --set log.progress=off >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$tmp/out" | tail -5
[ $rc = 0 ] && [ -s "$tmp/runs/x/last.ckpt" ]; ok $? "the installed cldetr trains a tiny run (3 steps)"
img=$tmp/shapes/val/000001.png

# The detections: kernels from the library (no CLDETR_KERNEL_DIR), every query (threshold 0).
unset CLDETR_KERNEL_DIR
LD_LIBRARY_PATH=$libdir "$tmp/detect" "$tmp/runs/x" "$img" 0 >"$tmp/det" 2>"$tmp/err"; rc=$?
sed 's/^/# /' "$tmp/det" "$tmp/err"
ok $rc "detect RUN IMAGE 0 exits 0"
head -1 "$tmp/det" | grep -qE "^$img: 64x64, 6 detections with score >= 0\.000$"
ok $? "first line: IMAGE: WxH, N detections with score >= T (N = the 6 queries of tiny.ini)"
tail -n +2 "$tmp/det" >"$tmp/lines"
[ "$(wc -l <"$tmp/lines")" = 6 ] && ! grep -vqE '^[01]\.[0-9]{3}( [0-9]+\.[0-9]){4} (circle|square|triangle|cross)$' "$tmp/lines"
ok $? "then one line per detection: SCORE X0 Y0 X1 Y1 CLASS, with the dataset's class names"
sort -s -k1,1 -r -n "$tmp/lines" | cmp -s - "$tmp/lines"; ok $? "best score first"
# the same numbers as cldetr predict (its lines: "  CLASS  SCORE  [X0, Y0, X1, Y1]")
CLDETR_KERNEL_DIR=$src/cl "$bin" predict "$tmp/runs/x" "$img" --threshold 0 -o "$tmp/pred" 2>/dev/null |
  sed -n 's/^  \([a-z]*\) *\([0-9.]*\)  \[\([0-9.]*\), \([0-9.]*\), \([0-9.]*\), \([0-9.]*\)\]$/\2 \3 \4 \5 \6 \1/p' >"$tmp/pred.txt"
[ -s "$tmp/pred.txt" ] && cmp -s "$tmp/pred.txt" "$tmp/lines"; ok $? "the detections cldetr predict gives for the image"
"$tmp/detect-static" "$tmp/runs/x" "$img" 0 >"$tmp/det-static" 2>/dev/null
cmp -s "$tmp/det-static" "$tmp/det"; ok $? "the static build prints the same"
# a threshold keeps the detections at or above it
thr=$(sed -n 3p "$tmp/lines" | cut -d' ' -f1)
LD_LIBRARY_PATH=$libdir "$tmp/detect" "$tmp/runs/x" "$img" "$thr" 2>/dev/null | tail -n +2 >"$tmp/kept"
[ "$(wc -l <"$tmp/kept")" -ge 3 ] && awk -v t="$thr" '$1 < t { bad = 1 } END { exit bad }' "$tmp/kept"
ok $? "THRESHOLD $thr keeps the 3 best (and their ties) and nothing below it"
LD_LIBRARY_PATH=$libdir "$tmp/detect" "$tmp/runs/x" >/dev/null 2>&1; [ $? = 2 ]; ok $? "a missing IMAGE is a usage error (exit 2)"
LD_LIBRARY_PATH=$libdir "$tmp/detect" "$tmp/nothing" "$img" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "nothing" "$tmp/err"; ok $? "weights that are not there: exit 1 and the path named"
echo "1..$n"
exit $failed
