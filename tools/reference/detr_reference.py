#!/usr/bin/env python3
"""A self-contained PyTorch DETR with the official architecture (facebookresearch/detr,
models/{backbone,position_encoding,transformer,detr}.py), written from the facts in
docs/model.md §1-7 (no code copied), with no torchvision and no download.

What matches the official model exactly:
  - parameter and buffer names (state_dict keys and their order): backbone.0.body.conv1.weight,
    backbone.0.body.layer1.0.bn1.running_mean, transformer.encoder.layers.0.self_attn.in_proj_weight,
    transformer.decoder.norm.weight, class_embed.weight, bbox_embed.layers.2.bias,
    query_embed.weight, input_proj.weight, ...
  - ResNet v1.5 (stride on the 3x3 conv of a bottleneck), BasicBlock for 18/34, Bottleneck
    for 50/101; DC5 (layer4 stride replaced by dilation, torchvision's rule: block 0 keeps the
    previous dilation); FrozenBatchNorm2d (eps 1e-5, y = x*scale + shift with
    scale = w * rsqrt(rv + eps), shift = b - rm * scale) or trainable nn.BatchNorm2d;
    the freezing rule (backbone parameters whose name contains none of layer2/layer3/layer4
    are frozen; all of them when train_backbone is False);
  - mask nearest downsampling (F.interpolate default mode), sine position encoding
    (normalize, scale 2*pi, temperature 10000, eps 1e-6, output channels [y-half, x-half],
    interleaved sin/cos) or learned (row/col Embedding(50, d/2), channels [x-half, y-half]);
  - post-norm and pre-norm transformer with nn.MultiheadAttention (packed in_proj_weight),
    pos added to queries and keys only, decoder return_intermediate with the shared final
    LayerNorm applied to every layer's output for the heads only, pre-norm encoder final norm;
  - class head Linear(d, num_classes+1), bbox MLP d-d-d-4 with sigmoid;
  - init: torchvision ResNet init (kaiming_normal fan_out relu on convs, BN identity),
    xavier_uniform on every transformer parameter with dim > 1, PyTorch defaults elsewhere
    (query_embed N(0,1)).

Extensions (off by default = official): base_width (stem width; the four layers have
base_width * 1/2/4/8 planes; 64 = official) so tiny configs are possible.
Numerical note: the official sine encoding is computed in float32 and cast to the feature
dtype; here it is computed in the feature dtype (identical in float32, exact in float64).

Run as a script: checks the parameter counts of DETR-R50 against docs/model.md §7
(41,524,768 in all, 41,302,368 trainable), R101 and DC5, and prints them.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- backbone
class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine terms, all four are buffers."""

    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)   # present in BatchNorm2d checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def conv3x3(cin, cout, stride=1, dilation=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, downsample, dilation, norm):
        super().__init__()
        if dilation > 1:   # as torchvision: DC5 needs bottlenecks
            raise NotImplementedError("dilation > 1 (DC5) is not supported with BasicBlock (resnet18/34)")
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm(planes)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, downsample, dilation, norm):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = norm(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)   # v1.5: stride on the 3x3
        self.bn2 = norm(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = norm(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


RESNETS = {  # name -> (block, blocks per layer)
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


class ResNetBody(nn.Module):
    """conv1 .. layer4 of a torchvision ResNet (what IntermediateLayerGetter keeps)."""

    def __init__(self, name, base_width=64, dilation=False, norm=FrozenBatchNorm2d):
        super().__init__()
        block, counts = RESNETS[name]
        self.inplanes, self.dilation = base_width, 1
        self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        w = base_width
        self.layer1 = self._make_layer(block, w, counts[0], 1, False, norm)
        self.layer2 = self._make_layer(block, 2 * w, counts[1], 2, False, norm)
        self.layer3 = self._make_layer(block, 4 * w, counts[2], 2, False, norm)
        self.layer4 = self._make_layer(block, 8 * w, counts[3], 2, dilation, norm)
        self.num_channels = 8 * w * block.expansion
        for m in self.modules():   # torchvision's init; BatchNorm2d starts at identity
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes, n, stride, dilate, norm):
        prev_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm(planes * block.expansion))
        blocks = [block(self.inplanes, planes, stride, downsample, prev_dilation, norm)]
        self.inplanes = planes * block.expansion
        for _ in range(1, n):
            blocks.append(block(self.inplanes, planes, 1, None, self.dilation, norm))
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Backbone(nn.Module):
    def __init__(self, name="resnet50", train_backbone=True, dilation=False, base_width=64,
                 frozen_bn=True):
        super().__init__()
        norm = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
        self.body = ResNetBody(name, base_width, dilation, norm)
        self.num_channels = self.body.num_channels
        for pname, p in self.body.named_parameters():
            if not train_backbone or ("layer2" not in pname and "layer3" not in pname and "layer4" not in pname):
                p.requires_grad_(False)

    def forward(self, images, mask):
        """images [B,3,H,W], mask [B,H,W] bool (True = padding) -> feat [B,C,Hf,Wf], mask_f [B,Hf,Wf]."""
        feat = self.body(images)
        mask_f = F.interpolate(mask[None].float(), size=feat.shape[-2:]).to(torch.bool)[0]
        return feat, mask_f


class PositionEmbeddingSine(nn.Module):
    def __init__(self, num_pos_feats=128, temperature=10000, normalize=True, scale=2 * math.pi):
        super().__init__()
        self.num_pos_feats, self.temperature, self.normalize, self.scale = num_pos_feats, temperature, normalize, scale
        self.compute_dtype = None   # torch.float32 reproduces the official float64 run bit for bit

    def forward(self, feat, mask):
        """mask [B,Hf,Wf] bool -> pos [B, 2*num_pos_feats, Hf, Wf] (Joiner casts to feat's dtype)."""
        dt = self.compute_dtype or feat.dtype
        valid = (~mask).to(dt)
        y = valid.cumsum(1)
        x = valid.cumsum(2)
        if self.normalize:
            y = y / (y[:, -1:, :] + 1e-6) * self.scale
            x = x / (x[:, :, -1:] + 1e-6) * self.scale
        k = torch.arange(self.num_pos_feats, dtype=dt, device=feat.device)
        dim_t = self.temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / self.num_pos_feats)
        px = x[..., None] / dim_t
        py = y[..., None] / dim_t
        # channel 2m = sin, 2m+1 = cos of the same frequency
        px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
        py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((py, px), dim=3).permute(0, 3, 1, 2)


