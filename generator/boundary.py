"""The product's permissions boundary: the ceiling of every role the templates create.

``permissions-boundary`` ships it as a managed policy, ``<EnvName>-permissions-boundary``,
deployed by the platform administrator before anything else (the deploying roles may not
change it). Every role of every registered template carries it (:func:`with_boundary`, applied
by the registry, so a new template's roles get it without hand edits), and the deploying
roles may create or change roles only with it (``generator.deploy_rights``).

The boundary allows the actions the product uses (computed from the templates' policies
and the registry schemas of their resource types: the big services whole, the others action
by action, IAM on the product's names) and denies what would lift a role out of it: removing
or replacing a boundary, changing the boundary policy, attaching a policy that is not the
product's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from awacs.aws import Action, Statement
from troposphere import Output, Parameter, Ref, Sub, Template
from troposphere.iam import ManagedPolicy

from generator import deploy_rights
from generator.parameters import add_primary_region
from generator.policies import document

BOUNDARY_SUFFIX = "permissions-boundary"
BOUNDARY_TITLE = "PermissionsBoundary"
DEFAULT_PREFIX = "mlops-"
# These services' actions stay named one by one in the boundary, on the resources IAM scopes
# them to: a service wildcard would include writes that lift a role out of it (IAM) or run
# code as another role (lambda:UpdateFunctionCode).
EXPLICIT_SERVICES = ("iam", "lambda")
# The services allowed whole (``service:*``): the big ones, which, named action by action,
# would take the boundary past a managed policy's 6,144 characters (about 300 actions). Every
# other service is named action by action on "*": a wildcard there would admit the
# permissions management the product never uses (sso:CreatePermissionSet,
# servicecatalog:CreatePortfolioShare, sns:AddPermission, ssm:PutResourcePolicy,
# codebuild:PutResourcePolicy, elasticfilesystem:PutFileSystemPolicy...).
WILDCARD_SERVICES = (
    "application-autoscaling",
    "cloudformation",
    "cloudwatch",
    "codepipeline",
    "ec2",
    "ecr",
    "events",
    "kms",
    "logs",
    "s3",
    "s3tables",
    "sagemaker",
)
_ACTION = re.compile(r"^([a-z0-9-]+):([A-Za-z0-9*]+)$")


# checkov reads a boundary as a grant. These checks (not the escalation one, CKV_AWS_110,
# which passes: IAM actions are on the product's names only) do not apply to a ceiling.
_CEILING_CHECKS = ("CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_111")
_CEILING = (
    "A permissions boundary grants nothing: it caps the product's roles, whose own policies are "
    "scoped; it allows the product's services on any resource because models are read across accounts"
)
# CKV_AWS_109 (permissions management on "*"): what is left of it are the resource-policy
# writes inside the WILDCARD_SERVICES (s3:PutBucketPolicy, kms:PutKeyPolicy, kms:CreateGrant,
# ecr:SetRepositoryPolicy, ec2:CreateNetworkInterfacePermission, cloudformation:SetStackPolicy...).
# The product needs most of them (its templates write bucket, key and repository policies); naming them on product
# resources is not possible (bucket and key names are generated, models are read across
# accounts), and naming those services action by action does not fit a managed policy.
_PERMISSIONS_MANAGEMENT = (
    "The boundary grants nothing. Permissions management left in it: the resource-policy writes of "
    "s3, kms, ecr, ec2 and cloudformation (allowed whole: too many actions to name), which the deploying "
    "roles need on generated names; IAM writes are named on the product's names with the boundary "
    "condition, every other service action by action"
)
_SKIPS = sorted([*((check, _CEILING) for check in _CEILING_CHECKS), ("CKV_AWS_109", _PERMISSIONS_MANAGEMENT)])


def boundary_name(prefix: str = "${EnvName}-") -> str:
    return f"{prefix}{BOUNDARY_SUFFIX}"


def boundary_arn(prefix: str = "${EnvName}-") -> Sub:
    return Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{boundary_name(prefix)}")


def _prefix_of(template: Template) -> str:
    """The name prefix a template's roles share, from its parameters (one is added when none fits)."""
    if "EnvName" in template.parameters:
        return "${EnvName}-"
    if "PassRoleNamePrefix" in template.parameters:
        return "${PassRoleNamePrefix}"
    template.add_parameter(
        Parameter(
            "BoundaryNamePrefix",
            Type="String",
            Default=DEFAULT_PREFIX,
            Description="Prefix of the product's permissions boundary policy (<EnvName>-): every role here carries it",
            AllowedPattern=r"^[\w+=,.@-]{1,64}$",
            ConstraintDescription="characters of an IAM policy name",
        )
    )
    return "${BoundaryNamePrefix}"


