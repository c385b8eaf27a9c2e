"""Property helpers over rendered template dicts (``Template.to_dict()``), for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

# The interface endpoints every SageMaker workload in a private subnet needs, in either kind of account.
WORKLOAD_ENDPOINT_SERVICES = frozenset({"sts", "logs", "monitoring", "kms", "ecr.api", "ecr.dkr"})

# Where each resource type keeps its policy documents (property paths).
POLICY_PATHS = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies[].PolicyDocument"),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::Group": ("Policies[].PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::EC2::VPCEndpoint": ("PolicyDocument",),
    "AWS::ECR::Repository": ("RepositoryPolicyText",),
    "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupPolicy",),
}


def resources(template: dict, type_: str) -> dict[str, dict]:
    """Logical id -> resource of ``type_``."""
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == type_}


def _follow(value, path: str):
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        for item in value.get(head[:-2], []) or []:
            yield from (_follow(item, rest) if rest else [item])
    elif head in value:
        yield from (_follow(value[head], rest) if rest else [value[head]])


def policy_documents(template: dict) -> Iterator[tuple[str, str, dict]]:
    """(logical id, property path, document) for every policy document in the template."""
    for logical_id, resource in template.get("Resources", {}).items():
        for path in POLICY_PATHS.get(resource["Type"], ()):
            for document in _follow(resource.get("Properties", {}), path):
                if isinstance(document, dict) and "Statement" in document:
                    yield logical_id, path, document


def statements(template: dict) -> Iterator[tuple[str, str, dict]]:
    """(logical id, property path, statement) for every policy statement."""
    for logical_id, path, document in policy_documents(template):
        for statement in document["Statement"]:
            yield logical_id, path, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def template_fixtures(build: Callable[[], object]):
    """Module-scoped ``template`` (what ``build()`` returns) and ``rendered`` (its dict) fixtures:
    ``template, rendered = template_fixtures(build_x_template)`` in a test module."""

    @pytest.fixture(scope="module")
    def template():
        return build()

    @pytest.fixture(scope="module")
    def rendered(template):
        return template.to_dict()

    return template, rendered
