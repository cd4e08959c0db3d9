#!/usr/bin/env python3
"""Check the official -> HF transformers name map of make_weights_fixtures.hf_names (the same
map as src/nn/weights.c) against a real transformers DetrForObjectDetection. Optional: needs
`pip install transformers timm` (not needed by the tests or CI); nothing is downloaded.

For DETR-R50 (sine, then learned position embedding with DC5), 91 classes:
  1. the names and shapes HF writes (save_pretrained's model.safetensors; transformers 5 renames
     them on load and back on save) == hf_names() of detr_reference.py's state_dict (less the
     num_batches_tracked counters);
  2. from_pretrained on detr_reference's random weights renamed with hf_names() reports no
     missing, unexpected or mismatched key, and the HF model's logits and boxes on a padded
     batch of two images equal detr_reference's in eval mode (HF with auxiliary_loss=False
     computes the official inference).

Run: python3 tools/reference/check_hf_naming.py
"""
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detr_reference as R  # noqa: E402
import safetensors_io as stio  # noqa: E402
from make_weights_fixtures import to_hf  # noqa: E402
from transformers import DetrConfig, DetrForObjectDetection  # noqa: E402


def check(learned, dilation):
    torch.manual_seed(0)
    ref = R.build_detr(num_classes=91, position_embedding="learned" if learned else "sine", dilation=dilation).eval()
    with torch.no_grad():   # non-trivial frozen BN statistics
        for name, t in ref.state_dict().items():
            if "running_var" in name or name.endswith("bn1.weight") or ".bn" in name and name.endswith("weight"):
                t.uniform_(0.5, 1.5)
            elif "running_mean" in name or ".bn" in name and name.endswith("bias"):
                t.uniform_(-0.2, 0.2)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    # transformers 4 (and the hub's files) name the learned position embedding
    # model.backbone.position_embedding.*, transformers 5 writes and reads model.position_embedding.*
    # (cldetr reads both)
    v5 = lambda k: k.replace("model.backbone.position_embedding.", "model.position_embedding.")  # noqa: E731
    hf_sd = {v5(k): torch.tensor(v) for k, v in to_hf(sd) if not k.endswith("num_batches_tracked")}
    cfg = DetrConfig(use_timm_backbone=True, backbone="resnet50", use_pretrained_backbone=False, num_labels=91,
                     position_embedding_type="learned" if learned else "sine", dilation=dilation,
                     auxiliary_loss=False)
    hf = DetrForObjectDetection(cfg).eval()
    got = {k: tuple(v.shape) for k, v in hf_sd.items()}
    with tempfile.TemporaryDirectory() as d:   # the names HF writes (its file format)
        DetrForObjectDetection(cfg).save_pretrained(d)
        raw = open(os.path.join(d, "model.safetensors"), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        want = {k: tuple(v["shape"]) for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
    assert want == got, (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5],
                         [k for k in want if k in got and want[k] != got[k]][:5])
    with tempfile.TemporaryDirectory() as d:   # our renamed weights, loaded as HF loads a hub file
        cfg.save_pretrained(d)
        stio.save(os.path.join(d, "model.safetensors"), [(k, v.numpy(), "F32") for k, v in hf_sd.items()],
                  {"format": "pt"})
        hf, info = DetrForObjectDetection.from_pretrained(d, output_loading_info=True)
        hf.eval()
    bad = {k: v for k, v in info.items() if v and k != "mismatched_keys" or k == "mismatched_keys" and v}
    assert not bad, bad
    images, mask = R.padded_batch(1)
    with torch.no_grad():
        logits, boxes = ref(images, mask)
        out = hf(pixel_values=images, pixel_mask=(~mask).long())
    dl = (out.logits - logits[-1]).abs().max().item()
    db = (out.pred_boxes - boxes[-1]).abs().max().item()
    assert dl < 1e-3 and db < 1e-4, (dl, db)
    print(f"learned={learned} dilation={dilation}: {len(got)} HF names and shapes equal, from_pretrained: no missing, unexpected or mismatched key, "
          f"max |logits diff| {dl:.2e}, |boxes diff| {db:.2e}")


if __name__ == "__main__":
    check(False, False)
    check(True, True)
