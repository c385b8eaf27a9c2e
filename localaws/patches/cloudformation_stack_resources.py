"""CloudFormation: DescribeStackResources finds the stack of a physical resource id, as AWS does.

moto 5.2.5 reads only ``StackName`` and answers a call with ``PhysicalResourceId`` alone
"Stack with id None does not exist". The API reference (DescribeStackResources): "If
PhysicalResourceId is specified, the associated resources of the stack that the resource
belongs to are returned", and "You must specify either StackName or PhysicalResourceId, but
not both." ``share-model-group`` asks this to learn whether a stack owns the policy it would
write (a stack set instance's stack is a stack of the member account, so it is found too).

The answer holds the resources whose physical id is the one asked (with LogicalResourceId,
only that one): AWS answers so in practice (cloudformation-coverage-roadmap issue 998 shows
`describe-stack-resources --physical-resource-id` returning the matching resource, not the
whole stack). A physical id no stack holds is refused with ValidationError
"Stack for <id> does not exist". Stacks in DELETE_COMPLETE are not searched: AWS lists
their resources for 90 days, as DELETE_COMPLETE, which ``share-model-group`` ignores anyway
(a difference that changes nothing the product reads).
"""

from __future__ import annotations

from moto.cloudformation import responses
from moto.cloudformation.exceptions import ValidationError
from moto.core.responses import ActionResult

_original = responses.CloudFormationResponse.describe_stack_resources


def _describe_stack_resources(self) -> ActionResult:
    stack_name, physical_id = self._get_param("StackName"), self._get_param("PhysicalResourceId")
    if stack_name and physical_id:
        raise ValidationError(message="You must specify either StackName or PhysicalResourceId, but not both.")
    if not physical_id:
        if not stack_name:
            raise ValidationError(message="Either StackName or PhysicalResourceId must be specified.")
        return _original(self)
    logical_id = self._get_param("LogicalResourceId")
    for stack in list(self.cloudformation_backend.stacks.values()):
        if stack.status == "DELETE_COMPLETE":
            continue
        matching = [
            resource
            for resource in stack.stack_resources
            if getattr(resource, "physical_resource_id", None) == physical_id
            and (logical_id is None or getattr(resource, "logical_resource_id", None) == logical_id)
        ]
        if matching:
            return ActionResult(
                {"StackResources": [responses.StackResourceDTO(stack, resource) for resource in matching]}
            )
    raise ValidationError(message=f"Stack for {physical_id} does not exist")


def apply() -> None:
    """Install the PhysicalResourceId-aware DescribeStackResources (idempotent)."""
    responses.CloudFormationResponse.describe_stack_resources = _describe_stack_resources
