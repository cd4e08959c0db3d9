#!/usr/bin/env python3
"""Check `cldetr export --format hf` against a real transformers DetrForObjectDetection.
Optional: needs torch, numpy, `pip install transformers timm` (not needed by the tests or CI)
and a built cldetr; nothing is downloaded (models are built from configs, random weights).

For two small DETRs (ResNet-18 with the sine position encoding; ResNet-50 DC5 with the learned
one; d=64, 4 heads, 2+2 layers, FFN 128, 10 queries), with random weights and non-trivial
frozen BatchNorm statistics:
  1. detr_reference.py's model is saved under the official names (safetensors_io.py);
  2. `cldetr import` reads it (every tensor checked against the config's model), then
     `cldetr export --format hf -o DIR/model.safetensors` writes HF names and DIR/config.json;
  3. DetrForObjectDetection.from_pretrained(DIR, output_loading_info=True) reports no missing,
     unexpected or mismatched key and no error; the config it read has the model's sizes and the
     class names of the dataset (id2label, "N/A" for unused category ids);
  4. the names and shapes of the file equal what HF's save_pretrained writes for that model;
  5. in eval mode, on a padded batch of two images, HF's logits and boxes equal detr_reference's
     on the same weights;
  6. `cldetr import DIR/model.safetensors` (HF names) gives back the official weights bit for bit.

Run from the repository root after building:
    python3 tools/reference/check_hf_export.py [--cldetr build/src/cli/cldetr]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detr_reference as R  # noqa: E402
import safetensors_io as stio  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import DetrForObjectDetection  # noqa: E402

SMALL = dict(hidden_dim=64, nheads=4, enc_layers=2, dec_layers=2, dim_feedforward=128, num_queries=10)
CATEGORIES = [(1, "circle"), (2, "square"), (4, "cross")]   # ids 0 and 3 unused: "N/A"
NUM_CLASSES = 5                                              # max id + 1 (raw ids, as official DETR)


def header(path):
    raw = open(path, "rb").read(8)
    n = struct.unpack("<Q", raw)[0]
    with open(path, "rb") as f:
        f.seek(8)
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in h.items()}


def run(cldetr, *args):
    p = subprocess.run([cldetr, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"cldetr {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def check(cldetr, backbone, learned, dilation):
    torch.manual_seed(0)
    pos = "learned" if learned else "sine"
    ref = R.build_detr(backbone=backbone, position_embedding=pos, dilation=dilation, dropout=0.0,
                       num_classes=NUM_CLASSES, **SMALL).eval()
    with torch.no_grad():   # non-trivial frozen BN statistics and affine terms
        for name, t in ref.state_dict().items():
            if "running_var" in name or ".bn" in name and name.endswith("weight") or name.endswith("bn1.weight"):
                t.uniform_(0.5, 1.5)
            elif "running_mean" in name or ".bn" in name and name.endswith("bias"):
                t.uniform_(-0.2, 0.2)
            elif "downsample.1" in name:
                t.uniform_(0.5, 1.5) if name.endswith(("weight", "running_var")) else t.uniform_(-0.2, 0.2)
    sd = {k: v.detach().numpy().copy() for k, v in ref.state_dict().items()}
    with tempfile.TemporaryDirectory() as d:
        official = os.path.join(d, "official.safetensors")
        stio.save(official, [(k, v, "F32") for k, v in sd.items()], {"format": "pt"})
        with open(os.path.join(d, "cats.json"), "w") as f:
            json.dump({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
                       "categories": [{"id": i, "name": n} for i, n in CATEGORIES]}, f)
        ini = os.path.join(d, "model.ini")
        with open(ini, "w") as f:
            f.write(f"[model]\nbackbone = {backbone}\nwidth = 64\ndilation = {str(dilation).lower()}\n"
                    f"position_embedding = {pos}\nhidden_dim = {SMALL['hidden_dim']}\nnheads = {SMALL['nheads']}\n"
                    f"enc_layers = {SMALL['enc_layers']}\ndec_layers = {SMALL['dec_layers']}\n"
                    f"dim_feedforward = {SMALL['dim_feedforward']}\ndropout = 0\n"
                    f"num_queries = {SMALL['num_queries']}\nnum_classes = {NUM_CLASSES}\npre_norm = false\n"
                    f"[data]\nroot = {d}\nval_ann = cats.json\ntrain_ann = cats.json\n")
        imported = os.path.join(d, "cldetr.safetensors")
        run(cldetr, "import", official, "--config", ini, "-o", imported)
        hf_dir = os.path.join(d, "hf")
        os.mkdir(hf_dir)
        out = run(cldetr, "export", imported, "--format", "hf", "-o", os.path.join(hf_dir, "model.safetensors"))
        ours = header(os.path.join(hf_dir, "model.safetensors"))

        hf, info = DetrForObjectDetection.from_pretrained(hf_dir, output_loading_info=True)
        hf.eval()
        bad = {k: v for k, v in info.items() if v}
        assert not bad, bad
        c = hf.config
        want_labels = {i: "N/A" for i in range(NUM_CLASSES)}
        want_labels.update(dict(CATEGORIES))
        assert c.id2label == want_labels, c.id2label
        assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.encoder_ffn_dim,
                c.num_queries, c.position_embedding_type, bool(c.dilation)) == \
            (SMALL["hidden_dim"], SMALL["enc_layers"], SMALL["dec_layers"], SMALL["nheads"],
             SMALL["dim_feedforward"], SMALL["num_queries"], pos, dilation), c
        assert hf.class_labels_classifier.out_features == NUM_CLASSES + 1

        # the names and shapes HF itself writes for this model
        hf_saved = os.path.join(d, "hf_saved")
        hf.save_pretrained(hf_saved)
        theirs = header(os.path.join(hf_saved, "model.safetensors"))
        assert {k: s for k, (_, s) in ours.items()} == {k: s for k, (_, s) in theirs.items()}, (
            sorted(set(ours) - set(theirs))[:5], sorted(set(theirs) - set(ours))[:5])

        g = torch.Generator().manual_seed(1)
        images = torch.zeros(2, 3, 96, 128)
        mask = torch.ones(2, 96, 128, dtype=torch.bool)
        for b, (h, w) in enumerate([(96, 100), (70, 128)]):
            images[b, :, :h, :w] = torch.randn(3, h, w, generator=g)
            mask[b, :h, :w] = False
        with torch.no_grad():
            logits, boxes = ref(images, mask)
            o = hf(pixel_values=images, pixel_mask=(~mask).long())
        dl = (o.logits - logits[-1]).abs().max().item()
        db = (o.pred_boxes - boxes[-1]).abs().max().item()
        assert dl < 1e-3 and db < 1e-4, (dl, db)

        # and back: HF names -> official, bit for bit
        back = os.path.join(d, "back.safetensors")
        run(cldetr, "import", os.path.join(hf_dir, "model.safetensors"), "--config", ini, "-o", back)
        got, _ = stio.load(back)
        assert set(got) == set(sd), (sorted(set(got) ^ set(sd))[:5])
        nbad = sum(not np.array_equal(got[k].astype(np.float32), sd[k]) for k in sd)
        assert nbad == 0, nbad
        n_qkv = sum(k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")) for k in ours)
    print(f"{backbone} {pos}{' DC5' if dilation else ''}: cldetr import + export --format hf: {len(ours)} tensors "
          f"({n_qkv} q/k/v weights split from {n_qkv // 3} in_proj), names and shapes = HF's save_pretrained; "
          f"from_pretrained(folder): missing {len(info['missing_keys'])}, unexpected {len(info['unexpected_keys'])}, "
          f"mismatched {len(info['mismatched_keys'])}, errors {len(info['error_msgs'])}; id2label {c.id2label}; "
          f"eval on a padded batch of 2: max |logits diff| {dl:.2e}, max |boxes diff| {db:.2e}; "
          f"cldetr import of the HF file: {len(sd)} tensors bit-identical to the official file")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cldetr", default="build/src/cli/cldetr", help="the cldetr binary")
    a = ap.parse_args()
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    check(a.cldetr, "resnet18", False, False)
    check(a.cldetr, "resnet50", True, True)
