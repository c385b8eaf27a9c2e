"""The AWS calls of the seed flows, with errors a user can act on.

``invoke``: assume the endpoint-invoke role with its ExternalId (never shown in an
error), check the endpoint and call InvokeEndpoint. ``share-model-group``: read the
current model package group, ECR repository and bucket policies and the KMS grants, and
compute the changes with :mod:`deploy.flows.policies`; each change carries the call that
writes it. Argument parsing and printing live in :mod:`deploy.flows.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError, NoCredentialsError

from deploy.common.clients import Clients, new_session
from deploy.common.errors import InputError, RolloutError, error_code, error_message
from deploy.flows.policies import (
    ShareChange,
    account_principals,
    bucket_statements,
    ecr_statements,
    merge_policy,
    missing_grants,
    model_group_statements,
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
    """What to share: the group, and optionally its image, one artifacts prefix and its key.

    Checked when built: a bucket comes with a non-empty prefix, never alone.
    """

    group: str
    ecr_repository: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    kms_key: str | None = None
    grantee_role_name: str | None = None  # the KMS grantee in each account (default: the account root)

    def __post_init__(self) -> None:
        if bool(self.bucket) != bool(self.prefix):
            raise InputError(
                "--bucket and --prefix go together: only the model's prefix is shared, never the whole bucket",
                key="--prefix" if self.bucket else "--bucket",
            )
        if self.prefix is not None and not self.prefix.strip("/"):
            raise InputError("--prefix must not be empty: sharing the whole bucket is not supported", key="--prefix")


def own_account(clients: Clients, region: str) -> str:
    """The account of the caller's credentials."""
    return clients.client("sts", region).get_caller_identity()["Account"]


def _policy_change(
    label: str,
    read: Callable[[], str],
    statements: list[dict],
    write: Callable[[str], object],
    no_policy: Callable[[ClientError], bool],
    not_found: dict[str, InputError] | None = None,
) -> ShareChange:
    """The change merging ``statements`` into the policy ``read`` returns (None when ``no_policy``)."""
    try:
        current = json.loads(read())
    except ClientError as error:
        missing = (not_found or {}).get(error_code(error))
        if missing is not None:
            raise missing from None
        if not no_policy(error):
            raise
        current = None
    after = merge_policy(current, statements)
    return ShareChange(label, lambda: write(json.dumps(after)), before=current, after=after)


def plan_share(
    clients: Clients, region: str, partition: str, request: ShareRequest, accounts: list[str]
) -> list[ShareChange]:
    """Read the current policies and grants and compute the changes (reads only)."""
    principals = account_principals(partition, accounts)
    group = request.group
    changes: list[ShareChange] = []

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
    changes.append(
        _policy_change(
            f"model package group {group} policy",
            lambda: sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"],
            model_group_statements(group_arn, principals, group),
            lambda text: sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=text),
            no_policy=lambda error: (
                error_code(error) == "ValidationException" and "resource policy" in error_message(error).lower()
            ),
        )
    )

    if request.ecr_repository:
        ecr, repository = clients.client("ecr", region), request.ecr_repository
        changes.append(
            _policy_change(
                f"ECR repository {repository} policy",
                lambda: ecr.get_repository_policy(repositoryName=repository)["policyText"],
                ecr_statements(principals, group),
                lambda text: ecr.set_repository_policy(repositoryName=repository, policyText=text),
                no_policy=lambda error: error_code(error) == "RepositoryPolicyNotFoundException",
                not_found={
                    "RepositoryNotFoundException": InputError(
                        f"ECR repository '{repository}' not found in region {region}", key="--ecr-repository"
                    )
                },
            )
        )

    if request.bucket and request.prefix:  # one without the other is refused when the request is built
        s3, bucket = clients.client("s3", region), request.bucket
        changes.append(
            _policy_change(
                f"bucket {bucket} policy",
                lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"],
                bucket_statements(partition, bucket, request.prefix, principals, group),
                lambda text: s3.put_bucket_policy(Bucket=bucket, Policy=text),
                no_policy=lambda error: error_code(error) == "NoSuchBucketPolicy",
                not_found={"NoSuchBucket": InputError(f"bucket '{bucket}' not found", key="--bucket")},
            )
        )

    if request.kms_key:
        changes.append(_grant_change(clients, region, partition, request, accounts))
    return changes


def _grant_change(
    clients: Clients, region: str, partition: str, request: ShareRequest, accounts: list[str]
) -> ShareChange:
    kms = clients.client("kms", region)
    try:
        key_arn = kms.describe_key(KeyId=request.kms_key)["KeyMetadata"]["Arn"]
    except ClientError as error:
        if error_code(error) in ("NotFoundException", "InvalidArnException"):
            raise InputError(f"KMS key '{request.kms_key}' not found in region {region}", key="--kms-key") from None
        raise
    existing = (
        (grant.get("Name"), grant.get("GranteePrincipal"))
        for page in kms.get_paginator("list_grants").paginate(KeyId=key_arn)
        for grant in page["Grants"]
    )
    grantees = account_principals(partition, accounts, request.grantee_role_name)
    grants = missing_grants(key_arn, grantees, request.group, existing)
    return ShareChange(
        f"KMS key {key_arn}", grants=grants, write=lambda: [kms.create_grant(**grant) for grant in grants]
    )
