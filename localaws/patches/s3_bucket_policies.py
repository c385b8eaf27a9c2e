"""S3: PutBucketPolicy and AWS::S3::BucketPolicy, failing as AWS fails them.

moto 5.2.5 has no CloudFormation support for AWS::S3::BucketPolicy: it became a
placeholder (``cloudformation_placeholders.py``) that "succeeded" with any document on any
bucket and never reached the local S3. Here the resource puts the policy on the bucket in
the stack's account (moto's S3 backend stores it: GetBucketPolicy returns it), replaces it
on update and removes it on delete; Ref gives the bucket name (the schema's primary
identifier). It fails, with S3's error in CloudFormation's status reason, when:

- the bucket does not exist: NoSuchBucket, "The specified bucket does not exist";
- the document is not an IAM policy (``_policy_documents.py``) or names a resource outside
  the bucket: MalformedPolicy, with S3's messages "Policies must be valid JSON and the
  first byte must be '{'", "Policy has invalid resource", "Missing required field ...";
- it is larger than 20 KB without whitespace (S3 User Guide: "Bucket policies are limited
  to 20 KB in size."; the error text for that case is ours);
- an ``AWS`` principal does not exist: MalformedPolicy "Invalid principal in policy" (S3
  reports a principal it cannot resolve so). An account (``<id>`` or
  ``arn:<partition>:iam::<id>:root``) is known when it is moto's default account, the bucket's,
  or an account of the local Organization; ``role/...`` and ``user/...`` ARNs must equal the ARN
  of a role or user in that account's IAM, path included (a role created with a path is not
  ``role/<name>``); ``sts::<id>:assumed-role/<role>/<session>`` needs the role (by name: the
  session ARN carries no path); ``sts::<id>:federated-user/<name>`` needs only its account (a
  federated user is no stored entity to look up). ``"*"``, service principals and canonical users
  are accepted. A group or any other IAM resource is refused (IAM User Guide: "You cannot identify
  a user group as a principal in a policy").

PutBucketPolicy called directly (moto stored any bytes) runs the same checks and answers
the same errors. Principal existence is checked by default; ``POST
/_local/control/s3_bucket_policies?check_principals=false`` turns it off (principals are then
checked in form only, more lenient than AWS): only for a test that must name a principal the
local AWS cannot have, and such a test turns it back on. The policy is stored, not enforced
beyond moto's own (README, local AWS table).
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend, s3_backends
from moto.utilities.utils import get_partition

from localaws.patches._policy_documents import policy_problem, statements, without_no_value
from localaws.patches.cloudformation_placeholders import check_required, resource_failed

_TYPE = "AWS::S3::BucketPolicy"
_MAX_BYTES = 20 * 1024  # "Bucket policies are limited to 20 KB in size."
_NOT_JSON = "Policies must be valid JSON and the first byte must be '{'"
_TOO_LARGE = "Policies cannot exceed 20 KB in size, excluding whitespace"
_PRINCIPAL_ARN = re.compile(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$")
_original_put_bucket_policy = S3Backend.put_bucket_policy
OPTIONS: dict = {"check_principals": True}  # whether AWS principals must exist (default; see above)


def _backend(account_id: str, region_name: str):
    return s3_backends[account_id][get_partition(region_name)]


def _document(logical_id: str, value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            resource_failed(logical_id, "S3", _NOT_JSON)
    return without_no_value(value)


def _invalid_resources(bucket: str, document: dict) -> bool:
    # Legacy S3 Developer Guide, "Special information for Amazon S3 policies": "Each policy
    # must cover only a single bucket and resources within that bucket"; S3 answers
    # MalformedPolicy "Policy has invalid resource" otherwise (even for "*").
    own = (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/")
    for statement in statements(document):
        resources = statement.get("Resource", statement.get("NotResource"))
        for resource in [resources] if isinstance(resources, str) else resources:
            partitionless = "arn:aws:" + resource.split(":", 2)[2] if resource.startswith("arn:aws") else resource
            if not (partitionless == own[0] or partitionless.startswith(own[1])):
                return True
    return False


def _known_accounts(account_id: str) -> set[str]:
    """Accounts that exist on the local AWS: moto's default, the caller's, the local Organization's."""
    from moto.organizations.models import organizations_backends

    accounts = {DEFAULT_ACCOUNT_ID, account_id}
    for _account, _partition, backend in organizations_backends.iter_backends():
        if backend.org is not None:
            accounts.add(backend.org.master_account_id)
            accounts.update(a.id for a in backend.accounts)
    return accounts


