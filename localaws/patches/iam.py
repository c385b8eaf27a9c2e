"""IAM: permissions boundaries and managed policies must exist, and CloudFormation roles carry theirs.

moto 5.2.5 is lenient where AWS is not, in ways that hide a missing deployment step:

- ``CreateRole`` and ``PutRolePermissionsBoundary`` accept, as ``PermissionsBoundary``, the
  ARN of a policy that does not exist (moto checks its form only); so does
  ``AWS::IAM::Role``. AWS refuses it: the IAM API reference lists, for
  PutRolePermissionsBoundary and CreateUser, ``NoSuchEntity`` (404), "The request was
  rejected because it referenced a resource entity that does not exist. The error message
  describes the resource." CreateRole's reference lists no NoSuchEntity, yet a role cannot
  be bounded by nothing ("You can use an AWS managed policy or a customer managed policy to
  set the boundary"): refusing is the stricter reading, with the same code. The message,
  "Scope ARN: <arn> does not exist or is not attachable.", is the one IAM users report for a
  missing boundary; it could not be checked against a published source here.
- ``CreateUser`` ignores ``PermissionsBoundary`` altogether; here a boundary that does not
  exist is refused as above (one that exists is still not stored on the user: more lenient
  than AWS, which the product does not rely on: it creates no users).
- ``AWS::IAM::Role`` does not attach its ``ManagedPolicyArns`` (a role deployed from a
  template carried none of the managed policies the template gives it), does not update
  them, its inline ``Policies``, its boundary or its trust policy on stack update, and
  stores ``MaxSessionDuration`` from the wrong property on update. Here the role attaches
  them on create, and an update changes the role to what the template now says. A
  ``ManagedPolicyArns`` entry that does not exist fails the resource with AttachRolePolicy's
  error (API reference: NoSuchEntity; moto's and IAM's message "Policy <arn> does not exist
  or is not attachable."), before the role is created or changed.
- ``AttachRolePolicy`` (and so ``ManagedPolicyArns``) accepts any number of policies. IAM's
  quotas: "Managed policies attached to an IAM role: 10" by default (up to 20 on request);
  here the default, with IAM's LimitExceeded "Cannot exceed quota for PoliciesPerRole: 10".

- ``DeletePolicy`` deletes a policy still attached to roles, groups or users. AWS: "Before you
  can delete a managed policy, you must first detach the policy from all users, groups, and
  roles that it is attached to" (DeletePolicy, API reference); here IAM's DeleteConflict (409)
  "Cannot delete a policy attached to entities.", also while a role uses it as its permissions
  boundary (undocumented: the stricter choice).
- ``AWS::IAM::ManagedPolicy`` is never updated nor deleted by moto's CloudFormation: a changed
  document (an updated boundary) stayed the old one, a deleted stack left its policies behind,
  and a stack whose policy names a role in ``Roles`` could not be deleted (DeleteRole's
  DeleteConflict). Here an update makes the document a new default version (the oldest
  non-default one deleted at IAM's five) and attaches and detaches ``Roles``, ``Groups`` and
  ``Users`` as the template says; a delete detaches the policy from the entities its template
  named and deletes it (failing, as DeletePolicy does, if anything else still holds it).

AWS managed policies (``arn:<partition>:iam::aws:policy/...``) exist in every account; moto
loads them only when configured to. One named in a boundary or an attachment is looked up
in moto's copy of AWS's list and made known to the account's IAM on first use; a name not
in that list is refused like a missing customer policy.

A resource failure surfaces as the CreateStack/UpdateStack ValidationError carrying
CloudFormation's status reason (``cloudformation_placeholders.resource_failed``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.exceptions import DeleteConflictException, LimitExceededException, NotFoundException
from moto.iam.models import AWSManagedPolicy, IAMBackend, ManagedPolicy, Role, iam_backends
from moto.iam.responses import IamResponse
from moto.utilities.utils import get_partition

from localaws.patches.cloudformation_placeholders import resource_failed

# IAM quotas (IAM User Guide, "IAM and AWS STS quotas"): "Managed policies attached to an IAM
# role: 10" (default; an increase to 20 may be requested).
ROLE_POLICY_QUOTA = 10
_AWS_MANAGED = re.compile(r"^arn:[^:]+:iam::aws:policy(/(?:[^/]+/)*)([^/]+)$")

_original_create_role = IAMBackend.create_role
_original_put_boundary = IAMBackend.put_role_permissions_boundary
_original_attach_role_policy = IAMBackend.attach_role_policy
_original_create_user_response = IamResponse.create_user
_original_delete_policy = IAMBackend.delete_policy
_original_policy_create = ManagedPolicy.create_from_cloudformation_json.__func__
_original_role_create = Role.create_from_cloudformation_json.__func__
_original_role_update = Role.update_from_cloudformation_json.__func__
_original_role_delete = Role.delete_from_cloudformation_json.__func__


@cache
def _aws_managed_data() -> dict:
    return json.loads(aws_managed_policies_data)


def policy_exists(backend: IAMBackend, arn: str) -> bool:
    """Whether managed policy ``arn`` exists for ``backend``'s account (AWS managed ones made known on first use)."""
    if arn in backend.managed_policies:
        return True
    match = _AWS_MANAGED.match(arn)
    data = _aws_managed_data().get(match.group(2)) if match else None
    if data is None or data.get("Path", "/") != match.group(1):
        return False
    policy = AWSManagedPolicy.from_data(match.group(2), backend.account_id, backend.region_name, data)
    if policy.arn != arn:  # another partition's spelling
        return False
    backend.managed_policies[arn] = policy
    return True


