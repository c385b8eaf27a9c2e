"""S3: AWS::S3::BucketPolicy applied to the local S3, failing as AWS fails it.

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
  to 20 KB in size."; the error text for that case is ours).

Principals are checked in form only (not that the accounts or roles exist), and the policy
is stored, not enforced (README, local AWS table).
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from localaws.patches._policy_documents import policy_problem, statements, without_no_value
from localaws.patches.cloudformation_placeholders import check_required, resource_failed

_TYPE = "AWS::S3::BucketPolicy"
_MAX_BYTES = 20 * 1024  # "Bucket policies are limited to 20 KB in size."


def _backend(account_id: str, region_name: str):
    return s3_backends[account_id][get_partition(region_name)]


def _document(logical_id: str, value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            resource_failed(logical_id, "S3", "Policies must be valid JSON and the first byte must be '{'")
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


def apply_policy(logical_id: str, properties: dict, account_id: str, region_name: str) -> str:
    """Validate the resource's properties and put the policy on its bucket; the bucket name."""
    check_required(region_name, _TYPE, logical_id, properties)
    bucket = properties["Bucket"]
    backend = _backend(account_id, region_name)
    # PutBucketPolicy: NoSuchBucket (404) "The specified bucket does not exist" comes first.
    if bucket not in backend.buckets:
        resource_failed(logical_id, "S3", "The specified bucket does not exist", 404, "NotFound")
    document = _document(logical_id, properties["PolicyDocument"])
    problem = policy_problem(document, resource_policy=True)
    if problem is None and _invalid_resources(bucket, document):
        problem = "Policy has invalid resource"
    if problem is not None:
        resource_failed(logical_id, "S3", problem)
    text = json.dumps(document)
    if len(json.dumps(document, separators=(",", ":"))) > _MAX_BYTES:
        resource_failed(logical_id, "S3", "Policies cannot exceed 20 KB in size, excluding whitespace")
    backend.put_bucket_policy(bucket, text.encode())
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


def apply() -> None:
    """Make CloudFormation create bucket policies through :class:`BucketPolicyResource` (idempotent)."""
    from moto.cloudformation import parsing

    # moto caches its CloudFormation type maps; make them see the class above.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
