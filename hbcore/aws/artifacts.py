"""The S3 artifact store of a deployment: one bucket, content-addressed keys.

The Lambda zip and the model tarball are uploaded under a key that contains the SHA-256 of their
bytes. Uploading the same file twice is a no-op, a changed file gets a new key, and CloudFormation
and SageMaker see a new key exactly when the content changed — which is what makes ``up`` twice a
no-op. Everything this module writes lives under ``KEY_PREFIXES`` so that teardown removes exactly
what deployments made and nothing else a user may have put in the bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from botocore.exceptions import ClientError

from hbcore.aws.backend import Backend
from hbcore.aws.names import Names

LAMBDA_PREFIX = "lambda/"
MODELS_PREFIX = "models/"
TRAINING_PREFIX = "training/"
KEY_PREFIXES = (LAMBDA_PREFIX, MODELS_PREFIX, TRAINING_PREFIX)
DIGEST_CHARS = 16
MANAGED_TAG = {"Key": "hbcore:managed", "Value": "true"}


@dataclass(frozen=True)
class Upload:
    """Where an artifact is, and whether this call had to upload it."""

    bucket: str
    key: str
    digest: str
    uploaded: bool

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()


def content_key(prefix: str, data: bytes, filename: str) -> str:
    """``<prefix><digest>/<filename>``: a key that changes exactly when the bytes change."""
    return f"{prefix}{sha256_hex(data)[:DIGEST_CHARS]}/{filename}"


def account_id(backend: Backend) -> str:
    """The account of the backend's credentials (moto answers 123456789012)."""
    return backend.client("sts").get_caller_identity()["Account"]


def bucket_name(backend: Backend, names: Names) -> str:
    """The deployment's artifact bucket (bucket names are global, so account and region are in it)."""
    return names.bucket(account_id(backend), backend.region)


def bucket_exists(backend: Backend, bucket: str) -> bool:
    """True when ``bucket`` exists and these credentials can reach it."""
    try:
        backend.client("s3").head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def ensure_bucket(backend: Backend, bucket: str, tags: Sequence[dict[str, str]] = ()) -> bool:
    """Create the private artifact bucket if it is missing, with ``tags`` (cost allocation) besides
    the managed tag; True when this call created it."""
    if bucket_exists(backend, bucket):
        return False
    s3 = backend.client("s3")
    kwargs = {}
    if backend.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": backend.region}
    s3.create_bucket(Bucket=bucket, **kwargs)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [MANAGED_TAG, *tags]})
    return True


def upload_once(backend: Backend, bucket: str, prefix: str, data: bytes, filename: str) -> Upload:
    """Upload ``data`` under its content key unless an object of that key is already there."""
    key = content_key(prefix, data, filename)
    s3 = backend.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return Upload(bucket, key, sha256_hex(data), uploaded=False)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return Upload(bucket, key, sha256_hex(data), uploaded=True)


def managed_keys(backend: Backend, bucket: str) -> list[str]:
    """Every key under the prefixes deployments write to."""
    s3 = backend.client("s3")
    keys: list[str] = []
    for prefix in KEY_PREFIXES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def delete_managed_objects(backend: Backend, bucket: str) -> tuple[int, bool]:
    """Delete what deployments wrote, then the bucket if nothing else is left in it.

    Returns (objects deleted, bucket deleted). Objects a user put elsewhere in the bucket are kept,
    and so is the bucket then.
    """
    if not bucket_exists(backend, bucket):
        return 0, False
    s3 = backend.client("s3")
    keys = managed_keys(backend, bucket)
    for start in range(0, len(keys), 1000):  # delete_objects takes at most 1,000 keys
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": key} for key in keys[start:start + 1000]], "Quiet": True},
        )
    if s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0):
        return len(keys), False
    s3.delete_bucket(Bucket=bucket)
    return len(keys), True
