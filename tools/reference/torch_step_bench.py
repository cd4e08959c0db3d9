#!/usr/bin/env python3
"""The PyTorch baseline for `cldetr bench configs/shapes.ini`: one DETR training
step on the CPU, the same model, batch and recipe as configs/shapes.ini.

Model: tools/reference/detr_reference.py's official architecture with
resnet18 at base width 32 (stages of 32/64/128/256 channels), trainable
BatchNorm2d (batch statistics), the whole backbone trained (freeze_backbone =
none), d = 128, 4 heads, 2 encoder + 2 decoder layers, FFN 512, dropout 0.1,
20 queries, 5 classes (+ no-object), aux loss on every decoder layer.
Loss: DETR's SetCriterion (CE with eos_coef 0.1, L1 x5, GIoU x2) after the
Hungarian matcher (scipy linear_sum_assignment, costs 1/5/2), per layer.
Optimizer: AdamW lr 1e-4 (both groups), weight decay 1e-4, gradient clipping at
global norm 0.1, as the official engine.py.
Batch: 8 random 128x128 images (normalized-like values), 1 to 4 random boxes
per image; a new batch each step (as cldetr bench's synthetic batches).

Timing: median over --steps steps after --warmup, of the whole step and of
its phases (forward+loss incl. matching, backward, clip+AdamW), in ms; images/s.

Run it as docs/performance.md §4 says (the preset OpenBLAS core type halves its
speed; 2 threads on the 2 cores):
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 python3 tools/reference/torch_step_bench.py
"""
import argparse
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


def set_loss(logits, boxes, targets, num_classes, eos_coef=0.1, w=(1.0, 5.0, 2.0)):
    """Weighted DETR loss of one decoder layer's outputs (B, Q, K1), (B, Q, 4)."""
    idx = match(logits, boxes, targets)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    num_classes = 5
    model = build_detr("resnet18", base_width=32, frozen_bn=False, hidden_dim=128, nheads=4, enc_layers=2,
                       dec_layers=2, dim_feedforward=512, dropout=0.1, num_queries=20, num_classes=num_classes)
    for p in model.parameters():          # freeze_backbone = none: the stem trains too
        p.requires_grad_(True)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": backbone, "lr": 1e-4}], lr=1e-4, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    t_step, t_fwd, t_bwd, t_opt = [], [], [], []
    for step in range(args.warmup + args.steps):
        images, mask, targets = make_batch(gen, args.batch, args.size, args.size, num_classes)
        t0 = time.perf_counter()
        logits, boxes = model(images, mask)           # (L, B, Q, K1), (L, B, Q, 4)
        loss = sum(set_loss(logits[l], boxes[l], targets, num_classes) for l in range(logits.shape[0]))
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
        t3 = time.perf_counter()
        if step >= args.warmup:
            t_step.append(t3 - t0); t_fwd.append(t1 - t0); t_bwd.append(t2 - t1); t_opt.append(t3 - t2)
    med = lambda v: 1e3 * statistics.median(v)  # noqa: E731
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads; DETR resnet18 width 32 trainable BN, "
          f"d 128, 2+2 layers, 20 queries, {n_params:,} parameters; batch {args.batch} x 3x{args.size}x{args.size}")
    print(f"step {med(t_step):.1f} ms (median of {args.steps}; min {1e3 * min(t_step):.1f}), "
          f"{args.batch / statistics.median(t_step):.1f} images/s")
    print(f"  forward+loss {med(t_fwd):.1f} ms, backward {med(t_bwd):.1f} ms, clip+AdamW {med(t_opt):.1f} ms; "
          f"last loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
