"""Ensembles of diverse models, trained into one folder and combined (``load_learner`` loads
the folder and predicts with all members); hyper-parameter trials, trained the same way and
ranked."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _engine
from ._progress import Progress
from .vision import ImageDataLoaders

PathLike = Union[str, "os.PathLike[str]"]


def train_ensemble(
    dls: ImageDataLoaders,
    members: Sequence[str] = ("resnet18", "resnet34"),
    seeds: int = 1,
    epochs: int = 5,
    lr: float = 1e-3,
    variation: str = "none",
    folds: int = 5,
    path: Optional[PathLike] = None,
    show: bool = True,
) -> Tuple[str, str]:
    """Trains each architecture of ``members`` (``"resnet34@64"`` sets its size) with ``seeds``
    seeds on ``dls``, ``epochs`` of one-cycle at ``lr`` each, the members varied by
    ``variation`` ("none", "bagging": bootstrap samples, "folds": K−1 of ``folds`` folds), into
    the new folder ``path`` (default ``runs/ensemble-<time>``). Returns (the folder, its report:
    every member's and the combinations' accuracy). fastai has no ensemble API; this is the
    command line's ``ensemble train``."""
    return _engine.train_ensemble(
        dls._engine,
        list(members),
        seeds=seeds,
        epochs=epochs,
        lr=lr,
        variation=variation,
        folds=folds,
        path=None if path is None else os.fspath(path),
        progress=Progress(show),
    )


Trial = Mapping[str, Any]


def train_trials(
    dls: ImageDataLoaders,
    trials: Sequence[Trial],
    epochs: int = 5,
    lr: float = 1e-3,
    path: Optional[PathLike] = None,
    show: bool = True,
) -> Any:
    """Trains one run per trial on ``dls`` — each trial a dict of the settings it changes from
    ``epochs`` of one-cycle at ``lr`` (``{"lr": 3e-3}``, ``{"arch": "resnet34", "epochs": 8}``,
    ``{"mixup": 0.4}``, ``{"lr": [1e-4, 1e-2]}`` for a range over the layer groups; any field
    of the run's ``train.json`` but those that decide the validation split) — into the new
    folder ``path`` (default ``runs/trials-<time>``), every run judged on the same validation
    images. Returns the trials' table, best first (a pandas DataFrame when pandas is installed,
    else a list of dicts; the folder in ``attrs["path"]``, the report of the trials combined
    as an ensemble in ``attrs["report"]``). :func:`fastvision.ray.train_trials` runs each
    trial as a Ray task."""
    folder, dirs = plan_trials(dls, trials, epochs, lr, path)
    progress = Progress(show)
    for i in range(len(dirs)):
        if show:
            print(f"trial {i + 1}/{len(dirs)}: {dict(trials[i])}")
        _engine.train_ensemble_member(folder, i, progress=progress)
    return trials_table(folder, trials, dirs, _engine.finish_ensemble(folder))


def plan_trials(
    dls: ImageDataLoaders,
    trials: Sequence[Trial],
    epochs: int,
    lr: float,
    path: Optional[PathLike],
) -> Tuple[str, List[str]]:
    """The trials' folder, created with their plan, and each trial's run folder in it."""
    return _engine.plan_trials(
        dls._engine,
        json.dumps([dict(t) for t in trials]),
        epochs=epochs,
        lr=lr,
        path=None if path is None else os.fspath(path),
    )


def trials_table(folder: str, trials: Sequence[Trial], dirs: List[str], report: str) -> Any:
    """One row per trial — its settings, validation accuracy and loss, training seconds and
    run folder — best accuracy first."""
    with open(os.path.join(folder, "ensemble_report.json")) as f:
        scores = {m["name"]: m for m in json.load(f)["members"]}
    rows: List[Dict[str, Any]] = []
    for trial, d in zip(trials, dirs):
        with open(os.path.join(folder, d, "log.json")) as f:
            seconds = sum(e["seconds"] for e in json.load(f)["epochs"])
        score = scores[d]
        rows.append(
            dict(
                trial,
                accuracy=score["accuracy"],
                valid_loss=score["loss"],
                seconds=seconds,
                path=os.path.join(folder, d),
            )
        )
    rows.sort(key=lambda r: -r["accuracy"])
    try:
        import pandas as pd  # type: ignore
    except ImportError:
        return rows
    table = pd.DataFrame(rows)
    table.attrs["path"] = folder
    table.attrs["report"] = report
    return table
