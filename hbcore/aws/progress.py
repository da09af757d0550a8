"""The progress callback of long cloud operations (stack, endpoint, training job).

One human-readable message per step: the CLI prints it, the app shows it under a spinner. Operations
take ``progress: Progress = silent`` so that a caller who does not watch passes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def silent(message: str) -> None:
    """Ignore a progress message (the default when nobody watches)."""
