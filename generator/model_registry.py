"""The model registry shared with the target accounts (SageMaker guide, cross-account deployment).

A model package group whose resource policy lets the target accounts describe and list
its model packages and create models from them, and an ECR repository of inference images
they may pull. Both admit the listed target accounts, or the whole organization through
``aws:PrincipalOrgID`` when an organization id is given; with neither, no policy at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import ecr, sagemaker
from awacs.aws import PolicyDocument
from troposphere import GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, Repository
from troposphere.sagemaker import ModelPackageGroup

from generator.model_readers import SHARE_MODELS, ModelReaders
from generator.parameters import Environment
from generator.policies import VERSION

PULL_ACTIONS = (ecr.BatchGetImage, ecr.GetDownloadUrlForLayer, ecr.BatchCheckLayerAvailability)
REGISTRY_READ_ACTIONS = (
    sagemaker.DescribeModelPackageGroup,
    sagemaker.DescribeModelPackage,
    sagemaker.ListModelPackages,
    sagemaker.CreateModel,
)


@dataclass(frozen=True)
class Registry:
    group: ModelPackageGroup
    repository: Repository


def group_name() -> Sub:
    """Lower case, as it appears in ARNs (ModelPackageGroupName of target-account-roles)."""
    return Sub("${EnvName}-${EnvType}-models")


def _group_policy(readers: ModelReaders) -> PolicyDocument:
    group = Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package-group/${EnvName}-${EnvType}-models"
    )
    packages = Sub(
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/${EnvName}-${EnvType}-models/*"
    )
    return PolicyDocument(
        Version=VERSION,
        Statement=readers.statements("ShareModelPackages", REGISTRY_READ_ACTIONS, [group, packages], roles_only=False),
    )


def _repository_policy(readers: ModelReaders) -> PolicyDocument:
    # A repository policy names no resource: it applies to its repository.
    statements = readers.statements("PullModelImages", PULL_ACTIONS, None, roles_only=False)
    return PolicyDocument(Version=VERSION, Statement=statements)


def add_model_registry(template: Template, env: Environment, readers: ModelReaders, models_key) -> Registry:
    """Model package group and ECR repository, each with its cross-account policy under ``ShareModels``."""
    group = template.add_resource(
        ModelPackageGroup(
            "ModelPackageGroup",
            ModelPackageGroupName=group_name(),
            ModelPackageGroupDescription=Sub(
                "Models of ${EnvName}, deployed to staging and production from this registry"
            ),
            ModelPackageGroupPolicy=If(SHARE_MODELS, _group_policy(readers), NoValue),
            Tags=env.tags(),
        )
    )
    repository = template.add_resource(
        Repository(
            "ModelImageRepository",
            RepositoryName=Sub("${EnvName}-${EnvType}-model-images"),
            ImageTagMutability="IMMUTABLE",
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS", KmsKey=GetAtt(models_key, "Arn")),
            RepositoryPolicyText=If(SHARE_MODELS, _repository_policy(readers), NoValue),
            Tags=env.tags(),
        )
    )
    return Registry(group=group, repository=repository)


def repository_name(registry: Registry) -> Ref:
    return Ref(registry.repository)
