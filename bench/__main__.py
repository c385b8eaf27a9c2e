"""``python -m bench``: rollout and generation benchmarks; a table on stdout, JSON and a PNG
under ``bench/results/``.

``--sizes 10`` is the quick mode. Figures are printed, never asserted: the exit status
is 0 when every step ran (and deployed what it should), whatever the figures say.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from bench import generation, report, validation
from bench.rollout import PHASES, TOOLS, run_size

DEFAULT_SIZES = (10, 100, 1000)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of fleet sizes such as 10,100,1000"
        ) from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("fleet sizes are positive integers")
    return sizes


def _shown(path: Path) -> str:
    """A path relative to the project when inside it (the JSON is committed), else absolute."""
    try:
        return str(path.resolve().relative_to(RESULTS_DIR.parent.parent))
    except ValueError:
        return str(path)


def run(
    sizes,
    *,
    baseline_full_up_to: int | None,
    generation_repeat: int,
    out: Path,
    plot: bool,
    rollout: bool = True,
    plan_accounts: int = 50_000,
    log=print,
) -> dict:
    """Run the benchmarks; return the result document (also written under ``out``)."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.timezone.utc)
    result: dict = {
        "date": now.strftime("%Y-%m-%d"),
        "started_utc": now.isoformat(timespec="seconds"),
        "machine": report.machine(),
        "versions": report.versions(),
        "sizes": list(sizes),
        "rollout": [],
        "checks": {},
    }
    if rollout:
        for size in sizes:
            log(f"rollout, N={size}:")
            full = baseline_full_up_to is None or size <= baseline_full_up_to
            phases = PHASES if full else ("first_apply", "plan")
            measured, checks = run_size(size, tools=TOOLS, baseline_phases=phases, log=log)
            result["rollout"].extend(m.to_dict() for m in measured)
            result["checks"][str(size)] = checks
            if not full:
                result.setdefault("notes", []).append(
                    f"N={size}: the baseline ran the first apply and the plan only "
                    f"(--baseline-full-up-to {baseline_full_up_to})"
                )
    result["generation"] = generation.run(generation_repeat, log=log) if generation_repeat else None
    result["validation"] = validation.run(plan_accounts, log=log) if plan_accounts else None
    result["targets"] = report.evaluate(result["rollout"], result["generation"], result["validation"])
    result["machine"]["loadavg_at_end"] = report.machine().get("loadavg")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    stem = result["date"] if list(sizes) == list(DEFAULT_SIZES) else f"{result['date']}-N{'-'.join(map(str, sizes))}"
    result["files"] = {"json": _shown(out / f"{stem}.json")}
    if plot and result["rollout"]:
        png = report.plot(result, out / f"{stem}.png")
        result["files"]["png"] = (
            _shown(png) if png else "not written: matplotlib is missing (pip install -e '.[bench]')"
        )
    report.write_json(result, out / f"{stem}.json")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="fleet sizes, comma-separated (default 10,100,1000; quick mode: 10)",
    )
    parser.add_argument(
        "--baseline-full-up-to",
        type=int,
        default=None,
        metavar="N",
        help="above N accounts the baseline runs only the first apply and the plan (default: every step at every size)",
    )
    parser.add_argument(
        "--generation-repeat",
        type=int,
        default=3,
        metavar="K",
        help="runs of each generation command, alternating, median reported (0 skips it; default 3)",
    )
    parser.add_argument("--skip-rollout", action="store_true", help="only the generation benchmark")
    parser.add_argument(
        "--plan-accounts",
        type=int,
        default=50_000,
        metavar="N",
        help="time loading and planning a manifest of N accounts x 2 regions (0 skips it; default 50000)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help=f"where the JSON and PNG go (default {RESULTS_DIR})"
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(
        args.sizes,
        baseline_full_up_to=args.baseline_full_up_to,
        generation_repeat=args.generation_repeat,
        out=args.out,
        plot=not args.no_plot,
        rollout=not args.skip_rollout,
        plan_accounts=args.plan_accounts,
        log=log,
    )
    print(report.table(result))
    print(f"\nwrote {', '.join(result['files'].values())} in {result['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
