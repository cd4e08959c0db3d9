#!/usr/bin/env bash
# Data-parallel training under mpirun (TAP; docs/parallel.md): 2 processes of
# batch 4 give the losses and the weights of 1 process of batch 8 (frozen
# batch norm, dropout 0); a resumed 2-process run continues bit for bit; a
# resume under another process count says so; an error on one rank and a
# killed rank each end the job with a message naming the rank; `cldetr
# devices` shows which rank takes which device.
# Arguments: the cldetr binary, the mpirun program ('' when there is none),
# and whether cldetr was built with MPI (true/false).
bin=$1 mpirun=${2:-} built=${3:-false}
if [ "$built" != true ] || [ -z "$mpirun" ] || [ ! -x "$mpirun" ]; then
  echo "1..0 # SKIP MPI is not installed (built with MPI: $built, mpirun: '${mpirun:-none}'); Debian: apt-get install libopenmpi-dev openmpi-bin, then meson setup --reconfigure"
  exit 0
fi
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # CI runs as root
export OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { timeout 300 "$mpirun" --oversubscribe "$@"; }
ini="$CLDETR_SOURCE_ROOT/tests/fixtures/tiny.ini"
# 2 objects an image: each process's share of a batch has as many matched queries as the other's, so the
# class term (a weighted mean over each process's queries, averaged over the processes, as officially) is
# the single-process one too; one input size: no padding that differs between a batch and its shares
"$bin" make-shapes "$tmp/shapes" --train 16 --val 4 --size 64 --min-objects 2 --max-objects 2 -q
common=(--set "data.root=$tmp/shapes" --set "train.out_dir=$tmp/runs" --set log.progress=plain
        --set model.backbone_bn=frozen --set model.dropout=0 --set augment.scales=64 --set augment.random_select=0
        --set train.eval_every=0)
show() { sed 's/^/# /' "$1" | tail -"${2:-4}"; }

