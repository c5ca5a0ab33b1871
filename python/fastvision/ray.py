"""Independent runs on a Ray cluster: the members of an ensemble (folds and bagged samples
included), hyper-parameter trials, or the playbook's main model and its members trained as Ray
tasks, one per run, with resource requests, into one folder that every node can read and write
(a shared path); the ensemble file, its report, the trials' table and the playbook's table are
made exactly as :func:`fastvision.train_ensemble`, :func:`fastvision.train_trials` and
:func:`fastvision.playbook` make them. A worker killed mid-task is retried
by Ray and its member resumes from its last checkpoint; a finished member is never trained
again.

Needs ``pip install ray``; ``fastvision`` must be installed on every node."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import _engine
from .ensemble import Trial, _as_dicts, _plan_ensemble, _plan_trials, _trials_table
from .playbook import _table
from ._progress import Progress
from .vision import ImageDataLoaders

PathLike = Union[str, "os.PathLike[str]"]


def _train_member(path: str, index: int):
    """One member, in a Ray worker: trained, resumed, or left alone when finished."""
    return _engine.train_ensemble_member(path, index)


def _start_playbook(*args, **kwargs):
    """Measures and plans the playbook, in a Ray worker: (its folder, the plan as lines)."""
    return _engine.start_playbook(*args, **kwargs)


def _playbook_main(path: str):
    """The playbook's main model's steps, in a Ray worker."""
    return _engine.playbook_main(path)


def _playbook_beside(path: str, index: int):
    """One step of the playbook beside its main model, in a Ray worker: (accuracy, seconds)."""
    return _engine.playbook_beside(path, index)


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
    folder = os.path.abspath(folder)
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
    folder = os.path.abspath(folder)
    names = [f"trial {i + 1}/{len(dirs)} {t}" for i, t in enumerate(trials)]
    _train_all(folder, names, num_cpus, num_gpus, max_retries, show)
    return _trials_table(folder, trials, dirs, _engine.finish_ensemble(folder))


def playbook(
    data: PathLike,
    budget: str = "10m",
    workers: Optional[int] = None,
    path: Optional[PathLike] = None,
    arch: str = "resnet18",
    size: Optional[int] = None,
    seed: int = 42,
    valid_pct: float = 0.2,
    drop_confusing: bool = False,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    address: Optional[str] = None,
    show: bool = True,
) -> Any:
    """:func:`fastvision.playbook` on a Ray cluster: planned for ``workers`` runs at once
    (default: as many tasks of ``num_cpus`` CPUs and ``num_gpus`` GPUs as the cluster holds),
    the main model's steps as one Ray task and one ensemble member per further worker (at most
    four) as tasks beside it, each as many epochs as the main model, for no time of the budget
    but the ensemble step's. Measuring and planning run as a task too (the pace of a worker);
    the ensemble, the page and the table are made on this machine, exactly as locally. ``data``
    and ``path`` must be on a path every node reads and writes; resources, retries and
    ``address`` as :func:`train_ensemble`. Returns the playbook's table (its folder in
    ``attrs["path"]``); interrupted, :func:`resume_playbook` continues it."""
    _connect(address)
    import ray

    if workers is None:
        workers = _slots(num_cpus, num_gpus)
    options = _options(num_cpus, num_gpus, max_retries)
    start = ray.remote(_start_playbook).options(name="fastvision-plan", **options)
    folder, lines = ray.get(
        start.remote(
            os.path.abspath(os.fspath(data)),
            budget,
            workers,
            os.path.abspath(os.fspath(path)) if path else _engine.new_playbook_folder(),
            arch=arch,
            size=size,
            seed=seed,
            valid_pct=valid_pct,
            drop_confusing=drop_confusing,
        )
    )
    if show:
        print("\n".join(lines))
    return resume_playbook(folder, num_cpus, num_gpus, max_retries, address, show)


def resume_playbook(
    path: PathLike,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    address: Optional[str] = None,
    show: bool = True,
) -> Any:
    """Runs (or continues, after an interruption) the playbook folder ``path`` made by
    :func:`playbook`: the main model's steps and each member as Ray tasks (finished ones kept,
    an interrupted one resumed from its checkpoint), then the ensemble and the table here."""
    _connect(address)
    import ray

    folder = os.path.abspath(os.fspath(path))
    beside = _engine.playbook_beside_steps(folder)
    options = _options(num_cpus, num_gpus, max_retries)
    main = ray.remote(_playbook_main).options(name="fastvision-run-main", **options)
    member = ray.remote(_playbook_beside)
    pending = {main.remote(folder): "main model"}
    for n, i in enumerate(beside):
        task = member.options(name=f"fastvision-run-{i + 1}", **options)
        pending[task.remote(folder, i)] = f"member {n + 1}/{len(beside)}"
    _wait_all(pending, show, f"fastvision.ray.resume_playbook({folder!r}) continues it")
    folder, steps = _engine.resume_playbook(folder, progress=Progress(show))
    return _table(folder, steps)


def _said(result) -> str:
    """A task's outcome in words."""
    if result is None:
        return "done"
    accuracy, seconds = result
    return "skipped" if accuracy is None else f"accuracy {accuracy:.4f} in {seconds:.1f}s"


def _slots(num_cpus: float, num_gpus: float) -> int:
    """How many tasks of ``num_cpus`` CPUs and ``num_gpus`` GPUs the cluster runs at once."""
    import ray

    have = ray.cluster_resources()
    slots = int(have.get("CPU", 1) // max(num_cpus, 1e-9))
    if num_gpus > 0:
        slots = min(slots, int(have.get("GPU", 0) // num_gpus))
    return max(1, slots)


def _options(num_cpus: float, num_gpus: float, max_retries: int) -> dict:
    """A task's resources and retries, its compute threads as many as its CPUs."""
    return dict(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_retries=max_retries,
        retry_exceptions=False,
        runtime_env={"env_vars": {"RAYON_NUM_THREADS": str(max(1, int(num_cpus)))}},
    )


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

    task = ray.remote(_train_member)
    options = _options(num_cpus, num_gpus, max_retries)
    # Named for Ray's dashboard and process titles: which run of the folder each task trains.
    pending = {
        task.options(name=f"fastvision-run-{i + 1}", **options).remote(folder, i): i
        for i in range(len(names))
    }
    _wait_all({ref: names[i] for ref, i in pending.items()}, show, "finished members are never trained again")


def _wait_all(pending: dict, show: bool, resume: str) -> None:
    """Waits for every task of ``pending`` (task → name), telling each one's outcome as it ends;
    then raises the first failure. Ctrl-C cancels the tasks left and says ``resume``."""
    import ray

    failed = None
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as e:  # every task is waited for before the first failure is raised
                failed = failed or e
                continue
            if show:
                print(f"{name}: {_said(result)}")
    except KeyboardInterrupt:
        for task in pending:
            ray.cancel(task, force=True)
        raise KeyboardInterrupt(f"stopped: the folder keeps what is done; {resume}") from None
    if failed is not None:
        raise failed
