"""Properties every registered template must have, stated over all of them."""

from __future__ import annotations

import json

import pytest

from generator.lint import lint_text
from generator.registry import TEMPLATES
from generator.render import render_yaml
from tests.template_props import as_list, statements

NAMES = sorted(TEMPLATES)


@pytest.fixture(scope="module")
def rendered():
    return {name: TEMPLATES[name]() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_renders_to_identical_bytes_twice(name):
    assert render_yaml(TEMPLATES[name]()) == render_yaml(TEMPLATES[name]())


@pytest.mark.parametrize("name", NAMES)
def test_lint_clean_in_every_supported_region(name):
    findings = lint_text(render_yaml(TEMPLATES[name]()), f"templates/{name}.yaml")
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("name", NAMES)
def test_no_hard_coded_partition(name, rendered):
    text = json.dumps(rendered[name].to_dict())
    assert "arn:aws:" not in text, "use Fn::Sub with ${AWS::Partition}"


def _is_own_account_root(principal) -> bool:
    text = json.dumps(principal)
    return ":iam::${AWS::AccountId}:root" in text and text.count("arn:") == 1


# The product's permissions boundary is a ceiling, not a grant: a role's effective rights are
# the intersection of its own (scoped) policies and the boundary, so the boundary names whole
# services and grants nothing by itself. It is exempt only while nothing attaches it as a policy.
BOUNDARY = ("permissions-boundary", "PermissionsBoundary")


def _is_unattached_boundary(name: str, logical_id: str, template: dict) -> bool:
    if (name, logical_id) != BOUNDARY:
        return False
    policy = template["Resources"][logical_id]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert not {"Roles", "Groups", "Users"} & set(policy["Properties"]), "the boundary is attached as a grant"
    return True


@pytest.mark.parametrize("name", NAMES)
def test_no_allow_of_wildcard_actions(name, rendered):
    """No Allow of ``*`` or ``service:*``; the exceptions are a key policy's statement that
    gives the key to the account itself (root), which IAM policies then delegate, and the
    permissions boundary (a ceiling that grants nothing)."""
    template = rendered[name].to_dict()
    for logical_id, path, statement in statements(template):
        if statement.get("Effect") != "Allow":
            continue
        if path == "KeyPolicy" and _is_own_account_root(statement.get("Principal", {}).get("AWS")):
            continue
        if _is_unattached_boundary(name, logical_id, template):
            continue
        for action in as_list(statement.get("Action", [])):
            assert action != "*" and not str(action).endswith(":*"), f"{logical_id} {path}: Allow {action}"
        assert "NotAction" not in statement, f"{logical_id} {path}: Allow with NotAction"


@pytest.mark.parametrize("name", NAMES)
def test_pass_role_never_on_wildcard(name, rendered):
    for logical_id, _path, statement in statements(rendered[name].to_dict()):
        if statement.get("Effect") == "Allow" and "iam:PassRole" in as_list(statement.get("Action", [])):
            assert "*" not in as_list(statement["Resource"]), f"{logical_id}: iam:PassRole on *"


@pytest.mark.parametrize("name", NAMES)
def test_cross_account_trust_is_pinned(name, rendered):
    """A trust policy naming an AWS principal carries an ExternalId or an organization condition,
    unless it trusts a role of a fixed name (the StackSet administration role)."""
    template = rendered[name].to_dict()
    for logical_id, path, statement in statements(template):
        if path != "AssumeRolePolicyDocument" or "AWS" not in statement.get("Principal", {}):
            continue
        condition = json.dumps(statement.get("Condition", {}))
        if _is_own_account_root(statement["Principal"]["AWS"]):
            continue  # same account: IAM policies of its principals decide
        principals = json.dumps(statement["Principal"]["AWS"])
        pinned = "sts:ExternalId" in condition or "aws:PrincipalOrgID" in condition
        names_a_role = ":role/" in principals
        assert pinned or names_a_role, f"{logical_id}: cross-account trust of an account root without ExternalId/org"