def boundary_missing(arn: str) -> str:
    return f"Scope ARN: {arn} does not exist or is not attachable."


def policy_missing(arn: str) -> str:
    return f"Policy {arn} does not exist or is not attachable."


def _check_boundary(backend: IAMBackend, arn: str | None) -> None:
    # Only a well-formed ARN: moto's own check answers a malformed one (InvalidParameterValue).
    if arn and backend.policy_arn_regex.match(arn) and not policy_exists(backend, arn):
        raise NotFoundException(boundary_missing(arn))


def create_role(self: IAMBackend, role_name, assume_role_policy_document, path, permissions_boundary, *args, **kw):
    _check_boundary(self, permissions_boundary)
    return _original_create_role(self, role_name, assume_role_policy_document, path, permissions_boundary, *args, **kw)


def put_role_permissions_boundary(self: IAMBackend, role_name: str, permissions_boundary: str) -> None:
    self.get_role(role_name)  # NoSuchEntity for the role first
    _check_boundary(self, permissions_boundary)
    _original_put_boundary(self, role_name, permissions_boundary)


def attach_role_policy(self: IAMBackend, policy_arn: str, role_name: str) -> None:
    role = self.get_role(role_name)
    if not policy_exists(self, policy_arn):
        raise NotFoundException(policy_missing(policy_arn))
    if policy_arn not in role.managed_policies and len(role.managed_policies) >= ROLE_POLICY_QUOTA:
        raise LimitExceededException(f"Cannot exceed quota for PoliciesPerRole: {ROLE_POLICY_QUOTA}")
    _original_attach_role_policy(self, policy_arn, role_name)


def create_user_response(self: IamResponse):
    _check_boundary(self.backend, self._get_param("PermissionsBoundary"))
    return _original_create_user_response(self)


# --- AWS::IAM::Role -------------------------------------------------------------------


def _backend(account_id: str, region_name: str) -> IAMBackend:
    return iam_backends[account_id][get_partition(region_name)]


def _managed_arns(properties: dict) -> list[str]:
    return [arn for arn in properties.get("ManagedPolicyArns") or [] if arn]


