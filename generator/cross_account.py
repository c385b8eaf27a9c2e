"""Cross-account role templates: StackSet administration/execution, target-account model
roles, and the endpoint-invoke role with its consumer-side policy.

Every role here is a named global resource that another account must know in advance, so
each multi-region-deployable template gates its roles on ``PrimaryRegion``.
"""

from __future__ import annotations

from awacs import (
    cloudformation,
    cloudwatch,
    ec2,
    ecr,
    kms,
    logs,
    s3,
    sagemaker,
    ssm,
    sts,
)
from awacs.aws import Condition, ForAnyValueStringEquals, StringEquals, StringLike
from troposphere import Equals, Export, GetAtt, If, Not, Output, Parameter, Ref, Sub, Template
from troposphere.iam import Group, ManagedPolicy, Policy, Role

from generator import deploy_rights
from generator.identity import VPC_ACTIONS, pull_aws_owned_images
from generator.parameters import (
    Environment,
    PrimaryRegion,
    add_account_id,
    add_environment,
    add_organization_id,
    add_primary_region,
    iam_role_arn,
    partition_arn,
)
from generator.policies import allow, cross_account_trust, deny_without_vpc, document, service_trust, when

DEFAULT_ADMINISTRATION_ROLE = "AWSCloudFormationStackSetAdministrationRole"
DEFAULT_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"


def _actions(module, names):
    """awacs actions for ``names``; awacs rejects a misspelt name at build time."""
    return [getattr(module, name) for name in names]


def _account_resources(service: str) -> Sub:
    """Every resource of ``service`` in this account, any region (S3 ARNs carry no account)."""
    if service == "s3":
        return partition_arn("s3", "*", region="", account="")
    return partition_arn(service, "*", region="*")


def _role_name_parameter(template: Template, title: str, default: str, description: str) -> Parameter:
    return template.add_parameter(
        Parameter(
            title,
            Type="String",
            Default=default,
            Description=description,
            AllowedPattern=r"^[\w+=,.@-]{1,64}$",
            ConstraintDescription="an IAM role name (1-64 characters: letters, digits and +=,.@_-)",
        )
    )


# --- 1. StackSet administration and execution roles ---------------------------------------


def build_stackset_administration_role_template() -> Template:
    """The management (or delegated admin) account's StackSet administration role."""
    template = Template(
        Description=(
            "StackSet administration role of the management account: "
            "may assume only the execution role in target accounts"
        )
    )
    admin_name = _role_name_parameter(
        template, "AdministrationRoleName", DEFAULT_ADMINISTRATION_ROLE, "Name of this administration role"
    )
    # Referenced by name inside the Fn::Sub of the AssumeRole resource below.
    _role_name_parameter(
        template, "ExecutionRoleName", DEFAULT_EXECUTION_ROLE, "Name of the execution role in every target account"
    )
    role = template.add_resource(
        Role(
            "StackSetAdministrationRole",
            RoleName=Ref(admin_name),
            Description="Assumed by CloudFormation StackSets to reach the target accounts' execution role",
            AssumeRolePolicyDocument=service_trust(
                "cloudformation.amazonaws.com", source_account=Ref("AWS::AccountId")
            ),
            Policies=[
                Policy(
                    PolicyName="AssumeStackSetExecutionRole",
                    PolicyDocument=document(
                        allow("AssumeExecutionRoleOnly", [sts.AssumeRole], [iam_role_arn("*", "${ExecutionRoleName}")]),
                    ),
                )
            ],
        )
    )
    template.add_output(
        Output("AdministrationRoleArn", Description="ARN to give self-managed stack sets", Value=GetAtt(role, "Arn"))
    )
    return template


def _parliament_skip(check: str, comment: str) -> dict:
    """Resource Metadata accepting one parliament finding, with its written justification."""
    return {"parliament": {"skip": [{"id": check, "comment": comment}]}}


