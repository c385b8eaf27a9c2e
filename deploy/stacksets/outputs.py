"""Outputs of a stack set's instances, for ``{output: ...}`` lookups.

The administrator account lists the instances (``ListStackInstances`` gives each one's
``StackId``); the outputs live in the member accounts, so each is read by assuming the
manifest's ``output_reader_role`` there (default ``OrganizationAccountAccessRole``) and
describing the instance stack. Every stack is read once per run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from deploy.common.clients import Clients
from deploy.common.errors import error_code, error_message
from deploy.common.values import LookupFailed, NotYetKnown

DEFAULT_READER_ROLE = "OrganizationAccountAccessRole"
SESSION_NAME = "sagemaker-stackset-deploy-outputs"


@dataclass(frozen=True)
class _Instance:
    account: str
    region: str
    stack_id: str | None


class StackSetOutputs:
    """``(stack set, key, account | None, region | None) -> values``, in (account, region) order."""

    def __init__(self, clients: Clients, region: str, reader_role: str = DEFAULT_READER_ROLE, call_as=None):
        self.clients, self.region, self.reader_role = clients, region, reader_role
        self.call_as = call_as or (lambda stack_set: "SELF")  # the producer's CallAs
        self._stacks: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, stack_set: str, key: str, account: str | None, region: str | None) -> list[str]:
        instances = [
            i
            for i in self._instances(stack_set)
            if (account is None or i.account == account) and (region is None or i.region == region)
        ]
        where = " ".join(filter(None, [account and f"account {account}", region and f"region {region}"]))
        if not instances or any(i.stack_id is None for i in instances):
            raise NotYetKnown(f"stack set {stack_set} has no deployed instance{f' in {where}' if where else ''} yet")
        values = []
        for instance in sorted(instances, key=lambda i: (i.account, i.region)):
            outputs = self._outputs(instance)
            if key not in outputs:
                known = ", ".join(sorted(outputs)) or "none"
                raise LookupFailed(
                    f"the stack of stack set {stack_set} in {instance.account} {instance.region} has no output "
                    f"{key!r} (its outputs: {known})"
                )
            values.append(outputs[key])
        return values

    def _instances(self, stack_set: str) -> list[_Instance]:
        cfn = self.clients.client("cloudformation", self.region)
        try:
            pages = cfn.get_paginator("list_stack_instances").paginate(
                StackSetName=stack_set, CallAs=self.call_as(stack_set)
            )
            return [
                _Instance(s["Account"], s["Region"], s.get("StackId"))
                for page in pages
                for s in page.get("Summaries", [])
            ]
        except ClientError as error:
            if error_code(error) == "StackSetNotFoundException":
                raise NotYetKnown(f"stack set {stack_set} does not exist yet") from None
            raise LookupFailed(f"listing the instances of {stack_set} failed ({error_code(error)})") from None

    def _outputs(self, instance: _Instance) -> dict[str, str]:
        assert instance.stack_id is not None
        with self._lock:
            cached = self._stacks.get(instance.stack_id)
        if cached is not None:
            return cached
        session = self._session(instance.account)
        try:
            cfn = session.client("cloudformation", region_name=instance.region, config=self.clients.config)
            stacks = cfn.describe_stacks(StackName=instance.stack_id)["Stacks"]
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(
                f"reading the stack {instance.stack_id} in {instance.account} failed "
                f"({error_code(error) or type(error).__name__}): {error_message(error)}"
            ) from None
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in (stacks[0].get("Outputs") or [])} if stacks else {}
        with self._lock:
            self._stacks[instance.stack_id] = outputs
        return outputs

    def _session(self, account: str):
        import boto3

        sts = self.clients.client("sts", self.region)
        try:
            partition = sts.get_caller_identity()["Arn"].split(":")[1]
            role = f"arn:{partition}:iam::{account}:role/{self.reader_role}"
            credentials = sts.assume_role(RoleArn=role, RoleSessionName=SESSION_NAME)["Credentials"]
        except (BotoCoreError, ClientError) as error:
            raise LookupFailed(
                f"cannot assume {self.reader_role} in account {account} to read stack outputs "
                f"({error_code(error) or type(error).__name__}): set output_reader_role in the manifest to a role "
                "the administrator account may assume there"
            ) from None
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
