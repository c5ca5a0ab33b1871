"""ONNX exports run in onnxruntime and give the engine's probabilities: ResNet-18, ResNet-50
and EfficientNet-Lite0 after a few training steps, at two batch sizes through one session."""

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import fastvision as fv

SIZE = 40


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Three classes of 40 px pictures (a bar, a square, noise), 16 training and 4 validation
    images each: at the model's own size, so preparing an image is only normalising it."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("valid", 4)):
        for k, name in enumerate(("bar", "square", "noise")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
                if k == 0:
                    img[:, 15:25] = 230
                elif k == 1:
                    img[10:30, 10:30] = (200, 80, 40)
                else:
                    img = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / name / f"{i}.png")
    return root


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("arch,width", [("resnet18", 16), ("resnet50", 8), ("efficientnet_lite0", 64)])
def test_the_onnx_file_gives_the_engines_probabilities(shapes, tmp_path, arch, width):
    dls = fv.ImageDataLoaders.from_folder(shapes, size=SIZE, bs=8, aug="none")
    learn = fv.vision_learner(dls, arch, width=width, show=False)
    learn.fit_one_cycle(1, 1e-3, show=False)  # six steps: BatchNorm statistics of their own
    path = tmp_path / "model.onnx"
    learn.export_onnx(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bundle = json.loads(session.get_modelmeta().custom_metadata_map["fastvision.bundle"])
    mean = np.array(bundle["normalize"]["mean"], dtype=np.float32)
    std = np.array(bundle["normalize"]["std"], dtype=np.float32)
    images = [np.asarray(Image.open(p).convert("RGB")) for p, _ in dls.valid_items[:3]]
    # onnxruntime computes in f32: so do we here (on a CPU with AMX the default is bf16).
    ours = np.stack([learn.to_fp32().predict(img)[2] for img in images])
    x = np.stack([((img / 255.0 - mean) / std).transpose(2, 0, 1) for img in images]).astype(np.float32)
    for batch in (2, 3):  # the batch dimension is dynamic
        (logits,) = session.run(None, {"images": x[:batch]})
        np.testing.assert_allclose(softmax(logits), ours[:batch], atol=1e-4)
