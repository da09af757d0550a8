"""Misclassified: find the beats the model got wrong and see why (waveform vs the patient's normal beat and
the class templates, context)."""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from hbcore.app import charts, dashboard, review
from hbcore.app import resources as res
from hbcore.aws.redaction import user_message
from hbcore.data import beat_templates as templates
from hbcore.data import patient, records
from hbcore.data.classes import CLASS_NAMES
from hbcore.stream import aggregations

CONTEXT_S = 3.0  # the raw trace around the beat
NEIGHBOURS_S = 10.0  # the predictions around it (the test split holds one beat in five)
FRESHNESS_REFRESH_S = 5.0

st.session_state.setdefault("mis_all_runs", False)
st.session_state.setdefault("mis_true", [])
st.session_state.setdefault("mis_pred", [])
st.session_state.setdefault("mis_record", [])
st.session_state.setdefault("mis_confidence", (0.0, 1.0))
st.session_state.setdefault("mis_loaded", None)
st.session_state.setdefault("mis_template", (None, None))  # (source, record, sample) → the patient's normal beat

st.title("Misclassified beats")
pipeline = res.pipeline()
if not res.backend_ready():
    st.info("No results yet: run the demo (or deploy a model and start a replay) and come back when beats "
            "have been classified.")
    st.page_link("pages/home.py", label="Run the full demo", icon=":material/play_arrow:")
    st.stop()

top = st.columns([1, 1, 4])
top[0].toggle("All runs", key="mis_all_runs", help="Include earlier replays, not only the latest one")
run = None if st.session_state["mis_all_runs"] else pipeline.current_run
loaded = st.session_state["mis_loaded"]
# The table is a snapshot kept until Refresh, so a selected row stays the same beat while new ones arrive.
if top[1].button("Refresh", key="mis_refresh") or loaded is None or loaded["run"] != run:
    snapshot = pipeline.reader.snapshot()
    loaded = st.session_state["mis_loaded"] = {
        "run": run, "predictions": aggregations.for_run(snapshot.predictions, run), "taken_s": time.time(),
        "classified": snapshot.totals(run).predicted, "dropped": snapshot.stats.dropped_misclassified,
        "wrong": aggregations.misclassified(aggregations.for_run(snapshot.misclassified, run))}
predictions, wrong, classified = loaded["predictions"], loaded["wrong"], loaded["classified"]


@st.fragment(run_every=FRESHNESS_REFRESH_S)
def freshness() -> None:
    """That the table is a snapshot, when it was taken, what the live run has added since; the reader's state."""
    live = pipeline.reader.snapshot()  # cheap: only to say how current the table is
    since = live.totals(run).predicted - classified
    st.markdown(f":blue-badge[snapshot] of {'all runs' if run is None else f'run `{run}`'} taken "
                f"{dashboard.clock(loaded['taken_s'])} ({time.time() - loaded['taken_s']:,.0f} s ago)"
                + (f" · {since:,} beats processed since: press Refresh to include them" if since > 0 else "")
                + "  \nResults reader: " + dashboard.freshness_text(dashboard.freshness(live.stats)))


freshness()
if wrong.empty:
    message = ("No beats classified yet" if not classified else
               f"None of the {classified:,} beats classified so far is wrong")
    st.info(f"{message}. Start a replay, then press Refresh; the table fills as beats are classified.")
    st.page_link("pages/stream.py", label="Go to Stream", icon=":material/play_circle:")
    st.stop()

filters = st.columns([1, 1, 2, 2])
filters[0].multiselect("True class", CLASS_NAMES, key="mis_true")
filters[1].multiselect("Predicted class", CLASS_NAMES, key="mis_pred")
available = sorted(wrong["record"].dropna().unique())
st.session_state["mis_record"] = [r for r in st.session_state["mis_record"] if r in available]
filters[2].multiselect("Record", available, key="mis_record")
filters[3].slider("Confidence (probability of the predicted class)", 0.0, 1.0, step=0.05, key="mis_confidence")
shown = review.filter_misclassified(wrong, true=st.session_state["mis_true"], predicted=st.session_state["mis_pred"],
                                    records=st.session_state["mis_record"],
                                    confidence=st.session_state["mis_confidence"])

