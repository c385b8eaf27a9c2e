"""The AWS calls of the seed flows, with errors a user can act on.

``invoke``: assume the endpoint-invoke role with its ExternalId (never shown in an
error), optionally check the endpoint, and call InvokeEndpoint. ``share-model-group``:
refuse resources a CloudFormation stack owns and buckets under an AWS managed key, read
the current model package group, ECR repository, bucket and key policies (and grants of
earlier versions), and compute the changes with :mod:`deploy.flows.policies`; each change
carries the call that writes it. Argument parsing and printing live in :mod:`deploy.flows.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import boto3
import botocore.loaders
from botocore.exceptions import ClientError, NoCredentialsError

from deploy.common.clients import Clients, new_session
from deploy.common.errors import InputError, RolloutError, error_code, error_message
from deploy.flows.policies import (
    LEGACY_GRANT_PREFIX,
    ShareChange,
    SharePlan,
    account_principals,
    bucket_statements,
    ecr_statements,
    key_statements,
    legacy_grant_name,
    merge_policy,
    model_group_statements,
    s3_via_service,
)

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_INVALID_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
# An endpoint serves traffic in these states (InvokeEndpoint keeps working during updates).
_SERVING = {"InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}


def session(region: str | None) -> boto3.session.Session:
    """A session in ``region``, or in the configured region when None."""
    return new_session(region)


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked."""
    return text.replace(secret, "****") if secret else text


# ------------------------------------------------------------------ invoke


@dataclass
class InvokeResult:
    body: bytes
    content_type: str | None
    account: str
    invoked_variant: str | None = None


def assume_invoke_role(sts, role_arn: str, external_id: str, session_name: str) -> dict:
    """Credentials of ``role_arn``, assumed with ``external_id``; clear errors for the usual failures."""
    try:
        return sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, ExternalId=external_id)["Credentials"]
    except NoCredentialsError:
        raise RolloutError(
            "no AWS credentials found for the consumer account: configure a profile or the AWS_* variables, then retry"
        ) from None
    except ClientError as error:
        code = error_code(error)
        if code in _EXPIRED:
            raise RolloutError(
                f"your (consumer account) credentials have expired ({code}): "
                "refresh them, e.g. `aws sso login`, and retry"
            ) from None
        if code in _INVALID_CREDENTIALS:
            raise RolloutError(
                f"your (consumer account) credentials are not valid ({code}): check the profile or AWS_* variables"
            ) from None
        if code in _DENIED:
            raise RolloutError(
                f"access denied assuming {role_arn}: the role must trust your account, and the ExternalId must be "
                "the one it was deployed with (check the variable or option you passed it in); your own policy "
                "must allow sts:AssumeRole on it"
            ) from None
        raise RolloutError(f"assuming {role_arn} failed: {scrub(error_message(error), external_id)}") from None


def assumed_clients(credentials: dict, region: str) -> Clients:
    """Clients acting with the temporary ``credentials`` of an assumed role."""
    return Clients(
        boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
    )


def check_endpoint(sagemaker, endpoint: str, account: str, region: str) -> str | None:
    """The endpoint's status, or None when the role may not describe it (the invoke role only invokes)."""
    try:
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if error_code(error) in _DENIED:
            return None
        if (
            error_code(error) in ("ValidationException", "ValidationError")
            and "not find" in error_message(error).lower()
        ):
            raise _missing_endpoint(endpoint, account, region) from None
        raise RolloutError(f"describing endpoint {endpoint} failed: {error_message(error)}") from None
    status = description.get("EndpointStatus")
    if status not in _SERVING:
        reason = f": {description['FailureReason']}" if description.get("FailureReason") else ""
        raise RolloutError(
            f"endpoint {endpoint} in account {account} ({region}) is {status}{reason}; "
            "it cannot serve requests until InService"
        )
    return status


def _missing_endpoint(endpoint: str, account: str, region: str) -> RolloutError:
    return RolloutError(
        f"endpoint {endpoint} does not exist in account {account}, region {region}: check --endpoint and --region "
        "(the ml-model-deploy stack set's EndpointName output, or `aws sagemaker list-endpoints` there, names it)"
    )


