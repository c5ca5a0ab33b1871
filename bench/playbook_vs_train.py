#!/usr/bin/env python3
"""The playbook against one plain `train` of the same wall time, at several budgets.

For each dataset and budget: `fastvision playbook DATA --budget B` (timed), its final model
evaluated on every validation image (`evaluate`, with TTA when the playbook found that it helps);
then one `fastvision train DATA --epochs E` whose E fills the playbook's wall time at the pace
measured in the playbook's own main-model run (seconds per epoch at the final size, plus that
run's fixed cost), evaluated the same way without TTA. Prints the table; with --write, puts it
between the `<!-- playbook-vs-train:begin/end -->` markers of docs/benchmarks.md.

Run it alone on the machine (it measures time):
  cargo build --release
  python3 bench/playbook_vs_train.py --bin target/release/fastvision \
      --data demo=data/demo --data fmnist8k=/tmp/fmnist8k --budgets 4 10 [--write]
(`python3 scripts/make_demo.py --out /tmp/fmnist8k --train-per-class 800 --valid-per-class 200
--seed 1` writes an 8 000/2 000-image Fashion-MNIST sample other than the demo's;
`--full /tmp/fmnist` the whole set.)
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- playbook-vs-train:begin -->", "<!-- playbook-vs-train:end -->"


def run(cmd, cwd):
    """Runs `cmd` in `cwd`; returns (seconds, stdout + stderr), failing loudly."""
    t = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, p.stdout + p.stderr


def accuracy(bin_, run_dir, data, cwd, tta):
    """Accuracy of `run_dir` on every validation image of `data`."""
    _, out = run([bin_, "evaluate", run_dir, data] + (["--tta"] if tta else []), cwd)
    m = re.search(r"images, accuracy ([0-9.]+)", out)
    if not m:
        sys.exit(f"no accuracy in:\n{out}")
    return float(m.group(1))


def pace(pb_dir):
    """(seconds per whole epoch at the final size, fixed seconds of a run, the main model's length
    in epochs, the playbook's state) of the playbook's main model."""
    state = json.load(open(os.path.join(pb_dir, "playbook.json")))
    main = next(r for r in state["results"] if r["name"] == "train")
    log = json.load(open(os.path.join(pb_dir, main["run"], "log.json")))
    settings = json.load(open(os.path.join(pb_dir, main["run"], "train.json")))
    part = settings.get("last_epoch_pct")
    epochs = log["epochs"]
    whole = epochs[:-1] if part else epochs
    final = max(e["size"] for e in epochs)
    at_final = [e["seconds"] for e in (whole or epochs) if e["size"] == final]
    per_epoch = sorted(at_final)[len(at_final) // 2]
    fixed = max(main["seconds"] - sum(e["seconds"] for e in epochs), 0.0)
    length = len(epochs) - 1 + (part or 1.0)
    return per_epoch, fixed, length, state


def one(bin_, name, data, minutes, work):
    data = os.path.abspath(data)
    tag = f"{name}-{minutes:g}m"
    pb = os.path.join("runs", f"pb-{tag}")
    pb_s, _ = run([bin_, "playbook", data, "--budget", f"{minutes:g}m", "--name", f"pb-{tag}"], work)
    per_epoch, fixed, length, state = pace(os.path.join(work, pb))
    members = sum(1 for r in state["plan"]["steps"] if "Member" in r["step"])
    pb_acc = accuracy(bin_, pb, data, work, state["tta_helped"])
    epochs = max(1, int((pb_s - fixed) / per_epoch))
    tr_s, _ = run([bin_, "train", data, "--epochs", str(epochs), "--name", f"tr-{tag}"], work)
    tr_acc = accuracy(bin_, os.path.join("runs", f"tr-{tag}"), data, work, False)
    return {
        "data": name, "budget_min": minutes, "playbook_s": pb_s, "playbook_acc": pb_acc,
        "main_epochs": length, "members": members, "tta": state["tta_helped"],
        "train_epochs": epochs, "train_s": tr_s, "train_acc": tr_acc,
    }


def table(rows):
    lines = [
        "| data | budget | playbook: plan | wall | accuracy | one `train` | wall | accuracy | playbook − train |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        plan = f"main {r['main_epochs']:g} ep" + (f" + {r['members']} members" if r["members"] else "")
        plan += " + TTA" if r["tta"] else ""
        lines.append(
            f"| {r['data']} | {r['budget_min']:g} min | {plan} | {r['playbook_s']:.0f} s | "
            f"{100 * r['playbook_acc']:.2f} % | {r['train_epochs']} epochs | {r['train_s']:.0f} s | "
            f"{100 * r['train_acc']:.2f} % | {100 * (r['playbook_acc'] - r['train_acc']):+.2f} |"
        )
    cpu = platform.processor() or platform.machine()
    lines.append("")
    lines.append(f"({os.cpu_count()} cores, {cpu}; `python3 bench/playbook_vs_train.py`.)")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "fastvision"))
    ap.add_argument("--data", action="append", required=True,
                    help="NAME=FOLDER, or NAME=FOLDER@MIN,MIN for budgets of its own")
    ap.add_argument("--budgets", nargs="+", type=float, default=[4, 10, 20], help="minutes")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    bin_ = os.path.abspath(args.bin)
    rows = []
    work = tempfile.mkdtemp(prefix="pb-vs-train-")
    try:
        for spec in args.data:
            name, folder = spec.split("=", 1)
            budgets = args.budgets
            if "@" in folder:
                folder, minutes = folder.split("@", 1)
                budgets = [float(m) for m in minutes.split(",")]
            for minutes in budgets:
                r = one(bin_, name, folder, minutes, work)
                print(json.dumps(r), flush=True)
                rows.append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = table(rows)
    print(text)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    if args.write:
        path = os.path.join(ROOT, "docs", "benchmarks.md")
        doc = open(path).read()
        a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        open(path, "w").write(doc[:a] + "\n" + text + "\n" + doc[b:])


if __name__ == "__main__":
    main()
