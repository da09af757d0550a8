"""Error text that is safe to show a user: no credentials, no account ids.

boto3 and botocore messages can quote access key ids, signatures, session tokens or the account id
inside an ARN; the app shows errors in the browser and the CLI prints them, so both pass them
through ``user_message`` first.
"""

from __future__ import annotations

import re

from hbcore.errors import raised_by_aws_sdk

# Characters of a secret access key (base64 without padding); a run of them is one token.
_B64 = "A-Za-z0-9/+"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value / key: value pairs whose name says they hold a secret.
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key|secretaccesskey|aws_session_token|"
                r"session_token|sessiontoken|x-amz-security-token|signature|password|token)"
                r"(\s*[=:]\s*)(['\"]?)[^\s'\",;&]+"), r"\1\2\3<redacted>"),
    # The Authorization header of a signed request quotes the credential scope and signature.
    (re.compile(r"(?i)(Credential=)[^,\s]+"), r"\1<redacted>"),
    # Account ids inside ARNs (arn:aws:service:region:123456789012:...).
    (re.compile(r"(arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:)\d{12}"), r"\1<account>"),
    # Secret access keys are 40 mixed-case base64 characters, session tokens hundreds (a hex digest, a
    # sequence number or a word is not mixed-case base64 that long). Whatever stands around them,
    # `x=`, quotes, a path: only another base64 character would make the run part of something else.
    # Before the access key ids, so that an id-shaped stretch inside a secret cannot split it in two.
    (re.compile(rf"(?<![{_B64}])(?=[{_B64}]*[A-Z])(?=[{_B64}]*[a-z])[{_B64}]{{40,}}=*(?![{_B64}])"),
     "<redacted>"),
    # Access key ids: AKIA (long-term) and ASIA (temporary) followed by 16 upper-case characters,
    # also when a lower-case name or an underscore is glued to them (`keyAKIA...`, `id_ASIA...`).
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "<access-key-id>"),
)


def redact(text: str) -> str:
    """``text`` with anything shaped like a credential or an account id replaced by a placeholder."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def user_message(error: BaseException) -> str:
    """One redacted line naming the error's type and its message, for the UI and the CLI.

    Only the message's first line: the lines after it are detail (a child's log tail) or, from
    botocore, the raw body of a response it could not parse, which a proxy may fill with the
    request's own headers.
    """
    message = str(error).strip().partition("\n")[0].strip() or "no details"
    return redact(f"{type(error).__name__}: {message}")


def sdk_error_message(error: BaseException) -> str | None:
    """:func:`user_message` of an error the AWS SDK raised (whatever the endpoint answered), else None.

    For the command lines' last ``except``: an SDK error is one line to the user, anything else is
    a bug whose traceback must not be swallowed.
    """
    return user_message(error) if raised_by_aws_sdk(error) else None
