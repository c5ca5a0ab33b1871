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
    folder, _ = _plan_ensemble(dls, members, seeds, epochs, lr, variation, folds, path)
    return folder, _engine.train_planned(folder, progress=Progress(show))


def _plan_ensemble(
    dls: ImageDataLoaders,
    members: Sequence[str],
    seeds: int,
    epochs: int,
    lr: float,
    variation: str,
    folds: int,
    path: Optional[PathLike],
) -> Tuple[str, int]:
    """The ensemble's folder, created with its plan, and the number of members."""
    return _engine.plan_ensemble(
        dls._engine,
        list(members),
        seeds=seeds,
        epochs=epochs,
        lr=lr,
        variation=variation,
        folds=folds,
        path=None if path is None else os.fspath(path),
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
    images. Returns the trials' table, best first: the settings any trial changes (as each
    run had them), accuracy, validation loss, training seconds and run folder (a pandas
    DataFrame when pandas is installed, else a list of dicts; either way the folder in
    ``attrs["path"]`` and the report of the trials combined as an ensemble in
    ``attrs["report"]``). :func:`fastvision.ray.train_trials` runs each
    trial as a Ray task."""
    trials = _as_dicts(trials)
    folder, dirs = _plan_trials(dls, trials, epochs, lr, path)
    report = _engine.train_planned(folder, progress=Progress(show))
    return _trials_table(folder, trials, dirs, report)


def _as_dicts(trials: Sequence[Trial]) -> List[Dict[str, Any]]:
    """The trials as plain dicts of JSON values (numpy scalars and paths made plain); a
    ``ValueError`` naming the trial for anything else."""

    def plain(value: Any) -> Any:
        if hasattr(value, "item") and callable(value.item):
            return value.item()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(type(value).__name__)

    out = []
    for i, trial in enumerate(trials):
        try:
            out.append(json.loads(json.dumps(dict(trial), default=plain, allow_nan=False)))
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid setting: trial {i + 1}: not a JSON value: {e}") from None
    return out


def _plan_trials(
    dls: ImageDataLoaders,
    trials: List[Dict[str, Any]],
    epochs: int,
    lr: float,
    path: Optional[PathLike],
) -> Tuple[str, List[str]]:
    """The trials' folder, created with their plan, and each trial's run folder in it."""
    return _engine.plan_trials(
        dls._engine,
        json.dumps(trials),
        epochs=epochs,
        lr=lr,
        path=None if path is None else os.fspath(path),
    )


class _Rows(list):
    """The table as a list of dicts when pandas is missing, with a DataFrame's ``attrs``."""

    attrs: Dict[str, Any]


def _setting(config: Dict[str, Any], key: str) -> Any:
    """A setting as a trial gives it, read from a run's ``train.json``."""
    value = config.get(key)
    if key == "lr" and isinstance(value, dict):
        single = value.get("Single")
        return single if single is not None else value.get("Range", value)
    return value


def _trials_table(folder: str, trials: List[Dict[str, Any]], dirs: List[str], report: str) -> Any:
    """One row per trial — the settings any trial changes (as each run had them), validation
    accuracy and loss, training seconds and run folder — best accuracy first."""
    with open(os.path.join(folder, "ensemble_report.json")) as f:
        scores = {m["name"]: m for m in json.load(f)["members"]}
    keys = list(dict.fromkeys(k for t in trials for k in t))
    rows: List[Dict[str, Any]] = []
    for d in dirs:
        run = os.path.join(folder, d)
        with open(os.path.join(run, "log.json")) as f:
            seconds = sum(e["seconds"] for e in json.load(f)["epochs"])
        with open(os.path.join(run, "train.json")) as f:
            config = json.load(f)
        score = scores[d]
        row = {k: _setting(config, k) for k in keys}
        row.update(accuracy=score["accuracy"], valid_loss=score["loss"], seconds=seconds, path=run)
        rows.append(row)
    rows.sort(key=lambda r: -r["accuracy"])
    attrs = {"path": folder, "report": report}
    try:
        import pandas as pd  # type: ignore
    except ImportError:
        table = _Rows(rows)
        table.attrs = attrs
        return table
    table = pd.DataFrame(rows)
    table.attrs.update(attrs)
    return table
