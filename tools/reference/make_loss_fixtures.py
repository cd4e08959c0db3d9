#!/usr/bin/env python3
"""Make the reference fixtures of src/loss (matcher and set criterion).

Writes, under tests/fixtures/loss/:
  matcher_scipy.bin  scipy.optimize.linear_sum_assignment on large cost matrices
                     that the C test regenerates bit for bit (splitmix64 below),
                     so the file holds only the specs, the totals and scipy's
                     column indices.
  criterion.bin      DETR's HungarianMatcher + SetCriterion (models/matcher.py,
                     models/detr.py), re-implemented here in torch float64 from
                     the published formulas, with autograd for the gradients of
                     the total loss w.r.t. every decoder layer's logits and boxes.
                     Inputs are float32 values (what the C API takes), widened to
                     float64, so C (double inside) and this script agree to rounding.

File format (little-endian): magic b"CDFIX001", u32 count, then count arrays,
each: u32 name length, name (ASCII), u32 ndim, u64 dims[ndim], float64
data[prod(dims)] (integers are stored as exact float64).

matcher_scipy.bin arrays:
  spec [M,4]  (seed, R, C, kind) per matrix; kind 0: uniform [0,1);
              1: integers 0..99 (ties); 2: Machol-Wien (i+1)*(j+1) (no randomness);
              3: uniform [-1000,1000); 4: integers 0..2 (ties everywhere, optimum 0)
  total [M]   scipy's minimum total cost
  cols{i}     [min(R,C)] scipy's col_ind of matrix i (row_ind is sorted; with
              ties another optimum is as good, so the C test compares these only
              for continuous kinds 0 and 3)
  Matrix entry (i,j) is the (i*C+j)-th draw u of splitmix64 started at seed:
  kind 0: u; 1: floor(100u); 2: (i+1)*(j+1); 3: 2000u - 1000; 4: floor(3u).

criterion.bin arrays, per case k (prefix "c{k}."):
  sizes [4] L, B, Q, K1       n [B] targets per image
  labels [sum n]              tboxes [sum n, 4] cxcywh
  logits [L,B,Q,K1]           boxes [L,B,Q,4] (float32 values)
  opts [8] w_ce, w_bbox, w_giou, eos_coef, cost_class, cost_bbox, cost_giou, aux_loss
  terms [L,7] loss_ce, loss_bbox, loss_giou, weighted ce/bbox/giou, cardinality_error
              (zeros for layers not used when aux_loss = 0)
  scalars [3] total, class_error, num_boxes
  match [P,4] rows (layer, image, query, target), by layer, image, query
  dlogits [L,B,Q,K1], dboxes [L,B,Q,4]: d total / d inputs
count [1] number of cases.

Run: python3 tools/reference/make_loss_fixtures.py   (needs torch, scipy)
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "loss")
MASK64 = (1 << 64) - 1


def write_fixture(path, arrays):
    with open(path, "wb") as f:
        f.write(b"CDFIX001")
        f.write(struct.pack("<I", len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dQ" % a.ndim, *a.shape))
            f.write(a.tobytes())
    print("wrote %s (%d bytes)" % (os.path.relpath(path, ROOT), os.path.getsize(path)))


# ---------------------------------------------------------------- matcher
def splitmix64_uniform(seed, n):
    out = np.empty(n)
    s = seed & MASK64
    for i in range(n):
        s = (s + 0x9E3779B97F4A7C15) & MASK64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        out[i] = (z >> 11) * (1.0 / 9007199254740992.0)
    return out


def make_matrix(seed, R, C, kind):
    u = splitmix64_uniform(seed, R * C).reshape(R, C)
    if kind == 0:
        return u
    if kind == 1:
        return np.floor(100 * u)
    if kind == 2:
        return np.outer(np.arange(1, R + 1), np.arange(1, C + 1)).astype(float)
    if kind == 3:
        return 2000 * u - 1000
    if kind == 4:
        return np.floor(3 * u)
    raise ValueError(kind)


def matcher_fixture():
    specs = [(11, 100, 100, 0), (12, 100, 100, 1), (13, 100, 100, 2), (14, 100, 100, 3),
             (15, 100, 100, 4), (21, 100, 30, 0), (22, 100, 30, 1), (23, 30, 100, 0),
             (24, 30, 100, 1), (25, 30, 100, 2), (26, 100, 30, 2), (31, 100, 7, 0),
             (32, 7, 100, 3), (33, 1, 100, 0), (34, 100, 1, 1), (41, 57, 43, 4), (42, 43, 57, 3)]
    arrays = [("spec", np.array(specs, dtype=float))]
    totals = []
    for i, (seed, R, C, kind) in enumerate(specs):
        c = make_matrix(seed, R, C, kind)
        r, cols = linear_sum_assignment(c)
        assert np.all(np.diff(r) > 0)
        totals.append(c[r, cols].sum())
        arrays.append(("cols%d" % i, cols.astype(float)))
    arrays.insert(1, ("total", np.array(totals)))
    write_fixture(os.path.join(OUT, "matcher_scipy.bin"), arrays)


# ---------------------------------------------------------------- DETR criterion (float64)
def cxcywh_to_xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def pairwise_giou(a, b):
    """GIoU [N,M] of xyxy boxes, DETR's generalized_box_iou formulas (no eps)."""
    assert (a[:, 2:] >= a[:, :2]).all() and (b[:, 2:] >= b[:, :2]).all()
    aa, ab = area(a), area(b)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = aa[:, None] + ab[None, :] - inter
    iou = inter / union
    lt = torch.min(a[:, None, :2], b[None, :, :2])
    rb = torch.max(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    encl = wh[..., 0] * wh[..., 1]
    return iou - (encl - union) / encl


@torch.no_grad()
def hungarian(logits, boxes, targets, cc, cb, cg):
    """Indices per image: DETR's HungarianMatcher on one layer. logits [B,Q,K1]."""
    B, Q, _ = logits.shape
    prob = logits.flatten(0, 1).softmax(-1)
    pb = boxes.flatten(0, 1)
    labels = torch.cat([t[0] for t in targets])
    tb = torch.cat([t[1] for t in targets])
    if len(labels) == 0:
        return [(np.zeros(0, int), np.zeros(0, int)) for _ in range(B)]
    cost = (cb * torch.cdist(pb, tb, p=1) - cc * prob[:, labels]
            - cg * pairwise_giou(cxcywh_to_xyxy(pb), cxcywh_to_xyxy(tb)))
    cost = cost.view(B, Q, -1)
    out, start = [], 0
    for b, t in enumerate(targets):
        n = len(t[0])
        r, c = linear_sum_assignment(cost[b, :, start:start + n].numpy())
        out.append((r, c))
        start += n
    return out


def criterion_reference(logits32, boxes32, targets, opts):
    w_ce, w_bbox, w_giou, eos, cc, cb, cg, aux = opts
    L, B, Q, K1 = logits32.shape
    K = K1 - 1
    logits = torch.tensor(logits32, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor(boxes32, dtype=torch.float64, requires_grad=True)
    tg = [(torch.tensor(lab, dtype=torch.long), torch.tensor(bx, dtype=torch.float64).reshape(-1, 4))
          for lab, bx in targets]
    num_boxes = max(1.0, float(sum(len(t[0]) for t in tg)))
    empty_weight = torch.ones(K1, dtype=torch.float64)
    empty_weight[-1] = eos
    terms = np.zeros((L, 7))
    matches = []
    total = 0
    class_error = None
    for l in (range(L) if aux else [L - 1]):
        idx = hungarian(logits[l].detach(), boxes[l].detach(), tg, cc, cb, cg)
        tclass = torch.full((B, Q), K, dtype=torch.long)
        src, tgt_boxes, qs = [], [], []
        for b, (r, c) in enumerate(idx):
            for q, t in zip(r, c):
                matches.append((l, b, int(q), int(t)))
                tclass[b, q] = tg[b][0][t]
                src.append(boxes[l, b, q])
                tgt_boxes.append(tg[b][1][t])
                qs.append((b, int(q), int(tg[b][0][t])))
        loss_ce = F.cross_entropy(logits[l].transpose(1, 2), tclass, weight=empty_weight)
        if src:
            sb, tb = torch.stack(src), torch.stack(tgt_boxes)
            loss_bbox = (sb - tb).abs().sum() / num_boxes
            loss_giou = (1 - torch.diag(pairwise_giou(cxcywh_to_xyxy(sb), cxcywh_to_xyxy(tb)))).sum() / num_boxes
        else:
            loss_bbox = boxes[l].sum() * 0
            loss_giou = boxes[l].sum() * 0
        with torch.no_grad():
            am = logits[l].argmax(-1)
            card = (am != K).sum(1).double()
            n = torch.tensor([float(len(t[0])) for t in tg], dtype=torch.float64)
            card_err = (card - n).abs().mean().item()
            if l == L - 1:
                if qs:
                    correct = sum(int(am[b, q]) == y for b, q, y in qs)
                    class_error = 100.0 - 100.0 * correct / len(qs)
                else:
                    class_error = 100.0
        total = total + w_ce * loss_ce + w_bbox * loss_bbox + w_giou * loss_giou
        terms[l] = [loss_ce.item(), loss_bbox.item(), loss_giou.item(), w_ce * loss_ce.item(),
                    w_bbox * loss_bbox.item(), w_giou * loss_giou.item(), card_err]
    total.backward()
    return dict(terms=terms, scalars=np.array([total.item(), class_error, num_boxes]),
                match=np.array(matches, dtype=float).reshape(-1, 4),
                dlogits=logits.grad.numpy(), dboxes=boxes.grad.numpy())


def make_case(gen, L, B, Q, K1, ns):
    logits = (torch.randn(L, B, Q, K1, generator=gen) * 2).float()
    boxes = torch.sigmoid(torch.randn(L, B, Q, 4, generator=gen)).float()
    targets = []
    for n in ns:
        lab = torch.randint(0, K1 - 1, (n,), generator=gen)
        c = torch.rand(n, 2, generator=gen) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=gen) * 0.35 + 0.05
        targets.append((lab.numpy(), torch.cat([c, wh], 1).float().numpy()))
    return logits.numpy(), boxes.numpy(), targets


def criterion_fixture():
    gen = torch.Generator().manual_seed(1234)
    default = (1.0, 5.0, 2.0, 0.1, 1.0, 5.0, 2.0, 1)
    cases = []
    # 0: aux layers, an image with no targets, one with more targets than queries,
    #    and predictions identical to a target (ties in every max/min of GIoU).
    logits, boxes, targets = make_case(gen, 3, 4, 12, 8, [3, 0, 15, 5])
    for l in range(3):
        boxes[l, 0, 4] = targets[0][1][1]
        logits[l, 0, 4, targets[0][0][1]] = 6.0
    boxes[1, 3, 7] = targets[3][1][2]
    cases.append((logits, boxes, targets, default))
    # 1: other weights and eos_coef; an image with exactly Q targets.
    logits, boxes, targets = make_case(gen, 2, 2, 6, 5, [2, 6])
    cases.append((logits, boxes, targets, (2.0, 3.0, 1.5, 0.25, 2.0, 1.0, 3.0, 1)))
    # 2: aux_loss off: only the final layer counts.
    logits, boxes, targets = make_case(gen, 3, 2, 5, 4, [1, 7])
    cases.append((logits, boxes, targets, default[:7] + (0,)))
    # 3: a batch without any target.
    logits, boxes, targets = make_case(gen, 2, 2, 4, 3, [0, 0])
    cases.append((logits, boxes, targets, default))

    arrays = [("count", [len(cases)])]
    for k, (logits, boxes, targets, opts) in enumerate(cases):
        ref = criterion_reference(logits, boxes, targets, opts)
        if k == 0:   # the identical boxes must be matched to be worth testing
            m = ref["match"]
            for l, b, q, t in [(0, 0, 4, 1), (1, 0, 4, 1), (2, 0, 4, 1)]:
                assert any((row == [l, b, q, t]).all() for row in m), (l, b, q, t)
        p = "c%d." % k
        arrays += [
            (p + "sizes", list(logits.shape)),
            (p + "n", [len(t[0]) for t in targets]),
            (p + "labels", np.concatenate([t[0] for t in targets]).astype(float)),
            (p + "tboxes", np.concatenate([t[1] for t in targets]).reshape(-1, 4)),
            (p + "logits", logits), (p + "boxes", boxes), (p + "opts", list(opts)),
            (p + "terms", ref["terms"]), (p + "scalars", ref["scalars"]), (p + "match", ref["match"]),
            (p + "dlogits", ref["dlogits"]), (p + "dboxes", ref["dboxes"]),
        ]
        print("case %d: total %.9g class_error %.4g matches %d" %
              (k, ref["scalars"][0], ref["scalars"][1], len(ref["match"])))
    write_fixture(os.path.join(OUT, "criterion.bin"), arrays)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    matcher_fixture()
    criterion_fixture()
    return 0


if __name__ == "__main__":
    sys.exit(main())