def _add_primary_role(
    template: Template,
    primary: PrimaryRegion,
    env: Environment,
    title: str,
    name: str,
    description: str,
    trust,
    policy_name: str,
    statements,
    **extra,
) -> Role:
    """A named role made only in the primary region, with one inline policy of ``statements``.

    ``extra``: ``Metadata`` or more Role properties (such as ``MaxSessionDuration``), which come
    after the description.
    """
    return template.add_resource(
        Role(
            title,
            Condition=primary.condition,
            RoleName=Sub(name),
            Description=description,
            **extra,
            AssumeRolePolicyDocument=trust,
            Policies=[Policy(PolicyName=policy_name, PolicyDocument=document(*statements))],
            Tags=env.tags(),
        )
    )


def _add_pass_role_prefix(template: Template) -> Parameter:
    return template.add_parameter(
        Parameter(
            "PassRoleNamePrefix",
            Type="String",
            Default="mlops-",
            Description=(
                "Name prefix of the named roles the product's stacks "
                "create and pass to services (the EnvName followed by -)"
            ),
            AllowedPattern=r"^[\w+=,.@-]{1,32}$",
            ConstraintDescription="1-32 characters of an IAM role name",
        )
    )


def _provisioning_statements(stack_pattern: str) -> list:
    """What a role that creates the product's stacks needs besides its generated rights:
    the stacks matching ``stack_pattern`` (nested or called by name), and the preventive
    denies on SageMaker compute outside a VPC."""
    return [
        allow(
            "ManageProductStacks",
            [
                cloudformation.CreateStack,
                cloudformation.UpdateStack,
                cloudformation.DeleteStack,
                cloudformation.DescribeStackEvents,
                cloudformation.DescribeStacks,
            ],
            [partition_arn("cloudformation", f"stack/{stack_pattern}", region="*")],
        ),
        *deny_without_vpc(VPC_ACTIONS),
    ]


def _add_deploying_role(
    template: Template,
    title: str,
    role_kind: str,
    names: deploy_rights.Names,
    statements: list,
    condition: str,
    **properties,
) -> Role:
    """A deploying role (``properties``: its name, description, trust...) carrying its managed
    policies: its rights generated from the registry schemas, then ``statements``."""
    generated = deploy_rights.deploying_rights(role_kind, names)
    policies = deploy_rights.add_rights_policies(template, f"{title}Rights", generated + statements, condition)
    return template.add_resource(
        Role(title, Condition=condition, ManagedPolicyArns=[Ref(p) for p in policies], **properties)
    )


