"""SageMaker invariants: compute in a VPC, Studio VPC-only with a CMK, encrypted endpoints, locked notebooks."""

from __future__ import annotations

import json

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from generator import policy_analysis as analysis
from generator.rules._walk import resource_problems

# Where each SageMaker compute resource type keeps its VpcConfig. A MonitoringSchedule
# that only names a job definition (MonitoringJobDefinitionName) is checked there.
VPC_CONFIG_PATHS: dict[str, tuple[str, ...]] = {
    "AWS::SageMaker::Model": ("VpcConfig",),
    "AWS::SageMaker::ProcessingJob": ("NetworkConfig", "VpcConfig"),
    "AWS::SageMaker::DataQualityJobDefinition": ("NetworkConfig", "VpcConfig"),
    "AWS::SageMaker::ModelBiasJobDefinition": ("NetworkConfig", "VpcConfig"),
    "AWS::SageMaker::ModelQualityJobDefinition": ("NetworkConfig", "VpcConfig"),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": ("NetworkConfig", "VpcConfig"),
    "AWS::SageMaker::Cluster": ("VpcConfig",),
}
_SCHEDULE_JOB = ("MonitoringScheduleConfig", "MonitoringJobDefinition")
# Pipeline step types that start compute, and where their arguments keep the VpcConfig.
PIPELINE_STEP_VPC_PATHS: dict[str, tuple[str, ...]] = {
    "Training": ("VpcConfig",),
    "Processing": ("NetworkConfig", "VpcConfig"),
    "Tuning": ("TrainingJobDefinition", "VpcConfig"),
    "Transform": (),  # a transform job runs in the VPC of its model
}


def _vpc_problem(vpc_config) -> str | None:
    """Why ``vpc_config`` does not put the resource in a VPC, or None when it does."""
    if not isinstance(vpc_config, dict):
        return "has no VpcConfig"
    missing = [key for key in ("Subnets", "SecurityGroupIds") if not analysis.as_list(vpc_config.get(key))]
    if missing:
        return f"has a VpcConfig without {' and '.join(missing)}"
    return None


class ComputeInVpc(CloudFormationLintRule):
    """SageMaker models, processing/training jobs, monitoring jobs, clusters and domains run in a VPC."""

    id = "E9301"
    shortdesc = "SageMaker compute runs in a VPC"
    description = (
        "AWS::SageMaker::Model, ProcessingJob, Cluster, the four monitoring job definitions, inline "
        "MonitoringSchedule jobs and the Training/Processing/Tuning steps of an inline Pipeline definition "
        "set a VpcConfig with Subnets and SecurityGroupIds; a Domain sets VpcId and SubnetIds. Without it the "
        "containers get SageMaker's internet-connected network."
    )
    source_url = "https://docs.aws.amazon.com/sagemaker/latest/dg/infrastructure-give-access.html"
    tags = ["security", "sagemaker", "network"]

    def match(self, cfn):
        matches = resource_problems(cfn, VPC_CONFIG_PATHS, _compute_problems)
        matches += resource_problems(cfn, ["AWS::SageMaker::MonitoringSchedule"], _schedule_problems)
        matches += resource_problems(cfn, ["AWS::SageMaker::Domain"], _domain_vpc_problems)
        for name, resource in cfn.get_resources(["AWS::SageMaker::Pipeline"]).items():
            body = analysis.get_path(resource, "Properties", "PipelineDefinition", "PipelineDefinitionBody")
            for step, problem in _pipeline_problems(body):
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "PipelineDefinition"],
                        (
                            f"Pipeline {name} step {step} {problem}: give the step "
                            "a VpcConfig with private Subnets and SecurityGroupIds"
                        ),
                    )
                )
        return analysis.unique_matches(matches)


def _compute_problems(name, rtype, props):
    keys = VPC_CONFIG_PATHS[rtype]
    problem = _vpc_problem(analysis.get_path(props, *keys))
    if problem:
        yield f"{rtype} {name} {problem}: set {'.'.join(keys)} with private Subnets and SecurityGroupIds"


def _schedule_problems(name, _rtype, props):
    job = analysis.get_path(props, *_SCHEDULE_JOB)
    problem = _vpc_problem(analysis.get_path(job, "NetworkConfig", "VpcConfig")) if isinstance(job, dict) else None
    if problem:
        yield f"Monitoring schedule {name}'s job {problem}: set MonitoringJobDefinition.NetworkConfig.VpcConfig"


def _domain_vpc_problems(name, _rtype, props):
    if not props.get("VpcId") or not analysis.as_list(props.get("SubnetIds")):
        yield f"Domain {name} is not in a VPC: set VpcId and SubnetIds (private subnets)"


