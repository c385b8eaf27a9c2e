"""What a stack set update does to the resources inside its stacks: a change set, computed.

AWS offers change sets for stacks, not for stack sets. This module compares the live
template and parameter values (``DescribeStackSet``) with the new ones, per logical id:

- ``add`` / ``remove`` / ``modify``, with the changed property paths;
- ``replacement``: ``true`` when a create-only property changes (the CloudFormation
  registry schemas that cfn-lint ships say which), ``false`` when only updatable ones do,
  ``"conditional"`` when it hangs on a value known only at deploy time (an attribute of a
  resource being replaced, a condition that cannot be evaluated here);
- a parameter-only change marks exactly the resources whose properties, conditions or
  ``Fn::Sub`` strings use that parameter;
- ``data_loss``: a stateful resource (bucket, key, log group, registry, repository, file
  system...) removed or replaced without ``Retain``/``Snapshot``.

Pure: plain data in, plain data out; the schema lookup is a function passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from generator.diagrams import references

CONDITIONAL = "conditional"
# Types whose deletion deletes data. Keys: their material goes (and with it all it encrypted).
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::Domain",
        "AWS::SageMaker::FeatureGroup",
        "AWS::ECR::Repository",
        "AWS::EFS::FileSystem",
        "AWS::DynamoDB::Table",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::SecretsManager::Secret",
    }
)
_KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}
_UNKNOWN = object()  # a value known only at deploy time
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class ChangeAction(str, Enum):
    ADD = "add"
    MODIFY = "modify"
    REMOVE = "remove"


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    type: str
    action: ChangeAction
    replacement: bool | str  # True, False or CONDITIONAL
    properties: tuple[str, ...] = ()
    data_loss: bool = False

    def to_dict(self) -> dict:
        return {
            "logical_id": self.logical_id,
            "type": self.type,
            "action": self.action.value,
            "replacement": self.replacement,
            "properties": list(self.properties),
            "data_loss": self.data_loss,
        }

    def describe(self, instances: int | None = None) -> str:
        """``~ EndpointConfig (replace) in 3 instances [AWS::SageMaker::EndpointConfig: KmsKeyId]``."""
        symbol = {ChangeAction.ADD: "+", ChangeAction.MODIFY: "~", ChangeAction.REMOVE: "-"}[self.action]
        notes = {ChangeAction.ADD: ["add"], ChangeAction.REMOVE: ["remove"]}.get(self.action) or [
            {True: "replace", False: "update", CONDITIONAL: "may replace"}[self.replacement]
        ]
        if self.data_loss:
            notes.append("DATA LOSS")
        where = f" in {instances} instance{'s' if instances != 1 else ''}" if instances is not None else ""
        detail = f": {', '.join(self.properties)}" if self.properties else ""
        return f"{symbol} {self.logical_id} ({', '.join(notes)}){where} [{self.type}{detail}]"


# --------------------------------------------------------------------------- schemas


@cache
def create_only_paths(resource_type: str, region: str = "us-east-1") -> tuple[tuple[str, ...], ...]:
    """Create-only property paths of a type from cfn-lint's registry schemas (``()`` if unknown)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except Exception:  # an unknown or custom type (KeyError, ...): no schema to consult
        return ()
    pointers = list(schema.get("createOnlyProperties", [])) + list(schema.get("conditionalCreateOnlyProperties", []))
    return tuple(tuple(p for p in pointer.split("/")[2:] if p != "*") for pointer in pointers)


# --------------------------------------------------------------------------- evaluation


def _parameter_values(template: Mapping, given: Mapping[str, str]) -> dict[str, Any]:
    """Each parameter's value as the stack sees it: given, else its default, else unknown."""
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        spec = spec if isinstance(spec, Mapping) else {}
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            default = spec["Default"]
            values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            values[name] = _UNKNOWN
        ptype = str(spec.get("Type", ""))
        if ptype.startswith("AWS::SSM::Parameter::Value") and values[name] is not _UNKNOWN:
            values[name] = ("ssm", values[name])  # the SSM name; its value is read at deploy time
        elif ptype.startswith("List<") or ptype == "CommaDelimitedList":
            if isinstance(values[name], str):
                values[name] = [item.strip() for item in values[name].split(",")]
    return values


