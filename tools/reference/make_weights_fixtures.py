#!/usr/bin/env python3
"""Make the fixtures of the weights area (src/nn/weights.c, cldetr import/export/step).

    python3 tools/reference/make_weights_fixtures.py      (torch, scipy, numpy, pillow; ~10 s)

Writes, under tests/fixtures/weights/:

  r50_dc5_hf.safetensors   the weights of tests/fixtures/nn/tiny_detr_r50_dc5.safetensors (ResNet-50
                           width 2, DC5, learned position embedding, d=16, 2+2 layers, 4 queries,
                           3 classes) renamed to HF transformers DetrForObjectDetection names by
                           hf_names() below (q/k/v split out of in_proj_weight/bias), stored as BF16
                           (round to nearest even), plus an I64 `num_batches_tracked` after each
                           downsample BN, as HF's hub files have. The C test loads it and compares
                           with the official file's values rounded to BF16: bit-exact.
  r50_names.json           {"official": [[name, shape], ...], "hf": [[name, shape], ...]} for the
                           full DETR-R50 with 91 classes: the state_dict keys of detr_reference.py's
                           build_detr() (what PyTorch's strict load wants) and their HF names.
                           The C test builds configs/detr_r50.ini's model, checks that its registry
                           holds exactly the official names and shapes, and loads a file written
                           with the HF names and shapes (zero data): no missing, no unexpected.
  step_a.png, step_b.png   two RGB images (56x40 and 40x60, w x h), smooth pattern + noise.
  step_coco.json           COCO instances for them (file_name step_a.png / step_b.png) and for an
                           image that is not given (other.png): a crowd box (dropped), a box
                           that runs past the right edge (clamped), ids 1..4 of 5 classes.
  step_tiny.ini            the config of tests/fixtures/nn/tiny_detr.safetensors (resnet18 width 8,
                           d=32, 4 heads, 2+2 layers, FFN 64, 5 queries, 5 classes, dropout 0).
  step_ref.safetensors     DETR's forward, HungarianMatcher and SetCriterion (aux loss on, weights
                           1/5/2, eos 0.1) in float64 from the tiny fixture's float32 weights on
                           the two images exactly as `cldetr step` sees them: PNG bytes ->
                           float32 (v/255 - mean)/std (ImageNet), padded bottom/right to the
                           batch's largest size with mask 1 = padding; targets: crowd dropped,
                           xywh -> xyxy clamped to the image, cxcywh / (w, h) in float32.
                           Tensors (the same names as `cldetr step --dump` writes):
                             pred_logits F32 [B,Q,K1], pred_boxes F32 [B,Q,4]
                             aux_outputs.0.pred_logits / pred_boxes
                             loss F64 [] (weighted total); loss_ce, loss_bbox, loss_giou and _0
                             (unweighted, DETR's loss_dict names); num_boxes, class_error F64 []
                             indices, indices_0 I64 [n,3] rows (image, query, target)
                             grad.<name> F32 for a few trainable parameters (float64 rounded)

Format: safetensors (tools/reference/safetensors_io.py), JSON, PNG, INI.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detr_reference as R  # noqa: E402
import safetensors_io as stio  # noqa: E402
from make_loss_fixtures import cxcywh_to_xyxy, hungarian, pairwise_giou  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "weights")
NN = os.path.join(ROOT, "tests", "fixtures", "nn")


# --------------------------------------------------------------------- HF names
def hf_names(name):
    """Official DETR state_dict name -> list of HF transformers names (3 for a packed q/k/v)."""
    simple = [("backbone.0.body.", "model.backbone.conv_encoder.model."),
              ("backbone.1.row_embed.", "model.backbone.position_embedding.row_embeddings."),
              ("backbone.1.col_embed.", "model.backbone.position_embedding.column_embeddings."),
              ("input_proj.", "model.input_projection."),
              ("query_embed.", "model.query_position_embeddings."),
              ("transformer.decoder.norm.", "model.decoder.layernorm."),
              ("class_embed.", "class_labels_classifier."),
              ("bbox_embed.", "bbox_predictor.")]
    for a, b in simple:
        if name.startswith(a):
            return [b + name[len(a):]]
    parts = name.split(".")
    assert parts[0] == "transformer" and parts[2] == "layers", name
    kind, i, rest = parts[1], parts[3], parts[4:]
    ren = {"linear1": "fc1", "linear2": "fc2", "norm1": "self_attn_layer_norm", "norm3": "final_layer_norm",
           "norm2": "final_layer_norm" if kind == "encoder" else "encoder_attn_layer_norm",
           "self_attn": "self_attn", "multihead_attn": "encoder_attn"}
    head = f"model.{kind}.layers.{i}.{ren[rest[0]]}"
    if rest[1] in ("in_proj_weight", "in_proj_bias"):
        wb = rest[1].split("_")[-1]
        return [f"{head}.{x}_proj.{wb}" for x in "qkv"]
    return [head + "." + ".".join(rest[1:])]


def to_hf(state):
    """dict official name -> array  =>  list of (HF name, array) (q/k/v split on dim 0)."""
    out = []
    for name, a in state.items():
        names = hf_names(name)
        parts = np.split(a, 3, axis=0) if len(names) == 3 else [a]
        out += list(zip(names, parts))
        if name.endswith("downsample.1.running_var"):
            out.append((names[0].replace("running_var", "num_batches_tracked"), np.array(0, dtype=np.int64)))
    return out


def weights_of(path):
    t, meta = stio.load(path)
    return {k: v for k, v in t.items() if not k.startswith(("ref.", "grad.", "input."))}, meta


def make_hf_file():
    w, _ = weights_of(os.path.join(NN, "tiny_detr_r50_dc5.safetensors"))
    entries = []
    for name, a in to_hf(w):
        entries.append((name, a, "I64" if a.dtype == np.int64 else "BF16"))
    stio.save(os.path.join(OUT, "r50_dc5_hf.safetensors"), entries,
              {"producer": "make_weights_fixtures.py", "source": "tests/fixtures/nn/tiny_detr_r50_dc5.safetensors"})
    print(f"r50_dc5_hf.safetensors: {len(entries)} tensors")


def make_names():
    m = R.build_detr(num_classes=91)
    sd = m.state_dict()
    official = [[k, list(v.shape)] for k, v in sd.items()]
    hf = [[k, list(np.shape(a))] for k, a in to_hf({k: np.zeros(v.shape, np.float32) for k, v in sd.items()})]
    with open(os.path.join(OUT, "r50_names.json"), "w") as f:
        json.dump({"official": official, "hf": hf}, f, separators=(",", ":"))
    print(f"r50_names.json: {len(official)} official, {len(hf)} HF tensors")


# --------------------------------------------------------------------- step reference
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
IMAGES = [("step_a.png", 56, 40), ("step_b.png", 40, 60)]   # (file, w, h)
ANNS = [  # (image index, category, x, y, w, h, iscrowd)
    (0, 1, 4.5, 6.0, 20.0, 14.0, 0),
    (0, 3, 30.0, 10.0, 40.0, 22.5, 0),     # runs past the right edge (x1 = 70 > 56): clamped
    (0, 2, 1.0, 1.0, 10.0, 10.0, 1),       # crowd: dropped
    (1, 4, 8.0, 12.0, 24.0, 30.0, 0),
    (2, 1, 0.0, 0.0, 5.0, 5.0, 0),         # other.png, not given to cldetr step
]
TINY_INI = """; the model of tests/fixtures/nn/tiny_detr.safetensors (tools/reference/make_model_fixtures.py)
[model]
backbone = resnet18
width = 8
hidden_dim = 32
nheads = 4
enc_layers = 2
dec_layers = 2
dim_feedforward = 64
dropout = 0
num_queries = 5
num_classes = 5
pre_norm = false
position_embedding = sine
backbone_bn = frozen
freeze_backbone = layer1
aux_loss = true

