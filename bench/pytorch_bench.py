#!/usr/bin/env python3
"""PyTorch reference for `fastvision bench`: the same four figures on the same machine.

torchvision resnet18 (with fastai's head replaced by a 10-class fc: the body dominates the cost),
batch 32, 64 px, Adam step; loader = PIL decode + RandomResizedCrop + flip + normalise over the demo
training set with one worker per core; torch.set_num_threads = cores.
Install (script only, never needed by the tests): pip install torch==2.9.0 torchvision==0.24.0 pillow
Run: python3 bench/pytorch_bench.py [--bs 32] [--size 64] [--steps 10]
"""
import argparse, json, os, resource, time

import torch
import torchvision
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "demo", "train"))
    args = ap.parse_args()
    cores = os.cpu_count()
    torch.set_num_threads(cores)

    tfm = transforms.Compose([
        transforms.RandomResizedCrop(args.size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = datasets.ImageFolder(args.data, transform=tfm, loader=lambda p: __import__("PIL.Image").Image.open(p).convert("RGB"))
    dl = torch.utils.data.DataLoader(ds, batch_size=args.bs, shuffle=True, num_workers=cores)
    t = time.perf_counter()
    n = sum(len(y) for _, y in dl)
    loader = n / (time.perf_counter() - t)

    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    x = torch.randn(args.bs, 3, args.size, args.size)
    y = torch.arange(args.bs) % 10
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    model.train()
    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    train = args.steps * args.bs / (time.perf_counter() - t)

    model.eval()
    with torch.no_grad():
        model(x)
        t = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        infer = args.steps * args.bs / (time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} bs {args.bs} size {args.size} ({cores} cores)")
    print("| backend | loader img/s | train img/s | infer img/s | peak MiB |")
    print("|---|---|---|---|---|")
    print(f"| pytorch | {loader:.0f} | {train:.1f} | {infer:.1f} | {peak:.0f} |")
    print(json.dumps(dict(loader_img_s=loader, train_img_s=train, infer_img_s=infer, peak_mib=peak)))


if __name__ == "__main__":
    main()
