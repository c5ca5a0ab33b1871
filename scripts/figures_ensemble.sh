#!/usr/bin/env bash
# Reproduces the ensemble figures of docs/benchmarks.md on the demo: three diverse members and their
# ensemble; three seeds vs bagging vs snapshots of ResNet-18 at the same budget; Inception-v3's
# training speed.
# Usage: bash scripts/figures_ensemble.sh [BINARY] [WORKDIR]   (about 40 minutes on 2 cores)
set -euo pipefail
B=$(realpath "${1:-target/debug/fastvision}")
W=${2:-/tmp/fastvision-ensemble}
DEMO=$(realpath data/demo)
rm -rf "$W" && mkdir -p "$W"
cd "$W"
t() { /usr/bin/time -f "  %e s" "$@"; }
echo "== three diverse members (5 epochs each, one-cycle 1e-3; inception_v3 upscaled to 75 px)"
t "$B" ensemble train "$DEMO" --members resnet34,efficientnet_lite0,inception_v3 --combine mean --name diverse 2>&1 \
  | grep -vE "^ +[0-9]+ +[0-9]+ " | grep -v "^epoch"
echo "== resnet18: three seeds"
t "$B" ensemble train "$DEMO" --members resnet18 --seeds 3 --combine mean --name seeds 2>&1 | sed -n '/validation images/,$p'
echo "== resnet18: three bootstrap samples"
t "$B" ensemble train "$DEMO" --members resnet18 --seeds 3 --bagging --combine mean --name bagging 2>&1 | sed -n '/validation images/,$p'
echo "== resnet18: snapshots of one SGDR run (3 cycles of 2 epochs)"
t "$B" train "$DEMO" --schedule sgdr --cycles 3 --cycle-len 2 --cycle-mult 1 --lr 3e-3 --snapshots --name snap 2>&1 | grep final
"$B" ensemble report runs/snap/snapshots | grep -v wrote
echo "== bench: inception_v3 at 75 px vs resnet18 at 64 px (bs 32)"
"$B" bench --arch inception_v3 --size 75 --bs 32 2>&1 | tail -12
echo "== ensemble from runs already trained: ResNet-34 + ResNet-18 + a bagged ResNet-18"
"$B" ensemble from runs/diverse/members/00-resnet34-s42 runs/seeds/members/00-resnet18-s42 \
  runs/bagging/members/00-resnet18-s42-bag --combine mean --name mixed | sed -n '/validation images/,/geometric/p'
