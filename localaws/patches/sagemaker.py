"""SageMaker: model package group resource policies, InvokeEndpoint on a missing endpoint,
and the physical names CloudFormation gives SageMaker resources.

moto 5.2.5 answers Get/Put/DeleteModelPackageGroupPolicy with HTTP 500, and InvokeEndpoint
with a canned body even when the endpoint does not exist. Here the policies are stored per
group, with AWS's ValidationException messages ("Cannot find Model Package Group: <arn>",
"Cannot find resource policy for: <arn>"), and InvokeEndpoint answers AWS's
ValidationError for an endpoint that does not exist in the caller's account and region,
or is not serving. A found endpoint still answers moto's canned (or queued) result:
there is no model behind it. CloudFormation's AWS::SageMaker::Model, EndpointConfig and
Endpoint honour their ModelName / EndpointConfigName / EndpointName properties (moto
5.2.5 always generates a name), so the ARNs an endpoint-invoke role names match; and
AWS::SageMaker::ModelPackageGroup creates a real group with its ModelPackageGroupPolicy
(moto has no CloudFormation support for it), so the registry the environment template
creates is there for ``share-model-group``.

A model package group policy, through the API or CloudFormation, must be at most 20,480
characters and an IAM resource policy (``_policy_documents.py``): ValidationException
"Invalid policy provided: <reason>" otherwise. What SageMaker refuses beyond the size is
not documented: the grammar checked is IAM's, stricter than AWS may be (Version required,
resources named); principals are checked in form only, not that the accounts exist.
"""

from __future__ import annotations

import json
import urllib.parse

from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker import responses as sagemaker_responses
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime import responses as runtime_responses

from localaws.patches._policy_documents import policy_problem, without_no_value
from localaws.patches.cloudformation_placeholders import check_required, resource_failed

# PutModelPackageGroupPolicyInput.ResourcePolicy (PolicyString): "min": 1, "max": 20480.
_MAX_POLICY_CHARACTERS = 20480


class EndpointValidationError(ServiceException):
    code = "ValidationError"  # sagemaker-runtime's error shape, as AWS answers it


def _group(backend, name: str):
    group = backend.model_package_groups.get(name)
    if group is None:
        arn = (
            f"arn:{backend.partition}:sagemaker:{backend.region_name}:{backend.account_id}"
            f":model-package-group/{name.lower()}"
        )
        raise ValidationError(message=f"Cannot find Model Package Group: {arn}")
    return group


def _policies(backend) -> dict[str, str]:
    return backend.__dict__.setdefault("model_package_group_policies", {})


def policy_refusal(policy: str) -> str | None:
    """SageMaker's ValidationException message for a ResourcePolicy it refuses, or None."""
    # The API's constraint on ResourcePolicy (PolicyString, max 20480), in the message AWS's
    # request validation gives a too-long member.
    if not policy or len(policy) > _MAX_POLICY_CHARACTERS:
        return (
            f"1 validation error detected: Value at 'resourcePolicy' failed to satisfy constraint: "
            f"Member must have length {'less than or equal to 20480' if policy else 'greater than or equal to 1'}"
        )
    # SageMaker answers "Invalid policy provided: <reason>" (e.g. "Duplicate principal") for
    # a document it refuses; the reasons are IAM's grammar (_policy_documents.py).
    try:
        document = json.loads(policy)
    except ValueError:
        return "Invalid policy provided: The policy is not valid JSON"
    problem = policy_problem(document, resource_policy=True)
    return None if problem is None else f"Invalid policy provided: {problem}"


def put_model_package_group_policy(self) -> ActionResult:
    name, policy = self._get_param("ModelPackageGroupName"), self._get_param("ResourcePolicy")
    group = _group(self.sagemaker_backend, name)
    if refusal := policy_refusal(policy):
        raise ValidationError(message=refusal)
    _policies(self.sagemaker_backend)[name] = policy
    return ActionResult({"ModelPackageGroupArn": group.arn})


def get_model_package_group_policy(self) -> ActionResult:
    name = self._get_param("ModelPackageGroupName")
    group = _group(self.sagemaker_backend, name)
    policy = _policies(self.sagemaker_backend).get(name)
    if policy is None:
        raise ValidationError(message=f"Cannot find resource policy for: {group.arn}")
    return ActionResult({"ResourcePolicy": policy})


def delete_model_package_group_policy(self) -> EmptyResult:
    name = self._get_param("ModelPackageGroupName")
    group = _group(self.sagemaker_backend, name)
    if _policies(self.sagemaker_backend).pop(name, None) is None:
        raise ValidationError(message=f"Cannot find resource policy for: {group.arn}")
    return EmptyResult()


_original_invoke = runtime_responses.SageMakerRuntimeResponse.invoke_endpoint
# An endpoint serves while InService or being updated; not while in these states.
_NOT_SERVING = {"Creating", "Failed", "OutOfService", "Deleting"}


