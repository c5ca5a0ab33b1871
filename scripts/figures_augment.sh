#!/usr/bin/env bash
# Reproduces the augmentation / mixup / progressive / TTA figures of docs/benchmarks.md on the demo dataset.
# Usage: bash scripts/figures_augment.sh [BINARY]   (default: target/debug/fastvision)
set -euo pipefail
B=${1:-target/debug/fastvision}
t() { local s=$(date +%s); "$@"; echo "wall $(( $(date +%s) - s )) s: $*"; }
t "$B" train --name fig-aug --epochs 5
t "$B" train --name fig-aug-none --epochs 5 --aug none
t "$B" train --name fig-mixup --epochs 5 --mixup
for how in "" --tta --ten-crop; do t "$B" evaluate runs/fig-aug data/demo $how; done
t "$B" train --name fig-fixed64 --size 64 --epochs 3 --min-scale 1
t "$B" train --name fig-prog --sizes 32,64 --epochs 2,1 --min-scale 1
t "$B" train --name fig-mixup10 --epochs 10 --mixup
