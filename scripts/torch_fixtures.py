#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures in tests/fixtures/ (torch + torchvision + safetensors from PyPI;
script only, never needed by the tests).

The models are torchvision's own ResNet-18 (BasicBlock) and ResNet-50 (Bottleneck) classes with every
stage 8× narrower (stem 8 channels instead of 64) so the files stay small; the layout and names are
torchvision's. BatchNorm weights, biases and running statistics are randomised so the mapping is
really exercised. Each is written as:
  resnet{18,50}_w8.pth               torch.save(state_dict) (zip format)
  resnet18_w8_legacy.pth             the pre-1.6 legacy format
  resnet18_w8_places.pth.tar         a Places365-style training checkpoint: {"state_dict": {"module."+k}, ...}
  resnet18_w8.safetensors            safetensors (timm's hub format)
  resnet_parity.json                 fixed inputs and the body's eval-mode features (through layer4)
pip install torch==2.9.0 torchvision==0.24.0 safetensors; python3 scripts/torch_fixtures.py
"""
import json, os

import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


class NarrowResNet(ResNet):
    """torchvision's ResNet with stage widths w, 2w, 4w, 8w (torchvision: w = 64)."""

    def __init__(self, block, layers, w=8, num_classes=1000):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = w, 1, 1, 64
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, 2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w * block.expansion, num_classes)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def randomise_bn(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.2 * torch.randn(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)


def main():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64, generator=g)
    parity = {"input_shape": list(x.shape), "input": x.flatten().tolist()}
    for name, block, layers in [("resnet18", BasicBlock, [2, 2, 2, 2]), ("resnet50", Bottleneck, [3, 4, 6, 3])]:
        model = NarrowResNet(block, layers, w=8, num_classes=365)
        randomise_bn(model, g)
        model.eval()
        with torch.no_grad():
            feats = model.features(x)
        sd = model.state_dict()
        torch.save(sd, os.path.join(OUT, f"{name}_w8.pth"))
        parity[name] = {"shape": list(feats.shape), "features": feats.flatten().tolist()}
        if name == "resnet18":
            torch.save(sd, os.path.join(OUT, f"{name}_w8_legacy.pth"), _use_new_zipfile_serialization=False)
            ckpt = {"epoch": 90, "arch": "resnet18", "best_prec1": 54.7,
                    "state_dict": {"module." + k: v for k, v in sd.items()}}
            torch.save(ckpt, os.path.join(OUT, f"{name}_w8_places.pth.tar"))
            save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(OUT, f"{name}_w8.safetensors"))
    with open(os.path.join(OUT, "resnet_parity.json"), "w") as f:
        json.dump(parity, f)
    print("wrote fixtures to", OUT)


if __name__ == "__main__":
    main()
