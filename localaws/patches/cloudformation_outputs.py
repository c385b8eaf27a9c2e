"""CloudFormation: exports of outputs whose Condition is false are not evaluated.

moto 5.2.5 evaluates the ``Export`` of every output, even one whose ``Condition`` is
false, and so fails a stack whose conditional output refers to a conditional resource
("Fn::GetAtt references undefined resource"). AWS skips such outputs entirely; the
templates gate global IAM resources and their outputs on ``IsPrimaryRegion``, so every
secondary-region stack hits this.
"""

from __future__ import annotations

from moto.cloudformation import parsing

_original_exports = parsing.OutputMap.exports


def _exports(self) -> list:
    exports = []
    for value in (self._output_json_map or {}).values():
        condition = value.get("Condition")
        if condition and not self._resource_map.lazy_condition_map[condition]:
            continue
        if value.get("Export"):
            name = parsing.clean_json(value["Export"].get("Name"), self._resource_map)
            cleaned = parsing.clean_json(value.get("Value"), self._resource_map)
            exports.append(parsing.Export(self._stack_id, name, cleaned))
    return exports


def apply() -> None:
    """Replace ``OutputMap.exports`` with the condition-aware version (idempotent)."""
    parsing.OutputMap.exports = property(_exports)
