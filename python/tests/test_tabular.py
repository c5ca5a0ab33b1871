"""Tables from a CSV file or a pandas DataFrame, as fastai's tabular_learner."""

import numpy as np
import pandas as pd

import fastvision as fv


def test_penguins_from_a_dataframe_beat_chance(penguins, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the DataFrame's CSV goes
    df = pd.read_csv(penguins)
    learn = fv.tabular_learner(
        df, y="species", cat_names=["island", "sex"], cont_names=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"], show=False
    )
    assert learn.vocab == ["Adelie", "Chinstrap", "Gentoo"]
    assert learn.cat_names == ["island", "sex", "year"]  # year: an integer of 3 values, as fastai
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fastvision-table-")], "CSV removed"
    learn.fit_one_cycle(5, 1e-2, show=False)
    loss, acc = learn.validate()
    assert acc > 0.8, f"accuracy {acc} (chance about 0.44)"
    preds, targs = learn.get_preds()
    assert preds.shape == (len(targs), 3)
    assert abs((preds.argmax(1) == targs).mean() - acc) < 1e-9
    learn.export(tmp_path / "penguins")
    assert (tmp_path / "penguins" / "tabular.json").is_file()


def test_a_csv_path_and_regression(penguins):
    learn = fv.tabular_learner(penguins, y="body_mass_g", cat_names=["species", "island", "sex"], show=False)
    assert learn.vocab == []
    learn.fit_one_cycle(5, 1e-2, show=False)
    loss, rmse = learn.validate()
    preds, targs = learn.get_preds()
    assert preds.shape == (len(targs), 1)
    assert rmse < np.std(targs), f"RMSE {rmse} is no better than the mean ({np.std(targs)})"
