"""The SageMaker scikit-learn container images: their URIs, from the sagemaker SDK's own data.

The SDK keeps, per framework version and scope (inference, training), the registry account of
every region in a JSON file: ``sagemaker/core/image_uri_config/sklearn.json`` in sagemaker 3
(package ``sagemaker-core``), ``sagemaker/image_uri_config/sklearn.json`` in sagemaker 2. That file
is read directly, found through the installed distribution's metadata, so that no SDK module is
imported (sagemaker 3 pulls in pydantic models of every SageMaker resource). The SDK's package
that holds it, ``sagemaker-core``, is in ``requirements-aws.txt``, not ``requirements.txt``:
deploying to AWS needs it, the local cloud does not (it never pulls an image, so it takes a
stand-in name when the SDK is absent).

``CONTAINERS`` holds what this project needs to know of each version and the SDK does not say:
the Python and the oldest numpy in the image (from the containers' Dockerfiles), which the
compatibility check of ``code/inference.py`` targets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from hbcore.aws.backend import Backend

SDK_INSTALL = "pip install -r requirements-aws.txt"
# (distribution, path of the data file inside it): sagemaker 3, then sagemaker 2.
SDK_DATA_FILES = (
    ("sagemaker-core", "sagemaker/core/image_uri_config/sklearn.json"),
    ("sagemaker", "sagemaker/image_uri_config/sklearn.json"),
)
SCOPES = ("inference", "training")
PROCESSOR = "cpu"
PY_VERSION_TAG = "py3"
# Only where the account number alone does not name the registry host.
DNS_SUFFIXES = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}
# The local cloud never pulls the image; this names it when the SDK is not installed.
LOCAL_STAND_IN_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class Container:
    """What a framework version's image runs ``code/inference.py`` and the training entry point with."""

    python: tuple[int, int]
    numpy: tuple[int, int]  # the oldest numpy its builds shipped
    scikit_learn: str

    def describe(self) -> str:
        return (f"Python {self.python[0]}.{self.python[1]}, numpy {self.numpy[0]}.{self.numpy[1]}, "
                f"scikit-learn {self.scikit_learn}")


# From the Dockerfiles of aws/sagemaker-scikit-learn-container (docker/<version>/base) and, for the
# newer ones, aws/deep-learning-containers (docker/sklearn/<version>). Plain 1.4-2 (Python 3.10) is
# listed by the SDK for training only: its Python is out of support.
CONTAINERS = {
    "1.2-1": Container((3, 9), (1, 24), "1.2.1"),
    "1.4-2": Container((3, 10), (1, 26), "1.4.2"),
    "1.4-2-py312": Container((3, 12), (2, 1), "1.4.2"),
    "1.9-0": Container((3, 12), (2, 5), "1.9.0"),
}
DEFAULT_FRAMEWORK_VERSION = "1.4-2-py312"


class SdkNotInstalled(RuntimeError):
    """The sagemaker SDK, whose data names the container images, is not installed."""


def sdk_data_file() -> Path | None:
    """The SDK's ``sklearn.json``, or None when no SDK that has one is installed."""
    for distribution, member in SDK_DATA_FILES:
        try:
            path = Path(str(metadata.distribution(distribution).locate_file(member)))
        except metadata.PackageNotFoundError:
            continue
        if path.is_file():
            return path
    return None


@cache
def _sdk_data(path: Path) -> dict:
    return json.loads(path.read_text())


def sdk_versions(scope: str = "inference") -> list[str]:
    """The framework versions the installed SDK lists for ``scope`` (``inference`` or ``training``)."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {SCOPES}")
    path = sdk_data_file()
    if path is None:
        raise SdkNotInstalled("the sagemaker SDK is not installed (its data names the SageMaker images): "
                              f"{SDK_INSTALL}")
    return list(_sdk_data(path)[scope]["versions"])


def check_framework_version(framework_version: str) -> str:
    """``framework_version`` if this project knows its container, else a ValueError naming those it knows.

    Needs no SDK: ``EndpointSpec`` and the command line check with it before anything else.
    """
    if framework_version not in CONTAINERS:
        raise ValueError(f"framework version {framework_version!r}: expected one of {sorted(CONTAINERS)}")
    return framework_version


def partition(region: str) -> str:
    """The AWS partition of ``region`` (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _registry(region: str, framework_version: str, scope: str) -> tuple[str, str]:
    """(account, repository) of the image, from the SDK's data; refuses what it does not list."""
    check_framework_version(framework_version)
    versions = sdk_versions(scope)
    if framework_version not in versions:
        raise ValueError(f"framework version {framework_version!r}: the sagemaker SDK lists no scikit-learn "
                         f"{scope} image for it (it lists {', '.join(versions)})")
    path = sdk_data_file()
    assert path is not None  # sdk_versions found it
    entry = _sdk_data(path)[scope]["versions"][framework_version]
    registries = entry["registries"]
    if region not in registries:
        raise ValueError(f"region {region!r}: the sagemaker SDK knows no scikit-learn image there "
                         f"(known: {', '.join(sorted(registries))})")
    if "-iso" in region:
        raise ValueError(f"region {region!r}: the isolated partitions are not supported")
    return registries[region], entry["repository"]


def image_uri(region: str, framework_version: str = DEFAULT_FRAMEWORK_VERSION, scope: str = "inference") -> str:
    """The scikit-learn container image for ``region`` (``scope``: serving or training).

    Raises ``SdkNotInstalled`` without the SDK, ValueError for a version or region it does not list.
    """
    account, repository = _registry(region, framework_version, scope)
    host = f"{account}.dkr.ecr.{region}.{DNS_SUFFIXES[partition(region)]}"
    return f"{host}/{repository}:{framework_version}-{PROCESSOR}-{PY_VERSION_TAG}"


def repository_arn(region: str, framework_version: str = DEFAULT_FRAMEWORK_VERSION) -> str:
    """The ECR repository ARN of the images, for the execution role's pull permission."""
    account, repository = _registry(region, framework_version, "inference")
    return f"arn:{partition(region)}:ecr:{region}:{account}:repository/{repository}"


def backend_image_uri(backend: Backend, framework_version: str = DEFAULT_FRAMEWORK_VERSION,
                      scope: str = "inference") -> str:
    """``image_uri`` on AWS; on the local cloud the same, or a stand-in name when the SDK is absent."""
    if backend.is_local and sdk_data_file() is None:
        check_framework_version(framework_version)
        return (f"{LOCAL_STAND_IN_ACCOUNT}.dkr.ecr.{backend.region}.amazonaws.com/sagemaker-scikit-learn:"
                f"{framework_version}-{PROCESSOR}-{PY_VERSION_TAG}")
    return image_uri(backend.region, framework_version, scope)


def backend_repository_arn(backend: Backend, framework_version: str = DEFAULT_FRAMEWORK_VERSION) -> str:
    """``repository_arn`` on AWS; on the local cloud the same, or a stand-in when the SDK is absent."""
    if backend.is_local and sdk_data_file() is None:
        return (f"arn:aws:ecr:{backend.region}:{LOCAL_STAND_IN_ACCOUNT}:repository/sagemaker-scikit-learn")
    return repository_arn(backend.region, framework_version)