class _Evaluator:
    """Resolves parameters and conditions in a template; resource references stay symbolic."""

    def __init__(self, template: Mapping, given: Mapping[str, str]):
        self.template = template
        self.params = _parameter_values(template, given)
        self.resources = set((template.get("Resources") or {}).keys())
        self._conditions: dict[str, Any] = {}

    def condition(self, name: str) -> Any:
        if name not in self._conditions:
            self._conditions[name] = _UNKNOWN  # a cycle stays unknown
            definition = (self.template.get("Conditions") or {}).get(name)
            self._conditions[name] = _UNKNOWN if definition is None else self._truth(definition)
        return self._conditions[name]

    def _truth(self, node: Any) -> Any:
        if isinstance(node, Mapping) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                left, right = (self.value(a) for a in arg)
                return _UNKNOWN if _unknown(left) or _unknown(right) else _text(left) == _text(right)
            if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                inner = self._truth(arg[0])
                return inner if inner is _UNKNOWN else not inner
            if fn in ("Fn::And", "Fn::Or") and isinstance(arg, list):
                parts = [self._truth(a) for a in arg]
                decided = [p for p in parts if p is not _UNKNOWN]
                if fn == "Fn::And":
                    return False if False in decided else (True if len(decided) == len(parts) else _UNKNOWN)
                return True if True in decided else (False if len(decided) == len(parts) else _UNKNOWN)
        return _UNKNOWN

    def value(self, node: Any) -> Any:
        """``node`` with parameters substituted and ``Fn::If`` decided where possible."""
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref" and isinstance(arg, str):
                if arg in self.params:
                    return self.params[arg]
                return {"Ref": arg}  # a resource or a pseudo parameter: same text on both sides
            if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                truth = self.condition(arg[0])
                if truth is _UNKNOWN:
                    return {"Fn::If": [arg[0], self.value(arg[1]), self.value(arg[2])], "__unknown__": True}
                return self.value(arg[1] if truth else arg[2])
            if fn == "Fn::Sub":
                return {"Fn::Sub": self._sub(arg)}
        out = {}
        for key, item in node.items():
            value = self.value(item)
            if value == {"Ref": "AWS::NoValue"}:
                continue
            out[key] = value
        return out

    def _sub(self, arg: Any) -> Any:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
        if not isinstance(text, str):
            return self.value(arg)

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return match.group(0)
            value = self.params.get(name)
            if value is None or _unknown(value) or not isinstance(value, str):
                return match.group(0)
            return value

        substituted = _SUB_VARIABLE.sub(replace, text)
        return substituted if not variables else [substituted, self.value(variables)]

    def present(self, resource: Mapping) -> Any:
        condition = resource.get("Condition")
        return True if condition is None else self.condition(condition)


def _unknown(value: Any) -> bool:
    return value is _UNKNOWN or (isinstance(value, Mapping) and value.get("__unknown__") is True)


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


# --------------------------------------------------------------------------- diff


def _changed_paths(old: Any, new: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(old, Mapping) and isinstance(new, Mapping) and not _intrinsic(old) and not _intrinsic(new):
        paths = []
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key, _UNKNOWN) == new.get(key, _UNKNOWN) and key in old and key in new:
                continue
            if key not in old or key not in new:
                paths.append(prefix + (key,))
            else:
                paths.extend(_changed_paths(old[key], new[key], prefix + (key,)))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                paths.extend(_changed_paths(a, b, prefix + (index,)))
        return paths
    return [] if old == new else [prefix]


def _intrinsic(node: Mapping) -> bool:
    return any(str(key) == "Ref" or str(key).startswith("Fn::") for key in node)


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _under(path: tuple, create_only: Iterable[tuple[str, ...]]) -> bool:
    names = tuple(p for p in path if not isinstance(p, int))
    return any(names[: len(pointer)] == pointer or pointer[: len(names)] == names for pointer in create_only)


def _references(node: Any) -> set[str]:
    """Logical ids that ``node`` refers to through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``
    (the walk the diagrams draw their edges with)."""
    return {target for _, target in references(node)}


def _paths_referring(node: Any, targets: set[str], prefix: tuple = ()) -> list[tuple]:
    """Property paths (at the top level of ``node``) whose values refer to any of ``targets``."""
    if not isinstance(node, Mapping):
        return []
    return [prefix + (key,) for key, value in node.items() if _references(value) & targets]


