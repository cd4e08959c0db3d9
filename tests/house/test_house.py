#!/usr/bin/env python3
"""The shape of the source tree, as TAP checks (the rules are in docs/architecture.md):

- layers call only down: every #include of a library file names a header of
  its own module or of a module it may use;
- names say what, not who: no file name carries a work-package label;
- the repository stands alone: no tracked file cites notes outside it or an
  absolute path of a developer's machine, and every docs/ or bench/ document
  a file cites exists;
- kernels sit beside their host code: cl/X.cl goes with src/ops/X.c (or
  src/train/X.c), cl/common.cl is prepended to every program.
"""
import os
import re
import subprocess
import sys

ROOT = os.environ.get("CLDETR_SOURCE_ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# The library's modules, bottom up, and what each may include besides itself.
# config.h is read only by the application layer and the CLI (through src/app/setup.c).
ALLOWED = {
    "common": set(),
    "config": {"common"},
    "dist": {"common"},
    "device": {"common"},
    "ops": {"common", "device"},
    "nn": {"common", "device", "ops"},
    "loss": {"common"},
    "data": {"common"},
    "train": {"common", "device", "ops", "nn"},
    "eval": {"common", "data"},
    "app": {"common", "config", "dist", "device", "ops", "nn", "loss", "data", "train", "eval"},
    "cli": {"common", "config", "dist", "device", "ops", "nn", "loss", "data", "train", "eval", "app"},
}
# The public headers (include/cldetr/) of each module.
HEADERS = {
    "common": ["common.h"],
    "config": ["config.h", "config_keys.def"],
    "dist": ["dist.h"],
    "device": ["device.h", "blas_tune.h", "selftest.h"],
    "ops": ["ops.h", "op_cases.h"],
    "nn": ["nn.h", "detr.h", "safetensors.h", "weights.h", "checkpoint.h"],
    "loss": ["box.h", "matcher.h", "loss.h"],
    "data": ["coco.h", "data.h"],
    "train": ["train.h"],
    "eval": ["cocoeval.h", "evaluate.h", "chart.h", "draw.h", "tfevents.h"],
    "app": ["setup.h", "step.h", "trainer.h", "infer.h", "sweep.h", "layer_stats.h"],
}
MODULE_OF_HEADER = {h: m for m, hs in HEADERS.items() for h in hs}

n = 0
failed = 0


def check(ok, what, details=()):
    global n, failed
    n += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (n, what))
    for d in list(details)[:20]:
        print("#   " + d)
    if not ok:
        failed += 1


def tracked_files():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=True).stdout
        files = [f for f in out.splitlines() if f]
        if files:
            return files
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for d, dirs, fs in os.walk(ROOT):
        dirs[:] = [x for x in dirs if not x.startswith(("build", ".git", "runs", "__pycache__"))]
        files += [os.path.relpath(os.path.join(d, f), ROOT) for f in fs]
    return files


def module_of_file(path):
    """The module a library file belongs to, or None for files outside the library."""
    parts = path.split("/")
    if parts[0] == "src":
        if len(parts) == 2:
            return os.path.splitext(parts[1])[0] if parts[1] in ("common.c", "config.c") else None
        return parts[1] if parts[1] in ALLOWED else None
    if parts[0] == "include" and len(parts) == 3:
        return MODULE_OF_HEADER.get(parts[2], "?")
    return None


def module_of_include(inc):
    if inc.startswith("cldetr/"):
        return MODULE_OF_HEADER.get(inc[len("cldetr/"):], "?")
    first = inc.split("/")[0]
    return first if first in ALLOWED else None   # a private header of a module ("cli/cli.h", "device/kernels.h")


files = tracked_files()
text_files = [f for f in files if os.path.splitext(f)[1] in
              (".c", ".h", ".cl", ".def", ".py", ".sh", ".md", ".ini", ".build", ".txt", "") and
              not f.startswith("tests/fixtures/")]

