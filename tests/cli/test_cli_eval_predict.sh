#!/usr/bin/env bash
# `cldetr eval` and `cldetr predict` from the command line (TAP), on a tiny run
# trained here for a few dozen steps:
# - eval prints the 12-line table, writes eval-SPLIT-CKPT.json and
#   results-SPLIT-CKPT.json, and its numbers are byte for byte those of
#   `cldetr cocoeval GT RESULTS --json` on the written results;
# - predict on a PNG, a JPEG, a BMP and a 200x120 PPM writes PNGs of the
#   original sizes and a JSON whose boxes lie inside each image; a run folder,
#   its .ckpt and an exported safetensors file give the same detections;
# - bad input: each error names the problem and exits non-zero.
bin=$1
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
check() { local rc=$1 want=$2 pat=$3 what=$4; [ "$rc" = "$want" ] && grep -q -- "$pat" "$tmp/out"; local r=$?
          [ $r = 0 ] || sed 's/^/# /' "$tmp/out" | tail -5; ok $r "$what"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fix="$CLDETR_SOURCE_ROOT/tests/fixtures/data"
"$bin" make-shapes "$tmp/shapes" --train 8 --val 4 --size 64 -q
"$bin" train "$CLDETR_SOURCE_ROOT/tests/fixtures/tiny.ini" --set "data.root=$tmp/shapes" --set "train.out_dir=$tmp/runs" \
  --set train.name=tiny --set train.max_steps=40 --set log.every=20 >"$tmp/out" 2>&1
ok $? "a tiny run trains for 40 steps"
run="$tmp/runs/tiny"

# ---- eval
"$bin" eval "$run" --split train --per-class >"$tmp/table" 2>"$tmp/out"; rc=$?
cat "$tmp/table" >>"$tmp/out"
check $rc 0 "wrote $run/eval-train-best.json" "eval --split train: exit 0, names what it wrote"
[ "$(grep -c '^ Average \(Precision\|Recall\) ' "$tmp/table")" = 12 ]; ok $? "the 12-line COCO table is printed"
grep -q "circle" "$tmp/table" && grep -q "triangle" "$tmp/table"; ok $? "--per-class prints the category names"
[ -s "$run/eval-train-best.json" ] && [ -s "$run/results-train-best.json" ]; ok $? "eval and results JSON written"
"$bin" cocoeval "$tmp/shapes/annotations/train.json" "$run/results-train-best.json" --per-class \
  --json "$tmp/cocoeval.json" >"$tmp/table2" 2>/dev/null
cmp -s "$run/eval-train-best.json" "$tmp/cocoeval.json"; ok $? "eval's JSON = cocoeval's on the written results"
diff -q "$tmp/table" "$tmp/table2" >/dev/null; ok $? "and the printed tables are the same"
grep -A2 '"stats_list"' "$run/eval-train-best.json" | sed 's/^/# /'

"$bin" eval "$run" --checkpoint last >"$tmp/out" 2>&1
check $? 0 "Average Precision" "eval of the val split with --checkpoint last"
[ -s "$run/eval-val-last.json" ] && [ -s "$run/results-val-last.json" ]; ok $? "eval-val-last.json, results-val-last.json"
"$bin" eval "$run" --max-images 2 >"$tmp/out" 2>&1
check $? 0 "the first ones only" "--max-images 2 says it evaluates a part"
grep -q '"n_images":[[:space:]]*2,' "$run/eval-val-best.json"; ok $? "and evaluates 2 images"

"$bin" eval "$tmp/shapes" >"$tmp/out" 2>&1; check $? 1 "is not a run folder (no config.ini)" "eval of a folder that is no run"
"$bin" eval "$tmp/nothing" >"$tmp/out" 2>&1; check $? 1 "nothing: no such run folder" "eval of a missing folder"
mkdir -p "$tmp/bare" && cp "$run/config.ini" "$tmp/bare/"
"$bin" eval "$tmp/bare" >"$tmp/out" 2>&1; check $? 1 "holds no checkpoint" "eval of a run without checkpoints"
"$bin" eval "$tmp/bare" --checkpoint best >"$tmp/out" 2>&1; check $? 1 "has no best.ckpt" "a missing best.ckpt is named"
"$bin" eval "$run" --checkpoint "$tmp/x.ckpt" >"$tmp/out" 2>&1; check $? 1 "x.ckpt: no such file" "a missing checkpoint file"
"$bin" eval "$run" --bogus >"$tmp/out" 2>&1; check $? 2 "unknown option '--bogus'" "eval: unknown option"
"$bin" eval "$run" --split test >"$tmp/out" 2>&1; check $? 2 "cldetr eval: --split expects val or train, got 'test'" "eval: bad --split"
"$bin" eval "$run" --max-images x >"$tmp/out" 2>&1; check $? 2 "cldetr eval: --max-images expects an integer >= 1, got 'x'" "eval: bad --max-images"
mv "$tmp/shapes" "$tmp/shapes.away"
"$bin" eval "$run" >"$tmp/out" 2>&1; check $? 1 "dataset is missing: no $tmp/shapes/annotations/val.json" \
  "a missing dataset is named"
mv "$tmp/shapes.away" "$tmp/shapes"

# ---- predict: four formats and sizes
{ printf 'P6\n200 120\n255\n'; yes $'\x30\xa0\xe0' | tr -d '\n' | head -c 72000; } >"$tmp/wide.ppm"
imgs=("$tmp/shapes/val/000001.png" "$fix/fmt_baseline.jpg" "$fix/fmt_rgb.bmp" "$tmp/wide.ppm")
"$bin" predict "$run" "${imgs[@]}" -o "$tmp/pred" --threshold 0 --json "$tmp/pred.json" >"$tmp/out" 2>&1
check $? 0 "wide.ppm (200x120)" "predict on PNG, JPEG, BMP and PPM images: exit 0"
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $3*256+$4, $7*256+$8}'; }
for pair in 000001:64x64 fmt_baseline:32x24 fmt_rgb:32x24 wide:200x120; do
  f="$tmp/pred/${pair%%:*}.png"; want=${pair#*:}
  [ -s "$f" ] && [ "$(png_size "$f")" = "$want" ]; ok $? "$(basename "$f") written at the original size $want"
done
# every detection of the JSON inside its image (threshold 0: all 6 queries of each image)
awk -v a="$tmp/shapes/val/000001.png" -v b="$fix/fmt_baseline.jpg" -v c="$fix/fmt_rgb.bmp" -v d="$tmp/wide.ppm" '
  BEGIN { W[a]=64; H[a]=64; W[b]=32; H[b]=24; W[c]=32; H[c]=24; W[d]=200; H[d]=120 }
  /"file_name"/ {
    match($0, /"file_name": "[^"]*"/); f = substr($0, RSTART + 14, RLENGTH - 15)
    match($0, /"bbox": \[[^]]*\]/); split(substr($0, RSTART + 9, RLENGTH - 10), v, ", ")
    n++; if (!(f in W)) { bad++; next }
    if (v[1] < 0 || v[2] < 0 || v[3] < 0 || v[4] < 0 || v[1] + v[3] > W[f] + 0.01 || v[2] + v[4] > H[f] + 0.01) bad++
  }
  END { printf "# %d detections, %d outside their image\n", n, bad; exit !(n == 24 && bad == 0) }' "$tmp/pred.json"
