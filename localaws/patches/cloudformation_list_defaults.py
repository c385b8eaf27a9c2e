"""CloudFormation: the default of a list parameter is a list.

moto 5.2.5 splits the value of a ``CommaDelimitedList`` or ``List<...>`` parameter only
when the caller passes one; a default stays a plain string, so ``Fn::Select`` picks a
character ("Value (1) for parameter cidrBlock is invalid") and ``Fn::Join`` joins
characters. AWS splits defaults too (an empty default is the one-element list ``[""]``).
"""

from __future__ import annotations

from moto.cloudformation import parsing

_original_load_parameters = parsing.ResourceMap.load_parameters


def _is_list(parameter_type: str) -> bool:
    return parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<")


def _load_parameters(self) -> None:
    _original_load_parameters(self)
    for name, slot in (self._template.get("Parameters") or {}).items():
        value = self.resolved_parameters.get(name)
        if _is_list(slot.get("Type", "String")) and isinstance(value, str):
            items = value.split(",")
            if slot.get("Type") == "List<Number>":
                items = [float(item) if "." in item else int(item) for item in items]
            self.resolved_parameters[name] = items
            self._parsed_resources[name] = items


def apply() -> None:
    """Split list parameters' defaults as AWS does (idempotent)."""
    if parsing.ResourceMap.load_parameters is _original_load_parameters:
        parsing.ResourceMap.load_parameters = _load_parameters
