"""Lint every IAM policy document of the rendered templates with parliament.

``python -m generator.policy_lint [templates/*.yaml]`` (run by the linters' venv,
``.venv-lint/bin/python``, with the repository on ``PYTHONPATH``; ``make lint`` does it).

Every identity, trust and resource policy (role trust and inline policies, managed
policies, bucket, key, repository, model package group, endpoint policies, ...) is taken
from the templates, once per combination of its ``Fn::If`` conditions, and its intrinsic
functions are replaced by representative literal values of the right shape (an ARN of the
right service and resource type, a 12-digit account id, a VPC endpoint id), because a
policy linter reads literal JSON only. Two normalisations make the documents what IAM
itself evaluates, rather than what the template abbreviates:

* a role's trust policy (an ECR repository policy) has no ``Resource``: the role (the
  repository) is the resource, so its ARN is added;
* in a key policy ``Resource: "*"`` means "this key" (KMS accepts nothing else), so
  parliament's RESOURCE_STAR is not reported for key policies.

parliament's reference data has gaps; they are closed here, each with its reason, rather
than hidden by severity: global condition keys it does not know yet
(``EXTRA_GLOBAL_CONDITION_KEYS``) and findings that contradict AWS's own documentation
(``KNOWN_LINTER_GAPS``). Both are printed in the summary count, never silently dropped.

A template accepts a finding on one resource only in that resource's metadata, with a
written justification, the way checkov skips are written (cfn-lint rule E9901 checks it)::

    Metadata:
      parliament:
        skip:
          - id: RESOURCE_POLICY_PRIVILEGE_ESCALATION
            comment: why this role must be able to do this

Exit status: 0 no finding; 1 at least one finding (each printed with its file, resource
and policy); 2 a template could not be read.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator import policy_analysis as analysis

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "111111111111"
# Parameters that hold another account's id get distinct ids, in order of appearance.
OTHER_ACCOUNTS = ("222222222222", "333333333333", "444444444444", "555555555555", "666666666666")
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "example-stack",
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/example-stack/{KEY_ID}",
    "AWS::NoValue": "",
}

# What Ref and GetAtt(..., "Arn") return for the resource types the templates use; "{n}" is a
# lower-case name made from the logical id. Types not listed get a generic ARN.
_ARN = f"arn:{PARTITION}:{{service}}:{REGION}:{ACCOUNT}:{{resource}}"
ARN_FORMATS: dict[str, str] = {
    "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{{n}}",
    "AWS::IAM::User": f"arn:{PARTITION}:iam::{ACCOUNT}:user/{{n}}",
    "AWS::IAM::Group": f"arn:{PARTITION}:iam::{ACCOUNT}:group/{{n}}",
    "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{{n}}",
    "AWS::IAM::InstanceProfile": f"arn:{PARTITION}:iam::{ACCOUNT}:instance-profile/{{n}}",
    "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{{n}}",
    "AWS::KMS::Key": _ARN.format(service="kms", resource="key/" + KEY_ID),
    "AWS::KMS::Alias": _ARN.format(service="kms", resource="alias/{n}"),
    "AWS::ECR::Repository": _ARN.format(service="ecr", resource="repository/{n}"),
    "AWS::SNS::Topic": _ARN.format(service="sns", resource="{n}"),
    "AWS::SQS::Queue": _ARN.format(service="sqs", resource="{n}"),
    "AWS::Logs::LogGroup": _ARN.format(service="logs", resource="log-group:{n}:*"),
    "AWS::Events::Rule": _ARN.format(service="events", resource="rule/{n}"),
    "AWS::SSM::Parameter": _ARN.format(service="ssm", resource="parameter/{n}"),
    "AWS::SecretsManager::Secret": _ARN.format(service="secretsmanager", resource="secret:{n}-AbCdEf"),
    "AWS::CodeCommit::Repository": _ARN.format(service="codecommit", resource="{n}"),
    "AWS::CodeBuild::Project": _ARN.format(service="codebuild", resource="project/{n}"),
    "AWS::CodePipeline::Pipeline": _ARN.format(service="codepipeline", resource="{n}"),
    "AWS::Lambda::Function": _ARN.format(service="lambda", resource="function:{n}"),
    "AWS::EC2::VPC": _ARN.format(service="ec2", resource="vpc/vpc-0123456789abcdef0"),
    "AWS::EC2::Subnet": _ARN.format(service="ec2", resource="subnet/subnet-0123456789abcdef0"),
    "AWS::EC2::SecurityGroup": _ARN.format(service="ec2", resource="security-group/sg-0123456789abcdef0"),
    "AWS::SageMaker::Model": _ARN.format(service="sagemaker", resource="model/{n}"),
    "AWS::SageMaker::EndpointConfig": _ARN.format(service="sagemaker", resource="endpoint-config/{n}"),
    "AWS::SageMaker::Endpoint": _ARN.format(service="sagemaker", resource="endpoint/{n}"),
    "AWS::SageMaker::ModelPackageGroup": _ARN.format(service="sagemaker", resource="model-package-group/{n}"),
    "AWS::SageMaker::Domain": _ARN.format(service="sagemaker", resource="domain/d-0123456789ab"),
    "AWS::SageMaker::UserProfile": _ARN.format(service="sagemaker", resource="user-profile/d-0123456789ab/{n}"),
    "AWS::SageMaker::Project": _ARN.format(service="sagemaker", resource="project/{n}"),
    "AWS::SageMaker::Pipeline": _ARN.format(service="sagemaker", resource="pipeline/{n}"),
}
# Ref of these types returns the ARN; of the others, a name or an id.
REF_IS_ARN = {
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::Topic",
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::Project",
    "AWS::SecretsManager::Secret",
}
REF_IDS = {
    "AWS::KMS::Key": KEY_ID,
    "AWS::EC2::VPC": "vpc-0123456789abcdef0",
    "AWS::EC2::Subnet": "subnet-0123456789abcdef0",
    "AWS::EC2::SecurityGroup": "sg-0123456789abcdef0",
    "AWS::EC2::VPCEndpoint": "vpce-0123456789abcdef0",
    "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{{n}}",
    "AWS::SageMaker::Domain": "d-0123456789ab",
}
# Values of AWS-specific parameter types (also inside List<...> and SSM Value<...>).
_AWS_TYPED_VALUES = {
    "AWS::EC2::VPC::Id": "vpc-0fedcba9876543210",
    "AWS::EC2::Subnet::Id": "subnet-0fedcba9876543210",
    "AWS::EC2::SecurityGroup::Id": "sg-0fedcba9876543210",
    "AWS::EC2::AvailabilityZone::Name": f"{REGION}a",
    "AWS::EC2::KeyPair::KeyName": "example-key-pair",
}
# A parameter with no usable default: a value from its AllowedPattern's shape.
_KEY_ARN_PATTERN = re.compile(r"kms:.*key/")


class Concretizer:
    """Replaces a template's intrinsic functions with representative literal values."""

    def __init__(self, template: dict):
        self.template = template
        self.resources = template.get("Resources") or {}
        self.parameters = template.get("Parameters") or {}
        self.mappings = template.get("Mappings") or {}
        self._accounts: dict[str, str] = {}

    # -- names and parameters --

    @staticmethod
    def name_of(logical_id: str) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()

    def parameter_value(self, name: str) -> Any:
        parameter = self.parameters.get(name) or {}
        ptype = str(parameter.get("Type", "String"))
        default = parameter.get("Default")
        from_ssm = ptype.startswith("AWS::SSM::Parameter::Value<")  # its Default names the SSM parameter
        is_list = "List<" in ptype or ptype == "CommaDelimitedList"
        if default not in (None, "") and not from_ssm:
            return [v.strip() for v in str(default).split(",")] if is_list else str(default)
        value = _AWS_TYPED_VALUES.get(ptype.rsplit("<", 1)[-1].rstrip(">")) or self._shaped_value(
            name, str(parameter.get("AllowedPattern", ""))
        )
        return [value] if is_list else value

    def _shaped_value(self, name: str, pattern: str) -> str:
        lowered = name.lower()
        if "arn:" in pattern or lowered.endswith("arn") or lowered.endswith("arns"):
            return self._arn_from_pattern(name, pattern)
        if "\\d{12}" in pattern or "accountid" in lowered:
            if name not in self._accounts:
                self._accounts[name] = OTHER_ACCOUNTS[len(self._accounts) % len(OTHER_ACCOUNTS)]
            return self._accounts[name]
        if "vpce-" in pattern or "endpointid" in lowered:
            return "vpce-0fedcba9876543210"
        if "^o-" in pattern or "orgid" in lowered or "organizationid" in lowered:
            return "o-exampleorg1"
        if "sg-" in pattern:
            return "sg-0fedcba9876543210"
        if "subnet-" in pattern:
            return "subnet-0fedcba9876543210"
        if "vpc-" in pattern:
            return "vpc-0fedcba9876543210"
        return "example-" + self.name_of(name)

    def _arn_from_pattern(self, name: str, pattern: str) -> str:
        account = OTHER_ACCOUNTS[0]
        fields = re.search(r"arn:[^:]*:([a-z0-9-]+):", pattern)
        service = fields.group(1) if fields else "iam"
        resource_type = re.search(r":\\d\{12\}:([a-z-]+)[/:]", pattern) or re.search(
            r"::\\d\{12\}:([a-z-]+)[/:]", pattern
        )
        kind = resource_type.group(1) if resource_type else ""
        if service == "iam":
            return f"arn:{PARTITION}:iam::{account}:{kind or 'role'}/example-{self.name_of(name)}"
        if service == "s3":
            return f"arn:{PARTITION}:s3:::example-{self.name_of(name)}"
        if _KEY_ARN_PATTERN.search(pattern) or service == "kms":
            return f"arn:{PARTITION}:kms:{REGION}:{account}:key/{KEY_ID}"
        separator = ":" if kind in ("function", "secret", "log-group") else "/"
        resource = f"{kind}{separator}example-{self.name_of(name)}" if kind else f"example-{self.name_of(name)}"
        return f"arn:{PARTITION}:{service}:{REGION}:{account}:{resource}"

    # -- references --

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameter_value(name)
        resource = self.resources.get(name)
        if isinstance(resource, dict):
            rtype = resource.get("Type", "")
            physical = self.name_of(name)
            if rtype in REF_IS_ARN:
                return self.arn(name)
            if rtype in REF_IDS:
                return REF_IDS[rtype].replace("{n}", physical)
            return physical
        return "example-" + self.name_of(name)

    def arn(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id) or {}
        rtype = resource.get("Type", "")
        physical = self.name_of(logical_id)
        if rtype in ARN_FORMATS:
            return ARN_FORMATS[rtype].replace("{n}", physical)
        service = rtype.split("::")[1].lower() if rtype.count("::") == 2 else "example"
        kind = self.name_of(rtype.split("::")[-1]) if rtype else "resource"
        return _ARN.format(service=service, resource=f"{kind}/{physical}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute in ("Arn", "RoleArn", "KeyArn", "TopicArn", "QueueArn", "EndpointArn", "ModelPackageGroupArn"):
            return self.arn(logical_id)
        if attribute in ("KeyId", "VpcEndpointId", "GroupId", "RoleId"):
            return self.ref(logical_id)
        if attribute == "CidrBlock":
            return "10.0.0.0/16"
        if attribute == "DomainName":
            return f"{self.name_of(logical_id)}.s3.amazonaws.com"
        return f"example-{self.name_of(logical_id)}-{attribute.lower()}"

    # -- values --

    def value(self, node: Any) -> Any:
        """``node`` with every intrinsic function replaced by a literal."""
        if isinstance(node, list):
            out = []
            for item in node:
                resolved = self.value(item)
                # A list parameter referenced as one item of a list is spliced in.
                if isinstance(resolved, list) and isinstance(item, dict) and "Ref" in item:
                    out.extend(resolved)
                else:
                    out.append(resolved)
            return out
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, args)
        return {str(k): self.value(v) for k, v in node.items()}

    def text(self, node: Any) -> str:
        resolved = self.value(node)
        if isinstance(resolved, list):
            return ",".join(str(v) for v in resolved)
        return str(resolved)

    def sub(self, args: Any) -> str:
        if isinstance(args, list):
            template, variables = str(args[0]), (args[1] if len(args) > 1 else {}) or {}
        else:
            template, variables = str(args), {}

        def replace(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return self.text(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.resources:
                logical_id, attribute = expression.split(".", 1)
                return self.text(self.get_att(logical_id, attribute))
            return self.text(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, template)


def _get_att(c: Concretizer, args: Any) -> Any:
    if isinstance(args, str):
        args = args.split(".", 1)
    return c.get_att(str(args[0]), str(args[1]))


def _join(c: Concretizer, args: Any) -> str:
    parts = c.value(args[1])
    return str(args[0]).join(str(p) for p in (parts if isinstance(parts, list) else [parts]))


def _select(c: Concretizer, args: Any) -> Any:
    items = c.value(args[1])
    return items[int(c.value(args[0]))] if isinstance(items, list) and items else items


def _split(c: Concretizer, args: Any) -> list:
    return str(c.value(args[1])).split(str(args[0]))


def _find_in_map(c: Concretizer, args: Any) -> Any:
    keys = [c.text(a) for a in args]
    return c.value(((c.mappings.get(keys[0]) or {}).get(keys[1]) or {}).get(keys[2], f"example-{keys[2]}"))


_INTRINSICS = {
    "Ref": lambda c, a: c.ref(str(a)),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda c, a: c.sub(a),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::ImportValue": lambda c, a: "example-import-" + Concretizer.name_of(c.text(a).replace(":", "-")),
    "Fn::GetAZs": lambda c, a: [f"{REGION}a", f"{REGION}b"],
    "Fn::Base64": lambda c, a: c.text(a),
    "Fn::If": lambda c, a: c.value(a[1]),  # only reached for an If that variants() did not expand
}


# --- extraction ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractedPolicy:
    """One concrete policy document of one template, ready for a linter."""

    file: str
    resource: str
    resource_type: str
    kind: str
    path: str
    variant: int
    document: dict
    skips: tuple = ()  # parliament issues the resource's Metadata skips, with a justification

    def where(self) -> str:
        variant = f" (condition variant {self.variant})" if self.variant else ""
        return f"{self.file}: {self.path} [{self.kind} policy of {self.resource}]{variant}"


class _CfnLoader(yaml.SafeLoader):
    """Reads long-form templates, and the short forms (``!Ref``, ``!Sub``...) too."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path) -> dict:
    """A template file (YAML or JSON) as a dict."""
    data = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError("not a CloudFormation template (no mapping at the top level)")
    return data


def _normalise(policy, document: dict, c: Concretizer) -> dict:
    """Make the document what IAM evaluates: add the implicit resource of trust, key and repository policies."""
    document = copy.deepcopy(document)
    if policy.kind != "trust" and policy.resource_type != "AWS::ECR::Repository":
        return document
    implicit = c.arn(policy.resource)
    raw = document.get("Statement")
    for statement in raw if isinstance(raw, list) else [raw]:
        if isinstance(statement, dict) and "Resource" not in statement and "NotResource" not in statement:
            statement["Resource"] = implicit
    return document


def metadata_skips(resource: Any, tool: str) -> list[tuple[str, str]]:
    """(check id, justification) of ``Metadata: {tool: {skip: [{id, comment}]}}`` on a resource.

    The same shape checkov reads; cfn-lint rule E9901 requires the justification."""
    metadata = resource.get("Metadata") if isinstance(resource, dict) else None
    section = metadata.get(tool) if isinstance(metadata, dict) else None
    skips = section.get("skip") if isinstance(section, dict) else None
    return [(str(s.get("id", "")), str(s.get("comment", ""))) for s in skips or [] if isinstance(s, dict)]


def extract(path: Path, template: dict | None = None) -> Iterator[ExtractedPolicy]:
    """Every policy document of the template at ``path``, once per condition variant, as literal JSON."""
    template = template if template is not None else load_template(path)
    c = Concretizer(template)
    resources = template.get("Resources") or {}
    for policy in analysis.policy_documents(template):
        skips = metadata_skips(resources.get(policy.resource), "parliament")
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in policy.path).replace(".[", "[")
        for index, variant in enumerate(analysis.variants(policy.document)):
            concrete = c.value(variant)
            if isinstance(concrete, dict):
                yield ExtractedPolicy(
                    str(path),
                    policy.resource,
                    policy.resource_type,
                    policy.kind,
                    dotted,
                    index,
                    _normalise(policy, concrete, c),
                    tuple(skip for skip, _ in skips),
                )


# --- linting -------------------------------------------------------------------------------


# Global condition keys (IAM User Guide, "AWS global condition context keys") that
# parliament 1.6 does not list, so it reports them as UNKNOWN_CONDITION_FOR_ACTION.
EXTRA_GLOBAL_CONDITION_KEYS = {
    "aws:ViaAWSService": "Bool",
    "aws:SourceOrgID": "String",
    "aws:SourceOrgPaths": "String",
    "aws:SourceVpcArn": "Arn",
    "aws:VpceAccount": "String",
    "aws:VpceOrgID": "String",
    "aws:VpceOrgPaths": "String",
    "aws:Ec2InstanceSourceVpc": "String",
    "aws:Ec2InstanceSourcePrivateIPv4": "Ip",
    "aws:AssumedRoot": "Bool",
}


@dataclass(frozen=True)
class LinterGap:
    """A parliament finding that AWS's documentation contradicts: not reported, but counted."""

    issue: str
    applies: Any  # (ExtractedPolicy, finding detail) -> bool
    why: str


def _only_actions(detail: Any, actions: set[str]) -> bool:
    return (
        isinstance(detail, list)
        and bool(detail)
        and all(isinstance(d, dict) and d.get("action") in actions for d in detail)
    )


def _logs_encryption_context_arn(policy: ExtractedPolicy, detail: Any) -> bool:
    text = json.dumps(policy.document)
    return (
        "ArnLike requires a value of type Arn but given String" in str(detail)
        and "kms:EncryptionContext:aws:logs:arn" in text
    )


# ARN-typed condition keys that AWS's documentation compares with String operators.
# IAM's user guide ("Permissions boundaries for IAM entities") tests iam:PermissionsBoundary with
# StringEquals in its examples of delegating role creation under a boundary.
_ARN_KEYS_DOCUMENTED_WITH_STRING_OPERATORS = {
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "iam:permissionsboundary",
}


def _arn_typed_keys() -> dict[str, str]:
    import parliament

    return {
        str(c["condition"]).lower(): str(c["type"])
        for service in parliament.iam_definition
        for c in service.get("conditions", [])
        if str(c.get("type", "")).lower().startswith("arn")
    }


def _string_tests_of_arn_keys(document: dict) -> set[str]:
    """ARN-typed condition keys that a String* operator of ``document`` tests."""
    arn_keys = _arn_typed_keys()
    keys = set()
    statements = document.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        for operator, tests in ((statement or {}).get("Condition") or {}).items():
            if str(operator).lower().split(":")[-1].startswith("string"):
                keys |= {str(key).lower() for key in (tests or {}) if str(key).lower() in arn_keys}
    return keys


def _documented_string_arn_test(policy: ExtractedPolicy, detail: Any) -> bool:
    keys = _string_tests_of_arn_keys(policy.document)
    return "but given Arn" in str(detail) and bool(keys) and keys <= _ARN_KEYS_DOCUMENTED_WITH_STRING_OPERATORS


# The deploying roles' rights (``<Role>Rights<N>``) and the permissions boundary are generated
# from AWS's own machine-readable data (generator/deploy_rights.py): the handler permissions of
# the CloudFormation registry schemas and the IAM reference cfn-lint ships (Policies.json),
# both newer than parliament 1.6.4's action table.
_GENERATED_RIGHTS = re.compile(r"^[A-Za-z0-9]+Rights\d+$|^PermissionsBoundary$")


def _generated_rights(policy: ExtractedPolicy, detail: Any) -> bool:
    return policy.resource_type == "AWS::IAM::ManagedPolicy" and bool(_GENERATED_RIGHTS.match(policy.resource))


KNOWN_LINTER_GAPS = (
    LinterGap(
        "MISMATCHED_TYPE_BUT_USABLE",
        _documented_string_arn_test,
        "S3 documents StringEquals/StringNotEquals(IfExists) on s3:x-amz-server-side-encryption-aws-kms-key-id "
        "and IAM StringEquals on iam:PermissionsBoundary, ARN-typed keys (parliament itself rates the finding "
        "'but usable')",
    ),
    LinterGap(
        "MISMATCHED_TYPE",
        _logs_encryption_context_arn,
        "CloudWatch Logs documents ArnLike/ArnEquals on kms:EncryptionContext:aws:logs:arn in key policies; "
        "parliament types every kms:EncryptionContext:* key as String",
    ),
    LinterGap(
        "RESOURCE_MISMATCH",
        lambda policy, detail: (
            policy.resource_type == "AWS::SageMaker::ModelPackageGroup"
            and _only_actions(detail, {"sagemaker:CreateModel"})
        ),
        "SageMaker documents sagemaker:CreateModel in a model package group's resource policy (another account "
        "creating a model from a package of the group); parliament expects a model/* resource there",
    ),
    LinterGap(
        "UNKNOWN_ACTION",
        _generated_rights,
        "Generated rights list the actions the CloudFormation registry schemas' handlers call (s3:PutBucketAbac, "
        "s3tables:PutTableEncryption, logs:PutLogGroupDeletionProtection...), newer than parliament's action table; "
        "deploy_rights keeps only actions AWS's IAM reference (cfn-lint's Policies.json) knows",
    ),
    LinterGap(
        "RESOURCE_MISMATCH",
        _generated_rights,
        "Generated rights scope each action to the resource types AWS's current IAM reference gives it "
        "(cloudwatch:GetMetricData on datasets, vpce:AllowMultiRegion on endpoints) or to the account-wide "
        "arn:...:<service>:*:<account>:* that IAM matches against every resource type; parliament's older table "
        "and matcher expect other formats",
    ),
    LinterGap(
        "RESOURCE_STAR",
        _generated_rights,
        "Generated rights put on * only what IAM cannot scope (List*/Describe* reads, application-autoscaling, "
        "actions without resource types); the boundary is a ceiling that grants nothing by itself",
    ),
    LinterGap(
        "UNKNOWN_CONDITION_FOR_ACTION",
        lambda policy, detail: (
            "kms:ResourceAliases" in str(detail) and re.search(r"kms:(Decrypt|DescribeKey)\b", str(detail)) is not None
        ),
        "AWS KMS documents kms:ResourceAliases (ABAC) for operations on a key resource, Decrypt and DescribeKey "
        "among them; parliament's action table predates the key",
    ),
)


def _patch_parliament() -> None:
    from parliament import statement

    for key, value_type in EXTRA_GLOBAL_CONDITION_KEYS.items():
        statement.GLOBAL_CONDITION_KEYS.setdefault(key, value_type)


@dataclass(frozen=True)
class PolicyFinding:
    where: str
    severity: str
    issue: str
    title: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity} {self.issue} ({self.title}) {self.detail}"


def lint_policies(
    policies: list[ExtractedPolicy], minimum_severity: str = "LOW"
) -> tuple[list[PolicyFinding], dict[str, int]]:
    """parliament's findings (default auditors) on every policy at ``minimum_severity`` or above,
    and how many were set aside: {"gaps": KNOWN_LINTER_GAPS, "skipped": by template metadata}."""
    import parliament  # the linters' venv only: parliament pins what the product must not
    from parliament.cli import is_finding_filtered

    _patch_parliament()
    findings = []
    set_aside = {"gaps": 0, "skipped": 0}
    seen = set()
    for policy in policies:
        analysed = parliament.analyze_policy_string(json.dumps(policy.document), filepath=policy.file)
        for finding in analysed.findings:
            finding = parliament.enhance_finding(finding)
            if is_finding_filtered(finding, minimum_severity):
                continue
            if policy.kind == "key" and finding.issue == "RESOURCE_STAR":
                continue  # a key policy's "*" is the key itself
            if any(gap.issue == finding.issue and gap.applies(policy, finding.detail) for gap in KNOWN_LINTER_GAPS):
                set_aside["gaps"] += 1
                continue
            if finding.issue in policy.skips:
                set_aside["skipped"] += 1
                continue
            detail = json.dumps(finding.detail, sort_keys=True, default=str)
            key = (policy.file, policy.path, finding.issue, detail)
            if key in seen:  # the same finding in several condition variants
                continue
            seen.add(key)
            findings.append(PolicyFinding(policy.where(), finding.severity, finding.issue, finding.title, detail))
    return findings, set_aside


def skip_rows(paths: list[Path]) -> list[tuple[str, str, str, str, str]]:
    """(template, resource, linter, check id, justification) of every Metadata skip in ``paths``."""
    rows = []
    for path in paths:
        resources = load_template(path).get("Resources") or {}
        for name, resource in resources.items():
            for tool in ("checkov", "parliament"):
                for check, comment in metadata_skips(resource, tool):
                    rows.append((path.name, str(name), tool, check, " ".join(comment.split())))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.policy_lint", description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="*", type=Path, help="template files (default: templates/*.yaml)")
    parser.add_argument(
        "--minimum-severity",
        default="LOW",
        choices=["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"],
        help="report findings of this severity and above (default: LOW, parliament's default)",
    )
    parser.add_argument("--show", action="store_true", help="print each concrete policy document as linted")
    parser.add_argument(
        "--skips",
        action="store_true",
        help="print the templates' checkov/parliament skips as a Markdown table (for the README) and exit",
    )
    args = parser.parse_args(argv)

    paths = args.templates or sorted((Path(__file__).resolve().parent.parent / "templates").glob("*.yaml"))
    if args.skips:
        print("| Template | Resource | Linter | Check | Justification |\n|---|---|---|---|---|")
        for row in skip_rows(paths):
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return 0
    policies: list[ExtractedPolicy] = []
    for path in paths:
        try:
            policies.extend(extract(path))
        except (OSError, ValueError, yaml.YAMLError) as error:
            print(f"{path}: cannot read the template: {error}", file=sys.stderr)
            return 2
    if args.show:
        for policy in policies:
            print(policy.where(), json.dumps(policy.document, indent=1), sep="\n")
    findings, set_aside = lint_policies(policies, args.minimum_severity)
    for finding in findings:
        print(finding, file=sys.stderr)
    print(
        f"parliament: {len(policies)} policy document(s) in {len(paths)} template(s), {len(findings)} finding(s);"
        f" set aside: {set_aside['gaps']} known linter gap(s) (KNOWN_LINTER_GAPS in generator/policy_lint.py),"
        f" {set_aside['skipped']} skipped by a justified Metadata parliament skip",
        file=sys.stderr,
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
