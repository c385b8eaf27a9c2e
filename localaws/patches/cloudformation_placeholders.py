"""CloudFormation: resources of types moto does not implement resolve as placeholders.

moto 5.2.5 skips a resource whose type it does not implement (``AWS::SageMaker::Domain``,
``AWS::SageMaker::ModelPackageGroup``, ``AWS::S3::BucketPolicy``...), with a warning; but a
``Ref`` to it then yields nothing and an ``Fn::GetAtt`` fails the whole stack ("references
undefined resource"), as does an output reading one of its attributes. AWS creates such
resources, so a template that uses, say, a Studio domain's ``DomainId`` in a role policy
and an output cannot be rehearsed locally at all.

Here such a resource becomes a placeholder: it has a physical id (CloudFormation's
generated name), every attribute resolves to a stable synthesized value (an ARN-shaped
string for ``*Arn`` attributes, the physical id otherwise), it is listed among the stack's
resources, and update and delete succeed. Nothing is emulated behind it: the emulator's
service APIs still know nothing of a placeholder domain or bucket policy.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

_original_resource_class_from_type = parsing.resource_class_from_type


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
        return True

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name.endswith("Arn"):
            service, kind = self.resource_type.split("::")[1:3]
            return f"arn:aws:{service.lower()}:{self.region_name}:{self.account_id}:{kind.lower()}/{self.physical_id}"
        return self.physical_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> PlaceholderResource:
        resource_type = kwargs.get("ResourceType", "AWS::Unknown::Resource")
        return cls(resource_type, resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> PlaceholderResource:
        original_resource.properties = cloudformation_json.get("Properties", {})
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
    """Resolve unimplemented AWS:: types to :class:`PlaceholderResource` (idempotent)."""
    parsing.resource_class_from_type = _resource_class_from_type