def build_stackset_execution_role_template() -> Template:
    """The target accounts' StackSet execution role, trusting only the administration role."""
    template = Template(
        Description=(
            "StackSet execution role of a target account, trusted by the management account's administration role"
        )
    )
    # The administrator account and role are referenced by name in the trust policy's Fn::Sub.
    add_account_id(
        template,
        "AdministratorAccountId",
        "Account id of the StackSet administrator (management or delegated admin account)",
    )
    _role_name_parameter(
        template,
        "AdministrationRoleName",
        DEFAULT_ADMINISTRATION_ROLE,
        "Name of the administration role in the administrator account",
    )
    execution_name = _role_name_parameter(
        template, "ExecutionRoleName", DEFAULT_EXECUTION_ROLE, "Name of this execution role"
    )
    org_id = add_organization_id(template)
    second_admin = template.add_parameter(
        Parameter(
            "PipelineAdministratorAccountId",
            Type="String",
            Default="",
            Description=(
                "Optional second administrator: the development account whose MLOps project "
                "pipeline runs self-managed stack sets (its role of the same AdministrationRoleName)"
            ),
            AllowedPattern=r"^(\d{12})?$",
            ConstraintDescription="empty or a 12-digit AWS account id",
        )
    )
    template.add_condition("HasPipelineAdministrator", Not(Equals(Ref(second_admin), "")))
    _add_pass_role_prefix(template)
    primary = add_primary_region(template)
    names = deploy_rights.Names(
        prefixes=("${PassRoleNamePrefix}", "StackSet-"),
        boundary="${PassRoleNamePrefix}permissions-boundary",
        protected_roles=("${ExecutionRoleName}",),
    )
    # The project pipeline's model-deploy stack set builds a model from the development
    # account's registry: CreateModel checks the caller's rights on that model package.
    statements = _provisioning_statements("StackSet-*") + [
        when(
            "HasPipelineAdministrator",
            allow(
                "CreateModelFromDevelopmentPackages",
                [sagemaker.CreateModel, sagemaker.DescribeModelPackage],
                [
                    partition_arn(
                        "sagemaker", "model-package/*", region="*", account="${PipelineAdministratorAccountId}"
                    )
                ],
            ),
        )
    ]
    role = _add_deploying_role(
        template,
        "StackSetExecutionRole",
        "stackset-execution-role",
        names,
        statements,
        primary.condition,
        RoleName=Ref(execution_name),
        Description="Assumed by the StackSet administration role to create the product's stacks in this account",
        AssumeRolePolicyDocument=cross_account_trust(
            [
                iam_role_arn("${AdministratorAccountId}", "${AdministrationRoleName}"),
                If(
                    "HasPipelineAdministrator",
                    iam_role_arn("${PipelineAdministratorAccountId}", "${AdministrationRoleName}"),
                    Ref("AWS::NoValue"),
                ),
            ],
            org_id=Ref(org_id),
            sid="TrustStackSetAdministrationRole",
        ),
    )
    template.add_output(Output("ExecutionRoleArn", Condition=primary.condition, Value=GetAtt(role, "Arn")))
    return template


def build_servicecatalog_launch_role_template() -> Template:
    """The Service Catalog launch role: products launch with its rights, so users need none."""
    template = Template(
        Description=(
            "Service Catalog launch role: provisions the product's stacks, "
            "so the people launching need no rights on their resources"
        )
    )
    env = add_environment(template)
    _add_pass_role_prefix(template)
    primary = add_primary_region(template)
    names = deploy_rights.Names(
        prefixes=("${EnvName}-", "SC-"),
        boundary="${EnvName}-permissions-boundary",
        protected_roles=("${EnvName}-servicecatalog-launch",),
        pass_roles=tuple(
            f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{prefix}*"
            for prefix in ("${PassRoleNamePrefix}", "SC-")
        ),
    )
    statements = _provisioning_statements("SC-*") + [
        allow(
            "ValidateProductTemplates",
            [cloudformation.ValidateTemplate, cloudformation.GetTemplateSummary],
            ["*"],
        ),
        # Service Catalog tags the template objects it copies for provisioning.
        allow(
            "ReadProvisioningArtifacts",
            [s3.GetObject],
            [partition_arn("s3", "*/*", region="", account="")],
            Condition(StringEquals({"s3:ExistingObjectTag/servicecatalog:provisioning": "true"})),
        ),
    ]
    role = _add_deploying_role(
        template,
        "ServiceCatalogLaunchRole",
        "servicecatalog-launch-role",
        names,
        statements,
        primary.condition,
        RoleName=Sub("${EnvName}-servicecatalog-launch"),
        Description="Launch role of the product portfolio: Service Catalog provisions products with it",
        AssumeRolePolicyDocument=service_trust("servicecatalog.amazonaws.com", source_account=Ref("AWS::AccountId")),
        Tags=env.tags(),
    )
    template.add_output(Output("LaunchRoleArn", Condition=primary.condition, Value=GetAtt(role, "Arn")))
    template.add_output(Output("LaunchRoleName", Condition=primary.condition, Value=Ref(role)))
    return template


# --- 2. Target-account model roles ---------------------------------------------------------


