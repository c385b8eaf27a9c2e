"""CloudFormation StackSets: the behaviour the deployer relies on that moto 5.2.5 lacks.

Measured gaps closed here (each shaped after the botocore service model):
- per-instance ``ParameterOverrides`` are stored, merged over the stack set's parameters
  into the instance's stack, and returned by DescribeStackInstance; UpdateStackInstances
  follows the API's override rules (keys left out revert to the stack set's value, a
  call without ParameterOverrides keeps them);
- UpdateStackSet updates the stacks of existing instances (all of them, or the targeted
  ones, the others then OUTDATED as in AWS);
- CreateStackInstances expands OUs recursively, honours AccountFilterType and never
  targets the management account for SERVICE_MANAGED; DeleteStackInstances honours OU
  DeploymentTargets and RetainStacks;
- a resource error makes a FAILED instance of a FAILED operation (per FailureTolerance)
  instead of an error of the call; ListStackSetOperationResults reports each instance;
- ManagedExecution, AutoDeployment and Capabilities are kept; DescribeStackSet returns
  OrganizationalUnitIds and Regions; instances carry OrganizationalUnitId, LastOperationId;
- OperationId is a client token: a retried request with the same id does nothing twice;
- ListStackInstances pages at most 100 (as AWS does) and honours Filters and
  StackInstanceAccount/StackInstanceRegion;
- DetectStackSetDrift (instances IN_SYNC, the operation SUCCEEDED),
  Activate/Deactivate/DescribeOrganizationsAccess (backed by the Organization's trusted
  access) and ListStackSetAutoDeploymentTargets answer instead of HTTP 500;
- SERVICE_MANAGED CreateStackInstances requires trusted access, as in AWS;
- AutoDeployment: an account created in or moved into a target OU gets the stack set's
  instances, one moved out loses them (stacks kept per RetainStacksOnAccountRemoval);
- opt-in (``configure``): operations stay RUNNING for a number of polls, and a second
  operation on the stack set meanwhile fails with OperationInProgressException unless
  ManagedExecution is active (then it is QUEUED and starts when the one before it ends);
  ListStackSetOperations omits a new operation for ``list_lag`` reads (eventual consistency);
  drift detection fails for the accounts in ``drift_fail_accounts``; the next ``stale_requests``
  operation requests meet someone else's operation and get StaleRequestException.

Refused or failed as AWS refuses or fails them (issue 15; each rule names its source below):
override keys the stack set has no parameter for, RetainStacksOnAccountRemoval without
auto-deployment, OUs and accounts without AccountFilterType on create (UNION otherwise),
CallAs=DELEGATED_ADMIN from an account that is not a registered delegated administrator,
IAM resources without the capability (the instance fails), AutoDeployment.DependsOn entries that
are not existing service-managed StackSet ARNs of this account and Region (or repeat, cycle, or
exceed the limits), DeleteStackSet of a stack set another one depends on, a retried OperationId
after a later operation (StaleRequestException). Drift detection compares the instances' SSM
parameters with their stack's values (DRIFTED / MODIFIED / DELETED; a stack deleted in its
account: all its resources DELETED, the instance still CURRENT).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import yaml
from moto.cloudformation import models, responses
from moto.cloudformation.exceptions import CloudFormationError, StackInstanceNotFound, ValidationError
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.moto_api._internal import mock_random
from moto.organizations.models import organizations_backends
from moto.utilities.utils import get_partition

from localaws.patches._controls import set_counts
from localaws.patches.organizations import accounts_under

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"
MAX_PAGE = 100  # ListStackInstances / ListStackSetOperationResults: AWS's largest page


class OperationIdAlreadyExists(CloudFormationError):
    code = "OperationIdAlreadyExistsException"

    def __init__(self, operation_id: str):
        super().__init__(f"The operation ID {operation_id} already exists for a different request.")


class StaleRequest(CloudFormationError):
    code = "StaleRequestException"

    def __init__(self, name: str, operation_id: str):
        # botocore, StaleRequestException: "Another operation has been performed on this StackSet
        # since the specified operation was performed." (the text after the colon is ours)
        super().__init__(
            "Another operation has been performed on this StackSet since the specified operation was performed: "
            f"{name}, {operation_id}"
        )


# The calls whose botocore model lists StaleRequestException (ImportStacksToStackSet aside: not emulated).
_STALE_HANDLERS = frozenset(
    {"create_stack_instances", "update_stack_instances", "delete_stack_instances", "update_stack_set"}
)


class OperationInProgress(CloudFormationError):
    code = "OperationInProgressException"

    def __init__(self, name: str):
        super().__init__(f"Another Operation on StackSet {name} is in progress")


# Opt-in, through POST /_local/control/stacksets?operation_polls=N: every new operation stays
# RUNNING for N DescribeStackSetOperation calls, so callers' polling and serialisation can
# be rehearsed. Default 0: operations end at once, as moto's do.
# ``list_lag=N``: ListStackSetOperations leaves a new operation out of its next N answers
# (API reference, ListStackSetOperations: "This API provides eventually consistent reads
# meaning it may take some time but will eventually return the most up-to-date data.");
# DescribeStackSetOperation is never lagged ("This API provides strongly consistent reads").
# ``drift_fail_accounts=A,B``: drift detection fails on those accounts' instances (``none``: no account).
# ``stale_requests=N``: the next N requests of the calls that model StaleRequestException find that
# someone else ran an operation on the stack set just before them (one is recorded, changing no
# instance) and are refused with StaleRequestException, changing nothing else; a caller must read
# the stack set again and re-plan. Without it the exception comes only from its natural cause
# (a retried OperationId after a later operation, see ``_known_request``).
SETTINGS: dict[str, Any] = {"operation_polls": 0, "list_lag": 0, "drift_fail_accounts": "", "stale_requests": 0}


def configure(values: dict[str, str]) -> dict:
    """Control endpoint of this patch: ``operation_polls``, ``list_lag``, ``stale_requests`` (counts >= 0) and
    ``drift_fail_accounts`` (comma-separated ids); answer the settings."""
    set_counts(values, ("operation_polls", "list_lag", "stale_requests"), SETTINGS)
    if "drift_fail_accounts" in values:
        # "none" clears the list (the control endpoint drops empty query values).
        accounts = [a for a in values["drift_fail_accounts"].split(",") if a and a != "none"]
        if any(not (a.isdigit() and len(a) == 12) for a in accounts):
            raise ValueError("drift_fail_accounts takes 12-digit account ids, comma-separated")
        SETTINGS["drift_fail_accounts"] = ",".join(accounts)
    return dict(SETTINGS)


class StackSetValidation(ValidationError):
    """CreateStackSet/UpdateStackSet and the instance calls model few errors: AWS answers
    everything else as ValidationError (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


def _check_auto_deployment(
    params: dict, permission_model: str | None, backend=None, own_arn: str | None = None
) -> None:
    auto = params.get("AutoDeployment")
    if auto is None:
        return
    # API reference, AutoDeployment.RetainStacksOnAccountRemoval: "Specify only if Enabled is set
    # to True." The Terraform provider was refused for sending it with Enabled false
    # (hashicorp/terraform-provider-aws#19015); the message is ours (AWS's text is not public).
    if "RetainStacksOnAccountRemoval" in auto and str(auto.get("Enabled")).lower() != "true":
        raise StackSetValidation("RetainStacksOnAccountRemoval can only be specified when AutoDeployment is enabled")
    # CreateStackSet.AutoDeployment: "(Not used with self-managed permissions.)"; stricter: refused.
    if permission_model == "SELF_MANAGED":
        raise StackSetValidation("AutoDeployment is not supported for SELF_MANAGED stack sets")
    depends_on = list(auto.get("DependsOn") or [])
    # AWS DevOps blog on StackSet dependencies: "Define up to 10 dependencies per StackSet".
    if len(depends_on) > 10:
        raise StackSetValidation("AutoDeployment.DependsOn takes at most 10 stack sets")
    if depends_on and backend is not None:
        _check_depends_on(backend, depends_on, own_arn)


_STACK_SET_ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):cloudformation:([a-z0-9-]+):(\d{12}):stackset/([A-Za-z][A-Za-z0-9-]{0,127}):[0-9a-f-]+$"
)
MAX_DEPENDENCIES_PER_ACCOUNT = 100


