"""Error text shown in the UI and the CLI carries no credentials or account ids."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hbcore.aws.redaction import redact, sdk_error_message, user_message


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


# --- generated: secrets in many surroundings, and what must stay readable ---------------------------

B64 = string.ascii_letters + string.digits + "/+"
NOT_B64 = "".join(sorted(set(string.printable) - set(B64)))
UPPER_DIGITS = string.ascii_uppercase + string.digits

# A secret access key as AWS issues them: 40 base64 characters, upper- and lower-case among them.
secret_keys = st.text(alphabet=B64, min_size=40, max_size=40).filter(
    lambda key: any(c.isupper() for c in key) and any(c.islower() for c in key))
# A session token: hundreds of base64 characters, sometimes padded.
session_tokens = st.tuples(st.text(alphabet=B64, min_size=100, max_size=400).filter(
    lambda token: any(c.isupper() for c in token) and any(c.islower() for c in token)),
    st.sampled_from(["", "=", "=="])).map("".join)
access_key_ids = st.tuples(st.sampled_from(["AKIA", "ASIA"]), st.text(alphabet=UPPER_DIGITS, min_size=16,
                                                                      max_size=16)).map("".join)
# What may stand before and after a secret in a message, a URL, a config line, JSON or a header.
BEFORE = ["", "x=", "name=", "key: ", "secret ", "'", '"', "(", "[", '{"SecretAccessKey": "', "?X-Amz-Signature=",
          "aws_secret_access_key = ", "Credential=", "arn:aws:iam::123456789012:", "\n", "\t", "<b>", "-", "_"]
AFTER = ["", " ", ",", ";", "'", '"', ")", "]", '"}', "&", "\n", ".", ":", "-", "_", "=", "</b>"]
# Around an access key id, lower-case text may be glued on (`keyAKIA...`): it is not part of an id.
GLUED = st.text(alphabet=string.ascii_lowercase + NOT_B64, max_size=12)


def _around(secret: str, before: str, after: str, prose: str) -> str:
    return f"{prose}{before}{secret}{after}{prose}"


prose = st.text(alphabet=string.ascii_lowercase + " .,:", max_size=30).map(lambda text: f" {text} ")


@given(secret=secret_keys, before=st.sampled_from(BEFORE), after=st.sampled_from(AFTER), prose=prose)
def test_a_secret_key_is_hidden_whatever_stands_around_it(secret, before, after, prose):
    shown = redact(_around(secret, before, after, prose))
    assert secret not in shown
    assert "<redacted>" in shown


@given(token=session_tokens, before=st.sampled_from(BEFORE), after=st.sampled_from(AFTER), prose=prose)
def test_a_session_token_is_hidden_whatever_stands_around_it(token, before, after, prose):
    shown = redact(_around(token, before, after, prose))
    assert token.rstrip("=")[:40] not in shown and token.rstrip("=")[-40:] not in shown


@given(key_id=access_key_ids, before=GLUED, after=GLUED, prose=prose)
def test_an_access_key_id_is_hidden_even_glued_to_text(key_id, before, after, prose):
    shown = redact(_around(key_id, before, after, prose))
    assert key_id not in shown and key_id[4:] not in shown


@given(secret=secret_keys, key_id=access_key_ids, before=st.sampled_from(BEFORE), after=st.sampled_from(AFTER))
def test_a_key_pair_in_one_line_is_hidden_both_halves(secret, key_id, before, after):
    shown = redact(f"{before}{key_id}{after} {before}{secret}{after}")
    assert key_id not in shown and secret not in shown


@given(secret=secret_keys, cut=st.integers(1, 39), key_id=access_key_ids)
def test_an_id_shaped_stretch_inside_a_secret_does_not_split_it(secret, cut, key_id):
    hidden = secret[:cut].lower() + key_id + secret[cut:].lower() + "Q"  # still one mixed-case run
    shown = redact(f"x={hidden}")
    assert shown == "x=<redacted>"


def test_redaction_changes_nothing_twice():
    once = redact(f"x={'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'} id=AKIAIOSFODNN7EXAMPLE")
    assert redact(once) == once == "x=<redacted> id=<access-key-id>"


sequence_numbers = st.text(alphabet=string.digits, min_size=20, max_size=56)
hex_digests = st.text(alphabet="0123456789abcdef", min_size=40, max_size=64)
beat_ids = st.tuples(st.integers(0, 10**6), st.text(alphabet=string.ascii_lowercase + string.digits, min_size=6,
                                                      max_size=6),
                     st.sampled_from(["100", "101", "208", "kaggle-train"]), st.integers(0, 650_000)).map(
    lambda parts: f"20261202T{parts[0]:06d}-{parts[1]}:{parts[2]}:{parts[3]}")
# Up to 32 characters: with "stream/" a longer mixed-case name without "-" or "_" would be shaped like
# a secret and hidden (the price of catching secrets in any surroundings).
resource_names = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=32)


@given(sequence=sequence_numbers, digest=hex_digests, identity=beat_ids)
def test_sequence_numbers_digests_and_beat_ids_stay_readable(sequence, digest, identity):
    text = f"shard shardId-000000000001 sequence {sequence} model {digest} beat {identity} in mitbih_test.csv"
    assert redact(text) == text


@given(name=resource_names, service=st.sampled_from(["kinesis", "lambda", "logs", "sagemaker", "iam"]))
def test_an_arn_keeps_all_but_its_account(name, service):
    arn = f"arn:aws:{service}:us-east-1:123456789012:stream/{name}"
    assert redact(arn) == f"arn:aws:{service}:us-east-1:<account>:stream/{name}"


def test_an_sdk_error_is_one_line_without_the_body_it_quotes():
    from botocore.parsers import ResponseParserError

    body = f"<html>Authorization: AWS4-HMAC-SHA256 Credential={'AKIAIOSFODNN7EXAMPLE'}/2026/us-east-1</html>"
    error = ResponseParserError(f"Unable to parse response (syntax error), invalid XML received:\n{body}")
    assert sdk_error_message(error) == (
        "ResponseParserError: Unable to parse response (syntax error), invalid XML received:")


def test_an_error_raised_inside_botocore_counts_as_the_sdks():
    from botocore.parsers import QueryParser

    # botocore's XML parser meeting a page of another shape fails with a plain KeyError
    with pytest.raises(KeyError) as raised:
        QueryParser()._find_result_wrapped_shape("DescribeStacksResult", {})
    assert sdk_error_message(raised.value) == "KeyError: 'DescribeStacksResult'"


def test_a_bug_of_ours_is_not_the_sdks():
    with pytest.raises(KeyError) as raised:
        {}["missing"]
    assert sdk_error_message(raised.value) is None
