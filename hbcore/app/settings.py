"""The user's choice of backend and resource names, kept between app sessions and CLI runs.

Stored as JSON in the cache folder. No credentials are ever stored: on AWS only the *name* of a
profile is kept, and boto3's standard chain finds the keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypedDict, Unpack

from hbcore.aws.names import DEFAULT_REGION, Names
from hbcore.paths import cache_dir

BACKENDS = ("local", "aws")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class SettingsChanges(TypedDict, total=False):
    """The fields :meth:`Settings.with_changes` may change (those of :class:`Settings`)."""

    backend: str
    region: str
    profile: str | None
    prefix: str


@dataclass(frozen=True)
class Settings:
    """Where the pipeline runs (``backend``) and what its resources are called (``prefix``)."""

    backend: str = "local"
    region: str = DEFAULT_REGION
    profile: str | None = None
    prefix: str = "hb"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if not REGION_PATTERN.match(self.region):
            raise ValueError(f"region {self.region!r}: expected a region name such as us-east-1")
        if not PREFIX_PATTERN.match(self.prefix):
            raise ValueError(f"prefix {self.prefix!r}: 1-20 lower-case letters, digits or '-', starting with a letter")

    @property
    def names(self) -> Names:
        return Names(self.prefix)

    def with_changes(self, **changes: Unpack[SettingsChanges]) -> Settings:
        """A validated copy with some fields changed (empty profile = the default chain)."""
        if changes.get("profile") == "":
            changes["profile"] = None
        return replace(self, **changes)


def settings_path() -> Path:
    return cache_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults (local backend) when none are saved or the file is unreadable."""
    path = path or settings_path()
    try:
        return Settings(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return Settings()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (a crash never leaves half a file)."""
    path = path or settings_path()
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(settings), indent=2))
    temporary.replace(path)
    return path