def _data_loss(resource: Mapping, rtype: str, policy_key: str) -> bool:
    return rtype in STATEFUL_TYPES and str(resource.get(policy_key, "Delete")) not in _KEEPING_POLICIES


def resource_changes(
    old_template: Mapping,
    old_parameters: Mapping[str, str],
    new_template: Mapping,
    new_parameters: Mapping[str, str],
    create_only: Callable[[str], tuple[tuple[str, ...], ...]] = create_only_paths,
) -> list[ResourceChange]:
    """The resource-level changes from the old template and values to the new ones."""
    old_eval, new_eval = _Evaluator(old_template, old_parameters), _Evaluator(new_template, new_parameters)
    old_resources = {k: v for k, v in (old_template.get("Resources") or {}).items() if isinstance(v, Mapping)}
    new_resources = {k: v for k, v in (new_template.get("Resources") or {}).items() if isinstance(v, Mapping)}
    changes: dict[str, ResourceChange] = {}
    old_live = {k for k, r in old_resources.items() if old_eval.present(r) is not False}
    new_live = {k for k, r in new_resources.items() if new_eval.present(r) is not False}

    for logical_id in sorted(old_live - new_live):
        resource = old_resources[logical_id]
        rtype = str(resource.get("Type"))
        changes[logical_id] = ResourceChange(
            logical_id, rtype, ChangeAction.REMOVE, True, data_loss=_data_loss(resource, rtype, "DeletionPolicy")
        )
    for logical_id in sorted(new_live - old_live):
        rtype = str(new_resources[logical_id].get("Type"))
        changes[logical_id] = ResourceChange(logical_id, rtype, ChangeAction.ADD, False)

    replaced: dict[str, bool | str] = {}
    pending = sorted(old_live & new_live)
    # Replacements propagate: a resource that refers to a replaced one sees a new value.
    for _ in range(len(pending) + 1):
        progressed = False
        for logical_id in pending:
            change = _modification(
                logical_id,
                old_resources[logical_id],
                new_resources[logical_id],
                old_eval,
                new_eval,
                create_only,
                replaced,
            )
            if change is not None and changes.get(logical_id) != change:
                changes[logical_id] = change
                if change.replacement is not False and replaced.get(logical_id) != change.replacement:
                    replaced[logical_id] = change.replacement
                    progressed = True
        if not progressed:
            break
    return [changes[k] for k in sorted(changes)]


def _modification(
    logical_id: str,
    old: Mapping,
    new: Mapping,
    old_eval: _Evaluator,
    new_eval: _Evaluator,
    create_only: Callable[[str], tuple[tuple[str, ...], ...]],
    replaced: Mapping[str, bool | str],
) -> ResourceChange | None:
    old_type, new_type = str(old.get("Type")), str(new.get("Type"))
    if old_type != new_type:
        return ResourceChange(
            logical_id, new_type, ChangeAction.MODIFY, True, ("Type",), _data_loss(old, old_type, "UpdateReplacePolicy")
        )
    old_props = old_eval.value(old.get("Properties") or {})
    new_props = new_eval.value(new.get("Properties") or {})
    paths = _changed_paths(old_props, new_props)
    deploy_time = _paths_referring(new.get("Properties") or {}, {k for k, v in replaced.items() if v})
    uncertain = (old_eval.present(old) is not True) or (new_eval.present(new) is not True)
    if not paths and not deploy_time:
        return None
    schema = create_only(new_type)
    certain = [p for p in paths if not _unknown_at(new_props, p)]
    if any(_under(p, schema) for p in certain) and not uncertain:
        replacement: bool | str = True
    elif any(_under(p, schema) for p in paths + deploy_time):
        replacement = CONDITIONAL
    else:
        replacement = False
    properties = tuple(sorted({_dotted(p) for p in paths + deploy_time}))
    loss = replacement is not False and _data_loss(new, new_type, "UpdateReplacePolicy")
    return ResourceChange(logical_id, new_type, ChangeAction.MODIFY, replacement, properties, loss)


def _unknown_at(node: Any, path: tuple) -> bool:
    for part in path:
        if _unknown(node):
            return True
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return _unknown(node)
