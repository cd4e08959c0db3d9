#!/usr/bin/env bash
# `cldetr train` from the command line (TAP): usage errors, a bad config key,
# --help-config, a diverging run stopped with advice, Ctrl-C writes a
# checkpoint and exits 130, --resume of a folder that is no run.
bin=$1
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
check() { local rc=$1 want=$2 pat=$3 what=$4; [ "$rc" = "$want" ] && grep -q -- "$pat" "$tmp/out"; ok $? "$what"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ini="$CLDETR_SOURCE_ROOT/tests/fixtures/tiny.ini"
"$bin" make-shapes "$tmp/shapes" --train 8 --val 4 --size 64 -q
common=(--set "data.root=$tmp/shapes" --set "train.out_dir=$tmp/runs" --set log.progress=plain)

"$bin" train >"$tmp/out" 2>&1; check $? 2 "give a config file" "no config: exit 2 with usage"
"$bin" train "$ini" --bogus >"$tmp/out" 2>&1; check $? 2 "unknown option '--bogus'" "unknown option is named"
# A generation cut short leaves no annotation file behind (it used to leave half a train.json, which
# the next `cldetr train` read as a JSON error instead of making the dataset again).
"$bin" make-shapes "$tmp/cut" --train 100000 --val 10 --size 64 -q >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [ -e "$tmp/cut/train/000050.png" ] && break; sleep 0.1; done
kill $pid 2>/dev/null; wait $pid 2>/dev/null
[ -e "$tmp/cut/train/000050.png" ] && [ ! -e "$tmp/cut/annotations/train.json" ] && [ ! -e "$tmp/cut/annotations/val.json" ]
ok $? "make-shapes cut short: images begun, no annotation file written"
"$bin" make-shapes "$tmp/cut" --train 3 --val 2 --size 32 -q >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && [ -s "$tmp/cut/annotations/train.json" ] && [ -s "$tmp/cut/annotations/val.json" ] &&
  [ -z "$(ls "$tmp/cut/annotations" | grep part)" ]
ok $? "then made again whole: train.json and val.json, no part file left (rc $rc)"
"$bin" train --help-config >"$tmp/out" 2>&1; check $? 0 "clip_max_norm" "--help-config lists the keys"
"$bin" train "$ini" "${common[@]}" --set train.lr=abc >"$tmp/out" 2>&1
check $? 1 "train.lr: expected a number" "a bad value is named with the key"
"$bin" train "$ini" "${common[@]}" --set train.lrr=1 >"$tmp/out" 2>&1
check $? 1 "train.lr" "an unknown key names the closest one"
"$bin" train "$ini" "${common[@]}" --set data.root=/nonexistent --set data.make_shapes=false >"$tmp/out" 2>&1
check $? 1 "/nonexistent" "a missing dataset is named"

# A learning rate that makes the model diverge: the run stops with the step and advice.
"$bin" train "$ini" "${common[@]}" --set train.name=diverge --set train.lr=1e9 --set train.lr_backbone=1e9 \
  --set train.clip_max_norm=0 --set train.max_steps=60 >"$tmp/out" 2>&1; rc=$?
sed 's/^/# /' "$tmp/out" | tail -4
check $rc 1 "training stopped at step" "a non-finite loss stops the run with exit 1"
grep -q "lower train.lr" "$tmp/out"; ok $? "and advises lowering train.lr"

# Ctrl-C: the step finishes, a checkpoint is written, exit 130; then --resume continues.
"$bin" train "$ini" "${common[@]}" --set train.name=intr --set train.max_steps=100000 >"$tmp/out" 2>&1 &
pid=$!
for i in $(seq 1 300); do grep -q "^step " "$tmp/out" 2>/dev/null && break; sleep 0.2; done
# while it runs, its folder is locked: a resume or a fresh run of the same name is refused, naming the pid
"$bin" train --resume "$tmp/runs/intr" >"$tmp/out2" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "run folder $tmp/runs/intr is in use" "$tmp/out2" && grep -q "pid $pid" "$tmp/out2"
ok $? "a second --resume of a run in progress is refused naming the folder and pid $pid (rc $rc)"
"$bin" train "$ini" "${common[@]}" --set train.name=intr --set train.max_steps=3 >"$tmp/out2" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "is in use" "$tmp/out2" && grep -q "pid $pid" "$tmp/out2"
ok $? "so is a fresh run with the same train.name (rc $rc)"
sed 's/^/# /' "$tmp/out2" | tail -2
kill -INT $pid; wait $pid; rc=$?
check $rc 130 "interrupted at step" "SIGINT: exit 130 after writing a checkpoint"
[ -s "$tmp/runs/intr/last.ckpt" ]; ok $? "last.ckpt exists after the interrupt"
# rows logged after the checkpoint (a kill -9 before the next one), and a line cut by the kill
last=$(tail -1 "$tmp/runs/intr/metrics.csv" | cut -d, -f1)
for k in 1 2 3; do echo "$((last + k)),1,0.001,0.001,9,9,9,9,0,0,1,1,1" >>"$tmp/runs/intr/metrics.csv"; done
printf '%s' "$((last + 4)),1,0.00" >>"$tmp/runs/intr/metrics.csv"
for k in 1 2 3; do echo "{\"step\": $((last + k)), \"loss\": 9}" >>"$tmp/runs/intr/metrics.jsonl"; done
"$bin" train --resume "$tmp/runs/intr" --set train.max_steps=2000 --set log.progress=plain >"$tmp/out" 2>&1 &
pid=$!
for i in $(seq 1 300); do grep -q "^step " "$tmp/out" 2>/dev/null && break; sleep 0.2; done
kill -INT $pid; wait $pid; rc=$?
check $rc 130 "continuing at step" "--resume continues the interrupted run"
dups=$(tail -n +2 "$tmp/runs/intr/metrics.csv" | cut -d, -f1 | sort -n | uniq -d | tr '\n' ' ')
bad=$(awk -F, 'NR > 1 && NF != 13' "$tmp/runs/intr/metrics.csv" | wc -l)
[ -z "$dups" ] && [ "$bad" = 0 ] && [ "$(tail -n +2 "$tmp/runs/intr/metrics.csv" | cut -d, -f1 | head -1)" = 1 ]
ok $? "after the resume metrics.csv repeats no step (repeated: '$dups'; $bad malformed rows)"
python3 -c "
import json, sys
steps = [json.loads(l)['step'] for l in open(sys.argv[1])]
sys.exit(0 if steps and len(steps) == len(set(steps)) else 1)" "$tmp/runs/intr/metrics.jsonl"
ok $? "and so does metrics.jsonl"

"$bin" train --resume "$tmp/nothing" >"$tmp/out" 2>&1; check $? 1 "is not a run folder" "--resume of a non-run folder"

# a model too big for the device is refused before it starts (from the dry run's memory count), naming the keys
"$bin" train "$ini" "${common[@]}" --set train.name=huge --set model.num_queries=10000 --set model.hidden_dim=512 \
  --set model.dim_feedforward=4096 --set model.dec_layers=6 >"$tmp/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "a training step needs about .* GiB of device memory" "$tmp/out" && \
  grep -q "model.num_queries" "$tmp/out" && [ ! -e "$tmp/runs/huge" ]
ok $? "a model too big for the device is refused up front, naming the keys to shrink"

# Epochs count from 1 in the console, metrics.csv and eval.csv; time_s is the time into the run
# (continued across a resume), val_seconds a validation's duration. 8 images, batch 4: 2 steps an epoch.
"$bin" train "$ini" "${common[@]}" --set train.name=epochs --set train.epochs=2 --set train.eval_every=1 \
  --set train.checkpoint_every=1 >"$tmp/out" 2>&1; rc=$?
run="$tmp/runs/epochs"
m=$(tail -n +2 "$run/metrics.csv" | cut -d, -f1,2 | tr '\n' ' '); e=$(tail -n +2 "$run/eval.csv" | cut -d, -f1,2 | tr '\n' ' ')
[ $rc = 0 ] && [ "$m" = "1,1 2,1 3,2 4,2 " ] && [ "$e" = "2,1 4,2 " ]
ok $? "metrics.csv and eval.csv count epochs from 1 (metrics '$m', eval '$e')"
grep -q "^step 2/4 50% epoch 1 " "$tmp/out" && grep -q "^step 3/4 75% epoch 2 " "$tmp/out" && \
  grep -q "validation at step 2 (epoch 1," "$tmp/out" && grep -q "validation at step 4 (epoch 2," "$tmp/out"
ok $? "and so does the console: the validation at the end of epoch 1 says epoch 1"
# the console line: step, percent, epoch, loss (smoothed), step+wait ms, device memory, time, ETA; 80 columns
grep -Eq "^step 4/4 100% epoch 2 loss [0-9.]+ \([0-9.]+\) [0-9]+\+[0-9]+ms [0-9]+MiB [0-9]+m[0-9]{2}s ETA 0m00s$" "$tmp/out"
ok $? "the console line: $(grep '^step 4/4' "$tmp/out")"
[ "$(grep '^step ' "$tmp/out" | awk '{ if (length($0) > 80) n++ } END { print n + 0 }')" = 0 ]; ok $? "it fits 80 columns"
# metrics.jsonl: the rows of metrics.csv as JSON, and a TensorBoard event file
python3 - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["step"] for r in rows] == [1, 2, 3, 4], rows
for k in ("loss", "loss_smoothed", "lr", "step_ms", "data_wait_ms", "device_peak_mib", "time_s", "epoch"):
    assert all(k in r for r in rows), k
