"""Generation benchmark: ``python -m generator`` (render and lint every template) against
the bare ``cfn-lint`` command line linting the same files with the same checks.

Both run as a user runs them, as child processes. The generator writes into a temporary
folder (never into ``templates/``); cfn-lint then lints exactly those files, for the same
regions (``generator.lint.SUPPORTED_REGIONS``), with informational checks and, when the
generator loads them, the project's custom rules. Wall time and CPU time (of the child
and its own children: the generator lints in a process pool) are recorded per run.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], ok_codes=(0,)) -> tuple[float, float, int]:
    cpu0, start = _children_cpu(), time.perf_counter()
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if process.returncode not in ok_codes:
        raise RuntimeError(
            f"`{' '.join(command)}` exited {process.returncode}: {(process.stderr or process.stdout)[-2000:]}"
        )
    return wall, cpu, process.returncode


def cfn_lint_command(files: list[Path]) -> list[str]:
    """cfn-lint with the checks the generator runs in-process (regions, ``I`` checks, custom rules)."""
    from generator.lint import RULES_DIR, SUPPORTED_REGIONS

    executable = Path(sys.executable).with_name("cfn-lint")
    command = [
        str(executable) if executable.exists() else (shutil.which("cfn-lint") or "cfn-lint"),
        "--regions",
        *SUPPORTED_REGIONS,
        "--include-checks",
        "I",
    ]
    if (RULES_DIR / "__init__.py").exists():
        command += ["--append-rules", str(RULES_DIR)]
    return command + ["--", *map(str, files)]


def run(repeat: int = 1, log=print) -> dict:
    """Time both ``repeat`` times (alternating, so that load hits both alike); medians and every run."""
    runs = {"generator": [], "cfn_lint": []}
    with tempfile.TemporaryDirectory(prefix="bench-templates-") as directory:
        out = Path(directory)
        generator = [sys.executable, "-m", "generator", "--out", str(out)]
        for index in range(repeat):
            wall, cpu, _ = _timed(generator)
            runs["generator"].append({"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)})
            files = sorted(out.glob("*.yaml"))
            # cfn-lint exits non-zero when it finds something; the generator failed the run then already.
            wall, cpu, code = _timed(cfn_lint_command(files), ok_codes=(0, 2, 4, 6, 8, 10, 12, 14))
            runs["cfn_lint"].append({"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "exit_code": code})
            log(
                f"  generation run {index + 1}/{repeat}: generator {runs['generator'][-1]['wall_seconds']:.2f}s, "
                f"cfn-lint {runs['cfn_lint'][-1]['wall_seconds']:.2f}s ({len(files)} templates)"
            )
    summary = {
        name: {key: statistics.median(r[key] for r in items) for key in ("wall_seconds", "cpu_seconds")}
        for name, items in runs.items()
    }
    return {
        "templates": len(files),
        "regions": _regions(),
        "cfn_lint_command": " ".join(cfn_lint_command([Path("templates/*.yaml")])).replace(str(ROOT) + os.sep, ""),
        "cpus": os.cpu_count(),
        "runs": runs,
        "median": summary,
        "ratio_wall": round(summary["generator"]["wall_seconds"] / summary["cfn_lint"]["wall_seconds"], 3),
        "ratio_cpu": round(summary["generator"]["cpu_seconds"] / summary["cfn_lint"]["cpu_seconds"], 3),
    }


def _regions() -> list[str]:
    from generator.lint import SUPPORTED_REGIONS

    return list(SUPPORTED_REGIONS)