class PositionEmbeddingLearned(nn.Module):
    def __init__(self, num_pos_feats=128):
        super().__init__()
        self.row_embed = nn.Embedding(50, num_pos_feats)
        self.col_embed = nn.Embedding(50, num_pos_feats)
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self, feat, mask):
        B, h, w = feat.shape[0], feat.shape[-2], feat.shape[-1]
        xe = self.col_embed(torch.arange(w, device=feat.device))      # [w, F]
        ye = self.row_embed(torch.arange(h, device=feat.device))      # [h, F]
        pos = torch.cat([xe[None].expand(h, w, -1), ye[:, None].expand(h, w, -1)], dim=-1)
        return pos.permute(2, 0, 1)[None].repeat(B, 1, 1, 1)


class Joiner(nn.Sequential):
    """backbone.0 = Backbone, backbone.1 = position encoding (names as the official Joiner)."""

    def forward(self, images, mask):
        feat, mask_f = self[0](images, mask)
        return feat, mask_f, self[1](feat, mask_f).to(feat.dtype)


# --------------------------------------------------------------------------- transformer
class _Layer(nn.Module):
    """The parts of an encoder or decoder layer, named and made in the official order (the
    order decides which random numbers each weight gets): the attentions named in attns,
    linear1, dropout, linear2, then norm1..N and dropout1..N for the N sublayers."""

    def __init__(self, d, nhead, dff, dropout, pre_norm, attns):
        super().__init__()
        for name in attns:
            setattr(self, name, nn.MultiheadAttention(d, nhead, dropout=dropout))
        self.linear1 = nn.Linear(d, dff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dff, d)
        for i in range(1, len(attns) + 2):
            setattr(self, f"norm{i}", nn.LayerNorm(d))
        for i in range(1, len(attns) + 2):
            setattr(self, f"dropout{i}", nn.Dropout(dropout))
        self.pre_norm = pre_norm

    def ffn(self, x):
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(_Layer):
    def __init__(self, d, nhead, dff, dropout, pre_norm):
        super().__init__(d, nhead, dff, dropout, pre_norm, ["self_attn"])

    def forward(self, src, mask, pos):
        """src, pos [S,B,d]; mask [B,S] bool (True = padding key)."""
        if self.pre_norm:
            s = self.norm1(src)
            src = src + self.dropout1(self.self_attn(s + pos, s + pos, s, key_padding_mask=mask)[0])
            return src + self.dropout2(self.ffn(self.norm2(src)))
        src = self.norm1(src + self.dropout1(self.self_attn(src + pos, src + pos, src, key_padding_mask=mask)[0]))
        return self.norm2(src + self.dropout2(self.ffn(src)))


