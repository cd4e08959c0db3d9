#!/usr/bin/env python3
"""Does dropout 0.1 open a large eval/train loss gap in PyTorch's DETR after 300 steps?

The PyTorch counterpart of
  cldetr train configs/shapes.ini --set model.backbone_bn=frozen --set model.dropout=0.1
      --set model.num_queries=10 --set train.lr=2e-4 --set train.lr_backbone=2e-4
      --set train.clip_max_norm=1.0 --set train.max_steps=300
(and the same with dropout 0): detr_reference.py's official architecture, resnet18 width 32,
FrozenBatchNorm2d at identity, the whole backbone trained, d 128, 4 heads, 2+2 layers,
FFN 512, 10 queries, 5 classes; DETR's matcher and criterion from torch_step_bench.py,
aux loss on (the reported loss is the weighted sum over both decoder layers, as the
training objective); AdamW lr 2e-4 (backbone too), wd 1e-4, clip 1.0.
Data: datasets/shapes, 128x128 PNGs as is (no augmentation), ImageNet normalisation,
boxes cxcywh / 128, batch 8, shuffled with a fixed seed.

Every --every steps it prints: the mean training loss of the last --every steps (train
mode), and on the first 64 validation images the loss in eval mode (no dropout) and in
train mode (dropout active, fixed seed), to separate "dropout at eval time" from
"generalisation". Writes nothing.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 tools/reference/dropout_check.py
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detr_reference import build_detr  # noqa: E402
from torch_step_bench import set_loss  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
NUM_CLASSES = 5


def load_split(split, limit=None):
    ann = json.load(open(os.path.join(ROOT, "datasets/shapes/annotations", f"{split}.json")))
    by_img = {}
    for a in ann["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    imgs, tgts = [], []
    for im in ann["images"][:limit]:
        arr = np.asarray(Image.open(os.path.join(ROOT, "datasets/shapes", split, im["file_name"])).convert("RGB"))
        x = (torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255 - MEAN) / STD
        W, H = im["width"], im["height"]
        anns = by_img.get(im["id"], [])
        b = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes = torch.stack([(b[:, 0] + b[:, 2] / 2) / W, (b[:, 1] + b[:, 3] / 2) / H, b[:, 2] / W, b[:, 3] / H], 1)
        imgs.append(x)
        tgts.append({"labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.long), "boxes": boxes})
    return torch.stack(imgs), tgts


def batch_loss(model, images, targets):
    mask = torch.zeros(images.shape[0], images.shape[2], images.shape[3], dtype=torch.bool)
    logits, boxes = model(images, mask)
    return sum(set_loss(logits[l], boxes[l], targets, NUM_CLASSES) for l in range(logits.shape[0]))


@torch.no_grad()
def val_loss(model, vimg, vtgt, train_mode):
    model.train(train_mode)
    tot, n = 0.0, 0
    with torch.random.fork_rng():   # leaves the training run's RNG stream untouched
        torch.manual_seed(123)      # the same dropout masks at every check
        for i in range(0, len(vtgt), 8):
            tot += batch_loss(model, vimg[i:i + 8], vtgt[i:i + 8]).item()
            n += 1
    model.train(True)
    return tot / n


def restrict_dropout(model, where):
    """Keep dropout only at `where`: attn (attention probabilities, nn.MultiheadAttention's
    dropout), ffn (the FFN hidden layer, after ReLU), resid (dropout1/2/3 on the residual
    branches); 'all' = the official placement."""
    if where == "all":
        return
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.MultiheadAttention) and where != "attn":
            m.dropout = 0.0
        elif isinstance(m, torch.nn.Dropout):
            leaf = name.rsplit(".", 1)[-1]
            keep = (where == "ffn" and leaf == "dropout") or (where == "resid" and leaf != "dropout")
            if not keep:
                m.p = 0.0


def run(dropout, timg, ttgt, vimg, vtgt, steps, every, where="all", seed=0):
    torch.manual_seed(seed)
    model = build_detr("resnet18", base_width=32, frozen_bn=True, hidden_dim=128, nheads=4, enc_layers=2,
                       dec_layers=2, dim_feedforward=512, dropout=dropout, num_queries=10,
                       num_classes=NUM_CLASSES)
    restrict_dropout(model, where)
    for p in model.parameters():   # freeze_backbone = none
        p.requires_grad_(True)
    model.train()
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": backbone, "lr": 2e-4}], lr=2e-4, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(42)
    order, pos = torch.randperm(len(ttgt), generator=gen), 0
    rows, acc, t0 = [], [], time.perf_counter()
    print(f"dropout {dropout} (where {where}, seed {seed}): step  train(mean last {every})  train(last batch)  val eval-mode  val train-mode  "
          f"gap(eval-train)")
    for step in range(1, steps + 1):
        if pos + 8 > len(order):
            order, pos = torch.randperm(len(ttgt), generator=gen), 0
        idx = order[pos:pos + 8].tolist()
        pos += 8
        loss = batch_loss(model, timg[idx], [ttgt[i] for i in idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc.append(loss.item())
        if step % every == 0:
            tr = sum(acc) / len(acc)
            ve = val_loss(model, vimg, vtgt, False)
            vt = val_loss(model, vimg, vtgt, True)
            rows.append((step, tr, acc[-1], ve, vt))
            print(f"  {step:4d}  {tr:8.3f}  {acc[-1]:8.3f}  {ve:8.3f}  {vt:8.3f}  {ve - tr:+7.3f}"
                  f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
            acc = []
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--dropouts", default="0.1,0")
    ap.add_argument("--where", default="all", help="comma list of all|attn|ffn|resid (ablation)")
    ap.add_argument("--seed", type=int, default=0, help="model init seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    timg, ttgt = load_split("train")
    vimg, vtgt = load_split("val", 64)
    print(f"train {len(ttgt)} images, val {len(vtgt)} images; torch {torch.__version__}, 1 thread")
    for where in args.where.split(","):
        for d in [float(x) for x in args.dropouts.split(",")]:
            run(d, timg, ttgt, vimg, vtgt, args.steps, args.every, where, args.seed)


if __name__ == "__main__":
    main()
