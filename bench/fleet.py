"""The fleet the benchmarks roll out to: an Organization of N accounts over several OUs,
and the manifest of three stack sets that targets it.

The Organization is created through the Organizations API of the local AWS, with the
seeding code of ``python -m deploy local up`` (``localaws.seed``). The stack sets:

- ``<prefix>-guardrails``: service-managed, on the OUs development, staging and production;
- ``<prefix>-shared-config``: self-managed, on an explicit list of accounts (production
  and sandbox);
- ``<prefix>-model-endpoint``: service-managed on staging and production, ``depends_on``
  ``<prefix>-guardrails``.

All three in two regions. The prefix tells apart the stack sets of the two tools, which
run one after the other on the same Organization. Their templates are small on purpose (one parameter, one SSM
parameter): the benchmark measures what the tools ask of CloudFormation, not how long
the emulator takes to emulate resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from troposphere import Parameter, Sub, Template
from troposphere.ssm import Parameter as SsmParameter

from generator.render import render_yaml
from localaws.seed import OrgSpec, seed

REGIONS = ("us-east-1", "us-west-2")
OUS = ("development", "staging", "production", "sandbox")
OVERRIDE_STACK_SET = "guardrails"  # base name: the override is on this one
OVERRIDE_PARAMETER = "Setting"


@dataclass(frozen=True)
class Fleet:
    """A seeded Organization: account ids by OU path, OU ids by path."""

    size: int
    state: dict

    @property
    def ou_ids(self) -> dict[str, str]:
        return dict(self.state["organizational_units"])

    def accounts_in(self, *ous: str) -> list[str]:
        return sorted(a["id"] for a in self.state["accounts"].values() if a["ou"] in ous)

    @property
    def account_ids(self) -> list[str]:
        return sorted(a["id"] for a in self.state["accounts"].values())


def org_spec(size: int, random_seed: int = 9) -> OrgSpec:
    """``size`` member accounts, round-robin over the OUs (so every OU grows with the fleet)."""
    accounts = [
        {"name": f"bench-{index:05d}", "email": f"bench-{index:05d}@example.com", "ou": OUS[index % len(OUS)]}
        for index in range(size)
    ]
    return OrgSpec(
        random_seed=random_seed,
        management_name="management",
        management_email="management@example.com",
        ou_paths=list(OUS),
        accounts=accounts,
    )


def seed_fleet(endpoint_url: str, size: int) -> Fleet:
    """Create the Organization of ``size`` accounts on the local AWS at ``endpoint_url``."""
    return Fleet(size=size, state=seed(endpoint_url, org_spec(size)))


# --------------------------------------------------------------------------- stack sets


def build_setting_template(description: str) -> Template:
    """One parameter flowing into one SSM parameter: the smallest template worth rolling out."""
    template = Template(Description=description)
    setting = template.add_parameter(
        Parameter(OVERRIDE_PARAMETER, Type="String", Default="default", Description="A per-account setting")
    )
    template.add_resource(
        SsmParameter("BenchSetting", Name=Sub("/bench/${AWS::StackName}/setting"), Type="String", Value=setting.ref())
    )
    return template


@dataclass(frozen=True)
class StackSetShape:
    name: str
    template: str
    permission_model: str
    ous: tuple[str, ...] = ()
    account_ous: tuple[str, ...] = ()  # self-managed: the accounts of these OUs, listed one by one
    depends_on: tuple[str, ...] = ()


STACK_SETS = (
    StackSetShape("guardrails", "guardrails.yaml", "service_managed", ous=("development", "staging", "production")),
    StackSetShape("shared-config", "shared-config.yaml", "self_managed", account_ous=("production", "sandbox")),
    StackSetShape(
        "model-endpoint",
        "model-endpoint.yaml",
        "service_managed",
        ous=("staging", "production"),
        depends_on=("guardrails",),
    ),
)


@dataclass(frozen=True)
class Workspace:
    """Files of one benchmark run: the manifest, its variant with one override, the templates."""

    directory: Path
    manifest: Path
    manifest_with_override: Path
    override_account: str
    override_stack_set: str
    prefix: str
    desired: dict  # stack set name -> {"accounts": [...], "regions": [...], "ous": [...], ...} for the baseline


def write_workspace(
    directory: Path, fleet: Fleet, prefix: str = "bench", regions: tuple[str, ...] = REGIONS
) -> Workspace:
    """Write templates and manifests for ``fleet`` under ``directory``; stack sets named ``<prefix>-<name>``."""
    directory.mkdir(parents=True, exist_ok=True)
    templates = directory / "templates"
    templates.mkdir(exist_ok=True)
    items, desired = [], {}
    for shape in STACK_SETS:
        (templates / shape.template).write_text(
            render_yaml(build_setting_template(f"{shape.name}: benchmark template"))
        )
        name = f"{prefix}-{shape.name}"
        item = {
            "name": name,
            "template": f"templates/{shape.template}",
            "permission_model": shape.permission_model,
            "regions": list(regions),
            "parameters": {OVERRIDE_PARAMETER: "v1"},
        }
        if shape.ous:
            item["targets"] = {"organizational_units": [f"ou:/{ou}" for ou in shape.ous]}
            accounts = fleet.accounts_in(*shape.ous)
        else:
            accounts = fleet.accounts_in(*shape.account_ous)
            item["targets"] = {"accounts": accounts}
        if shape.depends_on:
            item["depends_on"] = [f"{prefix}-{dependency}" for dependency in shape.depends_on]
        items.append(item)
        desired[name] = {
            "template_body": (templates / shape.template).read_text(),
            "permission_model": shape.permission_model.upper(),
            "ous": [fleet.ou_ids[ou] for ou in shape.ous],
            "accounts": accounts if not shape.ous else None,  # service-managed: resolved from the OUs at run time
            "regions": list(regions),
            "parameters": {OVERRIDE_PARAMETER: "v1"},
            "overrides": {},
        }
    # Both files describe the same stack sets: one manifest id owns them (issue 15).
    manifest = {"id": prefix, "admin_region": regions[0], "stack_sets": items}
    manifest_path = directory / "manifest.yaml"
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))

    # One parameter override for one account (in every region of the stack set).
    target = next(shape for shape in STACK_SETS if shape.name == OVERRIDE_STACK_SET)
    override_account = fleet.accounts_in(*target.ous)[0]
    for item in items:
        if item["name"] == f"{prefix}-{OVERRIDE_STACK_SET}":
            item["overrides"] = [{"accounts": [override_account], "parameters": {OVERRIDE_PARAMETER: "v2"}}]
    override_path = directory / "manifest-override.yaml"
    override_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return Workspace(
        directory=directory,
        manifest=manifest_path,
        manifest_with_override=override_path,
        override_account=override_account,
        override_stack_set=f"{prefix}-{OVERRIDE_STACK_SET}",
        prefix=prefix,
        desired=desired,
    )
