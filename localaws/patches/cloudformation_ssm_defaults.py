"""CloudFormation: an SSM-typed parameter's default is resolved only when it is used.

moto 5.2.5 resolves the default of every ``AWS::SSM::Parameter::Value<...>`` parameter
before it looks at the values the caller passed, so a stack that passes another SSM name
(a production account overriding the staging default) fails when the default's name does
not exist in that account. AWS resolves only the name in effect.
"""

from __future__ import annotations

from moto.cloudformation import parsing

_PATCHED = "_ssm_defaults_patched"


def _wrap(load_parameters):
    def _load_parameters(self) -> None:
        slots = self._template.get("Parameters") or {}
        hidden = {}
        for name, slot in slots.items():
            if (
                str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::")
                and name in self.input_parameters
                and "Default" in slot
            ):
                hidden[name] = slot.pop("Default")
        try:
            load_parameters(self)
        finally:
            for name, default in hidden.items():
                slots[name]["Default"] = default

    setattr(_load_parameters, _PATCHED, True)
    return _load_parameters


def apply() -> None:
    """Resolve SSM-typed defaults only for parameters the caller did not pass (idempotent)."""
    if not getattr(parsing.ResourceMap.load_parameters, _PATCHED, False):
        parsing.ResourceMap.load_parameters = _wrap(parsing.ResourceMap.load_parameters)
