#!/usr/bin/env python3
"""PyTorch's (oneDNN's) time per convolution of ResNet-18, layer by layer, beside fastvision's.

Runs torchvision's resnet18 under bf16 autocast with channels-last (PyTorch's best CPU path), a
forward and a backward per round, and reads `torch.profiler`'s CPU time of each convolution
(`aten::mkldnn_convolution` forward, `aten::convolution_backward` backward, keyed by input
shape); the same geometries in fastvision's kernels are timed by
`cargo run --example conv_kernels -- BS SIZE ROUNDS bf16`, whose rows this prints beside them
when given `--fastvision` (the example's output). Milliseconds per convolution, median of the
rounds. Script only: never needed by the tests.
Run: python3 bench/conv_layers.py [--bs 32] [--size 224] [--rounds 5] [--fastvision FILE]
"""
import argparse, collections, os, re, statistics

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fastvision", help="conv_kernels' output for the same batch and size")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    model = torchvision.models.resnet18(num_classes=10).to(memory_format=torch.channels_last)
    x = torch.randn(args.bs, 3, args.size, args.size).to(memory_format=torch.channels_last)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().sum()
        loss.backward()

    step()
    times = collections.defaultdict(list)
    for _ in range(args.rounds):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                    record_shapes=True) as prof:
            step()
        per = collections.defaultdict(list)
        for e in prof.events():
            if e.name in ("aten::mkldnn_convolution", "aten::convolution_backward"):
                shapes = e.input_shapes
                if e.name == "aten::mkldnn_convolution":
                    key = ("fwd", tuple(shapes[0]), tuple(shapes[1]))
                else:
                    key = ("bwd", tuple(shapes[1]), tuple(shapes[2]))
                per[key].append(e.cpu_time_total / 1e3)
        for key, ms in per.items():
            times[key].append(statistics.mean(ms))
    ours = {}
    if args.fastvision:
        row = re.compile(r"^(\w+)\s+x\[([\d, ]+)\] w\[([\d, ]+)\].*fwd\s+([\d.]+) ms.*bwd\s+([\d.]+) ms")
        for line in open(args.fastvision):
            m = row.match(line)
            if m:
                xs = tuple(int(v) for v in m.group(2).split(","))
                ws = tuple(int(v) for v in m.group(3).split(","))
                ours[("fwd", xs, ws)] = float(m.group(4))
                ours[("bwd", xs, ws)] = float(m.group(5))
    print("| pass | input | weight | PyTorch bf16 + channels-last, ms | fastvision, ms | ratio |")
    print("|---|---|---|---|---|---|")
    for key in sorted(times, key=lambda k: (k[0] == "bwd", -k[1][2], k[2][0], -k[2][2])):
        theirs = statistics.median(times[key])
        mine = ours.get(key)
        ratio = f"{mine / theirs:.2f}" if mine else ""
        mine = f"{mine:.1f}" if mine else ""
        print(f"| {key[0]} | {list(key[1])} | {list(key[2])} | {theirs:.1f} | {mine} | {ratio} |")


if __name__ == "__main__":
    main()