def _check_role_properties(logical_id: str, properties: dict, backend: IAMBackend, current: int = 0) -> None:
    """Fail the resource, before anything changes, on a boundary or managed policy that does not exist."""
    boundary = properties.get("PermissionsBoundary")
    if boundary and not policy_exists(backend, boundary):
        resource_failed(logical_id, "Iam", boundary_missing(boundary), 404, "NotFound")
    arns = _managed_arns(properties)
    for arn in arns:
        if not policy_exists(backend, arn):
            resource_failed(logical_id, "Iam", policy_missing(arn), 404, "NotFound")
    if len(set(arns)) > ROLE_POLICY_QUOTA:
        resource_failed(
            logical_id,
            "Iam",
            f"Cannot exceed quota for PoliciesPerRole: {ROLE_POLICY_QUOTA}",
            409,
            "ServiceLimitExceeded",
        )


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def role_create(cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs):
    properties = cloudformation_json.get("Properties") or {}
    backend = _backend(account_id, region_name)
    _check_role_properties(kwargs.get("LogicalId", resource_name), properties, backend)
    role = _original_role_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    for arn in _managed_arns(properties):
        backend.attach_role_policy(arn, role.name)
    return role


def role_update(
    cls, original_resource: Role, new_resource_name: str, cloudformation_json: dict, account_id, region_name
):
    """The role becomes what the template says: description, session length, trust, inline and
    managed policies, boundary. A new RoleName (create-only: AWS replaces the role) is left to moto."""
    properties = cloudformation_json.get("Properties") or {}
    backend = _backend(account_id, region_name)
    role = original_resource
    if properties.get("RoleName", role.name) != role.name:
        return _original_role_update(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        )
    logical_id = getattr(role, "logical_resource_id", new_resource_name)
    _check_role_properties(logical_id, properties, backend)
    role.description = properties.get("Description", "")
    role.max_session_duration = properties.get("MaxSessionDuration", 3600)
    role.assume_role_policy_document = _document(properties["AssumeRolePolicyDocument"])
    wanted = {p["PolicyName"]: _document(p["PolicyDocument"]) for p in properties.get("Policies") or []}
    for name in set(role.policies) - set(wanted):
        role.delete_policy(name)
    for name, document in wanted.items():
        role.put_policy(name, document)
    attached = set(getattr(role, "template_managed_policy_arns", []))
    new = _managed_arns(properties)
    for arn in attached - set(new):
        if arn in role.managed_policies:
            backend.detach_role_policy(arn, role.name)
    for arn in new:
        if arn not in role.managed_policies:
            backend.attach_role_policy(arn, role.name)
    role.template_managed_policy_arns = new
    boundary = properties.get("PermissionsBoundary")
    if boundary:
        backend.put_role_permissions_boundary(role.name, boundary)
    else:
        backend.delete_role_permissions_boundary(role.name)
    return role


def role_delete(cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str) -> None:
    """Detach the managed policies the role's template attached, as CloudFormation does, then delete it."""
    backend = _backend(account_id, region_name)
    for role in backend.get_roles():
        if role.name == resource_name:
            for arn in getattr(role, "template_managed_policy_arns", []):
                if arn in role.managed_policies:
                    backend.detach_role_policy(arn, role.name)
    _original_role_delete(cls, resource_name, cloudformation_json, account_id, region_name)


