"""The image API end to end on the demo: data, fits, predictions, interpretation, export."""

import os
import warnings

import numpy as np
import pytest

import fastvision as fv

PNG = b"\x89PNG\r\n\x1a\n"


def test_data_loaders_split_and_show_batch(dls):
    assert dls.c == 10 and dls.vocab[0] == "ankle-boot"
    assert len(dls.train_items) == 3000 and len(dls.valid_items) == 1000
    img = dls.show_batch(8)
    assert img._repr_png_().startswith(PNG)


def test_one_epoch_beats_chance_and_validate_agrees_with_get_preds(learn):
    loss, acc = learn.validate()
    assert acc > 0.5, f"accuracy {acc} after one epoch (chance 0.1)"
    preds, targs = learn.get_preds()
    assert preds.shape == (1000, 10) and preds.dtype == np.float32
    assert targs.shape == (1000,)
    np.testing.assert_allclose(preds.sum(1), 1.0, atol=1e-4)
    assert abs((preds.argmax(1) == targs).mean() - acc) < 1e-9
    row = learn.recorder.values[-1]
    assert row["accuracy"] == pytest.approx(acc)


def test_tta_and_ten_crop(learn):
    _, acc = learn.validate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained with augmentation: TTA has something to replay
        preds, targs = learn.tta()
    assert preds.shape == (1000, 10)
    assert (preds.argmax(1) == targs).mean() > acc - 0.05
    preds, targs = learn.ten_crop()  # crops of 28 px images lose much: above chance only
    np.testing.assert_allclose(preds.sum(1), 1.0, atol=1e-4)
    assert (preds.argmax(1) == targs).mean() > 0.3


def test_tta_says_when_it_cannot_change_a_prediction(demo):
    dls = fv.ImageDataLoaders.from_folder(demo, valid_pct=0.2, size=28, bs=64, seed=42, aug="none")
    plain = fv.vision_learner(dls, "resnet18", show=False)
    with pytest.warns(UserWarning, match="without augmentation"):
        preds, _ = plain.tta(n=2)
    np.testing.assert_allclose(preds, plain.get_preds()[0], atol=1e-5)


def test_predict_a_path_a_pil_image_and_an_array_alike(learn, dls):
    from PIL import Image

    path, label = dls.valid_items[0]
    by_path = learn.predict(path)
    pil = Image.open(path)
    by_pil = learn.predict(pil)
    arr = np.asarray(pil.convert("RGB"))
    by_arr = learn.predict(arr)
    assert by_path[0] == by_pil[0] == by_arr[0] == learn.vocab[by_path[1]]
    np.testing.assert_allclose(by_path[2], by_arr[2], atol=1e-6)
    # A strided view (every pixel of a doubled image, taken back) predicts the same.
    big = np.repeat(np.repeat(arr, 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(learn.predict(big[::2, ::2])[2], by_arr[2], atol=1e-6)
    # Grey H×W and H×W×1 arrays are the RGB image with three equal channels; RGBA drops alpha.
    grey = np.ascontiguousarray(arr[:, :, 0])
    np.testing.assert_allclose(learn.predict(grey)[2], learn.predict(np.stack([grey] * 3, -1))[2], atol=1e-6)
    np.testing.assert_allclose(learn.predict(grey[:, :, None])[2], learn.predict(grey)[2], atol=1e-6)
    rgba = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(learn.predict(rgba)[2], by_arr[2], atol=1e-6)


def test_colour_arrays_in_any_memory_order_predict_alike(learn):
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    plain = learn.predict(colour)[2]
    np.testing.assert_allclose(learn.predict(np.asfortranarray(colour))[2], plain, atol=1e-6)
    flipped = np.ascontiguousarray(colour[:, ::-1])
    np.testing.assert_allclose(learn.predict(flipped[:, ::-1])[2], plain, atol=1e-6)
    swapped = np.ascontiguousarray(colour[:, :, ::-1])  # BGR: a different picture
    assert np.abs(learn.predict(swapped)[2] - plain).max() > 1e-4


def test_interpretation(learn):
    interp = fv.ClassificationInterpretation.from_learner(learn)
    assert interp.plot_confusion_matrix(normalize=True).data.startswith(PNG)
    m = interp.confusion_matrix()
    assert m.sum() == 1000
    _, acc = learn.validate()
    assert np.trace(m) / 1000 == pytest.approx(acc)
    top = interp.most_confused()
    assert top and top[0][2] >= top[-1][2] and top[0][0] != top[0][1]
    losses, idx = interp.top_losses(5)
    assert list(losses) == sorted(losses, reverse=True) and len(idx) == 5
    for img in (interp.plot_confusion_matrix(), interp.plot_top_losses(9), learn.show_results()):
        assert img.data.startswith(PNG)


def test_export_and_load_learner_predict_the_same(learn, dls, tmp_path):
    out = tmp_path / "model.safetensors"
    learn.export(out)
    again = fv.load_learner(out)
    assert again.vocab == learn.vocab
    path = dls.valid_items[3][0]
    np.testing.assert_allclose(again.predict(path)[2], learn.predict(path)[2], atol=1e-5)
    with pytest.raises(FileExistsError):
        learn.export(out)
    with pytest.raises(RuntimeError, match="predicts, it does not train"):
        again.fit_one_cycle(1)
    learn.export_onnx(tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").stat().st_size > 1_000_000


def test_lr_find_suggests_and_leaves_the_model_as_it_was(dls):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    before = learn.validate()
    s = learn.lr_find(show_plot=False)
    assert 1e-5 < s.valley < 1e-1
    assert learn.lr_plot.data.startswith(PNG)
    assert learn.validate() == before


def test_every_fit_continues_from_the_current_weights(dls):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    learn.fit_flat_cos(1, 2e-3, show=False)
    learn.fit_sgdr(1, 1, 2e-3, show=False)
    learn.freeze()
    learn.fit_one_cycle(1, slice(1e-4, 1e-3), show=False)
    learn.unfreeze()
    learn.fine_tune(1, 2e-3, freeze_epochs=1, show=False)
    rows = learn.recorder.values
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[-1]["accuracy"] > rows[0]["accuracy"] - 0.02 and rows[-1]["accuracy"] > 0.5
    assert learn.recorder.plot_loss().data.startswith(PNG)


def test_mixup_and_label_smoothing_train(dls):
    learn = fv.vision_learner(
        dls, "resnet18", width=16, cbs=[fv.MixUp(0.4)], loss_func=fv.LabelSmoothingCrossEntropy(), show=False
    )
    learn.fit_one_cycle(1, 2e-3, show=False)
    assert learn.validate()[1] > 0.3


def test_progress_in_a_terminal_prints_fastais_table(dls, capsys):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    learn.fit_one_cycle(1, 2e-3)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "error_rate", "time"]
    assert out[1].split()[0] == "0"


def test_precision_in_fastais_words(learn, dls):
    """to_fp32 / to_bf16 as fastai's: predictions agree within bf16's rounding; fp16 is for GPUs."""
    before = learn.precision
    assert before in ("fp32", "bf16")
    path, _ = dls.valid_items[0]
    try:
        assert learn.to_fp32().precision == "fp32"
        p32 = learn.predict(path)[2]
        try:
            learn.to_bf16()
        except ValueError as e:
            assert "bf16" in str(e)  # a CPU without native bf16 says so
        else:
            assert learn.precision == "bf16"
            np.testing.assert_allclose(learn.predict(path)[2], p32, atol=0.05)
        with pytest.raises(ValueError, match="fp16"):
            learn.to_fp16()
    finally:
        learn._engine.set_precision(before)
    assert learn.precision == before
