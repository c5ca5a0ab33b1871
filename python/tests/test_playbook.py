"""The playbook from Python: its table, and a stopped playbook resumed."""

import os
import signal
import threading

import pytest

import fastvision as fv


def test_a_stopped_playbook_resumes_and_returns_its_table(photos, tmp_path):
    folder = tmp_path / "play"
    timer = threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # 30 s: with the other pytest worker on the same two cores, the measuring took 11
            # of a 20 s budget and left the main model 3 steps of SGD: chance accuracy.
            fv.playbook(photos, budget="30s", path=folder, show=False)
    finally:
        timer.cancel()
    assert folder.is_dir(), "the folder is kept"
    table = fv.resume_playbook(folder, show=False)
    assert table.attrs["path"] == str(folder)
    assert table["name"].iloc[0] == "measure"
    accuracy = table["accuracy"].dropna()
    assert len(accuracy) >= 1 and accuracy.max() > 0.5
