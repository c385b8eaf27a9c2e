"""Shared fixtures. ``local_aws``: the same local AWS as ``python -m deploy local up``.

One server per test session (per xdist worker), on a free loopback port, seeded from
examples/local-org.yaml and stopped at the end, even when the run is killed (the server
watches the pytest pid). ``local_aws`` points the test's environment at it, so the
deploy CLI and boto3 reach it unchanged. Tests share the server's state: use names
unique to the test, or call ``local_aws.reset()`` for a freshly seeded Organization.

``workdir``: a project folder holding ``templates/marker.yaml`` (``MARKER_TEMPLATE``), for
the deployer's end-to-end tests.
"""

from __future__ import annotations

import json
import os
import textwrap
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from localaws import lifecycle
from localaws.seed import load_org_file, seed, write_state

ROOT = Path(__file__).resolve().parents[1]
ORG_FILE = ROOT / "examples" / "local-org.yaml"

MARKER_TEMPLATE = textwrap.dedent(
    """\
    AWSTemplateFormatVersion: '2010-09-09'
    Description: A test template with one SSM parameter
    Parameters:
      EnvName:
        Type: String
        Default: mlops
      Size:
        Type: String
        AllowedValues: [small, large]
        Default: small
      Secret:
        Type: String
        NoEcho: true
        Default: hidden
    Resources:
      Marker:
        Type: AWS::SSM::Parameter
        Properties:
          Name: !Sub '/${EnvName}/marker-${AWS::Region}-${Size}'
          Type: String
          Value: !Ref Size
    """
)


@dataclass
class LocalAWS:
    """A running, seeded local AWS: its endpoint, the seeded ids and client helpers."""

    endpoint_url: str
    state_dir: Path
    state: dict
    _sessions: dict = field(default_factory=dict, repr=False)

    @property
    def region(self) -> str:
        return self.state["region"]

    @property
    def management_account_id(self) -> str:
        return self.state["management_account"]["id"]

    @property
    def env(self) -> dict[str, str]:
        return lifecycle.environment(self.endpoint_url, self.region)

    def account_id(self, name: str) -> str:
        """The id of the seeded account ``name`` (as in the org file)."""
        return self.state["accounts"][name]["id"]

    def ou_id(self, path: str) -> str:
        """The id of the seeded OU at ``path`` (``development``, ``workloads/staging``)."""
        return self.state["organizational_units"][path]

    def accounts_in(self, path: str) -> list[str]:
        """Ids of the seeded accounts directly in OU ``path``, in org-file order."""
        return [account["id"] for account in self.state["accounts"].values() if account["ou"] == path]

    def session(self, account: str | None = None) -> boto3.session.Session:
        """A session of the management account, or of member ``account`` (name or id).

        A member's session acts through its OrganizationAccountAccessRole.
        """
        if account not in self._sessions:
            self._sessions[account] = self._new_session(account)
        return self._sessions[account]

    def _new_session(self, account: str | None) -> boto3.session.Session:
        base = boto3.session.Session(
            region_name=self.region, **{key.lower(): value for key, value in lifecycle.DUMMY_CREDENTIALS.items()}
        )
        if account is None:
            return base
        account_id = self.state["accounts"][account]["id"] if account in self.state["accounts"] else account
        credentials = base.client("sts", endpoint_url=self.endpoint_url).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="tests"
        )["Credentials"]
        return boto3.session.Session(
            region_name=self.region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def client(self, service: str, account: str | None = None, region: str | None = None):
        return self.session(account).client(service, endpoint_url=self.endpoint_url, region_name=region or self.region)

    def deploy_permissions_boundary(self, account: str | None = None, env_name: str = "mlops") -> str:
        """The product's boundary in ``account`` (default: the management account), deployed as a user
        deploys it before any template whose roles carry it (IAM refuses a boundary that does not
        exist); kept when it already exists. Returns its ARN."""
        member = None if account in (None, self.management_account_id) else account  # None: the caller's own
        arn = f"arn:aws:iam::{account or self.management_account_id}:policy/{env_name}-permissions-boundary"
        iam = self.client("iam", member)
        try:
            iam.get_policy(PolicyArn=arn)
            return arn
        except iam.exceptions.NoSuchEntityException:
            pass
        cloudformation = self.client("cloudformation", member)
        cloudformation.create_stack(
            StackName=f"{env_name}-permissions-boundary",
            TemplateBody=(ROOT / "templates" / "permissions-boundary.yaml").read_text(),
            Parameters=[{"ParameterKey": "EnvName", "ParameterValue": env_name}],
        )
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=f"{env_name}-permissions-boundary", WaiterConfig={"Delay": 1}
        )
        return arn

    def control(self, patch: str, **values) -> dict:
        """Set run-time options of a local patch (``control("stacksets", operation_polls=2)``); return its settings."""
        query = urllib.parse.urlencode(values)
        request = urllib.request.Request(f"{self.endpoint_url}/_local/control/{patch}?{query}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        """Forget everything on the server and seed the Organization again (same ids)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"), timeout=30
        ).close()
        self._sessions.clear()  # the assumed-role keys died with the reset
        self.state = {**self.state, **seed(self.endpoint_url, load_org_file(self.state["org_file"]))}
        write_state(self.state_dir, self.state)


@pytest.fixture(scope="session")
def local_aws_server(tmp_path_factory) -> LocalAWS:
    """The session's local AWS server, started and seeded like ``local up``."""
    state_dir = tmp_path_factory.mktemp("local-aws")
    state, _ = lifecycle.up(state_dir, org_file=ORG_FILE, watch_pid=os.getpid())
    try:
        yield LocalAWS(endpoint_url=state["endpoint_url"], state_dir=state_dir, state=state)
    finally:
        lifecycle.stop(state_dir)


@pytest.fixture
def local_aws(local_aws_server, monkeypatch) -> LocalAWS:
    """The local AWS, with this test's environment pointing boto3 at it (dummy credentials)."""
    for key in lifecycle.UNSET_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    # A developer's ~/.aws (profiles, endpoint or retry settings) must not leak into tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for key, value in local_aws_server.env.items():
        monkeypatch.setenv(key, value)
    return local_aws_server


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A project folder with ``templates/marker.yaml``."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "marker.yaml").write_text(MARKER_TEMPLATE)
    return tmp_path
