"""Train: fit the classifier on a split, read its test figures, compare saved models, download one."""

import time

import pandas as pd
import streamlit as st

from hbcore.app import charts
from hbcore.app import resources as res
from hbcore.app import training_run as training
from hbcore.aws.redaction import redact
from hbcore.data.classes import CLASS_NAMES
from hbcore.model import store as modelstore
from hbcore.model.training import ModelParams

SPLITS = {"intra": "Intra-patient: stratified 80/20 over beats (the Kaggle convention; optimistic)",
          "inter": "Inter-patient: train DS1, test DS2 (de Chazal 2004; unseen patients)"}
POLL_S = 0.5

st.session_state.setdefault("train_split", "intra")
st.session_state.setdefault("train_max_iter", ModelParams().max_iter)
st.session_state.setdefault("train_normalise", False)

st.title("Train")
beats = res.current_beats()
source = res.current_source()
if beats is None:
    st.info("No beats to train on yet: choose or build a data source first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/database:")
    st.stop()

st.caption(f"Data: {len(beats):,} beats from `{source[1]}`.")
TESTED_ON = {"inter": "DS2, 22 patients it never saw", "intra": "the held-out 20 % of beats of patients it saw"}


def deployed_model() -> modelstore.SavedModel | None:
    """The stored model this app last deployed, or None."""
    path = res.pipeline().deployed_path
    return next((model for model in modelstore.saved_models() if model.path == path), None) if path else None


serving = deployed_model()
if serving is not None:
    figures = serving.metrics
    kind = "quick model" if serving.quick else "model"
    recalls = ", ".join(f"{name} {figures['per_class'][name]['recall']:.2f}" for name in CLASS_NAMES
                        if name in figures.get("per_class", {}))
    tested_on = TESTED_ON.get(serving.split or "", serving.split or "?")
    scores = (f"offline on {tested_on}: accuracy {figures['accuracy']:.2%}, macro-F1 {figures['macro_f1']:.3f}, "
              f"Se {recalls}" if figures else "no offline figures recorded")
    st.info(f"**Deployed:** {kind} `{serving.version}` ({serving.split} split, from "
            f"{serving.metadata.get('source_name') or 'an unnamed source'}); {scores}.")
elif res.pipeline().deployed_path is not None:
    st.info(f"**Deployed:** `{res.pipeline().deployed_path}` (not in the model store: no offline figures).")
demo_run = res.background_runs().get("demo")
upgrade = demo_run.progress().upgrade if demo_run is not None else None
if upgrade is not None and upgrade.state in ("training", "deploying"):
    st.progress(upgrade.fraction, text=f"The demo's full model: {redact(upgrade.detail)}, {upgrade.elapsed_s:,.0f} of "
                                       f"~{upgrade.expected_s:,.0f} s; it replaces the quick model when ready")
split = st.radio("Split", list(SPLITS), key="train_split", format_func=SPLITS.get)
epochs = st.number_input("Epochs", min_value=1, max_value=200, step=5, key="train_max_iter",
                         help="Passes over the training beats; the default is the benchmarked one")
params = ModelParams(max_iter=int(epochs))
runs = res.background_runs()


def follow(run: training.TrainingRun) -> training.TrainingProgress:
    """Draw the run's progress until it ends (the fit runs in its own thread)."""
    bar = st.progress(0.0)
    while not (progress := run.progress()).done:
        bar.progress(progress.fraction, text=f"Training on the {run.split} split… {progress.elapsed_s:,.0f} s "
                                             f"(about {progress.expected_s:,.0f} s)")
        time.sleep(POLL_S)
    bar.empty()
    return progress


running = runs.get("training") is not None and not runs["training"].progress().done
if st.button("Train", key="train_run", type="primary", disabled=running):
    runs["training"] = training.TrainingRun(beats, split, params, source=source[0], source_name=source[1]).start()
    running = True
if running:
    outcome = follow(runs["training"])
    if not outcome.error:
        st.success(f"Trained model {outcome.saved.version} in {outcome.elapsed_s:,.0f} s.")
        st.session_state["train_model"] = outcome.saved.version
# A failed run stays on the page, also for a session that comes back to it after the run ended.
if runs.get("training") is not None and (failure := runs["training"].progress().error):
    st.error(f"Training failed: {redact(failure)}")

saved = modelstore.saved_models()
if not saved:
    st.info("No trained model yet: press **Train** (a few minutes on all of MIT-BIH, seconds on a few records).")
    st.stop()

st.divider()
versions = [model.version for model in saved]
if st.session_state.get("train_model") not in versions:
    st.session_state["train_model"] = versions[0]
chosen = saved[versions.index(st.selectbox("Model", versions, key="train_model"))]
figures = chosen.metrics
if not figures:
    st.warning(f"Model {chosen.version} carries no test figures.")
    st.stop()

kpis = st.columns(4)
kpis[0].metric("Accuracy", f"{figures['accuracy']:.2%}")
kpis[1].metric("Macro-F1", f"{figures['macro_f1']:.3f}")
kpis[2].metric("Split", chosen.split or "?")
kpis[3].metric("Train time", f"{chosen.metadata.get('train_seconds', float('nan')):,.0f} s")
left, right = st.columns([2, 3])
with left:
    st.dataframe(pd.DataFrame(figures["per_class"]).T.rename_axis("class"),
                 column_config={name: st.column_config.NumberColumn(format="%.3f")
                                for name in ("precision", "recall", "f1")},
                 width="stretch")
    if "aami4" in figures:
        st.caption(f"Over N, S, V, F only (de Chazal's convention): accuracy {figures['aami4']['accuracy']:.2%}, "
                   f"macro-F1 {figures['aami4']['macro_f1']:.3f}.")
with right:
    st.toggle("Row shares", key="train_normalise", help="Each true class's beats as shares (recall on the diagonal)")
    n_test = chosen.metadata.get("n_test", "?")
    st.altair_chart(charts.confusion_heatmap(figures["confusion"], normalise=st.session_state["train_normalise"],
                                             title=f"test confusion matrix ({n_test:,} beats)"),
                    width="stretch")
st.download_button("Download model.tar.gz", chosen.path.read_bytes, file_name=f"model-{chosen.version}.tar.gz",
                   mime="application/gzip", key="train_download")

st.subheader("Saved models")
comparison = pd.DataFrame([{
    "version": model.version, "split": model.split, "source": model.metadata.get("source_name", ""),
    "kind": "quick" if model.quick else "full",
    "train beats": model.metadata.get("n_train"), "accuracy": model.metrics.get("accuracy"),
    "macro-F1": model.metrics.get("macro_f1"),
    **{f"F1 {name}": model.metrics.get("per_class", {}).get(name, {}).get("f1") for name in CLASS_NAMES},
    "epochs": model.metadata.get("params", {}).get("max_iter"), "train s": model.metadata.get("train_seconds"),
} for model in saved])
st.dataframe(comparison, hide_index=True, width="stretch",
             column_config={"accuracy": st.column_config.NumberColumn(format="%.4f"),
                            "macro-F1": st.column_config.NumberColumn(format="%.3f"),
                            **{f"F1 {n}": st.column_config.NumberColumn(format="%.3f") for n in CLASS_NAMES}})