def invoke_endpoint(
    runtime, endpoint: str, body: bytes, content_type: str, accept: str | None, account: str, region: str
) -> InvokeResult:
    """Call InvokeEndpoint with the assumed credentials; clear errors for the usual failures."""
    request = {"EndpointName": endpoint, "Body": body, "ContentType": content_type}
    if accept:
        request["Accept"] = accept
    try:
        response = runtime.invoke_endpoint(**request)
    except ClientError as error:
        code, message = error_code(error), error_message(error)
        if code in _EXPIRED:
            raise RolloutError(
                f"the assumed role's session expired ({code}): run the command again to assume it anew"
            ) from None
        if code in _DENIED:
            raise RolloutError(
                f"access denied invoking {endpoint}: the endpoint-invoke role of account {account} does not allow it "
                "(its policy lists the endpoints it may invoke)"
            ) from None
        if code in ("ValidationError", "ValidationException") and "not found" in message.lower():
            raise _missing_endpoint(endpoint, account, region) from None
        if code == "ModelError":
            details = error.response.get("OriginalStatusCode") or error.response.get("Error", {}).get(
                "OriginalStatusCode"
            )
            log = error.response.get("LogStreamArn") or error.response.get("Error", {}).get("LogStreamArn")
            status = f" (status {details})" if details else ""
            logs = f"; logs: {log}" if log else ""
            raise RolloutError(f"the model behind {endpoint} answered an error{status}: {message}{logs}") from None
        raise RolloutError(f"invoking {endpoint} failed ({code}): {message}") from None
    return InvokeResult(
        body=response["Body"].read(),
        content_type=response.get("ContentType"),
        account=account,
        invoked_variant=response.get("InvokedProductionVariant"),
    )


# ------------------------------------------------------------------ share-model-group


@dataclass
class ShareRequest:
    """What to share: the group, and optionally its image and one artifacts prefix.

    Checked when built: a bucket comes with a non-empty prefix, never alone; ``kms_key``
    (optional) must be the bucket's own key, so it needs the bucket.
    """

    group: str
    ecr_repository: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    kms_key: str | None = None
    key_user_role_name: str | None = None  # the principal of the key statement in each account (default: root)
    revoke_old_grants: bool = False

    def __post_init__(self) -> None:
        if bool(self.bucket) != bool(self.prefix):
            raise InputError(
                "--bucket and --prefix go together: only the model's prefix is shared, never the whole bucket",
                key="--prefix" if self.bucket else "--bucket",
            )
        if self.prefix is not None and not self.prefix.strip("/"):
            raise InputError("--prefix must not be empty: sharing the whole bucket is not supported", key="--prefix")
        if self.kms_key and not self.bucket:
            raise InputError(
                "--kms-key needs --bucket and --prefix: the key is shared only for reading that prefix through S3 "
                "(the key is read from the bucket's default encryption; --kms-key only checks it)",
                key="--kms-key",
            )


def own_account(clients: Clients, region: str) -> str:
    """The account of the caller's credentials."""
    return clients.client("sts", region).get_caller_identity()["Account"]


def dns_suffix(partition: str) -> str:
    """The DNS suffix of ``partition`` (amazonaws.com, amazonaws.com.cn, ...) from botocore's endpoint data."""
    for entry in botocore.loaders.create_loader().load_data("endpoints")["partitions"]:
        if entry["partition"] == partition:
            return entry["dnsSuffix"]
    raise InputError(f"unknown AWS partition '{partition}'", key="--region")


# The environment template's parameters that share what it creates (generator/model_readers.py).
_TEMPLATE_SHARING = "TargetAccountIds or OrganizationId"


