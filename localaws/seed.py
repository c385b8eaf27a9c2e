"""Seed the local AWS with an Organization described by an org file (examples/local-org.yaml).

Called by :mod:`localaws.lifecycle` once the server answers (``local up``, the demo, the
tests), and by the tests' ``reset()``.

Creates the Organization (the management account is the emulator's default account),
the OUs by path (``workloads/staging`` nests ``staging`` under ``workloads``), the member
accounts in their OUs (each with the ``OrganizationAccountAccessRole`` that AWS, and moto,
create with the account), trusted access for the listed service principals, and
optionally the management account's StackSet administration role. Returns, and writes to
``<state dir>/state.json``, the ids of what it created.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml
from botocore.config import Config

from deploy.common.errors import InputError
from localaws import DEFAULT_REGION, DUMMY_CREDENTIALS, MANAGEMENT_ACCOUNT_ID

DEFAULT_ORG_FILE = Path("examples/local-org.yaml")
STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
ADMIN_ROLE_NAME = "AWSCloudFormationStackSetAdministrationRole"
EXECUTION_ROLE_NAME = "AWSCloudFormationStackSetExecutionRole"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OU_NAME = re.compile(r"^[\w .&+@=,-]{1,128}$")
_KEYS = {
    "region",
    "random_seed",
    "management_account",
    "organizational_units",
    "accounts",
    "trusted_access",
    "stackset_administration_role",
}


@dataclass
class OrgSpec:
    """A validated org file."""

    region: str = DEFAULT_REGION
    random_seed: int | None = None
    management_name: str = "management"
    management_email: str = "management@example.com"
    ou_paths: list[str] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)  # {"name", "email", "ou"}
    trusted_access: list[str] = field(default_factory=lambda: [STACKSETS_PRINCIPAL])
    stackset_administration_role: bool = True


def load_org_file(path: str | Path) -> OrgSpec:
    """Read and check an org file; any problem is an InputError naming the file and key."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise InputError(f"cannot read the org file ({error.strerror})", source=source) from None
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {error}", source=source) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping with organizational_units and accounts", source=source)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"unknown key (expected one of {', '.join(sorted(_KEYS))})", source=source, key=unknown[0])
    spec = OrgSpec()
    spec.region = _string(data.get("region", DEFAULT_REGION), source, None, "region")
    seed = data.get("random_seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError("expected an integer", source=source, key="random_seed")
    spec.random_seed = seed
    management = data.get("management_account") or {}
    if not isinstance(management, dict):
        raise InputError("expected a mapping with name and email", source=source, key="management_account")
    if "id" in management and str(management["id"]) != MANAGEMENT_ACCOUNT_ID:
        raise InputError(
            f"the local AWS's management account is always {MANAGEMENT_ACCOUNT_ID} (moto's default account); "
            "remove the id",
            source=source,
            where="management_account",
            key="id",
        )
    spec.management_name = _string(management.get("name", spec.management_name), source, "management_account", "name")
    spec.management_email = _email(management.get("email", spec.management_email), source, "management_account")

    ous = data.get("organizational_units") or []
    if not isinstance(ous, list):
        raise InputError(
            "expected a list of OU paths such as 'development' or 'workloads/staging'",
            source=source,
            key="organizational_units",
        )
    seen: set[str] = set()
    for index, raw in enumerate(ous):
        where = f"organizational_units[{index}]"
        path = _string(raw, source, where, None).strip("/")
        parts = path.split("/")
        if not all(_OU_NAME.match(part) for part in parts):
            raise InputError(
                f"'{raw}' is not an OU path (names of 1-128 letters, digits, spaces or .&+@=,-_ joined by '/')",
                source=source,
                where=where,
            )
        for depth in range(1, len(parts) + 1):  # parents first, implicitly
            prefix = "/".join(parts[:depth])
            if prefix not in seen:
                seen.add(prefix)
                spec.ou_paths.append(prefix)

    accounts = data.get("accounts") or []
    if not isinstance(accounts, list):
        raise InputError("expected a list of {name, email, ou}", source=source, key="accounts")
    names, emails = {spec.management_name}, {spec.management_email.lower()}
    for index, account in enumerate(accounts):
        where = f"accounts[{index}]"
        if not isinstance(account, dict):
            raise InputError("expected a mapping with name, email and ou", source=source, where=where)
        extra = sorted(set(account) - {"name", "email", "ou"})
        if extra:
            raise InputError("unknown key (expected name, email, ou)", source=source, where=where, key=extra[0])
        name = _string(account.get("name"), source, where, "name")
        if name in names:
            raise InputError(f"account name '{name}' is used twice", source=source, where=where, key="name")
        email = _email(account.get("email", f"{re.sub(r'[^A-Za-z0-9.+-]', '-', name)}@example.com"), source, where)
        if email.lower() in emails:
            raise InputError(f"email '{email}' is used twice", source=source, where=where, key="email")
        ou = _string(account.get("ou", ""), source, where, "ou").strip("/") if account.get("ou") else ""
        if ou and ou not in seen:
            raise InputError(
                f"OU '{ou}' is not listed in organizational_units (known: {', '.join(spec.ou_paths) or 'none'})",
                source=source,
                where=where,
                key="ou",
            )
        names.add(name)
        emails.add(email.lower())
        spec.accounts.append({"name": name, "email": email, "ou": ou})

    trusted = data.get("trusted_access", spec.trusted_access)
    if not isinstance(trusted, list) or not all(
        isinstance(item, str) and item.endswith(".amazonaws.com") for item in trusted
    ):
        raise InputError(
            "expected a list of service principals such as member.org.stacksets.cloudformation.amazonaws.com",
            source=source,
            key="trusted_access",
        )
    spec.trusted_access = list(trusted)
    role = data.get("stackset_administration_role", True)
    if not isinstance(role, bool):
        raise InputError("expected true or false", source=source, key="stackset_administration_role")
    spec.stackset_administration_role = role
    return spec


def _string(value, source, where, key) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("expected a non-empty string", source=source, where=where, key=key)
    return value.strip()


def _email(value, source, where) -> str:
    value = _string(value, source, where, "email")
    if not _EMAIL.match(value):
        raise InputError(f"'{value}' is not an email address", source=source, where=where, key="email")
    return value


def _session(endpoint_url: str, region: str):
    """Clients of the management account on the local server."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    return lambda service: session.client(service, endpoint_url=endpoint_url, config=config)


def _trust_policy(principal: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


def seed(endpoint_url: str, spec: OrgSpec) -> dict:
    """Create the Organization of ``spec`` on the server at ``endpoint_url``; return the ids."""
    if spec.random_seed is not None:  # deterministic account and OU ids across runs
        request = urllib.request.Request(f"{endpoint_url}/moto-api/seed?a={spec.random_seed}", method="POST", data=b"")
        urllib.request.urlopen(request, timeout=10).close()
    client = _session(endpoint_url, spec.region)
    org = client("organizations")
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    root_id = org.list_roots()["Roots"][0]["Id"]

    ou_ids: dict[str, str] = {}
    for path in spec.ou_paths:  # parents precede children (load_org_file guarantees it)
        parent, _, name = path.rpartition("/")
        ou = org.create_organizational_unit(ParentId=ou_ids[parent] if parent else root_id, Name=name)
        ou_ids[path] = ou["OrganizationalUnit"]["Id"]

    accounts: dict[str, dict] = {}
    for account in spec.accounts:
        status = org.create_account(AccountName=account["name"], Email=account["email"])["CreateAccountStatus"]
        account_id = (
            status.get("AccountId")
            or org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"][
                "AccountId"
            ]
        )
        if account["ou"]:
            org.move_account(AccountId=account_id, SourceParentId=root_id, DestinationParentId=ou_ids[account["ou"]])
        accounts[account["name"]] = {"id": account_id, "email": account["email"], "ou": account["ou"] or None}

    for principal in spec.trusted_access:
        org.enable_aws_service_access(ServicePrincipal=principal)

    admin_role_arn = None
    if spec.stackset_administration_role:
        iam = client("iam")
        admin_role_arn = iam.create_role(
            RoleName=ADMIN_ROLE_NAME,
            AssumeRolePolicyDocument=_trust_policy({"Service": "cloudformation.amazonaws.com"}),
            Description="Lets CloudFormation StackSets assume the execution role in target accounts",
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=ADMIN_ROLE_NAME,
            PolicyName="AssumeExecutionRole",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Resource": f"arn:*:iam::*:role/{EXECUTION_ROLE_NAME}",
                        }
                    ],
                }
            ),
        )

    return {
        "endpoint_url": endpoint_url,
        "region": spec.region,
        "organization_id": organization["Id"],
        "root_id": root_id,
        "management_account": {
            "name": spec.management_name,
            "id": MANAGEMENT_ACCOUNT_ID,
            "email": spec.management_email,
        },
        "organizational_units": ou_ids,
        "accounts": accounts,
        "trusted_access": list(spec.trusted_access),
        "stackset_administration_role_arn": admin_role_arn,
    }


def write_state(state_dir: Path, state: dict) -> Path:
    """Write ``state`` to ``<state_dir>/state.json`` and return the path."""
    path = Path(state_dir) / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")
    return path
