#!/usr/bin/env python3
"""fastvision against PyTorch's CPU paths, in turn, on this machine: ResNet-18 training and
inference throughput (images/s) at 28, 64 and 224 px, for fastvision in fp32 and in its default
precision (`auto`: bf16 on AMX tiles or AMD's AVX-512 BF16; where `auto` is fp32 on a CPU that
has bf16 products, forced bf16 too) and PyTorch in fp32, fp32 channels-last,
bf16 autocast and bf16 autocast + channels-last (`bench/pytorch_bench.py --no-loader --head
fastai`: ResNet-18 with fastai's head, the network `fastvision bench` times). Each
round runs every configuration once, one after the other, so the machine's drift touches them
alike; the table gives the median over the rounds (and the range). Then the ceilings: one
2048×2048×2048 product on all cores, fastvision's GEMM (`fastvision bench --gemm`) and
PyTorch's `torch.matmul`, in f32 and bf16. With --write the table replaces the section between
the markers in docs/benchmarks.md (`--section NAME`: between `<!-- NAME:begin -->` and
`<!-- NAME:end -->`, one section per CPU measured).

Needs `cargo build` (the CLI at target/debug/fastvision) and PyTorch + torchvision in PYTHON's
environment (default: python3):
    pip install torch torchvision
    PYTHON=/path/to/venv/bin/python python3 bench/cpu_precision.py [--rounds 3] [--write]
        [--section cpu-precision-amd]
"""
import argparse, json, os, re, statistics, subprocess, sys, time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CLI = os.path.join(ROOT, "target", "debug", "fastvision")
SIZES = [(28, 64, 10), (64, 32, 10), (224, 32, 5)]  # size, batch, timed steps
FASTVISION = {"fastvision fp32": ["--precision", "fp32"], "fastvision auto": ["--precision", "auto"]}
PYTORCH = {
    "PyTorch fp32": [],
    "PyTorch fp32 channels-last": ["--channels-last"],
    "PyTorch bf16 autocast": ["--amp", "bf16"],
    "PyTorch bf16 + channels-last": ["--amp", "bf16", "--channels-last"],
}


def last_json(out):
    """The last line of `out` that parses as JSON."""
    for line in reversed(out.splitlines()):
        if line.startswith("{") or line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                pass
    raise RuntimeError("no JSON line in:\n" + out)


def run(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout, p.stderr


def cpu():
    info = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", info).group(1).strip()
    flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split())
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"]
    return model, [f for f in wanted if f in flags], os.cpu_count()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    ap.add_argument("--section", default="cpu-precision", help="the markers' name in docs/benchmarks.md")
    args = ap.parse_args()
    python = os.environ.get("PYTHON", "python3")
    fastvision = dict(FASTVISION)
    probe = ["--size", "28", "--bs", "8", "--steps", "1", "--precision", "auto"]
    auto_line = run([CLI, "bench", *probe])[1].splitlines()[0]
    if "bf16" not in auto_line and "avx512_bf16" in cpu()[1]:
        fastvision["fastvision bf16"] = ["--precision", "bf16"]
    figures = {}  # (size, config) -> [(train, infer)]
    devices = {}
    for r in range(args.rounds):
        for size, bs, steps in SIZES:
            common = ["--size", str(size), "--bs", str(bs), "--steps", str(steps)]
            for name, extra in fastvision.items():
                out, err = run([CLI, "bench", *common, *extra])
                j = last_json(out)
                devices[name] = err.splitlines()[0] if err else ""
                figures.setdefault((size, name), []).append((j["train_img_s"], j["infer_img_s"]))
            for name, extra in PYTORCH.items():
                out, _ = run([python, "bench/pytorch_bench.py", "--no-loader", "--head", "fastai",
                              *common, *extra])
                j = last_json(out)
                figures.setdefault((size, name), []).append((j["train_img_s"], j["infer_img_s"]))
            print(f"round {r + 1}: {size} px done", file=sys.stderr)
    gemm_out, _ = run([CLI, "bench", "--size", "28", "--bs", "8", "--steps", "1", "--gemm", "2048"])
    ours = last_json(gemm_out)
    torch_gemm = subprocess.run([python, "-c", TORCH_GEMM], capture_output=True, text=True, check=True)
    theirs = json.loads(torch_gemm.stdout.strip().splitlines()[-1])

    model, flags, cores = cpu()
    configs = list(fastvision) + list(PYTORCH)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/cpu_precision.py --rounds {args.rounds}` on "
        f"{model} ({cores} cores; {', '.join(flags) or 'no AVX-512'}); images/s, median of "
        f"{args.rounds} rounds run in turn (range in brackets). fastvision's device line: "
        f"`{devices.get('fastvision auto', '')}`.",
        "",
        "| | " + " | ".join(f"{s} px train (bs {b})" for s, b, _ in SIZES) + " | "
        + " | ".join(f"{s} px infer" for s, _, _ in SIZES) + " |",
        "|---|" + "---|" * (2 * len(SIZES)),
    ]
    for name in configs:
        cells = []
        for which in (0, 1):
            for size, _, _ in SIZES:
                v = [f[which] for f in figures[(size, name)]]
                cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| GEMM 2048³, all cores | GFLOP/s |", "|---|---|"]
    lines += [f"| fastvision {p['mul']} | {p['gflops']:.0f} |" for p in ours]
    lines += [f"| PyTorch {k} | {v:.0f} |" for k, v in theirs.items()]
    table = "\n".join(lines)
    print(table)
    if args.write:
        path = os.path.join(ROOT, "docs", "benchmarks.md")
        doc = open(path).read()
        begin, end = f"<!-- {args.section}:begin -->", f"<!-- {args.section}:end -->"
        if begin not in doc:
            raise SystemExit(f"{path} has no {begin} … {end} section")
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        open(path, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")


TORCH_GEMM = """
import json, os, time, torch
torch.set_num_threads(os.cpu_count())
n = 2048
out = {}
for name, dt in [("f32", torch.float32), ("bf16", torch.bfloat16)]:
    a = torch.randn(n, n).to(dt)
    torch.matmul(a, a)
    t = time.perf_counter()
    for _ in range(5):
        torch.matmul(a, a)
    out[name] = 2 * n**3 * 5 / (time.perf_counter() - t) / 1e9
print(json.dumps(out))
"""

if __name__ == "__main__":
    main()