st.caption(f"{len(shown):,} of {len(wrong):,} misclassified beats ({classified:,} classified"
           + (f"; the {loaded['dropped']:,} oldest are no longer kept" if loaded["dropped"] else "")
           + "). Select a row to inspect it.")
st.download_button("Export CSV", lambda: review.export_csv(shown), file_name="misclassified.csv", mime="text/csv",
                   key="mis_export", disabled=shown.empty)
event = st.dataframe(review.table_view(shown), key="mis_table", on_select="rerun", selection_mode="single-row",
                     hide_index=True, width="stretch", height=300,
                     column_config={"prob": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                                           format="%.2f")})
selected = event.selection.rows
if not selected or selected[0] >= len(shown):
    st.info("Select a row above to see its waveform against the class templates and the beats around it.")
    st.stop()

beat = shown.iloc[selected[0]]
st.subheader(f"Beat `{beat['id']}`: true {beat['true']}, predicted {beat['pred']} ({beat['prob']:.0%})")
beats = res.current_beats()
source = res.current_source()
window = None
if beats is not None:
    window = templates.find_beat(beats, res.beat_lookup(beats, source), beat["record"], int(beat["sample"]))
left, right = st.columns(2)
with left:
    if window is None:
        st.info(f"The waveform of this beat is not in the active data source ({source[1] if source else 'none'}). "
                "Choose the source that was replayed on the Data page.")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/database:")
    else:
        shapes = res.class_templates(beats, source)
        compare = {name: shapes[name] for name in dict.fromkeys([beat["true"], beat["pred"]]) if name in shapes}
        key = (source, beat["record"], int(beat["sample"]))
        if st.session_state["mis_template"][0] != key:  # replays the record's beats up to this one: ~1 s
            with st.spinner(f"Forming record {beat['record']}'s normal beat as its monitor held it…"):
                st.session_state["mis_template"] = (key, patient.normal_template(beats, beat["record"],
                                                                                 upto_sample=int(beat["sample"])))
        own = st.session_state["mis_template"][1]
        st.altair_chart(charts.beat_overlay(window, compare, patient_normal=own,
                                            title="this beat vs the patient's own normal beat and the mean beat "
                                                  "of each class"),
                        width="stretch")
        st.caption(f"The patient's normal: the template of record {beat['record']}'s normal-looking beats before "
                   "this one, as its monitor held it." if own is not None else
                   f"No beat of record {beat['record']} before this one: no patient template to compare with.")
with right:
    if pd.isna(beat["t"]):
        st.info("This beat carries no time in its record (a Kaggle row): its neighbours are not known.")
        st.stop()
    st.dataframe(review.neighbours(predictions, run, beat["record"], float(beat["t"]), NEIGHBOURS_S), hide_index=True,
                 width="stretch",
                 column_config={"probability": st.column_config.NumberColumn(format="%.2f"),
                                "t_s": st.column_config.NumberColumn("t (s)", format="%.2f")})
    st.caption(f"Predictions for record {beat['record']} within ±{NEIGHBOURS_S:g} s")

if source is not None and source[0] == "mitdb" and (Path(source[1]) / f"{beat['record']}.hea").is_file():
    try:
        segment = records.segment_around(Path(source[1]), beat["record"], int(beat["sample"]),
                                         seconds_each_side=CONTEXT_S)
        st.altair_chart(charts.ecg_trace(segment.signal, segment.beats, highlight_t_s=float(beat["t"]),
                                         title=f"record {beat['record']} (lead {segment.lead}) around the beat; "
                                               "points coloured by the reference class"),
                        width="stretch")
    except (OSError, ValueError) as error:
        st.error(user_message(error))
else:
    st.caption("The raw ECG around the beat is shown when the active source is the MIT-BIH folder it came from.")
