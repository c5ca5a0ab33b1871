"""Cleaning a dataset: images that are probably mislabelled, judged by models that never saw
them, and a journaled, undoable way to quarantine or relabel them (fastai's
``ImageClassifierCleaner``, without the widget)."""

from __future__ import annotations

import json
import os
from typing import List, Optional, Union

from . import _engine
from ._progress import Progress
from .vision import ImageDataLoaders

PathLike = Union[str, "os.PathLike[str]"]


def find_confusing(
    dls: ImageDataLoaders,
    epochs: int = 3,
    folds: int = 2,
    threshold: float = 0.8,
    arch: str = "resnet18",
    lr: float = 1e-3,
    show: bool = True,
) -> List[dict]:
    """The training images of ``dls`` that a model trained on the other ``folds`` − 1 folds
    (``epochs`` each) predicts wrongly with probability above ``threshold``, largest loss first:
    dicts of path, given, predicted, probability, loss."""
    return json.loads(
        _engine.find_confusing(
            dls._engine,
            epochs=epochs,
            folds=folds,
            threshold=threshold,
            arch=arch,
            lr=lr,
            progress=Progress(show),
        )
    )


class Cleaner:
    """Moves images of the dataset folder ``root`` out of training or to another class; every
    move is journaled in the folder and can be undone (``undo``, ``undo_all``)."""

    def __init__(self, root: PathLike) -> None:
        self._engine = _engine.Cleaner(os.fspath(root))

    def quarantine(self, path: PathLike) -> dict:
        """Moves ``path`` into the quarantine folder (out of training); returns the entry."""
        return json.loads(self._engine.quarantine(os.fspath(path)))

    def relabel(self, path: PathLike, label: str) -> dict:
        """Moves ``path`` into the class folder ``label``; returns the entry."""
        return json.loads(self._engine.relabel(os.fspath(path), label))

    def undo(self) -> Optional[dict]:
        """Undoes the last move; returns its entry, or ``None`` when nothing is left."""
        e = self._engine.undo()
        return None if e is None else json.loads(e)

    def undo_all(self) -> int:
        """Undoes every move; returns how many."""
        return self._engine.undo_all()
