"""Independent runs on a Ray cluster: the members of an ensemble (folds and bagged samples
included) or hyper-parameter trials trained as Ray tasks, one per run, with resource requests,
into one folder that every node can read and write (a shared path); the ensemble file, its
report and the trials' table are made exactly as :func:`fastvision.train_ensemble` and
:func:`fastvision.train_trials` make them. A worker killed mid-task is retried
by Ray and its member resumes from its last checkpoint; a finished member is never trained
again.

Needs ``pip install ray``; ``fastvision`` must be installed on every node."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import _engine
from .ensemble import Trial, _as_dicts, _plan_ensemble, _plan_trials, _trials_table
from .vision import ImageDataLoaders

PathLike = Union[str, "os.PathLike[str]"]


def _train_member(path: str, index: int):
    """One member, in a Ray worker: trained, resumed, or left alone when finished."""
    return _engine.train_ensemble_member(path, index)


def train_ensemble(
    dls: ImageDataLoaders,
    members: Sequence[str] = ("resnet18", "resnet34"),
    seeds: int = 1,
    epochs: int = 5,
    lr: float = 1e-3,
    variation: str = "none",
    folds: int = 5,
    path: Optional[PathLike] = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    address: Optional[str] = None,
    show: bool = True,
) -> Tuple[str, str]:
    """:func:`fastvision.train_ensemble` with every member a Ray task asking for ``num_cpus``
    CPUs and ``num_gpus`` GPUs (each member's compute threads: ``num_cpus``), retried up to
    ``max_retries`` times when its worker dies. ``path`` (default ``runs/ensemble-<time>``)
    and the data must be on a path every node reads and writes. Connects to the cluster at
    ``address`` (``"auto"``: the one this machine belongs to) unless Ray is already
    initialised; with neither, Ray starts a local one. Returns (the folder, its report)."""
    _connect(address)
    folder, n = _plan_ensemble(dls, members, seeds, epochs, lr, variation, folds, path)
    names = [f"member {i + 1}/{n}" for i in range(n)]
    _train_all(folder, names, num_cpus, num_gpus, max_retries, show)
    return folder, _engine.finish_ensemble(folder)


def train_trials(
    dls: ImageDataLoaders,
    trials: Sequence[Trial],
    epochs: int = 5,
    lr: float = 1e-3,
    path: Optional[PathLike] = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    address: Optional[str] = None,
    show: bool = True,
) -> Any:
    """:func:`fastvision.train_trials` with every trial a Ray task, as :func:`train_ensemble`
    runs members (resources, retries, the shared ``path``, ``address``). Returns the same
    table, best first."""
    trials = _as_dicts(trials)
    _connect(address)
    folder, dirs = _plan_trials(dls, trials, epochs, lr, path)
    names = [f"trial {i + 1}/{len(dirs)} {t}" for i, t in enumerate(trials)]
    _train_all(folder, names, num_cpus, num_gpus, max_retries, show)
    return _trials_table(folder, trials, dirs, _engine.finish_ensemble(folder))


def _connect(address: Optional[str]) -> None:
    """Joins the cluster at ``address`` unless Ray is already initialised."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, logging_level="warning", log_to_driver=False)


def _train_all(
    folder: str,
    names: List[str],
    num_cpus: float,
    num_gpus: float,
    max_retries: int,
    show: bool,
) -> None:
    """Every member of the folder as a Ray task, waited for; each one's outcome told as it ends."""
    import ray

    threads = str(max(1, int(num_cpus)))
    task = ray.remote(_train_member)
    options = dict(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_retries=max_retries,
        retry_exceptions=False,
        runtime_env={"env_vars": {"RAYON_NUM_THREADS": threads}},
    )
    # Named for Ray's dashboard and process titles: which run of the folder each task trains.
    pending = {
        task.options(name=f"fastvision-run-{i + 1}", **options).remote(folder, i): i
        for i in range(len(names))
    }
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done[0])
        result = ray.get(done[0])
        if show:
            said = "already trained" if result is None else f"accuracy {result[0]:.4f} in {result[1]:.1f}s"
            print(f"{names[index]}: {said}")
