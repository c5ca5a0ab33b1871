#!/usr/bin/env bash
# fastvision on a real GPU, side by side with PyTorch and fastai on the same card, in one run of a
# few minutes, on a machine where nothing can be downloaded (it has PyTorch with CUDA, not fastai).
#
# Carried to it in .dev/ (git-ignored; see the README's "GPU" section for how to make them):
#   .dev/fastvision-gpu.xz     `cargo build --release --features gpu`, stripped, xz-compressed
#   .dev/fastvision-vulkan.xz  the same with `--features vulkan` (cubecl's SPIR-V compiler), optional
#   .dev/deb/*.deb             Debian's Vulkan loader and GL dispatch packages (libvulkan1, libglvnd0…)
#   .dev/whl/*.whl             fastai's pure-Python wheels (fastai fastcore fastprogress fastdownload
#                              fasttransform plum-dispatch beartype)
# Run from the repository root: `bash bench/gpu_check.sh [OUTDIR] [SECONDS]` (default $OUT, else
# gpu_check/; a budget of 540 s). Steps run most important first, each with its own time limit
# (cut to what is left of the budget; a step that no longer fits is skipped). OUTDIR gets four
# files, written as it goes: log.txt (everything printed), results.tsv (step, exit code, seconds),
# figures.jsonl (each bench's JSON line) and demo.txt (the demos' final lines).
set -u
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check}}"
budget="${2:-540}"
mkdir -p "$out"
steps=$(mktemp -d)
log="$out/log.txt"
: >"$log"
printf 'step\trc\tseconds\n' >"$out/results.tsv"
: >"$out/figures.jsonl"
: >"$out/demo.txt"

# step NAME LIMIT_S CMD…: run CMD with a time limit; its output goes to the log, its figures to
# figures.jsonl and demo.txt.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - SECONDS))
  if [ "$left" -lt 20 ]; then
    printf '%s\tskipped\t0\n' "$name" | tee -a "$out/results.tsv"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s): $*" | tee -a "$log"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$steps/$name.out" 2>&1
  local rc=$?
  cat "$steps/$name.out" >>"$log"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$out/results.tsv"
  local line
  line=$(grep -h '^{' "$steps/$name.out" | tail -n 1)
  [ -n "$line" ] && printf '{"step":"%s","report":%s}\n' "$name" "$line" >>"$out/figures.jsonl"
  grep -h -E '^(device|final):|^fastai ' "$steps/$name.out" | sed "s/^/$name: /" >>"$out/demo.txt"
  tail -n 3 "$steps/$name.out"
  return 0
}

# --- set-up: Vulkan loader, the binaries, fastai's wheels ---------------------------------------
for f in .dev/deb/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] \
  && [ ! -e /usr/share/vulkan/icd.d/nvidia_icd.json ] && [ ! -e /etc/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
bin=/tmp/fvbin
mkdir -p "$bin"
for b in gpu vulkan; do
  [ -f ".dev/fastvision-$b.xz" ] && xz -dc ".dev/fastvision-$b.xz" >"$bin/fastvision-$b" && chmod +x "$bin/fastvision-$b"
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .dev/whl/*.whl >>"$log" 2>&1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L | tee -a "$log"
python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, torch.cuda.get_device_name(0))' | tee -a "$log"
fv="$bin/fastvision-gpu"

# --- 1. the demo end to end: fastvision (cold caches) against fastai ---------------------------
step demo_fv_cold 200 "$fv" --device gpu train data/demo --name demo-cold
step demo_fastai 150 python3 bench/fastai_demo.py

# --- 2. ResNet-18 throughput: fastvision (fp32; the SPIR-V build) and PyTorch (eager fp32, AMP
#        bf16 + channels-last) ---------------------------------------------------------------------
vk="$bin/fastvision-vulkan"
for cfg in "64 32" "224 128"; do
  set -- $cfg
  step "fv_$1_$2_fp32" 120 "$fv" --device gpu bench --size "$1" --bs "$2" --steps 20
  step "torch_$1_$2_fp32" 60 python3 bench/pytorch_bench.py --device cuda --no-loader --size "$1" --bs "$2" --steps 20
  step "torch_$1_$2_bf16cl" 60 python3 bench/pytorch_bench.py --device cuda --no-loader --amp bf16 --channels-last --size "$1" --bs "$2" --steps 20
  [ -x "$vk" ] && step "vk_$1_$2_fp32" 90 "$vk" --device gpu bench --size "$1" --bs "$2" --steps 20
done

# --- 3. caches warm, and mixed precision on the demo ---------------------------------------------
step demo_fv_warm 120 "$fv" --device gpu train data/demo --name demo-warm
step demo_fv_fp16 150 "$fv" --device gpu train data/demo --precision fp16 --name demo-fp16

# --- 4. the rest of the throughput table ---------------------------------------------------------
for cfg in "224 128" "64 32"; do
  set -- $cfg
  step "fv_$1_$2_fp16" 120 "$fv" --device gpu bench --size "$1" --bs "$2" --steps 20 --precision fp16
done
for cfg in "64 128" "224 32"; do
  set -- $cfg
  step "fv_$1_$2_fp32" 120 "$fv" --device gpu bench --size "$1" --bs "$2" --steps 20
  step "torch_$1_$2_fp32" 60 python3 bench/pytorch_bench.py --device cuda --no-loader --size "$1" --bs "$2" --steps 20
  step "torch_$1_$2_bf16cl" 60 python3 bench/pytorch_bench.py --device cuda --no-loader --amp bf16 --channels-last --size "$1" --bs "$2" --steps 20
  step "fv_$1_$2_fp16" 120 "$fv" --device gpu bench --size "$1" --bs "$2" --steps 20 --precision fp16
done
echo "done in ${SECONDS}s" | tee -a "$log"
