"""Error text that is safe to show a user: no credentials, no account ids.

boto3 and botocore messages can quote access key ids, signatures, session tokens or the account id
inside an ARN; the app shows errors in the browser and the CLI prints them, so both pass them
through ``user_message`` first.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Access key ids: AKIA (long-term) and ASIA (temporary) followed by 16 upper-case characters.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "<access-key-id>"),
    # key=value / key: value pairs whose name says they hold a secret.
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key|secretaccesskey|aws_session_token|"
                r"session_token|sessiontoken|x-amz-security-token|signature|password|token)"
                r"(\s*[=:]\s*)(['\"]?)[^\s'\",;&]+"), r"\1\2\3<redacted>"),
    # The Authorization header of a signed request quotes the credential scope and signature.
    (re.compile(r"(?i)(Credential=)[^,\s]+"), r"\1<redacted>"),
    # Account ids inside ARNs (arn:aws:service:region:123456789012:...).
    (re.compile(r"(arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:)\d{12}"), r"\1<account>"),
    # Secret access keys are 40 mixed-case base64 characters (a hex digest is not mixed-case).
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
                r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), "<redacted>"),
)


def redact(text: str) -> str:
    """``text`` with anything shaped like a credential or an account id replaced by a placeholder."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def user_message(error: BaseException) -> str:
    """One redacted line naming the error's type and its message, for the UI and the CLI."""
    message = str(error).strip() or "no details"
    return redact(f"{type(error).__name__}: {message}")
