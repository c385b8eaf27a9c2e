"""The hardening every bucket this tool creates gets, as data and as one function.

A template bucket (the stack sets' and the Service Catalog publisher's) is created with
default encryption, versioning and a full public access block. ``HARDENING`` lists those
settings in the order they are applied, :class:`BucketHardening` builds each one's S3
request (``ExpectedBucketOwner`` added to every request that takes it, when an owner is
given) and ``ensure_bucket`` creates and hardens a missing bucket in one call. The catalog
publisher, which plans first and executes later, uses the same requests one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from deploy.common.errors import error_code

# What S3 answers for a bucket (or key) that does not exist.
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})

PUBLIC_ACCESS_BLOCK: dict[str, bool] = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


class Hardening(str, Enum):
    """One hardening setting, named by the S3 operation that applies it."""

    ENCRYPTION = "put_bucket_encryption"
    VERSIONING = "put_bucket_versioning"
    PUBLIC_ACCESS_BLOCK = "put_public_access_block"


HARDENING: tuple[Hardening, ...] = (Hardening.ENCRYPTION, Hardening.VERSIONING, Hardening.PUBLIC_ACCESS_BLOCK)


@dataclass(frozen=True)
class BucketHardening:
    """How a bucket is hardened: the default encryption (``aws:kms`` with ``kms_key_id``, or
    the aws/s3 key when it is None; or ``AES256``) and the owner S3 checks on every request."""

    sse_algorithm: str = "aws:kms"
    kms_key_id: str | None = None
    expected_owner: str | None = None

    def _owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.expected_owner} if self.expected_owner else {}

    def encryption_rule(self) -> dict[str, Any]:
        default: dict[str, str] = {"SSEAlgorithm": self.sse_algorithm}
        if self.kms_key_id:
            default["KMSMasterKeyID"] = self.kms_key_id
        return {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}

    def request(self, setting: Hardening, bucket: str) -> dict[str, Any]:
        """The keyword arguments of the S3 call (``setting.value``) applying ``setting``."""
        if setting is Hardening.ENCRYPTION:
            detail: dict[str, Any] = {"ServerSideEncryptionConfiguration": {"Rules": [self.encryption_rule()]}}
        elif setting is Hardening.VERSIONING:
            detail = {"VersioningConfiguration": {"Status": "Enabled"}}
        else:
            detail = {"PublicAccessBlockConfiguration": dict(PUBLIC_ACCESS_BLOCK)}
        return {"Bucket": bucket, **detail, **self._owner()}

    def apply(self, s3: Any, setting: Hardening, bucket: str) -> None:
        """Make the one S3 call applying ``setting`` to ``bucket``."""
        calls = {
            Hardening.ENCRYPTION: s3.put_bucket_encryption,
            Hardening.VERSIONING: s3.put_bucket_versioning,
            Hardening.PUBLIC_ACCESS_BLOCK: s3.put_public_access_block,
        }
        calls[setting](**self.request(setting, bucket))

    def head_request(self, bucket: str) -> dict[str, str]:
        return {"Bucket": bucket, **self._owner()}


def create_bucket(s3: Any, bucket: str, region: str) -> None:
    """CreateBucket in ``region`` (us-east-1 takes no location constraint)."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


def ensure_bucket(
    s3: Any,
    bucket: str,
    region: str,
    hardening: BucketHardening | None = None,
    settings: Sequence[Hardening] = HARDENING,
) -> bool:
    """Create ``bucket`` with ``settings`` applied in order if it does not exist; True when it
    was created. Any S3 error other than "not found" on the first read propagates."""
    hardening = hardening or BucketHardening()
    try:
        s3.head_bucket(**hardening.head_request(bucket))
        return False
    except ClientError as error:
        if error_code(error) not in NOT_FOUND_CODES:
            raise
    create_bucket(s3, bucket, region)
    for setting in settings:
        hardening.apply(s3, setting, bucket)
    return True
