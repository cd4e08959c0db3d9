#!/usr/bin/env python3
"""Make the DETR model fixtures of src/nn.   Regenerate with:

    python3 tools/reference/make_model_fixtures.py

(torch and numpy only, no download; about 15 s on 2 cores). Writes, under tests/fixtures/nn/:

  tiny_detr.safetensors             config "tiny": resnet18 base width 8 (8/16/32/64 planes,
                                    512/64 = 64 backbone channels), FrozenBatchNorm2d with random
                                    non-identity statistics, sine position encoding, d=32, 4 heads,
                                    2 encoder + 2 decoder layers, post-norm, FFN 64, 5 queries,
                                    num_classes 5 (6 logits), dropout 0.
  tiny_detr_prenorm_bn.safetensors  config "prenorm_bn": resnet18 base width 2 (2/4/8/16 planes,
                                    16 channels out), trainable nn.BatchNorm2d in train mode (batch
                                    statistics over the padded batch, running stats updated),
                                    pre_norm=True (with transformer.encoder.norm), sine, and the
                                    SMALL transformer: d=16, 2 heads, FFN 24, 2+2 layers, 4 queries,
                                    num_classes 3 (4 logits), dropout 0.
  tiny_detr_r50_dc5.safetensors     config "r50_dc5": resnet50 (Bottleneck, [3,4,6,3]) base width 2
                                    (2/4/8/16 planes x 4 = 64 channels out), DC5 (layer4 stride ->
                                    dilation 2: output stride 16), FrozenBatchNorm2d random, learned
                                    position encoding (backbone.1.row_embed/col_embed), post-norm,
                                    SMALL transformer as prenorm_bn.
  st_python.safetensors             a small file for the safetensors reader test (values below).

The model is tools/reference/detr_reference.py (official architecture and names). Each config
is built with torch.manual_seed(seed), converted to float64, its frozen-BN statistics calibrated
(below), and then every parameter, buffer and input is ROUNDED TO FLOAT32 VALUES: the file stores
them as F32 exactly, and the references are computed in float64 from those exact values and
stored rounded to F32 (ref.loss as F64). The script prints how far a float32 PyTorch run of
the same model lands from the float64 reference (a guide for test tolerances).
The model runs in train mode with dropout 0 (so train == eval except trainable BN).

File format: safetensors (tools/reference/safetensors_io.py; reader src/nn/safetensors.c).
__metadata__ holds the config as key/values: config, backbone, base_width, dilation (0/1),
batchnorm (frozen|trainable), train_backbone, position_embedding (sine|learned), hidden_dim,
nheads, enc_layers, dec_layers, dim_feedforward, dropout, pre_norm (0/1), num_queries,
num_classes, num_logits, batch, image_sizes ("HxW,HxW"), padded_size, feature_size ("HfxWf"),
tokens, backbone_channels, seed, n_params, n_trainable, format_version.

Tensors (B = 2 images, H x W padded input, C backbone channels, Hf x Wf feature map,
S = Hf*Wf tokens, token s = i*Wf + j row-major, d hidden, Q queries, L = dec_layers,
K1 = num_classes + 1; all seq-first tensors are [S,B,d] or [Q,B,d] as nn.MultiheadAttention):

  input.images       F32 [B,3,H,W]   images zero-padded at the bottom/right (values ~N(0,1),
                                     as normalized pixels)
  input.mask         F32 [B,H,W]     1 = padding, 0 = valid
  input.sizes        I64 [B,2]       unpadded (h, w) of each image
  <name>             F32             every parameter and buffer under its official state_dict
                                     name, in state_dict order (backbone.0.body.conv1.weight ...,
                                     num_batches_tracked as I64 for trainable BN)
  ref.backbone.stem  F32 [B,w,H/4,W/4]  after conv1, bn1, relu, maxpool (sizes ceil-halved 2x)
  ref.backbone.layer1..layer4  F32 [B,C_l,h_l,w_l]; layer4 = backbone output [B,C,Hf,Wf]
  ref.mask_f         F32 [B,Hf,Wf]   downsampled mask, 1 = padding (nearest: mask[floor(i*H/Hf),
                                     floor(j*W/Wf)])
  ref.pos            F32 [B,d,Hf,Wf] position encoding (official NCHW layout; flatten to [S,B,d])
  ref.proj           F32 [B,d,Hf,Wf] input_proj output (the transformer's src before flattening)
  ref.enc.{i}        F32 [S,B,d]     output of encoder layer i (i = 0..enc_layers-1)
  ref.memory         F32 [S,B,d]     encoder output (post-norm: = ref.enc.{last}; pre-norm: after
                                     transformer.encoder.norm)
  ref.dec.{i}        F32 [Q,B,d]     output of decoder layer i BEFORE the shared decoder norm
                                     (what feeds layer i+1)
  ref.dec_norm.{i}   F32 [Q,B,d]     transformer.decoder.norm(ref.dec.{i})
  ref.hs             F32 [L,B,Q,d]   stacked dec_norm, transposed (the official hs)
  ref.logits         F32 [L,B,Q,K1]  class_embed(hs); layer L-1 = pred_logits, others = aux
  ref.boxes          F32 [L,B,Q,4]   sigmoid(bbox_embed(hs)), cxcywh in [0,1]
  ref.w_logits       F32 [L,B,Q,K1]  fixed random weights (N(0,1)) of the test loss
  ref.w_boxes        F32 [L,B,Q,4]
  ref.loss           F64 []          L = sum(ref.logits * ref.w_logits) + sum(ref.boxes * ref.w_boxes)
  ref.dL.features    F32 [B,C,Hf,Wf] dL/d backbone output (layer4)
  ref.dL.proj        F32 [B,d,Hf,Wf] dL/d input_proj output
  ref.dL.memory      F32 [S,B,d]     dL/d encoder output
  ref.dL.hs          F32 [L,B,Q,d]   dL/d hs
  ref.bn_after.<bn>.running_mean / .running_var   F32  (trainable BN only) running statistics
                                     after this one train-mode forward (momentum 0.1, unbiased var)
  grad.<name>        F32             dL/d parameter for every TRAINABLE parameter (requires_grad;
                                     conv1, bn1 and layer1 of the backbone are frozen and have none),
                                     computed in float64 and rounded to float32

Frozen-BN statistics: each FrozenBatchNorm2d is calibrated on this batch in forward order:
running_mean = batch mean + 0.2*std*N(0,1), running_var = batch var * U(0.6,1.6), weight U(0.5,1.5),
bias U(-0.3,0.3), so the BN math is exercised (nothing is identity) and activations stay O(1).
Trainable BN: weight U(0.5,1.5), bias U(-0.3,0.3), running stats random (unused by the forward).

st_python.safetensors: a.f32 F32 [2,3] = (i - 2.5) * 0.375 (i = 0..5); b.f64 F64 [4] =
[1/3, -2.5e-10, pi, 1e100]; c.f16 F16 [5] = [1, -2, 65504, 2^-24, 0.333251953125];
d.bf16 BF16 [3] = [1, -3.140625, 0.0078125]; e.i64 I64 [2,2] = [-5, 0, 2^40, 7];
f.u8 U8 [3] = [0, 1, 255]; g.scalar F32 [] = 42.5; __metadata__ {producer: safetensors_io.py,
note: "unicode ok: é"}.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detr_reference as R  # noqa: E402
import safetensors_io as stio  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "nn")

COMMON = dict(hidden_dim=32, nheads=4, enc_layers=2, dec_layers=2, dim_feedforward=64, dropout=0.0,
              num_queries=5, num_classes=5, train_backbone=True)
SMALL = dict(COMMON, hidden_dim=16, nheads=2, dim_feedforward=24, num_queries=4, num_classes=3)
CONFIGS = {
    "tiny": dict(model=dict(COMMON, backbone="resnet18", base_width=8, dilation=False, frozen_bn=True,
                            position_embedding="sine", pre_norm=False),
                 sizes=[(68, 46), (44, 72)], seed=1),
    "prenorm_bn": dict(model=dict(SMALL, backbone="resnet18", base_width=2, dilation=False, frozen_bn=False,
                                  position_embedding="sine", pre_norm=True),
                       sizes=[(64, 48), (30, 96)], seed=2),
    "r50_dc5": dict(model=dict(SMALL, backbone="resnet50", base_width=2, dilation=True, frozen_bn=True,
                               position_embedding="learned", pre_norm=False),
                    sizes=[(48, 40), (30, 64)], seed=3),
}
FILES = {"tiny": "tiny_detr.safetensors", "prenorm_bn": "tiny_detr_prenorm_bn.safetensors",
         "r50_dc5": "tiny_detr_r50_dc5.safetensors"}


def f32round(t):
    return t.float().double()


def calibrate_frozen_bn(model, images, mask, gen):
    """Sets every FrozenBatchNorm2d from the statistics of its input on this batch (forward order)."""
    def pre_hook(mod, args):
        x = args[0]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        n = mean.numel()
        r = lambda: torch.rand(n, generator=gen, dtype=torch.float64)  # noqa: E731
        mod.running_mean.copy_(mean + 0.2 * var.sqrt() * torch.randn(n, generator=gen, dtype=torch.float64))
        mod.running_var.copy_(var * (0.6 + r()))
        mod.weight.copy_(0.5 + r())
        mod.bias.copy_(0.6 * r() - 0.3)
    hooks = [m.register_forward_pre_hook(pre_hook) for m in model.modules() if isinstance(m, R.FrozenBatchNorm2d)]
    with torch.no_grad():
        model(images, mask)
    for h in hooks:
        h.remove()


def randomize_trainable_bn(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen, dtype=torch.float64))
                m.bias.copy_(0.6 * torch.rand(n, generator=gen, dtype=torch.float64) - 0.3)
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen, dtype=torch.float64))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen, dtype=torch.float64))


def make_batch(sizes, gen):
    H, W = max(h for h, _ in sizes), max(w for _, w in sizes)
    images = torch.zeros(len(sizes), 3, H, W, dtype=torch.float64)
    mask = torch.ones(len(sizes), H, W, dtype=torch.bool)
    for b, (h, w) in enumerate(sizes):
        images[b, :, :h, :w] = f32round(torch.randn(3, h, w, generator=gen, dtype=torch.float64))
        mask[b, :h, :w] = False
    return images, mask


def module_counts(model):
    """Parameter count per module (all / trainable)."""
    groups = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "backbone":
            key = ".".join(parts[:4]) if parts[3].startswith("layer") else "backbone.0.body.stem"
            if parts[1] == "1":
                key = "backbone.1 (learned pos)"
        elif parts[0] == "transformer":
            key = ".".join(parts[:4]) if parts[2] == "layers" else ".".join(parts[:3])
        else:
            key = parts[0]
        a, t = groups.get(key, (0, 0))
        groups[key] = (a + p.numel(), t + (p.numel() if p.requires_grad else 0))
    return groups


def build_fixture(name, cfg):
    mcfg = cfg["model"]
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(1000 + cfg["seed"])
    model = R.build_detr(**mcfg).double()
    images, mask = make_batch(cfg["sizes"], gen)
    if mcfg["frozen_bn"]:
        calibrate_frozen_bn(model, images, mask, gen)
    else:
        randomize_trainable_bn(model, gen)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(f32round(t))
    model.train()
    state_before = {k: v.clone() for k, v in model.state_dict().items()}

    # forward with hooks on every stage
    acts = {}
    def keep(key, retain=False):
        def hook(mod, args, out):
            acts[key] = out
            if retain:
                out.retain_grad()
        return hook
    body = model.backbone[0].body
    hooks = [body.maxpool.register_forward_hook(keep("backbone.stem"))]
    hooks += [getattr(body, f"layer{i}").register_forward_hook(keep(f"backbone.layer{i}")) for i in range(1, 5)]
    hooks += [l.register_forward_hook(keep(f"enc.{i}")) for i, l in enumerate(model.transformer.encoder.layers)]
    hooks += [l.register_forward_hook(keep(f"dec.{i}")) for i, l in enumerate(model.transformer.decoder.layers)]
    hooks.append(model.transformer.encoder.register_forward_hook(keep("memory", retain=True)))
    trace = {}
    logits, boxes = model(images, mask, trace)
    for h in hooks:
        h.remove()
    for k in ("features", "proj", "hs"):
        trace[k].retain_grad()
    w_logits = f32round(torch.randn(logits.shape, generator=gen, dtype=torch.float64))
    w_boxes = f32round(torch.randn(boxes.shape, generator=gen, dtype=torch.float64))
    loss = (logits * w_logits).sum() + (boxes * w_boxes).sum()
    loss.backward()

    mask_f = trace["mask_f"]
    L, B, Q, K1 = logits.shape
    Hf, Wf = mask_f.shape[-2:]
    for b in range(B):   # the fixture must exercise key padding in every image
        assert mask_f[b].any() and not mask_f[b].all(), (name, b, mask_f[b])

    tensors = [("input.images", images.numpy(), "F32"), ("input.mask", mask.double().numpy(), "F32"),
               ("input.sizes", np.array(cfg["sizes"], dtype=np.int64), "I64")]
    for k, v in state_before.items():
        tensors.append((k, v.numpy(), "F32" if v.is_floating_point() else "I64"))
    ref = lambda k, t: tensors.append(("ref." + k, t.detach().double().numpy(), "F32"))  # noqa: E731
    for i in ["stem", "layer1", "layer2", "layer3", "layer4"]:
        ref(f"backbone.{i}", acts[f"backbone.{i}"])
    ref("mask_f", mask_f.double())
    ref("pos", trace["pos"])
    ref("proj", trace["proj"])
    for i in range(mcfg["enc_layers"]):
        ref(f"enc.{i}", acts[f"enc.{i}"])
    ref("memory", acts["memory"])
    norm = model.transformer.decoder.norm
    for i in range(mcfg["dec_layers"]):
        ref(f"dec.{i}", acts[f"dec.{i}"])
        ref(f"dec_norm.{i}", norm(acts[f"dec.{i}"]))
        assert torch.equal(norm(acts[f"dec.{i}"]).transpose(0, 1), trace["hs"][i])
    ref("hs", trace["hs"])
    ref("logits", logits)
    ref("boxes", boxes)
    tensors.append(("ref.w_logits", w_logits.numpy(), "F32"))
    tensors.append(("ref.w_boxes", w_boxes.numpy(), "F32"))
    tensors.append(("ref.loss", loss.detach().numpy(), "F64"))
    ref("dL.features", trace["features"].grad)
    ref("dL.proj", trace["proj"].grad)
    ref("dL.memory", acts["memory"].grad)
    ref("dL.hs", trace["hs"].grad)
    if not mcfg["frozen_bn"]:
        for mname, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                ref(f"bn_after.{mname}.running_mean", m.running_mean)
                ref(f"bn_after.{mname}.running_var", m.running_var)
    n_grad = 0
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, pname
            tensors.append(("grad." + pname, p.grad.numpy(), "F32"))
            n_grad += 1
        else:
            assert p.grad is None, pname

    total, trainable = R.count_params(model)
    H, W = images.shape[-2:]
    meta = dict(config=name, backbone=mcfg["backbone"], base_width=mcfg["base_width"],
                dilation=int(mcfg["dilation"]), batchnorm="frozen" if mcfg["frozen_bn"] else "trainable",
                train_backbone=int(mcfg["train_backbone"]), position_embedding=mcfg["position_embedding"],
                hidden_dim=mcfg["hidden_dim"], nheads=mcfg["nheads"], enc_layers=mcfg["enc_layers"],
                dec_layers=mcfg["dec_layers"], dim_feedforward=mcfg["dim_feedforward"], dropout=mcfg["dropout"],
                pre_norm=int(mcfg["pre_norm"]), num_queries=mcfg["num_queries"], num_classes=mcfg["num_classes"],
                num_logits=K1, batch=B, image_sizes=",".join(f"{h}x{w}" for h, w in cfg["sizes"]),
                padded_size=f"{H}x{W}", feature_size=f"{Hf}x{Wf}", tokens=Hf * Wf,
                backbone_channels=model.backbone[0].num_channels, seed=cfg["seed"], n_params=total,
                n_trainable=trainable, format_version=1,
                layout="see the docstring of tools/reference/make_model_fixtures.py")
    path = os.path.join(OUT, FILES[name])
    stio.save(path, tensors, meta)

    # re-read and check that the file reproduces the reference (the stored F32 weights are exact)
    back, _ = stio.load(path)
    assert np.array_equal(back["ref.logits"], logits.detach().float().numpy())
    m2 = R.build_detr(**mcfg).double()
    m2.load_state_dict({k: torch.from_numpy(np.array(back[k])) for k in state_before})
    m2.train()
    l2, b2 = m2(torch.from_numpy(np.array(back["input.images"])).double(),
                torch.from_numpy(np.array(back["input.mask"])) > 0.5)
    assert torch.allclose(l2, logits, rtol=0, atol=1e-12) and torch.allclose(b2, boxes, rtol=0, atol=1e-12)

    # float32 run of the same model: how far a correct float32 implementation lands
    m32 = R.build_detr(**mcfg)
    m32.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_before.items()})
    m32.train()
    l32, b32 = m32(images.float(), mask)
    err_l = ((l32.double() - logits).abs().max() / logits.abs().max()).item()
    err_b = ((b32.double() - boxes).abs().max()).item()

    print(f"\n== {FILES[name]}: {os.path.getsize(path):,} bytes, {len(tensors)} tensors "
          f"({n_grad} grads), params {total:,} all / {trainable:,} trainable")
    print(f"   images {cfg['sizes']} padded {H}x{W}, features {Hf}x{Wf} (S={Hf * Wf}), C={model.backbone[0].num_channels}")
    print(f"   mask_f per image: {[mask_f[b].int().tolist() for b in range(B)]}")
    print(f"   loss {loss.item():.6f}; float32 model vs float64: logits max err {err_l:.2e} (rel to max), "
          f"boxes max abs err {err_b:.2e}")
    for k, (a, t) in module_counts(model).items():
        print(f"   {k:40s} {a:8,d} params  {t:8,d} trainable")


def write_st_python():
    stio.save(os.path.join(OUT, "st_python.safetensors"), [
        ("a.f32", (np.arange(6) - 2.5).reshape(2, 3) * 0.375, "F32"),
        ("b.f64", np.array([1 / 3, -2.5e-10, math.pi, 1e100]), "F64"),
        ("c.f16", np.array([1.0, -2.0, 65504.0, 2.0 ** -24, 0.333251953125]), "F16"),
        ("d.bf16", np.array([1.0, -3.140625, 0.0078125]), "BF16"),
        ("e.i64", np.array([[-5, 0], [2 ** 40, 7]]), "I64"),
        ("f.u8", np.array([0, 1, 255]), "U8"),
        ("g.scalar", np.array(42.5), "F32"),
    ], {"producer": "safetensors_io.py", "note": "unicode ok: é"})


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    R.check_official_counts()
    write_st_python()
    for name, cfg in CONFIGS.items():
        build_fixture(name, cfg)


if __name__ == "__main__":
    main()
