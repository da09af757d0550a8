"""Data: choose the beat source, check it (class counts, example beats) and read the raw records."""

from pathlib import Path

import streamlit as st

from hbcore import paths
from hbcore.app import charts
from hbcore.app import resources as res
from hbcore.aws.redaction import redact, user_message
from hbcore.data import kaggle, physionet, records

SOURCES = ("MIT-BIH records in a folder", "Download from PhysioNet", "Kaggle CSV")
UPLOAD_LIMIT_BYTES = int(st.get_option("server.maxUploadSize")) * 1024 * 1024
RECORD_WINDOWS_S = (5, 10, 30, 60)

st.session_state.setdefault("data_source_choice", SOURCES[0])
st.session_state.setdefault("data_mitdb_dir", str(paths.default_mitdb_dir() or ""))
st.session_state.setdefault("data_download_dir", str(paths.download_dir()))
st.session_state.setdefault("data_csv_path", "")
st.session_state.setdefault("data_gallery_n", 8)
st.session_state.setdefault("data_record_window", 10)
st.session_state.setdefault("data_record_start", 0)

st.title("Data")
st.caption("Beat windows of the Kaggle kind (125 Hz, 187 samples, scaled to [0, 1]), built from the "
           "MIT-BIH records or read from the Kaggle CSV files.")

choice = st.radio("Source", SOURCES, key="data_source_choice", horizontal=True)

if choice == SOURCES[0]:
    folder = st.text_input("Folder with the WFDB records (.hea, .dat, .atr)", key="data_mitdb_dir")
    if st.button("Build / load the beats", key="data_load", type="primary"):
        path = Path(folder).expanduser()
        if not folder or not any(path.glob("*.hea")):
            st.error(f"{folder or 'no folder given'}: no WFDB records (.hea files) there. "
                     "Download them from PhysioNet (the second source) or give another folder.")
        else:
            with st.spinner("Building beat windows (a few seconds the first time, then cached)…"):
                try:
                    res.use_folder(str(path))
                except (OSError, ValueError) as error:
                    st.error(user_message(error))

elif choice == SOURCES[1]:
    st.write("Fetch the 48 MIT-BIH records (~100 MB) from physionet.org with wfdb; an interrupted "
             "download resumes where it stopped.")
    dest = st.text_input("Destination folder", key="data_download_dir")
    if st.button("Download MIT-BIH", key="data_download", type="primary"):
        with st.spinner("Downloading from PhysioNet (a few minutes)…"):
            try:
                path = physionet.download_mitdb(dest)
                res.use_folder(str(path))
                st.success(f"Downloaded {len(records.record_names(path))} records into {path}.")
            except physionet.PhysioNetUnreachable as error:
                st.error(redact(str(error)))
                st.info(f"Choose **{SOURCES[0]}** or **{SOURCES[2]}** above: both work offline.")
            except physionet.DownloadError as error:
                st.error(f"{user_message(error)}. Press the button again to resume.")

else:
    st.write("`mitbih_train.csv` / `mitbih_test.csv` as published (headerless, 188 columns), gzipped "
             "or not, with or without a header row or an index column. Every row is validated.")
    upload_column, path_column = st.columns(2)
    with upload_column:
        upload = st.file_uploader(f"Upload a CSV (up to {UPLOAD_LIMIT_BYTES // 2**20} MB)", type=["csv", "gz"],
                                  key="data_upload")
        if upload is not None and st.button("Use the uploaded file", key="data_upload_load", type="primary"):
            with st.spinner(f"Validating {upload.name}…"):
                try:
                    res.use_kaggle(kaggle.load_kaggle_csv(upload, name=upload.name, max_bytes=UPLOAD_LIMIT_BYTES),
                                   upload.name)
                except (OSError, ValueError) as error:
                    st.error(user_message(error))
    with path_column:
        csv_path = st.text_input("…or the path of a CSV on this machine (no size limit)", key="data_csv_path")
        if st.button("Use this file", key="data_csv_load"):
            with st.spinner(f"Validating {csv_path}…"):
                try:
                    res.use_kaggle(kaggle.load_kaggle_csv(Path(csv_path).expanduser()), Path(csv_path).name)
                except (OSError, ValueError) as error:
                    st.error(user_message(error))

st.divider()
beats = res.current_beats()
source = res.current_source()
if beats is None:
    if source is None:
        st.info("No data yet: give a folder of MIT-BIH records, download them from PhysioNet, "
                "or load a Kaggle CSV above.")
    else:
        st.info(f"The beats of {source[1]} are not built yet: press **Build / load the beats** above "
                "(a few seconds, once).")
    st.stop()

kind, name = source
st.subheader(f"Active: {'MIT-BIH folder' if kind == 'mitdb' else 'Kaggle CSV'} `{name}`")
counts = beats.class_counts()
columns = st.columns(3)
columns[0].metric("Beats", f"{len(beats):,}")
columns[1].metric("Records", f"{len(beats.records()):,}")
columns[2].metric("Abnormal (S, V, F, Q)", f"{sum(counts.values()) - counts['N']:,}")
if beats.skipped:
    st.warning("Skipped records: " + "; ".join(beats.skipped.values()))
st.altair_chart(charts.class_bars(counts, title="beats per class", axis_title="beats"), width="stretch")

st.subheader("Example beats per class")
per_class = st.slider("Beats per class", 1, 30, key="data_gallery_n")
st.altair_chart(charts.beat_gallery(res.gallery_frame(beats, source, per_class)), width="content")

st.subheader("Record viewer")
if kind != "mitdb":
    st.info("Kaggle rows carry no raw signal. Choose a folder of MIT-BIH records above to read the raw ECG.")
    st.stop()
names = records.record_names(Path(name))
st.session_state.setdefault("data_record", names[0])
if st.session_state["data_record"] not in names:
    st.session_state["data_record"] = names[0]
left, middle, right = st.columns([1, 1, 3])
record = left.selectbox("Record", names, key="data_record")
window_s = middle.selectbox("Window (s)", RECORD_WINDOWS_S, key="data_record_window")
length_s = records.record_seconds(Path(name), record)
st.session_state["data_record_start"] = min(st.session_state["data_record_start"], int(length_s - window_s))
start_s = right.slider("Start (s)", 0, int(length_s - window_s), key="data_record_start")
segment = res.record_segment(name, record, start_s, window_s)
st.altair_chart(charts.ecg_trace(segment.signal, segment.beats, title=f"record {record}, lead {segment.lead}"),
                width="stretch")
st.caption(" · ".join(f"{c}: {n}" for c, n in segment.beats["class"].value_counts().items())
           or "no beats annotated here")
