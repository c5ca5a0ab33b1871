"""Bad input raises a Python exception carrying the library's message, naming the setting or
file; nothing panics, nothing aborts the interpreter."""

import numpy as np
import pytest

import fastvision as fv


def test_a_missing_folder_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        fv.ImageDataLoaders.from_folder(tmp_path / "nope")


def test_settings_out_of_range_are_value_errors_naming_the_setting(demo):
    with pytest.raises(ValueError, match="valid_pct"):
        fv.ImageDataLoaders.from_folder(demo, valid_pct=1.5)
    with pytest.raises(ValueError, match="aug"):
        fv.ImageDataLoaders.from_folder(demo, aug="sideways")
    with pytest.raises(ValueError, match="size"):
        fv.ImageDataLoaders.from_folder(demo, size=4)


def test_an_unknown_architecture_is_a_value_error(dls):
    with pytest.raises(ValueError, match="resnet9000"):
        fv.vision_learner(dls, "resnet9000", show=False)


def test_bad_images_to_predict(learn, tmp_path):
    with pytest.raises(ValueError, match="H×W×3"):
        learn.predict(np.zeros((8, 8, 2), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        learn.predict(np.zeros((8, 8, 3), dtype=np.float32))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        learn.predict(bad)
    with pytest.raises(FileNotFoundError):
        fv.load_learner(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        learn.predict(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="H×W"):
        learn.predict(np.zeros((2, 8, 8, 3), dtype=np.uint8))


def test_learning_rates_must_be_positive_and_finite(learn):
    for lr in (0.0, -1e-3, float("nan"), float("inf"), slice(1e-2, 1e-3)):
        with pytest.raises(ValueError, match="lr_max"):
            learn.fit_one_cycle(1, lr, show=False)
    with pytest.raises(ValueError, match="lr_mult"):
        learn.fine_tune(1, lr_mult=0, show=False)


def test_a_table_error_names_the_column(penguins):
    with pytest.raises(ValueError, match="no_such_column"):
        fv.tabular_learner(penguins, y="no_such_column", show=False)


def test_a_bad_budget_is_a_value_error(demo, tmp_path):
    with pytest.raises(ValueError, match="budget"):
        fv.playbook(demo, budget="soon", path=tmp_path / "p", show=False)
    assert not (tmp_path / "p").exists()


def test_a_dataframe_error_names_the_dataframe_not_a_temporary_file():
    import pandas as pd

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": ["a", "b", "a", "b", "a"]})
    with pytest.raises(ValueError, match=r"the DataFrame \(as CSV\).*nope|nope.*the DataFrame"):
        fv.tabular_learner(df, y="nope", show=False)