PY
ok $? "metrics.jsonl: one JSON object per logged step with the losses, lr, step and wait times, memory"
ls "$run"/events.out.tfevents.* >/dev/null 2>&1 && [ "$(head -c 0 "$run"/events.out.tfevents.* | wc -c)" = 0 ] && \
  grep -aq "train/loss" "$run"/events.out.tfevents.* && grep -aq "val/AP50" "$run"/events.out.tfevents.*
ok $? "a TensorBoard event file with the training and validation scalars"
head -1 "$run/eval.csv" | grep -q ",time_s,val_seconds$"; ok $? "eval.csv has time_s and val_seconds columns"
"$bin" train --resume "$run" --set train.epochs=3 >"$tmp/out" 2>&1; rc=$?
e=$(tail -n +2 "$run/eval.csv" | cut -d, -f1,2 | tr '\n' ' ')
[ $rc = 0 ] && [ "$e" = "2,1 4,2 6,3 " ]; ok $? "resumed for a third epoch: eval.csv '$e' (rc $rc)"
mono() { awk -F, -v c="$2" 'NR > 1 { if ($c + 0 < prev) bad = 1; prev = $c + 0 } END { exit bad }' "$1"; }
mono "$run/metrics.csv" 13 && mono "$run/metrics.csv" 1; ok $? "metrics.csv: step and time_s never go back, across the resume"
mono "$run/eval.csv" 16 && awk -F, 'NR > 1 && !($17 >= 0 && $17 <= $16) { bad = 1 } END { exit bad }' "$run/eval.csv"
ok $? "eval.csv: time_s (time into the run) never goes back; val_seconds is each validation's own duration"
"$bin" plot "$run" --x time -o "$tmp/time.png" >"$tmp/out" 2>&1 && [ -s "$tmp/time.png" ] && \
  "$bin" plot "$run" --metric AP --x time -o "$tmp/ap_time.png" >>"$tmp/out" 2>&1 && \
  "$bin" plot "$run" --metric AP50 --x epoch -o "$tmp/ap_epoch.png" >>"$tmp/out" 2>&1 && [ -s "$tmp/ap_epoch.png" ]
