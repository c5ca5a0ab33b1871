#!/usr/bin/env bash
# Reproduces the GAN figures of docs/benchmarks.md on the demo: per-class WGANs vs one conditional WGAN
# (GAN-test / GAN-train, time), and the classifier with and without synthetic images, on the
# full demo and on the demo reduced to 30 training images per class.
# Usage: bash scripts/figures_gan.sh [BINARY] [WORKDIR]   (about an hour on 2 cores)
set -euo pipefail
B=$(realpath "${1:-target/debug/fastvision}")
W=${2:-/tmp/fastvision-gan}
DEMO=$(realpath data/demo)
rm -rf "$W" && mkdir -p "$W"
cd "$W"
# The demo reduced to 30 training images per class (the same 1 000 validation images).
mkdir -p small/train
cp -r "$DEMO/valid" small/valid
for c in "$DEMO"/train/*/; do
  n=$(basename "$c"); mkdir -p "small/train/$n"
  ls "$c" | sort | head -30 | while read -r f; do cp "$c/$f" "small/train/$n/"; done
done
G="--size 32 --bs 16 --n-features 32"
echo "== classifier on real images (the demo recipe)"
"$B" train "$DEMO" --name real | grep final
echo "== per-class WGANs, full demo (300 images per class)"
/usr/bin/time -f "%e s" "$B" gan train "$DEMO" $G --epochs 100 --name per-class 2>&1 | grep -E "trained|s$"
echo "== one conditional WGAN, full demo"
/usr/bin/time -f "%e s" "$B" gan train "$DEMO" $G --conditional --epochs 100 --name conditional 2>&1 | grep -E "trained|s$"
for g in per-class conditional; do
  echo "== scores: $g"
  "$B" gan score "runs/$g" --classifier runs/real --n 200 | grep -E "GAN-|own"
  "$B" gan sample "runs/$g" --n 300 --out "synth-$g" | tail -1
done
echo "== full demo: with and without synthetic images (300 per class, same recipe)"
for g in per-class conditional; do
  "$B" train "$DEMO" --extra-data "synth-$g" --name "full-$g" | grep final
done
echo "== 30 images per class: a conditional WGAN on those, then the classifier with and without"
"$B" gan train small $G --conditional --epochs 100 --name small-gan 2>&1 | grep trained
"$B" gan sample runs/small-gan --n 300 --out synth-small | tail -1
for seed in 1 2 3; do
  "$B" train small --seed "$seed" --name "small-real-$seed" | grep final
  "$B" train small --seed "$seed" --extra-data synth-small --name "small-synth-$seed" | grep final
done
echo "== control: real images only, as many steps as with the synthetic images (55 epochs)"
for seed in 1 2 3; do
  "$B" train small --seed "$seed" --epochs 55 --name "small-real55-$seed" | grep final
done
