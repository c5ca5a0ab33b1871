#!/usr/bin/env python3
"""fastvision's tabular learner against fastai's `tabular_learner` and LightGBM, side by side.

Same data, same split (every fifth row is validation, marked by an `is_valid` column), same
recipe for both neural nets (fastai's processing, layers [200, 100], bs 64, fit_one_cycle(5, 1e-2),
Adam with fastai's defaults; regression squashed into 1.2x the training target range), five
seeds each; LightGBM with its defaults (100 trees), categorical columns as pandas categories.
Never run by the tests.
Install: python3 -m venv ~/.venvs/ref && ~/.venvs/ref/bin/pip install fastai lightgbm 'pandas<3'
Run:     cargo build && ~/.venvs/ref/bin/python bench/tabular_reference.py [path/to/fastvision]
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import lightgbm
import numpy as np
import pandas as pd
import torch
import fastai
from fastai.tabular.all import (Categorify, FillMissing, Normalize, TabularPandas, accuracy,
                                cont_cat_split, rmse, set_seed, tabular_learner)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATASETS = [("penguins", "species", False), ("wage", "wage", True)]
SEEDS = [0, 1, 2, 3, 4]


def split_csv(name, tmp):
    df = pd.read_csv(os.path.join(ROOT, "data", "tabular", f"{name}.csv"))
    df["is_valid"] = [i % 5 == 0 for i in range(len(df))]
    path = os.path.join(tmp, f"{name}.csv")
    df.to_csv(path, index=False)
    return df, path


def run_fastvision(binary, path, target, seed, tmp):
    t0 = time.time()
    out = subprocess.run([binary, "tabular", "train", path, "--target", target, "--valid-col", "is_valid",
                          "--seed", str(seed), "--name", f"ref-{os.path.basename(path)}-{seed}"],
                         cwd=tmp, capture_output=True, text=True, check=True).stdout
    secs = time.time() - t0
    m = re.search(r"final: (accuracy|rmse) ([0-9.]+)", out)
    return float(m.group(2)), secs


def run_fastai(df, target, regression, seed):
    set_seed(seed, reproducible=True)
    t0 = time.time()
    train_df = df.drop(columns=["is_valid"])
    cont, cat = cont_cat_split(train_df, max_card=20, dep_var=target)
    valid_idx = list(np.where(df["is_valid"])[0])
    splits = ([i for i in range(len(df)) if i not in set(valid_idx)], valid_idx)
    to = TabularPandas(train_df, procs=[Categorify, FillMissing, Normalize], cat_names=cat, cont_names=cont,
                       y_names=target, splits=splits)
    dls = to.dataloaders(bs=64, num_workers=0)
    kw = {}
    if regression:
        y = to.train.ys.values.astype(float)
        lo, hi = y.min(), y.max()
        kw["y_range"] = (lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    learn = tabular_learner(dls, layers=[200, 100], metrics=rmse if regression else accuracy, **kw)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(5, 1e-2)
        metric = float(learn.validate()[1])
    return metric, time.time() - t0


def run_lightgbm(df, target, regression):
    t0 = time.time()
    X = df.drop(columns=["is_valid", target])
    for c in X.columns:
        if X[c].dtype == object:
            X[c] = X[c].astype("category")
    y = df[target]
    tr, va = ~df["is_valid"], df["is_valid"]
    if regression:
        model = lightgbm.LGBMRegressor(verbose=-1).fit(X[tr], y[tr])
        metric = float(np.sqrt(np.mean((model.predict(X[va]) - y[va]) ** 2)))
    else:
        model = lightgbm.LGBMClassifier(verbose=-1).fit(X[tr], y[tr])
        metric = float(np.mean(model.predict(X[va]) == y[va]))
    return metric, time.time() - t0


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "fastvision"))
    torch.set_num_threads(os.cpu_count())
    print(f"fastai {fastai.__version__}, torch {torch.__version__}, lightgbm {lightgbm.__version__}, "
          f"pandas {pd.__version__}; {os.cpu_count()} cores")
    print(f"{'data':<9} {'metric':<9} {'method':<22} {'mean':>8} {'min':>8} {'max':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, target, regression in DATASETS:
            df, path = split_csv(name, tmp)
            metric = "rmse" if regression else "accuracy"
            rows = []
            fv = [run_fastvision(binary, path, target, s, tmp) for s in SEEDS]
            rows.append(("fastvision (process)", fv))
            fa = [run_fastai(df, target, regression, s) for s in SEEDS]
            rows.append(("fastai (fit, in-proc)", fa))
            rows.append(("LightGBM defaults", [run_lightgbm(df, target, regression)]))
            for method, res in rows:
                m = [r[0] for r in res]
                t = np.mean([r[1] for r in res])
                print(f"{name:<9} {metric:<9} {method:<22} {np.mean(m):>8.4f} {min(m):>8.4f} {max(m):>8.4f} {t:>8.2f}")


if __name__ == "__main__":
    main()
