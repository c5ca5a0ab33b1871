"""Ctrl-C (SIGINT, what a notebook's stop button sends) ends a fit after its batch: the engine
stops, `KeyboardInterrupt` is raised, and the learner keeps training afterwards."""

import os
import signal
import threading
import time

import pytest

import fastvision as fv


class StopAfter(fv.Progress):
    """Raises in the progress hook: an error of the progress object also stops the fit."""

    def __init__(self, batches):
        super().__init__(show=False)
        self.batches = batches

    def after_batch(self, iteration, loss):
        if iteration >= self.batches:
            raise ValueError("boom")


class Started(fv.Progress):
    """Sets an event at the fit's first batch."""

    def __init__(self):
        super().__init__(show=False)
        self.event = threading.Event()

    def after_batch(self, iteration, loss):
        self.event.set()


def test_sigint_stops_the_fit_after_its_batch_and_raises(dls):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        learn.fit_one_cycle(20, 1e-3, show=False)  # minutes, were it not stopped
    assert time.monotonic() - t0 < 15, "stopped within a batch or two of the signal"
    assert len(learn.recorder.values) < 20
    learn.fit_one_cycle(1, 1e-3, show=False)  # still trains
    assert learn.validate()[1] > 0.3


def test_an_exception_in_progress_stops_the_fit_and_is_raised(dls):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    with pytest.raises(ValueError, match="boom"):
        learn._engine.fit_one_cycle(3, 1e-3, progress=StopAfter(3))
    assert learn.recorder.values == []
    learn.fit_one_cycle(1, 1e-3, show=False)  # the stale listener is gone: trains to the end
    assert len(learn.recorder.values) == 1


def test_sigint_stops_the_lr_finder(dls):
    learn = fv.vision_learner(dls, "resnet18", show=False)
    before = learn.validate()
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        learn.lr_find(show_plot=False)
    assert learn.validate() == before, "the weights are restored"


def test_a_learner_training_in_another_thread_refuses_other_calls_instead_of_hanging(dls):
    learn = fv.vision_learner(dls, "resnet18", width=16, show=False)
    started = Started()
    t = threading.Thread(target=learn._engine.fit_one_cycle, args=(2, 1e-3), kwargs={"progress": started})
    t.start()
    assert started.event.wait(60)
    with pytest.raises(RuntimeError, match="busy"):
        learn.validate()
    t.join(timeout=120)
    assert not t.is_alive()
    assert learn.validate()[1] > 0.2
