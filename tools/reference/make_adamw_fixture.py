#!/usr/bin/env python3
"""AdamW + gradient clipping fixture for tests/train/test_optim.c, made with
torch.optim.AdamW (foreach=False, amsgrad off) and torch.nn.utils.clip_grad_norm_.

Six small tensors (289 floats) in two parameter groups, backbone and rest (the
official DETR groups), one weight decay for both, five steps with given
gradients and per-step learning rates; the gradients of query_embed.weight are
~1e-8 at every step, so eps matters in its denominator:
  step 1  clipping inactive (max_norm above the norm)
  step 2  clipping active
  step 3  clipping active, a tensor with all-zero gradient
  step 4  no clipping (max_norm 0: clip_grad_norm_ not called; the norm is
          still recorded, as cldetr logs it)
  step 5  clipping active, other learning rates

File tests/fixtures/train/adamw.bin, little-endian:
  char[8]  "CLDADAMW"
  u32      version (1), n_tensors, n_steps
  f64      beta1, beta2, eps, weight_decay
  per tensor, in registration order:
           u32 group (0 backbone, 1 rest), u32 ndim, u32 shape[4] (unused 1),
           u32 name_len, name bytes (no terminator)
  f32      params0[N]        initial values, the tensors concatenated in the order above
  per step:
           f64 lr_backbone, lr_rest, max_norm (0 = no clipping), norm (pre-clip, as torch returns it)
           f32 grad[N]       the gradient given (before clipping)
           f32 param[N], m[N], v[N]   after the step (exp_avg, exp_avg_sq)

Run: python3 tools/reference/make_adamw_fixture.py   (writes tests/fixtures/train/adamw.bin)
"""
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'train')

# (name, group, shape): registration order interleaves the groups on purpose, so
# the test exercises the registry's flat layout (backbone first, then rest).
TENSORS = [
    ('transformer.linear1.weight', 1, (12, 10)),
    ('backbone.0.body.layer2.0.conv1.weight', 0, (4, 2, 3, 3)),
    ('transformer.linear1.bias', 1, (12,)),
    ('class_embed.weight', 1, (5, 12)),
    ('backbone.0.body.layer2.0.conv1.bias', 0, (4,)),
    ('query_embed.weight', 1, (3, 7)),
]
BETAS = (0.9, 0.999)
EPS = 1e-8
WD = 0.1
# (lr_backbone, lr_rest, max_norm, grad scale)
STEPS = [
    (0.01, 0.05, 100.0, 1.0),
    (0.01, 0.05, 0.5, 1.0),
    (0.005, 0.02, 1.0, 3.0),
    (0.001, 0.03, 0.0, 0.5),
    (0.002, 0.01, 0.25, 2.0),
]


def main():
    torch.manual_seed(1234)
    params = [torch.nn.Parameter(torch.randn(shape) * 0.5) for _, _, shape in TENSORS]
    groups = [{'params': [p for p, t in zip(params, TENSORS) if t[1] == g], 'lr': 0.0} for g in (0, 1)]
    opt = torch.optim.AdamW(groups, betas=BETAS, eps=EPS, weight_decay=WD, foreach=False)

    def flat(ts):
        return torch.cat([t.detach().reshape(-1) for t in ts]).numpy().astype('<f4').tobytes()

    out = bytearray()
    out += b'CLDADAMW' + struct.pack('<3I', 1, len(TENSORS), len(STEPS)) + struct.pack('<4d', *BETAS, EPS, WD)
    for name, group, shape in TENSORS:
        dims = list(shape) + [1] * (4 - len(shape))
        out += struct.pack('<6I', group, len(shape), *dims) + struct.pack('<I', len(name)) + name.encode()
    out += flat(params)

    for k, (lr_bb, lr_rest, max_norm, scale) in enumerate(STEPS):
        for p in params:
            p.grad = torch.randn(p.shape) * scale
        params[5].grad *= 1e-8                  # query_embed: tiny gradients, where eps matters
        if k == 2:
            params[3].grad.zero_()              # class_embed: no gradient this step
        grads = [p.grad.clone() for p in params]
        groups = opt.param_groups
        groups[0]['lr'], groups[1]['lr'] = lr_bb, lr_rest
        if max_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        opt.step()
        print(f'step {k + 1}: norm {float(norm):.6g} max_norm {max_norm} '
              f'{"clipped" if 0 < max_norm < float(norm) else "not clipped"}')
        out += struct.pack('<4d', lr_bb, lr_rest, max_norm, float(norm))
        out += flat(grads) + flat(params)
        out += flat([opt.state[p]['exp_avg'] for p in params])
        out += flat([opt.state[p]['exp_avg_sq'] for p in params])

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, 'adamw.bin')
    with open(path, 'wb') as f:
        f.write(out)
    print(f'wrote {path} ({len(out)} bytes, torch {torch.__version__})')


if __name__ == '__main__':
    main()
