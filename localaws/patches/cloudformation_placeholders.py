"""CloudFormation: resources of types moto does not implement resolve as placeholders,
checked against the CloudFormation registry schemas cfn-lint ships.

moto 5.2.5 skips a resource whose type it does not implement (``AWS::SageMaker::Domain``,
``AWS::SageMaker::UserProfile``...), with a warning; but a ``Ref`` to it then yields nothing
and an ``Fn::GetAtt`` fails the whole stack ("references undefined resource"), as does an
output reading one of its attributes. AWS creates such resources, so a template that uses,
say, a Studio domain's ``DomainId`` in a role policy and an output cannot be rehearsed
locally at all.

Here such a resource becomes a placeholder: it has a physical id (CloudFormation's
generated name), every attribute the type's schema declares resolves to a stable
synthesized value (an ARN-shaped string for ``*Arn`` attributes, the physical id
otherwise), it is listed among the stack's resources, and update and delete succeed.
Nothing is emulated behind it: the emulator's service APIs know nothing of a placeholder
domain. Before anything is created, every template (CreateStack, UpdateStack,
CreateChangeSet, stack set instances) is checked as AWS checks it: each resource type must
exist in the region's registry, and each ``Fn::GetAtt`` (also ``${Resource.Attribute}`` in
``Fn::Sub``) must name an attribute the type declares; every resource's properties may use
only keys its schema declares, and plain strings within its enums (``check_properties``); a
placeholder's required properties must be present. The registry schemas are the ones
cfn-lint ships (``cfnlint.schema``).

A resource failure (missing required property, and the failures of the typed resources of
``s3_bucket_policies.py`` and ``sagemaker.py``) surfaces as the CreateStack / UpdateStack
ValidationError carrying AWS's status reason, and fails a stack set instance; AWS instead
accepts the call and reports CREATE_FAILED on the resource (README, local AWS table).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError
from moto.cloudformation import models, parsing
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel

_original_resource_class_from_type = parsing.resource_class_from_type
_original_stack_parse = models.Stack._parse_template
_original_change_set_parse = models.ChangeSet._parse_template

_FALLBACK_REGION = "us-east-1"  # regions cfn-lint ships no schemas for are checked as us-east-1
# Types any attribute of which may be read: a custom resource returns what its provider sends.
_FREE_FORM_TYPES = ("Custom::", "AWS::CloudFormation::CustomResource")
_SUB_REFERENCE = re.compile(r"\$\{([^!}][^}]*)\}")


@cache
def resource_schema(region: str, resource_type: str) -> dict | None:
    """The registry schema of ``resource_type`` in ``region`` (None: no such type there)."""
    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        return None
    except KeyError:  # cfn-lint ships no schemas for this region: use the reference region
        if region == _FALLBACK_REGION:
            return None
        return resource_schema(_FALLBACK_REGION, resource_type)


@cache
def _getatts(region: str, resource_type: str):
    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).get_atts
    except ResourceNotFoundError:
        return None
    except KeyError:  # as in resource_schema
        return None if region == _FALLBACK_REGION else _getatts(_FALLBACK_REGION, resource_type)


def declares_attribute(region: str, resource_type: str, attribute: str) -> bool:
    """Whether ``Fn::GetAtt`` of ``attribute`` is valid for the type (cfn-lint's reading of
    the schema: its ``readOnlyProperties`` and the properties CloudFormation returns)."""
    if resource_type.startswith(_FREE_FORM_TYPES):
        return True
    getatts = _getatts(region, resource_type)
    return getatts is not None and getatts.get(attribute) is not None


def resource_failed(logical_id: str, service: str, message: str, status: int = 400, code: str = "InvalidRequest"):
    """Fail the resource being created or updated with AWS's status reason for a handler error."""
    raise ValidationError(
        message=(
            f"Resource {logical_id} failed: Resource handler returned message: "
            f'"{message} (Service: {service}, Status Code: {status})" (HandlerErrorCode: {code})'
        )
    )


