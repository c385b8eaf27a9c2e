"""The seed flows as commands: ``invoke`` and ``share-model-group``.

``invoke`` runs in the consumer account: it assumes the endpoint-invoke role of the
account that hosts the endpoint (with the ExternalId, which is never printed) and calls
InvokeEndpoint with a body from a file or stdin.

``share-model-group`` runs in the development account that owns the model: it merges the
cross-account statements of the SageMaker guide into the model package group policy, the
ECR repository policy and the model bucket policy (one prefix), and grants the KMS key,
for the given target accounts. Other statements are never dropped; the diff is shown
first and nothing is written without ``--yes``.

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
    return (
        "Assume the endpoint-invoke role of the account hosting an endpoint, with the ExternalId, "
        "and call InvokeEndpoint."
    )


def _share_doc() -> str:
    return (
        "Share a model package group with target accounts: merge resource policies "
        "(model package group, ECR, bucket prefix) and grant the KMS key."
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
        status = aws.check_endpoint(assumed.client("sagemaker", region), args.endpoint, account, region)
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


def _target_accounts(values: list[str], own_account: str | None) -> list[str]:
    accounts: list[str] = []
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


def run_share_model_group(args) -> int:
    session, region = _session_and_region(args)
    request = aws.ShareRequest(
        group=args.model_package_group,
        ecr_repository=args.ecr_repository,
        bucket=args.bucket,
        prefix=args.prefix,
        kms_key=args.kms_key,
        grantee_role_name=args.grantee_role_name,
    )
    clients = Clients(session)
    try:
        accounts = _target_accounts(args.target_accounts, aws.own_account(clients, region))
        changes = aws.plan_share(clients, region, session.get_partition_for_region(region), request, accounts)
    except ClientError as error:
        raise RolloutError(
            f"reading the current policies failed ({error_code(error)}): {error_message(error)}"
        ) from None
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
                f"writing the {change.label} failed ({error_code(error)}): {error_message(error)}; the changes "
                "listed before it were applied, re-run to finish (it is idempotent)"
            ) from None
        print(f"applied: {change.label}")
    return 0
