"""Client-side cost of a very large manifest: load and validate it, then plan a new stack set
over every account and region (no AWS call: the plan is pure). Figures only, never asserted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from deploy.stacksets.manifest import load_manifest
from deploy.stacksets.plan import LiveStackSet, plan_stack_set

TARGET_SECONDS = 5.0  # issue 16: a 50,000-account x 2-region manifest plans in under 5 s of client time
TEMPLATE = (
    "Parameters:\n  EnvName: {Type: String, Default: mlops}\n"
    "Resources:\n  Marker:\n    Type: AWS::SSM::Parameter\n"
    "    Properties: {Name: !Sub '/${EnvName}/marker', Type: String, Value: x}\n"
)


def run(accounts: int, regions: tuple[str, ...] = ("us-east-1", "eu-west-1"), log=print) -> dict:
    """Time (wall and CPU) the load and the plan of one self-managed stack set of ``accounts``."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "marker.yaml").write_text(TEMPLATE)
        item = {
            "name": "large",
            "template": "marker.yaml",
            "permission_model": "self_managed",
            "targets": {"accounts": [f"{n:012d}" for n in range(1, accounts + 1)]},
            "regions": list(regions),
        }
        path = root / "manifest.yaml"
        path.write_text(yaml.safe_dump({"admin_region": regions[0], "stack_sets": [item]}))
        wall, cpu = time.perf_counter(), time.process_time()
        (spec,) = load_manifest(path).stack_sets
        loaded_wall, loaded_cpu = time.perf_counter() - wall, time.process_time() - cpu
        plan = plan_stack_set(spec, LiveStackSet(name=spec.name, exists=False))
        total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "accounts": accounts,
        "regions": len(regions),
        "manifest_bytes": path.stat().st_size if path.exists() else None,
        "load_seconds": {"wall": round(loaded_wall, 2), "cpu": round(loaded_cpu, 2)},
        "total_seconds": {"wall": round(total_wall, 2), "cpu": round(total_cpu, 2)},
        "calls_planned": len(plan.steps),
        "target_seconds": TARGET_SECONDS,
        "met": total_cpu < TARGET_SECONDS,
    }
    log(
        f"manifest of {accounts} accounts x {len(regions)} regions: loaded in {loaded_wall:.2f}s, "
        f"planned in {total_wall:.2f}s wall ({total_cpu:.2f}s CPU), {len(plan.steps)} call(s)"
    )
    return result
