"""Rollout benchmark: our deployer against the naive baseline, on a local AWS of N accounts.

For each fleet size, on a fresh counting server (``bench.server``) seeded with the
Organization of ``bench.fleet``, one tool after the other (their stack sets named apart):

- ours, through the deployer's command line (``deploy.cli.main``, in this process):
  (a) ``apply`` of the three stack sets, (b) the same ``apply`` again (nothing changed),
  (c) ``apply`` after one parameter override for one account, (d) ``plan`` of that same
  manifest (nothing to change: what a CI job runs on every change);
- the baseline (``bench.baseline``), the same four steps.

Each step records the API calls the server saw (reads, writes, and reads counted in the
pages AWS would need), wall time, and CPU time of the client and of the server (wall
time on a shared machine moves with its load; CPU time much less). After the steps the
deployment is checked (every instance there, the override in place), outside the counts.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.baseline import NaiveRollout
from bench.fleet import OVERRIDE_PARAMETER, REGIONS, Fleet, Workspace, seed_fleet, write_workspace
from bench.server import BenchServer, summarise

PHASES = ("first_apply", "noop_apply", "override_apply", "plan")
TOOLS = ("ours", "baseline")
PREFIXES = {"ours": "ours", "baseline": "naive"}


@dataclass
class Measured:
    """One step of one tool at one size."""

    tool: str
    size: int
    phase: str
    wall_seconds: float
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    counts: dict
    exit_code: int = 0

    def to_dict(self) -> dict:
        return {
            "tool": self.tool,
            "size": self.size,
            "phase": self.phase,
            "wall_seconds": round(self.wall_seconds, 3),
            "client_cpu_seconds": round(self.client_cpu_seconds, 3),
            "server_cpu_seconds": None if self.server_cpu_seconds is None else round(self.server_cpu_seconds, 3),
            "exit_code": self.exit_code,
            **self.counts,
        }


def local_environment(endpoint_url: str, region: str) -> contextlib.AbstractContextManager:
    """Point boto3 at the bench server with dummy credentials; a developer's ~/.aws stays out."""
    from localaws import lifecycle

    values = {
        **lifecycle.environment(endpoint_url, region),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return lifecycle.environment_set(values, lifecycle.UNSET_VARIABLES)


def _measure(server: BenchServer, tool: str, size: int, phase: str, action) -> Measured:
    server.reset_counts()
    cpu0, server0, start = time.process_time(), server.cpu_seconds(), time.perf_counter()
    exit_code = action()
    wall = time.perf_counter() - start
    cpu, server1 = time.process_time() - cpu0, server.cpu_seconds()
    counts = summarise(server.counts())
    return Measured(
        tool,
        size,
        phase,
        wall,
        cpu,
        None if server0 is None or server1 is None else server1 - server0,
        counts,
        exit_code or 0,
    )


def _deploy_cli(argv: list[str]) -> int:
    """``python -m deploy ...`` in this process; its output is swallowed (it is not measured)."""
    from deploy.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"`python -m deploy {' '.join(argv)}` exited {code}: {err.getvalue()[-2000:]}")
    return code


def run_ours(server: BenchServer, workspace: Workspace, size: int) -> list[Measured]:
    """The four steps through the deployer's command line."""
    steps = [
        ("first_apply", ["apply", "--manifest", str(workspace.manifest), "--yes", "--json"]),
        ("noop_apply", ["apply", "--manifest", str(workspace.manifest), "--yes", "--json"]),
        ("override_apply", ["apply", "--manifest", str(workspace.manifest_with_override), "--yes", "--json"]),
        ("plan", ["plan", "--manifest", str(workspace.manifest_with_override), "--json"]),
    ]
    return [_measure(server, "ours", size, phase, lambda argv=argv: _deploy_cli(argv)) for phase, argv in steps]