def refuse_stack_owned(
    clients: Clients, region: str, physical_id: str, resource_type: str, label: str, option: str
) -> None:
    """Refuse (exit 2) to write the policy of a resource that a CloudFormation stack created.

    The stack's template owns that policy: a stack update would put back the template's and
    drop what this command added. DescribeStackResources with PhysicalResourceId names the
    stack a resource belongs to (a stack set instance is a stack of this account too).
    """
    cloudformation = clients.client("cloudformation", region)
    try:
        resources = cloudformation.describe_stack_resources(PhysicalResourceId=physical_id)["StackResources"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in error_message(error):
            return
        if error_code(error) in _DENIED:
            raise RolloutError(
                f"cannot tell whether a CloudFormation stack owns the {label} (cloudformation:DescribeStackResources "
                "is denied): allow it to the caller; nothing was written"
            ) from None
        raise
    # A name is a physical id of several types (a bucket and a repository may share one): only ours counts.
    # Resources of deleted stacks stay listed for 90 days (a retained one then has no owner).
    owners = [
        resource
        for resource in resources
        if resource.get("ResourceType") == resource_type and resource.get("ResourceStatus") != "DELETE_COMPLETE"
    ]
    if not owners:
        return
    owner = owners[0]
    raise InputError(
        f"the {label} belongs to CloudFormation stack {owner['StackName']} (resource {owner['LogicalResourceId']}): "
        "its template owns that policy, and a stack update would drop what this command adds. Share it through "
        f"the template instead (the environment template's parameters {_TEMPLATE_SHARING}), then update the "
        "stack or its stack set; nothing was written",
        key=option,
    )


def _read_policy(
    read: Callable[[], str],
    no_policy: Callable[[ClientError], bool],
    not_found: dict[str, InputError] | None = None,
) -> dict | None:
    try:
        return json.loads(read())
    except ClientError as error:
        missing = (not_found or {}).get(error_code(error))
        if missing is not None:
            raise missing from None
        if not no_policy(error):
            raise
        return None


def _policy_change(
    label: str,
    current: dict | None,
    statements: list[dict],
    write: Callable[[str], object],
    remove: list[str],
    delete: Callable[[], object],
) -> ShareChange:
    """The change merging ``statements`` (and removing ``remove``'s principals) into ``current``.

    A policy left with no statement is deleted: the services refuse an empty one.
    """
    after = merge_policy(current, statements, remove)
    if not after["Statement"]:
        return ShareChange(label, delete, before=current, after=None)
    return ShareChange(label, lambda: write(json.dumps(after)), before=current, after=after)


@dataclass
class BucketEncryption:
    """A bucket's default encryption: ``AES256`` (SSE-S3), ``aws:kms`` or ``aws:kms:dsse``."""

    algorithm: str
    key_id: str | None = None
    bucket_key: bool = False


def bucket_encryption(s3, bucket: str) -> BucketEncryption:
    """The default encryption of ``bucket``. A bucket without a configuration uses SSE-S3: every
    bucket has SSE-S3 by default since January 2023 (S3 User Guide, "Setting default server-side
    encryption behavior for Amazon S3 buckets")."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as error:
        if error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
            return BucketEncryption("AES256")
        raise
    rule = rules[0] if rules else {}
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return BucketEncryption(
        default.get("SSEAlgorithm", "AES256"), default.get("KMSMasterKeyID"), bool(rule.get("BucketKeyEnabled"))
    )


_AWS_MANAGED = (
    "it is encrypted with the AWS managed key aws/s3, whose key policy cannot be changed: no other account can "
    "decrypt its objects, so the target accounts would fail at download. Re-encrypt the artifacts with a customer "
    "managed key (set it as the bucket's default encryption and copy the objects), then share again"
)


def _bucket_key(clients: Clients, region: str, bucket: str, encryption: BucketEncryption, given: str | None) -> dict:
    """The customer managed key of the bucket's default encryption (its DescribeKey metadata).

    Refuses (exit 2) an AWS managed key, and a ``--kms-key`` that is not the bucket's key.
    """
    key_id = encryption.key_id
    if not key_id or key_id.endswith("alias/aws/s3"):
        raise InputError(f"bucket '{bucket}' cannot be shared: {_AWS_MANAGED}", key="--bucket")
    kms = clients.client("kms", region)
    metadata = _key_metadata(
        kms, key_id, f"the key of bucket '{bucket}' ({key_id}) is not found in region {region}", "--bucket"
    )
    if metadata.get("KeyManager") == "AWS":
        raise InputError(f"bucket '{bucket}' cannot be shared: {_AWS_MANAGED}", key="--bucket")
    if given:
        given_arn = _key_metadata(kms, given, f"KMS key '{given}' not found in region {region}", "--kms-key")["Arn"]
        if given_arn != metadata["Arn"]:
            raise InputError(
                f"--kms-key {given} is not the key of bucket '{bucket}' ({metadata['Arn']}): its artifacts are "
                "encrypted with the bucket's key; leave --kms-key out (the bucket's key is used)",
                key="--kms-key",
            )
    return metadata


def _key_metadata(kms, key_id: str, not_found: str, option: str) -> dict:
    """DescribeKey's KeyMetadata; a key that does not exist is an input error on ``option``."""
    try:
        return kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as error:
        if error_code(error) in ("NotFoundException", "InvalidArnException"):
            raise InputError(not_found, key=option) from None
        raise


def plan_share(
    clients: Clients,
    region: str,
    partition: str,
    request: ShareRequest,
    accounts: list[str],
    remove_accounts: Sequence[str] = (),
) -> SharePlan:
    """Read the current policies and compute the changes (reads only; every refusal comes before any write)."""
    principals = account_principals(partition, accounts)
    remove = list(remove_accounts)
    group = request.group
    changes: list[ShareChange] = []
    notes: list[str] = []

    sagemaker = clients.client("sagemaker", region)
    try:
        group_arn = sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as error:
        if error_code(error) in ("ValidationException", "ResourceNotFound"):
            raise InputError(
                f"model package group '{group}' not found in region {region} of this account",
                key="--model-package-group",
            ) from None
        raise
    label = f"model package group {group} policy"
    refuse_stack_owned(clients, region, group_arn, "AWS::SageMaker::ModelPackageGroup", label, "--model-package-group")
    current = _read_policy(
        lambda: sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"],
        no_policy=lambda error: (
            error_code(error) == "ValidationException" and "resource policy" in error_message(error).lower()
        ),
    )
    changes.append(
        _policy_change(
            label,
            current,
            model_group_statements(group_arn, principals, group),
            lambda text: sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=text),
            remove,
            lambda: sagemaker.delete_model_package_group_policy(ModelPackageGroupName=group),
        )
    )

    if request.ecr_repository:
        ecr, repository = clients.client("ecr", region), request.ecr_repository
        label = f"ECR repository {repository} policy"
        current = _read_policy(
            lambda: ecr.get_repository_policy(repositoryName=repository)["policyText"],
            no_policy=lambda error: error_code(error) == "RepositoryPolicyNotFoundException",
            not_found={
                "RepositoryNotFoundException": InputError(
                    f"ECR repository '{repository}' not found in region {region}", key="--ecr-repository"
                )
            },
        )
        refuse_stack_owned(clients, region, repository, "AWS::ECR::Repository", label, "--ecr-repository")
        changes.append(
            _policy_change(
                label,
                current,
                ecr_statements(principals, group),
                lambda text: ecr.set_repository_policy(repositoryName=repository, policyText=text),
                remove,
                lambda: ecr.delete_repository_policy(repositoryName=repository),
            )
        )

    if request.bucket and request.prefix:  # one without the other is refused when the request is built
        changes += _bucket_changes(clients, region, partition, request, accounts, remove, notes)
    return SharePlan(changes, notes)


