"""SageMaker script-mode training entry point; also runs locally (``python -m hbcore.model.train_entry``).

In a SageMaker scikit-learn training job (``hbcore.aws.training_job``) this file sits at the top of the
source archive next to the ``hbcore`` package, and the container runs it with the job's
hyperparameters as ``--name value`` arguments (``--max-iter 40`` and ``--max_iter 40`` both work).

Input: the ``train`` channel (``SM_CHANNEL_TRAIN``, or ``--train``) is a folder holding either

- Kaggle-format CSVs (``*.csv``, ``*.csv.gz``; as ``mitbih_train.csv`` is published): all files
  are read and concatenated. They carry no RR intervals, so the model is wave-only; or
- a built beat set (``beats.npz`` + ``meta.parquet``, written by ``python -m hbcore data build
  --out DIR``): MIT-BIH rebuild windows with their RR intervals.

A stratified 20 % of the beats (``--holdout``) is held out for the figures, which are printed as
one JSON line and written to ``SM_OUTPUT_DATA_DIR/metrics.json`` when that is set. Output: the
members of ``model.tar.gz`` (model.npz, metadata.json, code/) as plain files in
``SM_MODEL_DIR`` (or ``--model-dir``), which SageMaker tars into the job's ``model.tar.gz``.

The container is the scikit-learn 1.4-2 image (Python 3.10, scikit-learn 1.4.2, numpy 1.26 or 2.1,
pandas, pyarrow 17): this file and the hbcore modules it imports must run there as they are
(tests/aws/test_pycompat.py checks their syntax, standard-library names and packages against it).

Its argument parser is the one argparse outside ``hbcore.cli`` and ``deploy``, on purpose: the
options are SageMaker's contract (hyperparameters in both spellings, folders from ``SM_*``
variables), not the user's command line; and ``hbcore.cli`` is the package's top layer, which
:mod:`hbcore.model` may not import (tests/test_layers.py) and the container has no use for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hbcore.data.dataset import BeatSet, concatenate, read_beats
from hbcore.data.kaggle import load_kaggle_csv
from hbcore.model import training as hbmodel

CSV_PATTERNS: tuple[str, ...] = ("*.csv", "*.csv.gz")
BEATSET_FILES: tuple[str, ...] = ("beats.npz", "meta.parquet")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Hyperparameters and folders; folder defaults come from SageMaker's environment."""
    defaults = hbmodel.ModelParams()
    parser = argparse.ArgumentParser(description="Train the heartbeat classifier (SageMaker script mode).")
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"),
                        help="folder with Kaggle-format CSVs or a built beat set (default: $SM_CHANNEL_TRAIN)")
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR"),
                        help="where to write model.npz, metadata.json and code/ (default: $SM_MODEL_DIR)")
    parser.add_argument("--output-data-dir", "--output_data_dir", dest="output_data_dir",
                        default=os.environ.get("SM_OUTPUT_DATA_DIR"), help="where to write metrics.json")
    parser.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=defaults.max_iter,
                        help="training epochs at the initial learning rate")
    parser.add_argument("--final-iter", "--final_iter", dest="final_iter", type=int, default=defaults.final_iter,
                        help="then epochs at the lower final learning rate")
    parser.add_argument("--hidden-layers", "--hidden_layers", dest="hidden_layers", default=None,
                        help="hidden layer sizes, comma-separated (default: "
                             f"{','.join(map(str, defaults.hidden_layers))})")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="L2 penalty")
    parser.add_argument("--rr-dropout", "--rr_dropout", dest="rr_dropout", type=float, default=defaults.rr_dropout,
                        help="share of training beats whose RR intervals are hidden")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (weights and RR dropout)")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of beats held out for the figures")
    args = parser.parse_args(argv)
    for name in ("train", "model_dir"):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required outside SageMaker")
    return args


def params_of(args: argparse.Namespace) -> hbmodel.ModelParams:
    """The model hyperparameters named on the command line."""
    hidden = hbmodel.ModelParams().hidden_layers
    if args.hidden_layers:
        try:
            hidden = tuple(int(size) for size in str(args.hidden_layers).split(","))
        except ValueError:
            raise ValueError(f"--hidden-layers {args.hidden_layers!r}: expected sizes like 256,128") from None
    return hbmodel.ModelParams(hidden_layers=hidden, max_iter=args.max_iter, final_iter=args.final_iter,
                               alpha=args.alpha, rr_dropout=args.rr_dropout, seed=args.seed)


def read_channel(folder: Path | str) -> BeatSet:
    """The beats of a training channel: a built beat set, else every Kaggle-format CSV in it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training channel {folder} is not a folder")
    if all((folder / name).is_file() for name in BEATSET_FILES):
        return read_beats(folder)
    paths = sorted({path for pattern in CSV_PATTERNS for path in folder.glob(pattern)})
    if not paths:
        raise FileNotFoundError(f"training channel {folder} holds no *.csv, *.csv.gz or {' + '.join(BEATSET_FILES)}")
    return concatenate(load_kaggle_csv(path) for path in paths)


def holdout_split(beats: BeatSet, holdout: float) -> tuple[BeatSet, BeatSet]:
    """A stratified (train, test) split with the project's fixed seed."""
    from hbcore.data.splits import intra_patient

    if not 0.0 < holdout < 1.0:
        raise ValueError(f"--holdout {holdout}: expected a share in (0, 1)")
    return intra_patient(beats, test_size=holdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate on the holdout, write the model folder; print the figures as one JSON line."""
    args = parse_args(argv)
    beats = read_channel(args.train)
    train, test = holdout_split(beats, args.holdout)
    source = "kaggle-csv" if beats.meta["record"].str.startswith("kaggle:").any() else "beatset"
    model = hbmodel.fit_and_evaluate(train, test, params_of(args), split="intra", source=source)
    hbmodel.write_model_dir(model, args.model_dir)
    line = json.dumps(hbmodel.summary(model))
    if args.output_data_dir:
        Path(args.output_data_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_data_dir) / "metrics.json").write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
