"""Error text shown in the UI and the CLI carries no credentials or account ids."""

from hbcore.aws.redaction import redact, user_message


def test_access_key_ids_are_replaced():
    assert redact("key AKIAIOSFODNN7EXAMPLE and ASIAABCDEFGHIJKLMNOP") == "key <access-key-id> and <access-key-id>"


def test_secret_shaped_strings_are_replaced():
    assert redact("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here") == "secret <redacted> here"


def test_named_secrets_are_replaced_whatever_their_shape():
    assert redact("aws_secret_access_key = abc123 token: xyz") == "aws_secret_access_key = <redacted> token: <redacted>"


def test_signature_credential_scope_is_replaced():
    assert redact("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/2026/us-east-1/s3, Signed") == (
        "Authorization: AWS4-HMAC-SHA256 Credential=<redacted>, Signed")


def test_account_ids_in_arns_are_replaced():
    assert redact("arn:aws:iam::123456789012:role/hb-role") == "arn:aws:iam::<account>:role/hb-role"


def test_hex_digests_and_plain_text_are_kept():
    text = "model 0123456789abcdef0123456789abcdef01234567 in mitbih_test.csv line 1,204: 186 values"
    assert redact(text) == text


def test_user_message_names_the_error_type():
    assert user_message(ValueError("mitbih.csv line 3: 186 values")) == "ValueError: mitbih.csv line 3: 186 values"


def test_user_message_of_an_empty_error_says_so():
    assert user_message(RuntimeError()) == "RuntimeError: no details"
