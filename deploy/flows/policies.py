"""The policy side of ``share-model-group``, pure: no AWS calls, no printing.

The cross-account statements of the SageMaker guide (model package group, ECR image,
one bucket prefix), their merge into an existing policy by Sid, the diff shown before
anything is written, and the KMS grants still missing. :mod:`deploy.flows.aws` reads and
writes the policies; :mod:`deploy.flows.cli` prints the changes.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal", {})
    value = principal.get("AWS", []) if isinstance(principal, dict) else []
    return [value] if isinstance(value, str) else list(value)


def merge_policy(existing: dict | None, statements: list[dict]) -> dict:
    """``existing`` with ``statements`` merged in by Sid: same Sid gets the union of principals
    and our actions/resources; every other statement is kept as it was, in order."""
    policy: dict = json.loads(json.dumps(existing)) if existing else {"Version": "2012-10-17", "Statement": []}
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


def policy_diff(label: str, before: dict | None, after: dict | None) -> str:
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
    """The repository policy statement that lets ``principals`` pull the inference image."""
    return [
        {
            "Sid": f"ShareModelGroup{_camel(group)}ImagePull",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        }
    ]


def bucket_statements(partition: str, bucket: str, prefix: str, principals: list[str], group: str) -> list[dict]:
    """The bucket policy statements that let ``principals`` read and list one prefix (never the whole bucket)."""
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


def account_principals(partition: str, accounts: list[str], role_name: str | None = None) -> list[str]:
    """The principal of each account: its root, or the role ``role_name`` in it."""
    suffix = f"role/{role_name}" if role_name else "root"
    return [f"arn:{partition}:iam::{account}:{suffix}" for account in accounts]


def missing_grants(key_arn: str, grantees: list[str], group: str, existing: Iterable[tuple[str, str]]) -> list[dict]:
    """The Decrypt grants on ``key_arn`` that ``grantees`` lack; ``existing`` holds (name, grantee) pairs."""
    name = f"share-model-group-{re.sub(r'[^A-Za-z0-9:/_-]', '-', group)}"
    present = set(existing)
    return [
        {"KeyId": key_arn, "GranteePrincipal": grantee, "Operations": ["Decrypt", "DescribeKey"], "Name": name}
        for grantee in grantees
        if (name, grantee) not in present
    ]


@dataclass
class ShareChange:
    """One resource's change: a policy to write (before/after), or KMS grants to create."""

    label: str
    write: Callable[[], object]  # applies it (built by deploy.flows.aws)
    before: dict | None = None
    after: dict | None = None
    grants: list[dict] | None = None  # a KMS change when not None

    @property
    def diff(self) -> str:
        if self.grants is not None:
            return "\n".join(
                f"+ {self.label}: grant {', '.join(g['Operations'])} to {g['GranteePrincipal']} (name {g['Name']})"
                for g in self.grants
            )
        return policy_diff(self.label, self.before, self.after)