def _check_depends_on(backend, depends_on: list[str], own_arn: str | None) -> None:
    """AutoDeployment.DependsOn: "A list of StackSet ARNs that this StackSet depends on for
    auto-deployment operations" (API reference). Each entry must therefore be the ARN of a
    StackSet: an existing one of this administrator account and Region (a stack set is regional
    and DescribeStackSet resolves only those of the caller), service-managed (auto-deployment
    exists only there), named once, never the stack set itself, and the dependencies must not
    form a cycle ("operations will be sequenced to ensure all dependencies complete successfully
    before this StackSet's operation begins" cannot hold around a cycle). AWS documents neither
    these refusals nor their messages: stricter here, and ours. The AWS DevOps blog announcing
    the feature: "Define up to 10 dependencies per StackSet, with up to 100 dependencies per
    account" (the per-StackSet limit is checked above)."""
    live = {s.arn: s for s in backend.stacksets.values() if s.status != "DELETED"}
    if len(set(depends_on)) != len(depends_on):
        raise StackSetValidation("AutoDeployment.DependsOn names a StackSet more than once")
    for arn in depends_on:
        match = _STACK_SET_ARN.match(arn or "")
        if not match:
            raise StackSetValidation(f"AutoDeployment.DependsOn: '{arn}' is not a StackSet ARN")
        if match.group(2) != backend.region_name or match.group(3) != backend.account_id:
            raise StackSetValidation(
                f"AutoDeployment.DependsOn: '{arn}' is not a StackSet of this account and Region "
                f"({backend.account_id}, {backend.region_name})"
            )
        if arn == own_arn:
            raise StackSetValidation("AutoDeployment.DependsOn: a StackSet cannot depend on itself")
        if arn not in live:
            raise StackSetValidation(f"AutoDeployment.DependsOn: StackSet {arn} does not exist")
        if (live[arn].permission_model or "SELF_MANAGED") != "SERVICE_MANAGED":
            raise StackSetValidation(
                f"AutoDeployment.DependsOn: StackSet {live[arn].name} is not SERVICE_MANAGED (only service-managed "
                "StackSets auto-deploy)"
            )
    if own_arn is not None:  # a new stack set has no dependents yet: no cycle can pass through it
        edges = {
            arn: list((getattr(s, "auto_deployment", None) or {}).get("DependsOn") or []) for arn, s in live.items()
        }
        edges[own_arn] = list(depends_on)
        seen: set[str] = set()
        stack = list(depends_on)
        while stack:
            arn = stack.pop()
            if arn == own_arn:
                raise StackSetValidation("AutoDeployment.DependsOn: the dependencies would form a cycle")
            if arn not in seen:
                seen.add(arn)
                stack.extend(edges.get(arn, ()))
    others = sum(
        len((getattr(s, "auto_deployment", None) or {}).get("DependsOn") or [])
        for arn, s in live.items()
        if arn != own_arn
    )
    if others + len(depends_on) > MAX_DEPENDENCIES_PER_ACCOUNT:
        raise StackSetValidation(
            f"AutoDeployment.DependsOn: at most {MAX_DEPENDENCIES_PER_ACCOUNT} dependencies per account"
        )


def _check_overrides(stack_set, params: dict) -> None:
    """API reference, UpdateStackInstances.ParameterOverrides: "You can only override the parameter
    values that are specified in the StackSet." (cdklabs/cdk-stacksets#115: stack-set-level
    Parameters had to be added). The message is ours: AWS's exact text is undocumented."""
    known = set(stack_set.parameters or {})
    unknown = sorted(
        item["ParameterKey"] for item in params.get("ParameterOverrides") or [] if item["ParameterKey"] not in known
    )
    if unknown:
        raise StackSetValidation(
            f"Parameters: [{', '.join(unknown)}] are not specified in the StackSet {stack_set.name}; "
            "only parameter values specified in the StackSet can be overridden"
        )


_IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


def _template_dict(template: str) -> dict:
    try:
        return json.loads(template)
    except ValueError:
        pass
    from moto.cloudformation.utils import yaml_tag_constructor

    yaml.add_multi_constructor("", yaml_tag_constructor)
    try:
        body = yaml.load(template, Loader=yaml.Loader)
    except yaml.YAMLError:
        return {}
    return body if isinstance(body, dict) else {}


def _required_capability(template: str) -> str | None:
    """CAPABILITY_NAMED_IAM / CAPABILITY_IAM the template needs (None: neither)."""
    needed = None
    for resource in (_template_dict(template).get("Resources") or {}).values():
        resource = resource if isinstance(resource, dict) else {}
        rtype = str(resource.get("Type", ""))
        if _IAM_NAME_PROPERTIES.get(rtype, "-") in (resource.get("Properties") or {}):
            return "CAPABILITY_NAMED_IAM"
        if rtype.startswith("AWS::IAM::"):
            needed = "CAPABILITY_IAM"
    return needed


def _check_capabilities(stack_set) -> None:
    """Instances of a stack set lacking a capability fail (rain#455: CreateStackSet succeeds,
    the instances' operation fails with "Requires capabilities : [CAPABILITY_NAMED_IAM]").
    CreateStackSet.Capabilities: "If you have IAM resources with custom names, you must specify
    CAPABILITY_NAMED_IAM." CAPABILITY_NAMED_IAM also covers unnamed IAM resources."""
    needed = _required_capability(stack_set.template or "")
    given = set(getattr(stack_set, "capabilities", None) or [])
    if needed and needed not in given and "CAPABILITY_NAMED_IAM" not in given:
        raise InsufficientCapabilities(needed)


class InsufficientCapabilities(CloudFormationError):
    code = "InsufficientCapabilitiesException"

    def __init__(self, capability: str):
        super().__init__(f"Requires capabilities : [{capability}]")


class OrganizationsAccessRequired(ValidationError):
    def __init__(self) -> None:
        super().__init__(message="You must enable organizations access to operate a service managed stack set")


# ---------------------------------------------------------------- model state


def _stack_set_defaults(stack_set) -> None:
    stack_set.__dict__.setdefault("_managed_execution", {"Active": False})
    stack_set.__dict__.setdefault("auto_deployment", None)
    stack_set.__dict__.setdefault("capabilities", [])
    stack_set.__dict__.setdefault("target_ous", [])
    stack_set.__dict__.setdefault("stack_set_drift_detection_details", {"DriftStatus": "NOT_CHECKED"})
    stack_set.__dict__.setdefault("requests", {})  # OperationId -> request fingerprint


