"""Ensembles, GANs and cleaning, reachable from Python as functions."""

import os
import shutil

import numpy as np
import pytest

import fastvision as fv


def test_an_ensemble_trains_reports_and_loads(dls, tmp_path):
    folder, report = fv.train_ensemble(dls, ["resnet18"], seeds=2, epochs=1, lr=2e-3, path=tmp_path / "ens", show=False)
    assert os.path.isdir(folder) and "mean" in report
    learn = fv.load_learner(folder)
    path, label = dls.valid_items[0]
    name, idx, probs = learn.predict(path)
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-4


def test_trials_train_in_turn_and_come_back_ranked(small, tmp_path):
    # A numpy value is a plain number; a setting one trial leaves is the base's in the table.
    table = fv.train_trials(small, [{"lr": np.float64(3e-3)}, {"lr": 1e-6, "arch": "resnet34"}],
                            epochs=2, path=tmp_path / "trials", show=False)
    rows = table.to_dict("records")
    assert [r["lr"] for r in rows] == [3e-3, 1e-6], rows
    assert [r["arch"] for r in rows] == ["resnet18", "resnet34"], rows
    assert rows[0]["accuracy"] > 0.3 and rows[1]["accuracy"] < rows[0]["accuracy"] - 0.1, rows
    assert all(r["seconds"] > 0 for r in rows)
    with open(os.path.join(rows[1]["path"], "train.json")) as f:
        assert '"resnet34"' in f.read()
    # The trials' folder is an ensemble of them.
    assert fv.load_learner(table.attrs["path"]).predict(small.valid_items[0][0])[2].shape == (10,)


def test_a_mistaken_trial_is_named_and_nothing_is_written(small, tmp_path):
    for trial, says in (({"lrr": 1}, "`lrr`"), ({"valid_pct": 0.5}, "`valid_pct`"), ({"epochs": 0}, "`epochs`"),
                        ({"lr": object()}, "not a JSON value"), ({"lr": float("nan")}, "not a JSON value")):
        with pytest.raises(ValueError, match="trial 2") as e:
            fv.train_trials(small, [{}, trial], path=tmp_path / "t", show=False)
        assert says in str(e.value)
    assert not (tmp_path / "t").exists()


def test_a_gan_trains_and_writes_synthetic_images(demo, tmp_path):
    folder, nets = fv.train_gan(demo, epochs=1, size=16, classes=["bag"], path=tmp_path / "gan", show=False)
    assert len(nets) == 1
    n = fv.gan_sample(folder, 4, tmp_path / "synthetic")
    assert n == 4 and len(os.listdir(tmp_path / "synthetic" / "bag")) == 4


def test_confusing_images_are_judged_out_of_fold(dls):
    flags = fv.find_confusing(dls, epochs=1, folds=2, threshold=0.5, show=False)
    assert flags, "a model after one epoch is confidently wrong about some images"
    assert all(f["given"] != f["predicted"] and f["probability"] > 0.5 for f in flags)
    losses = [f["loss"] for f in flags]
    assert losses == sorted(losses, reverse=True)


def test_the_cleaner_moves_and_undoes(demo, tmp_path):
    root = tmp_path / "data"
    for c in ("bag", "coat"):
        (root / c).mkdir(parents=True)
        for f in sorted(os.listdir(os.path.join(demo, "train", c)))[:3]:
            shutil.copy(os.path.join(demo, "train", c, f), root / c / f)
    victim = root / "bag" / sorted(os.listdir(root / "bag"))[0]
    before = victim.read_bytes()
    c = fv.Cleaner(root)
    c.quarantine(victim)
    assert not victim.exists()
    other = root / "coat" / sorted(os.listdir(root / "coat"))[0]
    c.relabel(other, "bag")
    assert (root / "bag" / other.name).exists()
    assert c.undo_all() == 2
    assert victim.read_bytes() == before and other.exists()
    assert c.undo() is None
