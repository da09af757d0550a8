"""``python -m deploy up | train | status | down | replay-failed``: the pipeline on AWS with one command each.

Credentials come only from the standard chain (``--profile``/``AWS_PROFILE``, environment,
instance role); nothing here reads, stores or prints them, and every error message is redacted.
Progress goes to stderr, results to stdout; errors exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)

import deploy
from deploy import costs
from hbcore.aws import artifacts, failed, images, sizing, stack, training_job
from hbcore.aws import endpoint as serving
from hbcore.aws.backend import Backend
from hbcore.aws.names import DEFAULT_REGION, Names
from hbcore.aws.progress import Progress
from hbcore.aws.redaction import redact, sdk_error_message, user_message


def _progress_printer() -> Progress:
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {message}", file=sys.stderr, flush=True)
    return progress


def resolve_region(region: str | None, profile: str | None) -> str:
    """--region, else the environment, else the profile's configured region, else us-east-1.

    Reads configuration only: no client is created and no credentials are looked up.
    """
    if region:
        return region
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return os.environ[variable]
    return botocore.session.Session(profile=profile).get_config_variable("region") or DEFAULT_REGION


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every option has help text."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", help="AWS region (default: AWS_REGION, the profile's region, then us-east-1)")
    common.add_argument("--prefix", default="hb", help="name prefix of every resource (default: hb)")
    common.add_argument("--profile", help="named profile from ~/.aws/config (default: the standard credential chain)")
    common.add_argument("--dry-run", action="store_true", help="print what would be done without calling AWS")

    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description="Deploy the heartbeat pipeline (Kinesis -> Lambda -> SageMaker -> CloudWatch) to AWS, "
                    "show it, or remove it.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stack_options = argparse.ArgumentParser(add_help=False)
    stack_options.add_argument("--shards", type=int, default=stack.StackOptions.shard_count,
                               help="provisioned Kinesis shards; 0 for an on-demand stream (default: 1, the cheapest)")
    stack_options.add_argument("--log-retention-days", type=int, default=stack.StackOptions.log_retention_days,
                               help="days CloudWatch keeps the function's logs (default: 14)")
    stack_options.add_argument("--dashboard", action="store_true",
                               help="also create a CloudWatch dashboard ($3/month beyond 3)")
    stack_options.add_argument("--framework-version", default=images.DEFAULT_FRAMEWORK_VERSION,
                               choices=sorted(images.CONTAINERS),
                               help="SageMaker scikit-learn container version (serving and training; "
                                    f"default: {images.DEFAULT_FRAMEWORK_VERSION}); the sagemaker SDK must list it")
    stack_options.add_argument("--parallelization-factor", type=int, default=1,
                               help="concurrent batches per shard, 1-10 (default: 1)")
    stack_options.add_argument("--reserved-concurrency", type=int,
                               help="concurrent executions reserved for the function (default: none reserved)")
    stack_options.add_argument("--logs-kms-key", metavar="ARN",
                               help="KMS key ARN that encrypts the function's log group (default: the service's "
                                    "encryption; the key policy must allow CloudWatch Logs)")
    stack_options.add_argument("--alarm-email", metavar="ADDRESS",
                               help="e-mail the alarms notify (SNS; confirm the subscription), and add the alarm on "
                                    "any patient's ventricular beats")
    stack_options.add_argument("--v-beats-per-minute", type=int, default=stack.DEFAULT_V_BEATS_PER_MINUTE,
                               help="V beats of one patient in a minute that raise the alarm "
                                    f"(default: {stack.DEFAULT_V_BEATS_PER_MINUTE})")
    stack_options.add_argument("--budget-usd", type=float, metavar="N",
                               help="also an AWS Budgets alarm on the account's monthly cost (needs --alarm-email)")

    up = commands.add_parser("up", parents=[common, stack_options], help="create or update everything (idempotent)")
    up.add_argument("--model", default="model.tar.gz",
                    help="model.tar.gz from `python -m hbcore train`, or the s3:// URI `train` printed "
                         "(default: ./model.tar.gz)")
    serving_mode = up.add_mutually_exclusive_group()
    serving_mode.add_argument("--serverless", action="store_true",
                              help="serverless endpoint: nothing to pay while idle (the default)")
    serving_mode.add_argument("--instance-type", help="real-time endpoint on this instance type instead "
                                                      "(e.g. ml.t2.medium; bills every hour until `down`)")
    up.add_argument("--instance-count", type=int, default=1, help="instances for --instance-type (default: 1)")
    up.add_argument("--memory-mb", type=int, default=serving.DEFAULT_MEMORY_MB,
                    help=f"serverless memory, one of {serving.SERVERLESS_MEMORY_MB} "
                         f"(default: {serving.DEFAULT_MEMORY_MB})")
    up.add_argument("--max-concurrency", type=int, default=serving.DEFAULT_MAX_CONCURRENCY,
                    help=f"serverless concurrent invocations (default: {serving.DEFAULT_MAX_CONCURRENCY})")
    up.add_argument("--max-instance-count", type=int,
                    help="autoscale --instance-type endpoints up to this many instances (default: a fixed count)")
    up.add_argument("--patients", type=int,
                    help="size shards, parallelization, reserved concurrency and the endpoint for N monitored "
                         f"patients ({sizing.BEATS_PER_PATIENT_S} beats/s each); replaces --shards and the "
                         "endpoint options")
    up.add_argument("--aggregated", action=argparse.BooleanOptionalAction, default=True,
                    help="the per-use estimate assumes the app's replay with KPL aggregates, its default "
                         "(--no-aggregated: a record per beat, as `hbcore demo --no-aggregate` sends)")
    up.add_argument("--rate", type=float,
                    help=f"beats/s the per-use cost estimate assumes (default: {costs.DEFAULT_RATE_BPS:g}, or "
                         "the patients' rate with --patients)")

    train = commands.add_parser("train", parents=[common, stack_options],
                                help="train on SageMaker in the serving container; prints the model's s3:// URI")
    train.add_argument("--csv", action="append", required=True, type=Path,
                       help="Kaggle-format training CSV (repeatable); uploaded as the 'train' channel")
    train.add_argument("--instance-type", default=training_job.DEFAULT_INSTANCE_TYPE,
                       help=f"training instance (default: {training_job.DEFAULT_INSTANCE_TYPE}, billed per second)")
    train.add_argument("--hyperparameter", action="append", default=[], metavar="NAME=VALUE",
                       help="passed to the entry point as --NAME VALUE (repeatable)")

    commands.add_parser("status", parents=[common], help="show what is deployed and what it costs while idle")
    commands.add_parser("down", parents=[common], help="delete everything `up` created, the endpoint first")
    replay_failed = commands.add_parser(
        "replay-failed", parents=[common],
        help="send the records the function rejected, and the batches Lambda gave up on, back into the stream")
    replay_failed.add_argument("--since", default="24h",
                               help="how far back to look: 30m, 6h, 2d, or epoch seconds (default: 24h)")
    return parser


def sizing_from_args(args: argparse.Namespace) -> sizing.SizingPlan | None:
    """The ``--patients`` sizing, or None without it."""
    if args.patients is None:
        return None
    return sizing.plan_for_patients(args.patients, base=_stack_options(args))


def plan_from_args(args: argparse.Namespace) -> deploy.Plan:
    """The ``up`` plan described by the command line (validates every value, calls nothing)."""
    sized = sizing_from_args(args)
    if sized is not None:
        endpoint, options = replace(sized.endpoint, framework_version=args.framework_version), sized.stack
    else:
        endpoint = serving.EndpointSpec(
            memory_mb=args.memory_mb, max_concurrency=args.max_concurrency, instance_type=args.instance_type,
            instance_count=args.instance_count, framework_version=args.framework_version,
            max_instance_count=args.max_instance_count)
        options = _stack_options(args)
    return deploy.Plan(Names(deploy.check_prefix(args.prefix)), resolve_region(args.region, args.profile),
                       args.model, endpoint, options, args.profile)


def _stack_options(args: argparse.Namespace) -> stack.StackOptions:
    return stack.StackOptions(shard_count=args.shards, log_retention_days=args.log_retention_days,
                              dashboard=args.dashboard, parallelization_factor=args.parallelization_factor,
                              reserved_concurrency=args.reserved_concurrency, logs_kms_key_arn=args.logs_kms_key,
                              alarm_email=args.alarm_email, budget_usd=args.budget_usd,
                              v_beats_per_minute=args.v_beats_per_minute)


def _cost_lines(args: argparse.Namespace, plan: deploy.Plan) -> list[str]:
    """The idle estimate, then the per-use one at --rate (or the patients' rate)."""
    patients = args.patients or costs.DEFAULT_PATIENTS
    rate = args.rate or (args.patients * sizing.BEATS_PER_PATIENT_S if args.patients else costs.DEFAULT_RATE_BPS)
    return [*costs.format_estimate(plan.stack, plan.endpoint),
            *costs.format_usage_estimate(plan.stack, plan.endpoint, rate, patients, aggregated=args.aggregated)]


def _hyperparameters(pairs: list[str]) -> dict[str, object]:
    """NAME=VALUE pairs; a VALUE that parses as JSON (numbers, true) keeps its type."""
    parsed = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"--hyperparameter {pair!r}: expected NAME=VALUE")
        try:
            parsed[name] = json.loads(value)
        except json.JSONDecodeError:
            parsed[name] = value
    return parsed


