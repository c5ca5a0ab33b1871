#!/usr/bin/env python3
"""Writes tests/fixtures/schedules.json from fastai's own code (fastai 2.8, PyPI; script only).

Each schedule is sampled at fixed training positions with fastai's functions, and the LR-finder
suggestions are computed by fastai's `valley`, `steep`, `minimum` and `slide` on a fixed curve.
pip install fastai==2.8.*  then  python3 scripts/schedule_fixture.py
"""
import json, math, os

import numpy as np
import torch
from fastai.callback.schedule import (SchedCos, SchedNo, combine_scheds, combined_cos, minimum,
                                      slide, steep, valley)

pos = [i / 40 for i in range(40)] + [0.999]
out = {"pos": pos}
# fit_one_cycle(lr_max=1e-3): div 25, div_final 1e5, pct_start 0.25, moms (0.95, 0.85, 0.95)
lr_max = 1e-3
out["one_cycle_lr"] = [float(combined_cos(0.25, lr_max / 25, lr_max, lr_max / 1e5)(p)) for p in pos]
out["one_cycle_mom"] = [float(combined_cos(0.25, 0.95, 0.85, 0.95)(p)) for p in pos]
# fine_tune's unfrozen stage: pct_start 0.3, div 5
out["one_cycle_ft_lr"] = [float(combined_cos(0.3, lr_max / 5, lr_max, lr_max / 1e5)(p)) for p in pos]
# fit_sgdr(n_cycles=3, cycle_len=1, cycle_mult=2, lr_max=1e-3), as fastai builds it
n_cycles, cycle_len, cycle_mult = 3, 1, 2
n_epoch = cycle_len * (cycle_mult ** n_cycles - 1) // (cycle_mult - 1)
pcts = [cycle_len * cycle_mult ** i / n_epoch for i in range(n_cycles)]
sgdr = combine_scheds(pcts, [SchedCos(lr_max, 0) for _ in range(n_cycles)])
out["sgdr"] = {"n_epoch": n_epoch, "lr": [float(sgdr(p)) for p in pos]}
# fit_flat_cos(lr=1e-3): pct_start 0.75, div_final 1e5
flat = combine_scheds([0.75, 0.25], [SchedNo(lr_max, lr_max), SchedCos(lr_max, lr_max / 1e5)])
out["flat_cos_lr"] = [float(flat(p)) for p in pos]

# LR finder suggestions on a fixed synthetic curve (exponential LRs, a noisy valley then divergence)
num_it = 100
lrs = [1e-7 * (10 / 1e-7) ** (i / num_it) for i in range(num_it)]
rng = np.random.default_rng(0)
losses = [2.3 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3.5) * 2.5)) + 3.0 * max(0.0, math.log10(lr) + 1.0) ** 2
          + 0.01 * rng.standard_normal() for lr in lrs]
w_lrs, w_losses = torch.tensor(lrs[num_it // 10:-5]), torch.tensor(losses[num_it // 10:-5])
out["lr_find"] = {
    "num_it": num_it, "lrs": lrs, "losses": losses,
    "valley": float(valley(w_lrs, w_losses, num_it)[0]),
    "steep": float(steep(w_lrs, w_losses, num_it)[0]),
    "minimum": float(minimum(w_lrs, w_losses, num_it)[0]),
    "slide": float(slide(w_lrs, w_losses, num_it)[0]),
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "schedules.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)
