"""``python -m hbcore``: everything a page of the app can do, headless.

The only argparse of the package (with ``deploy/__main__.py`` for AWS, and the SageMaker entry point,
which runs on its own in the training container). Each command reads its options, calls one plain
function of the library and prints what it returns. The library is imported only when its command
runs, so ``--help`` stays fast. A failure the user can act on (:class:`hbcore.errors.HbError`, a
missing file, a bad value) becomes one redacted line on stderr and exit code 2; an AWS call that
failed (anything botocore raised, whatever the endpoint answered) one redacted line and exit code 1,
as does a command whose run completed but failed its own check (beats lost, a target missed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from hbcore.aws.redaction import redact, sdk_error_message
from hbcore.errors import HbError

USER_ERROR_EXIT = 2
AWS_ERROR_EXIT = 1  # an AWS call failed (as deploy/__main__.py)
INTERRUPTED_EXIT = 130


# --- the commands -----------------------------------------------------------------------------------

def _print_json(result: object) -> int:
    print(json.dumps(result))
    return 0


def _print_flushed(line: str) -> None:
    """A table row of a long benchmark, visible as soon as it is measured."""
    print(line, flush=True)


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr)


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    """Figures for the JSON line: three decimals are beyond any benchmark's noise."""
    return {name: round(value, 3) for name, value in figures.items()}


def cmd_data_build(args: argparse.Namespace) -> int:
    from hbcore.data import dataset

    return _print_json(dataset.run_build(mitdb=args.mitdb, recipe=args.recipe, out=args.out))


def cmd_data_download(args: argparse.Namespace) -> int:
    from hbcore.data import physionet

    return _print_json(physionet.run_download(dest=args.dir))


def cmd_train(args: argparse.Namespace) -> int:
    """The test figures as JSON; over N, S, V, F for inter-patient splits (``--split inter``, records)."""
    from hbcore.model import metrics, training

    result = training.run_train(split=args.split, csv=args.csv, mitdb=args.mitdb, out=args.out, max_iter=args.max_iter,
                                preset=args.preset, seed=args.seed, train_records=args.train_records or (),
                                test_records=args.test_records or ())
    intra = args.split in (None, "intra") and not args.train_records
    return _print_json(result if intra else metrics.inter_patient_figures(result))


def cmd_select_model(args: argparse.Namespace) -> int:
    """Each candidate's DS1 cross-validation on stdout as it ends, then each context setting's for the
    chosen one (``selection.FEATURE_SWEEPS``), then the whole result as JSON."""
    from hbcore.model import selection

    return _print_json(selection.run_select(mitdb=args.mitdb, candidates=args.candidates, n_folds=args.folds))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hbcore.model import training

    return _print_json(training.run_evaluate(model_path=args.model, csv_path=args.csv))


def cmd_bench_model(args: argparse.Namespace) -> int:
    """The report, the targets met or missed, one JSON line; exit 1 when a target is missed."""
    from hbcore.bench import modelbench

    result = modelbench.run_bench_model(mitdb=args.mitdb, seeds=args.seeds, log=_print_progress)
    modelbench.print_report(result)
    return 0 if all(target["met"] for target in result["targets"]) else 1


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    """The medians table, the targets met, one JSON line; exit 1 when a target is missed."""
    from hbcore.bench import pipelinebench

    result = pipelinebench.run_bench_pipeline(beats=args.beats, latency_rate=args.latency_rate,
                                              repeats=args.repeats, model=args.model, mitdb=args.mitdb)
    pipelinebench.print_table({phase: result[phase] for phase in result["runs"]})
    print(f"medians of {args.repeats} run(s) per phase; counts and agreement: the worst run")
    for target, ok in result["targets"].items():
        print(f"{'met' if ok else 'MISSED':<7}{target}")
    print(json.dumps(result))
    return 0 if all(result["targets"].values()) else 1


def cmd_bench_faults(args: argparse.Namespace) -> int:
    """The fault table row by row, one JSON line; exit 1 when a scenario lost or duplicated beats."""
    from hbcore.bench import faultbench

    result = faultbench.run_bench_faults(beats=args.beats, rate=args.rate, model=args.model,
                                         scenarios=args.scenario, mitdb=args.mitdb, log=_print_flushed)
    print(json.dumps(result))
    failed = sum(not row["exactly_once"] for row in result["scenarios"])
    print(f"{failed} scenario(s) lost or duplicated beats", file=sys.stderr)
    return 0 if result["all_exactly_once"] else 1


