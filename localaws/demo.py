"""The main job, offline: ``python -m localaws.demo`` (``make demo`` calls it).

Part of :mod:`localaws` (the demo is not a ``deploy`` command): it drives the deployer
through its command line, ``deploy.cli.main``, exactly as a user would.

Starts its own local AWS (a state dir of its own, so a developer's ``local up`` is left
alone), then runs the same commands a user runs against AWS: ``publish`` the catalog,
``plan`` and ``apply --yes`` the manifest, ``status``, and a cross-account ``invoke``
(the consumer account assumes the endpoint-invoke role of the account hosting the
endpoint, with the ExternalId). It always stops the server, and ends with what now
exists in which account. Exit status: 0 when every step succeeded, else the failing
step's status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import yaml

from deploy.common.config import load_yaml_file
from deploy.common.errors import DeployError, InputError
from deploy.common.refs import OrganizationsResolver
from deploy.common.values import Lookup, ValueResolver, parse_value
from localaws import DUMMY_CREDENTIALS, lifecycle

DEFAULT_MANIFEST = "examples/manifest.yaml"
DEFAULT_CATALOG = "examples/catalog.yaml"
DEFAULT_ORG = "examples/local-org.yaml"
DEFAULT_STATE_DIR = ".local-aws/demo"
INVOKE_TEMPLATE = "endpoint-invoke-role.yaml"
# The local AWS has no model behind an endpoint: the demo queues this answer, and says so.
# Roles the seeding created (AWS creates them with the Organization): not the demo's doing.
_SEEDED_ROLES = {"OrganizationAccountAccessRole", "AWSCloudFormationStackSetAdministrationRole"}
CANNED_ANSWER = {
    "predictions": [{"churn_probability": 0.13}],
    "note": "canned answer of the local AWS: no model runs offline",
}


class DemoFailed(DeployError):
    """A step of the demo failed; its own output says why."""

    def __init__(self, step: str, code: int):
        self.step, self.exit_code = step, code or 1
        super().__init__(f"demo stopped: step '{step}' exited with status {code}")


def _say(text: str) -> None:
    print(text, flush=True)


def _step(number: int, total: int, title: str) -> None:
    _say(f"\n==> [{number}/{total}] {title}")


def _run(step: str, argv: list[str]) -> None:
    """Run one deploy command in-process, exactly as ``python -m deploy ...`` would."""
    from deploy.cli import main

    _say("$ python -m deploy " + " ".join(argv))
    sys.stdout.flush()
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if code != 0:
        raise DemoFailed(step, code)


def _member_session(state: dict, account_id: str) -> boto3.session.Session:
    """A session in ``account_id`` through the role AWS creates with every member account."""
    base = boto3.session.Session(
        region_name=state["region"], **{key.lower(): value for key, value in DUMMY_CREDENTIALS.items()}
    )
    if account_id == state["management_account"]["id"]:
        return base
    credentials = base.client("sts", endpoint_url=state["endpoint_url"]).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="demo"
    )["Credentials"]
    return boto3.session.Session(
        region_name=state["region"],
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _accounts(state: dict) -> list[tuple[str, str, str]]:
    """(name, id, OU) of the management account and every member, in org-file order."""
    management = state["management_account"]
    return [(management["name"], management["id"], "root")] + [
        (name, a["id"], a["ou"] or "root") for name, a in state["accounts"].items()
    ]


# The change the demo plans (never applies): a larger instance type for the endpoints, which
# CloudFormation can only make by replacing the endpoint configuration in every instance.
CHANGED_STACK_SET, CHANGED_PARAMETERS = "ml-model-deploy", {"InstanceType": "ml.m5.xlarge"}


@contextlib.contextmanager
def changed_manifest(manifest_path: str, stack_set: str, parameters: dict) -> Iterator[str]:
    """A copy of the manifest (beside it, so template paths still resolve) with ``parameters``
    set on ``stack_set``; removed afterwards."""
    source = Path(manifest_path)
    document = load_yaml_file(source, "manifest")
    document["id"] = document.get("id") or source.stem  # the same owner as the original
    for item in document.get("stack_sets") or []:
        if item.get("name") == stack_set:
            item["parameters"] = {**(item.get("parameters") or {}), **parameters}
    handle, name = tempfile.mkstemp(prefix=".demo-change-", suffix=".yaml", dir=source.parent)
    os.close(handle)
    try:
        Path(name).write_text(yaml.safe_dump(document, sort_keys=False))
        yield name
    finally:
        Path(name).unlink(missing_ok=True)


def _manifest_values(manifest_path: str) -> list[tuple[str, dict, object]]:
    """(stack set name, its item, value) for every parameter and override value of the manifest."""
    manifest = load_yaml_file(manifest_path, "manifest") or {}
    found = []
    for item in manifest.get("stack_sets") or []:
        groups = [item.get("parameters") or {}] + [o.get("parameters") or {} for o in item.get("overrides") or []]
        found += [(item.get("name"), item, value) for group in groups for value in group.values()]
    return found


def seed_secret_sources(manifest_path: str, ssm) -> None:
    """Give every ``{ssm: NAME}`` and ``{env: VAR}`` lookup of the manifest a random value where
    the local AWS (or the environment) has none, as an operator would before the first apply."""
    for stack_set, _, value in _manifest_values(manifest_path):
        if not isinstance(value, dict):
            continue
        if "ssm" in value:
            try:
                ssm.get_parameter(Name=value["ssm"])
            except ssm.exceptions.ParameterNotFound:
                ssm.put_parameter(Name=value["ssm"], Value=secrets.token_urlsafe(24), Type="SecureString")
                _say(f"  seeded SSM SecureString {value['ssm']} with a random value (not shown) for {stack_set}")
        elif "env" in value and value["env"] not in os.environ:
            os.environ[value["env"]] = secrets.token_urlsafe(24)
            _say(f"  set ${value['env']} to a random value (not shown) for {stack_set}")


def invoke_parameters(manifest_path: str, values: ValueResolver) -> dict:
    """ExternalId, consumer account and role name of the manifest's endpoint-invoke stack set
    (an ExternalId given as a lookup is resolved as the deployer resolves it)."""
    for stack_set in {name: item for name, item, _ in _manifest_values(manifest_path)}.values():
        if str(stack_set.get("template", "")).endswith(INVOKE_TEMPLATE):
            parameters = stack_set.get("parameters") or {}
            missing = [key for key in ("ExternalId", "ConsumerAccountId") if not parameters.get(key)]
            if missing:
                raise InputError(
                    f"the endpoint-invoke stack set needs {' and '.join(missing)} for the demo's invoke",
                    source=manifest_path,
                    where=stack_set.get("name"),
                    key=missing[0],
                )
            external_id, consumer = (parse_value(parameters[key]) for key in ("ExternalId", "ConsumerAccountId"))
            if isinstance(external_id, Lookup):
                external_id = values.resolve(external_id).value
            if isinstance(consumer, Lookup):
                consumer = values.resolve(consumer).value
            role = f"{parameters.get('EnvName', 'mlops')}-{parameters.get('EnvType', 'prod')}-endpoint-invoke"
            return {
                "external_id": values.resolve(external_id).value
                if isinstance(external_id, Lookup)
                else str(external_id),
                "consumer": str(consumer),
                "role_name": role,
            }
    raise InputError(
        f"no stack set deploys templates/{INVOKE_TEMPLATE}: the demo's cross-account invoke needs one",
        source=manifest_path,
    )


def find_invoke_target(state: dict, role_name: str) -> tuple[str, str]:
    """(account id, endpoint name) of the first member account with the invoke role and a serving endpoint."""
    for _, account_id, _ in _accounts(state)[1:]:
        session = _member_session(state, account_id)
        iam = session.client("iam", endpoint_url=state["endpoint_url"])
        try:
            iam.get_role(RoleName=role_name)
        except iam.exceptions.NoSuchEntityException:
            continue
        sagemaker = session.client("sagemaker", endpoint_url=state["endpoint_url"])
        endpoints = [
            e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"] if e["EndpointStatus"] == "InService"
        ]
        if endpoints:
            return account_id, sorted(endpoints)[0]
    raise DeployError(
        f"no member account has both the role {role_name} and an InService endpoint after apply: "
        "the manifest must deploy the endpoint-invoke role and model-deploy to the same account"
    )


def _queue_canned_answer(state: dict, account_id: str) -> None:
    payload = json.dumps(
        {
            "account_id": account_id,
            "region": state["region"],
            "results": [{"Body": json.dumps(CANNED_ANSWER), "ContentType": "application/json"}],
        }
    ).encode()
    request = urllib.request.Request(
        f"{state['endpoint_url']}/moto-api/static/sagemaker/endpoint-results",
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def demo_invoke(state: dict, manifest_path: str) -> None:
    """The consumer account invokes the endpoint through the endpoint-invoke role, as a user would."""
    management = boto3.session.Session(region_name=state["region"])
    organizations = OrganizationsResolver(management.client("organizations"))
    values = ValueResolver(lambda service: management.client(service), organizations=organizations)
    target = invoke_parameters(manifest_path, values)
    account_id, endpoint = find_invoke_target(state, target["role_name"])
    _queue_canned_answer(state, account_id)
    consumer = _member_session(state, target["consumer"]).get_credentials()
    names = {a_id: name for name, a_id, _ in _accounts(state)}
    _say(
        f"consumer {names.get(target['consumer'], target['consumer'])} ({target['consumer']}) -> "
        f"endpoint {endpoint} in {names.get(account_id, account_id)} ({account_id}); "
        "ExternalId from $SM_INVOKE_EXTERNAL_ID (not shown)"
    )
    # The endpoint role's trust (ExternalId condition) is evaluated by the local STS: a wrong
    # ExternalId must be refused before the right one is shown to work.
    consumer_sts = _member_session(state, target["consumer"]).client("sts", endpoint_url=state["endpoint_url"])
    role_arn = f"arn:aws:iam::{account_id}:role/{target['role_name']}"
    try:
        consumer_sts.assume_role(RoleArn=role_arn, RoleSessionName="demo-wrong-id", ExternalId="wrong-external-id")
    except consumer_sts.exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "AccessDenied":
            raise
        _say(f"with a wrong ExternalId: refused ({error.response['Error']['Code']}), as AWS refuses it")
    else:
        raise DeployError(f"{role_arn} was assumed with a wrong ExternalId: its trust policy does not check it")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as body:
        body.write(json.dumps({"customer_id": "C-1042", "tenure_months": 7, "monthly_charges": 84.5}))
    credentials = {
        "AWS_ACCESS_KEY_ID": consumer.access_key,
        "AWS_SECRET_ACCESS_KEY": consumer.secret_key,
        "SM_INVOKE_EXTERNAL_ID": target["external_id"],
    }
    unset = ("AWS_SESSION_TOKEN",) if not consumer.token else ()
    if consumer.token:
        credentials["AWS_SESSION_TOKEN"] = consumer.token
    try:
        with lifecycle.environment_set(credentials, unset):
            _run(
                "invoke",
                [
                    "invoke",
                    "--endpoint",
                    endpoint,
                    "--account",
                    account_id,
                    "--role-name",
                    target["role_name"],
                    "--body",
                    body.name,
                ],
            )
    finally:
        os.unlink(body.name)


def deploy_launch_role(state: dict) -> None:
    """The boundary and the catalog's launch role in the publishing (management) account, before ``publish``.

    A launch constraint's role "must exist in the account used to create the launch constraint"
    and stack sets never deploy to the management account (service-managed), so the publisher
    deploys templates/servicecatalog-launch-role.yaml there as a stack, as a user would once.
    """
    cfn = _member_session(state, state["management_account"]["id"]).client(
        "cloudformation", endpoint_url=state["endpoint_url"]
    )
    # The launch role carries the product's permissions boundary, which must exist first (IAM
    # refuses CreateRole with a boundary policy that does not exist): the boundary stack first.
    for stack_name in ("permissions-boundary", "servicecatalog-launch-role"):
        _say(f"deploying templates/{stack_name}.yaml to the publishing account (stack {stack_name})")
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=Path(f"templates/{stack_name}.yaml").read_text(),
            Parameters=[{"ParameterKey": "EnvName", "ParameterValue": "mlops"}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        cfn.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig={"Delay": 1})


def collect_summary(state: dict) -> list[dict]:
    """What exists in which account: stack set instances, stacks, endpoints, portfolios."""
    endpoint_url = state["endpoint_url"]
    management = _member_session(state, state["management_account"]["id"])
    cfn = management.client("cloudformation", endpoint_url=endpoint_url)
    instances: dict[str, set[str]] = {}
    for summary in cfn.list_stack_sets(Status="ACTIVE")["Summaries"]:
        try:
            pages = list(cfn.get_paginator("list_stack_instances").paginate(StackSetName=summary["StackSetName"]))
        except cfn.exceptions.StackSetNotFoundException:
            continue  # deleted since it was listed
        for page in pages:
            for instance in page["Summaries"]:
                instances.setdefault(instance["Account"], set()).add(
                    f"{summary['StackSetName']} ({instance['Region']}, {instance['Status']})"
                )
    rows = []
    for name, account_id, ou in _accounts(state):
        session = _member_session(state, account_id)
        endpoints = [
            e["EndpointName"]
            for e in session.client("sagemaker", endpoint_url=endpoint_url).list_endpoints()["Endpoints"]
        ]
        catalog = session.client("servicecatalog", endpoint_url=endpoint_url)
        portfolios = [p["DisplayName"] for p in catalog.list_portfolios()["PortfolioDetails"]]
        for share_type in ("IMPORTED", "AWS_ORGANIZATIONS"):
            portfolios += [
                f"{p['DisplayName']} (shared, {share_type.lower().replace('_', ' ')})"
                for p in catalog.list_accepted_portfolio_shares(PortfolioShareType=share_type)["PortfolioDetails"]
            ]
        stacks = [
            s["StackName"]
            for s in session.client("cloudformation", endpoint_url=endpoint_url).describe_stacks()["Stacks"]
            if not s["StackName"].startswith("StackSet-")
        ]
        iam = session.client("iam", endpoint_url=endpoint_url)
        roles = [
            r["RoleName"]
            for page in iam.get_paginator("list_roles").paginate()
            for r in page["Roles"]
            if r["RoleName"] not in _SEEDED_ROLES
        ]
        buckets = [b["Name"] for b in session.client("s3", endpoint_url=endpoint_url).list_buckets().get("Buckets", [])]
        groups = [
            g["ModelPackageGroupName"]
            for g in session.client("sagemaker", endpoint_url=endpoint_url).list_model_package_groups()[
                "ModelPackageGroupSummaryList"
            ]
        ]
        rows.append(
            {
                "account": name,
                "id": account_id,
                "ou": ou,
                "stack_set_instances": sorted(instances.get(account_id, ())),
                "stacks": sorted(stacks),
                "roles": sorted(roles),
                "buckets": sorted(buckets),
                "model_package_groups": sorted(groups),
                "endpoints": sorted(endpoints),
                "portfolios": sorted(portfolios),
            }
        )
    return rows


_SUMMARY_FIELDS = (
    ("stack set instances", "stack_set_instances"),
    ("stacks", "stacks"),
    ("IAM roles", "roles"),
    ("S3 buckets", "buckets"),
    ("model package groups", "model_package_groups"),
    ("SageMaker endpoints", "endpoints"),
    ("Service Catalog portfolios", "portfolios"),
)


def format_summary(rows: list[dict]) -> str:
    lines = ["What existed after apply, by account (local AWS, before the destroy step):"]
    for row in rows:
        lines.append(f"  {row['account']} {row['id']} (OU {row['ou']})")
        for label, key in _SUMMARY_FIELDS:
            if row.get(key):
                lines.append(f"    {label}: {', '.join(row[key])}")
        if not any(row.get(key) for _, key in _SUMMARY_FIELDS):
            lines.append("    nothing deployed")
    return "\n".join(lines)


def run_demo(manifest: str, catalog: str | None, org: str, state_dir: str) -> int:
    steps = [
        "local AWS up",
        "publish the catalog to Service Catalog",
        "plan",
        "apply",
        "status",
        "plan a change: what it does inside the stacks",
        "cross-account invoke",
        "destroy what was deployed",
        "local AWS down",
    ]
    if not catalog:
        steps.remove("publish the catalog to Service Catalog")
    total = len(steps)
    number = iter(range(1, total + 1))
    started_at = time.monotonic()
    summary: list[dict] | None = None
    failure: DeployError | None = None
    lifecycle.stop(state_dir)  # a server left by an interrupted demo (ours by state dir only)
    _step(next(number), total, steps[0])
    state, _ = lifecycle.up(state_dir, org_file=org, watch_pid=os.getpid())
    _say(f"local AWS on {state['endpoint_url']} (pid {state['pid']}), Organization {state['organization_id']}:")
    for name, account_id, ou in _accounts(state):
        _say(f"  {account_id}  {name:<18} {ou}")
    try:
        with lifecycle.environment_set(
            lifecycle.environment(state["endpoint_url"], state["region"]), lifecycle.UNSET_VARIABLES
        ):
            seed_secret_sources(manifest, boto3.client("ssm", region_name=state["region"]))
            if catalog:
                _step(next(number), total, steps[1])
                deploy_launch_role(state)
                _run("publish", ["publish", "--catalog", catalog])
            _step(next(number), total, "plan")
            _run("plan", ["plan", "--manifest", manifest])
            _step(next(number), total, "apply")
            _run("apply", ["apply", "--manifest", manifest, "--yes"])
            _step(next(number), total, "status")
            _run("status", ["status", "--manifest", manifest])
            _step(next(number), total, "plan a change: what it does inside the stacks")
            with changed_manifest(manifest, CHANGED_STACK_SET, CHANGED_PARAMETERS) as changed:
                _say(
                    f"(a copy of the manifest where {CHANGED_STACK_SET} sets {CHANGED_PARAMETERS}; nothing is applied)"
                )
                _run("plan", ["plan", "--manifest", changed])
            _step(next(number), total, "cross-account invoke")
            demo_invoke(state, manifest)
            summary = collect_summary(state)
            _step(next(number), total, "destroy what was deployed")
            _run("destroy", ["destroy", "--manifest", manifest, "--yes"])
            left = sum(
                len(account["stack_set_instances"]) + len(account["endpoints"]) for account in collect_summary(state)
            )
            if left:
                raise DeployError(f"destroy left {left} stack instance(s) or endpoint(s) behind")
            _say("every stack set and instance the demo created is gone (portfolio and buckets stay, as on AWS)")
    except DeployError as error:
        failure = error
    finally:
        _step(total, total, "local AWS down")
        _say(lifecycle.stop(state_dir))
    if failure is not None:
        _say(f"\ndemo FAILED: {failure}")
        return failure.exit_code
    _say("\n" + format_summary(summary))
    _say(f"\ndemo finished in {time.monotonic() - started_at:.0f}s; nothing is left running.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest", default=DEFAULT_MANIFEST, help=f"deployment manifest (default {DEFAULT_MANIFEST})"
    )
    parser.add_argument(
        "--catalog",
        default=DEFAULT_CATALOG,
        help=f"Service Catalog catalog to publish (default {DEFAULT_CATALOG}; '' to skip)",
    )
    parser.add_argument(
        "--org", default=DEFAULT_ORG, help=f"org file to seed the local AWS from (default {DEFAULT_ORG})"
    )
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help=f"the demo server's state dir (default {DEFAULT_STATE_DIR})"
    )
    args = parser.parse_args(argv)
    for path, what in ((args.manifest, "manifest"), (args.catalog, "catalog"), (args.org, "org file")):
        if path and not Path(path).is_file():
            print(f"error: {path}: the {what} does not exist (run from the repository root)", file=sys.stderr)
            return 2
    try:
        return run_demo(args.manifest, args.catalog or None, args.org, args.state_dir)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        lifecycle.stop(args.state_dir)
        print("interrupted: the local AWS was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
