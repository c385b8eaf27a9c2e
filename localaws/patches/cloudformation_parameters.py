"""CloudFormation: a parameter-only update reaches resources that use it through Fn::Sub.

moto 5.2.5 decides which resources a parameter change touches by looking for ``Ref``
only, so an update (UpdateStack, and every StackSet update) that changes a parameter
used as ``${Name}`` inside ``Fn::Sub`` leaves the resource unchanged. AWS re-evaluates
every resource whose properties depend on the parameter; the templates here build
names and values with ``Sub`` throughout. Likewise a parameter dropped from the update
(back to its default: a StackSet override removed) counts as changed.

An ``AWS::SSM::Parameter::Value<...>`` parameter naming a parameter that does not exist
fails with AWS's message ("Unable to fetch parameters [name] from parameter store for
this account.") instead of moto's "'NoneType' object has no attribute 'value'".
"""

from __future__ import annotations

import re

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.ssm.models import ssm_backends

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def _references(template) -> list[str]:
    """Names a template fragment refers to with ``Ref`` or as ``${Name}`` in ``Fn::Sub``."""
    references: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key == "Ref":
                references.append(value)
            elif key == "Fn::Sub":
                text, local = (value[0], value[1] if len(value) > 1 else {}) if isinstance(value, list) else (value, {})
                if isinstance(text, str):
                    references += [name.split(".")[0] for name in _SUB_VARIABLE.findall(text) if name not in local]
                references += _references(local)
            else:
                references += _references(value)
    elif isinstance(template, list):
        for item in template:
            references += _references(item)
    return references


_original_diff = parsing.ResourceMap.build_resource_diff


def _build_resource_diff(self, other_template, parameters=None):
    if parameters:
        declared = other_template.get("Parameters") or {}
        dropped = {
            key: declared[key].get("Default")
            for key in self.input_parameters
            if key not in parameters and key in declared
        }
        parameters = {**dropped, **parameters}
    return _original_diff(self, other_template, parameters)


_original_parse_ssm = parsing.ResourceMap.parse_ssm_parameter


def _parse_ssm_parameter(self, value: str, value_type: str):
    if ssm_backends[self._account_id][self._region_name].get_parameter(value) is None:
        raise ValidationError(message=f"Unable to fetch parameters [{value}] from parameter store for this account.")
    return _original_parse_ssm(self, value, value_type)


def apply() -> None:
    """Install the parameter fixes above on moto's CloudFormation parsing (idempotent)."""
    parsing.get_references_from_template = _references
    if parsing.ResourceMap.build_resource_diff is _original_diff:
        parsing.ResourceMap.build_resource_diff = _build_resource_diff
    if parsing.ResourceMap.parse_ssm_parameter is _original_parse_ssm:
        parsing.ResourceMap.parse_ssm_parameter = _parse_ssm_parameter
