#!/usr/bin/env python3
"""PyTorch reference for `fastvision bench`: the same figures on the same machine.

torchvision resnet18 with a 10-class fc, or with `--head fastai` fastai's head as fastvision builds
it (concat pooling, BatchNorm, dropout, 1024 -> 512 -> 10 linear layers without bias): the same
network as `fastvision bench` (against the fc at 28 px, bf16 + channels-last, nine pairs in turn:
training 1.01x, inference 0.99x, within noise);
Adam step (fastai's betas and eps, decoupled weight decay) on one random batch; loader = PIL
decode + RandomResizedCrop + flip + normalise over the demo training set with one worker per core.
On the CPU torch.set_num_threads = cores; on CUDA (`--device cuda`) every timing synchronises the
GPU first, `--amp bf16|fp16` runs forward and loss under autocast (fp16 with a GradScaler), and
`--channels-last` uses NHWC memory format: PyTorch's usual fast path. PyTorch's defaults otherwise
(cuDNN may use TF32 for fp32 convolutions; cudnn.benchmark off).
Install (script only, never needed by the tests): pip install torch==2.9.0 torchvision==0.24.0 pillow
Run: python3 bench/pytorch_bench.py [--bs 32] [--size 64] [--steps 10] [--device cuda --amp bf16
     --channels-last --no-loader --head fastai]
"""
import argparse, json, os, resource, time

import torch
import torchvision
from torchvision import datasets, transforms


class ConcatPool(torch.nn.Module):
    """fastai's AdaptiveConcatPool2d(1) + flatten: [max, avg] over space."""

    def forward(self, x):
        return torch.cat([x.amax((2, 3)), x.mean((2, 3))], 1)


def fastai_head(nf, n_out, hidden=512, ps=0.5):
    """fastai's create_head: BN, dropout ps/2, linear, ReLU, BN, dropout ps, linear."""
    nn = torch.nn
    return nn.Sequential(
        ConcatPool(), nn.BatchNorm1d(2 * nf), nn.Dropout(ps / 2), nn.Linear(2 * nf, hidden, bias=False),
        nn.ReLU(inplace=True), nn.BatchNorm1d(hidden), nn.Dropout(ps), nn.Linear(hidden, n_out, bias=False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-loader", action="store_true", help="skip the loader figure")
    ap.add_argument("--head", default="fc", choices=["fc", "fastai"],
                    help="torchvision's 10-class fc, or fastai's head (fastvision's model)")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "demo", "train"))
    args = ap.parse_args()
    cores = os.cpu_count()
    torch.set_num_threads(cores)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    loader = float("nan")
    if not args.no_loader:
        tfm = transforms.Compose([
            transforms.RandomResizedCrop(args.size), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        ds = datasets.ImageFolder(args.data, transform=tfm, loader=lambda p: __import__("PIL.Image").Image.open(p).convert("RGB"))
        dl = torch.utils.data.DataLoader(ds, batch_size=args.bs, shuffle=True, num_workers=cores)
        t = time.perf_counter()
        n = sum(len(y) for _, y in dl)
        loader = n / (time.perf_counter() - t)

    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = torchvision.models.resnet18(num_classes=10)
    if args.head == "fastai":
        model = torch.nn.Sequential(*list(model.children())[:-2], fastai_head(512, 10))
    model = model.to(dev, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    x = torch.randn(args.bs, 3, args.size, args.size, device=dev).to(memory_format=fmt)
    y = (torch.arange(args.bs) % 10).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")

    def autocast():
        return torch.autocast(dev.type, dtype=amp, enabled=amp is not None)

    def step():
        opt.zero_grad()
        with autocast():
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    model.train()
    t = time.perf_counter()
    for _ in range(2):
        step()
    sync()
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    train = args.steps * args.bs / (time.perf_counter() - t)

    model.eval()
    with torch.no_grad(), autocast():
        model(x)
        sync()
        t = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        sync()
        infer = args.steps * args.bs / (time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0.0
    how = f"{args.device} amp={args.amp}{' channels-last' if args.channels_last else ''}"
    print(f"pytorch {torch.__version__} bs {args.bs} size {args.size} {how} ({cores} cores)")
    print("| backend | loader img/s | train img/s | infer img/s | peak MiB |")
    print("|---|---|---|---|---|")
    print(f"| pytorch | {loader:.0f} | {train:.1f} | {infer:.1f} | {peak:.0f} |")
    print(json.dumps(dict(loader_img_s=loader, train_img_s=train, infer_img_s=infer, peak_mib=peak,
                          gpu_peak_mib=gpu_peak, warmup_s=warmup, device=args.device, amp=args.amp,
                          channels_last=args.channels_last, bs=args.bs, size=args.size)))


if __name__ == "__main__":
    main()