def _instance_defaults(instance) -> None:
    instance.__dict__.setdefault("overrides", [])
    instance.__dict__.setdefault("status", "CURRENT")
    instance.__dict__.setdefault("detailed_status", "SUCCEEDED")
    instance.__dict__.setdefault("status_reason", None)
    instance.__dict__.setdefault("organizational_unit_id", None)
    instance.__dict__.setdefault("drift_status", "NOT_CHECKED")
    instance.__dict__.setdefault("last_drift_check_timestamp", None)
    instance.__dict__.setdefault("last_operation_id", None)


def _instance_to_dict(self) -> dict[str, Any]:
    _instance_defaults(self)
    stack_id = self.stack.stack_id if getattr(self, "stack", None) is not None else None
    result = {
        "StackId": stack_id,
        "StackSetId": self.stackset_id,
        "Region": self.region_name,
        "Account": self.account_id,
        "Status": self.status,
        "StatusReason": self.status_reason,
        "ParameterOverrides": list(self.overrides),
        "StackInstanceStatus": {"DetailedStatus": self.detailed_status},
        "OrganizationalUnitId": self.organizational_unit_id,
        "DriftStatus": self.drift_status,
        "LastDriftCheckTimestamp": self.last_drift_check_timestamp,
        "LastOperationId": self.last_operation_id,
    }
    return {key: value for key, value in result.items() if value is not None}


def _org_backend(stack_set):
    return organizations_backends[stack_set.instances.account_id][stack_set.instances.partition]


def _organizations_access(account_id: str, region: str) -> bool:
    backend = organizations_backends[account_id][get_partition(region)]
    return backend.org is not None and any(item["ServicePrincipal"] == STACKSETS_PRINCIPAL for item in backend.services)


def _effective_parameters(stack_set, overrides: list[dict[str, Any]]) -> dict[str, str]:
    parameters = dict(stack_set.parameters or {})
    parameters.update({item["ParameterKey"]: item["ParameterValue"] for item in overrides if "ParameterValue" in item})
    return parameters


# ---------------------------------------------------------------- targets


def _resolve_targets(stack_set, accounts: list[str], targets: dict | None, action: str) -> list[tuple[str, str | None]]:
    """(account, targeted OU) pairs of a request, per the API's DeploymentTargets rules."""
    targets = targets or {}
    listed = list(dict.fromkeys(list(accounts or []) + list(targets.get("Accounts") or [])))
    ou_ids = list(targets.get("OrganizationalUnitIds") or [])
    if stack_set.permission_model != "SERVICE_MANAGED":
        if ou_ids:
            raise ValidationError(
                message="StackSets with SELF_MANAGED permission model can only have accounts as target"
            )
        return [(account, None) for account in listed]
    if accounts:
        raise ValidationError(
            message="StackSets with SERVICE_MANAGED permission model can only have OrganizationalUnit as target"
        )
    if not ou_ids:
        raise ValidationError(message="OrganizationalUnitIds are required")
    # API reference, DeploymentTargets: "When performing create operations, if you specify both
    # OrganizationalUnitIds and Accounts, you must also specify the AccountFilterType property."
    # and UNION "is the default value if AccountFilterType is not provided." (message as reported
    # in aws-cloudformation-resource-providers-cloudformation#100).
    if not targets.get("AccountFilterType") and targets.get("Accounts") and action == "CREATE":
        raise ValidationError(
            message="AccountFilterType should be specified when both OrganizationalUnitIds and Accounts are provided"
        )
    filter_type = targets.get("AccountFilterType") or ("UNION" if targets.get("Accounts") else "NONE")
    if filter_type == "UNION" and action == "CREATE":
        raise ValidationError(message="AccountFilterType UNION is not supported for CreateStackInstances")
    org = _org_backend(stack_set)
    management = org.org.master_account_id if org.org else None
    pairs: dict[str, str | None] = {}
    for ou_id in ou_ids:
        for account in accounts_under(org, ou_id):
            if filter_type == "INTERSECTION" and account not in listed:
                continue
            if filter_type == "DIFFERENCE" and account in listed:
                continue
            pairs.setdefault(account, ou_id)
    if filter_type == "UNION":
        for account in listed:
            pairs.setdefault(account, None)
    return [(account, ou) for account, ou in pairs.items() if account != management]


# ---------------------------------------------------------------- operations