[device]
type = any
"""
GRADS = ["class_embed.weight", "class_embed.bias", "bbox_embed.layers.2.weight", "query_embed.weight",
         "input_proj.weight", "transformer.encoder.layers.0.self_attn.in_proj_weight",
         "transformer.decoder.layers.1.linear2.weight", "backbone.0.body.layer2.0.conv1.weight",
         "backbone.0.body.layer3.0.downsample.0.weight"]


def make_images():
    rng = np.random.default_rng(7)
    for k, (fname, w, h) in enumerate(IMAGES):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([128 + 100 * np.sin(x / (5 + k) + c) * np.cos(y / 7 - c) for c in range(3)], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img, "RGB").save(os.path.join(OUT, fname))
    coco = {"images": [{"id": i + 1, "file_name": f, "width": w, "height": h} for i, (f, w, h) in enumerate(IMAGES)]
            + [{"id": 3, "file_name": "other.png", "width": 30, "height": 30}],
            "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 5)],
            "annotations": [{"id": 10 + j, "image_id": im + 1, "category_id": c, "bbox": [x, y, bw, bh],
                             "area": bw * bh, "iscrowd": cr} for j, (im, c, x, y, bw, bh, cr) in enumerate(ANNS)]}
    with open(os.path.join(OUT, "step_coco.json"), "w") as f:
        json.dump(coco, f, indent=1)
    with open(os.path.join(OUT, "step_tiny.ini"), "w") as f:
        f.write(TINY_INI)


def load_batch():
    """The batch exactly as cldetr step builds it (float32 values)."""
    ims = [np.asarray(Image.open(os.path.join(OUT, f)).convert("RGB")) for f, _, _ in IMAGES]
    H, W = max(i.shape[0] for i in ims), max(i.shape[1] for i in ims)
    images = np.zeros((len(ims), 3, H, W), np.float32)
    mask = np.ones((len(ims), H, W), bool)
    targets = []
    for b, im in enumerate(ims):
        h, w = im.shape[:2]
        v = im.astype(np.float32) / np.float32(255)
        images[b, :, :h, :w] = ((v - MEAN) / STD).transpose(2, 0, 1)
        mask[b, :h, :w] = False
        labels, boxes = [], []
        for (i, c, x, y, bw, bh, cr) in ANNS:
            if i != b or cr:
                continue
            x0, y0 = np.float32(x), np.float32(y)
            x1, y1 = x0 + np.float32(bw), y0 + np.float32(bh)
            x0, x1 = [min(max(t, np.float32(0)), np.float32(w)) for t in (x0, x1)]
            y0, y1 = [min(max(t, np.float32(0)), np.float32(h)) for t in (y0, y1)]
            if not (x1 > x0 and y1 > y0):
                continue
            fw, fh = np.float32(w), np.float32(h)
            boxes.append([((x0 + x1) / np.float32(2)) / fw, ((y0 + y1) / np.float32(2)) / fh,
                          (x1 - x0) / fw, (y1 - y0) / fh])
            labels.append(c)
        targets.append((torch.tensor(labels, dtype=torch.long),
                        torch.tensor(np.array(boxes, np.float32).reshape(-1, 4), dtype=torch.float64)))
    return torch.tensor(images, dtype=torch.float64), torch.tensor(mask), targets


def set_criterion(logits, boxes, targets, eos=0.1, w=(1.0, 5.0, 2.0)):
    """DETR's SetCriterion (labels, boxes) over every decoder layer, float64, differentiable."""
    L, B, Q, K1 = logits.shape
    num_boxes = max(1.0, float(sum(len(t[0]) for t in targets)))
    ew = torch.ones(K1, dtype=torch.float64)
    ew[-1] = eos
    out, total = {}, 0
    for l in range(L):
        sfx = "" if l == L - 1 else f"_{l}"
        idx = hungarian(logits[l].detach(), boxes[l].detach(), targets, 1.0, 5.0, 2.0)
        tclass = torch.full((B, Q), K1 - 1, dtype=torch.long)
        rows, src, tgt = [], [], []
        for b, (r, c) in enumerate(idx):
            for q, t in zip(r, c):
                rows.append((b, int(q), int(t)))
                tclass[b, q] = targets[b][0][t]
                src.append(boxes[l, b, q])
                tgt.append(targets[b][1][t])
        ce = F.cross_entropy(logits[l].transpose(1, 2), tclass, weight=ew)
        sb, tb = torch.stack(src), torch.stack(tgt)
        l1 = (sb - tb).abs().sum() / num_boxes
        giou = (1 - torch.diag(pairwise_giou(cxcywh_to_xyxy(sb), cxcywh_to_xyxy(tb)))).sum() / num_boxes
        total = total + w[0] * ce + w[1] * l1 + w[2] * giou
        out["loss_ce" + sfx], out["loss_bbox" + sfx], out["loss_giou" + sfx] = ce, l1, giou
        out["indices" + sfx] = np.array(rows, np.int64).reshape(-1, 3)
        if l == L - 1:
            am = logits[l].detach().argmax(-1)
            ok = sum(int(am[b, q]) == int(targets[b][0][t]) for b, q, t in rows)
            out["class_error"] = 100.0 - 100.0 * ok / len(rows)
    out["loss"], out["num_boxes"] = total, num_boxes
    return out


