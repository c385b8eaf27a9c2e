"""``python -m generator``: emit every registered template into ``templates/`` and lint it.

Exit status: 0 all emitted and lint-clean; 1 a lint finding or (with ``--check``) a file
on disk that differs from what the generator emits.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from generator.lint import SUPPORTED_REGIONS, Finding, lint_text
from generator.registry import TEMPLATES
from generator.render import render_yaml

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "templates"


def render_all(names=None) -> dict[str, str]:
    """Render the registered templates (all, or ``names``) to YAML text, keyed by file name."""
    selected = names or list(TEMPLATES)
    unknown = [n for n in selected if n not in TEMPLATES]
    if unknown:
        raise SystemExit(f"unknown template(s): {', '.join(unknown)}; known: {', '.join(TEMPLATES)}")
    return {f"{name}.yaml": render_yaml(TEMPLATES[name]()) for name in selected}


def _lint_one(item: tuple[str, str, tuple[str, ...]]) -> list[Finding]:
    path, text, regions = item
    return lint_text(text, path, regions)


def lint_all(rendered: dict[str, str], out_dir: Path, regions=SUPPORTED_REGIONS, jobs=None):
    """Lint every rendered template in parallel processes; return all findings."""
    items = [(str(out_dir / name), text, tuple(regions)) for name, text in rendered.items()]
    if jobs == 1 or len(items) == 1:
        results = map(_lint_one, items)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs)
        with pool:
            results = list(pool.map(_lint_one, items))
    return [f for group in results for f in group]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: templates/)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if files on disk differ")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint (for quick local iterations)")
    parser.add_argument("--region", action="append", dest="regions", help="lint for this region only (repeatable)")
    parser.add_argument("--jobs", type=int, default=None, help="lint processes (default: one per CPU)")
    parser.add_argument("names", nargs="*", help="templates to emit (default: all registered)")
    args = parser.parse_args(argv)

    rendered = render_all(args.names)
    status = 0
    if args.check:
        for name, text in rendered.items():
            path = args.out / name
            current = path.read_text() if path.exists() else None
            if current != text:
                why = "missing" if current is None else "differs from the generator's output"
                print(f"{path}: {why}; run `make templates` and commit the result", file=sys.stderr)
                status = 1
        emitted = {p.name for p in args.out.glob("*.yaml")} if args.out.is_dir() else set()
        if not args.names:
            for stray in sorted(emitted - set(rendered)):
                print(f"{args.out / stray}: not emitted by any registered builder; delete it", file=sys.stderr)
                status = 1
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            path = args.out / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        if not args.names:
            for stray in sorted({p.name for p in args.out.glob("*.yaml")} - set(rendered)):
                print(f"warning: {args.out / stray} is not emitted by any builder; delete it", file=sys.stderr)

    if not args.no_lint:
        findings = lint_all(rendered, args.out, args.regions or SUPPORTED_REGIONS, args.jobs)
        for finding in findings:
            print(finding, file=sys.stderr)
        if findings:
            print(f"cfn-lint: {len(findings)} finding(s); every finding fails the run", file=sys.stderr)
            status = 1
    if status == 0:
        verb = "checked" if args.check else "emitted"
        print(f"{verb} {len(rendered)} template(s), lint-clean", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