def _bucket_changes(
    clients: Clients,
    region: str,
    partition: str,
    request: ShareRequest,
    accounts: list[str],
    remove: list[str],
    notes: list[str],
) -> list[ShareChange]:
    """The bucket policy change and, for SSE-KMS, the key policy change (and the old grants)."""
    s3, bucket, group = clients.client("s3", region), request.bucket, request.group
    label = f"bucket {bucket} policy"
    current = _read_policy(
        lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"],
        no_policy=lambda error: error_code(error) == "NoSuchBucketPolicy",
        not_found={"NoSuchBucket": InputError(f"bucket '{bucket}' not found", key="--bucket")},
    )
    refuse_stack_owned(clients, region, bucket, "AWS::S3::Bucket", label, "--bucket")
    encryption = bucket_encryption(s3, bucket)
    changes = [
        _policy_change(
            label,
            current,
            bucket_statements(partition, bucket, request.prefix, account_principals(partition, accounts), group),
            lambda text: s3.put_bucket_policy(Bucket=bucket, Policy=text),
            remove,
            lambda: s3.delete_bucket_policy(Bucket=bucket),
        )
    ]
    if encryption.algorithm == "AES256":
        if request.kms_key:
            raise InputError(
                f"bucket '{bucket}' is encrypted with S3 managed keys (SSE-S3), not KMS: there is no key to share; "
                "leave --kms-key out",
                key="--kms-key",
            )
        notes.append(f"bucket {bucket} uses SSE-S3 (S3 managed keys): readers need no KMS permission")
        return changes

    metadata = _bucket_key(clients, region, bucket, encryption, request.kms_key)
    kms, key_arn = clients.client("kms", region), metadata["Arn"]
    key_label = f"KMS key {key_arn} policy"
    refuse_stack_owned(clients, region, metadata["KeyId"], "AWS::KMS::Key", key_label, "--bucket")
    current = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    statements = key_statements(
        partition,
        s3_via_service(region, dns_suffix(partition)),
        bucket,
        request.prefix,
        account_principals(partition, accounts, request.key_user_role_name),
        group,
        encryption.bucket_key,
    )
    # Never BypassPolicyLockoutSafetyCheck: KMS then refuses a policy that would lock the caller out.
    changes.append(
        _policy_change(
            key_label,
            current,
            statements,
            lambda text: kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=text),
            remove,
            _refuse_empty_key_policy(key_arn),
        )
    )
    if encryption.bucket_key:
        notes.append(
            f"bucket {bucket} uses an S3 Bucket Key: S3 then asks KMS with the bucket ARN as encryption context, "
            "so the key statement admits every object of the bucket under this key (through S3 only); "
            "the bucket policy still lets the target accounts read only the prefix"
        )
    changes += _old_grants(kms, key_arn, group, request.revoke_old_grants, notes)
    return changes


