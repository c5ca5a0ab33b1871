#!/usr/bin/env bash
# Reproduces the cleaning figures of docs/benchmarks.md: 5 % of the demo's training labels flipped, method 1
# in-sample vs out-of-fold, and valid accuracy after cleaning vs before.
# Usage: bash scripts/figures_clean.sh [BINARY] [WORKDIR]   (about an hour on 2 cores)
set -euo pipefail
B=$(realpath "${1:-target/debug/fastvision}")
W=${2:-/tmp/fastvision-clean}
FLIP=$(realpath scripts/flip_labels.py)
rm -rf "$W" && mkdir -p "$W"
python3 "$FLIP" flip data/demo "$W/noisy"
cd "$W"
"$B" train noisy --epochs 5 --name before | grep final
"$B" clean runs/before noisy --confident-wrong 0.9 > in-sample.csv
python3 "$FLIP" score noisy/flipped.txt in-sample.csv
"$B" clean runs/before noisy --confident-wrong 0.9 --folds 5 > oof.csv
python3 "$FLIP" score noisy/flipped.txt oof.csv
for how in in-sample oof; do
  rm -rf "clean-$how" && cp -r noisy "clean-$how"
  python3 - "$how" <<'PY'
import csv, os, shutil, sys
how = sys.argv[1]
for r in csv.DictReader(open(f"{how}.csv")):
    src = r["path"].replace("noisy/", f"clean-{how}/", 1)
    q = os.path.join(f"clean-{how}", ".removed")
    os.makedirs(q, exist_ok=True)
    shutil.move(src, os.path.join(q, os.path.basename(src)))
PY
  "$B" train "clean-$how" --epochs 5 --name "after-$how" | grep final
done