# The parameters (and the Adam moments) of a checkpoint: the floats after its header, config text and table.
# "close" leaves out the key biases of the attention layers (the middle third of every in_proj_bias): q.(k + b)
# adds the same q.b to every key's score, which the softmax cancels, so their gradient is zero but for rounding,
# and Adam, which divides by the gradient's own size, turns that rounding into steps of up to lr either way.
cat >"$tmp/ckpt.py" <<'PY'
import struct, sys
def body(path):
    b = open(path, "rb").read()
    n_params, = struct.unpack_from("<I", b, 12)
    text_len, total = struct.unpack_from("<QQ", b, 104)
    table = 136 + text_len
    start = table + 168 * n_params
    skip = set()
    for i in range(n_params):
        e = b[table + 168 * i: table + 168 * (i + 1)]
        name = e[:112].split(b"\0")[0].decode()
        off, n = struct.unpack_from("<2Q", e, 152)
        if name.endswith("in_proj_bias"):
            skip.update(range(off + n // 3, off + 2 * n // 3))
    return struct.unpack_from("<%df" % total, b, start), b[start:-8], skip
mode, a, b = sys.argv[1:4]
(pa, ba, skip), (pb, bb, _) = body(a), body(b)
if mode == "bits":
    sys.exit(0 if ba == bb else 1)
bad = [i for i, (x, y) in enumerate(zip(pa, pb)) if i not in skip and not abs(x - y) <= 1e-5 * (1 + abs(x))]
print("# %d parameters (%d attention key biases left out), %d differ by more than 1e-5 (first: %s)"
      % (len(pa), len(skip), len(bad), bad[:3]))
sys.exit(0 if len(pa) == len(pb) and len(skip) > 0 and not bad else 1)
PY
# The logged losses, class and cardinality errors and gradient norm of two metrics.csv files, rows from-to.
cat >"$tmp/metrics.py" <<'PY'
import csv, sys
a, b, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ra = {int(r["step"]): r for r in csv.DictReader(open(a))}
rb = {int(r["step"]): r for r in csv.DictReader(open(b))}
keys = ["loss", "loss_ce", "loss_bbox", "loss_giou", "class_error", "cardinality_error", "grad_norm"]
worst = 0.0
for s in range(lo, hi + 1):
    if s not in ra or s not in rb:
        print("# step %d missing" % s); sys.exit(1)
    for k in keys:
        x, y = float(ra[s][k]), float(rb[s][k])
        worst = max(worst, abs(x - y) / max(abs(x), 1e-3))
print("# steps %d-%d, largest relative difference %.2g" % (lo, hi, worst))
sys.exit(0 if worst <= 1e-5 else 1)
PY

# 0. cldetr devices under mpirun: the table once, then the device each rank takes
mpi -np 2 "$bin" devices >"$tmp/out0" 2>&1; rc=$?
show "$tmp/out0" 3
[ $rc = 0 ] && [ "$(grep -c 'P:D' "$tmp/out0")" = 1 ] && grep -q "^  rank 0 (local rank 0 on .*): device" "$tmp/out0" && \
  grep -q "^  rank 1 (local rank 1 on .*): device" "$tmp/out0"
ok $? "cldetr devices under mpirun prints the table once and which rank takes which device (rc $rc)"

# 1. one process of batch 8 and two of batch 4: the same global batches, the same steps
"$bin" train "$ini" "${common[@]}" --set train.name=one --set train.batch_size=8 --set train.max_steps=5 \
  >"$tmp/out1" 2>&1; rc1=$?
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=two --set train.batch_size=4 \
  --set train.max_steps=5 >"$tmp/out2" 2>&1; rc2=$?
show "$tmp/out2" 3
[ $rc1 = 0 ] && [ $rc2 = 0 ]; ok $? "1 process of batch 8 and 2 of batch 4 train 5 steps (rc $rc1, $rc2)"
grep -q "batch 4 per process x 2 processes = 8" "$tmp/out2" && grep -q "rank 1 (local rank 1 on" "$tmp/out2"
ok $? "the job says its global batch and which rank took which device"
[ "$(grep -c '^step 5/5' "$tmp/out2")" = 1 ]; ok $? "rank 0 alone prints the progress"
python3 "$tmp/metrics.py" "$tmp/runs/one/metrics.csv" "$tmp/runs/two/metrics.csv" 1 5
ok $? "the same losses, errors and gradient norms at every step (1e-5 relative)"
python3 "$tmp/ckpt.py" close "$tmp/runs/one/last.ckpt" "$tmp/runs/two/last.ckpt"
ok $? "the same weights after 5 steps (1e-5; the attention key biases, whose gradient is rounding, left out)"
[ -s "$tmp/runs/two/eval.csv" ] && [ "$(tail -n +2 "$tmp/runs/two/eval.csv" | wc -l)" = 1 ] && \
  [ "$(tail -n +2 "$tmp/runs/two/metrics.csv" | wc -l)" = 5 ]
ok $? "rank 0 alone writes the run folder: 5 rows in metrics.csv, one validation in eval.csv"
one_val=$(tail -1 "$tmp/runs/one/eval.csv" | cut -d, -f3,4); two_val=$(tail -1 "$tmp/runs/two/eval.csv" | cut -d, -f3,4)
python3 -c "
import sys
(l1, a1), (l2, a2) = [map(float, v.split(',')) for v in sys.argv[1:3]]
sys.exit(0 if l1 > 0 and abs(l1 - l2) <= 1e-5 * l1 and a1 == a2 else 1)" "$one_val" "$two_val"
ok $? "and its validation loss and AP are the single process's (loss,AP: $one_val and $two_val)"

# 1b. the same with 3 query groups (Group DETR): each group's box terms normalised by the job's targets
"$bin" train "$ini" "${common[@]}" --set train.name=one_g --set train.batch_size=8 --set train.max_steps=5 \
  --set train.query_groups=3 >"$tmp/out1g" 2>&1; rc1=$?
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=two_g --set train.batch_size=4 \
  --set train.max_steps=5 --set train.query_groups=3 >"$tmp/out2g" 2>&1; rc2=$?
[ $rc1 = 0 ] && [ $rc2 = 0 ] && \
  python3 "$tmp/metrics.py" "$tmp/runs/one_g/metrics.csv" "$tmp/runs/two_g/metrics.csv" 1 5
ok $? "with train.query_groups=3 too: the same losses and gradient norms (rc $rc1, $rc2)"

# 2. a 2-process run stopped at step 3 and resumed to 6 is bit for bit the uninterrupted one
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=full --set train.batch_size=4 \
  --set train.max_steps=6 >"$tmp/out3" 2>&1; rc3=$?
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=part --set train.batch_size=4 \
  --set train.max_steps=3 >"$tmp/out4" 2>&1; rc4=$?
mpi -np 2 "$bin" train --resume "$tmp/runs/part" --set train.max_steps=6 >"$tmp/out5" 2>&1; rc5=$?
show "$tmp/out5" 2
[ $rc3 = 0 ] && [ $rc4 = 0 ] && [ $rc5 = 0 ] && grep -q "written by the same 2 processes" "$tmp/out5"
ok $? "a 2-process run resumes under 2 processes and says so (rc $rc3, $rc4, $rc5)"
python3 "$tmp/ckpt.py" bits "$tmp/runs/full/last.ckpt" "$tmp/runs/part/last.ckpt"
ok $? "its weights and Adam moments at step 6 are bit for bit the uninterrupted run's"
diff <(tail -n +2 "$tmp/runs/full/metrics.csv" | cut -d, -f1-11) \
     <(tail -n +2 "$tmp/runs/part/metrics.csv" | cut -d, -f1-11) >/dev/null
ok $? "and so are its logged steps 1-6"
[ "$(head -c 8 "$tmp/runs/part/last.ckpt")" = CLDETRCK ] && \
  python3 -c "import struct,sys; b=open(sys.argv[1],'rb').read(); sys.exit(0 if struct.unpack_from('<Q', b, 72)[0] == 2 else 1)" \
  "$tmp/runs/part/last.ckpt"
ok $? "the checkpoint records 2 processes"

# 3. the same run under another process count: said, and it trains on
"$bin" train --resume "$tmp/runs/part" --set train.max_steps=8 >"$tmp/out6" 2>&1; rc=$?
show "$tmp/out6" 2
[ $rc = 0 ] && grep -q "written by 2 processes, this job has 1: the global batch is now 4 images (it was 8)" \
  "$tmp/out6" && [ "$(tail -1 "$tmp/runs/part/metrics.csv" | cut -d, -f1)" = 8 ]
ok $? "resumed by 1 process: it says the process count and global batch changed, and trains to step 8"

# 4. an error on one rank (rank 1 cannot open its device) ends the job, naming the rank and the cause
t0=$(date +%s)
mpi -np 1 "$bin" train "$ini" "${common[@]}" --set train.name=bad : \
    -np 1 -x CLDETR_DEVICE=no-such-device "$bin" train "$ini" "${common[@]}" --set train.name=bad \
    >"$tmp/out7" 2>&1; rc=$?
show "$tmp/out7" 6
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "cldetr: error: rank 1 of 2 (host .*): no device matches 'no-such-device'" \
  "$tmp/out7"
ok $? "an error on rank 1 ends the job with one message naming rank 1 and the cause (rc $rc, $(( $(date +%s) - t0 )) s)"

# Wait until the job logging to LOG has printed step 3, then print the pid of
# its rank 1 (train.name=NAME), or nothing.
rank1_after_step3() {
  for i in $(seq 1 600); do grep -q "^step 3/" "$1" 2>/dev/null && break; sleep 0.2; done
  local p found=""
  for p in $(pgrep -f "train.name=$2"); do
    grep -qz "^OMPI_COMM_WORLD_RANK=1$" "/proc/$p/environ" 2>/dev/null && found=$p
  done
  echo "$found"
}

# 5. a rank killed mid-run ends the job: mpirun names it, no process is left waiting
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=killed --set train.batch_size=4 \
  --set train.max_steps=100000 >"$tmp/out8" 2>&1 &
pid=$!
victim=$(rank1_after_step3 "$tmp/out8" killed)
[ -n "$victim" ] && kill -9 "$victim"
t0=$(date +%s)
wait $pid; rc=$?
show "$tmp/out8" 4
[ -n "$victim" ] && [ $rc != 0 ] && [ $rc != 124 ] && grep -q "process rank 1 with PID .* exited on signal 9" "$tmp/out8" && \
  ! pgrep -f "train.name=killed" >/dev/null
ok $? "killing rank 1 (pid ${victim:-none}) ends the job in $(( $(date +%s) - t0 )) s with a message naming rank 1 (rc $rc)"

# 6. Ctrl-C (SIGINT) to one rank: every rank stops at the same step, rank 0 writes the checkpoint, exit 130
mpi -np 2 "$bin" train "$ini" "${common[@]}" --set train.name=stopped --set train.batch_size=4 \
  --set train.max_steps=100000 >"$tmp/out9" 2>&1 &
pid=$!
victim=$(rank1_after_step3 "$tmp/out9" stopped)
[ -n "$victim" ] && kill -INT "$victim"
wait $pid; rc=$?
show "$tmp/out9" 2
last=$(tail -1 "$tmp/runs/stopped/metrics.csv" | cut -d, -f1)
[ -n "$victim" ] && [ $rc = 130 ] && grep -q "interrupted at step $last: checkpoint written" "$tmp/out9" && \
  [ -s "$tmp/runs/stopped/last.ckpt" ]
ok $? "SIGINT to rank 1 stops the job at one step ($last) with a checkpoint, exit 130 (rc $rc)"

echo "1..$n"
exit $failed
