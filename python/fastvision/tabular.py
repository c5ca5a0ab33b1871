"""Tables in fastai's words: ``tabular_learner`` on a CSV file or a pandas DataFrame, its fits,
predictions and export."""

from __future__ import annotations

import os
import tempfile
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _engine
from ._progress import Progress

PathLike = Union[str, "os.PathLike[str]"]


class TabularLearner:
    """A tabular model (an embedding per categorical column, an MLP) and its data, kept in
    memory between fits (fastai's ``TabularLearner``)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.notes: List[str] = []
        self.rows: List[dict] = []

    @property
    def vocab(self) -> List[str]:
        """The target's classes (empty for regression)."""
        return self._engine.vocab

    @property
    def cat_names(self) -> List[str]:
        """Categorical columns (given, or inferred as fastai's ``cont_cat_split`` does)."""
        return self._engine.columns[0]

    @property
    def cont_names(self) -> List[str]:
        """Continuous columns (given, or inferred)."""
        return self._engine.columns[1]

    def fit_one_cycle(self, n_epoch: int, lr_max: float = 1e-2, show: bool = True) -> None:
        """fastai's ``fit_one_cycle`` (fastai's tabular default peak: 1e-2)."""
        p = Progress(show)
        self._engine.fit_one_cycle(n_epoch, lr_max, progress=p)
        self.rows.extend(p.rows)

    def validate(self) -> List[Optional[float]]:
        """[validation loss, accuracy] for classes, [validation loss, RMSE] for regression."""
        loss, acc, rmse = self._engine.validate()
        return [loss, rmse if self._engine.is_regression else acc]

    def get_preds(self) -> Tuple[np.ndarray, np.ndarray]:
        """(outputs, targets) of the validation rows: class probabilities and class indices,
        or predicted and true values (one column) for regression."""
        return self._engine.get_preds()

    def export(self, path: PathLike) -> None:
        """Writes a run folder at ``path`` (which must not exist): weights and the fitted
        processing, as ``fastvision tabular predict`` loads."""
        self._engine.export(os.fspath(path))


def tabular_learner(
    data: Any,
    y: str,
    cat_names: Optional[Sequence[str]] = None,
    cont_names: Optional[Sequence[str]] = None,
    valid_pct: float = 0.2,
    valid_col: Optional[str] = None,
    bs: int = 64,
    layers: Optional[Sequence[int]] = None,
    seed: int = 42,
    y_range: Optional[Tuple[float, float]] = None,
    regression: Optional[bool] = None,
    show: bool = True,
) -> TabularLearner:
    """A :class:`TabularLearner` predicting column ``y`` of ``data`` (a CSV file's path or a
    pandas DataFrame). Columns not named in ``cat_names``/``cont_names`` are sorted as fastai's
    ``cont_cat_split`` does (integers with at most 20 values are categories). Validation rows:
    a seeded ``valid_pct`` of them, or those where the boolean column ``valid_col`` is true.
    ``layers`` are the hidden widths (fastai: [200, 100]); ``regression`` forces a regression
    (``True``) or classes (``False``), inferred otherwise. Unlike fastai, data and learner are
    made in one call (fastai: ``TabularDataLoaders.from_df`` then ``tabular_learner``). A
    DataFrame is written to a temporary CSV file, read, and removed at once; an exported run
    then names no data file to come back to."""
    keep = None
    if hasattr(data, "to_csv"):  # a pandas DataFrame
        keep = tempfile.TemporaryDirectory(prefix="fastvision-table-")
        path = os.path.realpath(os.path.join(keep.name, "dataframe.csv"))
        data.to_csv(path, index=False)
    else:
        path = os.fspath(data)
    p = Progress(show)
    try:
        engine = _engine.tabular_learner(
            path,
            y,
            cat_names=list(cat_names) if cat_names is not None else None,
            cont_names=list(cont_names) if cont_names is not None else None,
            valid_pct=valid_pct,
            valid_col=valid_col,
            bs=bs,
            layers=list(layers) if layers is not None else None,
            seed=seed,
            y_range=y_range,
            regression=regression,
            progress=p,
        )
    except ValueError as e:
        if keep is None:
            raise
        # A DataFrame's errors name it, not the temporary CSV file it was written to (the
        # file's line N is the DataFrame's row N − 2: the header is line 1).
        raise ValueError(str(e).replace(path, "the DataFrame (as CSV)")) from None
    finally:
        if keep is not None:
            keep.cleanup()  # the rows are in memory now
    learn = TabularLearner(engine)
    learn.notes = p.notes
    return learn
