"""Filters and export of misclassified beats, and the predictions around a beat."""

import numpy as np
import pandas as pd

from hbcore.app import review

WRONG = pd.DataFrame({
    "id": ["r:100:1", "r:119:2", "r:119:3", "r:208:4"], "record": ["100", "119", "119", "208"],
    "sample": [1, 2, 3, 4], "t": [0.1, 0.2, 0.3, 0.4], "true": ["S", "V", "V", "F"],
    "pred": ["N", "N", "F", "V"], "prob": [0.9, 0.55, 0.7, np.nan],
})


def test_no_filter_keeps_every_row():
    assert len(review.filter_misclassified(WRONG)) == 4


def test_filters_combine():
    shown = review.filter_misclassified(WRONG, true=["V"], predicted=["N", "F"], records=["119"], confidence=(0.6, 1.0))
    assert shown["id"].tolist() == ["r:119:3"]


def test_confidence_bounds_are_inclusive_and_unknown_passes_from_zero():
    within = review.filter_misclassified(WRONG, confidence=(0.55, 0.9))
    assert within["id"].tolist() == ["r:100:1", "r:119:2", "r:119:3"]
    assert "r:208:4" in review.filter_misclassified(WRONG, confidence=(0.0, 0.5))["id"].tolist()


def test_export_csv_has_a_header_and_every_row():
    text = review.export_csv(WRONG).decode()
    lines = text.splitlines()
    assert lines[0] == "id,record,sample,t,true,pred,prob"
    assert lines[1] == "r:100:1,100,1,0.1,S,N,0.9" and len(lines) == 5


def test_neighbours_are_the_records_beats_around_the_time_of_one_run():
    predictions = pd.DataFrame({
        "run": ["a", "a", "a", "b", "a"], "record": ["100", "100", "100", "100", "119"],
        "t": [10.0, 11.0, 20.0, 10.5, 10.0], "label": pd.array([0, 1, 0, 0, 2], dtype="Int64"),
        "pred": np.array([0, 0, 0, 1, 2], np.int8), "prob": [0.9, 0.6, 0.9, 0.8, 0.99],
    })
    around = review.neighbours(predictions, "a", "100", 10.5, 1.0)
    assert around["t_s"].tolist() == [10.0, 11.0]
    assert around["true"].tolist() == ["N", "S"] and around["predicted"].tolist() == ["N", "N"]
    assert len(review.neighbours(predictions, None, "100", 10.5, 1.0)) == 3


def test_the_table_as_listed_shows_the_time_as_text_and_kaggle_rows_by_their_row():
    frame = WRONG.assign(t=pd.array([0.1, None, 0.3, None], dtype="Float64"), sample=[1, 2, 3, 1204])
    view = review.table_view(frame)
    assert list(view.columns) == ["id", "record", "sample", "time in record", "true", "pred", "prob"]
    assert view["time in record"].tolist() == ["0.10 s", "row 2", "0.30 s", "row 1,204"]
