"""Image classification in fastai's words: ``ImageDataLoaders``, ``vision_learner``, the
``Learner``'s fits, predictions and exports, ``ClassificationInterpretation``, ``load_learner``."""

from __future__ import annotations

import html
import json
import os
import random
from collections import namedtuple
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _engine
from ._display import Image
from ._progress import Progress

PathLike = Union[str, "os.PathLike[str]"]
#: A learning rate: one number, or fastai's ``slice(lo, hi)`` (or a ``(lo, hi)`` pair) spread
#: over the parameter groups.
LR = Union[float, slice, Tuple[float, float]]

#: The LR finder's suggestions (fastai's ``SuggestedLRs``); ``valley`` is fastai's default.
SuggestedLRs = namedtuple("SuggestedLRs", ["valley", "steep", "minimum", "slide"])


def _lr(lr: LR) -> Union[float, Tuple[float, ...]]:
    """A learning rate as the engine takes it: a number, ``(lo, hi)`` for ``slice(lo, hi)``
    (geometric over the parameter groups), ``(hi,)`` for ``slice(hi)`` (hi/10 for every group
    but the head, as fastai)."""
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError("invalid setting: `lr` slice needs a stop (slice(lo, hi) or slice(hi))")
        if lr.start is None:
            return (float(lr.stop),)
        return (float(lr.start), float(lr.stop))
    if isinstance(lr, tuple):
        return (float(lr[0]), float(lr[1]))
    return float(lr)


class MixUp:
    """fastai's ``MixUp`` callback: train on blends of two images and their labels (Zhang et al.
    2018); ``alpha`` shapes the Beta distribution of the blend (fastai: 0.4)."""

    def __init__(self, alpha: float = 0.4) -> None:
        self.alpha = alpha


class CutMix:
    """fastai's ``CutMix`` callback: paste a patch of another image, labels blended by area
    (Yun et al. 2019); ``alpha`` as fastai's (1.0)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha


class LabelSmoothingCrossEntropy:
    """fastai's ``LabelSmoothingCrossEntropy`` loss: targets smoothed by ``eps`` (fastai: 0.1)."""

    def __init__(self, eps: float = 0.1) -> None:
        self.eps = eps


