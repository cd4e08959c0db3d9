#!/usr/bin/env python3
"""cldetr's training step beside PyTorch's, side by side on this machine.

  bench/compare_torch.py CONFIG.ini [--rounds 3] [--steps 10] [--set section.key=value ...]

For any config: `cldetr config` prints the effective config (every key), from
which tools/reference/torch_step_bench.py builds the PyTorch twin (the same
model sizes, queries, dropout, BatchNorm mode, trained stages, loss, AdamW and
clipping, batch size and largest input). Then the two run interleaved for
--rounds rounds (cldetr bench, then the twin, in each round), each timing
--steps steps after a warm-up, and every round's median step time and the
cldetr/PyTorch ratio are printed, with the median ratio of all rounds last.

The twin runs the current PyTorch from pip in a virtual environment
($XDG_CACHE_HOME/cldetr/torch-venv, made with `pip install torch scipy` if
missing), with OpenBLAS's preset core type unset (it halves the speed of a
current build), and with its best thread count for this machine: tried once
with 1 and with all cores, unless --threads says. Time nothing while other
jobs run: the script prints the load average before it starts and refuses
above --max-load (default 1.5) unless --force.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWIN = os.path.join(ROOT, "tools", "reference", "torch_step_bench.py")


def die(msg):
    sys.exit(f"compare_torch: {msg}")


def venv_python(path):
    py = os.path.join(path, "bin", "python")
    if os.path.exists(py):
        r = subprocess.run([py, "-c", "import torch, scipy"], capture_output=True)
        if r.returncode == 0:
            return py
    print(f"making the PyTorch environment in {path} (python3 -m venv; pip install torch scipy: a few minutes, "
          f"once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "torch", "scipy"], check=True)
    return py


def torch_env():
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)       # see docs/performance.md §4
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def num_classes_of(eff, cfg_path):
    """model.num_classes, or the count the training set gives when it is 0 (as cldetr does)."""
    m = re.search(r"^num_classes = (\d+)", eff, re.M)
    if m and int(m.group(1)) > 0:
        return int(m.group(1))
    root = re.search(r"^root = (\S+)", eff, re.M).group(1)
    ann = re.search(r"^train_ann = (\S+)", eff, re.M).group(1)
    contiguous = re.search(r"^contiguous_labels = (\S+)", eff, re.M).group(1) == "true"
    path = os.path.join(root, ann)
    try:
        with open(path) as f:
            cats = json.load(f)["categories"]
    except (OSError, ValueError, KeyError) as e:
        die(f"{cfg_path}: model.num_classes = 0 takes the class count from {path}, which cannot be read ({e}); "
            f"make the dataset or pass --set model.num_classes=N")
    return len(cats) if contiguous else max(c["id"] for c in cats) + 1


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        die(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def cldetr_ms(out):
    m = re.search(r"^step ([0-9.]+) ms \(median", out, re.M)
    if not m:
        die(f"no step time in cldetr bench's output:\n{out}")
    return float(m.group(1))


def torch_ms(out):
    m = re.search(r"^median_ms ([0-9.]+) threads (\d+)", out, re.M)
    if not m:
        die(f"no step time in the twin's output:\n{out}")
    return float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("config")
    ap.add_argument("--set", action="append", default=[], metavar="section.key=value")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per side and round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="PyTorch threads (default: the faster of 1 and all)")
    ap.add_argument("--cldetr", default=os.path.join(ROOT, "build", "src", "cli", "cldetr"))
    ap.add_argument("--venv", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                   os.path.expanduser("~/.cache"), "cldetr", "torch-venv"))
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--force", action="store_true", help="time even when the machine is busy")
    a = ap.parse_args()
    if not os.access(a.cldetr, os.X_OK):
        die(f"{a.cldetr}: no cldetr binary (build it: meson setup build && ninja -C build, or give --cldetr)")
    # the twin is plain DETR: cldetr runs without the training-only accelerators
    # (configs/shapes.ini turns them on), whatever the config says
    sets = sum((["--set", s] for s in a.set), []) + ["--set", "train.query_groups=1", "--set", "train.dn_groups=0"]
    eff = run([a.cldetr, "config", a.config] + sets)
    k = num_classes_of(eff, a.config)
    sets += ["--set", f"model.num_classes={k}"]
    eff = run([a.cldetr, "config", a.config] + sets)
    py = venv_python(a.venv)
    tmp = tempfile.mkdtemp(prefix="cldetr-compare-")
    try:
        eff_path = os.path.join(tmp, "effective.ini")
        with open(eff_path, "w") as f:
            f.write(eff)
        twin = [py, TWIN, "--config", eff_path, "--steps", str(a.steps), "--warmup", str(a.warmup)]
        env = torch_env()
        threads = a.threads
        if threads <= 0:
            cands = sorted({1, os.cpu_count() or 1})
            tried = {t: torch_ms(run(twin + ["--threads", str(t), "--steps", "5"], env))[0] for t in cands}
            threads = min(tried, key=tried.get)
            print("PyTorch threads: " + ", ".join(f"{t}: {ms:.1f} ms" for t, ms in tried.items()) +
                  f" -> {threads}")
        version = run([py, "-c", "import torch; print(torch.__version__)"]).strip()
        load = os.getloadavg()[0]
        print(f"config {a.config} {' '.join(a.set)}; PyTorch {version} ({threads} threads); load average {load:.2f}")
        if load > a.max_load and not a.force:
            die(f"the load average is {load:.2f} > {a.max_load}: other jobs would skew the timing "
                f"(wait, or --force)")
        bench = [a.cldetr, "bench", a.config, "--steps", str(a.steps), "--warmup", str(a.warmup)] + sets
        ratios = []
        print(f"{'round':>5}  {'cldetr ms':>10}  {'PyTorch ms':>10}  {'ratio':>6}")
        for r in range(a.rounds):
            c = cldetr_ms(run(bench))
            t, _ = torch_ms(run(twin + ["--threads", str(threads)], env))
            ratios.append(c / t)
            print(f"{r + 1:>5}  {c:>10.1f}  {t:>10.1f}  {c / t:>6.2f}", flush=True)
        print(f"median ratio cldetr / PyTorch: {statistics.median(ratios):.2f} over {a.rounds} rounds "
              f"(< 1: cldetr is faster); load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
