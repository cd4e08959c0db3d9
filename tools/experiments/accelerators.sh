#!/usr/bin/env bash
# The training-only accelerators on shapes: plain DETR, + query groups (Group
# DETR), + denoising queries (DN-DETR), and both, as one 2x2 `cldetr sweep` of
# configs/shapes.ini with the same seed, then a table of AP and AP50 at fixed
# steps (from each run's eval.csv: a validation every 250 steps) in
# OUT/accelerators.md.
#
# usage: tools/experiments/accelerators.sh [OUT] [--steps N] [--set k=v ...]
#   OUT       folder of the sweep (default runs/accelerators)
#   --steps   steps per run (default 7500: the recipe's 30 epochs)
#   --set     any override for every run, e.g. --set data.root=datasets/shapes-hard
# Run it again to continue (finished runs are skipped, an interrupted one resumes).
set -euo pipefail
cd "$(dirname "$0")/../.."
name=accelerators; help_lines=2,13p; out=runs/accelerators; steps=7500
. tools/experiments/options.sh
groups=${GROUPS_K:-4}; dn=${DN_GROUPS:-5}
"$bin" sweep configs/shapes.ini --grid "train.query_groups=1,$groups" --grid "train.dn_groups=0,$dn" \
  --set train.out_dir="$out" --set train.max_steps="$steps" --set log.progress=plain --set log.every=250 \
  "${sets[@]}" --name accelerators || true
at="1000 2500 5000 7500"
{
  echo "| query_groups | dn_groups | $(for s in $at; do printf 'AP50 @%s | ' "$s"; done)$(for s in $at; do printf 'AP @%s | ' "$s"; done)minutes |"
  echo "|---|---|$(for s in $at; do printf -- '---|'; done)$(for s in $at; do printf -- '---|'; done)---|"
  for run in "$out"/sweep-accelerators/*/; do
    cfg=$run/config.ini; ev=$run/eval.csv
    [ -f "$ev" ] || continue
    g=$(awk -F'[ =;]+' '$1=="query_groups"{print $2}' "$cfg"); d=$(awk -F'[ =;]+' '$1=="dn_groups"{print $2}' "$cfg")
    row="| ${g:-1} | ${d:-0} |"
    for col in 5 4; do     # eval.csv: step,epoch,loss,AP,AP50,...
      for s in $at; do row="$row $(awk -F, -v s="$s" -v c="$col" '$1==s{printf "%.3f", $c}' "$ev") |"; done
    done
    mins=$(awk -F, 'NR>1{t=$(NF-1)} END{printf "%.1f", t/60}' "$ev")
    echo "$row $mins |"
  done
} > "$out/accelerators.md"
cat "$out/accelerators.md"
