"""The app's shared objects: the Pipeline, beat sets and training runs in ``st.cache_resource``,
small derived frames (record segments, gallery examples) in ``st.cache_data``.

Pages import these accessors instead of building objects themselves, so every rerun and every
browser session reuses one Pipeline (one local cloud, one replay, one reader) and one copy of each
beat set. The active data source of a session lives in ``st.session_state``; nothing here starts
background work except the Pipeline, which owns and stops its own threads and processes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from hbcore import paths
from hbcore.app.pipeline import Pipeline
from hbcore.app.settings import Settings, load_settings
from hbcore.aws.redaction import user_message
from hbcore.background import BackgroundTask
from hbcore.data import beat_templates as templates
from hbcore.data import dataset, records
from hbcore.data.classes import CLASS_NAMES
from hbcore.data.dataset import BeatSet

DATA_SOURCE_KEY = "data_source"      # ("mitdb", folder) or ("kaggle", file name)
KAGGLE_BEATS_KEY = "data_kaggle_beats"


def settings() -> Settings:
    """The saved settings (a small JSON file), shared by every session and the CLI."""
    return load_settings()


@st.cache_resource(show_spinner=False, max_entries=1, on_release=Pipeline.close)
def _pipeline_for(active: Settings) -> Pipeline:
    return Pipeline(active)


def pipeline() -> Pipeline:
    """The one Pipeline of the saved settings; changing them closes the previous one."""
    return _pipeline_for(settings())


def backend_ready() -> bool:
    """True when looking at the pipeline's state starts nothing: on AWS always, locally once the cloud runs.

    Pages check this before reading the stack, the endpoint or the logs, so that opening a page
    never starts the local cloud (an explicit action does). On AWS an unusable profile is shown
    here, redacted, with a link to Settings, and counts as not ready.
    """
    if settings().backend == "aws":
        try:
            pipeline().backend.session()  # an AWS backend is only a boto3 session: cheap, no network
        except Exception as error:  # botocore raises ProfileNotFound, NoRegionError, ...
            st.error(f"The AWS backend cannot be used: {user_message(error)}")
            st.page_link("pages/settings.py", label="Check the settings", icon=":material/settings:")
            return False
        return True
    return pipeline().backend_started


def backend_problem() -> str | None:
    """Why the backend cannot be used for the demo or a deploy, or None: on AWS an unusable profile or
    credentials that STS refuses (checked once per pipeline, ``Pipeline.identity``); the local cloud needs none."""
    if settings().backend != "aws":
        return None
    try:
        pipeline().backend.session()
    except Exception as error:  # botocore raises ProfileNotFound, NoRegionError, ...
        return user_message(error)
    return pipeline().unusable()


def close_pipeline() -> None:
    """Stop the demo's set-up (it would deploy into the closed pipeline) and the Pipeline's replay,
    reader and local cloud (the next access starts a new one)."""
    demo = background_runs().get("demo")
    if demo is not None:
        demo.stop(timeout_s=0)  # asked to stop, not waited for
    _pipeline_for.clear()


@st.cache_resource(show_spinner=False, max_entries=4)
def folder_beats(mitdb_dir: str) -> BeatSet:
    """The beat set of a WFDB folder, built once (seconds) and then read from the disk cache."""
    return dataset.load_beats(Path(mitdb_dir))


def folder_is_built(mitdb_dir: str | Path) -> bool:
    """True when the folder's beats are in the disk cache, so loading them takes under a second."""
    try:
        return dataset.cache_path(Path(mitdb_dir)).is_dir()
    except OSError:
        return False


# Building one record's beats (windows, RR intervals, the patient context) from WFDB files: 0.1 s
# before the patient context was added, 4.5 s with it under the 2-core machine's usual load
# (measured 2026-12-02); only the demo's progress estimate uses it.
BUILD_SECONDS_PER_RECORD = 4.5
CACHED_LOAD_S = 0.5


def load_estimate_s(mitdb_dir: str | Path) -> float:
    """About how long loading a folder's beats takes: read from the cache, or built record by record."""
    if folder_is_built(mitdb_dir):
        return CACHED_LOAD_S
    return max(CACHED_LOAD_S, BUILD_SECONDS_PER_RECORD * len(list(Path(mitdb_dir).glob("*.hea"))))


def default_source() -> tuple[str, str] | None:
    """The MIT-BIH folder the app uses when the user has not chosen one (``HB_DATA_DIR``, download)."""
    folder = paths.default_mitdb_dir()
    return ("mitdb", str(folder)) if folder else None


def current_source() -> tuple[str, str] | None:
    """The session's data source: what the Data page chose, else the default folder."""
    return st.session_state.get(DATA_SOURCE_KEY) or default_source()


def current_beats(*, build: bool = False) -> BeatSet | None:
    """The session's beat set, or None when there is none yet.

    A folder whose beats are not cached yet is only built when ``build`` is true: building takes
    seconds, so only an explicit action (behind a spinner) may do it.
    """
    source = current_source()
    if source is None:
        return None
    kind, name = source
    if kind == "kaggle":
        return st.session_state.get(KAGGLE_BEATS_KEY)
    if build or folder_is_built(name):
        return folder_beats(name)
    return None


def use_folder(mitdb_dir: str) -> BeatSet:
    """Build or load a WFDB folder's beats and make it the session's source."""
    beats = folder_beats(mitdb_dir)
    st.session_state[DATA_SOURCE_KEY] = ("mitdb", mitdb_dir)
    return beats


def use_kaggle(beats: BeatSet, name: str) -> None:
    """Make validated Kaggle CSV rows the session's source."""
    st.session_state[KAGGLE_BEATS_KEY] = beats
    st.session_state[DATA_SOURCE_KEY] = ("kaggle", name)


@st.cache_resource(show_spinner=False, max_entries=4)
def class_templates(_beats: BeatSet, source: tuple[str, str]) -> dict[str, np.ndarray]:
    """Mean window per class of a source's beats (``source`` is the cache key)."""
    return templates.class_templates(_beats)


@st.cache_resource(show_spinner=False, max_entries=4)
def beat_lookup(_beats: BeatSet, source: tuple[str, str]) -> pd.Series:
    """(record, sample) → row of a source's beats (``source`` is the cache key)."""
    return templates.beat_index(_beats)


@st.cache_resource(show_spinner=False)
def background_runs() -> dict[str, BackgroundTask]:
    """The app's latest background run of each kind ("training": TrainingRun, "demo": DemoRun).

    Kept app-wide so that a page left while its run works finds the run again when it comes back.
    """
    return {}


@st.cache_data(show_spinner=False, max_entries=16)
def gallery_frame(_beats: BeatSet, source: tuple[str, str], per_class: int) -> pd.DataFrame:
    """Long-form example beats per class for the gallery chart (``source`` is the cache key)."""
    from hbcore.app import charts  # altair, ~0.5 s to import: not before the home page's first paint

    examples = templates.class_examples(_beats, per_class)
    ids = [f"{record}:{sample}" for record, sample in zip(examples.meta["record"], examples.meta["sample"])]
    return charts.beats_frame(examples.X, [CLASS_NAMES[label] for label in examples.y], ids)


@st.cache_data(show_spinner=False, max_entries=64)
def record_segment(mitdb_dir: str, record: str, start_s: float, duration_s: float) -> records.RecordSegment:
    """A stretch of raw ECG with its annotations (re-read only when the window moves)."""
    return records.read_segment(Path(mitdb_dir), record, start_s, duration_s)
