#!/usr/bin/env python3
"""fastai's version of the main job (`cargo run -- train`), for a side-by-side time and accuracy.

Same recipe: the bundled demo (data/demo, train/ + valid/), ResNet-18 from scratch with fastai's
head, 28 px (resize, no crop), horizontal flip only, ImageNet normalisation, batch 64,
fit_one_cycle(5, 1e-3) with fastai's Adam defaults. Never run by the tests.
Install: python3 -m venv ~/.venvs/ref && ~/.venvs/ref/bin/pip install fastai 'pandas<3'
Run:     ~/.venvs/ref/bin/python bench/fastai_demo.py [--seed N]   (default 42, as `train`)
"""
import argparse, os, time

import torch
from fastai.vision.all import (ImageDataLoaders, Resize, Flip, Normalize, imagenet_stats, accuracy,
                               vision_learner, resnet18, set_seed)
import fastai


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=42, help="seed for fastai's set_seed")
    seed = ap.parse_args().seed
    torch.set_num_threads(os.cpu_count())
    set_seed(seed)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "demo")
    t0 = time.time()
    dls = ImageDataLoaders.from_folder(path, train="train", valid="valid", item_tfms=Resize(28),
                                       batch_tfms=[Flip(), Normalize.from_stats(*imagenet_stats)], bs=64,
                                       num_workers=0)
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.fit_one_cycle(5, 1e-3)
    acc = float(learn.validate()[1])
    print(f"fastai {fastai.__version__}, torch {torch.__version__}, seed {seed}: accuracy {acc:.4f} "
          f"in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
