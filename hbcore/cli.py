"""``python -m hbcore``: everything a page of the app can do, headless.

Each command is a thin wrapper: argparse here, the work in the module named in ``COMMANDS``. Modules
are imported only when their command runs, so ``--help`` stays fast. Errors go to stderr with a
non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from hbcore.aws.redaction import redact

# command path -> "module:function"; the function takes the parsed args and returns an exit code.
COMMANDS: dict[tuple[str, ...], str] = {
    ("data", "build"): "hbcore.data.dataset:cli_build",
    ("data", "download"): "hbcore.data.physionet:cli_download",
    ("train",): "hbcore.model.training:cli_train",
    ("evaluate",): "hbcore.model.training:cli_evaluate",
    ("bench", "model"): "hbcore.bench.modelbench:cli_bench_model",
    ("bench", "pipeline"): "hbcore.bench.pipelinebench:cli_bench_pipeline",
    ("bench", "faults"): "hbcore.bench.faultbench:cli_bench_faults",
    ("bench", "soak"): "hbcore.bench.soakbench:cli_bench_soak",
    ("bench", "app"): "hbcore.bench.appbench:cli_bench_app",
    ("bench", "stages"): "hbcore.bench.stagebench:cli_bench_stages",
    ("bench", "cloud"): "hbcore.bench.cloudbench:cli_bench_cloud",
    ("cloud", "up"): "hbcore.localcloud.owner:cli_up",
    ("cloud", "down"): "hbcore.localcloud.owner:cli_down",
    ("cloud", "status"): "hbcore.localcloud.owner:cli_status",
    ("cloud", "serve"): "hbcore.localcloud.server:cli_serve",
    ("demo",): "hbcore.app.demo:cli_demo",
}


class CliError(Exception):
    """An error to report to the user in one line (no traceback), exit code 2."""


def _add_mitdb(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mitdb",
        help="folder with the MIT-BIH WFDB records (default: $HB_DATA_DIR/mitdb, then the download cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by the tests to check every command has help)."""
    parser = argparse.ArgumentParser(
        prog="python -m hbcore",
        description="Real-time heartbeat classification on MIT-BIH: data, model, local cloud, demo.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = commands.add_parser("data", help="build or download the MIT-BIH beat dataset")
    data_commands = data.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    build = data_commands.add_parser("build", help="build (and cache) beat windows from WFDB records")
    _add_mitdb(build)
    build.add_argument("--out", help="also write the dataset to this folder (npz + parquet metadata)")
    build.add_argument("--recipe", choices=("paper", "kaggle"),
                       help="paper (default): 125 Hz, 1.2 x median RR of 10 s (Kachuee 2018 as written); "
                            "kaggle: what the Kaggle rows hold (every 3rd sample, 1.2 x next RR)")
    download = data_commands.add_parser("download", help="download mitdb from PhysioNet with wfdb")
    download.add_argument("--dir", help="destination folder (default: the cache's mitdb/)")

    train = commands.add_parser("train", help="train the classifier and write model.tar.gz")
    train.add_argument("--split", choices=("intra", "inter"), default="intra",
                       help="intra-patient 80/20 beats (Kaggle convention) or inter-patient DS1/DS2")
    _add_mitdb(train)
    train.add_argument("--csv", action="append", default=[],
                       help="train on Kaggle-format CSV file(s) instead of WFDB records (repeatable)")
    train.add_argument("--out", default="model.tar.gz", help="where to write the model artifact")
    train.add_argument("--max-iter", type=int, default=None,
                       help="training epochs of the network (default: the split's benchmarked value)")

    evaluate = commands.add_parser("evaluate", help="evaluate a model.tar.gz on a Kaggle-format CSV")
    evaluate.add_argument("--model", required=True, help="path to model.tar.gz")
    evaluate.add_argument("--csv", required=True, help="Kaggle-format CSV (.csv or .csv.gz)")

    bench = commands.add_parser("bench", help="benchmarks: a table on stdout and a JSON line")
    bench_commands = bench.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    bench_model = bench_commands.add_parser("model", help="accuracy, macro-F1, training time, inference rate")
    _add_mitdb(bench_model)
    bench_pipeline = bench_commands.add_parser("pipeline", help="end-to-end throughput, latency, memory")
    bench_pipeline.add_argument("--beats", type=int, default=100_000, help="beats to stream")
    bench_pipeline.add_argument("--latency-rate", type=float, default=500.0,
                                help="beats/s for the latency measurement")
    bench_pipeline.add_argument("--repeats", type=int, default=3,
                                help="runs of each phase, each in a fresh local cloud (medians reported)")
    bench_pipeline.add_argument("--model", help="model.tar.gz to serve (default: the demo's model, trained if absent)")
    _add_mitdb(bench_pipeline)
    bench_faults = bench_commands.add_parser("faults", help="inject faults during replays; count lost/duplicated")
    bench_faults.add_argument("--beats", type=int, default=3000, help="beats per fault scenario")
    bench_faults.add_argument("--rate", type=float, default=500.0, help="replay rate in beats/s")
    bench_faults.add_argument("--model", help="model.tar.gz to serve (default: the demo's model, trained if absent)")
    bench_faults.add_argument("--scenario", action="append", default=[],
                              help="run only this scenario (its name in the table; repeatable)")
    _add_mitdb(bench_faults)
    bench_soak = bench_commands.add_parser("soak", help="steady replay for minutes: memory, latency, nothing lost")
    bench_soak.add_argument("--minutes", type=float, default=10.0, help="how long to replay")
    bench_soak.add_argument("--rate", type=float, default=500.0, help="replay rate in beats/s")
    bench_soak.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples")
    bench_soak.add_argument("--log-retention-s", type=float, default=None,
                            help="how long the local cloud keeps log events (default: its 15 min; "
                                 "shorter reaches the steady state sooner)")
    bench_soak.add_argument("--model", help="model.tar.gz to serve (default: the demo's model, trained if absent)")
    _add_mitdb(bench_soak)
    bench_app = bench_commands.add_parser("app", help="the app: monitor refresh, first paint, demo to predictions")
    bench_app.add_argument("--predictions", type=int, default=100_000, help="predictions behind the monitor refresh")
    bench_app.add_argument("--no-browser", dest="browser", action="store_false",
                           help="skip the headless-Chromium timings (first paint, demo to first predictions)")
    bench_app.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the demo's predictions")
    bench_stages = bench_commands.add_parser("stages", help="handler, replay and reader costs, each on its own")
    bench_stages.add_argument("--repeats", type=int, default=30, help="timed repeats per figure (medians reported)")
    bench_stages.add_argument("--put-beats", type=int, default=20_000,
                              help="beats the replay puts into a loopback moto server (0: skip)")
    bench_stages.add_argument("--patched-moto", action="store_true",
                              help="apply hbcore.localcloud.motopatches to that moto server, as the local cloud does")
    bench_stages.add_argument("--reader-lines", type=int, default=100_000, help="prediction lines the reader parses")

    bench_cloud = bench_commands.add_parser("cloud", help="local cloud: moto put cost, invoke round trip, poller, memory")
    bench_cloud.add_argument("--repeats", type=int, default=20, help="timed repeats per figure (medians reported)")
    bench_cloud.add_argument("--model", help="model.tar.gz to serve (default: train a small one on sample rows)")
    bench_cloud.add_argument("--moto-fill", type=int, default=100_000,
                             help="records in the shard for the put-cost figures, plain and patched moto (0: skip)")
    bench_cloud.add_argument("--poller-records", type=int, default=20_000, help="records each poller figure drains (0: skip)")
    bench_cloud.add_argument("--beats", type=int, default=100_000, help="stream records of the memory soak (0: skip)")
    bench_cloud.add_argument("--retention-s", type=float, default=None,
                             help="the soak cloud's Kinesis retention (default: the local cloud's)")

    cloud = commands.add_parser("cloud", help="the embedded local cloud (moto + endpoint server + poller)")
    cloud_commands = cloud.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    up = cloud_commands.add_parser("up", help="start a detached local cloud and print its endpoint URLs")
    up.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    up.add_argument("--runtime-port", type=int, default=0, help="SageMaker runtime port (default: a free one)")
    cloud_commands.add_parser("down", help="stop the detached local cloud")
    cloud_commands.add_parser("status", help="print the local cloud's state as JSON")
    serve = cloud_commands.add_parser("serve", help="run the local cloud in the foreground (used by 'up')")
    serve.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    serve.add_argument("--runtime-port", type=int, default=0, help="SageMaker runtime port (default: a free one)")
    serve.add_argument("--retention-s", type=float, default=None,
                       help="drop Kinesis records every mapping has consumed once older than this (default 30 s)")
    serve.add_argument("--log-retention-s", type=float, default=None,
                       help="drop log events once older than this (default 900 s)")
    serve.add_argument("--state-file", help="write the endpoint URLs here once healthy")
    serve.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone (0: never)")

    demo = commands.add_parser("demo", help="run the whole pipeline locally and print a JSON summary")
    demo.add_argument("--beats", type=int, default=2000, help="beats to stream")
    demo.add_argument("--rate", default="max", help="beats per second, or 'max'")
    demo.add_argument("--records", nargs="*", default=None, help="MIT-BIH records to replay (default: test split)")
    demo.add_argument("--model", help="an existing model.tar.gz (default: train one, or reuse the cached one)")
    _add_mitdb(demo)
    return parser


def resolve(path: Sequence[str]) -> Callable[[argparse.Namespace], int]:
    """Import the function that implements a command."""
    target = COMMANDS[tuple(path)]
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; user errors print one line to stderr and exit 2."""
    args = build_parser().parse_args(argv)
    path = [args.command] + ([args.subcommand] if getattr(args, "subcommand", None) else [])
    try:
        return resolve(path)(args) or 0
    except (CliError, FileNotFoundError, ValueError) as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
