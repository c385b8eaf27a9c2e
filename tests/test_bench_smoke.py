"""Smoke test of the benchmark harness at N=3: the structure of the result, never timings.

Runs both tools through every step on two small local AWS servers, as ``make bench``
does at full size, and checks what is counted and reported (the deployment itself is
checked by the harness: every instance there, the override in place).
"""

from __future__ import annotations

import json

import pytest

from bench import __main__ as bench_main
from bench import report
from bench.fleet import STACK_SETS
from bench.generation import cfn_lint_command
from bench.rollout import PHASES, TOOLS
from bench.server import aws_pages


def test_aws_pages_counts_what_aws_would_page():
    assert aws_pages(0, None, 100) == 1  # an empty list is still one call
    assert aws_pages(100, None, 100) == 1
    assert aws_pages(1500, None, 100) == 15  # the emulator's single page of 1500 is 15 on AWS
    assert aws_pages(1500, 20, 100) == 75  # the caller's smaller page size wins
    assert aws_pages(1500, 500, 100) == 15  # AWS caps a larger one


def test_cfn_lint_command_lints_the_given_files_for_the_generators_regions():
    from generator.lint import SUPPORTED_REGIONS

    command = cfn_lint_command([]) + ["x.yaml"]
    assert command[0].endswith("cfn-lint")
    for region in SUPPORTED_REGIONS:
        assert region in command
    assert command[command.index("--include-checks") + 1] == "I"
    assert command[-2:] == ["--", "x.yaml"]


def test_harness_at_three_accounts(tmp_path):
    result = bench_main.run(
        [3], baseline_full_up_to=None, generation_repeat=0, out=tmp_path, plot=False, plan_accounts=250
    )
    validation = result["validation"]
    assert (validation["accounts"], validation["regions"], validation["calls_planned"]) == (250, 2, 2)
    assert validation["total_seconds"]["cpu"] >= validation["load_seconds"]["cpu"] >= 0
    assert any("250-account" in target["target"] for target in result["targets"])

    rows = result["rollout"]
    assert {(r["tool"], r["phase"]) for r in rows} == {(tool, phase) for tool in TOOLS for phase in PHASES}
    for row in rows:
        assert row["size"] == 3 and row["exit_code"] == 0
        assert row["calls"] == row["reads"] + row["writes"] == sum(row["by_operation"].values())
        assert row["aws_page_reads"] >= row["reads"]
        assert row["aws_equivalent_calls"] == row["aws_page_reads"] + row["writes"]
        assert row["wall_seconds"] >= 0 and row["client_cpu_seconds"] >= 0

    by = {(r["tool"], r["phase"]): r for r in rows}
    # The baseline writes once per account and region and polls each operation.
    baseline = by[("baseline", "first_apply")]["by_operation"]
    instances = sum(result["checks"]["3"]["baseline"].values())
    assert baseline["cloudformation.CreateStackInstances"] == instances
    assert baseline["cloudformation.DescribeStackSetOperation"] >= instances
    # Both deployed the same instances; plans write nothing.
    assert result["checks"]["3"]["ours"] == result["checks"]["3"]["baseline"]
    assert set(result["checks"]["3"]["ours"]) == {shape.name for shape in STACK_SETS}
    assert by[("ours", "plan")]["writes"] == 0 and by[("baseline", "plan")]["writes"] == 0
    assert by[("ours", "first_apply")]["writes"] >= len(STACK_SETS)

    names = {target["target"] for target in result["targets"]}
    assert any(name.startswith("no-op re-apply") for name in names)
    assert any(name.startswith("one override") for name in names)  # issue 15's target
    # One override for one account: one write, and no instance list (nothing else changed).
    override = by[("ours", "override_apply")]["by_operation"]
    assert override.get("cloudformation.UpdateStackInstances") == 1
    assert "cloudformation.ListStackInstances" not in override
    assert all(target["met"] in (True, False, None) for target in result["targets"])

    written = json.loads(next(tmp_path.glob("*-N3.json")).read_text())
    assert written["rollout"] == rows and written["sizes"] == [3]
    table = report.table(result)
    assert "| 3 | (a) first apply |" in table and "Targets:" in table


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [
        {"tool": tool, "size": size, "phase": phase, "aws_equivalent_calls": calls, "wall_seconds": 1.0}
        for tool, calls in (("ours", 10), ("baseline", 100))
        for size in (10, 100)
        for phase in PHASES
    ]
    result = {"rollout": rows, "date": "2026-01-01", "machine": {"nproc": 2}}
    path = report.plot(result, tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
