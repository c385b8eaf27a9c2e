"""The one config layer: a YAML loader for manifests, catalogs and templates, and one JSON
Schema error formatter.

The loader is a ``SafeLoader`` that refuses duplicate keys (a silent last-wins hides typos)
and keeps CloudFormation's short-form tags as their long forms (``!Ref X`` -> ``{"Ref": "X"}``,
``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``), so a template reads the same whichever
form it was written in. Syntax errors become ``InputError`` with the line and column.

``check_schema`` turns the first JSON Schema violation into one ``InputError`` naming the
file, the item (``stack set 'x'``, ``product 'y'``) and the key, with "did you mean" for a
misspelt key at every level, the top level included.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import ValidationError

from deploy.common.errors import InputError

# libyaml's parser when PyYAML was built with it (the wheels are): ten times faster on a
# manifest of 50,000 accounts; the same events, marks and errors as the pure-Python one.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader: duplicate keys refused, CloudFormation short-form tags kept as long forms."""


def _construct_mapping(loader: ConfigLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


def _intrinsic(loader: ConfigLoader, tag_suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = _construct_mapping(loader, node, deep=True)
    return {name: value}


ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
ConfigLoader.add_multi_constructor("!", _intrinsic)


# CloudFormation reads at most 1 MB of template from S3; manifests and catalogs get a bound
# that leaves room for 50,000 accounts x several regions and still refuses a stray dump.
MAX_TEMPLATE_BYTES = 1_000_000
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Aliases share nodes, so a few lines can stand for billions of values ("billion laughs"):
# a document is refused when its nodes, with every alias expanded, exceed this count.
MAX_EXPANDED_NODES = 5_000_000

_STR_TAG = "tag:yaml.org,2002:str"
_RETAGGED = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}


class YAMLLimitError(yaml.YAMLError):
    """A document over the expansion bound, or nested deeper than the parser can follow."""


def _expanded_size(root: yaml.Node) -> int:
    """The node count of ``root`` with every alias expanded, computed without expanding."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            size = 1 + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = size
            if size > MAX_EXPANDED_NODES:
                raise YAMLLimitError(f"the document expands to more than {MAX_EXPANDED_NODES:,} values through aliases")
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _keep_scalars_verbatim(root: yaml.Node, keys: frozenset[str]) -> None:
    """Under a mapping key in ``keys``, plain scalars that YAML 1.1 would read as numbers or
    booleans (``012345670123``, ``1e3``, ``yes``, ``0x1F``) stay the text that was written."""
    seen: set[tuple[int, bool]] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, verbatim = stack.pop()
        if (id(node), verbatim) in seen:
            continue
        seen.add((id(node), verbatim))
        if isinstance(node, yaml.ScalarNode):
            if verbatim and node.tag in _RETAGGED and not node.style:  # plain: None, or "" from libyaml
                node.tag = _STR_TAG
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                under = verbatim or (isinstance(key, yaml.ScalarNode) and key.value in keys)
                stack.append((value, under))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, verbatim) for item in node.value)


def parse_yaml(text: str | bytes, verbatim_under: frozenset[str] = frozenset()) -> Any:
    """YAML (or JSON) text as plain data; raises ``yaml.YAMLError`` (see :func:`yaml_problem`).

    Alias expansion is bounded (:data:`MAX_EXPANDED_NODES`); scalars under the keys in
    ``verbatim_under`` keep their source text (see :func:`_keep_scalars_verbatim`).
    """
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        if verbatim_under:
            _keep_scalars_verbatim(node, verbatim_under)
        return loader.construct_document(node)
    except RecursionError:
        raise YAMLLimitError("the document is nested too deeply") from None
    finally:
        loader.dispose()


def yaml_problem(error: yaml.YAMLError) -> tuple[str | None, str]:
    """(``line L, column C`` or None, what is wrong) for a YAML error, never quoting the file."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
    problem = getattr(error, "problem", None)
    return where, str(
        problem if problem is not None else (error if isinstance(error, YAMLLimitError) else "syntax error")
    )


def read_text_file(path: str | Path, what: str, max_bytes: int) -> str:
    """A file's text, refused (``InputError`` naming the file, never quoting it) when it is
    missing, larger than ``max_bytes`` (checked before reading), binary or not UTF-8."""
    source = str(path)
    try:
        size = Path(path).stat().st_size
        if not Path(path).is_file():
            raise InputError(f"the {what} is not a regular file", source)
        if size > max_bytes:
            raise InputError(f"the {what} file is {size:,} bytes; at most {max_bytes:,} are read", source)
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} file does not exist", source) from None
    except OSError as error:
        raise InputError(f"cannot read the {what} file: {error.strerror}", source) from None
    if len(data) > max_bytes:  # grew while we looked
        raise InputError(f"the {what} file is over {max_bytes:,} bytes", source)
    if b"\0" in data:
        raise InputError(f"the {what} file is binary (it contains NUL bytes), not YAML or JSON text", source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"the {what} file is not UTF-8 text (invalid byte at offset {error.start})", source) from None