def lines_matching(pattern):
    """'file:line: text' of every line of the text files (less tests/house/ itself) that pattern finds."""
    hits = []
    for f in text_files:
        if f.startswith("tests/house/"):
            continue
        with open(os.path.join(ROOT, f), errors="replace") as fh:
            for ln, line in enumerate(fh, 1):
                if pattern.search(line):
                    hits.append("%s:%d: %s" % (f, ln, line.strip()[:100]))
    return hits


# 1. Layers call only down.
bad, unknown = [], []
for f in files:
    mod = module_of_file(f)
    if mod is None or not f.endswith((".c", ".h", ".def")):
        continue
    if mod == "?":
        unknown.append("%s: a public header of no module (add it to HEADERS in tests/house/test_house.py)" % f)
        continue
    with open(os.path.join(ROOT, f), errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc_mod = module_of_include(m.group(1))
            if inc_mod is None and "/" not in m.group(1):
                continue                      # a private header beside the file
            if inc_mod == "?":
                unknown.append('%s:%d: "%s" belongs to no module' % (f, ln, m.group(1)))
            elif inc_mod != mod and inc_mod not in ALLOWED[mod]:
                bad.append('%s:%d: module %s includes "%s" of module %s above or beside it' %
                           (f, ln, mod, m.group(1), inc_mod))
check(not unknown, "every public header belongs to a module", unknown)
check(not bad, "every library file includes only headers of its own module or the modules below it", bad)

# 2. Names say what, not who.
label = re.compile(r"(^|[/_])(ops|test_ops|bench_ops)_[abc]_|(^|[/_])[abc]_(selftest|util|ref)\b")
bad = [f for f in files if label.search(f)]
check(not bad, "no file name carries a work-package label (ops_a_, ops_b_, ...)", bad)
pkg = re.compile(r"\b(ops-[ABC]|train-core|eval-cli)\b")
bad = lines_matching(pkg)
check(not bad, "no source or build file labels code by work package (ops-A, train-core, eval-cli, ...)", bad)

# 3. The repository stands alone.
# (the patterns are split so that this file does not match itself)
outside = re.compile(r"\.\./" r"shared|(^|[\s(`'\"])/?" r"shared/|shared" r"/reference|\b(DESIGN|STYLE)\.md\b|"
                     r"\bdetr\.md\b|cpu-" r"baseline|/wo" r"rk/|/home/[a-z]|/ro" r"ot/")
bad = lines_matching(outside)
check(not bad, "no tracked file cites notes outside the repository or a machine's absolute path", bad)
cited = re.compile(r"\b((?:docs|bench|datasets|tools)/[\w./-]+\.md)\b")
bad = []
for f in text_files:
    with open(os.path.join(ROOT, f), errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            for m in cited.finditer(line):
                target = m.group(1).rstrip(".")
                if not os.path.exists(os.path.join(ROOT, target)):
                    bad.append("%s:%d: cites %s, which is not in the repository" % (f, ln, target))
check(not bad, "every document under docs/, bench/, datasets/ or tools/ that a file cites is in the repository", bad)

# 4. Kernels beside their host code.
bad = []
for f in files:
    if f.startswith("cl/") and f.endswith(".cl"):
        stem = os.path.splitext(os.path.basename(f))[0]
        if stem == "common":
            continue
        if not any(os.path.exists(os.path.join(ROOT, "src", d, stem + ".c")) for d in ("ops", "train", "device")):
            bad.append("%s has no src/ops/%s.c, src/train/%s.c or src/device/%s.c" % (f, stem, stem, stem))
check(not bad, "every cl/X.cl sits beside its host file src/ops/X.c (or src/train/X.c, src/device/X.c)", bad)
check(os.path.exists(os.path.join(ROOT, "cl", "common.cl")), "cl/common.cl holds the helpers every kernel file shares")

print("1..%d" % n)
sys.exit(1 if failed else 0)