class DecoderLayer(_Layer):
    def __init__(self, d, nhead, dff, dropout, pre_norm):
        super().__init__(d, nhead, dff, dropout, pre_norm, ["self_attn", "multihead_attn"])

    def forward(self, tgt, memory, mask, pos, query_pos):
        """tgt, query_pos [Q,B,d]; memory, pos [S,B,d]; mask [B,S] bool."""
        if self.pre_norm:
            t = self.norm1(tgt)
            tgt = tgt + self.dropout1(self.self_attn(t + query_pos, t + query_pos, t)[0])
            t = self.norm2(tgt)
            tgt = tgt + self.dropout2(self.multihead_attn(t + query_pos, memory + pos, memory,
                                                          key_padding_mask=mask)[0])
            return tgt + self.dropout3(self.ffn(self.norm3(tgt)))
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(tgt + query_pos, tgt + query_pos, tgt)[0]))
        tgt = self.norm2(tgt + self.dropout2(self.multihead_attn(tgt + query_pos, memory + pos, memory,
                                                                 key_padding_mask=mask)[0]))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


class Encoder(nn.Module):
    def __init__(self, n, d, nhead, dff, dropout, pre_norm):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(d, nhead, dff, dropout, pre_norm) for _ in range(n)])
        self.norm = nn.LayerNorm(d) if pre_norm else None   # post-norm: no final encoder norm

    def forward(self, src, mask, pos):
        for layer in self.layers:
            src = layer(src, mask, pos)
        return src if self.norm is None else self.norm(src)


class Decoder(nn.Module):
    def __init__(self, n, d, nhead, dff, dropout, pre_norm):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(d, nhead, dff, dropout, pre_norm) for _ in range(n)])
        self.norm = nn.LayerNorm(d)

    def forward(self, tgt, memory, mask, pos, query_pos):
        """Returns [L,Q,B,d]: the shared norm of every layer's output (return_intermediate);
        the un-normalized output is what feeds the next layer."""
        outs = []
        for layer in self.layers:
            tgt = layer(tgt, memory, mask, pos, query_pos)
            outs.append(self.norm(tgt))
        return torch.stack(outs)


class Transformer(nn.Module):
    def __init__(self, d=256, nhead=8, enc_layers=6, dec_layers=6, dff=2048, dropout=0.1, pre_norm=False):
        super().__init__()
        self.encoder = Encoder(enc_layers, d, nhead, dff, dropout, pre_norm)
        self.decoder = Decoder(dec_layers, d, nhead, dff, dropout, pre_norm)
        self.d_model, self.nhead = d, nhead
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src, mask, query_embed, pos):
        """src, pos [B,d,Hf,Wf]; mask [B,Hf,Wf]; query_embed [Q,d] ->
        hs [L,B,Q,d], memory [B,d,Hf,Wf]. Tokens are row-major: s = i*Wf + j."""
        B, d, h, w = src.shape
        src = src.flatten(2).permute(2, 0, 1)
        pos = pos.flatten(2).permute(2, 0, 1)
        query_pos = query_embed[:, None].repeat(1, B, 1)
        mask = mask.flatten(1)
        memory = self.encoder(src, mask, pos)
        hs = self.decoder(torch.zeros_like(query_pos), memory, mask, pos, query_pos)
        return hs.transpose(1, 2), memory.permute(1, 2, 0).reshape(B, d, h, w)


