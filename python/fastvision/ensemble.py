"""Ensembles of diverse models, trained into one folder and combined (``load_learner`` loads
the folder and predicts with all members)."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple, Union

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
