#!/usr/bin/env python3
"""Convert a DETR checkpoint to safetensors under the official DETR names (what cldetr reads:
[model] init = FILE, cldetr step --weights, cldetr import).

    python3 tools/convert_detr_checkpoint.py detr-r50-e632da11.pth -o detr-r50.safetensors --check
    python3 tools/convert_detr_checkpoint.py path/to/hf-detr-folder -o detr.safetensors --check

Inputs:
  * a PyTorch checkpoint of facebookresearch/detr (a dict with key 'model', as main.py and the
    model zoo write it; a bare state_dict works too). A 'module.' prefix (DistributedDataParallel)
    is removed; the panoptic head (detr.* names with bbox_attention/mask_head) is not a detector:
    its 'detr.' part is kept, the mask head dropped with a note.
  * an HF transformers folder of DetrForObjectDetection (model.safetensors or pytorch_model.bin):
    names mapped back (model.backbone.conv_encoder.model.X -> backbone.0.body.X, q/k/v_proj joined
    into in_proj_weight/bias, fc1 -> linear1, ..., class_labels_classifier -> class_embed; the
    transformers 5 in-memory names too), see include/cldetr/weights.h for the table.
  `num_batches_tracked` counters are dropped (FrozenBatchNorm2d has none).

--check: builds tools/reference/detr_reference.py's model with the config read off the tensors
(backbone depth and width, learned/sine position, layers, sizes; --nheads and --dilation cannot be
read from weights), loads the result with load_state_dict(strict=True) and compares its forward
(eval mode, a padded batch of two random images) with the source's: a model loaded from the
original .pth tensors, or for an HF folder transformers' own model when transformers is installed.

Needs torch (and numpy); safetensors is written by tools/reference/safetensors_io.py.
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import safetensors_io as stio  # noqa: E402

# HF (legacy file names) -> official; applied as prefix / infix rewrites
HF_PREFIX = [("model.backbone.conv_encoder.model.", "backbone.0.body."),
             ("model.backbone.model.", "backbone.0.body."),                       # transformers 5
             ("model.backbone.position_embedding.row_embeddings.", "backbone.1.row_embed."),
             ("model.backbone.position_embedding.column_embeddings.", "backbone.1.col_embed."),
             ("model.position_embedding.row_embeddings.", "backbone.1.row_embed."),   # transformers 5
             ("model.position_embedding.column_embeddings.", "backbone.1.col_embed."),
             ("model.input_projection.", "input_proj."),
             ("model.query_position_embeddings.", "query_embed."),
             ("model.decoder.layernorm.", "transformer.decoder.norm."),
             ("class_labels_classifier.", "class_embed."),
             ("bbox_predictor.", "bbox_embed.")]
LAYER_SUB = {"encoder": [("self_attn_layer_norm.", "norm1."), ("final_layer_norm.", "norm2.")],
             "decoder": [("self_attn_layer_norm.", "norm1."), ("encoder_attn_layer_norm.", "norm2."),
                         ("final_layer_norm.", "norm3."), ("encoder_attn.", "multihead_attn.")]}


def hf_to_official(sd):
    """HF state dict (numpy) -> official state dict (numpy), q/k/v joined."""
    out, qkv = {}, {}
    for name, a in sd.items():
        if name.endswith("num_batches_tracked"):
            continue
        for old, new in HF_PREFIX:
            if name.startswith(old):
                out[new + name[len(old):]] = a
                break
        else:
            m = re.match(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.*)$", name)
            if not m:
                raise SystemExit(f"error: HF tensor '{name}' has no official DETR counterpart")
            kind, i, rest = m.groups()
            rest = rest.replace("mlp.fc1.", "fc1.").replace("mlp.fc2.", "fc2.").replace(".o_proj.", ".out_proj.")
            rest = rest.replace("fc1.", "linear1.").replace("fc2.", "linear2.")
            for old, new in LAYER_SUB[kind]:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            p = re.match(r"(self_attn|multihead_attn)\.([qkv])_proj\.(weight|bias)$", rest)
            if p:
                qkv.setdefault((kind, i, p.group(1), p.group(3)), {})[p.group(2)] = a
                continue
            out[f"transformer.{kind}.layers.{i}.{rest}"] = a
    for (kind, i, attn, wb), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise SystemExit(f"error: {kind} layer {i} {attn}: only {sorted(parts)} of q/k/v_proj.{wb} in the file")
        out[f"transformer.{kind}.layers.{i}.{attn}.in_proj_{wb}"] = np.concatenate([parts["q"], parts["k"], parts["v"]])
    return out


def read_source(src):
    """-> (official state dict of numpy arrays, kind, extra) ."""
    if os.path.isdir(src):
        st = os.path.join(src, "model.safetensors")
        if os.path.exists(st):
            sd, _ = stio.load(st)
        elif os.path.exists(os.path.join(src, "pytorch_model.bin")):
            sd = {k: v.float().numpy() if v.is_floating_point() else v.numpy()
                  for k, v in torch.load(os.path.join(src, "pytorch_model.bin"), map_location="cpu").items()}
        else:
            raise SystemExit(f"error: {src}: no model.safetensors or pytorch_model.bin (an HF model folder?)")
        cfg = {}
        if os.path.exists(os.path.join(src, "config.json")):
            with open(os.path.join(src, "config.json")) as f:
                cfg = json.load(f)
        return hf_to_official(sd), "hf", cfg
    ck = torch.load(src, map_location="cpu", weights_only=False)
    sd = ck["model"] if isinstance(ck, dict) and "model" in ck else ck
    if not isinstance(sd, dict):
        raise SystemExit(f"error: {src}: neither a dict with key 'model' nor a state_dict")
    out = {}
    for k, v in sd.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith(("bbox_attention.", "mask_head.")):
            print(f"note: dropping the panoptic head tensor {k}")
            continue
        k = k[len("detr."):] if k.startswith("detr.") else k
        if k.endswith("num_batches_tracked"):
            continue
        if not torch.is_tensor(v):
            raise SystemExit(f"error: {src}: entry '{k}' is not a tensor")
        out[k] = v.detach().float().numpy() if v.is_floating_point() else v.numpy()
    if not any(k.startswith("transformer.") for k in out):
        raise SystemExit(f"error: {src}: no transformer.* tensors: not a DETR checkpoint "
                         f"(first keys: {list(out)[:3]})")
    return out, "pth", {}


def infer_config(sd, nheads, dilation):
    """detr_reference.build_detr keyword arguments from the tensor names and shapes."""
    body = "backbone.0.body."
    bottleneck = body + "layer1.0.conv3.weight" in sd
    blocks = [len({k.split(".")[4] for k in sd if k.startswith(f"{body}layer{i}.")}) for i in range(1, 5)]
    names = {(False, (2, 2, 2, 2)): "resnet18", (False, (3, 4, 6, 3)): "resnet34",
             (True, (3, 4, 6, 3)): "resnet50", (True, (3, 4, 23, 3)): "resnet101"}
    backbone = names.get((bottleneck, tuple(blocks)))
    if backbone is None:
        raise SystemExit(f"error: --check: a ResNet with {blocks} blocks ({'bottleneck' if bottleneck else 'basic'}) "
                         "is none of resnet18/34/50/101")
    count = lambda kind: len({k.split(".")[3] for k in sd if k.startswith(f"transformer.{kind}.layers.")})  # noqa
    q = sd["query_embed.weight"]
    return dict(backbone=backbone, base_width=int(sd[body + "conv1.weight"].shape[0]), dilation=dilation,
                frozen_bn=True, position_embedding="learned" if "backbone.1.row_embed.weight" in sd else "sine",
                hidden_dim=int(q.shape[1]), nheads=nheads, enc_layers=count("encoder"), dec_layers=count("decoder"),
                dim_feedforward=int(sd["transformer.encoder.layers.0.linear1.weight"].shape[0])
                if count("encoder") else int(sd["transformer.decoder.layers.0.linear1.weight"].shape[0]),
                dropout=0.0, pre_norm="transformer.encoder.norm.weight" in sd, num_queries=int(q.shape[0]),
                num_classes=int(sd["class_embed.bias"].shape[0]) - 1)


def check(out_path, official, kind, src, hf_cfg, nheads, dilation):
    import detr_reference as R
    if kind == "hf":   # HF's config knows what the weights cannot tell
        nheads = hf_cfg.get("encoder_attention_heads", nheads)
        dilation = bool(hf_cfg.get("dilation", dilation))
    written, _ = stio.load(out_path)
    cfg = infer_config(written, nheads, dilation)
    model = R.build_detr(**cfg).eval()
    model.load_state_dict({k: torch.tensor(np.asarray(v, np.float32)) for k, v in written.items()}, strict=True)
    print(f"check: strict load into detr_reference {cfg}: ok")
    images, mask = R.padded_batch(0)
    with torch.no_grad():
        logits, boxes = model(images, mask)
    if kind == "pth":
        ref_model = R.build_detr(**cfg).eval()
        ref_model.load_state_dict({k: torch.tensor(np.asarray(v, np.float32)) for k, v in official.items()},
                                  strict=True)
        with torch.no_grad():
            rl, rb = ref_model(images, mask)
        rl, rb, what = rl[-1], rb[-1], "the model loaded from the original checkpoint"
    else:
        try:
            from transformers import DetrForObjectDetection
        except ImportError:
            print("check: transformers is not installed: forward comparison with the HF model skipped")
            return
        hf = DetrForObjectDetection.from_pretrained(src).eval()
        hf.config.auxiliary_loss = False
        with torch.no_grad():
            o = hf(pixel_values=images, pixel_mask=(~mask).long())
        rl, rb, what = o.logits, o.pred_boxes, "transformers' DetrForObjectDetection"
    dl = (logits[-1] - rl).abs().max().item()
    db = (boxes[-1] - rb).abs().max().item()
    scale = max(1.0, rl.abs().max().item())
    ok = dl <= 1e-4 * scale and db <= 1e-4
    print(f"check: forward vs {what}: max |logits diff| {dl:.3g}, max |boxes diff| {db:.3g}: {'ok' if ok else 'FAILED'}")
    if not ok:
        raise SystemExit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="a .pth checkpoint or an HF model folder")
    ap.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--check", action="store_true", help="load into detr_reference.py (strict) and compare a forward")
    ap.add_argument("--nheads", type=int, default=8, help="attention heads, for --check (default 8)")
    ap.add_argument("--dilation", action="store_true", help="DC5 model, for --check")
    a = ap.parse_args()
    official, kind, hf_cfg = read_source(a.source)
    meta = {"format": "pt", "producer": "tools/convert_detr_checkpoint.py", "source": os.path.basename(a.source),
            "source_kind": "HF transformers" if kind == "hf" else "PyTorch checkpoint"}
    if hf_cfg:
        meta["hf_config"] = json.dumps({k: hf_cfg.get(k) for k in ("backbone", "dilation", "d_model", "num_queries",
                                                                    "encoder_layers", "decoder_layers", "id2label")
                                        if k in hf_cfg})
    entries = [(k, v, a.dtype if v.dtype.kind == "f" else "I64") for k, v in official.items()]
    stio.save(a.output, entries, meta)
    print(f"wrote {a.output}: {len(entries)} tensors ({a.dtype}) under the official DETR names, from {kind} "
          f"{a.source}")
    if a.check:
        check(a.output, official, kind, a.source, hf_cfg, a.nheads, a.dilation)


if __name__ == "__main__":
    main()
