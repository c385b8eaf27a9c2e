"""The registry of templates: output name -> pure builder returning a troposphere Template.

Add a template by adding one line to ``_BUILDERS``; every role it creates gets the product's
permissions boundary (:func:`generator.boundary.with_boundary`); ``python -m generator`` emits
``templates/<name>.yaml`` for every entry, in this order.
"""

from __future__ import annotations

from collections.abc import Callable

from troposphere import Template

from generator import (
    boundary,
    cross_account,
    environment,
    mlops_project,
    model_build_project,
    model_deploy,
    target_network,
)
from generator.boundary import with_boundary

Builder = Callable[[], Template]

_BUILDERS: dict[str, Builder] = {
    "permissions-boundary": boundary.build_permissions_boundary_template,
    "stackset-administration-role": cross_account.build_stackset_administration_role_template,
    "stackset-execution-role": cross_account.build_stackset_execution_role_template,
    "servicecatalog-launch-role": cross_account.build_servicecatalog_launch_role_template,
    "target-account-roles": cross_account.build_target_account_roles_template,
    "endpoint-invoke-role": cross_account.build_endpoint_invoke_role_template,
    "endpoint-consumer-policy": cross_account.build_endpoint_consumer_policy_template,
    "model-deploy": model_deploy.build_model_deploy_template,
    "mlops-multi-account-project": mlops_project.build_mlops_multi_account_project_template,
    "mlops-model-build-project": model_build_project.build_mlops_model_build_project_template,
    "environment": environment.build_environment_template,
    "target-network": target_network.build_target_network_template,
}

# Every role of every template carries the product's permissions boundary.
TEMPLATES: dict[str, Builder] = {name: with_boundary(builder) for name, builder in _BUILDERS.items()}
