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


# Packages of the AWS SDK: whatever they raise is a failure of the call (a proxy's HTML page, a body
# botocore cannot parse, a refused request), worth one line to the user rather than a traceback.
AWS_SDK_PACKAGES = ("botocore", "boto3", "s3transfer")


def raised_by_aws_sdk(error: BaseException) -> bool:
    """Whether ``error`` is the AWS SDK's: one of its exception types, or any exception raised inside it.

    The second case matters: botocore's parsers can fail on a body they were not built for with a
    plain ``KeyError`` (an XML page of another shape), and ``ResponseParserError`` is no
    ``BotoCoreError``; catching the SDK's base classes alone lets those through as tracebacks.
    Checked by module name, so the command line catches them without importing botocore.
    """
    if type(error).__module__.split(".")[0] in AWS_SDK_PACKAGES:
        return True
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return str(traceback.tb_frame.f_globals.get("__name__", "")).split(".")[0] in AWS_SDK_PACKAGES
