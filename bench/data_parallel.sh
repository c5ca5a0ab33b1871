#!/usr/bin/env bash
# Data-parallel speed-up: two ranks pinned to one core each (`fastvision launch --nproc 2
# --threads 1`) against one process on one core, ResNet-18 at 64 px, in turn:
#   1. training steps alone (`fastvision bench`, `--bs` the global batch; its table says the
#      milliseconds per step spent communicating), ROUNDS paired rounds per batch size;
#   2. the same with the batch per rank kept (weak scaling, how DDP is usually scaled): one
#      process at `--bs B` against two ranks at a global `--bs 2B`;
#   3. a whole `train` of the demo at 64 px, 2 epochs, paired by farm-bench (validation on
#      rank 0 alone included).
# Needs a build with `--features distributed` (FASTVISION=path, default target/release) and
# Open MPI. Prints a Markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${FASTVISION:-target/release/fastvision}"
rounds="${ROUNDS:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

img_s() { sed -n 's/^| flex[^|]*| [0-9.]* | \([0-9.]*\) |.*/\1/p'; }
comm_ms() { sed -n 's/^| communication | \([0-9.]*\) |.*/\1/p'; }

# One table row: one process at --bs $2 against two ranks at a global --bs $3, $rounds paired
# rounds; $1 labels the row.
row() {
  local ratios=() one two a b share last
  for r in $(seq "$rounds"); do
    one="$(RAYON_NUM_THREADS=1 taskset -c 0 "$bin" bench --size 64 --bs "$2" --steps 10 2>&1)"
    two="$("$bin" launch --nproc 2 --threads 1 -- bench --size 64 --bs "$3" --steps 10 2>&1)"
    a="$(img_s <<<"$one")"; b="$(img_s <<<"$two")"
    share="$(sed -n 's/^| communication | [0-9.]* | \([0-9]* %\) |.*/\1/p' <<<"$two")"
    ratios+=("$(python3 -c "print(f'{$b/$a:.2f}')")")
    last="| $1 | $a | $b | ${ratios[*]} | $(comm_ms <<<"$two") ($share) |"
  done
  echo "$last"
}

echo "| bs (global) | one process, 1 core: img/s | 2 ranks × 1 core: img/s | speed-up, per round | communication, ms per step (share) |"
echo "|---|---|---|---|---|"
for bs in 32 64 128; do row "$bs" "$bs" "$bs"; done
echo
echo "| bs per process | one process, 1 core: img/s | 2 ranks × 1 core, global bs 2×: img/s | speed-up, per round | communication, ms per step (share) |"
echo "|---|---|---|---|---|"
for bs in 32 64; do row "$bs" "$bs" "$((2 * bs))"; done

echo
echo "whole run (demo, 64 px, 2 epochs), 2 ranks vs 1 process:"
cd "$work"
farm-bench -n "$rounds" --warmup 0 --timeout 3600 \
  --vs "taskset -c 0 env RAYON_NUM_THREADS=1 $OLDPWD/$bin train --size 64 --epochs 2 --seed 1" \
  -- "$OLDPWD/$bin" launch --nproc 2 --threads 1 -- train --size 64 --epochs 2 --seed 1