ok $? "the JSON holds 24 detections, every box inside its image"
grep -q '"category": "\(circle\|square\|triangle\|cross\|class 0\)"' "$tmp/pred.json"; ok $? "class names in the JSON"

"$bin" predict "$run" "${imgs[@]}" --checkpoint last -o "$tmp/pred_last" --threshold 0 --json "$tmp/last.json" >/dev/null 2>&1
"$bin" predict --weights "$run/last.ckpt" "${imgs[@]}" -o "$tmp/pred_ck" --threshold 0 --json "$tmp/ck.json" \
  >"$tmp/out" 2>&1
check $? 0 "detections" "predict --weights RUN/last.ckpt (the config stored in it)"
cmp -s "$tmp/last.json" "$tmp/ck.json"; ok $? "the same detections as the run's last checkpoint"
if "$bin" export "$run" --last -o "$tmp/w.safetensors" >/dev/null 2>&1; then
  "$bin" predict --weights "$tmp/w.safetensors" "${imgs[@]}" -o "$tmp/pred_st" --threshold 0 --json "$tmp/st.json" \
    >"$tmp/out" 2>&1
  check $? 0 "detections" "predict --weights an exported safetensors file"
  cmp -s "$tmp/last.json" "$tmp/st.json"; ok $? "the same detections as the checkpoint"
