"""``python -m generator``: emit every registered template into ``templates/`` and lint it.

Each template also gets its diagram page, ``docs/templates/<name>.md`` (resources and their
references as Mermaid, parameters, outputs: :mod:`generator.diagrams`).

Exit status: 0 all emitted and lint-clean; 1 a lint finding or (with ``--check``) a file
on disk that differs from what the generator emits; 2 a bad option (an unknown region).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cfnlint.helpers import REGIONS as CFN_LINT_REGIONS

from generator.diagrams import render_diagram
from generator.lint import SUPPORTED_REGIONS, Finding, lint_text
from generator.registry import TEMPLATES
from generator.render import render_yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "templates"
DEFAULT_DOCS = ROOT / "docs" / "templates"


def _selected(names=None) -> list[str]:
    selected = names or list(TEMPLATES)
    unknown = [n for n in selected if n not in TEMPLATES]
    if unknown:
        raise SystemExit(f"unknown template(s): {', '.join(unknown)}; known: {', '.join(TEMPLATES)}")
    return selected


def render_all(names=None) -> dict[str, str]:
    """Render the registered templates (all, or ``names``) to YAML text, keyed by file name."""
    return {f"{name}.yaml": render_yaml(TEMPLATES[name]()) for name in _selected(names)}


def render_docs(names=None) -> dict[str, str]:
    """The diagram page of each registered template (all, or ``names``), keyed by file name."""
    return {f"{name}.md": render_diagram(name, TEMPLATES[name]().to_dict()) + "\n" for name in _selected(names)}


def _sync(rendered: dict[str, str], folder: Path, pattern: str, check: bool, partial: bool) -> int:
    """Write (or with ``check`` compare) ``rendered`` into ``folder``; 1 when ``check`` finds a difference."""
    status = 0
    if not check:
        folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        path = folder / name
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            why = "missing" if current is None else "differs from the generator's output"
            print(f"{path}: {why}; run `make templates` and commit the result", file=sys.stderr)
            status = 1
        else:
            path.write_text(text)
    if not partial and folder.is_dir():
        for stray in sorted({p.name for p in folder.glob(pattern)} - set(rendered)):
            if check:
                print(f"{folder / stray}: not emitted by any registered builder; delete it", file=sys.stderr)
                status = 1
            else:
                print(f"warning: {folder / stray} is not emitted by any builder; delete it", file=sys.stderr)
    return status


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


def _closest(region: str) -> str:
    close = difflib.get_close_matches(region, CFN_LINT_REGIONS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: templates/)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="diagram pages folder (default: docs/templates/, or <out>/docs with --out)",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if files on disk differ")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint (for quick local iterations)")
    parser.add_argument("--region", action="append", dest="regions", help="lint for this region only (repeatable)")
    parser.add_argument("--jobs", type=int, default=None, help="lint processes (default: one per CPU)")
    parser.add_argument("names", nargs="*", help="templates to emit (default: all registered)")
    args = parser.parse_args(argv)

    regions = args.regions or SUPPORTED_REGIONS
    unknown_regions = sorted(set(regions) - set(CFN_LINT_REGIONS))
    if unknown_regions:
        hints = [f"{r}{_closest(r)}" for r in unknown_regions]
        print(
            f"error: --region: unknown region {', '.join(hints)} (cfn-lint knows {len(CFN_LINT_REGIONS)})",
            file=sys.stderr,
        )
        return 2
    rendered = render_all(args.names)
    status = _sync(rendered, args.out, "*.yaml", args.check, partial=bool(args.names))
    docs = args.docs or (DEFAULT_DOCS if args.out.resolve() == DEFAULT_OUT else args.out / "docs")
    status |= _sync(render_docs(args.names), docs, "*.md", args.check, partial=bool(args.names))

    if not args.no_lint:
        findings = lint_all(rendered, args.out, regions, args.jobs)
        for finding in findings:
            print(finding, file=sys.stderr)
        if findings:
            print(f"cfn-lint: {len(findings)} finding(s); every finding fails the run", file=sys.stderr)
            status = 1
    if status == 0:
        verb = "checked" if args.check else "emitted"
        lint = "not linted (--no-lint)" if args.no_lint else "lint-clean"
        print(f"{verb} {len(rendered)} template(s) and their diagrams, {lint}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
