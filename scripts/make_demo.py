#!/usr/bin/env python3
"""Writes Fashion-MNIST (MIT licence, Zalando SE) as PNG class folders.

Default: the bundled demo under data/demo/ — a stratified subset, 300 train + 100 valid images per
class, chosen with a fixed seed from the official train and test sets.
--full OUT writes all 60 000 train / 10 000 test images as OUT/train/<class>/ and OUT/valid/<class>/.
--out OUT writes a stratified subset (the per-class counts and seed given) there instead of the demo.

Source: the Debian package dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist).
Standard library only (the PNGs are written with zlib).
"""
import argparse, gzip, os, random, struct, zlib

SRC = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        size = rows * cols
        return [data[16 + i * size:16 + (i + 1) * size] for i in range(n)], (rows, cols)
    return list(data[8:8 + n]), None


def png_gray(pixels, w, h):
    raw = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write(out, split, images, labels, shape, picks):
    h, w = shape
    for i in picks:
        d = os.path.join(out, split, CLASSES[labels[i]])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{i:05d}.png"), "wb") as f:
            f.write(png_gray(images[i], w, h))


def stratified(labels, per_class, rng):
    by = {c: [i for i, l in enumerate(labels) if l == c] for c in range(len(CLASSES))}
    return sorted(i for c in by for i in rng.sample(by[c], per_class))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", help="write the full dataset to this folder instead of the demo")
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--valid-per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the subset here instead of data/demo")
    args = ap.parse_args()
    tr_x, shape = read_idx(f"{SRC}/train-images-idx3-ubyte.gz")
    tr_y, _ = read_idx(f"{SRC}/train-labels-idx1-ubyte.gz")
    te_x, _ = read_idx(f"{SRC}/t10k-images-idx3-ubyte.gz")
    te_y, _ = read_idx(f"{SRC}/t10k-labels-idx1-ubyte.gz")
    if args.full:
        write(args.full, "train", tr_x, tr_y, shape, range(len(tr_y)))
        write(args.full, "valid", te_x, te_y, shape, range(len(te_y)))
        return
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "demo")
    rng = random.Random(args.seed)
    write(out, "train", tr_x, tr_y, shape, stratified(tr_y, args.train_per_class, rng))
    write(out, "valid", te_x, te_y, shape, stratified(te_y, args.valid_per_class, rng))


if __name__ == "__main__":
    main()
