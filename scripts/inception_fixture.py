#!/usr/bin/env python3
"""Writes tests/fixtures/inception_v3_w8.pth and inception_parity.json: torchvision's own
`Inception3` class (aux classifier on, as torchvision's checkpoint has it) with every channel
count but the image's divided by 8 through its `inception_blocks` hook, random weights and
randomised BatchNorm statistics, and its eval-mode features (through Mixed_7c) for fixed inputs
at 75 px (batch 2) and 107 px (batch 1, a 2×2 feature map). Script only, never needed by the tests.
pip install torch torchvision; python3 scripts/inception_fixture.py
"""
import functools, json, os

import torch
import torch.nn as nn
from torchvision.models.inception import (BasicConv2d, Inception3, InceptionA, InceptionAux, InceptionB,
                                          InceptionC, InceptionD, InceptionE)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
DIV = 8


def narrow_conv(in_channels, out_channels, **kw):
    return BasicConv2d(in_channels if in_channels == 3 else in_channels // DIV, out_channels // DIV, **kw)


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    blocks = [narrow_conv] + [functools.partial(b, conv_block=narrow_conv) for b in
                              (InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionAux)]
    model = Inception3(num_classes=10, aux_logits=True, transform_input=False, inception_blocks=blocks,
                       init_weights=True)
    model.fc = nn.Linear(2048 // DIV, 10)
    model.AuxLogits.fc = nn.Linear(768 // DIV, 10)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.2 * torch.randn(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)
    model.eval()
    feats = {}
    model.Mixed_7c.register_forward_hook(lambda mod, i, o: feats.__setitem__("x", o))
    parity = {}
    for size, n in ((75, 2), (107, 1)):
        x = torch.round(torch.randn(n, 3, size, size, generator=g) * 1e4) / 1e4
        with torch.no_grad():
            model(x)
        parity[str(size)] = {"input_shape": list(x.shape), "input": [round(v, 4) for v in x.flatten().tolist()],
                             "shape": list(feats["x"].shape), "features": [round(v, 7) for v in feats["x"].flatten().tolist()]}
    torch.save(model.state_dict(), os.path.join(OUT, "inception_v3_w8.pth"))
    with open(os.path.join(OUT, "inception_parity.json"), "w") as f:
        json.dump(parity, f)
    print({k: v["shape"] for k, v in parity.items()}, sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