def cmd_bench_soak(args: argparse.Namespace) -> int:
    """A line per sample, the summary, one JSON line; exit 1 unless every beat came back exactly once."""
    from hbcore.bench import soakbench

    summary, samples = soakbench.run_bench_soak(
        minutes=args.minutes, rate=args.rate, sample_s=args.sample_s, log_retention_s=args.log_retention_s,
        model=args.model, mitdb=args.mitdb, log=_print_flushed)
    width = max(map(len, summary))
    for name, value in summary.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps({"bench": "soak", **summary, "samples": samples}))
    return 0 if summary["exactly_once"] else 1


def cmd_bench_app(args: argparse.Namespace) -> int:
    from hbcore.bench import appbench
    from hbcore.bench.table import print_figures

    print_figures("app", appbench.run_bench_app(predictions=args.predictions, browser=args.browser,
                                                timeout_s=args.timeout, runs=args.runs or appbench.DEMO_RUNS))
    return 0


def cmd_bench_stages(args: argparse.Namespace) -> int:
    from hbcore.bench import stagebench
    from hbcore.bench.table import print_figures

    figures = stagebench.run_bench_stages(repeats=args.repeats, put_beats=args.put_beats,
                                          patched_moto=args.patched_moto, reader_lines=args.reader_lines)
    print_figures("stages", figures, {"patched_moto": args.patched_moto, **_rounded(figures)})
    return 0


def cmd_bench_cloud(args: argparse.Namespace) -> int:
    from hbcore.bench import cloudbench
    from hbcore.bench.table import print_figures

    figures = cloudbench.run_bench_cloud(repeats=args.repeats, model=args.model, moto_fill=args.moto_fill,
                                         poller_records=args.poller_records, beats=args.beats,
                                         retention_s=args.retention_s)
    print_figures("cloud", figures, _rounded(figures))
    return 0


def cmd_bench_alarms(args: argparse.Namespace) -> int:
    """Both sources' tables, targets and JSON lines; exit 1 when the system misses the minimum to resolve.

    ``--select-af``: the DS1 cross-validation of the AF detector instead.
    """
    from hbcore.bench import alarmbench

    if args.select_af:
        alarmbench.print_select_af(alarmbench.run_select_af(mitdb=args.mitdb, log=_print_progress))
        return 0
    results = alarmbench.run_bench_alarms(mitdb=args.mitdb, model=args.model, records=args.records,
                                          log=_print_progress)
    alarmbench.print_report(results)
    return 0 if alarmbench.minimum_met(results) else 1


def cmd_cloud_up(args: argparse.Namespace) -> int:
    """The URLs and the two export lines; exit 1 (and the running one's exports) when one already runs."""
    from hbcore.localcloud import owner

    state, started = owner.start_detached(port=args.port, runtime_port=args.runtime_port)
    if not started:
        print(f"A local cloud is already running (pid {state['pid']}); `python -m hbcore cloud down` stops it.\n"
              + owner.exports(state))
        return 1
    print(f"local cloud running (pid {state['pid']}, log {owner.detached_log_file()})\n"
          f"moto:              {state['moto_url']}\n"
          f"sagemaker-runtime: {state['sagemaker_runtime_url']}\n\n" + owner.exports(state))
    return 0


def cmd_cloud_down(args: argparse.Namespace) -> int:
    from hbcore.localcloud import owner

    state = owner.stop_detached()
    print("no local cloud is running" if state is None else f"local cloud (pid {state['pid']}) stopped")
    return 0


def cmd_cloud_status(args: argparse.Namespace) -> int:
    from hbcore.localcloud import owner

    print(json.dumps(owner.detached_status(), indent=2))
    return 0


