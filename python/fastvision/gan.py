"""Wasserstein GANs (Arjovsky et al. 2017, as fastai's ``GANLearner.wgan``) that learn each class
of a dataset, and the synthetic training images they write."""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple, Union

from . import _engine
from ._progress import Progress

PathLike = Union[str, "os.PathLike[str]"]


def train_gan(
    data: Optional[PathLike] = None,
    epochs: int = 10,
    size: int = 32,
    bs: int = 64,
    lr: float = 2e-4,
    n_crit: int = 5,
    classes: Optional[Sequence[str]] = None,
    conditional: bool = False,
    seed: int = 0,
    path: Optional[PathLike] = None,
    show: bool = True,
) -> Tuple[str, List[str]]:
    """Trains one WGAN per class of ``data`` (``None``: the demo; ``classes``: some of them;
    ``conditional``: one net for all), fastai's WGAN recipe (RMSprop at ``lr``, ``n_crit``
    critic steps per generator step, weights clipped), into the new folder ``path`` (default
    ``runs/gan-<time>``). Returns (the folder, its net folders)."""
    return _engine.train_gan(
        None if data is None else os.fspath(data),
        epochs=epochs,
        size=size,
        bs=bs,
        lr=lr,
        n_crit=n_crit,
        classes=list(classes) if classes is not None else None,
        conditional=conditional,
        seed=seed,
        path=None if path is None else os.fspath(path),
        progress=Progress(show),
    )


def gan_sample(run: PathLike, n: int, out: PathLike, seed: int = 0) -> int:
    """Writes ``n`` synthetic images per class from the GAN run ``run`` into class folders under
    ``out`` (what ``ImageDataLoaders``' training can add as extra data); returns how many."""
    return _engine.gan_sample(os.fspath(run), n, os.fspath(out), seed=seed)