def _tolerance(preferences: dict | None, total: int) -> int:
    preferences = preferences or {}
    if "FailureToleranceCount" in preferences:
        return int(preferences["FailureToleranceCount"])
    if "FailureTolerancePercentage" in preferences:
        return int(total * int(preferences["FailureTolerancePercentage"]) // 100)
    return 0


def _known_request(stack_set, operation_id: str | None, fingerprint: str) -> bool:
    """True when ``operation_id`` already ran this very request (a retry: do nothing)."""
    _stack_set_defaults(stack_set)
    if not operation_id or operation_id not in stack_set.requests:
        return False
    if stack_set.requests[operation_id] != fingerprint:
        raise OperationIdAlreadyExists(operation_id)
    # botocore, StaleRequestException: "Another operation has been performed on this StackSet since
    # the specified operation was performed." A retry is idempotent only while its operation is the
    # stack set's latest; after any later one it is stale (stricter where AWS says no more).
    ids = [operation["OperationId"] for operation in stack_set.operations]
    if operation_id in ids and ids[-1] != operation_id:
        raise StaleRequest(stack_set.name, operation_id)
    return True


def _injected_stale_request(stack_set, params: dict, action: str) -> None:
    """``stale_requests``: someone else's operation lands just before this request, which is refused."""
    if not SETTINGS["stale_requests"]:
        return
    SETTINGS["stale_requests"] -= 1
    _record(stack_set, None, "UPDATE", [], {}, _fingerprint("OUT_OF_BAND", {"n": len(stack_set.operations)}))
    raise StaleRequest(stack_set.name, params.get("OperationId") or "(no OperationId)")


def _record(
    stack_set, operation_id: str | None, action: str, results: list[dict], params: dict, fingerprint: str, **extra
) -> str:
    operation_id = operation_id or str(mock_random.uuid4())
    failed = sum(1 for result in results if result["Status"] == "FAILED")
    status = "FAILED" if failed > _tolerance(params.get("OperationPreferences"), len(results)) else "SUCCEEDED"
    now = utcnow()
    operation = {
        "OperationId": operation_id,
        "Action": action,
        "Status": status,
        "CreationTimestamp": now,
        "EndTimestamp": now,
        "OperationPreferences": params.get("OperationPreferences") or None,
        "RetainStacks": bool(params.get("RetainStacks")) if action == "DELETE" else None,
        "DeploymentTargets": params.get("DeploymentTargets") or None,
        "StatusReason": f"{failed} of {len(results)} stack instances failed" if failed else None,
        "Instances": [{result["Account"]: result["Region"]} for result in results],
        "Results": results,
        # StackSetOperationSummary.StatusDetails (ListStackSetOperations) as in botocore's model:
        # "FailedStackInstancesCount: The number of stack instances for which the StackSet operation failed."
        "StatusDetails": {"FailedStackInstancesCount": failed},
        "ListLag": SETTINGS["list_lag"],
        **extra,
    }
    if SETTINGS["operation_polls"]:
        # ManagedExecution.Active: "If there are already running or queued operations,
        # CloudFormation queues all incoming operations even if they are non-conflicting."
        busy = any(other.get("Status") in ("RUNNING", "QUEUED") for other in stack_set.operations)
        operation.update(
            {
                "FinalStatus": status,
                "Status": "QUEUED" if busy else "RUNNING",
                "EndTimestamp": None,
                "PollsLeft": SETTINGS["operation_polls"],
            }
        )
    stack_set.operations.append(operation)
    stack_set.requests[operation_id] = fingerprint
    return operation_id


def _guard(stack_set) -> None:
    """AWS runs one operation per stack set at a time; ManagedExecution queues the others."""
    if _managed_execution(stack_set).get("Active"):
        return
    if any(operation.get("Status") in ("RUNNING", "QUEUED") for operation in stack_set.operations):
        raise OperationInProgress(stack_set.name)


def _advance(operation: dict, stack_set=None) -> None:
    """One DescribeStackSetOperation poll: a RUNNING operation comes closer to its end; a QUEUED
    one starts once nothing before it runs ("CloudFormation starts queued operations in request
    order", ManagedExecution.Active)."""
    if operation.get("Status") == "QUEUED" and stack_set is not None:
        before = stack_set.operations[: stack_set.operations.index(operation)]
        if not any(other.get("Status") in ("RUNNING", "QUEUED") for other in before):
            operation["Status"] = "RUNNING"
        return
    if operation.get("Status") == "RUNNING":
        operation["PollsLeft"] -= 1
        if operation["PollsLeft"] <= 0:
            operation["Status"], operation["EndTimestamp"] = operation["FinalStatus"], utcnow()
            if stack_set is not None:  # the next queued operation starts
                for other in stack_set.operations:
                    if other.get("Status") == "QUEUED":
                        other["Status"] = "RUNNING"
                        break


def _fingerprint(action: str, params: dict) -> str:
    relevant = {key: value for key, value in params.items() if key not in ("OperationId", "CallAs")}
    return json.dumps([action, relevant], sort_keys=True, default=str)


def _result(instance_or_key, status: str = "SUCCEEDED", reason: str | None = None) -> dict:
    account, region, ou = instance_or_key
    result = {
        "Account": account,
        "Region": region,
        "Status": status,
        "AccountGateResult": {"Status": "SKIPPED", "StatusReason": "No account gate function"},
    }
    if reason:
        result["StatusReason"] = reason
    if ou:
        result["OrganizationalUnitId"] = ou
    return result


def _failed_instance(stack_set, account: str, region: str, reason: str | None):
    """An instance without a stack (yet): OUTDATED and FAILED, as AWS reports one whose stack failed."""
    instance = object.__new__(models.StackInstance)
    instance.account_id, instance.region_name = account, region
    instance.stackset_id, instance.stack_name, instance.name = (
        stack_set.id,
        stack_set.instances.stack_name,
        stack_set.name,
    )
    instance.template, instance.parameters, instance.permission_model = (
        stack_set.template,
        [],
        stack_set.permission_model,
    )
    instance.stack = None
    _instance_defaults(instance)
    instance.status, instance.detailed_status, instance.status_reason = "OUTDATED", "FAILED", reason
    return instance


def _create_stack(stack_set, account: str, region: str, parameters: dict):
    """The instance's stack, created in its account as AWS does: named StackSet-<name>-<uuid>,
    visible there (DescribeStacks), its exports usable by the account's other stacks.

    A stack whose resources fail is rolled back (``cloudformation_rollback.py``) and then
    deleted, and the error re-raised. CreateStack's OnFailure (botocore's model): "Although
    the default setting is ROLLBACK, there is one exception. This exception occurs when a
    StackSet attempts to deploy a stack instance and the stack instance fails to create
    successfully. In this case, the CreateStack call overrides the default setting and sets
    the value of OnFailure to DELETE."
    """
    _check_capabilities(stack_set)
    backend = models.cloudformation_backends[account][region]
    name = f"StackSet-{stack_set.name}-{mock_random.uuid4()}"
    try:
        return backend.create_stack(name=name, template=stack_set.template, parameters=parameters)
    except Exception:
        for stack_id, stack in list(backend.stacks.items()):
            if stack.name == name:
                del backend.stacks[stack_id]
                exported = [key for key, export in backend.exports.items() if export.exporting_stack_id == stack_id]
                for export_name in exported:
                    del backend.exports[export_name]
                stack.status = "DELETE_COMPLETE"
                stack._add_stack_event("DELETE_COMPLETE")
                backend.deleted_stacks[stack_id] = stack
        raise


def _delete_stack(instance) -> None:
    if getattr(instance, "stack", None) is None:
        return
    models.cloudformation_backends[instance.account_id][instance.region_name].delete_stack(instance.stack.stack_id)


def _update_stack(stack_set, instance) -> None:
    parameters = _effective_parameters(stack_set, instance.overrides)
    _check_capabilities(stack_set)
    if instance.stack is None:  # never created: try again, as AWS retries a FAILED instance
        instance.stack = _create_stack(stack_set, instance.account_id, instance.region_name, parameters)
    else:
        instance.stack.update(stack_set.template, parameters=parameters)


def _apply_to_instances(instances, change) -> list[dict]:
    results = []
    for instance in instances:
        _instance_defaults(instance)
        try:
            change(instance)
        except Exception as error:  # any resource error fails the instance, as in AWS
            status = "INOPERABLE" if instance.status == "INOPERABLE" else "OUTDATED"
            instance.status, instance.detailed_status, instance.status_reason = status, "FAILED", _reason(error)
            results.append(
                _result(
                    (instance.account_id, instance.region_name, instance.organizational_unit_id),
                    "FAILED",
                    instance.status_reason,
                )
            )
        else:
            instance.status, instance.detailed_status, instance.status_reason = "CURRENT", "SUCCEEDED", None
            results.append(_result((instance.account_id, instance.region_name, instance.organizational_unit_id)))
    return results


def _reason(error: Exception) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


# ---------------------------------------------------------------- request handlers


def _params(response) -> dict:
    return response._get_params()


def _overrides(raw) -> list[dict]:
    return [
        {key: item[key] for key in ("ParameterKey", "ParameterValue", "UsePreviousValue") if key in item}
        for item in (raw or [])
    ]


def _operation_id(params: dict) -> str:
    """The caller's OperationId (a client token), or a new one."""
    return params.get("OperationId") or str(mock_random.uuid4())


def _operation(action: str) -> Callable[[Callable[..., ActionResult]], Callable[[Any], ActionResult]]:
    """The start every stack set operation shares, around ``handler(self, params, stack_set, fingerprint)``.

    The stack set gets its defaults; a retry of a request already run under its
    OperationId returns that id and does nothing; otherwise the one-operation-at-a-time
    guard applies.
    """

    def wrap(handler: Callable[..., ActionResult]) -> Callable[[Any], ActionResult]:
        @functools.wraps(handler)
        def run(self) -> ActionResult:
            params = _params(self)
            stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
            _stack_set_defaults(stack_set)
            fingerprint = _fingerprint(action, params)
            if _known_request(stack_set, params.get("OperationId"), fingerprint):
                return ActionResult({"OperationId": params["OperationId"]})
            if handler.__name__ in _STALE_HANDLERS:
                _injected_stale_request(stack_set, params, action)
            _guard(stack_set)
            return handler(self, params, stack_set, fingerprint)

        return run

    return wrap


def create_stack_set(self) -> ActionResult:
    params = _params(self)
    _check_auto_deployment(
        params, params.get("PermissionModel") or "SELF_MANAGED", self.cloudformation_backend, own_arn=None
    )
    result = _original["create_stack_set"](self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    _stack_set_defaults(stack_set)
    if params.get("ManagedExecution") is not None:
        stack_set._managed_execution = {"Active": bool(params["ManagedExecution"].get("Active"))}
    if params.get("AutoDeployment") is not None:
        stack_set.auto_deployment = params["AutoDeployment"]
    stack_set.capabilities = list(params.get("Capabilities") or [])
    return result


def _create_instance(
    stack_set, account: str, region: str, ou: str | None, overrides: list[dict], operation_id: str
) -> dict:
    """Create one instance and its stack; a resource error makes a FAILED instance. Returns its result."""
    instance = _failed_instance(stack_set, account, region, None)
    try:
        instance.stack = _create_stack(stack_set, account, region, _effective_parameters(stack_set, overrides))
        instance.status, instance.detailed_status = "CURRENT", "SUCCEEDED"
        result = _result((account, region, ou))
    except Exception as error:  # a resource error fails the instance, not the call
        instance.status_reason = _reason(error)
        result = _result((account, region, ou), "FAILED", instance.status_reason)
    instance.overrides = [item for item in overrides if "ParameterValue" in item]
    instance.organizational_unit_id = ou
    instance.last_operation_id = operation_id
    stack_set.instances.stack_instances.append(instance)
    return result


@_operation("CREATE")
def create_stack_instances(self, params: dict, stack_set, fingerprint: str) -> ActionResult:
    if stack_set.permission_model == "SERVICE_MANAGED" and not _organizations_access(self.current_account, self.region):
        raise OrganizationsAccessRequired()
    _check_overrides(stack_set, params)
    regions = list(params.get("Regions") or [])
    targets = _resolve_targets(stack_set, params.get("Accounts") or [], params.get("DeploymentTargets"), "CREATE")
    overrides = _overrides(params.get("ParameterOverrides"))
    operation_id = _operation_id(params)
    results = []
    for region in regions:
        for account, ou in targets:
            existing = stack_set.instances.get_instance(account, region)
            if existing is not None:  # AWS: creating an existing instance changes nothing
                _instance_defaults(existing)
                results.append(_result((account, region, existing.organizational_unit_id)))
                continue
            results.append(_create_instance(stack_set, account, region, ou, overrides, operation_id))
    for ou_id in (params.get("DeploymentTargets") or {}).get("OrganizationalUnitIds") or []:
        if stack_set.permission_model == "SERVICE_MANAGED" and ou_id not in stack_set.target_ous:
            stack_set.target_ous.append(ou_id)
    # The stack set's regions are those it was deployed to, even through an OU with no account
    # yet: auto-deployment uses them for an account that joins later.
    known = stack_set.__dict__.setdefault("target_regions", [])
    known.extend(region for region in regions if region not in known)
    _record(stack_set, operation_id, "CREATE", results, params, fingerprint)
    return ActionResult({"OperationId": operation_id})


def _select_instances(stack_set, params: dict, action: str):
    accounts, targets, regions = (
        params.get("Accounts") or [],
        params.get("DeploymentTargets"),
        params.get("Regions") or [],
    )
    pairs = _resolve_targets(stack_set, accounts, targets, action)
    wanted = {account for account, _ in pairs}
    return [
        instance
        for instance in stack_set.instances.stack_instances
        if instance.account_id in wanted and instance.region_name in regions
    ]


@_operation("UPDATE")
def update_stack_instances(self, params: dict, stack_set, fingerprint: str) -> ActionResult:
    _check_overrides(stack_set, params)
    selected = _select_instances(stack_set, params, "UPDATE")
    requested = {
        (a, r)
        for a, _ in _resolve_targets(stack_set, params.get("Accounts") or [], params.get("DeploymentTargets"), "UPDATE")
        for r in params.get("Regions") or []
    }
    if len(selected) < len(requested):
        raise StackInstanceNotFound()
    operation_id = _operation_id(params)
    overrides_given = "ParameterOverrides" in params

    def change(instance):
        if instance.status == "INOPERABLE":  # undocumented; stricter: an update cannot repair it
            raise ValidationError(message="The stack instance is INOPERABLE: delete it with RetainStacks")
        if overrides_given:  # keys left out revert to the stack set's value; UsePreviousValue keeps the override
            previous = {item["ParameterKey"]: item for item in instance.overrides}
            new = []
            for item in _overrides(params["ParameterOverrides"]):
                if item.get("UsePreviousValue"):
                    if item["ParameterKey"] in previous:
                        new.append(previous[item["ParameterKey"]])
                elif "ParameterValue" in item:
                    new.append({"ParameterKey": item["ParameterKey"], "ParameterValue": item["ParameterValue"]})
            instance.overrides = new
        instance.last_operation_id = operation_id
        _update_stack(stack_set, instance)

    results = _apply_to_instances(selected, change)
    _record(stack_set, operation_id, "UPDATE", results, params, fingerprint)
    return ActionResult({"OperationId": operation_id})


@_operation("UPDATE")
def update_stack_set(self, params: dict, stack_set, fingerprint: str) -> ActionResult:
    _check_auto_deployment(params, stack_set.permission_model, self.cloudformation_backend, own_arn=stack_set.arn)
    backend = self.cloudformation_backend
    template = params.get("TemplateBody")
    if params.get("TemplateURL"):
        template = self._get_stack_from_s3_url(params["TemplateURL"])
    if not template and not params.get("UsePreviousTemplate"):
        raise ValidationError(message="Either TemplateBody, TemplateURL or UsePreviousTemplate must be specified")
    new_parameters = backend._resolve_update_parameters(
        instance=stack_set, incoming_params=params.get("Parameters") or []
    )
    changes_stacks = bool(template and template != stack_set.template) or (
        "Parameters" in params and new_parameters != dict(stack_set.parameters or {})
    )
    # validate the targets before changing anything
    targeted = (
        _select_instances(stack_set, params, "UPDATE")
        if (params.get("Accounts") or params.get("DeploymentTargets"))
        else None
    )
    if targeted is not None and not params.get("Regions"):
        raise ValidationError(message="Regions must be specified when Accounts or DeploymentTargets are")
    stack_set.template = template or stack_set.template
    stack_set.instances.template = stack_set.template
    if "Parameters" in params:
        stack_set.parameters = new_parameters
    if params.get("Description") is not None:
        stack_set.description = params["Description"]
    if "Tags" in params:
        stack_set.tags = {item["Key"]: item["Value"] for item in params["Tags"] or []}
    if "Capabilities" in params:
        stack_set.capabilities = list(params["Capabilities"] or [])
    stack_set.administration_role_arn = params.get("AdministrationRoleARN") or stack_set.administration_role_arn
    stack_set.execution_role_name = params.get("ExecutionRoleName") or stack_set.execution_role_name
    if params.get("ManagedExecution") is not None:
        stack_set._managed_execution = {"Active": bool(params["ManagedExecution"].get("Active"))}
    if params.get("AutoDeployment") is not None:
        stack_set.auto_deployment = params["AutoDeployment"]
    instances = stack_set.instances.stack_instances if targeted is None else targeted
    # StackInstance.Status INOPERABLE: "Stacks in this state are excluded from further UpdateStackSet operations."
    instances = [i for i in instances if getattr(i, "status", "CURRENT") != "INOPERABLE"]
    if changes_stacks and targeted is not None:  # AWS: all instances OUTDATED, then the targeted ones updated
        for instance in stack_set.instances.stack_instances:
            _instance_defaults(instance)
            instance.status = "OUTDATED"
    operation_id = _operation_id(params)

    def change(instance):
        instance.last_operation_id = operation_id
        _update_stack(stack_set, instance)

    results = _apply_to_instances(list(instances), change)
    _record(stack_set, operation_id, "UPDATE", results, params, fingerprint)
    return ActionResult({"OperationId": operation_id})


@_operation("DELETE")
def delete_stack_instances(self, params: dict, stack_set, fingerprint: str) -> ActionResult:
    if "RetainStacks" not in params:
        raise ValidationError(
            message="1 validation error detected: Value null at 'retainStacks' failed to satisfy constraint: "
            "Member must not be null"
        )
    selected = _select_instances(stack_set, params, "DELETE")
    operation_id = _operation_id(params)
    results = []
    for instance in selected:
        _instance_defaults(instance)
        key = (instance.account_id, instance.region_name, instance.organizational_unit_id)
        try:
            if not params["RetainStacks"]:
                _delete_stack(instance)
        except Exception as error:  # a resource error fails the instance, not the call
            # StackInstance.Status INOPERABLE: "A DeleteStackInstances operation has failed and
            # left the stack in an unstable state."
            instance.status, instance.detailed_status, instance.status_reason = "INOPERABLE", "FAILED", _reason(error)
            results.append(_result(key, "FAILED", instance.status_reason))
            continue
        stack_set.instances.stack_instances.remove(instance)
        results.append(_result(key))
    remaining_ous = {instance.organizational_unit_id for instance in stack_set.instances.stack_instances}
    for ou_id in (params.get("DeploymentTargets") or {}).get("OrganizationalUnitIds") or []:
        if ou_id in stack_set.target_ous and ou_id not in remaining_ous:
            stack_set.target_ous.remove(ou_id)
    _record(stack_set, operation_id, "DELETE", results, params, fingerprint)
    return ActionResult({"OperationId": operation_id})


def describe_stack_set_operation(self) -> ActionResult:
    stack_set = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
    operation = stack_set.get_operation(self._get_param("OperationId"))
    _advance(operation, stack_set)
    return ActionResult({"StackSetOperation": responses.StackSetOperationDTO(operation, stack_set)})


def delete_stack_set(self) -> ActionResult:
    stack_sets = self.cloudformation_backend.stacksets
    name = self._get_param("StackSetName")
    for stack_set in list(stack_sets.values()):
        if name in (stack_set.name, stack_set.id) and stack_set.status == "ACTIVE":
            _guard(stack_set)
            # AWS documents nothing about deleting a stack set another one's AutoDeployment.DependsOn
            # names; the dependent's auto-deployments could then never be "sequenced to ensure all
            # dependencies complete successfully": refused (stricter), the message ours.
            dependents = sorted(
                other.name
                for other in stack_sets.values()
                if other.status != "DELETED"
                and stack_set.arn in ((getattr(other, "auto_deployment", None) or {}).get("DependsOn") or [])
            )
            if dependents:
                raise StackSetValidation(
                    f"StackSet {stack_set.name} is named in AutoDeployment.DependsOn of {', '.join(dependents)}: "
                    "update or delete those first"
                )
    return _original["delete_stack_set"](self)


def list_stack_set_operations(self) -> ActionResult:
    """Newest first, as AWS lists them; operations younger than ``list_lag`` reads left out."""
    params = _params(self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    visible = []
    for operation in stack_set.operations:
        if operation.get("ListLag", 0) > 0:
            operation["ListLag"] -= 1
            continue
        visible.append(operation)
    return ActionResult(_page(list(reversed(visible)), params))


def describe_stack_set(self) -> ActionResult:
    stack_set = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
    _stack_set_defaults(stack_set)
    return ActionResult({"StackSet": stack_set})


def _page(items: list, params: dict) -> dict:
    size = min(int(params.get("MaxResults") or MAX_PAGE), MAX_PAGE)
    start = int(params.get("NextToken") or 0)
    page = {"Summaries": items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = str(start + size)
    return page


_FILTER_FIELDS = {
    "DETAILED_STATUS": "detailed_status",
    "LAST_OPERATION_ID": "last_operation_id",
    "DRIFT_STATUS": "drift_status",
}


def list_stack_instances(self) -> ActionResult:
    params = _params(self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    instances = []
    for instance in stack_set.instances.stack_instances:
        _instance_defaults(instance)
        if params.get("StackInstanceAccount") and instance.account_id != params["StackInstanceAccount"]:
            continue
        if params.get("StackInstanceRegion") and instance.region_name != params["StackInstanceRegion"]:
            continue
        if any(
            getattr(instance, _FILTER_FIELDS[item["Name"]]) != item["Values"]
            for item in params.get("Filters") or []
            if item.get("Name") in _FILTER_FIELDS
        ):
            continue
        summary = instance.to_dict()
        summary.pop("ParameterOverrides", None)  # not part of StackInstanceSummary
        instances.append(summary)
    return ActionResult(_page(instances, params))


def list_stack_set_operation_results(self) -> ActionResult:
    params = _params(self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    operation = stack_set.get_operation(params["OperationId"])
    results = operation.get("Results")
    if results is None:  # an operation moto itself recorded
        results = [
            _result((account, region, None), operation["Status"])
            for item in operation["Instances"]
            for account, region in item.items()
        ]
    for item in params.get("Filters") or []:
        if item.get("Name") == "OPERATION_RESULT_STATUS":
            results = [result for result in results if result["Status"] == item["Values"]]
    return ActionResult(_page(results, params))


def _resource_drifts(instance) -> list[dict]:
    """Drift of the resources of an instance's stack (SSM parameters: the only type compared).

    A parameter whose value differs from the stack's is MODIFIED, one that is gone DELETED,
    as DetectStackDrift reports them (StackResourceDriftStatus).
    """
    from moto.ssm.models import ssm_backends

    stack = instance.stack
    ssm = ssm_backends[instance.account_id][instance.region_name]
    if stack.status == "DELETE_COMPLETE":
        # The stack was deleted in its account, out of band: every resource of it is gone.
        # StackResourceDriftStatus "DELETED: The resource differs from its expected configuration
        # in that it has been deleted." AWS documents nothing for a whole stack deleted under a
        # stack set; reporting its resources DELETED (the instance DRIFTED) is the stricter choice.
        resources = (getattr(stack, "template_dict", None) or {}).get("Resources") or {}
        return [
            {
                "StackId": stack.stack_id,
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": logical_id,
                "ResourceType": (body or {}).get("Type", "AWS::CloudFormation::WaitConditionHandle"),
                "Timestamp": utcnow(),
                "StackResourceDriftStatus": "DELETED",
            }
            for logical_id, body in sorted(resources.items())
        ]
    drifts = []
    for logical_id in stack.resource_map:
        rtype = stack.resource_map._resource_json_map.get(logical_id, {}).get("Type")
        resource = stack.resource_map[logical_id]
        if rtype != "AWS::SSM::Parameter" or resource is None:
            continue
        current = ssm.get_parameter(resource.name)
        drift = {
            "StackId": stack.stack_id,
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": resource.name,
            "ResourceType": rtype,
            "Timestamp": utcnow(),
        }
        if current is None:
            drifts.append({**drift, "StackResourceDriftStatus": "DELETED"})
        elif current.value != resource.value:
            difference = {
                "PropertyPath": "/Value",
                "ExpectedValue": resource.value,
                "ActualValue": current.value,
                "DifferenceType": "NOT_EQUAL",
            }
            drifts.append({**drift, "StackResourceDriftStatus": "MODIFIED", "PropertyDifferences": [difference]})
    return drifts


@_operation("DETECT_DRIFT")
def detect_stack_set_drift(self, params: dict, stack_set, fingerprint: str) -> ActionResult:
    """Drift per instance from its stack's resources; the accounts of ``drift_fail_accounts``
    (opt-in) and instances without a stack fail detection. DriftDetectionStatus per
    StackSetDriftDetectionDetails: COMPLETED, PARTIAL_SUCCESS ("completed without exceeding the
    failure tolerance"), FAILED ("exceeded the specified failure tolerance")."""
    now = utcnow()
    results, failed, drifted = [], 0, 0
    failing = set(filter(None, SETTINGS["drift_fail_accounts"].split(",")))
    operation_id = _operation_id(params)
    for instance in stack_set.instances.stack_instances:
        _instance_defaults(instance)
        key = (instance.account_id, instance.region_name, instance.organizational_unit_id)
        if instance.stack is None or instance.account_id in failing:
            instance.drift_status, failed = "UNKNOWN", failed + 1
            reason = "The stack instance has no stack" if instance.stack is None else "Drift detection failed"
            results.append(_result(key, "FAILED", reason))
            continue
        instance.resource_drifts = _resource_drifts(instance)
        instance.drift_operation_id = operation_id
        instance.drift_status = "DRIFTED" if instance.resource_drifts else "IN_SYNC"
        drifted += bool(instance.resource_drifts)
        instance.last_drift_check_timestamp = now
        results.append(_result(key))
    total = len(stack_set.instances.stack_instances)
    tolerance = _tolerance(params.get("OperationPreferences"), total)
    detection = "COMPLETED" if not failed else ("FAILED" if failed > tolerance else "PARTIAL_SUCCESS")
    details = {
        "DriftStatus": "DRIFTED" if drifted else ("IN_SYNC" if not failed else "NOT_CHECKED"),
        "DriftDetectionStatus": detection,
        "LastDriftCheckTimestamp": now,
        "TotalStackInstancesCount": total,
        "DriftedStackInstancesCount": drifted,
        "InSyncStackInstancesCount": total - failed - drifted,
        "InProgressStackInstancesCount": 0,
        "FailedStackInstancesCount": failed,
    }
    stack_set.stack_set_drift_detection_details = details
    operation_id = _record(
        stack_set,
        operation_id,
        "DETECT_DRIFT",
        results,
        params,
        fingerprint,
        StackSetDriftDetectionDetails=details,
    )
    return ActionResult({"OperationId": operation_id})


def list_stack_instance_resource_drifts(self) -> ActionResult:
    params = _params(self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    instance = stack_set.instances.get_instance(params["StackInstanceAccount"], params["StackInstanceRegion"])
    if instance is None:
        raise StackInstanceNotFound()
    drifts = list(getattr(instance, "resource_drifts", []))
    if getattr(instance, "drift_operation_id", None) != params.get("OperationId"):
        drifts = []
    wanted = params.get("StackInstanceResourceDriftStatuses")
    if wanted:
        drifts = [d for d in drifts if d["StackResourceDriftStatus"] in wanted]
    return ActionResult(_page(drifts, params))


def activate_organizations_access(self) -> ActionResult:
    backend = organizations_backends[self.current_account][get_partition(self.region)]
    if backend.org is None:
        raise ValidationError(message="The account is not the management account of an organization")
    backend.enable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    return EmptyResult()


def deactivate_organizations_access(self) -> ActionResult:
    backend = organizations_backends[self.current_account][get_partition(self.region)]
    if backend.org is not None and _organizations_access(self.current_account, self.region):
        backend.disable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    return EmptyResult()


def describe_organizations_access(self) -> ActionResult:
    return ActionResult(
        {"Status": "ENABLED" if _organizations_access(self.current_account, self.region) else "DISABLED"}
    )


def list_stack_set_auto_deployment_targets(self) -> ActionResult:
    params = _params(self)
    stack_set = self.cloudformation_backend.describe_stack_set(params["StackSetName"])
    _stack_set_defaults(stack_set)
    summaries = []
    if stack_set.permission_model == "SERVICE_MANAGED" and (stack_set.auto_deployment or {}).get("Enabled"):
        for ou_id in stack_set.target_ous:
            regions = sorted(
                {i.region_name for i in stack_set.instances.stack_instances if i.organizational_unit_id == ou_id}
            )
            summaries.append({"OrganizationalUnitId": ou_id, "Regions": regions})
    return ActionResult(_page(summaries, params))


def auto_deploy(org, account_id: str) -> None:
    """After ``account_id`` joined or left an OU: what AWS auto-deployment does.

    Every ACTIVE SERVICE_MANAGED stack set of the management account with AutoDeployment
    enabled gets instances for an account that is now under one of its target OUs (in the
    stack set's regions), and loses those of an account no longer under any (the stacks
    kept when RetainStacksOnAccountRemoval), each as an operation of its own.
    """
    if org.org is None or account_id == org.org.master_account_id:
        return
    backends = models.cloudformation_backends[org.org.master_account_id]
    for backend in list(dict.values(backends)):
        for stack_set in _dependency_order(list(backend.stacksets.values())):
            _stack_set_defaults(stack_set)
            auto = stack_set.auto_deployment or {}
            if (
                stack_set.status != "ACTIVE"
                or stack_set.permission_model != "SERVICE_MANAGED"
                or not auto.get("Enabled")
            ):
                continue
            covering = next((ou for ou in stack_set.target_ous if account_id in accounts_under(org, ou)), None)
            current = [i for i in stack_set.instances.stack_instances if i.account_id == account_id]
            operation_id = str(mock_random.uuid4())
            if covering and not current and stack_set.regions:
                results = [
                    _create_instance(stack_set, account_id, region, covering, [], operation_id)
                    for region in stack_set.regions
                ]
                _record(
                    stack_set,
                    operation_id,
                    "CREATE",
                    results,
                    {},
                    _fingerprint("AUTO_CREATE", {"account": account_id, "id": operation_id}),
                )
            elif current and not covering:
                results = []
                for instance in current:
                    _instance_defaults(instance)
                    key = (account_id, instance.region_name, instance.organizational_unit_id)
                    try:
                        if not auto.get("RetainStacksOnAccountRemoval"):
                            _delete_stack(instance)
                    except Exception as error:  # noqa: BLE001 - fails the auto-deployment operation, never MoveAccount
                        instance.status, instance.detailed_status = "INOPERABLE", "FAILED"
                        instance.status_reason, instance.last_operation_id = _reason(error), operation_id
                        results.append(_result(key, "FAILED", instance.status_reason))
                        continue
                    stack_set.instances.stack_instances.remove(instance)
                    results.append(_result(key))
                _record(
                    stack_set,
                    operation_id,
                    "DELETE",
                    results,
                    {"RetainStacks": bool(auto.get("RetainStacksOnAccountRemoval"))},
                    _fingerprint("AUTO_DELETE", {"account": account_id, "id": operation_id}),
                )


def _dependency_order(stack_sets: list) -> list:
    """Stack sets with each after those its AutoDeployment.DependsOn names (API reference:
    "operations will be sequenced to ensure all dependencies complete successfully before this
    StackSet's operation begins")."""
    by_arn = {stack_set.arn: stack_set for stack_set in stack_sets}
    ordered: list = []

    def visit(stack_set, path: tuple = ()) -> None:
        if stack_set in ordered or stack_set in path:
            return
        for arn in (getattr(stack_set, "auto_deployment", None) or {}).get("DependsOn") or []:
            if arn in by_arn:
                visit(by_arn[arn], (*path, stack_set))
        ordered.append(stack_set)

    for stack_set in stack_sets:
        visit(stack_set)
    return ordered


def _move_account(self, **kwargs) -> None:
    _original["move_account"](self, **kwargs)
    auto_deploy(self, kwargs["AccountId"])


def _create_account(self, **kwargs):
    status = _original["create_account"](self, **kwargs)
    auto_deploy(self, status["CreateAccountStatus"]["AccountId"])
    return status


class _OperationDTO(responses.StackSetOperationDTO):
    def __init__(self, operation: dict[str, Any], stack_set) -> None:
        super().__init__(operation, stack_set)
        self.operation_preferences = operation.get("OperationPreferences")
        self.retain_stacks = operation.get("RetainStacks")
        self.deployment_targets = operation.get("DeploymentTargets")
        self.stack_set_drift_detection_details = operation.get("StackSetDriftDetectionDetails")
        self.status_reason = operation.get("StatusReason")
        self.status_details = operation.get("StatusDetails")


# ---------------------------------------------------------------- wiring

_original: dict[str, Any] = {}

_HANDLERS = {
    "create_stack_set": create_stack_set,
    "create_stack_instances": create_stack_instances,
    "update_stack_instances": update_stack_instances,
    "update_stack_set": update_stack_set,
    "delete_stack_instances": delete_stack_instances,
    "describe_stack_set": describe_stack_set,
    "describe_stack_set_operation": describe_stack_set_operation,
    "delete_stack_set": delete_stack_set,
    "list_stack_instances": list_stack_instances,
    "list_stack_set_operations": list_stack_set_operations,
    "list_stack_set_operation_results": list_stack_set_operation_results,
    "detect_stack_set_drift": detect_stack_set_drift,
    "list_stack_instance_resource_drifts": list_stack_instance_resource_drifts,
    "activate_organizations_access": activate_organizations_access,
    "deactivate_organizations_access": deactivate_organizations_access,
    "describe_organizations_access": describe_organizations_access,
    "list_stack_set_auto_deployment_targets": list_stack_set_auto_deployment_targets,
}


# Every StackSets action that takes CallAs (botocore's model), checked before it runs.
_CALL_AS_ACTIONS = (
    "create_stack_set",
    "update_stack_set",
    "delete_stack_set",
    "describe_stack_set",
    "list_stack_sets",
    "create_stack_instances",
    "update_stack_instances",
    "delete_stack_instances",
    "describe_stack_instance",
    "list_stack_instances",
    "describe_stack_set_operation",
    "list_stack_set_operations",
    "list_stack_set_operation_results",
    "stop_stack_set_operation",
    "detect_stack_set_drift",
    "list_stack_set_auto_deployment_targets",
    "list_stack_instance_resource_drifts",
)


class NotDelegatedAdministrator(ValidationError):
    def __init__(self) -> None:
        super().__init__(message="Account used is not a delegated administrator")


def _check_call_as(response) -> None:
    """CallAs=DELEGATED_ADMIN only from a registered delegated administrator, and only for
    SERVICE_MANAGED stack sets.

    API reference, CreateStackSet.CallAs: "Your Amazon Web Services account must be registered as a
    delegated admin in the management account." and "Valid only if the permissions model is
    SERVICE_MANAGED." The management account itself is refused with "Account used is not a
    delegated administrator" (cdklabs/cdk-stacksets#265).
    """
    if response._get_param("CallAs") != "DELEGATED_ADMIN":
        return
    if response._get_param("PermissionModel") == "SELF_MANAGED" or (
        response._get_param("Action") == "CreateStackSet" and not response._get_param("PermissionModel")
    ):
        raise ValidationError(message="CallAs DELEGATED_ADMIN is valid only for SERVICE_MANAGED stack sets")
    partition = get_partition(response.region)
    for backends in organizations_backends.values():
        backend = backends[partition]
        if backend.org is None or backend.account_id != backend.org.master_account_id:
            continue
        for admin in backend.admins:
            if admin.account.id == response.current_account and STACKSETS_PRINCIPAL in admin.services:
                return
    raise NotDelegatedAdministrator()


def _with_call_as_check(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(handler)
    def run(self):
        _check_call_as(self)
        return handler(self)

    return run


def _managed_execution(self) -> dict[str, Any]:
    return self.__dict__.get("_managed_execution", {"Active": False})


def _organizational_unit_ids(self) -> list[str] | None:
    return list(self.__dict__.get("target_ous") or []) or None if self.permission_model == "SERVICE_MANAGED" else None


def _drift_status(self) -> str:  # ListStackSets' StackSetSummary
    return (self.__dict__.get("stack_set_drift_detection_details") or {}).get("DriftStatus", "NOT_CHECKED")


def _last_drift_check(self):
    return (self.__dict__.get("stack_set_drift_detection_details") or {}).get("LastDriftCheckTimestamp")


def _regions(self) -> list[str]:
    deployed = {instance.region_name for instance in self.instances.stack_instances}
    return sorted(deployed | set(self.__dict__.get("target_regions") or []))


def apply() -> None:
    """Install the handlers and model accessors above on moto's CloudFormation (idempotent)."""
    from localaws.patches import CONTROLS

    CONTROLS["stacksets"] = configure
    if _original:
        return
    for name, handler in _HANDLERS.items():
        _original[name] = getattr(responses.CloudFormationResponse, name, None)
        setattr(responses.CloudFormationResponse, name, handler)
    for name in _CALL_AS_ACTIONS:
        current = getattr(responses.CloudFormationResponse, name, None)
        if current is not None:
            setattr(responses.CloudFormationResponse, name, _with_call_as_check(current))
    models.StackSet.managed_execution = property(_managed_execution)
    models.StackSet.organizational_unit_ids = property(_organizational_unit_ids)
    models.StackSet.regions = property(_regions)
    models.StackSet.drift_status = property(_drift_status)
    models.StackSet.last_drift_check_timestamp = property(_last_drift_check)
    models.StackInstance.to_dict = _instance_to_dict
    responses.StackSetOperationDTO = _OperationDTO
    from moto.organizations.models import OrganizationsBackend

    _original["move_account"], _original["create_account"] = (
        OrganizationsBackend.move_account,
        OrganizationsBackend.create_account,
    )
    OrganizationsBackend.move_account = _move_account
    OrganizationsBackend.create_account = _create_account