def _pipeline_problems(body) -> list[tuple[str, str]]:
    """(step name, problem) for each compute step of an inline pipeline definition without a VPC."""
    if body is None:
        return []
    out = []
    for variant in analysis.variants(body):
        text = analysis.symbol(variant)
        try:
            definition = json.loads(text)
        except ValueError:
            continue  # not inline JSON we can read (e.g. built by Fn::Join of unknown parts)
        for step in _steps(definition.get("Steps", []) if isinstance(definition, dict) else []):
            keys = PIPELINE_STEP_VPC_PATHS.get(step.get("Type", ""))
            if keys:
                problem = _vpc_problem(analysis.get_path(step.get("Arguments") or {}, *keys))
                if problem:
                    out.append((str(step.get("Name", "?")), problem))
    return out


def _steps(steps):
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            yield step
            arguments = step.get("Arguments") or {}
            if step.get("Type") == "Condition" and isinstance(arguments, dict):
                yield from _steps(arguments.get("IfSteps"))
                yield from _steps(arguments.get("ElseSteps"))


class DomainVpcOnlyWithKey(CloudFormationLintRule):
    """A Studio domain sends all traffic through its VPC and encrypts its EFS with a CMK."""

    id = "E9302"
    shortdesc = "SageMaker domain in VpcOnly mode with a KMS key"
    description = (
        "Every AWS::SageMaker::Domain sets AppNetworkAccessType VpcOnly (the default, PublicInternetOnly, "
        "gives Studio apps direct internet access) and KmsKeyId (a customer managed key for the domain's "
        "EFS volume)."
    )
    source_url = "https://docs.aws.amazon.com/sagemaker/latest/dg/studio-notebooks-and-internet-access.html"
    tags = ["security", "sagemaker", "network", "kms"]

    def match(self, cfn):
        def check(name, _rtype, props):
            mode = props.get("AppNetworkAccessType", "PublicInternetOnly")
            if not analysis.always(cfn.template, mode, "VpcOnly"):
                shown = ", ".join(analysis.possible_values(cfn.template, mode))
                yield f"Domain {name} may use AppNetworkAccessType {shown}: set VpcOnly"
            if not props.get("KmsKeyId"):
                yield f"Domain {name} has no KmsKeyId: set a customer managed key"

        return resource_problems(cfn, ["AWS::SageMaker::Domain"], check)


class EndpointConfigEncrypted(CloudFormationLintRule):
    """Endpoint configs encrypt their ML storage volumes (and captured data) with a KMS key."""

    id = "E9303"
    shortdesc = "SageMaker endpoint config sets KmsKeyId"
    description = (
        "Every AWS::SageMaker::EndpointConfig with instance-based variants sets KmsKeyId (ML storage "
        "volumes); when it captures data, DataCaptureConfig sets KmsKeyId too; asynchronous inference "
        "output sets OutputConfig.KmsKeyId. Configs whose variants are all serverless cannot take a "
        "KmsKeyId and are exempt from the volume check."
    )
    source_url = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html"
    tags = ["security", "sagemaker", "kms"]

    def match(self, cfn):
        return resource_problems(cfn, ["AWS::SageMaker::EndpointConfig"], _endpoint_config_problems)


def _endpoint_config_problems(name, _rtype, props):
    variants = [v for v in analysis.as_list(props.get("ProductionVariants")) if isinstance(v, dict)]
    serverless_only = bool(variants) and all("ServerlessConfig" in v for v in variants)
    if not serverless_only and not props.get("KmsKeyId"):
        yield f"Endpoint config {name} has no KmsKeyId: set a customer managed key for the ML storage volumes"
    capture = props.get("DataCaptureConfig")
    if (
        isinstance(capture, dict)
        and analysis.symbol(capture.get("EnableCapture", True)) != "false"
        and not capture.get("KmsKeyId")
    ):
        yield (
            ["DataCaptureConfig"],
            f"Endpoint config {name} captures data without DataCaptureConfig.KmsKeyId: set a customer managed key",
        )
    output = analysis.get_path(props, "AsyncInferenceConfig", "OutputConfig")
    if isinstance(output, dict) and not output.get("KmsKeyId"):
        yield (
            ["AsyncInferenceConfig"],
            f"Endpoint config {name} writes async results without OutputConfig.KmsKeyId: set a customer managed key",
        )


class NotebookInstanceLockedDown(CloudFormationLintRule):
    """Notebook instances sit in a subnet, without direct internet access or root access."""

    id = "E9304"
    shortdesc = "SageMaker notebook instance without internet or root access"
    description = (
        "Every AWS::SageMaker::NotebookInstance sets SubnetId and SecurityGroupIds, DirectInternetAccess "
        "Disabled and RootAccess Disabled (both default to Enabled)."
    )
    source_url = "https://docs.aws.amazon.com/sagemaker/latest/dg/appendix-notebook-and-internet-access.html"
    tags = ["security", "sagemaker", "network"]

    def match(self, cfn):
        def check(name, _rtype, props):
            for key in ("DirectInternetAccess", "RootAccess"):
                value = props.get(key, "Enabled")
                if not analysis.always(cfn.template, value, "Disabled"):
                    shown = ", ".join(analysis.possible_values(cfn.template, value))
                    yield f"Notebook instance {name} may have {key} {shown}: set {key} Disabled"
            if not props.get("SubnetId") or not analysis.as_list(props.get("SecurityGroupIds")):
                yield (
                    f"Notebook instance {name} is not in a VPC: set SubnetId (a private subnet) and SecurityGroupIds"
                )

        return resource_problems(cfn, ["AWS::SageMaker::NotebookInstance"], check)