def check_required(region: str, resource_type: str, logical_id: str, properties: dict) -> None:
    """Fail the resource when a property the schema lists as ``required`` is absent.

    AWS: the resource reference marks these "Required: Yes", and CloudFormation validates the
    properties against the registry schema before the handler runs; its status reason is
    "Properties validation failed for resource <id> with message: #: required key [<name>] not found".
    """
    schema = resource_schema(region, resource_type) or {}
    missing = [name for name in schema.get("required", []) if properties.get(name) is None]
    if not missing:
        return
    violations = [f"#: required key [{name}] not found" for name in missing]
    if len(violations) > 1:
        violations.insert(0, f"#: #: {len(violations)} schema violations found")
    raise ValidationError(
        message=f"Properties validation failed for resource {logical_id} with message: {' '.join(violations)}"
    )


def _undeclared_attribute(logical_id: str, attribute: str) -> ValidationError:
    return ValidationError(
        message=f"Template error: resource {logical_id} does not support attribute type {attribute} in Fn::GetAtt"
    )


def _getatt_references(node: Any):
    """Every (logical id, attribute) that ``node`` reads with Fn::GetAtt or Fn::Sub."""
    if isinstance(node, list):
        for item in node:
            yield from _getatt_references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                if isinstance(parts, list) and len(parts) >= 2 and all(isinstance(p, str) for p in parts):
                    yield parts[0], ".".join(parts[1:])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    for name in _SUB_REFERENCE.findall(text):
                        if "." in name:
                            yield tuple(name.split(".", 1))
            yield from _getatt_references(value)


def _intrinsic(value: dict) -> bool:
    key = next(iter(value), "")
    return len(value) == 1 and (key in ("Ref", "Condition") or key.startswith("Fn::"))


def _resolve(schema: dict, root: dict) -> dict:
    reference = schema.get("$ref")
    while isinstance(reference, str) and reference.startswith("#/definitions/"):
        schema = (root.get("definitions") or {}).get(reference.rsplit("/", 1)[-1]) or {}
        reference = schema.get("$ref")
    return schema


