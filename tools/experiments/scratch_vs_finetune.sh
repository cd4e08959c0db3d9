#!/usr/bin/env bash
# Scratch vs fine-tuned: does pre-training on another synthetic dataset help
# DETR learn the shapes dataset? Three runs of configs/shapes.ini:
#   pretrain   on a different shapes set (160 px images, 3-8 objects, another seed)
#   finetune   on datasets/shapes from the pretrain weights (model.init; the class
#              head re-initialised, as DETR's fine-tuning recipe does)
#   scratch    on datasets/shapes from random weights, the same steps
# then a table of AP, AP50, AP75 at equal steps and at equal minutes (markdown,
# into OUT/results.md) and the AP50 and loss curves of both (OUT/ap50.png,
# OUT/loss.png, OUT/ap50-time.png).
#
# usage: tools/experiments/scratch_vs_finetune.sh [OUT] [--pre-steps N] [--steps N] [--set k=v ...]
#   OUT           the folder of the experiment (default runs/scratch-vs-finetune)
#   --pre-steps   pre-training steps (default 3000)
#   --steps       fine-tuning and scratch steps (default 2500)
#   --set k=v     passed to every run (e.g. --set device.type=gpu)
# CLDETR (default build/src/cli/cldetr) is the binary. Each run validates every
# epoch (250 steps at batch 8), so the curves have points there.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=scratch_vs_finetune; help_lines=2,20p; out=runs/scratch-vs-finetune; pre=3000; steps=2500
. tools/experiments/options.sh
mkdir -p "$out"
common=(--set train.out_dir="$out" --set log.progress=plain --set log.every=50 "${sets[@]}")

if [ ! -f "$out/pretrain-data/annotations/train.json" ]; then
  "$bin" make-shapes "$out/pretrain-data" --train 2000 --val 200 --size 160 --seed 7 --min-objects 3 --max-objects 8 -q
fi
run() {   # NAME STEPS [--set ...]: train, or continue a stopped run, or skip a finished one
  local name=$1 n=$2; shift 2
  if [ -f "$out/$name/done" ]; then echo "$name: finished before"; return; fi
  if [ -f "$out/$name/last.ckpt" ]; then
    "$bin" train --resume "$out/$name" --set train.max_steps="$n" "${sets[@]}"
  else
    "$bin" train configs/shapes.ini "${common[@]}" --set train.name="$name" --set train.max_steps="$n" "$@"
  fi
  touch "$out/$name/done"
}
run pretrain "$pre" --set data.root="$out/pretrain-data" --set data.make_shapes=false
"$bin" export "$out/pretrain" -o "$out/pretrain.safetensors"
# DETR's fine-tuning recipe re-initialises the class head: drop class_embed.* from the file
python3 - "$out/pretrain.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
meta = head.pop("__metadata__", None)
out, blobs, off = {}, [], 0
for name, t in sorted(head.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    if name.startswith("class_embed."):
        continue
    b, e = t["data_offsets"]
    blobs.append(data[b:e])
    out[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [off, off + e - b]}
    off += e - b
if meta is not None:
    out["__metadata__"] = meta
h = json.dumps(out).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
run finetune "$steps" --set model.init="$out/pretrain.safetensors"
run scratch "$steps"

"$bin" plot "$out/finetune" "$out/scratch" --metric AP50 --title "AP50 on shapes: fine-tuned vs from scratch" -o "$out/ap50.png"
"$bin" plot "$out/finetune" "$out/scratch" --metric AP50 --x time --title "AP50 against training time" -o "$out/ap50-time.png"
"$bin" plot "$out/finetune" "$out/scratch" --metric loss --title "training loss: fine-tuned vs from scratch" -o "$out/loss.png"
python3 - "$out" <<'PY'
import csv, sys
out = sys.argv[1]
def evals(name):
    with open(f"{out}/{name}/eval.csv") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
def minutes(name):       # elapsed training minutes at each logged step, from metrics.csv
    with open(f"{out}/{name}/metrics.csv") as f:
        return {int(float(r["step"])): float(r["time_s"]) / 60 for r in csv.DictReader(f)}
rows = {n: evals(n) for n in ("finetune", "scratch")}
mins = {n: minutes(n) for n in rows}
def at_time(n, t):        # the last validation at or before t minutes
    best = None
    for r in rows[n]:
        m = mins[n].get(int(r["step"]))
        if m is not None and m <= t + 1e-9:
            best = r
    return best
t_eq = min(max(mins[n].values()) for n in rows)
lines = ["| run | steps | AP | AP50 | AP75 | AP50 at %.1f min |" % t_eq, "|---|---|---|---|---|---|"]
for n, r in rows.items():
    last, tr = r[-1], at_time(n, t_eq)
    lines.append("| %s | %d | %.3f | %.3f | %.3f | %s |" % (n, last["step"], last["AP"], last["AP50"], last["AP75"],
                 "%.3f" % tr["AP50"] if tr else "-"))
steps = sorted(set(int(r["step"]) for r in rows["scratch"]) & set(int(r["step"]) for r in rows["finetune"]))
lines += ["", "AP50 at equal steps:", "", "| step | fine-tuned | scratch |", "|---|---|---|"]
for s in steps:
    f = next(r for r in rows["finetune"] if int(r["step"]) == s)
    c = next(r for r in rows["scratch"] if int(r["step"]) == s)
    lines.append("| %d | %.3f | %.3f |" % (s, f["AP50"], c["AP50"]))
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "tables in $out/results.md; charts $out/ap50.png, $out/ap50-time.png, $out/loss.png"
