#!/usr/bin/env bash
# A hyper-parameter study of configs/shapes.ini with `cldetr sweep`: one key at
# a time around the recipe (learning rate, number of queries, dropout, decoder
# layers, batch size), each point trained for --steps steps with the same seed.
# Every sweep writes its summary and charts under OUT/sweep-KEY/; this script
# then gathers the summaries into OUT/study.md.
#
# usage: tools/experiments/hparam_study.sh [OUT] [--steps N] [--set k=v ...]
#   OUT       folder of the study (default runs/hparam-study)
#   --steps   steps per point (default 2500)
# Run it again to continue an interrupted study (finished points are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
name=hparam_study; help_lines=2,13p; out=runs/hparam-study; steps=2500
. tools/experiments/options.sh
common=(--set train.out_dir="$out" --set train.max_steps="$steps" --set log.progress=plain --set log.every=50 "${sets[@]}")
grids=("train.lr=1e-4,2e-4,4e-4" "model.num_queries=10,20,40" "model.dropout=0,0.1"
       "model.dec_layers=1,2,4" "train.batch_size=4,8,16")
for g in "${grids[@]}"; do
  key=${g%%=*}
  "$bin" sweep configs/shapes.ini --grid "$g" "${common[@]}" --name "$key" || true   # failed points are in the summary
done
{
  echo "# Hyper-parameter study of configs/shapes.ini ($steps steps per point)"
  for g in "${grids[@]}"; do
    key=${g%%=*}
    echo; echo "## $key"; echo
    tail -n +4 "$out/sweep-$key/summary.md"
    echo; echo "![curves]($out/sweep-$key/curves-$key.png)"
  done
} > "$out/study.md"
echo "study in $out/study.md"