def _property_violations(schema: dict, value: Any, path: str, root: dict):
    """(path, kind, detail) for each key a closed object does not declare and each string
    outside a string enum, walking plain values only (intrinsic functions are not resolved yet)."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        properties = schema.get("properties")
        if not value or _intrinsic(value) or not isinstance(properties, dict):
            return
        if schema.get("additionalProperties") is False and not schema.get("patternProperties"):
            for key in value:
                if key not in properties:
                    yield path, "extraneous", key
        for key, item in value.items():
            if key in properties:
                yield from _property_violations(properties[key], item, f"{path}/{key}", root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _property_violations(schema["items"], item, f"{path}/{index}", root)
    elif isinstance(value, str) and isinstance(schema.get("enum"), list):
        if all(isinstance(option, str) for option in schema["enum"]) and value not in schema["enum"]:
            yield path, "enum", value


def check_properties(region: str, resource_type: str, logical_id: str, properties: Any) -> None:
    """Refuse properties the type's schema does not declare and strings outside its enums.

    AWS validates a resource's properties against its registry schema before the handler
    runs ("Properties validation failed for resource <id> with message: ..."), with the JSON
    schema validator's messages: "#: extraneous key [<key>] is not permitted" for an
    undeclared key (every registry schema closes its objects with additionalProperties
    false). Types without registry handlers (older, non-registry providers) answer
    "Encountered unsupported property <key>" instead (CloudFormation troubleshooting guide).
    The enum message is ours (AWS documents none). Only plain values are checked: a value
    given by an intrinsic function is not resolved here (types and patterns are left to
    cfn-lint on the rendered templates).
    """
    schema = resource_schema(region, resource_type)
    if schema is None or resource_type.startswith(_FREE_FORM_TYPES) or not isinstance(properties, dict):
        return
    violations = list(_property_violations(schema, properties, "#", schema))
    if not violations:
        return
    if "handlers" not in schema:
        unsupported = next((key for _, kind, key in violations if kind == "extraneous"), None)
        if unsupported is not None:
            raise ValidationError(message=f"Encountered unsupported property {unsupported}")
    messages = [
        f"{path}: extraneous key [{detail}] is not permitted"
        if kind == "extraneous"
        else f"{path}: failed validation constraint for keyword [enum]"
        for path, kind, detail in violations
    ]
    if len(messages) > 1:
        messages.insert(0, f"#: {len(messages)} schema violations found")
    raise ValidationError(
        message=f"Properties validation failed for resource {logical_id} with message: {' '.join(messages)}"
    )


def validate_template(template: dict, region: str) -> None:
    """Refuse a template as CloudFormation does before creating anything."""
    resources = (template or {}).get("Resources") or {}
    types = {logical_id: (resource or {}).get("Type", "") for logical_id, resource in resources.items()}
    # AWS Knowledge Center, "resolve CloudFormation template validation or template format
    # errors": "Unrecognized resource types: [XXXXXXXX]" is answered when the type is not
    # available ("Verify the availability of your resource type" in the region).
    unknown = sorted(
        {t for t in types.values() if not t.startswith(_FREE_FORM_TYPES) and resource_schema(region, t) is None}
    )
    if unknown:
        raise ValidationError(message=f"Template format error: Unrecognized resource types: [{','.join(unknown)}]")
    # Fn::GetAtt, attributeName: "The name of the resource-specific attribute whose value you
    # want. See the resource's reference page for details about the attributes available for
    # that resource type." Only those (the schema's read-only properties) resolve.
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and "Properties" in resource:
            check_properties(region, types[logical_id], logical_id, resource["Properties"])
    sections = [template.get("Resources"), template.get("Outputs")]
    for logical_id, attribute in _getatt_references(sections):
        resource_type = types.get(logical_id)
        if resource_type is not None and not declares_attribute(region, resource_type, attribute):
            raise _undeclared_attribute(logical_id, attribute)


def _stack_region(stack) -> str:
    # Stack.__init__ parses its template before it sets region_name; its id carries the region
    return getattr(stack, "region_name", None) or stack.stack_id.split(":")[3]


def _stack_parse_template(self) -> None:
    _original_stack_parse(self)
    validate_template(self.template_dict, _stack_region(self))


def _change_set_parse_template(self) -> None:
    _original_change_set_parse(self)
    validate_template(self.template_dict, _stack_region(self.stack))


class PlaceholderResource(CloudFormationModel):
    """A resource of a type moto lacks: a name and synthesized attributes, nothing more."""

    def __init__(self, resource_type: str, physical_id: str, properties: dict, account_id: str, region_name: str):
        self.resource_type = resource_type
        self.physical_id = physical_id
        self.properties = properties
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Local::Placeholder"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # checked per type, against its schema, by validate_template

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if not declares_attribute(self.region_name, self.resource_type, attribute_name):
            raise _undeclared_attribute(getattr(self, "logical_resource_id", self.physical_id), attribute_name)
        if attribute_name.endswith("Arn"):
            service, kind = self.resource_type.split("::")[1:3]
            return f"arn:aws:{service.lower()}:{self.region_name}:{self.account_id}:{kind.lower()}/{self.physical_id}"
        return self.physical_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> PlaceholderResource:
        resource_type = kwargs.get("ResourceType", "AWS::Unknown::Resource")
        properties = cloudformation_json.get("Properties") or {}
        check_required(region_name, resource_type, kwargs.get("LogicalId", resource_name), properties)
        return cls(resource_type, resource_name, properties, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> PlaceholderResource:
        properties = cloudformation_json.get("Properties") or {}
        logical_id = getattr(original_resource, "logical_resource_id", new_resource_name)
        check_required(region_name, original_resource.resource_type, logical_id, properties)
        original_resource.properties = properties
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        return None

    def delete(self, account_id: str, region_name: str) -> None:
        return None


def _resource_class_from_type(resource_type: str):
    resource_class = _original_resource_class_from_type(resource_type)
    if resource_class is None and resource_type.startswith("AWS::") and resource_type not in parsing.NULL_MODELS:
        return PlaceholderResource
    return resource_class


def apply() -> None:
    """Resolve unimplemented AWS:: types to :class:`PlaceholderResource` and check every
    template against the registry schemas (idempotent)."""
    parsing.resource_class_from_type = _resource_class_from_type
    models.Stack._parse_template = _stack_parse_template
    models.ChangeSet._parse_template = _change_set_parse_template
