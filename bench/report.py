"""Results of a benchmark run: the targets checked, the table on stdout, the JSON and the plot."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

from bench.fleet import STACK_SETS
from bench.rollout import PHASES

# Issue 9's targets.
FIRST_APPLY_GROWTH_MAX = 1.2
NOOP_READS_PER_STACK_SET_MAX = 5
BASELINE_RATIO_MIN = 20
BASELINE_RATIO_SIZE = 100
GENERATION_RATIO_MAX = 1.3
# Issue 15's: one override change for one account, at the largest fleet against the smallest.
OVERRIDE_GROWTH_MAX = 1.2

PHASE_LABELS = {
    "first_apply": "(a) first apply",
    "noop_apply": "(b) no-op re-apply",
    "override_apply": "(c) one override",
    "plan": "(d) plan",
}


def machine() -> dict:
    """What the figures were measured on."""
    import os

    info = {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
        info["lscpu"] = lscpu[:10]
        info["cpu_model"] = next(
            (line.split(":", 1)[1].strip() for line in lscpu if line.startswith("Model name")), None
        )
    except OSError:
        info["lscpu"] = None
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        info["loadavg"] = None
    return info


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("moto", "boto3", "botocore", "cfn-lint", "troposphere"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _row(rows: list[dict], tool: str, size: int, phase: str) -> dict | None:
    return next((r for r in rows if r["tool"] == tool and r["size"] == size and r["phase"] == phase), None)


def _growth(rows: list[dict], phase: str, label: str, maximum: float, small: int, large: int) -> dict:
    """The growth target of one phase: our calls at the largest fleet over those at the smallest."""
    a, b = _row(rows, "ours", small, phase), _row(rows, "ours", large, phase)
    growth = round(b["aws_equivalent_calls"] / a["aws_equivalent_calls"], 3) if a and b and small != large else None
    return {
        "target": f"{label}: calls grow <= {maximum}x from {small} to {large} accounts"
        if small != large
        else f"{label}: calls grow <= {maximum}x with the fleet (needs two sizes)",
        "value": growth,
        "detail": f"{a and a['aws_equivalent_calls']} -> {b and b['aws_equivalent_calls']} calls (AWS pages)",
        "met": None if growth is None else growth <= maximum,
    }


def evaluate(rows: list[dict], generation: dict | None, validation: dict | None = None) -> list[dict]:
    """Each target of the issue, with the measured value and whether it is met (None: not measured)."""
    targets = []
    sizes = sorted({r["size"] for r in rows if r["tool"] == "ours"})
    if sizes:
        small, large = sizes[0], sizes[-1]
        targets.append(_growth(rows, "first_apply", "first apply", FIRST_APPLY_GROWTH_MAX, small, large))
        targets.append(_growth(rows, "override_apply", "one override", OVERRIDE_GROWTH_MAX, small, large))
        noops = [r for r in rows if r["tool"] == "ours" and r["phase"] == "noop_apply"]
        if noops:
            worst = max(noops, key=lambda r: r["aws_page_reads"])
            per_set = round(worst["aws_page_reads"] / len(STACK_SETS), 2)
            writes = max(r["writes"] for r in noops)
            targets.append(
                {
                    "target": f"no-op re-apply: 0 writes and <= {NOOP_READS_PER_STACK_SET_MAX} reads per stack set "
                    "(every size)",
                    "value": per_set,
                    "detail": f"{writes} writes; worst {worst['aws_page_reads']} reads (AWS pages) "
                    f"for {len(STACK_SETS)} stack sets at N={worst['size']}, shared lookups included",
                    "met": writes == 0 and per_set <= NOOP_READS_PER_STACK_SET_MAX,
                }
            )
    ours, naive = (
        _row(rows, "ours", BASELINE_RATIO_SIZE, "first_apply"),
        _row(rows, "baseline", BASELINE_RATIO_SIZE, "first_apply"),
    )
    ratio = round(naive["aws_equivalent_calls"] / ours["aws_equivalent_calls"], 1) if ours and naive else None
    applies = [
        (_row(rows, "ours", BASELINE_RATIO_SIZE, p), _row(rows, "baseline", BASELINE_RATIO_SIZE, p))
        for p in ("first_apply", "noop_apply", "override_apply")
    ]
    total = None
    if all(o and n for o, n in applies):
        total = round(
            sum(n["aws_equivalent_calls"] for _, n in applies) / sum(o["aws_equivalent_calls"] for o, _ in applies), 1
        )
    targets.append(
        {
            "target": f"{BASELINE_RATIO_SIZE} accounts x 2 regions: >= {BASELINE_RATIO_MIN}x fewer calls than the "
            "baseline (first apply)",
            "value": ratio,
            "detail": f"{naive['aws_equivalent_calls']} vs {ours['aws_equivalent_calls']} calls; "
            f"the three applies together: {total}x"
            if ours and naive
            else f"needs N={BASELINE_RATIO_SIZE} in --sizes",
            "met": None if ratio is None else ratio >= BASELINE_RATIO_MIN,
        }
    )
    if generation:
        targets.append(
            {
                "target": f"generation (render + lint all) within {GENERATION_RATIO_MAX}x of bare cfn-lint (wall time)",
                "value": generation["ratio_wall"],
                "detail": f"{generation['median']['generator']['wall_seconds']:.1f}s vs "
                f"{generation['median']['cfn_lint']['wall_seconds']:.1f}s wall; CPU {generation['ratio_cpu']}x",
                "met": generation["ratio_wall"] <= GENERATION_RATIO_MAX,
            }
        )
    if validation:
        targets.append(
            {
                "target": f"a {validation['accounts']}-account x {validation['regions']}-region manifest plans "
                f"in under {validation['target_seconds']:g} s of client time",
                "value": validation["total_seconds"]["cpu"],
                "detail": f"{validation['total_seconds']['wall']} s wall, {validation['total_seconds']['cpu']} s CPU",
                "met": validation["met"],
            }
        )
    return targets


def table(result: dict) -> str:
    """The figures as a fixed-width text table (also valid Markdown)."""
    rows = result["rollout"]
    lines = [
        f"Benchmarks {result['date']} on {result['machine'].get('cpu_model') or platform.machine()} "
        f"({result['machine']['nproc']} CPUs), "
        f"load average at start {_load(result['machine'].get('loadavg'))}; moto {result['versions'].get('moto')}",
        "",
        "Rollout: three stack sets, two regions; calls counted at the local AWS; "
        "'AWS pages' counts a list call as the pages AWS would need",
        "",
        "| N | step | ours calls (reads/writes) | ours AWS pages | baseline calls (reads/writes) "
        "| baseline AWS pages | ratio | ours s | baseline s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        for phase in PHASES:
            ours, naive = _row(rows, "ours", size, phase), _row(rows, "baseline", size, phase)
            if not ours and not naive:
                continue

            def calls(r):
                return f"{r['calls']} ({r['reads']}/{r['writes']})" if r else "-"

            ratio = (
                f"{naive['aws_equivalent_calls'] / ours['aws_equivalent_calls']:.1f}x"
                if ours and naive and ours["aws_equivalent_calls"]
                else "-"
            )
            lines.append(
                f"| {size} | {PHASE_LABELS[phase]} | {calls(ours)} | {ours['aws_equivalent_calls'] if ours else '-'} "
                f"| {calls(naive)} | "
                f"{naive['aws_equivalent_calls'] if naive else '-'} | {ratio} | {_seconds(ours)} | {_seconds(naive)} |"
            )
    generation = result.get("generation")
    if generation:
        lines += [
            "",
            f"Generation: {generation['templates']} templates, {len(generation['regions'])} regions "
            f"(median of {len(generation['runs']['generator'])} run(s))",
            "",
            "| tool | wall s | CPU s |",
            "|---|---:|---:|",
            f"| python -m generator (render + lint) | {generation['median']['generator']['wall_seconds']:.2f} "
            f"| {generation['median']['generator']['cpu_seconds']:.2f} |",
            f"| cfn-lint (same files, same checks) | {generation['median']['cfn_lint']['wall_seconds']:.2f} "
            f"| {generation['median']['cfn_lint']['cpu_seconds']:.2f} |",
        ]
    validation = result.get("validation")
    if validation:
        lines += [
            "",
            f"Large manifest: {validation['accounts']} accounts x {validation['regions']} regions, client time only",
            "",
            "| step | wall s | CPU s |",
            "|---|---:|---:|",
            f"| load and validate | {validation['load_seconds']['wall']:.2f} "
            f"| {validation['load_seconds']['cpu']:.2f} |",
            f"| load, validate and plan | {validation['total_seconds']['wall']:.2f} "
            f"| {validation['total_seconds']['cpu']:.2f} |",
        ]
    lines += ["", "Targets:", ""]
    for target in result["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        value = "-" if target["value"] is None else target["value"]
        lines.append(f"- {verdict}: {target['target']}: {value} ({target['detail']})")
    return "\n".join(lines)


def _seconds(row: dict | None) -> str:
    return f"{row['wall_seconds']:.2f}" if row else "-"


def _load(value) -> str:
    return "-" if not value else ", ".join(f"{v:.1f}" for v in value)


def write_json(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return path


def plot(result: dict, path: Path) -> Path | None:
    """API calls and wall time against fleet size, ours vs the baseline (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = result["rollout"]
    figure, (calls_axis, time_axis) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"ours": "-", "baseline": "--"}
    markers = {"first_apply": "o", "noop_apply": "s", "override_apply": "^", "plan": "d"}
    for tool in ("ours", "baseline"):
        for phase in PHASES:
            points = sorted(
                (r["size"], r["aws_equivalent_calls"], r["wall_seconds"])
                for r in rows
                if r["tool"] == tool and r["phase"] == phase
            )
            if not points:
                continue
            sizes = [p[0] for p in points]
            label = f"{tool}: {PHASE_LABELS[phase]}"
            calls_axis.plot(sizes, [max(p[1], 1) for p in points], styles[tool], marker=markers[phase], label=label)
            time_axis.plot(sizes, [max(p[2], 0.01) for p in points], styles[tool], marker=markers[phase], label=label)
    for axis, title, unit in (
        (calls_axis, "API calls (in AWS pages)", "calls"),
        (time_axis, "wall time on the local AWS", "seconds"),
    ):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("accounts in the Organization (N)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    calls_axis.legend(fontsize=7)
    figure.suptitle(
        "Rollout of 3 stack sets to 2 regions: ours vs a per-account loop "
        f"({result['date']}, {result['machine']['nproc']} CPUs)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