def make_step_ref():
    w, meta = weights_of(os.path.join(NN, "tiny_detr.safetensors"))
    cfg = dict(backbone="resnet18", base_width=8, dilation=False, frozen_bn=True, train_backbone=True,
               position_embedding="sine", hidden_dim=32, nheads=4, enc_layers=2, dec_layers=2,
               dim_feedforward=64, dropout=0.0, pre_norm=False, num_queries=5, num_classes=5)
    model = R.build_detr(**cfg).double()
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}, strict=True)
    model.eval()
    images, mask, targets = load_batch()
    logits, boxes = model(images, mask)
    res = set_criterion(logits, boxes, targets)
    model.zero_grad()
    res["loss"].backward()
    params = dict(model.named_parameters())
    L = logits.shape[0]
    ent = [("pred_logits", logits[-1].detach().numpy(), "F32"), ("pred_boxes", boxes[-1].detach().numpy(), "F32")]
    for l in range(L - 1):
        ent += [(f"aux_outputs.{l}.pred_logits", logits[l].detach().numpy(), "F32"),
                (f"aux_outputs.{l}.pred_boxes", boxes[l].detach().numpy(), "F32")]
    for k, v in res.items():
        if k.startswith("indices"):
            ent.append((k, v, "I64"))
        else:
            ent.append((k, np.array(float(v.detach()) if torch.is_tensor(v) else float(v), np.float64), "F64"))
    for g in GRADS:
        ent.append(("grad." + g, params[g].grad.numpy(), "F32"))
    stio.save(os.path.join(OUT, "step_ref.safetensors"), ent,
              {"producer": "make_weights_fixtures.py", "weights": "tests/fixtures/nn/tiny_detr.safetensors"})
    print(f"step_ref.safetensors: loss {res['loss'].item():.6f}, num_boxes {res['num_boxes']}, "
          f"indices {res['indices'].tolist()}")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    make_hf_file()
    make_names()
    make_images()
    make_step_ref()


if __name__ == "__main__":
    main()
