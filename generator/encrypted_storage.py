"""Customer managed KMS keys and encrypted S3 buckets for the deploy-side templates.

One implementation of "a CMK with rotation and an administrable key policy" and of "a
bucket that is SSE-KMS, versioned, private, TLS-only and retained", used by the
model-deploy template (data capture) and the MLOps project template (pipeline artifacts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from awacs import kms, s3
from awacs.aws import Allow, ArnLike, Condition, Policy, Principal, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub, Tags, Template
from troposphere.kms import Key
from troposphere.s3 import (
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LoggingConfiguration,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from generator.parameters import account_root_arn
from generator.policies import VERSION, deny_insecure_transport, document

# What the account (through IAM policies) may do with a key: every administrative and
# cryptographic operation a key holder needs, enumerated rather than ``kms:*`` so that a
# linter can see it. PutKeyPolicy keeps the key administrable (no lock-out);
# CreateKey/ListKeys/custom key stores are account-level, not key-level, and absent.
KEY_ACCOUNT_ACTIONS = (
    kms.CancelKeyDeletion,
    kms.CreateAlias,
    kms.CreateGrant,
    kms.Decrypt,
    kms.DeleteAlias,
    kms.DescribeKey,
    kms.DisableKey,
    kms.DisableKeyRotation,
    kms.EnableKey,
    kms.EnableKeyRotation,
    kms.Encrypt,
    kms.GenerateDataKey,
    kms.GenerateDataKeyWithoutPlaintext,
    kms.GetKeyPolicy,
    kms.GetKeyRotationStatus,
    kms.ListAliases,
    kms.ListGrants,
    kms.ListKeyPolicies,
    kms.ListKeyRotations,
    kms.ListResourceTags,
    kms.PutKeyPolicy,
    kms.ReEncryptFrom,
    kms.ReEncryptTo,
    kms.RetireGrant,
    kms.RevokeGrant,
    kms.RotateKeyOnDemand,
    kms.ScheduleKeyDeletion,
    kms.TagResource,
    kms.UntagResource,
    kms.UpdateAlias,
    kms.UpdateKeyDescription,
)

# What a principal that writes and reads data under the key needs.
KEY_DATA_ACTIONS = (kms.Decrypt, kms.DescribeKey, kms.Encrypt, kms.GenerateDataKey, kms.ReEncryptFrom, kms.ReEncryptTo)


def key_policy(*statements: Statement) -> Policy:
    """A key policy: this account administers the key through IAM, plus ``statements``."""
    account = Statement(
        Sid="AccountAdministersKeyThroughIam",
        Effect=Allow,
        Principal=Principal("AWS", [account_root_arn("${AWS::AccountId}")]),
        Action=list(KEY_ACCOUNT_ACTIONS),
        Resource=["*"],
    )
    return Policy(Version=VERSION, Statement=[account, *statements])


def add_key(
    template: Template, title: str, description: str, tags: Tags, policy: object = None, condition: str | None = None
) -> Key:
    """A symmetric customer managed key with yearly rotation, retained on stack deletion.

    ``policy`` defaults to ``key_policy()``; pass ``key_policy(*statements)`` (or an
    ``If`` choosing between two) to admit more principals.

    Retained because data encrypted under it (captured requests, pipeline artifacts) is
    retained too: deleting the key would make that data unreadable.
    """
    key = Key(
        title,
        Description=description,
        EnableKeyRotation=True,
        KeyPolicy=policy if policy is not None else key_policy(),
        Tags=tags,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )
    if condition:
        key.Condition = condition
    return template.add_resource(key)


LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"


def _private() -> dict:
    """Versioned, all public access blocked, retained on deletion and replacement."""
    return dict(
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )


def _add(template: Template, resource, condition: str | None):
    if condition:
        resource.Condition = condition
    return template.add_resource(resource)


def add_access_logs_bucket(template: Template, title: str, tags: Tags, condition: str | None = None) -> Bucket:
    """The destination of the other buckets' server access logs (give it a policy with
    ``add_access_logs_policy`` once they exist).

    SSE-S3, not SSE-KMS: S3 delivers server access logs only to SSE-S3 buckets. It does
    not log itself (the loop would never end): the one checkov finding skipped, with why.
    """
    bucket = Bucket(
        title,
        BucketEncryption=BucketEncryption(
            ServerSideEncryptionConfiguration=[
                ServerSideEncryptionRule(
                    ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                )
            ]
        ),
        Tags=tags,
        Metadata={
            "checkov": {
                "skip": [
                    {
                        "id": "CKV_AWS_18",
                        "comment": "This is the access-log destination; a log bucket logging to itself never ends",
                    }
                ]
            }
        },
        **_private(),
    )
    return _add(template, bucket, condition)


def add_access_logs_policy(
    template: Template, logs: Bucket, sources: Iterable[Bucket], condition: str | None = None
) -> BucketPolicy:
    """TLS only; S3 log delivery may write for ``sources`` of this account only."""
    delivery = Statement(
        Sid="AllowServerAccessLogDelivery",
        Effect=Allow,
        Principal=Principal("Service", [LOG_DELIVERY_SERVICE]),
        Action=[s3.PutObject],
        Resource=[objects_arn(logs)],
        Condition=Condition(
            [
                StringEquals({"aws:SourceAccount": Ref("AWS::AccountId")}),
                ArnLike({"aws:SourceArn": [GetAtt(source, "Arn") for source in sources]}),
            ]
        ),
    )
    policy = BucketPolicy(
        f"{logs.title}Policy",
        Bucket=Ref(logs),
        PolicyDocument=document(deny_insecure_transport([GetAtt(logs, "Arn"), objects_arn(logs)]), delivery),
    )
    return _add(template, policy, condition)


def add_encrypted_bucket(
    template: Template,
    title: str,
    key_arn: object,
    tags: Tags,
    extra_statements: Callable[[Bucket], Iterable[Statement]] | None = None,
    condition: str | None = None,
    access_logs: Bucket | None = None,
) -> tuple[Bucket, BucketPolicy]:
    """An SSE-KMS (bucket key on), versioned, fully private, TLS-only, retained bucket.

    ``extra_statements(bucket)`` returns the bucket policy's statements beyond the TLS deny;
    ``access_logs`` receives its server access logs under ``<title>/``.

    No physical name: CloudFormation generates a unique one, so one template can be
    launched many times per account (one per project or endpoint).
    """
    bucket = Bucket(
        title,
        BucketEncryption=BucketEncryption(
            ServerSideEncryptionConfiguration=[
                ServerSideEncryptionRule(
                    BucketKeyEnabled=True,
                    ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(
                        SSEAlgorithm="aws:kms", KMSMasterKeyID=key_arn
                    ),
                )
            ]
        ),
        Tags=tags,
        **_private(),
    )
    if access_logs is not None:
        bucket.LoggingConfiguration = LoggingConfiguration(
            DestinationBucketName=Ref(access_logs), LogFilePrefix=f"{title}/"
        )
    _add(template, bucket, condition)
    policy = BucketPolicy(
        f"{title}Policy",
        Bucket=Ref(bucket),
        PolicyDocument=document(
            deny_insecure_transport([GetAtt(bucket, "Arn"), objects_arn(bucket)]),
            *(extra_statements(bucket) if extra_statements else ()),
        ),
    )
    return bucket, _add(template, policy, condition)


def objects_arn(bucket: Bucket, prefix: str = "") -> Sub:
    """``<bucket ARN>/<prefix>*``, for policy statements on the bucket's objects."""
    return Sub("${BucketArn}/" + prefix + "*", BucketArn=GetAtt(bucket, "Arn"))
