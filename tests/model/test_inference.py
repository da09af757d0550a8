"""The inference contract: request parsing, errors that name the line, and the round trip through
``model.tar.gz`` with ``code/inference.py`` imported by file, as the SageMaker container does."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest

from hbcore.data.classes import CLASS_NAMES
from hbcore.model import inference

# No scikit-learn, no joblib: the container's scikit-learn may be any release. threadpoolctl is optional.
ALLOWED_IMPORTS = {"__future__", "contextlib", "json", "os", "typing", "zipfile", "numpy", "threadpoolctl"}


def beats_array(n: int = 3, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).random((n, 187)).astype(np.float32)
    rows[:, 120:] = 0.0
    return rows


def csv_body(rows: np.ndarray, labels: bool = False) -> str:
    lines = []
    for i, row in enumerate(rows):
        values = [f"{v:.4f}" for v in row] + ([str(i % 5)] if labels else [])
        lines.append(",".join(values))
    return "\n".join(lines) + "\n"


def test_module_is_self_contained():
    tree = ast.parse(Path(inference.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= ALLOWED_IMPORTS


def test_class_names_match_the_package():
    assert inference.CLASS_NAMES == CLASS_NAMES


@pytest.mark.parametrize("as_bytes", [False, True])
def test_csv_bare_187_values(as_bytes):
    rows = beats_array()
    body = csv_body(rows)
    data = inference.input_fn(body.encode() if as_bytes else body, "text/csv")
    assert data["beats"].shape == (3, 187)
    assert data["beats"].dtype == np.float32
    assert data["rr"] is None
    np.testing.assert_allclose(data["beats"], rows, atol=5e-5)


def test_csv_with_label_column_ignores_the_label():
    rows = beats_array()
    data = inference.input_fn(csv_body(rows, labels=True), "text/csv; charset=utf-8")
    np.testing.assert_allclose(data["beats"], rows, atol=5e-5)


def test_csv_skips_blank_lines_and_crlf():
    rows = beats_array(2)
    body = csv_body(rows).replace("\n", "\r\n")
    data = inference.input_fn("\r\n" + body + "\r\n", "text/csv")
    assert data["beats"].shape == (2, 187)


def test_csv_mixed_widths_parse_line_by_line():
    rows = beats_array(2)
    body = csv_body(rows[:1]) + csv_body(rows[1:], labels=True)
    np.testing.assert_allclose(inference.input_fn(body, "text/csv")["beats"], rows, atol=5e-5)


def with_field(lines: list[str], line: int, field: int, text: str) -> list[str]:
    fields = lines[line].split(",")
    fields[field] = text
    return [*lines[:line], ",".join(fields), *lines[line + 1:]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: [*lines[:1], ",".join(lines[1].split(",")[:186]), *lines[2:]],
         r"line 2: 186 values, expected 187 or 188"),
        (lambda lines: with_field(lines, 2, 10, "abc"), r"line 3: 'abc' is not a number"),
        (lambda lines: with_field(lines, 0, 4, "nan"), r"line 1: value 5 \(nan\) is not finite"),
        (lambda lines: with_field(lines, 1, 0, "7.5"), r"line 2: value 1 \(7.5\) is outside \[0, 1\]"),
        (lambda lines: with_field(lines, 1, 3, ""), r"line 2: '' is not a number"),
    ],
    ids=["short", "text", "nan", "range", "empty-field"],
)
def test_csv_errors_name_the_line(mutate, message):
    lines = csv_body(beats_array()).splitlines()
    with pytest.raises(ValueError, match=message):
        inference.input_fn("\n".join(mutate(lines)), "text/csv")


def test_csv_error_counts_physical_lines():
    lines = csv_body(beats_array()).splitlines()
    body = "\n".join([lines[0], "", lines[1], "1,2,3"])
    with pytest.raises(ValueError, match=r"line 4: 3 values"):
        inference.input_fn(body, "text/csv")


def test_empty_csv_is_an_error():
    with pytest.raises(ValueError, match="no beats"):
        inference.input_fn(b"\n\n", "text/csv")


def test_json_instances_with_rr():
    rows = beats_array(2)
    body = json.dumps({"instances": [
        {"beat": rows[0].tolist(), "rr_prev_s": 0.8, "rr_next_s": 0.9, "rr_local_s": 0.85},
        {"beat": rows[1].tolist(), "rr_prev_s": None},
    ]})
    data = inference.input_fn(body.encode(), "application/json")
    np.testing.assert_array_equal(data["beats"], rows)
    np.testing.assert_allclose(data["rr"][0], [0.8, 0.9, 0.85])
    assert np.isnan(data["rr"][1]).all()


def test_json_accepts_the_longest_rr_gap_of_mitbih():
    """Record 207 holds a 100 s 'RR' across unannotated flutter: the model trains on it, so the endpoint takes it."""
    body = json.dumps({"instances": [{"beat": beats_array(1)[0].tolist(), "rr_prev_s": 100.02, "rr_next_s": 0.8}]})
    data = inference.input_fn(body.encode(), "application/json")
    np.testing.assert_allclose(data["rr"][0][:2], [100.02, 0.8], rtol=1e-6)


@pytest.mark.parametrize("value", [0, -0.5, 800.0])
def test_json_refuses_rr_outside_the_contract(value):
    body = json.dumps({"instances": [{"beat": beats_array(1)[0].tolist(), "rr_next_s": value}]})
    with pytest.raises(ValueError, match=r"instance 1: rr_next_s = .* not a number of seconds in \(0, 200\]"):
        inference.input_fn(body.encode(), "application/json")


def test_json_bare_list_of_beats():
    rows = beats_array(2)
    data = inference.input_fn(json.dumps(rows.tolist()), "application/json")
    np.testing.assert_array_equal(data["beats"], rows)
    assert np.isnan(data["rr"]).all()


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([{"beat": [0.5] * 187}, {"beat": [0.5] * 10}], r"instance 2: 10 values, expected 187"),
        ([{"beat": [0.5] * 187}, {"beat": ["x"] * 187}], r"instance 2: 'beat' must be a list of numbers"),
        ([{"beat": [0.5] * 186 + [None]}], r"instance 1: 'beat' must be a list of numbers"),
        ([{"beat": [0.5] * 187}, {"rr_prev_s": 0.8}], r"instance 2: no 'beat' key"),
        ([{"beat": [0.5] * 187, "rr_next_s": -1}], r"instance 1: rr_next_s = -1 is not a number of seconds"),
        ([{"beat": [0.5] * 187, "rr_local_s": "0.8"}], r"instance 1: rr_local_s = '0.8'"),
        ([{"beat": [0.5] * 186 + [2.0]}], r"instance 1: value 187 \(2\) is outside \[0, 1\]"),
    ],
    ids=["short", "text", "null", "no-beat", "negative-rr", "string-rr", "range"],
)
def test_json_errors_name_the_instance(instances, message):
    with pytest.raises(ValueError, match=message):
        inference.input_fn(json.dumps({"instances": instances}), "application/json")


@pytest.mark.parametrize(("body", "message"),
                         [("{not json", "not JSON"), ('{"beats": []}', "expected"), ("[]", "no beats")])
def test_json_document_errors(body, message):
    with pytest.raises(ValueError, match=message):
        inference.input_fn(body, "application/json")


def test_unsupported_content_type():
    with pytest.raises(ValueError, match="'application/x-npy' is not supported"):
        inference.input_fn(b"", "application/x-npy")


def test_body_that_is_not_utf8():
    with pytest.raises(ValueError, match="not UTF-8"):
        inference.input_fn(b"\xff\xfe0.5", "text/csv")


def test_output_fn_rejects_other_accept_types():
    prediction = {"probabilities": np.eye(5)[:1], "model_version": "v"}
    with pytest.raises(ValueError, match="'text/csv' is not supported"):
        inference.output_fn(prediction, "text/csv")


def test_features_without_rr_flag_every_interval_missing():
    rows = beats_array(2)
    without = inference.features(rows)
    with_rr = inference.features(rows, np.array([[0.8, 0.9, 0.85]] * 2, dtype=np.float32))
    flags = np.asarray(inference.FEATURE_GROUPS["rr"])[-3:]
    assert without.shape == with_rr.shape == (2, inference.N_FEATURES)
    np.testing.assert_array_equal(without[:, flags], 1.0)
    np.testing.assert_array_equal(with_rr[:, flags], 0.0)


def test_features_flag_an_unknown_pre_r_segment_and_unknown_context_values():
    rows = beats_array(2)
    context = np.full((2, inference.N_CONTEXT), 1.0, dtype=np.float32)
    context[1, 7] = np.nan
    x = inference.features(rows, pre=np.vstack([np.full(36, 0.5), np.full(36, np.nan)]), context=context)
    pre, ctx = np.asarray(inference.FEATURE_GROUPS["pre"]), np.asarray(inference.FEATURE_GROUPS["context"])
    assert x[:, pre[-1]].tolist() == [0.0, 1.0] and not x[1, pre[:-1]].any()
    assert x[:, ctx[inference.N_CONTEXT + 7]].tolist() == [0.0, 1.0]
    assert x[0, ctx[0]] == 0.0  # log of the ratio 1


def test_the_copies_constants_are_the_data_layers():
    from hbcore.data import dataset, patient

    assert (inference.PRE_R_SAMPLES, inference.N_CONTEXT, inference.CONTEXT_RATIOS) == (
        dataset.PRE_R_SAMPLES, patient.N_CONTEXT, patient.RR_RATIOS)


@pytest.mark.parametrize(("instance", "message"), [
    ({"beat": [0.5] * 187, "pre": [0.5] * 35}, "'pre' must be a list of 36 numbers"),
    ({"beat": [0.5] * 187, "pre": [None] * 36}, "'pre' holds None, expected finite numbers"),
    ({"beat": [0.5] * 187, "context": [0.5] * (inference.N_CONTEXT - 1) + [True]},
     "'context' holds True, expected finite numbers or null"),
])
def test_json_bad_pre_or_context_is_named(instance, message):
    with pytest.raises(ValueError, match=f"instance 1: {message}"):
        inference.input_fn(json.dumps({"instances": [instance]}), "application/json")


def test_json_context_nulls_read_as_unknown():
    context = [0.9] * (inference.N_CONTEXT - 1) + [None]
    data = inference.input_fn(json.dumps({"instances": [{"beat": [0.5] * 187, "context": context}, [0.5] * 187]}),
                              "application/json")
    assert data["pre"] is None
    unknown = [[False] * (inference.N_CONTEXT - 1) + [True], [True] * inference.N_CONTEXT]
    np.testing.assert_array_equal(np.isnan(data["context"]), unknown)


def test_window_length_reads_the_padding():
    rows = np.zeros((2, 187), dtype=np.float32)
    rows[0, :100] = 0.5
    rows[1, :] = 0.5
    assert inference.window_lengths(rows).tolist() == [100, 187]


# --- the round trip through model.tar.gz, as the SageMaker container and the endpoint server do ---

def load_by_file(path: Path):
    """The inference module imported by file as a fresh module, as the container imports it."""
    spec = importlib.util.spec_from_file_location(f"inference_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def container(small_model_tar, tmp_path_factory):
    """model.tar.gz extracted, code/inference.py imported by file as a fresh module, model_fn called."""
    folder = tmp_path_factory.mktemp("opt_ml_model")
    with tarfile.open(small_model_tar) as tar:
        tar.extractall(folder, filter="data")
    module = load_by_file(folder / "code" / "inference.py")
    return module, module.model_fn(str(folder))


@pytest.fixture(scope="module")
def sample_beats(mitdb_beats):
    return mitdb_beats.subset(np.arange(0, len(mitdb_beats), 997))


def invoke(container, body, content_type):
    module, model = container
    prediction = module.predict_fn(module.input_fn(body, content_type), model)
    response, response_type = module.output_fn(prediction, "application/json")
    assert response_type == "application/json"
    return json.loads(response)


def test_round_trip_csv(container, sample_beats, small_model_tar):
    from hbcore.model.training import load_model, predict_proba

    rows = np.round(sample_beats.X, 4)
    result = invoke(container, csv_body(rows).encode(), "text/csv")
    expected = predict_proba(load_model(small_model_tar), rows)
    assert result["model_version"] == container[1]["version"]
    assert len(result["predictions"]) == len(rows)
    assert [p["class_index"] for p in result["predictions"]] == expected.argmax(axis=1).tolist()
    assert [p["class_name"] for p in result["predictions"]] == [CLASS_NAMES[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([p["probabilities"] for p in result["predictions"]], expected, atol=1e-5)


def test_round_trip_json_uses_rr(container, sample_beats, small_model_tar):
    from hbcore.model.training import load_model, predict_proba, rr_of

    rr = rr_of(sample_beats)
    instances = [{"beat": beat.tolist(), **{key: None if np.isnan(v) else float(v)
                                            for key, v in zip(inference.RR_KEYS, r)}}
                 for beat, r in zip(sample_beats.X, rr)]
    result = invoke(container, json.dumps({"instances": instances}), "application/json")
    expected = predict_proba(load_model(small_model_tar), sample_beats.X, rr)
    np.testing.assert_allclose([p["probabilities"] for p in result["predictions"]], expected, atol=1e-5)
    assert not np.allclose(expected, predict_proba(load_model(small_model_tar), sample_beats.X), atol=1e-3)


def test_probabilities_sum_to_one(container, sample_beats):
    result = invoke(container, json.dumps(sample_beats.X.tolist()), "application/json")
    sums = [sum(p["probabilities"]) for p in result["predictions"]]
    np.testing.assert_allclose(sums, 1.0, atol=1e-4)


# --- model.npz: read with numpy alone, bad archives named ---

@pytest.fixture
def model_dir(synthetic_model_tar, tmp_path) -> Path:
    with tarfile.open(synthetic_model_tar) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


def save_arrays(model_dir: Path, **changes) -> None:
    """Rewrite model_dir/model.npz with some arrays replaced (None removes one)."""
    arrays = inference.load_arrays(str(model_dir))
    arrays.update(changes)
    np.savez(model_dir / inference.MODEL_FILE, **{key: value for key, value in arrays.items() if value is not None})


def test_serving_runs_without_scikit_learn_or_joblib(model_dir, container_python, tmp_path):
    """A fresh interpreter imports code/inference.py, serves CSV beats as this one does, and never
    loads scikit-learn, joblib or scipy."""
    body = tmp_path / "body.csv"
    body.write_text(csv_body(beats_array(5)))
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('inference', {str(model_dir / 'code' / 'inference.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"data = module.input_fn(open({str(body)!r}, 'rb').read(), 'text/csv')\n"
        f"prediction = module.predict_fn(data, module.model_fn({str(model_dir)!r}))\n"
        "print(sorted(name for name in ('sklearn', 'joblib', 'scipy') if name in sys.modules))\n"
        "print(module.output_fn(prediction, None)[0])\n"
    )
    result = subprocess.run([container_python, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded, response = result.stdout.splitlines()
    module, model = load_by_file(model_dir / "code" / "inference.py"), inference.model_fn(str(model_dir))
    expected = module.output_fn(module.predict_fn(module.input_fn(body.read_bytes(), "text/csv"), model), None)[0]
    assert loaded == "[]"
    served, here = json.loads(response)["predictions"], json.loads(expected)["predictions"]
    assert [p["class_index"] for p in served] == [p["class_index"] for p in here]
    # another numpy's BLAS may round the last float32 bit differently; the JSON holds 6 decimals
    np.testing.assert_allclose([p["probabilities"] for p in served], [p["probabilities"] for p in here], atol=2e-6)


def test_serving_runs_without_threadpoolctl(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails, as where it is not installed
    module = load_by_file(model_dir / "code" / "inference.py")
    beats = beats_array(4)
    expected = inference.predict_fn({"beats": beats, "rr": None}, inference.model_fn(str(model_dir)))
    prediction = module.predict_fn({"beats": beats, "rr": None}, module.model_fn(str(model_dir)))
    assert module.BLAS is None
    np.testing.assert_array_equal(prediction["probabilities"], expected["probabilities"])


def test_model_of_an_earlier_release_says_to_retrain(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"a model of an earlier release \(model.joblib.*retrain it"):
        inference.model_fn(str(tmp_path))


def test_model_npz_that_is_not_an_archive_is_named(model_dir):
    (model_dir / inference.MODEL_FILE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"model.npz is not a numpy archive of plain arrays"):
        inference.model_fn(str(model_dir))


def test_model_npz_with_a_pickled_array_is_refused(model_dir):
    save_arrays(model_dir, classes=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a numpy archive of plain arrays"):
        inference.model_fn(str(model_dir))


@pytest.mark.parametrize(("changes", "message"), [
    ({"feature_version": np.array(99)}, "trained for feature version 99"),
    ({"format": np.array(1)}, "model format 1, this inference module reads format 2"),
    ({"feature_columns": np.arange(3)}, "feature_columns must be"),
    ({"decision_weights": np.zeros(5)}, "decision_weights must be one positive number per class"),
    ({"version": None}, "no 'version' array"),
    ({"intercept_1": None}, "coef_1 has no intercept_1"),
    ({"coef_1": np.zeros((3, 5), np.float32)}, "layer 1 has shapes"),
    ({"classes": np.array([0, 1, 2, 3, 7])}, "are not indices into"),
    ({"activation": np.array("swish")}, "hidden activation 'swish'"),
])
def test_inconsistent_model_arrays_are_named(model_dir, changes, message):
    save_arrays(model_dir, **changes)
    with pytest.raises(ValueError, match=message):
        inference.model_fn(str(model_dir))