def run_baseline(server: BenchServer, workspace: Workspace, size: int, phases=PHASES) -> list[Measured]:
    """The same steps by the naive loop (``phases`` may skip some at the largest sizes)."""
    from deploy.common.clients import Clients

    naive = NaiveRollout(Clients(), REGIONS[0])
    with_override = copy.deepcopy(workspace.desired)
    with_override[workspace.override_stack_set]["overrides"] = {workspace.override_account: {OVERRIDE_PARAMETER: "v2"}}
    actions = {
        "first_apply": lambda: naive.apply(workspace.desired),
        "noop_apply": lambda: naive.apply(workspace.desired),
        "override_apply": lambda: naive.apply(with_override),
        "plan": lambda: naive.plan(with_override),
    }

    def run(action) -> int:
        action()
        return 0

    return [
        _measure(server, "baseline", size, phase, lambda action=actions[phase]: run(action))
        for phase in PHASES
        if phase in phases
    ]


def verify(fleet: Fleet, workspace: Workspace, override_applied: bool) -> dict:
    """Check what was deployed (outside the counts): instances per stack set, the override."""
    from deploy.common.clients import Clients

    cfn = Clients().client("cloudformation", REGIONS[0])
    found = {}
    for name, spec in workspace.desired.items():
        accounts = (
            spec["accounts"]
            if spec["accounts"] is not None
            else [
                a for ou_path, ou_id in fleet.ou_ids.items() if ou_id in spec["ous"] for a in fleet.accounts_in(ou_path)
            ]
        )
        expected = {(account, region) for account in accounts for region in spec["regions"]}
        actual = set()
        for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=name):
            actual.update((item["Account"], item["Region"]) for item in page["Summaries"])
        if actual != expected:
            raise RuntimeError(
                f"{name}: {len(actual)} instance(s) deployed, {len(expected)} expected "
                f"({len(expected - actual)} missing, {len(actual - expected)} extra)"
            )
        found[name.removeprefix(f"{workspace.prefix}-")] = len(actual)
    if override_applied:
        for region in REGIONS:
            instance = cfn.describe_stack_instance(
                StackSetName=workspace.override_stack_set,
                StackInstanceAccount=workspace.override_account,
                StackInstanceRegion=region,
            )["StackInstance"]
            values = {
                item["ParameterKey"]: item.get("ParameterValue") for item in instance.get("ParameterOverrides") or []
            }
            if values.get(OVERRIDE_PARAMETER) != "v2":
                raise RuntimeError(
                    f"{workspace.override_stack_set}: the override of {workspace.override_account} in {region} "
                    f"is {values or 'not set'}"
                )
    return found


def run_size(size: int, tools=TOOLS, baseline_phases=PHASES, log=print) -> tuple[list[Measured], dict]:
    """Both tools at one fleet size, one after the other on one fresh local AWS (their stack
    sets named apart); return the measurements and the checks of what each deployed."""
    results: list[Measured] = []
    checks: dict = {}
    with BenchServer() as server, tempfile.TemporaryDirectory(prefix=f"bench-{size}-") as directory:
        start = time.perf_counter()
        fleet = seed_fleet(server.endpoint_url, size)
        checks["seed_seconds"] = round(time.perf_counter() - start, 2)
        for tool in tools:
            workspace = write_workspace(Path(directory) / tool, fleet, prefix=PREFIXES[tool])
            with local_environment(server.endpoint_url, REGIONS[0]):
                if tool == "ours":
                    measured = run_ours(server, workspace, size)
                else:
                    measured = run_baseline(server, workspace, size, baseline_phases)
                ran = {m.phase for m in measured}
                checks[tool] = (
                    verify(fleet, workspace, override_applied="override_apply" in ran) if "first_apply" in ran else {}
                )
            for item in measured:
                log(
                    f"  {tool:8} N={size:<5} {item.phase:15} {item.counts['calls']:6} calls "
                    f"({item.counts['writes']} writes, {item.counts['aws_page_reads']} AWS-page reads)  "
                    f"{item.wall_seconds:7.2f}s"
                )
            results.extend(measured)
    return results, checks
