"""S3 buckets: the one builder of every bucket in every template, and their common policies.

Every bucket is versioned, blocks all public access, is retained on deletion and
replacement, and is encrypted: SSE-KMS under a customer managed key with an S3 bucket key
(:func:`add_bucket` with :func:`kms_encryption`), except the access-log destinations, which
are SSE-S3 because S3 delivers server access logs only to SSE-S3 buckets
(:func:`add_access_logs_bucket`). The environment's buckets (``generator.storage``) add
bucket-owner-enforced ownership and their own policies; the deploy-side templates (model
deploy, MLOps projects) use :func:`add_encrypted_bucket`, which adds a TLS-only policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from awacs import s3
from awacs.aws import Allow, ArnLike, Condition, Principal, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub, Tags, Template
from troposphere.s3 import (
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LoggingConfiguration,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from generator.policies import deny_insecure_transport, document

LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
# The one checkov finding an access-log bucket has, skipped with why.
_ACCESS_LOGS_METADATA = {
    "checkov": {
        "skip": [
            {
                "id": "CKV_AWS_18",
                "comment": "This is the access-log destination; a log bucket logging to itself never ends",
            }
        ]
    }
}


def kms_encryption(key_arn: object) -> BucketEncryption:
    """SSE-KMS under ``key_arn`` with an S3 bucket key (fewer KMS requests)."""
    default = ServerSideEncryptionByDefault(SSEAlgorithm="aws:kms", KMSMasterKeyID=key_arn)
    return BucketEncryption(
        ServerSideEncryptionConfiguration=[
            ServerSideEncryptionRule(BucketKeyEnabled=True, ServerSideEncryptionByDefault=default)
        ]
    )


def _sse_s3_encryption() -> BucketEncryption:
    default = ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
    return BucketEncryption(
        ServerSideEncryptionConfiguration=[ServerSideEncryptionRule(ServerSideEncryptionByDefault=default)]
    )


def add_bucket(
    template: Template,
    title: str,
    encryption: BucketEncryption,
    tags: Tags,
    access_logs: Bucket | None = None,
    log_prefix: str | None = None,
    condition: str | None = None,
    owner_enforced: bool = False,
    **properties,
) -> Bucket:
    """A versioned, fully private, retained bucket encrypted with ``encryption``.

    ``access_logs`` receives its server access logs under ``log_prefix`` (default
    ``<title>/``); ``owner_enforced`` disables ACLs (bucket-owner-enforced ownership);
    ``properties`` are further bucket properties (``BucketName``, ``Metadata``).
    """
    bucket = Bucket(
        title,
        BucketEncryption=encryption,
        Tags=tags,
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        **properties,
    )
    if owner_enforced:
        bucket.OwnershipControls = OwnershipControls(
            Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
        )
    if access_logs is not None:
        bucket.LoggingConfiguration = LoggingConfiguration(
            DestinationBucketName=Ref(access_logs), LogFilePrefix=log_prefix if log_prefix is not None else f"{title}/"
        )
    return _add(template, bucket, condition)


def _add(template: Template, resource, condition: str | None):
    if condition:
        resource.Condition = condition
    return template.add_resource(resource)


def add_access_logs_bucket(
    template: Template, title: str, tags: Tags, condition: str | None = None, owner_enforced: bool = False
) -> Bucket:
    """The destination of the other buckets' server access logs (give it a policy with
    :func:`allow_log_delivery` once they exist).

    SSE-S3, not SSE-KMS: S3 delivers server access logs only to SSE-S3 buckets. It does
    not log itself (the loop would never end): the one checkov finding skipped, with why.
    """
    return add_bucket(
        template,
        title,
        _sse_s3_encryption(),
        tags,
        condition=condition,
        owner_enforced=owner_enforced,
        Metadata=_ACCESS_LOGS_METADATA,
    )


def allow_log_delivery(log_objects: object, sources: Iterable[Bucket]) -> Statement:
    """S3 log delivery may write to ``log_objects`` the access logs of ``sources`` (of this account only)."""
    return Statement(
        Sid="AllowServerAccessLogDelivery",
        Effect=Allow,
        Principal=Principal("Service", [LOG_DELIVERY_SERVICE]),
        Action=[s3.PutObject],
        Resource=[log_objects],
        Condition=Condition(
            [
                StringEquals({"aws:SourceAccount": Ref("AWS::AccountId")}),
                ArnLike({"aws:SourceArn": [GetAtt(source, "Arn") for source in sources]}),
            ]
        ),
    )


def _tls_only_policy(template: Template, bucket: Bucket, condition: str | None, *statements) -> BucketPolicy:
    """``<title>Policy``: deny insecure transport, plus ``statements``."""
    policy = BucketPolicy(
        f"{bucket.title}Policy",
        Bucket=Ref(bucket),
        PolicyDocument=document(
            deny_insecure_transport([GetAtt(bucket, "Arn"), objects_arn(bucket)]),
            *statements,
        ),
    )
    return _add(template, policy, condition)


def add_access_logs_policy(
    template: Template, logs: Bucket, sources: Iterable[Bucket], condition: str | None = None
) -> BucketPolicy:
    """TLS only; S3 log delivery may write for ``sources`` of this account only."""
    return _tls_only_policy(template, logs, condition, allow_log_delivery(objects_arn(logs), sources))


def add_encrypted_bucket(
    template: Template,
    title: str,
    key_arn: object,
    tags: Tags,
    extra_statements: Callable[[Bucket], Iterable[Statement]] | None = None,
    condition: str | None = None,
    access_logs: Bucket | None = None,
    **properties,
) -> tuple[Bucket, BucketPolicy]:
    """An SSE-KMS (bucket key on), versioned, fully private, TLS-only, retained bucket.

    ``extra_statements(bucket)`` returns the bucket policy's statements beyond the TLS deny;
    ``access_logs`` receives its server access logs under ``<title>/``.

    No physical name unless ``properties`` give one (``BucketName``): CloudFormation generates
    a unique one, so one template can be launched many times per account (one per project or
    endpoint). A name is for a bucket other templates must know in advance.
    """
    bucket = add_bucket(
        template, title, kms_encryption(key_arn), tags, access_logs=access_logs, condition=condition, **properties
    )
    extra = extra_statements(bucket) if extra_statements else ()
    return bucket, _tls_only_policy(template, bucket, condition, *extra)


def objects_arn(bucket: Bucket, prefix: str = "") -> Sub:
    """``<bucket ARN>/<prefix>*``, for policy statements on the bucket's objects."""
    return Sub("${BucketArn}/" + prefix + "*", BucketArn=GetAtt(bucket, "Arn"))