def with_boundary(builder: Callable[[], Template]) -> Callable[[], Template]:
    """``builder``, with the product's boundary on every role its template creates."""

    def build() -> Template:
        template = builder()
        roles = [r for r in template.resources.values() if r.resource_type == "AWS::IAM::Role"]
        if roles:
            arn = boundary_arn(_prefix_of(template))
            for role in roles:
                if "PermissionsBoundary" not in role.properties:
                    role.PermissionsBoundary = arn
        return template

    build.__doc__ = builder.__doc__
    build.__wrapped__ = builder  # type: ignore[attr-defined]
    return build


def _actions(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Action":
                yield from (v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
            else:
                yield from _actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _actions(item)


def identity_actions(templates: Iterable[dict]) -> set[str]:
    """Every action named in the identity policies of ``templates`` (``to_dict()`` forms)."""
    found: set[str] = set()
    for template in templates:
        for resource in template.get("Resources", {}).values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Role":
                found.update(_actions(properties.get("Policies", [])))
            elif resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                found.update(_actions(properties.get("PolicyDocument", {})))
    return {a for a in found if _ACTION.match(a)}


def boundary_statements(actions: Iterable[str], names: deploy_rights.Names) -> list[Statement]:
    """Allow every service of ``actions`` (IAM action by action), deny what escapes the boundary."""
    actions = set(actions)
    services = sorted({a.split(":", 1)[0] for a in actions} & set(WILDCARD_SERVICES))
    # A schema's permission that is no IAM action (IAM never asks for it) is left out.
    named = sorted(
        a
        for a in actions
        if a.split(":", 1)[0] not in set(WILDCARD_SERVICES) | set(EXPLICIT_SERVICES)
        and ("*" in a or deploy_rights.is_iam_action(a))
    )
    iam_actions = sorted(
        a
        for a in actions
        if a.split(":", 1)[0] in EXPLICIT_SERVICES
        and "*" not in a
        and a not in deploy_rights.FORBIDDEN | {"iam:PassRole"}
    )
    allows = [
        Statement(Sid="ProductServices", Effect="Allow", Action=[Action(s, "*") for s in services], Resource=["*"]),
        Statement(
            Sid="ProductActions",
            Effect="Allow",
            Action=[Action(*a.split(":", 1)) for a in named],
            Resource=["*"],
        ),
        *(
            Statement(
                Sid=f"ProductIamActions{number}",
                Effect="Allow",
                Action=[Action(*a.split(":", 1)) for a in group],
                Resource=[deploy_rights._sub(r) for r in resources],
            )
            for number, (resources, group) in enumerate(_by_resources(iam_actions, names), start=1)
        ),
        Statement(
            Sid="PassProductRolesOnly",
            Effect="Allow",
            Action=[Action("iam", "PassRole")],
            Resource=[Sub(arn) for arn in names.product("role")],
        ),
    ]
    return allows + deploy_rights.escalation_denies(names)


def _by_resources(actions: list[str], names: deploy_rights.Names) -> list[tuple[tuple, list[str]]]:
    groups: dict[tuple, list[str]] = {}
    for action in actions:
        groups.setdefault(tuple(deploy_rights.action_resources(action, names)), []).append(action)
    return sorted(groups.items(), key=lambda item: item[1])


def product_actions() -> set[str]:
    """What any role of the product may need: its templates' identity policies and every
    handler permission of their resource types (the deploying roles are bounded too)."""
    from generator.registry import TEMPLATES

    templates = {name: builder().to_dict() for name, builder in TEMPLATES.items() if name != "permissions-boundary"}
    types = {r["Type"] for t in templates.values() for r in t.get("Resources", {}).values()}
    return identity_actions(templates.values()) | set(deploy_rights.handler_permissions(types))


def build_permissions_boundary_template() -> Template:
    """The product's permissions boundary, one managed policy per account (primary region)."""
    template = Template(
        Description=(
            "The product's permissions boundary: every role the product's templates create carries it, "
            "and the deploying roles may create roles only with it. Deploy it first, as an administrator"
        )
    )
    template.add_parameter(
        Parameter(
            "EnvName",
            Type="String",
            Default="mlops",
            Description="Environment name: the boundary is <EnvName>-permissions-boundary",
            AllowedPattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$",
            ConstraintDescription="lower-case letters, digits and hyphens",
        )
    )
    primary = add_primary_region(template)
    names = deploy_rights.Names(
        prefixes=("${EnvName}-", "StackSet-", "SC-"), boundary=boundary_name(), protected_roles=()
    )
    policy = template.add_resource(
        ManagedPolicy(
            BOUNDARY_TITLE,
            Condition=primary.condition,
            ManagedPolicyName=Sub(boundary_name()),
            Description="Ceiling of every role the product creates; grants nothing by itself",
            Metadata={"checkov": {"skip": [{"id": check, "comment": comment} for check, comment in _SKIPS]}},
            PolicyDocument=document(*boundary_statements(product_actions(), names)),
        )
    )
    template.add_output(Output("PermissionsBoundaryArn", Condition=primary.condition, Value=Ref(policy)))
    return template