ok $? "cldetr plot --x time and --x epoch of the run: $(tail -1 "$tmp/out")"

# --resume of a finished run: says so and how to extend it, exit 0, no file touched.
(cd "$run" && md5sum * .lock) >"$tmp/sums"
"$bin" train --resume "$run" >"$tmp/out" 2>&1
check $? 0 "is finished: step 6 of 6" "--resume of a finished run says it is finished"
grep -q "train.epochs=" "$tmp/out" && grep -q "train.max_steps" "$tmp/out"; ok $? "and how to train it longer"
(cd "$run" && md5sum -c --quiet "$tmp/sums") >/dev/null 2>&1 && [ "$(ls -A "$run" | wc -l)" = "$(wc -l <"$tmp/sums")" ]
ok $? "and leaves every file of the run as it was"

# A checkpoint that cannot be written (last.ckpt.tmp is a folder: as a full disk, even for root) stops the
# run with exit 1, naming the file and the space it needs; the previous last.ckpt stays whole.
"$bin" train "$ini" "${common[@]}" --set train.name=full --set train.max_steps=2 >/dev/null 2>&1
cp "$tmp/runs/full/last.ckpt" "$tmp/full.ckpt"; mkdir "$tmp/runs/full/last.ckpt.tmp"
"$bin" train --resume "$tmp/runs/full" --set train.max_steps=4 >"$tmp/out" 2>&1; rc=$?
sed 's/^/# /' "$tmp/out" | tail -4
check $rc 1 "cannot write checkpoint $tmp/runs/full/last.ckpt" "a failed checkpoint write stops the run with exit 1"
grep -q "needs [0-9.]* MB free in $tmp/runs/full, which has [0-9.]* MB free" "$tmp/out"; ok $? "naming the space it needs"
grep -q "last.ckpt (step 2) is kept whole" "$tmp/out" && cmp -s "$tmp/full.ckpt" "$tmp/runs/full/last.ckpt"
ok $? "and the previous last.ckpt is kept whole"
! grep -q "^done:" "$tmp/out"; ok $? "no 'done' after it"
# An eval.csv written before val_seconds (its time_s was the validation's duration) is converted on resume.
rmdir "$tmp/runs/full/last.ckpt.tmp"; f="$tmp/runs/full/eval.csv"
awk -F, -v OFS=, 'NR == 1 { NF = 16; print; next } { $16 = $17; NF = 16; print }' "$f" >"$f.old" && mv "$f.old" "$f"
old=$(sed -n 2p "$f" | cut -d, -f16)
"$bin" train --resume "$tmp/runs/full" --set train.max_steps=4 >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && head -1 "$f" | grep -q ",time_s,val_seconds$" && [ "$(sed -n 2p "$f" | cut -d, -f16,17)" = "nan,$old" ] &&
  awk -F, 'NF != 17 { bad = 1 } END { exit bad }' "$f" && [ "$(wc -l <"$f")" = 3 ]
