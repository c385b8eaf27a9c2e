"""The seed flows as commands: ``invoke`` and ``share-model-group``.

``invoke`` runs in the consumer account: it assumes the endpoint-invoke role of the
account that hosts the endpoint (with the ExternalId, which is never printed) and calls
InvokeEndpoint with a body from a file or stdin.

``share-model-group`` runs in the development account that owns the model: it merges the
cross-account statements of the SageMaker guide into the model package group policy, the
ECR repository policy, the model bucket policy (one prefix) and, for an SSE-KMS bucket, the
policy of the bucket's key (decrypt through S3 only), for the given target accounts; or
takes accounts out again (``--remove-account``). Other statements are never dropped; the
diff is shown first, nothing is written without ``--yes``, and a repeated run writes
nothing. Resources a CloudFormation stack created, and buckets under the AWS managed key
aws/s3, are refused before any write.

This module parses the arguments and prints; the AWS calls are in
:mod:`deploy.flows.aws`, the policy merging in :mod:`deploy.flows.policies`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from deploy.common.clients import Clients
from deploy.common.errors import InputError, RolloutError, error_code, error_message
from deploy.flows import aws

DEFAULT_EXTERNAL_ID_ENV = "SM_INVOKE_EXTERNAL_ID"
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ACCOUNT = re.compile(r"^\d{12}$")


def register(subparsers) -> None:
    """Add the ``invoke`` and ``share-model-group`` parsers."""
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
        help=f"environment variable holding the ExternalId (default {DEFAULT_EXTERNAL_ID_ENV}); "
        "preferred: options show in process lists",
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
    invoke.add_argument(
        "--check-endpoint",
        action="store_true",
        help="describe the endpoint first and refuse one that is not in service (the role must allow "
        "sagemaker:DescribeEndpoint; the endpoint-invoke role of the templates does not)",
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
        default=[],
        metavar="ID[,ID...]",
        help="account id(s) to share with (repeat or comma separate)",
    )
    share.add_argument(
        "--remove-account",
        "--unshare",
        dest="remove_accounts",
        action="append",
        default=[],
        metavar="ID[,ID...]",
        help="account id(s) to stop sharing with: their principals leave every statement this command writes",
    )
    share.add_argument("--ecr-repository", help="ECR repository of the inference image")
    share.add_argument("--bucket", help="model artifacts bucket")
    share.add_argument("--prefix", help="key prefix of the artifacts in --bucket (only this prefix is shared)")
    share.add_argument(
        "--kms-key",
        help="KMS key (id, ARN or alias) expected to encrypt --bucket: checked against the bucket's default "
        "encryption, whose key gets the statement anyway",
    )
    share.add_argument(
        "--key-user-role-name",
        "--grantee-role-name",
        dest="key_user_role_name",
        help="role name in each target account named in the key policy statement (default: the account root)",
    )
    share.add_argument(
        "--revoke-old-grants",
        action="store_true",
        help="revoke the KMS grants earlier versions of this command created for the group (they cover every "
        "ciphertext of the key)",
    )
    share.add_argument("--region", help="region of the resources (default: the configured region)")
    share.add_argument(
        "--yes", action="store_true", help="apply the changes (without it: show the diff, write nothing)"
    )
    share.set_defaults(handler=run_share_model_group)


def _invoke_doc() -> str:
    return (
        "Assume the endpoint-invoke role of the account hosting an endpoint, with the ExternalId, "
        "and call InvokeEndpoint."
    )


def _share_doc() -> str:
    return (
        "Share a model package group with target accounts, or stop sharing it: merge resource policies "
        "(model package group, ECR, bucket prefix, the bucket's KMS key through S3). Resources a "
        "CloudFormation stack created are refused (their template owns the policy)."
    )


def _session_and_region(args):
    session = aws.session(args.region)
    if not session.region_name:
        raise InputError("no region: pass --region or set AWS_DEFAULT_REGION", key="--region")
    return session, session.region_name


# ------------------------------------------------------------------ invoke


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
            f"no ExternalId: set the environment variable {args.external_id_env} "
            "(or name another with --external-id-env)",
            key="--external-id-env",
        )
    if not 2 <= len(value) <= 1224 or not re.match(r"^[\w+=,.@:/-]+$", value):
        raise InputError(
            f"the ExternalId in {where} is not valid (2-1224 characters: letters, digits and +=,.@:/_-); "
            "its value is not shown",
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
    session, region = _session_and_region(args)
    role_arn = _role_arn(args, session.get_partition_for_region(region))
    external_id = _external_id(args)
    body = _read_body(args.body)
    account = role_arn.split(":")[4]
    try:
        credentials = aws.assume_invoke_role(
            Clients(session).client("sts", region), role_arn, external_id, args.session_name
        )
        assumed = aws.assumed_clients(credentials, region)
        # DescribeEndpoint only when asked: the endpoint-invoke role may only invoke, and each denied
        # call would be an AccessDenied in the target account's CloudTrail.
        status = (
            aws.check_endpoint(assumed.client("sagemaker", region), args.endpoint, account, region)
            if args.check_endpoint
            else None
        )
        result = aws.invoke_endpoint(
            assumed.client("sagemaker-runtime", region),
            args.endpoint,
            body,
            args.content_type,
            args.accept,
            account,
            region,
        )
    except BotoCoreError as error:
        raise RolloutError(aws.scrub(f"invoke failed: {error}", external_id)) from None
    if args.output:
        Path(args.output).write_bytes(result.body)
    else:
        sys.stdout.buffer.write(result.body)
        if not result.body.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    status_note = f", endpoint {status}" if status else ""
    print(
        f"invoked {args.endpoint} in account {account} ({region}) as {role_arn.split('/')[-1]}{status_note}: "
        f"{len(result.body)} bytes of {result.content_type or 'unknown type'}",
        file=sys.stderr,
    )
    return 0


# ------------------------------------------------------------------ share-model-group


def _target_accounts(values: list[str], own_account: str | None, option: str = "--target-account") -> list[str]:
    accounts: list[str] = []
    for value in values:
        for account in filter(None, (part.strip() for part in value.split(","))):
            if not _ACCOUNT.match(account):
                raise InputError(f"'{account}' is not a 12-digit account id", key=option)
            if account == own_account:
                raise InputError(
                    f"{account} is the account that owns the model: name the accounts to share with", key=option
                )
            if account not in accounts:
                accounts.append(account)
    return sorted(accounts)


def run_share_model_group(args) -> int:
    if not args.target_accounts and not args.remove_accounts:
        raise InputError(
            "name accounts to share with (--target-account) or to stop sharing with (--remove-account)",
            key="--target-account",
        )
    session, region = _session_and_region(args)
    request = aws.ShareRequest(
        group=args.model_package_group,
        ecr_repository=args.ecr_repository,
        bucket=args.bucket,
        prefix=args.prefix,
        kms_key=args.kms_key,
        key_user_role_name=args.key_user_role_name,
        revoke_old_grants=args.revoke_old_grants,
    )
    clients = Clients(session)
    try:
        own = aws.own_account(clients, region)
        accounts = _target_accounts(args.target_accounts, own)
        removed = _target_accounts(args.remove_accounts, own, "--remove-account")
        if both := sorted(set(accounts) & set(removed)):
            raise InputError(f"{', '.join(both)} named both to share with and to remove", key="--remove-account")
        plan = aws.plan_share(clients, region, session.get_partition_for_region(region), request, accounts, removed)
    except ClientError as error:
        raise RolloutError(
            f"reading the current policies failed ({error_code(error)}): {error_message(error)}"
        ) from None
    except BotoCoreError as error:
        raise RolloutError(f"reading the current policies failed: {error}") from None
    for note in plan.notes:
        print(f"note: {note}")
    pending = [change for change in plan.changes if change.diff]
    for change in plan.changes:
        print(change.diff or f"= {change.label}: no change")
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
                f"writing the {change.label} failed ({error_code(error)}): {error_message(error)}; the changes "
                "listed before it were applied, re-run to finish (it is idempotent)"
            ) from None
        print(f"applied: {change.label}")
    return 0