# Actions that start SageMaker compute and carry the sagemaker:VpcSubnets and
# sagemaker:VpcSecurityGroupIds condition keys (IAM Service Authorization Reference).
RUNTIME_COMPUTE_ACTIONS = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateModel",
    "sagemaker:CreateNotebookInstance",
    "sagemaker:CreateAutoMLJob",
    "sagemaker:CreateMonitoringSchedule",
    "sagemaker:CreateDataQualityJobDefinition",
    "sagemaker:CreateModelQualityJobDefinition",
    "sagemaker:CreateModelBiasJobDefinition",
    "sagemaker:CreateModelExplainabilityJobDefinition",
)
_VPC_KEYS = ("sagemaker:vpcsubnets", "sagemaker:vpcsecuritygroupids")
_PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
_ATTACHED_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
_ATTACHMENT_KEYS = {"AWS::IAM::Role": "Roles", "AWS::IAM::User": "Users", "AWS::IAM::Group": "Groups"}


class RuntimeComputeGuardedToVpc(CloudFormationLintRule):
    """A principal allowed to start SageMaker compute at run time may do so only inside a VPC."""

    id = "E9305"
    shortdesc = "SageMaker: compute started at run time is confined to a VPC by IAM"
    description = (
        "Jobs, models and notebooks created at run time (by Studio users, pipelines, CI) are not in any "
        "template, so E9301 cannot see them: the IAM policies of every role, user or group of the template "
        "that allow one of " + ", ".join(a.split(":")[1] for a in RUNTIME_COMPUTE_ACTIONS) + " either deny it "
        "when sagemaker:VpcSubnets or sagemaker:VpcSecurityGroupIds is absent (Deny with Null ... true), or "
        "allow it only when both are present (Null ... false). Policies counted: inline, and AWS::IAM::Policy / "
        "ManagedPolicy resources of the same template attached to the principal."
    )
    source_url = "https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html"
    tags = ["security", "sagemaker", "network", "iam"]

    def match(self, cfn):
        matches = []
        template = cfn.template
        for principal in analysis.logical_ids_of_type(template, *_PRINCIPAL_TYPES):
            statements = list(_principal_statements(template, principal))
            denied = {a for a in RUNTIME_COMPUTE_ACTIONS if _denied_without_vpc(statements, a)}
            for path, statement in statements:
                if not statement.allows():
                    continue
                unguarded = [
                    a
                    for a in RUNTIME_COMPUTE_ACTIONS
                    if a not in denied and statement.grants(a) and not _allowed_only_with_vpc(statement)
                ]
                if unguarded:
                    matches.append(
                        RuleMatch(
                            list(path),
                            f"{principal} may call {', '.join(a.split(':')[1] for a in unguarded)} "
                            "outside a VPC: add Deny statements "
                            "for these actions with Condition Null sagemaker:VpcSubnets "
                            "true and Null sagemaker:VpcSecurityGroupIds true",
                        )
                    )
        return analysis.unique_matches(matches)


def _principal_statements(template: dict, principal: str):
    """(path, statement) of every identity policy statement that applies to ``principal``, all variants."""
    resources = template.get("Resources") or {}
    resource = resources.get(principal) or {}
    rtype = resource.get("Type")
    attached = {
        analysis.symbol(arn) for arn in analysis.as_list(analysis.get_path(resource, "Properties", "ManagedPolicyArns"))
    }
    for policy in analysis.policy_documents(template):
        if policy.kind != "identity":
            continue
        applies = policy.resource == principal
        if policy.resource_type in _ATTACHED_POLICY_TYPES:
            targets = analysis.get_path(
                resources.get(policy.resource) or {}, "Properties", _ATTACHMENT_KEYS.get(rtype, "")
            )
            applies = "${" + principal + "}" in {analysis.symbol(t) for t in analysis.as_list(targets)}
            applies = applies or "${" + policy.resource + "}" in attached
        if not applies:
            continue
        for variant in analysis.variants(policy.document):
            for statement in analysis.statements(variant):
                yield analysis.statement_path(policy, variant, statement), statement


def _null_test(statement, key: str, value: str) -> bool:
    return any(v.lower() == value for v in statement.condition_values({"null"}, key))


def _denied_without_vpc(statements, action: str) -> bool:
    """Is ``action`` denied (on every resource) when either VPC key is absent?"""
    for key in _VPC_KEYS:
        if not any(
            s.effect == "Deny"
            and s.grants(action)
            and "*" in s.resources
            and not s.not_resource
            and _null_test(s, key, "true")
            and set(s.conditions) == {"null"}
            and len(s.conditions["null"]) == 1
            for _, s in statements
        ):
            return False
    return True


def _allowed_only_with_vpc(statement) -> bool:
    return all(_null_test(statement, key, "false") for key in _VPC_KEYS)
