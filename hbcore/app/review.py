"""Reviewing misclassified beats: filters over ``hbcore.stream.aggregations.misclassified`` and the CSV export.

An analyst narrows the misclassified beats down (this true class mistaken for that one, in these
patients, with this much confidence) and exports what they found; the same filter serves the page
and any script.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hbcore.app.dashboard import in_record_time
from hbcore.data.classes import CLASS_NAMES

EXPORT_COLUMNS = ("id", "record", "sample", "t", "true", "pred", "prob")


def filter_misclassified(
    frame: pd.DataFrame,
    *,
    true: Sequence[str] = (),
    predicted: Sequence[str] = (),
    records: Sequence[str] = (),
    confidence: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """The rows of ``results.misclassified``'s frame that pass every filter (an empty filter passes all).

    ``confidence`` bounds the model's probability of the class it predicted (both ends included).
    """
    low, high = confidence
    keep = frame["prob"].between(low, high) | frame["prob"].isna() & (low <= 0.0)
    if true:
        keep &= frame["true"].isin(list(true))
    if predicted:
        keep &= frame["pred"].isin(list(predicted))
    if records:
        keep &= frame["record"].isin([str(record) for record in records])
    return frame[keep].reset_index(drop=True)


def export_csv(frame: pd.DataFrame) -> bytes:
    """The filtered beats as UTF-8 CSV with a header (what the export button downloads)."""
    return frame.loc[:, list(EXPORT_COLUMNS)].to_csv(index=False).encode("utf-8")


def neighbours(predictions: pd.DataFrame, run: str | None, record: str, t_s: float,
               seconds_each_side: float) -> pd.DataFrame:
    """The predictions of the beats of ``record`` within ``seconds_each_side`` of ``t_s``, in time order.

    Shows whether a mistake stands alone or sits in a run of odd beats (noise, a rhythm change).
    """
    rows = predictions[(predictions["record"] == str(record)) & (predictions["t"] - t_s).abs().le(seconds_each_side)]
    if run is not None:
        rows = rows[rows["run"] == run]
    rows = rows.sort_values("t")
    names = np.array(CLASS_NAMES, dtype=object)
    return pd.DataFrame({
        "t_s": rows["t"].to_numpy(),
        "true": [names[int(v)] if not pd.isna(v) else "" for v in rows["label"]],
        "predicted": names[rows["pred"].to_numpy(dtype=np.int64)],
        "probability": rows["prob"].to_numpy(),
    })


def table_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The misclassified beats as the page lists them: the time as text (Kaggle rows have none: their row)."""
    view = frame.drop(columns=["t"])
    view.insert(list(frame.columns).index("t"), "time in record", in_record_time(frame["t"], frame["sample"]))
    return view