class ImageDataLoaders:
    """A folder of images, split into training and validation sets and batched (fastai's
    ``ImageDataLoaders``)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    @classmethod
    def from_folder(
        cls,
        path: Optional[PathLike] = None,
        valid_pct: Optional[float] = 0.2,
        size: Optional[int] = None,
        bs: Optional[int] = None,
        seed: Optional[int] = 42,
        aug: Optional[str] = None,
        min_scale: Optional[float] = None,
    ) -> "ImageDataLoaders":
        """Reads ``path``: class folders, or ``train/`` and ``valid/`` of class folders (then
        ``valid_pct`` is unused); ``None`` is the bundled demo. ``size`` is the image side
        (default 64, or the data's smallest side if smaller); ``bs`` the batch size (default 64,
        fewer for a smaller dataset); ``aug`` a preset ("none", "light", "default", "heavy"; the
        default depends on the size); ``min_scale`` the smallest crop area of
        RandomResizedCrop. ``seed=None`` draws one (as fastai); ``valid_pct=None`` is 0.2 (used
        only when the folder has no ``valid/``)."""
        return cls(
            _engine.DataLoaders.from_folder(
                None if path is None else os.fspath(path),
                valid_pct=0.2 if valid_pct is None else valid_pct,
                size=size,
                bs=bs,
                seed=random.randrange(2**32) if seed is None else seed,
                aug=aug,
                min_scale=min_scale,
            )
        )

    @property
    def vocab(self) -> List[str]:
        """Class names, sorted: a label indexes this list."""
        return self._engine.vocab

    @property
    def c(self) -> int:
        """Number of classes."""
        return len(self._engine.vocab)

    @property
    def path(self) -> str:
        """The dataset folder."""
        return self._engine.path

    @property
    def train_items(self) -> List[Tuple[str, int]]:
        """The training images as (file, label) pairs."""
        return self._engine.items("train")

    @property
    def valid_items(self) -> List[Tuple[str, int]]:
        """The validation images as (file, label) pairs."""
        return self._engine.items("valid")

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        """Files left out of the dataset, with the reason."""
        return self._engine.skipped()

    def show_batch(self, max_n: int = 9) -> Image:
        """A grid of ``max_n`` augmented training images with their classes (shown at once in
        a notebook; returned too)."""
        return _show(Image(self._engine.show_batch(max_n), "show_batch"))

    def __repr__(self) -> str:
        return (
            f"ImageDataLoaders({self.path!r}: {len(self.train_items)} train, "
            f"{len(self.valid_items)} valid, {self.c} classes)"
        )


class Recorder:
    """What training recorded: one row of metrics per epoch (fastai's ``learn.recorder``)."""

    def __init__(self, learn: "Learner") -> None:
        self._learn = learn

    @property
    def values(self) -> List[dict]:
        """Every epoch's metrics so far (train_loss, valid_loss, accuracy, error_rate, seconds…)."""
        return json.loads(self._learn._engine.recorder_json())

    def plot_loss(self) -> Image:
        """Training and validation losses over the iterations."""
        return _show(Image(self._learn._engine.plot_loss(), "losses"))


class Learner:
    """An image classifier and its data (fastai's ``Learner``), built by :func:`vision_learner`
    (trains) or :func:`load_learner` (predicts). Fits continue from the current weights.

    Every fit shows progress (an HTML bar and table in a notebook, text in a terminal; pass
    ``show=False`` for none). Ctrl-C or a notebook's stop button ends it after the current
    batch and raises ``KeyboardInterrupt``; the weights stay as they were after that batch.
    """

    def __init__(self, engine: Any, dls: Optional[ImageDataLoaders] = None) -> None:
        self._engine = engine
        self.dls = dls
        self.recorder = Recorder(self)
        #: The notes of the last call (a batch size chosen, weights loaded…).
        self.notes: List[str] = []

    @property
    def precision(self) -> str:
        """The precision of the convolutions (and, in bf16 on the CPU, the linear layers):
        ``bf16`` by default on a CPU with AMX tiles or on AMD's AVX-512 BF16 (there it is
        faster than f32), ``fp32`` elsewhere; :meth:`to_bf16`, :meth:`to_fp32`, :meth:`to_fp16` change it."""
        return self._engine.precision()

    def _progress(self, show: bool) -> Progress:
        p = Progress(show)
        self.notes = p.notes
        return p

    @property
    def vocab(self) -> List[str]:
        """Class names."""
        return self._engine.vocab

    def fit_one_cycle(self, n_epoch: int, lr_max: LR = 1e-3, show: bool = True) -> None:
        """fastai's ``fit_one_cycle``: ``n_epoch`` epochs of the one-cycle schedule peaking at
        ``lr_max``."""
        self._engine.fit_one_cycle(n_epoch, _lr(lr_max), progress=self._progress(show))

    def fit_flat_cos(self, n_epoch: int, lr: LR = 1e-3, show: bool = True) -> None:
        """fastai's ``fit_flat_cos``: flat at ``lr`` for 75 % of the epochs, then cosine to 0."""
        self._engine.fit_flat_cos(n_epoch, _lr(lr), progress=self._progress(show))

    def fit_sgdr(
        self, n_cycles: int, cycle_len: int, lr_max: LR = 1e-3, cycle_mult: int = 2, show: bool = True
    ) -> None:
        """fastai's ``fit_sgdr``: ``n_cycles`` cosine cycles restarting at ``lr_max``, the first
        ``cycle_len`` epochs long, each ``cycle_mult`` times the previous."""
        self._engine.fit_sgdr(
            n_cycles, cycle_len, _lr(lr_max), cycle_mult=cycle_mult, progress=self._progress(show)
        )

    def fine_tune(
        self,
        epochs: int,
        base_lr: float = 2e-3,
        freeze_epochs: int = 1,
        lr_mult: float = 100,
        show: bool = True,
    ) -> None:
        """fastai's ``fine_tune``: ``freeze_epochs`` of the head alone, then ``epochs`` of the
        whole model with discriminative learning rates ``slice(base_lr/2/lr_mult, base_lr/2)``."""
        self._engine.fine_tune(
            epochs, base_lr, freeze_epochs=freeze_epochs, lr_mult=lr_mult, progress=self._progress(show)
        )

    def freeze(self) -> None:
        """Trains only the head (and BatchNorm) from now on."""
        self._engine.freeze()

    def unfreeze(self) -> None:
        """Trains every parameter from now on."""
        self._engine.unfreeze()

    def to_bf16(self) -> "Learner":
        """Mixed precision as fastai's ``to_bf16``: the convolutions and linear layers multiply in
        bf16 (f32 sums, f32 weights); on the CPU where it has AVX-512 BF16 or AMX tiles, else
        ValueError. With AMX tiles or on AMD's AVX-512 BF16 this is already the default
        (``auto``)."""
        self._engine.set_precision("bf16")
        return self

    def to_fp16(self) -> "Learner":
        """fastai's ``to_fp16``: f16 convolutions with loss scaling, on a GPU (ValueError on
        the CPU)."""
        self._engine.set_precision("fp16")
        return self

    def to_fp32(self) -> "Learner":
        """Everything in f32 from now on (fastai's default)."""
        self._engine.set_precision("fp32")
        return self

    def lr_find(self, show_plot: bool = True) -> SuggestedLRs:
        """The LR range test (fastai's ``lr_find``): returns the suggestions and, with
        ``show_plot``, displays the loss-against-LR plot (kept in :attr:`lr_plot`). The
        weights and optimizer state are restored afterwards."""
        suggestions, png = self._engine.lr_find(progress=self._progress(False))
        self.lr_plot = Image(png, "lr_find")
        if show_plot:
            _show(self.lr_plot)
        s = json.loads(suggestions)
        return SuggestedLRs(s["valley"], s["steep"], s["minimum"], s["slide"])

    def validate(self) -> List[Optional[float]]:
        """[validation loss, accuracy] (fastai's ``validate``)."""
        return list(self._engine.validate())

    def get_preds(self) -> Tuple[np.ndarray, np.ndarray]:
        """(probabilities, targets) of the validation set as numpy arrays."""
        return self._engine.get_preds("plain")

    def tta(self, n: int = 4, beta: float = 0.25) -> Tuple[np.ndarray, np.ndarray]:
        """fastai's ``tta``: the plain prediction blended (weight ``beta``) with the mean of
        ``n`` passes under the training augmentation; (probabilities, targets)."""
        return self._engine.get_preds("tta", n=n, beta=beta)

    def ten_crop(self) -> Tuple[np.ndarray, np.ndarray]:
        """Ten-crop prediction (four corners, the centre, and their mirrors, averaged)."""
        return self._engine.get_preds("ten_crop")

    def predict(self, item: Any) -> Tuple[str, int, np.ndarray]:
        """(label, index, probabilities) of one image: a file path, a PIL image, or a ``uint8``
        numpy array — H×W×3 (RGB), H×W×4 (RGBA) or H×W / H×W×1 (grey)."""
        if isinstance(item, (str, os.PathLike)):
            return self._engine.predict_path(os.fspath(item))
        if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
            item = np.asarray(item.convert("RGB"))
        if isinstance(item, np.ndarray):
            if item.dtype != np.uint8:
                raise TypeError(f"an image array must be uint8, not {item.dtype}")
            # H×W, H×W×1, H×W×3 or H×W×4 (alpha ignored), any strides: copied once, by the engine.
            return self._engine.predict_array(item)
        raise TypeError(f"cannot predict a {type(item).__name__}: give a path, a PIL image or an array")

    def show_results(self, max_n: int = 9) -> Image:
        """A grid of ``max_n`` validation images with actual and predicted classes."""
        return _show(Image(self._engine.show_results(max_n), "show_results"))

    def export(self, fname: PathLike = "export.safetensors") -> None:
        """Writes the model as one self-contained safetensors file (weights, classes,
        normalisation, size) that :func:`load_learner` and ``fastvision predict`` load. An
        existing file is never replaced."""
        self._engine.export(os.fspath(fname))

    def export_onnx(self, fname: PathLike = "export.onnx") -> None:
        """Writes the model as an ONNX file (for onnxruntime); never replaces a file."""
        self._engine.export_onnx(os.fspath(fname))

    def __repr__(self) -> str:
        kind = "trainable" if self._engine.trainable else "loaded"
        return f"<fastvision.Learner ({kind}), {len(self.vocab)} classes>"


def _show(img: Image) -> Image:
    """Displays ``img`` now when in IPython, as fastai's plots show where they are called (so
    two in one cell both show), and returns it; it then does not show a second time as the
    cell's value."""
    try:
        from IPython import get_ipython  # type: ignore
        from IPython.display import display  # type: ignore
    except ImportError:
        return img
    if get_ipython() is not None:
        display(img)
        img._shown = True
    return img


def vision_learner(
    dls: ImageDataLoaders,
    arch: str = "resnet18",
    pretrained: Union[None, bool, str] = None,
    cbs: Optional[Sequence[Any]] = None,
    loss_func: Optional[LabelSmoothingCrossEntropy] = None,
    metrics: Any = None,
    width: int = 64,
    show: bool = True,
) -> Learner:
    """A :class:`Learner` for ``dls`` with body ``arch`` ("resnet18", "resnet34", "resnet50",
    "efficientnet_lite0", "inception_v3"). ``pretrained``: a weights file or a known name
    (``fastvision weights list``), ``True`` the known weights named as ``arch`` (downloaded once
    into the cache), ``False``/``None`` a fresh body — unlike fastai the default, since a small
    dataset at 28–64 px trains as well from scratch. ``cbs``: :class:`MixUp` and/or
    :class:`CutMix`; ``loss_func``: :class:`LabelSmoothingCrossEntropy`. ``metrics`` is
    accepted for fastai's code and unused: every epoch reports validation loss, accuracy and
    error rate."""
    if pretrained is True:
        pretrained = arch
    elif pretrained is False:
        pretrained = None
    mixup = cutmix = None
    for cb in cbs or []:
        if isinstance(cb, MixUp):
            mixup = cb.alpha
        elif isinstance(cb, CutMix):
            cutmix = cb.alpha
        else:
            raise TypeError(f"unsupported callback {type(cb).__name__}: MixUp or CutMix")
    progress = Progress(show)
    engine = _engine.vision_learner(
        dls._engine,
        arch=arch,
        pretrained=pretrained,
        mixup=mixup,
        cutmix=cutmix,
        label_smoothing=None if loss_func is None else loss_func.eps,
        width=width,
        progress=progress,
    )
    learn = Learner(engine, dls)
    learn.notes = progress.notes
    return learn


def load_learner(fname: PathLike) -> Learner:
    """A predict-only :class:`Learner` from an exported file (``learn.export``) or a run folder."""
    return Learner(_engine.load_learner(os.fspath(fname)))


class ClassificationInterpretation:
    """Per-image losses on the validation set (fastai's ``ClassificationInterpretation``): taken
    once, when made; its tables and plots describe the model as it was then."""

    def __init__(self, learn: Learner) -> None:
        self.learn = learn
        data = json.loads(learn._engine.interpretation_json())
        self.vocab: List[str] = data["vocab"]
        self.images: List[dict] = data["images"]
        #: Loss of every validation image, in the validation set's order.
        self.losses = np.array([im["loss"] for im in self.images], dtype=np.float32)

    @classmethod
    def from_learner(cls, learn: Learner) -> "ClassificationInterpretation":
        """The interpretation of ``learn`` on its validation set."""
        return cls(learn)

    def confusion_matrix(self) -> np.ndarray:
        """Counts of (actual, predicted) pairs, rows actual."""
        k = len(self.vocab)
        m = np.zeros((k, k), dtype=np.int64)
        for im in self.images:
            m[im["actual"], im["predicted"]] += 1
        return m

    def top_losses(self, k: int = 9) -> Tuple[np.ndarray, np.ndarray]:
        """(losses, indices) of the ``k`` highest-loss validation images."""
        idx = np.argsort(-self.losses, kind="stable")[:k]
        return self.losses[idx], idx

    def most_confused(self, min_val: int = 1) -> List[Tuple[str, str, int]]:
        """(actual, predicted, count) of the most frequent mistakes, at least ``min_val``."""
        m = self.confusion_matrix()
        pairs = [
            (self.vocab[a], self.vocab[p], int(m[a, p]))
            for a in range(len(self.vocab))
            for p in range(len(self.vocab))
            if a != p and m[a, p] >= min_val
        ]
        return sorted(pairs, key=lambda t: -t[2])

    def plot_confusion_matrix(self, normalize: bool = False) -> Image:
        """The confusion matrix as a picture (rows actual; ``normalize``: fractions of each row)."""
        m = self.confusion_matrix().tolist()
        return _show(Image(_engine.plot_confusion_matrix(m, self.vocab, normalize), "confusion"))

    def plot_top_losses(self, k: int = 9) -> Image:
        """The ``k`` highest-loss images, captioned predicted/actual and loss/probability."""
        _, idx = self.top_losses(k)
        images = json.dumps([self.images[i] for i in idx])
        return _show(Image(_engine.plot_top_losses(images, self.vocab), "top_losses"))
