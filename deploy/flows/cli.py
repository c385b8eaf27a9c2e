"""The cross-account flows of the seeds: ``invoke`` and ``share-model-group``.

``invoke`` runs in the consumer account: it assumes the endpoint-invoke role of the
account that hosts the endpoint (with the ExternalId, which is never printed) and calls
InvokeEndpoint with a body from a file or stdin.

``share-model-group`` runs in the development account that owns the model: it merges the
cross-account statements of the SageMaker guide into the model package group policy, the
ECR repository policy and the model bucket policy (one prefix), and grants the KMS key,
for the given target accounts. Other statements are never dropped; the diff is shown
first and nothing is written without ``--yes``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from deploy.common.clients import Clients
from deploy.common.errors import InputError, RolloutError

DEFAULT_EXTERNAL_ID_ENV = "SM_INVOKE_EXTERNAL_ID"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_INVALID_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
# An endpoint serves traffic in these states (InvokeEndpoint keeps working during updates).
_SERVING = {"InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}


def register(subparsers) -> None:
    invoke = subparsers.add_parser(
        "invoke",
        help="assume an endpoint-invoke role (with ExternalId) and call InvokeEndpoint",
        description=_invoke_doc(),
    )
    invoke.add_argument("--endpoint", required=True, help="endpoint name in the target account")
    target = invoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--role-arn", help="ARN of the endpoint-invoke role to assume")
    target.add_argument("--account", help="target account id (with --role-name)")
    invoke.add_argument("--role-name", help="endpoint-invoke role name in --account, e.g. mlops-prod-endpoint-invoke")
    secret = invoke.add_mutually_exclusive_group()
    secret.add_argument(
        "--external-id-env",
        metavar="VAR",
        default=DEFAULT_EXTERNAL_ID_ENV,
        help=f"environment variable holding the ExternalId (default {DEFAULT_EXTERNAL_ID_ENV}); preferred: options show in process lists",
    )
    secret.add_argument(
        "--external-id",
        help="the ExternalId itself (visible to other local users in the process list; prefer --external-id-env)",
    )
    invoke.add_argument("--body", default="-", help="file with the request body, '-' for stdin (default)")
    invoke.add_argument(
        "--content-type", default="application/json", help="request content type (default application/json)"
    )
    invoke.add_argument("--accept", help="accepted response content type")
    invoke.add_argument("--output", help="write the response body here instead of stdout")
    invoke.add_argument("--region", help="region of the endpoint (default: the configured region)")
    invoke.add_argument(
        "--session-name", default="sm-deploy-invoke", help="role session name, seen in the target account's CloudTrail"
    )
    invoke.set_defaults(handler=run_invoke)

    share = subparsers.add_parser(
        "share-model-group",
        help="grant target accounts read access to a model package group, its image, artifacts and key",
        description=_share_doc(),
    )
    share.add_argument("--model-package-group", required=True, help="model package group name (in this account)")
    share.add_argument(
        "--target-account",
        "--target-accounts",
        dest="target_accounts",
        action="append",
        required=True,
        metavar="ID[,ID...]",
        help="account id(s) to share with (repeat or comma separate)",
    )
    share.add_argument("--ecr-repository", help="ECR repository of the inference image")
    share.add_argument("--bucket", help="model artifacts bucket")
    share.add_argument("--prefix", help="key prefix of the artifacts in --bucket (only this prefix is shared)")
    share.add_argument(
        "--kms-key",
        help="KMS key (id, ARN or alias) encrypting the artifacts/image: the target accounts get a Decrypt grant",
    )
    share.add_argument(
        "--grantee-role-name",
        help="role name in each target account that gets the KMS grant (default: the account root)",
    )
    share.add_argument("--region", help="region of the resources (default: the configured region)")
    share.add_argument(
        "--yes", action="store_true", help="apply the changes (without it: show the diff, write nothing)"
    )
    share.set_defaults(handler=run_share_model_group)


def _invoke_doc() -> str:
    return "Assume the endpoint-invoke role of the account hosting an endpoint, with the ExternalId, and call InvokeEndpoint."


def _share_doc() -> str:
    return "Share a model package group with target accounts: merge resource policies (model package group, ECR, bucket prefix) and grant the KMS key."


# ------------------------------------------------------------------ invoke


@dataclass
class InvokeResult:
    body: bytes
    content_type: str | None
    account: str
    invoked_variant: str | None = None


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message", "") or str(error)


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "****") if secret else text


def assume_invoke_role(sts, role_arn: str, external_id: str, session_name: str) -> dict:
    """Credentials of ``role_arn``, assumed with ``external_id``; clear errors for the usual failures."""
    try:
        return sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, ExternalId=external_id)["Credentials"]
    except NoCredentialsError:
        raise RolloutError(
            "no AWS credentials found for the consumer account: configure a profile or the AWS_* variables, then retry"
        ) from None
    except ClientError as error:
        code = _code(error)
        if code in _EXPIRED:
            raise RolloutError(
                f"your (consumer account) credentials have expired ({code}): refresh them, e.g. `aws sso login`, and retry"
            ) from None
        if code in _INVALID_CREDENTIALS:
            raise RolloutError(
                f"your (consumer account) credentials are not valid ({code}): check the profile or AWS_* variables"
            ) from None
        if code in _DENIED:
            raise RolloutError(
                f"access denied assuming {role_arn}: the role must trust your account, and the ExternalId must be the one it was "
                "deployed with (check the variable or option you passed it in); your own policy must allow sts:AssumeRole on it"
            ) from None
        raise RolloutError(f"assuming {role_arn} failed: {_scrub(_message(error), external_id)}") from None


def check_endpoint(sagemaker, endpoint: str, account: str, region: str) -> str | None:
    """The endpoint's status, or None when the role may not describe it (the invoke role only invokes)."""
    try:
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if _code(error) in _DENIED:
            return None
        if _code(error) in ("ValidationException", "ValidationError") and "not find" in _message(error).lower():
            raise _missing_endpoint(endpoint, account, region) from None
        raise RolloutError(f"describing endpoint {endpoint} failed: {_message(error)}") from None
    status = description.get("EndpointStatus")
    if status not in _SERVING:
        reason = f": {description['FailureReason']}" if description.get("FailureReason") else ""
        raise RolloutError(
            f"endpoint {endpoint} in account {account} ({region}) is {status}{reason}; it cannot serve requests until InService"
        )
    return status


