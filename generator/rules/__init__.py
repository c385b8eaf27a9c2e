"""Custom cfn-lint rules: the product's security invariants (E9101-E9901).

A package, loaded as a module: ``cfn-lint --append-rules generator.rules`` (an argument
that is not a directory is imported with ``importlib.import_module``, and every
``CloudFormationLintRule`` subclass in the module's namespace becomes a rule), so every rule
class is imported here. The generator's own lint gate (``generator.lint``) appends the
same module name. The ``generator`` package must be importable: installed (``pip install
-e .``) or on ``PYTHONPATH``.

The rule modules share the template and policy analysis of ``generator.policy_analysis``,
which imports no cfn-lint, so that ``generator.policy_lint`` can use it without cfn-lint.
"""

from generator.rules.checkov_skips import LinterSkipJustified
from generator.rules.ec2_security_groups import NoIngressFromInternet
from generator.rules.iam_policies import CrossAccountTrustPinned, NoWildcardGrants, PassRoleNeverOnEveryRole
from generator.rules.kms_keys import KeyPolicyFullControlOnlyForRoot, KeyRotationEnabled
from generator.rules.s3_buckets import (
    BucketBlocksPublicAccess,
    BucketDeniesInsecureTransport,
    BucketEncryptedWithCustomerKey,
    BucketVersioned,
    EnvironmentBucketDeniesOutsideVpcEndpoint,
)
from generator.rules.sagemaker_resources import (
    ComputeInVpc,
    DomainVpcOnlyWithKey,
    EndpointConfigEncrypted,
    NotebookInstanceLockedDown,
    RuntimeComputeGuardedToVpc,
)

__all__ = [
    "BucketBlocksPublicAccess",
    "BucketDeniesInsecureTransport",
    "BucketEncryptedWithCustomerKey",
    "BucketVersioned",
    "ComputeInVpc",
    "CrossAccountTrustPinned",
    "DomainVpcOnlyWithKey",
    "EndpointConfigEncrypted",
    "EnvironmentBucketDeniesOutsideVpcEndpoint",
    "KeyPolicyFullControlOnlyForRoot",
    "KeyRotationEnabled",
    "LinterSkipJustified",
    "NoIngressFromInternet",
    "NoWildcardGrants",
    "NotebookInstanceLockedDown",
    "PassRoleNeverOnEveryRole",
    "RuntimeComputeGuardedToVpc",
]