def _name_or_default(template: Template, title: str, description: str, default: str, pattern: str, constraint: str):
    """An optional name parameter; empty means ``default`` (an Fn::Sub of the environment's naming)."""
    parameter = template.add_parameter(
        Parameter(
            title,
            Type="String",
            Default="",
            Description=f"{description} (empty: {default.replace('${', '<').replace('}', '>')})",
            AllowedPattern=f"^({pattern})?$",
            ConstraintDescription=f"empty or {constraint}",
        )
    )
    condition = f"Has{title}"
    template.add_condition(condition, Not(Equals(Ref(parameter), "")))
    return If(condition, Ref(parameter), Sub(default))


def _add_model_sources(template: Template) -> dict:
    """Where the development account keeps the models, as ``Fn::Sub`` variables.

    Every name defaults to the environment template's naming for (``EnvName``,
    ``DevelopmentEnvType``), so a stack set of this template needs only the development
    account id; the models key is matched by its alias, so its ARN (known only once the
    environment exists) is never needed.
    """
    add_account_id(
        template, "DevelopmentAccountId", "Account id of the development account that trains and registers models"
    )
    template.add_parameter(
        Parameter(
            "DevelopmentEnvType",
            Type="String",
            Default="dev",
            AllowedPattern=r"^[a-z][a-z0-9-]{0,15}$",
            Description=(
                "EnvType of the development account's environment stack "
                "(names its bucket, key alias, group and repository)"
            ),
            ConstraintDescription="lower-case letters, digits and hyphens",
        )
    )
    template.add_parameter(
        Parameter(
            "ModelPrefix",
            Type="String",
            Default="models/",
            Description="Key prefix of the model artifacts in the models bucket, ending with /",
            AllowedPattern=r"^([\w!.*'()-]+/)+$",
            ConstraintDescription="one or more path segments, each ending with /",
        )
    )
    template.add_parameter(
        Parameter(
            "S3VpcEndpointId",
            # A String, resolved by a dynamic reference inside the primary-region role: an
            # SSM-typed parameter is resolved in every region of the stack set, also where
            # no target network publishes it. A gateway endpoint reaches only buckets of its
            # own region, so only the primary region's endpoint matters.
            Type="String",
            Default="/mlops/staging/network/s3-endpoint-id",
            AllowedPattern=r"^/[\w./-]+$",
            ConstraintDescription="an SSM parameter name starting with /",
            Description="SSM name of this account's S3 gateway endpoint id in PrimaryRegion (published by the "
            "target-network stack): model artifacts are read only through it",
        )
    )
    return {
        "Bucket": _name_or_default(
            template,
            "ModelBucketName",
            "Name of the development account's models bucket",
            "${EnvName}-${DevelopmentEnvType}-models-${DevelopmentAccountId}",
            r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
            "an S3 bucket name",
        ),
        "KeyAlias": _name_or_default(
            template,
            "ModelKmsKeyAlias",
            "Alias (without alias/) of the development account's models key",
            "${EnvName}-${DevelopmentEnvType}-models",
            r"[\w/-]{1,250}",
            "a KMS alias name without alias/",
        ),
        "Repository": _name_or_default(
            template,
            "ModelImageRepositoryName",
            "The development account's ECR repository of inference images",
            "${EnvName}-${DevelopmentEnvType}-model-images",
            r"[a-z0-9]+(?:[._/-][a-z0-9]+)*",
            "an ECR repository name",
        ),
        "Group": _name_or_default(
            template,
            "ModelPackageGroupName",
            "Model package group of the development account's registry (lower case, as in its ARN)",
            "${EnvName}-${DevelopmentEnvType}-models",
            r"[a-z0-9](-*[a-z0-9])*",
            "lower-case letters, digits and hyphens",
        ),
    }