else
  echo "# cldetr export failed: safetensors predict not checked"; ok 1 "cldetr export writes safetensors"
fi
"$bin" predict "$run" "${imgs[0]}" -o "$tmp/pred_t" --json "$tmp/t1.json" --threshold 1 >"$tmp/out" 2>&1
check $? 0 "0 detections with score >= 1.00" "--threshold 1 keeps nothing"
[ "$(cat "$tmp/t1.json")" = "[]" ]; ok $? "and the JSON is an empty list"

"$bin" predict "$run" "${imgs[3]}" -o "$tmp/one/wide-pred.png" >"$tmp/out" 2>&1
check $? 0 "$tmp/one/wide-pred.png" "-o FILE.png: one image's picture under that name"
[ "$(png_size "$tmp/one/wide-pred.png")" = 200x120 ]; ok $? "at 200x120"
"$bin" predict "$run" "${imgs[@]}" -o "$tmp/x.png" >"$tmp/out" 2>&1; check $? 2 "names one PNG but 4 images" \
  "-o FILE.png with several images"

# ---- a run keeps its class names: predict from a folder where the dataset is not
grep -q "^; class 1 1 circle$" "$run/config.ini"; ok $? "config.ini keeps the class names of the training set"
mv "$tmp/shapes" "$tmp/shapes-away"
mkdir -p "$tmp/elsewhere"
( cd "$tmp/elsewhere" && "$bin" predict "$run" "$tmp/shapes-away/val/000001.png" -o "$tmp/pred_away" --threshold 0 \
    --json "$tmp/away.json" >"$tmp/out" 2>&1 ); rc=$?
[ $rc = 0 ] && grep -q '"category": "\(circle\|square\|triangle\|cross\)"' "$tmp/away.json" && ! grep -q '"class [0-9]' "$tmp/away.json"
ok $? "without the dataset, predict names the classes from the run (exit $rc)"
"$bin" predict --weights "$run/last.ckpt" "$tmp/shapes-away/val/000001.png" -o "$tmp/pred_away2" --threshold 0 \
  --json "$tmp/away2.json" >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '"category": "\(circle\|square\|triangle\|cross\)"' "$tmp/away2.json"
ok $? "and so does a checkpoint on its own (exit $rc)"
mv "$tmp/shapes-away" "$tmp/shapes"

# ---- predict: errors
"$bin" predict "$run" "$fix/not_an_image.png" "${imgs[1]}" "$tmp/missing.jpg" -o "$tmp/pred_bad" >"$tmp/out" 2>&1
check $? 1 "not_an_image.png" "an image that does not decode is named, exit 1"
grep -q "missing.jpg" "$tmp/out" && grep -q "2 of 3 images failed" "$tmp/out"; ok $? "a missing image too; the count of failures"
[ -s "$tmp/pred_bad/fmt_baseline.png" ]; ok $? "the good image is still done"
"$bin" predict "$run" "${imgs[1]}" --bogus >"$tmp/out" 2>&1; check $? 2 "unknown option '--bogus'" "predict: unknown option"
"$bin" predict "$tmp/shapes" "${imgs[1]}" >"$tmp/out" 2>&1; check $? 1 "is not a run folder" "predict: not a run folder"
"$bin" predict "${imgs[1]}" "${imgs[2]}" >"$tmp/out" 2>&1; check $? 1 "is a file, not a run folder" "predict: an image first"
"$bin" predict "$run" >"$tmp/out" 2>&1; check $? 2 "give one or more images" "predict: no image"
"$bin" predict --weights "$tmp/none.safetensors" "${imgs[1]}" >"$tmp/out" 2>&1
check $? 1 "none.safetensors: no such weights file" "predict: a missing weights file"
"$bin" predict "$tmp/bare" "${imgs[1]}" --checkpoint last >"$tmp/out" 2>&1; check $? 1 "has no last.ckpt" "predict: a missing checkpoint"
"$bin" predict "$run" "${imgs[1]}" --threshold 2 >"$tmp/out" 2>&1; check $? 2 "in \[0, 1\]" "predict: bad --threshold"
echo "1..$n"
exit $failed
