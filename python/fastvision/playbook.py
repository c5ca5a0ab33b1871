"""The whole playbook within a time budget: plan, train, confusing images, TTA, ensemble."""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

from . import _engine
from ._progress import Progress

PathLike = Union[str, "os.PathLike[str]"]


def playbook(
    data: PathLike,
    budget: str = "10m",
    path: Optional[PathLike] = None,
    arch: str = "resnet18",
    size: Optional[int] = None,
    seed: int = 42,
    valid_pct: float = 0.2,
    drop_confusing: bool = False,
    show: bool = True,
) -> Any:
    """Runs the playbook on ``data`` within ``budget`` ("10m", "90s") into the new folder
    ``path`` (default ``runs/playbook-<time>``) and returns its table — what each step bought
    (a pandas DataFrame when pandas is installed, else a list of dicts); the folder is in the
    table's ``attrs["path"]`` (or ``playbook.last_path``). Interrupted (Ctrl-C), the folder keeps
    what is done: :func:`resume_playbook` continues it."""
    folder, steps = _engine.run_playbook(
        os.fspath(data),
        budget,
        path=None if path is None else os.fspath(path),
        arch=arch,
        size=size,
        seed=seed,
        valid_pct=valid_pct,
        drop_confusing=drop_confusing,
        progress=Progress(show),
    )
    return _table(folder, steps)


def resume_playbook(path: PathLike, show: bool = True) -> Any:
    """Continues the playbook in ``path`` after an interruption (Ctrl-C, a stopped kernel):
    finished steps are kept, an interrupted training resumes from its checkpoint, the rest runs
    within what is left of the budget. Returns its table, as :func:`playbook`."""
    folder, steps = _engine.resume_playbook(os.fspath(path), progress=Progress(show))
    return _table(folder, steps)


def _table(folder: str, steps: str) -> Any:
    """The steps' table: a DataFrame when pandas is installed, else a list of dicts."""
    rows = json.loads(steps)
    playbook.last_path = folder  # type: ignore[attr-defined]
    try:
        import pandas as pd  # type: ignore
    except ImportError:
        return rows
    table = pd.DataFrame(rows)
    table.attrs["path"] = folder
    return table