def _model_execution_statements(sources: dict):
    """What a SageMaker model in a target account needs of the development account, and no more."""
    bucket, alias, repository, group = (dict(Name=sources[k]) for k in ("Bucket", "KeyAlias", "Repository", "Group"))
    return [
        # Read only through this account's S3 gateway endpoint: SageMaker downloads the
        # artifacts through the model's VPC, so any other path is not ours.
        allow(
            "ReadModelArtifactsThroughVpcEndpoint",
            [s3.GetObject, s3.GetObjectVersion],
            [partition_arn("s3", "${Name}/${ModelPrefix}*", region="", account="", **bucket)],
            Condition(StringEquals({"aws:SourceVpce": Sub("{{resolve:ssm:${S3VpcEndpointId}}}")})),
        ),
        allow(
            "ListModelPrefix",
            [s3.ListBucket],
            [partition_arn("s3", "${Name}", region="", account="", **bucket)],
            Condition(StringLike({"s3:prefix": Sub("${ModelPrefix}*")})),
        ),
        allow(
            "DecryptModelArtifacts",
            [kms.Decrypt, kms.DescribeKey],
            [partition_arn("kms", "key/*", region="*", account="${DevelopmentAccountId}")],
            Condition(ForAnyValueStringEquals({"kms:ResourceAliases": Sub("alias/${Name}", **alias)})),
        ),
        allow(
            "PullInferenceImage",
            [ecr.BatchGetImage, ecr.GetDownloadUrlForLayer, ecr.BatchCheckLayerAvailability],
            [partition_arn("ecr", "repository/${Name}", region="*", account="${DevelopmentAccountId}", **repository)],
        ),
        # Endpoints serving an AWS Deep Learning Container or a built-in algorithm's image.
        pull_aws_owned_images(),
        # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        allow("GetRegistryToken", [ecr.GetAuthorizationToken], ["*"]),
        allow(
            "DescribeModelPackages",
            [sagemaker.DescribeModelPackage, sagemaker.DescribeModelPackageGroup, sagemaker.ListModelPackages],
            [
                partition_arn(
                    "sagemaker", "model-package/${Name}/*", region="*", account="${DevelopmentAccountId}", **group
                ),
                partition_arn(
                    "sagemaker", "model-package-group/${Name}", region="*", account="${DevelopmentAccountId}", **group
                ),
            ],
        ),
        # A model in a VPC: SageMaker attaches ENIs to this account's subnets with the
        # execution role's rights. The Describe* actions have no resource-level scoping.
        allow(
            "AttachToVpc",
            [
                ec2.CreateNetworkInterface,
                ec2.CreateNetworkInterfacePermission,
                ec2.DeleteNetworkInterface,
                ec2.DeleteNetworkInterfacePermission,
            ],
            [partition_arn("ec2", f"{kind}/*") for kind in ("network-interface", "subnet", "security-group")],
        ),
        allow(
            "DescribeVpc",
            [
                ec2.DescribeNetworkInterfaces,
                ec2.DescribeVpcs,
                ec2.DescribeDhcpOptions,
                ec2.DescribeSubnets,
                ec2.DescribeSecurityGroups,
            ],
            ["*"],
        ),
        allow(
            "WriteEndpointLogs",
            [logs.CreateLogGroup, logs.CreateLogStream, logs.PutLogEvents, logs.DescribeLogStreams],
            [partition_arn("logs", "log-group:/aws/sagemaker/*", region="*")],
        ),
        allow(
            "PublishEndpointMetrics",
            [cloudwatch.PutMetricData],
            ["*"],
            Condition(StringLike({"cloudwatch:namespace": "/aws/sagemaker/*"})),
        ),
    ]


