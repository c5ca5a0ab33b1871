"""fastvision: train image classifiers with the fastai playbook — in a notebook, in fastai's
words, with a Rust engine inside.

>>> import fastvision as fv
>>> dls = fv.ImageDataLoaders.from_folder(fv.demo_path(), valid_pct=0.2, size=28, bs=64)
>>> learn = fv.vision_learner(dls, "resnet18")
>>> learn.fit_one_cycle(2, 1e-3)
"""

from ._display import Image
from ._engine import __version__, demo_path, device_description
from ._progress import Progress
from .clean import Cleaner, find_confusing
from .ensemble import train_ensemble, train_trials
from .gan import gan_sample, train_gan
from .playbook import playbook, resume_playbook
from .tabular import TabularLearner, tabular_learner
from .vision import (
    ClassificationInterpretation,
    CutMix,
    ImageDataLoaders,
    LabelSmoothingCrossEntropy,
    Learner,
    MixUp,
    Recorder,
    SuggestedLRs,
    load_learner,
    vision_learner,
)

__all__ = [
    "ClassificationInterpretation",
    "Cleaner",
    "CutMix",
    "Image",
    "ImageDataLoaders",
    "LabelSmoothingCrossEntropy",
    "Learner",
    "MixUp",
    "Progress",
    "Recorder",
    "SuggestedLRs",
    "TabularLearner",
    "__version__",
    "demo_path",
    "device_description",
    "find_confusing",
    "gan_sample",
    "load_learner",
    "playbook",
    "resume_playbook",
    "tabular_learner",
    "train_ensemble",
    "train_gan",
    "train_trials",
    "vision_learner",
]