def _missing_endpoint(endpoint: str, account: str, region: str) -> RolloutError:
    return RolloutError(
        f"endpoint {endpoint} does not exist in account {account}, region {region}: check --endpoint and --region (`python -m deploy status` lists what is deployed)"
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
        code, message = _code(error), _message(error)
        if code in _EXPIRED:
            raise RolloutError(
                f"the assumed role's session expired ({code}): run the command again to assume it anew"
            ) from None
        if code in _DENIED:
            raise RolloutError(
                f"access denied invoking {endpoint}: the endpoint-invoke role of account {account} does not allow it (its policy lists the endpoints it may invoke)"
            ) from None
        if code in ("ValidationError", "ValidationException") and "not found" in message.lower():
            raise _missing_endpoint(endpoint, account, region) from None
        if code == "ModelError":
            details = error.response.get("OriginalStatusCode") or error.response.get("Error", {}).get(
                "OriginalStatusCode"
            )
            log = error.response.get("LogStreamArn") or error.response.get("Error", {}).get("LogStreamArn")
            raise RolloutError(
                f"the model behind {endpoint} answered an error{f' (status {details})' if details else ''}: {message}{f'; logs: {log}' if log else ''}"
            ) from None
        raise RolloutError(f"invoking {endpoint} failed ({code}): {message}") from None
    return InvokeResult(
        body=response["Body"].read(),
        content_type=response.get("ContentType"),
        account=account,
        invoked_variant=response.get("InvokedProductionVariant"),
    )


def _read_body(source: str) -> bytes:
    if source == "-":
        if sys.stdin.isatty():
            raise InputError("no request body: pass --body FILE or pipe the body to stdin", key="--body")
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the request body ({error.strerror})", source=source, key="--body") from None


def _external_id(args) -> str:
    value = args.external_id if args.external_id is not None else os.environ.get(args.external_id_env)
    where = "--external-id" if args.external_id is not None else f"${args.external_id_env}"
    if not value:
        raise InputError(
            f"no ExternalId: set the environment variable {args.external_id_env} (or name another with --external-id-env)",
            key="--external-id-env",
        )
    if not 2 <= len(value) <= 1224 or not re.match(r"^[\w+=,.@:/-]+$", value):
        raise InputError(
            f"the ExternalId in {where} is not valid (2-1224 characters: letters, digits and +=,.@:/_-); its value is not shown",
            key=where,
        )
    return value


def _role_arn(args, partition: str) -> str:
    if args.role_arn:
        if not _ROLE_ARN.match(args.role_arn):
            raise InputError(
                f"'{args.role_arn}' is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)", key="--role-arn"
            )
        return args.role_arn
    if not _ACCOUNT.match(args.account or ""):
        raise InputError(f"'{args.account}' is not a 12-digit account id", key="--account")
    if not args.role_name:
        raise InputError("--account needs --role-name (the endpoint-invoke role's name)", key="--role-name")
    return f"arn:{partition}:iam::{args.account}:role/{args.role_name}"


def run_invoke(args) -> int:
    session = boto3.session.Session(region_name=args.region) if args.region else boto3.session.Session()
    region = session.region_name
    if not region:
        raise InputError("no region: pass --region or set AWS_DEFAULT_REGION", key="--region")
    role_arn = _role_arn(args, session.get_partition_for_region(region))
    external_id = _external_id(args)
    body = _read_body(args.body)
    account = role_arn.split(":")[4]
    try:
        credentials = assume_invoke_role(
            Clients(session).client("sts", region), role_arn, external_id, args.session_name
        )
        assumed = Clients(
            boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
        )
        status = check_endpoint(assumed.client("sagemaker", region), args.endpoint, account, region)
        result = invoke_endpoint(
            assumed.client("sagemaker-runtime", region),
            args.endpoint,
            body,
            args.content_type,
            args.accept,
            account,
            region,
        )
    except BotoCoreError as error:
        raise RolloutError(_scrub(f"invoke failed: {error}", external_id)) from None
    if args.output:
        Path(args.output).write_bytes(result.body)
    else:
        sys.stdout.buffer.write(result.body)
        if not result.body.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    status_note = f", endpoint {status}" if status else ""
    print(
        f"invoked {args.endpoint} in account {account} ({region}) as {role_arn.split('/')[-1]}{status_note}: {len(result.body)} bytes of {result.content_type or 'unknown type'}",
        file=sys.stderr,
    )
    return 0


# ------------------------------------------------------------------ share-model-group


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal", {})
    value = principal.get("AWS", []) if isinstance(principal, dict) else []
    return [value] if isinstance(value, str) else list(value)


def merge_policy(existing: dict | None, statements: list[dict]) -> dict:
    """``existing`` with ``statements`` merged in by Sid: same Sid gets the union of principals
    and our actions/resources; every other statement is kept as it was, in order."""
    policy = json.loads(json.dumps(existing)) if existing else {"Version": "2012-10-17", "Statement": []}
    current = policy.setdefault("Statement", [])
    if isinstance(current, dict):
        current = policy["Statement"] = [current]
    for statement in statements:
        match = next((item for item in current if item.get("Sid") == statement["Sid"]), None)
        if match is None:
            current.append(json.loads(json.dumps(statement)))
            continue
        merged = dict(statement)
        merged["Principal"] = {"AWS": sorted(set(_principals(match)) | set(_principals(statement)))}
        current[current.index(match)] = merged
    return policy


def policy_diff(label: str, before: dict | None, after: dict) -> str:
    """A unified diff of two policies as sorted, indented JSON ('' when equal)."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    if old == new:
        return ""
    return "\n".join(difflib.unified_diff(old, new, fromfile=f"{label} (now)", tofile=f"{label} (after)", lineterm=""))


def model_group_statements(group_arn: str, principals: list[str], group: str) -> list[dict]:
    """The SageMaker guide's cross-account statements: describe the group, read and deploy its versions.

    ``UpdateModelPackage`` is left out on purpose: approval stays in the owning account.
    """
    packages = group_arn.replace(":model-package-group/", ":model-package/") + "/*"
    sid = f"ShareModelGroup{_camel(group)}"
    return [
        {
            "Sid": f"{sid}Describe",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackageGroup"],
            "Resource": group_arn,
        },
        {
            "Sid": f"{sid}Versions",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"],
            "Resource": packages,
        },
    ]


def ecr_statements(principals: list[str], group: str) -> list[dict]:
    return [
        {
            "Sid": f"ShareModelGroup{_camel(group)}ImagePull",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        }
    ]


def bucket_statements(partition: str, bucket: str, prefix: str, principals: list[str], group: str) -> list[dict]:
    sid = f"ShareModelGroup{_camel(group)}Artifacts"
    prefix = prefix.strip("/")
    return [
        {
            "Sid": f"{sid}Read",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}/*",
        },
        {
            "Sid": f"{sid}List",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": "s3:ListBucket",
            "Resource": f"arn:{partition}:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
        },
    ]


@dataclass
class ShareChange:
    """One resource's change: a policy to write (before/after), or KMS grants to create."""

    label: str
    before: dict | None = None
    after: dict | None = None
    grants: list[dict] | None = None  # a KMS change when not None
    write: object = None  # callable applying it

    @property
    def diff(self) -> str:
        if self.grants is not None:
            return "\n".join(
                f"+ {self.label}: grant {', '.join(g['Operations'])} to {g['GranteePrincipal']} (name {g['Name']})"
                for g in self.grants
            )
        return policy_diff(self.label, self.before, self.after)


def _target_accounts(values: list[str], own_account: str | None) -> list[str]:
    accounts = []
    for value in values:
        for account in filter(None, (part.strip() for part in value.split(","))):
            if not _ACCOUNT.match(account):
                raise InputError(f"'{account}' is not a 12-digit account id", key="--target-account")
            if account == own_account:
                raise InputError(
                    f"{account} is the account that owns the model: name the accounts to share with",
                    key="--target-account",
                )
            if account not in accounts:
                accounts.append(account)
    return accounts


def plan_share(clients: Clients, region: str, partition: str, args, accounts: list[str]) -> list[ShareChange]:
    """Read the current policies and grants and compute the changes (reads only)."""
    principals = [f"arn:{partition}:iam::{account}:root" for account in accounts]
    group = args.model_package_group
    changes: list[ShareChange] = []

    sagemaker = clients.client("sagemaker", region)
    try:
        group_arn = sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as error:
        if _code(error) in ("ValidationException", "ResourceNotFound"):
            raise InputError(
                f"model package group '{group}' not found in region {region} of this account",
                key="--model-package-group",
            ) from None
        raise
    try:
        current = json.loads(sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"])
    except ClientError as error:
        if _code(error) != "ValidationException" or "resource policy" not in _message(error).lower():
            raise
        current = None
    after = merge_policy(current, model_group_statements(group_arn, principals, group))
    changes.append(
        ShareChange(
            f"model package group {group} policy",
            current,
            after,
            write=lambda policy=after: sagemaker.put_model_package_group_policy(
                ModelPackageGroupName=group, ResourcePolicy=json.dumps(policy)
            ),
        )
    )

    if args.ecr_repository:
        ecr = clients.client("ecr", region)
        try:
            current = json.loads(ecr.get_repository_policy(repositoryName=args.ecr_repository)["policyText"])
        except ClientError as error:
            if _code(error) == "RepositoryNotFoundException":
                raise InputError(
                    f"ECR repository '{args.ecr_repository}' not found in region {region}", key="--ecr-repository"
                ) from None
            if _code(error) != "RepositoryPolicyNotFoundException":
                raise
            current = None
        after = merge_policy(current, ecr_statements(principals, group))
        changes.append(
            ShareChange(
                f"ECR repository {args.ecr_repository} policy",
                current,
                after,
                write=lambda policy=after: ecr.set_repository_policy(
                    repositoryName=args.ecr_repository, policyText=json.dumps(policy)
                ),
            )
        )

    if args.bucket:
        s3 = clients.client("s3", region)
        try:
            current = json.loads(s3.get_bucket_policy(Bucket=args.bucket)["Policy"])
        except ClientError as error:
            if _code(error) == "NoSuchBucket":
                raise InputError(f"bucket '{args.bucket}' not found", key="--bucket") from None
            if _code(error) != "NoSuchBucketPolicy":
                raise
            current = None
        after = merge_policy(current, bucket_statements(partition, args.bucket, args.prefix, principals, group))
        changes.append(
            ShareChange(
                f"bucket {args.bucket} policy",
                current,
                after,
                write=lambda policy=after: s3.put_bucket_policy(Bucket=args.bucket, Policy=json.dumps(policy)),
            )
        )

    if args.kms_key:
        kms = clients.client("kms", region)
        try:
            key_arn = kms.describe_key(KeyId=args.kms_key)["KeyMetadata"]["Arn"]
        except ClientError as error:
            if _code(error) in ("NotFoundException", "InvalidArnException"):
                raise InputError(f"KMS key '{args.kms_key}' not found in region {region}", key="--kms-key") from None
            raise
        existing = {
            (grant.get("Name"), grant.get("GranteePrincipal"))
            for page in kms.get_paginator("list_grants").paginate(KeyId=key_arn)
            for grant in page["Grants"]
        }
        grantees = [
            f"arn:{partition}:iam::{account}:role/{args.grantee_role_name}"
            if args.grantee_role_name
            else f"arn:{partition}:iam::{account}:root"
            for account in accounts
        ]
        name = f"share-model-group-{re.sub(r'[^A-Za-z0-9:/_-]', '-', group)}"
        grants = [
            {"KeyId": key_arn, "GranteePrincipal": grantee, "Operations": ["Decrypt", "DescribeKey"], "Name": name}
            for grantee in grantees
            if (name, grantee) not in existing
        ]
        changes.append(
            ShareChange(
                f"KMS key {key_arn}",
                grants=grants,
                write=lambda grants=grants: [kms.create_grant(**grant) for grant in grants],
            )
        )
    return changes


def run_share_model_group(args) -> int:
    session = boto3.session.Session(region_name=args.region) if args.region else boto3.session.Session()
    region = session.region_name
    if not region:
        raise InputError("no region: pass --region or set AWS_DEFAULT_REGION", key="--region")
    if bool(args.bucket) != bool(args.prefix):
        raise InputError(
            "--bucket and --prefix go together: only the model's prefix is shared, never the whole bucket",
            key="--prefix" if args.bucket else "--bucket",
        )
    if args.prefix is not None and not args.prefix.strip("/"):
        raise InputError("--prefix must not be empty: sharing the whole bucket is not supported", key="--prefix")
    clients = Clients(session)
    try:
        own_account = clients.client("sts", region).get_caller_identity()["Account"]
        accounts = _target_accounts(args.target_accounts, own_account)
        changes = plan_share(clients, region, session.get_partition_for_region(region), args, accounts)
    except ClientError as error:
        raise RolloutError(f"reading the current policies failed ({_code(error)}): {_message(error)}") from None
    except BotoCoreError as error:
        raise RolloutError(f"reading the current policies failed: {error}") from None
    pending = [change for change in changes if change.diff]
    for change in changes:
        print(change.diff or f"= {change.label}: already shared with {', '.join(accounts)}")
    if not pending:
        print("nothing to change")
        return 0
    if not args.yes:
        print(f"dry run: {len(pending)} change(s) shown above, nothing written; re-run with --yes to apply")
        return 0
    for change in pending:
        try:
            change.write()
        except ClientError as error:
            raise RolloutError(
                f"writing the {change.label} failed ({_code(error)}): {_message(error)}; the changes listed before it were applied, re-run to finish (it is idempotent)"
            ) from None
        print(f"applied: {change.label}")
    return 0