class MLP(nn.Module):
    def __init__(self, din, dh, dout, n):
        super().__init__()
        dims = [din] + [dh] * (n - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, [dh] * (n - 1) + [dout]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class DETR(nn.Module):
    def __init__(self, backbone, transformer, num_classes, num_queries):
        super().__init__()
        d = transformer.d_model
        self.num_queries = num_queries
        self.transformer = transformer
        self.class_embed = nn.Linear(d, num_classes + 1)
        self.bbox_embed = MLP(d, d, 4, 3)
        self.query_embed = nn.Embedding(num_queries, d)
        self.input_proj = nn.Conv2d(backbone[0].num_channels, d, kernel_size=1)
        self.backbone = backbone

    def forward(self, images, mask, trace=None):
        """images [B,3,H,W] zero-padded; mask [B,H,W] bool, True = padding.
        Returns logits [L,B,Q,K+1] and boxes [L,B,Q,4] (sigmoid cxcywh) of every decoder
        layer (index L-1 = pred_logits/pred_boxes, the rest = aux_outputs).
        trace (a dict) receives the intermediate tensors named in make_model_fixtures.py."""
        feat, mask_f, pos = self.backbone(images, mask)
        src = self.input_proj(feat)
        hs, memory = self.transformer(src, mask_f, self.query_embed.weight, pos)
        logits = self.class_embed(hs)
        boxes = self.bbox_embed(hs).sigmoid()
        if trace is not None:
            trace.update(features=feat, mask_f=mask_f, pos=pos, proj=src, hs=hs, memory_bchw=memory)
        return logits, boxes


def build_detr(backbone="resnet50", base_width=64, dilation=False, frozen_bn=True, train_backbone=True,
               position_embedding="sine", hidden_dim=256, nheads=8, enc_layers=6, dec_layers=6,
               dim_feedforward=2048, dropout=0.1, pre_norm=False, num_queries=100, num_classes=91):
    """Construction order as the official build(): backbone, transformer, then the heads."""
    body = Backbone(backbone, train_backbone, dilation, base_width, frozen_bn)
    if position_embedding == "sine":
        pos = PositionEmbeddingSine(hidden_dim // 2)
    elif position_embedding == "learned":
        pos = PositionEmbeddingLearned(hidden_dim // 2)
    else:
        raise ValueError(f"position_embedding {position_embedding!r}: sine or learned")
    joiner = Joiner(body, pos)
    transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout, pre_norm)
    return DETR(joiner, transformer, num_classes, num_queries)


def padded_batch(seed):
    """Two random images padded to one 96x128 batch (96x100 and 70x128), and the mask (True = padding)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(2, 3, 96, 128)
    mask = torch.ones(2, 96, 128, dtype=torch.bool)
    for b, (h, w) in enumerate([(96, 100), (70, 128)]):
        images[b, :, :h, :w] = torch.randn(3, h, w, generator=g)
        mask[b, :h, :w] = False
    return images, mask


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def check_official_counts():
    """docs/model.md §7: DETR-R50 41,524,768 / 41,302,368; R101 60,464,672 / 60,242,272."""
    cases = [(dict(), 41524768, 41302368), (dict(dilation=True), 41524768, 41302368),
             (dict(backbone="resnet101"), 60464672, 60242272),
             (dict(position_embedding="learned"), 41524768 + 12800, 41302368 + 12800)]
    for kw, want_total, want_train in cases:
        m = build_detr(**kw)
        total, train = count_params(m)
        print(f"DETR {kw or 'R50 (default)'}: {total:,} parameters, {train:,} trainable")
        assert (total, train) == (want_total, want_train), (kw, total, train)
    m = build_detr()
    keys = list(m.state_dict().keys())
    for k in ["backbone.0.body.conv1.weight", "backbone.0.body.layer1.0.bn1.running_mean",
              "backbone.0.body.layer4.0.downsample.1.running_var",
              "transformer.encoder.layers.0.self_attn.in_proj_weight",
              "transformer.decoder.layers.5.multihead_attn.out_proj.bias", "transformer.decoder.norm.weight",
              "class_embed.weight", "bbox_embed.layers.2.bias", "query_embed.weight", "input_proj.weight"]:
        assert k in keys, k
    assert "transformer.encoder.norm.weight" not in keys
    assert not any("num_batches_tracked" in k for k in keys)
    assert m.state_dict()["class_embed.weight"].shape == (92, 256)
    print(f"state_dict: {len(keys)} entries, official names present")


if __name__ == "__main__":
    torch.manual_seed(0)
    check_official_counts()
