"""CloudFormation: generated IAM names respect IAM's length limits, as AWS's do.

moto 5.2.5 names an unnamed resource ``<stack>-<logical id>-<suffix>`` at any length; a
stack set instance's stack is called ``StackSet-<name>-<uuid>``, so its roles get names
of 90 characters where IAM allows 64. CloudFormation shortens the stack name and the
logical id and keeps the random suffix; so does this patch (roles and users 64, groups,
instance profiles and managed policies 128).
"""

from __future__ import annotations

from moto.cloudformation import parsing

_LIMITS = {
    "AWS::IAM::Role": 64,
    "AWS::IAM::User": 64,
    "AWS::IAM::Group": 128,
    "AWS::IAM::InstanceProfile": 128,
    "AWS::IAM::ManagedPolicy": 128,
}
_original = parsing.generate_resource_name


def _generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
    name = _original(resource_type, stack_name, logical_id)
    limit = _LIMITS.get(resource_type)
    if limit is None or len(name) <= limit:
        return name
    suffix = name.rsplit("-", 1)[1]
    room = limit - len(suffix) - 2  # two dashes
    logical = logical_id[: max(room // 2, room - len(stack_name))]  # both parts stay recognisable
    stack = stack_name[: room - len(logical)].rstrip("-")
    return f"{stack}-{logical}-{suffix}"


def apply() -> None:
    """Install the length-aware name generator (idempotent)."""
    parsing.generate_resource_name = _generate_resource_name