def _remember_template_arns(create):
    def wrapped(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        role.template_managed_policy_arns = _managed_arns(cloudformation_json.get("Properties") or {})
        return role

    return wrapped


def delete_policy(self: IAMBackend, policy_arn: str) -> None:
    policy = self.get_policy(policy_arn)
    if policy.attachment_count > 0:
        raise DeleteConflictException("Cannot delete a policy attached to entities.")
    # A policy set as a role's permissions boundary (GetPolicy's PermissionsBoundaryUsageCount)
    # is in use too; DeletePolicy's reference names only attachments, so refusing this as well
    # is the stricter reading of "you must first detach the policy from all users, groups, and
    # roles" (a role first drops the boundary: DeleteRolePermissionsBoundary). Deleting it would
    # otherwise leave those roles without their ceiling.
    if any(role.permissions_boundary_arn == policy_arn for role in self.roles.values()):
        raise DeleteConflictException("Cannot delete a policy attached to entities.")
    _original_delete_policy(self, policy_arn)


# --- AWS::IAM::ManagedPolicy ------------------------------------------------------------

_ENTITIES = (  # (property, backend attach, backend detach, keyword of the entity's name)
    ("Roles", "attach_role_policy", "detach_role_policy", "role_name"),
    ("Groups", "attach_group_policy", "detach_group_policy", "group_name"),
    ("Users", "attach_user_policy", "detach_user_policy", "user_name"),
)
_POLICY_VERSION_QUOTA = 5  # "A managed policy can have up to 5 versions"


def _entities(properties: dict) -> dict[str, list[str]]:
    return {kind: [name for name in properties.get(kind) or [] if name] for kind, *_ in _ENTITIES}


def policy_create(cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str, **kwargs):
    policy = _original_policy_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    policy.template_entities = _entities(cloudformation_json.get("Properties") or {})
    return policy


def policy_update(cls, original_resource, new_resource_name: str, cloudformation_json: dict, account_id, region_name):
    """A new default version for a changed document; attachments as the template now says."""
    properties = cloudformation_json.get("Properties") or {}
    backend = _backend(account_id, region_name)
    policy = original_resource
    name = properties.get("ManagedPolicyName")
    if (name and name != policy.name) or (properties.get("Path") or "/") != policy.path:
        # Create-only properties: AWS replaces the policy (the old one detached and deleted).
        policy_delete(cls, policy.arn, {}, account_id, region_name)
        return policy_create(cls, new_resource_name, cloudformation_json, account_id, region_name)
    document = _document(properties.get("PolicyDocument"))
    current = next(v.document for v in policy.versions if v.version_id == policy.default_version_id)
    if json.loads(document) != json.loads(current):
        if len(policy.versions) >= _POLICY_VERSION_QUOTA:
            oldest = next(v for v in policy.versions if v.version_id != policy.default_version_id)
            backend.delete_policy_version(policy.arn, oldest.version_id)
        backend.create_policy_version(policy.arn, document, set_as_default=True)
    wanted = _entities(properties)
    held = getattr(policy, "template_entities", {})
    for kind, attach, detach, keyword in _ENTITIES:
        for entity in set(held.get(kind, [])) - set(wanted[kind]):
            getattr(backend, detach)(policy_arn=policy.arn, **{keyword: entity})
        for entity in wanted[kind]:
            if entity not in held.get(kind, []):
                getattr(backend, attach)(policy_arn=policy.arn, **{keyword: entity})
    policy.template_entities = wanted
    if "Description" in properties:
        policy.description = properties["Description"]
    return policy


def policy_delete(cls, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str) -> None:
    """Detach the policy from the entities its template named, then delete it (the physical id is its ARN)."""
    backend = _backend(account_id, region_name)
    policy = backend.managed_policies.get(resource_name)
    if policy is None:
        return
    for kind, _attach, detach, keyword in _ENTITIES:
        for entity in getattr(policy, "template_entities", {}).get(kind, []):
            try:
                getattr(backend, detach)(policy_arn=policy.arn, **{keyword: entity})
            except (NotFoundException, KeyError):  # the entity or the attachment is already gone
                pass
    backend.delete_policy(policy.arn)


def apply() -> None:
    """Install the checks and the CloudFormation role and managed policy behaviour (idempotent)."""
    IAMBackend.create_role = create_role
    IAMBackend.put_role_permissions_boundary = put_role_permissions_boundary
    IAMBackend.attach_role_policy = attach_role_policy
    IamResponse.create_user = create_user_response
    Role.create_from_cloudformation_json = classmethod(_remember_template_arns(role_create))
    Role.update_from_cloudformation_json = classmethod(role_update)
    Role.delete_from_cloudformation_json = classmethod(role_delete)
    IAMBackend.delete_policy = delete_policy
    ManagedPolicy.create_from_cloudformation_json = classmethod(policy_create)
    ManagedPolicy.update_from_cloudformation_json = classmethod(policy_update)
    ManagedPolicy.delete_from_cloudformation_json = classmethod(policy_delete)