ok $? "an old eval.csv gets val_seconds on resume, its old rows time_s nan (rc $rc: $(sed -n 2p "$f" | cut -d, -f16,17))"
"$bin" plot "$tmp/runs/full" --metric AP --x time -o "$tmp/full.png" >"$tmp/out" 2>&1; ok $? "and plots against time"

# data.on_bad_sample=skip: a corrupt training image is named once, not at each prefetch or epoch.
cp -r "$tmp/shapes" "$tmp/badimg"; echo garbage >"$tmp/badimg/train/000003.png"
"$bin" train "$ini" "${common[@]}" --set data.root="$tmp/badimg" --set data.on_bad_sample=skip --set train.name=badimg \
  --set train.epochs=3 >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && [ "$(grep -c "warning: skipping .*000003.png" "$tmp/out")" = 1 ]
ok $? "on_bad_sample=skip: the bad image's warning is printed once in 3 epochs ($(grep -c "000003.png" "$tmp/out") lines, rc $rc)"

# A training set without a box: refused under data.on_bad_sample=error, one warning under skip.
mkdir -p "$tmp/noboxes/annotations"; ln -s "$tmp/shapes/train" "$tmp/shapes/val" "$tmp/noboxes/"
cp "$tmp/shapes/annotations/val.json" "$tmp/noboxes/annotations/"
{ printf '{"images": ['; for i in 1 2 3 4 5 6 7 8; do [ $i = 1 ] || printf ','
    printf '{"id": %d, "file_name": "%06d.png", "width": 64, "height": 64}' $i $i; done
  printf '],\n "annotations": [],\n "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]}\n'
} >"$tmp/noboxes/annotations/train.json"
"$bin" train "$ini" "${common[@]}" --set data.root="$tmp/noboxes" --set train.name=noboxes --set train.max_steps=1 \
  >"$tmp/out" 2>&1
check $? 1 "train.json: the training set has no boxes" "no boxes, on_bad_sample=error: refused naming the file"
grep -q "on_bad_sample=skip" "$tmp/out"; ok $? "and says how to train anyway"
"$bin" train "$ini" "${common[@]}" --set data.root="$tmp/noboxes" --set train.name=noboxes --set train.max_steps=2 \
  --set data.on_bad_sample=skip >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && [ "$(grep -c "the training set has no boxes: DETR will learn only 'no object'" "$tmp/out")" = 1 ]
ok $? "no boxes, on_bad_sample=skip: trains with one warning (rc $rc)"

# Run from anywhere: relative data.root, train.out_dir and make-shapes folders are made with their parents,
# under the current folder.
mkdir -p "$tmp/elsewhere"
(cd "$tmp/elsewhere" && "$bin" make-shapes a/b/c --train 2 --val 1 --size 32 -q) >"$tmp/out" 2>&1; rc=$?
[ $rc = 0 ] && [ -s "$tmp/elsewhere/a/b/c/annotations/train.json" ] && [ -s "$tmp/elsewhere/a/b/c/val/000001.png" ]
ok $? "make-shapes a/b/c creates the missing parent folders"
(cd "$tmp/elsewhere" && "$bin" train "$ini" --set data.root=data/deep/shapes --set data.make_shapes=true \
  --set data.shapes_train=4 --set data.shapes_val=2 --set data.shapes_size=64 --set train.out_dir=out/runs \
  --set train.name=far --set train.max_steps=1 --set log.progress=plain) >"$tmp/out" 2>&1; rc=$?
sed 's/^/# /' "$tmp/out" | tail -2
[ $rc = 0 ] && [ -s "$tmp/elsewhere/data/deep/shapes/annotations/val.json" ] && [ -s "$tmp/elsewhere/out/runs/far/last.ckpt" ]
ok $? "train from another folder makes data.root and train.out_dir there, parents included"
"$bin" train --help-config >"$tmp/out" 2>&1
[ "$(grep -c "relative to the current folder" "$tmp/out")" -ge 2 ]; ok $? "--help-config says data.root and train.out_dir are relative to the current folder"
echo "1..$n"
exit $failed
