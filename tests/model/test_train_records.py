"""``python -m hbcore train --train-records A,B --test-records C,D``: any patient split, scored over N, S, V, F."""

from __future__ import annotations

import json

import pytest

from hbcore import cli
from hbcore.data.dataset import build_beats


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_and_score_on_two_plus_two_records(mitdb_dir, tmp_path, capsys):
    out_path = tmp_path / "model.tar.gz"
    code, out, err = _run(capsys, "--mitdb", str(mitdb_dir), "--train-records", "106,118",
                          "--test-records", "100, 213", "--max-iter", "2", "--out", str(out_path))
    assert code == 0, err
    result = json.loads(out)
    assert result["split"] == "records" and result["classes"] == ["N", "S", "V", "F"]
    assert result["train_records"] == ["106", "118"] and result["test_records"] == ["100", "213"]
    assert set(result["per_class"]) == {"N", "S", "V", "F"} and len(result["confusion"]) == 4
    # The test part is exactly the N, S, V, F beats of records 100 and 213.
    test_beats = build_beats(mitdb_dir, ["100", "213"])
    assert sum(map(sum, result["confusion"])) == int((test_beats.y < 4).sum())
    assert result["n_test"] == len(test_beats)
    assert {"accuracy", "macro_f1", "kappa", "ec57", "train_seconds", "all_n_baseline"} <= set(result)
    assert 0.0 <= result["accuracy"] <= 1.0 and out_path.is_file()


def test_a_bad_record_name_is_one_line_naming_it(mitdb_dir, tmp_path, capsys):
    code, out, err = _run(capsys, "--mitdb", str(mitdb_dir), "--train-records", "106,118",
                          "--test-records", "100,999", "--out", str(tmp_path / "m.tar.gz"))
    assert code == cli.USER_ERROR_EXIT and out == ""
    assert err.startswith("error: record '999' (test) is not among the 48 records here") and err.count("\n") == 1


def test_overlapping_records_are_refused(mitdb_dir, tmp_path, capsys):
    code, _out, err = _run(capsys, "--mitdb", str(mitdb_dir), "--train-records", "106,100",
                           "--test-records", "100,213", "--out", str(tmp_path / "m.tar.gz"))
    assert code == cli.USER_ERROR_EXIT
    assert "records 100 are in both the train and the test records" in err


def test_records_and_split_do_not_combine(tmp_path, capsys):
    code, _out, err = _run(capsys, "--split", "inter", "--train-records", "106", "--test-records", "100",
                           "--out", str(tmp_path / "m.tar.gz"))
    assert code == cli.USER_ERROR_EXIT and "drop --split and --csv" in err


def test_one_side_alone_is_refused(tmp_path, capsys):
    code, _out, err = _run(capsys, "--train-records", "106", "--out", str(tmp_path / "m.tar.gz"))
    assert code == cli.USER_ERROR_EXIT and "--train-records and --test-records go together" in err


@pytest.mark.parametrize("value", ["101,,106", "101,101"])
def test_a_malformed_record_list_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--train-records", value, "--test-records", "100"])
    assert exit_info.value.code == 2 and value in capsys.readouterr().err