def _model_deployment_statements(sources: dict) -> list:
    """What the deployment role needs besides the rights generated for model-deploy's resource types."""
    group = dict(Name=sources["Group"])
    return [
        # CreateModel from a model package of the development account's registry: SageMaker
        # checks the caller's identity-side rights on that package (the group policy there
        # is only the other half).
        allow(
            "CreateModelFromDevelopmentPackages",
            [sagemaker.CreateModel, sagemaker.DescribeModelPackage],
            [
                partition_arn(
                    "sagemaker", "model-package/${Name}/*", region="*", account="${DevelopmentAccountId}", **group
                )
            ],
        ),
        # Application Auto Scaling checks the caller's rights on the scalable target's endpoint.
        allow(
            "RegisterEndpointScalableTargets",
            [
                sagemaker.UpdateEndpointWeightsAndCapacities,
                sagemaker.DescribeEndpoint,
                sagemaker.DescribeEndpointConfig,
            ],
            [partition_arn("sagemaker", f"{kind}/*", region="*") for kind in ("endpoint", "endpoint-config")],
        ),
        # SSM-typed parameters are resolved with the caller's rights.
        allow(
            "ReadNetworkParameters",
            [ssm.GetParameters, ssm.GetParameter],
            [partition_arn("ssm", "parameter/${EnvName}/*", region="*")],
        ),
        allow(
            "UseEndpointVolumeKeys",
            [kms.CreateGrant, kms.DescribeKey],
            [partition_arn("kms", "key/*", region="*")],
            Condition(StringLike({"kms:ViaService": "sagemaker.*.amazonaws.com"})),
        ),
        *deny_without_vpc([sagemaker.CreateModel]),
    ]


def build_target_account_roles_template() -> Template:
    """``ModelExecutionRole`` and the deployment role that may pass it, for staging and production."""
    template = Template(
        Description=(
            "Target-account (staging/production) model roles: "
            "ModelExecutionRole and the deployment role allowed to pass it"
        )
    )
    env = add_environment(template, types=("staging", "prod"), default_type="staging")
    sources = _add_model_sources(template)
    primary = add_primary_region(template)

    execution_role = _add_primary_role(
        template,
        primary,
        env,
        "ModelExecutionRole",
        "${EnvName}-model-execution",
        "Execution role of SageMaker models deployed from the development account's registry",
        service_trust("sagemaker.amazonaws.com", source_account=Ref("AWS::AccountId")),
        "ReadDevelopmentAccountModels",
        _model_execution_statements(sources),
    )
    names = deploy_rights.Names(
        prefixes=("${EnvName}-", "StackSet-"),
        boundary="${EnvName}-permissions-boundary",
        protected_roles=("${EnvName}-model-deployment",),
        pass_roles=(GetAtt(execution_role, "Arn"),),
        pass_to="sagemaker.amazonaws.com",
    )
    deployment_role = _add_deploying_role(
        template,
        "ModelDeploymentRole",
        "model-deployment-role",
        names,
        _model_deployment_statements(sources),
        primary.condition,
        RoleName=Sub("${EnvName}-model-deployment"),
        Description="CloudFormation service role for model-deploy stacks; may pass only the ModelExecutionRole",
        AssumeRolePolicyDocument=service_trust("cloudformation.amazonaws.com", source_account=Ref("AWS::AccountId")),
        Tags=env.tags(),
    )
    for role, suffix in ((execution_role, "ModelExecutionRoleArn"), (deployment_role, "ModelDeploymentRoleArn")):
        template.add_output(
            Output(
                suffix, Condition=primary.condition, Value=GetAtt(role, "Arn"), Export=Export(env.export_name(suffix))
            )
        )
    return template


# --- 3. Cross-account endpoint invocation --------------------------------------------------


