#!/usr/bin/env bash
# The same training run started from Python (the package's in-memory learner) and from the
# command line, timed in turn as whole processes by farm-bench (A = Python, B = the CLI): the
# demo at 28 px, ResNet-18, one-cycle at 1e-3, EPOCHS epochs (default 3).
# Needs the package installed in PYTHON's environment (default: python3) and the CLI built
# (`cargo build`), both with the same profile.
#   bash bench/python_vs_cli.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
epochs="${EPOCHS:-3}"
python="${PYTHON:-python3}"
cli="${CLI:-target/debug/fastvision}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
script="import fastvision as fv
dls = fv.ImageDataLoaders.from_folder(fv.demo_path(), size=28, seed=42)
learn = fv.vision_learner(dls, 'resnet18', show=False)
learn.fit_one_cycle($epochs, 1e-3, show=False)
print(learn.validate())"
farm-bench -n "$runs" --warmup 1 --timeout 3600 \
  --vs "sh -c 'cd $out && exec $PWD/$cli train --epochs $epochs --size 28 --lr 1e-3 >/dev/null 2>&1'" \
  -- "$python" -c "$script"
