"""Training in a background thread, with a progress estimate, saved into the model store when done.

Fitting the classifier takes from seconds (a few records) to minutes (all of MIT-BIH) in one
scikit-learn call that reports nothing while it runs. The app must keep drawing meanwhile, so the
fit runs in a thread owned by a :class:`TrainingRun`; callers poll :meth:`TrainingRun.progress`,
whose fraction is the elapsed time over an estimate from the training size and the epoch budget.
The thread never calls Streamlit.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hbcore.background import BackgroundTask
from hbcore.data.dataset import BeatSet
from hbcore.model.store import SavedModel, save_model

if TYPE_CHECKING:
    from hbcore.model.training import ModelParams

# Fit cost of one weight for one training window and one epoch (a forward and a backward pass),
# measured on the 2-core reference machine: the intra-patient defaults ((256, 128), 20 epochs,
# 87,556 beats) took 44 to 57 s, the demo's quick model ((128,), 4 epochs, 51,000 DS1 beats) ~1 s.
# Slower under load: only the progress bar uses it, and the bar never claims more than ESTIMATE_CAP
# before the fit has ended. A run that has measured one fit on this machine scales that instead
# (:func:`scaled_seconds`).
SECONDS_PER_WEIGHT_EPOCH = 3.7e-10
FIXED_SECONDS = 0.5  # features, scaling, evaluation and saving: paid once per training
ESTIMATE_CAP = 0.95


def beats_key(beats: BeatSet) -> str:
    """The ``data_key`` models record: the beats' digest (:attr:`BeatSet.digest`), equal for equal data."""
    return beats.digest


def fit_work(n_train: int, params: ModelParams) -> float:
    """Weight updates of a fit, in units of one weight for one window and epoch.

    Shifted copies multiply the windows; the network's size is its weights (the 187 samples and
    3 RR values in, five classes out).
    """
    sizes = (190, *params.hidden_layers, 5)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    return n_train * (1 + len(params.shifts)) * (params.max_iter + params.final_iter) * weights


def expected_seconds(n_train: int, params: ModelParams) -> float:
    """A rough duration of training on ``n_train`` beats with ``params`` on the reference machine."""
    return FIXED_SECONDS + fit_work(n_train, params) * SECONDS_PER_WEIGHT_EPOCH


def scaled_seconds(measured_s: float, measured: ModelParams, params: ModelParams, n_train: int) -> float:
    """The duration of a fit with ``params``, from one with ``measured`` on the same beats that took ``measured_s``.

    Calibrated on this machine now, so it holds under the current load better than the reference figure.
    """
    fit_s = max(measured_s - FIXED_SECONDS, 0.05)
    return FIXED_SECONDS + fit_s * fit_work(n_train, params) / fit_work(n_train, measured)


@dataclass(frozen=True)
class TrainingProgress:
    """A snapshot of a training run, safe to read from any thread."""

    state: str  # "idle" | "running" | "done" | "failed"
    elapsed_s: float
    expected_s: float
    saved: SavedModel | None
    error: str | None

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        return min(ESTIMATE_CAP, self.elapsed_s / self.expected_s)

    @property
    def done(self) -> bool:
        return self.state in ("done", "failed")


class TrainingRun(BackgroundTask[TrainingProgress]):
    """Owner of the thread that trains, evaluates and saves one model.

    Started and waited for as every :class:`~hbcore.background.BackgroundTask`; the fit is one
    scikit-learn call, so ``stop`` cannot cut it short: it waits for the run up to its timeout.

    Parameters
    ----------
    beats : BeatSet
        All labelled beats; ``split`` decides which part trains and which part is the test.
    split : {"intra", "inter"}
    params : ModelParams, default=None
        Default: the split's benchmarked ones (``hbcore.model.training.default_params``).
    store : Path, default=None
        The model store (default ``config.models_dir()``).
    info : dict
        Recorded in the model's metadata (the data source).
    """

    def __init__(self, beats: BeatSet, split: str, params: ModelParams | None = None,
                 store: Path | None = None, **info: object):
        from hbcore.model.training import (  # scikit-learn: imported when training, not on page load
            default_params,
            split_index,
        )

        super().__init__("training")
        self.beats = beats
        self.split = split
        self.params = params or default_params(split)
        try:
            self.n_train = len(split_index(beats, split)[0])
        except ValueError:  # an unknown split: the run fails with the reason, the estimate needs a size meanwhile
            self.n_train = len(beats)
        self.store = store
        self.info = info
        self._saved: SavedModel | None = None

    def _work(self) -> str:
        """Train, evaluate and save the model; "done" once it is in the store."""
        from hbcore.model.training import train_and_evaluate

        # views given, so that every key of info goes to the model's metadata
        trained = train_and_evaluate(self.beats, self.split, self.params, views=(), data_key=beats_key(self.beats),
                                     **self.info)
        saved = save_model(trained, self.store)
        with self._lock:
            self._saved = saved
        return "done"

    def progress(self) -> TrainingProgress:
        with self._lock:
            return TrainingProgress(self._state, self._elapsed_s_locked(time.monotonic()),
                                    expected_seconds(self.n_train, self.params), self._saved, self._error)