def cmd_cloud_serve(args: argparse.Namespace) -> int:
    """The state as one JSON line once healthy (``cloud up`` reads the state file instead), then serve."""
    from hbcore.localcloud import server

    server.run_serve(port=args.port, runtime_port=args.runtime_port, retention_s=args.retention_s,
                     log_retention_s=args.log_retention_s, state_file=args.state_file, parent_pid=args.parent_pid,
                     on_ready=lambda state: print(json.dumps(state), flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Progress on stderr, the summary JSON on stdout; exit 1 when beats were lost."""
    from hbcore.app import demo

    summary = demo.run_demo(n_beats=args.beats, rate_bps=args.rate, records=args.records,
                                 model_path=Path(args.model) if args.model else None, mitdb=args.mitdb,
                                 log=_print_progress, aggregate=args.aggregate, split=args.split)
    print(json.dumps(summary, indent=2))
    return 0 if summary["lost"] == 0 else 1


# --- the parser -------------------------------------------------------------------------------------

def rate_bps(value: str) -> float | None:
    """``--rate``: beats per second, or ``max`` (None: as fast as the stream takes them)."""
    if value == "max":
        return None
    with contextlib.suppress(ValueError):
        if (rate := float(value)) > 0:
            return rate
    raise argparse.ArgumentTypeError(f"{value!r}: expected beats per second > 0, or 'max'")


def record_names(value: str) -> list[str]:
    """``--train-records`` / ``--test-records``: comma-separated record names, none blank or repeated."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{value!r}: expected record names separated by commas, e.g. 101,106")
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"{value!r}: a record is named twice")
    return names


