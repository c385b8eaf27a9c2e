"""The naive way: what the public samples do to roll a stack set out to many accounts.

For each stack set, in the order given (dependencies first):

1. ``DescribeStackSet``; ``CreateStackSet`` when missing, otherwise ``UpdateStackSet``
   with the template and parameters (a sample cannot tell whether they changed) and wait;
2. resolve the targets: ``ListAccountsForParent`` for each OU (service-managed) or the
   account list (self-managed), and ``ListStackInstances`` to know which exist;
3. a loop over every account and region: ``CreateStackInstances`` for that one account
   and region when the instance is missing, ``UpdateStackInstances`` (pushing its
   parameter overrides) when it exists, and wait for that operation to finish by polling
   ``DescribeStackSetOperation`` before the next.

The wait polls at once and then backs off: the emulator finishes every operation
immediately, so each wait costs one poll here. On AWS each operation runs for tens of
seconds and its wait costs several polls, so the baseline's counts are a floor.

``plan`` is what such a script reads to show what it would do: the stack set, the OUs'
accounts and the instances.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class NaiveRollout:
    """The baseline, on clients of the management account (``deploy.common.clients.Clients``)."""

    def __init__(self, clients, admin_region: str, poll_cap: float = 2.0) -> None:
        self.cfn = clients.client("cloudformation", admin_region)
        self.org = clients.client("organizations", admin_region)
        self.poll_cap = poll_cap

    # ------------------------------------------------------------------ reads

    def _stack_set_exists(self, name: str) -> bool:
        try:
            self.cfn.describe_stack_set(StackSetName=name)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "StackSetNotFoundException":
                return False
            raise

    def _accounts(self, spec: dict) -> list[tuple[str, str | None]]:
        """(account, OU) pairs the stack set targets."""
        if spec["accounts"] is not None:
            return [(account, None) for account in spec["accounts"]]
        pairs = []
        paginator = self.org.get_paginator("list_accounts_for_parent")
        for ou in spec["ous"]:
            for page in paginator.paginate(ParentId=ou):
                pairs.extend((account["Id"], ou) for account in page["Accounts"])
        return pairs

    def _instances(self, name: str) -> set[tuple[str, str]]:
        found = set()
        for page in self.cfn.get_paginator("list_stack_instances").paginate(StackSetName=name):
            found.update((item["Account"], item["Region"]) for item in page["Summaries"])
        return found

    def _wait(self, name: str, operation_id: str) -> str:
        delay = 0.0
        while True:
            if delay:
                time.sleep(delay)
            status = self.cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)[
                "StackSetOperation"
            ]["Status"]
            if status in TERMINAL:
                if status != "SUCCEEDED":
                    raise RuntimeError(f"{name}: operation {operation_id} ended {status}")
                return status
            delay = min(max(delay * 2, 0.25), self.poll_cap)

    # ------------------------------------------------------------------ commands

    def apply(self, desired: dict[str, dict]) -> None:
        """Roll every stack set of ``desired`` out, one account and region at a time."""
        for name, spec in desired.items():
            parameters = [{"ParameterKey": key, "ParameterValue": value} for key, value in spec["parameters"].items()]
            if not self._stack_set_exists(name):
                extra = (
                    {"AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False}}
                    if spec["permission_model"] == "SERVICE_MANAGED"
                    else {}
                )
                self.cfn.create_stack_set(
                    StackSetName=name,
                    TemplateBody=spec["template_body"],
                    Parameters=parameters,
                    PermissionModel=spec["permission_model"],
                    **extra,
                )
            else:
                operation = self.cfn.update_stack_set(
                    StackSetName=name, TemplateBody=spec["template_body"], Parameters=parameters
                )
                self._wait(name, operation["OperationId"])
            existing = self._instances(name)
            for account, ou in self._accounts(spec):
                for region in spec["regions"]:
                    if ou is None:
                        targets = {"Accounts": [account]}
                    else:
                        targets = {
                            "OrganizationalUnitIds": [ou],
                            "Accounts": [account],
                            "AccountFilterType": "INTERSECTION",
                        }
                    overrides = [
                        {"ParameterKey": key, "ParameterValue": value}
                        for key, value in spec["overrides"].get(account, {}).items()
                    ]
                    if (account, region) in existing:
                        operation = self.cfn.update_stack_instances(
                            StackSetName=name, DeploymentTargets=targets, Regions=[region], ParameterOverrides=overrides
                        )
                    else:
                        operation = self.cfn.create_stack_instances(
                            StackSetName=name, DeploymentTargets=targets, Regions=[region], ParameterOverrides=overrides
                        )
                    self._wait(name, operation["OperationId"])

    def plan(self, desired: dict[str, dict]) -> dict[str, dict]:
        """What would change, as such a script finds out: missing instances per stack set."""
        report = {}
        for name, spec in desired.items():
            if not self._stack_set_exists(name):
                report[name] = {"create": True, "missing": len(spec["regions"]) * len(self._accounts(spec))}
                continue
            existing = self._instances(name)
            wanted = {(account, region) for account, _ in self._accounts(spec) for region in spec["regions"]}
            report[name] = {"create": False, "missing": len(wanted - existing)}
        return report
