#!/usr/bin/env python3
"""The PyTorch twin of a cldetr config: one DETR training step on the CPU with
the model, batch, loss and optimizer that `cldetr bench CONFIG` times.

The config is read from the effective config that `cldetr config CONFIG
[--set ...]` prints (every key, so both sides read the same values):
backbone (resnet depth, width, dilation, frozen or trainable BatchNorm, which
stages train), position encoding, d, heads, encoder/decoder layers, FFN,
dropout, pre-norm, queries, aux loss; the loss weights, eos_coef and matching
costs; AdamW's lr per group, weight decay and clipping; the batch size and the
largest input (max of augment.scales by max(augment.max_size, that)), as
cldetr bench's synthetic batches: random images, 1-4 random boxes each.
Without --config it times the shapes model of earlier measurements (20
queries, dropout 0.1, batch 8 of 128x128).

Model: tools/reference/detr_reference.py (the official architecture). Loss:
DETR's SetCriterion after the Hungarian matcher (scipy), per decoder layer.

Timing: median over --steps steps after --warmup, of the whole step and of
its phases (forward+loss incl. matching, backward, clip+AdamW), in ms. The
last line is machine-readable: "median_ms <ms> threads <n>".

bench/compare_torch.py runs it beside cldetr bench; by hand, as
docs/performance.md §4 says:
  cldetr config configs/shapes.ini > /tmp/eff.ini
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE V/bin/python tools/reference/torch_step_bench.py \
      --config /tmp/eff.ini --num-classes 5 --threads 2
"""
import argparse
import configparser
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detr_reference import build_detr  # noqa: E402
# DETR's box_cxcywh_to_xyxy and generalized_box_iou, as the criterion fixtures use them
from make_loss_fixtures import cxcywh_to_xyxy as box_xyxy, pairwise_giou as giou  # noqa: E402


@torch.no_grad()
def match(logits, boxes, targets, cc=1.0, cb=5.0, cg=2.0):
    B, Q, _ = logits.shape
    prob = logits.flatten(0, 1).softmax(-1)
    pb = boxes.flatten(0, 1)
    labels = torch.cat([t["labels"] for t in targets])
    tb = torch.cat([t["boxes"] for t in targets])
    cost = cb * torch.cdist(pb, tb, p=1) - cc * prob[:, labels] - cg * giou(box_xyxy(pb), box_xyxy(tb))
    cost = cost.view(B, Q, -1)
    out, start = [], 0
    for b, t in enumerate(targets):
        n = len(t["labels"])
        r, c = linear_sum_assignment(cost[b, :, start:start + n].numpy())
        out.append((torch.as_tensor(r, dtype=torch.long), torch.as_tensor(c, dtype=torch.long)))
        start += n
    return out


def set_loss(logits, boxes, targets, num_classes, eos_coef=0.1, w=(1.0, 5.0, 2.0), cost=(1.0, 5.0, 2.0)):
    """Weighted DETR loss of one decoder layer's outputs (B, Q, K1), (B, Q, 4)."""
    idx = match(logits, boxes, targets, *cost)
    B, Q, K1 = logits.shape
    bi = torch.cat([torch.full_like(s, i) for i, (s, _) in enumerate(idx)])
    qi = torch.cat([s for s, _ in idx])
    tclass = torch.full((B, Q), num_classes, dtype=torch.long)
    tclass[bi, qi] = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, idx)])
    empty = torch.ones(K1)
    empty[-1] = eos_coef
    loss_ce = F.cross_entropy(logits.transpose(1, 2), tclass, empty)
    num_boxes = max(1.0, float(sum(len(t["labels"]) for t in targets)))
    src = boxes[bi, qi]
    tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, idx)])
    loss_bbox = (src - tgt).abs().sum() / num_boxes
    loss_giou = (1 - torch.diag(giou(box_xyxy(src), box_xyxy(tgt)))).sum() / num_boxes
    return w[0] * loss_ce + w[1] * loss_bbox + w[2] * loss_giou


def make_batch(gen, B, H, W, num_classes):
    images = torch.randn(B, 3, H, W, generator=gen)
    mask = torch.zeros(B, H, W, dtype=torch.bool)
    targets = []
    for _ in range(B):
        n = int(torch.randint(1, 5, (1,), generator=gen))
        wh = 0.1 + 0.4 * torch.rand(n, 2, generator=gen)
        c = wh / 2 + (1 - wh) * torch.rand(n, 2, generator=gen)
        targets.append({"labels": torch.randint(1, num_classes, (n,), generator=gen),
                        "boxes": torch.cat([c, wh], 1)})
    return images, mask, targets


