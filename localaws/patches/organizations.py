"""Organizations: what moto 5.2.5 answers that AWS no longer does, or refuses that AWS accepts.

- ``Account.Status`` is gone: botocore's model says "The Status parameter in the Account
  object will be retired on September 9, 2026." and to "use the State parameter instead";
  DescribeAccount, ListAccounts and ListAccountsForParent answer ``State`` only, so a
  caller still reading ``Status`` fails here as it does on AWS.
- CloudFormation StackSets (``member.org.stacksets.cloudformation.amazonaws.com``) can have a
  delegated administrator (User Guide, stacksets-orgs-delegated-admin: "member accounts with
  delegated administrator permissions can create and manage StackSets with service-managed
  permissions"); moto's list of supported services lacks it.
"""

from __future__ import annotations

from typing import Any

from moto.organizations import models

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"

_original: dict[str, Any] = {}


def _describe(self) -> dict[str, Any]:
    data = _original["describe"](self)
    data.pop("Status", None)
    return data


def apply() -> None:
    """Install the changes above (idempotent)."""
    if _original:
        return
    _original["describe"] = models.FakeAccount.describe
    models.FakeAccount.describe = _describe
    if STACKSETS_PRINCIPAL not in models.FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        models.FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACKSETS_PRINCIPAL)