def _principal_exists(account_id: str):
    """A check of ``AWS`` principals against the local AWS, for a policy put in ``account_id``.

    S3 answers MalformedPolicy "Invalid principal in policy" for a principal it cannot resolve
    (an account that does not exist, a role or user that does not exist).
    """
    accounts = _known_accounts(account_id)

    def exists(principal: str) -> bool:
        if re.fullmatch(r"\d{12}", principal):  # an account id: its root
            return principal in accounts
        match = _PRINCIPAL_ARN.match(principal)
        if not match or match.group(3) not in accounts:
            return False
        partition, service, account, resource = match.groups()
        if resource == "root" and service == "iam":
            return True
        from moto.iam.models import iam_backends

        if account not in iam_backends or partition not in iam_backends[account]:
            return False
        iam = iam_backends[account][partition]
        kind, _, rest = resource.partition("/")
        if service == "sts":  # arn:aws:sts::<account>:assumed-role/<role>/<session>, federated-user/<name>
            if kind == "federated-user":
                return bool(rest)
            return kind == "assumed-role" and any(r.name == rest.split("/")[0] for r in iam.roles.values())
        if kind == "role":
            return any(r.arn == principal for r in iam.roles.values())
        if kind == "user":
            return any(u.arn == principal for u in iam.users.values())
        # IAM User Guide, "AWS JSON policy elements: Principal": "You cannot identify a user group
        # as a principal in a policy"; other IAM resource types: stricter: undocumented.
        return False

    return exists


def bucket_policy_problem(bucket: str, document: Any, account_id: str) -> str | None:
    """What S3 refuses in ``document`` (parsed JSON) as the policy of ``bucket``; None when it accepts it."""
    exists = _principal_exists(account_id) if OPTIONS["check_principals"] else None
    problem = policy_problem(document, resource_policy=True, principal_exists=exists)
    if problem is None and _invalid_resources(bucket, document):
        problem = "Policy has invalid resource"
    if problem is None and len(json.dumps(document, separators=(",", ":"))) > _MAX_BYTES:
        problem = _TOO_LARGE
    return problem


def put_bucket_policy(self, bucket_name: str, policy: bytes) -> None:
    """PutBucketPolicy: NoSuchBucket first, then MalformedPolicy for what S3 refuses (as above)."""
    self.get_bucket(bucket_name)  # NoSuchBucket
    text = policy.decode() if isinstance(policy, bytes) else str(policy)
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise S3ClientError("MalformedPolicy", _NOT_JSON)
    if problem := bucket_policy_problem(bucket_name, document, self.account_id):
        raise S3ClientError("MalformedPolicy", problem)
    _original_put_bucket_policy(self, bucket_name, policy)


def apply_policy(logical_id: str, properties: dict, account_id: str, region_name: str) -> str:
    """Validate the resource's properties and put the policy on its bucket; the bucket name."""
    check_required(region_name, _TYPE, logical_id, properties)
    bucket = properties["Bucket"]
    backend = _backend(account_id, region_name)
    # PutBucketPolicy: NoSuchBucket (404) "The specified bucket does not exist" comes first.
    if bucket not in backend.buckets:
        resource_failed(logical_id, "S3", "The specified bucket does not exist", 404, "NotFound")
    document = _document(logical_id, properties["PolicyDocument"])
    if problem := bucket_policy_problem(bucket, document, account_id):
        resource_failed(logical_id, "S3", problem)
    _original_put_bucket_policy(backend, bucket, json.dumps(document).encode())
    return bucket


def _remove_policy(bucket: str, account_id: str, region_name: str) -> None:
    backend = _backend(account_id, region_name)
    if bucket in backend.buckets:  # the stack may have deleted the bucket first
        backend.delete_bucket_policy(bucket)


class BucketPolicyResource(CloudFormationModel):
    """AWS::S3::BucketPolicy: the policy of a bucket of the local S3."""

    def __init__(self, bucket: str, account_id: str, region_name: str):
        self.bucket, self.account_id, self.region_name = bucket, account_id, region_name

    @staticmethod
    def cloudformation_type() -> str:
        return _TYPE

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False  # the schema declares no attribute

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicyResource:
        properties = cloudformation_json.get("Properties") or {}
        bucket = apply_policy(kwargs.get("LogicalId", resource_name), properties, account_id, region_name)
        return cls(bucket, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> BucketPolicyResource:
        logical_id = getattr(original_resource, "logical_resource_id", new_resource_name)
        bucket = apply_policy(logical_id, cloudformation_json.get("Properties") or {}, account_id, region_name)
        if bucket != original_resource.bucket:  # Bucket is create-only: the old policy goes
            _remove_policy(original_resource.bucket, account_id, region_name)
        original_resource.bucket = bucket
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[misc]
        _remove_policy(resource_name, account_id, region_name)  # the physical id is the bucket name

    def delete(self, account_id: str, region_name: str) -> None:
        _remove_policy(self.bucket, account_id, region_name)


def configure(values: dict) -> dict:
    """Set OPTIONS from a control request (check_principals=true|false); return them."""
    if "check_principals" in values:
        OPTIONS["check_principals"] = str(values["check_principals"]).lower() in ("1", "true", "yes")
    return dict(OPTIONS)


def apply() -> None:
    """Check PutBucketPolicy, and make CloudFormation create bucket policies through
    :class:`BucketPolicyResource` (idempotent)."""
    from moto.cloudformation import parsing

    from localaws.patches import CONTROLS

    CONTROLS["s3_bucket_policies"] = configure

    S3Backend.put_bucket_policy = put_bucket_policy
    # moto caches its CloudFormation type maps; make them see the class above.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