def _add_mitdb(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mitdb",
        help="folder with the MIT-BIH WFDB records (default: $HB_DATA_DIR/mitdb, then the download cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; each command's ``run`` default is its ``cmd_*`` function."""
    parser = argparse.ArgumentParser(
        prog="python -m hbcore",
        description="Real-time heartbeat classification on MIT-BIH: data, model, local cloud, demo.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = commands.add_parser("data", help="build or download the MIT-BIH beat dataset")
    data_commands = data.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    build = data_commands.add_parser("build", help="build (and cache) beat windows from WFDB records")
    build.set_defaults(run=cmd_data_build)
    _add_mitdb(build)
    build.add_argument("--out", help="also write the dataset to this folder (npz + parquet metadata)")
    build.add_argument("--recipe", choices=("paper", "kaggle"),
                       help="paper (default): 125 Hz, 1.2 x median RR of 10 s (Kachuee 2018 as written); "
                            "kaggle: what the Kaggle rows hold (every 3rd sample, 1.2 x next RR)")
    download = data_commands.add_parser("download", help="download mitdb from PhysioNet with wfdb")
    download.set_defaults(run=cmd_data_download)
    download.add_argument("--dir", help="destination folder (default: the cache's mitdb/)")

    train = commands.add_parser("train", help="train the classifier and write model.tar.gz")
    train.set_defaults(run=cmd_train)
    train.add_argument("--split", choices=("intra", "inter"), default=None,
                              help="intra-patient 80/20 beats (Kaggle convention; the default) or inter-patient "
                                   "DS1/DS2")
    train.add_argument("--train-records", type=record_names, default=None, metavar="A,B,...",
                       help="train on these MIT-BIH records (comma-separated; with --test-records, instead of --split)")
    train.add_argument("--test-records", type=record_names, default=None, metavar="C,D,...",
                       help="score on these records, none of them a training record (N, S, V, F, as --split inter)")
    _add_mitdb(train)
    train.add_argument("--csv", action="append", default=[],
                              help="train on Kaggle-format CSV file(s) instead of WFDB records (repeatable)")
    train.add_argument("--out", default="model.tar.gz", help="where to write the model artifact")
    train.add_argument("--max-iter", type=int, default=None,
                              help="training epochs of the network (default: the split's benchmarked value)")
    train.add_argument("--preset", choices=("default", "quick"), default="default",
                       help="the split's benchmarked parameters, or quick ones (seconds to train, lower scores)")
    train.add_argument("--seed", type=int, default=None, help="the training seed (default: the preset's, 0)")

    select = commands.add_parser("select-model",
                                 help="choose the inter-patient model by leave-records-out cross-validation in DS1")
    select.set_defaults(run=cmd_select_model)
    _add_mitdb(select)
    select.add_argument("--candidates", type=lambda text: text.split(","), default=None, metavar="A,B,...",
                        help="cross-validate only these candidates of hbcore.model.selection.CANDIDATES")
    select.add_argument("--folds", type=int, default=4, help="record-group folds of DS1 (default: 4)")

    evaluate = commands.add_parser("evaluate", help="evaluate a model.tar.gz on a Kaggle-format CSV")
    evaluate.set_defaults(run=cmd_evaluate)
    evaluate.add_argument("--model", required=True, help="path to model.tar.gz")
    evaluate.add_argument("--csv", required=True, help="Kaggle-format CSV (.csv or .csv.gz)")

    _add_bench(commands)
    _add_cloud(commands)

    demo = commands.add_parser("demo", help="run the whole pipeline locally and print a JSON summary")
    demo.set_defaults(run=cmd_demo)
    demo.add_argument("--beats", type=int, default=2000, help="beats to stream")
    demo.add_argument("--rate", type=rate_bps, default="max", help="beats per second, or 'max'")
    demo.add_argument("--records", nargs="*", default=None,
                             help="MIT-BIH records to replay (default: test split)")
    demo.add_argument("--model", help="an existing model.tar.gz (default: train one, or reuse the cached one)")
    demo.add_argument("--split", choices=("inter", "intra"), default="inter",
                      help="inter: a model trained on DS1 streams the unseen DS2 patients (default); intra: test "
                           "beats of patients the model has seen (a quick model first, the full one deployed in place)")
    demo.add_argument("--aggregate", action=argparse.BooleanOptionalAction, default=True,
                      help="pack each record's beats into KPL-aggregated Kinesis records, as the Kinesis "
                           "Producer Library does: about 20 times fewer PUT payload units and more beats per "
                           "shard on AWS (default; --no-aggregate sends a record per beat)")
    _add_mitdb(demo)
    return parser


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="benchmarks: a table on stdout and a JSON line")
    bench_commands = bench.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    served_model = "model.tar.gz to serve (default: the demo's model, trained if absent)"

    model = bench_commands.add_parser(
        "model", help="inter- and intra-patient figures over seeds, EC57 per class and record, targets")
    model.set_defaults(run=cmd_bench_model)
    model.add_argument("--seeds", type=int, default=3,
                       help="train each split with model seeds 0..N-1; figures: mean and spread, never the best seed")
    _add_mitdb(model)

    pipeline = bench_commands.add_parser("pipeline", help="end-to-end throughput, latency, memory")
    pipeline.set_defaults(run=cmd_bench_pipeline)
    pipeline.add_argument("--beats", type=int, default=100_000, help="beats to stream")
    pipeline.add_argument("--latency-rate", type=float, default=500.0, help="beats/s for the latency measurement")
    pipeline.add_argument("--repeats", type=int, default=3,
                          help="runs of each phase, each in a fresh local cloud (medians reported)")
    pipeline.add_argument("--model", help=served_model)
    _add_mitdb(pipeline)

    faults = bench_commands.add_parser("faults", help="inject faults during replays; count lost/duplicated")
    faults.set_defaults(run=cmd_bench_faults)
    faults.add_argument("--beats", type=int, default=3000, help="beats per fault scenario")
    faults.add_argument("--rate", type=float, default=500.0, help="replay rate in beats/s")
    faults.add_argument("--model", help=served_model)
    faults.add_argument("--scenario", action="append", default=[],
                        help="run only this scenario (its name in the table; repeatable)")
    _add_mitdb(faults)

    soak = bench_commands.add_parser("soak", help="steady replay for minutes: memory, latency, nothing lost")
    soak.set_defaults(run=cmd_bench_soak)
    soak.add_argument("--minutes", type=float, default=10.0, help="how long to replay")
    soak.add_argument("--rate", type=float, default=500.0, help="replay rate in beats/s")
    soak.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples")
    soak.add_argument("--log-retention-s", type=float, default=None,
                      help="how long the local cloud keeps log events (default: its 15 min; "
                           "shorter reaches the steady state sooner)")
    soak.add_argument("--model", help=served_model)
    _add_mitdb(soak)

    app = bench_commands.add_parser("app", help="the app: monitor refresh, first paint, demo to predictions")
    app.set_defaults(run=cmd_bench_app)
    app.add_argument("--predictions", type=int, default=100_000, help="predictions behind the monitor refresh")
    app.add_argument("--no-browser", dest="browser", action="store_false",
                     help="skip the headless-Chromium timings (first paint, demo to first predictions)")
    app.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the demo's predictions")
    app.add_argument("--runs", type=int, default=None,
                     help="cold runs (empty cache), cached and settled runs (beats, full model stored); medians "
                          "(default: 7, as few as the cached medians allow)")

    stages = bench_commands.add_parser("stages", help="handler, replay and reader costs, each on its own")
    stages.set_defaults(run=cmd_bench_stages)
    stages.add_argument("--repeats", type=int, default=30, help="timed repeats per figure (medians reported)")
    stages.add_argument("--put-beats", type=int, default=20_000,
                        help="beats the replay puts into a loopback moto server (0: skip)")
    stages.add_argument("--patched-moto", action="store_true",
                        help="apply hbcore.localcloud.motopatches to that moto server, as the local cloud does")
    stages.add_argument("--reader-lines", type=int, default=100_000, help="prediction lines the reader parses")

    cloud = bench_commands.add_parser("cloud", help="local cloud: moto put cost, invoke round trip, poller, memory")
    cloud.set_defaults(run=cmd_bench_cloud)
    cloud.add_argument("--repeats", type=int, default=20, help="timed repeats per figure (medians reported)")
    cloud.add_argument("--model", help="model.tar.gz to serve (default: train a small one on sample rows)")
    cloud.add_argument("--moto-fill", type=int, default=100_000,
                       help="records in the shard for the put-cost figures, plain and patched moto (0: skip)")
    cloud.add_argument("--poller-records", type=int, default=20_000,
                       help="records each poller figure drains (0: skip)")
    cloud.add_argument("--beats", type=int, default=100_000, help="stream records of the memory soak (0: skip)")
    cloud.add_argument("--retention-s", type=float, default=None,
                       help="the soak cloud's Kinesis retention (default: the local cloud's)")

    alarms = bench_commands.add_parser(
        "alarms", help="rhythm events on DS2 vs MIT-BIH's annotations (EC57 episode Se/+P), two sources")
    alarms.set_defaults(run=cmd_bench_alarms)
    alarms.add_argument("--model", help="a DS1-trained inter-patient model.tar.gz (default: train one on DS1)")
    alarms.add_argument("--records", type=record_names, default=None, metavar="A,B,...",
                        help="records to score (default: DS2; DS1 is where the detector was tuned)")
    alarms.add_argument("--select-af", action="store_true",
                        help="print the DS1 leave-one-record-out selection of the AF detector instead")
    _add_mitdb(alarms)


def _add_cloud(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cloud = commands.add_parser("cloud", help="the embedded local cloud (moto + endpoint server + poller)")
    cloud_commands = cloud.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    up = cloud_commands.add_parser("up", help="start a detached local cloud and print its endpoint URLs")
    up.set_defaults(run=cmd_cloud_up)
    up.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    up.add_argument("--runtime-port", type=int, default=0, help="SageMaker runtime port (default: a free one)")
    down = cloud_commands.add_parser("down", help="stop the detached local cloud")
    down.set_defaults(run=cmd_cloud_down)
    status = cloud_commands.add_parser("status", help="print the local cloud's state as JSON")
    status.set_defaults(run=cmd_cloud_status)
    serve = cloud_commands.add_parser("serve", help="run the local cloud in the foreground (used by 'up')")
    serve.set_defaults(run=cmd_cloud_serve)
    serve.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    serve.add_argument("--runtime-port", type=int, default=0, help="SageMaker runtime port (default: a free one)")
    serve.add_argument("--retention-s", type=float, default=None,
                       help="drop Kinesis records every mapping has consumed once older than this (default 30 s)")
    serve.add_argument("--log-retention-s", type=float, default=None,
                       help="drop log events once older than this (default 900 s)")
    serve.add_argument("--state-file", help="write the endpoint URLs here once healthy")
    serve.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone (0: never)")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; a user error prints one redacted line to stderr and exits 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (HbError, FileNotFoundError, ValueError) as error:
        # The first line says what failed and what to do; the rest (a child's log tail) is for logs.
        first_line = redact(str(error)).partition("\n")[0]
        print(f"error: {first_line}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT
    except Exception as error:
        message = sdk_error_message(error)
        if message is None:
            raise  # a bug: its traceback is what fixes it
        print(f"error: {message}", file=sys.stderr)
        return AWS_ERROR_EXIT