def _refuse_empty_key_policy(key_arn: str) -> Callable[[], object]:
    def refuse() -> None:  # a key always has a policy: never write one that would lock everybody out
        raise RolloutError(f"the policy of KMS key {key_arn} would be left with no statement: nothing written")

    return refuse


def _old_grants(kms, key_arn: str, group: str, revoke: bool, notes: list[str]) -> list[ShareChange]:
    """Grants earlier versions created (any ciphertext of the key, no retiring principal): reported, or revoked."""
    grants = [
        grant
        for page in kms.get_paginator("list_grants").paginate(KeyId=key_arn)
        for grant in page["Grants"]
        if (grant.get("Name") or "").startswith(LEGACY_GRANT_PREFIX)
    ]
    ours = [grant for grant in grants if grant.get("Name") == legacy_grant_name(group)]
    others = sorted({grant["Name"] for grant in grants} - {legacy_grant_name(group)})
    if others:
        notes.append(
            f"KMS key {key_arn} still has grants of earlier versions for other groups ({', '.join(others)}): "
            "run this command for those groups with --revoke-old-grants"
        )
    if not ours:
        return []
    if not revoke:
        grantees = ", ".join(sorted({grant["GranteePrincipal"] for grant in ours}))
        notes.append(
            f"KMS key {key_arn} has {len(ours)} grant(s) named {legacy_grant_name(group)} from an earlier version: "
            f"they let {grantees} decrypt ANY ciphertext of the key, by any route; re-run with --revoke-old-grants "
            "to revoke them (the key policy statement replaces them)"
        )
        return []
    old = [{"GrantId": g["GrantId"], "Name": g["Name"], "GranteePrincipal": g["GranteePrincipal"]} for g in ours]
    return [
        ShareChange(
            f"KMS key {key_arn} grants",
            revoke=old,
            write=lambda: [kms.revoke_grant(KeyId=key_arn, GrantId=grant["GrantId"]) for grant in old],
        )
    ]