def load_yaml_file(
    path: str | Path, what: str, max_bytes: int = MAX_CONFIG_BYTES, verbatim_under: frozenset[str] = frozenset()
) -> Any:
    """Read and parse a config file; ``InputError`` naming the file (and line) when it cannot be."""
    text = read_text_file(path, what, max_bytes)
    try:
        return parse_yaml(text, verbatim_under)
    except yaml.YAMLError as error:
        where, problem = yaml_problem(error)
        raise InputError(f"malformed YAML: {problem}", str(path), where) from None


# --------------------------------------------------------------------------- JSON Schema errors


@dataclass(frozen=True)
class Locator:
    """How a file names its items in errors: ``items`` is the top-level list (``stack_sets``),
    ``label`` what one item is called (``stack set``). With ``relative_keys`` the key is given
    inside the item (``regions``), else from the top (``products[1].name``); with
    ``section_as_where`` an error outside the items names its top-level section as ``where``."""

    items: str
    label: str
    relative_keys: bool = False
    section_as_where: bool = False

    def locate(self, document: Any, error_path: list, key_path: list) -> tuple[str | None, list]:
        """(where, key path) for an error at ``error_path`` about the key at ``key_path``."""
        if len(error_path) >= 2 and error_path[0] == self.items and isinstance(error_path[1], int):
            try:
                name = document[self.items][error_path[1]].get("name")
            except (AttributeError, IndexError, KeyError, TypeError):
                name = None
            label = f"{self.label} '{name}'" if isinstance(name, str) else f"{self.items}[{error_path[1]}]"
            return label, (key_path[2:] if self.relative_keys else key_path)
        return (str(error_path[0]) if self.section_as_where and error_path else None), key_path


def dotted(parts: list) -> str:
    """``["a", 0, "b"]`` -> ``a[0].b``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(str(name), sorted(map(str, known)), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


_TYPE_NAMES = {
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
}


def describe_schema_error(error: ValidationError) -> tuple[list, str]:
    """(key path, message saying what was expected) for one schema violation."""
    path, validator, schema = list(error.absolute_path), error.validator, error.schema
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hints = [f"'{name}'{did_you_mean(name, allowed)}" for name in unknown]
        message = f"unknown key {', '.join(hints)}; allowed keys here: {', '.join(allowed)}"
        return path + unknown[:1], message
    if validator == "required":
        missing = re.search(r"'([^']+)'", error.message)
        name = missing.group(1) if missing else "?"
        return path + [name], f"missing required key '{name}'"
    if validator == "enum":
        return path, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if validator == "type":
        expected = error.validator_value
        friendly = _TYPE_NAMES.get(expected, "") if isinstance(expected, str) else ""
        hint = f"; {schema['description']}" if schema.get("description") else ""
        shown = f"{expected} ({friendly}{hint})" if friendly else f"{expected}{hint and f' ({hint[2:]})'}"
        return path, f"expected {shown}, got {type(error.instance).__name__} {error.instance!r}"
    if validator in ("pattern", "format") or (
        schema.get("description") and validator in ("minProperties", "maxProperties", "const")
    ):
        return path, f"expected {schema.get('description') or error.message}, got {error.instance!r}"
    return path, error.message


# A misspelt key is reported as such, not as the required key it was meant to be.
_PRIORITY = {"additionalProperties": 0, "required": 1}


def check_schema(document: Any, validator, source: str, locator: Locator, custom: Callable | None = None) -> None:
    """Raise ``InputError`` for the first violation of ``validator``'s schema (all are counted).

    ``custom(error) -> (key path, message) | None`` may word an error of a file's own schema.
    """
    errors = sorted(
        validator.iter_errors(document),
        key=lambda e: (list(map(str, e.absolute_path)), _PRIORITY.get(e.validator, 2), e.message),
    )
    if not errors:
        return
    found = []
    for error in errors[:6]:
        key_path, message = (custom and custom(error)) or describe_schema_error(error)
        where, key_path = locator.locate(document, list(error.absolute_path), key_path)
        found.append((where, dotted(key_path) or None, message))
    where, key, message = found[0]
    if len(errors) > 1:
        others = "; ".join(f"{w or ''} {k or ''}: {m}".strip() for w, k, m in found[1:])
        message = f"{message} (and {len(errors) - 1} more: {others})"
    raise InputError(message, source, where, key)
