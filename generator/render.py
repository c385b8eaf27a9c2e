"""Deterministic YAML rendering of troposphere templates."""

from __future__ import annotations

import json

import yaml
from troposphere import Template


class _Dumper(yaml.SafeDumper):
    """A SafeDumper that indents lists and never emits anchors or aliases."""

    def increase_indent(self, flow=False, indentless=False):  # noqa: D401 - yaml API
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data):
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def render_yaml(template: Template) -> str:
    """Render ``template`` as YAML in long form (``Fn::Sub``), keys sorted, byte-stable.

    Going through JSON first normalises every troposphere/awacs object to plain data, so
    the output depends only on the template's content, never on object identity or order
    of construction.
    """
    data = json.loads(template.to_json(sort_keys=True))
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=100)