def read_config(path):
    """The effective config that `cldetr config` prints, as {section: {key: str}}."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    with open(path) as f:
        cp.read_string("".join(line for line in f if not line.startswith("#")))
    return {s: dict(cp[s]) for s in cp.sections()}


def twin_from_config(c, num_classes):
    """(build_detr kwargs, run settings) of an effective config."""
    m, t, a, loss, mt = c["model"], c["train"], c["augment"], c["loss"], c["matcher"]
    depth = m["backbone"]
    lr_backbone = float(t["lr_backbone"])
    kw = dict(backbone=depth, base_width=int(m["width"]), dilation=m["dilation"] == "true",
              frozen_bn=m["backbone_bn"] == "frozen", train_backbone=lr_backbone > 0 and m["freeze_backbone"] != "all",
              position_embedding=m["position_embedding"], hidden_dim=int(m["hidden_dim"]), nheads=int(m["nheads"]),
              enc_layers=int(m["enc_layers"]), dec_layers=int(m["dec_layers"]),
              dim_feedforward=int(m["dim_feedforward"]), dropout=float(m["dropout"]), pre_norm=m["pre_norm"] == "true",
              num_queries=int(m["num_queries"]), num_classes=num_classes)
    H = max(int(v) for v in a["scales"].split(","))
    W = max(int(a["max_size"]), H) if int(a["max_size"]) > 0 else H
    run = dict(batch=int(t["batch_size"]), H=H, W=W, lr=float(t["lr"]), lr_backbone=lr_backbone,
               weight_decay=float(t["weight_decay"]), clip=float(t["clip_max_norm"]),
               train_stem=m["freeze_backbone"] == "none", aux_loss=m["aux_loss"] == "true",
               eos_coef=float(loss["eos_coef"]),
               w=(float(loss["ce_loss_coef"]), float(loss["bbox_loss_coef"]), float(loss["giou_loss_coef"])),
               cost=(float(mt["set_cost_class"]), float(mt["set_cost_bbox"]), float(mt["set_cost_giou"])))
    return kw, run


SHAPES_DEFAULT = (dict(backbone="resnet18", base_width=32, frozen_bn=False, hidden_dim=128, nheads=4, enc_layers=2,
                       dec_layers=2, dim_feedforward=512, dropout=0.1, num_queries=20, num_classes=5),
                  dict(batch=8, H=128, W=128, lr=1e-4, lr_backbone=1e-4, weight_decay=1e-4, clip=0.1,
                       train_stem=True, aux_loss=True, eos_coef=0.1, w=(1.0, 5.0, 2.0), cost=(1.0, 5.0, 2.0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="effective config printed by `cldetr config CONFIG` (default: the shapes model)")
    ap.add_argument("--num-classes", type=int, default=0, help="classes when model.num_classes is 0 (from the data)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.config:
        c = read_config(args.config)
        k = int(c["model"]["num_classes"]) or args.num_classes
        if k < 1:
            sys.exit(f"{args.config}: model.num_classes is 0 (from the data): give --num-classes")
        kw, run = twin_from_config(c, k)
    else:
        kw, run = SHAPES_DEFAULT
    num_classes = kw["num_classes"]
    torch.manual_seed(0)
    model = build_detr(**kw)
    if run["train_stem"] and kw.get("train_backbone", True):
        for p in model.parameters():          # freeze_backbone = none: the stem and layer1 train too
            p.requires_grad_(True)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone") and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone") and p.requires_grad]
    groups = [{"params": rest}] + ([{"params": backbone, "lr": run["lr_backbone"]}] if backbone else [])
    opt = torch.optim.AdamW(groups, lr=run["lr"], weight_decay=run["weight_decay"])
    gen = torch.Generator().manual_seed(1)
    B, H, W = run["batch"], run["H"], run["W"]
    t_step, t_fwd, t_bwd, t_opt = [], [], [], []
    for step in range(args.warmup + args.steps):
        images, mask, targets = make_batch(gen, B, H, W, num_classes)
        t0 = time.perf_counter()
        logits, boxes = model(images, mask)           # (L, B, Q, K1), (L, B, Q, 4)
        layers = range(logits.shape[0]) if run["aux_loss"] else [logits.shape[0] - 1]
        loss = sum(set_loss(logits[l], boxes[l], targets, num_classes, run["eos_coef"], run["w"], run["cost"])
                   for l in layers)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        if run["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), run["clip"])
        opt.step()
        t3 = time.perf_counter()
        if step >= args.warmup:
            t_step.append(t3 - t0); t_fwd.append(t1 - t0); t_bwd.append(t2 - t1); t_opt.append(t3 - t2)
    med = lambda v: 1e3 * statistics.median(v)  # noqa: E731
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads; DETR {kw['backbone']} width "
          f"{kw['base_width']} {'frozen' if kw.get('frozen_bn', True) else 'trainable'} BN, d {kw['hidden_dim']}, "
          f"{kw['enc_layers']}+{kw['dec_layers']} layers, {kw['num_queries']} queries, {n_params:,} parameters; "
          f"batch {B} x 3x{H}x{W}")
    print(f"step {med(t_step):.1f} ms (median of {args.steps}; min {1e3 * min(t_step):.1f}), "
          f"{B / statistics.median(t_step):.1f} images/s")
    print(f"  forward+loss {med(t_fwd):.1f} ms, backward {med(t_bwd):.1f} ms, clip+AdamW {med(t_opt):.1f} ms; "
          f"last loss {loss.item():.3f}")
    print(f"median_ms {med(t_step):.3f} threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
