"""The policy side of ``share-model-group``, pure: no AWS calls, no printing.

The cross-account statements of the SageMaker guide (model package group, ECR image,
one bucket prefix, the key policy statement that decrypts that prefix through S3), their
merge into an existing policy by Sid (adding or removing accounts), the canonical
comparison that makes a repeated run write nothing, and the diff shown before anything is
written. :mod:`deploy.flows.aws` reads and
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


_ACCOUNT_OF = re.compile(r"^(?:arn:[^:]+:(?:iam|sts)::)?(\d{12})(?::|$)")


def _as_list(value) -> list:
    return list(value) if isinstance(value, list) else [value]


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal", {})
    value = principal.get("AWS", []) if isinstance(principal, dict) else []
    return [value] if isinstance(value, str) else list(value)


def principal_account(principal: str) -> str | None:
    """The account of an ``AWS`` principal (an account id, or an IAM/STS ARN); None otherwise."""
    match = _ACCOUNT_OF.match(principal)
    return match.group(1) if match else None


def _canonical_value(value):
    if isinstance(value, dict):
        return {key: _canonical_value(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        items = [_canonical_value(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def canonical_statement(statement: dict) -> dict:
    """``statement`` in one spelling: single values as one-item lists, lists sorted, keys sorted.

    IAM reads ``"Action": "x"`` and ``"Action": ["x"]`` alike and the order of a list's
    values never matters; services also give back what they store in their own spelling
    (S3 returns a one-principal list as a string). Comparing canonical forms is what makes a
    second identical run write nothing.
    """
    result = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            value = _as_list(value)
        elif key in ("Principal", "NotPrincipal") and isinstance(value, dict):
            value = {kind: _as_list(item) for kind, item in value.items()}
        elif key == "Condition" and isinstance(value, dict):
            value = {op: {k: _as_list(v) for k, v in tests.items()} for op, tests in value.items()}
        result[key] = _canonical_value(value)
    return result


def canonical_policy(policy: dict | None) -> dict | None:
    """``policy`` with every statement canonical (statement order kept: it is how the owner wrote it)."""
    if policy is None:
        return None
    statements = policy.get("Statement", [])
    return {
        **{key: value for key, value in policy.items() if key != "Statement"},
        "Statement": [canonical_statement(s) for s in _as_list(statements)],
    }


def same_policy(before: dict | None, after: dict | None) -> bool:
    """Whether two policies say the same (see :func:`canonical_statement`)."""
    return canonical_policy(before) == canonical_policy(after)


def merge_policy(existing: dict | None, statements: list[dict], remove_accounts: Iterable[str] = ()) -> dict:
    """``existing`` with ``statements`` merged in by Sid; every other statement is kept as it was, in order.

    A statement of ours (same Sid) gets our actions, resources and conditions and the union of
    its current principals and ours, minus every principal of ``remove_accounts``; principals
    are written sorted and without duplicates. A statement of ours left with no principal is
    dropped (and not added).
    """
    removed = set(remove_accounts)
    policy: dict = json.loads(json.dumps(existing)) if existing else {"Version": "2012-10-17", "Statement": []}
    current = policy.setdefault("Statement", [])
    if isinstance(current, dict):
        current = policy["Statement"] = [current]
    for statement in statements:
        match = next((item for item in current if item.get("Sid") == statement["Sid"]), None)
        principals = set(_principals(statement)) | (set(_principals(match)) if match else set())
        principals = sorted(p for p in principals if principal_account(p) not in removed)
        if not principals:
            if match is not None:
                current.remove(match)
            continue
        merged = json.loads(json.dumps(statement))
        merged["Principal"] = {"AWS": principals}
        if match is None:
            current.append(merged)
        else:
            current[current.index(match)] = merged
    return policy


def policy_diff(label: str, before: dict | None, after: dict | None) -> str:
    """A unified diff of two policies as canonical, indented JSON ('' when they say the same)."""
    if same_policy(before, after):
        return ""
    old = json.dumps(canonical_policy(before), indent=2, sort_keys=True).splitlines() if before else []
    new = json.dumps(canonical_policy(after), indent=2, sort_keys=True).splitlines() if after else []
    target = f"{label} (after)" if after else f"{label} (deleted: no statement left)"
    return "\n".join(difflib.unified_diff(old, new, fromfile=f"{label} (now)", tofile=target, lineterm=""))


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


def s3_via_service(region: str, dns_suffix: str) -> str:
    """The ``kms:ViaService`` value of S3 in ``region``: ``s3.<region>.<the partition's DNS suffix>``."""
    return f"s3.{region}.{dns_suffix}"


def key_statements(
    partition: str,
    via_service: str,
    bucket: str,
    prefix: str,
    principals: list[str],
    group: str,
    bucket_key: bool,
) -> list[dict]:
    """The key policy statement that lets ``principals`` decrypt the artifacts, only through S3.

    ``kms:ViaService`` admits only requests S3 makes on their behalf (a GetObject), and
    ``kms:EncryptionContext:aws:s3:arn`` only ciphertexts of the shared prefix. With an S3
    Bucket Key, S3's encryption context is the bucket ARN, not the object ARN (S3 User
    Guide, "Configuring your bucket to use an S3 Bucket Key"): the bucket ARN is then admitted
    too, which covers every object of the bucket under this key; the bucket policy still lets
    the targets read only the prefix. The prefix pattern stays for objects written without
    the Bucket Key. No DescribeKey: S3 does not need it to serve GetObject.
    """
    prefix = prefix.strip("/")
    contexts = [f"arn:{partition}:s3:::{bucket}/{prefix}/*"]
    if bucket_key:
        contexts.insert(0, f"arn:{partition}:s3:::{bucket}")
    return [
        {
            "Sid": f"ShareModelGroup{_camel(group)}ArtifactsDecrypt",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": via_service},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": contexts},
            },
        }
    ]


def legacy_grant_name(group: str) -> str:
    """The name earlier versions gave their KMS grants for ``group``."""
    return f"{LEGACY_GRANT_PREFIX}{re.sub(r'[^A-Za-z0-9:/_-]', '-', group)}"


LEGACY_GRANT_PREFIX = "share-model-group-"


@dataclass
class ShareChange:
    """One resource's change: a policy to write (before/after), or old KMS grants to revoke."""

    label: str
    write: Callable[[], object]  # applies it (built by deploy.flows.aws)
    before: dict | None = None
    after: dict | None = None
    revoke: list[dict] | None = None  # a change of grants when not None: {"GrantId", "Name", "GranteePrincipal"}

    @property
    def diff(self) -> str:
        if self.revoke is not None:
            return "\n".join(
                f"- {self.label}: revoke grant {g['Name']} ({g['GrantId']}) of {g['GranteePrincipal']}"
                for g in self.revoke
            )
        return policy_diff(self.label, self.before, self.after)


@dataclass
class SharePlan:
    """The changes, in the order they are applied, and what the user must know before applying them."""

    changes: list[ShareChange]
    notes: list[str]