def _backend(args: argparse.Namespace, region: str) -> Backend:
    return Backend(kind="aws", region=region, profile=args.profile)


def cmd_up(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    sized = sizing_from_args(args)
    if args.dry_run:
        print("Plan (dry run: nothing was called):")
        if sized is not None:
            print("\n".join(sized.lines()))
        print("\n".join(plan.lines()))
        print("\n".join(_cost_lines(args, plan)))
        return 0
    result = deploy.up(_backend(args, plan.region), plan, progress=_progress_printer())
    print("\n".join(deploy.summary_lines(result)))
    print("\n".join(_cost_lines(args, plan)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    names = Names(deploy.check_prefix(args.prefix))
    region = resolve_region(args.region, args.profile)
    hyperparameters = _hyperparameters(args.hyperparameter)
    missing = [str(path) for path in args.csv if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: no such training file")
    if args.dry_run:
        print(f"Would, in {region} (dry run: nothing was called):")
        print(f"  deploy stack {names.stack} (it holds the SageMaker execution role)")
        print(f"  upload hbcore/{training_job.ENTRY_MODULE} + hbcore/ to training/source/, "
              f"{', '.join(p.name for p in args.csv)} to training/data/")
        print(f"  run training job {names.prefix}-train-<time> on {args.instance_type} with "
              f"{images.image_uri(region, args.framework_version, 'training')}, "
              f"hyperparameters {hyperparameters or 'none'}")
        print("  print the s3:// URI of its model.tar.gz for `python -m deploy up --model`")
        return 0
    model_uri = deploy.train(_backend(args, region), names, list(args.csv), _stack_options(args),
                             instance_type=args.instance_type, framework_version=args.framework_version,
                             hyperparameters=hyperparameters, progress=_progress_printer())
    print(model_uri)
    print(f"next: python -m deploy up --model {model_uri}", file=sys.stderr)
    return 0


def _status_lines(state: dict) -> list[str]:
    lines = []
    stack_state = state["stack"]
    if stack_state is None:
        lines.append("stack      none")
    else:
        outputs = stack_state["outputs"]
        lines.append(f"stack      {stack_state['stack']}: {stack_state['status']}")
        lines.append(f"  stream   {outputs.get('StreamName')}, function {outputs.get('FunctionName')}, "
                     f"logs {outputs.get('LogGroupName')}")
        for mapping in stack_state["mappings"]:
            lines.append(f"  mapping  {mapping['uuid']}: {mapping['state']}, last result {mapping['last_result']}")
        lines.append(f"  failures {state['dead_letters']} message(s) in {outputs.get('DeadLetterQueueUrl')}")
    endpoint = state["endpoint"]
    if endpoint is None:
        lines.append("endpoint   none")
    else:
        mode = (f"serverless {endpoint['serverless']['MemorySizeInMB']} MB" if endpoint.get("serverless")
                else endpoint.get("instance_type"))
        lines.append(f"endpoint   {endpoint['endpoint']}: {endpoint['status']} ({mode}), "
                     f"model {endpoint.get('model_uri')}")
        if endpoint.get("failure_reason"):
            lines.append(f"  failure  {endpoint['failure_reason']}")
        if not endpoint.get("serverless"):
            lines.append(_scaling_line(state.get("autoscaling"), endpoint.get("instance_count") or 1))
    lines.append(f"bucket     {state['bucket']}: {state['objects']} object(s) written by deployments"
                 if state["bucket"] else "bucket     none")
    if stack_state is None and endpoint is None and not state["bucket"]:
        lines.append("nothing deployed")
    return lines


def _scaling_line(scaling: dict | None, instance_count: int) -> str:
    """How an instance endpoint scales: its autoscaling range and target, or its fixed count."""
    if scaling is None:
        return f"  scaling  none: a fixed {instance_count} instance(s) (up --max-instance-count adds autoscaling)"
    target = scaling["invocations_per_instance_per_minute"]
    policy = f"target {target:g} invocations per instance per minute" if target is not None else "no policy"
    return f"  scaling  {scaling['min']}-{scaling['max']} instances, {policy}, now {instance_count}"


def cmd_status(args: argparse.Namespace) -> int:
    names = Names(deploy.check_prefix(args.prefix))
    region = resolve_region(args.region, args.profile)
    if args.dry_run:
        print(f"Would describe stack {names.stack}, endpoint {names.endpoint} and bucket "
              f"{names.bucket('<account>', region)} in {region} (dry run: nothing was called).")
        return 0
    state = deploy.status(_backend(args, region), names)
    print("\n".join(_status_lines(state)))
    print("\n".join(costs.format_estimate(*costs.deployed_settings(state))))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    names = Names(deploy.check_prefix(args.prefix))
    region = resolve_region(args.region, args.profile)
    if args.dry_run:
        print(f"Would delete, in {region} (dry run: nothing was called):")
        print(f"  endpoint {names.endpoint}, its {names.endpoint}-c-* configs and {names.endpoint}-m-* models, "
              f"log group /aws/sagemaker/Endpoints/{names.endpoint}")
        print(f"  the autoscaling of {names.endpoint}, if it has any")
        print(f"  stack {names.stack} (stream {names.stream}, function {names.function}, log group "
              f"{names.log_group}, queue {names.function}-failures, roles, mapping, alarms, alarm topic, budget, "
              "dashboard)")
        print(f"  objects under {', '.join(artifacts.KEY_PREFIXES)} in {names.bucket('<account>', region)}, "
              "then the bucket if it is empty")
        return 0
    deleted = deploy.down(_backend(args, region), names, progress=_progress_printer())
    print("\n".join(f"deleted {item}" for item in deleted) if deleted else "nothing to delete")
    return 0


def cmd_replay_failed(args: argparse.Namespace) -> int:
    """``replay-failed`` (hbcore.aws.failed): the failed records of the last ``--since``, back into the stream."""
    names = Names(deploy.check_prefix(args.prefix))
    region = resolve_region(args.region, args.profile)
    since_s = failed.parse_since(args.since)
    if args.dry_run:
        print(f"Would read the rejected lines of {names.log_group} since {time.ctime(since_s)} and the batches in "
              f"queue {names.function}-failures, and put their records into {names.stream} in {region} "
              "(dry run: nothing was called).")
        return 0
    result = failed.replay_failed(_backend(args, region), names, since_s, _progress_printer())
    print(f"replayed {result.sent:,} failed records into {names.stream} ({result.failed:,} refused by Kinesis, "
          f"{result.deleted_messages:,} on-failure messages done)")
    return 1 if result.failed else 0


COMMANDS = {"up": cmd_up, "train": cmd_train, "status": cmd_status, "down": cmd_down,
            "replay-failed": cmd_replay_failed}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors print one redacted line to stderr (2: bad input, 1: AWS failure)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except NoCredentialsError:
        print("error: no AWS credentials found: run `aws configure` (or `aws sso login`), or pass --profile; "
              "see docs/aws.md", file=sys.stderr)
        return 1
    except NoRegionError:
        print("error: no AWS region: pass --region or set AWS_REGION", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError, RuntimeError, TimeoutError) as error:
        print(f"error: {user_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue, or `python -m deploy down`", file=sys.stderr)
        return 130
    except Exception as error:
        message = sdk_error_message(error)  # e.g. ResponseParserError, no BotoCoreError
        if message is None:
            raise  # a bug: its traceback is what fixes it
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
