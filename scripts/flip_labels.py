#!/usr/bin/env python3
"""Copies an ImageNet-style dataset and moves a seeded fraction of its training images into a
random other class folder (label noise), listing the flipped files; or scores a confusing.csv
against that list.

  python3 scripts/flip_labels.py flip SRC DST [--pct 0.05] [--seed 0]   -> DST/flipped.txt
  python3 scripts/flip_labels.py score DST/flipped.txt confusing.csv
"""
import argparse
import csv
import os
import random
import shutil


def flip(src, dst, pct, seed):
    shutil.copytree(src, dst)
    train = os.path.join(dst, "train")
    classes = sorted(c for c in os.listdir(train) if not c.startswith("."))
    files = sorted(
        (c, f) for c in classes for f in os.listdir(os.path.join(train, c)) if not f.startswith(".")
    )
    rng = random.Random(seed)
    chosen = rng.sample(files, round(len(files) * pct))
    flipped = []
    for c, f in chosen:
        other = rng.choice([k for k in classes if k != c])
        new = os.path.join(train, other, "flipped-" + f)
        os.rename(os.path.join(train, c, f), new)
        flipped.append(os.path.realpath(new))
    with open(os.path.join(dst, "flipped.txt"), "w") as out:
        out.write("\n".join(flipped) + "\n")
    print(f"flipped {len(flipped)} of {len(files)} training images into another class")


def score(flipped_txt, csv_path):
    flipped = {l.strip() for l in open(flipped_txt) if l.strip()}
    with open(csv_path) as f:
        flagged = {os.path.realpath(r["path"]) for r in csv.DictReader(f)}
    hit = len(flipped & flagged)
    precision = hit / len(flagged) if flagged else 0.0
    recall = hit / len(flipped) if flipped else 0.0
    print(f"flagged {len(flagged)}, of which flipped {hit}: precision {precision:.3f}, recall {recall:.3f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("flip")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--pct", type=float, default=0.05)
    a.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("score")
    b.add_argument("flipped")
    b.add_argument("csv")
    args = p.parse_args()
    if args.cmd == "flip":
        flip(args.src, args.dst, args.pct, args.seed)
    else:
        score(args.flipped, args.csv)
