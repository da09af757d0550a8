"""Training in a background thread, with a progress estimate, saved into the model store when done.

Fitting the classifier takes from seconds (a few records) to minutes (all of MIT-BIH) in one
scikit-learn call that reports nothing while it runs. The app must keep drawing meanwhile, so the
fit runs in a thread owned by a :class:`TrainingRun`; callers poll :meth:`TrainingRun.progress`,
whose fraction is the elapsed time over an estimate from the training size and the epoch budget.
The thread never calls Streamlit.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hbcore.background import BackgroundTask
from hbcore.data.dataset import BeatSet
from hbcore.model.store import SavedModel, save_model

if TYPE_CHECKING:
    from hbcore.model.training import ModelParams

# Fit cost per training beat per epoch with hbcore.model.training's intra-patient defaults on a 2-core
# machine: 87,556 beats × 20 epochs took 44 to 57 s (`python -m hbcore bench model`), slower under
# load. Only the progress bar uses it, and the bar never claims more than ESTIMATE_CAP before the fit
# has ended.
SECONDS_PER_BEAT_EPOCH = 3e-5
ESTIMATE_CAP = 0.95
TRAIN_SHARE = 0.8  # both splits train on about 80 % of the beats


def beats_key(beats: BeatSet) -> str:
    """A digest of the beats' windows and labels: models trained on equal data share it."""
    digest = hashlib.sha256()
    digest.update(beats.X.tobytes())
    digest.update(beats.y.tobytes())
    return digest.hexdigest()[:24]


def expected_seconds(n_beats: int, params: ModelParams) -> float:
    """A rough duration of training on ``n_beats`` (before the split) with ``params``."""
    return max(1.0, n_beats * TRAIN_SHARE * (params.max_iter + params.final_iter) * SECONDS_PER_BEAT_EPOCH)


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
        from hbcore.model.training import (
            default_params,  # scikit-learn: imported when training, not on page load
        )

        super().__init__("training")
        self.beats = beats
        self.split = split
        self.params = params or default_params(split)
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
                                    expected_seconds(len(self.beats), self.params), self._saved, self._error)