def build_endpoint_invoke_role_template() -> Template:
    """A role the consumer account may assume, with an ExternalId, to invoke named endpoints only."""
    template = Template(
        Description=(
            "Endpoint-invoke role: a named consumer account may assume it with "
            "an ExternalId to call sagemaker:InvokeEndpoint on named endpoints"
        )
    )
    env = add_environment(template, types=("staging", "prod"), default_type="prod")
    add_account_id(template, "ConsumerAccountId", "Account id of the consumer allowed to assume this role")
    external_id = template.add_parameter(
        Parameter(
            "ExternalId",
            Type="String",
            NoEcho=True,
            MinLength=16,
            MaxLength=1224,
            AllowedPattern=r"^[\w+=,.@:/-]+$",
            Description="Shared secret the consumer passes as sts:ExternalId (16-1224 characters)",
            ConstraintDescription="16-1224 characters: letters, digits and +=,.@:/_-",
        )
    )
    # Full ARNs rather than names: CloudFormation cannot map a prefix over a list without
    # a literal (partition-specific) Join delimiter, and ARNs also pin the region.
    endpoint_arns = template.add_parameter(
        Parameter(
            "EndpointArns",
            Type="CommaDelimitedList",
            Description=(
                "ARNs of the endpoints (in this account) the consumer may invoke, "
                "comma separated; SageMaker ARNs carry the name in lower case"
            ),
            AllowedPattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:endpoint/[a-z0-9](-*[a-z0-9]){0,62}$",
            ConstraintDescription=(
                "SageMaker endpoint ARNs of this account, lower case, e.g. "
                "arn:PARTITION:sagemaker:REGION:ACCOUNT:endpoint/churn-prod"
            ),
        )
    )
    primary = add_primary_region(template)
    role = _add_primary_role(
        template,
        primary,
        env,
        "EndpointInvokeRole",
        "${EnvName}-${EnvType}-endpoint-invoke",
        "Assumed by the consumer account (with ExternalId) to invoke the named SageMaker endpoints",
        cross_account_trust(
            partition_arn("iam", "root", region="", account="${ConsumerAccountId}"),
            external_id=Ref(external_id),
            sid="TrustConsumerWithExternalId",
        ),
        "InvokeNamedEndpoints",
        [allow("InvokeNamedEndpoints", [sagemaker.InvokeEndpoint], Ref(endpoint_arns))],
        MaxSessionDuration=3600,
    )
    template.add_output(
        Output(
            "EndpointInvokeRoleArn",
            Condition=primary.condition,
            Value=GetAtt(role, "Arn"),
            Description="Give this ARN (and, separately, the ExternalId) to the consumer",
        )
    )
    return template


def build_endpoint_consumer_policy_template() -> Template:
    """The consumer side: a managed policy (and optional group) allowing AssumeRole on that one role."""
    template = Template(
        Description=(
            "Consumer-side policy: sts:AssumeRole on the endpoint-invoke role only, optionally attached to a new group"
        )
    )
    invoke_role_arn = template.add_parameter(
        Parameter(
            "EndpointInvokeRoleArn",
            Type="String",
            Description="ARN of the endpoint-invoke role in the endpoint's account",
            AllowedPattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$",
            ConstraintDescription="an IAM role ARN",
        )
    )
    group_name = template.add_parameter(
        Parameter(
            "GroupName",
            Type="String",
            Default="",
            Description="When set, also create an IAM group of this name with the policy attached",
            AllowedPattern=r"^([\w+=,.@-]{1,128})?$",
            ConstraintDescription="empty or an IAM group name",
        )
    )
    template.add_condition("CreateGroup", Not(Equals(Ref(group_name), "")))
    group = template.add_resource(Group("EndpointConsumerGroup", Condition="CreateGroup", GroupName=Ref(group_name)))
    policy = template.add_resource(
        ManagedPolicy(
            "AssumeEndpointInvokeRolePolicy",
            Description="Allows sts:AssumeRole on the endpoint-invoke role only",
            PolicyDocument=document(allow("AssumeEndpointInvokeRole", [sts.AssumeRole], [Ref(invoke_role_arn)])),
            Groups=If("CreateGroup", [Ref(group)], Ref("AWS::NoValue")),
        )
    )
    template.add_output(Output("AssumeEndpointInvokeRolePolicyArn", Value=Ref(policy)))
    return template
