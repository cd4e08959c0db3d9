#!/usr/bin/env bash
# `cldetr sweep` (TAP): a 2x2 grid of a few steps each writes a run per point,
# the summary and the charts; a second run skips the finished points; a point
# that fails is recorded with its reason and the sweep goes on; the grid from a
# [sweep] section; bad grids and too many jobs are refused with a message.
bin=$1
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
ini="$CLDETR_SOURCE_ROOT/tests/fixtures/tiny.ini"
"$bin" make-shapes shapes --train 8 --val 4 --size 64 -q
common=(--set data.root=shapes --set train.out_dir=runs --set train.max_steps=3 --set log.progress=off)

"$bin" sweep "$ini" --grid train.lr=1e-4,2e-4 --grid model.num_queries=5,8 "${common[@]}" --name g >out 2>&1; rc=$?
sed 's/^/# /' out | grep -v "Average" | tail -3
ok $rc "a 2x2 sweep finishes with exit 0"
d=runs/sweep-g
[ "$(ls -d $d/*=*/ 2>/dev/null | wc -l)" = 4 ]; ok $? "four run folders, one per point"
[ -s "$d/lr=1e-4+num_queries=5/last.ckpt" ] && [ -s "$d/lr=2e-4+num_queries=8/eval.csv" ]; ok $? "each point is an ordinary run folder"
[ "$(wc -l < $d/summary.csv)" = 5 ] && head -1 $d/summary.csv | grep -q "^train.lr,model.num_queries,status,AP,best_AP,AP50,best_AP50,AP75,loss,steps,minutes"
ok $? "summary.csv: a header and one row per point, with the keys, AP, AP50, loss, steps, minutes"
[ "$(grep -c ',done,' $d/summary.csv)" = 4 ]; ok $? "summary.csv: every point done"
grep -q "| train.lr | model.num_queries | status |" $d/summary.md; ok $? "summary.md: a table"
for k in train.lr model.num_queries; do
  [ -s "$d/curves-$k.png" ] && [ -s "$d/best-$k.png" ]; ok $? "curves-$k.png and best-$k.png"
done
grep -q "sweep point 4/4" out; ok $? "the sweep says which point it is on"

"$bin" sweep "$ini" --grid train.lr=1e-4,2e-4 --grid model.num_queries=5,8 "${common[@]}" --name g >out 2>&1; rc=$?
[ $rc = 0 ] && grep -q "4 finished before, 0 to train" out; ok $? "running it again skips the finished points"

# model.num_classes = 1 is below the data's labels: that point fails at start, the other trains
"$bin" sweep "$ini" --grid model.num_classes=1,0 "${common[@]}" --name f >out 2>&1; rc=$?
[ $rc = 1 ]; ok $? "a sweep with a failed point exits 1"
grep -q "num_classes=1 failed: model.num_classes = 1" out; ok $? "the failure is said with its reason"
grep -q "^1,failed,.*model.num_classes = 1" runs/sweep-f/summary.csv && grep -q "^0,done," runs/sweep-f/summary.csv
ok $? "summary.csv records the failed point and its reason, and the other point finished"

# the grid from a [sweep] section
cp "$ini" with_grid.ini
printf '\n[sweep]\ntrain.lr = 1e-4, 3e-4\n' >> with_grid.ini
"$bin" sweep with_grid.ini "${common[@]}" --name s >out 2>&1; rc=$?
[ $rc = 0 ] && [ -d "runs/sweep-s/lr=3e-4" ] && [ "$(wc -l < runs/sweep-s/summary.csv)" = 3 ]; ok $? "a [sweep] section is the grid"

"$bin" sweep "$ini" --grid train.lr=abc,2e-4 "${common[@]}" >out 2>&1; rc=$?
[ $rc = 1 ] && grep -q "grid value train.lr=abc: train.lr: expected a number" out; ok $? "a bad grid value is refused before anything trains"
"$bin" sweep "$ini" --grid trainlr=1 "${common[@]}" >out 2>&1; rc=$?
[ $rc = 2 ] && grep -q "expected section.key=v1,v2" out; ok $? "a malformed --grid is a usage error"
"$bin" sweep "$ini" --grid train.lr=1e-4 --jobs 64 "${common[@]}" >out 2>&1; rc=$?
[ $rc = 1 ] && grep -q "one point per device, but there" out; ok $? "--jobs beyond the devices is refused"
echo "1..$n"
exit $failed