def _endpoint_name(response) -> str | None:
    # POST /endpoints/{EndpointName}/invocations; moto's own params lack the URI member
    parts = urllib.parse.urlparse(response.path).path.split("/")
    return (
        urllib.parse.unquote(parts[2])
        if len(parts) > 3 and parts[1] == "endpoints"
        else response._get_params().get("EndpointName")
    )


def invoke_endpoint(self):
    name = _endpoint_name(self)
    endpoint = sagemaker_backends[self.current_account][self.region].endpoints.get(name)
    if endpoint is None:
        raise EndpointValidationError(f"Endpoint {name} of account {self.current_account} not found.")
    status = getattr(endpoint, "endpoint_status", "InService")
    if status in _NOT_SERVING:
        raise EndpointValidationError(
            f"Endpoint {name} of account {self.current_account} is not in service (status {status})."
        )
    return _original_invoke(self)


class ModelPackageGroupResource(CloudFormationModel):
    """AWS::SageMaker::ModelPackageGroup: a group in the SageMaker backend; Ref and
    Fn::GetAtt ModelPackageGroupArn give its ARN, as in AWS."""

    def __init__(self, backend, name: str):
        self.backend, self.name = backend, name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::ModelPackageGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ModelPackageGroupName"

    @property
    def arn(self) -> str:
        return self.backend.model_package_groups[self.name].arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ModelPackageGroupArn", "ModelPackageGroupStatus", "CreationTime")

    def get_cfn_attribute(self, attribute_name: str):
        group = self.backend.model_package_groups[self.name]
        return {
            "ModelPackageGroupArn": group.arn,
            "ModelPackageGroupStatus": "Completed",
            "CreationTime": str(group.creation_time),
        }[attribute_name]

    @staticmethod
    def _check_properties(logical_id: str, region_name: str, properties: dict) -> str | None:
        """The group's policy as stored, after the checks PutModelPackageGroupPolicy makes."""
        check_required(region_name, ModelPackageGroupResource.cloudformation_type(), logical_id, properties)
        policy = properties.get("ModelPackageGroupPolicy")
        if policy is None:
            return None
        policy = policy if isinstance(policy, str) else json.dumps(without_no_value(policy))
        if refusal := policy_refusal(policy):
            resource_failed(logical_id, "SageMaker", refusal, code="InvalidRequest")
        return policy

    @staticmethod
    def _apply_properties(backend, name: str, properties: dict, policy: str | None) -> None:
        group = backend.model_package_groups[name]
        group.model_package_group_description = properties.get("ModelPackageGroupDescription")
        if policy:
            _policies(backend)[name] = policy
        else:
            _policies(backend).pop(name, None)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[misc]
        backend = sagemaker_backends[account_id][region_name]
        properties = cloudformation_json.get("Properties", {})
        policy = cls._check_properties(kwargs.get("LogicalId", resource_name), region_name, properties)
        if resource_name in backend.model_package_groups:
            raise ValidationError(
                message=f"Model Package Group already exists: {backend.model_package_groups[resource_name].arn}"
            )
        backend.create_model_package_group(
            resource_name, properties.get("ModelPackageGroupDescription"), properties.get("Tags")
        )
        cls._apply_properties(backend, resource_name, properties, policy)
        return cls(backend, resource_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):  # type: ignore[misc]
        properties = cloudformation_json.get("Properties", {})
        logical_id = getattr(original_resource, "logical_resource_id", original_resource.name)
        policy = cls._check_properties(logical_id, region_name, properties)
        cls._apply_properties(original_resource.backend, original_resource.name, properties, policy)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):  # type: ignore[misc]
        backend = sagemaker_backends[account_id][region_name]
        name = resource_name.rsplit("/", 1)[-1]
        backend.model_package_groups.pop(name, None)
        _policies(backend).pop(name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        self.backend.model_package_groups.pop(self.name, None)
        _policies(self.backend).pop(self.name, None)


_NAME_PROPERTIES = {"FakeEndpoint": "EndpointName", "FakeEndpointConfig": "EndpointConfigName", "Model": "ModelName"}


def apply() -> None:
    """Install the handlers above on moto's SageMaker responses (idempotent)."""
    from moto.cloudformation import parsing
    from moto.sagemaker import models

    for class_name, name_property in _NAME_PROPERTIES.items():
        getattr(models, class_name).cloudformation_name_type = staticmethod(
            lambda name_property=name_property: name_property
        )
    # ModelPackageGroupResource registered itself as a CloudFormationModel subclass; moto
    # caches its type maps, so make them see it.
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    cls = sagemaker_responses.SageMakerResponse
    cls.put_model_package_group_policy = put_model_package_group_policy
    cls.get_model_package_group_policy = get_model_package_group_policy
    cls.delete_model_package_group_policy = delete_model_package_group_policy
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
