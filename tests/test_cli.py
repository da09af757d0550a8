"""The two command lines as a user meets them: help everywhere, library errors as one line and exit 2."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from deploy import __main__ as deploy_cli
from hbcore import cli
from hbcore.data import physionet
from hbcore.errors import HbError
from hbcore.localcloud.owner import LocalCloudError

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "hbcore": cli.build_parser, "deploy": deploy_cli.build_parser}
# What `python -m hbcore --help` must not pay for: the library's imports come with its commands.
HEAVY_MODULES = ("numpy", "pandas", "sklearn", "scipy", "boto3", "botocore", "moto", "wfdb", "streamlit")


Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every leaf command of ``parser`` (one that runs something), with its path of sub-command names."""
    subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, child in action.choices.items():
            yield from commands(child, (*path, name))


def without_help(parser: argparse.ArgumentParser) -> list[str]:
    """The sub-commands and options of ``parser``'s tree that show no help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            shown = zip(action.choices, action._choices_actions, strict=True)
            missing += [f"command {name}" for name, choice in shown if not choice.help]
            missing += [f"{name} {problem}" for name, child in action.choices.items()
                        for problem in without_help(child)]
        elif not action.help:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


@pytest.mark.parametrize("name", PARSERS)
def test_every_command_and_option_has_help(name):
    assert without_help(PARSERS[name]()) == []


def test_the_help_check_finds_an_option_without_help():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("go", help="go somewhere")
    sub.add_argument("--far")
    assert without_help(parser) == ["go --far"]


EXPECTED_COMMANDS = (
    "bench alarms", "bench app", "bench cloud", "bench faults", "bench model", "bench pipeline", "bench soak",
    "bench stages", "cloud down", "cloud serve", "cloud status", "cloud up", "data build", "data download", "demo",
    "evaluate", "select-model", "train",
)


def test_every_hbcore_command_names_the_function_that_runs_it():
    runners = {" ".join(path): child.get_default("run") for path, child in commands(cli.build_parser())}
    assert sorted(runners) == sorted(EXPECTED_COMMANDS)
    assert {getattr(run, "__module__", None) for run in runners.values()} == {"hbcore.cli"}


def test_help_imports_none_of_the_heavy_libraries():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, hbcore.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in loaded if name.split(".")[0] in HEAVY_MODULES] == []


@pytest.mark.parametrize("error", [physionet.DownloadError, LocalCloudError, FileNotFoundError, ValueError])
def test_a_library_error_is_one_redacted_line_and_exit_2(error, monkeypatch, capsys):
    def failing(**options):
        raise error("the mirror refused key AKIAIOSFODNN7EXAMPLE; run it again\nchild log tail, not for the user")

    monkeypatch.setattr(physionet, "run_download", failing)
    assert cli.main(["data", "download"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: the mirror refused key <access-key-id>; run it again\n"


def test_library_errors_share_one_base():
    assert issubclass(physionet.DownloadError, HbError)
    assert issubclass(LocalCloudError, HbError)
    assert issubclass(LocalCloudError, RuntimeError)  # what LocalCloud.start raised before it had a name


def test_an_unexpected_error_is_not_swallowed(monkeypatch):
    def broken(**options):
        raise KeyError("a bug, with its traceback")

    monkeypatch.setattr(physionet, "run_download", broken)
    with pytest.raises(KeyError):
        cli.main(["data", "download"])


@pytest.mark.parametrize(("value", "expected"), [("max", None), ("250", 250.0), ("0.5", 0.5)])
def test_rate_is_beats_per_second_or_max(value, expected):
    assert cli.rate_bps(value) == expected


@pytest.mark.parametrize("value", ["0", "-3", "fast", "nan"])
def test_a_bad_rate_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--rate", value])
    assert exit_info.value.code == 2
    assert f"argument --rate: {value!r}: expected beats per second > 0, or 'max'" in capsys.readouterr().err
