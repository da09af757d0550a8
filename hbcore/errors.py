"""The base of the errors hbcore raises for a user to act on (a failed download, a cloud that will not start).

Library modules raise their own subclasses and know nothing of exit codes; ``hbcore.cli`` catches
:class:`HbError` and turns it into one redacted stderr line and exit code 2. A base class in the
foundation layer lets the CLI catch them all without importing every library module up front.
"""

from __future__ import annotations


class HbError(Exception):
    """A failure worth one line to the user, not a traceback.

    The first line of the message says what failed and what to do; any further lines are detail
    (a child process's output, say) for callers that log it. The CLI prints the first line only.
    """
