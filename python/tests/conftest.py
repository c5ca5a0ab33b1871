"""Shared fixtures: the bundled demo (Fashion-MNIST, 10 classes, 4 000 images at 28 px), cuts
of it, and a learner trained on it once for the whole session. Tests never download: pretrained
weights are looked up in the cache only (here and in the Ray nodes the tests start)."""

import os
import shutil
import signal

import pytest

import fastvision as fv

os.environ["FASTVISION_OFFLINE"] = "1"

# Ctrl-C as in a terminal or a notebook: Python raises KeyboardInterrupt. A process started in
# the background by a shell without job control (`cmd &` in a script, a CI runner) inherits
# SIGINT ignored, and Python then installs no handler: the interrupt tests would test the shell.
signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def demo():
    return fv.demo_path()


@pytest.fixture(scope="session")
def dls(demo):
    return fv.ImageDataLoaders.from_folder(demo, valid_pct=0.2, size=28, bs=64, seed=42)


@pytest.fixture(scope="session")
def learn(dls):
    """ResNet-18 at 28 px after one epoch of one-cycle at 1e-3 (about 77 % on the demo)."""
    learn = fv.vision_learner(dls, "resnet18", show=False)
    learn.fit_one_cycle(1, 2e-3, show=False)
    return learn


@pytest.fixture(scope="session")
def penguins():
    return os.path.join(REPO, "data", "tabular", "penguins.csv")


@pytest.fixture(scope="session")
def small(demo, tmp_path_factory):
    """The demo cut to 60 training and 20 validation images per class."""
    root = tmp_path_factory.mktemp("small")
    for split, n in (("train", 60), ("valid", 20)):
        for cls in sorted(os.listdir(os.path.join(demo, split))):
            src = os.path.join(demo, split, cls)
            dst = os.path.join(root, split, cls)
            os.makedirs(dst)
            for f in sorted(os.listdir(src))[:n]:
                shutil.copy(os.path.join(src, f), dst)
    return fv.ImageDataLoaders.from_folder(root, size=28, bs=32, seed=1)


@pytest.fixture
def photos(demo, tmp_path):
    """Two classes of 16 training and 6 validation images from the demo."""
    root = tmp_path / "photos"
    for split, n in (("train", 16), ("valid", 6)):
        for c in ("bag", "trouser"):
            (root / split / c).mkdir(parents=True)
            for f in sorted(os.listdir(os.path.join(demo, split, c)))[:n]:
                shutil.copy(os.path.join(demo, split, c, f), root / split / c / f)
    return root
