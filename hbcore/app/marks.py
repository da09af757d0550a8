"""Timeline marks: the moments the presenter's actions (or the demo) changed what the monitor shows.

A replay starting, pausing, resuming or stopping, and the endpoint's model being replaced (the demo's
quick model by the fully trained one), each leave a :class:`Mark`; the monitor draws them on the
class timeline so that a change in the predictions can be read against its cause. The
:class:`~hbcore.app.pipeline.Pipeline` records them (``Pipeline.marks()``), whichever page or
command acted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

KINDS = ("start", "pause", "resume", "stop", "model")
MAX_MARKS = 500  # a presenter's session makes tens; the bound only keeps a scripted loop from growing memory


@dataclass(frozen=True)
class Mark:
    """One event on the timeline.

    Attributes
    ----------
    t : float
        When it happened, epoch seconds (the timeline's axis).
    kind : str
        One of KINDS.
    text : str
        What to show beside the mark ("run 20261202T… started: 22 records, 45,000 beats").
    run : str, default=""
        The replay run it concerns ("" for a model change, which concerns every run after it).
    """

    t: float
    kind: str
    text: str
    run: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"mark kind {self.kind!r}: expected one of {', '.join(KINDS)}")


class MarkLog:
    """The marks of one pipeline, oldest first; safe to add to and read from any thread."""

    def __init__(self, max_marks: int = MAX_MARKS):
        self._marks: deque[Mark] = deque(maxlen=max_marks)
        self._lock = threading.Lock()

    def add(self, kind: str, text: str, run: str = "", t: float | None = None) -> Mark:
        """Record a mark now (or at ``t``, epoch s) and return it."""
        mark = Mark(time.time() if t is None else t, kind, text, run)
        with self._lock:
            self._marks.append(mark)
        return mark

    def has(self, kind: str, run: str) -> bool:
        """Whether a mark of ``kind`` was recorded for ``run``."""
        with self._lock:
            return any(mark.kind == kind and mark.run == run for mark in self._marks)

    def all(self) -> list[Mark]:
        with self._lock:
            return list(self._marks)
